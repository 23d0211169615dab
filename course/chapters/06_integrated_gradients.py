# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 06 — Integrated gradients done right
#
# *Anchors: Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep Networks"; Kindermans et al.
# (2017), "The (Un)reliability of Saliency Methods"; Adebayo et al. (2018), "Sanity Checks for Saliency
# Maps"; Sturmfels, Lundberg & Lee (2020), "Visualizing the Impact of Feature Attribution Baselines";
# captum's `IntegratedGradients` / `LayerIntegratedGradients`.*
#
# An **attribution** method answers "which parts of this input made the model say that?". Integrated
# gradients (IG) compares the input $x$ with a **baseline** $x'$ (an input that carries no evidence) and
# integrates the gradient along the straight line between them:
#
# $$\mathrm{IG}_i(x) = (x_i - x'_i) \int_0^1 \frac{\partial F\big(x' + \alpha (x - x')\big)}{\partial x_i}\, d\alpha .$$
#
# By the fundamental theorem of calculus for line integrals the attributions add up to the change in output,
# $\sum_i \mathrm{IG}_i = F(x) - F(x')$ (**completeness**), which plain gradients do not satisfy.
#
# This chapter starts with a bug that appears in many copied snippets, then builds IG from scratch and holds
# it to account:
#
# 1. why IG on integer token ids cannot work, and the fix (attribute on the embeddings);
# 2. integration rules (Riemann left/right/middle/trapezoid, Gauss–Legendre) and a batched IG with captum's
#    call shape; completeness and the convergence delta;
# 3. parity with captum, to 1e-5;
# 4. baselines: [PAD], [MASK], zero embeddings — how the story changes;
# 5. token-level pictures, compared with gradient × input;
# 6. sanity checks: model randomisation (Adebayo) and deletion curves.
#
# Model: `zoo/sentiment-clf`, a small DistilBERT-architecture classifier trained on generated sentences,
# each built around ONE sentiment adjective from VADER's lexicon, sometimes intensified or negated. We know
# where the evidence is, so we can check whether attributions find it. The same code runs on
# `distilbert-base-uncased-finetuned-sst-2-english` when the Hugging Face hub is reachable.
# Budget: about 2.5 hours; the notebook runs in well under a minute on 2 idle CPU cores
# (a busy laptop can take several times longer).

# %% tags=["setup"]
import json
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients
from torch import Tensor

from mechinterp.autograder import check
from mechinterp.course.toolkit import get_device
from mechinterp.course.toolkit.classifier import load_classifier, reinitialised
from mechinterp.course.toolkit.plotting import plot_token_attributions
from mechinterp.course.toolkit.sentiment import NEGATORS, planted_positions
from mechinterp.course.toolkit.zoo import zoo_dir

device = get_device()
clf = load_classifier("zoo/sentiment-clf", device)
heldout = json.loads((zoo_dir() / "sentiment-clf" / "heldout.json").read_text())  # sentences from unseen templates
KEEP = [clf.tokenizer.cls_token_id, clf.tokenizer.sep_token_id, clf.pad_id]  # structure tokens, never attributed
print(clf.labels, "| e.g.", heldout[0])

# %% [markdown]
# ## 1. The bug: integrated gradients on token ids
#
# The widely copied snippet wraps the model as a function of `input_ids` and asks captum for IG against an
# all-[PAD] baseline:

# %% tags=["experiment"]
batch = clf.encode(["the movie was truly wonderful"])
ids, mask = batch["input_ids"], batch["attention_mask"]
pad_baseline = torch.full_like(ids, clf.pad_id)
try:
    IntegratedGradients(lambda i: clf.probs(i, mask)).attribute(ids, pad_baseline, target=1)
except Exception as e:  # noqa: BLE001
    print(f"{type(e).__name__}: {str(e)[:300]}")

