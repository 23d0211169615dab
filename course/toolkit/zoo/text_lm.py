"""Recipe `text-lm` (chapters 02, 03, 07): a 4-layer GPT-2 trained on English text from Debian packages (the
World English Bible and fortunes), with a byte-level BPE tokenizer trained on the same split.

    python -m mechinterp.course.toolkit.zoo.text_lm sae-sample   # rebuild sae_sample.safetensors, no retraining
"""

from __future__ import annotations

import json
import platform
import random
from dataclasses import asdict
from pathlib import Path

import torch
from mechinterp.course.toolkit.corpus import DOC_SEPARATOR, build_corpus
from mechinterp.course.toolkit.labels import write_pos_lexicon
from mechinterp.course.toolkit.model_card import write_model_card
from mechinterp.course.toolkit.text_data import encode_documents, ngram_baselines, train_tokenizer, window_batches
from mechinterp.course.toolkit.zoo.load import sha256, zoo_dir
from mechinterp.course.toolkit.zoo.measure import heldout_loss, logit_lens_curve, measure_induction
from mechinterp.course.toolkit.zoo.train import (
    Run,
    TrainConfig,
    adamw,
    generator_state,
    lm_loss,
    save_zoo_entry,
    train_loop,
)
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from transformers import GPT2LMHeadModel

# bf16 autocast was ~9x SLOWER than fp32 on this CPU (no native bf16 matmul): fp32
TEXT_LM = TrainConfig("text-lm", 4, 160, 5, 128, 4096, False, True, 1_500, 32, 2e-3, 100, 0.01, 0)
SAE_SAMPLE_WINDOWS, SAE_SAMPLE_SEED = 4096, 7


def write_sae_sample(train_ids: torch.Tensor, out: Path, n_ctx: int = 128) -> None:
    """`sae_sample.safetensors`: 4,096 windows of 128 tokens drawn (seeded) from the text model's TRAINING split,
    int16 ([4096, 128], 1 MB). Chapter 07 trains its sparse autoencoders on their activations, so the course
    never needs the Debian corpus at run time; the shipped held-out ids stay for evaluation."""
    gen = torch.Generator().manual_seed(SAE_SAMPLE_SEED)
    starts = torch.randint(0, len(train_ids) - n_ctx, (SAE_SAMPLE_WINDOWS,), generator=gen)
    windows = torch.stack([train_ids[s : s + n_ctx] for s in starts.tolist()])
    save_file({"ids": windows.to(torch.int16).contiguous()}, out / "sae_sample.safetensors")


def text_lm_split(cfg: TrainConfig, cache: Path, tokenizer=None):
    """Rebuild the text model's corpus split: (tokenizer, train_ids, val_ids). Passing the shipped tokenizer
    reproduces the shipped token ids without retraining the tokenizer."""
    docs, checksums = build_corpus(cache)
    rng = random.Random(cfg.seed)
    rng.shuffle(docs)
    n_val = max(1, len(docs) // 100)
    val_docs, train_docs = docs[:n_val], docs[n_val:]
    tokenizer = tokenizer or train_tokenizer(train_docs, cfg.vocab_size, DOC_SEPARATOR)
    return (tokenizer, encode_documents(tokenizer, train_docs, DOC_SEPARATOR),
            encode_documents(tokenizer, val_docs, DOC_SEPARATOR), docs, checksums)


def refresh_sae_sample(cache: Path | None = None, out_root: Path | None = None) -> Path:
    """Write text-lm's `sae_sample.safetensors` from the Debian corpus and the shipped tokenizer (no retraining)."""
    out = (out_root or zoo_dir()) / "text-lm"
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    _, train_ids, val_ids, _, _ = text_lm_split(TEXT_LM, cache or Path(".mechinterp-cache") / "debian", tokenizer)
    shipped = load_file(out / "heldout.safetensors")["ids"].long()
    if not torch.equal(val_ids[: len(shipped)], shipped):
        raise RuntimeError("the rebuilt corpus does not reproduce the shipped held-out ids: the Debian packages "
                           "have changed; retrain text-lm instead")
    write_sae_sample(train_ids, out)
    card_path = out / "card.json"  # (a retrain records the checksum in the card it writes)
    card = json.loads(card_path.read_text())
    card["sae_sample_sha256"] = sha256(out / "sae_sample.safetensors")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    write_model_card(out)
    return out / "sae_sample.safetensors"


def train_text_lm(cfg: TrainConfig, out: Path, cache: Path, log=print) -> dict:
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    tokenizer, train_ids, val_ids, docs, checksums = text_lm_split(cfg, cache)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "tokenizer.json"))
    log(f"corpus: {len(docs)} documents, {len(train_ids):,} train / {len(val_ids):,} held-out tokens")
    model = GPT2LMHeadModel(cfg.gpt2_config(bos_eos=tokenizer.token_to_id(DOC_SEPARATOR)))
    gen = torch.Generator().manual_seed(cfg.seed)
    windows = window_batches(train_ids, cfg.batch_size, cfg.n_ctx, gen)
    run = Run(cfg.name, cfg.steps, lambda: next(windows), lm_loss, cfg.schedule(), bf16=cfg.bf16,
              random_states={"data": generator_state(gen)})
    timing = train_loop(model, adamw(model, cfg.lr, cfg.weight_decay), run, out.with_suffix(".ckpt"), log)
    metrics = {
        "heldout_loss": heldout_loss(model, val_ids, cfg.n_ctx),
        **ngram_baselines(train_ids, val_ids, cfg.vocab_size),
        "logit_lens_logprob": logit_lens_curve(model, val_ids, cfg.n_ctx),
        "induction": measure_induction(model),
    }
    save_file({"ids": val_ids[:60_000].to(torch.int16).contiguous()}, out / "heldout.safetensors")
    write_sae_sample(train_ids, out)
    write_pos_lexicon(cache / "root/usr/share/wordnet", out)
    card = {"config": asdict(cfg), "train_seconds": timing["train_seconds"], "metrics": metrics,
            "debian_packages": checksums, "sae_sample_sha256": sha256(out / "sae_sample.safetensors"),
            "corpus": {"documents": len(docs), "train_tokens": len(train_ids), "heldout_tokens": len(val_ids),
                       "characters": sum(map(len, docs))},
            "machine": f"{platform.machine()}, {cfg.threads} threads", "torch": torch.__version__}
    save_zoo_entry(model, out, card)
    return card


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["sae-sample"]:
        raise SystemExit("usage: python -m mechinterp.course.toolkit.zoo.text_lm sae-sample   (zoo models: "
                         "mechinterp zoo train NAME)")
    print(refresh_sae_sample())
