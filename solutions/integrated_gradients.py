"""Chapter 06 reference: integrated gradients (Sundararajan et al. 2017) from scratch, checked against captum,
with baselines (Kindermans et al. 2017; Sturmfels et al. 2020) and sanity checks (Adebayo et al. 2018).

Conventions: a forward function maps inputs [batch, ...] to outputs [batch, n_outputs]; `target` picks one
output per example (an int for all, or a [batch] tensor); IG's scaled inputs are stacked step-major (all
examples at alpha_0, then all at alpha_1, ...), as captum stacks them, and additional forward arguments are
repeated the same way.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from mechinterp.course.toolkit.classifier import Classifier, load_classifier, reinitialised
from mechinterp.course.toolkit.findings import Finding
from torch import Tensor

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")

# --------------------------------------------------------------------------------------- exercises


def integration_rule(n_steps: int, method: str) -> tuple[Tensor, Tensor]:
    """Points alpha_k in [0, 1] and weights w_k with sum_k w_k g(alpha_k) ~ integral_0^1 g(alpha) d alpha.

    method: "riemann_left" (alpha_k = k / n), "riemann_right" ((k + 1) / n), "riemann_middle" ((k + 1/2) / n),
    each with weights 1 / n; "riemann_trapezoid" (n points from 0 to 1 inclusive, weights 1 / (n - 1) with the
    two end weights halved); "gausslegendre" (numpy.polynomial.legendre.leggauss(n) mapped from [-1, 1] to
    [0, 1]). k = 0 .. n - 1. Returns (alphas [n_steps], weights [n_steps]), float64.
    """
    k = torch.arange(n_steps, dtype=torch.float64)
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n_steps)
        return torch.from_numpy((x + 1) / 2), torch.from_numpy(w / 2)
    if method == "riemann_trapezoid":
        weights = torch.full((n_steps,), 1 / (n_steps - 1), dtype=torch.float64)
        weights[[0, -1]] /= 2
        return k / (n_steps - 1), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (k + offset) / n_steps, torch.full((n_steps,), 1 / n_steps, dtype=torch.float64)


def integrated_gradients(forward_func, inputs: Tensor, baselines: Tensor, target, n_steps: int = 50,
                         method: str = "gausslegendre", additional_forward_args: tuple = (),
                         return_convergence_delta: bool = False):
    """Integrated gradients along the straight line from `baselines` to `inputs`, all steps in ONE batch.

    attribution = (inputs - baselines) * sum_k w_k * dF(baseline + alpha_k (inputs - baseline)) / d input,
    where F = forward_func(x, *additional_forward_args)[i, target_i] and (alpha_k, w_k) = integration_rule.
    Scaled inputs are stacked step-major ([n_steps * batch, ...]); each additional forward argument is
    repeated n_steps times along its first axis the same way. With return_convergence_delta, also returns
    delta [batch] = sum of each example's attributions - (F(inputs) - F(baselines)).
    Returns attributions shaped like inputs (and delta).
    """
    batch = inputs.shape[0]
    alphas, weights = integration_rule(n_steps, method)
    alphas = alphas.to(inputs.dtype).to(inputs.device)
    weights = weights.to(inputs.dtype).to(inputs.device)
    shape = (n_steps,) + (1,) * inputs.dim()
    diff = (inputs - baselines).detach()
    scaled = (baselines.detach()[None] + alphas.view(shape) * diff[None]).reshape(n_steps * batch, *inputs.shape[1:])
    scaled.requires_grad_(True)
    extra = tuple(a.repeat(n_steps, *([1] * (a.dim() - 1))) if isinstance(a, Tensor) else a
                  for a in additional_forward_args)
    targets = torch.as_tensor(target, device=inputs.device).expand(batch).repeat(n_steps)
    with torch.enable_grad():
        out = forward_func(scaled, *extra)
        selected = out.gather(1, targets[:, None])[:, 0]
        grads = torch.autograd.grad(selected.sum(), scaled)[0].view(n_steps, *inputs.shape)
    attributions = diff * (weights.view(shape) * grads).sum(0)
    if not return_convergence_delta:
        return attributions
    with torch.no_grad():
        ends = forward_func(torch.cat([inputs, baselines]), *(
            torch.cat([a, a]) if isinstance(a, Tensor) else a for a in additional_forward_args))
        f = ends.gather(1, torch.as_tensor(target, device=inputs.device).expand(batch).repeat(2)[:, None])[:, 0]
    delta = attributions.reshape(batch, -1).sum(-1) - (f[:batch] - f[batch:])
    return attributions, delta


def baseline_ids(input_ids: Tensor, keep_ids: list[int], baseline_id: int) -> Tensor:
    """The baseline sentence: every token replaced by `baseline_id` (e.g. [PAD] or [MASK]) except the tokens in
    keep_ids (e.g. [CLS], [SEP], [PAD]: structure, not content). input_ids: [batch, pos]. Returns [batch, pos]."""
    keep = torch.isin(input_ids, torch.tensor(keep_ids, device=input_ids.device))
    return torch.where(keep, input_ids, baseline_id)


def token_attributions(attributions: Tensor, attention_mask: Tensor) -> Tensor:
    """One score per token: the sum of its attributions over the embedding dimension (signed: completeness
    is preserved), 0 at padding. attributions: [batch, pos, dim]; attention_mask: [batch, pos]. Returns
    [batch, pos]."""
    return attributions.sum(-1) * attention_mask


def gradient_times_input(forward_func, inputs: Tensor, target, additional_forward_args: tuple = ()) -> Tensor:
    """The cheap alternative: input * dF/d input at the input itself (IG with a zero baseline and one step at
    alpha = 1). F = forward_func(inputs, *additional_forward_args)[i, target_i]. Returns a tensor like inputs."""
    x = inputs.detach().clone().requires_grad_(True)
    batch = inputs.shape[0]
    with torch.enable_grad():
        out = forward_func(x, *additional_forward_args)
        t = torch.as_tensor(target, device=inputs.device).expand(batch)
        grad = torch.autograd.grad(out.gather(1, t[:, None]).sum(), x)[0]
    return inputs.detach() * grad


def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman rank correlation of two 1-D tensors of equal length (no ties): the Pearson correlation of their
    ranks. Returns a float in [-1, 1]."""
    ra = a.argsort().argsort().double()
    rb = b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra @ rb) / (ra.norm() * rb.norm()))


