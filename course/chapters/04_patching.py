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
# # Chapter 04 — Activation patching, ablation and causal tracing: where is a fact stored?
#
# *Anchors: Meng, Bau, Andonian & Belinkov (2022), "Locating and Editing Factual Associations in GPT" (ROME,
# causal tracing); Zhang & Nanda (2023), "Towards Best Practices of Activation Patching"; Heimersheim & Nanda
# (2024), "How to use and interpret activation patching"; Nanda (2023) and Syed et al. (2023) on attribution
# patching.*
#
# Probing (chapter 02) asks what can be *read* from an activation. **Activation patching** asks what an
# activation *does*: run the model on a corrupted input, copy in one activation from a clean run, and see how
# much of the clean behaviour comes back. Done for every layer and position, it draws a map of where the
# information that decides the answer flows.
#
# 1. metrics: logit difference, normalised to 0 (corrupted) .. 1 (clean);
# 2. patching one site, then every (layer, position) — residual stream, attention output, MLP output;
#    denoising versus noising;
# 3. the same map in one forward pass per layer (batching), checked against the loop;
# 4. ROME's causal tracing with Gaussian noise, against symmetric token replacement (STR);
# 5. ablations: zero, mean and resample — and why zero-ablation misleads;
# 6. attribution patching: the gradient approximation of the whole map in one backward pass.
#
# Model: `zoo/facts-lm`, an 8-layer GPT-2-architecture model trained on statements about a synthetic world:
# 128 people named *Given Family* (each given name shared by 16 people, each family name by 8, so a person
# is identified only at the **last subject token**), each with a home city, language, job, colour and sport.
# It recalls the facts in training phrasings and in held-out paraphrases. Budget: about 3 hours; the notebook
# runs in about a minute on 2 idle laptop CPU cores (a busy laptop can take several times longer).

# %% tags=["setup"]
import time

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from mechinterp.autograder import check
from mechinterp.course.toolkit import get_device, load_model, patch
from mechinterp.course.toolkit.facts import answer_ids, load_world, prompt_tokens, str_pairs
from mechinterp.course.toolkit.model import HookedModel

device = get_device()
torch.set_grad_enabled(False)  # only attribution patching needs gradients; it switches them on itself
model = load_model("zoo/facts-lm", device)
facts = load_world()
SITES = {"resid": "blocks.{layer}.hook_resid_pre", "attn": "blocks.{layer}.hook_attn_out",
         "mlp": "blocks.{layer}.hook_mlp_out"}
RELATION, TEMPLATE = "city", "{s} lives in"
print(model.n_layers, "layers;", len(facts), "people; e.g.", next(iter(facts.items())))

# %% [markdown]
# ## 1. A clean and a corrupted prompt, and a metric
#
# Clean: "Ada Vorn lives in" → the model should say Ada Vorn's city. Corrupted: the same sentence about
# another person with the same given name and a different city, "Ada Kell lives in" (**symmetric token
# replacement**, STR: same template, same length, a different answer). The two prompts differ in ONE token,
# the last subject token, so any difference in the output is caused by it.
# We measure the **logit difference** between the clean answer and the corrupted answer at the last
# position: a linear function of the final residual stream (unlike a probability), and it compares the two
# answers we care about rather than the clean answer against all 136 tokens.
#
# ### Exercise 1.1 — logit_diff
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min

# %% tags=["exercise"]
def logit_diff(logits: Tensor, correct: Tensor, incorrect: Tensor) -> Tensor:
    """Logit of the correct answer minus the logit of the incorrect one, at the LAST position.

    logits: [batch, pos, d_vocab]; correct, incorrect: [batch] token ids. Returns [batch].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("patching", "logit_diff", logit_diff)

# %% [markdown]
# ### Exercise 1.2 — normalised_metric
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min
#
# Raw logit differences are hard to compare across prompts and sites. Normalise: 0 = what the corrupted run
# gives, 1 = what the clean run gives. A patch that scores 0.8 restored 80% of the clean behaviour.

# %% tags=["exercise"]
def normalised_metric(value: Tensor, clean: Tensor, corrupted: Tensor) -> Tensor:
    """Rescale a metric so that 0 = the corrupted run's value and 1 = the clean run's value.

    value: any shape; clean, corrupted: broadcastable to it. Returns (value - corrupted) / (clean - corrupted).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("patching", "normalised_metric", normalised_metric)

