"""The sparse autoencoder: configuration and presets, the four architectures, their losses, and saving.

Architectures (`SAEConfig.arch`): "relu" (ReLU + decoder-norm-weighted L1, Bricken et al. 2023), "topk" (TopK +
AuxK dead-latent loss, Gao et al. 2024), "batchtopk" (top k x batch over the whole batch while training, a
learned global threshold at inference, Bussmann et al. 2024), "jumprelu" (a learned threshold per latent trained
with straight-through rectangle-kernel gradients and an L0 penalty, Rajamanoharan et al. 2024).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from mechinterp.course.toolkit.twins import exercise_twin
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

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
        meta = {k: str(v) for k, v in asdict(self.cfg).items()}
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> SparseAutoencoder:
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
