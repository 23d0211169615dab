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
# # Chapter 02 — Probing: where does a model represent what, and is the probe telling the truth?
#
# *Anchors: Alain & Bengio (2016), "Understanding intermediate layers using linear classifier probes";
# Hewitt & Liang (2019), "Designing and Interpreting Probes with Control Tasks"; Belinkov (2022), "Probing
# Classifiers: Promises, Shortcomings, and Advances"; Ravfogel et al. (2020) and Elazar et al. (2021) on
# removing a probed direction to test whether the model uses it.*
#
# A **probe** is a small classifier trained to read a property (a part of speech, "am I inside a
# quotation?") off a model's hidden activations. If a *linear* probe succeeds at layer $l$, the property is
# linearly decodable there. That is a statement about the activations, and three traps sit between it and a
# statement about the model:
#
# 1. **leakage** — the same sentence in train and test makes any probe look good;
# 2. **the probe did the work** — a flexible probe can *learn* the property from features that merely
#    identify the word (Hewitt & Liang's control tasks measure this), or a random network's activations
#    may decode it just as well;
# 3. **decodable ≠ used** — the model may never read the direction the probe found. Only an intervention
#    on the model answers that.
#
# You will probe every layer of `zoo/text-lm` (a 4-layer GPT-2-architecture model trained on English text:
# the World English Bible, WordNet glosses and fortune files) for three properties, and handle each trap:
#
# 1. collect activations at every depth with the hooks API;
# 2. build labels: part of speech (a *lexical* property, from WordNet), inside quotes and inside brackets
#    (*contextual* properties: they depend on earlier tokens);
# 3. split by text window, not by token, and compute the baseline every probe must beat;
# 4. write a linear probe in torch that matches scikit-learn's, and sweep it over depth — beside a
#    randomly initialised copy of the model;
# 5. control tasks and selectivity: a linear probe against an MLP probe;
# 6. the causal test: remove the "inside quotes" direction and watch the model forget to close its quotes.
#
# Budget: about 2.5 hours. The notebook runs in about a minute on 2 idle laptop CPU cores
# (measured; a laptop busy with other work can take several times longer).

# %% tags=["setup"]
import time

import matplotlib.pyplot as plt
import torch
from sklearn.linear_model import LogisticRegression
from torch import Tensor, nn

from mechinterp.autograder import check
from mechinterp.course.toolkit import get_device, load_model
from mechinterp.course.toolkit.activations import residual_stream
from mechinterp.course.toolkit.labels import (POS_CLASSES, bracket_labels, load_pos_lexicon, pos_labels,
                                              vocab_strings)
from mechinterp.course.toolkit.model import HookedModel, randomly_initialised
from mechinterp.course.toolkit.probes import accuracy, memorisation_accuracy, mlp_probe, subsample
from mechinterp.course.toolkit.zoo import heldout_ids

device = get_device()
torch.set_grad_enabled(False)  # probes switch gradients on where they train
model = load_model("zoo/text-lm", device)
vocab = vocab_strings(model.tokenizer)  # the string of every token id
ids = heldout_ids("text-lm")  # 51k tokens of held-out text the model never trained on
n_windows = len(ids) // model.n_ctx
windows = ids[: n_windows * model.n_ctx].view(n_windows, model.n_ctx)
print(f"{model.n_layers} layers, d_model {model.d_model}; {n_windows} windows of {model.n_ctx} tokens")

# %% [markdown]
# ## 1. Activations at every depth
#
# The residual stream is the model's working memory. We read it at $n_\text{layers} + 1$ depths: entering
# each block (`blocks.{l}.hook_resid_pre`; depth 0 is the token + position embedding) and leaving the last
# (`blocks.{n_layers - 1}.hook_resid_post`).
#
# ### Exercise 1.1 — collect_residuals
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~10 min
#
# Run the model `batch_size` sequences at a time with `model.run_with_cache(..., names_filter=names)` (caching
# only what you need keeps memory flat) and stack the depths in front. *Usual mistakes:* forgetting the final
# `resid_post` (you would never see the last block's output), or concatenating batches along the wrong axis.