# %% tags=["experiment"]
pairs = str_pairs(facts, RELATION, 32, seed=0)
clean_subjects, corrupt_subjects = [a for a, _ in pairs], [b for _, b in pairs]
clean_tokens = prompt_tokens(model.tokenizer, TEMPLATE, clean_subjects).to(device)
corrupt_tokens = prompt_tokens(model.tokenizer, TEMPLATE, corrupt_subjects).to(device)
clean_answer = answer_ids(model.tokenizer, facts, RELATION, clean_subjects).to(device)
corrupt_answer = answer_ids(model.tokenizer, facts, RELATION, corrupt_subjects).to(device)
clean_logits, clean_cache = model.run_with_cache(clean_tokens)
corrupt_logits, corrupt_cache = model.run_with_cache(corrupt_tokens)
CLEAN_LD = logit_diff(clean_logits, clean_answer, corrupt_answer).mean()
CORRUPT_LD = logit_diff(corrupt_logits, clean_answer, corrupt_answer).mean()
str_tokens = model.to_str_tokens(clean_tokens[0])
print("prompt tokens:", str_tokens)
print(f"clean recall {(clean_logits[:, -1].argmax(-1) == clean_answer).float().mean():.3f}; "
      f"mean logit diff clean {CLEAN_LD:.2f}, corrupted {CORRUPT_LD:.2f}")


def metric(logits: Tensor) -> Tensor:
    """Normalised mean logit difference of a batch run on these 32 prompt pairs."""
    return normalised_metric(logit_diff(logits, clean_answer[: len(logits)], corrupt_answer[: len(logits)]).mean(),
                             CLEAN_LD, CORRUPT_LD)


# %% [markdown]
# ## 2. Patching
#
# ### Exercise 2.1 — patch_one
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~10 min
#
# A hook returns the activation the model should use. Copy the source activation at ONE position (for every
# batch row) into a clone of the current one.

# %% tags=["exercise"]
def patch_one(model: HookedModel, tokens: Tensor, source_cache: dict, name: str, pos: int) -> Tensor:
    """Run `tokens` with the activation `name` at position `pos` (every batch row) replaced by the same
    activation from `source_cache` (a cache of another run with the same shape). Returns logits
    [batch, pos, d_vocab]."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("patching", "patch_one", patch_one)

# %% [markdown]
# ### Exercise 2.2 — patching_map
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~10 min
#
# Loop over layers and positions; `SITES[site].format(layer=layer)` gives the hook name.

# %% tags=["exercise"]
def patching_map(model: HookedModel, tokens: Tensor, source_cache: dict, site: str, metric) -> Tensor:
    """The naive loop: for every layer and position, patch_one at `site` ("resid", "attn" or "mlp") and
    record metric(logits) (a scalar tensor). Returns [n_layers, pos]."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("patching", "patching_map", patching_map)

# %% tags=["experiment"]
start = time.perf_counter()
denoise = {site: patching_map(model, corrupt_tokens, clean_cache, site, metric) for site in SITES}
naive_s = time.perf_counter() - start
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
for ax, (site, m) in zip(axes, denoise.items(), strict=True):
    im = ax.imshow(m.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(str_tokens)), str_tokens, rotation=40, fontsize=8)
    ax.set_ylabel("layer")
    ax.set_title(f"denoising: restore clean {site}", fontsize=9)
