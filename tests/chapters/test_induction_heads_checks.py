"""Every chapter-03 check: the reference passes, a correct alternative passes, plausible mistakes fail with
their specific hint."""

from __future__ import annotations

import pytest
import torch
from check_testing import CheckTester
from mechinterp.course.toolkit.model import patch

T = CheckTester("induction_heads")
CH, CHECKS = T.chapter, T.checks
assert_passes, assert_fails = T.passes, T.fails



def test_reference_passes_every_check(ref):
    T.reference_passes(ref)


# ------------------------------------------------------------------------------------- per_token_loss


@pytest.mark.parametrize("fn, hint", [
    (lambda logits, tokens: -logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0], "did not shift"),
    (lambda logits, tokens: -logits[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0], "log_softmax"),
    (lambda logits, tokens: logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0], "NEGATIVE"),
    (lambda logits, tokens: torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:]),
     "not a mean"),
])
def test_per_token_loss_mistakes(fn, hint):
    assert_fails("per_token_loss", fn, hint)


def test_per_token_loss_alternative():
    assert_passes("per_token_loss", lambda logits, tokens: torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none"))


# ------------------------------------------------------------------------------------ head detectors


def prev_alt(pattern):
    n = pattern.shape[-1]
    idx = torch.arange(1, n)
    return pattern[:, :, idx, idx - 1].mean((0, 2))


@pytest.mark.parametrize("fn, hint", [
    (lambda p: p.diagonal(dim1=-2, dim2=-1).mean((0, -1)), "the diagonal"),
    (lambda p: p.diagonal(-1, -2, -1).mean(), "one score per head"),
    (lambda p: p.diagonal(1, -2, -1).mean((0, -1)), "query is the third axis"),
])
def test_prev_token_score_mistakes(fn, hint):
    assert_fails("prev_token_score", fn, hint)


def test_prev_token_score_alternative():
    assert_passes("prev_token_score", prev_alt)


def induction_alt(pattern, half):
    q = torch.arange(half, 2 * half)
    return pattern[:, :, q, q - half + 1].mean((0, 2))


@pytest.mark.parametrize("fn, hint", [
    (lambda p, half: p.diagonal(-half, -2, -1).mean((0, -1)), "not to the earlier occurrence itself"),
    (lambda p, half: p.diagonal(1 - half, -2, -1).mean((0, -1)), "you included q = half - 1"),
    (lambda p, half: p.diagonal(-1 - half, -2, -1).mean((0, -1)), "not q - half - 1"),
    (lambda p, half: induction_alt(p, half).mean(), "one score per head"),
])
def test_induction_score_mistakes(fn, hint):
    assert_fails("induction_score", fn, hint)


def test_induction_score_alternative():
    assert_passes("induction_score", induction_alt)


@pytest.mark.parametrize("fn, hint", [
    (induction_alt, "that is the induction score"),
    (lambda p, half: p.diagonal(-half, -2, -1).mean(), "one score per head"),
    (lambda p, half: p.diagonal(-half - 1, -2, -1).mean((0, -1)), "q - half exactly"),
])
def test_duplicate_token_score_mistakes(fn, hint):
    assert_fails("duplicate_token_score", fn, hint)


def test_duplicate_token_score_alternative():
    def alt(pattern, half):
        q = torch.arange(half, 2 * half)
        return pattern[:, :, q, q - half].mean((0, 2))

    assert_passes("duplicate_token_score", alt)


# ----------------------------------------------------------------------------------------- logit lens


def lens_variant(ln=True, shift=True, probs=False, final=True):
    def lens(model, tokens):
        names = [f"blocks.{l}.hook_resid_pre" for l in range(model.n_layers)]
        if final:
            names.append(f"blocks.{model.n_layers - 1}.hook_resid_post")
        _, cache = model.run_with_cache(tokens, names_filter=names)
        resid = torch.stack([cache[n] for n in names])
        x = model.ln_final(resid) if ln else resid
        logp = (x @ model.W_U).log_softmax(-1)
        targets = tokens[:, 1:] if shift else tokens[:, :-1]
        out = logp[:, :, :-1].gather(-1, targets[None, :, :, None].expand(len(names), -1, -1, 1))[..., 0]
        return out.exp() if probs else out

    return lens


@pytest.mark.parametrize("flags, hint", [
    (dict(ln=False), "final LayerNorm"),
    (dict(shift=False), "shift the targets"),
    (dict(probs=True), "not probabilities"),
    (dict(final=False), "resid_post of the last"),
])
def test_logit_lens_mistakes(flags, hint):
    assert_fails("logit_lens", lens_variant(**flags), hint)


def test_logit_lens_alternative():
    def alt(model, tokens):  # hooks instead of the cache, one layer at a time
        rows = []
        for layer in range(model.n_layers + 1):
            name = (f"blocks.{layer}.hook_resid_pre" if layer < model.n_layers
                    else f"blocks.{model.n_layers - 1}.hook_resid_post")
            grabbed = {}
            with model.hooks([(name, lambda act, hook, store=grabbed: store.setdefault("x", act))]):
                model(tokens)
            logits = model.ln_final(grabbed["x"]) @ model.W_U
            rows.append(-torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:],
                                                           reduction="none"))
        return torch.stack(rows)

    assert_passes("logit_lens", alt)


