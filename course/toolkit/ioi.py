"""Indirect-object identification (IOI) prompts for chapter 05, and the training data of the zoo's `ioi-lm`.

    ds = ioi_dataset(n=200, seed=0, split="heldout")       # BABA / ABBA prompts, balanced
    ds.prompts[0]  -> "then , ada and cato went to the market . cato gave a book to"
    ds.io, ds.s    -> the indirect object (the answer) and the subject, as single tokens
    abc = ds.abc(seed=1)                                    # the same templates with three different names

Every name is a single token of the word-level vocabulary. A prompt mentions the subject S twice and the indirect
object IO once; the next token is IO. "BABA" / "ABBA" say whether S or IO comes first in the opening clause. The
ABC distribution replaces the second subject mention by a third name, so no name is repeated: it keeps the
grammar and removes the information IO-vs-S rests on (the mean-ablation baseline of Wang et al. 2022).

Here S's second mention is always the final clause's subject, and `ioi-lm` learned exactly that: it suppresses the
final clause's subject, repeated or not. `toolkit.ioi_v2` is the data of the second model, `ioi-lm-v2`, where only
repetition marks S.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch
from mechinterp.course.toolkit.facts import build_tokenizer as word_level_tokenizer
from torch import Tensor

NAMES = ("ada", "bren", "cato", "dara", "elin", "fenn", "gala", "hale", "ivo", "jora", "kian", "lena", "milo",
         "nora", "otto", "pia", "quin", "rosa", "saul", "tova", "ugo", "vera", "wim", "xena", "yuri", "zola",
         "abel", "bea", "cole", "dina", "eli", "faye", "gus", "hana", "ike", "june", "kurt", "lia", "max", "nell")
HELDOUT_NAMES = NAMES[32:]  # never in a training split's prompts
PLACES = ("market", "school", "garden", "station", "river", "library", "harbour", "bakery", "temple", "forest")
OBJECTS = ("book", "drink", "letter", "ring", "basket", "lamp", "coin", "map", "flower", "knife")
# {A} {B}: the opening pair; {S}: the subject's second mention; {P} place, {O} object. The answer follows "to".
TEMPLATES = (
    "then , {A} and {B} went to the {P} . {S} gave a {O} to",
    "then , {A} and {B} had a long talk at the {P} . {S} gave a {O} to",
    "after the rain , {A} and {B} walked to the {P} . {S} handed a {O} to",
    "when {A} and {B} got to the {P} , {S} gave a {O} to",
    "while {A} and {B} were at the {P} , {S} passed the {O} to",
    "{A} and {B} found a {O} at the {P} . {S} gave it to",
    "friends {A} and {B} met at the {P} . {S} threw a {O} to",
    "at the {P} , {A} and {B} argued . later , {S} sent a {O} to",
    "{A} and {B} went to the {P} together . {S} showed the {O} to",
    "the day {A} and {B} visited the {P} , {S} brought a {O} to",
    "then , {A} and {B} left the {P} . {S} returned the {O} to",
    "{A} and {B} worked at the {P} . afterwards {S} offered a {O} to",
    "one morning {A} and {B} cleaned the {P} . {S} lent a {O} to",
    "{A} and {B} were hungry at the {P} , so {S} sold a {O} to",
    "near the {P} , {A} and {B} stopped . {S} tossed the {O} to",
)
HELDOUT_TEMPLATES = (
    "then , {A} and {B} rested by the {P} . {S} gave a {O} to",
    "once {A} and {B} reached the {P} , {S} handed the {O} to",
    "{A} and {B} sat in the {P} for an hour . {S} passed a {O} to",
)


@dataclass
class IOIDataset:
    prompts: list[str]
    io: list[str]
    s: list[str]
    order: list[str]  # "BABA" (S first) or "ABBA" (IO first) in the opening clause
    templates: list[str]
    fillers: list[dict] = field(default_factory=list)
    names: tuple[str, ...] = NAMES  # the pool the ABC distribution draws its third name from
    c: list[str] = field(default_factory=list)  # ABC only: the third name, in the second subject mention's slot

    def __len__(self) -> int:
        return len(self.prompts)

    def abc(self, seed: int = 1) -> IOIDataset:
        """The ABC distribution: each prompt's second subject mention replaced by a third name."""
        rng = random.Random(seed)
        prompts, third = [], []
        for t, io, s, f in zip(self.templates, self.io, self.s, self.fillers, strict=True):
            c = rng.choice([n for n in self.names if n not in (io, s, f.get("C"))])
            a, b = (io, s) if f["order"] == "ABBA" else (s, io)
            prompts.append(t.format(A=a, B=b, S=c, P=f["P"], O=f["O"], C=f.get("C", "")))
            third.append(c)
        return IOIDataset(prompts, list(self.io), list(self.s), list(self.order), list(self.templates),
                          list(self.fillers), self.names, third)


