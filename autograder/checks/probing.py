"""Checks for chapter 02 (probing). Inputs are generated here (synthetic token streams, Gaussian classification
problems, small random-weight GPT-2 models), so the checks do not depend on the zoo's weights. Randomised
exercises (splits, control tasks) are checked by their defining properties, not against one particular draw;
the linear probe is checked against scikit-learn's logistic regression."""

from __future__ import annotations

import functools
import math

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
from sklearn.linear_model import LogisticRegression
from torch import Tensor, nn

CHAPTER = "probing"
ref = reference_module("probing")  # or, in the student kit, its answer pack


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(case_seed(seed))


@functools.lru_cache(maxsize=1)
def _tiny_model() -> HookedModel:
    return tiny_gpt2(4321, vocab_size=40, n_embd=24, n_layer=2, n_head=3)


def _tensor(got, what: str, dtype: torch.dtype | None = None) -> Tensor:
    if not isinstance(got, Tensor):
        raise CheckFailure(f"{what} should be a torch.Tensor, got {type(got).__name__}")
    if dtype is not None and got.dtype != dtype:
        raise CheckFailure(f"{what} should have dtype {dtype}, got {got.dtype}")
    return got.detach()


# --------------------------------------------------------------------------------------- activations


@exercise(CHAPTER, points=2)
def check_collect_residuals(fn) -> None:
    model = _tiny_model()
    for seed, (b, p, bs) in enumerate([(6, 10, 2), (5, 7, 2), (3, 7, 8), (4, 16, 1)]):
        tokens = torch.randint(0, 40, (b, p), generator=_gen(seed))
        with torch.no_grad():
            want = ref.collect_residuals(model, tokens, bs)
            got = call(fn, model, tokens, bs)
        mistakes = {
            "include the residual stream leaving the last block (blocks.{n_layers - 1}.hook_resid_post): "
            "n_layers + 1 depths": want[:-1],
            "depth 0 is the stream ENTERING block 0 (hook_resid_pre, the embeddings), not leaving it": want[1:],
            "every batch must be processed: loop over range(0, len(tokens), batch_size)": want[:, :bs],
        }
        if b % bs == 0:  # equal chunks: concatenating them along the depth axis gives a tensor of its own shape
            mistakes["concatenate the batches along the batch axis (dim 1 of the stacked result), not the depth "
                     "axis"] = torch.cat([want[:, i : i + bs] for i in range(0, b, bs)], dim=0)
        expect_close(got, want, what="residuals", case=f"tokens {[b, p]}, batch_size {bs}", mistakes=mistakes)


@exercise(CHAPTER, points=2)
def check_quote_labels(fn) -> None:
    # apostrophes (" 's", " don't") are not quote marks: only '"' opens or closes a quotation
    pieces = [" the", " king", " said", ",", ' "', '"', '";', '"."', " go", ".", "\n", " (", "<|endoftext|>", "s",
              "'s", " '", "'t"]
    weights = torch.tensor([6, 3, 3, 3, 2, 2, 1, 1, 3, 2, 1, 1, 0.6, 2, 1, 1, 1])
    for seed, n in enumerate([60, 200, 15]):
        idx = torch.multinomial(weights, n, replacement=True, generator=_gen(seed))
        tokens = [pieces[i] for i in idx.tolist()]
        if seed == 2:
            tokens = ['"', " a", "<|endoftext|>", " b", '"."', " c", '"', " d", ' "', " e", "<|endoftext|>", " f",
                      '";', " g", "."]
        want = ref.quote_labels(tokens)
        expect_close(call(fn, tokens), want, what="labels", case=f"a stream of {len(tokens)} tokens", mistakes={
            "a token that contains a quote mark is the boundary, neither inside nor outside: label it -1":
                _quote_variant(tokens, boundary=False),
            "count quote CHARACTERS, not tokens that contain one: a token like '\".\"' holds two":
                _quote_variant(tokens, per_token=True),
            "reset the count at every <|endoftext|>: documents are independent":
                _quote_variant(tokens, reset=False),
            "inside means an ODD number of quote marks before the token (1 = inside)":
                torch.where(want >= 0, 1 - want, want),
            "only the double quote '\"' is a quote mark: an apostrophe (' in 's, don't) is not":
                _quote_variant(tokens, marks="\"'"),
        })