# %% tags=["exercise"]
def collect_residuals(model: HookedModel, tokens: Tensor, batch_size: int) -> Tensor:
    """The residual stream at every depth for every token, computed batch_size sequences at a time.

    Depth l < n_layers is blocks.{l}.hook_resid_pre (depth 0 = the embeddings); depth n_layers is
    blocks.{n_layers - 1}.hook_resid_post. tokens: [batch, pos]. Returns [n_layers + 1, batch, pos, d_model].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "collect_residuals", collect_residuals)

# %% [markdown]
# The toolkit's `residual_stream(model, tokens)` is the same function with a progress bar and a disk cache
# (keyed by a hash of the weights and tokens): the second run of this notebook reads the activations back
# instead of recomputing them. `randomly_initialised(model)` is the same architecture with fresh random
# weights — our control for "does the *model* know this, or does the *probe* learn it?".

# %% tags=["experiment"]
resid = residual_stream(model, windows)  # [n_layers + 1, n_windows, n_ctx, d_model]
random_model = randomly_initialised(model, seed=0)
random_resid = residual_stream(random_model, windows)
print("activations:", list(resid.shape), f"({resid.numel() * 4 / 1e6:.0f} MB)")
print("mean residual norm by depth:", resid.norm(dim=-1).mean((1, 2)).numpy().round(1))

# %% [markdown]
# ## 2. Labels
#
# Three properties, all with label sources that install offline:
#
# - **part of speech** (lexical): for every whole-word token (`" king"`, not the `" bibli"` of
#   `" bibli" + "ophile"`), the part of speech WordNet most often tags it with (noun, verb, adjective,
#   adverb), or *function* for closed-class words (the, of, and, not, ...). It depends on the word only.
# - **inside quotes** (contextual): is this token inside a `"..."` span? Nothing about the token itself
#   says so: the model must have seen (and counted) earlier quote marks.
# - **inside brackets** (contextual): is the token inside `(...)` on its line?
#
# Labels are computed on the whole held-out stream, then cut into the same windows as the tokens; `-1` means
# "no label here" (e.g. the quote mark itself, or a word piece).
#
# ### Exercise 2.1 — quote_labels
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵⚪⚪⚪ · ~10 min
#
# Count `"` *characters*, not tokens that contain one (a token such as `'"."'` holds two), in the tokens
# *before* the current one; reset the count at each `<|endoftext|>` (documents are independent). A token
# that contains a quote mark is the boundary itself: label it -1.

# %% tags=["exercise"]
def quote_labels(str_tokens: list[str]) -> Tensor:
    """For a stream of token strings: 1 if the token is inside a double-quoted span, 0 if outside, -1 if the
    token itself contains a '"' (it is a boundary, neither inside nor outside).

    Inside = an odd number of '"' characters occur in the tokens before it, counting from the most recent
    "<|endoftext|>" token (documents are independent). Returns [len(str_tokens)] long.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "quote_labels", quote_labels)

# %% tags=["experiment"]
stream = [vocab[i] for i in windows.flatten().tolist()]
MIN_CONTEXT = 16  # the model cannot know about a quote opened before its window: skip each window's start
labels = {
    "part of speech": pos_labels(stream, load_pos_lexicon("text-lm")).view(windows.shape),
    "inside quotes": quote_labels(stream).view(windows.shape).clone(),
    "inside brackets": bracket_labels(stream).view(windows.shape).clone(),
}
for name in ("inside quotes", "inside brackets"):
    labels[name][:, :MIN_CONTEXT] = -1
n_classes = {"part of speech": len(POS_CLASSES), "inside quotes": 2, "inside brackets": 2}
class_names = {"part of speech": POS_CLASSES, "inside quotes": ("outside", "inside"),
               "inside brackets": ("outside", "inside")}

