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
# # Chapter 03 — Induction heads and the logit lens
#
# *Anchors: Elhage et al. (2021), "A Mathematical Framework for Transformer Circuits"; Olsson et al.
# (2022), "In-context Learning and Induction Heads"; nostalgebraist (2020), "interpreting GPT: the logit
# lens".*
#
# An **induction head** completes patterns: having seen `... A B ... A`, it predicts `B`. It is the
# simplest circuit that needs two attention layers working together, and Olsson et al. argue it is the
# mechanism behind most in-context learning. In this chapter you find one in a real (tiny) transformer,
# prove it is one, and read how it is built from its weights:
#
# 1. per-token loss on repeated random tokens: in-context learning appears with two layers, not one;
# 2. head detectors: previous-token, duplicate-token and induction scores from attention patterns;
# 3. direct logit attribution and ablations: which heads *cause* the prediction;
# 4. the circuit in the weights: K-composition between a previous-token head and the induction head,
#    and the copying OV circuit;
# 5. the logit lens on a real-text language model.
#
# Models: `zoo/attn-only-2l` and `zoo/attn-only-1l` (attention-only transformers trained on sequences with
# repeated random segments) and `zoo/text-lm` (a small GPT-2-architecture model trained on English text).
# All three are ordinary `transformers` GPT-2 models behind the course's hooks API (hook names as in
# TransformerLens; see *Models and hooks*). Budget: about 3 hours; the notebook runs in well under a minute on 2 idle
# CPU cores (a busy laptop can take several times longer).

# %% tags=["setup"]
import matplotlib.pyplot as plt
import torch
from torch import Tensor

from mechinterp.autograder import check
from mechinterp.course.toolkit import HookedModel, get_device, load_model, patch, plotting
from mechinterp.course.toolkit.data import repeated_random_tokens
from mechinterp.course.toolkit.zoo import heldout_ids

device = get_device()
torch.set_grad_enabled(False)  # analysis only: no gradients needed anywhere in this chapter
model_2l = load_model("zoo/attn-only-2l", device)
model_1l = load_model("zoo/attn-only-1l", device)
HALF = 32
tokens = repeated_random_tokens(64, HALF, model_2l.d_vocab, torch.Generator().manual_seed(0)).to(device)
print(model_2l.n_layers, "layers,", model_2l.n_heads, "heads per layer; tokens", list(tokens.shape))

# %% [markdown]
# ## 1. In-context learning on repeated random tokens
#
# Random tokens are unpredictable — until they repeat. Each row of `tokens` is 32 random tokens followed by
# the same 32 again. A model that can look back and copy should predict the second half almost perfectly;
# one that cannot is stuck at chance ($\ln 64 \approx 4.16$ nats).
#
# ### Exercise 1.1 — per_token_loss
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min
#
# The logits at position $i$ predict token $i + 1$. *Usual mistake:* forgetting that shift.

# %% tags=["exercise"]
def per_token_loss(logits: Tensor, tokens: Tensor) -> Tensor:
    """Cross-entropy of each next-token prediction: position i predicts tokens[:, i + 1].

    logits: [batch, pos, d_vocab]; tokens: [batch, pos]. Returns [batch, pos - 1] (nats, >= 0).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("induction_heads", "per_token_loss", per_token_loss)

# %% tags=["experiment"]
losses = {name: per_token_loss(model(tokens), tokens).mean(0).cpu()  # before any figure: an unfinished
          for name, model in [("1 layer", model_1l), ("2 layers", model_2l)]}  # exercise leaves no empty axes
fig, ax = plt.subplots(figsize=(7, 3))
for name, loss in losses.items():
    ax.plot(range(1, 2 * HALF), loss, label=f"{name}: first half {loss[:HALF - 1].mean():.2f}, "
            f"repeated half {loss[HALF:].mean():.2f} nats")
ax.axvline(HALF, color="0.7", ls="--")
ax.set_xlabel("position of the predicted token")
ax.set_ylabel("loss (nats)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The 2-layer model's loss collapses the moment the sequence starts repeating; the 1-layer model barely
# improves. Something in the 2-layer model looks back at the earlier copy. Let us find it.
#
# ## 2. Reading attention patterns
#
# `run_with_cache` returns every named activation; `blocks.{l}.attn.hook_pattern` is
# `[batch, head, query, key]`: row $q$ says where position $q$ attends.

# %% tags=["experiment"]
logits, cache = model_2l.run_with_cache(tokens)
plotting.plot_attention_patterns(
    [cache[f"blocks.{layer}.attn.hook_pattern"][0] for layer in range(2)], title="attn-only-2l, sequence 0")
plt.show()

# %% [markdown]
# Look for two shapes: a stripe just below the diagonal (each token attends to the one before it: a
# **previous-token head**) and, in the second half, a stripe offset by $32 - 1$ (each token attends to the
# token *after* its earlier occurrence: an **induction head**). Turn the eyeballing into numbers.
#
# ### Exercise 2.1 — prev_token_score
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min
#
# `pattern.diagonal(offset, dim1=-2, dim2=-1)` reads a diagonal stripe. *Usual mistake:* the main diagonal
# is attention to the token itself.

# %% tags=["exercise"]
def prev_token_score(pattern: Tensor) -> Tensor:
    """Mean attention from each position to the position just before it (positions 1 .. pos - 1).

    pattern: [batch, head, query, key]. Returns [head].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("induction_heads", "prev_token_score", prev_token_score)