# %% [markdown]
# It cannot work. IG needs points *between* baseline and input, $x' + \alpha(x - x')$, and gradients with
# respect to them. Token ids are integers naming rows of an embedding table: "40% of the way from token 0 to
# token 371" is token 148, an unrelated word (or, in floating point, not an index at all), and an index has
# no gradient. (Versions of the snippet that cast ids to float fail at the embedding lookup, or silently
# attribute garbage.) The continuous object is the **embedding**: interpolate there.
#
# The fix:
# - compute word embeddings $e = E[\text{ids}]$ and feed `inputs_embeds` (positions and LayerNorm are added
#   inside the model, so they stay fixed along the path);
# - baseline: the embeddings of a sentence with every *content* token replaced by [PAD] (or [MASK]), while
#   [CLS] and [SEP] stay — structure is not evidence;
# - sum each token's attributions over the embedding dimension to get one score per token.
#
# Captum's `LayerIntegratedGradients(forward, model.<embeddings>)` does exactly this for you; after this
# chapter you will know what it does. `clf.embed(ids)` gives word embeddings and
# `clf.probs_from_embeds(embeds, mask)` the class probabilities.
#
# ### Exercise 1.1 — baseline_ids
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min

# %% tags=["exercise"]
def baseline_ids(input_ids: Tensor, keep_ids: list[int], baseline_id: int) -> Tensor:
    """The baseline sentence: every token replaced by `baseline_id` (e.g. [PAD] or [MASK]) except the tokens in
    keep_ids (e.g. [CLS], [SEP], [PAD]: structure, not content). input_ids: [batch, pos]. Returns [batch, pos]."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("integrated_gradients", "baseline_ids", baseline_ids)

# %% [markdown]
# ## 2. The integral, numerically
#
# IG is an integral over $\alpha \in [0, 1]$; we approximate it by a weighted sum over points $\alpha_k$.
# Riemann sums put equally weighted points at the left ends, right ends or midpoints of $n$ equal intervals;
# the trapezoid rule uses both ends of each interval; **Gauss–Legendre** quadrature picks $n$ points and
# weights that integrate polynomials of degree $2n - 1$ exactly, so smooth integrands converge much faster.
#
# ### Exercise 2.1 — integration_rule
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~15 min
#
# `np.polynomial.legendre.leggauss(n)` returns points and weights on $[-1, 1]$; map them to $[0, 1]$
# ($\alpha = (x + 1)/2$, and the weights halve). Return float64 tensors.

# %% tags=["exercise"]
def integration_rule(n_steps: int, method: str) -> tuple[Tensor, Tensor]:
    """Points alpha_k in [0, 1] and weights w_k with sum_k w_k g(alpha_k) ~ integral_0^1 g(alpha) d alpha.

    method: "riemann_left" (alpha_k = k / n), "riemann_right" ((k + 1) / n), "riemann_middle" ((k + 1/2) / n),
    each with weights 1 / n; "riemann_trapezoid" (n points from 0 to 1 inclusive, weights 1 / (n - 1) with the
    two end weights halved); "gausslegendre" (numpy.polynomial.legendre.leggauss(n) mapped from [-1, 1] to
    [0, 1]). k = 0 .. n - 1. Returns (alphas [n_steps], weights [n_steps]), float64.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("integrated_gradients", "integration_rule", integration_rule)

# %% [markdown]
# ### Exercise 2.2 — integrated_gradients
# > Difficulty: 🔴🔴🔴🔴⚪ · Importance: 🔵🔵🔵🔵🔵 · ~40 min
#
# Same call shape as captum's `IntegratedGradients(forward_func).attribute(...)`. Build all scaled inputs
# at once, **step-major**: `[n_steps, batch, ...]` reshaped to `[n_steps * batch, ...]`, and repeat any
# additional forward argument (here: the attention mask) `n_steps` times along its first axis to match. One
# forward pass, one `torch.autograd.grad` of the summed target outputs (the examples do not interact, so the
# gradient of the sum is each example's own gradient). Multiply the weighted gradient sum by
# $(x - x')$. *Usual mistakes:* forgetting the $(x - x')$ factor (that is an *average gradient*, not an
# attribution), or averaging gradients instead of using the rule's weights.

# %% tags=["exercise"]
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
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("integrated_gradients", "integrated_gradients", integrated_gradients)

# %% [markdown]
# ### Exercise 2.3 — token_attributions
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min
#
# Sum over the embedding dimension — *signed*, so that completeness still holds per sentence. (Taking the
# norm, as some tutorials do, throws away the sign: you can no longer tell evidence *for* from evidence
# *against*.)

