"""Checks for chapter 01 (toy models of superposition). Each compares with `mechinterp.solutions.superposition`
on several seeded inputs and names the likely mistake."""

from __future__ import annotations

import functools
import math

import torch
from mechinterp.autograder.harness import CheckFailure, call, case_seed, exercise, expect_close, expect_equal_answer
from mechinterp.autograder.replay import reference_module
from torch import Tensor

CHAPTER = "superposition"
ref = reference_module("superposition")  # or, in the student kit, its answer pack


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(case_seed(seed))


def _random_W(k: int, h: int, f: int, seed: int) -> Tensor:
    return torch.randn(k, h, f, generator=_gen(seed))


def _pentagon() -> Tensor:
    """[1, 2, 5]: five unit feature directions 72° apart."""
    angles = torch.arange(5) * 2 * math.pi / 5
    return torch.stack([angles.cos(), angles.sin()])[None]


# ------------------------------------------------------------------------------------- exercises


@exercise(CHAPTER, points=1)
def check_feature_importance(fn) -> None:
    for k, n, decay in [(1, 5, 0.9), (3, 7, 0.7), (2, 1, 0.5), (4, 20, 0.99)]:
        i = torch.arange(n, dtype=torch.float32)
        want = ref.feature_importance(k, n, decay)
        expect_close(
            call(fn, k, n, decay), want, what="importance", case=f"n_instances={k}, n_features={n}, decay={decay}",
            mistakes={
                "feature 0 must have importance 1 = decay**0: start the powers at 0, not 1":
                    (decay ** (i + 1)).repeat(k, 1),
                "importance is decay**i (decay raised to the feature index), not i**decay": (i**decay).repeat(k, 1),
                "feature 0 is the MOST important: the powers grow with the feature index": (
                    decay ** i.flip(0)).repeat(k, 1),
                "return one row per instance, shape [n_instances, n_features] (e.g. `.repeat(n_instances, 1)`)":
                    decay**i,
            },
        )


@exercise(CHAPTER, points=2)
def check_sample_features(fn) -> None:
    B = 20_000
    p = torch.tensor([[0.05, 0.5, 1.0, 0.0], [0.5, 0.2, 0.9, 0.5]])  # [n_instances=2, n_features=4]
    x = call(fn, B, p, _gen(1))
    if not isinstance(x, Tensor):
        raise CheckFailure(f"return a torch.Tensor, got {type(x).__name__}")
    if tuple(x.shape) != (B, 2, 4):
        raise CheckFailure(f"shape should be [batch_size, n_instances, n_features] = [{B}, 2, 4], got "
                           f"{list(x.shape)}")
    if x.dtype != torch.float32:
        raise CheckFailure(f"dtype should be float32, got {x.dtype}")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise CheckFailure("values must lie in [0, 1]: a present feature is uniform on [0, 1] (torch.rand, "
                           "not torch.randn)")
    present = x > 0
    density = present.float().mean(0)  # [2, 4]
    tol = 4 * torch.sqrt(p * (1 - p) / B) + 2e-3
    if ((density - (1 - p)).abs() <= tol).all():
        raise CheckFailure("features are present with probability 1 - p: feature_probability is the chance a "
                           "feature is PRESENT (sparsity S = 1 - p is the chance it is 0)")
    if not ((density - p).abs() <= tol).all():
        k, i = divmod(int(((density - p).abs() - tol).argmax()), 4)
        raise CheckFailure(f"instance {k}, feature {i} is present in {float(density[k, i]):.3f} of the batch, "
                           f"expected p = {float(p[k, i]):.2f}: each feature of each instance must use its own "
                           "probability (compare torch.rand(...) < feature_probability)")
    values = x[:, 0, 1][present[:, 0, 1]]  # p = 0.5 entry
    if values.max() <= 0.5 + 1e-6:
        raise CheckFailure("present values never exceed p: you reused the same random numbers for 'is it "
                           "present?' and 'its value'; draw the values with a separate torch.rand")
    if (values - 1).abs().max() < 1e-6:
        raise CheckFailure("every present feature equals 1: a present feature takes a value uniform on [0, 1]")
    if abs(float(values.mean()) - 0.5) > 0.02 or abs(float(values.var()) - 1 / 12) > 0.01:
        raise CheckFailure(f"present values have mean {float(values.mean()):.3f} and variance "
                           f"{float(values.var()):.3f}; uniform on [0, 1] has 0.5 and 1/12 = 0.083")
    both = (present[:, 0, 0 + 3] & present[:, 1, 3]).float().mean()  # p = 0 / 0.5: always 0
    same = (present[:, 0, 1] == present[:, 1, 0]).float().mean()  # both p = 0.5: ~0.5 if independent
    if same > 0.9 or both > 0:
        raise CheckFailure("instances share their random draws: every instance needs independent samples "
                           "(draw a tensor of the full shape [batch, n_instances, n_features])")
    again = call(fn, 1000, p, _gen(7))
    if not torch.equal(again, call(fn, 1000, p, _gen(7))):
        raise CheckFailure("two calls with identically seeded generators gave different batches: pass "
                           "`generator=generator` to every torch.rand call")
    if torch.equal(again, call(fn, 1000, p, _gen(8))):
        raise CheckFailure("different generators gave the same batch: use the generator argument")


