"""The zoo's one training loop and one learning-rate schedule, and how a trained entry is saved.

Every recipe (`attn_only`, `text_lm`, `facts_lm`, `ioi_lm`, `sentiment_clf`) builds its model, optimiser and data
stream, describes what differs in a `Run` (batches, loss, schedule, evaluation), and hands it to `train_loop`,
which owns the rest: setting the learning rate, clipping, logging, checkpointing every few hundred steps into
`<out>.ckpt/` and resuming from there (model, optimiser, scheduler and every random state, so a resumed run
continues exactly where it stopped). `save_zoo_entry` writes the weights, config, card.json with the weights'
sha256 and MODEL_CARD.md, and removes the checkpoint.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from mechinterp.course.toolkit.model_card import write_model_card
from mechinterp.course.toolkit.zoo.load import sha256
from safetensors.torch import save_file
from torch import Tensor, nn
from tqdm import tqdm
from transformers import GPT2Config


@dataclass(frozen=True)
class Schedule:
    """Learning rate at each step: a linear warm-up to `peak`, then a cosine decay to 0.1 x peak (or constant).

    The zoo's models were trained with three shapes of this schedule; each is kept, exactly as its run computed
    it, so that retraining reproduces the shipped weights bit for bit:
    - `overlap=False` (attn-only, text-lm): the cosine starts when the warm-up ends;
    - `overlap=True` (facts-lm, ioi-lm): the warm-up ramp multiplies a cosine that runs over all the steps;
    - `float32_cos=True` (facts-lm, facts-lm-v2): that cosine computed in float32.
    (sentiment-clf uses torch's OneCycleLR instead, which also cycles Adam's beta1: see `Run.scheduler`.)"""

    peak: float
    steps: int
    warmup: int
    decay: str = "cosine"  # or "constant"
    overlap: bool = False
    float32_cos: bool = False

    def __call__(self, step: int) -> float:
        if self.overlap:
            return self.peak * min(1.0, (step + 1) / self.warmup) * self._cosine(step, self.steps)
        if step < self.warmup:
            return self.peak * (step + 1) / self.warmup
        if self.decay == "constant":
            return self.peak
        return self.peak * self._cosine(step - self.warmup, max(1, self.steps - self.warmup))

    def _cosine(self, t: int, n: int) -> float:
        if self.decay == "constant":
            return 1.0
        c = torch.cos(torch.tensor(math.pi * t / n)).item() if self.float32_cos else math.cos(math.pi * (t / n))
        return 0.1 + 0.9 * 0.5 * (1 + c)


@dataclass
class Run:
    """What differs between the zoo's recipes; `train_loop` does everything else."""

    name: str
    steps: int
    batch: Callable[[], object]  # the next training batch
    loss: Callable[[nn.Module, object], Tensor]  # (model, batch) -> scalar loss
    schedule: Callable[[int], float] | None = None  # learning rate per step, or None when `scheduler` sets it
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    clip: float | None = 1.0  # gradient-norm clipping
    bf16: bool = False  # autocast (it was ~9x slower than fp32 on the CPUs the zoo was trained on)
    log_every: int = 100
    evaluate: Callable[[int, float], str] | None = None  # (step, loss) -> log text, run in eval mode at log steps
    checkpoint_every: int = 250
    random_states: dict[str, tuple[Callable[[], object], Callable[[object], None]]] = field(default_factory=dict)
    history: list = field(default_factory=list)  # evaluate() may append to it; it is checkpointed with the run


