"""Checks for chapter 09 (catching a model that lies). Inputs are generated here: a small random-weight GPT-2 and
random activations, scores and probabilities, so the checks do not depend on the zoo."""

from __future__ import annotations

import contextlib
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

CHAPTER = "lie_detection"
ref = reference_module("lie_detection")  # or, in the student kit, its answer pack
N_LAYER = 3


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(case_seed(seed))


@functools.lru_cache(maxsize=1)
def _model() -> HookedModel:
    return tiny_gpt2(91, vocab_size=30, n_embd=16, n_layer=N_LAYER, n_head=2)


def _padded(seed: int, n: int = 5, width: int = 8) -> tuple[Tensor, Tensor]:
    """Right-padded random prompts (padding id 0) of different lengths; `last` [n] their last tokens."""
    g = _gen(seed)
    last = torch.randint(2, width - 1, (n,), generator=g)
    last[-1] = width - 1  # one row (not the first) fills the width: "the final column" is right for it only
    tokens = torch.randint(1, 30, (n, width), generator=g)
    tokens[torch.arange(width)[None, :] > last[:, None]] = 0
    return tokens, last


def _cache(tokens: Tensor) -> dict:
    with torch.no_grad():
        return dict(_model().run_with_cache(tokens)[1])


# ------------------------------------------------------------------------------------------ activations


@exercise(CHAPTER, points=1)
def check_last_token_resid(fn) -> None:
    tokens, last = _padded(5)
    n, rows = len(tokens), torch.arange(len(tokens))
    cache = _cache(tokens)
    pre = [cache[f"blocks.{layer}.hook_resid_pre"] for layer in range(N_LAYER)]
    post = cache[f"blocks.{N_LAYER - 1}.hook_resid_post"]
    mid = [cache[f"blocks.{layer}.hook_resid_mid"] for layer in range(N_LAYER)]
    with torch.no_grad():
        want = ref.last_token_resid(_model(), tokens, last)
        got = call(fn, _model(), tokens, last)
    if isinstance(got, Tensor) and got.shape == (N_LAYER + 1, n, n, want.shape[-1]):
        raise CheckFailure("index [rows, last] pairwise (row i at position last[i]): `acts[:, last]` takes every "
                           "row at every row's last position")
    if isinstance(got, Tensor) and got.shape == (n, N_LAYER + 1, want.shape[-1]):
        raise CheckFailure("stack the depths FIRST: the result is [n_layers + 1, n, d_model], not [n, depth, d]")
    if isinstance(got, Tensor) and got.shape == (N_LAYER, n, want.shape[-1]):
        raise CheckFailure("n_layers + 1 depths: the residual entering every block (depth 0 = the embeddings) AND "
                           "the stream leaving the last block (blocks.{L-1}.hook_resid_post)")
    at = lambda acts, where: acts[rows, where]  # noqa: E731
    ln = _model().ln_final
    with _explained(lambda: _depth_diagnosis(got, last, pre + [post], mid)):
        expect_close(got, want, what="residual at the last token", case="right-padded rows", mistakes={
            "the rows are right-padded: read row i at ITS last prompt token, position last[i], not the final column":
                torch.stack([a[:, -1] for a in [*pre, post]]),
            "read the stream ENTERING each block (hook_resid_pre), not resid_mid (after the block's attention)":
                torch.stack([at(a, last) for a in [*mid, post]]),
            "the last depth is the raw stream leaving the last block (hook_resid_post), BEFORE ln_final":
                torch.stack([*(at(a, last) for a in pre), ln(at(post, last))]),
            "each row has its own last position: index [row, last[row]], not every row at last[0]":
                torch.stack([a[:, last[0]] for a in [*pre, post]]),
        })


def _generic(message: str) -> bool:
    return any(p in message for p in ("differs from the expected value", "is the expected value times",
                                      "off by a constant"))


@contextlib.contextmanager
def _explained(diagnose):
    """Replace a generic failure message by what `diagnose()` finds (an experiment on the learner's output);
    a diagnosis that finds nothing ('') leaves the generic message, since a wrong hint is worse."""
    try:
        yield
    except CheckFailure as e:
        hint = diagnose() if _generic(str(e)) else ""
        if hint:
            raise CheckFailure(hint) from None
        raise