fig, axes = plt.subplots(1, 3, figsize=(11, 2.6))
for ax, (name, lab) in zip(axes, labels.items(), strict=True):
    counts = torch.bincount(lab[lab >= 0], minlength=n_classes[name])
    ax.bar(class_names[name], counts.numpy())
    ax.set_title(f"{name}: {int(counts.sum()):,} labelled tokens", fontsize=9)
    ax.tick_params(axis="x", labelsize=8, rotation=20)
plt.tight_layout()
plt.show()
inside = labels["inside quotes"] == 1
w = int((inside.sum(1) > 20).nonzero()[0])  # a window with a quotation in it
start = max(0, int(inside[w].nonzero()[0]) - 20)
print("".join(f"[{s}]" if q == 1 else s for s, q in zip(stream[w * 128 + start: w * 128 + start + 70],
                                                         inside[w, start: start + 70].tolist(), strict=True)))

# %% [markdown]
# Tokens inside quotes are shown in `[brackets]`. Note the class balance: most tokens are *outside* quotes
# and brackets, so a probe that always answers "outside" is already right most of the time.
#
# ## 3. Honest splits and the baseline to beat
#
# Tokens of one sentence are not independent: a probe tested on tokens whose neighbours it trained on is
# tested on text it has seen. Split by **group** (here: the 128-token window a token belongs to — each window
# is a different stretch of text), never by token.
#
# ### Exercise 3.1 — group_split
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~10 min
#
# Shuffle the group ids with a seeded `torch.Generator`, give the first `round(f_train * n_groups)` to train,
# the next `round(f_val * n_groups)` to validation and the rest to test, then look up each example's group.

# %% tags=["exercise"]
def group_split(groups: Tensor, fractions: tuple[float, float, float], seed: int) -> Tensor:
    """Assign whole groups (e.g. sentences or text windows) at random to train (0), validation (1) and test (2).

    groups: [n] group id of each example. fractions: the share of GROUPS in each split (sums to 1); split
    sizes are round(fraction * n_groups) for train and validation, the rest test. The same seed gives the same
    split. Returns [n] long.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "group_split", group_split)

# %% [markdown]
# ### Exercise 3.2 — majority_accuracy
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min
#
# The dumbest probe ignores the activations and always predicts the most frequent *training* label. Every
# accuracy in this chapter is read against it. (Deciding the majority on the test labels is a leak.)

# %% tags=["exercise"]
def majority_accuracy(y_train: Tensor, y_test: Tensor) -> float:
    """Accuracy on y_test of always predicting the most frequent label of y_train (the baseline every probe
    must beat). Labels are non-negative ints; where labels tie for most frequent, any of them will do. Returns
    a float."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "majority_accuracy", majority_accuracy)

# %% tags=["experiment"]
groups = torch.arange(n_windows)[:, None].expand(windows.shape)
split = group_split(groups.flatten(), (0.7, 0.15, 0.15), seed=0).view(windows.shape)
majority = {}
for name, lab in labels.items():
    train, test = (lab >= 0) & (split == 0), (lab >= 0) & (split == 2)
    majority[name] = majority_accuracy(lab[train], lab[test])
    print(f"{name:16s} train {int(train.sum()):6,} test {int(test.sum()):5,} tokens; "
          f"majority baseline {majority[name]:.3f}")

# %% [markdown]
# ## 4. A linear probe, and where each property lives
#
# A linear probe is multinomial logistic regression on the activations: logits $= xW + b$. Two details make
# it behave: **standardise** each feature (residual directions have very different scales; a few are huge),
# and add a little **L2 penalty** (with 160 dimensions and thousands of examples it barely matters, but it
# keeps the optimum finite when classes are separable). Full-batch L-BFGS solves this small convex problem in
# well under a second.
#
# ### Exercise 4.1 — train_linear_probe
# > Difficulty: 🔴🔴🔴⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~25 min
#
# Fold the standardisation back so the returned probe acts on raw activations: with $z = (x - \mu)/\sigma$,
# $zW_z + b_z = x\,(W_z/\sigma) + (b_z - (\mu/\sigma) W_z)$. The check trains your probe on several synthetic
# problems and requires the test accuracy of scikit-learn's `LogisticRegression` (same penalty) within two
# points. `torch.optim.LBFGS(params, max_iter=steps, line_search_fn="strong_wolfe")` takes a *closure* that
# recomputes the loss; training needs `with torch.enable_grad():` because this notebook switched gradients off.

