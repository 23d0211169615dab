"""What learners import: device selection and plotting helpers (models and hooks arrive with the zoo)."""

from mechinterp.course.toolkit.device import get_device, seed_everything

__all__ = ["get_device", "seed_everything"]