def _quote_variant(tokens, boundary=True, per_token=False, reset=True, marks='"') -> Tensor:
    out, n = [], 0
    for s in tokens:
        if reset and s == "<|endoftext|>":
            n = 0
        count = sum(s.count(m) for m in marks)
        out.append(-1 if boundary and count else n % 2)
        n += min(1, count) if per_token else count
    return torch.tensor(out)


# ------------------------------------------------------------------------------- splits and baselines


def _groups_case(seed: int) -> Tensor:
    """Group ids with varied sizes (1-12 examples), interleaved, with gaps in the id numbering."""
    g = _gen(seed)
    sizes = torch.randint(1, 13, (60,), generator=g)
    ids = torch.arange(60) * 3 + 1
    groups = torch.repeat_interleave(ids, sizes)
    return groups[torch.randperm(len(groups), generator=g)]


@exercise(CHAPTER, points=2)
def check_group_split(fn) -> None:
    # (0.63, 0.21, 0.16) of 60 groups is 37.8 / 12.6 / 9.6: rounding, flooring and cumulative shares differ
    for seed, fractions in [(0, (0.7, 0.15, 0.15)), (1, (0.5, 0.25, 0.25)), (2, (0.8, 0.1, 0.1)),
                            (3, (0.63, 0.21, 0.16))]:
        groups = _groups_case(seed)
        case = f"{len(groups.unique())} groups, fractions {fractions}"
        split = _tensor(call(fn, groups, fractions, 7), "the split")
        if split.shape != groups.shape:
            raise CheckFailure(f"return one split id per example: shape {list(groups.shape)}, got {list(split.shape)}")
        if not set(split.unique().tolist()) <= {0, 1, 2}:
            raise CheckFailure("split ids must be 0 (train), 1 (validation) or 2 (test); got "
                               f"{split.unique().tolist()}")
        per_group = {}
        for gid, s in zip(groups.tolist(), split.tolist(), strict=True):
            per_group.setdefault(gid, set()).add(s)
        if any(len(v) > 1 for v in per_group.values()):
            raise CheckFailure(f"examples of one group landed in different splits ({case}): split the GROUPS, then "
                               "give each example its group's split — otherwise the test set shares text with "
                               "training (leakage)")
        n = len(per_group)
        counts = [sum(next(iter(v)) == k for v in per_group.values()) for k in range(3)]
        want = [round(fractions[0] * n), round(fractions[1] * n)]
        want.append(n - sum(want))
        if counts != want:
            per_example = [int((split == k).sum()) for k in range(3)]
            largest = int(groups.unique(return_counts=True)[1].max())  # a cut by examples lands within a group
            floored = [int(fractions[0] * n), int(fractions[1] * n)]
            cumulative = [want[0], round((fractions[0] + fractions[1]) * n) - want[0]]
            hint = (" — round each size (round(fraction * n_groups)), do not truncate it with int() or floor"
                    if counts[:2] == floored else
                    " — the validation size is round(fractions[1] * n_groups), not the rounded cumulative share "
                    "minus the train size" if counts[:2] == cumulative else
                    " — you applied the fractions to examples; they are shares of GROUPS"
                    if all(abs(per_example[k] - fractions[k] * len(groups)) <= largest for k in (0, 1)) else "")
            raise CheckFailure(f"groups per split {counts}, expected {want} ({case}){hint}")
        again = _tensor(call(fn, groups, fractions, 7), "the split")
        if not torch.equal(again, split):
            raise CheckFailure("the same seed gave a different split: draw the permutation from "
                               "torch.Generator().manual_seed(seed), so experiments are reproducible")
        other = _tensor(call(fn, groups, fractions, 8), "the split")
        if torch.equal(other, split):
            raise CheckFailure("seeds 7 and 8 gave the same split: shuffle the groups with a generator seeded by "
                               "`seed` (taking groups in order puts systematically different text in test)")
        in_order = sorted(per_group)
        if [next(iter(per_group[g])) for g in in_order] == sorted(next(iter(per_group[g])) for g in in_order):
            raise CheckFailure("the groups were assigned in id order (first ids to train, last to test): shuffle them")


