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
# # Chapter 08 — Locate, then edit: ROME's rank-one fact edit, measured like CounterFact
#
# *Anchors: Meng, Bau, Andonian & Belinkov (2022), "Locating and Editing Factual Associations in GPT" (ROME,
# CounterFact); Geva, Bastings, Filippova & Globerson (2023), "Dissecting Recall of Factual Associations in
# Auto-Regressive Language Models"; Hase, Bansal, Kim & Ghandeharioun (2023), "Does Localization Inform
# Editing?"; Zhu et al. (2020) on constrained fine-tuning; Meng et al. (2023), MEMIT.*
#
# Chapter 04 *located* facts with causal tracing. This chapter *edits* one: it rewrites what a model believes
# about one person — "Ada Vorn lives in Quen" becomes "… in Tarsk" — by changing one MLP matrix with a
# rank-one update, and then measures the edit the way the ROME paper's CounterFact benchmark does: does the
# new fact win on the edit prompt (**efficacy**), on phrasings never used to edit (**paraphrase**), and do
# other people who share the old fact keep it (**specificity**)?
#
# 1. where the fact is: causal traces of two models trained on the same world;
# 2. the key k*: what the edited MLP reads at the subject's last token;
# 3. the key statistics C = E[k kᵀ];
# 4. the value: the MLP output change δ that makes the new object win;
# 5. the rank-one update, and what it does to one fact;
# 6. CounterFact-style evaluation over 50 edits: ROME against fine-tuning (FT) and constrained fine-tuning
#    (FT-L);
# 7. does the trace say where to edit? ROME at every layer.
#
# Models: `zoo/facts-lm-v2` and, as the contrast, chapter 04's `zoo/facts-lm`. Both are 8-layer GPT-2s
# trained on the same 128 people (a person is named by *Given Family*: each given name is shared by 16 people,
# each family name by 8, so only the last subject token identifies them) with five attributes each. `facts-lm`
# saw statements only ("Ada Vorn lives in quen ."). `facts-lm-v2` also saw **profile rows** — the name followed
# straight away by the person's five attributes in a random order ("Ada Vorn quen velish baker red golf .") —
# and questions asked through a pronoun after an aside. Its family-name position therefore has to predict every
# attribute of the person. Budget: about 3 hours; the notebook runs in about a minute and a half on 2 idle
# laptop CPU cores (a busy laptop can take several times longer).

# %% tags=["setup"]
import time

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from mechinterp.autograder import check
from mechinterp.course.toolkit import get_device, load_model
from mechinterp.course.toolkit import editing as ed
from mechinterp.course.toolkit.facts import RELATIONS, load_world
from mechinterp.course.toolkit.model import HookedModel
from mechinterp.course.toolkit.tracing import trace_facts

device = get_device()
torch.set_grad_enabled(False)  # the value optimisation and fine-tuning switch gradients on themselves
model = load_model("zoo/facts-lm-v2", device)
contrast = load_model("zoo/facts-lm", device)
facts = load_world("facts-lm-v2")
print(model.n_layers, "layers;", len(facts), "people; e.g.", next(iter(facts.items())))

# %% [markdown]
# ## 1. Where is the fact? Causal traces of two models
#
# ROME's causal trace (chapter 04): add Gaussian noise (3× the embedding standard deviation) to the subject's
# token embeddings, which destroys the recall, then restore one clean activation and see how much of the
# answer's probability comes back. `trace_facts` averages the trace over facts of two relations and reports
# three positions: the first subject token, the **last subject token**, and the final token.
#
# In GPT-2 XL, ROME found a distinctive pattern: a strong MLP effect at the last subject token in early-to-middle
# layers, and an attention effect at the final token in later layers. Geva et al. (2023) read it as a
# two-step mechanism — **subject enrichment** (early MLPs write the subject's attributes into the last subject
# token's residual stream) and **attribute extraction** (later attention heads at the final token read the
# attribute the relation asks for).

