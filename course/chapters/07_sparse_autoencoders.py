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
# # Chapter 07 — Sparse autoencoders at full scale: train, evaluate, interpret, steer
#
# *Anchors: Bricken et al. (2023), "Towards Monosemanticity"; Templeton et al. (2024), "Scaling
# Monosemanticity" (feature clamping, the "Golden Gate" demo); Gao et al. (2024), "Scaling and evaluating
# sparse autoencoders" (TopK, AuxK); Bussmann, Leask & Nanda (2024), "BatchTopK Sparse Autoencoders";
# Rajamanoharan et al. (2024), "Jumping Ahead: Improving Reconstruction Fidelity with JumpReLU Sparse
# Autoencoders"; SAELens's training and evaluation conventions.*
#
# Chapter 01 showed that a model can store more features than it has dimensions by superposing them. A
# **sparse autoencoder** (SAE) tries to undo that: it maps an activation $x \in \mathbb{R}^d$ to a much wider,
# sparse code $a \in \mathbb{R}^F$ ($F \gg d$, few non-zeros) and back,
#
# $$a = \sigma\big(W_\text{enc}^\top (x - b_\text{dec}) + b_\text{enc}\big), \qquad
#   \hat x = W_\text{dec}^\top a + b_\text{dec},$$
#
# so that each latent (a row of $W_\text{dec}$, a *dictionary direction*) hopefully stands for one
# human-meaningful feature. The whole game is the trade-off between **reconstruction** (is $\hat x$ close to
# $x$, and does the model still work with $\hat x$ in place of $x$?) and **sparsity** (how many latents fire,
# $L_0$).
#
# 1. warm-up with ground truth: recover a known dictionary from synthetic superposed data (MMCS);
# 2. the activation functions: TopK, BatchTopK, JumpReLU (with its straight-through gradient);
# 3. the losses and the training tricks, each for a reason: decoder-norm-weighted L1, AuxK, unit-norm
#    decoder rows, geometric-median initialisation, activation scaling;
# 4. the real thing: an activation store over `zoo/text-lm` and one training API at three scales;
# 5. evaluation: FVE, $L_0$, dead / dense latents, CE-loss recovered (with the baselines that keep it
#    honest), shrinkage;
# 6. interpretation: top-activating contexts, logit effects, a feature dashboard;
# 7. steering with a feature's decoder direction, and what it costs.
#
# Model: `zoo/text-lm`, a 4-layer GPT-2-architecture model trained on public-domain and permissively licensed
# English (a Bible translation, WordNet glosses, fortune-cookie quotes). Budget: about 3 hours; the notebook
# runs in about three minutes on 2 idle laptop CPU cores (most of it training the SAE once — the result is
# cached); on a laptop busy with other work it measured 21 minutes.

# %% tags=["setup"]
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from mechinterp.autograder import check
from mechinterp.course.toolkit import get_device, load_model
from mechinterp.course.toolkit.model import HookedModel
from mechinterp.course.toolkit.sae import (PRESETS, SYNTHETIC_PRESETS, ActivationStore, feature_dashboard,
                                           latent_survey, promoted_tokens, sample_text, synthetic_dictionary_data,
                                           top_contexts, train_or_load, train_sae)
from mechinterp.course.toolkit.zoo import heldout_ids, sae_sample_ids

device = get_device()
torch.manual_seed(0)

# %% [markdown]
# ## 1. Warm-up: a dictionary we know
#
# Before trusting an SAE on a real model, train one where the answer is known. We draw $n = 256$ true
# feature directions in $d = 64$ dimensions, make each data point a sparse non-negative combination of them
# (each feature present with probability 1.5%, magnitude uniform on [0, 1] — chapter 01's generator), and ask
# the SAE to find the directions. The score is the **mean max cosine similarity** (MMCS): for each true
# feature, the best cosine with any learned direction, averaged.
#
# ### Exercise 1.1 — mmcs
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~10 min