# ------------------------------------------------------------------------------ logit attribution


def dla_variant(centre=True, scale=True, weight=True, shift=True):
    def dla(result, final_resid, ln_weight, W_U, tokens, eps=1e-5):
        r = result[:, :-1]
        if centre:
            r = r - r.mean(-1, keepdim=True)
        if scale:
            r = r / (final_resid[:, :-1].var(-1, unbiased=False) + eps).sqrt()[..., None, None]
        w = ln_weight if weight else torch.ones_like(ln_weight)
        t = tokens[:, 1:] if shift else tokens[:, :-1]
        cols = (w[:, None] * W_U)[:, t]  # [d, b, p]
        return torch.einsum("bphd,dbp->hbp", r, cols)

    return dla


def test_head_logit_attribution_unbiased_std_is_named():
    def literal_std(result, final_resid, ln_weight, W_U, tokens, eps=1e-5):
        scale = final_resid.std(-1, keepdim=True)[:, :-1, None]
        centred = result[:, :-1] - result[:, :-1].mean(-1, keepdim=True)
        return torch.einsum("bphm,mbp->hbp", centred / scale, (ln_weight[:, None] * W_U)[:, tokens[:, 1:]])

    assert_fails("head_logit_attribution", literal_std, "BIASED std")


@pytest.mark.parametrize("flags, hint", [
    (dict(centre=False), "centre each head"),
    (dict(scale=False), "divide by the final LayerNorm's scale"),
    (dict(weight=False), "LayerNorm weight"),
    (dict(shift=False), "tokens[:, i + 1]"),
])
def test_head_logit_attribution_mistakes(flags, hint):
    assert_fails("head_logit_attribution", dla_variant(**flags), hint)


def test_head_logit_attribution_alternative():
    assert_passes("head_logit_attribution", dla_variant())


# ----------------------------------------------------------------------------------------- ablation


def ablation_variant(ref, second_half=True, real_mean=True):
    def ablate(model, tokens, layer, head, how="zero"):
        name = f"blocks.{layer}.attn.hook_z"
        if how == "mean" and real_mean:
            _, cache = model.run_with_cache(tokens, names_filter=name)
            hook = patch("mean", cache[name].mean((0, 1)), head=head)
        else:
            hook = patch("zero", head=head)
        with model.hooks([(name, hook)]):
            losses = ref["per_token_loss"](model(tokens), tokens)
        half = tokens.shape[1] // 2
        return losses[:, half:].mean() if second_half else losses.mean()

    return ablate


@pytest.mark.parametrize("flags, hint", [
    (dict(second_half=False), "second) half only"),
    (dict(real_mean=False), "MEAN over batch and positions"),
])
def test_ablated_repeat_loss_mistakes(ref, flags, hint):
    assert_fails("ablated_repeat_loss", ablation_variant(ref, **flags), hint)


