"""Checks for chapter 08 (locating and editing facts: ROME). Inputs are generated here: a small random-weight
GPT-2 with MLPs and random prompts, so the checks do not depend on the zoo."""

from __future__ import annotations

import functools

import torch
from mechinterp.autograder.checks._models import tiny_gpt2
from mechinterp.autograder.harness import (
    CheckFailure,
    as_number,
    call,
    case_seed,
    exercise,
    expect_close,
    expect_equal_answer,
)
from mechinterp.autograder.replay import reference_module
from mechinterp.course.toolkit.model import HookedModel
from torch import Tensor

CHAPTER = "editing"
ref = reference_module("editing")  # or, in the student kit, its answer pack


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(case_seed(seed))


@functools.lru_cache(maxsize=1)
def _model() -> HookedModel:
    return tiny_gpt2(81, vocab_size=40, n_embd=32, n_layer=3, n_head=4)


def _cache(tokens: Tensor, names: list[str]) -> dict:
    with torch.no_grad():
        return dict(_model().run_with_cache(tokens, names_filter=names)[1])


# ------------------------------------------------------------------------------------------ the key


@exercise(CHAPTER, points=1)
def check_compute_key(fn) -> None:
    tokens = torch.randint(1, 40, (4, 7), generator=_gen(3))
    subject_last = torch.tensor([2, 3, 2, 4])
    rows = torch.arange(4)
    for layer in (0, 2):
        post, pre = f"blocks.{layer}.mlp.hook_post", f"blocks.{layer}.mlp.hook_pre"
        names = [post, pre] + ([f"blocks.{layer + 1}.mlp.hook_post"] if layer + 1 < 3 else [])
        cache = _cache(tokens, names)
        with torch.no_grad():
            want = ref.compute_key(_model(), tokens, subject_last, layer)
            got = call(fn, _model(), tokens, subject_last, layer)
        mistakes = {
            "the key is the MLP's hidden activation AFTER the nonlinearity (mlp.hook_post), the input of the output "
            "matrix ROME edits — not mlp.hook_pre": cache[pre][rows, subject_last].mean(0),
            "read the LAST SUBJECT TOKEN of each row (subject_last), not the prompt's final position":
                cache[post][:, -1].mean(0),
            "average the key over ALL rows (the subject behind every prefix), not only the first row":
                cache[post][0, subject_last[0]],
            "each row has its own subject position: index [row, subject_last[row]] (pairwise), not "
            "[:, subject_last] (every row at every position)": cache[post][:, subject_last].mean((0, 1)),
        }
        if layer + 1 < 3:
            mistakes["`layer` counts from 0: read blocks.{layer}, not the next block"] = \
                cache[f"blocks.{layer + 1}.mlp.hook_post"][rows, subject_last].mean(0)
        expect_close(got, want, what="key", case=f"layer {layer}", atol=1e-5, rtol=1e-4, mistakes=mistakes)


@exercise(CHAPTER, points=1)
def check_second_moment(fn) -> None:
    for n, d in ((50, 16), (7, 5)):
        keys = torch.randn(n, d, generator=_gen(n)) + torch.linspace(0.5, 2, d)
        want = ref.second_moment(keys)
        centred = keys - keys.mean(0)
        got = call(fn, keys)
        if isinstance(got, Tensor) and got.shape == (n, n):
            raise CheckFailure("C is [d_mlp, d_mlp], a sum of outer products k kᵀ over keys: keys.T @ keys / n, not "
                               "keys @ keys.T (that is the [n, n] Gram matrix of the keys)")
        expect_close(got, want, what="second moment C", case=f"keys {[n, d]}", mistakes={
            "C is the UNCENTRED second moment E[k kᵀ]: do not subtract the mean (ROME's statistics are not a "
            "covariance; the mean key direction is part of what the update must respect)": centred.T @ centred / n,
            "ROME's C is the uncentred E[k kᵀ] (not a covariance), averaged over n": centred.T @ centred / (n - 1),
            "divide by n (a mean over keys), not n − 1": keys.T @ keys / (n - 1),
        }, factors={"n": n})


# ------------------------------------------------------------------------------------------ the value


