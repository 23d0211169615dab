"""Checks for chapter 06 (integrated gradients). Inputs are generated here: small random networks with softmax
outputs (one over plain vectors, one over masked token embeddings, like a text classifier), random token ids
and scores, so the checks do not depend on the zoo's weights."""

from __future__ import annotations

import functools

import numpy as np
import torch
from mechinterp.autograder.harness import (
    CheckFailure,
    as_number,
    call,
    call_observed,
    case_seed,
    exercise,
    expect_close,
    expect_equal_answer,
)
from mechinterp.autograder.replay import reference_module
from torch import Tensor, nn

CHAPTER = "integrated_gradients"
ref = reference_module("integrated_gradients")  # or, in the student kit, its answer pack
CLS, SEP, PAD, MASK = 2, 3, 0, 4


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(case_seed(seed))


@functools.lru_cache(maxsize=1)
def _vector_net() -> nn.Module:
    """[batch, 5] -> softmax over 3 classes, through a saturating hidden layer."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(case_seed(11))
        net = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3), nn.Softmax(-1))
    return net.requires_grad_(False)


@functools.lru_cache(maxsize=1)
def _token_net() -> nn.Module:
    """A text-classifier-shaped function: [batch, pos, 8] embeddings + [batch, pos] mask -> softmax over 2."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(case_seed(12))
        net = _MaskedPool(nn.Sequential(nn.Linear(8, 12), nn.GELU()), nn.Linear(12, 2))
    return net.requires_grad_(False)


class _MaskedPool(nn.Module):
    def __init__(self, body: nn.Module, head: nn.Module):
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.body(x) * mask[..., None]
        return self.head(h.sum(1) / mask.sum(1, keepdim=True)).softmax(-1)


