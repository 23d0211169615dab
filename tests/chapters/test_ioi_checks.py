"""Every chapter-05 check: the reference passes, a correct alternative passes, plausible mistakes fail with their
specific hint."""

from __future__ import annotations

import pytest
import torch
from check_testing import CheckTester

T = CheckTester("ioi")
CH, CHECKS = T.chapter, T.checks
assert_passes, assert_fails = T.passes, T.fails


def test_reference_passes_every_check(ref):
    T.reference_passes(ref)


# ---------------------------------------------------------------------------------------------- logit_diff


def ld_at(logits, pos, io, s):
    rows = torch.arange(len(io))
    at = logits[rows, pos]
    return at[rows, io] - at[rows, s]


@pytest.mark.parametrize("fn, hint", [
    (lambda logits, end, io, s: ld_at(logits, torch.full_like(end, -1), io, s), "right-padded"),
    (lambda logits, end, io, s: ld_at(logits.softmax(-1), end, io, s), "not probabilities"),
    (lambda logits, end, io, s: ld_at(logits, end, io, s).mean(), "not the mean"),
    (lambda logits, end, io, s: ld_at(logits, end + 1, io, s), "end + 1"),
    (lambda logits, end, io, s: ld_at(logits, end, s, io), "wrong sign"),
])
def test_logit_diff_mistakes(fn, hint):
    assert_fails("logit_diff", fn, hint)


def test_logit_diff_alternative():
    def alt(logits, end, io, s):
        out = []
        for i in range(len(end)):
            out.append(logits[i, end[i], io[i]] - logits[i, end[i], s[i]])
        return torch.stack(out)

    assert_passes("logit_diff", alt)


# ---------------------------------------------------------------------------------------------- end_attention


@pytest.mark.parametrize("fn, hint", [
    (lambda p, end, key: p[torch.arange(len(end)), :, key, end].mean(0), "query axis before key axis"),
    (lambda p, end, key: p[torch.arange(len(end)), :, -1, key].mean(0), "right-padded"),
    (lambda p, end, key: p[:, :, end, key].mean((0, 2)), "OWN END"),
    (lambda p, end, key: p[torch.arange(len(end)), :, end, key], "shape"),
])
def test_end_attention_mistakes(fn, hint):
    assert_fails("end_attention", fn, hint)


def test_end_attention_alternative():
    def alt(pattern, end, key_pos):
        picked = torch.stack([pattern[i, :, end[i], key_pos[i]] for i in range(len(end))])
        return picked.sum(0) / len(end)

    assert_passes("end_attention", alt)


# ---------------------------------------------------------------------------------------------- DLA


def dla_variant(centre=True, scale=True, gain=True, diff=True, mean=True):
    def fn(results, final_scale, ln_weight, W_U, io, s):
        r = results - results.mean(-1, keepdim=True) if centre else results
        d = W_U[:, io] - W_U[:, s] if diff else W_U[:, io]
        if gain:
            d = ln_weight[:, None] * d
        per = torch.einsum("blhm,mb->blh", r, d)
        if scale:
            per = per / final_scale[:, None, None]
        return per.mean(0) if mean else per.sum(0)

    return fn


@pytest.mark.parametrize("fn, hint", [
    (dla_variant(centre=False), "centre each head's output"),
    (dla_variant(scale=False), "final_scale"),
    (dla_variant(gain=False), "ln_weight"),
    (dla_variant(diff=False), "logit DIFFERENCE"),
    (dla_variant(mean=False), "do not sum"),
])
def test_dla_mistakes(fn, hint):
    assert_fails("logit_diff_dla", fn, hint)


def test_dla_alternative():
    """Through the real LayerNorm-free algebra: scale the unembedding instead of the outputs."""
    def alt(results, final_scale, ln_weight, W_U, io, s):
        W = (W_U * ln_weight[:, None])
        W = W - 0  # the centring can be applied to the direction instead: (r - mean r) . d = r . (d - mean d)
        d = (W[:, io] - W[:, s]).T  # [batch, d_model]
        d = d - d.mean(-1, keepdim=True)
        return (results * (d / final_scale[:, None])[:, None, None]).sum(-1).mean(0)

    assert_passes("logit_diff_dla", alt)


# ---------------------------------------------------------------------------------------------- copy score


def copy_variant(ln1=True, final=True, flip=False, top1=False):
    def fn(model, layer, head, name_ids, k=5, negative=False):
        resid = model.W_E[name_ids] + model.W_pos[1]
        block = model.hf.transformer.h[layer]
        x = block.ln_1(resid) if ln1 else resid
        out = x @ model.W_V(layer)[head] @ model.W_O(layer)[head]
        logits = (model.ln_final(out) if final else out) @ model.W_U
        if negative != flip:
            logits = -logits
        top = logits.topk(1 if top1 else k, dim=-1).indices
        return (top == name_ids[:, None]).any(-1).float().mean()

    return fn


