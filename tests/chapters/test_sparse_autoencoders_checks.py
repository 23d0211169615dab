"""Every chapter-07 check: the reference passes, a correct alternative passes, plausible mistakes fail with
their specific hint."""

from __future__ import annotations

import pytest
import torch
from check_testing import CheckTester

T = CheckTester("sparse_autoencoders")
CH, CHECKS = T.chapter, T.checks
assert_passes, assert_fails = T.passes, T.fails



def test_reference_passes_every_check(ref):
    T.reference_passes(ref)


def unit(t):
    return t / t.norm(dim=-1, keepdim=True)


# ------------------------------------------------------------------------------------------------- mmcs


@pytest.mark.parametrize("fn, hint", [
    (lambda a, b: float((unit(b) @ unit(a).T).max(0).values.mean()), "best match of every learned direction"),
    (lambda a, b: float((b @ a.T).max(1).values.mean()), "normalise both sets"),
    (lambda a, b: float((unit(b) @ unit(a).T).mean()), "MAX over learned"),
    (lambda a, b: float((unit(b) @ unit(a).T).abs().max(1).values.mean()), "signed cosine"),
])
def test_mmcs_mistakes(fn, hint):
    assert_fails("mmcs", fn, hint)


def test_mmcs_alternative():
    def alt(learned, true):
        sims = torch.nn.functional.cosine_similarity(true[:, None, :], learned[None, :, :], dim=-1)
        return sims.max(dim=1).values.mean().item()

    assert_passes("mmcs", alt)


# ------------------------------------------------------------------------------------------------ topk


def _topk_scatter(pre, k, relu=True, largest=True, dim=-1):
    top = pre.topk(k, dim=dim, largest=largest)
    return torch.zeros_like(pre).scatter(dim, top.indices, torch.relu(top.values) if relu else top.values)


@pytest.mark.parametrize("fn, hint", [
    (lambda pre, k: _topk_scatter(pre, k, relu=False), "apply a ReLU"),
    (lambda pre, k: _topk_scatter(pre, k, largest=False), "k LARGEST"),
    (lambda pre, k: torch.relu(pre), "you returned the ReLU of every"),
    (lambda pre, k: _topk_scatter(pre, min(k, pre.shape[0]), dim=0), "EACH ROW"),
    (lambda pre, k: _topk_scatter(pre, min(k, pre.shape[1]), dim=1), "LAST dimension"),  # right on 2-D only
])
def test_topk_mistakes(fn, hint):
    assert_fails("topk_activation", fn, hint)


def test_topk_alternative():
    def alt(pre, k):
        kth = pre.sort(dim=-1, descending=True).values[..., k - 1 : k]
        return torch.where(pre >= kth, pre.clamp_min(0), torch.zeros_like(pre))

    assert_passes("topk_activation", alt)


# ------------------------------------------------------------------------------------------- batchtopk


def _btk(pre, k, n=None, relu=True, threshold="min"):
    flat = (torch.relu(pre) if relu else pre).flatten()
    top = flat.topk(n if n is not None else k * pre.shape[0])
    acts = torch.zeros_like(flat).scatter(0, top.indices, top.values).view_as(pre)
    kept = top.values[top.values > 0]
    t = {"min": kept.min() if len(kept) else pre.new_zeros(()), "max": acts.max(), "zero": pre.new_zeros(())}
    return acts, t[threshold]


@pytest.mark.parametrize("fn, hint", [
    (lambda pre, k: (_topk_scatter(pre, k), _btk(pre, k)[1]), "select over the WHOLE batch"),
    (lambda pre, k: _btk(pre, k, n=k), "keep k * batch values"),
    (lambda pre, k: _btk(pre, k, relu=False), "apply the ReLU"),
    (lambda pre, k: _btk(pre, k, threshold="max"), "SMALLEST kept"),
    (lambda pre, k: _btk(pre, k, threshold="zero"), "zeros do not count"),
    (lambda pre, k: _btk(pre, k)[0], "return a tuple"),
])
def test_batchtopk_mistakes(fn, hint):
    assert_fails("batchtopk_activation", fn, hint)


def test_batchtopk_alternative():
    def alt(pre, k):
        r = pre.clamp_min(0)
        values = r.flatten().sort(descending=True).values
        cut = values[k * pre.shape[0] - 1]
        acts = torch.where((r >= cut) & (r > 0), r, 0.0)
        pos = acts[acts > 0]
        return acts, (pos.min() if pos.numel() else torch.tensor(0.0))

    assert_passes("batchtopk_activation", alt)


