"""Every chapter-09 check: the reference passes, a correct alternative passes, plausible mistakes fail with their
specific hint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from check_testing import CheckTester

T = CheckTester("lie_detection")
CH, CHECKS = T.chapter, T.checks
assert_passes, assert_fails = T.passes, T.fails


def test_reference_passes_every_check(ref):
    T.reference_passes(ref)


# ------------------------------------------------------------------------------------------ activations


def resid_variant(final_column=False, hook="hook_resid_pre", ln_last=False, first_last=False, broadcast=False,
                  depth_last=False, no_final=False):
    def last_token_resid(model, tokens, last):
        names = [f"blocks.{layer}.{hook}" for layer in range(model.n_layers)]
        if not no_final:
            names.append(f"blocks.{model.n_layers - 1}.hook_resid_post")
        _, cache = model.run_with_cache(tokens, names_filter=names)
        acts = [cache[n] for n in names]
        if ln_last:
            acts[-1] = model.ln_final(acts[-1])
        rows = torch.arange(len(tokens))
        if final_column:
            picked = [a[:, -1] for a in acts]
        elif first_last:
            picked = [a[:, last[0]] for a in acts]
        elif broadcast:
            picked = [a[:, last] for a in acts]
        else:
            picked = [a[rows, last] for a in acts]
        return torch.stack(picked, 1 if depth_last else 0)

    return last_token_resid


@pytest.mark.parametrize("fn, hint", [
    (resid_variant(final_column=True), "ITS last prompt token"),
    (resid_variant(hook="hook_resid_mid"), "not resid_mid"),
    (resid_variant(ln_last=True), "BEFORE ln_final"),
    (resid_variant(first_last=True), "not every row at last[0]"),
    (resid_variant(broadcast=True), "pairwise"),
    (resid_variant(depth_last=True), "depths FIRST"),
    (resid_variant(no_final=True), "n_layers + 1 depths"),
])
def test_last_token_resid_mistakes(fn, hint):
    assert_fails("last_token_resid", fn, hint)


def test_last_token_resid_alternative():
    def last_token_resid(model, tokens, last):  # hooks that gather on the fly, resid_post of layer l-1 = pre of l
        out = []

        def grab(act, hook):
            out.append(act.gather(1, last[:, None, None].expand(-1, 1, act.shape[-1]))[:, 0])

        names = ["blocks.0.hook_resid_pre"] + [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]
        with model.hooks([(n, grab) for n in names]):
            model(tokens)
        return torch.stack(out)

    assert_passes("last_token_resid", last_token_resid)


# ------------------------------------------------------------------------------------------ mass-mean


@pytest.mark.parametrize("fn, hint", [
    (lambda a, lie: (a[lie].mean(0) - a[~lie].mean(0)) / (a[lie].mean(0) - a[~lie].mean(0)).norm(),
     "NOT normalised"),
    (lambda a, lie: a[lie].mean(0) - a.mean(0), "not the mean of all rows"),
    (lambda a, lie: a[lie].sum(0) - a[~lie].sum(0), "MEAN"),
    (lambda a, lie: a[~lie].mean(0) - a[lie].mean(0), "lies minus truths"),
])
def test_mass_mean_direction_mistakes(fn, hint):
    assert_fails("mass_mean_direction", fn, hint)


def test_mass_mean_direction_alternative():
    def mass_mean_direction(acts, lie):  # weights: +1/n_lie on lies, -1/n_truth on truths
        w = torch.where(lie, 1 / lie.sum(), -1 / (~lie).sum()).to(acts.dtype)
        return w @ acts

    assert_passes("mass_mean_direction", mass_mean_direction)


# ------------------------------------------------------------------------------------------ AUROC


def auroc_pairs(ties=0.5, flip=False):
    def auroc(scores, lie):
        if flip:
            lie = ~lie
        pos, neg = scores[lie], scores[~lie]
        wins = (pos[:, None] > neg[None, :]).float().mean()
        return float(wins + ties * (pos[:, None] == neg[None, :]).float().mean())

    return auroc


def auroc_ranks(scores, lie):  # Mann-Whitney U with ranks broken by position (no tie averaging)
    ranks = scores.argsort(stable=True).argsort().double() + 1
    n1, n0 = int(lie.sum()), int((~lie).sum())
    return float((ranks[lie].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@pytest.mark.parametrize("fn, hint", [
    (auroc_pairs(ties=1.0), "not a full win"),
    (auroc_pairs(ties=0.0), "not zero"),
    (auroc_pairs(flip=True), "1 − AUROC"),
    (lambda s, lie: float(((s > 0) == lie).float().mean()), "threshold-free"),
    (auroc_ranks, "AVERAGE rank"),
])
def test_auroc_mistakes(fn, hint):
    assert_fails("auroc", fn, hint)


def test_reference_auroc_is_scikit_learns(ref):
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(0)
    for n in (10, 200):
        lie = torch.rand(n, generator=g) < 0.4
        scores = (torch.randn(n, generator=g) + lie.float()).round()  # ties
        assert abs(ref["auroc"](scores, lie) - roc_auc_score(lie.numpy(), scores.numpy())) < 1e-12


def test_auroc_by_scikit_learn_is_refused():
    from sklearn.metrics import roc_auc_score  # imported before the check runs, as a notebook would

    passed, message = T.grade("auroc", lambda scores, lie: float(roc_auc_score(lie.numpy(), scores.numpy())))
    assert not passed and "complete implementation" in message


def test_auroc_alternatives():
    def auroc_midranks(scores, lie):  # Mann-Whitney with average ranks (scipy's rankdata)
        from scipy.stats import rankdata

        ranks = torch.from_numpy(rankdata(scores.numpy()))
        n1, n0 = int(lie.sum()), int((~lie).sum())
        return float((ranks[lie].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))

    def auroc_trapezoid(scores, lie):  # the ROC curve itself, integrated with the trapezoid rule
        thresholds = np.unique(scores.numpy())[::-1]
        s, y = scores.numpy(), lie.numpy()
        tpr = [0.0] + [float((s[y] >= t).mean()) for t in thresholds]
        fpr = [0.0] + [float((s[~y] >= t).mean()) for t in thresholds]
        return float(np.trapezoid(tpr, fpr))

    assert_passes("auroc", auroc_midranks)
    assert_passes("auroc", auroc_trapezoid)
    assert_passes("auroc", auroc_pairs())


# ------------------------------------------------------------------------------------------ catch rate


def catch_variant(pool=False, q_fpr=False, ge=False, truths_share=False, interpolation="linear"):
    def catch_rate(scores, lie, fpr=0.01):
        base = scores if pool else scores[~lie]
        t = torch.quantile(base.double(), fpr if q_fpr else 1 - fpr, interpolation=interpolation)
        sel = scores[~lie] if truths_share else scores[lie]
        return float(((sel.double() >= t) if ge else (sel.double() > t)).double().mean())

    return catch_rate


@pytest.mark.parametrize("fn, hint", [
    (catch_variant(pool=True), "TRUTHS' scores only"),
    (catch_variant(q_fpr=True), "not the fpr quantile"),
    (catch_variant(ge=True), "STRICTLY above"),
    (catch_variant(truths_share=True), "share of LIES"),
    (catch_variant(interpolation="higher"), "LINEAR interpolation"),
])
def test_catch_rate_mistakes(fn, hint):
    assert_fails("catch_rate", fn, hint)


def test_catch_rate_alternative():
    def catch_rate(scores, lie, fpr=0.01):  # NumPy's percentile, linear like torch.quantile
        t = np.percentile(scores[~lie].double().numpy(), 100 * (1 - fpr))
        return float((scores[lie].double().numpy() > t).mean())

    assert_passes("catch_rate", catch_rate)


# ------------------------------------------------------------------------------------------ CCS


def norm_variant(pooled=False, no_std=False, unbiased=False, per_example=False):
    def ccs_normalise(x_pos, x_neg):
        both = torch.cat([x_pos, x_neg])

        def norm(x):
            if per_example:
                return (x - x.mean(1, keepdim=True)) / x.std(1, correction=0, keepdim=True)
            ref = both if pooled else x
            centred = x - ref.mean(0)
            return centred if no_std else centred / ref.std(0, correction=1 if unbiased else 0)

        return norm(x_pos), norm(x_neg)

    return ccs_normalise


@pytest.mark.parametrize("fn, hint", [
    (norm_variant(pooled=True), "OWN mean and std"),
    (norm_variant(no_std=True), "divide by the set's standard deviation"),
    (norm_variant(unbiased=True), "correction=0"),
    (norm_variant(per_example=True), "each FEATURE over the examples"),
])
def test_ccs_normalise_mistakes(fn, hint):
    assert_fails("ccs_normalise", fn, hint)


def test_ccs_normalise_alternative():
    def ccs_normalise(x_pos, x_neg):  # NumPy, as Burns et al.'s code does it
        def norm(x):
            a = x.numpy()
            a = a - a.mean(axis=0, keepdims=True)
            return torch.from_numpy(a / a.std(axis=0, keepdims=True))

        return norm(x_pos), norm(x_neg)

    assert_passes("ccs_normalise", ccs_normalise)


def loss_variant(confidence=True, use_max=False, equal=False, total=False, absolute=False, item=False):
    def ccs_loss(p_pos, p_neg):
        c = (p_pos - p_neg) if equal else (p_pos - (1 - p_neg))
        c = c.abs() if absolute else c**2
        m = torch.maximum(p_pos, p_neg) if use_max else torch.minimum(p_pos, p_neg)
        m = m if absolute else m**2
        per = c + (m if confidence else 0)
        out = per.sum() if total else per.mean()
        return torch.tensor(out.item()) if item else out

    return ccs_loss


@pytest.mark.parametrize("fn, hint", [
    (loss_variant(confidence=False), "CONFIDENCE term"),
    (loss_variant(use_max=True), "not the max"),
    (loss_variant(equal=True), "not be equal"),
    (loss_variant(total=True), "not their sum"),
    (loss_variant(absolute=True), "SQUARED"),
    (loss_variant(item=True), "differentiable"),
])
def test_ccs_loss_mistakes(fn, hint):
    assert_fails("ccs_loss", fn, hint)


def test_ccs_loss_alternative():
    def ccs_loss(p_pos, p_neg):  # torch.min over a stacked pair, MSE for the consistency
        consistency = torch.nn.functional.mse_loss(p_pos, 1 - p_neg)
        confidence = torch.stack([p_pos, p_neg]).min(0).values.pow(2).mean()
        return consistency + confidence

    assert_passes("ccs_loss", ccs_loss)


# ------------------------------------------------------------------------------------------ steering


def steer_variant(everywhere=False, final_column=False, post=False, unit=False, sign=1.0, all_logits=False):
    def steer_last_token(model, tokens, last, layer, direction, alpha):
        rows = torch.arange(len(tokens))
        vec = sign * alpha * (direction / direction.norm() if unit else direction)
        name = f"blocks.{layer}.hook_resid_post" if post else f"blocks.{layer}.hook_resid_pre"

        def add(act, hook):
            if everywhere:
                return act + vec
            out = act.clone()
            out[rows, -1 if final_column else last] += vec
            return out

        with model.hooks([(name, add)]):
            logits = model(tokens)
        return logits if all_logits else logits[rows, last]

    return steer_last_token


@pytest.mark.parametrize("fn, hint", [
    (steer_variant(everywhere=True), "not at every position"),
    (steer_variant(final_column=True), "not at the final column"),
    (steer_variant(post=True), "ENTERING block"),
    (steer_variant(unit=True), "do not normalise"),
    (steer_variant(sign=-1.0), "do not subtract"),
    (steer_variant(all_logits=True), "[n, d_vocab]"),
])
def test_steer_last_token_mistakes(fn, hint):
    assert_fails("steer_last_token", fn, hint)


def test_steer_last_token_alternative():
    def steer_last_token(model, tokens, last, layer, direction, alpha):  # a one-hot mask, added out of place
        mask = torch.nn.functional.one_hot(last, tokens.shape[1]).to(direction.dtype)  # [n, pos]

        def add(act, hook):
            return act + alpha * mask[..., None] * direction

        logits = model.run_with_hooks(tokens, [(f"blocks.{layer}.hook_resid_pre", add)])
        return logits.gather(1, last[:, None, None].expand(-1, 1, logits.shape[-1]))[:, 0]

    assert_passes("steer_last_token", steer_last_token)


# ------------------------------------------------------------------------------------------ drills


@pytest.mark.parametrize("name, right, wrong, hint", [
    ("drill_trigger_gap", "b", "d", "the model does lie"),
    ("drill_ccs_found", "c", "a", "truth would be right"),
    ("drill_systematic_lie", "a", "c", "function of the truth"),
])
def test_drills(name, right, wrong, hint):
    assert_passes(name, lambda: right)
    assert_passes(name, lambda: right.upper())
    assert_fails(name, lambda: wrong, hint)


# ------------------------------------------------------------------------------------------ written from the
# docstrings alone by a reviewer who had not read the checks (their first grading run found these hints generic;
# the checks now diagnose them by experiment on the learner's output)


def resid_shifted(model, tokens, last):  # resid_post of every block: every depth one block late
    names = [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]
    _, cache = model.run_with_cache(tokens, names_filter=names)
    rows = torch.arange(len(tokens))
    return torch.stack([cache[n][rows, last] for n in names + names[-1:]])


def resid_mid_after_embeddings(model, tokens, last):
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{layer}.hook_resid_mid" for layer in range(model.n_layers)]
    _, cache = model.run_with_cache(tokens, names_filter=names)
    return torch.stack([cache[n][torch.arange(len(tokens)), last] for n in names])


def resid_one_early(model, tokens, last):
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(model.n_layers)]
    names.append(f"blocks.{model.n_layers - 1}.hook_resid_post")
    _, cache = model.run_with_cache(tokens, names_filter=names)
    return torch.stack([cache[n][torch.arange(len(tokens)), last - 1] for n in names])


def auroc_unstable_ranks(scores, lie):  # ordinal ranks from a descending sort: ties broken by position
    order = scores.argsort(descending=True)
    y = lie[order].double()
    tpr = torch.cat([torch.zeros(1, dtype=torch.float64), y.cumsum(0) / y.sum()])
    fpr = torch.cat([torch.zeros(1, dtype=torch.float64), (1 - y).cumsum(0) / (1 - y).sum()])
    return float(torch.trapezoid(tpr, fpr))  # the ROC curve without grouping tied scores


def catch_ceil_rank(scores, lie, fpr=0.01):
    t = scores[~lie].sort().values
    return float((scores[lie] > t[min(int(torch.tensor((1 - fpr) * len(t)).ceil()), len(t) - 1)]).float().mean())


@pytest.mark.parametrize("name, fn, hint", [
    ("last_token_resid", resid_shifted, "is depth 1"),
    ("last_token_resid", resid_mid_after_embeddings, "is a hook_resid_mid"),
    ("last_token_resid", resid_one_early, "off by one position"),
    ("mass_mean_direction", lambda a, lie: (a * lie[:, None]).sum(0) / len(a) - (a * ~lie[:, None]).sum(0) / len(a),
     "THAT class's count"),
    ("auroc", auroc_unstable_ranks, "right when no two scores tie"),
    ("auroc", lambda s, lie: float(((s[:, None] > s[None, :]).double() + 0.5 * (s[:, None] == s[None, :]).double())
                                   [lie].mean()), "every TRUTH"),
    ("catch_rate", catch_ceil_rank, "a rank ceil"),
    ("catch_rate", lambda s, lie, fpr=0.01: float(((s > torch.quantile(s[~lie], 1 - fpr)) & lie).float().mean()),
     "share of the LIES"),
    ("catch_rate", lambda s, lie, fpr=0.01: float((s[lie] > torch.quantile(s[lie], 1 - fpr)).float().mean()),
     "not the lies'"),
    ("catch_rate", catch_variant(interpolation="lower"), "not 'lower'"),
    ("ccs_normalise", lambda a, b: ((a - a.mean(0)) / a.std(correction=0), (b - b.mean(0)) / b.std(correction=0)),
     "EACH FEATURE"),
    ("ccs_loss", lambda p, q: ((p - (1 - q)) ** 2).mean() + torch.minimum(p.mean(), q.mean()) ** 2, "per PAIR"),
    ("ccs_loss", lambda p, q: ((p - (1 - q)) ** 2 + torch.minimum(p, 1 - q) ** 2).mean(), "PROBABILITIES"),
    ("ccs_loss", lambda p, q: ((p - (1 - q)).abs() + torch.minimum(p, q) ** 2).mean(), "not its absolute value"),
])
def test_mistakes_found_by_a_fresh_reviewer(name, fn, hint):
    assert_fails(name, fn, hint)


def steer_at(read_final=False, steer_final=False, broadcast=False, hook="hook_resid_pre", fixed_layer=None):
    def steer_last_token(model, tokens, last, layer, direction, alpha):
        rows = torch.arange(len(tokens))

        def add(act, hp):
            act = act.clone()
            if broadcast:
                act[:, last] += alpha * direction
            else:
                act[rows, -1 if steer_final else last] += alpha * direction
            return act

        at = layer if fixed_layer is None else fixed_layer
        with model.hooks([(f"blocks.{at}.{hook}", add)]):
            logits = model(tokens)
        return logits[rows, -1 if read_final else last]

    return steer_last_token


@pytest.mark.parametrize("fn, hint", [
    (steer_at(read_final=True), "return the logits at position last[i]"),
    (steer_at(read_final=True, steer_final=True), "steer AND read"),
    (steer_at(broadcast=True), "pairwise"),
    (steer_at(hook="hook_resid_mid"), "not hook_resid_mid"),
    (steer_at(fixed_layer=0), "not always block 0"),
])
def test_steering_mistakes_found_by_a_fresh_reviewer(fn, hint):
    assert_fails("steer_last_token", fn, hint)
