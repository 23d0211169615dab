"""IOI prompts where REPETITION, not position, marks the name to avoid: the data of the zoo's `ioi-lm-v2`.

    ds = ioi_v2_dataset(n=200, seed=0, split="heldout")            # every mention form
    ds = ioi_v2_dataset(n=200, seed=0, split="heldout", kind="decoupled")   # a third name is the final subject

Every prompt opens with a SETUP clause naming A and B once each. One of them, S, is mentioned once more, in a
varied slot: the final clause's subject ("S gave a ring to"), a sentence of its own ("S waved . then the man gave
a ring to"), an object ("C smiled at S and gave a ring to"), after a preposition ("with S , he gave ..."), a
possessive ("S 's friend gave ..."). The final clause's subject is S, a pronoun, a noun phrase or a third name C.
The answer is always the setup name that occurred once (IO). So neither "the final clause's subject" nor "the
most recent name" nor any fixed offset identifies S: only its repetition does. (`toolkit.ioi` is the first
model's data, where S2 was always the final clause's subject, and `ioi-lm` learned exactly that.)

Held out (never in a training IOI prompt): 8 names (they appear in story and copy sentences only), and 3
MENTION forms (`HELDOUT_MENTIONS`: the slot that carries S's second mention) — their words appear in story
sentences, so a held-out form is a new sentence shape, not new tokens.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mechinterp.course.toolkit.facts import build_tokenizer as word_level_tokenizer
from mechinterp.course.toolkit.ioi import (
    ADJECTIVES,
    COPIES,
    FINAL_VERBS,
    HELDOUT_NAMES,
    NAMES,
    OBJECTS,
    OPENERS_MAIN,
    PAIR_VERBS,
    PLACES,
    SEP,
    STORIES,
    IOIConfig,
    IOIDataset,
)
from mechinterp.course.toolkit.ioi import vocabulary as v1_vocabulary

TRAIN_NAMES = NAMES[:32]
# Opening clauses that name A and B once each ({A} first). Symmetric pairs come from ioi.py's clause parts.
SETUPS = ("{A} met {B} at the {P} .", "{A} saw {B} near the {P} .", "{A} waited for {B} at the {P} .",
          "at the {P} , {A} talked with {B} .", "{A} ran into {B} at the {P} .", "{A} called {B} from the {P} .")
# Who does the giving when it is not S.
SUBJECTS = ("he", "she", "the man", "the woman", "the teacher", "the boy", "the girl", "the baker")
# Where S's second mention sits. {F}: the final verb phrase ("gave a {O} to"); {Z}: the final clause's subject
# when it is not S (a pronoun, a noun phrase or a third name {C}).
MENTIONS = (
    "{S} {F}",                                  # the classic IOI shape: S is the final clause's subject
    "{S} {I} {F}",                              # ... after an insertion
    "{S} waved . {Z} {F}",                      # a sentence of its own
    "{S} was tired . then {Z} {F}",
    "{S} left early , so {Z} {F}",
    "{Z} smiled at {S} and {F}",                # object
    "{Z} looked at {S} , then {F}",
    "with {S} , {Z} {F}",                       # after a preposition
    "{Z} , who knew {S} , {F}",
    "{S} 's friend {F}",                        # possessive
    "{Z} stood next to {S} . {Z2} {F}",         # the final subject repeats Z (a pronoun or noun, never a name)
)
HELDOUT_MENTIONS = (
    "{Z} took {S} 's bag and {F}",
    "after {S} sat down , {Z} {F}",
    "{Z} thanked {S} and {F}",
)
INSERTIONS = ("quietly", "then", "later", "soon", ", after a while ,", ", with a smile ,")
# Story sentences that carry the held-out forms' words (never with an IOI answer after them).
STORIES_V2 = STORIES + ("{X} took {Y} 's bag .", "after {X} sat down , {Y} smiled .", "{X} thanked {Y} .",
                        "{X} waved .", "{X} stood next to {Y} .", "the teacher looked at {X} .",
                        "the baker smiled at {X} .", "{X} 's friend was tired .")
# Training only (p_triple): a sentence that repeats the third setup name D before S's mention.
REPEATS = ("{D} waved .", "{D} was tired .", "{D} left early .", "{D} sat down .", "{D} smiled .")
# Training only (p_retrieval): pick ONE of several names by what goes with it. A general use for heads that
# attend from the final token to a name and copy it, whatever steers their query.
RETRIEVAL_ITEM = ("a {O} for {X}", "the {O} for {X}", "{X} 's {O}")
RETRIEVAL_ASK = ("the {O} was for", "the {O} belonged to", "so the {O} went back to")
NAME_FREE = ("it was a cold day at the {P} .", "the {P} was quiet .", "the {O} was on the table .",
             "it was late .", "nobody said a word .")


def vocabulary() -> list[str]:
    words = {".", ",", "'s", *NAMES, *PLACES, *OBJECTS}
    parts = (SETUPS + REPEATS + RETRIEVAL_ITEM + RETRIEVAL_ASK + SUBJECTS + MENTIONS + HELDOUT_MENTIONS
             + INSERTIONS + STORIES_V2 + NAME_FREE + COPIES + ADJECTIVES + OPENERS_MAIN + PAIR_VERBS + FINAL_VERBS)
    for text in parts:
        words |= {w for w in text.split() if not w.startswith("{")}
    return [SEP, *sorted(words - {SEP})]


def build_tokenizer():
    return word_level_tokenizer(vocabulary())


def _setup(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(SETUPS)
    opener = rng.choice(OPENERS_MAIN)
    return " ".join(f"{opener} {{A}} and {{B}} {rng.choice(PAIR_VERBS)} .".split())


def is_coupled(mention: str) -> bool:
    """True when S's second mention is the final clause's subject (the shape ioi-lm was trained on)."""
    return mention.startswith("{S} {F}") or mention.startswith("{S} {I}")


@dataclass
class V2Prompt:
    template: str  # with {A} {B} {S} {C} {P} {O} slots (C unused when no third name)
    io: str
    s: str
    order: str
    fill: dict


def sample_prompt(rng: random.Random, split: str = "train", kind: str = "all", p_third: float = 0.4,
                  triple: bool = False) -> V2Prompt:
    """One prompt. split: "train" (training names and mention forms), "heldout" (held-out names AND mention
    forms), "heldout_names", "heldout_templates". kind: "all"; "classic" (S is the final subject); "decoupled"
    (S is NOT the final subject and a third name C is)."""
    names = HELDOUT_NAMES if split in ("heldout", "heldout_names") else TRAIN_NAMES
    forms = HELDOUT_MENTIONS if split in ("heldout", "heldout_templates") else MENTIONS
    if kind == "classic":
        forms = tuple(f for f in MENTIONS if is_coupled(f))
    elif kind == "decoupled":
        forms = tuple(f for f in forms if not is_coupled(f) and "{Z2}" not in f)
    mention = rng.choice(forms)
    third = kind == "decoupled" or ("{Z}" in mention and "{Z2}" not in mention and rng.random() < p_third)
    io, s, c = rng.sample(names, 3)
    order = rng.choice(("ABBA", "BABA"))
    z = rng.choice(SUBJECTS)
    final = rng.choice(FINAL_VERBS).replace("{O}", (rng.choice(ADJECTIVES) + " {O}").strip())
    body = mention.replace("{F}", final).replace("{I}", rng.choice(INSERTIONS))
    body = body.replace("{Z2}", z).replace("{Z}", "{C}" if third else z)
    template = " ".join(f"{_setup(rng)} {body}".split()).replace(", ,", ",")
    d = ""
    if triple:  # a third setup name D, repeated too: the answer is the only setup name that occurs once
        d = rng.choice([n for n in names if n not in (io, s, c)])
        opener = rng.choice(OPENERS_MAIN)
        trio = rng.sample(["{A}", "{B}", "{D}"], 3)
        setup = f"{opener} {trio[0]} , {trio[1]} and {trio[2]} {rng.choice(PAIR_VERBS)} ."
        template = " ".join(f"{setup} {rng.choice(REPEATS)} {body}".split()).replace(", ,", ",")
    fill = {"P": rng.choice(PLACES), "O": rng.choice(OBJECTS), "order": order, "C": c if third else "",
            "D": d}
    return V2Prompt(template, io, s, order, fill)


def render(p: V2Prompt, s2: str | None = None) -> str:
    a, b = (p.io, p.s) if p.order == "ABBA" else (p.s, p.io)
    head, tail = p.template.split("{S}", 1) if "{S}" in p.template else (p.template, "")
    slots = {"A": a, "B": b, "P": p.fill["P"], "O": p.fill["O"], "C": p.fill["C"], "D": p.fill.get("D", "")}
    head, tail = head.format(**slots), tail.format(**slots)
    return f"{head}{s2 or p.s}{tail}"


def ioi_v2_dataset(n: int, seed: int = 0, split: str = "train", kind: str = "all",
                   pool: int | None = None) -> IOIDataset:
    """n prompts as an `IOIDataset` (so `encode_ioi`, `ioi_metrics` and the ABC distribution work unchanged; a
    third name, where present, is in each prompt's `fillers["C"]` and the ABC name avoids it). pool: draw the
    prompts' sentence shapes from this many templates only (names, place and object still vary), so that
    (template, length) groups are large enough to average over for mean ablation."""
    rng = random.Random(seed)
    out = _empty(split)
    shapes = [sample_prompt(rng, split, kind) for _ in range(pool)] if pool else None
    names = out.names
    for _ in range(n):
        p = sample_prompt(rng, split, kind)
        if shapes:
            shape = rng.choice(shapes)
            io, s, c = rng.sample(names, 3)
            p = V2Prompt(shape.template, io, s, rng.choice(("ABBA", "BABA")),
                         {"P": rng.choice(PLACES), "O": rng.choice(OBJECTS), "order": "",
                          "C": c if shape.fill["C"] else ""})
            p.fill["order"] = p.order
        _add(out, p)
    return out


def _empty(split: str) -> IOIDataset:
    return IOIDataset([], [], [], [], [], names=HELDOUT_NAMES if split in ("heldout", "heldout_names")
                      else TRAIN_NAMES)


def _add(out: IOIDataset, p: V2Prompt) -> None:
    out.prompts.append(render(p))
    out.io.append(p.io)
    out.s.append(p.s)
    out.order.append(p.order)
    out.templates.append(p.template)
    out.fillers.append(p.fill)


def shared_decoupled(n: int, seed: int = 8, split: str = "heldout_names") -> IOIDataset:
    """Decoupled prompts (S's second mention is not the final subject; a third name is) whose every word both
    `ioi-lm`'s and `ioi-lm-v2`'s vocabularies hold, so that the two models are tested on the SAME prompts."""
    both = set(v1_vocabulary()) & set(vocabulary())
    rng = random.Random(seed)
    out = _empty(split)
    while len(out) < n:
        p = sample_prompt(rng, split, "decoupled")
        if all(w in both for w in render(p).split()):
            _add(out, p)
    return out


def _story(rng: random.Random, avoid: set[str]) -> list[str]:
    x, y = rng.sample([n for n in NAMES if n not in avoid], 2)
    text = rng.choice(STORIES_V2 + COPIES)
    return text.format(X=x, Y=y, P=rng.choice(PLACES), O=rng.choice(OBJECTS),
                       ADJ=rng.choice(ADJECTIVES)).split()


def training_row(rng: random.Random, cfg: IOIV2Config) -> tuple[list[str], int]:
    """One training row as words and the index of the IOI answer word (-1 if none): with probability p_ioi,
    0-1 story sentences about OTHER names, a prompt, its answer and "."; otherwise 2-4 story/copy sentences."""
    if rng.random() < cfg.p_ioi:
        p = sample_prompt(rng, "train", "all", cfg.p_third, triple=cfg.p_triple > 0 and rng.random() < cfg.p_triple)
        words = _story(rng, {p.io, p.s, p.fill["C"], p.fill["D"]}) if rng.random() < cfg.p_story else []
        words += render(p).split()
        return [*words, p.io, "."], len(words)
    if cfg.p_retrieval and rng.random() < cfg.p_retrieval:
        return retrieval_row(rng)
    words = []
    for _ in range(rng.randint(2, 4)):
        words += _story(rng, set()) if rng.random() < 0.8 else rng.choice(NAME_FREE).format(
            P=rng.choice(PLACES), O=rng.choice(OBJECTS)).split()
    return words, -1


def retrieval_row(rng: random.Random) -> tuple[list[str], int]:
    """'a ring for ada , a map for ivo and a lamp for cole . the map was for ivo .': 2-4 (object, name) pairs,
    then one object asked back; the answer is its name (any name, held-out ones included)."""
    k = rng.randint(2, 4)
    names, objects = rng.sample(NAMES, k), rng.sample(OBJECTS, k)
    form = rng.choice(RETRIEVAL_ITEM)
    items = [form.format(O=o, X=x) for o, x in zip(objects, names, strict=True)]
    listed = " , ".join(items[:-1]) + " and " + items[-1]
    i = rng.randrange(k)
    words = f"{listed} . {rng.choice(RETRIEVAL_ASK).format(O=objects[i])}".split()
    return [*words, names[i], "."], len(words)


@dataclass
class IOIV2Config(IOIConfig):
    name: str = "ioi-lm-v2"
    steps: int = 10000
    p_ioi: float = 0.6
    p_third: float = 0.4  # share of non-classic prompts whose final subject is a third name
    p_story: float = 0.3  # share of IOI rows opened by a story sentence about other names
    p_triple: float = 0.5  # share of IOI rows with THREE setup names, two of them repeated (0: design 1 failed)
    seed: int = 1
    p_retrieval: float = 0.0  # share of the other rows that retrieve a name by its object (`retrieval_row`)
