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
# # Chapter 01 — Toy models of superposition
#
# *Anchor: Elhage et al. (2022), "Toy Models of Superposition", Anthropic.*
#
# A neural network layer with $m$ neurons can represent far more than $m$ features, if the features are
# **sparse**: it stores them as *almost*-orthogonal directions and tolerates a little interference. This
# is **superposition**, and it is the reason individual neurons are so often polysemantic — and the reason
# later chapters of this course train sparse autoencoders to pull features back out.
#
# In this chapter you rebuild the paper's smallest experiment from scratch and watch superposition appear:
#
# 1. a generator of synthetic sparse features, with importance weights;
# 2. the toy model $\hat x = \mathrm{ReLU}(W^\top W x + b)$ and its linear twin;
# 3. a training loop that trains *many* toy models at once (one per sparsity or seed);
# 4. the geometry: feature dimensionality $D_i$ and a superposition measure;
# 5. the phase diagram for 2 features in 1 dimension.
#
# Every exercise has a check cell underneath it: run it, and it either passes or tells you what is most
# likely wrong. Budget: about 2 hours. Everything runs in about a minute on 2 idle laptop CPU cores
# (measured; a laptop busy with other work can take several times longer).

# %% tags=["setup"]
import math

import matplotlib.pyplot as plt
import torch
from torch import Tensor
from tqdm import tqdm

from mechinterp.autograder import check
from mechinterp.course.toolkit import get_device, plotting

device = get_device()  # CUDA when present, else CPU; everything here is small enough for a CPU
NOT_REPRESENTED, DEDICATED, SUPERPOSED = 0, 1, 2
print("running on", device)

# %% [markdown]
# ## 1. Sparse features with importances
#
# The paper's data are $n$ synthetic features $x_i \in [0, 1]$. Each feature is **present** with
# probability $p$ (its *sparsity* is $S = 1 - p$) and then takes a value uniform on $[0, 1]$; otherwise
# it is exactly $0$. Features differ in **importance** $I_i$: how much the loss cares about
# reconstructing them. The paper uses geometric decay, $I_i = r^i$.
#
# We will train many small models at once, so every tensor carries an *instance* axis right after the
# batch axis: features are `[batch, n_instances, n_features]`, importances and probabilities are
# `[n_instances, n_features]`. Training 100 tiny models as one batched model costs about as much as
# training one.
#
# ### Exercise 1.1 — feature_importance
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵⚪⚪⚪ · ~5 min
#
# Return $I_i = \text{decay}^i$ for every instance, shape `[n_instances, n_features]`, feature 0 the most
# important ($I_0 = 1$). *Usual mistake:* starting the powers at 1.

