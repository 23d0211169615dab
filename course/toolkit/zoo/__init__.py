"""The offline model zoo: small models we train ourselves, reproducibly, shipped as safetensors.

    load.py          loading an entry: weights, config, card, tokenizer, shipped token ids
    measure.py       what a language model does: attention patterns, induction scores, held-out loss, logit lens
    verification.py  `mechinterp zoo verify NAME`: the phenomena an entry is shipped for, re-measured
    train.py         `mechinterp zoo train NAME`: one training loop, one learning-rate schedule, saving an entry
    attn_only.py, text_lm.py, facts_lm.py, ioi_lm.py, liar_lm.py, sentiment_clf.py: one recipe module per model
    recipes.py       every recipe by name (`train(name)`)

The data each recipe trains on (the facts world, IOI prompts, sentiment sentences) lives with the chapter code
that also uses it (`toolkit.facts`, `toolkit.ioi`, `toolkit.sentiment`); the recipes import it, never the reverse.
This package's namespace holds loading and measuring; import verification and training from their modules.
"""

from mechinterp.course.toolkit.zoo.load import (
    ZeroMLP,
    heldout_ids,
    load_card,
    load_zoo_classifier,
    load_zoo_hf,
    load_zoo_tokenizer,
    make_attn_only,
    sae_sample_ids,
    sha256,
    wrap_tokenizer,
    zoo_dir,
    zoo_names,
)
from mechinterp.course.toolkit.zoo.measure import attention_patterns, heldout_loss, logit_lens_curve, measure_induction

__all__ = ["ZeroMLP", "attention_patterns", "heldout_ids", "heldout_loss", "load_card", "load_zoo_classifier",
           "load_zoo_hf", "load_zoo_tokenizer", "logit_lens_curve", "make_attn_only", "measure_induction",
           "sae_sample_ids", "sha256", "wrap_tokenizer", "zoo_dir", "zoo_names"]