# %% tags=["exercise"]
def token_attributions(attributions: Tensor, attention_mask: Tensor) -> Tensor:
    """One score per token: the sum of its attributions over the embedding dimension (signed: completeness
    is preserved), 0 at padding. attributions: [batch, pos, dim]; attention_mask: [batch, pos]. Returns
    [batch, pos]."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("integrated_gradients", "token_attributions", token_attributions)

# %% [markdown]
# Completeness, measured: the convergence delta $\sum_i \mathrm{IG}_i - (F(x) - F(x'))$ against the number of
# steps, for each rule — first on a smooth function (a small tanh network with a softmax output), then on the
# classifier (20 held-out sentences; F = probability of the predicted class).

# %% tags=["experiment"]
torch.manual_seed(0)
smooth_net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3),
                                 torch.nn.Softmax(-1)).requires_grad_(False)
x_toy = torch.randn(8, 5) * 2
texts = [s["text"] for s in heldout[:20]]
enc = clf.encode(texts)
ids, mask = enc["input_ids"], enc["attention_mask"]
with torch.no_grad():
    embeds = clf.embed(ids)
    base = clf.embed(baseline_ids(ids, KEEP, clf.pad_id))
    pred = clf.probs_from_embeds(embeds, mask).argmax(-1)
steps = [4, 8, 16, 32, 64, 128, 300]
methods = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"]
problems = {"smooth tanh network": (smooth_net, x_toy, torch.zeros_like(x_toy), 0, ()),
            "sentiment-clf": (clf.probs_from_embeds, embeds, base, pred, (mask,))}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
deltas = {}
for ax, (name, (f, x_in, x_base, tgt, extra)) in zip(axes, problems.items(), strict=True):
    for m in methods:
        deltas[name, m] = [float(integrated_gradients(f, x_in, x_base, tgt, n, m, extra,
                                                      return_convergence_delta=True)[1].abs().mean()) for n in steps]
        ax.loglog(steps, [max(d, 1e-12) for d in deltas[name, m]], marker="o", label=m)
    ax.set_title(name)
    ax.set_xlabel("n_steps")
axes[0].set_ylabel("mean |convergence delta|")
axes[0].legend(fontsize=8)
plt.show()
for name in problems:
    print(f"{name}: mean |delta| at 64 steps", {m: f"{deltas[name, m][4]:.1e}" for m in methods})

# %% [markdown]
# On the smooth network the textbook picture appears: left and right sums converge like $1/n$ (each misses
# one end of the path), midpoint and trapezoid like $1/n^2$, and Gauss–Legendre reaches float32 precision
# with a few dozen points — the reason it is captum's default.
#
# On the classifier every rule converges at about the same rate, and Gauss–Legendre loses its edge. The
# reason is in the architecture: DistilBERT's classification head is `pre_classifier -> ReLU -> classifier`,
# so the gradient *jumps* wherever a ReLU unit switches on or off along the path, and rules built for smooth
# integrands lose their advantage. In practice: check the delta on *your* model (captum returns it with
# `return_convergence_delta=True`) rather than trusting a default step count.
#
# ## 3. Parity with captum
#
# Same model, same inputs, same baseline, same rule: the attributions must agree to float32 precision.
# Captum's `LayerIntegratedGradients` on the embedding layer starts from token ids and should agree too.

# %% tags=["experiment"]
parity = {}
for m in ["riemann_left", "riemann_right", "riemann_middle", "gausslegendre"]:
    ours = integrated_gradients(clf.probs_from_embeds, embeds, base, pred, 50, m, (mask,))
    theirs = IntegratedGradients(clf.probs_from_embeds).attribute(
        embeds, base, target=pred, additional_forward_args=(mask,), n_steps=50, method=m)
    parity[m] = float((ours - theirs).abs().max() / theirs.abs().max())
lig = LayerIntegratedGradients(lambda i, m: clf.probs(i, m), clf.word_embeddings).attribute(
    ids, baseline_ids(ids, KEEP, clf.pad_id), target=pred, additional_forward_args=(mask,), n_steps=50)
ours = integrated_gradients(clf.probs_from_embeds, embeds, base, pred, 50, "gausslegendre", (mask,))
parity["LayerIntegratedGradients (token ids)"] = float((ours - lig).abs().max() / lig.abs().max())
for k, v in parity.items():
    print(f"{k:40s} max |ours - captum| / max |captum| = {v:.1e}")

ig = IntegratedGradients(clf.probs_from_embeds)
best = {"ours": float("inf"), "captum": float("inf")}
for _ in range(5):
    for who in best:
        start = time.perf_counter()
        if who == "ours":
            integrated_gradients(clf.probs_from_embeds, embeds, base, pred, 50, "gausslegendre", (mask,))
        else:
            ig.attribute(embeds, base, target=pred, additional_forward_args=(mask,), n_steps=50)
        best[who] = min(best[who], time.perf_counter() - start)
print(f"time (best of 5): ours {best['ours'] * 1e3:.0f} ms, captum {best['captum'] * 1e3:.0f} ms "
      f"(ratio {best['ours'] / best['captum']:.2f})")

# %% [markdown]
# The trapezoid rule is missing from the parity table on purpose. Read captum's
# `approximation_methods.py`: for `riemann_trapezoid` it places $n$ points from 0 to 1 (spacing $1/(n-1)$)
# but gives them weights $1/n$ with halved ends, so its weights sum to $1 - 1/n$ instead of 1. On the smooth
# network, where the rule itself is accurate, the difference is plain: an error of order $1/n$ instead of
# $1/n^2$.

# %% tags=["experiment"]
toy_ig = IntegratedGradients(smooth_net)
for n in (10, 50, 300):
    _, ours_d = integrated_gradients(smooth_net, x_toy, torch.zeros_like(x_toy), 0, n, "riemann_trapezoid",
                                     return_convergence_delta=True)
    _, captum_d = toy_ig.attribute(x_toy, torch.zeros_like(x_toy), target=0, n_steps=n, method="riemann_trapezoid",
                                   return_convergence_delta=True)
    print(f"n_steps {n:3d}: mean |delta| ours {ours_d.abs().mean():.1e}, captum {captum_d.abs().mean():.1e}")

# %% [markdown]
# ## 4. What the attributions say, and what the baseline does to them
#
# A baseline is a *choice of reference*: IG explains $F(x) - F(x')$, the difference between the input and
# that reference. A good baseline is an input the model treats as "no evidence". `sentiment-clf` was trained
# with some sentences whose sentiment word (or every content word) was replaced by [PAD] or [MASK] and
# labelled 50/50, so for this model those baselines are neutral; the zero vector is not an embedding it ever
# saw. (A model trained without that step scored the all-[PAD] sentence NEGATIVE with probability 0.95 — and
# then IG had almost nothing to explain for any negative prediction: $F(x) - F(x') \approx 0$. Always print
# $F(x')$.) Kindermans et al. and Sturmfels et al. show the picture can change with the baseline; let us look.

# %% tags=["experiment"]
examples = [s["text"] for s in heldout if s["negated"]][:3] + [s["text"] for s in heldout if not s["negated"]][:3]
enc = clf.encode(examples)
e_ids, e_mask = enc["input_ids"], enc["attention_mask"]
with torch.no_grad():
    e_embeds = clf.embed(e_ids)
    e_pred = clf.probs_from_embeds(e_embeds, e_mask).argmax(-1)
baselines = {"[PAD]": clf.embed(baseline_ids(e_ids, KEEP, clf.pad_id)).detach(),
             "[MASK]": clf.embed(baseline_ids(e_ids, KEEP, clf.mask_id)).detach(),
             "zero": torch.zeros_like(e_embeds)}
scores = {}
for name, b in baselines.items():
    attr = integrated_gradients(clf.probs_from_embeds, e_embeds, b, e_pred, 50, "gausslegendre", (e_mask,))
    scores[name] = token_attributions(attr, e_mask).detach()
tokens = [clf.str_tokens(row[m.bool()]) for row, m in zip(e_ids, e_mask, strict=True)]
plot_token_attributions(tokens, [[scores[n][i][e_mask[i].bool()].cpu() for i in range(len(examples))]
                                 for n in baselines], row_labels=list(baselines),
                        titles=[f"{clf.labels[int(p)]}" for p in e_pred])
plt.show()

# %% [markdown]
# With [PAD] and [MASK] baselines the sentiment word carries most of the attribution in plain sentences. In
# negated sentences the **negator** often takes the credit: the pair "not marvelous" is the evidence for
# NEGATIVE, and with "marvelous" alone pointing the other way, IG gives the interaction's credit to "not"
# and a negative score to "marvelous". That is not a failure of the method: it answers "which token, moved
# from the baseline, changed the output", and for an interaction the answer is shared. The zero baseline
# also spreads attribution over words that carry no sentiment: it explains the difference from an input the
# model never saw.
#
# Now measure it: how often is the planted sentiment word the top-attributed token?

# %% tags=["experiment"]
def explain(sentences, baseline_id=clf.pad_id, model=clf, target=None, n_steps=50):
    enc = clf.encode([s["text"] for s in sentences])
    ids, mask = enc["input_ids"], enc["attention_mask"]
    with torch.no_grad():
        embeds = model.embed(ids)
        base = model.embed(baseline_ids(ids, KEEP, baseline_id))
        pred = model.probs_from_embeds(embeds, mask).argmax(-1) if target is None else target
    attr = integrated_gradients(model.probs_from_embeds, embeds, base, pred, n_steps, "gausslegendre", (mask,))
    return token_attributions(attr, mask).detach(), ids, mask, pred


sample = heldout[:200]
s_scores, s_ids, s_mask, s_pred = explain(sample)
planted = planted_positions(s_ids.cpu(), clf.tokenizer, [s["word"] for s in sample])
top = s_scores.masked_fill(s_mask == 0, float("-inf")).argmax(-1).cpu()
negated = torch.tensor([s["negated"] for s in sample])
labels = torch.tensor([s["label"] for s in sample])
print(f"accuracy on these sentences: {(s_pred.cpu() == labels).float().mean():.3f}")
negator_ids = torch.tensor(clf.tokenizer.convert_tokens_to_ids(list(NEGATORS)))
is_negator = torch.isin(s_ids.cpu(), negator_ids)
top_is_negator = is_negator.gather(1, top[:, None])[:, 0]
print(f"planted word top-attributed: {(top == planted).float().mean():.3f} of all sentences, "
      f"{(top == planted)[~negated].float().mean():.3f} without negation, "
      f"{(top == planted)[negated].float().mean():.3f} with negation (where the negator is first in "
      f"{top_is_negator[negated].float().mean():.3f})")

# %% [markdown]
# ### Exercise 4.1 — gradient_times_input
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵⚪⚪⚪ · ~10 min
#
# The cheapest attribution: the gradient at the input, times the input. It is IG with a zero baseline and a
# single step at $\alpha = 1$ — and it breaks completeness wherever the model saturates (a probability near 1
# has a near-zero gradient however decisive the evidence).

# %% tags=["exercise"]
def gradient_times_input(forward_func, inputs: Tensor, target, additional_forward_args: tuple = ()) -> Tensor:
    """The cheap alternative: input * dF/d input at the input itself (IG with a zero baseline and one step at
    alpha = 1). F = forward_func(inputs, *additional_forward_args)[i, target_i]. Returns a tensor like inputs."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("integrated_gradients", "gradient_times_input", gradient_times_input)

