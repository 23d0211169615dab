"""Every chapter-08 check: the reference passes, a correct alternative passes, plausible mistakes fail with their
specific hint."""

from __future__ import annotations

import pytest
import torch
from check_testing import CheckTester

T = CheckTester("editing")
CH, CHECKS = T.chapter, T.checks
assert_passes, assert_fails = T.passes, T.fails


def test_reference_passes_every_check(ref):
    T.reference_passes(ref)


# ------------------------------------------------------------------------------------------ the key


def key_variant(hook="mlp.hook_post", at_last=False, first_row=False, broadcast=False, shift=0):
    def compute_key(model, tokens, subject_last, layer):
        name = f"blocks.{layer + shift}.{hook}"
        _, cache = model.run_with_cache(tokens, names_filter=[name])
        acts = cache[name]
        if at_last:
            return acts[:, -1].mean(0)
        if broadcast:
            return acts[:, subject_last].mean((0, 1))
        picked = acts[torch.arange(len(tokens)), subject_last]
        return picked[0] if first_row else picked.mean(0)

    return compute_key


@pytest.mark.parametrize("fn, hint", [
    (key_variant(hook="mlp.hook_pre"), "AFTER the nonlinearity"),
    (key_variant(at_last=True), "LAST SUBJECT TOKEN"),
    (key_variant(first_row=True), "ALL rows"),
    (key_variant(broadcast=True), "pairwise"),
    (key_variant(shift=1), "counts from 0"),
])
def test_compute_key_mistakes(fn, hint):
    assert_fails("compute_key", fn, hint)


def test_compute_key_alternative():
    def compute_key(model, tokens, subject_last, layer):  # a hook that stores the activation, gather by index
        store = {}

        def grab(act, hp):
            store["h"] = act.detach()

        with model.hooks([(f"blocks.{layer}.mlp.hook_post", grab)]):
            model(tokens)
        index = subject_last[:, None, None].expand(-1, 1, store["h"].shape[-1])
        return store["h"].gather(1, index)[:, 0].sum(0) / len(tokens)

    assert_passes("compute_key", compute_key)


# ------------------------------------------------------------------------------------------ second moment


@pytest.mark.parametrize("fn, hint", [
    (lambda k: torch.cov(k.T, correction=0), "do not subtract the mean"),
    (lambda k: torch.cov(k.T), "not a covariance"),
    (lambda k: k.T @ k, "(= n"),
    (lambda k: k.T @ k / (len(k) - 1), "not n − 1"),
    (lambda k: k @ k.T / len(k), "Gram matrix"),
])
def test_second_moment_mistakes(fn, hint):
    assert_fails("second_moment", fn, hint)


def test_second_moment_alternative():
    assert_passes("second_moment", lambda k: torch.einsum("ni,nj->ij", k, k) / k.shape[0])
    assert_passes("second_moment", lambda k: torch.stack([torch.outer(r, r) for r in k]).mean(0))


# ------------------------------------------------------------------------------------------ the value


def delta_variant(at_last=False, reverse_kl=False, sum_rows=False, essence_delta=True, kl=True, sgd=False):
    def optimise_delta(model, layer, tokens, subject_last, last, target, essence, essence_subject_last, steps=30,
                       lr=0.1, kl_weight=1.0):
        name = f"blocks.{layer}.hook_mlp_out"
        rows = torch.arange(len(tokens))
        delta = torch.zeros(model.d_model, requires_grad=True)
        opt = (torch.optim.SGD if sgd else torch.optim.Adam)([delta], lr=lr)
        with torch.no_grad():
            p_before = model(essence)[0, -1].softmax(-1)

        def add_at(positions):
            def hook(act, hp):
                mask = torch.zeros(act.shape[:2])
                mask[torch.arange(len(act)), positions] = 1
                return act + mask[..., None] * delta

            return hook

        where = last if at_last else subject_last
        e_where = torch.tensor([essence.shape[1] - 1 if at_last else essence_subject_last])
        with torch.enable_grad():
            for _ in range(steps):
                with model.hooks([(name, add_at(where))]):
                    nll = torch.nn.functional.cross_entropy(model(tokens)[rows, last],
                                                            torch.full((len(tokens),), target),
                                                            reduction="sum" if sum_rows else "mean")
                with model.hooks([(name, add_at(e_where))] if essence_delta else []):
                    log_after = model(essence)[0, -1].log_softmax(-1)
                if reverse_kl:
                    div = (log_after.exp() * (log_after - p_before.log())).sum()
                else:
                    div = torch.nn.functional.kl_div(log_after, p_before, reduction="sum")
                loss = nll + (kl_weight * div if kl else 0)
                opt.zero_grad()
                loss.backward()
                opt.step()
        return delta.detach()

    return optimise_delta


@pytest.mark.parametrize("fn, hint", [
    (delta_variant(at_last=True), "LAST SUBJECT TOKEN"),
    (delta_variant(reverse_kl=True), "reverse KL"),
    (delta_variant(sum_rows=True), "not their sum"),
    (delta_variant(essence_delta=False), "ESSENCE prompt too"),
    (delta_variant(kl=False), "ESSENCE prompt too"),
])
def test_optimise_delta_mistakes(fn, hint):
    assert_fails("optimise_delta", fn, hint)


