"""Conformance with TransformerLens 3.9 (the `[dev]` extra installs it from PyPI): every zoo language model,
taken into TransformerLens with `to_hooked_transformer`, holds the same numbers at every hook point both libraries
have, and TransformerLens-style hook functions do the same thing on both."""

from __future__ import annotations

import warnings

import pytest
import torch
import transformer_lens
from mechinterp.course.toolkit.interop import to_hooked_transformer, transformer_lens_state_dict
from mechinterp.course.toolkit.model import load_model
from mechinterp.course.toolkit.zoo import zoo_names
from transformer_lens.utilities import get_act_name

LANGUAGE_MODELS = [n for n in zoo_names() if n != "sentiment-clf"]  # the classifier has no unembedding
# where the two libraries differ by design (docs/toolkit.md lists them): hook_tokens exists only here (TL 3.9 has
# it behind cfg.use_hook_tokens); attention-only TL blocks have no hook_resid_mid (it equals hook_resid_post)
ONLY_OURS = {"hook_tokens"}


def _models(name):
    ours = load_model(f"zoo/{name}", "cpu")
    return ours, to_hooked_transformer(ours)


def test_transformer_lens_version_is_the_one_the_docs_name():
    from importlib.metadata import version

    from mechinterp.course.toolkit.interop import TRANSFORMER_LENS_VERSION

    assert version("transformer-lens") == TRANSFORMER_LENS_VERSION
    assert hasattr(transformer_lens, "HookedTransformer")


@pytest.mark.parametrize("name", LANGUAGE_MODELS)
def test_every_shared_hook_point_agrees(name):
    ours, tl = _models(name)
    tokens = torch.randint(0, ours.d_vocab, (3, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits, cache = ours.run_with_cache(tokens)
        tl_logits, tl_cache = tl.run_with_cache(tokens)
    only_ours = set(cache) - set(tl_cache)
    expected = ONLY_OURS | ({f"blocks.{l}.hook_resid_mid" for l in range(ours.n_layers)} if ours.attn_only else set())
    assert only_ours == expected and not set(tl_cache) - set(cache)
    causal = torch.ones(16, 16, dtype=torch.bool).tril()
    for point in sorted(set(cache) & set(tl_cache)):
        a, b = cache[point], tl_cache[point]
        assert a.shape == b.shape, point
        if point.endswith("hook_attn_scores"):  # masked entries: -inf in TL, the dtype's minimum here
            a, b = a[..., causal], b[..., causal]
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=point)
    torch.testing.assert_close(logits, tl_logits, atol=1e-4, rtol=1e-4)


def test_our_weight_export_equals_transformer_lens_own_gpt2_conversion():
    """An independent check of the W_Q / b_Q / W_in ... accessors: TL's converter reads the HF model itself."""
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

    ours = load_model("zoo/facts-lm-v2", "cpu")
    tl = to_hooked_transformer(ours)
    theirs = convert_gpt2_weights(ours.hf, tl.cfg)
    mine = transformer_lens_state_dict(ours)
    assert set(theirs) <= set(mine) | {"unembed.b_U"}
    for key, value in theirs.items():
        torch.testing.assert_close(mine[key], value, msg=key)


@pytest.mark.parametrize("name", ["attn-only-2l", "facts-lm"])
def test_in_place_transformer_lens_style_hooks_do_the_same_on_both(name):
    """TL's idiom (edit the tensor in place, return None; names from get_act_name; hook.layer()) runs
    unchanged on our model and moves the logits exactly as on TL, at every shared hook point."""
    ours, tl = _models(name)
    tokens = torch.randint(0, ours.d_vocab, (2, 9), generator=torch.Generator().manual_seed(1))

    def halve(act, hook):
        act[:, 1:] *= 0.5 + 0.1 * hook.layer() if hook.name.startswith("blocks.") else 0.5

    with torch.no_grad():
        _, cache = ours.run_with_cache(tokens)
        for point in sorted(set(cache) - ONLY_OURS):
            if point not in tl.hook_dict or (point.endswith("hook_resid_mid") and ours.attn_only):
                continue
            if point.endswith(("hook_pattern", "hook_attn_scores")):  # [batch, head, q, k]: edit a head instead
                def fn(act, hook):
                    act[:, 0] *= 0.5
            else:
                fn = halve
            a = ours.run_with_hooks(tokens, fwd_hooks=[(point, fn)])
            b = tl.run_with_hooks(tokens, fwd_hooks=[(point, fn)])
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=point)
        # a head ablation written for TL, by TL's own name helper
        z = get_act_name("z", 1)

        def ablate_head(act, hook):
            act[:, :, 3] = 0.0

        a = ours.run_with_hooks(tokens, fwd_hooks=[(z, ablate_head)])
        b = tl.run_with_hooks(tokens, fwd_hooks=[(z, ablate_head)])
    assert not torch.allclose(a, ours(tokens))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_to_hooked_transformer_is_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        to_hooked_transformer(load_model("zoo/attn-only-1l", "cpu"))