def ioi_dataset(n: int, seed: int = 0, split: str = "train", names: tuple[str, ...] | None = None) -> IOIDataset:
    """n IOI prompts, half BABA and half ABBA. split "train": training templates and names; "heldout": held-out
    templates AND held-out names; "heldout_names" / "heldout_templates": one of the two held out. `names`
    replaces the name pool (GPT-2 small uses its own single-token names; see `gpt2_names`)."""
    rng = random.Random(seed)
    if names is None:
        names = HELDOUT_NAMES if split in ("heldout", "heldout_names") else NAMES[:32]
    templates = HELDOUT_TEMPLATES if split in ("heldout", "heldout_templates") else TEMPLATES
    out = IOIDataset([], [], [], [], [], names=tuple(names))
    for i in range(n):
        io, s = rng.sample(names, 2)
        order = "ABBA" if i % 2 else "BABA"
        a, b = (io, s) if order == "ABBA" else (s, io)
        t = rng.choice(templates)
        fill = {"P": rng.choice(PLACES), "O": rng.choice(OBJECTS), "order": order}
        out.prompts.append(t.format(A=a, B=b, S=s, P=fill["P"], O=fill["O"]))
        out.io.append(io)
        out.s.append(s)
        out.order.append(order)
        out.templates.append(t)
        out.fillers.append(fill)
    return out


# ------------------------------------------------------------------------------------ the zoo's ioi-lm

SEP = "<|endoftext|>"
# Ordinary sentences about the same names (every name, held-out ones included). They also use the held-out
# templates' words, so a held-out template is new as a SENTENCE, not as a string of untrained tokens.
STORIES = (
    "{X} walked home .", "{X} read a {O} .", "{X} saw {Y} at the {P} .", "{X} and {Y} ate bread .",
    "{X} smiled at {Y} .", "{X} wrote to {Y} .", "the {O} was on the table .", "it was a cold day at the {P} .",
    "{X} said hello to {Y} .", "{X} rested by the {P} .", "{X} reached the {P} at noon .",
    "{X} sat in the {P} for an hour .", "{X} had a {ADJ} {O} .", "{X} and {Y} were friends .",
    "once , {X} was at the {P} .", "{X} was hungry .", "the {P} was quiet .",
)
# One name, mentioned twice: the second mention is predictable by copying. These teach every name (held-out
# ones too) to be copied, without ever being an IOI answer.
COPIES = (
    "{X} came home , and everyone said hello to {X} .",
    "this is {X} . we all like {X} .",
    "{X} lost a {O} . the {O} belonged to {X} .",
    "a letter came for {X} , so we gave it to {X} .",
)
# Inserted after the subject's second mention, so its distance from the end varies (no fixed-slot shortcut).
INSERTS = ("", "", "", "quietly", "then", "later", "soon", "happily", ", after a while ,", ", with a smile ,",
           ", without a word ,")
ADJECTIVES = ("", "", "small", "old", "new", "red")


def vocabulary() -> list[str]:
    words = {".", *NAMES, *PLACES, *OBJECTS}
    for text in (TEMPLATES + HELDOUT_TEMPLATES + STORIES + COPIES + INSERTS + ADJECTIVES + THIRD_BEFORE + THIRD_AFTER
                 + OPENERS_MAIN + OPENERS_SUB + PAIR_VERBS + LINKS_MAIN + FINAL_VERBS):
        words |= {w for w in text.split() if not w.startswith("{")}
    return [SEP, *sorted(words - {SEP})]


