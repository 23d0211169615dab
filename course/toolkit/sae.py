"""Sparse autoencoders at every scale: one model class, one activation store, one trainer (chapter 07).

    store = ActivationStore(model, "blocks.2.hook_resid_pre", tokens)      # memory-mapped on-disk cache
    sae, history = train_sae(PRESETS["cpu-small"], store)                 # ~2 min on 2 CPU cores
    recon, acts = sae(x)                                                  # raw activations in, raw out

Architectures (`SAEConfig.arch`): "relu" (ReLU + decoder-norm-weighted L1, Bricken et al. 2023), "topk" (TopK +
AuxK dead-latent loss, Gao et al. 2024), "batchtopk" (top k x batch over the whole batch while training, a
learned global threshold at inference, Bussmann et al. 2024), "jumprelu" (a learned threshold per latent trained
with straight-through rectangle-kernel gradients and an L0 penalty, Rajamanoharan et al. 2024).

Training tricks, each for a reason:
- inputs are scaled by one constant so that E||x|| = sqrt(d_in): hyperparameters (lr, l1_coeff) then transfer
  between models and layers; the scale is stored in the SAE and undone on the way out;
- decoder rows have unit norm (renormalised after every step) and the gradient component parallel to each row is
  removed before the step: otherwise the L1 penalty shrinks activations by growing the decoder norms;
- tied initialisation (W_enc = W_dec^T) and b_dec = the geometric median of a sample: training starts near a
  sensible reconstruction and few latents start dead;
- L1 warm-up (ReLU): a full penalty from step 0 kills latents before they find a direction;
- AuxK (TopK / BatchTopK): latents that have not fired for `dead_tokens` tokens are asked to reconstruct the
  residual error, which revives them;
- the gradient norm is clipped to 1 (as SAELens does): at lr 2e-3 it raised held-out FVE from 0.935 to 0.953
  after 1.2 M tokens.

Data-parallel training: run the same script under `torchrun --nproc_per_node N` (see `main`); every process
takes its slice of the same global batch, DDP averages the gradients (gloo on CPU, nccl on CUDA), and firing
statistics are all-reduced — so N processes follow the single-process trajectory.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from mechinterp.course.toolkit.twins import exercise_twin
from torch import Tensor, nn
from tqdm.auto import tqdm

ARCHS = ("relu", "topk", "batchtopk", "jumprelu")


@dataclass(frozen=True)
class SAEConfig:
    d_in: int = 160
    width: int = 1280
    arch: str = "topk"
    k: int = 32  # topk / batchtopk: latents per token
    l1_coeff: float = 5.0  # relu: coefficient of the decoder-norm-weighted L1 penalty
    l1_warmup_frac: float = 0.05  # relu: the penalty ramps up linearly over this fraction of training
    l0_coeff: float = 0.05  # jumprelu: coefficient of the (straight-through) L0 penalty
    jump_init_threshold: float = 0.1  # jumprelu: initial threshold (in scaled units)
    jump_bandwidth: float = 0.05  # jumprelu: width of the rectangle kernel
    aux_k: int = 256  # topk / batchtopk: latents used by the AuxK loss (Gao et al.: d_in / 2 .. 512)
    aux_coeff: float = 1 / 32
    dead_tokens: int = 250_000  # a latent is dead after this many tokens without firing
    lr: float = 2e-3
    clip_grad: float = 1.0  # clip the gradient norm to this value (0: no clipping); +0.018 FVE at 1.2 M tokens
    batch_size: int = 4096  # GLOBAL batch (split across processes under DDP)
    n_tokens: int = 2_400_000
    seed: int = 0
    model: str = "zoo/text-lm"
    hook: str = "blocks.2.hook_resid_pre"

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, not {self.arch!r}")

    @property
    def n_steps(self) -> int:
        return max(1, self.n_tokens // self.batch_size)


PRESETS = {
    # the chapter's default: text-lm's middle residual stream, 8x expansion, ~2 min on 2 CPU cores
    "cpu-small": SAEConfig(),
    # GPT-2 small, residual stream before block 8 (as SAELens's res-jb SAEs), 32x expansion, one CUDA device
    "gpu": SAEConfig(d_in=768, width=24_576, k=32, aux_k=512, batch_size=4096, n_tokens=50_000_000, lr=5e-4,
                     model="gpt2", hook="blocks.8.hook_resid_pre", dead_tokens=10_000_000),
}

# chapter 07's warm-up on `synthetic_dictionary_data(256, 64, ...)`: 512 latents, small batches (many steps); the
# ReLU SAE needs its L1 ramped over 20% of training (with batch 1,024 it stayed at MMCS 0.72-0.78)
_SYNTHETIC = SAEConfig(d_in=64, width=512, batch_size=256, lr=1e-3, n_tokens=1_000_000, dead_tokens=50_000, aux_k=32)
SYNTHETIC_PRESETS = {"topk": replace(_SYNTHETIC, arch="topk", k=4),
                     "relu": replace(_SYNTHETIC, arch="relu", l1_coeff=3.0, l1_warmup_frac=0.2)}


def with_overrides(cfg: SAEConfig, values: dict[str, str]) -> SAEConfig:
    """`cfg` with fields replaced by values given as strings (command-line `--set`, safetensors metadata)."""
    types = {k: type(v) for k, v in asdict(cfg).items()}
    return replace(cfg, **{k: types[k](v) for k, v in values.items()})


# ------------------------------------------------------------------------------------------------ model


def rectangle(u: Tensor) -> Tensor:
    """The rectangle kernel K(u) = 1 for |u| < 1/2, else 0."""
    return (u.abs() < 0.5).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    """z * H(z - t): the exact gradient w.r.t. z, and a straight-through estimate w.r.t. the threshold t:
    d/dt = -(t / eps) K((z - t) / eps)."""

    @staticmethod
    def forward(ctx, z, threshold, eps):
        ctx.save_for_backward(z, threshold)
        ctx.eps = eps
        return z * (z > threshold)

    @staticmethod
    def backward(ctx, grad):
        z, threshold = ctx.saved_tensors
        grad_z = grad * (z > threshold)
        grad_t = -(threshold / ctx.eps) * rectangle((z - threshold) / ctx.eps) * grad
        return grad_z, grad_t.sum_to_size(threshold.shape), None


class _Step(torch.autograd.Function):
    """H(z - t), with d/dt = -(1 / eps) K((z - t) / eps) (no gradient to z): the L0 penalty's estimator."""

    @staticmethod
    def forward(ctx, z, threshold, eps):
        ctx.save_for_backward(z, threshold)
        ctx.eps = eps
        return (z > threshold).to(z.dtype)

    @staticmethod
    def backward(ctx, grad):
        z, threshold = ctx.saved_tensors
        grad_t = -(1.0 / ctx.eps) * rectangle((z - threshold) / ctx.eps) * grad
        return torch.zeros_like(z), grad_t.sum_to_size(threshold.shape), None