# %% tags=["exercise"]
def train_linear_probe(x: Tensor, y: Tensor, n_classes: int, l2: float = 1e-3,
                       steps: int = 100) -> tuple[Tensor, Tensor]:
    """Multinomial logistic regression trained to convergence on standardised features.

    Standardise each feature with the training mean and std, minimise mean cross-entropy(z @ W + b, y) +
    l2 * ||W||^2 over the standardised z (full batch; L-BFGS with `steps` iterations converges), then fold
    the standardisation into the weights so that the probe acts on RAW x: logits = x @ W + b.
    x: [n, d] float; y: [n] long in [0, n_classes). Returns W [d, n_classes], b [n_classes] (no grad).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "train_linear_probe", train_linear_probe)

# %% [markdown]
# Your probe against scikit-learn's on real activations (part of speech at depth 2). scikit-learn's
# `LogisticRegression` minimises $C \sum_i \mathrm{CE}_i + \tfrac12\|W\|^2$, the same objective as ours when
# $C = 1 / (2 \cdot \ell_2 \cdot n)$.

# %% tags=["experiment"]
lab = labels["part of speech"]
train, test = subsample((lab >= 0) & (split == 0), 8000), (lab >= 0) & (split == 2)
x_train, x_test = resid[2][train], resid[2][test]
start = time.perf_counter()
W, b = train_linear_probe(x_train, lab[train], len(POS_CLASSES))
ours_s = time.perf_counter() - start
mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
start = time.perf_counter()
sk = LogisticRegression(C=1 / (2 * 1e-3 * len(x_train)), max_iter=1000).fit(((x_train - mu) / sd).numpy(),
                                                                             lab[train].numpy())
sk_s = time.perf_counter() - start
ours_acc = accuracy(lambda z: (z @ W + b).argmax(-1), x_test, lab[test])
sk_acc = float((sk.predict(((x_test - mu) / sd).numpy()) == lab[test].numpy()).mean())
print(f"test accuracy: ours {ours_acc:.4f} ({ours_s:.2f} s), scikit-learn {sk_acc:.4f} ({sk_s:.2f} s)")

# %% [markdown]
# Now the sweep: a probe per property, per depth, on the trained model and on its randomly initialised twin
# (each probe trains on at most 8,000 tokens so the sweep stays quick).

# %% tags=["experiment"]
def linear_fit(x, y, k):
    W, b = train_linear_probe(x, y, k)
    return lambda z: (z @ W + b).argmax(-1)


def sweep(acts, lab, k, fit=linear_fit, on_split=split):
    train, test = subsample((lab >= 0) & (on_split == 0), 8000), (lab >= 0) & (on_split == 2)
    return [accuracy(fit(a[train], lab[train], k), a[test], lab[test]) for a in acts]


depths = range(model.n_layers + 1)
sweeps = {name: {"text-lm": sweep(resid, lab, n_classes[name]),
                 "random init": sweep(random_resid, lab, n_classes[name])} for name, lab in labels.items()}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for ax, (name, curves) in zip(axes, sweeps.items(), strict=True):
    for who, accs in curves.items():
        ax.plot(depths, accs, marker="o", label=who)
    ax.axhline(majority[name], color="0.5", ls="--", label="majority")
    ax.set_xticks(list(depths), ["embed"] + [f"L{i}" for i in range(1, model.n_layers)] + ["out"])
    ax.set_title(name)
    ax.set_xlabel("depth (residual stream entering block ...)")
axes[0].set_ylabel("probe test accuracy")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()
for name, curves in sweeps.items():
    best = max(depths, key=lambda d: curves["text-lm"][d])
    print(f"{name:16s} best depth {best}: {curves['text-lm'][best]:.3f} "
          f"(random init best {max(curves['random init']):.3f}, majority {majority[name]:.3f})")

# %% [markdown]
# Read the three panels together:
#
# - **Part of speech** is best at depth 0 — the embeddings — and slowly declines: it is a property of the
#   word, so the embedding already holds it, and later layers overwrite some of it with what they compute.
#   The random-init model's embeddings are random vectors, one per word; a linear probe on them gets well
#   above majority too (it can memorise some words' classes from arbitrary vectors) but far below the
#   trained model. That gap is what the *model* knows.
# - **Inside quotes / brackets** are at the majority baseline on the embeddings (one token cannot know) and
#   rise in later layers, after attention has had the chance to look back for an open quote or bracket.
#   The random-init model stays at baseline at every depth.
#
# On this split, contextual properties appear deeper than lexical ones — the ordering Tenney et al. (2019)
# found in BERT ("BERT rediscovers the classical NLP pipeline"). Before believing the part-of-speech half of
# that, ask which words the test set contains.
#
# ### Exercise 4.2 — hold_out_types
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~10 min
#
# Part of speech is (nearly) a fixed function of the word, and almost every test token is a word the probe
# saw in training: a probe can score well by *memorising words*, which the embeddings make easy. To ask whether
# the model represents part of speech in a way that extends to words the probe never saw, hold out word
# **types**: the test set keeps only tokens of held-out types, and training never sees those types.

# %% tags=["exercise"]
def hold_out_types(types: Tensor, split: Tensor, fraction: float, seed: int) -> Tensor:
    """Make the test set about word TYPES the probe never saw in training.

    types: [n] token-type (vocabulary id) of each example; split: [n] 0/1/2 (e.g. from group_split). Take the
    distinct types of the TEST examples in sorted order, shuffle them with torch.randperm and a generator seeded
    by `seed`, and hold out the first round(fraction * n_test_types). Return a copy of split in which test
    examples of other types, and train/validation examples of held-out types, are -1 (unused). Returns [n] long.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "hold_out_types", hold_out_types)