def _hold_out_variant(types, split, fraction, seed, pool="test", drop_train=True, drop_test=True, floor=False):
    candidates = types[split == 2].unique() if pool == "test" else types.unique()
    # the exercise's own `seed` argument, as the learner uses it: not a case seed (never shifted by case_seed)
    order = torch.randperm(len(candidates), generator=torch.Generator().manual_seed(seed))
    k = int(fraction * len(candidates)) if floor else round(fraction * len(candidates))
    held = torch.isin(types, candidates[order[:k]])
    out = split.clone()
    if drop_test:
        out[(split == 2) & ~held] = -1
    if drop_train:
        out[(split != 2) & held] = -1
    return out


@exercise(CHAPTER, points=1)
def check_hold_out_types(fn) -> None:
    for case, fraction in enumerate((0.3, 0.45, None)):
        g = _gen(30 + case)
        types = torch.randint(0, 50, (400,), generator=g) * 2 + 3  # ids with gaps; most types in every split
        split = torch.randint(0, 3, (400,), generator=g)
        split[types > 80] = 0  # types that never occur in the test split
        if fraction is None:  # whatever the case's types: fraction x n_test_types ends in .6 (round != floor)
            n_test_types = len(types[split == 2].unique())
            fraction = (int(0.3 * n_test_types) + 0.6) / n_test_types
        want = ref.hold_out_types(types, split, fraction, 5)
        got = _tensor(call(fn, types, split, fraction, 5), "the split")
        args = (types, split, fraction, 5)
        expect_close(got, want, what="split", case=f"fraction {fraction:.4g}", mistakes={
            "hold out types drawn from the TEST examples' types (types[split == 2].unique()), not from every type":
                _hold_out_variant(*args, pool="all"),
            "the probe must never see a held-out type: set train and validation examples of held-out types to -1":
                _hold_out_variant(*args, drop_train=False),
            "keep in the test split only examples of held-out types: set the other test examples to -1":
                _hold_out_variant(*args, drop_test=False),
            "hold out round(fraction * n_test_types) types, not int(...)": _hold_out_variant(*args, floor=True),
        }, check_dtype=False)
        if not torch.equal(got, call(fn, types, split, fraction, 5)):
            raise CheckFailure("the same seed gave a different split: seed a torch.Generator with `seed`")


@exercise(CHAPTER, points=1)
def check_majority_accuracy(fn) -> None:
    for seed, (n_train, n_test, k) in enumerate([(50, 40, 3), (200, 30, 5), (9, 9, 2)]):
        g = _gen(seed)
        probs = torch.tensor([0.5, 0.3, 0.2, 0.1, 0.05][:k])
        y_train = torch.multinomial(probs, n_train, replacement=True, generator=g)
        y_test = torch.multinomial(probs.flip(0), n_test, replacement=True, generator=g)  # another majority
        got = as_number(call(fn, y_train, y_test), "the accuracy")
        want = ref.majority_accuracy(y_train, y_test)
        counts = torch.bincount(y_train)
        tied = (counts == counts.max()).nonzero().flatten().tolist()  # a tie: any of its labels is a majority
        if any(math.isclose(got, float((y_test == label).float().mean()), abs_tol=1e-6) for label in tied):
            continue
        wrong = {
            "decide the majority on the TRAINING labels; choosing it on the test labels leaks the answer":
                float((y_test == torch.bincount(y_test).argmax()).float().mean()),
            "return the accuracy on y_test (a fraction of test labels), not the majority label itself":
                float(torch.bincount(y_train).argmax()),
            "that is the majority's share of the TRAINING labels; score it on y_test":
                float((y_train == torch.bincount(y_train).argmax()).float().mean()),
        }
        if math.isclose(got, want, abs_tol=1e-6):
            continue
        for hint, value in wrong.items():
            if math.isclose(got, value, abs_tol=1e-6) and not math.isclose(value, want, abs_tol=1e-6):
                raise CheckFailure(hint)
        raise CheckFailure(f"accuracy {got:.4f}, expected {want:.4f} ({n_train} train / {n_test} test labels)")