# %% [markdown]
# ### Exercise 2.2 — duplicate_token_score and induction_score
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~10 min
#
# On a sequence whose second half repeats the first, the token at $q \ge$ `half` appeared before at
# $q - \text{half}$. A **duplicate-token** head attends there; an **induction** head attends one step
# further, to $q - \text{half} + 1$ — the token that came next last time, which is what it predicts.
# Average over second-half queries only. *Usual mistake:* mixing up the two offsets.

# %% tags=["exercise"]
def duplicate_token_score(pattern: Tensor, half: int) -> Tensor:
    """On a repeated sequence (second half = first half), mean attention from each second-half position q
    to the earlier occurrence of the same token, q - half.

    pattern: [batch, head, 2 * half, 2 * half]. Returns [head].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("induction_heads", "duplicate_token_score", duplicate_token_score)


# %% tags=["exercise"]
def induction_score(pattern: Tensor, half: int) -> Tensor:
    """On a repeated sequence, mean attention from each second-half position q to the token AFTER the
    earlier occurrence of its token, q - half + 1 (what an induction head attends to).

    pattern: [batch, head, 2 * half, 2 * half]. Returns [head].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("induction_heads", "induction_score", induction_score)

# %% tags=["experiment"]
scores = {}
for name, model in [("attn-only-1l", model_1l), ("attn-only-2l", model_2l)]:
    _, c = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    patterns = [c[f"blocks.{layer}.attn.hook_pattern"] for layer in range(model.n_layers)]
    scores[name] = {
        "previous token": torch.stack([prev_token_score(p) for p in patterns]).cpu(),
        "duplicate token": torch.stack([duplicate_token_score(p, HALF) for p in patterns]).cpu(),
        "induction": torch.stack([induction_score(p, HALF) for p in patterns]).cpu(),
    }
plotting.plot_head_scores(scores)
plt.show()
induction_head = int(scores["attn-only-2l"]["induction"][1].argmax())
prev_head = int(scores["attn-only-2l"]["previous token"][0].argmax())
print(f"induction head 1.{induction_head} (score {scores['attn-only-2l']['induction'][1, induction_head]:.2f}), "
      f"previous-token head 0.{prev_head} (score {scores['attn-only-2l']['previous token'][0, prev_head]:.2f}); "
      f"best 1-layer induction score {scores['attn-only-1l']['induction'].max():.2f}")

# %% [markdown]
# In the 2-layer model, layer 0 has a head that attends to the previous token and layer 1 has heads with
# induction scores far above chance ($1/64$ on average for a uniform head). The 1-layer model has nothing
# like it. Compare with Olsson et al.: in every model with two or more layers they trained, induction heads
# formed (in a sudden "phase change" early in training), and none formed in 1-layer attention-only models.
#
# ## 3. Which heads cause the prediction?
#
# Attention patterns show where a head *looks*, not what it *does*. Two tools answer the causal question.
#
# **Direct logit attribution (DLA).** The logits are a linear function of the residual stream, up to the
# final LayerNorm. Freeze that LayerNorm's scale at this input and the logit of the correct next token
# splits into a sum over everything written to the residual stream — including one term per head.
#
# ### Exercise 3.1 — head_logit_attribution
# > Difficulty: 🔴🔴🔴⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~20 min
#
# LayerNorm computes $\mathrm{LN}(x) = \frac{x - \bar x}{\sigma(x)} \odot w + b$. For a head's output
# $r$ (a summand of $x$), its contribution is $\frac{r - \bar r}{\sigma(x)} \odot w$ projected on
# $W_U[:, t]$ for the true next token $t$. *Usual mistakes:* forgetting to centre $r$; dividing by
# $\sigma(r)$ instead of $\sigma(x)$.