# %% tags=["experiment"]
pos = labels["part of speech"]
type_split = hold_out_types(windows.flatten(), split.flatten(), 0.5, seed=0).view(split.shape)


curves = {"window split": sweeps["part of speech"]["text-lm"],
          "held-out word types": sweep(resid, pos, n_classes["part of speech"], on_split=type_split)}
baselines = {}
for name, sp in (("window split", split), ("held-out word types", type_split)):
    train, test = (pos >= 0) & (sp == 0), (pos >= 0) & (sp == 2)
    baselines[name] = {"majority": majority_accuracy(pos[train], pos[test]),
                       "memorise words": memorisation_accuracy(windows, pos, train, test)}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), sharey=True)
for ax, (name, accs) in zip(axes, curves.items(), strict=True):
    ax.plot(depths, accs, marker="o", label="linear probe")
    for (base, v), style in zip(baselines[name].items(), ("--", ":"), strict=True):
        ax.axhline(v, color="0.5", ls=style, label=base)
    ax.set_title(f"part of speech, {name}")
    ax.set_xlabel("depth")
axes[0].set_ylabel("probe test accuracy")
axes[0].legend(fontsize=8)
plt.show()
for name, accs in curves.items():
    print(f"{name:20s} by depth {[round(a, 3) for a in accs]}; " +
          ", ".join(f"{k} {v:.3f}" for k, v in baselines[name].items()))

