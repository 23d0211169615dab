"""Checks for chapter 07 (sparse autoencoders). Inputs are generated here: random pre-activations with ties
avoided, random dictionaries, a small random-weight GPT-2 for the spliced loss — nothing depends on the zoo."""

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
from mechinterp.autograder.replay import computed, reference_module
from mechinterp.course.toolkit.model import HookedModel
from torch import Tensor

CHAPTER = "sparse_autoencoders"
ref = reference_module("sparse_autoencoders")  # or, in the student kit, its answer pack


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(case_seed(seed))


def _close_number(got: float, want: float, what: str, case: str, mistakes: dict[str, float], tol: float = 1e-4):
    """Scalar version of expect_close: name the mistake whose value the learner's number matches."""
    if abs(got - want) <= tol * max(1.0, abs(want)):
        return
    for hint, bad in mistakes.items():
        if abs(bad - want) > tol * max(1.0, abs(want)) and abs(got - bad) <= tol * max(1.0, abs(bad)):
            raise CheckFailure(f"{hint} ({case})")
    raise CheckFailure(f"{what} is {got:.6g}, expected {want:.6g} ({case})")


# ------------------------------------------------------------------------------------------------ MMCS


@exercise(CHAPTER, points=1)
def check_mmcs(fn) -> None:
    for seed, (n_learned, n_true, d) in enumerate([(12, 8, 6), (5, 9, 4), (20, 20, 16)]):
        g = _gen(seed)
        true = torch.randn(n_true, d, generator=g)
        # a learned dictionary: noisy, rescaled copies of some true features plus random directions
        learned = torch.cat([true[: n_learned // 2] * 3 + 0.3 * torch.randn(n_learned // 2, d, generator=g),
                             torch.randn(n_learned - n_learned // 2, d, generator=g)])
        learned = learned[torch.randperm(n_learned, generator=g)]
        case = f"{n_learned} learned, {n_true} true features, d={d}"
        got = as_number(call(fn, learned, true), "mmcs")
        a, b = learned / learned.norm(dim=-1, keepdim=True), true / true.norm(dim=-1, keepdim=True)
        cos = b @ a.T
        _close_number(got, ref.mmcs(learned, true), "mmcs", case, {
            "take, for every TRUE feature (row of `true`), its best match among the learned directions: you took "
            "the best match of every learned direction instead": float(cos.max(0).values.mean()),
            "normalise both sets of rows to unit length: cosine similarity, not the raw dot product":
                float((true @ learned.T).max(1).values.mean()),
            "take the MAX over learned directions before averaging (you averaged all cosines)": float(cos.mean()),
            "use the signed cosine (a feature pointing the opposite way is not a match), not its absolute value":
                float(cos.abs().max(1).values.mean()),
        })


# ------------------------------------------------------------------------------------------ activations


def _pre(seed: int, shape: tuple[int, ...]) -> Tensor:
    """Distinct values (no ties at the top-k boundary), about half of them negative."""
    g = _gen(seed)
    n = math.prod(shape)
    return (torch.randperm(n, generator=g).float() / n * 4 - 1.5).view(shape)


@exercise(CHAPTER, points=1)
def check_topk_activation(fn) -> None:
    # the 3-D case ([batch, pos, width], as activations come from a model) catches topk along dim=1
    for seed, (shape, k) in enumerate([((5, 12), 3), ((3, 8), 6), ((4, 20), 1), ((2, 5, 9), 2)]):
        pre = _pre(seed, shape)
        if seed == 1:
            pre = pre - 2.0  # most pre-activations negative: the ReLU matters
        case = f"pre {list(shape)}, k={k}"
        want = ref.topk_activation(pre, k)
        top = pre.topk(k, dim=-1)
        if len(shape) == 3:
            on_dim1 = pre.topk(k, dim=1)
            expect_close(call(fn, pre, k), want, what="TopK activations", case=case, mistakes={
                "take the top k along the LAST dimension (width, dim=-1): with [batch, pos, width] activations, "
                "dim=1 is the positions": torch.zeros_like(pre).scatter(1, on_dim1.indices, torch.relu(
                    on_dim1.values)),
            })
            continue
        expect_close(call(fn, pre, k), want, what="TopK activations", case=case, mistakes={
            "apply a ReLU to the kept values: a negative pre-activation among the top k must become 0":
                torch.zeros_like(pre).scatter(-1, top.indices, top.values),
            "keep the k LARGEST pre-activations of each row (you kept the smallest)":
                torch.zeros_like(pre).scatter(-1, pre.topk(k, dim=-1, largest=False).indices,
                                              torch.relu(pre.topk(k, dim=-1, largest=False).values)),
            "keep only the k largest of each row and set the rest to 0: you returned the ReLU of every "
            "pre-activation": torch.relu(pre),
            **({"keep the top k of EACH ROW (dim=-1), not of each column": torch.zeros_like(pre).scatter(
                0, pre.topk(k, dim=0).indices, torch.relu(pre.topk(k, dim=0).values))} if k <= shape[0] else {}),
        })


@exercise(CHAPTER, points=2)
def check_batchtopk_activation(fn) -> None:
    for seed, (shape, k) in enumerate([((6, 10), 2), ((4, 16), 3), ((3, 5), 4)]):
        pre = _pre(seed + 10, shape)
        if seed == 2:
            pre = pre - 1.8  # fewer than k * batch positive values
        case = f"pre {list(shape)}, k={k}"
        got = call(fn, pre, k)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise CheckFailure("return a tuple (acts, threshold)")
        acts, threshold = ref.batchtopk_activation(pre, k)
        expect_close(got[0], acts, what="BatchTopK activations", case=case, mistakes={
            "select over the WHOLE batch (flatten it) — k * batch values in all — not the top k of each row":
                ref.topk_activation(pre, k),
            "keep k * batch values (k per row ON AVERAGE), not just k over the whole batch":
                torch.zeros_like(pre).view(-1).scatter(0, torch.relu(pre).flatten().topk(k).indices,
                                                       torch.relu(pre).flatten().topk(k).values).view_as(pre),
            "apply the ReLU: negative pre-activations are never kept": _batchtopk_no_relu(pre, k),
        })
        expect_close(torch.as_tensor(got[1], dtype=pre.dtype).reshape(()), threshold, what="threshold",
                     case=case, mistakes={
                         "the threshold is the SMALLEST kept positive activation (you returned the largest)":
                             acts.max(),
                         "the threshold is the smallest kept activation that is > 0: zeros do not count":
                             acts.new_zeros(()),
                     })


def _batchtopk_no_relu(pre: Tensor, k: int) -> Tensor:
    top = pre.flatten().topk(k * pre.shape[0])
    return torch.zeros_like(pre).view(-1).scatter(0, top.indices, top.values).view_as(pre)


def _jump_case(seed: int) -> tuple[Tensor, Tensor, Tensor, float]:
    g = _gen(seed)
    pre = torch.rand(7, 6, generator=g) * 0.6
    threshold = torch.rand(6, generator=g) * 0.3 + 0.15
    pre[0] = threshold + 0.01  # some values right next to the threshold: inside the kernel
    pre[1] = threshold - 0.01
    upstream = torch.randn(7, 6, generator=g)
    return pre, threshold, upstream, 0.05


def _jump_grads(pre, threshold, upstream, bandwidth, fn_output) -> tuple[Tensor, Tensor]:
    p, t = pre.clone().requires_grad_(True), threshold.clone().requires_grad_(True)
    with torch.enable_grad():
        out = fn_output(p, t, bandwidth)
        gp, gt = torch.autograd.grad((out * upstream).sum(), [p, t], allow_unused=True)
    return (torch.zeros_like(pre) if gp is None else gp), (torch.zeros_like(threshold) if gt is None else gt)


def _kernel_variant(pre, threshold, upstream, eps, *, width=0.5, scale="t", sign=-1.0):
    k = (((pre - threshold) / eps).abs() < width).float()
    factor = threshold / eps if scale == "t" else 1 / eps
    return (sign * factor * k * upstream).sum(0)


@exercise(CHAPTER, points=3)
def check_jumprelu(fn) -> None:
    for seed in range(3):
        pre, threshold, upstream, eps = _jump_case(seed)
        case = f"seed {seed}, bandwidth {eps}"
        got = call(fn, pre, threshold, eps)
        expect_close(got if isinstance(got, Tensor) else torch.as_tensor(got), ref.jumprelu(pre, threshold, eps),
                     what="JumpReLU output", case=case, mistakes={
                         "JumpReLU keeps the VALUE of the pre-activation where it exceeds the threshold, "
                         "pre * H(pre - threshold) — not the step H itself": (pre > threshold).float(),
                         "JumpReLU is pre * H(pre - threshold), not pre - threshold (a shifted ReLU)":
                             torch.relu(pre - threshold),
                     })
        got_p, got_t = call(lambda p, t, u, e: _jump_grads(p, t, u, e, fn), pre, threshold, upstream, eps)
        want_p, want_t = computed(ref, "jumprelu gradients",
                                  functools.partial(_jump_grads, pre, threshold, upstream, eps, ref.jumprelu),
                                  pre, threshold, upstream, eps)
        expect_close(got_p, want_p, what="gradient w.r.t. pre", case=case, mistakes={
            "the gradient w.r.t. pre is H(pre - threshold) times the incoming gradient": upstream.clone(),
        })
        expect_close(got_t, want_t, what="gradient w.r.t. the threshold", case=case, mistakes={
            "the threshold gets no gradient: the true derivative is 0 almost everywhere — write a "
            "torch.autograd.Function whose backward returns the straight-through estimate "
            "-(threshold / bandwidth) * K((pre - threshold) / bandwidth) * grad": torch.zeros_like(threshold),
            "the rectangle kernel is 1 for |u| < 1/2 (width 1 in u), not |u| < 1":
                _kernel_variant(pre, threshold, upstream, eps, width=1.0),
            "JumpReLU's threshold gradient is scaled by threshold / bandwidth (the jump's height is the "
            "threshold), not 1 / bandwidth": _kernel_variant(pre, threshold, upstream, eps, scale="1"),
            "raising the threshold REMOVES output: the estimate is -(threshold / bandwidth) K(...) (minus sign)":
                _kernel_variant(pre, threshold, upstream, eps, sign=1.0),
        })


# --------------------------------------------------------------------------------------- losses, tricks


@exercise(CHAPTER, points=1)
def check_l1_penalty(fn) -> None:
    for seed, (b, w, d) in enumerate([(6, 10, 4), (3, 7, 7), (8, 5, 12)]):
        g = _gen(seed)
        acts = torch.relu(torch.randn(b, w, generator=g))
        W_dec = torch.randn(w, d, generator=g) * torch.rand(w, 1, generator=g) * 3
        case = f"acts [{b}, {w}], W_dec [{w}, {d}]"
        want = ref.l1_penalty(acts, W_dec)
        expect_close(torch.as_tensor(call(fn, acts, W_dec)), want, what="L1 penalty", case=case, mistakes={
            "weight each latent's activation by the norm of ITS decoder row (W_dec[latent]); without the weights "
            "the SAE can shrink acts and grow the decoder": acts.sum(-1).mean(),
            **({"W_dec is [width, d_in]: a latent's decoder vector is a ROW, take the norm over dim=-1":
                (acts * W_dec.norm(dim=0)).sum(-1).mean()} if w == d else {}),
            "sum over latents, then average over the batch (you averaged over latents too)":
                (acts * W_dec.norm(dim=-1)).mean(),
            "the L1 norm uses the decoder norm, not its square": (acts * W_dec.pow(2).sum(-1)).sum(-1).mean(),
        }, factors={"width": w, "batch": b})


@exercise(CHAPTER, points=2)
def check_auxk_loss(fn) -> None:
    for seed, (b, w, d, n_dead, k_aux) in enumerate([(5, 12, 6, 4, 2), (4, 10, 5, 3, 8), (6, 9, 4, 0, 3)]):
        g = _gen(seed)
        x, recon = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)
        pre = torch.randn(b, w, generator=g)
        W_dec = torch.randn(w, d, generator=g)
        W_dec /= W_dec.norm(dim=-1, keepdim=True)
        dead = torch.zeros(w, dtype=torch.bool)
        dead[torch.randperm(w, generator=g)[:n_dead]] = True
        case = f"{n_dead} dead of {w} latents, k_aux={k_aux}"
        got = call(fn, x, recon, pre, dead, W_dec, k_aux)
        want = ref.auxk_loss(x, recon, pre, dead, W_dec, k_aux)
        if n_dead == 0:
            value = as_number(got, "the AuxK loss")
            if value != 0.0:
                raise CheckFailure(f"with no dead latent the AuxK loss must be exactly 0, got {value:.4g} ({case})")
            continue
        e = x - recon
        all_top = pre.topk(min(k_aux, w), dim=-1)
        any_latents = torch.zeros_like(pre).scatter(-1, all_top.indices, torch.relu(all_top.values))
        masked = pre.masked_fill(~dead, float("-inf")).topk(min(k_aux, n_dead), dim=-1)
        dead_acts = torch.zeros_like(pre).scatter(-1, masked.indices, torch.relu(masked.values))
        expect_close(torch.as_tensor(got), want, what="AuxK loss", case=case, mistakes={
            "use only the DEAD latents (mask the others out with -inf before the top-k)":
                (any_latents @ W_dec - e).pow(2).sum(-1).mean(),
            "decode WITHOUT the decoder bias and compare with the residual x - recon (you compared with x)":
                (dead_acts @ W_dec - x).pow(2).sum(-1).mean(),
            "sum the squared error over d_in, then average over the batch": (dead_acts @ W_dec - e).pow(2).mean(),
        }, factors={"d_in": d})
        # no gradient may flow into x or recon through the residual target
        def reaches_x_or_recon(x, recon, *rest) -> bool:
            xr, rr = x.clone().requires_grad_(True), recon.clone().requires_grad_(True)
            with torch.enable_grad():
                out = fn(xr, rr, *rest)
                if not getattr(out, "requires_grad", False):
                    return False
                grads = torch.autograd.grad(out, [xr, rr], allow_unused=True)
                return any(bool(gr.abs().max() > 0) for gr in grads if gr is not None)

        if call(reaches_x_or_recon, x, recon, pre, dead, W_dec, k_aux):
            raise CheckFailure(f"detach the residual x - recon: the auxiliary loss must train the dead "
                               f"latents, not pull the main reconstruction ({case})")


@exercise(CHAPTER, points=1)
def check_remove_parallel_grad(fn) -> None:
    for seed, (w, d) in enumerate([(6, 4), (5, 9), (7, 7)]):
        g = _gen(seed)
        W_dec = torch.randn(w, d, generator=g) * 2  # NOT unit norm: the function must normalise
        grad = torch.randn(w, d, generator=g)
        case = f"W_dec [{w}, {d}]"
        before = (W_dec.clone(), grad.clone())
        got = call(fn, W_dec, grad)
        if not (torch.equal(W_dec, before[0]) and torch.equal(grad, before[1])):
            raise CheckFailure("return a new tensor: do not modify W_dec or grad in place")
        want = ref.remove_parallel_grad(W_dec, grad)
        wc = W_dec / W_dec.norm(dim=0, keepdim=True)
        expect_close(got, want, what="projected gradient", case=case, mistakes={
            "normalise the decoder rows before projecting: g - (g . w) w with UNIT-norm w":
                grad - (grad * W_dec).sum(-1, keepdim=True) * W_dec,
            "each latent's decoder vector is a ROW of W_dec [width, d_in]: project row by row":
                grad - (grad * wc).sum(0, keepdim=True) * wc,
            "REMOVE the parallel component, g - (g . w) w; you returned the projection (g . w) w itself":
                grad - want,
        })


@exercise(CHAPTER, points=1)
def check_geometric_median(fn) -> None:
    for seed, (n, d) in enumerate([(40, 3), (25, 6), (60, 2)]):
        g = _gen(seed)
        points = torch.randn(n, d, generator=g)
        points[: n // 8] += 25.0  # outliers: mean and median differ
        case = f"{n} points in {d} dims"
        want = ref.geometric_median(points, 100)
        got = call(fn, points, 100)
        expect_close(got, want, what="geometric median", case=case, atol=1e-3, rtol=1e-3, mistakes={
            "the geometric median is not the mean: iterate Weiszfeld's update": points.mean(0),
            "the geometric median minimises the sum of Euclidean distances; the coordinate-wise median is a "
            "different point": points.median(0).values,
            "weight each point by 1 / distance (not by the distance)": _weiszfeld(points, 100, power=1.0),
            "weight each point by 1 / distance, not 1 / distance squared": _weiszfeld(points, 100, power=-2.0),
        })


def _weiszfeld(points: Tensor, n_iter: int, power: float) -> Tensor:
    m = points.mean(0)
    for _ in range(n_iter):
        w = (points - m).norm(dim=-1).clamp_min(1e-8) ** power
        m = (w[:, None] * points).sum(0) / w.sum()
    return m


# ------------------------------------------------------------------------------------------ evaluation


@exercise(CHAPTER, points=1)
def check_fve(fn) -> None:
    for seed, (n, d) in enumerate([(50, 8), (30, 3), (80, 16)]):
        g = _gen(seed)
        x = torch.randn(n, d, generator=g) * torch.rand(d, generator=g) * 3 + 5  # a large mean: centring matters
        recon = x + 0.4 * torch.randn(n, d, generator=g)
        case = f"x [{n}, {d}]"
        err = (x - recon).pow(2)
        _close_number(as_number(call(fn, x, recon), "FVE"), ref.fve(x, recon), "FVE", case, {
            "subtract the MEAN of x before measuring its variance (predicting the mean must score 0)":
                float(1 - err.sum() / x.pow(2).sum()),
            "the mean is over the batch (dim 0, one mean per dimension), not over the features of each row":
                float(1 - err.sum() / (x - x.mean(1, keepdim=True)).pow(2).sum()),
            "compute ONE ratio of sums (total error / total variance), not the mean of per-dimension ratios":
                float((1 - err.sum(0) / (x - x.mean(0)).pow(2).sum(0)).mean()),
            "FVE is 1 - error / variance (you returned error / variance)":
                float(err.sum() / (x - x.mean(0)).pow(2).sum()),
        })
    x = torch.randn(20, 4, generator=_gen(9))
    _close_number(as_number(call(fn, x, x.mean(0).expand_as(x)), "FVE"), 0.0, "FVE of the mean predictor",
                  "recon = the mean of x", {})


@exercise(CHAPTER, points=1)
def check_sparsity_stats(fn) -> None:
    for seed, (n, w) in enumerate([(40, 12), (25, 30), (10, 5)]):
        g = _gen(seed)
        acts = torch.relu(torch.randn(n, w, generator=g) - 0.8)
        acts[:, : w // 4] = 0  # dead latents
        acts[:, -1] = torch.rand(n, generator=g) + 0.1  # a dense latent
        case = f"acts [{n}, {w}]"
        got = call(fn, acts, 0.3)
        if not isinstance(got, dict) or not {"l0", "density", "dead_fraction", "dense_fraction"} <= set(got):
            raise CheckFailure("return a dict with keys 'l0', 'density', 'dead_fraction', 'dense_fraction'")
        want = ref.sparsity_stats(acts, 0.3)
        fires = (acts != 0).float()
        _close_number(as_number(got["l0"], "l0"), want["l0"], "l0", case, {
            "L0 counts the NON-ZERO latents per token, averaged over tokens (you summed the activations)":
                float(acts.sum(-1).mean()),
            "L0 is the mean over tokens of the count per token (you divided by the width too)":
                float(fires.mean()),
        })
        expect_close(torch.as_tensor(got["density"], dtype=torch.float32), want["density"], what="density",
                     case=case, mistakes={
                         "density is per LATENT: the fraction of tokens (rows) on which it fires, mean over dim 0":
                             fires.mean(1),
                         "density is a fraction of tokens, not a count": fires.sum(0),
                     })
        _close_number(as_number(got["dead_fraction"], "dead_fraction"), want["dead_fraction"], "dead_fraction",
                      case, {"a dead latent NEVER fires (density exactly 0); you counted dead tokens":
                             float((fires.sum(-1) == 0).float().mean())})
        _close_number(as_number(got["dense_fraction"], "dense_fraction"), want["dense_fraction"], "dense_fraction",
                      case, {"dense means density ABOVE dense_threshold": float((fires.mean(0) < 0.3).float().mean())})


@functools.lru_cache(maxsize=1)
def _model() -> HookedModel:
    return tiny_gpt2(71, vocab_size=30, n_embd=24, n_layer=2, n_head=3, n_positions=12)


def _ce(logits: Tensor, tokens: Tensor, shift: int = 1) -> float:
    if shift == 0:
        return float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens.flatten()))
    return float(torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten()))


@exercise(CHAPTER, points=2)
def check_spliced_ce_loss(fn) -> None:
    model = _model()
    tokens = torch.randint(0, 30, (3, 10), generator=_gen(4))
    hook = "blocks.1.hook_resid_pre"
    shrink = lambda a: 0.5 * a  # noqa: E731  (a stand-in for a lossy SAE reconstruction)
    with torch.no_grad():
        clean_logits = model(tokens)
        shrunk_logits = model.run_with_hooks(tokens, [(hook, lambda a, hp: shrink(a))])
    for name, replace, logits in [("replace = identity", lambda a: a, clean_logits),
                                  ("replace = 0.5 * act", shrink, shrunk_logits)]:
        got = as_number(call(fn, model, tokens, hook, replace), "the loss")
        want = ref.spliced_ce_loss(model, tokens, hook, replace)
        _close_number(got, want, "the spliced loss", name, {
            "predict the NEXT token: compare logits at positions 0..pos-2 with tokens 1..pos-1":
                _ce(logits, tokens, shift=0),
            "your hook did not change the forward pass: return replace(act) from the hook":
                _ce(clean_logits, tokens),
            "average the cross-entropy over predictions, in nats (natural log), not the sum":
                _ce(logits, tokens) * tokens[:, 1:].numel(),
        })


@exercise(CHAPTER, points=1)
def check_ce_recovered(fn) -> None:
    for clean, spliced, ablated in [(4.0, 4.1, 9.0), (2.5, 3.5, 3.0), (3.2, 3.2, 7.7)]:
        case = f"clean {clean}, spliced {spliced}, ablated {ablated}"
        _close_number(as_number(call(fn, clean, spliced, ablated), "CE recovered"),
                      ref.ce_recovered(clean, spliced, ablated), "CE recovered", case, {
                          "1 means the spliced loss equals the CLEAN loss: (ablated - spliced) / (ablated - clean)":
                              (spliced - clean) / (ablated - clean),
                          "divide by the loss the ablation adds (ablated - clean), not by the ablated loss":
                              (ablated - spliced) / ablated,
                          "CE recovered compares loss DIFFERENCES, not a ratio of losses": clean / spliced,
                      })


# ----------------------------------------------------------------------------------------------- steering


@exercise(CHAPTER, points=1)
def check_steering_hook(fn) -> None:
    g = _gen(3)
    for shape, strength in [((2, 5, 6), 3.0), ((1, 4, 6), -1.5)]:
        direction = torch.randn(6, generator=g) * 2
        act = torch.randn(*shape, generator=g)
        case = f"act {list(shape)}, strength {strength}"

        def steer(direction, strength, act, case=case):  # the returned hook runs where the learner's code runs
            hook = fn(direction, strength)
            if not callable(hook):
                raise CheckFailure("return a hook function (act, hook_point) -> new activation")
            given = act.clone()
            out = hook(given, None)
            if out is None:
                raise CheckFailure(f"the hook must RETURN the new activation ({case})")
            if not torch.equal(given, act):
                raise CheckFailure(f"do not modify `act` in place: return act + strength * direction ({case})")
            return out

        got = call(steer, direction, strength, act)
        want = computed(ref, "steering_hook applied",
                        lambda direction=direction, strength=strength, act=act:
                        ref.steering_hook(direction, strength)(act, None), direction, strength, act)
        only_last = act.clone()
        only_last[:, -1] += strength * direction
        expect_close(got, want, what="steered activation", case=case, mistakes={
            "add the direction at EVERY position, not only the last": only_last,
            "use the direction as given: do not normalise it (its scale is part of the feature)":
                act + strength * direction / direction.norm(),
            "multiply the direction by the strength": act + direction,
        })


# ------------------------------------------------------------------------------------------------- drills


@exercise(CHAPTER, points=1)
def check_drill_topk_l0(fn) -> None:
    expect_equal_answer(call(fn), ref.drill_topk_l0(), {
        "a": "the L1 penalty is not what sets TopK's sparsity — a TopK SAE usually has no sparsity penalty at all",
        "c": "dead latents lower L0 in any SAE; TopK's L0 is exact for another reason",
        "d": "TopK is not a threshold on the pre-activation: the cut-off changes from token to token",
    }, default_hint="answer with one letter, 'a' to 'd'")


@exercise(CHAPTER, points=1)
def check_drill_ce_vs_fve(fn) -> None:
    expect_equal_answer(call(fn), ref.drill_ce_vs_fve(), {
        "a": "CE-recovered is not about the sparsity of the code",
        "b": "FVE already measures the reconstruction error in the residual stream's own units",
        "d": "zero-ablation is the baseline of CE-recovered, not something FVE measures",
    }, default_hint="answer with one letter, 'a' to 'd'")


@exercise(CHAPTER, points=1)
def check_drill_dead_latents(fn) -> None:
    expect_equal_answer(call(fn), ref.drill_dead_latents(), {
        "b": "a higher learning rate tends to create dead latents, not revive them",
        "c": "a larger dictionary has more latents to die: it makes the problem worse",
        "d": "a larger L1 coefficient pushes more latents to zero: more dead latents, not fewer",
    }, default_hint="answer with one letter, 'a' to 'd'")


@exercise(CHAPTER, points=1)
def check_drill_clamping(fn) -> None:
    expect_equal_answer(call(fn), ref.drill_clamping(), {
        "a": "steering shows the direction is causally USED by later layers; it does not show the feature is the "
             "only representation of the concept",
        "b": "the feature may also fire on other inputs: clamping says what it does, not everything it reads",
        "c": "strong clamping usually costs fluency (perplexity rises) — that is why the chapter measures it",
    }, default_hint="answer with one letter, 'a' to 'd'")
