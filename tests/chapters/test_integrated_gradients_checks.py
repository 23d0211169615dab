"""Every chapter-06 check: the reference passes, a correct alternative passes, plausible mistakes fail with
their specific hint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from check_testing import CheckTester

T = CheckTester("integrated_gradients")
CH, CHECKS = T.chapter, T.checks
assert_passes, assert_fails = T.passes, T.fails



def test_reference_passes_every_check(ref):
    T.reference_passes(ref)


# ---------------------------------------------------------------------------------------- baseline_ids


@pytest.mark.parametrize("fn, hint", [
    (lambda ids, keep, b: torch.full_like(ids, b), "keep the structure tokens"),
    (lambda ids, keep, b: torch.where(torch.isin(ids, torch.tensor(keep)), b, ids), "replace every token NOT"),
    (lambda ids, keep, b: torch.where(torch.isin(ids, torch.tensor(keep)), ids, 0), "baseline_id argument"),
])
def test_baseline_ids_mistakes(fn, hint):
    assert_fails("baseline_ids", fn, hint)


def test_baseline_ids_alternative():
    def alt(input_ids, keep_ids, baseline_id):
        out = input_ids.clone()
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                if int(out[i, j]) not in keep_ids:
                    out[i, j] = baseline_id
        return out

    assert_passes("baseline_ids", alt)


# ------------------------------------------------------------------------------------ integration_rule


def rule_variant(kind):
    def rule(n_steps, method):
        k = torch.arange(n_steps, dtype=torch.float64)
        x, w = (torch.from_numpy(a) for a in np.polynomial.legendre.leggauss(n_steps))
        if method == "gausslegendre":
            if kind == "unmapped":
                return x, w
            if kind == "unhalved":
                return (x + 1) / 2, w
            return (x + 1) / 2, w / 2
        if method == "riemann_trapezoid":
            weights = torch.full((n_steps,), (1 / n_steps) if kind == "captum_trapezoid" else 1 / (n_steps - 1),
                                 dtype=torch.float64)
            weights[[0, -1]] /= 2
            return k / (n_steps - 1), weights
        offset = {"riemann_left": 1.0 if kind == "swapped" else 0.0, "riemann_right": 0.0 if kind == "swapped"
                  else 1.0, "riemann_middle": 0.5}[method]
        return (k + offset) / n_steps, torch.full((n_steps,), 1 / n_steps, dtype=torch.float64)

    return rule


@pytest.mark.parametrize("kind, hint", [
    ("swapped", "LEFT end"),
    ("unmapped", "map Gauss-Legendre points"),
    ("unhalved", "HALF of leggauss"),
    ("captum_trapezoid", "1 / (n - 1) apart"),
])
def test_integration_rule_mistakes(kind, hint):
    assert_fails("integration_rule", rule_variant(kind), hint)


def test_integration_rule_float32_is_named():
    def f32(n_steps, method):
        a, w = rule_variant("right")(n_steps, method)
        return a.float(), w.float()

    assert_fails("integration_rule", f32, "dtype")


def test_integration_rule_alternative():
    def alt(n_steps, method):  # with torch.linspace and numpy's Legendre class
        if method == "gausslegendre":
            x, w = np.polynomial.legendre.leggauss(n_steps)
            return torch.tensor(0.5 * x + 0.5, dtype=torch.float64), torch.tensor(0.5 * w, dtype=torch.float64)
        n = n_steps
        if method == "riemann_trapezoid":
            w = torch.ones(n, dtype=torch.float64)
            w[0] = w[-1] = 0.5
            return torch.linspace(0, 1, n, dtype=torch.float64), w / (n - 1)
        start = {"riemann_left": 0.0, "riemann_middle": 0.5 / n, "riemann_right": 1 / n}[method]
        return torch.linspace(start, start + (n - 1) / n, n, dtype=torch.float64), torch.full((n,), 1 / n,
                                                                                               dtype=torch.float64)

    assert_passes("integration_rule", alt)


# --------------------------------------------------------------------------------- integrated_gradients


def ig_variant(factor=True, weights="rule", target0=False, per_step_calls=False, delta_sign=1):
    def ig(forward_func, inputs, baselines, target, n_steps=50, method="gausslegendre", additional_forward_args=(),
           return_convergence_delta=False):
        alphas, w = _rule(n_steps, method)
        if weights == "mean":
            w = torch.full_like(w, 1 / n_steps)
        b = inputs.shape[0]
        t = torch.as_tensor(0 if target0 else target).expand(b)
        diff = inputs - baselines
        if per_step_calls:
            grads = []
            for a in alphas:
                p = (baselines + a * diff).requires_grad_(True)
                out = forward_func(p, *additional_forward_args).gather(1, t[:, None]).sum()
                grads.append(torch.autograd.grad(out, p)[0])
            grads = torch.stack(grads)
        else:
            shape = (n_steps,) + (1,) * inputs.dim()
            scaled = (baselines[None] + alphas.view(shape) * diff[None]).reshape(n_steps * b, *inputs.shape[1:])
            scaled.requires_grad_(True)
            extra = tuple(a.repeat(n_steps, *([1] * (a.dim() - 1))) for a in additional_forward_args)
            out = forward_func(scaled, *extra).gather(1, t.repeat(n_steps)[:, None]).sum()
            grads = torch.autograd.grad(out, scaled)[0].view(n_steps, *inputs.shape)
        avg = (w.view((n_steps,) + (1,) * inputs.dim()) * grads).sum(0)
        attr = diff * avg if factor else avg
        if not return_convergence_delta:
            return attr
        with torch.no_grad():
            fx = forward_func(inputs, *additional_forward_args).gather(1, t[:, None])[:, 0]
            fb = forward_func(baselines, *additional_forward_args).gather(1, t[:, None])[:, 0]
        return attr, delta_sign * (attr.reshape(b, -1).sum(-1) - (fx - fb))

    return ig


def _rule(n, method):
    k = torch.arange(n, dtype=torch.float32)
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n)
        return torch.tensor((x + 1) / 2, dtype=torch.float32), torch.tensor(w / 2, dtype=torch.float32)
    if method == "riemann_trapezoid":
        w = torch.full((n,), 1 / (n - 1))
        w[[0, -1]] /= 2
        return k / (n - 1), w
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (k + offset) / n, torch.full((n,), 1 / n)


@pytest.mark.parametrize("fn, hint", [
    (ig_variant(factor=False), "multiply by (inputs - baselines)"),
    (ig_variant(target0=True), "TARGET output"),
    (ig_variant(weights="mean"), "weight each step"),
    (ig_variant(per_step_calls=True), "ONE batch"),
    (ig_variant(delta_sign=-1), "other way round"),
])
def test_integrated_gradients_mistakes(fn, hint):
    assert_fails("integrated_gradients", fn, hint)


def test_integrated_gradients_gradient_x_input_is_named():
    def gxi(forward_func, inputs, baselines, target, n_steps=50, method="gausslegendre", additional_forward_args=(),
            return_convergence_delta=False):
        p = inputs.clone().requires_grad_(True)
        t = torch.as_tensor(target).expand(inputs.shape[0])
        g = torch.autograd.grad(forward_func(p, *additional_forward_args).gather(1, t[:, None]).sum(), p)[0]
        return (inputs - baselines) * g

    assert_fails("integrated_gradients", gxi, "gradient x input")


def test_integrated_gradients_alternative():
    assert_passes("integrated_gradients", ig_variant())


def test_integrated_gradients_captum_is_refused_as_the_answer():
    """Captum computes IG in full: calling it IS the exercise, so the check refuses it (the chapter compares the
    learner's IG with captum's elsewhere)."""
    from captum.attr import IntegratedGradients

    def via_captum(forward_func, inputs, baselines, target, n_steps=50, method="gausslegendre",
                   additional_forward_args=(), return_convergence_delta=False):
        return IntegratedGradients(forward_func).attribute(
            inputs, baselines, target=target, n_steps=n_steps, method=method,
            additional_forward_args=additional_forward_args or None,
            return_convergence_delta=return_convergence_delta)

    assert_fails("integrated_gradients", via_captum, "captum.attr.IntegratedGradients.attribute, a complete "
                 "implementation of this exercise")
    from captum.attr import IntegratedGradients as again  # restored after grading

    assert again.attribute.__name__ == "attribute"


# -------------------------------------------------------------------------------------- token_attributions


@pytest.mark.parametrize("fn, hint", [
    (lambda a, m: a.abs().sum(-1) * m, "keep the sign"),
    (lambda a, m: a.norm(dim=-1) * m, "do not take its norm"),
    (lambda a, m: a.sum(-1), "padding positions"),
])
def test_token_attributions_mistakes(fn, hint):
    assert_fails("token_attributions", fn, hint)


def test_token_attributions_alternative():
    assert_passes("token_attributions", lambda a, m: torch.einsum("bpd,bp->bp", a, m.to(a.dtype)))


# ------------------------------------------------------------------------------------ gradient_times_input


def gxi_variant(times_input=True, all_outputs=False):
    def gxi(forward_func, inputs, target, additional_forward_args=()):
        x = inputs.clone().requires_grad_(True)
        out = forward_func(x, *additional_forward_args)
        t = torch.as_tensor(target).expand(len(inputs))
        sel = out.sum() if all_outputs else out.gather(1, t[:, None]).sum()
        g = torch.autograd.grad(sel, x)[0]
        return inputs * g if times_input else g

    return gxi


@pytest.mark.parametrize("fn, hint", [
    (gxi_variant(times_input=False), "plain gradient"),
    (gxi_variant(all_outputs=True), "TARGET output only"),
    (lambda f, x, t, extra=(): x * torch.autograd.functional.jacobian(lambda z: f(z, *extra)[:, t].sum(), x),
     "OWN target"),
])
def test_gradient_times_input_mistakes(fn, hint):
    assert_fails("gradient_times_input", fn, hint)


def test_gradient_times_input_alternative():
    def alt(forward_func, inputs, target, additional_forward_args=()):  # captum's InputXGradient
        from captum.attr import InputXGradient

        return InputXGradient(forward_func).attribute(inputs, target=target,
                                                      additional_forward_args=additional_forward_args or None)

    assert_passes("gradient_times_input", alt)


# ---------------------------------------------------------------------------------------------- spearman


def spearman_order(a, b):
    ra, rb = a.argsort().double(), b.argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float(ra @ rb / (ra.norm() * rb.norm()))


@pytest.mark.parametrize("fn, hint", [
    (lambda a, b: float(torch.corrcoef(torch.stack([a, b]))[0, 1]), "RANKS"),
    (spearman_order, "argsort().argsort()"),
    (lambda a, b: "high", "return a number"),
])
def test_spearman_mistakes(fn, hint):
    assert_fails("spearman", fn, hint)


def test_spearman_alternative():
    def alt(a, b):  # the textbook formula for untied ranks
        n = len(a)
        d = (a.argsort().argsort() - b.argsort().argsort()).double()
        return float(1 - 6 * (d**2).sum() / (n * (n**2 - 1)))

    assert_passes("spearman", alt)


# ---------------------------------------------------------------------------------------- deletion_curve


def deletion_variant(descending=True, start=True, respect=True, per_call=False):
    def curve(prob_fn, input_ids, scores, deletable, baseline_id):
        allowed = deletable if respect else torch.ones_like(deletable)
        s = torch.where(allowed, scores if descending else -scores, float("-inf"))
        order = s.argsort(descending=True)[: int(allowed.sum())]
        versions = [input_ids.clone()]
        for k in range(1, len(order) + 1):
            v = input_ids.clone()
            v[order[:k]] = baseline_id
            versions.append(v)
        if not start:
            versions = versions[1:]
        if per_call:
            return torch.cat([prob_fn(v[None]) for v in versions])
        out = prob_fn(torch.stack(versions))
        return out[: int(deletable.sum()) + 1] if not respect else out

    return curve


@pytest.mark.parametrize("fn, hint", [
    (deletion_variant(descending=False), "HIGHEST-scoring"),
    (deletion_variant(start=False), "starting point"),
    (deletion_variant(respect=False), "only deletable tokens"),
    (deletion_variant(per_call=True), "call it once"),
])
def test_deletion_curve_mistakes(fn, hint):
    assert_fails("deletion_curve", fn, hint)


def test_deletion_curve_alternative():
    def alt(prob_fn, input_ids, scores, deletable, baseline_id):  # a cumulative mask built with cumsum
        idx = deletable.nonzero()[:, 0]
        order = idx[scores[idx].argsort(descending=True)]
        n = len(order)
        rank = torch.full_like(input_ids, n + 1)
        rank[order] = torch.arange(1, n + 1)
        k = torch.arange(n + 1)[:, None]
        versions = torch.where(rank[None] <= k, baseline_id, input_ids[None])
        return prob_fn(versions)

    assert_passes("deletion_curve", alt)


# ---------------------------------------------------------------------------------------------- drills


@pytest.mark.parametrize("name, right, wrong", [
    ("drill_completeness", "b", {"a": "sensitivity", "c": "implementation invariance", "d": "units of the output"}),
    ("drill_snippet_fails", "d", {"a": "any PyTorch model", "b": "interpolating integers", "c": "more steps"}),
    ("drill_baseline_meaning", "a", {"b": "changes the integral", "c": "trains nothing", "d": "target selects"}),
])
def test_drills(name, right, wrong):
    assert_passes(name, lambda: f" {right} ")
    for letter, hint in wrong.items():
        assert_fails(name, lambda letter=letter: letter, hint)
    assert_fails(name, lambda: "z", "one of the letters")