# %% tags=["exercise"]
def head_logit_attribution(result: Tensor, final_resid: Tensor, ln_weight: Tensor, W_U: Tensor,
                           tokens: Tensor, eps: float = 1e-5) -> Tensor:
    """Direct logit attribution: each head's contribution to the logit of the true next token.

    The final LayerNorm is treated as linear by freezing its scale at this input: a head's output r
    enters the logit as ((r - mean(r)) / std(final_resid)) * ln_weight @ W_U[:, next token], where std is
    LayerNorm's: sqrt(var + eps) with the BIASED variance (divide by d_model) and eps = `eps`.
    result: [batch, pos, head, d_model] (one layer's attn.hook_result); final_resid: [batch, pos, d_model]
    (the residual stream entering ln_final); ln_weight: [d_model]; W_U: [d_model, d_vocab];
    tokens: [batch, pos]. Returns [head, batch, pos - 1].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("induction_heads", "head_logit_attribution", head_logit_attribution)

# %% tags=["experiment"]
final_resid = cache["blocks.1.hook_resid_post"]
dla = torch.stack([head_logit_attribution(cache[f"blocks.{layer}.attn.hook_result"], final_resid,
                                          model_2l.ln_final.weight, model_2l.W_U, tokens) for layer in range(2)])
first, second = dla[..., : HALF - 1].mean((-2, -1)).cpu(), dla[..., HALF:].mean((-2, -1)).cpu()
plotting.plot_layer_head_bars({"first half": first, "repeated half": second},
                              ylabel="direct logit attribution to the true token")
plt.show()

# %% [markdown]
# On the repeated half the layer-1 induction heads write most of the correct logit directly; layer 0
# writes little directly. DLA cannot see *indirect* effects: the previous-token head matters only through
# the induction head's keys. **Ablation** sees them. Knock a head out and measure the damage.
#
# ### Exercise 3.2 — ablated_repeat_loss
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~15 min
#
# Patch the head's `hook_z` with `patch("zero", head=...)` or `patch("mean", mean_z, head=...)` inside
# `with model.hooks([...]):`. Mean-ablation replaces the head's output by its *average*, which keeps the
# residual stream on-distribution; zero-ablation can push later layers into states they never saw.

# %% tags=["exercise"]
def ablated_repeat_loss(model: HookedModel, tokens: Tensor, layer: int, head: int, how: str = "zero") -> Tensor:
    """Mean loss on the repeated (second) half of `tokens` with one head ablated at its hook_z.

    how: "zero" (z of that head set to 0) or "mean" (z of that head replaced by its mean over batch and
    positions on these tokens). tokens: [batch, 2 * half]. Returns a scalar tensor.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("induction_heads", "ablated_repeat_loss", ablated_repeat_loss)

# %% tags=["experiment"]
clean = per_token_loss(model_2l(tokens), tokens)[:, HALF:].mean()
increase = {how: torch.tensor([[float(ablated_repeat_loss(model_2l, tokens, layer, h, how) - clean)
                                for h in range(model_2l.n_heads)] for layer in range(2)])
            for how in ("zero", "mean")}
plotting.plot_layer_head_bars(increase, ylabel="repeated-half loss increase (nats)")
plt.show()
print("repeated-half loss", round(float(clean), 3), "nats; increase when mean-ablated:\n", increase["mean"].numpy().round(3))

# %% [markdown]
# Ablating the previous-token head destroys in-context copying: every induction head depended on it.
# Ablating one induction head costs less than you might expect: this model has several, and they back
# each other up. But one layer-0 head that none of our detectors flagged also matters a lot. What does it
# attend to? Measure attention by offset: how much each query attends to the key $d$ positions back.

# %% tags=["experiment"]
offsets = torch.stack([cache["blocks.0.attn.hook_pattern"].diagonal(-d, -2, -1).mean((0, -1)) for d in (1, 2, 3, 4)], -1)
print("layer-0 attention to the key d positions back (rows: heads; columns: d = 1, 2, 3, 4)")
print(offsets.cpu().numpy().round(2))