# %% tags=["experiment"]
enc = clf.encode([s["text"] for s in sample])
with torch.no_grad():
    g_embeds = clf.embed(enc["input_ids"])
gxi = token_attributions(gradient_times_input(clf.probs_from_embeds, g_embeds, s_pred, (enc["attention_mask"],)),
                         enc["attention_mask"]).detach()
top_gxi = gxi.masked_fill(enc["attention_mask"] == 0, float("-inf")).argmax(-1).cpu()
with torch.no_grad():
    probs = clf.probs_from_embeds(g_embeds, enc["attention_mask"])
    out = clf.model.distilbert(inputs_embeds=g_embeds, attention_mask=enc["attention_mask"], output_attentions=True)
cls_attention = out.attentions[-1][:, :, 0].mean(1)  # last layer, heads averaged, from [CLS]
top_att = cls_attention.masked_fill(enc["attention_mask"] == 0, float("-inf")).argmax(-1).cpu()
fig, ax = plt.subplots(figsize=(6.5, 3))
for i, (name, t) in enumerate((("integrated gradients", top), ("gradient x input", top_gxi),
                               ("attention from [CLS]", top_att))):
    hits = [float((t == planted)[~negated].float().mean()), float((t == planted)[negated].float().mean())]
    ax.bar([i - 0.2, i + 0.2], hits, width=0.38, color=["C0", "C1"])
    print(f"{name:22s} planted word first: {hits[0]:.3f} without negation, {hits[1]:.3f} with negation")