def _fill(text: str, rng: random.Random, names) -> str:
    x, y = rng.sample(names, 2)
    adj = rng.choice(ADJECTIVES)
    return text.format(X=x, Y=y, P=rng.choice(PLACES), O=rng.choice(OBJECTS), ADJ=adj).replace("  ", " ")


# A third name C around the second subject mention: before it ("C waved and S gave ...") the subject is no longer
# the first name after the opening clause; after it ("S , with C , gave ...") it is no longer the most recent
# name. Either way only REPETITION tells S apart.
THIRD_BEFORE = ("{C} waved and", "{C} smiled and", "{C} left and")
THIRD_AFTER = (", with {C} ,", ", a friend of {C} ,", ", who knew {C} ,")


# Clause parts that training IOI prompts are also composed from (beside TEMPLATES), so the model meets many
# sentence shapes. The held-out templates' opening clauses ("rested by", "reached", "sat in ... for an hour")
# are NOT among them: those appear only in story sentences.
OPENERS_MAIN = ("", "then ,", "after the rain ,", "one morning", "later ,", "that day ,", "friends", "at noon ,",
                "in the evening ,", "last week ,", "as usual ,", "by chance ,", "on a cold day ,")
OPENERS_SUB = ("when", "while", "after", "the day", "as soon as", "because", "since", "before")
PAIR_VERBS = ("went to the {P}", "had a long talk at the {P}", "walked to the {P}", "got to the {P}",
              "were at the {P}", "found a {O} at the {P}", "met at the {P}", "argued at the {P}", "visited the {P}",
              "left the {P}", "worked at the {P}", "cleaned the {P}", "were hungry at the {P}", "stopped near the {P}",
              "ate bread at the {P}", "waited at the {P}", "ran to the {P}", "sang at the {P}", "danced near the {P}",
              "looked for a {O} at the {P}", "came back from the {P}", "painted the {P}", "talked at the {P}",
              "were tired at the {P}", "laughed at the {P}", "slept near the {P}", "played by the {P}",
              "lost a {O} at the {P}", "bought a {O} at the {P}", "read at the {P} all day", "were late to the {P}",
              "swam in the {P}", "hid behind the {P}", "opened the {P}", "walked home from the {P}",
              "spent the day at the {P}")
HELDOUT_CLAUSES = ("rested by the {P}", "reached the {P}", "sat in the {P} for an hour")  # the held-out templates'
LINKS_MAIN = (" .", " . later ,", " . afterwards", " , so", " . then", " . soon", " , and then", " . after that ,")
FINAL_VERBS = ("gave a {O} to", "handed a {O} to", "passed the {O} to", "threw a {O} to", "sent a {O} to",
               "showed the {O} to", "brought a {O} to", "returned the {O} to", "offered a {O} to", "lent a {O} to",
               "sold a {O} to", "tossed the {O} to", "gave it to", "handed the {O} to", "passed a {O} to",
               "gave the {O} back to", "mailed a {O} to", "read a {O} to", "sold the {O} to", "sent it to")


def composed_template(rng: random.Random, heldout_clauses: bool = False) -> str:
    """A training template assembled from clause parts, never one of HELDOUT_TEMPLATES. heldout_clauses: the
    held-out templates' opening clauses may appear too (then a held-out template is an unseen COMBINATION)."""
    verbs = PAIR_VERBS + HELDOUT_CLAUSES if heldout_clauses else PAIR_VERBS
    while True:
        if rng.random() < 0.5:
            opener, link = rng.choice(OPENERS_MAIN), rng.choice(LINKS_MAIN)
        else:
            opener, link = rng.choice(OPENERS_SUB), " ,"
        t = f"{opener} {{A}} and {{B}} {rng.choice(verbs)}{link} {{S}} {rng.choice(FINAL_VERBS)}"
        t = " ".join(t.split())
        if t not in HELDOUT_TEMPLATES:
            return t