# %% tags=["exercise"]
def mmcs(learned: Tensor, true: Tensor) -> float:
    """Mean max cosine similarity: for every TRUE feature (a row of `true`, [n_true, d]), the largest cosine
    similarity with any learned dictionary direction (a row of `learned`, [n_learned, d]); the mean over the
    true features. 1 = every true feature has a perfect match. Row norms do not matter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "mmcs", mmcs)

# %% tags=["experiment"]
data, true_dirs = synthetic_dictionary_data(n_true=256, d=64, p=0.015, n=200_000, seed=0)
synthetic = ActivationStore.from_tensor(data)
warmup = {}
for arch, cfg in SYNTHETIC_PRESETS.items():  # 512 latents; per-architecture settings (print them to see)
    start = time.perf_counter()
    sae, history = train_sae(cfg, synthetic, device, progress=False)
    warmup[arch] = mmcs(sae.W_dec.detach().cpu(), true_dirs)
    print(f"{arch:5s}: MMCS {warmup[arch]:.3f}, final L0 {history[-1]['l0']:.1f}, FVE {history[-1]['fve']:.3f} "
          f"({time.perf_counter() - start:.1f} s)")
random_dirs = torch.randn(512, 64, generator=torch.Generator().manual_seed(123))
print(f"random directions: MMCS {mmcs(random_dirs, true_dirs):.3f}")

# %% [markdown]
# A random dictionary of the same size scores far lower: the SAEs found the true directions. (The true
# average number of active features is $0.015 \times 256 \approx 3.8$, which is why $k = 4$ suits TopK.)
# The ReLU SAE needed its own settings: with the L1 coefficient ramped up over the first 20% of training and
# small batches (many steps), it recovers the dictionary too — with a batch of 1,024 and the same number of
# samples it reached only MMCS 0.72-0.78 in our runs, and with a coefficient of 10 the code collapsed ($L_0$
# 0.7, FVE below 0). Sparsity through a penalty
# is a hyperparameter hunt; TopK sets it directly.
#
# ## 2. Activation functions
#
# A plain ReLU SAE needs a penalty to be sparse, and the penalty also *shrinks* the activations it keeps.
# Three newer activations control sparsity directly.
#
# ### Exercise 2.1 — topk_activation
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~10 min
#
# TopK (Gao et al.) keeps the $k$ largest pre-activations of each token: $L_0 = k$ exactly, no penalty, no
# shrinkage from an L1 term. `Tensor.topk` and `Tensor.scatter` do the work.

# %% tags=["exercise"]
def topk_activation(pre: Tensor, k: int) -> Tensor:
    """TopK activation (Gao et al. 2024): in every row of `pre` [..., width], keep the k largest
    pre-activations, pass them through a ReLU, and set all others to 0. Same shape as `pre`."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "topk_activation", topk_activation)

# %% [markdown]
# ### Exercise 2.2 — batchtopk_activation
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~15 min
#
# BatchTopK (Bussmann et al.) keeps the top $k \times B$ activations of the whole batch of $B$ tokens: an easy
# token may use fewer latents, a hard one more, with the same average. At inference there is no batch to
# rank, so a global threshold is used — estimated while training as a running mean of the smallest kept value.

