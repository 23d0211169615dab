"""Training recipes for the offline model zoo (`mechinterp zoo train NAME`).

Every recipe is seeded and records its configuration, data provenance, time and final metrics into the
zoo entry's `card.json`, from which its MODEL_CARD.md is written. Long runs checkpoint every few hundred
steps into `<out>.ckpt/` and resume from there when restarted.
"""

from __future__ import annotations

import json
import math
import platform
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from mechinterp.course.toolkit.data import induction_segments_batch
from mechinterp.course.toolkit.model_card import write_model_card
from mechinterp.course.toolkit.zoo import make_attn_only, sha256, zoo_dir
from safetensors.torch import load_file, save_file
from tqdm import tqdm
from transformers import GPT2Config, GPT2LMHeadModel


@dataclass
class TrainConfig:
    name: str
    n_layer: int
    n_embd: int
    n_head: int
    n_ctx: int
    vocab_size: int
    attn_only: bool
    tie_word_embeddings: bool
    steps: int
    batch_size: int
    lr: float
    warmup: int
    weight_decay: float
    seed: int
    threads: int = 2
    bf16: bool = False
    cosine: bool = True  # False: constant learning rate after warm-up
    extra: dict = field(default_factory=dict)


RECIPES = {
    # a pilot run of 2l had formed its induction heads (scores 0.89-0.95) by step 4,000: 6,000 steps suffice
    "attn-only-1l": TrainConfig("attn-only-1l", 1, 64, 4, 64, 64, True, False, 6_000, 64, 1e-3, 100, 0.0, 0,
                                threads=1, cosine=False),
    "attn-only-2l": TrainConfig("attn-only-2l", 2, 64, 4, 64, 64, True, False, 6_000, 64, 1e-3, 100, 0.0, 0,
                                threads=1, cosine=False),
    # bf16 autocast was ~9x SLOWER than fp32 on this CPU (no native bf16 matmul): fp32
    "text-lm": TrainConfig("text-lm", 4, 160, 5, 128, 4096, False, True, 1_500, 32, 2e-3, 100, 0.01, 0),
}


def gpt2_config(cfg: TrainConfig, bos_eos: int = 0) -> GPT2Config:
    return GPT2Config(
        vocab_size=cfg.vocab_size, n_positions=cfg.n_ctx, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
        n_head=cfg.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=bos_eos,
        eos_token_id=bos_eos, tie_word_embeddings=cfg.tie_word_embeddings, attn_only=cfg.attn_only,
    )


