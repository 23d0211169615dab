"""Recipes `facts-lm` and `facts-lm-v2` (chapters 04 and 08): GPT-2s that store facts about a synthetic world
(`toolkit.facts`; v2's rows `toolkit.facts_v2`)."""

from __future__ import annotations

import json
import platform
import random
from dataclasses import asdict
from pathlib import Path

import torch
from mechinterp.course.toolkit.facts import (
    RELATIONS,
    FactsConfig,
    build_tokenizer,
    encode_rows,
    fact_prompts,
    recall,
    sample_row,
    vocabulary,
    world,
)
from mechinterp.course.toolkit.facts_v2 import FactsV2Config, sample_row_v2, vocabulary_v2
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


def train_facts(cfg: FactsConfig, out: Path, log=print, vocab: list[str] | None = None, sample=None) -> dict:
    """Train a facts model. `vocab` and `sample(rng, facts, subjects)` (one training row) default to facts-lm's;
    `train_facts_v2` passes its own."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    facts = world(cfg.seed)
    vocab = vocab or vocabulary()
    sample = sample or (lambda rng, facts, subjects: sample_row(rng, facts, subjects, cfg.p_filler))
    tokenizer = build_tokenizer(vocab)
    model = GPT2LMHeadModel(gpt2_config(len(vocab), cfg.n_ctx, cfg.n_embd, cfg.n_layer, cfg.n_head))
    opt = adamw(model, cfg.lr, cfg.weight_decay)
    rng = random.Random(cfg.seed)
    subjects = sorted(facts)
    train_prompts = fact_prompts(facts, "train")
    held_prompts = fact_prompts(facts, "heldout")
    probe = random.Random(1).sample(train_prompts, 1000)
    run = Run(cfg.name, cfg.steps,
              batch=lambda: encode_rows(tokenizer, [sample(rng, facts, subjects) for _ in range(cfg.batch_size)],
                                        cfg.n_ctx),
              loss=lambda model, batch: model(batch[0], labels=batch[1]).loss,
              schedule=Schedule(cfg.lr, cfg.steps, cfg.warmup, overlap=True, float32_cos=True),
              log_every=250, checkpoint_every=500,
              evaluate=lambda step, loss: f"train recall {recall(model, tokenizer, probe):.3f}",
              random_states={"rows": python_random_state(rng)})
    timing = train_loop(model, opt, run, out.with_suffix(".ckpt"), log)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    (out / "world.json").write_text(json.dumps(facts, indent=1, sort_keys=True) + "\n")
    per_relation = {r: recall(model, tokenizer, [p for p in held_prompts if p["relation"] == r]) for r in RELATIONS}
    card = {"config": {**asdict(cfg), "vocab_size": len(vocab), "attn_only": False, "tie_word_embeddings": True,
                       "bf16": False, "cosine": True},
            "train_seconds": timing["train_seconds"],
            "metrics": {"train_template_recall": recall(model, tokenizer, train_prompts),
                        "heldout_paraphrase_recall": recall(model, tokenizer, held_prompts),
                        "heldout_recall_by_relation": per_relation,
                        "n_facts": len(facts) * len(RELATIONS), "n_train_prompts": len(train_prompts),
                        "n_heldout_prompts": len(held_prompts)},
            "machine": f"{platform.machine()}, {cfg.threads} threads", "torch": torch.__version__}
    save_zoo_entry(model, out, card)  # weights (tied unembedding dropped), config, card + sha256, MODEL_CARD.md
    return card


def train_facts_v2(cfg: FactsV2Config, out: Path, log=print) -> dict:
    return train_facts(cfg, out, log, vocab=vocabulary_v2(),
                       sample=lambda rng, facts, subjects: sample_row_v2(rng, facts, subjects, cfg))