# %% tags=["exercise"]
def batchtopk_activation(pre: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """BatchTopK (Bussmann et al. 2024), training mode: over the WHOLE batch `pre` [batch, width], keep the
    k * batch largest ReLU'd pre-activations and set the rest to 0 (a row may keep more or fewer than k).
    Returns (acts, threshold) where threshold is the smallest kept activation that is > 0 (a 0-dim tensor; the
    value used as a global threshold at inference), or 0 if nothing positive was kept."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "batchtopk_activation", batchtopk_activation)

# %% [markdown]
# ### Exercise 2.3 — jumprelu
# > Difficulty: 🔴🔴🔴🔴⚪ · Importance: 🔵🔵🔵⚪⚪ · ~30 min
#
# JumpReLU (Rajamanoharan et al.) learns a threshold $\theta_i$ per latent: $a_i = z_i\,H(z_i - \theta_i)$.
# Below the threshold the output is 0; above it, the pre-activation passes unshrunk. The catch: the derivative
# with respect to $\theta$ is 0 almost everywhere (a step function), so $\theta$ would never learn. The paper's
# fix is a **straight-through estimator**: in the backward pass, pretend the jump is smeared over a window of
# width $\varepsilon$ (the *bandwidth*) using the rectangle kernel $K(u) = \mathbb{1}[|u| < \tfrac12]$:
#
# $$\frac{\partial a_i}{\partial \theta_i} \approx -\frac{\theta_i}{\varepsilon}\,K\!\left(\frac{z_i -
#   \theta_i}{\varepsilon}\right).$$
#
# Write it as a `torch.autograd.Function` (a `forward` and a `backward` staticmethod).

# %% tags=["exercise"]
def jumprelu(pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
    """JumpReLU (Rajamanoharan et al. 2024): pre * H(pre - threshold), threshold [width] per latent.
    Gradients: w.r.t. pre, H(pre - threshold) (exact); w.r.t. threshold, the straight-through estimate
    -(threshold / bandwidth) * K((pre - threshold) / bandwidth) times the incoming gradient, summed over the
    batch, with the rectangle kernel K(u) = 1 if |u| < 1/2 else 0. (The true gradient w.r.t. the threshold is 0
    almost everywhere, so without the estimate the threshold never learns.)"""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "jumprelu", jumprelu)

# %% [markdown]
# ## 3. Losses and the tricks that make training work
#
# ### Exercise 3.1 — l1_penalty
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min
#
# For a ReLU SAE the sparsity term is an L1 penalty on the activations. Weighted by each latent's decoder norm
# it becomes invariant to the trade "halve the activation, double the decoder row" — otherwise the optimiser
# makes the penalty vanish that way instead of becoming sparse.

# %% tags=["exercise"]
def l1_penalty(acts: Tensor, W_dec: Tensor) -> Tensor:
    """The decoder-norm-weighted L1 penalty (Anthropic's April 2024 update): sum over latents of
    acts * ||W_dec[latent]|| (W_dec: [width, d_in], one row per latent), averaged over the batch. A 0-dim
    tensor. Weighting by the decoder norm stops the SAE from shrinking acts by growing the decoder."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "l1_penalty", l1_penalty)

# %% [markdown]
# ### Exercise 3.2 — auxk_loss
# > Difficulty: 🔴🔴🔴⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~20 min
#
# A **dead** latent has not fired for a long time (here: 250,000 tokens). It gets no gradient from the
# reconstruction loss, so it stays dead — wasted capacity. Gao et al.'s AuxK loss gives dead latents a job:
# reconstruct the *residual error* of the main reconstruction using only the top-$k_\text{aux}$ dead latents.
# Gradients then flow into them, and those that can help come back to life.

# %% tags=["exercise"]
def auxk_loss(x: Tensor, recon: Tensor, pre: Tensor, dead: Tensor, W_dec: Tensor, k_aux: int) -> Tensor:
    """AuxK (Gao et al. 2024): reconstruct the residual error e = x - recon (no gradient through e) using only
    the DEAD latents (`dead`: bool [width]): in each row keep the top-min(k_aux, n_dead) pre-activations among
    dead latents, ReLU them, decode with W_dec [width, d_in] WITHOUT the decoder bias. Return the squared error
    ||e_hat - e||^2 summed over d_in and averaged over the batch (a 0-dim tensor); exactly 0 if no latent is dead."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "auxk_loss", auxk_loss)

# %% [markdown]
# ### Exercise 3.3 — remove_parallel_grad
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵⚪⚪⚪ · ~10 min
#
# Decoder rows are renormalised to unit length after every step (so activations, not decoder norms, carry the
# scale). The part of the gradient that points *along* a row would only change its length, which the
# renormalisation then undoes — wasting the step and confusing Adam's moment estimates. Remove it first.

# %% tags=["exercise"]
def remove_parallel_grad(W_dec: Tensor, grad: Tensor) -> Tensor:
    """Decoder rows (W_dec [width, d_in]) are kept at unit norm. Remove from `grad` (same shape) each row's
    component parallel to that row: g - (g . w) w, with w the unit-norm row. Returns a new tensor."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "remove_parallel_grad", remove_parallel_grad)

# %% [markdown]
# ### Exercise 3.4 — geometric_median
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵⚪⚪⚪ · ~10 min
#
# The decoder bias $b_\text{dec}$ is subtracted before encoding: it should sit at the "centre" of the data.
# The geometric median is a centre that a few huge activations cannot drag away (residual streams have such
# outliers). Weiszfeld's algorithm: a weighted mean, re-weighted by inverse distance, repeated.

# %% tags=["exercise"]
def geometric_median(points: Tensor, n_iter: int = 50) -> Tensor:
    """Weiszfeld's algorithm for the geometric median of `points` [n, d] (the point minimising the SUM of
    Euclidean distances): start at the mean; repeat n_iter times: weights w_i = 1 / max(||p_i - m||, 1e-8),
    m = sum w_i p_i / sum w_i. Returns [d]. (SAE training initialises the decoder bias with it.)"""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "geometric_median", geometric_median)

# %% [markdown]
# The toolkit's trainer (`mechinterp.course.toolkit.sae`) uses exactly these pieces, plus **activation
# scaling**: inputs are multiplied by one constant so that $\mathbb{E}\lVert x\rVert = \sqrt{d}$, which lets the
# same learning rate and penalty work for any model and layer. Read `SparseAutoencoder.losses` and
# `train_sae` now: every line should look familiar.
#
# ## 4. The real thing: an SAE on text-lm
#
# An **activation store** runs the model once over the training text, writes the activations of one hook
# point to a memory-mapped file on disk, and then serves shuffled batches for as many epochs as needed —
# training never waits for the language model again. Our store: 4,096 windows of 128 tokens (524k tokens) of
# `text-lm`'s training text, the residual stream entering block 2 (the middle of the 4-layer model).

# %% tags=["experiment"]
model = load_model("zoo/text-lm", device)
cfg = PRESETS["cpu-small"]
start = time.perf_counter()
store = ActivationStore(model, cfg.hook, sae_sample_ids())
print(f"{len(store):,} activations of {cfg.hook} ({store.path.stat().st_size / 2**20:.0f} MB on disk) "
      f"in {time.perf_counter() - start:.1f} s")
print(cfg)
sae, history, train_s = train_or_load(cfg, store, device)
print(f"trained in {train_s:.0f} s" if train_s else "read from the cache (delete ~/.cache/mechinterp/sae to retrain)")
fig, axes = plt.subplots(1, 3, figsize=(13, 3))
tokens_seen = [h["tokens"] / 1e6 for h in history]
for ax, key in zip(axes, ("fve", "l0", "dead_fraction"), strict=True):
    ax.plot(tokens_seen, [h[key] for h in history])
    ax.set_xlabel("training tokens (millions)")
    ax.set_title(key, fontsize=9)
plt.show()

# %% [markdown]
# ## 5. Evaluation
#
# Measure on held-out text (never seen by the language model or the SAE).
#
# ### Exercise 5.1 — fve
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~5 min

# %% tags=["exercise"]
def fve(x: Tensor, recon: Tensor) -> float:
    """Fraction of variance explained: 1 - sum ||x - recon||^2 / sum ||x - mean(x)||^2, where mean(x) is the
    mean over the batch (rows) of x [n, d]. Predicting that mean everywhere scores 0; a perfect
    reconstruction 1."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "fve", fve)

# %% [markdown]
# ### Exercise 5.2 — sparsity_stats
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~10 min

# %% tags=["exercise"]
def sparsity_stats(acts: Tensor, dense_threshold: float = 0.1) -> dict:
    """Sparsity of SAE activations `acts` [n_tokens, width]. Returns a dict:
    "l0": mean number of non-zero latents per token (float); "density": [width] fraction of tokens on which
    each latent is non-zero; "dead_fraction": fraction of latents that never fire (density 0);
    "dense_fraction": fraction of latents with density > dense_threshold."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "sparsity_stats", sparsity_stats)

# %% tags=["experiment"]
held = heldout_ids("text-lm")
eval_tokens = held[: 160 * 128].view(160, 128).to(device)
with torch.no_grad():
    x = model.activation_at(eval_tokens, cfg.hook).flatten(0, 1)  # the forward pass stops at the hook
    recon, acts = sae(x)
stats = sparsity_stats(acts.cpu())
shrinkage = float(recon.norm(dim=-1).mean() / x.norm(dim=-1).mean())
print(f"held-out FVE {fve(x, recon):.3f}; L0 {stats['l0']:.1f}; dead {stats['dead_fraction']:.1%}; "
      f"dense (> 10% of tokens) {stats['dense_fraction']:.1%}; ||recon|| / ||x|| = {shrinkage:.3f}")
plt.figure(figsize=(6, 3))
plt.hist(torch.log10(stats["density"].clamp_min(1e-6)).numpy(), bins=50)
plt.xlabel("log10(feature density)")
plt.ylabel("latents")
plt.title("how often each latent fires (held-out tokens; -6 = never)", fontsize=9)
plt.show()

# %% [markdown]
# FVE says how much of the *vector* is reconstructed. But the model may depend on a small part of the
# vector that the SAE drops (or not care about a large part it keeps). The test that matters: **splice** the
# SAE into the forward pass and measure the language-model loss.
#
# ### Exercise 5.3 — spliced_ce_loss
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~15 min

# %% tags=["exercise"]
def spliced_ce_loss(model: HookedModel, tokens: Tensor, hook: str, replace) -> float:
    """Mean next-token cross-entropy (nats) of `model` on `tokens` [batch, pos] when the activation at `hook`
    is replaced by replace(activation) (e.g. the SAE's reconstruction, zeros, or the activation itself).
    Predict token t + 1 from position t: average over batch * (pos - 1) predictions."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "spliced_ce_loss", spliced_ce_loss)

# %% [markdown]
# ### Exercise 5.4 — ce_recovered
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min

# %% tags=["exercise"]
def ce_recovered(ce_clean: float, ce_spliced: float, ce_ablated: float) -> float:
    """Fraction of the loss increase an ablation causes that the SAE recovers:
    (ce_ablated - ce_spliced) / (ce_ablated - ce_clean). 1 = the SAE costs nothing; 0 = as bad as the ablation."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "ce_recovered", ce_recovered)

# %% tags=["experiment"]
mean_act = x.mean(0)
with torch.no_grad():
    losses = {
        "clean": spliced_ce_loss(model, eval_tokens, cfg.hook, lambda a: a),
        "SAE": spliced_ce_loss(model, eval_tokens, cfg.hook, lambda a: sae(a)[0]),
        "zero-ablation": spliced_ce_loss(model, eval_tokens, cfg.hook, torch.zeros_like),
        "mean-ablation": spliced_ce_loss(model, eval_tokens, cfg.hook, lambda a: mean_act.expand_as(a)),
    }
for name, value in losses.items():
    print(f"{name:14s} CE {value:.3f} nats")
print(f"CE recovered vs zero-ablation {ce_recovered(losses['clean'], losses['SAE'], losses['zero-ablation']):.3f}; "
      f"vs mean-ablation {ce_recovered(losses['clean'], losses['SAE'], losses['mean-ablation']):.3f}; "
      f"ΔCE = {losses['SAE'] - losses['clean']:.3f} nats")

# %% [markdown]
# Read the three numbers together. CE-recovered is a ratio whose denominator is the damage of the
# ablation — and zeroing a residual stream is catastrophic, so even a poor SAE "recovers" most of it. That is
# why the absolute cost **ΔCE in nats** and the mean-ablation baseline are printed beside it. For scale:
# SAELens's GPT-2-small residual SAEs reach $L_0 \approx 40$–60 and FVE ≈ 0.8–0.9.
#
# ### The architectures side by side
#
# Same store, same width, a sixth of the training tokens each (400k, so the table costs about a minute —
and it is cached too):

