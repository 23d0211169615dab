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
import platform
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

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
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

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


def train_facts(cfg: FactsConfig, out: Path, log=print, vocab: list[str] | None = None, sample=None) -> dict:
    """Train a facts model. `vocab` and `sample(rng, facts, subjects)` (one training row) default to this
    module's; `facts_v2` passes its own rows."""
    from mechinterp.course.toolkit.model_card import write_model_card
    from mechinterp.course.toolkit.zoo import sha256
    from safetensors.torch import save_file
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    facts = world(cfg.seed)
    vocab = vocab or vocabulary()
    sample = sample or (lambda rng, facts, subjects: sample_row(rng, facts, subjects, cfg.p_filler))
    tokenizer = build_tokenizer(vocab)
    config = GPT2Config(vocab_size=len(vocab), n_positions=cfg.n_ctx, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
                        n_head=cfg.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0,
                        eos_token_id=0, tie_word_embeddings=True)
    model = GPT2LMHeadModel(config)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    ckpt = out.with_suffix(".ckpt")
    rng = random.Random(cfg.seed)
    start, elapsed = 0, 0.0
    if (ckpt / "state.pt").exists():
        state = torch.load(ckpt / "state.pt", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start, elapsed = state["step"], state["elapsed"]
        rng.setstate(state["rng"])
        log(f"resumed at step {start}")
    subjects = sorted(facts)
    train_prompts = fact_prompts(facts, "train")
    held_prompts = fact_prompts(facts, "heldout")
    probe = random.Random(1).sample(train_prompts, 1000)
    t0 = time.perf_counter()
    model.train()
    for step in range(start, cfg.steps):
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * (0.1 + 0.9 * 0.5 * (1 + torch.cos(
            torch.tensor(torch.pi * step / cfg.steps)).item()))
        for g in opt.param_groups:
            g["lr"] = lr
        ids, labels = encode_rows(tokenizer, [sample(rng, facts, subjects) for _ in range(cfg.batch_size)],
                                  cfg.n_ctx)
        loss = model(ids, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 250 == 0 or step == cfg.steps - 1:
            model.eval()
            log(f"step {step} loss {loss.item():.4f} lr {lr:.2e} train recall {recall(model, tokenizer, probe):.3f} "
                f"elapsed {elapsed + time.perf_counter() - t0:.0f}s")
            model.train()
        if (step + 1) % 500 == 0 and step + 1 < cfg.steps:
            ckpt.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step + 1,
                        "elapsed": elapsed + time.perf_counter() - t0, "rng": rng.getstate()}, ckpt / "state.pt")
    model.eval()
    seconds = elapsed + time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, out / "model.safetensors")
    model.config.to_json_file(out / "config.json")
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    (out / "world.json").write_text(json.dumps(facts, indent=1, sort_keys=True) + "\n")
    per_relation = {r: recall(model, tokenizer, [p for p in held_prompts if p["relation"] == r]) for r in RELATIONS}
    card = {"config": {**asdict(cfg), "vocab_size": len(vocab), "attn_only": False, "tie_word_embeddings": True,
                       "bf16": False, "cosine": True},
            "train_seconds": round(seconds, 1),
            "metrics": {"train_template_recall": recall(model, tokenizer, train_prompts),
                        "heldout_paraphrase_recall": recall(model, tokenizer, held_prompts),
                        "heldout_recall_by_relation": per_relation,
                        "n_facts": len(facts) * len(RELATIONS), "n_train_prompts": len(train_prompts),
                        "n_heldout_prompts": len(held_prompts)},
            "sha256": sha256(out / "model.safetensors"),
            "machine": f"{platform.machine()}, {cfg.threads} threads", "torch": torch.__version__}
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    write_model_card(out)
    shutil.rmtree(ckpt, ignore_errors=True)
    return card


# ------------------------------------------------------------------------------------ for the chapter


def load_world(name: str = "facts-lm") -> dict[str, dict[str, str]]:
    from mechinterp.course.toolkit.zoo import zoo_dir

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