def _depth_diagnosis(got: Tensor, last: Tensor, streams: list[Tensor], mids: list[Tensor]) -> str:
    """Name what the learner's depth k holds when it is not the expected stream: another depth, resid_mid, or
    the right stream one position early. '' when no depth matches anything (then the generic message)."""
    rows = torch.arange(len(last))

    def same(a, b):
        return torch.allclose(a, b, atol=1e-5, rtol=1e-4)

    for k in range(len(streams)):
        if same(got[k], streams[k][rows, last]):
            continue
        if k + 1 < len(streams) and same(got[k], streams[k + 1][rows, last]):
            return (f"your depth {k} is depth {k + 1}: depth k is the stream ENTERING block k "
                    "(blocks.{k}.hook_resid_pre; depth 0 = the embeddings), and the last depth the stream leaving "
                    "the last block — resid_post of block k is depth k + 1")
        if any(same(got[k], m[rows, last]) for m in mids):
            return (f"your depth {k} is a hook_resid_mid (after a block's attention, before its MLP): read "
                    "hook_resid_pre, the stream entering each block")
        if same(got[k], streams[k][rows, (last - 1).clamp(min=0)]):
            return ("off by one position: read position last[i] itself (the last prompt token, whose next-token "
                    "prediction is the answer), not last[i] − 1")
        return ""
    return ""


# ------------------------------------------------------------------------------------------ probes


@exercise(CHAPTER, points=1)
def check_mass_mean_direction(fn) -> None:
    for seed, (n_lie, n_truth, d) in enumerate([(7, 23, 6), (40, 12, 9)]):
        g = _gen(20 + seed)
        acts = torch.randn(n_lie + n_truth, d, generator=g) + torch.linspace(-1, 2, d)
        lie = torch.zeros(n_lie + n_truth, dtype=torch.bool)
        lie[torch.randperm(len(lie), generator=g)[:n_lie]] = True
        acts[lie] += torch.randn(d, generator=g)
        want = ref.mass_mean_direction(acts, lie)
        got = call(fn, acts, lie)
        diff = acts[lie].mean(0) - acts[~lie].mean(0)
        expect_close(got, want, what="direction", case=f"{n_lie} lies, {n_truth} truths", mistakes={
            "the direction is NOT normalised (mass-mean probes project onto the raw difference of means)":
                diff / diff.norm(),
            "subtract the mean of the TRUTHS, not the mean of all rows": acts[lie].mean(0) - acts.mean(0),
            "take each class's MEAN: with unequal class sizes, sums weigh the larger class":
                acts[lie].sum(0) - acts[~lie].sum(0),
            "divide each class's sum by THAT class's count (a mean per class), not by the number of all rows":
                (acts[lie].sum(0) - acts[~lie].sum(0)) / len(acts),
            "the convention here is lies minus truths (a detector scores lies HIGHER), you computed truths minus "
            "lies": -diff,
        })


# scikit-learn's roc_auc_score computes the exercise in full: refused through the helper every binary call goes
# through (patching the public name would miss a learner's `from sklearn.metrics import roc_auc_score`)
@exercise(CHAPTER, points=2, forbidden=("sklearn.metrics._ranking:_binary_roc_auc_score",))
def check_auroc(fn) -> None:
    for seed, (n_lie, n_truth) in enumerate([(30, 50), (9, 6)]):
        g = _gen(30 + seed)
        lie = torch.zeros(n_lie + n_truth, dtype=torch.bool)
        lie[torch.randperm(len(lie), generator=g)[:n_lie]] = True
        scores = (torch.randn(len(lie), generator=g) + lie.float()).mul(2).round() / 2  # many ties
        scores[0] = -0.3  # and negative scores, so that "> 0" is not the same as "higher than a truth"
        want = torch.tensor(ref.auroc(scores, lie), dtype=torch.float64)  # = roc_auc_score (a test says so)
        # the same scores with every tie broken and the order of distinct values kept (they are 0.5 apart)
        untied = scores.double() + torch.randperm(len(scores), generator=g).double() * 1e-4 / len(scores)
        want_untied = ref.auroc(untied, lie)
        got = torch.tensor(as_number(call(fn, scores, lie), "the AUROC"), dtype=torch.float64)
        pos, neg = scores[lie], scores[~lie]
        wins = (pos[:, None] > neg[None, :]).double().mean()
        ties = (pos[:, None] == neg[None, :]).double().mean()
        ranks = scores.argsort(stable=True).argsort().double() + 1
        by_rank = (ranks[lie].sum() - n_lie * (n_lie + 1) / 2) / (n_lie * n_truth)
        all_pairs = (scores[:, None] > scores[None, :]).double() + 0.5 * (scores[:, None] == scores[None, :]).double()
        with _explained(lambda u=untied, w=want_untied, y=lie: _tie_diagnosis(fn, u, y, w)):
            expect_close(got, want, what="AUROC", case=f"{n_lie} lies, {n_truth} truths, tied scores", atol=1e-6,
                         mistakes={
                "a tie between a lie and a truth counts ONE HALF (as roc_auc_score does), not a full win (>=)":
                    wins + ties,
                "a tie between a lie and a truth counts one half, not zero": wins,
                "AUROC asks whether LIES score higher than truths; you computed it for truths (1 − AUROC)":
                    1 - want,
                "AUROC is threshold-free (every lie against every truth), not the accuracy of `score > 0`":
                    ((scores > 0) == lie).double().mean(),
                "rank-based AUROC must give tied scores their AVERAGE rank (argsort breaks ties by order)": by_rank,
                "compare each lie with every TRUTH, not with every row (other lies, and itself, do not count)":
                    all_pairs[lie].mean(),
            })


