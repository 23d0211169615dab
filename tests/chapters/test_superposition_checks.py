"""Every chapter-01 check: the reference passes, a correct alternative passes, plausible mistakes fail with
their specific hint."""

from __future__ import annotations

import math

import pytest
import torch
from check_testing import CheckTester

T = CheckTester("superposition")
CHECKS = T.checks
assert_passes, assert_fails = T.passes, T.fails


def test_reference_passes_every_check(superposition_reference):
    T.reference_passes(superposition_reference)


# ---------------------------------------------------------------------------------- feature_importance


def importance_alt(n_instances, n_features, decay):
    return torch.tensor([[decay**i for i in range(n_features)] for _ in range(n_instances)], dtype=torch.float32)


@pytest.mark.parametrize("fn, hint", [
    (lambda k, n, d: (d ** torch.arange(1, n + 1).float()).repeat(k, 1), "start the powers at 0"),
    (lambda k, n, d: (torch.arange(n).float() ** d).repeat(k, 1), "not i**decay"),
    (lambda k, n, d: d ** torch.arange(n).float(), "one row per instance"),
    (lambda k, n, d: (d ** torch.arange(n).double()).repeat(k, 1), "float64"),
    (lambda k, n, d: (d ** torch.arange(n).float()).repeat(k, 1).T, "shape"),
])
def test_feature_importance_mistakes(fn, hint):
    assert_fails("feature_importance", fn, hint)


def test_feature_importance_alternative():
    assert_passes("feature_importance", importance_alt)


# ------------------------------------------------------------------------------------- sample_features


def sample_alt(batch_size, feature_probability, generator=None):
    u = torch.rand((2, batch_size, *feature_probability.shape), generator=generator)
    return u[1] * (u[0] <= feature_probability).float()


def sample_sparsity_swapped(batch_size, p, generator=None):
    shape = (batch_size, *p.shape)
    return torch.where(torch.rand(shape, generator=generator) < 1 - p, torch.rand(shape, generator=generator), 0.0)


def sample_reused_draw(batch_size, p, generator=None):
    x = torch.rand((batch_size, *p.shape), generator=generator)
    return torch.where(x < p, x, 0.0)


def sample_shared_instances(batch_size, p, generator=None):
    shape = (batch_size, 1, p.shape[1])
    present = torch.rand(shape, generator=generator) < p.mean(0)
    return torch.where(present, torch.rand(shape, generator=generator), 0.0).expand(batch_size, *p.shape)


def sample_no_generator(batch_size, p, generator=None):
    shape = (batch_size, *p.shape)
    return torch.where(torch.rand(shape) < p, torch.rand(shape), 0.0)


def sample_gaussian(batch_size, p, generator=None):
    shape = (batch_size, *p.shape)
    return torch.where(torch.rand(shape, generator=generator) < p, torch.randn(shape, generator=generator), 0.0)


@pytest.mark.parametrize("fn, hint", [
    (sample_sparsity_swapped, "probability 1 - p"),
    (sample_reused_draw, "reused the same random numbers"),
    (sample_shared_instances, "its own probability"),
    (sample_no_generator, "generator"),
    (sample_gaussian, "uniform on [0, 1]"),
])
def test_sample_features_mistakes(fn, hint):
    assert_fails("sample_features", fn, hint)


def test_sample_features_alternative():
    assert_passes("sample_features", sample_alt)


# ----------------------------------------------------------------------------------------- toy_forward


def forward_alt(W, b, x, activation="relu"):
    h = x.transpose(0, 1) @ W.transpose(1, 2)  # [k, batch, h]
    out = (h @ W).transpose(0, 1) + b
    return out.clamp(min=0) if activation == "relu" else out


def _pre(W, x):
    return torch.einsum("khf,khg,bkg->bkf", W, W, x)