@pytest.mark.parametrize("fn, hint", [
    (copy_variant(ln1=False), "ln_1"),
    (copy_variant(final=False), "ln_final"),
    (copy_variant(flip=True), "NEGATED"),
    (copy_variant(top1=True), "k largest"),
])
def test_copy_score_mistakes(fn, hint):
    assert_fails("copy_score", fn, hint)


def test_copy_score_alternative():
    """Through the head's full OV matrix, one name at a time, returning a Python float."""
    def alt(model, layer, head, name_ids, k=5, negative=False):
        W_OV = model.W_V(layer)[head] @ model.W_O(layer)[head]
        hits = 0
        for t in name_ids.tolist():
            x = model.hf.transformer.h[layer].ln_1(model.W_E[t] + model.W_pos[1])
            logits = model.ln_final(x @ W_OV) @ model.W_U
            logits = -logits if negative else logits
            hits += int(t in logits.topk(k).indices.tolist())
        return hits / len(name_ids)

    assert_passes("copy_score", alt)


# ---------------------------------------------------------------------------------------------- path patching


def path_variant(freeze=True, only_receivers=True, corrupt_base=False):
    def fn(model, clean, corrupt, senders, receivers, receiver_input="q"):
        base, other = (corrupt, clean) if corrupt_base else (clean, corrupt)
        z = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
        _, c_clean = model.run_with_cache(base, names_filter=z)
        _, c_bad = model.run_with_cache(other, names_filter=z)

        def hook(act, hp):
            layer = int(hp.name.split(".")[1])
            new = (c_clean[hp.name] if freeze else act).clone()
            for sl, h in senders:
                if sl == layer:
                    new[:, :, h] = c_bad[hp.name][:, :, h]
            return new

        hooks = [(n, hook) for n in z]
        if receivers is None:
            with model.hooks(hooks):
                return model(base)
        names = sorted({f"blocks.{layer}.attn.hook_{receiver_input}" for layer, _ in receivers})
        with model.hooks(hooks):
            _, mid = model.run_with_cache(base, names_filter=names)

        def insert(act, hp):
            layer = int(hp.name.split(".")[1])
            new = act.clone()
            heads = [h for rl, h in receivers if rl == layer] if only_receivers else list(range(act.shape[2]))
            new[:, :, heads] = mid[hp.name][:, :, heads]
            return new

        with model.hooks([(n, insert) for n in names]):
            return model(base)

    return fn


@pytest.mark.parametrize("fn, hint", [
    (path_variant(freeze=False), "freeze every head"),
    (path_variant(only_receivers=False), "only the receivers' own heads"),
    (path_variant(corrupt_base=True), "use the CLEAN prompts"),
])
def test_path_patch_mistakes(fn, hint):
    assert_fails("path_patch", fn, hint)


def test_path_patch_alternative():
    """Freezing with hook_result (each head's output in the residual stream) instead of hook_z: the same
    intervention, since hook_result = hook_z @ W_O per head."""
    def alt(model, clean, corrupt, senders, receivers, receiver_input="q"):
        names = [f"blocks.{layer}.attn.hook_result" for layer in range(model.n_layers)]
        _, c_clean = model.run_with_cache(clean, names_filter=names)
        _, c_bad = model.run_with_cache(corrupt, names_filter=names)
        senders = set(senders)

        def hook(act, hp):
            layer = int(hp.name.split(".")[1])
            new = c_clean[hp.name].clone()
            for h in range(act.shape[2]):
                if (layer, h) in senders:
                    new[:, :, h] = c_bad[hp.name][:, :, h]
            return new

        hooks = [(n, hook) for n in names]
        if receivers is None:
            with model.hooks(hooks):
                return model(clean)
        recorded = {}
        for layer, head in receivers:
            name = f"blocks.{layer}.attn.hook_{receiver_input}"
            with model.hooks(hooks):
                _, c = model.run_with_cache(clean, names_filter=[name])
            recorded[(layer, head)] = c[name][:, :, head]

        def insert(act, hp):
            layer = int(hp.name.split(".")[1])
            new = act.clone()
            for (rl, h), value in recorded.items():
                if rl == layer:
                    new[:, :, h] = value
            return new

        in_names = sorted({f"blocks.{layer}.attn.hook_{receiver_input}" for layer, _ in receivers})
        with model.hooks([(n, insert) for n in in_names]):
            return model(clean)

    assert_passes("path_patch", alt)


# ---------------------------------------------------------------------------------------------- mean ablation