# --------------------------------------------------------------------------------------------- jumprelu


def make_jumprelu(width=0.5, scale="t", sign=-1.0, value="pre"):
    class Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, pre, t, eps):
            ctx.save_for_backward(pre, t)
            ctx.eps = eps
            if value == "step":
                return (pre > t).to(pre.dtype)
            return pre * (pre > t)

        @staticmethod
        def backward(ctx, grad):
            pre, t = ctx.saved_tensors
            k = (((pre - t) / ctx.eps).abs() < width).to(pre.dtype)
            factor = t / ctx.eps if scale == "t" else 1 / ctx.eps
            return grad * (pre > t), (sign * factor * k * grad).sum(0), None

    return lambda pre, t, eps: Fn.apply(pre, t, eps)


@pytest.mark.parametrize("fn, hint", [
    (lambda pre, t, eps: pre * (pre > t), "threshold gets no gradient"),
    (make_jumprelu(width=1.0), "|u| < 1/2"),
    (make_jumprelu(scale="1"), "threshold / bandwidth"),
    (make_jumprelu(sign=1.0), "minus sign"),
    (make_jumprelu(value="step"), "VALUE of the pre-activation"),
    (lambda pre, t, eps: torch.relu(pre - t), "shifted ReLU"),
])
def test_jumprelu_mistakes(fn, hint):
    assert_fails("jumprelu", fn, hint)


def test_jumprelu_alternative():
    """The straight-through trick without a custom Function: a detached forward plus a surrogate whose
    gradient is the estimate."""
    def alt(pre, threshold, bandwidth):
        hard = pre * (pre > threshold)
        kernel = (((pre - threshold) / bandwidth).abs() < 0.5).to(pre.dtype).detach()
        surrogate = -(threshold.detach() / bandwidth) * kernel * threshold  # d/dthreshold = the estimate
        return hard + surrogate - surrogate.detach()

    assert_passes("jumprelu", alt)


# ------------------------------------------------------------------------------------------------- l1


@pytest.mark.parametrize("fn, hint", [
    (lambda a, W: a.sum(-1).mean(), "norm of ITS decoder row"),
    (lambda a, W: (a * W.norm(dim=0)).sum(-1).mean(), "a ROW"),
    (lambda a, W: (a * W.norm(dim=-1)).mean(), "then average over the batch"),
    (lambda a, W: (a * W.pow(2).sum(-1)).sum(-1).mean(), "not its square"),
])
def test_l1_mistakes(fn, hint):
    assert_fails("l1_penalty", fn, hint)


def test_l1_alternative():
    assert_passes("l1_penalty", lambda acts, W_dec: torch.einsum("bw,w->", acts, W_dec.norm(dim=1)) / len(acts))


# ----------------------------------------------------------------------------------------------- auxk


def auxk_variant(mask_dead=True, target="residual", reduce="sum", zero_when_none=True, detach=True):
    def fn(x, recon, pre, dead, W_dec, k_aux):
        if not dead.any():
            return pre.new_zeros(()) if zero_when_none else pre.new_tensor(1.0)
        e = x - recon
        e = e.detach() if detach else e
        k = min(k_aux, int(dead.sum()))
        p = pre.masked_fill(~dead, float("-inf")) if mask_dead else pre
        top = p.topk(min(k, pre.shape[-1]), dim=-1)
        acts = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
        err = acts @ W_dec - (e if target == "residual" else x)
        return err.pow(2).sum(-1).mean() if reduce == "sum" else err.pow(2).mean()

    return fn


@pytest.mark.parametrize("fn, hint", [
    (auxk_variant(mask_dead=False), "only the DEAD latents"),
    (auxk_variant(target="x"), "compared with x"),
    (auxk_variant(reduce="mean"), "sum the squared error over d_in"),
    (auxk_variant(zero_when_none=False), "exactly 0"),
    (auxk_variant(detach=False), "detach the residual"),
])
def test_auxk_mistakes(fn, hint):
    assert_fails("auxk_loss", fn, hint)


def test_auxk_alternative():
    def alt(x, recon, pre, dead, W_dec, k_aux):
        if dead.sum() == 0:
            return torch.tensor(0.0)
        idx = dead.nonzero().squeeze(-1)
        sub = pre[:, idx]
        top = sub.topk(min(k_aux, len(idx)), dim=-1)
        acts = torch.zeros_like(sub).scatter(-1, top.indices, top.values.clamp_min(0))
        return ((acts @ W_dec[idx] - (x - recon).detach()) ** 2).sum(1).mean()

    assert_passes("auxk_loss", alt)


