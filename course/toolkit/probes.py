"""Probe utilities the chapters share: a high-capacity MLP probe and seeded subsampling.

A *fit* function has the signature fit(x [n, d], y [n]) -> predict, where predict(x) returns labels."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def subsample(mask: Tensor, max_n: int, seed: int = 0) -> Tensor:
    """`mask` with at most max_n True entries kept (a seeded random subset)."""
    idx = mask.flatten().nonzero()[:, 0]
    if len(idx) > max_n:
        idx = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))[:max_n]]
    out = torch.zeros(mask.numel(), dtype=torch.bool, device=mask.device)
    out[idx] = True
    return out.view(mask.shape)


def mlp_probe(x: Tensor, y: Tensor, n_classes: int | None = None, hidden: int = 128, steps: int = 200,
              lr: float = 1e-2, seed: int = 0):
    """Train a one-hidden-layer ReLU MLP probe (Adam, full batch, standardised inputs); returns predict.

    The high-capacity probe of Hewitt & Liang's comparison: with enough hidden units it can memorise a label
    per word type, which is exactly what a control task measures."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(),
                            nn.Linear(hidden, n_classes or int(y.max()) + 1)).to(x.device)
    opt = torch.optim.Adam(net.parameters(), lr)
    z = (x - mu) / sd
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(net(z), y).backward()
            opt.step()
    net.requires_grad_(False)
    return lambda q: net((q - mu) / sd).argmax(-1)


def accuracy(predict, x: Tensor, y: Tensor) -> float:
    return float((predict(x) == y).float().mean())


def memorisation_accuracy(types: Tensor, labels: Tensor, train: Tensor, test: Tensor) -> float:
    """A probe that only memorises words: each test token gets its type's most frequent TRAINING label (the
    training majority for types never seen). types, labels: same shape; train, test: boolean masks."""
    counts = torch.zeros(int(types.max()) + 1, int(labels.max()) + 1)
    counts.index_put_((types[train], labels[train]), torch.ones(int(train.sum())), accumulate=True)
    guess = counts.argmax(-1)
    guess[counts.sum(-1) == 0] = torch.bincount(labels[train]).argmax()
    return float((guess[types[test]] == labels[test]).float().mean())