@exercise_twin("sparse_autoencoders", "geometric_median")
def geometric_median(points: Tensor, n_iter: int = 50, eps: float = 1e-8) -> Tensor:
    """Weiszfeld's algorithm: the point minimising the sum of Euclidean distances to `points` [n, d]."""
    median = points.mean(0)
    for _ in range(n_iter):
        w = 1.0 / (points - median).norm(dim=-1).clamp_min(eps)
        median = (w[:, None] * points).sum(0) / w.sum()
    return median


class SparseAutoencoder(nn.Module):
    """x -> acts = f((x * scale - b_dec) @ W_enc + b_enc) -> recon = (acts @ W_dec + b_dec) / scale."""

    def __init__(self, cfg: SAEConfig):
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(cfg.seed)
        w_dec = torch.randn(cfg.width, cfg.d_in, generator=gen)  # (synthetic data uses other seed streams)
        w_dec /= w_dec.norm(dim=-1, keepdim=True)
        self.W_dec = nn.Parameter(w_dec)
        self.W_enc = nn.Parameter(w_dec.T.clone())  # tied initialisation
        self.b_enc = nn.Parameter(torch.zeros(cfg.width))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))
        self.register_buffer("scale", torch.ones(()))
        if cfg.arch == "jumprelu":
            self.log_threshold = nn.Parameter(torch.full((cfg.width,), math.log(cfg.jump_init_threshold)))
        # batchtopk: the global inference threshold, a running mean of the smallest kept activation
        self.register_buffer("threshold", torch.zeros(()))

    @torch.no_grad()
    def initialise(self, sample: Tensor) -> None:
        """Activation scaling (E||x|| = sqrt(d_in)) and b_dec = geometric median of the scaled sample."""
        self.scale.fill_(math.sqrt(self.cfg.d_in) / sample.norm(dim=-1).mean())
        self.b_dec.copy_(geometric_median(sample.to(self.b_dec) * self.scale))

    def pre_acts(self, x: Tensor) -> Tensor:
        return (x * self.scale - self.b_dec) @ self.W_enc + self.b_enc

    def activation(self, pre: Tensor) -> Tensor:
        arch, k = self.cfg.arch, self.cfg.k
        if arch == "relu":
            return torch.relu(pre)
        if arch == "topk":
            top = pre.topk(k, dim=-1)
            return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
        if arch == "batchtopk":
            if not self.training:
                return pre * (pre > self.threshold)
            flat = torch.relu(pre).flatten()
            top = flat.topk(min(k * pre.shape[0], flat.numel()))
            acts = torch.zeros_like(flat).scatter(0, top.indices, top.values).view_as(pre)
            with torch.no_grad():
                kept = top.values[top.values > 0]
                if len(kept) and self.threshold > 0:
                    self.threshold.lerp_(kept.min(), 0.05)
                elif len(kept):
                    self.threshold.fill_(kept.min())
            return acts
        return _JumpReLU.apply(pre, self.log_threshold.exp(), self.cfg.jump_bandwidth)

    def encode(self, x: Tensor) -> Tensor:
        return self.activation(self.pre_acts(x))

    def decode(self, acts: Tensor) -> Tensor:
        return (acts @ self.W_dec + self.b_dec) / self.scale

    def forward(self, x: Tensor, dead: Tensor | None = None, l1_scale: float = 1.0, losses: bool = False):
        """(recon, acts); with losses=True the training losses instead (one forward, so DDP sees it)."""
        if losses:
            return self.losses(x, dead, l1_scale)
        acts = self.encode(x)
        return self.decode(acts), acts

    def losses(self, x: Tensor, dead: Tensor | None = None, l1_scale: float = 1.0) -> dict[str, Tensor]:
        """Training losses on scaled units: mse (summed over d_in, mean over tokens) + the sparsity term."""
        pre = self.pre_acts(x)
        acts = self.activation(pre)
        xs = x * self.scale
        recon_s = acts @ self.W_dec + self.b_dec
        out = {"mse": (recon_s - xs).pow(2).sum(-1).mean(), "acts": acts}
        arch = self.cfg.arch
        if arch == "relu":
            out["sparsity"] = l1_scale * self.cfg.l1_coeff * (acts * self.W_dec.norm(dim=-1)).sum(-1).mean()
        elif arch == "jumprelu":
            out["sparsity"] = self.cfg.l0_coeff * _Step.apply(pre, self.log_threshold.exp(),
                                                              self.cfg.jump_bandwidth).sum(-1).mean()
        else:
            out["sparsity"] = self.cfg.aux_coeff * auxk_loss(xs, recon_s, pre, dead, self.W_dec, self.cfg.aux_k)
        out["loss"] = out["mse"] + out["sparsity"]
        return out

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def remove_parallel_grad(self) -> None:
        if self.W_dec.grad is not None:
            g = self.W_dec.grad
            g -= (g * self.W_dec).sum(-1, keepdim=True) * self.W_dec

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        meta = {k: str(v) for k, v in asdict(self.cfg).items()}
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> SparseAutoencoder:
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        sae = cls(with_overrides(SAEConfig(), meta))
        sae.load_state_dict(load_file(str(path)))
        return sae