# ----------------------------------------------------------------------------------------- the probe


def _probe_problem(name: str) -> tuple[Tensor, Tensor, int]:
    """Synthetic classification problems, each built so that one specific omission fails it."""
    g = _gen({"offset": 0, "scales": 1, "five classes": 2}[name])
    n = 3000
    if name == "offset":  # the boundary is far from the data's mean: an intercept is required
        x = torch.randn(n, 4, generator=g) * 2 + 5
        y = (x[:, 0] + 0.3 * torch.randn(n, generator=g) > 7.5).long()
        return x, y, 2
    if name == "scales":  # features on wildly different scales, the signal in the tiny ones
        scales = 10.0 ** torch.linspace(-3, 3, 12)
        z = torch.randn(n, 12, generator=g)
        y = (z[:, :3].sum(-1) + 0.5 * torch.randn(n, generator=g) > 0).long()
        return z * scales + 100 * scales, y, 2
    centres = torch.randn(5, 30, generator=g) * 1.2  # five overlapping Gaussian classes
    y = torch.randint(0, 5, (n,), generator=g)
    return centres[y] + torch.randn(n, 30, generator=g), y, 5


def _sklearn_accuracy(x_tr, y_tr, x_te, y_te, l2=1e-3) -> tuple[float, float]:
    """scikit-learn's test accuracy and its value of the probe's objective (mean cross-entropy on the training
    data + l2 * ||W||^2 on standardised features: the same optimum as the docstring's)."""
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    clf = LogisticRegression(C=1 / (2 * l2 * len(x_tr)), max_iter=2000)
    z = ((x_tr - mu) / sd).double().numpy()
    clf.fit(z, y_tr.numpy())
    proba = torch.from_numpy(clf.predict_proba(z))
    coef = torch.from_numpy(clf.coef_)
    if coef.shape[0] == 1:  # binary: scikit-learn stores one row; as two softmax logits it is (-w/2, w/2)
        coef = torch.cat([-coef / 2, coef / 2])
    objective = float(-proba[torch.arange(len(y_tr)), y_tr].log().mean()) + l2 * float((coef**2).sum())
    return float((clf.predict(((x_te - mu) / sd).double().numpy()) == y_te.numpy()).mean()), objective


def _objective(W: Tensor, b: Tensor, x: Tensor, y: Tensor, l2: float = 1e-3) -> float:
    sd = x.std(0) + 1e-6
    ce = nn.functional.cross_entropy(x.double() @ W.double() + b.double(), y)
    return float(ce) + l2 * float(((W.double() * sd.double()[:, None]) ** 2).sum())