ax.set_xticks(range(3), ["integrated gradients", "gradient x input", "attention from [CLS]"])
ax.set_ylabel("planted word ranked first")
ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c in ("C0", "C1")],
          labels=["sentences without negation", "negated sentences"], fontsize=8)
plt.show()
with torch.no_grad():
    p_zero = clf.probs_from_embeds(torch.zeros_like(g_embeds), enc["attention_mask"])
gap = (probs - p_zero).gather(1, s_pred[:, None])[:, 0]
print(f"completeness, zero baseline: |sum of gradient x input - (F(x) - F(0))| averages "
      f"{(gxi.sum(-1) - gap).abs().mean():.3f} (|F(x) - F(0)| averages {gap.abs().mean():.3f})")

# %% [markdown]
# ## 5. Sanity checks
#
# Adebayo et al. proposed a test every attribution method should pass: if the model's weights are
# randomised, the explanation must change — an attribution that looks the same for a trained and a random
# network explains the *input*, not the model (edge detectors pass for saliency maps this way).
# We compare token rankings with Spearman's rank correlation.
#
# ### Exercise 5.1 — spearman
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵⚪⚪⚪ · ~10 min
#
# Ranks via `argsort().argsort()`; then the Pearson correlation of the ranks.

# %% tags=["exercise"]
def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman rank correlation of two 1-D tensors of equal length (no ties): the Pearson correlation of their
    ranks. Returns a float in [-1, 1]."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("integrated_gradients", "spearman", spearman)