def test_ablated_repeat_loss_mistake_per_position_mean(ref):
    def per_position_mean(model, tokens, layer, head, how="zero"):
        name = f"blocks.{layer}.attn.hook_z"
        _, cache = model.run_with_cache(tokens, names_filter=name)
        value = cache[name].mean(0, keepdim=True).expand_as(cache[name]) if how == "mean" else 0 * cache[name]

        def hook(z, hp):
            z = z.clone()
            z[:, :, head] = value[:, :, head]
            return z

        with model.hooks([(name, hook)]):
            losses = ref["per_token_loss"](model(tokens), tokens)
        return losses[:, tokens.shape[1] // 2:].mean()

    assert_fails("ablated_repeat_loss", per_position_mean, "ONE mean vector per head")


def test_ablated_repeat_loss_leaking_hooks_is_caught_and_cleaned(ref):
    def raw_torch_hook(model, tokens, layer, head, how="zero"):
        """Zero-ablates with a raw PyTorch hook on W_O's input and never removes it."""
        d_head = model.d_head

        def zero(module, args):
            z = args[0].clone()
            z[..., head * d_head : (head + 1) * d_head] = 0
            return (z,)

        model.hf.transformer.h[layer].attn.c_proj.register_forward_pre_hook(zero)
        losses = ref["per_token_loss"](model(tokens), tokens)
        return losses[:, tokens.shape[1] // 2:].mean()

    assert_fails("ablated_repeat_loss", raw_torch_hook, "left hooks attached")
    assert_passes("ablated_repeat_loss", ref["ablated_repeat_loss"])  # the shared test model is clean again


def test_ablated_repeat_loss_alternative(ref):
    def alt(model, tokens, layer, head, how="zero"):
        name = f"blocks.{layer}.attn.hook_z"
        replacement = None
        if how == "mean":
            _, cache = model.run_with_cache(tokens, names_filter=name)
            replacement = cache[name][:, :, head].mean((0, 1))

        def hook(z, hp):
            z = z.clone()
            z[:, :, head] = 0 if replacement is None else replacement
            return z

        logits = model.run_with_hooks(tokens, [(name, hook)])
        half = tokens.shape[1] // 2
        return torch.nn.functional.cross_entropy(logits[:, half:-1].reshape(-1, logits.shape[-1]),
                                                 tokens[:, half + 1:].reshape(-1))

    assert_passes("ablated_repeat_loss", alt)


# ------------------------------------------------------------------------------ weights-based scores


@pytest.mark.parametrize("fn, hint", [
    (lambda A, B: torch.linalg.matrix_norm(A @ B), "divide by"),
    (lambda A, B: torch.linalg.matrix_norm(B @ A) / (torch.linalg.matrix_norm(A) * torch.linalg.matrix_norm(B)),
     "the order matters"),
    (lambda A, B: torch.linalg.matrix_norm(A @ B, ord=2) / (torch.linalg.matrix_norm(A, ord=2)
                                                            * torch.linalg.matrix_norm(B, ord=2)), "spectral"),
])
def test_composition_score_mistakes(fn, hint):
    assert_fails("composition_score", fn, hint)


def test_composition_score_alternative():
    def alt(A, B):
        return ((A @ B) ** 2).sum((-2, -1)).sqrt() / ((A**2).sum((-2, -1)) * (B**2).sum((-2, -1))).sqrt()

    assert_passes("composition_score", alt)


@pytest.mark.parametrize("fn, hint", [
    (lambda M: (M.argmax(-2) == torch.arange(M.shape[-1])).float().mean(-1), "output axis"),
    (lambda M: (M.argmax(-1) == torch.arange(M.shape[-1])).float().sum(-1), "not a count"),
    (lambda M: (M.diagonal(dim1=-2, dim2=-1) > 0).float().mean(-1), "HIGHEST"),
])
def test_copying_fraction_mistakes(fn, hint):
    assert_fails("copying_fraction", fn, hint)


def test_copying_fraction_alternative():
    def alt(M):
        return (M.diagonal(dim1=-2, dim2=-1)[..., None] >= M).all(-1).float().mean(-1)

    assert_passes("copying_fraction", alt)


@pytest.mark.parametrize("name, answer, hint", [
    ("drill_induction_needs", "a", "only looks one step back"),
    ("drill_induction_needs", "c", "MLP is not needed"),
    ("drill_induction_needs", "d", "positional embeddings"),
    ("drill_one_layer_cannot", "b", "skip-trigrams"),
    ("drill_one_layer_cannot", "c", "same data and steps"),
    ("drill_one_layer_cannot", "d", "cannot read each other"),
    ("drill_logit_lens_assumes", "a", "changes nothing"),
    ("drill_logit_lens_assumes", "b", "no training"),
    ("drill_logit_lens_assumes", "c", "any depth"),
])
def test_drill_wrong_answers(name, answer, hint):
    assert_fails(name, lambda: answer, hint)


@pytest.mark.parametrize("name, answer", [
    ("drill_induction_needs", "B"), ("drill_one_layer_cannot", " a"), ("drill_logit_lens_assumes", "d"),
])
def test_drill_right_answers(name, answer):
    assert_passes(name, lambda: answer)