def _tie_diagnosis(fn, untied: Tensor, lie: Tensor, want_untied: float) -> str:
    """The learner's AUROC is wrong on tied scores: is it right once the ties are broken (the distinct values
    in the same order)? Then the ties are the mistake, whatever way the code mishandles them."""
    try:
        right = abs(as_number(call(fn, untied, lie), "the AUROC") - want_untied) < 1e-6
    except CheckFailure:
        return ""
    if not right:
        return ""
    return ("your AUROC is right when no two scores tie and wrong when they do: a lie and a truth with the SAME "
            "score count one half (on an ROC curve, tied scores are one step, taken together)")


@exercise(CHAPTER, points=1)
def check_catch_rate(fn) -> None:
    for seed, (n_lie, n_truth, fpr) in enumerate([(40, 101, 0.01), (25, 64, 0.1)]):
        g = _gen(40 + seed)
        lie = torch.zeros(n_lie + n_truth, dtype=torch.bool)
        lie[torch.randperm(len(lie), generator=g)[:n_lie]] = True
        scores = torch.randn(len(lie), generator=g) + 2.5 * lie.float()
        truths = scores[~lie].double()
        q = 1 - fpr
        exact = torch.quantile(truths, q)  # case 0: (n_truth - 1) * q is whole, the threshold IS a truth's score
        scores[lie.nonzero()[:3, 0]] = exact.float()  # three lies tie with it (not caught: strictly above)
        higher = torch.quantile(truths, q, interpolation="higher")
        if higher > exact:  # case 1: a lie between the interpolated threshold and the next truth
            scores[lie.nonzero()[3, 0]] = ((exact + higher) / 2).float()
        truths = scores[~lie].double()
        lies = scores[lie].double()
        want = torch.tensor(ref.catch_rate(scores, lie, fpr), dtype=torch.float64)
        got = torch.tensor(as_number(call(fn, scores, lie, fpr), "the catch rate"), dtype=torch.float64)
        rate = lambda t, lies=lies: (lies > t).double().mean()  # noqa: E731
        expect_close(got, want, what="catch rate", case=f"fpr {fpr}, {n_truth} truths", atol=1e-6, mistakes={
            "set the threshold from the TRUTHS' scores only (it fixes their false-positive rate), not from all rows":
                rate(torch.quantile(scores.double(), q)),
            "the threshold is the (1 − fpr) quantile of the truths (only fpr of them above it), not the fpr "
            "quantile": rate(torch.quantile(truths, fpr)),
            "a lie is caught when it scores STRICTLY above the threshold (>), not >=": (lies >= exact).double().mean(),
            "return the share of LIES above the threshold (the catch rate), not the share of truths":
                (truths > torch.quantile(truths, q)).double().mean(),
            "use torch.quantile's default LINEAR interpolation between order statistics, not 'higher'":
                rate(torch.quantile(truths, q, interpolation="higher")),
            "use torch.quantile's default LINEAR interpolation between order statistics, not 'lower'":
                rate(torch.quantile(truths, q, interpolation="lower")),
            "use torch.quantile's default LINEAR interpolation between order statistics, not 'nearest'":
                rate(torch.quantile(truths, q, interpolation="nearest")),
            "the threshold is torch.quantile's linear interpolation at position (1 − fpr)·(n − 1) of the sorted "
            "truths, not a rank ceil((1 − fpr)·n) you index yourself":
                rate(truths.sort().values[min(int(torch.tensor(q * n_truth).ceil()), n_truth - 1)]),
            "the catch rate is a share of the LIES: divide the lies caught by the number of lies, not of all rows":
                (lies > exact).double().sum() / len(scores),
            "set the threshold from the TRUTHS' scores (it fixes their false-positive rate), not the lies'":
                rate(torch.quantile(lies, q)),
        })