@exercise_twin("sparse_autoencoders", "auxk_loss")
def auxk_loss(x: Tensor, recon: Tensor, pre: Tensor, dead: Tensor | None, W_dec: Tensor, k_aux: int) -> Tensor:
    """Gao et al.'s AuxK: reconstruct the residual x - recon with the top-k_aux DEAD latents (no decoder bias);
    returns the mean squared error of that reconstruction (0 when no latent is dead)."""
    if dead is None or not bool(dead.any()):
        return pre.new_zeros(())
    residual = (x - recon).detach()
    masked = pre.masked_fill(~dead, float("-inf"))
    top = masked.topk(min(k_aux, int(dead.sum())), dim=-1)
    aux = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    return (aux @ W_dec - residual).pow(2).sum(-1).mean()


# ------------------------------------------------------------------------------------- activation store


def _cache_root() -> Path:
    from mechinterp.course.toolkit.activations import cache_root

    return cache_root() / "sae-activations"


class ActivationStore:
    """Activations of one hook point over a token set, computed once into a memory-mapped float32 file and
    then served in shuffled batches for as many epochs as training needs (no model forward passes after the
    first). The file is keyed by a hash of the model's weights, the tokens and the hook name."""

    def __init__(self, model, hook: str, tokens: Tensor, batch_size: int = 64, cache: bool = True,
                 progress: bool = True):
        from mechinterp.course.toolkit.activations import fingerprint

        self.hook, self.d = hook, model.cfg.n_embd
        n = tokens.numel()
        key = fingerprint(model, tokens, [hook])
        self.path = _cache_root() / f"{key}.f32"
        if not (cache and self.path.exists()):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, self.d))
            row = 0
            with torch.no_grad():
                for start in tqdm(range(0, len(tokens), batch_size), desc=f"activations at {hook}",
                                  disable=not progress, leave=False):
                    batch = tokens[start : start + batch_size].to(model.device)
                    a = model.activation_at(batch, hook).reshape(-1, self.d).float().cpu().numpy()
                    out[row : row + len(a)] = a
                    row += len(a)
            out.flush()
            del out
            tmp.replace(self.path)
        self.acts = np.load(self.path, mmap_mode="r")

    @classmethod
    def from_tensor(cls, acts: Tensor) -> ActivationStore:
        """A store over activations already in memory (synthetic data, tests)."""
        store = cls.__new__(cls)
        store.hook, store.d, store.path = "", acts.shape[-1], None
        store.acts = acts.reshape(-1, acts.shape[-1]).float().numpy()
        return store

    def __len__(self) -> int:
        return len(self.acts)

    def sample(self, n: int, seed: int = 0) -> Tensor:
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=min(n, len(self)), replace=False))
        return torch.from_numpy(np.asarray(self.acts[idx]))

    def batches(self, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1) -> Iterator[Tensor]:
        """Endless shuffled batches (a new permutation every epoch). Under data parallelism each process gets
        rows rank::world of the same GLOBAL batch."""
        rng = np.random.default_rng(seed)
        while True:
            perm = rng.permutation(len(self))
            for start in range(0, len(perm) - batch_size + 1, batch_size):
                idx = np.sort(perm[start : start + batch_size][rank::world])
                yield torch.from_numpy(np.asarray(self.acts[idx]))