def deletion_curve(prob_fn, input_ids: Tensor, scores: Tensor, deletable: Tensor, baseline_id: int) -> Tensor:
    """Delete (replace with baseline_id) the deletable tokens one at a time, highest score first, and record
    the model's probability after each deletion.

    prob_fn(ids [k, pos]) -> [k] probabilities of the class being explained. input_ids, scores, deletable:
    [pos] (deletable: bool, False for [CLS]/[SEP]/padding). Evaluate all versions in ONE call to prob_fn.
    Returns [n_deletable + 1]: the probability before any deletion, then after 1, 2, ... deletions.
    """
    order = torch.where(deletable, scores, float("-inf")).argsort(descending=True)[: int(deletable.sum())]
    versions = input_ids.repeat(len(order) + 1, 1)
    for k in range(1, len(order) + 1):
        versions[k, order[:k]] = baseline_id
    return prob_fn(versions)


# ------------------------------------------------------------------------------------------ drills


def drill_completeness() -> str:
    """Drill: which statement is IG's completeness axiom? Return the letter."""
    return "b"


def drill_snippet_fails() -> str:
    """Drill: why does IntegratedGradients on integer input_ids fail? Return the letter."""
    return "d"


def drill_baseline_meaning() -> str:
    """Drill: what does the choice of baseline mean? Return the letter."""
    return "a"


# ------------------------------------------------------------------------------- chapter helpers


def load_heldout(clf: Classifier) -> list[dict]:
    import json

    from mechinterp.course.toolkit.zoo import zoo_dir

    return json.loads((zoo_dir() / clf.name.removeprefix("zoo/") / "heldout.json").read_text())