@pytest.mark.parametrize("fn, hint", [
    (lambda W, b, x, activation="relu": torch.relu(_pre(W, x)) + b, "add the bias before the ReLU"),
    (lambda W, b, x, activation="relu": _pre(W, x) + b, "the ReLU is missing"),
    (lambda W, b, x, activation="relu": torch.relu(_pre(W, x) + b), "means no ReLU at all"),
    (lambda W, b, x, activation="relu": torch.relu(_pre(W, x)) if activation == "relu" else _pre(W, x),
     "bias b is missing"),
    (lambda W, b, x, activation="relu": torch.relu(
        torch.einsum("khf,bkh->bkf", W, torch.relu(torch.einsum("khf,bkf->bkh", W, x))) + b),
     "hidden layer h = W x is linear"),
])
def test_toy_forward_mistakes(fn, hint):
    assert_fails("toy_forward", fn, hint)


def test_toy_forward_in_place_mutation_is_caught():
    def mutating(W, b, x, activation="relu"):
        x.mul_(1.0).add_(0.0)
        x[0] = x[0] * 2
        return forward_alt(W, b, x / torch.tensor(1.0), activation)

    assert_fails("toy_forward", mutating, "in place")


def test_toy_forward_alternative():
    assert_passes("toy_forward", forward_alt)


# ------------------------------------------------------------------------------------ weighted_mse_loss


@pytest.mark.parametrize("fn, hint", [
    (lambda x, xh, imp: ((x - xh) ** 2).sum(-1).mean(0).sum(), "by its importance"),
    (lambda x, xh, imp: (imp * (x - xh) ** 2).mean(), "mean over everything"),
    (lambda x, xh, imp: (imp * (x - xh) ** 2).mean(-1).mean(0).sum(), "n_features"),
    (lambda x, xh, imp: (imp * (x - xh).abs()).sum(-1).mean(0).sum(), "absolute error"),
    (lambda x, xh, imp: (imp * (x - xh) ** 2).sum(-1).mean(0).sum().detach(), "detached"),
    (lambda x, xh, imp: (imp * (x - xh) ** 2).sum(-1).mean(0), "shape"),
])
def test_weighted_mse_loss_mistakes(fn, hint):
    assert_fails("weighted_mse_loss", fn, hint)


def test_weighted_mse_loss_alternative():
    assert_passes("weighted_mse_loss", lambda x, xh, imp: torch.einsum("kf,bkf->", imp, (x - xh) ** 2) / x.shape[0])


# ------------------------------------------------------------------------------------ train_toy_models


def make_trainer(ns, *, lr_scale=1.0, use_importance=True, pass_activation=True, copy_params=False,
                 detach=True, fresh_batch=True, seeded=True, fixed_seed=False, fixed_batch=False, cosine=True):
    """A correct training loop with one switch flipped per mutant."""

    def train(importance, feature_probability, n_hidden, activation="relu", steps=3000, batch_size=1024,
              lr=1e-3, seed=0):
        k, n = importance.shape
        if fixed_seed:
            seed = 0
        if fixed_batch:
            batch_size = 1024
        gen = torch.Generator().manual_seed(seed if seeded else int(torch.randint(0, 10**6, ())))
        W = (torch.randn(k, n_hidden, n, generator=gen) * math.sqrt(2 / (n_hidden + n))).requires_grad_()
        b = torch.zeros(k, n, requires_grad=True)
        params = [W.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()] if copy_params else [W, b]
        opt = torch.optim.Adam(params, lr=lr * lr_scale)
        x = ns["sample_features"](batch_size, feature_probability, gen)
        for step in range(steps):
            for g in opt.param_groups:
                g["lr"] = lr * lr_scale * (0.5 * (1 + math.cos(math.pi * step / steps)) if cosine else 1.0)
            if fresh_batch:
                x = ns["sample_features"](batch_size, feature_probability, gen)
            x_hat = ns["toy_forward"](W, b, x, activation if pass_activation else "relu")
            loss = ns["weighted_mse_loss"](x, x_hat, importance if use_importance else torch.ones_like(importance))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return (W.detach(), b.detach()) if detach else (W, b)

    return train


