"""Collect activations over many sequences: batched, with a progress bar, in one disk cache.

    acts = collect(model, tokens, ["blocks.2.hook_resid_pre"])   # {name: [batch, pos, ...]} (safetensors file)
    resid = residual_stream(model, tokens)                         # [n_layers + 1, batch, pos, d_model]
    rows = activation_rows(model, tokens, "blocks.2.hook_resid_pre")  # [tokens, d] memory-mapped float32 file

The cache key is a hash of the model's weights, the tokens and the names, so a different model (or a
re-initialised one) never reads another's activations. Every file lives in `$MECHINTERP_CACHE/activations`
(default `~/.cache/mechinterp/activations`) and is written under a per-process temporary name, then renamed,
so two processes never clash and an interrupted run never leaves a half-written file; delete the folder to free
the space. `activation_rows` is what the sparse autoencoders' `ActivationStore` trains from: it never holds all
the activations in memory.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
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


def cache_path(model, tokens: Tensor, names: list[str], suffix: str) -> Path:
    """Where the activations of `names` over `tokens` are cached."""
    return cache_root() / "activations" / f"{fingerprint(model, tokens, names)}{suffix}"


def _write_atomically(path: Path, write) -> None:
    """write(temporary path), then rename it to `path` (atomic: readers see the whole file or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # one name per process: two writers never clash
    write(tmp)
    tmp.replace(path)


@torch.no_grad()
def collect(model, tokens: Tensor, names: list[str], batch_size: int = 32, cache: bool = True,
            progress: bool = True) -> dict[str, Tensor]:
    """{name: activation over all of `tokens`} on the CPU, computed in batches (or read from the disk cache)."""
    path = cache_path(model, tokens, names, ".safetensors")
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
        _write_atomically(path, lambda tmp: save_file({n: t.contiguous() for n, t in out.items()}, tmp))
    return out


@torch.no_grad()
def activation_rows(model, tokens: Tensor, hook: str, batch_size: int = 64, cache: bool = True,
                    progress: bool = True) -> tuple[np.ndarray, Path]:
    """The activation at `hook` of every token of `tokens` [n, pos], as a read-only memory-mapped float32 array
    [n * pos, d] (an .npy file in the cache; cache=False recomputes it), and the file's path."""
    path = cache_path(model, tokens, [hook], ".f32")
    if not (cache and path.exists()):
        d = model.cfg.n_embd

        def write(tmp: Path) -> None:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(tokens.numel(), d))
            row = 0
            for start in tqdm(range(0, len(tokens), batch_size), desc=f"activations at {hook}",
                              disable=not progress, leave=False):
                a = model.activation_at(tokens[start : start + batch_size].to(model.device), hook)
                a = a.reshape(-1, d).float().cpu().numpy()
                out[row : row + len(a)] = a
                row += len(a)
            out.flush()

        _write_atomically(path, write)
    return np.load(path, mmap_mode="r"), path


@exercise_twin("probing", "collect_residuals")
def residual_stream(model, tokens: Tensor, batch_size: int = 32, cache: bool = True, progress: bool = True) -> Tensor:
    """[n_layers + 1, batch, pos, d_model]: the residual stream entering each block and leaving the last."""
    names = resid_names(model.n_layers)
    acts = collect(model, tokens, names, batch_size, cache, progress)
    return torch.stack([acts[n] for n in names])