def test_optimise_delta_sgd_is_rejected():
    passed, message = T.grade("optimise_delta", delta_variant(sgd=True))
    assert not passed and "δ" in message


def test_optimise_delta_alternative():
    """cross_entropy and F.kl_div instead of hand-written log-probabilities; a mask-multiplied δ, not indexing."""
    assert_passes("optimise_delta", delta_variant())


# ------------------------------------------------------------------------------------------ the update


def update_variant(use_c=True, subtract=True, norm="kCk", c_not_inv=False):
    def rank_one_update(W, key, value, C):
        u = (C @ key) if c_not_inv else (torch.linalg.solve(C, key) if use_c else key)
        lam = (value - key @ W) if subtract else value
        denom = {"kCk": key @ u, "uu": u @ u}[norm]
        return W + torch.outer(u, lam / denom)

    return rank_one_update


@pytest.mark.parametrize("fn, hint", [
    (update_variant(use_c=False), "C⁻¹k*, not k*"),
    (update_variant(subtract=False), "subtract what the key already produces"),
    (update_variant(norm="uu"), "not by |C⁻¹k*|²"),
    (update_variant(c_not_inv=True), "used C instead of C⁻¹"),
    (lambda W, k, v, C: (W + torch.outer(torch.linalg.solve(C, k), (v - k @ W) / (k @ torch.linalg.solve(C, k)))).T,
     "the paper's W k convention"),
])
def test_rank_one_update_mistakes(fn, hint):
    assert_fails("rank_one_update", fn, hint)


def test_rank_one_update_alternatives():
    def with_inverse(W, key, value, C):  # explicit inverse and the paper's transposed convention
        Wt = W.T  # [d_model, d_mlp]: the paper's W k
        u = torch.linalg.inv(C) @ key
        return (Wt + torch.outer(value - Wt @ key, u) / (u @ key)).T

    def in_place_on_a_copy(W, key, value, C):
        out = W.clone()
        u = torch.linalg.solve(C, key[:, None])[:, 0]
        out.add_(u[:, None] * ((value - key @ W) / (key @ u))[None])
        return out

    assert_passes("rank_one_update", with_inverse)
    assert_passes("rank_one_update", in_place_on_a_copy)


def test_rank_one_update_that_modifies_W_fails():
    def in_place(W, key, value, C):
        u = torch.linalg.solve(C, key)
        W += torch.outer(u, (value - key @ W) / (key @ u))
        return W

    assert_fails("rank_one_update", in_place, "modified its input in place")


# ------------------------------------------------------------------------------------------ FT-L and scores


@pytest.mark.parametrize("fn, hint", [
    (lambda W, W0, eps: W.clamp(-eps, eps), "clamp the CHANGE"),
    (lambda W, W0, eps: W0 + (W - W0) * eps / (W - W0).norm(), "elementwise clamp"),
    (lambda W, W0, eps: W0 + (W - W0).clamp(max=eps), "both sides"),
])
def test_constrain_linf_mistakes(fn, hint):
    assert_fails("constrain_linf", fn, hint)


def test_constrain_linf_alternative():
    assert_passes("constrain_linf", lambda W, W0, eps: torch.minimum(torch.maximum(W, W0 - eps), W0 + eps))


def _rows(logits, ids):
    return logits[torch.arange(len(logits)), ids]


@pytest.mark.parametrize("fn, hint", [
    (lambda lg, w, a: float((lg.argmax(-1) == w).float().mean()), "PAIRWISE"),
    (lambda lg, w, a: float((_rows(lg.softmax(-1), w) - _rows(lg.softmax(-1), a)).mean()), "magnitude"),
    (lambda lg, w, a: float((_rows(lg, w) >= _rows(lg, a)).float().mean()), "ties do not count"),
    (lambda lg, w, a: float((_rows(lg, w) < _rows(lg, a)).float().mean()), "not the reverse"),
])
def test_counterfact_score_mistakes(fn, hint):
    assert_fails("counterfact_score", fn, hint)


def test_counterfact_score_alternatives():
    assert_passes("counterfact_score", lambda lg, w, a: (_rows(lg.softmax(-1), w) > _rows(lg.softmax(-1), a))
                  .double().mean())
    assert_passes("counterfact_score", lambda lg, w, a: sum(
        float(lg[i, w[i]] > lg[i, a[i]]) for i in range(len(lg))) / len(lg))


def test_counterfact_score_rejects_a_list():
    assert_fails("counterfact_score", lambda lg, w, a: (_rows(lg, w) > _rows(lg, a)).tolist(), "return a number")


# ------------------------------------------------------------------------------------------ drills


@pytest.mark.parametrize("name, answer, wrong", [
    ("drill_why_c_inverse", "c", "a"),
    ("drill_rank_one_preserves", "b", "a"),
    ("drill_specificity", "d", "c"),
])
def test_drills(name, answer, wrong):
    assert_passes(name, lambda: answer)
    assert_passes(name, lambda: f" {answer.upper()} ")
    passed, message = T.grade(name, lambda: wrong)
    assert not passed and "letter" not in message  # a specific hint, not the default one
