"""Device selection: CPU everywhere, CUDA when present."""

from __future__ import annotations

import torch


def get_device(device: str | torch.device = "auto") -> torch.device:
    """`"auto"` picks CUDA when available, else CPU; anything else is passed to torch.device."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