# %% [markdown]
# On the window split, memorising each training word's most frequent tag already scores about as well as the
# best probe, and the embeddings (depth 0) — one vector per word — are the easiest place to memorise. With the
# test words held out (half of the test split's word types), memorisation falls back to the majority class,
# and the curve changes shape: depth 0 loses its lead, and the probe does best a few layers in, where the model
# has combined the word with its context. The test set is now small (about a thousand tokens), so one draw is
# noisy: `mechinterp reproduce probing` averages two draws and compares the change with the window split's. What survives: part of speech is decodable far above the majority class even for words the probe
# never saw; what does not: "part of speech is best at the embeddings" — that was a property of the split.
#
# ## 5. Is the probe telling the truth? Control tasks and selectivity
#
# Hewitt & Liang's question: is high accuracy a fact about the representation, or did the probe learn the
# task itself? Their **control task** gives every word *type* a random label (drawn from the real task's
# label distribution) and keeps it fixed for every occurrence. No linguistics predicts those labels; only
# memorising "word → label" does. A probe that does well on the control task can memorise, so its task
# accuracy says less. **Selectivity** = task accuracy − control accuracy; good probes are selective.
#
# ### Exercise 5.1 — control_labels
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~15 min
#
# One draw per token *type* (vocabulary id) with `torch.multinomial(distribution, n_types, replacement=True,
# generator=...)`, then index it with the token ids. *Usual mistakes:* drawing per occurrence (then nothing
# is memorisable), drawing uniformly over classes, or copying the task labels.

# %% tags=["exercise"]
def control_labels(token_ids: Tensor, labels: Tensor, seed: int) -> Tensor:
    """Hewitt & Liang's control task: give every token TYPE one random label, drawn from the empirical
    distribution of the labels (over labelled tokens), and label each token with its type's label.

    token_ids, labels: [n] (labels -1 = unlabelled, kept -1). The same seed gives the same control task.
    Returns [n] long.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "control_labels", control_labels)

# %% [markdown]
# ### Exercise 5.2 — probe_selectivity
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~10 min
#
# Same probe family, same inputs, two label sets; both scored on the *test* examples.

# %% tags=["exercise"]
def probe_selectivity(fit, x_train: Tensor, x_test: Tensor, task_train: Tensor, task_test: Tensor,
                      control_train: Tensor, control_test: Tensor) -> tuple[float, float, float]:
    """Train one probe on the task labels and one on the control labels (same probe family, same inputs),
    score each on the TEST examples. fit(x, y) returns a predict function (x -> predicted labels).

    Returns (task accuracy, control accuracy, selectivity = task accuracy - control accuracy).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "probe_selectivity", probe_selectivity)

# %% tags=["experiment"]
pos = labels["part of speech"]
control = control_labels(windows.flatten(), pos.flatten(), seed=0).view(windows.shape)
train, test = (pos >= 0) & (split == 0), (pos >= 0) & (split == 2)
DEPTH = 1
x = resid[DEPTH]
fits = {"linear": lambda a, y: linear_fit(a, y, len(POS_CLASSES)),
        "MLP (128 hidden)": lambda a, y: mlp_probe(a, y, len(POS_CLASSES))}
results = {name: probe_selectivity(fit, x[train], x[test], pos[train], pos[test], control[train], control[test])
           for name, fit in fits.items()}
fig, ax = plt.subplots(figsize=(6, 3))
for i, (name, (task, ctrl, sel)) in enumerate(results.items()):
    ax.bar([i - 0.27, i, i + 0.27], [task, ctrl, sel], width=0.25, color=["C0", "C1", "C2"])
    print(f"{name:18s} task {task:.3f}  control {ctrl:.3f}  selectivity {sel:.3f}")
ax.set_xticks(range(len(results)), list(results))
ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=f"C{i}") for i in range(3)],
          labels=["task accuracy", "control accuracy", "selectivity"], fontsize=8)
ax.set_title(f"part of speech at depth {DEPTH}")
plt.show()

