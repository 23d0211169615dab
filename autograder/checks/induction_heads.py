"""Checks for chapter 03 (induction heads and the logit lens). Inputs are generated here (random patterns,
tensors and small random-weight GPT-2 models), so the checks do not depend on the zoo's weights."""

from __future__ import annotations

import functools

import torch
from mechinterp.autograder.checks._models import tiny_gpt2
from mechinterp.autograder.harness import (
    CheckFailure,
    call,
    call_observed,
    case_seed,
    exercise,
    expect_close,
    expect_equal_answer,
)
from mechinterp.autograder.replay import reference_module
from mechinterp.course.toolkit.model import HookedModel
from torch import Tensor

CHAPTER = "induction_heads"
ref = reference_module("induction_heads")  # or, in the student kit, its answer pack


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(case_seed(seed))


def _patterns(batch: int, heads: int, n: int, seed: int) -> Tensor:
    scores = torch.randn(batch, heads, n, n, generator=_gen(seed)) * 2
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(-1)


@functools.lru_cache(maxsize=2)
def _tiny_model(attn_only: bool) -> HookedModel:
    return tiny_gpt2(1234, vocab_size=50, n_embd=24, n_layer=2, n_head=3, attn_only=attn_only)


@exercise(CHAPTER, points=1)
def check_per_token_loss(fn) -> None:
    for seed, (b, p, v) in enumerate([(2, 7, 11), (1, 2, 5), (4, 16, 50)]):
        logits = torch.randn(b, p, v, generator=_gen(seed)) * 3
        tokens = torch.randint(0, v, (b, p), generator=_gen(seed + 9))
        log_probs = logits.log_softmax(-1)
        expect_close(call(fn, logits, tokens), ref.per_token_loss(logits, tokens), what="loss",
                     case=f"logits {list(logits.shape)}", mistakes={
            "position i predicts tokens[:, i + 1]: compare logits[:, :-1] with tokens[:, 1:] (you did not shift)":
                -log_probs.gather(-1, tokens[..., None])[..., 0],
            "use log_softmax of the logits, not the raw logits":
                -logits[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0],
            "the loss is the NEGATIVE log-probability (>= 0)":
                log_probs[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0],
            "return one loss per prediction, shape [batch, pos - 1], not a mean": ref.per_token_loss(logits, tokens)
                .mean(),
        })


@exercise(CHAPTER, points=1)
def check_prev_token_score(fn) -> None:
    for seed, (b, h, n) in enumerate([(3, 4, 10), (1, 2, 2), (5, 3, 64)]):
        pattern = _patterns(b, h, n, seed)
        expect_close(call(fn, pattern), ref.prev_token_score(pattern), what="score", case=f"pattern {[b, h, n, n]}",
                     mistakes={
            "that is attention to the token itself (the diagonal); the previous token is one step back, "
            "pattern[..., i, i - 1]": pattern.diagonal(dim1=-2, dim2=-1).mean((0, -1)),
            "average over the batch and positions, one score per head": pattern.diagonal(-1, -2, -1).mean(),
            "query is the third axis and key the fourth: pattern[b, h, i, i - 1], not pattern[b, h, i - 1, i]":
                pattern.diagonal(1, -2, -1).mean((0, -1)) if n > 1 else torch.zeros(h),
        })


@exercise(CHAPTER, points=1)
def check_duplicate_token_score(fn) -> None:
    for seed, (b, h, half) in enumerate([(3, 4, 6), (2, 2, 1), (4, 3, 16)]):
        pattern = _patterns(b, h, 2 * half, seed)
        expect_close(call(fn, pattern, half), ref.duplicate_token_score(pattern, half), what="score",
                     case=f"half={half}", mistakes={
            "that is the induction score (the token AFTER the earlier occurrence); a duplicate-token head "
            "attends to the earlier occurrence itself, q - half": ref.induction_score(pattern, half),
            "average over the batch and positions, one score per head": ref.duplicate_token_score(pattern, half)
                .mean(),
            "the earlier occurrence of the token at q is at q - half exactly, not q - half - 1":
                pattern.diagonal(-1 - half, -2, -1).mean((0, -1)) if half > 1 else torch.zeros(h),
        })


@exercise(CHAPTER, points=2)
def check_induction_score(fn) -> None:
    for seed, (b, h, half) in enumerate([(3, 4, 6), (2, 2, 2), (4, 3, 16)]):
        pattern = _patterns(b, h, 2 * half, seed)
        d = pattern.diagonal(1 - half, -2, -1)  # includes q = half - 1 (a first-half position)
        expect_close(call(fn, pattern, half), ref.induction_score(pattern, half), what="score",
                     case=f"half={half}", mistakes={
            "an induction head attends to the token AFTER the earlier occurrence (q - half + 1), not to the "
            "earlier occurrence itself (that is the duplicate-token score)": ref.duplicate_token_score(pattern, half),
            "use only second-half queries q = half .. 2 * half - 1: you included q = half - 1, whose token has no "
            "earlier occurrence": d.mean((0, -1)),
            "the token after the earlier occurrence is at q - half + 1, not q - half - 1":
                pattern.diagonal(-1 - half, -2, -1).mean((0, -1)) if half > 1 else torch.zeros(h),
            "average over the batch and positions, one score per head": ref.induction_score(pattern, half).mean(),
        })