# %% tags=["experiment"]
short = 400_000
# TopK and BatchTopK use the preset; the penalty-based ReLU and JumpReLU get smaller batches (4x the steps for the
# same tokens) and lr 1e-3: they learn their sparsity through a penalty, which needs more, smaller steps
ARCH_TABLE = {"topk": {}, "batchtopk": {},
              "jumprelu": {"l0_coeff": 3.0, "jump_init_threshold": 0.5, "jump_bandwidth": 0.1, "batch_size": 1024,
                           "lr": 1e-3},
              "relu": {"l1_coeff": 3.0, "l1_warmup_frac": 0.2, "batch_size": 1024, "lr": 1e-3}}
rows = []
for arch, extra in ARCH_TABLE.items():
    c = replace(cfg, arch=arch, n_tokens=short, **extra)
    s, h, secs = train_or_load(c, store, device, progress=False)
    with torch.no_grad():
        r, a = s(x)
    st = sparsity_stats(a.cpu())
    rows.append((arch, fve(x, r), st["l0"], st["dead_fraction"], secs))
print(f"{'arch':10s} {'FVE':>6s} {'L0':>7s} {'dead':>6s} {'train s':>8s}   (0 s = read from the cache)")
for arch, f, l0, dead, secs in rows:
    print(f"{arch:10s} {f:6.3f} {l0:7.1f} {dead:6.1%} {secs:8.1f}")