@pytest.mark.parametrize("flags, hint", [
    (dict(copy_params=True), "never changes the parameters"),
    (dict(use_importance=False), "importance"),
    (dict(pass_activation=False), "activation"),
    (dict(lr_scale=1 / 30), "the reference reaches"),
    (dict(detach=False), "detached"),
    (dict(seeded=False), "same seed"),
    (dict(fixed_seed=True), "seeds 11 and 12 gave the same W"),
    (dict(fixed_batch=True), "batch_size 32 and 64"),
    (dict(cosine=False), "cosine schedule"),
])
def test_train_toy_models_mistakes(superposition_reference, flags, hint):
    assert_fails("train_toy_models", make_trainer(superposition_reference, **flags), hint)


def test_train_toy_models_alternative(superposition_reference):
    # a different but correct loop: its own random stream (different init draws), SGD-free Adam variant
    def train(importance, feature_probability, n_hidden, activation="relu", steps=3000, batch_size=1024,
              lr=1e-3, seed=0):
        torch.manual_seed(seed + 1000)
        gen = torch.Generator().manual_seed(seed + 1000)
        k, n = importance.shape
        W = torch.nn.Parameter(torch.nn.init.xavier_normal_(torch.empty(k, n_hidden, n)))
        b = torch.nn.Parameter(torch.zeros(k, n))
        opt = torch.optim.AdamW([W, b], lr=lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        for _ in range(steps):
            x = superposition_reference["sample_features"](batch_size, feature_probability, gen)
            x_hat = superposition_reference["toy_forward"](W, b, x, activation)
            loss = superposition_reference["weighted_mse_loss"](x, x_hat, importance)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        return W.detach(), b.detach()

    assert_passes("train_toy_models", train)


# ------------------------------------------------------------------------------ geometry measures


def dims_alt(W):
    k, h, n = W.shape
    out = torch.zeros(k, n)
    for i in range(n):
        Wi = W[:, :, i]  # [k, h]
        norm = Wi.norm(dim=-1)  # [k]
        unit = Wi / norm.clamp_min(1e-8)[:, None]
        denom = (torch.einsum("kh,khj->kj", unit, W) ** 2).sum(-1)
        out[:, i] = torch.where(norm > 0, norm**2 / denom.clamp_min(1e-12), 0.0)
    return out


def _overlaps(W, normalise=True):
    Wn = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8) if normalise else W
    return torch.einsum("khi,khj->kij", Wn, W)


@pytest.mark.parametrize("fn, hint", [
    (lambda W: W.norm(dim=1) ** 2 / (_overlaps(W, False) ** 2).sum(-1).clamp_min(1e-12), "normalise W_i"),
    (lambda W: W.norm(dim=1) ** 2 / ((_overlaps(W) * (1 - torch.eye(W.shape[-1]))) ** 2).sum(-1).clamp_min(1e-12),
     "includes j = i"),
    (lambda W: W.norm(dim=1) / (_overlaps(W) ** 2).sum(-1).clamp_min(1e-12), "SQUARED norm"),
    (lambda W: dims_alt(W.transpose(1, 2)), "COLUMN i"),
    (lambda W: W.norm(dim=1) ** 2 / (torch.einsum("khi,khj->kij", W / W.norm(dim=1, keepdim=True), W) ** 2).sum(-1),
     "NaN"),
])
def test_feature_dimensionality_mistakes(fn, hint):
    assert_fails("feature_dimensionality", fn, hint)


def test_feature_dimensionality_alternative():
    assert_passes("feature_dimensionality", dims_alt)


def sup_alt(W):
    G = _overlaps(W)
    return (G**2).sum(-1) - torch.diagonal(G, dim1=-2, dim2=-1) ** 2