def _delta_variant(layer, tokens, subject_last, last, target, essence, essence_subject_last, steps, lr, kl_weight,
                   at_last=False, reverse_kl=False, sum_rows=False, essence_delta=True):
    """The value optimisation with one planted mistake (written here, apart from the reference)."""
    model = _model()
    name = f"blocks.{layer}.hook_mlp_out"
    rows = torch.arange(len(tokens))
    delta = torch.zeros(model.d_model, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=lr)
    with torch.no_grad():
        before = model(essence)[0, -1].log_softmax(-1)
    where = last if at_last else subject_last

    def hook(act, hp, pos):
        return act + torch.zeros_like(act).index_put((torch.arange(len(act)), pos), delta.expand(len(act), -1))

    with torch.enable_grad():
        for _ in range(steps):
            with model.hooks([(name, functools.partial(hook, pos=where))]):
                logp = model(tokens)[rows, last].log_softmax(-1)[:, target]
            e_pos = torch.tensor([essence.shape[1] - 1 if at_last else essence_subject_last])
            with model.hooks([(name, functools.partial(hook, pos=e_pos))] if essence_delta else []):
                after = model(essence)[0, -1].log_softmax(-1)
            kl = (after.exp() * (after - before)).sum() if reverse_kl else (before.exp() * (before - after)).sum()
            nll = -logp.sum() if sum_rows else -logp.mean()
            loss = nll + kl_weight * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
    return delta.detach()


@functools.lru_cache(maxsize=2)
def _delta_case(case: int):
    g = _gen(40 + case)
    tokens = torch.randint(1, 40, (3, 7), generator=g)
    last = torch.tensor([6, 5, 6])
    tokens[1, 6] = 0  # right padding after row 1's last token
    subject_last = torch.tensor([2, 1, 3])
    essence = torch.cat([tokens[:1, :3], torch.randint(1, 40, (1, 2), generator=g)], 1)
    # layers 0 and 1 of 3 (an MLP output at a subject token of the LAST layer never reaches the final position);
    # steps, lr and kl_weight large enough that the KL term moves δ measurably
    args = (case, tokens, subject_last, last, 7 + case, essence, 2, 12, 0.5, (10.0, 6.0)[case])
    variants = {
        "add δ and keep the KL term at the ESSENCE prompt too (at its subject token): without it nothing holds "
        "the subject's other predictions in place": _delta_variant(*args, essence_delta=False),
        "add δ at each row's LAST SUBJECT TOKEN (subject_last), not at the final position: ROME edits the "
        "subject's representation, not the question": _delta_variant(*args, at_last=True),
        "KL(p_before ‖ p_after) = Σ p_before·(log p_before − log p_after): weight by the ORIGINAL model's "
        "probabilities, as ROME does (you computed the reverse KL)": _delta_variant(*args, reverse_kl=True),
        "average −log p(target) over the rows (mean), not their sum: the sum outweighs the KL term":
            _delta_variant(*args, sum_rows=True),
    }
    return args, variants


@exercise(CHAPTER, points=3, timeout_s=60)
def check_optimise_delta(fn) -> None:
    for case in (0, 1):
        args, mistakes = _delta_case(case)
        layer, tokens, subject_last, last, target, essence, esl, steps, lr, kl_weight = args
        want = ref.optimise_delta(_model(), layer, tokens, subject_last, last, target, essence, esl, steps=steps,
                                  lr=lr, kl_weight=kl_weight)
        got = call(fn, _model(), layer, tokens, subject_last, last, target, essence, esl, steps=steps, lr=lr,
                   kl_weight=kl_weight)
        if isinstance(got, Tensor):
            got = got.detach()
        expect_close(got, want, what="δ", case=f"layer {layer}, kl_weight {kl_weight}", atol=1e-4, rtol=1e-3,
                     mistakes=mistakes)


# ------------------------------------------------------------------------------------------ the update


def _spd(d: int, seed: int) -> Tensor:
    a = torch.randn(d, 3 * d, generator=_gen(seed)) + 0.5
    return a @ a.T / (3 * d) + 0.1 * torch.eye(d)