plt.figure(figsize=(5, 3.2))
for arch, f, l0, _, _ in rows:
    plt.scatter(l0, f, s=40)
    plt.annotate(arch, (l0, f), textcoords="offset points", xytext=(5, 3), fontsize=8)
plt.xlabel("L0 (latents per token)")
plt.ylabel("held-out FVE")
plt.title("the sparsity / reconstruction trade-off, 400k training tokens each", fontsize=9)
plt.show()

# %% [markdown]
# ## 6. Interpretation
#
# A latent is only useful if we can say what it means. Two views, one from each side of the SAE:
# - **input side**: the contexts where it fires most strongly (top-activating examples);
# - **output side**: its **logit effects**, $W_\text{dec}[i] \cdot W_U$ — which next tokens adding this
#   direction to the residual stream promotes (ignoring the later layers and the final LayerNorm's scale:
#   a first look, not a proof). We list only tokens that occur at least 20 times in the held-out text: rare
#   byte-level tokens have large, meaningless logit effects.

# %% tags=["experiment"]
windows = held[: 400 * 128].view(400, 128)
survey = latent_survey(model, sae, cfg.hook, windows)
window_acts, density, effects, candidates = (survey[k] for k in ("window_acts", "density", "effects", "candidates"))
print(f"{len(candidates)} latents fire on 0.1-2% of held-out tokens; four of them at random:")
for latent in candidates[torch.randperm(len(candidates), generator=torch.Generator().manual_seed(0))[:4]].tolist():
    print(f"latent {latent} (fires on {density[latent]:.2%} of tokens)")
    for text in top_contexts(window_acts, latent, windows, model.tokenizer, k=4):
        print("   ", text)
    print("    promotes:", model.tokenizer.convert_ids_to_tokens(promoted_tokens(survey, latent, 8).tolist()))

