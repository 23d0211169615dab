"""Synthetic data for the zoo and the chapters (all generated, seeded)."""

from __future__ import annotations

import torch


def induction_segments_batch(batch_size: int, n_ctx: int, vocab_size: int, generator: torch.Generator,
                             min_len: int = 4, max_len: int = 12) -> torch.Tensor:
    """Sequences of random segments where EVERY segment appears twice, pieces shuffled, cut to n_ctx.

    Repeats sit at widely varying offsets (adjacent or far apart), so position cannot predict them and about
    half the tokens are predictable in context: the recipe that forms induction heads in small
    attention-only models (Olsson et al. 2022's setup, scaled down). Returns [batch_size, n_ctx] long."""
    rows = []
    for _ in range(batch_size):
        pieces, length = [], 0
        while length < n_ctx:
            n = int(torch.randint(min_len, max_len + 1, (), generator=generator))
            seg = torch.randint(0, vocab_size, (n,), generator=generator)
            pieces += [seg, seg]
            length += 2 * n
        order = torch.randperm(len(pieces), generator=generator)
        rows.append(torch.cat([pieces[i] for i in order])[:n_ctx])
    return torch.stack(rows)


def repeated_random_tokens(batch_size: int, half: int, vocab_size: int, generator: torch.Generator,
                           low: int = 0) -> torch.Tensor:
    """[batch, 2 * half]: a random sequence followed by an exact copy (the induction test set)."""
    first = torch.randint(low, vocab_size, (batch_size, half), generator=generator)
    return torch.cat([first, first], dim=1)