# %% tags=["experiment"]
start = time.perf_counter()
TRACE_RELATIONS = ["city", "job"]
traces = {name: trace_facts(m, facts, TRACE_RELATIONS, n_subjects=8)
          for name, m in (("facts-lm-v2", model), ("facts-lm", contrast))}
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), sharey=True)
for ax, (name, tr) in zip(axes, traces.items(), strict=True):
    ax.plot(tr["mlp"][:, 1], "o-", label="MLP at the last subject token")
    ax.plot(tr["mlp"][:, 0], "o:", label="MLP at the first subject token")
    ax.plot(tr["attn"][:, 2], "s--", label="attention at the final token")
    ax.plot(tr["mlp"][:, 2], "s:", label="MLP at the final token")
    ax.set_title(f"{name}: p(clean) {tr['p_clean']:.2f}, noised {tr['p_corrupted']:.2f}", fontsize=9)
    ax.set_xlabel("layer")
axes[0].set_ylabel("indirect effect on p(answer)")
axes[1].legend(fontsize=8)
plt.show()
mlp_last = traces["facts-lm-v2"]["mlp"][:, 1]
EDIT_LAYER = int(mlp_last.argmax())
print(f"traces: {time.perf_counter() - start:.1f} s; facts-lm-v2's MLP effect at the last subject token peaks "
      f"at layer {EDIT_LAYER} ({mlp_last.max():.2f})")

# %% [markdown]
# The two models answer the same questions from the same world by different routes. In `facts-lm` the
# subject's MLPs do nothing: the final token's attention copies the raw name and its own MLPs look the fact
# up (chapter 04). In `facts-lm-v2` the MLPs at the **last subject token** carry a large effect in the first
# layers and the first subject token's much less, while the final token's attention matters in the later
# layers: ROME's signature, at this scale in the first layers (8 layers in all, so "early" is layer 0–2). The
# profile rows made enrichment pay: the family-name position had to predict all five attributes anyway, and
# a question asked later can read them from there.
#
# ROME's bet is that the MLP at that layer and position is a **key–value store**: its hidden activation at the
# last subject token is a *key* that identifies the subject, and its output matrix maps the key to a *value*
# that, once in the residual stream, makes later layers say the subject's attributes. Edit the matrix so the
# subject's key maps to a new value, and the model should say the new fact wherever it reads the subject.

# %% [markdown]
# ## 2. The key k*
#
# The GPT-2 MLP computes `h = gelu(x W_in + b_in)` and adds `h W + b` to the residual stream. ROME edits `W`
# (`mlp.c_proj`, [d_mlp, d_model]); its input `h` — the hook point `mlp.hook_post` — is the key. The key at
# the last subject token depends on what came before the subject, so ROME averages it over several prefixes:
# `ed.context_prompts(request)` puts the rewrite prompt behind every prefix the model was trained with.
#
# ### Exercise 2.1 — compute_key
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~10 min