# --------------------------------------------------------------------------------- remove_parallel_grad


def test_remove_parallel_grad_mistakes():
    def unnormalised(W, g):
        return g - (g * W).sum(-1, keepdim=True) * W

    def columns(W, g):
        w = W / W.norm(dim=0, keepdim=True)
        return g - (g * w).sum(0, keepdim=True) * w

    def projection(W, g):
        w = unit(W)
        return (g * w).sum(-1, keepdim=True) * w

    def in_place(W, g):
        w = unit(W)
        g -= (g * w).sum(-1, keepdim=True) * w
        return g

    assert_fails("remove_parallel_grad", unnormalised, "UNIT-norm")
    assert_fails("remove_parallel_grad", columns, "project row by row")
    assert_fails("remove_parallel_grad", projection, "you returned the projection")
    assert_fails("remove_parallel_grad", in_place, "in place")


def test_remove_parallel_grad_alternative():
    def alt(W_dec, grad):
        w = torch.nn.functional.normalize(W_dec, dim=1)
        return grad - torch.einsum("wd,wd->w", grad, w)[:, None] * w

    assert_passes("remove_parallel_grad", alt)


# ------------------------------------------------------------------------------------ geometric_median


def weiszfeld(power):
    def fn(points, n_iter=50):
        m = points.mean(0)
        for _ in range(n_iter):
            w = (points - m).norm(dim=-1).clamp_min(1e-8) ** power
            m = (w[:, None] * points).sum(0) / w.sum()
        return m

    return fn


@pytest.mark.parametrize("fn, hint", [
    (lambda points, n_iter=50: points.mean(0), "not the mean"),
    (lambda points, n_iter=50: points.median(0).values, "coordinate-wise median"),
    (weiszfeld(1.0), "not by the distance"),
    (weiszfeld(-2.0), "not 1 / distance squared"),
])
def test_geometric_median_mistakes(fn, hint):
    assert_fails("geometric_median", fn, hint)


def test_geometric_median_alternative():
    """Minimise the sum of distances directly with gradient descent (slower, same point)."""
    def alt(points, n_iter=50):
        m = points.median(0).values.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([m], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = (points - m).norm(dim=-1).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        return m.detach()

    assert_passes("geometric_median", alt)


# ------------------------------------------------------------------------------------------------ fve


@pytest.mark.parametrize("fn, hint", [
    (lambda x, r: float(1 - (x - r).pow(2).sum() / x.pow(2).sum()), "subtract the MEAN"),
    (lambda x, r: float(1 - (x - r).pow(2).sum() / (x - x.mean(1, keepdim=True)).pow(2).sum()), "over the batch"),
    (lambda x, r: float((1 - (x - r).pow(2).sum(0) / (x - x.mean(0)).pow(2).sum(0)).mean()), "ONE ratio"),
    (lambda x, r: float((x - r).pow(2).sum() / (x - x.mean(0)).pow(2).sum()), "1 - error"),
])
def test_fve_mistakes(fn, hint):
    assert_fails("fve", fn, hint)


def test_fve_alternative():
    assert_passes("fve", lambda x, recon: 1 - ((x - recon) ** 2).sum().item() / (x.var(0, unbiased=False).sum()
                                                                                  * len(x)).item())


# -------------------------------------------------------------------------------------- sparsity_stats


def stats_variant(l0="count", density="tokens", dead="latents", dense="above"):
    def fn(acts, dense_threshold=0.1):
        fires = (acts != 0).float()
        dens = {"tokens": fires.mean(0), "rows": fires.mean(1), "count": fires.sum(0)}[density]
        return {"l0": {"count": fires.sum(-1).mean(), "sum": acts.sum(-1).mean(), "frac": fires.mean()}[l0].item(),
                "density": dens,
                "dead_fraction": float(((fires.mean(0) == 0) if dead == "latents" else (fires.sum(-1) == 0))
                                       .float().mean()),
                "dense_fraction": float(((fires.mean(0) > dense_threshold) if dense == "above"
                                         else (fires.mean(0) < dense_threshold)).float().mean())}

    return fn


@pytest.mark.parametrize("fn, hint", [
    (stats_variant(l0="sum"), "you summed the activations"),
    (stats_variant(l0="frac"), "divided by the width"),
    (stats_variant(density="rows"), "density is per LATENT"),
    (stats_variant(density="count"), "not a count"),
    (stats_variant(dead="tokens"), "you counted dead tokens"),
    (stats_variant(dense="below"), "ABOVE dense_threshold"),
    (lambda acts, t=0.1: (1.0, acts.mean(0)), "return a dict"),
])
def test_sparsity_stats_mistakes(fn, hint):
    assert_fails("sparsity_stats", fn, hint)


def test_sparsity_stats_alternative():
    def alt(acts, dense_threshold=0.1):
        n = acts.shape[0]
        counts = torch.count_nonzero(acts, dim=0)
        density = counts / n
        return {"l0": torch.count_nonzero(acts).item() / n, "density": density,
                "dead_fraction": (counts == 0).float().mean(), "dense_fraction": (density > dense_threshold).float()
                .mean()}

    assert_passes("sparsity_stats", alt)


# ---------------------------------------------------------------------------------------- spliced loss


def spliced_variant(kind):
    def fn(model, tokens, hook, replace):
        def h(act, hp):
            out = replace(act)
            return None if kind == "no_return" else out

        logits = model.run_with_hooks(tokens, [(hook, h)])
        if kind == "no_shift":
            return torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens.flatten()).item()
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(),
                                                 reduction="sum" if kind == "sum" else "mean")
        return loss.item()

    return fn


