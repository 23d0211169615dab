"""Sparse autoencoders at every scale: one model class, one activation store, one trainer (chapter 07).

    store = ActivationStore(model, "blocks.2.hook_resid_pre", tokens)      # memory-mapped on-disk cache
    sae, history = train_sae(PRESETS["cpu-small"], store)                 # ~2 min on 2 CPU cores
    recon, acts = sae(x)                                                  # raw activations in, raw out

    model.py       SAEConfig, presets, SparseAutoencoder (relu, topk, batchtopk, jumprelu), auxk_loss
    store.py       ActivationStore (activations from `toolkit.activations`' one disk cache), synthetic data
    train.py       train_sae (single process or DDP), train_or_load (a disk cache of trained SAEs)
    inspection.py  top contexts, feature dashboards, latent_survey, steered sampling
    __main__.py    `python -m mechinterp.course.toolkit.sae` (and under torchrun)

Everything is importable from this package, as the chapter does: `from mechinterp.course.toolkit.sae import ...`.
"""

from mechinterp.course.toolkit.sae.inspection import (
    feature_dashboard,
    latent_survey,
    promoted_tokens,
    sample_text,
    top_contexts,
)
from mechinterp.course.toolkit.sae.model import (
    ARCHS,
    PRESETS,
    SYNTHETIC_PRESETS,
    SAEConfig,
    SparseAutoencoder,
    auxk_loss,
    geometric_median,
    rectangle,
    with_overrides,
)
from mechinterp.course.toolkit.sae.store import ActivationStore, synthetic_dictionary_data
from mechinterp.course.toolkit.sae.train import sae_cache_path, train_or_load, train_sae

__all__ = ["ARCHS", "PRESETS", "SYNTHETIC_PRESETS", "ActivationStore", "SAEConfig", "SparseAutoencoder", "auxk_loss",
           "feature_dashboard", "geometric_median", "latent_survey", "promoted_tokens", "rectangle",
           "sae_cache_path", "sample_text", "synthetic_dictionary_data", "top_contexts", "train_or_load",
           "train_sae", "with_overrides"]