# %% [markdown]
# One head attends to the previous token and another to the token **two** back: this model's induction
# heads match on the previous *two* tokens, which makes sense for its training data (random segments,
# where a single-token match is often a coincidence). The textbook circuit (Elhage et al., Olsson et al.)
# has one previous-token head; a real model can use a richer variant. Detectors find what you look for:
# ablations find what the model uses.
#
# ## 4. The circuit in the weights
#
# Elhage et al. read circuits straight from the weights. Each head is two low-rank maps on the residual
# stream: the **QK circuit** $W_{QK} = W_Q W_K^\top$ (where to attend) and the **OV circuit**
# $W_{OV} = W_V W_O$ (what to write). An induction head's *key* must encode "the previous token was X":
# its $W_{QK}$ reads the subspace that the previous-token head's $W_{OV}$ writes to. That is
# **K-composition**, measured by
#
# $$\text{score}(W_A, W_B) = \frac{\lVert W_A W_B \rVert_F}{\lVert W_A \rVert_F \lVert W_B \rVert_F},
# \quad W_A = W_{OV}^{0.h}, \; W_B = (W_{QK}^{1.h'})^\top .$$
#
# ### Exercise 4.1 — composition_score
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min

# %% tags=["exercise"]
def composition_score(W_A: Tensor, W_B: Tensor) -> Tensor:
    """How much two linear maps compose: ||W_A W_B||_F / (||W_A||_F ||W_B||_F) (Elhage et al. 2021).

    W_A: [..., d, d]; W_B: [..., d, d] (broadcast over leading dims). Returns [...]; 0 = orthogonal,
    1 = perfectly aligned.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("induction_heads", "composition_score", composition_score)

# %% tags=["experiment"]
# model.W_OV(l), model.W_QK(l): [head, d_model, d_model], the block's LayerNorm gain folded in
W_OV0, W_OV1, W_QK1 = model_2l.W_OV(0), model_2l.W_OV(1), model_2l.W_QK(1)
k_comp = composition_score(W_OV0[:, None], W_QK1.transpose(-1, -2)[None]).cpu()  # [head 0.h, head 1.h']
plotting.plot_matrix(k_comp, xlabel="layer-1 head", ylabel="layer-0 head", title="K-composition scores")
plt.show()
print(f"K-composition 0.{prev_head} -> 1.{induction_head}: {k_comp[prev_head, induction_head]:.3f} "
      f"(median over all pairs {k_comp.median():.3f})")

# %% [markdown]
# The previous-token head composes with the induction heads far more than the typical pair does.
# Finally, the induction head must **copy**: attending to token $B$ should raise the logit of $B$. Its
# full OV circuit $W_E W_{OV} W_U$ maps each input token to output logits; for a copying head the diagonal
# dominates.
#
# ### Exercise 4.2 — copying_fraction
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵⚪⚪⚪ · ~5 min

# %% tags=["exercise"]
def copying_fraction(full_ov: Tensor) -> Tensor:
    """For each head's full OV circuit (token in -> logit out), the fraction of input tokens whose
    highest output logit is the token itself: 1 for a perfect copying head.

    full_ov: [head, d_vocab, d_vocab] (row = input token, column = output logit). Returns [head].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("induction_heads", "copying_fraction", copying_fraction)

# %% tags=["experiment"]
full_ov = model_2l.W_E @ W_OV1 @ model_2l.W_U  # [head, d_vocab, d_vocab] (ignoring the final LayerNorm)
eig = torch.linalg.eigvals(full_ov)
positivity = (eig.sum(-1) / eig.abs().sum(-1)).real
print("layer-1 heads, copying fraction:", copying_fraction(full_ov).cpu().numpy().round(2),
      " eigenvalue positivity:", positivity.cpu().numpy().round(2))

# %% [markdown]
# Elhage et al. summarise copying by the eigenvalues of the OV circuit: mostly positive eigenvalues
# ($\sum\lambda / \sum|\lambda| \to 1$) mean the head increases the logits of what it attends to.
#
# ## 5. The logit lens
#
# The residual stream is a shared workspace that every layer reads and writes. nostalgebraist's **logit
# lens** decodes it *early*: apply the final LayerNorm and unembedding to the residual stream after each
# block and ask how good a next-token prediction it already is. We switch to `zoo/text-lm`, a 4-layer
# model trained on English text.
#
# ### Exercise 5.1 — logit_lens
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~15 min
#
# Cache the residual stream entering each block and leaving the last one, decode each through
# `model.ln_final` and `model.W_U`, and return the log-probability of the true next token.
# *Usual mistake:* decoding without the final LayerNorm (the unembedding never sees an un-normalised
# residual stream).

