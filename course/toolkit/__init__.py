"""What learners import: models with hooks (`load_model`, `patch`), device selection and plotting helpers.

`load_model` and friends are imported lazily: chapters that need no transformer stay quick to start."""

from mechinterp.course.toolkit.device import get_device

__all__ = ["get_device", "load_model", "patch", "HookedModel", "ActivationCache"]


def __getattr__(name: str):
    if name in ("load_model", "patch", "HookedModel", "ActivationCache"):
        from mechinterp.course.toolkit import model

        return getattr(model, name)
    raise AttributeError(f"module 'mechinterp.course.toolkit' has no attribute {name!r}")