def _lr(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if not cfg.cosine:
        return cfg.lr
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _train_loop(cfg: TrainConfig, model: GPT2LMHeadModel, batches: Iterator[torch.Tensor], gen: torch.Generator,
                ckpt: Path, log) -> dict:
    """AdamW + warmup/cosine; resumes from `ckpt` if present; returns timing information."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    start_step, elapsed = 0, 0.0
    if (ckpt / "state.pt").exists():
        state = torch.load(ckpt / "state.pt", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start_step, elapsed = state["step"], state["elapsed"]
        random.setstate(state["py_random"])
        torch.set_rng_state(state["torch_random"])
        if "data_random" in state:
            gen.set_state(state["data_random"])  # the data stream continues exactly where it stopped
        log(f"resumed at step {start_step}")
    model.train()
    t0 = time.perf_counter()
    for step in tqdm(range(start_step, cfg.steps), desc=cfg.name, initial=start_step, total=cfg.steps,
                     mininterval=10):
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step)
        x = next(batches)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = model(x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == cfg.steps - 1:
            log(f"step {step} loss {loss.item():.4f} lr {_lr(cfg, step):.2e} "
                f"elapsed {elapsed + time.perf_counter() - t0:.0f}s")
        if (step + 1) % 250 == 0 and step + 1 < cfg.steps:
            ckpt.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step + 1,
                        "elapsed": elapsed + time.perf_counter() - t0, "py_random": random.getstate(),
                        "torch_random": torch.get_rng_state(),
                        "data_random": gen.get_state()}, ckpt / "state.pt")
    model.eval()
    return {"train_seconds": round(elapsed + time.perf_counter() - t0, 1)}


def save_zoo_entry(model: GPT2LMHeadModel, out: Path, card: dict) -> None:
    """Write a trained zoo model: weights (tied unembedding dropped), config, card.json with the weights' sha256,
    MODEL_CARD.md; then remove its training checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # tied to transformer.wte.weight
    save_file(state, out / "model.safetensors")
    model.config.to_json_file(out / "config.json")
    card["sha256"] = sha256(out / "model.safetensors")
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    write_model_card(out)
    shutil.rmtree(out.with_suffix(".ckpt"), ignore_errors=True)  # training is done: no stray checkpoints


def train_attn_only(cfg: TrainConfig, out: Path, log=print) -> dict:
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    model = make_attn_only(GPT2LMHeadModel(gpt2_config(cfg)))
    gen = torch.Generator().manual_seed(cfg.seed)

    def batches():
        while True:
            yield induction_segments_batch(cfg.batch_size, cfg.n_ctx, cfg.vocab_size, gen)

    timing = _train_loop(cfg, model, batches(), gen, out.with_suffix(".ckpt"), log)
    from mechinterp.course.toolkit.zoo import measure_induction  # after training: evaluation only

    card = {"config": asdict(cfg), **timing, "data": "induction_segments_batch (repeated random segments)",
            "metrics": measure_induction(model), "machine": f"{platform.machine()}, {cfg.threads} threads",
            "torch": torch.__version__}
    save_zoo_entry(model, out, card)
    return card


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
    from mechinterp.course.toolkit.corpus import DOC_SEPARATOR, build_corpus
    from mechinterp.course.toolkit.text_data import encode_documents, train_tokenizer

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
    from tokenizers import Tokenizer

    out = (out_root or zoo_dir()) / "text-lm"
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    _, train_ids, val_ids, _, _ = text_lm_split(RECIPES["text-lm"], cache or Path(".mechinterp-cache") / "debian",
                                                tokenizer)
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
    from mechinterp.course.toolkit.corpus import DOC_SEPARATOR
    from mechinterp.course.toolkit.text_data import ngram_baselines, window_batches

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    tokenizer, train_ids, val_ids, docs, checksums = text_lm_split(cfg, cache)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "tokenizer.json"))
    log(f"corpus: {len(docs)} documents, {len(train_ids):,} train / {len(val_ids):,} held-out tokens")
    model = GPT2LMHeadModel(gpt2_config(cfg, bos_eos=tokenizer.token_to_id(DOC_SEPARATOR)))
    gen = torch.Generator().manual_seed(cfg.seed)
    timing = _train_loop(cfg, model, window_batches(train_ids, cfg.batch_size, cfg.n_ctx, gen), gen,
                         out.with_suffix(".ckpt"), log)
    from mechinterp.course.toolkit.zoo import heldout_loss, logit_lens_curve, measure_induction

    metrics = {
        "heldout_loss": heldout_loss(model, val_ids, cfg.n_ctx),
        **ngram_baselines(train_ids, val_ids, cfg.vocab_size),
        "logit_lens_logprob": logit_lens_curve(model, val_ids, cfg.n_ctx),
        "induction": measure_induction(model),
    }
    save_file({"ids": val_ids[:60_000].to(torch.int16).contiguous()}, out / "heldout.safetensors")
    write_sae_sample(train_ids, out)
    from mechinterp.course.toolkit.labels import write_pos_lexicon

    write_pos_lexicon(cache / "root/usr/share/wordnet", out)
    card = {"config": asdict(cfg), **timing, "metrics": metrics, "debian_packages": checksums,
            "sae_sample_sha256": sha256(out / "sae_sample.safetensors"),
            "corpus": {"documents": len(docs), "train_tokens": len(train_ids), "heldout_tokens": len(val_ids),
                       "characters": sum(map(len, docs))},
            "machine": f"{platform.machine()}, {cfg.threads} threads", "torch": torch.__version__}
    save_zoo_entry(model, out, card)
    return card


def train(name: str, out_root: Path | None = None, cache: Path | None = None, log=print) -> dict:
    if name not in RECIPES and name not in ("sentiment-clf", "facts-lm", "facts-lm-v2", "ioi-lm", "ioi-lm-v2"):
        raise KeyError(f"no recipe {name!r}; recipes: {', '.join(RECIPES)}, facts-lm, facts-lm-v2, ioi-lm, "
                       "ioi-lm-v2, sentiment-clf")
    cfg = RECIPES.get(name)
    out = (out_root or zoo_dir()) / name
    if name == "facts-lm":
        from mechinterp.course.toolkit.facts import FactsConfig, train_facts

        return train_facts(FactsConfig(), out, log)
    if name == "facts-lm-v2":
        from mechinterp.course.toolkit.facts_v2 import FactsV2Config, train_facts_v2

        return train_facts_v2(FactsV2Config(), out, log)
    if name == "ioi-lm":
        from mechinterp.course.toolkit.ioi import IOIConfig, train_ioi_lm

        return train_ioi_lm(IOIConfig(), out, log)
    if name == "ioi-lm-v2":
        from mechinterp.course.toolkit.ioi_v2 import IOIV2Config, train_ioi_lm_v2

        return train_ioi_lm_v2(IOIV2Config(), out, log)
    if name == "sentiment-clf":
        from mechinterp.course.toolkit.sentiment import SentimentConfig, train_sentiment

        return train_sentiment(SentimentConfig(), (out_root or zoo_dir()) / name,
                               cache or Path(".mechinterp-cache") / "debian", log)
    if cfg.name == "text-lm":
        return train_text_lm(cfg, out, cache or Path(".mechinterp-cache") / "debian", log)
    return train_attn_only(cfg, out, log)


if __name__ == "__main__":  # python -m mechinterp.course.toolkit.zoo_train sae-sample
    import sys

    if sys.argv[1:] != ["sae-sample"]:
        raise SystemExit("usage: python -m mechinterp.course.toolkit.zoo_train sae-sample   (zoo models: mechinterp "
                         "zoo train NAME)")
    print(refresh_sae_sample())