# %% tags=["exercise"]
def compute_key(model: HookedModel, tokens: Tensor, subject_last: Tensor, layer: int) -> Tensor:
    """ROME's key k*: the input of `layer`'s MLP output matrix (`blocks.{layer}.mlp.hook_post`, AFTER the
    nonlinearity) at each row's LAST SUBJECT TOKEN, averaged over the rows (the same subject behind different
    prefixes).

    tokens: [n, pos]; subject_last: [n] positions. Returns [d_mlp].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("editing", "compute_key", compute_key)

# %% tags=["experiment"]
requests = ed.edit_requests(facts, 50, seed=0)
request = requests[0]
print(request)
ids, last, sub_last = ed.encode(model.tokenizer, ed.context_prompts(request), request.subject)
for row in ids[:3]:
    print(model.to_str_tokens(row))
print("last subject token at", sub_last.tolist())
key = compute_key(model, ids.to(device), sub_last.to(device), EDIT_LAYER)
print("k*:", tuple(key.shape), f"norm {key.norm():.2f}")

# %% [markdown]
# ## 3. The key statistics C
#
# A rank-one change of `W` moves the output of *every* key that has a component along the direction it uses.
# ROME picks the direction that disturbs the keys the MLP usually sees the least: it weights directions by
# C = E[k kᵀ], the (uncentred) second moment of keys collected over text the model was trained on. The update
# then solves a least-squares problem: change `W` as little as possible *on the distribution of keys*, subject
# to k* ↦ v* exactly — whose solution uses C⁻¹k* as the direction.
#
# ### Exercise 3.1 — second_moment
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min

# %% tags=["exercise"]
def second_moment(keys: Tensor) -> Tensor:
    """C = E[k kᵀ], the UNCENTRED second moment of the keys (ROME's key statistics), over the rows of
    keys [n, d_mlp]. Returns [d_mlp, d_mlp]."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("editing", "second_moment", second_moment)

# %% tags=["experiment"]
start = time.perf_counter()
C_by_layer = ed.key_statistics(model, list(range(model.n_layers)), facts, second_moment=second_moment)
C = C_by_layer[EDIT_LAYER]
eig = torch.linalg.eigvalsh(C.cpu().double())
print(f"C for every layer from 2,000 statements ({time.perf_counter() - start:.1f} s); layer {EDIT_LAYER}: "
      f"{tuple(C.shape)}, eigenvalues "
      f"{eig.max():.3g} .. {eig.min():.3g} (a small ridge keeps it invertible)")
c_inv_k = torch.linalg.solve(C, key)
print(f"cosine(k*, C⁻¹k*) = {torch.cosine_similarity(key, c_inv_k, 0):.2f}: C⁻¹ turns the direction away "
      "from what common keys share")
fig, ax = plt.subplots(figsize=(7, 2.8))
ax.semilogy(eig.flip(0).numpy())
ax.set_xlabel("eigenvalue index")
ax.set_ylabel("eigenvalue of C")
ax.set_title(f"layer {EDIT_LAYER}: a few key directions carry most of the energy", fontsize=9)
plt.show()

# %% [markdown]
# ## 4. The value: what should the MLP output?
#
# ROME finds the new value by optimisation: a vector δ is added to the MLP's output at the last subject token,
# and trained so that the new object becomes likely at the end of every context prompt — while a KL term keeps
# the model's prediction on an "essence" prompt close to the original, so that the edit changes one fact, not
# who the subject is. Our essence prompt is the bare name: after "Ada Vorn" the model predicts Ada Vorn's
# attributes (the profile rows), so the KL term asks δ to leave the other four alone.
#
# ### Exercise 4.1 — optimise_delta
# > Difficulty: 🔴🔴🔴🔴⚪ · Importance: 🔵🔵🔵🔵⚪ · ~25 min
#
# A hook on `blocks.{layer}.hook_mlp_out` that returns `act` with δ added at the right position (clone first, or
# build the sum out of place). Adam on `[delta]`; gradients must flow, so wrap the loop in `torch.enable_grad()`
# (this notebook switched them off).

# %% tags=["exercise"]
def optimise_delta(model: HookedModel, layer: int, tokens: Tensor, subject_last: Tensor, last: Tensor,
                   target: int, essence: Tensor, essence_subject_last: int, steps: int = 30, lr: float = 0.1,
                   kl_weight: float = 1.0) -> Tensor:
    """ROME's value optimisation, written as the change δ of the MLP output. δ [d_model] starts at zero and is
    ADDED to `blocks.{layer}.hook_mlp_out` at the last subject token of every row of `tokens` and of the
    `essence` prompt. `steps` Adam steps (learning rate `lr`) minimise

        mean over rows of −log p(target | row, at the row's `last` position)
        + kl_weight · KL( p_before ‖ p_with_δ )   at the essence prompt's final position,

    where p_before is the unedited model's next-token distribution there (ROME's "essence drift" term, which
    keeps what else the model says about the subject). tokens: [n, pos] (right-padded); subject_last, last: [n];
    essence: [1, pos_e]. Returns δ (detached); the model is unchanged.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("editing", "optimise_delta", optimise_delta)

# %% tags=["experiment"]
new_id, old_id = ed.token_id(model.tokenizer, request.new), ed.token_id(model.tokenizer, request.old)
essence, _, essence_sub = ed.encode(model.tokenizer, [request.subject], request.subject)
delta = optimise_delta(model, EDIT_LAYER, ids.to(device), sub_last.to(device), last.to(device), new_id,
                       essence.to(device), int(essence_sub[0]))
W = ed.mlp_out_weight(model, EDIT_LAYER).detach()
value = key @ W + delta
print(f"|δ| = {delta.norm():.2f} against |k*·W| = {(key @ W).norm():.2f}")

# %% [markdown]
# ## 5. The rank-one update
#
# With C, k* and v*, ROME's closed form is W' = W + (C⁻¹k*) Λᵀ with Λ = (v* − k*ᵀW) / (k*ᵀC⁻¹k*): it maps k*
# to v* exactly, and any other key k moves by (k·C⁻¹k*) Λ — nothing for keys that are C⁻¹-orthogonal to k*.
#
# ### Exercise 5.1 — rank_one_update
# > Difficulty: 🔴🔴🔴⚪⚪ · Importance: 🔵🔵🔵🔵🔵 · ~15 min

# %% tags=["exercise"]
def rank_one_update(W: Tensor, key: Tensor, value: Tensor, C: Tensor) -> Tensor:
    """ROME's closed-form edit of an MLP output matrix W [d_mlp, d_model] (the MLP adds key @ W + b): the new
    matrix W' = W + (C⁻¹k) Λᵀ with Λ = (v − kᵀW) / (kᵀ C⁻¹ k), so that key @ W' == value exactly while keys
    that C says are typical change as little as possible. key: [d_mlp]; value: [d_model]; C: [d_mlp, d_mlp].
    Solve with C rather than inverting it. Returns W' (W itself is not modified)."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("editing", "rank_one_update", rank_one_update)

# %% tags=["experiment"]
W_new = rank_one_update(W, key, value, C)


def top_predictions(prompts: list[str], W_layer: Tensor, k: int = 3) -> list[list[str]]:
    with ed.edited(model, EDIT_LAYER, W_layer):
        p_ids, p_last, _ = ed.encode(model.tokenizer, prompts)
        logits = ed.last_logits(model, p_ids, p_last)
    return [model.tokenizer.convert_ids_to_tokens(row.topk(k).indices.tolist()) for row in logits]


shown = [ed.rewrite_prompt(request), *ed.paraphrase_prompts(request)[:2], *ed.neighbourhood_prompts(facts,
         request)[:2], request.subject]
for prompt, before, after in zip(shown, top_predictions(shown, W), top_predictions(shown, W_new), strict=True):
    print(f"{prompt!r:52} before {before}  after {after}")
print(f"edit: {request.old} -> {request.new}; rank of W' - W: {torch.linalg.matrix_rank(W_new - W)}")
values = RELATIONS[request.relation][1]
value_ids = model.tokenizer.convert_tokens_to_ids(list(values))
fig, axes = plt.subplots(1, 2, figsize=(12, 2.8), sharey=True)
for ax, prompt in zip(axes, [ed.rewrite_prompt(request), ed.neighbourhood_prompts(facts, request)[0]], strict=True):
    p_ids, p_last, _ = ed.encode(model.tokenizer, [prompt])
    for shift, (label, W_layer) in zip((-0.2, 0.2), (("before", W), ("after ROME", W_new)), strict=True):
        with ed.edited(model, EDIT_LAYER, W_layer):
            probs = ed.last_logits(model, p_ids, p_last)[0].softmax(-1)[value_ids]
        ax.bar([i + shift for i in range(len(values))], probs.numpy(), width=0.4, label=label)
    ax.set_xticks(range(len(values)), values, rotation=40, fontsize=8)
    ax.set_title(repr(prompt), fontsize=9)
axes[0].set_ylabel("p(next token)")
axes[1].legend()
plt.show()

# %% [markdown]
# Read the rows: the rewrite prompt and the held-out phrasings now give the new city; the neighbours — other
# people who live in the old city, some with the same given name — still give the old one; and after the bare
# name the model still lists the person's other attributes.

# %% [markdown]
# ## 6. Measuring edits like CounterFact — and the fine-tuning baselines
#
# One example proves little. CounterFact scores many edits, each on three prompt sets, with a **pairwise**
# test per prompt: does the wanted object get a higher probability than the other one?
#
# ### Exercise 6.1 — counterfact_score
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~5 min

# %% tags=["exercise"]
def counterfact_score(logits: Tensor, want: Tensor, against: Tensor) -> float:
    """CounterFact's pairwise score: the fraction of prompts whose `want` token gets a HIGHER probability than
    its `against` token (ties do not count). logits: [n, d_vocab] at each prompt's last token; want, against:
    [n] token ids. Efficacy and paraphrase use (want=new, against=old); specificity uses (want=old, against=new)
    on neighbouring subjects. Returns a float."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("editing", "counterfact_score", counterfact_score)

# %% [markdown]
# The baselines in the ROME paper are **fine-tuning** the same MLP matrix on the edit prompt (FT), and
# fine-tuning with every weight kept within ε of its original value (FT-L, Zhu et al. 2020): after each step,
# project back into the L∞ ball.
#
# ### Exercise 6.2 — constrain_linf
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵⚪⚪⚪ · ~5 min

# %% tags=["exercise"]
def constrain_linf(W: Tensor, W_original: Tensor, eps: float) -> Tensor:
    """FT-L's projection: the matrix nearest W whose every entry is within eps of W_original (elementwise
    clamp of the CHANGE). Returns a new tensor."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("editing", "constrain_linf", constrain_linf)