# --------------------------------------------------------------------------------------------- training


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train_sae(cfg: SAEConfig, store: ActivationStore, device: str | torch.device = "cpu", log_every: int = 50,
              progress: bool = True) -> tuple[SparseAutoencoder, list[dict]]:
    """Train one SAE on `store`'s activations. Under torchrun (a process group initialised) the model is wrapped
    in DistributedDataParallel and each process trains on its share of every global batch."""
    rank, world = _world()
    if cfg.batch_size % world:
        raise ValueError(f"the global batch {cfg.batch_size} must divide among {world} processes")
    sae = SparseAutoencoder(cfg)  # seeded by its own generator: the global RNG is left alone
    sae.initialise(store.sample(min(len(store), 32_768), seed=cfg.seed))
    sae.to(device).train()
    ddp = world > 1
    module = nn.parallel.DistributedDataParallel(sae) if ddp else sae
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    batches = store.batches(cfg.batch_size, seed=cfg.seed, rank=rank, world=world)
    since_fired = torch.zeros(cfg.width, dtype=torch.long, device=device)
    history, start = [], time.perf_counter()
    warmup_steps = max(1, int(cfg.l1_warmup_frac * cfg.n_steps))
    for step in tqdm(range(cfg.n_steps), desc=f"SAE {cfg.arch} k={cfg.k} width={cfg.width}",
                     disable=not progress or rank != 0, leave=False):
        x = next(batches).to(device)
        dead = since_fired >= cfg.dead_tokens if cfg.arch in ("topk", "batchtopk") else None
        # through forward(): DDP synchronises gradients only for what its forward computed
        out = module(x, dead=dead, l1_scale=min(1.0, (step + 1) / warmup_steps), losses=True)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        sae.remove_parallel_grad()
        if cfg.clip_grad:
            nn.utils.clip_grad_norm_(sae.parameters(), cfg.clip_grad)
        opt.step()
        sae.normalise_decoder()
        with torch.no_grad():
            fired = (out["acts"] > 0).any(0)
            if ddp:
                fired_i = fired.to(torch.int32)
                dist.all_reduce(fired_i)
                fired = fired_i > 0
            since_fired = torch.where(fired, 0, since_fired + cfg.batch_size)
        if step % log_every == 0 or step == cfg.n_steps - 1:
            with torch.no_grad():
                stats = torch.stack([out["mse"].detach(), out["sparsity"].detach(), (x * sae.scale).var(0).sum(),
                                     (out["acts"] > 0).float().sum(-1).mean()])
                if ddp:
                    dist.all_reduce(stats)
                    stats /= world
            mse, sparsity, var, l0 = stats.tolist()
            history.append({"step": step, "tokens": (step + 1) * cfg.batch_size, "mse": mse, "sparsity": sparsity,
                            "fve": 1 - mse / var, "l0": l0,
                            "dead_fraction": float((since_fired >= cfg.dead_tokens).float().mean()),
                            "seconds": time.perf_counter() - start})
    sae.eval()
    return sae, history