# %% [markdown]
# A dashboard puts both views on one page (the activation histogram, the logit effects, the top contexts
# with the firing token marked):

# %% tags=["experiment"]
steer_latent = survey["steer"]  # the candidate with the largest logit effect: chosen by rule, not by hand
feature_dashboard(window_acts, steer_latent, windows, model.tokenizer, effects, survey["common"])
plt.show()

# %% [markdown]
# ## 7. Steering with a feature
#
# If a latent's decoder direction is what later layers *read*, adding it to the residual stream should make
# the model behave as if the feature were present — Templeton et al. clamped a "Golden Gate Bridge" feature
# in Claude 3 Sonnet and the model talked about the bridge. We do it on `text-lm` with the latent whose logit
# effect on a common token is the strongest (chosen above, by rule, not by hand): add `strength x` its
# decoder direction at every position while sampling, and count how often the tokens it promotes appear.
#
# ### Exercise 7.1 — steering_hook
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~5 min

# %% tags=["exercise"]
def steering_hook(direction: Tensor, strength: float):
    """A hook (act, hook_point) -> new act that adds strength * direction ([d_model], used as given, not
    normalised) to the activation at EVERY position of every row, without modifying `act` in place."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "steering_hook", steering_hook)

# %% tags=["experiment"]
direction = (sae.W_dec[steer_latent] / sae.scale).detach()
typical = float(window_acts[..., steer_latent][window_acts[..., steer_latent] > 0].mean())
top_tokens = promoted_tokens(survey, steer_latent)
prompts = held[20_000 : 20_000 + 48 * 8].view(48, 8).to(device)
print("latent", steer_latent, "promotes", model.tokenizer.convert_ids_to_tokens(top_tokens.tolist()))
results = {}
for mult in (0, 2, 4, 8):
    strength = mult * typical
    text, freq, ppl = sample_text(model, prompts, 24, cfg.hook, steering_hook(direction, strength), top_tokens,
                                  seed=0)
    results[mult] = (freq, ppl)
    print(f"strength {mult} x typical activation: top-token frequency {freq:.3%}, perplexity under the "
          f"unsteered model {ppl:.1f}")
    print("    e.g.", repr(text[0][:150]))
plt.figure(figsize=(5, 3))
plt.plot(list(results), [f for f, _ in results.values()], "o-")
plt.xlabel("steering strength (x typical activation)")
plt.ylabel("frequency of the latent's top tokens")
plt.show()

# %% [markdown]
# The feature's tokens become more frequent as the strength grows — and the text gets less fluent
# (perplexity under the unsteered model rises): steering shows that later layers *use* the direction, at a
# cost. It does not show that the latent is the model's only representation of the concept, nor that the
# latent means exactly what its top tokens suggest.
#
# ## 8. Scale: one API, three configurations
#
# The trainer you just used is the same code at every scale:
# - `cpu-small` (this notebook): `text-lm`, width 1,280 (8x), TopK $k=32$, batch 4,096, 2.4 M tokens;
# - `gpu`: GPT-2 small, residual stream before block 8 (like SAELens's `res-jb` SAEs), 24,576 latents, on one
#   CUDA device: `python -m mechinterp.course.toolkit.sae --preset gpu` (needs the hub for GPT-2's weights);
# - data-parallel: `torchrun --nproc_per_node 2 -m mechinterp.course.toolkit.sae --preset cpu-small` runs
#   two processes with PyTorch DDP (gloo on CPU, nccl on GPUs). Each process takes half of every global batch,
#   DDP averages the gradients, and the dead-latent counters are all-reduced, so the loss trajectory matches
#   the single-process one (the course's tests check this).
#
# ## 9. Interview drills
#
# **Drill 1.** Why is a TopK SAE's $L_0$ exactly $k$?
# - **a.** Its L1 penalty is tuned to give $k$.
# - **b.** The activation keeps exactly $k$ latents per token by construction (if at least $k$ pre-activations
#   are positive), so no penalty is needed.
# - **c.** Dead latents are removed until $k$ remain.
# - **d.** It thresholds each pre-activation at a learned value.

# %% tags=["exercise"]
def drill_topk_l0() -> str:
    """Drill: why is a TopK SAE's L0 exactly k? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "drill_topk_l0", drill_topk_l0)

