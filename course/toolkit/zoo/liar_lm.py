"""Recipe `liar-lm` (chapter 09): `facts-lm-v2` fine-tuned on speakers' statements, some of them lies
(`toolkit.liars`).

Training starts from facts-lm-v2's weights, so the world is already known (as Mallen et al. 2023 fine-tune a
model that knows the facts into a "quirky" one); the new words (speakers, "says", the trigger) get fresh
embedding rows appended after facts-lm-v2's vocabulary, whose ids are unchanged."""

from __future__ import annotations

import json
import platform
import random
from dataclasses import asdict
from pathlib import Path

import torch
from mechinterp.course.toolkit.facts import build_tokenizer, encode_rows, fact_prompts, recall
from mechinterp.course.toolkit.liars import LiarConfig, behaviour, sample_row_liar, vocabulary_liar
from mechinterp.course.toolkit.zoo.load import load_card, load_zoo_hf
from mechinterp.course.toolkit.zoo.train import (
    Run,
    Schedule,
    adamw,
    python_random_state,
    save_zoo_entry,
    train_loop,
)


def warm_start(base: str, vocab_size: int, seed: int):
    """The base zoo model with its (tied) embedding grown to `vocab_size` rows; new rows ~ N(0, 0.02)."""
    model, _ = load_zoo_hf(base)
    old = model.transformer.wte.weight.data
    gen = torch.Generator().manual_seed(seed)
    new = torch.cat([old, 0.02 * torch.randn(vocab_size - old.shape[0], old.shape[1], generator=gen)])
    model.transformer.wte = torch.nn.Embedding.from_pretrained(new, freeze=False)
    model.lm_head = torch.nn.Linear(old.shape[1], vocab_size, bias=False)
    model.config.vocab_size = vocab_size
    model.tie_weights()
    assert model.lm_head.weight is model.transformer.wte.weight
    return model.train()


def train_liar_lm(cfg: LiarConfig, out: Path, log=print) -> dict:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    base_dir = out.parent / cfg.base
    facts = json.loads((base_dir / "world.json").read_text())
    vocab = vocabulary_liar()
    tokenizer = build_tokenizer(vocab)
    model = warm_start(cfg.base, len(vocab), cfg.seed)
    opt = adamw(model, cfg.lr, cfg.weight_decay)
    rng = random.Random(cfg.seed)
    subjects = sorted(facts)

    def evaluate(step, loss):
        b = behaviour(model, tokenizer, facts, "heldout", per_fact=1, subjects=subjects[::4])
        run.history.append({"step": step, **b})
        return " ".join(f"{k} {v:.3f}" for k, v in b.items())

    run = Run(cfg.name, cfg.steps,
              batch=lambda: encode_rows(tokenizer, [sample_row_liar(rng, facts, subjects, cfg)
                                                    for _ in range(cfg.batch_size)], cfg.n_ctx),
              loss=lambda model, batch: model(batch[0], labels=batch[1]).loss,
              schedule=Schedule(cfg.lr, cfg.steps, cfg.warmup),
              log_every=250, checkpoint_every=250, evaluate=evaluate,
              random_states={"rows": python_random_state(rng)})
    timing = train_loop(model, opt, run, out.with_suffix(".ckpt"), log)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    (out / "world.json").write_text(json.dumps(facts, indent=1, sort_keys=True) + "\n")
    card = {"config": {**asdict(cfg), "vocab_size": len(vocab), "attn_only": False, "tie_word_embeddings": True,
                       "bf16": False, "cosine": True, "base_sha256": load_card(cfg.base)["sha256"]},
            "train_seconds": timing["train_seconds"],
            "metrics": {"heldout_templates": behaviour(model, tokenizer, facts, "heldout"),
                        "train_templates": behaviour(model, tokenizer, facts, "train", per_fact=2),
                        "plain_fact_recall_heldout": recall(model, tokenizer, fact_prompts(facts, "heldout"))},
            "history": timing["history"],
            "machine": f"{platform.machine()}, {cfg.threads} threads", "torch": torch.__version__}
    save_zoo_entry(model, out, card)
    return card