fig.colorbar(im, ax=axes, shrink=0.8, label="normalised logit diff")
plt.show()
print(f"naive maps: {naive_s:.1f} s")

# %% [markdown]
# Read the residual-stream map first. At layer 0 only the **last subject token** matters — it is the only
# token that differs, so restoring it restores everything. From layer 1 on, only the **final position** does:
# by then the family name has been copied to the token that must produce the answer, and the subject's own
# stream no longer carries anything the output depends on. The attention map says which layer moved it: layer
# 0's attention output at the final token restores (almost) everything on its own. The MLP map says where the
# answer is *computed*: MLP 0 at the final token alone restores nearly all of it, and the later MLPs at the
# final token a part each. For "lives in" the fact is looked up at the final token — keep that in mind for the
# causal trace below. The lookup happens at the token that *names the relation*, which is not always the last
# one: measured the same way (32 STR pairs per relation, MLP 0 restored at one position), MLP 0 restores 0.98
# at "in" (city), "speaks", "colour" and "plays" — the final token of those phrases — but for "works as a" it
# restores 0.84 at "as" and only 0.15 at the final "a". Exercise for the curious: rerun the maps with
# `RELATION, TEMPLATE = "job", "{s} works as a"`.
#
# **Denoising vs noising.** Denoising (corrupted run, restore clean) asks: is this activation *sufficient* to
# bring the behaviour back? **Noising** (clean run, insert one corrupted activation) asks: is it *necessary*?
# They differ when the model has redundancy — a site that is not necessary (others compensate) can still be
# sufficient.

# %% tags=["experiment"]
noise_map = {site: patching_map(model, clean_tokens, corrupt_cache, site, metric) for site in ("resid", "mlp")}
fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
for ax, (title, m) in zip(axes, [("denoise resid", denoise["resid"]), ("noise resid", noise_map["resid"]),
                                 ("denoise mlp", denoise["mlp"]), ("noise mlp", noise_map["mlp"])], strict=True):
    ax.imshow(m.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(str_tokens)), str_tokens, rotation=40, fontsize=8)
    ax.set_title(title, fontsize=9)
plt.show()
print("noising: 1 = nothing lost; a value near 0 means that one activation is necessary")

# %% [markdown]
# ## 3. Faster: one forward pass per layer
#
# The naive map costs `n_layers x n_positions` forward passes. Put every position's patch in the *same*
# batch instead: repeat the prompts once per position, and patch row block $p$ at position $p$.
#
# ### Exercise 3.1 — batched_patching_map
# > Difficulty: 🔴🔴🔴⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~20 min
#
# With `big = tokens.repeat(n_pos, 1)`, rows `p * batch .. (p + 1) * batch - 1` are block $p$
# (position-major). In the hook, an index pair `act[rows, rows // batch] = source[rows, rows // batch]`
# patches every block at its own position in one assignment.

# %% tags=["exercise"]
def batched_patching_map(model: HookedModel, tokens: Tensor, source_cache: dict, site: str, metric) -> Tensor:
    """The same map with ONE forward pass per layer: repeat the batch once per position (position-major: all
    rows patched at position 0 first, then position 1, ...), patch row block p at position p, and apply
    `metric` to each block's logits. Returns [n_layers, pos], equal to patching_map's."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("patching", "batched_patching_map", batched_patching_map)

# %% tags=["experiment"]
start = time.perf_counter()
batched = {site: batched_patching_map(model, corrupt_tokens, clean_cache, site, metric) for site in SITES}
batched_s = time.perf_counter() - start
max_diff = max(float((batched[s] - denoise[s]).abs().max()) for s in SITES)
print(f"batched {batched_s:.2f} s vs naive {naive_s:.2f} s ({naive_s / batched_s:.1f}x faster); "
      f"max |batched - naive| = {max_diff:.1e}")

# %% [markdown]
# ## 4. Causal tracing (ROME) — and what the corruption does
#
# Meng et al. corrupt differently: they add **Gaussian noise** to the subject tokens' embeddings (standard
# deviation 3 x that of the embeddings, averaged over several noise samples), then restore one clean hidden
# state at a time and measure the probability of the correct answer. The *indirect effect* of a state is the
# probability with it restored minus the probability without. Averaged over many facts they found, in GPT-2
# XL, two sites: MLPs at the **last subject token** in early-to-middle layers, and attention at the **last
# token** in later layers.
#
# ### Exercise 4.1 — subject_noise
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵⚪⚪⚪ · ~5 min

# %% tags=["exercise"]
def subject_noise(shape: tuple[int, ...], embedding_std: float, generator: torch.Generator) -> Tensor:
    """ROME's corruption: Gaussian noise with standard deviation 3 x the std of the token embeddings, to be
    added to the subject tokens' embeddings. shape: e.g. [n_samples, n_subject_tokens, d_model]."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("patching", "subject_noise", subject_noise)