def training_ioi_sentence(rng: random.Random, p_third: float = 0.0, p_composed: float = 0.0,
                          heldout_clauses: bool = False) -> tuple[str, str]:
    """(prompt, answer): a training-split IOI prompt (a TEMPLATE, or with probability p_composed a composed one)
    with an insertion after S2 and an optional adjective; with probability p_third a third name C is mentioned
    just before or just after S2."""
    io, s = rng.sample(NAMES[:32], 2)
    a, b = (io, s) if rng.random() < 0.5 else (s, io)
    t = composed_template(rng, heldout_clauses) if p_composed and rng.random() < p_composed else rng.choice(TEMPLATES)
    head, tail = t.split("{S}")
    ins = rng.choice(INSERTS)
    tail = (" " + ins if ins else "") + tail.replace("{O}", (rng.choice(ADJECTIVES) + " {O}").strip())
    if p_third and rng.random() < p_third:
        c = rng.choice([n for n in NAMES[:32] if n not in (io, s)])
        if rng.random() < 0.5:
            head += rng.choice(THIRD_BEFORE).format(C=c) + " "
        else:
            tail = " " + rng.choice(THIRD_AFTER).format(C=c) + tail
    text = (head + "{S}" + tail).format(A=a, B=b, S=s, P=rng.choice(PLACES), O=rng.choice(OBJECTS))
    return " ".join(text.split()).replace(", ,", ","), io


def training_row(rng: random.Random, p_ioi: float = 0.6, p_third: float = 0.0, p_composed: float = 0.0,
                 heldout_clauses: bool = False) -> tuple[list[str], int]:
    """One training row as words, and the index of the IOI answer word in it (-1 for rows without one): with
    probability p_ioi, 0-2 story sentences then an IOI prompt and its answer; otherwise 2-4 sentences drawn from
    the stories and the copy sentences."""
    if rng.random() < p_ioi:
        words = [w for _ in range(rng.randint(0, 2)) for w in _fill(rng.choice(STORIES), rng, NAMES).split()]
        prompt, answer = training_ioi_sentence(rng, p_third, p_composed, heldout_clauses)
        words += prompt.split()
        return words + [answer, "."], len(words)
    words = []
    for _ in range(rng.randint(2, 4)):
        words += _fill(rng.choice(STORIES + COPIES), rng, NAMES).split()
    return words, -1


def build_tokenizer():
    return word_level_tokenizer(vocabulary())


def encode(tokenizer, prompts: list[str]):
    """[batch, pos] ids (BOS first, right-padded) and the index of each prompt's last token."""
    rows = [[tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(p.split())] for p in prompts]
    n = max(map(len, rows))
    ids = torch.tensor([r + [tokenizer.pad_token_id] * (n - len(r)) for r in rows])
    return ids, torch.tensor([len(r) - 1 for r in rows])


@torch.no_grad()
def ioi_metrics(model, tokenizer, ds: IOIDataset, batch_size: int = 500) -> dict:
    """Accuracy (logit of IO > logit of S) and mean logit difference IO - S at the final prompt token."""
    diffs = []
    for i in range(0, len(ds), batch_size):
        ids, last = encode(tokenizer, ds.prompts[i : i + batch_size])
        logits = model(ids).logits[torch.arange(len(ids)), last]
        io = torch.tensor(tokenizer.convert_tokens_to_ids(ds.io[i : i + batch_size]))
        s = torch.tensor(tokenizer.convert_tokens_to_ids(ds.s[i : i + batch_size]))
        diffs.append(logits.gather(1, io[:, None])[:, 0] - logits.gather(1, s[:, None])[:, 0])
    d = torch.cat(diffs)
    return {"accuracy": float((d > 0).float().mean()), "logit_diff": float(d.mean())}


@dataclass
class IOIConfig:
    name: str = "ioi-lm"
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 8
    n_ctx: int = 64
    attn_only: bool = True  # every computation is a head: circuits are sets of heads
    steps: int = 8000
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 200
    weight_decay: float = 0.01
    p_ioi: float = 0.6
    p_composed: float = 0.8  # share of IOI prompts composed from clause parts instead of TEMPLATES
    heldout_clauses: bool = True  # composed prompts may use the held-out templates' opening clauses
    p_third: float = 0.4  # share of IOI prompts with a third name next to S2 (see THIRD_BEFORE / THIRD_AFTER)
    answer_weight: float = 4.0  # the IOI answer token's weight in the (weighted mean) next-token loss
    seed: int = 0
    threads: int = 1


# ------------------------------------------------------------------------------------ prompts as model input