# %% tags=["experiment"]
random_clf = reinitialised(clf, seed=0)
sub = sample[:100]
t_scores, t_ids, t_mask, t_pred = explain(sub)
r_scores, *_ = explain(sub, model=random_clf, target=t_pred)
corr = [spearman(t_scores[i][t_mask[i].bool()].cpu(), r_scores[i][t_mask[i].bool()].cpu()) for i in range(len(sub))]
fig, ax = plt.subplots(figsize=(5, 3))
ax.hist(corr, bins=20, range=(-1, 1))
ax.set_xlabel("Spearman correlation, trained vs randomised model")
ax.set_ylabel("sentences")
plt.show()
print(f"mean rank correlation {np.mean(corr):.3f}")

# %% [markdown]
# Near zero: IG's explanations depend on what the model learned. The second check asks whether the
# attributions are *faithful*: delete the tokens IG ranks highest and the model's confidence should fall
# faster than when deleting in random order.
#
# ### Exercise 5.2 — deletion_curve
# > Difficulty: 🔴🔴🔴⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~20 min

# %% tags=["exercise"]
def deletion_curve(prob_fn, input_ids: Tensor, scores: Tensor, deletable: Tensor, baseline_id: int) -> Tensor:
    """Delete (replace with baseline_id) the deletable tokens one at a time, highest score first, and record
    the model's probability after each deletion.

    prob_fn(ids [k, pos]) -> [k] probabilities of the class being explained. input_ids, scores, deletable:
    [pos] (deletable: bool, False for [CLS]/[SEP]/padding). Evaluate all versions in ONE call to prob_fn.
    Returns [n_deletable + 1]: the probability before any deletion, then after 1, 2, ... deletions.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("integrated_gradients", "deletion_curve", deletion_curve)

# %% tags=["experiment"]
gen = torch.Generator().manual_seed(0)
grid = np.linspace(0, 1, 11)
curves = {"IG order": [], "random order": []}
for i in range(60):
    n = int(t_mask[i].sum())  # the sentence alone, so the model never attends to trailing [PAD]
    row, row_scores, target = t_ids[i, :n], t_scores[i, :n], t_pred[i]
    deletable = ~torch.isin(row, torch.tensor(KEEP, device=row.device))

    def prob(v, target=target):
        with torch.no_grad():
            return clf.probs(v)[:, target]

    for name, order_scores in (("IG order", row_scores),
                               ("random order", torch.rand(len(row), generator=gen).to(row.device))):
        c = deletion_curve(prob, row, order_scores, deletable, clf.pad_id).cpu().numpy()
        curves[name].append(np.interp(grid, np.linspace(0, 1, len(c)), c))
fig, ax = plt.subplots(figsize=(5, 3.2))
for name, cs in curves.items():
    mean = np.mean(cs, 0)
    ax.plot(grid, mean, marker="o", label=f"{name}: AUC {np.trapezoid(mean, grid):.3f}")
ax.set_xlabel("fraction of tokens deleted (replaced by [PAD])")
ax.set_ylabel("probability of the predicted class")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Deleting in IG's order destroys the prediction after the first one or two tokens; random order takes
# most of the sentence. (Deletion replaces tokens with [PAD], the same "absence" the baseline used — a
# deletion curve with a different replacement would test a slightly different question.)
#
# ## 6. The real thing (online only)
#
# The same functions on DistilBERT fine-tuned on SST-2 — the model of the widely copied snippet. Offline,
# `load_classifier` fails within seconds and names the zoo model instead.

# %% tags=["experiment"]
try:
    sst2 = load_classifier("distilbert-base-uncased-finetuned-sst-2-english", device)
except Exception as e:  # noqa: BLE001
    print(f"hub not reachable, skipped: {str(e)[:200]}")
else:
    enc = sst2.encode(["a gripping , beautifully acted film", "the plot was not interesting at all"])
    keep = [sst2.tokenizer.cls_token_id, sst2.tokenizer.sep_token_id, sst2.pad_id]
    with torch.no_grad():
        emb = sst2.embed(enc["input_ids"])
        b = sst2.embed(baseline_ids(enc["input_ids"], keep, sst2.pad_id))
        p = sst2.probs_from_embeds(emb, enc["attention_mask"]).argmax(-1)
    a, d = integrated_gradients(sst2.probs_from_embeds, emb, b, p, 50, "gausslegendre", (enc["attention_mask"],),
                                return_convergence_delta=True)
    sc = token_attributions(a, enc["attention_mask"]).detach()
    for i in range(2):
        toks = sst2.str_tokens(enc["input_ids"][i])
        print(sst2.labels[int(p[i])], f"delta {float(d[i]):+.1e}",
              [(t, round(float(s), 3)) for t, s in zip(toks, sc[i], strict=True) if t != "[PAD]"])

# %% [markdown]
# ## 7. Interview drills
#
# **Drill 1.** Which statement is IG's *completeness* axiom?
# - **a.** Every feature with a non-zero gradient gets a non-zero attribution.
# - **b.** The attributions of an input sum to F(input) − F(baseline).
# - **c.** Two functionally equivalent networks give the same attributions.
# - **d.** Attributions are between −1 and 1.

# %% tags=["exercise"]
def drill_completeness() -> str:
    """Drill: which statement is IG's completeness axiom? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("integrated_gradients", "drill_completeness", drill_completeness)