# %% [markdown]
# ### Exercise 4.2 — causal_trace
# > Difficulty: 🔴🔴🔴🔴⚪ · Importance: 🔵🔵🔵🔵🔵 · ~40 min
#
# One prompt, `n_samples` noisy copies. Add the noise in a `hook_embed` hook (row $i$ gets noise sample
# $i \bmod n$). For each layer, restore the clean activation at every position at once by batching, as in
# exercise 3.1: `n_pos * n_samples` rows, position-major. Return probability-with-restoration minus the
# corrupted probability.

# %% tags=["exercise"]
def causal_trace(model: HookedModel, tokens: Tensor, subject_pos: list[int], answer: int, noise: Tensor,
                 site: str) -> Tensor:
    """ROME's causal trace for one prompt. Corrupted run: `noise` [n_samples, len(subject_pos), d_model] added
    to hook_embed at the subject positions (one noise sample per row). For each (layer, position), restore the
    CLEAN activation of `site` ("resid" = blocks.{l}.hook_resid_post, the block's output, or "attn" / "mlp")
    at that position in every noisy row. Returns [n_layers, pos]: mean probability of `answer` at the last
    position with that restoration MINUS without any (the indirect effect). tokens: [1, pos].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("patching", "causal_trace", causal_trace)

# %% tags=["experiment"]
N_FACTS, N_SAMPLES = 40, 10
emb_std = float(model.W_E.std())
gen = torch.Generator().manual_seed(0)
traces = {site: [] for site in ("resid", "mlp", "attn")}
trace_subjects = [a for a, _ in str_pairs(facts, RELATION, N_FACTS, seed=1)]
probs_clean, probs_corrupt = [], []
start = time.perf_counter()
for subject in trace_subjects:
    tokens = prompt_tokens(model.tokenizer, TEMPLATE, [subject]).to(device)
    answer = int(answer_ids(model.tokenizer, facts, RELATION, [subject])[0])
    noise = subject_noise((N_SAMPLES, 2, model.d_model), emb_std, gen).to(device)
    for site in traces:
        traces[site].append(causal_trace(model, tokens, [1, 2], answer, noise, site))
    probs_clean.append(float(model(tokens)[0, -1].softmax(-1)[answer]))
trace_s = time.perf_counter() - start
aie = {site: torch.stack(t).mean(0) for site, t in traces.items()}  # [n_layers, pos]
labels = ["BOS", "first subject token", "LAST subject token", "lives", "in (last token)"]
fig, axes = plt.subplots(1, 3, figsize=(14, 3.4))
for ax, (site, m) in zip(axes, aie.items(), strict=True):
    im = ax.imshow(m.T.numpy(), cmap="Purples" if site == "resid" else ("Greens" if site == "mlp" else "Reds"),
                   aspect="auto")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("layer")
    ax.set_title(f"average indirect effect: restore {site}", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
plt.show()
print(f"traced {N_FACTS} facts x 3 sites in {trace_s:.1f} s; mean clean p(answer) {sum(probs_clean) / N_FACTS:.3f}")
print("MLP effect at the last subject token by layer:", aie["mlp"][:, 2].numpy().round(3))
print("attention effect at the last token by layer:  ", aie["attn"][:, -1].numpy().round(3))

# %% [markdown]
# Compare with ROME's Figure 1 (GPT-2 XL): there, restoring the MLP outputs at the last subject token in
# early-to-middle layers brings the answer back, and attention at the final token matters in later layers.
# **Our model does not show that pattern.** Restoring anything at the last subject token does (almost)
# nothing at any layer; the effect lives at the final token, in its residual stream from layer 0 on, in MLP 0
# and in the later MLPs (for this relation; see above for "works as a"). The printed MLP row at the last
# subject token is ≈ 0 everywhere.
#
# Why? Here a person is identified by two tokens that are BOTH needed (16 people share a given name, 8 a
# family name), and the question always comes right after the name. Layer 0's attention lets the final token
# read both names directly, and nothing in training rewards building a representation of the person at the
# subject's last token first ("enrichment"). GPT-2 XL meets each subject in countless contexts, often far
# from the question, where enriching the subject token pays off. A model trained to show the ROME pattern
# needs that pressure: chapter 08's `facts-lm-v2` also sees each name followed straight away by all of the
# person's attributes, and there the MLP at the last subject token carries the fact. The lesson is general: **a patching map describes one model on one distribution**;
# don't carry a mechanism over from a paper without measuring it.
#
# **Gaussian noise vs STR.** Zhang & Nanda point out that Gaussian noise pushes the subject embeddings
# *off-distribution*: the model may react to "this is garbage" rather than to "this is a different person",
# and restoring a state can look important merely because it removes the garbage. STR keeps every input a
# real sentence. Compare the denoising map (STR) with the causal trace (noise) for the residual stream.
# Under STR, restoring the final token's stream after block 0 restores everything; under Gaussian noise only
# about half — every later attention layer still reads the noised subject embeddings, and that damage is not
# undone by restoring one position. Same model, same question, a different map: the corruption is part of
# the experiment.

# %% tags=["experiment"]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
str_resid = denoise["resid"]
axes[0].imshow(str_resid.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
axes[0].set_title("STR: restore clean resid_pre (normalised logit diff)", fontsize=9)
axes[1].imshow((aie["resid"] / aie["resid"].max()).numpy(), cmap="Purples", aspect="auto")
axes[1].set_title("Gaussian noise: restore clean resid_post (AIE / max)", fontsize=9)
for ax in axes:
    ax.set_xticks(range(len(str_tokens)), str_tokens, rotation=40, fontsize=8)
    ax.set_ylabel("layer")
plt.show()

# %% [markdown]
# ## 5. Ablations
#
# Patching moves activations between two chosen inputs. **Ablation** removes a component's contribution —
# but "remove" must be replaced by *something*. Zero-ablation sets it to 0, a value the component may never
# produce: the downstream layers see an input far off their training distribution, and the damage measures
# that shock as much as the component's role. Mean-ablation replaces it by its average over a reference
# distribution; resample-ablation by its value on a random other input — both keep the activation
# in-distribution.
#
# ### Exercise 5.1 — ablate
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~20 min

# %% tags=["exercise"]
def ablate(model: HookedModel, tokens: Tensor, name: str, how: str, reference: Tensor | None = None,
           generator: torch.Generator | None = None) -> Tensor:
    """Run `tokens` with the activation `name` ablated at every position. how: "zero" (set to 0), "mean" (at
    each position, its mean over the rows of `reference`, a [n, pos] token batch of the same length), or
    "resample" (each row gets the activation of a random row of `reference`, drawn with `generator`).
    Returns logits."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("patching", "ablate", ablate)