# Common English first names; `gpt2_names` keeps those GPT-2's tokenizer encodes as ONE token after a space.
GPT2_CANDIDATE_NAMES = (
    "Mary", "John", "Tom", "James", "Dan", "Sid", "Martin", "Amy", "Kate", "Paul", "Laura", "Anna", "Mark", "Sarah",
    "David", "Lisa", "Michael", "Emma", "Peter", "Alice", "Robert", "Susan", "Steve", "Jane", "Richard", "Helen",
    "George", "Linda", "Frank", "Rachel", "Brian", "Grace", "Kevin", "Julia", "Eric", "Claire", "Adam", "Lucy",
    "Jack", "Rose", "Henry", "Ruth", "Sam", "Joe", "Ben", "Max", "Carl", "Ann", "Bill", "Jim",
)


def gpt2_names(tokenizer, candidates: tuple[str, ...] = GPT2_CANDIDATE_NAMES) -> tuple[str, ...]:
    return tuple(n for n in candidates if len(tokenizer.encode(" " + n, add_special_tokens=False)) == 1)


def as_english(prompt: str) -> str:
    """The word-level prompt as ordinary text for a BPE model: sentences capitalised, no space before , or ."""
    words, out, start = prompt.split(), [], True
    for w in words:
        if w in (",", "."):
            out[-1] += w
        else:
            out.append(w.capitalize() if start else w)
        start = w == "."
    return " ".join(out)


@dataclass
class IOIBatch:
    """Prompts as token ids, right-padded, with the positions the circuit is described by (one per prompt)."""
    tokens: Tensor  # [batch, pos]
    io: Tensor  # [batch] token id of the indirect object (the answer)
    s: Tensor  # [batch] token id of the subject
    io_pos: Tensor  # [batch] position of the IO mention
    s1_pos: Tensor  # [batch] first subject mention
    s2_pos: Tensor  # [batch] second subject mention
    end: Tensor  # [batch] the final prompt token, whose next-token prediction is the answer
    groups: Tensor  # [batch] prompts with the same group id share template and length (position by position)

    def __len__(self) -> int:
        return len(self.tokens)


def encode_ioi(model, ds: IOIDataset, english: bool | None = None) -> IOIBatch:
    """Tokenize `ds` for `model` (a HookedModel). english=None: ordinary text for BPE models (GPT-2), the
    word-level prompt as it is for the zoo's ioi-lm. For an ABC dataset, s2_pos is the third name's position
    (the slot of the second subject mention)."""
    tok = model.tokenizer
    if english is None:
        english = "gpt2" in model.name
    space = " " if english else ""
    def one_token(name: str) -> int:
        ids = tok.encode(space + (name.capitalize() if english else name), add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"names must be single tokens for {model.name}: {name!r} -> {ids}")
        return ids[0]

    rows, io, s, io_pos, s1, s2, keys = [], [], [], [], [], [], []
    for i, (prompt, a, b, t) in enumerate(zip(ds.prompts, ds.io, ds.s, ds.templates, strict=True)):
        text = as_english(prompt) if english else prompt
        if english and prompt.split()[0] in (a, b):  # BPE: "Mary" and " Mary" differ; every name gets its space
            text = " " + text
        ids = [model.cfg.bos_token_id, *tok.encode(text, add_special_tokens=False)]
        io_id, s_id = one_token(a), one_token(b)
        s_like = {s_id, one_token(ds.c[i])} if ds.c else {s_id}
        where_s = [j for j, x in enumerate(ids) if x in s_like]
        where_io = [j for j, x in enumerate(ids) if x == io_id]
        if len(where_s) != 2 or len(where_io) != 1:
            raise ValueError(f"expected S twice (or S and C) and IO once in {text!r}")
        rows.append(ids)
        io.append(io_id)
        s.append(s_id)
        io_pos.append(where_io[0])
        s1.append(where_s[0])
        s2.append(where_s[1])
        keys.append((t, len(ids)))
    n = max(map(len, rows))
    pad = tok.pad_token_id if tok.pad_token_id is not None else model.cfg.eos_token_id
    tokens = torch.tensor([r + [pad] * (n - len(r)) for r in rows])
    group_of = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    t = torch.tensor
    return IOIBatch(tokens.to(model.device), t(io), t(s), t(io_pos), t(s1), t(s2), t([len(r) - 1 for r in rows]),
                    t([group_of[k] for k in keys]))