@exercise(CHAPTER, points=2)
def check_logit_lens(fn) -> None:
    model = _tiny_model(attn_only=False)
    tokens = torch.randint(0, 50, (3, 12), generator=_gen(3))
    want = ref.logit_lens(model, tokens).detach()
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(model.n_layers)] + ["blocks.1.hook_resid_post"]
    _, cache = model.run_with_cache(tokens, names_filter=names)
    resid = torch.stack([cache[n] for n in names])
    no_ln = (resid @ model.W_U).log_softmax(-1)[:, :, :-1].gather(
        -1, tokens[None, :, 1:, None].expand(3, -1, -1, 1))[..., 0]
    unshifted = (model.ln_final(resid) @ model.W_U).log_softmax(-1).gather(
        -1, tokens[None, :, :, None].expand(3, -1, -1, 1))[..., 0][:, :, :-1]
    with torch.no_grad():
        got = call(fn, model, tokens)
    expect_close(got, want, what="logit lens", case="a random 2-layer model", atol=1e-4, rtol=1e-4, mistakes={
        "apply the final LayerNorm (model.ln_final) before the unembedding: the model never reads the raw "
        "residual stream": no_ln.detach(),
        "the prediction at position i is for tokens[:, i + 1]: shift the targets": unshifted.detach(),
        "return log-probabilities (log_softmax), not probabilities": want.exp(),
        "decode n_layers + 1 points: resid_pre of every block AND resid_post of the last": want[:-1],
    })
    if not torch.allclose(got[-1], ref.per_token_loss(model(tokens), tokens).neg(), atol=1e-4):
        raise CheckFailure("the last row should equal the model's own log-probabilities")