def explain(clf: Classifier, texts: list[str], n_steps: int = 50, method: str = "gausslegendre",
            baseline: str = "pad", target: Tensor | None = None, model: Classifier | None = None) -> dict:
    """IG over the word embeddings for a batch of sentences: token scores, delta, predicted class, tokens.

    baseline: "pad" / "mask" (the token replaced, [CLS]/[SEP]/[PAD] kept) or "zero" (zero embeddings).
    `model` (default clf) is the classifier whose forward pass is attributed (for randomisation tests)."""
    model = model or clf
    enc = clf.encode(texts)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    keep = [clf.tokenizer.cls_token_id, clf.tokenizer.sep_token_id, clf.pad_id]
    with torch.no_grad():
        embeds = model.embed(ids)
        base = (torch.zeros_like(embeds) if baseline == "zero"
                else model.embed(baseline_ids(ids, keep, clf.pad_id if baseline == "pad" else clf.mask_id)))
        pred = model.probs_from_embeds(embeds, mask).argmax(-1)
    target = pred if target is None else target
    attr, delta = integrated_gradients(model.probs_from_embeds, embeds, base, target, n_steps, method,
                                       additional_forward_args=(mask,), return_convergence_delta=True)
    return {"scores": token_attributions(attr, mask).detach(), "delta": delta.detach(), "pred": pred,
            "ids": ids, "mask": mask, "target": target, "attributions": attr.detach()}


def top_tokens(clf: Classifier, sentences: list[dict], **kw) -> dict[str, Tensor]:
    """For each sentence: the position of the top-attributed token, of the planted sentiment word and of the
    negator (-1 if none)."""
    from mechinterp.course.toolkit.sentiment import NEGATORS, planted_positions

    out = explain(clf, [s["text"] for s in sentences], **kw)
    ids = out["ids"].cpu()
    planted = planted_positions(ids, clf.tokenizer, [s["word"] for s in sentences])
    negator_ids = torch.tensor(clf.tokenizer.convert_tokens_to_ids(list(NEGATORS)))
    is_neg = torch.isin(ids, negator_ids)
    negator = torch.where(is_neg.any(-1), is_neg.float().argmax(-1), -1)
    top = out["scores"].masked_fill(out["mask"] == 0, float("-inf")).argmax(-1).cpu()
    return {"top": top, "planted": planted, "negator": negator,
            "negated": torch.tensor([s["negated"] for s in sentences])}


def captum_parity(clf: Classifier, texts: list[str], n_steps: int = 50) -> dict[str, float]:
    """max |ours - captum| / max |captum| per method, on the classifier's word embeddings (captum's
    IntegratedGradients on embeddings, and LayerIntegratedGradients on the embedding layer for token ids)."""
    from captum.attr import IntegratedGradients, LayerIntegratedGradients

    enc = clf.encode(texts)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    keep = [clf.tokenizer.cls_token_id, clf.tokenizer.sep_token_id, clf.pad_id]
    base_ids = baseline_ids(ids, keep, clf.pad_id)
    embeds, base = clf.embed(ids).detach(), clf.embed(base_ids).detach()
    target = clf.probs(ids, mask).argmax(-1)
    out = {}
    for method in METHODS:
        if method == "riemann_trapezoid":
            continue  # captum's trapezoid weights differ from the textbook rule (see the chapter)
        ours = integrated_gradients(clf.probs_from_embeds, embeds, base, target, n_steps, method, (mask,))
        theirs = IntegratedGradients(clf.probs_from_embeds).attribute(
            embeds, base, target=target, additional_forward_args=(mask,), n_steps=n_steps, method=method)
        out[method] = float((ours - theirs).abs().max() / theirs.abs().max())
    lig = LayerIntegratedGradients(lambda i, m: clf.probs(i, m), clf.word_embeddings).attribute(
        ids, base_ids, target=target, additional_forward_args=(mask,), n_steps=n_steps)
    ours = integrated_gradients(clf.probs_from_embeds, embeds, base, target, n_steps, "gausslegendre", (mask,))
    out["LayerIntegratedGradients"] = float((ours - lig).abs().max() / lig.abs().max())
    return out