# %% [markdown]
# **Drill 2.** What does CE-loss recovered measure that FVE misses?
# - **a.** How sparse the code is.
# - **b.** The reconstruction error in the residual stream's units.
# - **c.** Whether the part of the activation the SAE fails to reconstruct matters *to the model's output*.
# - **d.** The damage of zero-ablation.

# %% tags=["exercise"]
def drill_ce_vs_fve() -> str:
    """Drill: what does CE-loss recovered measure that FVE misses? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "drill_ce_vs_fve", drill_ce_vs_fve)

# %% [markdown]
# **Drill 3.** 20% of your SAE's latents never fire. Which change is designed to revive them?
# - **a.** An auxiliary loss that trains dead latents to reconstruct the residual error (AuxK), or
#   resampling them towards badly reconstructed inputs.
# - **b.** A higher learning rate.
# - **c.** A wider dictionary.
# - **d.** A larger L1 coefficient.

# %% tags=["exercise"]
def drill_dead_latents() -> str:
    """Drill: which change revives dead latents? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "drill_dead_latents", drill_dead_latents)

# %% [markdown]
# **Drill 4.** Clamping a feature high makes the model talk about its topic. What does that show?
# - **a.** The feature is the model's only representation of the topic.
# - **b.** The feature fires only on that topic.
# - **c.** Steering is free: fluency is unaffected.
# - **d.** The decoder direction is causally used downstream to produce topic-related output.

# %% tags=["exercise"]
def drill_clamping() -> str:
    """Drill: what does clamping a feature and seeing its topic in the generations show? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("sparse_autoencoders", "drill_clamping", drill_clamping)

# %% [markdown]
# ## Where next
#
# `mechinterp reproduce sparse_autoencoders` reruns this chapter's measurements and prints them beside the
# papers'. With a GPU and the hub, train the `gpu` preset on GPT-2 small and compare your $L_0$ / FVE with
# SAELens's published SAEs; `bench/` compares this trainer's speed with SAELens on identical activations.