@exercise(CHAPTER, points=2)
def check_toy_forward(fn) -> None:
    for seed, (k, h, f, B) in enumerate([(3, 2, 5, 7), (1, 1, 2, 4), (4, 5, 20, 3)]):
        W = _random_W(k, h, f, seed)
        b = torch.randn(k, f, generator=_gen(seed + 10))
        x = torch.rand(B, k, f, generator=_gen(seed + 20))
        hid = torch.einsum("khf,bkf->bkh", W, x)
        pre = torch.einsum("khf,bkh->bkf", W, hid)
        for activation in ("relu", "linear"):
            case = f"W {list(W.shape)}, x {list(x.shape)}, activation={activation!r}"
            mistakes = {
                "the bias b is missing: x_hat = act(W^T W x + b)": ref.toy_forward(W, torch.zeros_like(b), x,
                                                                                     activation),
            }
            if activation == "relu":
                mistakes["activation='relu' means x_hat = ReLU(W^T W x + b): the ReLU is missing"] = pre + b
                mistakes["add the bias before the ReLU: ReLU(W^T W x + b), not ReLU(W^T W x) + b"] = (
                    torch.relu(pre) + b)
                mistakes["the hidden layer h = W x is linear; the ReLU goes only on the output"] = torch.relu(
                    torch.einsum("khf,bkh->bkf", W, torch.relu(hid)) + b)
            else:
                mistakes["activation='linear' means no ReLU at all: x_hat = W^T W x + b"] = torch.relu(pre + b)
            expect_close(call(fn, W, b, x, activation), ref.toy_forward(W, b, x, activation), what="x_hat",
                         case=case, mistakes=mistakes)


@exercise(CHAPTER, points=1)
def check_weighted_mse_loss(fn) -> None:
    for seed, (B, k, f) in enumerate([(16, 3, 5), (5, 1, 2), (64, 4, 20)]):
        x = torch.rand(B, k, f, generator=_gen(seed))
        x_hat = torch.rand(B, k, f, generator=_gen(seed + 1)).requires_grad_()
        imp = torch.rand(k, f, generator=_gen(seed + 2)) + 0.1
        err = (x - x_hat.detach()) ** 2
        got = call(fn, x, x_hat, imp)
        expect_close(
            got, ref.weighted_mse_loss(x, x_hat, imp).detach(), what="loss", case=f"x {list(x.shape)}",
            factors={"n_features": f, "n_instances": k, "batch_size": B},
            mistakes={
                "weight each feature's squared error by its importance I_i": err.sum(-1).mean(0).sum(),
                "weight the squared error by I_i; don't square the weight": ((imp * (x - x_hat.detach())) ** 2)
                .sum(-1).mean(0).sum(),
                "use the squared error (x - x_hat)**2, not the absolute error":
                    (imp * (x - x_hat.detach()).abs()).sum(-1).mean(0).sum(),
                "sum over features and instances, average only over the batch (you took a mean over "
                "everything)": (imp * err).mean(),
            },
        )
        if not getattr(got, "requires_grad", False):
            raise CheckFailure("the loss is detached from the graph (.item(), .detach() or NumPy?): "
                               "loss.backward() would not reach W")