def time_against_captum(clf: Classifier, texts: list[str], n_steps: int = 50, repeats: int = 5) -> dict[str, float]:
    """Best-of-`repeats` seconds for our IG and captum's on the same inputs, interleaved."""
    from captum.attr import IntegratedGradients

    enc = clf.encode(texts)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    keep = [clf.tokenizer.cls_token_id, clf.tokenizer.sep_token_id, clf.pad_id]
    embeds, base = clf.embed(ids).detach(), clf.embed(baseline_ids(ids, keep, clf.pad_id)).detach()
    target = clf.probs(ids, mask).argmax(-1)
    ig = IntegratedGradients(clf.probs_from_embeds)
    best = {"ours": float("inf"), "captum": float("inf")}
    for _ in range(repeats):
        for who in best:
            start = time.perf_counter()
            if who == "ours":
                integrated_gradients(clf.probs_from_embeds, embeds, base, target, n_steps, "gausslegendre", (mask,))
            else:
                ig.attribute(embeds, base, target=target, additional_forward_args=(mask,), n_steps=n_steps)
            best[who] = min(best[who], time.perf_counter() - start)
    return best


def deletion_aucs(clf: Classifier, sentences: list[dict], n_random: int = 5, seed: int = 0
                  ) -> tuple[float, float, float]:
    """Mean area under the deletion curve (probability of the predicted class vs fraction deleted) with IG
    order, with random order, and with IG's REVERSED order (least important first: the contrast)."""
    out = explain(clf, [s["text"] for s in sentences])
    keep = torch.tensor([clf.tokenizer.cls_token_id, clf.tokenizer.sep_token_id, clf.pad_id], device=clf.device)
    gen = torch.Generator().manual_seed(seed)
    ig_auc, rand_auc, reverse_auc = [], [], []
    for i in range(len(sentences)):
        n = int(out["mask"][i].sum())  # the sentence alone: no trailing [PAD] for the model to attend to
        ids, scores, target = out["ids"][i, :n], out["scores"][i, :n], out["pred"][i]
        deletable = ~torch.isin(ids, keep)

        def prob(v, target=target):
            return clf.probs(v).detach()[:, target]

        ig_auc.append(float(curve_area(deletion_curve(prob, ids, scores, deletable, clf.pad_id))))
        reverse_auc.append(float(curve_area(deletion_curve(prob, ids, -scores, deletable, clf.pad_id))))
        for _ in range(n_random):
            random_scores = torch.rand(len(ids), generator=gen).to(clf.device)
            rand_auc.append(float(curve_area(deletion_curve(prob, ids, random_scores, deletable, clf.pad_id))))
    return float(np.mean(ig_auc)), float(np.mean(rand_auc)), float(np.mean(reverse_auc))


def curve_area(curve: Tensor) -> Tensor:
    """Trapezoid area under a curve sampled at evenly spaced fractions 0 .. 1."""
    x = torch.linspace(0, 1, len(curve), device=curve.device, dtype=curve.dtype)
    return torch.trapezoid(curve, x)


def randomisation_correlation(clf: Classifier, sentences: list[dict], seed: int = 0) -> tuple[float, float]:
    """Mean Spearman correlation between token scores of the trained and a fully re-initialised model; and, the
    positive control, between the trained model's scores at 50 and at 20 steps (the measure can be high)."""
    texts = [s["text"] for s in sentences]
    trained = explain(clf, texts)
    others = (explain(clf, texts, model=reinitialised(clf, seed), target=trained["pred"]),
              explain(clf, texts, n_steps=20, target=trained["pred"]))
    corr = [[], []]
    for i in range(len(texts)):
        m = trained["mask"][i].bool()
        for c, other in zip(corr, others, strict=True):
            c.append(spearman(trained["scores"][i][m].cpu(), other["scores"][i][m].cpu()))
    return float(np.mean(corr[0])), float(np.mean(corr[1]))


