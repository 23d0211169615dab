"""Recipe `sentiment-clf` (chapter 06): a small DistilBERT-architecture sentiment classifier trained on generated
sentences (`toolkit.sentiment`: VADER adjectives attested in WordNet, in templates, some negated)."""

from __future__ import annotations

import json
import platform
import random
from pathlib import Path

import torch
from mechinterp.course.toolkit.corpus import fetch_packages
from mechinterp.course.toolkit.sentiment import (
    N_HELDOUT_TEMPLATES,
    TEMPLATES,
    SentimentConfig,
    accuracy,
    build_tokenizer,
    distilbert_config,
    make_sentence,
    neutralise,
    sentiment_adjectives,
    vocabulary,
)
from mechinterp.course.toolkit.zoo.train import Run, python_random_state, save_zoo_entry, train_loop
from transformers import DistilBertForSequenceClassification


def train_sentiment(cfg: SentimentConfig, out: Path, cache: Path, log=print) -> dict:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    fetch_packages(cache)
    adjectives = sentiment_adjectives(cache / "root/usr/share/wordnet")
    vocab = vocabulary(adjectives)
    tokenizer = build_tokenizer(vocab)
    rng = random.Random(cfg.seed)
    train_templates, held_templates = TEMPLATES[:-N_HELDOUT_TEMPLATES], TEMPLATES[-N_HELDOUT_TEMPLATES:]
    heldout = [make_sentence(rng, adjectives, held_templates) for _ in range(cfg.n_heldout)]
    model = DistilBertForSequenceClassification(distilbert_config(cfg, len(vocab)))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # OneCycleLR (warm-up 10%, cosine annealing, and Adam's beta1 cycled against the rate), not `Schedule`
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)

    def batch():
        sentences = [make_sentence(rng, adjectives, train_templates) for _ in range(cfg.batch_size)]
        enc = tokenizer([s["text"] for s in sentences], return_tensors="pt", padding=True)
        return enc, neutralise(enc["input_ids"], sentences, tokenizer, rng, cfg)  # soft targets

    run = Run(cfg.name, cfg.steps, batch,
              loss=lambda model, b: torch.nn.functional.cross_entropy(model(**b[0]).logits, b[1]),
              scheduler=sched, clip=None, log_every=250, random_states={"sentences": python_random_state(rng)})
    timing = train_loop(model, opt, run, out.with_suffix(".ckpt"), log)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    (out / "heldout.json").write_text(json.dumps(heldout, indent=0) + "\n")
    negated = [s for s in heldout if s["negated"]]
    card = {
        "config": {**cfg.__dict__, "n_layer": cfg.n_layers, "n_embd": cfg.dim, "n_head": cfg.n_heads,
                   "vocab_size": len(vocab)},
        "architecture": "distilbert-classifier", "train_seconds": timing["train_seconds"],
        "metrics": {"heldout_accuracy": accuracy(model, tokenizer, heldout),
                    "heldout_negated_accuracy": accuracy(model, tokenizer, negated),
                    "n_heldout": len(heldout), "n_heldout_negated": len(negated),
                    "n_adjectives": len(adjectives),
                    "n_positive_adjectives": sum(v > 0 for v in adjectives.values())},
        "machine": f"{platform.machine()}, {cfg.threads} threads", "torch": torch.__version__,
    }
    save_zoo_entry(model, out, card)  # weights, config, card.json (+ sha256), MODEL_CARD.md
    return card