@exercise(CHAPTER, points=3, timeout_s=20)
def check_train_linear_probe(fn) -> None:
    hints = {
        "offset": "the classes are separated far from the data's mean: did you include a bias b (and fold the "
                  "mean into it: b - (mu / sd) @ W)?",
        "scales": "features on scales from 1e-3 to 1e3: standardise them (z = (x - mu) / sd) before training, "
                  "then fold mu and sd back into W and b",
        "five classes": "five classes: one logit per class and softmax cross-entropy over all n_classes",
    }
    for name in ("scales", "five classes", "offset"):
        x, y, k = _probe_problem(name)
        x_tr, y_tr, x_te, y_te = x[:2000], y[:2000], x[2000:], y[2000:]
        out = call(fn, x_tr, y_tr, k)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise CheckFailure("return a tuple (W, b)")
        W, b = (_tensor(t, n) for t, n in zip(out, ("W", "b"), strict=True))
        if W.shape == (k, x.shape[1]):
            raise CheckFailure(f"W is transposed: expected [d, n_classes] = {[x.shape[1], k]}, got {list(W.shape)}")
        if W.shape != (x.shape[1], k) or b.shape != (k,):
            raise CheckFailure(f"expected W {[x.shape[1], k]} and b {[k]}, got {list(W.shape)} and {list(b.shape)}")
        if not (torch.isfinite(W).all() and torch.isfinite(b).all()):
            raise CheckFailure(f"W or b contains NaN/inf ({name}): a learning rate too large for unscaled features?")
        target, optimum = _sklearn_accuracy(x_tr, y_tr, x_te, y_te)
        acc = float(((x_te @ W.float() + b.float()).argmax(-1) == y_te).float().mean())
        if acc >= target - 0.02:
            reached = _objective(W, b, x_tr, y_tr)
            if reached > 1.2 * optimum + 0.005:  # accuracy can hide a probe trained on another objective
                raise CheckFailure(f"your probe classifies well but does not minimise the probe's objective ({name} "
                                   f"problem: mean cross-entropy + l2 * ||W||^2 is {reached:.4f}, the optimum "
                                   f"{optimum:.4f}): train with F.cross_entropy on the LOGITS z @ W + b (it applies "
                                   "log-softmax itself; not an MSE on probabilities), to convergence")
            continue
        mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
        standardised = float(((((x_te - mu) / sd) @ W.float() + b.float()).argmax(-1) == y_te).float().mean())
        if standardised >= target - 0.02:
            raise CheckFailure(f"your probe only works on STANDARDISED inputs ({name} problem): fold the "
                               "standardisation into the returned weights, W = W_z / sd[:, None] and "
                               "b = b_z - mu @ W, so that logits = x @ W + b on raw x")
        raise CheckFailure(f"test accuracy {acc:.3f}, scikit-learn's logistic regression reaches {target:.3f} "
                           f"({name} problem): {hints[name]}")


# ------------------------------------------------------------------------------------- control tasks


def _control_case(seed: int) -> tuple[Tensor, Tensor]:
    g = _gen(seed)
    n_types = 2500
    token_ids = torch.randint(0, n_types, (12000,), generator=g)
    labels = torch.multinomial(torch.tensor([0.6, 0.25, 0.1, 0.05]), len(token_ids), replacement=True, generator=g)
    labels[torch.rand(len(token_ids), generator=g) < 0.2] = -1
    return token_ids, labels


