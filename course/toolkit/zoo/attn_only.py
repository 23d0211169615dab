"""Recipes `attn-only-1l` and `attn-only-2l` (chapter 03): attention-only transformers trained on repeated random
token segments, the smallest setting in which induction heads form (Olsson et al. 2022) — and, in one layer, do
not."""

from __future__ import annotations

import platform
import random
from dataclasses import asdict
from pathlib import Path

import torch
from mechinterp.course.toolkit.data import induction_segments_batch
from mechinterp.course.toolkit.zoo.load import make_attn_only
from mechinterp.course.toolkit.zoo.measure import measure_induction
from mechinterp.course.toolkit.zoo.train import (
    Run,
    TrainConfig,
    adamw,
    generator_state,
    lm_loss,
    save_zoo_entry,
    train_loop,
)
from transformers import GPT2LMHeadModel

RECIPES = {
    # a pilot run of 2l had formed its induction heads (scores 0.89-0.95) by step 4,000: 6,000 steps suffice
    "attn-only-1l": TrainConfig("attn-only-1l", 1, 64, 4, 64, 64, True, False, 6_000, 64, 1e-3, 100, 0.0, 0,
                                threads=1, cosine=False),
    "attn-only-2l": TrainConfig("attn-only-2l", 2, 64, 4, 64, 64, True, False, 6_000, 64, 1e-3, 100, 0.0, 0,
                                threads=1, cosine=False),
}


def train_attn_only(cfg: TrainConfig, out: Path, log=print) -> dict:
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    model = make_attn_only(GPT2LMHeadModel(cfg.gpt2_config()))
    gen = torch.Generator().manual_seed(cfg.seed)
    run = Run(cfg.name, cfg.steps, lambda: induction_segments_batch(cfg.batch_size, cfg.n_ctx, cfg.vocab_size, gen),
              lm_loss, cfg.schedule(), bf16=cfg.bf16, random_states={"data": generator_state(gen)})
    timing = train_loop(model, adamw(model, cfg.lr, cfg.weight_decay), run, out.with_suffix(".ckpt"), log)
    card = {"config": asdict(cfg), "train_seconds": timing["train_seconds"],
            "data": "induction_segments_batch (repeated random segments)", "metrics": measure_induction(model),
            "machine": f"{platform.machine()}, {cfg.threads} threads", "torch": torch.__version__}
    save_zoo_entry(model, out, card)
    return card
