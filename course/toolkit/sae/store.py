"""What sparse autoencoders train on: a store of one hook point's activations, served in shuffled batches, and
synthetic data with a known dictionary."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from mechinterp.course.toolkit.activations import activation_rows
from torch import Tensor


class ActivationStore:
    """Activations of one hook point over a token set, computed once into a memory-mapped float32 file and
    then served in shuffled batches for as many epochs as training needs (no model forward passes after the
    first). The file lives in the activations cache (`toolkit.activations.activation_rows`), keyed by a hash of
    the model's weights, the tokens and the hook name."""

    def __init__(self, model, hook: str, tokens: Tensor, batch_size: int = 64, cache: bool = True,
                 progress: bool = True):
        self.hook, self.d = hook, model.cfg.n_embd
        self.acts, self.path = activation_rows(model, tokens, hook, batch_size, cache, progress)

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