@exercise(CHAPTER, points=2)
def check_control_labels(fn) -> None:
    token_ids, labels = _control_case(0)
    control = _tensor(call(fn, token_ids, labels, 3), "the control labels")
    if control.shape != labels.shape:
        raise CheckFailure(f"return one label per token: shape {list(labels.shape)}, got {list(control.shape)}")
    control = control.long()
    unlabelled = labels < 0
    if not torch.equal(control[unlabelled], labels[unlabelled]):
        raise CheckFailure("tokens without a task label (-1) must stay -1 in the control task")
    c = control[~unlabelled]
    if (c < 0).any() or (c >= 4).any():
        raise CheckFailure("control labels must be task classes 0 .. n_classes - 1: draw from the distribution of "
                           "the LABELLED tokens only (exclude -1 before counting)")
    if torch.equal(c, labels[~unlabelled]):
        raise CheckFailure("these are the task labels: a control task assigns RANDOM labels per word type")
    ids = token_ids[~unlabelled]
    lowest = torch.full((2500,), 99, dtype=torch.long).scatter_reduce(0, ids, c, "amin")
    highest = torch.full((2500,), -1, dtype=torch.long).scatter_reduce(0, ids, c, "amax")
    if not torch.equal(lowest[ids], highest[ids]):
        raise CheckFailure("one token type got different labels at different occurrences: draw ONE label per type "
                           "(vocabulary id) and index it with the token ids, so the labels are memorisable")
    types = ids.unique()
    share = torch.bincount(lowest[types], minlength=4).float() / len(types)
    empirical = torch.bincount(labels[~unlabelled], minlength=4).float() / int((~unlabelled).sum())
    if (share - empirical).abs().max() > 0.04:
        uniform = (share - 0.25).abs().max() < 0.04
        raise CheckFailure("the control labels' class shares " + str([round(v, 2) for v in share.tolist()]) +
                           " should follow the task's label distribution " +
                           str([round(v, 2) for v in empirical.tolist()]) +
                           (": you drew uniformly over classes; draw with the empirical class frequencies" if uniform
                            else ""))
    again = _tensor(call(fn, token_ids, labels, 3), "the control labels")
    if not torch.equal(again.long(), control):
        raise CheckFailure("the same seed gave a different control task: use torch.Generator().manual_seed(seed)")
    if torch.equal(_tensor(call(fn, token_ids, labels, 4), "the control labels").long(), control):
        raise CheckFailure("seeds 3 and 4 gave the same control task: the draw must depend on the seed")


def _nearest_neighbour_fit(x: Tensor, y: Tensor):
    """A 1-nearest-neighbour 'probe': perfect on its training data, much worse on new data."""
    return lambda q: y[torch.cdist(q, x).argmin(-1)]


@exercise(CHAPTER, points=1)
def check_probe_selectivity(fn) -> None:
    g = _gen(5)
    n, d = 400, 6
    x = torch.randn(n, d, generator=g)
    task = (x[:, 0] + 0.8 * torch.randn(n, generator=g) > 0).long()
    control = torch.randint(0, 2, (n,), generator=g)
    args = (x[:300], x[300:], task[:300], task[300:], control[:300], control[300:])
    got = call(fn, _nearest_neighbour_fit, *args)
    if not (isinstance(got, tuple) and len(got) == 3):
        raise CheckFailure("return a tuple of three numbers: (task accuracy, control accuracy, selectivity)")
    got_t = torch.tensor([as_number(v, "each returned value") for v in got])
    want = torch.tensor(ref.probe_selectivity(_nearest_neighbour_fit, *args))

    def acc(x_fit, y_fit, x_eval, y_eval):
        return float((_nearest_neighbour_fit(x_fit, y_fit)(x_eval) == y_eval).float().mean())

    on_train = torch.tensor([acc(x[:300], task[:300], x[:300], task[:300]),
                             acc(x[:300], control[:300], x[:300], control[:300])])
    swapped_task = acc(x[:300], control[:300], x[300:], task[300:])
    expect_close(got_t, want, what="(task accuracy, control accuracy, selectivity)", atol=1e-6, mistakes={
        "score both probes on the TEST examples: on their own training data they look perfect":
            torch.cat([on_train, on_train[:1] - on_train[1:]]),
        "selectivity is task accuracy MINUS control accuracy": torch.cat([want[:2], -want[2:]]),
        "train the control probe on the control labels and the task probe on the task labels":
            torch.tensor([swapped_task, acc(x[:300], task[:300], x[300:], control[300:]),
                          swapped_task - acc(x[:300], task[:300], x[300:], control[300:])]),
    })


# ------------------------------------------------------------------------------------ the causal test