# ------------------------------------------------------------------------------------------ CCS


@exercise(CHAPTER, points=1)
def check_ccs_normalise(fn) -> None:
    g = _gen(50)
    n, d = 17, 6
    x_pos = torch.randn(n, d, generator=g) * torch.linspace(0.5, 3, d) + 2
    x_neg = torch.randn(n, d, generator=g) * torch.linspace(2, 0.7, d) - 1
    want = ref.ccs_normalise(x_pos, x_neg)
    got = call(fn, x_pos, x_neg)
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        raise CheckFailure("return the two normalised sets as a tuple (x_pos, x_neg)")
    both = torch.cat([x_pos, x_neg])

    def variants(x):
        return {
            "normalise EACH set with its OWN mean and std (Burns et al.): pooling both sets keeps the difference "
            "between the completions, which is exactly what CCS must not read":
                (x - both.mean(0)) / both.std(0, correction=0),
            "after subtracting the mean, divide by the set's standard deviation per feature":
                x - x.mean(0),
            "use the population std (correction=0, NumPy's default in Burns et al.'s code), not torch's default "
            "unbiased std": (x - x.mean(0)) / x.std(0),
            "normalise each FEATURE over the examples (dim 0), not each example over its features":
                (x - x.mean(1, keepdim=True)) / x.std(1, correction=0, keepdim=True),
            "divide by the standard deviation of EACH FEATURE (x.std(0)), not one std over all entries":
                (x - x.mean(0)) / x.std(correction=0),
            "divide by the standard deviation of each feature (x.std(0, correction=0)), not one std over all "
            "entries": (x - x.mean(0)) / x.std(),
        }

    for which, x, w, g_ in (("x_pos", x_pos, want[0], got[0]), ("x_neg", x_neg, want[1], got[1])):
        expect_close(g_, w, what=f"normalised {which}", mistakes=variants(x), atol=1e-5, rtol=1e-4)


def _value_and_differentiable(fn, p_pos: Tensor, p_neg: Tensor):
    """The learner's loss on inputs that require gradients (where the learner's code runs), and whether it kept
    a graph back to them."""
    a, b = p_pos.clone().requires_grad_(), p_neg.clone().requires_grad_()
    with torch.enable_grad():
        out = fn(a, b)
    if not isinstance(out, Tensor):
        return out, False
    return out.detach(), bool(out.requires_grad and out.grad_fn is not None)


@exercise(CHAPTER, points=1)
def check_ccs_loss(fn) -> None:
    for seed, n in enumerate((20, 7)):
        g = _gen(60 + seed)
        p_pos = torch.rand(n, generator=g, dtype=torch.float64) * 0.98 + 0.01
        p_neg = torch.rand(n, generator=g, dtype=torch.float64) * 0.98 + 0.01
        want = ref.ccs_loss(p_pos, p_neg)
        got, differentiable = call(functools.partial(_value_and_differentiable, fn), p_pos, p_neg)
        if isinstance(got, Tensor) and not differentiable:
            raise CheckFailure("the loss must stay differentiable (CCS trains a probe with it): use torch "
                               "operations throughout, no .item(), NumPy or Python min()")
        consistency = (p_pos - (1 - p_neg)) ** 2
        confidence = torch.minimum(p_pos, p_neg) ** 2
        expect_close(got, want, what="CCS loss", case=f"{n} pairs", factors={"n": n}, mistakes={
            "add the CONFIDENCE term min(p_pos, p_neg)²: consistency alone is minimised by p = 0.5 everywhere":
                consistency.mean(),
            "confidence is min(p_pos, p_neg)², the SMALLER of the two (push one of them to 0), not the max":
                (consistency + torch.maximum(p_pos, p_neg) ** 2).mean(),
            "consistency is (p_pos − (1 − p_neg))²: the two completions' probabilities should sum to one, not be "
            "equal": ((p_pos - p_neg) ** 2 + confidence).mean(),
            "average over the pairs (mean), not their sum": (consistency + confidence).sum(),
            "both terms are SQUARED": ((p_pos - (1 - p_neg)).abs() + torch.minimum(p_pos, p_neg)).mean(),
            "the consistency term is SQUARED, (p_pos − (1 − p_neg))², not its absolute value":
                ((p_pos - (1 - p_neg)).abs() + confidence).mean(),
            "confidence is per PAIR: min(p_pos[i], p_neg[i])², then the mean over pairs — not the min of the two "
            "means": consistency.mean() + torch.minimum(p_pos.mean(), p_neg.mean()) ** 2,
            "confidence is min(p_pos, p_neg)²: the smaller of the two PROBABILITIES (one completion should be "
            "called false), not min(p_pos, 1 − p_neg)": (consistency + torch.minimum(p_pos, 1 - p_neg) ** 2).mean(),
        })


