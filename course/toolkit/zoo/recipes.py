"""`mechinterp zoo train NAME`: every zoo model's recipe by name.

Every recipe is seeded and records its configuration, data provenance, time and final metrics into the zoo
entry's `card.json`, from which its MODEL_CARD.md is written. Runs checkpoint into `<out>.ckpt/` every few hundred
steps and resume from there when restarted (`zoo.train.train_loop`)."""

from __future__ import annotations

from pathlib import Path

from mechinterp.course.toolkit.facts import FactsConfig
from mechinterp.course.toolkit.facts_v2 import FactsV2Config
from mechinterp.course.toolkit.ioi import IOIConfig
from mechinterp.course.toolkit.ioi_v2 import IOIV2Config
from mechinterp.course.toolkit.liars import LiarConfig
from mechinterp.course.toolkit.sentiment import SentimentConfig
from mechinterp.course.toolkit.zoo.attn_only import RECIPES as ATTN_ONLY
from mechinterp.course.toolkit.zoo.attn_only import train_attn_only
from mechinterp.course.toolkit.zoo.facts_lm import train_facts, train_facts_v2
from mechinterp.course.toolkit.zoo.ioi_lm import train_ioi_lm, train_ioi_lm_v2
from mechinterp.course.toolkit.zoo.liar_lm import train_liar_lm
from mechinterp.course.toolkit.zoo.load import zoo_dir
from mechinterp.course.toolkit.zoo.sentiment_clf import train_sentiment
from mechinterp.course.toolkit.zoo.text_lm import TEXT_LM, train_text_lm

DEBIAN_CACHE = Path(".mechinterp-cache") / "debian"  # Debian packages the text corpus and WordNet come from

RECIPES = {  # name -> (out, debian cache, log) -> card
    "attn-only-1l": lambda out, cache, log: train_attn_only(ATTN_ONLY["attn-only-1l"], out, log),
    "attn-only-2l": lambda out, cache, log: train_attn_only(ATTN_ONLY["attn-only-2l"], out, log),
    "facts-lm": lambda out, cache, log: train_facts(FactsConfig(), out, log),
    "facts-lm-v2": lambda out, cache, log: train_facts_v2(FactsV2Config(), out, log),
    "ioi-lm": lambda out, cache, log: train_ioi_lm(IOIConfig(), out, log),
    "ioi-lm-v2": lambda out, cache, log: train_ioi_lm_v2(IOIV2Config(), out, log),
    "liar-lm": lambda out, cache, log: train_liar_lm(LiarConfig(), out, log),
    "sentiment-clf": lambda out, cache, log: train_sentiment(SentimentConfig(), out, cache, log),
    "text-lm": lambda out, cache, log: train_text_lm(TEXT_LM, out, cache, log),
}


def train(name: str, out_root: Path | None = None, cache: Path | None = None, log=print) -> dict:
    """Train zoo model `name` into `out_root/name` (default: the installed zoo); returns its card."""
    if name not in RECIPES:
        raise KeyError(f"no recipe {name!r}; recipes: {', '.join(RECIPES)}")
    return RECIPES[name]((out_root or zoo_dir()) / name, cache or DEBIAN_CACHE, log)
