"""Checks for chapter 04 (activation patching, ablation, causal tracing). Inputs are generated here: a small
random-weight GPT-2 with MLPs, random prompts and a corrupted copy, so the checks do not depend on the zoo."""

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

CHAPTER = "patching"
ref = reference_module("patching")  # or, in the student kit, its answer pack
RESID_POST = "blocks.{layer}.hook_resid_post"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(case_seed(seed))


@functools.lru_cache(maxsize=1)
def _model() -> HookedModel:
    return tiny_gpt2(99, vocab_size=40, n_embd=32, n_layer=3, n_head=4)


@functools.lru_cache(maxsize=1)
def _prompts() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """clean [3, 7], corrupted (positions 1-2 replaced, like a different subject), correct and incorrect ids."""
    clean = torch.randint(1, 40, (3, 7), generator=_gen(5))
    corrupted = clean.clone()
    corrupted[:, 1:3] = torch.randint(1, 40, (3, 2), generator=_gen(6))
    return clean, corrupted, torch.tensor([3, 7, 11]), torch.tensor([5, 9, 13])


def _metric(logits: Tensor) -> Tensor:
    """The metric handed to learner code: mean logit difference at the last position (written here, not taken
    from the reference, so learner code may call it freely)."""
    _, _, correct, incorrect = _prompts()
    last = logits[:, -1]
    n = len(last)
    return (last[torch.arange(n), correct[:n]] - last[torch.arange(n), incorrect[:n]]).mean()


def _cache(tokens: Tensor) -> dict:
    with torch.no_grad():
        return dict(_model().run_with_cache(tokens)[1])


# ------------------------------------------------------------------------------------------- metrics


@exercise(CHAPTER, points=1)
def check_logit_diff(fn) -> None:
    for seed, (b, p, v) in enumerate([(4, 6, 20), (1, 3, 5), (3, 9, 50)]):
        g = _gen(seed)
        logits = torch.randn(b, p, v, generator=g) * 3
        correct, incorrect = torch.randint(0, v, (b,), generator=g), torch.randint(0, v, (b,), generator=g)
        want = ref.logit_diff(logits, correct, incorrect)
        first = logits[:, 0]
        probs = logits[:, -1].softmax(-1)
        expect_close(call(fn, logits, correct, incorrect), want, what="logit difference", case=f"logits {[b, p, v]}",
                     mistakes={
            "read the LAST position (logits[:, -1]): it predicts the answer":
                first.gather(1, correct[:, None])[:, 0] - first.gather(1, incorrect[:, None])[:, 0],
            "use the logits, not probabilities: a difference of logits is linear in the residual stream":
                probs.gather(1, correct[:, None])[:, 0] - probs.gather(1, incorrect[:, None])[:, 0],
            "return one value per prompt ([batch]), not the mean": want.mean(),
        })


@exercise(CHAPTER, points=1)
def check_normalised_metric(fn) -> None:
    g = _gen(1)
    value, clean, corrupted = torch.randn(5, 4, generator=g), torch.randn(4, generator=g) + 3, torch.randn(4,
                                                                                                        generator=g)
    want = ref.normalised_metric(value, clean, corrupted)
    expect_close(call(fn, value, clean, corrupted), want, what="normalised metric", mistakes={
        "0 must mean 'as corrupted' and 1 'as clean': (value - corrupted) / (clean - corrupted)":
            (clean - value) / (clean - corrupted),
        "subtract the corrupted value first: (value - corrupted), not (value - clean)":
            (value - clean) / (clean - corrupted),
        "divide by the clean-corrupted GAP, not by the clean value": (value - corrupted) / clean,
    })
    ends = call(fn, torch.stack([clean, corrupted]), clean, corrupted)
    if not torch.allclose(ends, torch.stack([torch.ones(4), torch.zeros(4)]), atol=1e-5):
        raise CheckFailure("the clean value itself must map to 1 and the corrupted value to 0")


# ------------------------------------------------------------------------------------------ patching


def _patch_variant(tokens, cache, name, pos, rows=slice(None), positions=None):
    def hook(act, hp):
        act = act.clone()
        idx = pos if positions is None else positions
        act[rows, idx] = cache[name][rows, idx]
        return act

    with _model().hooks([(name, hook)]), torch.no_grad():
        return _model()(tokens)