# Two small training problems whose median final loss is the same for every seed (measured over 6 seeds:
# spread < 3%), so a learner's loop, with its own random draws, can be compared with the reference's:
# A: dense features, one important feature per instance (alternating), ReLU: keeps the important one;
# B: sparse features (p = 0.1), linear: a ReLU-trained model evaluated as linear loses ~70% more.
_PROBLEMS = {
    "relu": (torch.tensor([[1.0, 0.1], [0.1, 1.0]] * 3), torch.ones(6, 2)),
    "linear": (torch.ones(6, 2), torch.full((6, 2), 0.1)),
}
_TRAIN = dict(n_hidden=1, steps=300, batch_size=128, lr=3e-2, seed=3)


def _median_loss(W: Tensor, b: Tensor, activation: str) -> float:
    importance, probability = _PROBLEMS[activation]
    x = ref.sample_features(8192, probability, _gen(99))
    per_instance = (importance * (x - ref.toy_forward(W, b, x, activation)) ** 2).sum(-1).mean(0)
    return float(per_instance.median())


@functools.lru_cache(maxsize=2)
def _reference_loss(activation: str) -> float:
    """Median loss after the reference's training on problem `activation`."""
    importance, probability = _PROBLEMS[activation]
    return _median_loss(*ref.train_toy_models(importance, probability, activation=activation, **_TRAIN),
                        activation)


@exercise(CHAPTER, points=3, timeout_s=30)
def check_train_toy_models(fn) -> None:
    for activation, (importance, probability) in _PROBLEMS.items():
        out = call(fn, importance, probability, activation=activation, **_TRAIN)
        if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(t, Tensor) for t in out)):
            raise CheckFailure("return the trained parameters as a tuple (W, b) of tensors")
        W, b = out
        if tuple(W.shape) != (6, 1, 2) or tuple(b.shape) != (6, 2):
            raise CheckFailure(f"W should be [n_instances, n_hidden, n_features] = [6, 1, 2] and b [6, 2]; got "
                               f"{list(W.shape)} and {list(b.shape)}")
        if W.requires_grad or b.requires_grad:
            raise CheckFailure("return detached tensors (W.detach(), b.detach())")
        if not (torch.isfinite(W).all() and torch.isfinite(b).all()):
            raise CheckFailure("training diverged: W or b contains NaN/inf")
        want, got = _reference_loss(activation), _median_loss(W, b, activation)
        case = f"activation={activation!r}, {_TRAIN['steps']} steps, lr={_TRAIN['lr']}"
        W_one_step = call(fn, importance, probability, activation=activation, **{**_TRAIN, "steps": 1})[0]
        if torch.allclose(W, W_one_step):
            raise CheckFailure(f"W after {_TRAIN['steps']} steps equals W after 1 step: training never "
                               "changes the parameters. Are W and b the tensors your optimizer updates "
                               "(requires_grad, passed to Adam), and do you call loss.backward() and "
                               "optimizer.step() every step?")
        if got > 1.25 * want:
            raise CheckFailure(f"after training your models' median loss is {got:.4f}, the reference reaches "
                               f"{want:.4f} ({case}): do you use the importance in the loss, pass `activation` "
                               "to toy_forward, use `lr`, and draw a fresh batch every step?")
    kwargs = dict(n_hidden=1, steps=5, batch_size=32, lr=1e-2, seed=11)
    first = call(fn, *_PROBLEMS["relu"], **kwargs)[0]
    if not torch.equal(first, call(fn, *_PROBLEMS["relu"], **kwargs)[0]):
        raise CheckFailure("two runs with the same seed gave different W: seed the initialisation and the data "
                           "with a torch.Generator seeded with `seed`")
    if torch.equal(first, call(fn, *_PROBLEMS["relu"], **{**kwargs, "seed": 12})[0]):
        raise CheckFailure("seeds 11 and 12 gave the same W: the initialisation and the batches must be drawn from "
                           "a generator seeded with `seed` (a fixed seed makes every run the same model)")
    if torch.equal(first, call(fn, *_PROBLEMS["relu"], **{**kwargs, "batch_size": 64})[0]):
        raise CheckFailure("batch_size 32 and 64 gave the same W: draw `batch_size` examples every step")
    # Adam moves each parameter by about lr on its first steps, so the second step's size shows the schedule:
    # the cosine decay over 2 steps halves the learning rate for the second step (a constant lr does not)
    ratios = []
    for seed in (11, 12, 13):
        two = dict(n_hidden=1, batch_size=32, lr=1e-2, seed=seed)
        W1, b1 = call(fn, *_PROBLEMS["relu"], steps=1, **two)
        W2, b2 = call(fn, *_PROBLEMS["relu"], steps=2, **two)
        ratios.append(float(torch.cat([(W2 - W1).abs().flatten(), (b2 - b1).abs().flatten()]).median()) / 1e-2)
    if sorted(ratios)[1] > 0.75:
        raise CheckFailure(f"with steps=2 your second update is {sorted(ratios)[1]:.2f} x lr; the cosine schedule "
                           "makes it about 0.5 x lr: set each step's learning rate to "
                           "lr * 0.5 * (1 + cos(pi * step / steps)) (a constant lr, or a schedule over another "
                           "length, gives another size)")