# %% tags=["experiment"]
reference = prompt_tokens(model.tokenizer, TEMPLATE, [a for a, _ in str_pairs(facts, RELATION, 64, seed=2)]).to(device)
base_p = clean_logits[:, -1].softmax(-1).gather(1, clean_answer[:, None]).mean()
effects = {how: torch.zeros(2, model.n_layers) for how in ("zero", "mean", "resample")}
for how in effects:
    for i, kind in enumerate(("attn", "mlp")):
        for layer in range(model.n_layers):
            logits = ablate(model, clean_tokens, SITES[kind].format(layer=layer), how, reference,
                            torch.Generator().manual_seed(0))
            effects[how][i, layer] = base_p - logits[:, -1].softmax(-1).gather(1, clean_answer[:, None]).mean()
fig, axes = plt.subplots(1, 2, figsize=(11, 3), sharey=True)
for ax, (i, kind) in zip(axes, enumerate(("attn", "mlp")), strict=True):
    for j, how in enumerate(effects):
        ax.bar([layer + (j - 1) * 0.27 for layer in range(model.n_layers)], effects[how][i].numpy(), width=0.27,
               label=f"{how}-ablation")
    ax.set_title(f"ablating each layer's {kind} output (all positions)", fontsize=9)
    ax.set_xlabel("layer")
