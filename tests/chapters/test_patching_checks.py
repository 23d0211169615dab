"""Every chapter-04 check: the reference passes, a correct alternative passes, plausible mistakes fail with
their specific hint."""

from __future__ import annotations

import pytest
import torch
from check_testing import CheckTester
from mechinterp.course.toolkit.model import patch

T = CheckTester("patching")
CH, CHECKS = T.chapter, T.checks
assert_passes, assert_fails = T.passes, T.fails
SITES = {"resid": "blocks.{layer}.hook_resid_pre", "attn": "blocks.{layer}.hook_attn_out",
         "mlp": "blocks.{layer}.hook_mlp_out"}



def test_reference_passes_every_check(ref):
    T.reference_passes(ref)


# ---------------------------------------------------------------------------------------------- metrics


def ld(logits, c, i, pos=-1):
    return logits[:, pos].gather(1, c[:, None])[:, 0] - logits[:, pos].gather(1, i[:, None])[:, 0]


@pytest.mark.parametrize("fn, hint", [
    (lambda logits, c, i: ld(logits, c, i, pos=0), "LAST position"),
    (lambda logits, c, i: ld(logits.softmax(-1), c, i), "not probabilities"),
    (lambda logits, c, i: ld(logits, c, i).mean(), "not the mean"),
    (lambda logits, c, i: ld(logits, i, c), "wrong sign"),
])
def test_logit_diff_mistakes(fn, hint):
    assert_fails("logit_diff", fn, hint)


def test_logit_diff_alternative():
    def alt(logits, correct, incorrect):
        rows = torch.arange(len(logits))
        return logits[rows, -1, correct] - logits[rows, -1, incorrect]

    assert_passes("logit_diff", alt)


@pytest.mark.parametrize("fn, hint", [
    (lambda v, c, r: (c - v) / (c - r), "0 must mean"),
    (lambda v, c, r: (v - c) / (c - r), "subtract the corrupted value first"),
    (lambda v, c, r: (v - r) / c, "clean-corrupted GAP"),
])
def test_normalised_metric_mistakes(fn, hint):
    assert_fails("normalised_metric", fn, hint)


def test_normalised_metric_alternative():
    assert_passes("normalised_metric", lambda v, c, r: 1 - (c - v) / (c - r))


# ---------------------------------------------------------------------------------------------- patch_one


def patch_variant(rows=slice(None), shift=0, everywhere=False):
    def patch_one(model, tokens, source_cache, name, pos):
        def hook(act, hp):
            act = act.clone()
            idx = slice(None) if everywhere else pos + shift
            act[rows, idx] = source_cache[name][rows, idx]
            return act

        with model.hooks([(name, hook)]):
            return model(tokens)

    return patch_one


@pytest.mark.parametrize("fn, hint", [
    (patch_variant(everywhere=True), "ONE position"),
    (patch_variant(rows=0), "every batch row"),
    (patch_variant(shift=1), "pos + 1"),
])
def test_patch_one_mistakes(fn, hint):
    assert_fails("patch_one", fn, hint)


def test_patch_one_alternative():
    def alt(model, tokens, source_cache, name, pos):  # the toolkit's patch("replace")
        return model.run_with_hooks(tokens, [(name, patch("replace", source_cache[name], pos=pos))])

    assert_passes("patch_one", alt)


# ------------------------------------------------------------------------------------------ patching maps


def map_variant(sites=SITES, transpose=False):
    def patching_map(model, tokens, source_cache, site, metric):
        out = torch.zeros(model.n_layers, tokens.shape[1])
        for layer in range(model.n_layers):
            name = sites[site].format(layer=layer)
            for pos in range(tokens.shape[1]):
                out[layer, pos] = metric(model.run_with_hooks(tokens, [(name, patch("replace", source_cache[name],
                                                                                    pos=pos))]))
        return out.T if transpose else out

    return patching_map


@pytest.mark.parametrize("fn, hint", [
    (map_variant(sites={**SITES, "resid": "blocks.{layer}.hook_resid_post"}), "ENTERING the block"),
    (map_variant(transpose=True), "transposed"),
    (lambda model, tokens, cache, site, metric: torch.zeros(model.n_layers, tokens.shape[1]), "times 0"),
])
def test_patching_map_mistakes(fn, hint):
    assert_fails("patching_map", fn, hint)


def test_patching_map_alternative():
    assert_passes("patching_map", map_variant())


