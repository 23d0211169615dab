"""Indirect-object identification (IOI) prompts for chapter 05 (and the training data of the zoo's future `ioi-lm`).

    ds = ioi_dataset(n=200, seed=0, split="heldout")       # BABA / ABBA prompts, balanced
    ds.prompts[0]  -> "then , ada and cato went to the market . cato gave a book to"
    ds.io, ds.s    -> the indirect object (the answer) and the subject, as single tokens
    abc = ds.abc(seed=1)                                    # the same templates with three different names

Every name is a single token of the word-level vocabulary. A prompt mentions the subject S twice and the indirect
object IO once; the next token is IO. "BABA" / "ABBA" say whether S or IO comes first in the opening clause. The
ABC distribution replaces the second subject mention by a third name, so no name is repeated: it keeps the
grammar and removes the information IO-vs-S rests on (the mean-ablation baseline of Wang et al. 2022).

A pilot trained on fixed-shape IOI sentences learned a SYNTACTIC shortcut (the answer is the name that is not in
the second subject mention's fixed slot). The zoo's `ioi-lm` (chapter 05, not trained yet) must therefore see IOI
prompts whose repeated name sits at varying distances from the end, mixed with ordinary sentences about the same
names, so that detecting the duplicated name is the reliable cue.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

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

    def __len__(self) -> int:
        return len(self.prompts)

    def abc(self, seed: int = 1) -> IOIDataset:
        """The ABC distribution: each prompt's second subject mention replaced by a third name."""
        rng = random.Random(seed)
        prompts = []
        for t, io, s, f in zip(self.templates, self.io, self.s, self.fillers, strict=True):
            c = rng.choice([n for n in NAMES if n not in (io, s)])
            a, b = (io, s) if f["order"] == "ABBA" else (s, io)
            prompts.append(t.format(A=a, B=b, S=c, P=f["P"], O=f["O"]))
        return IOIDataset(prompts, list(self.io), list(self.s), list(self.order), list(self.templates),
                          list(self.fillers))


def ioi_dataset(n: int, seed: int = 0, split: str = "train") -> IOIDataset:
    """n IOI prompts, half BABA and half ABBA. split "train": training templates and names; "heldout": held-out
    templates AND held-out names; "heldout_names" / "heldout_templates": one of the two held out."""
    rng = random.Random(seed)
    names = HELDOUT_NAMES if split in ("heldout", "heldout_names") else NAMES[:32]
    templates = HELDOUT_TEMPLATES if split in ("heldout", "heldout_templates") else TEMPLATES
    out = IOIDataset([], [], [], [], [])
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