axes[0].set_ylabel("drop in p(correct answer)")
axes[0].legend(fontsize=8)
plt.show()
for how in effects:
    print(f"{how}-ablation drop (rows: attn, mlp):", [[round(v, 2) for v in row] for row in effects[how].tolist()])

# %% [markdown]
# Where zero-ablation and mean-ablation disagree, zero-ablation is usually the one exaggerating: the mean
# keeps whatever the component contributes on *every* prompt (its "bias"), and removes only what is specific
# to this prompt. Compare layer 1's attention above: zeroing it costs a large part of the answer's
# probability, mean-ablating it almost nothing — it carries nothing prompt-specific that the answer needs,
# but the layers after it rely on its average output. Resample-ablation adds the variation of real inputs
# back in.
#
# **Mean over what?** Take the mean at each position separately. Positions differ systematically: here the
# last MLP writes vectors with norms in the hundreds at BOS and the subject tokens, and about twenty at the
# final token. Average over positions as well and those vectors leak into every position:

# %% tags=["experiment"]
name = SITES["mlp"].format(layer=model.n_layers - 1)
_, ref_cache = model.run_with_cache(reference, names_filter=[name])
pooled_logits = model.run_with_hooks(clean_tokens, [(name, patch("mean", ref_cache[name].mean((0, 1))))])
pooled_drop = base_p - pooled_logits[:, -1].softmax(-1).gather(1, clean_answer[:, None]).mean()
print("last MLP's output norm at each position:", [round(v) for v in ref_cache[name].norm(dim=-1).mean(0).tolist()])
print(f"mean-ablating it with ONE mean over rows and positions: p(correct) drops by {pooled_drop:.2f} "
      f"(per-position mean: {effects['mean'][1, -1]:.2f})")

# %% [markdown]
# With the other positions' large outputs averaged in, the "ablated" model is no longer the model minus this
# MLP's prompt-specific work: it is a model receiving a vector it never sees at that position.
#
# ## 6. Attribution patching: the whole map from one backward pass
#
# Patching site $a$ changes the metric by $M(a_\text{clean}) - M(a_\text{corr})$. To first order that is
# $(a_\text{clean} - a_\text{corr}) \cdot \partial M / \partial a$ — and the gradient for *every* site comes
# from one backward pass on the corrupted run. It is cheap, and it is an approximation: wherever the model
# is far from linear between the two activations (attention patterns switching, saturated nonlinearities)
# it can be badly off.
#
# ### Exercise 6.1 — attribution_patching_map
# > Difficulty: 🔴🔴🔴⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~20 min
#
# `model.run_with_cache(tokens, names_filter=names, detach=False)` keeps the cached activations in the
# autograd graph; `torch.autograd.grad(metric(logits), [cache[n] for n in names])` returns their gradients.
# Gradients are off in this notebook: wrap the backward part in `with torch.enable_grad():`.