def train_loop(model: nn.Module, opt: torch.optim.Optimizer, run: Run, ckpt: Path, log=print) -> dict:
    """Train `model` for `run.steps` steps, resuming from `ckpt` if a checkpoint is there. Returns
    {"train_seconds": ..., "history": run.history}."""
    start_step, elapsed = 0, 0.0
    if (ckpt / "state.pt").exists():
        state = torch.load(ckpt / "state.pt", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if run.scheduler is not None:
            run.scheduler.load_state_dict(state["scheduler"])
        start_step, elapsed, run.history[:] = state["step"], state["elapsed"], state["history"]
        random.setstate(state["py_random"])
        torch.set_rng_state(state["torch_random"])
        for key, (_, set_state) in run.random_states.items():
            set_state(state["random_states"][key])  # the data stream continues exactly where it stopped
        log(f"resumed at step {start_step}")
    model.train()
    t0 = time.perf_counter()
    for step in tqdm(range(start_step, run.steps), desc=run.name, initial=start_step, total=run.steps,
                     mininterval=10):
        if run.schedule is not None:
            for g in opt.param_groups:
                g["lr"] = run.schedule(step)
        batch = run.batch()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=run.bf16):
            loss = run.loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if run.clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), run.clip)
        opt.step()
        if run.scheduler is not None:
            run.scheduler.step()
        if step % run.log_every == 0 or step == run.steps - 1:
            text = f"step {step} loss {loss.item():.4f} lr {opt.param_groups[0]['lr']:.2e}"
            if run.evaluate is not None:
                model.eval()
                text += " " + run.evaluate(step, loss.item())
                model.train()
            log(f"{text} elapsed {elapsed + time.perf_counter() - t0:.0f}s")
        if (step + 1) % run.checkpoint_every == 0 and step + 1 < run.steps:
            ckpt.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step + 1,
                        "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
                        "elapsed": elapsed + time.perf_counter() - t0, "history": run.history,
                        "py_random": random.getstate(), "torch_random": torch.get_rng_state(),
                        "random_states": {k: get() for k, (get, _) in run.random_states.items()}},
                       ckpt / "state.pt")
    model.eval()
    return {"train_seconds": round(elapsed + time.perf_counter() - t0, 1), "history": run.history}


def generator_state(gen: torch.Generator):
    """`Run.random_states` entry for a torch.Generator."""
    return gen.get_state, gen.set_state


def python_random_state(rng: random.Random):
    """`Run.random_states` entry for a random.Random."""
    return rng.getstate, rng.setstate


def gpt2_config(vocab_size: int, n_ctx: int, n_embd: int, n_layer: int, n_head: int, tie_word_embeddings: bool = True,
                attn_only: bool = False, bos_eos: int = 0) -> GPT2Config:
    """A zoo GPT-2 configuration: no dropout, one token id as BOS and EOS."""
    return GPT2Config(vocab_size=vocab_size, n_positions=n_ctx, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=bos_eos, eos_token_id=bos_eos,
                      tie_word_embeddings=tie_word_embeddings, attn_only=attn_only)


@dataclass
class TrainConfig:
    """A zoo GPT-2 language model's recipe (attn-only-1l, attn-only-2l, text-lm)."""
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

    def schedule(self) -> Schedule:
        return Schedule(self.lr, self.steps, self.warmup, "cosine" if self.cosine else "constant")

    def gpt2_config(self, bos_eos: int = 0):
        return gpt2_config(self.vocab_size, self.n_ctx, self.n_embd, self.n_layer, self.n_head,
                           self.tie_word_embeddings, self.attn_only, bos_eos)



def lm_loss(model, x):
    return model(x, labels=x).loss


def adamw(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """The zoo language models' optimiser (betas as in GPT-style training)."""
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.95))


def save_zoo_entry(model: nn.Module, out: Path, card: dict) -> None:
    """Write a trained zoo model: weights (a tied unembedding dropped), config, card.json with the weights'
    sha256, MODEL_CARD.md; then remove its training checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)  # tied to transformer.wte.weight
    save_file(state, out / "model.safetensors")
    model.config.to_json_file(out / "config.json")
    card["sha256"] = sha256(out / "model.safetensors")
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    write_model_card(out)
    shutil.rmtree(out.with_suffix(".ckpt"), ignore_errors=True)  # training is done: no stray checkpoints