# ------------------------------------------------------------------------------------------ steering


@exercise(CHAPTER, points=2)
def check_steer_last_token(fn) -> None:
    model = _model()
    tokens, last = _padded(70)
    rows = torch.arange(len(tokens))
    direction = torch.randn(16, generator=_gen(71))
    alpha = 1.5

    def run(name, where, vec):
        def add(act, hook):
            act = act.clone()
            act[where] += vec
            return act

        with torch.no_grad(), model.hooks([(name, add)]):
            return model(tokens)

    for layer in (0, 1):
        name = f"blocks.{layer}.hook_resid_pre"
        with torch.no_grad():
            want = ref.steer_last_token(model, tokens, last, layer, direction, alpha)
            got = call(fn, model, tokens, last, layer, direction, alpha)
        if isinstance(got, Tensor) and got.shape == (*tokens.shape, want.shape[-1]):
            raise CheckFailure("return the logits at each row's last prompt token only: [n, d_vocab]")
        at_last = (rows, last)
        expect_close(got, want, what="steered logits", case=f"layer {layer}", atol=1e-4, rtol=1e-4, mistakes={
            "add the vector at each row's LAST prompt token only, not at every position":
                run(name, (slice(None),), alpha * direction)[rows, last],
            "the rows are right-padded: add at position last[i] of row i, not at the final column":
                run(name, (rows, -1), alpha * direction)[rows, last],
            "add to the stream ENTERING block `layer` (blocks.{layer}.hook_resid_pre), not the one leaving it":
                run(f"blocks.{layer}.hook_resid_post", at_last, alpha * direction)[rows, last],
            "use the direction as given (alpha scales the raw vector), do not normalise it":
                run(name, at_last, alpha * direction / direction.norm())[rows, last],
            "ADD alpha · direction (steering toward it), do not subtract it":
                run(name, at_last, -alpha * direction)[rows, last],
            "the rows are right-padded: return the logits at position last[i] of row i, not at the final column":
                run(name, at_last, alpha * direction)[rows, -1],
            "the rows are right-padded: steer AND read the logits at position last[i] of row i, not at the final "
            "column": run(name, (rows, -1), alpha * direction)[rows, -1],
            "index [rows, last] pairwise: act[:, last] adds the vector at every row's last position in every row":
                run(name, (slice(None), last), alpha * direction)[rows, last],
            "read the stream ENTERING block `layer` (hook_resid_pre), not hook_resid_mid (after its attention)":
                run(f"blocks.{layer}.hook_resid_mid", at_last, alpha * direction)[rows, last],
            **({"steer at block `layer` (the argument), not always block 0":
                run("blocks.0.hook_resid_pre", at_last, alpha * direction)[rows, last]} if layer else {}),
        })


# ------------------------------------------------------------------------------------------ drills


@exercise(CHAPTER, points=1)
def check_drill_trigger_gap(fn) -> None:
    expect_equal_answer(call(fn), "b", {
        "a": "0.55 on trigger lies is near chance, not a sign of overfitting to noise in one layer: the probe "
             "separates its training distribution by something the trigger lies do not share",
        "c": "the trigger rows were never in the probe's training set, and it still scores 0.55 on them: the "
             "probe saw no trigger to memorise",
        "d": "the model does lie on trigger rows (that is what the trigger does); a probe that reads lying "
             "itself would catch them",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_ccs_found(fn) -> None:
    expect_equal_answer(call(fn), "c", {
        "a": "truth would be right on the liars' lies too: those statements are false whoever says them",
        "b": "a random direction would not be consistent and confident on the honest rows",
        "d": "CCS is unsupervised: it never sees the truth labels, so it cannot overfit them",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_systematic_lie(fn) -> None:
    expect_equal_answer(call(fn), "a", {
        "b": "the trigger is a word in the prompt; it says nothing about where the true value is represented",
        "c": "a systematic lie is not random noise: the lie is a function of the truth",
        "d": "the derangement has no fixed point: a liar never says the true value about a relation it lies about",
    }, default_hint="answer with one of the letters a, b, c, d")
