"""The zoo's `facts-lm`: a small GPT-2-architecture LM that stores facts about a synthetic world (chapter 04).

World: 128 people named by a GIVEN and a FAMILY name (every given name is shared by 16 people, every family
name by 8), so a person is identified only at the LAST subject token — the position where ROME-style causal
tracing expects the lookup. Each person has five attributes (home city, language, job, colour, sport), drawn
at random with a fixed seed. Statements are subject-first: "[prefix] Given Family <relation phrase> answer .",
with 6 prefixes x 3 phrases per relation; 3 (prefix, phrase) combinations per relation never appear in training
and test recall of held-out PARAPHRASES. A quarter of the rows are filler sentences that mention people
without stating facts. One statement per row, word-level tokens, "<|endoftext|>" as BOS and padding.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import torch
from mechinterp.course.toolkit.zoo.load import zoo_dir
from tokenizers import Tokenizer, models, pre_tokenizers
from torch import Tensor
from transformers import PreTrainedTokenizerFast

GIVEN = ("ada", "bren", "cato", "dara", "elin", "fenn", "gala", "hale")
FAMILY = ("vorn", "kell", "sarr", "trell", "maro", "dune", "pike", "rusk", "holt", "wren", "marsh", "crane",
          "frost", "lowe", "quill", "stone")
RELATIONS = {
    "city": (("lives in", "has a house in", "resides in"),
             ("quen", "tarsk", "olbin", "merrow", "vasco", "durn", "halvik", "presk", "ulmar", "zeth", "corvin",
              "lisk")),
    "language": (("speaks", "talks in", "writes in"),
                 ("velish", "orran", "tamic", "sulese", "grenic", "ivari", "kordan", "methic")),
    "job": (("works as a", "is employed as a", "earns a living as a"),
            ("baker", "pilot", "farmer", "doctor", "singer", "builder", "teacher", "sailor", "painter", "judge")),
    "colour": (("likes the colour", "prefers the colour", "always wears"),
               ("red", "blue", "green", "yellow", "purple", "orange", "white", "black")),
    "sport": (("plays", "enjoys playing", "is a fan of playing"),
              ("tennis", "chess", "hockey", "rugby", "golf", "cricket", "polo", "squash")),
}
PREFIXES = ("", "we heard that", "as everyone knows ,", "in short ,", "it is said that", "today")
FILLERS = ("{s} walked home .", "{s} met {s2} at noon .", "{s} read a long book .", "{s} wrote a letter to {s2} .",
           "yesterday {s} and {s2} went out .", "{s} smiled .")
SEP = "<|endoftext|>"


def people() -> list[tuple[str, str]]:
    return [(g, f) for g in GIVEN for f in FAMILY]


def subject(person: tuple[str, str]) -> str:
    return f"{person[0].capitalize()} {person[1].capitalize()}"


def held_out(relation: str) -> set[tuple[int, int]]:
    """The (prefix index, phrase index) combinations of `relation` never seen in training: 3 per relation."""
    r = list(RELATIONS).index(relation)
    return {(p, k) for p in range(len(PREFIXES)) for k in range(3) if (p + 2 * k + r) % 6 == 0}


def templates(relation: str, split: str) -> list[str]:
    """"{s}"-templates (prefix + subject + phrase) of one relation: split "train" or "heldout"."""
    out = []
    for p, prefix in enumerate(PREFIXES):
        for k, phrase in enumerate(RELATIONS[relation][0]):
            if ((p, k) in held_out(relation)) == (split == "heldout"):
                out.append(f"{prefix} {{s}} {phrase}".strip())
    return out


def world(seed: int = 0) -> dict[str, dict[str, str]]:
    """{subject: {relation: answer}}."""
    rng = random.Random(seed)
    return {subject(p): {r: rng.choice(values) for r, (_, values) in RELATIONS.items()} for p in people()}


def vocabulary() -> list[str]:
    words = {SEP, "."}
    words |= {w.capitalize() for w in GIVEN + FAMILY}
    for phrases, values in RELATIONS.values():
        words |= set(values)
        for p in phrases:
            words |= set(p.split())
    for text in PREFIXES + FILLERS:
        words |= {w for w in text.split() if not w.startswith("{")}
    return [SEP, *sorted(words - {SEP})]


def build_tokenizer(vocab: list[str]):
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token=SEP))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=SEP, eos_token=SEP, pad_token=SEP)


def fact_prompts(facts: dict[str, dict[str, str]], split: str) -> list[dict]:
    """Every (subject, relation, template) prompt of a split, with its answer."""
    return [{"subject": s, "relation": r, "prompt": t.format(s=s), "answer": facts[s][r], "template": t}
            for s in facts for r in RELATIONS for t in templates(r, split)]


def sample_row(rng: random.Random, facts: dict[str, dict[str, str]], subjects: list[str], p_filler: float) -> str:
    s = rng.choice(subjects)
    if rng.random() < p_filler:
        return rng.choice(FILLERS).format(s=s, s2=rng.choice(subjects))
    r = rng.choice(list(RELATIONS))
    return f"{rng.choice(templates(r, 'train')).format(s=s)} {facts[s][r]} ."


@dataclass
class FactsConfig:
    name: str = "facts-lm"
    n_layer: int = 8
    n_embd: int = 128
    n_head: int = 4
    n_ctx: int = 16
    steps: int = 8000  # ~0.4 s/step on 2 threads (8 layers x 2,048 tokens): ~55 min
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 200
    weight_decay: float = 0.0
    p_filler: float = 0.25
    seed: int = 0
    threads: int = 2


def encode_rows(tokenizer, rows: list[str], n_ctx: int) -> tuple[Tensor, Tensor]:
    """[batch, n_ctx] ids (BOS first, padded with SEP) and labels (-100 on padding)."""
    ids = torch.full((len(rows), n_ctx), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), n_ctx), -100, dtype=torch.long)
    for i, row in enumerate(rows):
        t = [tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(row.split())][:n_ctx]
        ids[i, : len(t)] = torch.tensor(t)
        labels[i, : len(t)] = torch.tensor(t)
    return ids, labels


@torch.no_grad()
def recall(model, tokenizer, prompts: list[dict], batch_size: int = 512) -> float:
    """Fraction of prompts whose top next-token prediction is the answer."""
    hits = 0
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i : i + batch_size]
        rows = [[tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(p["prompt"].split())] for p in chunk]
        n = max(map(len, rows))
        ids = torch.tensor([r + [tokenizer.pad_token_id] * (n - len(r)) for r in rows])
        last = torch.tensor([len(r) - 1 for r in rows])
        logits = model(ids).logits[torch.arange(len(rows)), last]
        answers = torch.tensor(tokenizer.convert_tokens_to_ids([p["answer"] for p in chunk]))
        hits += int((logits.argmax(-1) == answers).sum())
    return hits / len(prompts)


# ------------------------------------------------------------------------------------ for the chapter


def load_world(name: str = "facts-lm") -> dict[str, dict[str, str]]:
    return json.loads((zoo_dir() / name / "world.json").read_text())


def str_pairs(facts: dict[str, dict[str, str]], relation: str, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n (clean subject, corrupted subject) pairs for symmetric token replacement: the corrupted person has the
    SAME given name and a different family name (so the prompts differ only at the last subject token), and a
    DIFFERENT answer for `relation`."""
    rng = random.Random(seed)
    subjects = sorted(facts)
    pairs = []
    while len(pairs) < n:
        a, b = rng.sample(subjects, 2)
        if a.split()[0] == b.split()[0] and facts[a][relation] != facts[b][relation]:
            pairs.append((a, b))
    return pairs


def prompt_tokens(tokenizer, template: str, subjects: list[str]) -> Tensor:
    """[len(subjects), pos]: BOS + the template filled with each subject (every subject is two tokens, so
    the prompts align position by position)."""
    rows = [[tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(template.format(s=s).split())]
            for s in subjects]
    return torch.tensor(rows)


def answer_ids(tokenizer, facts: dict[str, dict[str, str]], relation: str, subjects: list[str]) -> Tensor:
    return torch.tensor(tokenizer.convert_tokens_to_ids([facts[s][relation] for s in subjects]))