# %% [markdown]
# **Drill 2.** Why does `IntegratedGradients(model).attribute(input_ids, baselines=pad_ids)` fail on a text
# classifier?
# - **a.** Captum does not support transformers.
# - **b.** The baseline must be all zeros.
# - **c.** 50 steps are too few for text.
# - **d.** Token ids are integer indices: points between two ids are not meaningful inputs and have no
#   gradient; interpolate the embeddings instead.

# %% tags=["exercise"]
def drill_snippet_fails() -> str:
    """Drill: why does IntegratedGradients on integer input_ids fail? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("integrated_gradients", "drill_snippet_fails", drill_snippet_fails)

# %% [markdown]
# **Drill 3.** What does the choice of baseline mean?
# - **a.** IG explains F(x) − F(baseline): the baseline is the reference "absence of evidence" the input is
#   compared with, so a different baseline answers a different question.
# - **b.** Nothing: with enough steps every baseline gives the same attributions.
# - **c.** It sets the learning rate of the attribution.
# - **d.** It is the class the attribution explains.

# %% tags=["exercise"]
def drill_baseline_meaning() -> str:
    """Drill: what does the choice of baseline mean? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("integrated_gradients", "drill_baseline_meaning", drill_baseline_meaning)

# %% [markdown]
# ## Where next
#
# `mechinterp reproduce integrated_gradients` reruns this chapter's measurements and prints them beside the
# papers' claims. Attribution asks which *inputs* matter; chapters 04–05 ask which *internal components*
# matter, by intervening on them (activation patching). Attribution patching, in chapter 04, is a gradient
# approximation of patching — a close cousin of what you built here.