@exercise(CHAPTER, points=2)
def check_rank_one_update(fn) -> None:
    for seed, (d_mlp, d_model) in enumerate([(12, 6), (20, 8)]):
        g = _gen(60 + seed)
        W = torch.randn(d_mlp, d_model, generator=g)
        key, value = torch.randn(d_mlp, generator=g).abs(), torch.randn(d_model, generator=g)
        C = _spd(d_mlp, 70 + seed)
        want = ref.rank_one_update(W, key, value, C)
        c_inv_k = torch.linalg.solve(C, key)
        residual = value - key @ W
        got = call(fn, W, key, value, C)
        if isinstance(got, Tensor) and got.shape == want.T.shape:
            raise CheckFailure("return W' as [d_mlp, d_model], like W: here the MLP computes key @ W (transformers' "
                               "Conv1D layout), the transpose of the paper's W k convention")
        expect_close(got, want, what="updated W", case=f"W {[d_mlp, d_model]}", atol=1e-4, rtol=1e-4, mistakes={
            "the direction in key space is C⁻¹k*, not k*: without C⁻¹ the update disturbs the keys that C says are "
            "common (this is plain least change in Frobenius norm)": W + torch.outer(key, residual / (key @ key)),
            "Λ = (v* − k*ᵀW) / (k*ᵀC⁻¹k*): subtract what the key already produces (v* is the new OUTPUT, not the "
            "change)": W + torch.outer(c_inv_k, value / (key @ c_inv_k)),
            "normalise by k*ᵀC⁻¹k* (so that key @ W' == value exactly), not by |C⁻¹k*|²":
                W + torch.outer(c_inv_k, residual / (c_inv_k @ c_inv_k)),
            "the update is outer(C⁻¹k*, Λ) — [d_mlp, d_model], the MLP computes key @ W — applied to W; "
            "you used C instead of C⁻¹": W + torch.outer(C @ key, residual / (key @ C @ key)),
        })
        if not torch.allclose(key @ got, value, atol=1e-3, rtol=1e-3):
            raise CheckFailure("after the update, key @ W' must equal value exactly")


@exercise(CHAPTER, points=1)
def check_constrain_linf(fn) -> None:
    g = _gen(9)
    W0 = torch.randn(6, 5, generator=g)
    W = W0 + torch.randn(6, 5, generator=g) * 0.2
    eps = 0.1
    want = ref.constrain_linf(W, W0, eps)
    change = W - W0
    expect_close(call(fn, W, W0, eps), want, what="projected W", mistakes={
        "clamp the CHANGE (W − W_original) and add it back, not the weights themselves": W.clamp(-eps, eps),
        "an L∞ ball is an elementwise clamp, not a rescaling of the whole change to norm eps":
            W0 + change * eps / change.norm(),
        "clamp the change on both sides: to [−eps, +eps]": W0 + change.clamp(max=eps),
    })


# ------------------------------------------------------------------------------------------ evaluation


@exercise(CHAPTER, points=1)
def check_counterfact_score(fn) -> None:
    for seed, n in enumerate((40, 9)):
        g = _gen(90 + seed)
        logits = torch.randn(n, 12, generator=g) * 2
        want_ids, against = torch.randint(0, 12, (n,), generator=g), torch.randint(0, 12, (n,), generator=g)
        against[:3] = want_ids[:3]  # ties: the same token on both sides never counts as a win
        rows = torch.arange(n)
        probs = logits.softmax(-1)
        want = torch.tensor(ref.counterfact_score(logits, want_ids, against))
        got = torch.tensor(as_number(call(fn, logits, want_ids, against), "the score"))
        expect_close(got, want, what="score", case=f"{n} prompts", mistakes={
            "CounterFact's score is PAIRWISE — p(want) > p(against) — not `want` being the top-1 token":
                (logits.argmax(-1) == want_ids).float().mean(),
            "count the prompts where want wins (a fraction), not the mean probability difference (that is the "
            "'magnitude' variant)": (probs[rows, want_ids] - probs[rows, against]).mean(),
            "ties do not count as wins: use >, not >=":
                (logits[rows, want_ids] >= logits[rows, against]).float().mean(),
            "the fraction where `want` beats `against`, not the reverse":
                (logits[rows, want_ids] < logits[rows, against]).float().mean(),
        })


# ------------------------------------------------------------------------------------------ drills


@exercise(CHAPTER, points=1)
def check_drill_why_c_inverse(fn) -> None:
    expect_equal_answer(call(fn), "c", {
        "a": "C⁻¹ is not there for numerical stability: solving with C is harder than using k* alone",
        "b": "the update still maps k* to v* exactly with or without C⁻¹; C⁻¹ changes what ELSE moves",
        "d": "C is estimated from many keys of ordinary text, not from the edited subject's key",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_rank_one_preserves(fn) -> None:
    expect_equal_answer(call(fn), "b", {
        "a": "keys orthogonal to k* still move when C is not a multiple of the identity: k W' − k W = (k·C⁻¹k*) Λ",
        "c": "a rank-one update changes every key with a component along C⁻¹k*, not only k*",
        "d": "the edit is exact for k* itself; other keys move in proportion to k·C⁻¹k*",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_specificity(fn) -> None:
    expect_equal_answer(call(fn), "d", {
        "a": "efficacy 1.0 says the edit prompt works; specificity is measured on OTHER subjects",
        "b": "specificity is about neighbouring subjects, not held-out phrasings of the same fact (paraphrase)",
        "c": "specificity asks whether neighbours KEEP their old object; 0.2 means most switched",
    }, default_hint="answer with one of the letters a, b, c, d")
