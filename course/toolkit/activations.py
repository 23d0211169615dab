"""Collect named activations over many sequences: batched, with a progress bar, cached on disk.

    acts = collect(model, tokens, ["blocks.2.hook_resid_pre"])   # {name: [batch, pos, ...]}
    resid = residual_stream(model, tokens)                         # [n_layers + 1, batch, pos, d_model]

The cache key is a hash of the model's weights, the tokens and the names, so a different model (or a
re-initialised one) never reads another's activations. Files live in `$MECHINTERP_CACHE/activations`
(default `~/.cache/mechinterp/activations`); delete the folder to free the space.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from mechinterp.course.toolkit.twins import exercise_twin
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm.auto import tqdm


def cache_root() -> Path:
    return Path(os.environ.get("MECHINTERP_CACHE", Path.home() / ".cache" / "mechinterp"))


def fingerprint(model, tokens: Tensor, names: list[str]) -> str:
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    h.update(tokens.cpu().contiguous().numpy().tobytes())
    h.update(repr(list(tokens.shape)).encode())
    h.update("|".join(names).encode())
    return h.hexdigest()[:24]


def resid_names(n_layers: int) -> list[str]:
    """The residual stream entering every block, and leaving the last: n_layers + 1 names."""
    return [f"blocks.{layer}.hook_resid_pre" for layer in range(n_layers)] + [f"blocks.{n_layers - 1}.hook_resid_post"]


@torch.no_grad()
def collect(model, tokens: Tensor, names: list[str], batch_size: int = 32, cache: bool = True,
            progress: bool = True) -> dict[str, Tensor]:
    """{name: activation over all of `tokens`} on the CPU, computed in batches (or read from the disk cache)."""
    path = cache_root() / "activations" / f"{fingerprint(model, tokens, names)}.safetensors"
    if cache and path.exists():
        return load_file(path)
    parts: dict[str, list[Tensor]] = {n: [] for n in names}
    for start in tqdm(range(0, len(tokens), batch_size), desc=f"activations of {model.name or 'model'}",
                      disable=not progress, leave=False):
        _, acts = model.run_with_cache(tokens[start : start + batch_size].to(model.device), names_filter=names)
        for n in names:
            parts[n].append(acts[n].cpu())
    out = {n: torch.cat(p) for n, p in parts.items()}
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # one name per process: two writers never clash
        save_file({n: t.contiguous() for n, t in out.items()}, tmp)
        tmp.replace(path)  # atomic: an interrupted run never leaves a half-written cache file
    return out


@exercise_twin("probing", "collect_residuals")
def residual_stream(model, tokens: Tensor, batch_size: int = 32, cache: bool = True, progress: bool = True) -> Tensor:
    """[n_layers + 1, batch, pos, d_model]: the residual stream entering each block and leaving the last."""
    names = resid_names(model.n_layers)
    acts = collect(model, tokens, names, batch_size, cache, progress)
    return torch.stack([acts[n] for n in names])