@pytest.mark.parametrize("fn, hint", [
    (lambda W: (_overlaps(W) ** 2).sum(-1), "leave out j = i"),
    (lambda W: ((_overlaps(W, False) * (1 - torch.eye(W.shape[-1]))) ** 2).sum(-1), "normalise W_i"),
    (lambda W: (_overlaps(W) * (1 - torch.eye(W.shape[-1]))).abs().sum(-1), "square the dot products"),
    (lambda W: sup_alt(W.transpose(1, 2)), "COLUMN i"),
])
def test_superposition_measure_mistakes(fn, hint):
    assert_fails("superposition_measure", fn, hint)


def test_superposition_measure_alternative():
    assert_passes("superposition_measure", sup_alt)


# ---------------------------------------------------------------------------- phase diagram helpers


def grid_alt(r, p):
    rows = [([1.0, float(ri)], [float(pi), float(pi)]) for pi in p for ri in r]
    return torch.tensor([a for a, _ in rows]), torch.tensor([b for _, b in rows])


@pytest.mark.parametrize("fn, hint", [
    (lambda r, p: tuple(t.flip(-1) for t in grid_alt(r, p)), "belongs to the extra feature"),
    (lambda r, p: (torch.stack([torch.ones(len(r) * len(p)), r.repeat_interleave(len(p))], -1),
                   p.repeat(len(r))[:, None].expand(-1, 2)), "slow axis"),
    (lambda r, p: (grid_alt(r, p)[0], torch.stack([torch.ones(len(r) * len(p)), grid_alt(r, p)[1][:, 1]], -1)),
     "both features have the same probability"),
])
def test_phase_grid_inputs_mistakes(fn, hint):
    assert_fails("phase_grid_inputs", fn, hint)


def test_phase_grid_inputs_alternative():
    assert_passes("phase_grid_inputs", grid_alt)


def phase_alt(W, threshold=0.5):
    n0, n1 = W[:, 0, 0].abs(), W[:, 0, 1].abs()
    return ((n1 > threshold).long() * (1 + (n0 > threshold).long())).long()


@pytest.mark.parametrize("fn, hint", [
    (lambda W, threshold=0.5: phase_alt(W.clamp_min(0), threshold), "NORM"),
    (lambda W, threshold=0.5: phase_alt(W.flip(-1), threshold), "extra feature is index 1"),
    (lambda W, threshold=0.5: (lambda p: torch.where(p == 1, 2, torch.where(p == 2, 1, p)))(phase_alt(W, threshold)),
     "labels are swapped"),
    (lambda W, threshold=0.5: phase_alt(W.sign() * W**2, threshold), "squared norm"),
    (lambda W, threshold=0.5: phase_alt(W, 0.5), "threshold"),
    (lambda W, threshold=0.5: phase_alt(W, threshold).int(), "dtype"),
])
def test_classify_phase_mistakes(fn, hint):
    assert_fails("classify_phase", fn, hint)


def test_classify_phase_alternative():
    assert_passes("classify_phase", phase_alt)


# ------------------------------------------------------------------------------------------- drills


@pytest.mark.parametrize("name, answer, hint", [
    ("drill_dense_features_kept", 5, "interference on every input"),
    ("drill_dense_features_kept", 1, "as many features as it has dimensions"),
    ("drill_dense_features_kept", 3, "orthogonal directions"),
    ("drill_linear_never_superposes", "a", "same parameters"),
    ("drill_linear_never_superposes", "b", "every sparsity"),
    ("drill_linear_never_superposes", "d", "has a bias too"),
    ("drill_pentagon_dimensionality", 0.2, "2 dimensions are shared by 5"),
    ("drill_pentagon_dimensionality", 1.0, "dedicated dimension"),
    ("drill_pentagon_dimensionality", 0.5, "72°"),
    ("drill_pentagon_dimensionality", "0.4", "return a number"),
])
def test_drill_wrong_answers(name, answer, hint):
    assert_fails(name, lambda: answer, hint)


@pytest.mark.parametrize("name, answer", [
    ("drill_dense_features_kept", torch.tensor(2)),
    ("drill_linear_never_superposes", " C "),
    ("drill_pentagon_dimensionality", 2 / 5),
])
def test_drill_alternative_answers(name, answer):
    assert_passes(name, lambda: answer)