# %% [markdown]
# The MLP probe wins the task by a little and the control task by a lot: it memorises word types, so most of
# its task accuracy could be memorisation too. The linear probe is the more **selective** one — Hewitt &
# Liang's central observation (on ELMo: MLP probes reached high control accuracy while linear probes were
# the most selective). Higher task accuracy from a more expressive probe is not more knowledge in the model.
#
# Note what selectivity does *not* answer: whether the model *uses* the property. For that we intervene.
#
# ## 6. Decodable ≠ used: remove the direction
#
# The binary "inside quotes" probe at depth 3 reads one direction $w$ of the residual stream. If the model
# relies on that direction, erasing it (projecting every residual vector onto the subspace orthogonal to
# $w$) should hurt exactly the predictions that need to know whether a quotation is open — above all,
# predicting the **closing** quote mark — and hurt them more than erasing a random direction does.
# (Ravfogel et al.'s INLP and Elazar et al.'s amnesic probing iterate this idea.)
#
# ### Exercise 6.1 — project_out
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min

# %% tags=["exercise"]
def project_out(x: Tensor, direction: Tensor) -> Tensor:
    """Remove the component of x along `direction` (any length, not necessarily unit norm).

    x: [..., d]; direction: [d]. Returns x - (x . u) u with u = direction / ||direction||.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "project_out", project_out)

# %% [markdown]
# ### Exercise 6.2 — loss_with_direction_removed
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~15 min
#
# Use `model.hooks([(name, hook_fn)])` as a context manager: `hook_fn(activation, hook_point)` returns the
# replacement activation. Then compute each position's next-token loss, as in chapter 03.

# %% tags=["exercise"]
def loss_with_direction_removed(model: HookedModel, tokens: Tensor, layer: int, direction: Tensor) -> Tensor:
    """Per-token next-token loss with `direction` projected out of the residual stream at depth `layer`
    (at every position): blocks.{layer}.hook_resid_pre, or the final blocks.{n_layers - 1}.hook_resid_post
    when layer == n_layers.

    tokens: [batch, pos]. Returns [batch, pos - 1] (nats; position i predicts tokens[:, i + 1]).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "loss_with_direction_removed", loss_with_direction_removed)

# %% tags=["experiment"]
LAYER = 3
quotes = labels["inside quotes"]
train = (quotes >= 0) & (split == 0)
Wq, bq = train_linear_probe(resid[LAYER][train], quotes[train], 2)
direction = Wq[:, 1] - Wq[:, 0]  # raises the "inside" logit relative to "outside"

# the probe's verdict along one held-out window, quote marks marked
w = int(((split[:, 0] == 2) & (quotes == 1).any(1)).nonzero()[0])
score = (resid[LAYER][w] @ Wq + bq).diff(dim=-1)[:, 0]
fig, ax = plt.subplots(figsize=(11, 2.6))
ax.plot(score.numpy(), lw=1)
ax.axhline(0, color="0.6", lw=0.8)
for p in range(model.n_ctx):
    if '"' in vocab[int(windows[w, p])]:
        ax.axvline(p, color="C3", alpha=0.5)
ax.set_xlabel("position in the window (red: a quote mark)")
ax.set_ylabel("probe: inside - outside logit")
plt.show()

# windows the probe never saw, keeping those with a closing quote to predict
has_quote = torch.tensor(['"' in s for s in vocab])
held = (split[:, 0] > 0) & (has_quote[windows[:, 1:]] & (quotes[:, :-1] == 1)).any(1)
tokens_h = windows[held].to(device)
targets = (has_quote[windows[held][:, 1:]] & (quotes[held][:, :-1] == 1)).to(device)
base = -model(tokens_h)[:, :-1].log_softmax(-1).gather(-1, tokens_h[:, 1:, None])[..., 0]  # no intervention
probe_effect = loss_with_direction_removed(model, tokens_h, LAYER, direction.to(device)) - base
gen = torch.Generator().manual_seed(0)
random_effects = torch.stack([loss_with_direction_removed(model, tokens_h, LAYER, v.to(device)) - base
                              for v in torch.randn(8, model.d_model, generator=gen)])