@exercise(CHAPTER, points=2)
def check_feature_dimensionality(fn) -> None:
    _check_geometry(fn, ref.feature_dimensionality, "D", {
        "normalise W_i in the denominator: sum_j (W_hat_i . W_j)^2 with W_hat_i = W_i / ||W_i||": lambda W: (
            W.norm(dim=1) ** 2 / (torch.einsum("khi,khj->kij", W, W) ** 2).sum(-1).clamp_min(1e-12)),
        "the sum over j includes j = i (a feature interferes with itself: that term is ||W_i||^2)": lambda W: (
            W.norm(dim=1) ** 2 / (ref.superposition_measure(W).clamp_min(1e-12))),
        "the numerator is the SQUARED norm ||W_i||^2": lambda W: (
            ref.feature_dimensionality(W) / W.norm(dim=1).clamp_min(1e-8)),
    })


@exercise(CHAPTER, points=2)
def check_superposition_measure(fn) -> None:
    def overlaps(W: Tensor) -> Tensor:
        return torch.einsum("khi,khj->kij", W / W.norm(dim=1, keepdim=True).clamp_min(1e-8), W)

    def off(W: Tensor) -> Tensor:
        return 1 - torch.eye(W.shape[-1])

    _check_geometry(fn, ref.superposition_measure, "superposition", {
        "leave out j = i: the sum is over the OTHER features": lambda W: (overlaps(W) ** 2).sum(-1),
        "normalise W_i: use W_hat_i . W_j with W_hat_i = W_i / ||W_i||": lambda W: (
            (torch.einsum("khi,khj->kij", W, W) * off(W)) ** 2).sum(-1),
        "square the dot products (W_hat_i . W_j)^2 before summing": lambda W: (overlaps(W) * off(W)).abs().sum(-1),
    })


def _check_geometry(fn, reference, what: str, mistake_fns: dict) -> None:
    """Shared by the two geometry measures: random W, a pentagon, and a dead feature (||W_i|| = 0)."""
    dead = _random_W(2, 3, 6, 42)
    dead[:, :, 2] = 0
    cases = [("random W [3, 2, 5]", _random_W(3, 2, 5, 0)), ("random W [2, 5, 20]", _random_W(2, 5, 20, 1)),
             ("a regular pentagon", _pentagon()), ("W [2, 3, 6] whose feature 2 has ||W_2|| = 0", dead)]
    for case, W in cases:
        mistakes = {hint: m(W) for hint, m in mistake_fns.items()}
        mistakes["W_i is COLUMN i of W (W[k, :, i]); you used the rows"] = reference(W.transpose(1, 2))
        expect_close(call(fn, W), reference(W), what=what, case=case, atol=1e-4, rtol=1e-3, mistakes=mistakes)
    got = call(fn, dead)
    if not torch.isfinite(got).all():
        raise CheckFailure("a feature with ||W_i|| = 0 gave NaN: guard the 0/0 (clamp the norm with "
                           "`.clamp_min(1e-8)` before dividing)")