@exercise(CHAPTER, points=1)
def check_project_out(fn) -> None:
    for seed, shape in enumerate([(5, 8), (2, 3, 16), (7,)]):
        g = _gen(seed)
        x = torch.randn(*shape, generator=g)
        direction = torch.randn(shape[-1], generator=g) * 3
        u = direction / direction.norm()
        want = ref.project_out(x, direction)
        expect_close(call(fn, x, direction), want, what="projection", case=f"x {list(shape)}", mistakes={
            "normalise the direction first (u = direction / ||direction||); it does not have unit length":
                x - (x @ direction)[..., None] * direction,
            "that is the component ALONG the direction; remove it: x - (x . u) u": (x @ u)[..., None] * u,
            "subtract the projection (x . u) u, not the direction itself": x - u,
        })
    out = call(fn, x, direction)
    if not torch.allclose(out @ u, torch.zeros(()), atol=1e-5):
        raise CheckFailure("the result still has a component along the direction")


@exercise(CHAPTER, points=2)
def check_loss_with_direction_removed(fn) -> None:
    model = _tiny_model()
    tokens = torch.randint(0, 40, (3, 12), generator=_gen(1))
    direction = torch.randn(model.d_model, generator=_gen(2)) * 4
    u = direction / direction.norm()
    for layer in range(model.n_layers + 1):
        with torch.no_grad():
            want = ref.loss_with_direction_removed(model, tokens, layer, direction)
            got = call(fn, model, tokens, layer, direction)
            mistakes = {
                "the direction does not have unit length: normalise it before projecting":
                    _loss_hooked(model, tokens, _resid_name(model, layer), lambda a: a - (a @ direction)[..., None]
                                 * direction),
                "return one loss per prediction, shape [batch, pos - 1], not the mean": want.mean(),
                "position i predicts tokens[:, i + 1]: shift the targets":
                    _loss_hooked(model, tokens, _resid_name(model, layer), lambda a: a - (a @ u)[..., None] * u,
                                 shift=False),
            }
            if layer < model.n_layers:
                mistakes["depth `layer` is the stream ENTERING block `layer` (blocks.{layer}.hook_resid_pre), not "
                         "leaving it"] = _loss_hooked(model, tokens, f"blocks.{layer}.hook_resid_post",
                                                      lambda a: a - (a @ u)[..., None] * u)
        expect_close(got, want, what="loss", case=f"layer {layer}", atol=1e-4, rtol=1e-4, mistakes=mistakes)


def _resid_name(model: HookedModel, layer: int) -> str:
    return f"blocks.{layer}.hook_resid_pre" if layer < model.n_layers else \
        f"blocks.{model.n_layers - 1}.hook_resid_post"


def _loss_hooked(model: HookedModel, tokens: Tensor, name: str, edit, shift: bool = True) -> Tensor:
    with model.hooks([(name, lambda act, hp: edit(act))]):
        logits = model(tokens)
    log_probs = logits[:, :-1].log_softmax(-1)
    targets = tokens[:, 1:] if shift else tokens[:, :-1]
    return -log_probs.gather(-1, targets[..., None])[..., 0]


# ------------------------------------------------------------------------------------------ drills


@exercise(CHAPTER, points=1)
def check_drill_accuracy_is_not_use(fn) -> None:
    expect_equal_answer(call(fn), "c", {
        "a": "decodable is not used: the model may never read that information; an intervention tests use",
        "b": "a probe cannot tell where information was computed: earlier layers may hold it less linearly",
        "d": "a probe does show what is linearly decodable; it just cannot show that the model uses it",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_selectivity(fn) -> None:
    expect_equal_answer(call(fn), "b", {
        "a": "an MLP that reaches 0.97 on a control task can memorise word types: its 0.99 says little "
             "(selectivity 0.02)",
        "c": "that is the baseline for what a probe can learn from an untrained network, not evidence about a model",
        "d": "testing on tokens of the training sentences is leakage: split by sentence",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_peak_layers(fn) -> None:
    expect_equal_answer(call(fn), "a", {
        "b": "the last layers specialise in predicting the next token; a word's own class is clearest early",
        "c": "a contextual property needs context: the embedding of one token cannot know it",
        "d": "later layers compute new information by attending to other positions (e.g. an open quote)",
    }, default_hint="answer with one of the letters a, b, c, d")