# %% tags=["experiment"]
FT_STEPS, FT_LR, FT_EPS = 25, 1e-2, 5e-3
text = ed.text_rows(facts, 400, seed=1)
ppl_before = ed.perplexity(model, text)


def fine_tune(req: ed.EditRequest, eps: float | None) -> Tensor:
    """FT (eps None) or FT-L (every Adam step followed by your projection) on the rewrite prompt."""
    f_ids, f_last, _ = ed.encode(model.tokenizer, [ed.rewrite_prompt(req)])
    project = None if eps is None else (lambda W_step, W_original: constrain_linf(W_step, W_original, eps))
    return ed.fine_tune(model, EDIT_LAYER, f_ids, f_last, ed.token_id(model.tokenizer, req.new), steps=FT_STEPS,
                        lr=FT_LR, project=project)


start = time.perf_counter()
methods = {"ROME": lambda req: ed.rome_edit(model, EDIT_LAYER, req, C, compute_key=compute_key,
                                            optimise_delta=optimise_delta, rank_one_update=rank_one_update),
           "FT": lambda req: fine_tune(req, None), "FT-L": lambda req: fine_tune(req, FT_EPS)}
scores = {name: {"efficacy": [], "paraphrase": [], "specificity": [], "perplexity ratio": []} for name in methods}
for i, req in enumerate(requests):
    for name, edit in methods.items():
        W_edit = edit(req)
        for metric, v in ed.evaluate_edit(model, EDIT_LAYER, W_edit, req, facts, counterfact_score).items():
            scores[name][metric].append(v)
        if i < 10:  # perplexity on unrelated text: the first 10 edits
            with ed.edited(model, EDIT_LAYER, W_edit):
                scores[name]["perplexity ratio"].append(ed.perplexity(model, text) / ppl_before)