@exercise(CHAPTER, points=2)
def check_head_logit_attribution(fn) -> None:
    for seed, (b, p, h, d, v) in enumerate([(2, 6, 3, 8, 13), (1, 3, 1, 4, 5), (3, 9, 4, 16, 30)]):
        g = _gen(seed)
        result = torch.randn(b, p, h, d, generator=g)
        resid = torch.randn(b, p, d, generator=g) * 3 + 1
        ln_w = torch.rand(d, generator=g) + 0.5
        W_U = torch.randn(d, v, generator=g)
        tokens = torch.randint(0, v, (b, p), generator=g)
        want = ref.head_logit_attribution(result, resid, ln_w, W_U, tokens)
        scale = (resid.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()[:, :-1, None]
        centred = result[:, :-1] - result[:, :-1].mean(-1, keepdim=True)
        dirs = (ln_w[:, None] * W_U)[:, tokens[:, 1:]]
        expect_close(call(fn, result, resid, ln_w, W_U, tokens), want, what="attribution",
                     case=f"result {[b, p, h, d]}", atol=1e-4, rtol=1e-4, mistakes={
            "centre each head's output (subtract its mean over d_model): LayerNorm removes the mean":
                torch.einsum("bphm,mbp->hbp", result[:, :-1] / scale, dirs),
            "divide by the final LayerNorm's scale, std(final_resid) (frozen at this input)":
                torch.einsum("bphm,mbp->hbp", centred, dirs),
            "multiply by the LayerNorm weight ln_weight before W_U":
                torch.einsum("bphm,mbp->hbp", centred / scale, W_U[:, tokens[:, 1:]]),
            "the logit that matters at position i is that of tokens[:, i + 1]":
                torch.einsum("bphm,mbp->hbp", centred / scale, (ln_w[:, None] * W_U)[:, tokens[:, :-1]]),
            "LayerNorm's scale is the BIASED std, sqrt(var(-1, unbiased=False) + eps): torch's .std() divides by "
            "d - 1 (unbiased), which makes the attribution sqrt((d - 1) / d) times too small":
                torch.einsum("bphm,mbp->hbp", centred / resid.std(-1, keepdim=True)[:, :-1, None], dirs),
        })


@exercise(CHAPTER, points=2)
def check_ablated_repeat_loss(fn) -> None:
    model = _tiny_model(attn_only=True)
    first = torch.randint(1, 50, (4, 6), generator=_gen(5))
    tokens = torch.cat([first, first], 1)  # [4, 12]
    for layer, head, how in [(0, 1, "zero"), (1, 2, "mean"), (1, 0, "zero"), (0, 0, "mean")]:
        with torch.no_grad():
            want = ref.ablated_repeat_loss(model, tokens, layer, head, how)
            got, leaked = call_observed(lambda: _remove_leftover_hooks(model), fn, model, tokens, layer, head, how)
        if leaked or _remove_leftover_hooks(model):  # clean up, so the shared test model stays usable
            raise CheckFailure("your function left hooks attached to the model: use `with model.hooks(...)` so "
                               "they are removed when the block ends (or call .remove() on every handle)")
        case = f"layer {layer}, head {head}, how={how!r}"
        name = f"blocks.{layer}.attn.hook_z"

        def loss_with_head_set_to(value: Tensor, name=name, head=head) -> Tensor:
            with torch.no_grad(), model.hooks([(name, lambda z, hk: _set_head(z, head, value))]):
                return ref.per_token_loss(model(tokens), tokens)

        zeroed = loss_with_head_set_to(torch.zeros(1, 1, model.n_heads, model.d_head))
        if how == "zero":
            mistakes = {"average the loss over the repeated (second) half only: positions half .. 2 * half - 2 of "
                        "the per-token loss": zeroed.mean()}
        else:
            _, z_cache = model.run_with_cache(tokens, names_filter=name)
            per_position = z_cache[name].mean(0, keepdim=True)  # [1, pos, head, d_head]: a mean over the batch only
            mistakes = {
                "mean-ablation uses ONE mean vector per head, averaged over batch AND positions (you kept a "
                "separate mean per position)": loss_with_head_set_to(per_position)[:, 6:].mean(),
                "how='mean' replaces the head's z by its MEAN over batch and positions, not by zeros":
                    zeroed[:, 6:].mean(),
            }
        expect_close(got, want, what="loss", case=case, atol=1e-4, rtol=1e-4, check_dtype=False, mistakes=mistakes)


def _remove_leftover_hooks(model: HookedModel) -> bool:
    """Remove any hook still attached to the model after the learner's function returned; True if any."""
    leftover = model._session is not None
    if leftover:
        model._unregister(model._session)
        model._session = None
    for module in model.hf.modules():
        for hooks in (module._forward_hooks, module._forward_pre_hooks):
            leftover |= bool(hooks)
            hooks.clear()
    return leftover


def _set_head(z: Tensor, head: int, value: Tensor) -> Tensor:
    """z with head `head` replaced by value[..., head, :] (value broadcasts over batch and positions)."""
    z = z.clone()
    z[:, :, head] = value[:, :, head].expand_as(z[:, :, head])
    return z


@exercise(CHAPTER, points=1)
def check_composition_score(fn) -> None:
    for seed, shape in enumerate([(5, 5), (3, 8, 8), (2, 3, 4, 4)]):
        g = _gen(seed)
        A, B = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
        fro = torch.linalg.matrix_norm
        expect_close(call(fn, A, B), ref.composition_score(A, B), what="score", case=f"W_A {list(shape)}", mistakes={
            "divide by ||W_A||_F * ||W_B||_F so the score lies in [0, 1]": fro(A @ B),
            "the order matters: ||W_A W_B||, not ||W_B W_A||": ref.composition_score(B, A),
            "use the Frobenius norm (torch.linalg.matrix_norm's default), not the spectral norm": (
                torch.linalg.matrix_norm(A @ B, ord=2) / (torch.linalg.matrix_norm(A, ord=2)
                                                          * torch.linalg.matrix_norm(B, ord=2))),
        })


@exercise(CHAPTER, points=1)
def check_copying_fraction(fn) -> None:
    for seed, (h, v) in enumerate([(3, 10), (1, 4), (4, 64)]):
        M = torch.randn(h, v, v, generator=_gen(seed))
        M = M + torch.diag_embed(torch.rand(h, v, generator=_gen(seed + 1)) * 3)  # some rows copy
        vocab = torch.arange(v)
        expect_close(call(fn, M), ref.copying_fraction(M), what="fraction", case=f"full_ov {[h, v, v]}", mistakes={
            "rows are input tokens: take the argmax over the output axis (the last), per row":
                (M.argmax(-2) == vocab).float().mean(-1),
            "return a fraction in [0, 1] (a mean), not a count": (M.argmax(-1) == vocab).float().sum(-1),
            "the question is whether the token itself gets the HIGHEST logit, not a positive one":
                (M.diagonal(dim1=-2, dim2=-1) > 0).float().mean(-1),
        })


@exercise(CHAPTER, points=1)
def check_drill_induction_needs(fn) -> None:
    expect_equal_answer(call(fn), "b", {
        "a": "a previous-token head alone only looks one step back; something must match the current token to "
             "an earlier position and copy what follows",
        "c": "an MLP is not needed: attention-only models form induction heads",
        "d": "positional embeddings alone can't find an earlier occurrence at an arbitrary offset",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_one_layer_cannot(fn) -> None:
    expect_equal_answer(call(fn), "a", {
        "b": "a 1-layer model has attention and can copy tokens (skip-trigrams); what it lacks is composition",
        "c": "the 1-layer model was trained on exactly the same data and steps as the 2-layer one",
        "d": "one layer has several heads, but heads in the same layer cannot read each other's output",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_logit_lens_assumes(fn) -> None:
    expect_equal_answer(call(fn), "d", {
        "a": "the logit lens changes nothing in the model: it only reads the residual stream",
        "b": "the logit lens uses the model's own final LayerNorm and unembedding, no training",
        "c": "it works for any depth; that intermediate layers are decodable at all is what it assumes",
    }, default_hint="answer with one of the letters a, b, c, d")