@exercise(CHAPTER, points=2)
def check_patch_one(fn) -> None:
    clean, corrupted, _, _ = _prompts()
    cache = _cache(clean)
    for name, pos in [("blocks.1.hook_resid_pre", 2), ("blocks.0.hook_mlp_out", 1), ("blocks.2.hook_attn_out", 6)]:
        with torch.no_grad():
            want = ref.patch_one(_model(), corrupted, cache, name, pos)
            got = call(fn, _model(), corrupted, cache, name, pos)
        mistakes = {
            "patch ONE position (act[:, pos]), not every position": _patch_variant(corrupted, cache, name, pos,
                                                                                   positions=slice(None)),
            "patch every batch row (act[:, pos]), not only the first": _patch_variant(corrupted, cache, name, pos,
                                                                                      rows=0),
        }
        if pos + 1 < clean.shape[1]:
            mistakes["the position axis is 1 ([batch, pos, d_model]); you patched pos + 1 — check the index"] = \
                _patch_variant(corrupted, cache, name, pos + 1)
        expect_close(got, want, what="logits", case=f"{name}, pos {pos}", atol=1e-4, rtol=1e-4, mistakes=mistakes)


def _map_variant(tokens, cache, site_names, shift=0):
    n_pos = tokens.shape[1]
    out = torch.zeros(3, n_pos)
    for layer in range(3):
        name = site_names.format(layer=layer)
        for pos in range(n_pos):
            out[layer, pos] = _metric(_patch_variant(tokens, cache, name, min(n_pos - 1, pos + shift)))
    return out


@exercise(CHAPTER, points=1)
def check_patching_map(fn) -> None:
    clean, corrupted, _, _ = _prompts()
    cache = _cache(clean)
    for site in ("resid", "mlp"):
        with torch.no_grad():
            got = call(fn, _model(), corrupted, cache, site, _metric)
        want, mistakes = _patching_map_expected(site)
        expect_close(got, want, what="patching map", case=f"site {site!r}", atol=1e-4, rtol=1e-4, mistakes=mistakes)


@functools.lru_cache(maxsize=2)
def _patching_map_expected(site: str) -> tuple[Tensor, dict]:
    """The reference map and the anticipated mistakes' maps on the check's fixed inputs (computed once: the naive
    loop costs a forward pass per layer and position)."""
    clean, corrupted, _, _ = _prompts()
    cache = _cache(clean)
    with torch.no_grad():
        want = ref.patching_map(_model(), corrupted, cache, site, _metric)
        mistakes = {"'resid' is blocks.{layer}.hook_resid_pre (the stream ENTERING the block)":
                    _map_variant(corrupted, cache, RESID_POST)} if site == "resid" else {}
    return want, mistakes


class _ForwardCounter:
    def __init__(self, model: HookedModel):
        self.model, self.calls = model, 0

    def __enter__(self):
        self.handle = self.model.hf.register_forward_pre_hook(lambda *a: setattr(self, "calls", self.calls + 1))
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@exercise(CHAPTER, points=3)
def check_batched_patching_map(fn) -> None:
    clean, corrupted, _, _ = _prompts()
    for site, source, tokens in [("resid", _cache(clean), corrupted), ("attn", _cache(corrupted), clean)]:
        with torch.no_grad():
            want = ref.patching_map(_model(), tokens, source, site, _metric)
            with _ForwardCounter(_model()) as counter:
                got, calls = call_observed(lambda counter=counter: counter.calls, fn, _model(), tokens, source, site,
                                           _metric)
        if calls > _model().n_layers + 2:
            raise CheckFailure(f"{calls} forward passes for {_model().n_layers} layers: batch all positions "
                               "of a layer into ONE forward pass (repeat the prompts once per position)")
        other = "mlp" if site == "attn" else "attn"
        with torch.no_grad():
            mistakes = {
                "rows and positions are misaligned: with tokens.repeat(n_pos, 1) the rows patched at position p "
                "are rows p * batch .. (p + 1) * batch - 1 (position-major)":
                    _interleaved_variant(tokens, source, site),
                f"that is the map of site {other!r}: patch the hook point SITES[site] names for {site!r} "
                f"({ref.SITES[site].format(layer='L')})": ref.patching_map(_model(), tokens, source, other, _metric),
            }
        expect_close(got, want, what="patching map", case=f"site {site!r}", atol=1e-5, rtol=1e-4, mistakes=mistakes)