# ------------------------------------------------------------------------------- chapter findings


def findings(device: str | torch.device = "cpu") -> list[Finding]:
    """Completeness, captum parity, planted-word recovery, the randomisation test and deletion curves."""
    clf = load_classifier("zoo/sentiment-clf", device)
    held = load_heldout(clf)
    sample = held[:200]
    texts = [s["text"] for s in sample[:50]]
    enc = clf.encode(texts)
    with torch.no_grad():
        keep = [clf.tokenizer.cls_token_id, clf.tokenizer.sep_token_id, clf.pad_id]
        probs_x = clf.probs(enc["input_ids"], enc["attention_mask"])
        probs_b = clf.probs(baseline_ids(enc["input_ids"], keep, clf.pad_id), enc["attention_mask"])
    relative = {}
    for n in (10, 300, 1000):
        out = explain(clf, texts, n_steps=n)
        t = out["target"][:, None]
        relative[n] = (out["delta"].abs() / (probs_x.gather(1, t) - probs_b.gather(1, t))[:, 0].abs()).cpu()
    parity = captum_parity(clf, texts[:16])
    tops = top_tokens(clf, sample)
    plain, negated = ~tops["negated"], tops["negated"]
    planted_top = tops["top"] == tops["planted"]
    evidence_top = planted_top | (tops["top"] == tops["negator"])
    corr, control_corr = randomisation_correlation(clf, sample[:100])
    ig_auc, rand_auc, reverse_auc = deletion_aucs(clf, sample[:60])
    fresh = top_tokens(clf, sample, model=reinitialised(clf, 0))  # the contrast: a re-initialised classifier
    times = time_against_captum(clf, texts)
    return [
        Finding("completeness at 300 Gauss-Legendre steps: mean |sum attr - dF| / |dF| over 50 sentences",
                "→ 0 (Sundararajan et al.: completeness; < 1%)", float(relative[300].mean()), hi=0.01,
                contrast=float(relative[10].mean()), contrast_name="the same at 10 steps"),
        Finding("completeness at 1,000 steps: the worst of the 50 sentences", "< 1%", float(relative[1000].max()),
                hi=0.01, contrast=float(relative[10].max()), contrast_name="the worst at 10 steps"),
        Finding("mean relative completeness gap at 300 steps ÷ at 10 steps", "report (< 1: converges)",
                float(relative[300].mean() / relative[10].mean())),
        *[Finding(f"parity with captum ({m}): max relative difference", "≤ 1e-5", v, hi=1e-5, kind="sanity")
          for m, v in parity.items()],
        Finding(f"planted sentiment word is the top-attributed token ({int(plain.sum())} held-out sentences "
                "without negation)", "≥ 0.8", float(planted_top[plain].float().mean()), lo=0.8,
                contrast=float((fresh["top"] == fresh["planted"])[plain].float().mean()),
                contrast_name="the classifier re-initialised"),
        Finding(f"negated sentences ({int(negated.sum())}): the top token is the sentiment word or its negator",
                "≥ 0.8 (IG credits the negation pair)", float(evidence_top[negated].float().mean()), lo=0.8,
                contrast=float(((fresh["top"] == fresh["planted"]) | (fresh["top"] == fresh["negator"]))[negated]
                               .float().mean()), contrast_name="the classifier re-initialised"),
        Finding("randomised model: mean Spearman correlation with the trained model's token scores",
                "< 0.3 (Adebayo et al.: attributions must depend on the weights)", corr, hi=0.3,
                contrast=control_corr, contrast_name="the trained model at 50 vs 20 steps (the positive control)"),
        Finding("deletion curve AUC, IG order minus random order", "< 0 (IG finds the evidence first)",
                ig_auc - rand_auc, hi=-0.05, contrast=reverse_auc - rand_auc,
                contrast_name="IG's order reversed (least important first)"),
        Finding("time of our batched IG ÷ captum's (50 steps, 50 sentences, best of 5)", "report (a timing; "
                "bench/ holds timings)", times["ours"] / times["captum"]),
    ]
