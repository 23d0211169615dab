"""Recipes `ioi-lm` and `ioi-lm-v2` (chapter 05): attention-only GPT-2s trained on indirect-object-identification
prompts among other text (`toolkit.ioi`; v2's rows and splits `toolkit.ioi_v2`), with a weighted next-token loss
that counts the IOI answer token `answer_weight` times."""

from __future__ import annotations

import platform
import random
from dataclasses import asdict
from pathlib import Path

import torch
from mechinterp.course.toolkit.facts import encode_rows
from mechinterp.course.toolkit.ioi import IOIConfig, build_tokenizer, ioi_dataset, ioi_metrics, training_row
from mechinterp.course.toolkit.ioi_v2 import IOIV2Config, ioi_v2_dataset
from mechinterp.course.toolkit.ioi_v2 import build_tokenizer as build_tokenizer_v2
from mechinterp.course.toolkit.ioi_v2 import training_row as training_row_v2
from mechinterp.course.toolkit.zoo.load import make_attn_only
from mechinterp.course.toolkit.zoo.train import (
    Run,
    Schedule,
    adamw,
    gpt2_config,
    python_random_state,
    save_zoo_entry,
    train_loop,
)
from transformers import GPT2LMHeadModel


def _v1_row(rng: random.Random, cfg: IOIConfig) -> tuple[list[str], int]:
    return training_row(rng, cfg.p_ioi, cfg.p_third, cfg.p_composed, cfg.heldout_clauses)


def training_batch(tokenizer, rng: random.Random, cfg: IOIConfig, row=_v1_row):
    """(ids, labels, weights), right-padded to the longest row; labels -100 on padding. row(rng, cfg) -> (words,
    index of the IOI answer word or -1)."""
    rows = [row(rng, cfg) for _ in range(cfg.batch_size)]
    n = min(cfg.n_ctx, 1 + max(len(w) for w, _ in rows))
    ids, labels = encode_rows(tokenizer, [" ".join(words) for words, _ in rows], n)
    weights = torch.ones(len(rows), n)
    for i, (_, answer) in enumerate(rows):
        if 0 <= answer < n - 1:
            weights[i, answer + 1] = cfg.answer_weight  # position of the answer token (after BOS)
    return ids, labels, weights


def weighted_lm_loss(logits, labels, weights):
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), reduction="none",
                                           ignore_index=-100)
    w = weights[:, 1:].flatten() * (labels[:, 1:].flatten() != -100)
    return (ce * w).sum() / w.sum()


def ioi_recipe():
    """ioi-lm's data: (tokenizer, row function, {probe name: IOIDataset}, {final split: IOIDataset}, card notes)."""
    return (build_tokenizer(), _v1_row,
            {"train": ioi_dataset(500, seed=101, split="train"),
             "heldout": ioi_dataset(500, seed=102, split="heldout")},
            {split: ioi_dataset(2000, seed=7, split=split)
             for split in ("train", "heldout_names", "heldout_templates", "heldout")}, {})


def ioi_v2_recipe(cfg: IOIV2Config):
    """ioi-lm-v2's data, in `ioi_recipe`'s form."""
    probes = {"heldout": ioi_v2_dataset(500, seed=102, split="heldout"),
              "decoupled": ioi_v2_dataset(500, seed=103, split="heldout", kind="decoupled")}
    finals = {split: ioi_v2_dataset(2000, seed=7, split=split)
              for split in ("train", "heldout_names", "heldout_templates", "heldout")}
    finals["heldout_decoupled"] = ioi_v2_dataset(2000, seed=8, split="heldout", kind="decoupled")
    finals["heldout_classic"] = ioi_v2_dataset(2000, seed=9, split="heldout_names", kind="classic")
    return build_tokenizer_v2(), training_row_v2, probes, finals, {"recipe": "toolkit.ioi_v2"}


def train_ioi_lm(cfg: IOIConfig, out: Path, log=print, eval_every: int = 250, recipe=None) -> dict:
    """Train an IOI model. recipe: `ioi_recipe()`'s form; None: ioi-lm's own."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    tokenizer, row, probes, finals, extra = recipe if recipe is not None else ioi_recipe()
    model = GPT2LMHeadModel(gpt2_config(len(tokenizer), cfg.n_ctx, cfg.n_embd, cfg.n_layer, cfg.n_head,
                                        attn_only=cfg.attn_only))
    if cfg.attn_only:
        make_attn_only(model)
    opt = adamw(model, cfg.lr, cfg.weight_decay)
    rng = random.Random(cfg.seed)
    history: list[dict] = []

    def evaluate(step: int, loss: float) -> str:
        m = {k: ioi_metrics(model, tokenizer, v) for k, v in probes.items()}
        history.append({"step": step, "loss": round(loss, 4),
                        **{f"{k}_{q}": round(v[q], 3) for k, v in m.items() for q in v}})
        return str(history[-1])

    run = Run(cfg.name, cfg.steps, batch=lambda: training_batch(tokenizer, rng, cfg, row),
              loss=lambda model, batch: weighted_lm_loss(model(batch[0]).logits, batch[1], batch[2]),
              schedule=Schedule(cfg.lr, cfg.steps, cfg.warmup, overlap=True), log_every=eval_every,
              checkpoint_every=500, evaluate=evaluate, random_states={"rows": python_random_state(rng)},
              history=history)
    timing = train_loop(model, opt, run, out.with_suffix(".ckpt"), log)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    metrics = {split: ioi_metrics(model, tokenizer, ds) for split, ds in finals.items()}
    card = {"config": {**asdict(cfg), "vocab_size": len(tokenizer), "tie_word_embeddings": True, "bf16": False,
                       "cosine": True},
            "train_seconds": timing["train_seconds"], "metrics": metrics, "history": timing["history"],
            "machine": f"{platform.machine()}, {cfg.threads} threads", "torch": torch.__version__, **extra}
    save_zoo_entry(model, out, card)  # weights, config, card.json (+ sha256), MODEL_CARD.md; drops the checkpoint
    return card


def train_ioi_lm_v2(cfg: IOIV2Config, out: Path, log=print) -> dict:
    return train_ioi_lm(cfg, out, log, recipe=ioi_v2_recipe(cfg))