class _Counting:
    """Wraps a forward function and counts its calls (to check that all steps run in one batch)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)


# ------------------------------------------------------------------------------------------ baselines


@exercise(CHAPTER, points=1)
def check_baseline_ids(fn) -> None:
    keep = [CLS, SEP, PAD]
    for seed, (b, p, base) in enumerate([(3, 9, PAD), (2, 6, MASK), (4, 12, 7)]):
        ids = torch.randint(5, 40, (b, p), generator=_gen(seed))
        ids[:, 0] = CLS
        lengths = torch.randint(2, p, (b,), generator=_gen(seed + 5))
        for i, n in enumerate(lengths.tolist()):
            ids[i, n] = SEP
            ids[i, n + 1 :] = PAD
        want = ref.baseline_ids(ids, keep, base)
        expect_close(call(fn, ids, keep, base), want, what="baseline ids", case=f"baseline id {base}", mistakes={
            "keep the structure tokens in keep_ids ([CLS], [SEP], [PAD]) unchanged: only content is replaced":
                torch.full_like(ids, base),
            "you replaced the kept tokens and kept the content: replace every token NOT in keep_ids":
                torch.where(torch.isin(ids, torch.tensor(keep)), base, ids),
            "replace with the baseline_id argument, not a fixed id": ref.baseline_ids(ids, keep, PAD if base != PAD
                                                                                      else MASK),
        })


# ---------------------------------------------------------------------------------- integration rules


@exercise(CHAPTER, points=2)
def check_integration_rule(fn) -> None:
    for method in ref.METHODS:
        for n in (2, 5, 17):
            got = call(fn, n, method)
            if not (isinstance(got, tuple) and len(got) == 2):
                raise CheckFailure("return a tuple (alphas, weights)")
            if not all(isinstance(t, Tensor) for t in got):
                raise CheckFailure("return torch tensors: (alphas, weights)")
            alphas, weights = ref.integration_rule(n, method)
            want = torch.stack([alphas, weights])
            k = torch.arange(n, dtype=torch.float64)
            x, w = (torch.from_numpy(a) for a in np.polynomial.legendre.leggauss(n))
            mistakes = {
                "riemann_left uses the LEFT end of each interval, k / n (you used the right end)":
                    torch.stack([(k + 1) / n, weights]) if method == "riemann_left" else None,
                "riemann_right uses the RIGHT end of each interval, (k + 1) / n": torch.stack([k / n, weights])
                    if method == "riemann_right" else None,
                "map Gauss-Legendre points from [-1, 1] to [0, 1]: alpha = (x + 1) / 2, weight = w / 2":
                    torch.stack([x, w]) if method == "gausslegendre" else None,
                "Gauss-Legendre weights on [0, 1] are HALF of leggauss's weights (the interval is half as long)":
                    torch.stack([(x + 1) / 2, w]) if method == "gausslegendre" else None,
                "n points from 0 to 1 are 1 / (n - 1) apart: the trapezoid weights are 1 / (n - 1) (ends halved), "
                "not 1 / n": torch.stack([k / (n - 1), torch.full((n,), 1 / n, dtype=torch.float64)
                                          .index_fill(0, torch.tensor([0, n - 1]), 0.5 / n)])
                    if method == "riemann_trapezoid" else None,
            }
            stacked = torch.stack([torch.as_tensor(got[0]), torch.as_tensor(got[1])]) \
                if got[0].shape == got[1].shape else got[0]
            expect_close(stacked, want, what="(alphas, weights)", case=f"{method}, n_steps={n}", atol=1e-9,
                         rtol=1e-7, mistakes={h: m for h, m in mistakes.items() if m is not None})


# ------------------------------------------------------------------------------- integrated gradients


def _ig_cases():
    g = _gen(3)
    x = torch.randn(4, 5, generator=g) * 2
    yield "vector inputs, target 1, gausslegendre", _vector_net(), x, torch.zeros_like(x), 1, 20, "gausslegendre", ()
    yield ("vector inputs, per-example targets, riemann_middle", _vector_net(), x, torch.randn(4, 5, generator=g),
           torch.tensor([0, 2, 1, 2]), 7, "riemann_middle", ())
    emb = torch.randn(3, 6, 8, generator=g)
    mask = torch.ones(3, 6)
    mask[1, 4:] = 0
    mask[2, 3:] = 0
    yield ("token embeddings with an attention mask, riemann_right", _token_net(), emb, torch.randn(3, 6, 8,
           generator=g) * 0.1, torch.tensor([1, 0, 1]), 9, "riemann_right", (mask,))


def _target_grad(net, x: Tensor, target, extra: tuple) -> Tensor:
    t = torch.as_tensor(target).expand(x.shape[0])
    point = x.clone().requires_grad_(True)
    with torch.enable_grad():
        return torch.autograd.grad(net(point, *extra).gather(1, t[:, None]).sum(), point)[0]


def _ig_variant(f, x, x0, target, n, method, extra, *, factor=True, weights="rule", target_override=None):
    """What a specific mistake computes (a plain loop, for clarity)."""
    alphas, w = ref.integration_rule(n, method)
    t = torch.as_tensor(target if target_override is None else target_override).expand(x.shape[0])
    total = torch.zeros_like(x)
    for a, wk in zip(alphas.tolist(), w.tolist(), strict=True):
        point = (x0 + a * (x - x0)).requires_grad_(True)
        with torch.enable_grad():
            out = f(point, *extra).gather(1, t[:, None]).sum()
            grad = torch.autograd.grad(out, point)[0]
        total = total + (wk if weights == "rule" else 1 / n) * grad
    return (x - x0) * total if factor else total


@exercise(CHAPTER, points=4, forbidden=("captum.attr:IntegratedGradients.attribute",
                                          "captum.attr:IntegratedGradients._attribute"))
def check_integrated_gradients(fn) -> None:
    for case, net, x, x0, target, n, method, extra in _ig_cases():
        counting = _Counting(net)
        got, calls = call_observed(lambda counting=counting: counting.calls, fn, counting, x, x0, target, n, method,
                                   extra)
        if calls > 3:
            raise CheckFailure(f"forward_func was called {calls} times for {n} steps ({case}): stack all "
                               "scaled inputs into ONE batch of n_steps * batch and call it once")
        want = ref.integrated_gradients(net, x, x0, target, n, method, extra)
        mistakes = {
            "multiply by (inputs - baselines): without it you return the average gradient along the path, not an "
            "attribution": _ig_variant(net, x, x0, target, n, method, extra, factor=False),
            "attribute the TARGET output of each example (gather it), not always output 0":
                _ig_variant(net, x, x0, target, n, method, extra, target_override=0),
            "x * grad at the input is gradient x input, not integrated gradients: integrate along the path":
                (x - x0) * _target_grad(net, x, target, extra),
        }
        if method != "riemann_middle":
            mistakes["weight each step by the rule's weights w_k (Gauss-Legendre and Riemann-right weights are not "
                     "all 1/n at every point, or the points are not where you sampled)"] = \
                _ig_variant(net, x, x0, target, n, method, extra, weights="mean") if method == "gausslegendre" \
                else _ig_variant(net, x, x0, target, n, "riemann_left", extra)
        expect_close(got, want, what="attributions", case=case, atol=1e-5, rtol=1e-4, mistakes=mistakes)
        out = call(fn, net, x, x0, target, n, method, extra, return_convergence_delta=True)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise CheckFailure("with return_convergence_delta=True, return (attributions, delta)")
        attr, delta = ref.integrated_gradients(net, x, x0, target, n, method, extra, return_convergence_delta=True)
        expect_close(out[0], attr, what="attributions", case=case + ", with delta", atol=1e-5, rtol=1e-4)
        expect_close(out[1], delta, what="delta", case=case, atol=1e-5, rtol=1e-4, mistakes={
            "delta = (sum of each example's attributions) - (F(inputs) - F(baselines)): you subtracted the other "
            "way round": -delta,
            "delta is per example: sum each example's attributions, and compare with ITS F(inputs) - F(baselines)":
                delta.sum().expand(len(x)).clone(),
        })


# ------------------------------------------------------------------------------------------ per token


@exercise(CHAPTER, points=1)
def check_token_attributions(fn) -> None:
    for seed, (b, p, d) in enumerate([(2, 5, 4), (3, 7, 16), (1, 3, 1)]):
        g = _gen(seed)
        attr = torch.randn(b, p, d, generator=g)
        mask = torch.ones(b, p)
        mask[0, -1] = 0
        want = ref.token_attributions(attr, mask)
        expect_close(call(fn, attr, mask), want, what="token scores", case=f"attributions {[b, p, d]}", mistakes={
            "keep the sign: sum the attributions (evidence for and against cancel, completeness holds); "
            "abs() or a norm throws that away": attr.abs().sum(-1) * mask,
            "sum over the embedding dimension, do not take its norm (the norm loses the sign)":
                attr.norm(dim=-1) * mask,
            "set padding positions to 0 (multiply by the attention mask)": attr.sum(-1),
        })


# ---------------------------------------------------------------------------------- gradient x input


@exercise(CHAPTER, points=1)
def check_gradient_times_input(fn) -> None:
    g = _gen(8)
    cases = [(_vector_net(), torch.randn(4, 5, generator=g), torch.tensor([2, 0, 1, 1]), ()),
             (_token_net(), torch.randn(2, 4, 8, generator=g), 1, (torch.ones(2, 4),))]
    for net, x, target, extra in cases:
        want = ref.gradient_times_input(net, x, target, extra)
        grad = _target_grad(net, x, target, extra)
        grad_all = torch.autograd.functional.jacobian(lambda z, net=net, e=extra: net(z, *e).sum(), x)
        t = torch.as_tensor(target)
        cross = torch.autograd.functional.jacobian(lambda z, net=net, e=extra, t=t: net(z, *e)[:, t].sum(), x)
        expect_close(call(fn, net, x, target, extra), want, what="gradient x input", case=f"inputs {list(x.shape)}",
                     mistakes={
            "multiply the gradient by the input: you returned the plain gradient": grad,
            "take the gradient of each example's TARGET output only, not of the sum over all outputs "
            "(softmax outputs sum to 1, so that gradient is ~0)": x * grad_all,
            "index each example's OWN target: out.gather(1, target[:, None]) (out[:, target] takes every "
            "example's target class in every row)": x * cross,
        })


# -------------------------------------------------------------------------------------- rank correlation


@exercise(CHAPTER, points=1)
def check_spearman(fn) -> None:
    for seed, n in enumerate([12, 5, 40]):
        g = _gen(seed)
        a = torch.randn(n, generator=g)
        b = a**3 + 0.8 * torch.randn(n, generator=g)  # monotone relation + noise: ranks differ from values
        got = torch.tensor(as_number(call(fn, a, b), "the correlation"), dtype=torch.float64)
        want = torch.tensor(ref.spearman(a, b), dtype=torch.float64)
        order_a, order_b = a.argsort().double(), b.argsort().double()
        oa, ob = order_a - order_a.mean(), order_b - order_b.mean()
        expect_close(got, want, what="Spearman correlation", case=f"n={n}", atol=1e-6, mistakes={
            "that is Pearson's correlation of the values; Spearman's is Pearson's correlation of their RANKS":
                torch.tensor(float(torch.corrcoef(torch.stack([a, b]))[0, 1]), dtype=torch.float64),
            "argsort() gives the ORDER (which index is smallest, next, ...); argsort().argsort() gives each "
            "element's rank": (oa @ ob) / (oa.norm() * ob.norm()),
        })


# ---------------------------------------------------------------------------------------- deletion curves


@exercise(CHAPTER, points=2)
def check_deletion_curve(fn) -> None:
    for seed, p in enumerate([8, 5, 12]):
        g = _gen(seed)
        ids = torch.randint(5, 30, (p,), generator=g)
        ids[0], ids[-2], ids[-1] = CLS, SEP, PAD
        deletable = ~torch.isin(ids, torch.tensor([CLS, SEP, PAD]))
        scores = torch.randn(p, generator=g)
        weights = torch.rand(30, generator=g)

        def prob(versions, weights=weights):  # a deterministic "probability" that depends on every position
            return torch.sigmoid((weights[versions] * torch.linspace(1, 2, versions.shape[1])).sum(-1) - 4)

        counting = _Counting(prob)
        got, calls = call_observed(lambda counting=counting: counting.calls, fn, counting, ids, scores, deletable, PAD)
        if calls != 1:
            raise CheckFailure(f"prob_fn was called {calls} times: build all deletion versions as one "
                               "[k, pos] batch and call it once")
        want = ref.deletion_curve(prob, ids, scores, deletable, PAD)
        expect_close(got, want, what="curve", case=f"{int(deletable.sum())} deletable tokens", atol=1e-6, mistakes={
            "delete the HIGHEST-scoring tokens first (descending order)":
                ref.deletion_curve(prob, ids, -scores, deletable, PAD),
            "include the starting point: the probability before any deletion comes first (n_deletable + 1 values)":
                want[1:],
            "only deletable tokens may be deleted: [CLS], [SEP] and padding stay":
                ref.deletion_curve(prob, ids, scores, torch.ones_like(deletable), PAD)[: len(want)],
        })


# ------------------------------------------------------------------------------------------ drills


@exercise(CHAPTER, points=1)
def check_drill_completeness(fn) -> None:
    expect_equal_answer(call(fn), "b", {
        "a": "that is closer to sensitivity (a feature that changes the output gets non-zero attribution)",
        "c": "that is implementation invariance, IG's other axiom",
        "d": "attributions are in the units of the output; they sum to F(x) - F(baseline)",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_snippet_fails(fn) -> None:
    expect_equal_answer(call(fn), "d", {
        "a": "captum works with any PyTorch model, transformers included, once it is given a continuous input",
        "b": "the baseline can be anything continuous; the problem is interpolating integers",
        "c": "more steps do not make integer ids differentiable",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_baseline_meaning(fn) -> None:
    expect_equal_answer(call(fn), "a", {
        "b": "more steps only make the integral more precise; a different baseline changes the integral itself",
        "c": "IG trains nothing; the baseline is the reference input",
        "d": "the target selects the class; the baseline is the reference input",
    }, default_hint="answer with one of the letters a, b, c, d")