def _interleaved_variant(tokens, source, site):
    """repeat_interleave rows but slice blocks position-major: the classic misalignment."""
    batch, n_pos = tokens.shape
    big = tokens.repeat_interleave(n_pos, 0)
    rows = torch.arange(n_pos * batch)
    out = torch.zeros(3, n_pos)
    for layer in range(3):
        name = ref.SITES[site].format(layer=layer)
        src = source[name].repeat_interleave(n_pos, 0)

        def hook(act, hp, src=src):
            act = act.clone()
            act[rows, rows // batch] = src[rows, rows // batch]
            return act

        with _model().hooks([(name, hook)]), torch.no_grad():
            logits = _model()(big)
        for p in range(n_pos):
            out[layer, p] = _metric(logits[p * batch : (p + 1) * batch])
    return out


# ------------------------------------------------------------------------------------------- tracing


@exercise(CHAPTER, points=1)
def check_subject_noise(fn) -> None:
    shape, std = (400, 3, 64), 0.7
    noise = call(fn, shape, std, _gen(0))
    if not isinstance(noise, Tensor) or tuple(noise.shape) != shape:
        raise CheckFailure(f"return a tensor of shape {list(shape)}")
    again = call(fn, shape, std, _gen(0))
    if not torch.equal(noise, again):
        raise CheckFailure("the same generator seed gave different noise: draw with torch.randn(..., generator=...)")
    measured = float(noise.std())
    if abs(float(noise.mean())) > 0.05 or abs(measured / (3 * std) - 1) > 0.03:
        ratio = measured / std
        hint = (" — ROME uses 3 x the embeddings' std" if abs(ratio - 1) < 0.05 else
                " — multiply by the embeddings' std, not its square" if abs(ratio - 3 * std) < 0.1 else "")
        raise CheckFailure(f"noise std {measured:.3f} (mean {float(noise.mean()):+.3f}); expected mean 0 and std "
                           f"3 x {std} = {3 * std:.2f}{hint}")


def _trace_variant(tokens, subject_pos, answer, noise, site, *, resid_name=None, subtract=True, all_positions=False):
    """What a specific mistake computes (batched over positions like the reference, for speed)."""
    model = _model()
    n_samples, n_pos = noise.shape[0], tokens.shape[1]
    tmpl = resid_name if (site == "resid" and resid_name) else {"resid": RESID_POST,
                                                               "attn": "blocks.{layer}.hook_attn_out",
                                                               "mlp": "blocks.{layer}.hook_mlp_out"}[site]

    def add_noise(act, hp):
        act = act.clone()
        act[:, subject_pos] = act[:, subject_pos] + noise.repeat(act.shape[0] // n_samples, 1, 1)
        return act

    rows = torch.arange(n_pos * n_samples)
    with torch.no_grad():
        with model.hooks([("hook_embed", add_noise)]):
            corrupted = model(tokens.repeat(n_samples, 1))[:, -1].softmax(-1)[:, answer].mean()
        _, cache = model.run_with_cache(tokens)
        out = torch.zeros(model.n_layers, n_pos)
        for layer in range(model.n_layers):
            clean = cache[tmpl.format(layer=layer)]

            def restore(act, hp, clean=clean):
                act = act.clone()
                if all_positions:
                    act[:] = clean[0]
                else:
                    act[rows, rows // n_samples] = clean[0, rows // n_samples]
                return act

            with model.hooks([("hook_embed", add_noise), (tmpl.format(layer=layer), restore)]):
                p = model(tokens.repeat(n_pos * n_samples, 1))[:, -1].softmax(-1)[:, answer].view(n_pos, n_samples)
            out[layer] = p.mean(1) - corrupted if subtract else p.mean(1)
    return out


@exercise(CHAPTER, points=3)
def check_causal_trace(fn) -> None:
    clean, _, _, _ = _prompts()
    tokens = clean[:1, :5]
    noise = torch.randn(4, 2, 32, generator=_gen(2)) * 1.5
    for site in ("resid", "mlp"):
        with torch.no_grad():
            want = ref.causal_trace(_model(), tokens, [1, 2], 7, noise, site)
            got = call(fn, _model(), tokens, [1, 2], 7, noise, site)
        mistakes = {
            "return the INDIRECT effect: subtract the corrupted run's probability (without any restoration)":
                _trace_variant(tokens, [1, 2], 7, noise, site, subtract=False),
            "restore ONE position at a time (the one the map's column names), not the whole sequence":
                _trace_variant(tokens, [1, 2], 7, noise, site, all_positions=True),
        }
        if site == "resid":
            mistakes["ROME restores the block's OUTPUT: 'resid' is blocks.{layer}.hook_resid_post"] = \
                _trace_variant(tokens, [1, 2], 7, noise, site, resid_name="blocks.{layer}.hook_resid_pre")
        expect_close(got, want, what="indirect effects", case=f"site {site!r}", atol=1e-5, rtol=1e-4,
                     mistakes=mistakes)


# ------------------------------------------------------------------------------------------ ablation


@exercise(CHAPTER, points=2)
def check_ablate(fn) -> None:
    clean, corrupted, _, _ = _prompts()
    reference = torch.randint(1, 40, (4, 7), generator=_gen(9))
    model = _model()
    for name in ("blocks.1.hook_mlp_out", "blocks.0.hook_attn_out"):
        with torch.no_grad():
            _, rc = model.run_with_cache(reference, names_filter=[name])
            _, tc = model.run_with_cache(clean, names_filter=[name])
            for how in ("zero", "mean"):
                want = ref.ablate(model, clean, name, how, reference)
                got = call(fn, model, clean, name, how, reference)
                pooled, own_mean = rc[name].mean((0, 1)), tc[name].mean(0)
                mistakes = {
                    "mean-ablate position by position: at each position, the mean over the REFERENCE rows "
                    "(averaging over positions too mixes in, e.g., the first token's very different activation)":
                        _run_with(name, _constant(pooled)),
                    "take the mean from the `reference` tokens, not from the prompts being ablated":
                        _run_with(name, _constant(own_mean)),
                } if how == "mean" else {
                    "zero-ablation sets the activation to 0 (you left it unchanged)": model(clean),
                }
                expect_close(got, want, what="logits", case=f"{how}-ablating {name}", atol=1e-4, rtol=1e-4,
                             mistakes=mistakes)
            a = call(fn, model, clean, name, "resample", reference, _gen(4))
            b = call(fn, model, clean, name, "resample", reference, _gen(4))
        if not torch.allclose(a, b):
            raise CheckFailure("resampling with the same generator seed gave different results: draw the rows with "
                               "torch.randint(..., generator=generator)")
        with torch.no_grad():
            options = torch.stack([_run_with(name, _constant(rc[name][k]))
                                   for k in range(len(reference))])  # [n_ref, batch, pos, vocab]
        matched = []
        for row in range(clean.shape[0]):
            ks = [k for k in range(len(reference)) if torch.allclose(a[row], options[k, row], atol=1e-4)]
            if not ks:
                raise CheckFailure(f"resample-ablation: row {row} does not match running it with any ONE row of "
                                   "`reference`'s activation (each prompt gets a whole row from a random reference "
                                   "prompt)")
            matched.append(ks[0])
        # the seeded draw for 4 prompts picks more than one reference row, so one shared row is a mistake
        if len(set(matched)) == 1 and len(set(torch.randint(0, len(reference), (clean.shape[0],),
                                                            generator=_gen(4)).tolist())) > 1:
            raise CheckFailure("resample-ablation: every prompt got the SAME reference row; draw one row per prompt "
                               "(torch.randint(0, n_reference, (batch,), generator=generator))")


def _constant(value: Tensor):
    """An edit that replaces the activation by `value`, broadcast to its shape."""
    return lambda act: value.expand_as(act).clone()


def _run_with(name: str, fn) -> Tensor:
    clean, _, _, _ = _prompts()
    with _model().hooks([(name, lambda act, hp: fn(act))]):
        return _model()(clean)


# ------------------------------------------------------------------------------- attribution patching


@exercise(CHAPTER, points=3)
def check_attribution_patching_map(fn) -> None:
    clean, corrupted, _, _ = _prompts()
    model = _model()
    for site in ("resid", "mlp"):
        want = ref.attribution_patching_map(model, clean, corrupted, site, _metric).detach()
        got = call(fn, model, clean, corrupted, site, _metric)
        expect_close(got, want, what="attribution map", case=f"site {site!r}", atol=1e-4, rtol=1e-3, mistakes={
            "take the gradient on the CORRUPTED run (we approximate restoring clean activations into it)":
                ref.attribution_patching_map(model, corrupted, clean, site, _metric).detach().neg(),
            "(clean - corrupted) . gradient: you used |...| or squared terms": (
                ref.attribution_patching_map(model, clean, corrupted, site, _metric).detach().abs()),
        })


# ------------------------------------------------------------------------------------------ drills


@exercise(CHAPTER, points=1)
def check_drill_noising_vs_denoising(fn) -> None:
    expect_equal_answer(call(fn), "b", {
        "a": "that is what NOISING tests (breaking one site in a clean run): necessity, not sufficiency",
        "c": "patching says nothing about weights; it moves activations between runs",
        "d": "a large effect at one site does not make the other sites irrelevant (there may be backups)",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_why_normalise(fn) -> None:
    expect_equal_answer(call(fn), "c", {
        "a": "normalising does not change which site matters most within one map",
        "b": "the metric is normalised per prompt pair, not to make patching faster",
        "d": "normalisation maps corrupted -> 0 and clean -> 1; values can still exceed 1 or fall below 0",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_str_fixes(fn) -> None:
    expect_equal_answer(call(fn), "a", {
        "b": "STR needs MORE care (a matched subject with a different answer), not less",
        "c": "both corruptions target the subject; what differs is whether the corrupted input is in-distribution",
        "d": "STR keeps one forward pass per patch like any other patching",
    }, default_hint="answer with one of the letters a, b, c, d")