bars = {"probe direction\nclosing-quote predictions": float(probe_effect[targets].mean()),
        "random directions\nclosing-quote predictions": float(random_effects[:, targets].mean()),
        "probe direction\nall other predictions": float(probe_effect[~targets].mean()),
        "random directions\nall other predictions": float(random_effects[:, ~targets].mean())}
fig, ax = plt.subplots(figsize=(8, 3))
ax.bar(range(4), list(bars.values()), color=["C3", "C7", "C3", "C7"])
ax.set_xticks(range(4), list(bars), fontsize=8)
ax.set_ylabel("loss increase (nats)")
ax.set_title(f"projecting one direction out of the residual stream at depth {LAYER} "
             f"({int(targets.sum())} closing quotes)", fontsize=9)
plt.show()
for k, v in bars.items():
    print(f"{k.replace(chr(10), ', '):50s} {v:+.4f} nats")

# %% [markdown]
# Erasing the probe's direction makes the model markedly worse at closing quotations, and barely changes
# anything else; a random direction does almost nothing to either. So the model *uses* that direction, and
# uses it for what the probe said it encodes. Two cautions: the effect could be larger or smaller than the
# information the direction carries (other directions may hold a redundant copy — INLP removes directions
# repeatedly for this reason), and a linear probe finds *a* direction that separates the classes, not
# necessarily the one the model reads. The intervention tested the probe's direction, and it held up.
#
# ## 7. Interview drills
#
# **Drill 1.** A linear probe decodes property P from layer 2 of a model with 95% accuracy (majority
# baseline 60%). What follows?
# - **a.** The model uses P at layer 2 to make its predictions.
# - **b.** Layer 2 computes P; earlier layers do not have it.
# - **c.** Information about P is linearly decodable from layer 2's activations; whether the model uses it
#   needs an intervention (e.g. removing the direction and measuring the effect).
# - **d.** Nothing: probes are meaningless.

# %% tags=["exercise"]
def drill_accuracy_is_not_use() -> str:
    """Drill: a probe decodes a property at 95% from layer 2. What follows? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "drill_accuracy_is_not_use", drill_accuracy_is_not_use)

# %% [markdown]
# **Drill 2.** Which probe result is the most convincing evidence that a representation encodes part of
# speech?
# - **a.** An MLP probe: task accuracy 0.99, control-task accuracy 0.97.
# - **b.** A linear probe: task accuracy 0.94, control-task accuracy 0.77.
# - **c.** A linear probe on a randomly initialised model: task accuracy 0.72.
# - **d.** An MLP probe trained and tested on tokens of the same sentences: 1.00.

# %% tags=["exercise"]
def drill_selectivity() -> str:
    """Drill: which probe result is the most convincing evidence of a representation? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "drill_selectivity", drill_selectivity)

# %% [markdown]
# **Drill 3.** In a trained transformer, probed on a split whose test tokens are words the probe also saw in
# training, where do you expect a probe for a *lexical* property (the word's part of speech) and one for a
# *contextual* property (inside a quotation) to peak?
# - **a.** Lexical at or near the embeddings (one vector per word: easy to memorise); contextual in later
#   layers, after attention has looked back.
# - **b.** Both at the last layer, where the model is most trained.
# - **c.** Contextual at the embeddings, lexical at the last layer.
# - **d.** Both at the embeddings: later layers only mix information.

# %% tags=["exercise"]
def drill_peak_layers() -> str:
    """Drill: where do a lexical and a contextual property peak? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("probing", "drill_peak_layers", drill_peak_layers)

# %% [markdown]
# ## Where next
#
# `mechinterp reproduce probing` reruns this chapter's measurements and prints them beside the papers'
# claims. Chapter 04 turns "remove a direction and measure" into a systematic instrument — activation
# patching — and asks where in a model a fact is stored.