def batched_variant(interleave=False):
    def batched(model, tokens, source_cache, site, metric):
        batch, n_pos = tokens.shape
        out = torch.zeros(model.n_layers, n_pos)
        big = tokens.repeat_interleave(n_pos, 0) if interleave else tokens.repeat(n_pos, 1)
        rows = torch.arange(n_pos * batch)
        for layer in range(model.n_layers):
            name = SITES[site].format(layer=layer)
            src = source_cache[name]
            src = src.repeat_interleave(n_pos, 0) if interleave else src.repeat(n_pos, 1, 1)

            def hook(act, hp, src=src):
                act = act.clone()
                act[rows, rows // batch] = src[rows, rows // batch]
                return act

            with model.hooks([(name, hook)]):
                logits = model(big)
            for p in range(n_pos):
                out[layer, p] = metric(logits[p * batch : (p + 1) * batch])
        return out

    return batched


@pytest.mark.parametrize("fn, hint", [
    (map_variant(), "ONE forward pass"),
    (batched_variant(interleave=True), "position-major"),
])
def test_batched_patching_map_mistakes(fn, hint):
    assert_fails("batched_patching_map", fn, hint)


def test_batched_patching_map_wrong_site_fails():
    def wrong(model, tokens, source_cache, site, metric):
        return batched_variant()(model, tokens, source_cache, "mlp" if site == "attn" else site, metric)

    assert_fails("batched_patching_map", wrong, "that is the map of site 'mlp'")


def test_batched_patching_map_alternative():
    def alt(model, tokens, source_cache, site, metric):  # one block per position, concatenated
        batch, n_pos = tokens.shape
        out = torch.zeros(model.n_layers, n_pos)
        for layer in range(model.n_layers):
            name = SITES[site].format(layer=layer)
            src = source_cache[name]

            def hook(act, hp, src=src):
                blocks = list(act.split(batch))
                for p, block in enumerate(blocks):
                    block = block.clone()
                    block[:, p] = src[:, p]
                    blocks[p] = block
                return torch.cat(blocks)

            logits = model.run_with_hooks(tokens.repeat(n_pos, 1), [(name, hook)])
            out[layer] = torch.stack([metric(chunk) for chunk in logits.split(batch)])
        return out

    assert_passes("batched_patching_map", alt)


# ------------------------------------------------------------------------------------------ subject noise


@pytest.mark.parametrize("fn, hint", [
    (lambda shape, std, g: torch.randn(shape, generator=g) * std, "3 x the embeddings' std"),
    (lambda shape, std, g: torch.randn(shape) * 3 * std, "same generator seed"),
    (lambda shape, std, g: torch.rand(shape, generator=g) * 3 * std, "expected mean 0"),
])
def test_subject_noise_mistakes(fn, hint):
    assert_fails("subject_noise", fn, hint)


def test_subject_noise_alternative():
    assert_passes("subject_noise", lambda shape, std, g: torch.normal(0.0, 3 * std, shape, generator=g))


# ------------------------------------------------------------------------------------------ causal trace


def trace_variant(resid="blocks.{layer}.hook_resid_post", subtract=True, all_positions=False):
    def trace(model, tokens, subject_pos, answer, noise, site):
        n_samples, n_pos = noise.shape[0], tokens.shape[1]
        tmpl = {"resid": resid, "attn": "blocks.{layer}.hook_attn_out", "mlp": "blocks.{layer}.hook_mlp_out"}[site]

        def add_noise(act, hp):
            act = act.clone()
            act[:, subject_pos] += noise
            return act

        noisy = tokens.repeat(n_samples, 1)
        with model.hooks([("hook_embed", add_noise)]):
            base = model(noisy)[:, -1].softmax(-1)[:, answer].mean()
        _, cache = model.run_with_cache(tokens)
        out = torch.zeros(model.n_layers, n_pos)
        for layer in range(model.n_layers):
            name = tmpl.format(layer=layer)
            for pos in range(n_pos):
                where = slice(None) if all_positions else pos
                hooks = [("hook_embed", add_noise), (name, patch("replace", cache[name], pos=where))]
                p = model.run_with_hooks(noisy, hooks)[:, -1].softmax(-1)[:, answer].mean()
                out[layer, pos] = p - base if subtract else p
        return out

    return trace


@pytest.mark.parametrize("fn, hint", [
    (trace_variant(subtract=False), "INDIRECT effect"),
    (trace_variant(resid="blocks.{layer}.hook_resid_pre"), "block's OUTPUT"),
    (trace_variant(all_positions=True), "ONE position at a time"),
])
def test_causal_trace_mistakes(fn, hint):
    assert_fails("causal_trace", fn, hint)


def test_causal_trace_alternative():
    assert_passes("causal_trace", trace_variant())  # a plain loop over positions: slower, equally right


# ---------------------------------------------------------------------------------------------- ablation


def ablate_variant(mean_over=0, mean_source="reference", zero_noop=False, seeded=True, shared_row=False):
    def ablate(model, tokens, name, how, reference=None, generator=None):
        if how == "zero":
            return model(tokens) if zero_noop else model.run_with_hooks(tokens, [(name, patch("zero"))])
        src = reference if mean_source == "reference" else tokens
        _, cache = model.run_with_cache(src, names_filter=[name])
        act = cache[name]
        if how == "mean":
            return model.run_with_hooks(tokens, [(name, patch("mean", act.mean(mean_over)))])
        pick = torch.randint(0, len(reference), (len(tokens),), generator=generator if seeded else None)
        if shared_row:  # one random reference row for the whole batch
            pick = pick[:1].expand(len(tokens))
        return model.run_with_hooks(tokens, [(name, patch("replace", act[pick]))])

    return ablate


@pytest.mark.parametrize("fn, hint", [
    (ablate_variant(mean_over=(0, 1)), "position by position"),
    (ablate_variant(mean_source="tokens"), "from the `reference` tokens"),
    (ablate_variant(zero_noop=True), "sets the activation to 0"),
    (ablate_variant(seeded=False), "same generator seed"),
    (ablate_variant(shared_row=True), "the SAME reference row"),
])
def test_ablate_mistakes(fn, hint):
    assert_fails("ablate", fn, hint)


def test_ablate_resampling_within_rows_fails():
    def mixed(model, tokens, name, how, reference=None, generator=None):
        if how != "resample":
            return ablate_variant()(model, tokens, name, how, reference, generator)
        _, cache = model.run_with_cache(reference, names_filter=[name])
        act = cache[name]  # each POSITION from a different reference row: not one prompt's activation
        pick = torch.randint(0, len(reference), tokens.shape, generator=generator)
        return model.run_with_hooks(tokens, [(name, patch("replace", act[pick, torch.arange(tokens.shape[1])]))])

    assert_fails("ablate", mixed, "any ONE row")


def test_ablate_alternative():
    assert_passes("ablate", ablate_variant())


# -------------------------------------------------------------------------------------- attribution patching


def atp_variant(grad_on="corrupted", absolute=False):
    def atp(model, clean, corrupted, site, metric):
        names = [SITES[site].format(layer=layer) for layer in range(model.n_layers)]
        _, clean_cache = model.run_with_cache(clean, names_filter=names)
        _, corr_cache = model.run_with_cache(corrupted, names_filter=names)
        run = corrupted if grad_on == "corrupted" else clean
        logits, grad_cache = model.run_with_cache(run, names_filter=names, detach=False)
        grads = torch.autograd.grad(metric(logits), [grad_cache[n] for n in names])
        terms = [(clean_cache[n] - corr_cache[n]) * g for n, g in zip(names, grads, strict=True)]
        out = torch.stack([t.sum((0, -1)) for t in terms])
        return out.abs() if absolute else out

    return atp


@pytest.mark.parametrize("fn, hint", [
    (atp_variant(absolute=True), "|...|"),
    (atp_variant(grad_on="clean"), "CORRUPTED run"),
    (lambda model, clean, corrupted, site, metric: torch.zeros(model.n_layers, clean.shape[1]), "times 0"),
    (lambda model, clean, corrupted, site, metric: atp_variant()(model, clean, corrupted, site, metric).T,
     "transposed"),
])
def test_attribution_patching_map_mistakes(fn, hint):
    assert_fails("attribution_patching_map", fn, hint)


def test_attribution_patching_map_alternative():
    assert_passes("attribution_patching_map", atp_variant())


# ---------------------------------------------------------------------------------------------- drills


@pytest.mark.parametrize("name, right, wrong", [
    ("drill_noising_vs_denoising", "b", {"a": "NOISING", "c": "weights", "d": "backups"}),
    ("drill_why_normalise", "c", {"a": "which site matters most", "b": "faster", "d": "exceed 1"}),
    ("drill_str_fixes", "a", {"b": "MORE care", "c": "in-distribution", "d": "one forward pass"}),
])
def test_drills(name, right, wrong):
    assert_passes(name, lambda: right)
    for letter, hint in wrong.items():
        assert_fails(name, lambda letter=letter: letter, hint)
    assert_fails(name, lambda: "?", "one of the letters")


@pytest.mark.parametrize("unwrapped", [False, True])
def test_the_toolkit_trace_is_refused_as_the_answer(unwrapped):
    """Also when called past its no_grad decorator (the harness traps the decorated function itself)."""
    import inspect

    from mechinterp.course.toolkit import tracing

    helper = inspect.unwrap(tracing.causal_trace) if unwrapped else tracing.causal_trace

    def causal_trace(model, tokens, subject_pos, answer, noise, site):
        return helper(model, tokens, subject_pos, answer, noise, site)

    assert_fails("causal_trace", causal_trace, "complete implementation")