@pytest.mark.parametrize("fn, hint", [
    (lambda acts, groups: acts.mean(0, keepdim=True).expand_as(acts), "SAME group"),
    (lambda acts, groups: torch.stack([acts[groups == g].mean((0, 1)).expand_as(acts[0]) for g in groups]),
     "keep the position axis"),
    (lambda acts, groups: torch.stack([acts[groups == g].sum(0) for g in groups.tolist()]), "divide the group's sum"),
])
def test_group_means_mistakes(fn, hint):
    assert_fails("group_means", fn, hint)


def test_group_means_alternative():
    def alt(acts, groups):
        one_hot = torch.nn.functional.one_hot(groups).float()  # [batch, n_groups]
        weights = one_hot / one_hot.sum(0, keepdim=True)
        per_group = torch.einsum("bg,b...->g...", weights, acts)
        return per_group[groups]

    assert_passes("group_means", alt)


def ablate_variant(invert=False, zero=False, last_only=False):
    def fn(model, tokens, means, keep):
        def hook(act, hp):
            layer = int(hp.name.split(".")[1])
            heads = [h for h in range(model.n_heads) if ((layer, h) in keep) == invert]
            new = act.clone()
            source = torch.zeros_like(act) if zero else means[hp.name]
            where = slice(-1, None) if last_only else slice(None)
            new[:, where, heads] = source[:, where, heads]
            return new

        names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
        return model.run_with_hooks(tokens, [(n, hook) for n in names])

    return fn


@pytest.mark.parametrize("fn, hint", [
    (ablate_variant(invert=True), "NOT in keep"),
    (ablate_variant(zero=True), "not with zeros"),
    (ablate_variant(last_only=True), "every position"),
])
def test_ablate_heads_mistakes(fn, hint):
    assert_fails("ablate_heads", fn, hint)


def test_ablate_heads_alternative():
    """Ablating through the toolkit's patch helper, one hook per ablated head."""
    from mechinterp.course.toolkit.model import patch

    def alt(model, tokens, means, keep):
        hooks = []
        for layer in range(model.n_layers):
            name = f"blocks.{layer}.attn.hook_z"
            for head in range(model.n_heads):
                if (layer, head) not in keep:
                    hooks.append((name, patch("replace", means[name], head=head)))
        return model.run_with_hooks(tokens, hooks)

    assert_passes("ablate_heads", alt)


# ---------------------------------------------------------------------------------------------- drills


@pytest.mark.parametrize("name, wrong, hint", [
    ("drill_circuit_order", "a", "LAST"),
    ("drill_circuit_order", "b", "must come first"),
    ("drill_circuit_order", "d", "previous-token heads feed"),
    ("drill_why_abc_mean", "a", "speed"),
    ("drill_why_abc_mean", "c", "REMOVE"),
    ("drill_why_abc_mean", "d", "never zero"),
    ("drill_negative_name_mover", "b", "S-inhibition"),
    ("drill_negative_name_mover", "c", "logits directly"),
    ("drill_negative_name_mover", "d", "sign"),
])
def test_drill_wrong_answers(name, wrong, hint):
    assert_fails(name, lambda: wrong, hint)


@pytest.mark.parametrize("name, right", [("drill_circuit_order", " C "), ("drill_why_abc_mean", "B"),
                                         ("drill_negative_name_mover", "a")])
def test_drill_right_answers_any_case(name, right):
    assert_passes(name, lambda: right)


# ------------------------------------------------------------------------------ toolkit twins are refused


def test_toolkit_twins_answer_no_exercise_but_stay_usable():
    from mechinterp.course.toolkit import circuits

    assert_fails("logit_diff", lambda logits, end, io, s: circuits._logit_diff(logits, end, io, s),
                 "toolkit.circuits._logit_diff, a complete implementation of this exercise")
    assert_fails("group_means", lambda acts, groups: circuits._group_means(acts, groups),
                 "toolkit.circuits._group_means")
    assert_fails("ablate_heads", lambda model, tokens, means, keep: circuits._ablate_heads(model, tokens, means,
                                                                                           keep), "_ablate_heads")
    assert_fails("logit_diff_dla", lambda *a: circuits._logit_diff_dla(*a), "_logit_diff_dla")

    def group_means_using_another_twin(acts, groups):  # the logit-diff twin is not this exercise's answer
        circuits._logit_diff(torch.zeros(1, 2, 3), torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
        out = torch.empty_like(acts)
        for g in groups.unique():
            out[groups == g] = acts[groups == g].mean(0)
        return out

    assert_passes("group_means", group_means_using_another_twin)
    logits = torch.randn(2, 3, 5)  # outside grading the twin runs normally
    assert circuits._logit_diff(logits, torch.tensor([1, 2]), torch.tensor([0, 1]), torch.tensor([2, 3])).shape == (2,)
