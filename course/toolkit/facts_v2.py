"""The zoo's `facts-lm-v2`: the facts world of `facts-lm`, with rows that make the LAST SUBJECT TOKEN worth
enriching (chapter 08).

Same 128 people (GIVEN x FAMILY: only the pair identifies a person), same five attributes, same statement
templates and held-out paraphrases as `facts-lm`. What changes is what the model has to predict:

- **profile rows** "Given Family v1 v2 v3 v4 v5 ." list the person's five attribute values in a random order
  straight after the name, so the position of the family name must predict *every* attribute of the person: the
  cheap solution is to look the person up once, at the last subject token, and write all five attributes into the
  residual stream there (what Geva et al. 2023 call subject enrichment);
- **statement rows** as in `facts-lm` ("[prefix] Given Family <relation phrase> answer .");
- **back-reference rows** "Given Family <filler> . they <relation phrase> answer .": the question is asked far
  from the name, through a pronoun, so the answer has to be fetched from the subject's position;
- filler rows that mention people without facts.

`facts-lm` (statement and filler rows only) looks facts up at the final token instead; the two models side by
side are chapter 08's contrast.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mechinterp.course.toolkit.facts import FILLERS, RELATIONS, SEP, FactsConfig, templates, vocabulary

ASIDES = ("came home", "had a long day", "was here at noon", "met a friend", "read a book", "went out early",
          "wrote a letter", "smiled")


@dataclass
class FactsV2Config(FactsConfig):
    name: str = "facts-lm-v2"
    n_ctx: int = 20
    steps: int = 6000  # ~0.4 s/step on one thread of a shared machine: ~40 min
    p_profile: float = 0.35
    p_back: float = 0.15
    p_filler: float = 0.1
    threads: int = 1


def vocabulary_v2() -> list[str]:
    words = set(vocabulary()) | {"they"} | {w for a in ASIDES for w in a.split()}
    return [SEP, *sorted(words - {SEP})]


def sample_row_v2(rng: random.Random, facts: dict[str, dict[str, str]], subjects: list[str],
                  cfg: FactsV2Config) -> str:
    s = rng.choice(subjects)
    u = rng.random()
    if u < cfg.p_profile:
        values = [facts[s][r] for r in RELATIONS]
        rng.shuffle(values)
        return f"{s} {' '.join(values)} ."
    r = rng.choice(list(RELATIONS))
    if u < cfg.p_profile + cfg.p_back:
        phrase = rng.choice(templates(r, "train")).split("{s}")[-1].strip()
        return f"{s} {rng.choice(ASIDES)} . they {phrase} {facts[s][r]} ."
    if u < cfg.p_profile + cfg.p_back + cfg.p_filler:
        return rng.choice(FILLERS).format(s=s, s2=rng.choice(subjects))
    return f"{rng.choice(templates(r, 'train')).format(s=s)} {facts[s][r]} ."