def sae_cache_path(cfg: SAEConfig, store: ActivationStore) -> Path:
    key = hashlib.sha256((repr(sorted(asdict(cfg).items())) + str(store.path.name if store.path else "")).encode())
    return _cache_root().parent / "sae" / f"{key.hexdigest()[:24]}.safetensors"


def train_or_load(cfg: SAEConfig, store: ActivationStore, device="cpu", progress: bool = True):
    """train_sae, cached on disk by config + activations (rebuilding the chapter does not retrain). Returns
    (sae, history, seconds spent training — 0 when read from the cache)."""
    import json

    path = sae_cache_path(cfg, store)
    if store.path is not None and path.exists():
        sae = SparseAutoencoder.load(path).to(device).eval()
        return sae, json.loads(path.with_suffix(".json").read_text()), 0.0
    start = time.perf_counter()
    sae, history = train_sae(cfg, store, device, progress=progress)
    seconds = time.perf_counter() - start
    if store.path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        sae.save(path)
        path.with_suffix(".json").write_text(json.dumps(history))
    return sae, history, seconds


# --------------------------------------------------------------------- data, interpretation, steering


def synthetic_dictionary_data(n_true: int, d: int, p: float, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Superposed data with a known dictionary: n_true random unit directions in d dims (returned [n_true, d]);
    each of n points is sum_i f_i * direction_i with f drawn by the rule of chapter 01's `sample_features` (each
    feature present with probability p, magnitude uniform on [0, 1])."""
    # a seed stream of its own: an SAE initialised with seed s must not start from these very directions
    gen = torch.Generator().manual_seed(1_000_003 * (seed + 1))
    dirs = torch.randn(n_true, d, generator=gen)
    dirs /= dirs.norm(dim=-1, keepdim=True)
    present = torch.rand(n, n_true, generator=gen) < p
    feats = torch.where(present, torch.rand(n, n_true, generator=gen), 0.0)
    return feats @ dirs, dirs


def top_contexts(window_acts: Tensor, latent: int, tokens: Tensor, tokenizer, k: int = 5, before: int = 10,
                 after: int = 3) -> list[str]:
    """The k strongest activations of `latent` in window_acts [n_windows, pos, width], each as a short text
    with the firing token in ⟦ ⟧ and the activation value."""
    acts = window_acts[..., latent]
    top = acts.flatten().topk(k)
    out = []
    for value, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        w, p = divmod(flat, acts.shape[1])
        left = tokenizer.decode(tokens[w, max(0, p - before) : p].tolist())
        mid = tokenizer.decode(tokens[w, p : p + 1].tolist())
        right = tokenizer.decode(tokens[w, p + 1 : p + 1 + after].tolist())
        out.append(f"{value:6.2f}  …{left}⟦{mid}⟧{right}…".replace("\n", "⏎"))
    return out


def feature_dashboard(window_acts: Tensor, latent: int, tokens: Tensor, tokenizer, effects: Tensor,
                      common: Tensor | None = None):
    """One figure for one latent: activation histogram, logit effects (top and bottom tokens, among `common`
    tokens if given), top contexts."""
    import matplotlib.pyplot as plt

    acts = window_acts[..., latent].flatten()
    fig = plt.figure(figsize=(13, 5.5))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.2])
    ax = fig.add_subplot(grid[0, 0])
    ax.hist(acts[acts > 0].numpy(), bins=40)
    ax.set_title(f"latent {latent}: non-zero activations (density {float((acts > 0).float().mean()):.2%})",
                 fontsize=9)
    ax = fig.add_subplot(grid[0, 1])
    keep = torch.ones(effects.shape[1], dtype=torch.bool) if common is None else common
    up = effects[latent].masked_fill(~keep, float("-inf")).topk(8)
    down = (-effects[latent]).masked_fill(~keep, float("-inf")).topk(8)
    labels = tokenizer.convert_ids_to_tokens(up.indices.tolist() + down.indices.tolist())
    values = up.values.tolist() + (-down.values).tolist()
    ax.barh(range(16), values, color=["tab:blue"] * 8 + ["tab:red"] * 8)
    ax.set_yticks(range(16), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_title("logit effects: W_dec[latent] @ W_U", fontsize=9)
    ax = fig.add_subplot(grid[1, :])
    ax.axis("off")
    ax.text(0, 1, "top-activating contexts\n" + "\n".join(top_contexts(window_acts, latent, tokens, tokenizer,
                                                                       k=8)),
            va="top", family="monospace", fontsize=8)
    fig.tight_layout()
    return fig


@torch.no_grad()
def sample_text(model, prompts: Tensor, n_new: int, hook: str, hook_fn, watch: Tensor,
                seed: int = 0, temperature: float = 1.0) -> tuple[list[str], float, float]:
    """Sample n_new tokens after each prompt row with `hook_fn` applied at `hook` (None: unsteered). Returns
    (texts, fraction of sampled tokens that are in `watch`, perplexity of the samples under the UNSTEERED
    model)."""
    gen = torch.Generator(device=prompts.device).manual_seed(seed)
    seq = prompts.clone()
    hooks = [(hook, hook_fn)] if hook_fn is not None else []
    for _ in range(n_new):
        logits = model.run_with_hooks(seq, hooks)[:, -1] / temperature
        nxt = torch.multinomial(logits.softmax(-1), 1, generator=gen)
        seq = torch.cat([seq, nxt], dim=1)
    new = seq[:, prompts.shape[1] :]
    logp = model(seq).log_softmax(-1)[:, prompts.shape[1] - 1 : -1].gather(-1, new[..., None])
    freq = float(torch.isin(new, watch.to(new.device)).float().mean())
    return model.tokenizer.batch_decode(new.tolist()), freq, float((-logp.mean()).exp())


@torch.no_grad()
def latent_survey(model, sae, hook: str, tokens: Tensor, min_count: int = 20) -> dict:
    """What the chapter needs to interpret an SAE on `tokens` [n_windows, pos]: "window_acts" [n_windows, pos,
    width] (CPU), "density" [width], "effects" [width, vocab] (logit effects W_dec[i] @ W_U in raw units),
    "common" (bool [vocab]: tokens seen at least `min_count` times in `tokens` — rare byte-level tokens have
    large, meaningless logit effects), "candidates" (latents firing on 0.1-2% of tokens: specific enough to
    name) and "steer" — the rule for the latent to steer with: the candidate with the largest logit effect on
    a common token."""
    window_acts = sae.encode(model.activation_at(tokens.to(model.device), hook)).cpu()
    density = (window_acts > 0).float().mean((0, 1))
    candidates = ((density > 1e-3) & (density < 2e-2)).nonzero().squeeze(-1)
    effects = ((sae.W_dec / sae.scale) @ model.W_U).cpu()
    common = torch.bincount(tokens.flatten().cpu(), minlength=effects.shape[1]) >= min_count
    on_common = effects.masked_fill(~common, float("-inf"))
    steer = int(candidates[on_common[candidates].max(-1).values.argmax()])
    return {"window_acts": window_acts, "density": density, "effects": effects, "common": common,
            "candidates": candidates, "steer": steer}


def promoted_tokens(survey: dict, latent: int, k: int = 10) -> Tensor:
    """The k common tokens a latent's decoder direction promotes most (its logit effects)."""
    return survey["effects"][latent].masked_fill(~survey["common"], float("-inf")).topk(k).indices