# %% tags=["exercise"]
def logit_lens(model: HookedModel, tokens: Tensor) -> Tensor:
    """Log-probability of the true next token when the residual stream is decoded early.

    Decode the residual stream entering each block (blocks.{l}.hook_resid_pre) and the one leaving the
    last block (blocks.{n_layers - 1}.hook_resid_post) through model.ln_final and model.W_U.
    tokens: [batch, pos]. Returns [n_layers + 1, batch, pos - 1]; the last row equals the model's own
    log-probabilities.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("induction_heads", "logit_lens", logit_lens)

# %% tags=["experiment"]
text_lm = load_model("zoo/text-lm", device)
text = heldout_ids("text-lm")[: 16 * text_lm.n_ctx].view(16, text_lm.n_ctx).to(device)  # held-out text
lens = logit_lens(text_lm, text).mean((1, 2)).cpu()
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(range(len(lens)), lens, marker="o")
ax.set_xticks(range(len(lens)), ["embed"] + [f"after block {i}" for i in range(len(lens) - 1)], rotation=20)
ax.set_ylabel("mean log p(true next token)")
plt.show()
print("mean log-prob by depth:", lens.numpy().round(2))

names = [f"blocks.{layer}.hook_resid_pre" for layer in range(text_lm.n_layers)]
names.append(f"blocks.{text_lm.n_layers - 1}.hook_resid_post")
for prompt in ["And God said, Let there be light: and there was", "The king of Israel went up to",
               "dog: a domesticated"]:
    _, pcache = text_lm.run_with_cache(text_lm.to_tokens(prompt), names_filter=names)
    print(f"\n{prompt!r} -> top 5 next tokens, decoded at each depth")
    for name in names:
        top = (text_lm.ln_final(pcache[name][0, -1]) @ text_lm.W_U).topk(5).indices
        print(f"  {name:26s}", [text_lm.tokenizer.decode([int(t)]) for t in top])

# %% [markdown]
# The prediction sharpens with depth, and the final layer is the best (the model was trained for it).
# The lens assumes that every layer speaks the final layer's "language": early layers can use directions
# the unembedding does not read, which is why the lens is poor on the embeddings (tied embeddings even
# predict the *current* token) and why the **tuned lens** (Belrose et al. 2023) trains one affine probe
# per layer instead.
#
# ## 6. Interview drills
#
# **Drill 1.** What two things does an induction head need?
# - **a.** A previous-token head, and nothing else.
# - **b.** A way to find where the current token occurred before (a key that says "the previous token was
#   X", written by a previous-token head: K-composition), and an OV circuit that copies the attended token.
# - **c.** An MLP that stores bigrams.
# - **d.** Positional embeddings that encode the distance to the last repeat.

# %% tags=["exercise"]
def drill_induction_needs() -> str:
    """Drill: what two things does an induction head need? Return the letter of the best answer."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("induction_heads", "drill_induction_needs", drill_induction_needs)

# %% [markdown]
# **Drill 2.** Why can't a 1-layer attention-only model form an induction head?
# - **a.** Its keys are functions of single tokens (and positions) only: no earlier head has written
#   "the previous token was X" into the residual stream for a key to read.
# - **b.** It has no attention, only embeddings.
# - **c.** It was trained for fewer steps.
# - **d.** It has only one head.

# %% tags=["exercise"]
def drill_one_layer_cannot() -> str:
    """Drill: why can't a 1-layer attention-only model form an induction head? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("induction_heads", "drill_one_layer_cannot", drill_one_layer_cannot)

# %% [markdown]
# **Drill 3.** What does the logit lens assume?
# - **a.** That the model is retrained with an unembedding at every layer.
# - **b.** That a probe is trained for each layer.
# - **c.** That the model has at most two layers.
# - **d.** That intermediate residual streams live in the same basis the final unembedding reads, so
#   decoding them with the final LayerNorm and $W_U$ is meaningful (the tuned lens drops this assumption).

# %% tags=["exercise"]
def drill_logit_lens_assumes() -> str:
    """Drill: what does the logit lens assume? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("induction_heads", "drill_logit_lens_assumes", drill_logit_lens_assumes)

# %% [markdown]
# ## Where next
#
# `mechinterp reproduce induction_heads` reruns this chapter's measurements on the shipped models and
# prints them beside the papers' claims. Chapter 04 turns ablation into a precise instrument (activation
# patching), and chapter 05 uses it to find a much larger circuit in which induction heads play a part.
