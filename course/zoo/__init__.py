"""Shipped zoo model weights and their model cards (see `mechinterp zoo list`)."""