# ------------------------------------------------------------------------------------ command line / DDP


def main(argv: list[str] | None = None) -> bool:
    """`torchrun --nproc_per_node 2 -m mechinterp.course.toolkit.sae --preset cpu-small --out sae.safetensors`
    (or plain `python -m ...` for one process). `--synthetic N` trains on N seeded Gaussian vectors instead of a
    model's activations (what the DDP test uses); `--history FILE` writes the loss trajectory as JSON."""
    import json

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--preset", default="cpu-small", choices=sorted(PRESETS))
    p.add_argument("--out", default="sae.safetensors")
    p.add_argument("--history", default=None)
    p.add_argument("--synthetic", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--set", nargs="*", default=[], help="config overrides, e.g. width=512 n_tokens=100000")
    args = p.parse_args(argv)
    cfg = with_overrides(PRESETS[args.preset], dict(s.split("=", 1) for s in args.set))
    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    device = torch.device("cpu")
    if distributed:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if backend == "nccl":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("WORLD_SIZE", 1))))
    if args.synthetic:
        gen = torch.Generator().manual_seed(1234)
        store = ActivationStore.from_tensor(torch.randn(args.synthetic, cfg.d_in, generator=gen) * 3 + 1)
    else:
        from mechinterp.course.toolkit.model import load_model
        from mechinterp.course.toolkit.zoo import sae_sample_ids

        model = load_model(cfg.model, device)
        tokens = sae_sample_ids() if cfg.model.startswith("zoo/") else sample_tokens_for(model)
        store = ActivationStore(model, cfg.hook, tokens, progress=_world()[0] == 0)
    sae, history = train_sae(cfg, store, device, log_every=args.log_every)
    if _world()[0] == 0:
        sae.save(args.out)
        if args.history:
            Path(args.history).write_text(json.dumps(history))
        print(f"final FVE {history[-1]['fve']:.4f}, L0 {history[-1]['l0']:.1f}, "
              f"{history[-1]['seconds']:.1f} s -> {args.out}")
    if distributed:
        dist.barrier()  # every rank waits for rank 0's save
        dist.destroy_process_group()
    return distributed


def sample_tokens_for(model, n_ctx: int = 128) -> Tensor:
    """The zoo's SAE text sample re-tokenised for another model (e.g. GPT-2 small): the same English text."""
    from mechinterp.course.toolkit.zoo import load_zoo_tokenizer, sae_sample_ids

    text = load_zoo_tokenizer("text-lm").batch_decode(sae_sample_ids().tolist())
    ids = [i for t in text for i in model.tokenizer(t)["input_ids"]]
    n = len(ids) // n_ctx
    return torch.tensor(ids[: n * n_ctx]).view(n, n_ctx)


if __name__ == "__main__":
    if main():
        # A torchrun worker leaves at once once its work is saved and its group destroyed: on a loaded machine,
        # letting the interpreter tear down gloo's threads aborts the worker about one run in ten ("terminate
        # called without an active exception", measured under load), which fails a finished run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