means = {name: {m: sum(v) / len(v) for m, v in s.items()} for name, s in scores.items()}
fig, ax = plt.subplots(figsize=(9, 3.2))
metrics = ["efficacy", "paraphrase", "specificity"]
for j, name in enumerate(means):
    ax.bar([i + 0.27 * (j - 1) for i in range(3)], [means[name][m] for m in metrics], width=0.27, label=name)
ax.set_xticks(range(3), metrics)
ax.set_ylabel(f"mean over {len(requests)} edits")
ax.legend()
plt.show()
for name, m in means.items():
    print(f"{name:5} " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()))
print(f"{len(requests)} edits x 3 methods: {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ROME reaches the new fact on the edit prompt *and* on phrasings it never saw, and leaves the neighbours
# alone: the edit lives in the subject's representation, so it applies wherever the subject is read and only
# there. Unconstrained fine-tuning also gets the edit prompt right — but it learns "say the new city after
# *lives in*" for everyone, so the neighbours switch too, and the model's text elsewhere degrades. The L∞
# constraint trades some of that damage for weaker edits. This is the ROME paper's contrast (its Table 1 for
# GPT-2 XL on CounterFact), measured here on a model small enough to train on a laptop.

# %% [markdown]
# ## 7. Does the trace say where to edit?
#
# ROME chose its layer from the causal trace. Hase et al. (2023) tested that choice on GPT-J: the layer where
# tracing finds the fact hardly predicted which layer edits best — many layers worked. Run ROME at every layer
# (10 edits each) and put the scores beside the trace.

# %% tags=["experiment"]
start = time.perf_counter()
by_layer = {m: [] for m in metrics}
for layer in range(model.n_layers):
    per_edit = [ed.evaluate_edit(model, layer, ed.rome_edit(model, layer, req, C_by_layer[layer],
                                                            compute_key=compute_key,
                                                            optimise_delta=optimise_delta,
                                                            rank_one_update=rank_one_update), req, facts,
                                 counterfact_score) for req in requests[:10]]
    for m in metrics:
        by_layer[m].append(sum(e[m] for e in per_edit) / len(per_edit))
fig, ax = plt.subplots(figsize=(9, 3.2))
for m in metrics:
    ax.plot(by_layer[m], "o-", label=f"ROME {m}")
ax.plot(mlp_last / mlp_last.max(), "k:", label="MLP trace at last subject token (÷ max)")
ax.set_xlabel("edited layer")
ax.legend(fontsize=8)
plt.show()
print(f"ROME at every layer: {time.perf_counter() - start:.1f} s")
print("paraphrase by layer:", [round(v, 2) for v in by_layer["paraphrase"]])

# %% [markdown]
# Read the two curves together. Editing works wherever the edited MLP's output at the subject token is still
# read by the later layers — the layers *before* the final token's attention fetches the attribute — and fails
# once that read has happened: a late layer's change at the subject position comes too late for the question.
# The trace peaks at one of the working layers but does not single it out: like Hase et al., we find that
# where the trace points is not the only place an edit works.

# %% [markdown]
# ## 8. Interview drills
#
# **Drill 1.** Why does ROME's update use C⁻¹k* rather than k* as its direction in key space?
# - **a.** For numerical stability.
# - **b.** Without C⁻¹ the update would not map k* to v*.
# - **c.** Among all updates that map k* to v*, it changes the outputs of *typical* keys (weighted by C) the
#   least; plain k* minimises the change of W in Frobenius norm instead, ignoring which keys occur.
# - **d.** C is the subject's own key statistics.

# %% tags=["exercise"]
def drill_why_c_inverse() -> str:
    """Drill: why does ROME's update use C⁻¹k* rather than k* as the direction in key space? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("editing", "drill_why_c_inverse", drill_why_c_inverse)

# %% [markdown]
# **Drill 2.** Which keys k does a rank-one update W' = W + (C⁻¹k*) Λᵀ leave exactly unchanged (k W' = k W)?
# - **a.** Every key orthogonal to k*.
# - **b.** Every key with k · C⁻¹k* = 0.
# - **c.** Only k* itself changes; all other keys are unchanged.
# - **d.** None: every key moves.

# %% tags=["exercise"]
def drill_rank_one_preserves() -> str:
    """Drill: which keys does a rank-one update W' = W + u Λᵀ leave exactly unchanged? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("editing", "drill_rank_one_preserves", drill_rank_one_preserves)

# %% [markdown]
# **Drill 3.** An editing method scores efficacy 1.0 and specificity 0.2 on CounterFact. What happened?
# - **a.** The edit failed on the edit prompt.
# - **b.** The edit did not generalise to paraphrases.
# - **c.** Neighbouring subjects kept their old object.
# - **d.** The edit worked, but it also changed the answer for most *other* subjects that shared the old
#   object — it edited the relation, not the subject's fact (what unconstrained fine-tuning does).

# %% tags=["exercise"]
def drill_specificity() -> str:
    """Drill: a method scores efficacy 1.0 and specificity 0.2. What happened? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("editing", "drill_specificity", drill_specificity)

# %% [markdown]
# ## Where next
#
# `mechinterp reproduce editing` reruns this chapter's measurements on both zoo models and prints them beside
# the ROME paper's. MEMIT (Meng et al. 2023) spreads many edits over several layers at once, with the same
# key statistics: try it on `facts-lm-v2` by splitting one edit's residual over layers 0–2.