@pytest.mark.parametrize("kind, hint", [
    ("no_shift", "predict the NEXT token"),
    ("no_return", "return replace(act)"),
    ("sum", "not the sum"),
])
def test_spliced_ce_mistakes(kind, hint):
    assert_fails("spliced_ce_loss", spliced_variant(kind), hint)


def test_spliced_ce_alternative():
    def alt(model, tokens, hook, replace):
        logits = model.run_with_hooks(tokens, [(hook, lambda act, hp: replace(act))])
        logp = logits.log_softmax(-1)[:, :-1]
        return -logp.gather(-1, tokens[:, 1:, None]).mean().item()

    assert_passes("spliced_ce_loss", alt)


# ---------------------------------------------------------------------------------------- ce_recovered


@pytest.mark.parametrize("fn, hint", [
    (lambda c, s, a: (s - c) / (a - c), "equals the CLEAN loss"),
    (lambda c, s, a: (a - s) / a, "not by the ablated loss"),
    (lambda c, s, a: c / s, "not a ratio of losses"),
])
def test_ce_recovered_mistakes(fn, hint):
    assert_fails("ce_recovered", fn, hint)


def test_ce_recovered_alternative():
    assert_passes("ce_recovered", lambda clean, spliced, ablated: 1 - (spliced - clean) / (ablated - clean))


# --------------------------------------------------------------------------------------------- steering


def test_steering_mistakes():
    def in_place(direction, strength):
        def hook(act, hp):
            act += strength * direction
            return act
        return hook

    def no_return(direction, strength):
        def hook(act, hp):
            act + strength * direction
        return hook

    def last_only(direction, strength):
        def hook(act, hp):
            out = act.clone()
            out[:, -1] += strength * direction
            return out
        return hook

    def normalised(direction, strength):
        return lambda act, hp: act + strength * direction / direction.norm()

    def no_strength(direction, strength):
        return lambda act, hp: act + direction

    assert_fails("steering_hook", in_place, "in place")
    assert_fails("steering_hook", no_return, "RETURN")
    assert_fails("steering_hook", last_only, "EVERY position")
    assert_fails("steering_hook", normalised, "do not normalise")
    assert_fails("steering_hook", no_strength, "multiply the direction by the strength")
    assert_fails("steering_hook", lambda d, s: 0.0, "return a hook function")




def test_steering_alternative():
    def alt(direction, strength):
        def hook(act, hp):
            return torch.add(act, direction.expand_as(act), alpha=strength)
        return hook

    assert_passes("steering_hook", alt)


# ----------------------------------------------------------------------------------------------- drills


@pytest.mark.parametrize("name, wrong, hint", [
    ("drill_topk_l0", "a", "L1 penalty"),
    ("drill_ce_vs_fve", "b", "own units"),
    ("drill_dead_latents", "d", "larger L1"),
    ("drill_clamping", "a", "causally USED"),
])
def test_drills(ref, name, wrong, hint):
    assert_fails(name, lambda: wrong, hint)
    assert_passes(name, lambda: ref[name]().upper())