# %% tags=["exercise"]
def attribution_patching_map(model: HookedModel, clean: Tensor, corrupted: Tensor, site: str, metric) -> Tensor:
    """Attribution patching (a first-order Taylor approximation of denoising): for each layer and position,
    (clean activation - corrupted activation) . d metric / d activation, the gradient taken ONCE on the
    corrupted run and summed over d_model (and over the batch). metric(logits) returns a scalar.
    Returns [n_layers, pos]."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("patching", "attribution_patching_map", attribution_patching_map)

# %% tags=["experiment"]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
for ax, site in zip(axes, SITES, strict=True):
    approx = attribution_patching_map(model, clean_tokens, corrupt_tokens, site, metric)
    real = denoise[site] - metric(corrupt_logits)  # the change each real patch makes
    r = float(torch.corrcoef(torch.stack([approx.flatten(), real.flatten()]))[0, 1])
    ax.scatter(real.flatten().numpy(), approx.flatten().numpy(), s=12)
    lim = float(max(real.abs().max(), approx.abs().max())) * 1.05
    ax.plot([-lim, lim], [-lim, lim], color="0.6", lw=0.8)
    ax.set_xlabel("activation patching (change in metric)")
    ax.set_title(f"{site}: Pearson r = {r:.2f}", fontsize=9)
axes[0].set_ylabel("attribution patching")
plt.show()

# %% [markdown]
# Points on the diagonal are sites where the linear approximation holds. Large real effects are where it is
# most likely to fail (the clean and corrupted activations are far apart), which is why attribution
# patching is a *screen* — find candidate sites quickly, then confirm them with real patching.
#
# ## 7. Interview drills
#
# **Drill 1.** Restoring one clean activation into a corrupted run (denoising) recovers 90% of the logit
# difference. What does that tell you?
# - **a.** The activation is necessary: without it the model fails.
# - **b.** The activation is (nearly) sufficient to carry the information that decides the answer, in this
#   context.
# - **c.** The weights producing it store the fact.
# - **d.** No other site matters.

# %% tags=["exercise"]
def drill_noising_vs_denoising() -> str:
    """Drill: what does a large DENOISING effect at one site tell you? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("patching", "drill_noising_vs_denoising", drill_noising_vs_denoising)

# %% [markdown]
# **Drill 2.** Why normalise the patching metric to (value − corrupted) / (clean − corrupted)?
# - **a.** It changes which site is most important.
# - **b.** It makes patching faster.
# - **c.** It makes effects comparable across prompts, metrics and sites: 0 = no recovery, 1 = full recovery.
# - **d.** It guarantees every value lies in [0, 1].

# %% tags=["exercise"]
def drill_why_normalise() -> str:
    """Drill: why normalise the patching metric? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("patching", "drill_why_normalise", drill_why_normalise)

# %% [markdown]
# **Drill 3.** What does symmetric token replacement (STR) fix compared with Gaussian noise on the subject?
# - **a.** The corrupted input stays a real, in-distribution sentence (a different subject), so effects are
#   not artefacts of the model reacting to off-distribution embeddings.
# - **b.** It needs no matched corrupted prompt.
# - **c.** It corrupts the relation instead of the subject.
# - **d.** It halves the number of forward passes.

# %% tags=["exercise"]
def drill_str_fixes() -> str:
    """Drill: what does symmetric token replacement fix over Gaussian noise? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("patching", "drill_str_fixes", drill_str_fixes)

# %% [markdown]
# ## Where next
#
# `mechinterp reproduce patching` reruns this chapter's measurements on `zoo/facts-lm` and prints them
# beside ROME's and Zhang & Nanda's. Chapter 05 uses path patching — patching along one edge between two
# components — to recover a whole circuit.