@exercise(CHAPTER, points=1)
def check_phase_grid_inputs(fn) -> None:
    r = torch.tensor([0.1, 1.0, 10.0])
    p = torch.tensor([0.01, 0.1, 0.5, 1.0])
    want_imp, want_prob = ref.phase_grid_inputs(r, p)
    out = call(fn, r, p)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise CheckFailure("return a tuple (importance, probability)")
    imp, prob = out
    rr, pp = torch.meshgrid(r, p, indexing="ij")  # the swapped layout: relative importance as the slow axis
    expect_close(imp, want_imp, what="importance", case="R=3, P=4", mistakes={
        "feature 0 has importance 1; the relative importance belongs to the extra feature, index 1":
            want_imp.flip(-1),
        "probability is the slow axis: instance k = p_index * R + r_index (so .reshape(P, R) gives the grid)":
            torch.stack([torch.ones(12), rr.reshape(-1)], -1),
    })
    expect_close(prob, want_prob, what="probability", case="R=3, P=4", mistakes={
        "probability is the slow axis: instance k = p_index * R + r_index (so .reshape(P, R) gives the grid)":
            pp.reshape(-1, 1).expand(12, 2),
        "both features have the same probability p (not only the extra feature)":
            torch.stack([torch.ones(12), want_prob[:, 1]], -1),
    })


@exercise(CHAPTER, points=1)
def check_classify_phase(fn) -> None:
    grid = torch.tensor([-1.0, -0.6, -0.3, 0.0, 0.2, 0.55, 0.8, 1.3])
    a, c = torch.meshgrid(grid, grid, indexing="ij")
    W = torch.stack([a.flatten(), c.flatten()], -1)[:, None, :]  # [64, 1, 2]: every on/off combination
    want = ref.classify_phase(W)
    on_signed = W[:, 0, :] > 0.5
    swapped = ref.classify_phase(W.flip(-1))
    labels_swapped = torch.where(want == 1, 2, torch.where(want == 2, 1, want))
    expect_close(call(fn, W), want, what="phase", case="W covering every on/off pattern", mistakes={
        "a feature is represented when its NORM exceeds the threshold: a negative weight still represents it":
            torch.where(~on_signed[:, 1], 0, torch.where(on_signed[:, 0], 2, 1)),
        "the extra feature is index 1 (feature 0 has importance 1)": swapped,
        "1 = dedicated (only the extra feature on), 2 = superposition (both on): your labels are swapped":
            labels_swapped,
        "compare the norm ||W_i|| with the threshold, not the squared norm": ref.classify_phase(
            W.sign() * W**2),
    })
    expect_close(call(fn, W * 2, threshold=1.0), ref.classify_phase(W * 2, threshold=1.0), what="phase",
                 case="threshold=1.0", mistakes={"use the `threshold` argument, not a fixed 0.5":
                                                 ref.classify_phase(W * 2)})


# ---------------------------------------------------------------------------------------- drills


@exercise(CHAPTER, points=1)
def check_drill_dense_features_kept(fn) -> None:
    expect_equal_answer(call(fn), 2, {
        5: "dense features are active together all the time, so any overlap costs interference on every "
           "input: the model cannot afford superposition",
        0: "it still uses its 2 dimensions for something",
        1: "it has 2 hidden dimensions and dense features: it keeps as many features as it has dimensions",
    }, default_hint="without sparsity there is no superposition: how many orthogonal directions does m = 2 give?")


@exercise(CHAPTER, points=1)
def check_drill_linear_never_superposes(fn) -> None:
    expect_equal_answer(call(fn), "c", {
        "a": "the ReLU model has exactly the same parameters and does store 5 features in 2 dimensions",
        "b": "the linear model was trained at every sparsity down to p = 0.01 and still did not superpose",
        "d": "the linear model has a bias too; what it lacks is a way to throw away small interference",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_pentagon_dimensionality(fn) -> None:
    want = float(ref.feature_dimensionality(_pentagon())[0, 0])
    got = call(fn)
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        raise CheckFailure(f"return a number, got {type(got).__name__}")
    if math.isclose(got, want, abs_tol=0.01):
        return
    if math.isclose(got, 0.2, abs_tol=0.01):
        raise CheckFailure("1/5 would be one dimension shared by five; here 2 dimensions are shared by 5 features")
    if math.isclose(got, 1.0, abs_tol=0.01):
        raise CheckFailure("D_i = 1 means a dedicated dimension; pentagon features interfere with each other")
    raise CheckFailure("compute ||W_i||^2 / sum_j (W_hat_i . W_j)^2 with unit vectors at 72° steps")