# %% tags=["exercise"]
def feature_importance(n_instances: int, n_features: int, decay: float) -> Tensor:
    """Importance I_i = decay ** i of feature i (feature 0 is the most important, I_0 = 1).

    Every instance gets the same importances.
    Returns a float32 tensor of shape [n_instances, n_features].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("superposition", "feature_importance", feature_importance)

# %% [markdown]
# ### Exercise 1.2 — sample_features
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~10 min
#
# Draw a batch. Two independent random draws per entry: one decides *whether* the feature is present
# (`torch.rand(...) < feature_probability`, broadcast over the batch), one gives its value. Pass the
# `generator` to every random call so that training is reproducible.
# *Usual mistakes:* treating `feature_probability` as the sparsity; reusing one random draw for both
# presence and value (then every present value is below $p$).

# %% tags=["exercise"]
def sample_features(
    batch_size: int, feature_probability: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Draw a batch of synthetic sparse features x in [0, 1].

    Each feature of each instance is present independently with probability
    feature_probability[k, i] (its sparsity is S = 1 - p); a present feature is uniform on [0, 1],
    an absent one is exactly 0.
    feature_probability: [n_instances, n_features]. generator: optional torch.Generator on the
    same device as feature_probability (pass it to every random call).
    Returns [batch_size, n_instances, n_features] on feature_probability's device.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("superposition", "sample_features", sample_features)

# %% [markdown]
# ## 2. The toy model
#
# The model compresses $x \in \mathbb{R}^n$ into $h = Wx \in \mathbb{R}^m$ ($m < n$) and tries to
# reconstruct it with the *same* matrix: $\hat x = \mathrm{ReLU}(W^\top h + b)$. Column $W_i$ of
# $W \in \mathbb{R}^{m \times n}$ is the direction feature $i$ gets in the hidden space, so
# $(W^\top W)_{ij} = W_i \cdot W_j$: the diagonal says how strongly each feature is represented, the
# off-diagonal how much features **interfere**.
#
# Why the ReLU matters: if feature $j$ is active and shares a direction with feature $i$, the
# reconstruction of $x_i$ picks up $W_i \cdot W_j \, x_j$ of junk. A negative bias followed by a ReLU can
# throw small junk away — but only if it is rare that the *true* $x_i$ is small and positive at the same
# time. Sparse features make interference rare, and the ReLU makes it cheap. The linear model has no
# such escape hatch.
#
# ### Exercise 2.1 — toy_forward
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~10 min
#
# Batched over instances: `W` is `[n_instances, n_hidden, n_features]`. `torch.einsum` makes the shapes
# explicit, e.g. `torch.einsum("khf,bkf->bkh", W, x)`. *Usual mistakes:* adding the bias after the ReLU;
# a ReLU on the hidden layer (the paper's hidden layer is linear).

# %% tags=["exercise"]
def toy_forward(W: Tensor, b: Tensor, x: Tensor, activation: str = "relu") -> Tensor:
    """The toy model x_hat = ReLU(W^T W x + b), for every instance at once.

    W: [n_instances, n_hidden, n_features]; b: [n_instances, n_features];
    x: [batch, n_instances, n_features].
    activation: "relu" (the paper's ReLU-output model) or "linear" (x_hat = W^T W x + b).
    Returns x_hat: [batch, n_instances, n_features].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("superposition", "toy_forward", toy_forward)

# %% [markdown]
# ### Exercise 2.2 — weighted_mse_loss
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min
#
# The paper's loss is $L = \sum_x \sum_i I_i (x_i - \hat x_i)^2$. We average over the batch, sum over
# features, and **sum** over instances: with a sum, each instance's gradient is exactly what it would be
# if it were trained alone. *Usual mistake:* `.mean()` over everything, which divides each instance's
# gradient by $n \cdot n_{\text{instances}}$.

# %% tags=["exercise"]
def weighted_mse_loss(x: Tensor, x_hat: Tensor, importance: Tensor) -> Tensor:
    """Importance-weighted reconstruction loss, L = sum_k E_batch[ sum_i I_ki (x_i - x_hat_i)^2 ].

    x, x_hat: [batch, n_instances, n_features]; importance: [n_instances, n_features].
    Mean over the batch, sum over features, sum over instances (so each instance's gradient does not
    depend on how many instances are trained together). Returns a scalar tensor.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("superposition", "weighted_mse_loss", weighted_mse_loss)

# %% [markdown]
# ### Exercise 2.3 — train_toy_models
# > Difficulty: 🔴🔴🔴⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~20 min
#
# One loop trains every instance. Initialise $W$ Xavier-normal, $b = 0$, from a `torch.Generator`
# seeded with `seed` (use the same generator for the batches); each step draw a fresh batch, compute the
# loss, `zero_grad` → `backward` → `step`. Use a cosine learning-rate decay
# $\text{lr}_t = \text{lr} \cdot \tfrac12 (1 + \cos(\pi t / T))$: the geometry you will measure next is
# only crisp once the optimiser has settled. Wrap the loop in `tqdm` for a progress bar.
# *Usual mistakes:* forgetting `zero_grad` (gradients accumulate); building the optimiser over a copy
# of the parameters; returning tensors that still require grad.

# %% tags=["exercise"]
def train_toy_models(
    importance: Tensor,
    feature_probability: Tensor,
    n_hidden: int,
    activation: str = "relu",
    steps: int = 3000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Train one toy model per instance, all instances in one batched loop.

    importance, feature_probability: [n_instances, n_features], on the device to train on.
    Initialise W ~ N(0, 2 / (n_hidden + n_features)) (Xavier-normal) and b = 0, seeded with `seed`;
    optimise weighted_mse_loss(x, toy_forward(W, b, x, activation), importance) with Adam(lr), the
    learning rate following a cosine decay to 0 over `steps` steps; draw a fresh batch from
    sample_features every step.
    Returns (W, b), detached: [n_instances, n_hidden, n_features] and [n_instances, n_features].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("superposition", "train_toy_models", train_toy_models)

# %% [markdown]
# ## 3. Five features in two dimensions
#
# Train 8 models (8 seeds) with $n = 5$ equally important features, $m = 2$ hidden dimensions and
# feature probability $p = 0.02$ — very sparse. With 2 dimensions and 5 features there is no room for
# orthogonality. What will the model do?

# %% tags=["experiment"]
importance = torch.ones(8, 5, device=device)
probability = torch.full((8, 5), 0.02, device=device)
W_pent, b_pent = train_toy_models(importance, probability, n_hidden=2, steps=2000, lr=1e-2, seed=0)
plotting.plot_features_2d(W_pent, titles=[f"seed {k}" for k in range(8)])
plt.show()

# %% [markdown]
# The paper's answer: a **regular pentagon** — five directions 72° apart, each of norm about 1, with a
# negative bias that filters the interference. Let us measure it rather than eyeball it.
#
# ## 4. Measuring the geometry
#
# Elhage et al. define the **dimensionality** of feature $i$ as
#
# $$D_i = \frac{\lVert W_i \rVert^2}{\sum_j (\hat W_i \cdot W_j)^2}, \qquad \hat W_i = W_i / \lVert W_i \rVert .$$
#
# The numerator is how strongly the feature is represented, the denominator how many features (itself
# included) share its direction. A feature with a dimension of its own has $D_i = 1$; two antipodal
# features share one dimension, $D = 1/2$; a feature the model drops has $D_i = 0$.
#
# ### Exercise 4.1 — feature_dimensionality
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~10 min
#
# *Usual mistakes:* using rows of `W` instead of columns; forgetting to normalise $W_i$ in the
# denominator; a NaN for a dropped feature ($0/0$ — clamp the norm before dividing).

# %% tags=["exercise"]
def feature_dimensionality(W: Tensor) -> Tensor:
    """Feature dimensionality D_i = ||W_i||^2 / sum_j (W_hat_i . W_j)^2, with W_hat_i = W_i / ||W_i||.

    W: [n_instances, n_hidden, n_features] (W_i is column i). The sum over j includes j = i.
    A feature the model does not represent (||W_i|| = 0) has D_i = 0: guard the 0/0.
    Returns [n_instances, n_features].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("superposition", "feature_dimensionality", feature_dimensionality)

# %% [markdown]
# ### Exercise 4.2 — superposition_measure
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min
#
# The paper colours each feature by $\sum_{j \neq i} (\hat W_i \cdot W_j)^2$: how much of *other*
# features lies along feature $i$'s direction. $0$ means a private direction.

# %% tags=["exercise"]
def superposition_measure(W: Tensor) -> Tensor:
    """How much feature i shares its direction: sum over j != i of (W_hat_i . W_j)^2.

    W: [n_instances, n_hidden, n_features] (W_i is column i); W_hat_i = W_i / ||W_i||, taken as 0
    when ||W_i|| = 0. Returns [n_instances, n_features]; 0 means feature i has a direction of its own.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("superposition", "superposition_measure", superposition_measure)

# %% [markdown]
# Now measure the pentagon. For each seed, the angular gaps between consecutive feature directions and
# each feature's $D_i$. A regular pentagon has gaps of 72° and, since
# $\sum_j \cos^2(72° \cdot j) = 5/2$, every $D_i = 2/5$.

# %% tags=["experiment"]
angles = torch.atan2(W_pent[:, 1], W_pent[:, 0]).remainder(2 * math.pi).sort(-1).values  # [8, 5]
gaps = torch.rad2deg(torch.diff(torch.cat([angles, angles[:, :1] + 2 * math.pi], -1)))
dims = feature_dimensionality(W_pent)
for k in range(8):
    print(f"seed {k}: angle gaps {[round(g) for g in gaps[k].tolist()]}°,  D_i {dims[k].cpu().numpy().round(3)}")

# %% [markdown]
# ## 5. Dense features: no superposition
#
# Superposition is a bet that two features will rarely be active together. With dense features
# ($p = 1$) the bet always loses. Train $n = 5$, $m = 2$, $p = 1$ with importance $I_i = 0.9^i$.

# %% tags=["experiment"]
W_dense, b_dense = train_toy_models(feature_importance(4, 5, 0.9).to(device), torch.ones(4, 5, device=device),
                                    n_hidden=2, steps=3000, lr=1e-2, seed=0)
print("||W_i|| per seed:\n", W_dense.norm(dim=1).cpu().numpy().round(2))
plotting.plot_WtW(W_dense, titles=[f"seed {k}" for k in range(4)])
plt.show()

# %% [markdown]
# The model keeps exactly as many features as it has dimensions — the most important ones — in
# orthogonal directions, and drops the rest: this is PCA, not superposition.
#
# ## 6. Sparsity sweep: ReLU vs linear
#
# The paper's Figure 2 setting: $n = 20$ features, $m = 5$ dimensions, $I_i = 0.7^i$, one instance per
# feature probability. Each bar is one feature: its length is $\lVert W_i \rVert$, its colour the
# superposition measure (dark = a direction of its own, yellow = shared).

# %% tags=["experiment"]
sweep_p = torch.tensor([1.0, 0.3, 0.1, 0.03, 0.01], device=device)
sweep_importance = feature_importance(5, 20, 0.7).to(device)
sweep_probability = sweep_p[:, None].expand(5, 20).contiguous()
titles = [f"p = {p:g}" for p in sweep_p.tolist()]
sweep = {}
for activation in ("linear", "relu"):
    W, _ = train_toy_models(sweep_importance, sweep_probability, 5, activation=activation, steps=2000, lr=1e-2)
    sweep[activation] = W
    plotting.plot_feature_bars(W, superposition_measure(W), titles=[f"{activation}, {t}" for t in titles])
    plt.show()
for activation, W in sweep.items():
    represented = W.norm(dim=1) > 0.5
    sup = (superposition_measure(W) * represented).sum(-1)
    print(f"{activation:6s} features represented {represented.sum(-1).tolist()}, "
          f"total superposition {sup.cpu().numpy().round(2)}")

# %% [markdown]
# The linear model keeps the 5 most important features, each in its own direction, at every sparsity.
# The ReLU model does the same when features are dense, and packs more and more features into its
# 5 dimensions as they get sparser — the paper's central result.
#
# ## 7. The phase diagram: 2 features, 1 dimension
#
# The smallest case that shows every regime: $n = 2$, $m = 1$. Feature 0 has importance 1, the *extra*
# feature 1 has relative importance $r$. Depending on $r$ and the density $p$, the extra feature is
# **not represented**, gets the **dedicated** dimension (feature 0 is dropped), or the two share the
# dimension in **superposition** (antipodal: $W_0 \approx -W_1$).
#
# ### Exercise 7.1 — phase_grid_inputs
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵⚪⚪⚪ · ~10 min
#
# Lay out a $P \times R$ grid as $P \cdot R$ instances so one call of `train_toy_models` trains the whole
# diagram: probability is the slow axis (instance $k = p_{\text{index}} \cdot R + r_{\text{index}}$).

# %% tags=["exercise"]
def phase_grid_inputs(relative_importance: Tensor, feature_probability: Tensor) -> tuple[Tensor, Tensor]:
    """Lay out the n_features = 2 phase-diagram sweep as one batch of instances.

    relative_importance: [R] importance of the extra feature (feature 1); feature 0 has importance 1.
    feature_probability: [P] probability that a feature is present (the same for both features).
    Instance k = p_index * R + r_index (probability is the slow axis, so .reshape(P, R) recovers the grid).
    Returns (importance, probability), each [P * R, 2].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("superposition", "phase_grid_inputs", phase_grid_inputs)

# %% [markdown]
# ### Exercise 7.2 — classify_phase
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵⚪⚪⚪ · ~5 min
#
# A feature is represented when $\lVert W_i \rVert$ exceeds the threshold. *Usual mistake:* comparing
# the signed weight, so an antipodal (negative) feature counts as absent.

# %% tags=["exercise"]
def classify_phase(W: Tensor, threshold: float = 0.5) -> Tensor:
    """What happened to the extra feature (index 1) in an n_features = 2, n_hidden = 1 toy model?

    W: [n_instances, 1, 2]. A feature is represented when ||W_i|| > threshold.
    Returns a long tensor [n_instances]: 0 = not represented (feature 1 is off),
    1 = dedicated dimension (feature 1 is on, feature 0 is off), 2 = superposition (both on).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("superposition", "classify_phase", classify_phase)

# %% [markdown]
# Train the whole diagram at once: a 9 × 9 grid, three seeds per cell, and keep each cell's
# lowest-loss seed (small models have local minima; the paper too reports the best of several runs).

# %% tags=["experiment"]
rel_importance = torch.logspace(-1, 1, 9)
density = torch.logspace(-2, 0, 9)
imp, prob = phase_grid_inputs(rel_importance, density)
n_cells, seeds = imp.shape[0], 3
imp, prob = imp.repeat(seeds, 1).to(device), prob.repeat(seeds, 1).to(device)
W_phase, b_phase = train_toy_models(imp, prob, 1, steps=2000, batch_size=256, lr=1e-2, seed=0)
x_eval = sample_features(8192, prob, torch.Generator(device=device).manual_seed(1))
per_instance = (imp * (x_eval - toy_forward(W_phase, b_phase, x_eval)) ** 2).sum(-1).mean(0)
best_seed = per_instance.reshape(seeds, n_cells).argmin(0)
W_best = W_phase.reshape(seeds, n_cells, 1, 2)[best_seed, torch.arange(n_cells)]
phases = classify_phase(W_best).reshape(len(density), len(rel_importance)).cpu()
plotting.plot_phase_diagram(phases, rel_importance, density)
plt.show()

# %% [markdown]
# Compare with the paper's Figure "phase change" for $n = 2, m = 1$: dense features give a sharp switch
# from *not represented* to *dedicated* as the extra feature becomes more important than feature 0;
# sparse features open a region of *superposition* in between that widens as density falls.
#
# ## 8. Interview drills
#
# Short questions of the kind a mech-interp interview asks. Answer by returning a value.
#
# **Drill 1.** A ReLU toy model with $n = 5$ features, $m = 2$ hidden dimensions, dense features
# ($p = 1$) and $I_i = 0.9^i$: how many features does it represent ($\lVert W_i \rVert > 0.5$)?

# %% tags=["exercise"]
def drill_dense_features_kept() -> int:
    """Drill: a ReLU toy model with n = 5 features, m = 2 hidden dimensions, dense features (p = 1) and
    importance I_i = 0.9 ** i. How many features does it represent (||W_i|| > 0.5)? Return an int."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("superposition", "drill_dense_features_kept", drill_dense_features_kept)

# %% [markdown]
# **Drill 2.** Why does the linear model never superpose? Return the letter.
#
# - **a.** It has too few parameters to store more than $m$ features.
# - **b.** Its training data were dense.
# - **c.** Without a nonlinearity it cannot filter interference out: every overlap $W_i \cdot W_j$ adds
#   error whenever feature $j$ is active, so its best solution is PCA — the $m$ most important features
#   in orthogonal directions.
# - **d.** Its bias is zero.

# %% tags=["exercise"]
def drill_linear_never_superposes() -> str:
    """Drill: why does the linear model (x_hat = W^T W x + b) never put features in superposition?
    Return the letter of the best answer among the options in the notebook."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("superposition", "drill_linear_never_superposes", drill_linear_never_superposes)

# %% [markdown]
# **Drill 3.** Five features of equal norm form a regular pentagon in 2 dimensions. What is each
# feature's dimensionality $D_i$? (Work it out on paper first; you can verify with your function.)

# %% tags=["exercise"]
def drill_pentagon_dimensionality() -> float:
    """Drill: five features of equal norm arranged as a regular pentagon in 2 dimensions. What is each
    feature's dimensionality D_i? Return a float."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("superposition", "drill_pentagon_dimensionality", drill_pentagon_dimensionality)

# %% [markdown]
# ## Where next
#
# - `mechinterp reproduce superposition` reruns this chapter's experiments and prints each finding beside
#   the paper's value.
# - The paper goes on to feature geometry at larger $n$ (digons, triangles, tetrahedra: $D_i \in
#   \{1/2, 2/3, 3/4\}$), superposition in computation (absolute value), and the link to adversarial
#   examples. Chapter 07 comes back to superposition from the other side: training sparse autoencoders
#   to recover features from a real model's activations, with this chapter's generator as ground truth.
