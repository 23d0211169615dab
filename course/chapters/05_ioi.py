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
# # Chapter 05 — The IOI circuit: find, verify and explain a circuit end to end
#
# *Anchor: Wang, Variengien, Conmy, Shlegeris & Steinhardt (2022), "Interpretability in the Wild: a Circuit for
# Indirect Object Identification in GPT-2 small". Path patching as formalised by Goldowsky-Dill, MacLeod, Sato &
# Arora (2023).*
#
# "When Mary and John went to the store, John gave a drink to" → **Mary**. To finish the sentence a model must
# find the two names, notice which one is repeated (the subject, S) and output the other (the indirect object,
# IO). Wang et al. traced how GPT-2 small does it, head by head, and found 26 heads in 7 classes:
#
# | class | GPT-2 small heads | what they do |
# |---|---|---|
# | previous-token | 2.2, 4.11 | copy information about the token before S1 to S1 + 1 |
# | duplicate-token | 0.1, 0.10, 3.0 | at S2, attend to S1: "this name appeared before" |
# | induction | 5.5, 5.8, 5.9, 6.9 | at S2, attend to S1 + 1: the same signal by another route |
# | S-inhibition | 7.3, 7.9, 8.6, 8.10 | at END, attend to S2 and move "S is repeated" into the name movers' queries |
# | name movers | 9.9, 9.6, 10.0 | at END, attend to IO and copy it to the logits |
# | negative name movers | 10.7, 11.10 | attend to IO and write *against* it |
# | backup name movers | 8 heads | take over when the name movers are ablated |
#
# The circuit keeps ~87% of the full model's logit difference (3.56 on their prompts) when everything else
# is mean-ablated. This chapter rebuilds the tools and runs them end to end:
#
# 1. the task, the metric (logit difference at END) and the ABC corrupted distribution;
# 2. direct logit attribution per head, attention from END, and OV copy scores: candidate name movers;
# 3. **path patching** (sender → receiver, everything else frozen): which heads feed the heads that write the
#    answer — their queries, keys or values — and what feeds those;
# 4. head classes with their evidence;
# 5. faithfulness: ablate everything outside the circuit (ABC mean) and measure what is kept; completeness and
#    minimality spot checks;
# 6. a second model trained so that only repetition identifies S: the same procedure, a different circuit, and
#    the behavioural test that tells the two apart;
# 7. the same code on GPT-2 small when the Hugging Face hub is reachable.
#
# Model: `zoo/ioi-lm`, a 4-layer, 8-heads-per-layer attention-only GPT-2-architecture language model trained on
# stories and IOI sentences (its model card says exactly what it saw). It is tested on names it never saw in an
# IOI prompt and on templates it never saw as such. **Nothing in this chapter assumes which head does what: every class is found by
# measurement**, and where the small model's circuit differs from GPT-2's we say how. Budget: about 3 hours; the
# notebook runs in well under two minutes on 2 idle laptop CPU cores (a busy laptop can take several times
# longer).

# %% tags=["setup"]
import time

import matplotlib.pyplot as plt
import torch
from mechinterp.autograder import check
from mechinterp.course.toolkit import get_device, load_model
from mechinterp.course.toolkit.ioi import encode_ioi, ioi_dataset, ioi_metrics
from mechinterp.course.toolkit.model import HookedModel, patch  # noqa: F401 (patch: for your hooks)
from torch import Tensor

device = get_device()
torch.set_grad_enabled(False)
model = load_model("zoo/ioi-lm", device)
ds = ioi_dataset(200, seed=0, split="train")
abc_ds = ds.abc(seed=1)
batch, abc = encode_ioi(model, ds), encode_ioi(model, abc_ds)
Head = tuple[int, int]
print(f"{model.n_layers} layers x {model.n_heads} heads; {len(ds)} prompts, e.g.")
for i in range(3):
    print(f"  {ds.prompts[i]!r} -> {ds.io[i]}   (ABC: {abc_ds.prompts[i]!r})")

# %% [markdown]
# ## 1. The task and the metric
#
# `ioi_dataset` draws prompts from templates: BABA ("S and IO ..., S gave ... to") and ABBA ("IO and S ...")
# equally often, names from a list of single-token names. The ABC distribution replaces the second subject
# mention by a third name, keeping everything else: no name is repeated, so nothing says which of the first
# two names is the answer. Wang et al. use it as the *corrupted* run for path patching and as the source of
# mean activations for ablation.
#
# Prompts from different templates have different lengths, so the batch is **right-padded**: each prompt's
# final token (END, whose prediction is the answer) sits at its own position `batch.end[i]`. `encode_ioi` also
# records where IO, S1 and S2 are in every prompt.
#
# ### Exercise 1.1 — logit_diff
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min

# %% tags=["exercise"]
def logit_diff(logits: Tensor, end: Tensor, io: Tensor, s: Tensor) -> Tensor:
    """Logit of IO minus logit of S at each prompt's END position (prompts are right-padded, so END is not
    always the last position). logits: [batch, pos, d_vocab]; end, io, s: [batch]. Returns [batch]."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("ioi", "logit_diff", logit_diff)

# %% tags=["experiment"]
logits = model(batch.tokens)
CLEAN_LD = float(logit_diff(logits, batch.end, batch.io, batch.s).mean())
ABC_LD = float(logit_diff(model(abc.tokens), abc.end, abc.io, abc.s).mean())
probs = logits[torch.arange(len(batch)), batch.end].softmax(-1)
print(f"mean logit diff IO - S: clean {CLEAN_LD:.2f}, ABC {ABC_LD:.2f}")
print(f"p(IO) {probs[torch.arange(len(batch)), batch.io].mean():.3f}, "
      f"p(S) {probs[torch.arange(len(batch)), batch.s].mean():.3f}")
for split in ("train", "heldout_names", "heldout_templates", "heldout"):
    m = ioi_metrics(model.hf, model.tokenizer, ioi_dataset(1000, seed=3, split=split))
    print(f"{split:>18}: accuracy {m['accuracy']:.3f}, logit diff {m['logit_diff']:.2f}")

# %% [markdown]
# The model does the task on names and templates it never saw in an IOI prompt. On ABC prompts the logit
# difference is near zero: with no repeated name, and a third name in the second subject slot, nothing favours
# IO over S. (Which clue the model *does* use when S is repeated is a separate question: section 6 tests it.)

# %% [markdown]
# ## 2. Which heads write the answer? Direct logit attribution, attention, copying
#
# In an attention-only model the final residual stream at END is a sum: token and position embeddings, plus
# every head's output (`blocks.{l}.attn.hook_result`, [batch, pos, head, d_model]), plus biases. Freeze the
# final LayerNorm's scale at its value on this input and the logits become linear in that sum, so every head
# gets its own share of the logit difference: its **direct logit attribution** (DLA).
#
# ### Exercise 2.1 — logit_diff_dla
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~15 min
#
# LayerNorm computes (x − mean(x)) / std(x) · w + b. The mean and the bias do not depend on which head wrote
# what, but the centring does act on each head's output, so centre each output first.

# %% tags=["exercise"]
def logit_diff_dla(results: Tensor, final_scale: Tensor, ln_weight: Tensor, W_U: Tensor, io: Tensor,
                   s: Tensor) -> Tensor:
    """Direct logit attribution of each head to the logit difference, at END.

    The final LayerNorm is frozen at this input: a head's output r reaches the logits as
    (r - mean(r)) / final_scale * ln_weight @ W_U, so its share of (logit IO - logit S) is that vector dotted
    with W_U[:, IO] - W_U[:, S]. results: [batch, layer, head, d_model] (every head's output at END);
    final_scale: [batch] (the std of the residual stream entering ln_final at END); ln_weight: [d_model];
    W_U: [d_model, d_vocab]; io, s: [batch]. Returns [layer, head], the mean over prompts.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("ioi", "logit_diff_dla", logit_diff_dla)

# %% tags=["experiment"]
names = [f"blocks.{layer}.attn.hook_result" for layer in range(model.n_layers)]
final = f"blocks.{model.n_layers - 1}.hook_resid_post"
_, cache = model.run_with_cache(batch.tokens, names_filter=[*names, final])
rows = torch.arange(len(batch))
results = torch.stack([cache[n][rows, batch.end] for n in names], 1)  # [batch, layer, head, d_model]
resid_end = cache[final][rows, batch.end]
final_scale = (resid_end.var(-1, unbiased=False) + model.hf.transformer.ln_f.eps).sqrt()
dla = logit_diff_dla(results, final_scale, model.hf.transformer.ln_f.weight, model.W_U, batch.io, batch.s)
# the rest of the residual stream (embeddings, biases) and the final LayerNorm's own bias complete the account
rest = resid_end - results.sum((1, 2))
rest_share = logit_diff_dla(rest[:, None, None], final_scale, model.hf.transformer.ln_f.weight, model.W_U,
                            batch.io, batch.s)
ln_bias = float((model.hf.transformer.ln_f.bias @ (model.W_U[:, batch.io] - model.W_U[:, batch.s])).mean())
print(f"sum of head DLA {dla.sum():.3f} + embeddings and biases {rest_share.sum():.3f} + final LayerNorm bias "
      f"{ln_bias:.3f} = {dla.sum() + rest_share.sum() + ln_bias:.3f}; the model's logit diff {CLEAN_LD:.3f}")
fig, ax = plt.subplots(figsize=(6, 3.2))
lim = float(dla.abs().max())
im = ax.imshow(dla.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
ax.set_xticks(range(model.n_heads))
ax.set_yticks(range(model.n_layers))
ax.set_xlabel("head")
ax.set_ylabel("layer")
ax.set_title("direct logit attribution to logit(IO) - logit(S) at END", fontsize=10, pad=10)
fig.colorbar(im, ax=ax, label="nats")
plt.show()

# %% [markdown]
# The parts add up to the logit difference exactly (LayerNorm's mean subtraction is linear; its scale is frozen;
# its bias is a constant of the model), so the heatmap is a complete account of the direct effects. A head can only matter directly by what it *reads*:
# where does END attend?
#
# ### Exercise 2.2 — end_attention
# > Difficulty: 🔴⚪⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~5 min

# %% tags=["exercise"]
def end_attention(pattern: Tensor, end: Tensor, key_pos: Tensor) -> Tensor:
    """Attention paid from each prompt's END to one key position per prompt, for every head, averaged over
    prompts. pattern: [batch, head, query, key] (one layer); end, key_pos: [batch]. Returns [head]."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("ioi", "end_attention", end_attention)

# %% tags=["experiment"]
pattern_names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.n_layers)]
_, pcache = model.run_with_cache(batch.tokens, names_filter=pattern_names)
to_io = torch.stack([end_attention(pcache[n], batch.end, batch.io_pos) for n in pattern_names])
to_s1 = torch.stack([end_attention(pcache[n], batch.end, batch.s1_pos) for n in pattern_names])
to_s2 = torch.stack([end_attention(pcache[n], batch.end, batch.s2_pos) for n in pattern_names])
fig, axes = plt.subplots(1, 3, figsize=(13, 2.8))
for ax, (title, m) in zip(axes, [("END → IO", to_io), ("END → S1", to_s1), ("END → S2", to_s2)], strict=True):
    im = ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_title(title)
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
fig.colorbar(im, ax=axes, shrink=0.8, label="attention")
plt.show()
top = sorted(((float(dla[h]), h) for h in [(l, k) for l in range(model.n_layers) for k in range(model.n_heads)]),
             key=lambda t: -abs(t[0]))[:6]
for value, (layer, head) in top:
    print(f"head {layer}.{head}: DLA {value:+.2f}; END attends IO {to_io[layer, head]:.2f}, "
          f"S1 {to_s1[layer, head]:.2f}, S2 {to_s2[layer, head]:.2f}")

# %% [markdown]
# A **name mover** attends from END to IO and *copies* what it reads: its OV circuit maps a name to a large
# logit for the same name. Wang et al. measure that with a **copy score**: push each name's embedding through the
# head's OV circuit and the unembedding, and count how often the name itself is among the top 5 logits
# (negative copy score: among the top 5 of the negated logits — a head that suppresses what it reads).
#
# ### Exercise 2.3 — copy_score
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵⚪⚪ · ~15 min
#
# `model.W_V(layer)` is [head, d_model, d_head] and `model.W_O(layer)` is [head, d_head, d_model];
# `model.hf.transformer.h[layer].ln_1` is the head's input LayerNorm and `model.ln_final` the last one.

# %% tags=["exercise"]
def copy_score(model: HookedModel, layer: int, head: int, name_ids: Tensor, k: int = 5,
               negative: bool = False) -> Tensor:
    """Wang et al.'s copy score: the fraction of names that a head's OV circuit maps back to themselves.

    For each name token: its embedding (plus the positional embedding of position 1, so LayerNorm sees a
    realistic stream), through the head's input LayerNorm (blocks[layer].ln_1), W_V and W_O of the head (the
    value bias is dropped: it is the same for every token), then ln_final and W_U. Count the name as copied if
    its own token is among the k largest logits (negative=True: among the k largest of the NEGATED logits, the
    score of a head that suppresses what it attends to). Returns a scalar tensor in [0, 1].
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("ioi", "copy_score", copy_score)

# %% tags=["experiment"]
from mechinterp.course.toolkit.ioi import NAMES  # noqa: E402

name_ids = torch.tensor(model.tokenizer.convert_tokens_to_ids(list(NAMES)), device=device)
copy = torch.tensor([[float(copy_score(model, l, h, name_ids)) for h in range(model.n_heads)]
                     for l in range(model.n_layers)])
neg_copy = torch.tensor([[float(copy_score(model, l, h, name_ids, negative=True)) for h in range(model.n_heads)]
                         for l in range(model.n_layers)])
for value, (layer, head) in top:
    print(f"head {layer}.{head}: DLA {value:+.2f}; copy score {copy[layer, head]:.2f}, "
          f"negative copy score {neg_copy[layer, head]:.2f}")

# %% [markdown]
# **Read the table before going on.** In GPT-2 small the heads with the largest direct effect are name movers:
# END attends to IO and the OV circuit copies it (copy scores above 0.9). In `zoo/ioi-lm` the largest direct
# effects come from heads that attend from END to **S2** and have a high **negative** copy score: they write
# *against* the subject's name. We call them **S-suppression** heads. Heads with a high *positive* copy score are
# there too, but END hardly attends to IO through them, and their share of the *difference* is small or negative.
# In this model the choice between IO and S seems to be made in the logits, by suppressing S, not by a name
# mover's attention. Is there any name mover at all? List every head that reads IO more than S and raises the
# logit difference:

# %% tags=["experiment"]
movers = [(float(dla[l, h]), (l, h)) for l in range(model.n_layers) for h in range(model.n_heads)
          if dla[l, h] > 0 and to_io[l, h] > to_s1[l, h] + to_s2[l, h]]
for value, (layer, head) in sorted(movers, reverse=True)[:4]:
    print(f"head {layer}.{head}: DLA {value:+.2f} = {value / CLEAN_LD:.0%} of the logit difference; END attends "
          f"IO {to_io[layer, head]:.2f}, S1 {to_s1[layer, head]:.2f}, S2 {to_s2[layer, head]:.2f}")

# %% [markdown]
# A weak name mover at most: a head that prefers IO over S1 and carries a few percent of the difference — below
# the 10% a head needs to count as an output head below. Keep the hypothesis "selection by suppression"; the next
# sections test it.

# %% [markdown]
# ## 3. Path patching: what feeds the heads that write the answer?
#
# Activation patching (chapter 04) replaces an activation and lets the change flow *everywhere* downstream.
# To test one **edge** of a circuit — does head A matter *through* head B? — patch A's output from the corrupted
# (ABC) run, but let it reach only B:
#
# 1. cache every head's output (`hook_z`) on the clean prompts and on the ABC prompts;
# 2. run the clean prompts with the **senders'** outputs set to their ABC values and **every other head frozen**
#    at its clean output, and record the **receivers'** input (their queries, keys or values);
# 3. run the clean prompts again, replacing *only* the receivers' input by what was recorded in step 2.
#
# Freezing matters: without it, step 2 would also carry the senders' effect through every other head into the
# receivers. With the logits as receiver, step 2 alone measures the senders' *direct* effect.
#
# ### Exercise 3.1 — path_patch
# > Difficulty: 🔴🔴🔴🔴⚪ · Importance: 🔵🔵🔵🔵🔵 · ~40 min
#
# Hook names: `blocks.{l}.attn.hook_z` is [batch, pos, head, d_head]; `blocks.{l}.attn.hook_q` / `hook_k` /
# `hook_v` are [batch, pos, head, d_head]. `model.hooks([...])` runs hooks inside a `with` block, and
# `model.run_with_cache(tokens, names_filter=[...])` inside it caches what the hooked run computes. The check
# compares your logits with the reference's on random sender/receiver sets of a small random model.

# %% tags=["exercise"]
def path_patch(model: HookedModel, clean: Tensor, corrupt: Tensor, senders: list[Head],
               receivers: list[Head] | None, receiver_input: str = "q") -> Tensor:
    """Path patching: the effect of the senders on the receivers ALONE.

    1. Cache every head's output (hook_z) on the clean and on the corrupt prompts.
    2. Run the clean prompts with the senders' hook_z set to their CORRUPT values and every other head's hook_z
       frozen at its CLEAN value (MLPs, if any, recompute), and record the receivers' input
       (`blocks.{l}.attn.hook_{receiver_input}`, receiver_input "q", "k" or "v").
    3. Run the clean prompts again with ONLY the receivers' input (their own heads, every position) replaced by
       the values recorded in 2. Return its logits [batch, pos, d_vocab].
    receivers=None: the receiver is the logits — return the logits of run 2 (the senders' direct effect).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("ioi", "path_patch", path_patch)

# %% tags=["experiment"]
def relative_change(logits: Tensor) -> float:
    """Mean logit difference relative to the clean run: -0.3 = 30% of the logit difference lost."""
    return float(logit_diff(logits, batch.end, batch.io, batch.s).mean()) / CLEAN_LD - 1


def sender_sweep(receivers: list[Head] | None, receiver_input: str = "q") -> Tensor:
    """[layer, head]: path-patch each head alone (from ABC) into the receivers."""
    out = torch.zeros(model.n_layers, model.n_heads)
    last = model.n_layers if receivers is None else max(layer for layer, _ in receivers)
    for layer in range(last):
        for head in range(model.n_heads):
            if receivers is None or (layer, head) not in receivers:
                out[layer, head] = relative_change(path_patch(model, batch.tokens, abc.tokens, [(layer, head)],
                                                              receivers, receiver_input))
    return out


start = time.perf_counter()
direct = sender_sweep(None)
print(f"{model.n_layers * model.n_heads} path patches to the logits in {time.perf_counter() - start:.1f} s")
r = torch.corrcoef(torch.stack([-direct.flatten() * CLEAN_LD, dla.flatten()]))[0, 1]
print(f"logit diff lost when a head's direct path carries its ABC output, vs its DLA: Pearson r = {r:.3f}")
fig, ax = plt.subplots(figsize=(4.5, 3.5))
ax.scatter(dla.flatten(), -direct.flatten() * CLEAN_LD, s=14)
for layer in range(model.n_layers):
    for head in range(model.n_heads):
        if abs(float(dla[layer, head])) > 0.1 * CLEAN_LD:
            ax.annotate(f"{layer}.{head}", (float(dla[layer, head]), float(-direct[layer, head] * CLEAN_LD)))
ax.set_xlabel("DLA (clean run)")
ax.set_ylabel("logit diff lost, direct path from ABC")
ax.set_title("two measures of each head's direct effect", fontsize=9)
plt.show()

# %% [markdown]
# Path patching to the logits and DLA agree: a head's direct path matters exactly as much as the IO-vs-S
# information it writes. (They need not agree: DLA measures what a head writes, patching what *changes* when its
# input loses the repeated name.) Now walk backwards.

# %% [markdown]
# ## 4. The circuit, class by class
#
# The toolkit's procedure (`mechinterp.course.toolkit.circuits.find_circuit`) strings the measurements together, in Wang
# et al.'s order but without assuming their answer:
#
# 1. **output heads**: DLA of at least 10% of the logit difference, either sign. A positive head that reads IO
#    is a *name mover*; a negative one that reads IO a *negative name mover*; a positive head that reads S (and
#    so must write *against* S) an *S-suppression* head.
# 2. **walk back**, twice: path-patch every earlier head into the current heads' queries, keys and values; a
#    head whose path costs at least 5% of the logit difference joins, classed by the attention that is its
#    evidence — END → S2 (S-inhibition), S2 → S1 (duplicate token), S2 → S1 + 1 (induction), S1 + 1 → S1
#    (previous token), S2 → S2 (current token) — or "other" when none of them reaches 0.2.
#
# The thresholds were fixed before looking at any model. Each sweep path-patches every earlier head, one at a
# time, into the receivers' queries, keys and values. `find_circuit` batches it with chapter 04's trick: the
# prompts are repeated once per sender and block *i* of the batch is patched with sender *i*, so a sweep costs a
# few large forward passes instead of four small ones per sender (`mechinterp reproduce ioi` checks that it gives
# the loop's numbers). Here is every score the procedure saw.

# %% tags=["experiment"]
from mechinterp.course.toolkit.circuits import attention_summary, find_circuit  # noqa: E402

start = time.perf_counter()
circuit = find_circuit(model, batch, abc)
print(f"find_circuit: {time.perf_counter() - start:.1f} s")
att = attention_summary(model, batch)
for cls, heads in circuit["classes"].items():
    print(f"{cls:>20}: " + ", ".join(f"{l}.{h}" for l, h in heads))
circuit_heads_found = {h for heads in circuit["classes"].values() for h in heads}
print("\nedges (sender -> the input it feeds in the heads found one step before; change of the logit diff):")
for (layer, head), qkv, effect in circuit["edges"]:
    print(f"  {layer}.{head} -> {qkv}: {effect:+.2f}")
paths = circuit["scores"]["paths"]
fig, axes = plt.subplots(1, len(paths), figsize=(3.4 * len(paths), 2.8), squeeze=False)
lim = max(0.05, max(float(m.abs().max()) for m in paths.values()))  # one colour scale for every panel
for ax, ((step, qkv), m) in zip(axes[0], paths.items(), strict=True):
    im = ax.imshow(m.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(f"step {step + 1}: into {qkv}", fontsize=9)
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
fig.colorbar(im, ax=axes, shrink=0.85, label="change of the logit diff (÷ clean)")
plt.show()

# %% [markdown]
# **Evidence, class by class.** For each of Wang et al.'s upstream classes: among the heads that can send to
# the output heads (earlier layers), the one whose attention fits the class best, and what path patching says
# about it — its largest loss of logit difference through the output heads' queries, keys or values.

# %% tags=["experiment"]
from mechinterp.course.toolkit.circuits import SIGNATURES  # noqa: E402

output_heads = circuit["output_heads"]
last_layer = max(layer for layer, _ in output_heads)
step1 = {qkv: circuit["scores"]["paths"][(0, qkv)] for qkv in "qkv"}
print("output heads:", ", ".join(f"{l}.{h}" for l, h in output_heads))
print(f"{'class':>16}  {'attention':>11}  best sender  score  largest path loss (input)")
for cls, key in SIGNATURES.items():
    score = att[key].clone()
    score[last_layer:] = -1
    for h in output_heads:
        score[h] = -1
    layer, head = divmod(int(score.argmax()), model.n_heads)
    loss, via = max((float(-step1[x][layer, head]), x) for x in "qkv")
    print(f"{cls:>16}  {key:>11}  {layer}.{head:<9}  {att[key][layer, head]:.2f}   {loss:+.3f} ({via})")

# %% [markdown]
# Heads with GPT-2's attention signatures are there — one attends from END to S2 like an S-inhibition head, one
# from S2 to S1 like a duplicate-token head — but their paths into the output heads cost about nothing. **An
# attention pattern is a hint, not evidence**: only the intervention says whether a head is part of the circuit.
#
# GPT-2's circuit would show up here as heads whose ABC path into the name movers' **queries** matters
# (S-inhibition), and, one step further back, heads at S2 that attend to S1 or S1 + 1 (duplicate-token and
# induction heads). In `zoo/ioi-lm` the paths into the output heads' queries and keys cost almost nothing (under
# the 5% bar), and the paths that matter go into their **values**, from a head that attends from S2 to S2 itself
# and copies it (a
# *current-token* head: it writes the subject's name more strongly into S2's stream, where the S-suppression
# heads read it).
#
# If no ABC path changes *where* the S-suppression heads look, what tells them where S2 is? ABC removes the
# repetition but keeps the sentence. Test it directly: on ABC prompts, where no name is repeated, do they still
# attend to the second-subject slot?

# %% tags=["experiment"]
suppressors = circuit["classes"].get("s-suppression", [])
_, abc_pcache = model.run_with_cache(abc.tokens, names_filter=pattern_names)
for layer, head in suppressors:
    clean_att = end_attention(pcache[pattern_names[layer]], batch.end, batch.s2_pos)[head]
    abc_att = end_attention(abc_pcache[pattern_names[layer]], abc.end, abc.s2_pos)[head]
    print(f"S-suppression head {layer}.{head}: END -> S2 slot {clean_att:.2f} on IOI prompts, {abc_att:.2f} on ABC "
          "prompts (no repeated name)")

# %% tags=["experiment"]
example = 0
str_tokens = model.to_str_tokens(batch.tokens[example, : batch.end[example] + 1])
shown = [*suppressors[:2], *circuit["classes"].get("current token", [])[:1]]
fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 4.2), squeeze=False)
for ax, (layer, head) in zip(axes[0], shown, strict=True):
    n = len(str_tokens)
    im = ax.imshow(pcache[pattern_names[layer]][example, head, :n, :n].numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), str_tokens, rotation=90, fontsize=7)
    ax.set_yticks(range(n), str_tokens, fontsize=7)
    ax.set_title(f"head {layer}.{head}: query (rows) -> key (columns)", fontsize=9)
plt.tight_layout()
fig.colorbar(im, ax=axes, shrink=0.8, label="attention")
plt.show()

# %% [markdown]
# They do. These heads find **the subject of the final clause** by its place in the sentence, not by its being
# repeated, and suppress whatever name sits there. That is the linguistic rule behind IOI — "X gave a book to
# ___" is not X — and on IOI prompts it gives the same answer as "not the repeated name". The model was
# trained only on IOI-like text (where the rule always works); GPT-2 small learned from text where repetition is
# the more reliable cue.
#
# | role | GPT-2 small (Wang et al.) | `zoo/ioi-lm` (found above) |
# |---|---|---|
# | mark S as repeated | duplicate-token, induction and previous-token heads, at S2 / S1 + 1 | none: no ABC path into the output heads' queries or keys matters |
# | carry "not S" to END | S-inhibition heads: END attends S2, output feeds name-mover queries | S-suppression heads: END attends the final clause's subject and writes **against** it, straight into the logits |
# | write the answer | name movers: END attends IO, copies it | heads that raise names without choosing (and at most a weak name mover); suppression makes the difference |
# | strengthen the signal | — | a current-token head at S2 feeds the S-suppression heads' values |
#
# *How the training data got here* (see the model card): a first recipe with fixed templates taught two layer-0
# heads to suppress **the most recent name** (always S2 in IOI). Prompts with a third name just before or after
# S2 removed that shortcut, but the model then failed templates whose opening clause it had never seen in an IOI
# prompt; composing prompts from clause parts, held-out clauses included in other combinations, fixed that (so a
# held-out template is an unseen combination of seen parts). Nothing in the data made repetition the only cue,
# and the model did not learn to detect it. To grow GPT-2's circuit, a model would need text where the subject's
# place does not give it away and repetition does.

# %% [markdown]
# ## 5. Faithfulness: does the circuit alone do the task?
#
# Keep the circuit's heads, **mean-ablate every other head**, and compare the logit difference with the full
# model's. What to ablate *to* matters. Zero is a value a head never outputs. The mean over IOI prompts would
# still carry "which name is repeated" on average. Wang et al. use the mean over the **ABC** distribution: it
# keeps what every prompt shares (grammar, positions, "a name is here") and removes exactly the IO-vs-S
# information the circuit is claimed to carry. Because positions mean different words in different templates,
# the mean is taken **per template** (and per length), position by position.
#
# ### Exercise 5.1 — group_means
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵⚪⚪⚪ · ~10 min

# %% tags=["exercise"]
def group_means(acts: Tensor, groups: Tensor) -> Tensor:
    """Each row replaced by the mean of all rows in its group (prompts of one template and length, so that
    position p means the same word in every row of a group). acts: [batch, ...]; groups: [batch] ids.
    Returns a tensor shaped like acts."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("ioi", "group_means", group_means)

# %% [markdown]
# ### Exercise 5.2 — ablate_heads
# > Difficulty: 🔴🔴⚪⚪⚪ · Importance: 🔵🔵🔵🔵⚪ · ~15 min

# %% tags=["exercise"]
def ablate_heads(model: HookedModel, tokens: Tensor, means: dict[str, Tensor], keep: set[Head]) -> Tensor:
    """Mean-ablate every head NOT in `keep`: its hook_z replaced by means[f"blocks.{l}.attn.hook_z"]
    ([batch, pos, head, d_head], aligned with `tokens`, e.g. group means over the ABC prompts). Kept heads and
    everything else run normally. Returns logits."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("ioi", "ablate_heads", ablate_heads)

# %% tags=["experiment"]
z_names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
_, abc_cache = model.run_with_cache(abc.tokens, names_filter=z_names)
means = {n: group_means(abc_cache[n], abc.groups) for n in z_names}
every_head = {(l, h) for l in range(model.n_layers) for h in range(model.n_heads)}
circuit_set = {h for heads in circuit["classes"].values() for h in heads}


def kept(keep: set[Head]) -> float:
    """Mean logit difference with every head outside `keep` mean-ablated, as a fraction of the full model's."""
    return float(logit_diff(ablate_heads(model, batch.tokens, means, keep), batch.end, batch.io, batch.s).mean()) \
        / CLEAN_LD


print(f"circuit: {len(circuit_set)} of {len(every_head)} heads")
print(f"faithfulness, circuit alone (complement ABC-mean-ablated): {kept(circuit_set):.3f}   "
      "(Wang et al., GPT-2 small: 0.87)")
print(f"everything ablated: {kept(set()):.3f}")
zero_means = {n: torch.zeros_like(v) for n, v in means.items()}
zero_kept = float(logit_diff(ablate_heads(model, batch.tokens, zero_means, circuit_set), batch.end, batch.io,
                             batch.s).mean()) / CLEAN_LD
print(f"the same circuit with ZERO-ablation of the complement: {zero_kept:.3f}")
bars = {"circuit alone": kept(circuit_set), "circuit, zero-ablated rest": zero_kept, "nothing": kept(set())}
for cls, heads in circuit["classes"].items():
    bars[f"model without {cls}"] = kept(every_head - set(heads))
    print(f"remove the {cls} class (rest of the model intact): {bars[f'model without {cls}']:.3f}")
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.barh(list(bars), list(bars.values()))
ax.axvline(1.0, color="k", lw=0.8)
ax.axvline(0.87, color="gray", ls="--", lw=0.8, label="Wang et al.'s circuit on GPT-2 (0.87)")
ax.set_xlabel("logit difference kept (fraction of the full model's)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Completeness and minimality** (Wang et al. §4). A circuit is *complete* if removing any subset K of it hurts
# the circuit as much as it hurts the whole model: F(C \ K) ≈ F(M \ K). It is *minimal* if every head in it
# matters: for each head v there is a K with F(C \ (K ∪ {v})) clearly below F(C \ K). Spot checks: K = each
# class, and K = ∅ with each single head.

# %% tags=["experiment"]
print("completeness spot checks, K = one class:   F(C \\ K)   F(M \\ K)")
for cls, heads in circuit["classes"].items():
    print(f"  {cls:>20}: {kept(circuit_set - set(heads)):8.3f}  {kept(every_head - set(heads)):8.3f}")
print("minimality spot checks, K = {}: F(C) - F(C \\ {v}) for each head v")
base = kept(circuit_set)
drops = {v: base - kept(circuit_set - {v}) for v in sorted(circuit_set)}
print("  " + ", ".join(f"{l}.{h}: {d:+.3f}" for (l, h), d in drops.items()))

# %% [markdown]
# How to read these numbers:
# - **Faithfulness above 1** means the ablated heads were, on balance, working *against* the logit difference
#   (heads with negative DLA); Wang et al.'s 0.87 means GPT-2's circuit misses some helpers (the backup name
#   movers among them).
# - **Zero-ablation** of the same complement keeps far less: zeroed heads put the residual stream somewhere it
#   never is, and the circuit's heads react to that. Which baseline you ablate to is part of the claim.
# - **Completeness**: a class whose removal hurts the circuit and the whole model alike is really where the
#   model computes; a large gap would mean the model has backups the circuit lacks.
# - **Minimality**: a head whose removal costs almost nothing (compare the drops) is in the circuit only because it
#   passed the 5% bar on its own path — a reminder that thresholds decide membership at the edges.

# %% [markdown]
# **The metric defines the circuit.** Everything above measured the logit *difference*. Heads that raise IO and S
# alike (or every name) barely move it, so the procedure left them out — yet without them little raises IO above
# the rest of the vocabulary. Measure the probability of IO instead, and look for the heads whose direct effect on
# logit(IO), relative to the mean logit, is large:

# %% tags=["experiment"]
from mechinterp.course.toolkit.circuits import io_logit_dla, name_copiers  # noqa: E402


def p_io(logits: Tensor) -> float:
    return float(logits[rows, batch.end].softmax(-1)[rows, batch.io].mean())


# direct effect on logit(IO) minus the mean logit: what raises IO above the vocabulary, S or no S
io_dla = io_logit_dla(results, final_scale, model.hf.transformer.ln_f.weight, model.W_U, batch.io)
copiers = name_copiers(io_dla, att, circuit_set)
print("heads outside the circuit that raise logit(IO) without attending to IO more than to S:",
      ", ".join(f"{l}.{h} ({io_dla[l, h]:+.1f}; END attends IO {att['end_io'][l, h]:.2f}, S1 {att['end_s1'][l, h]:.2f})"
                for l, h in copiers))
print(f"p(IO): full model {p_io(model(batch.tokens)):.3f}; circuit alone "
      f"{p_io(ablate_heads(model, batch.tokens, means, circuit_set)):.3f}; circuit + those heads "
      f"{p_io(ablate_heads(model, batch.tokens, means, circuit_set | set(copiers))):.3f}")

# %% [markdown]
# ## 6. A second model: same task, another algorithm
#
# On every IOI prompt above, "the repeated name" and "the final clause's subject" are the same name, so the
# circuit could not tell us which of the two rules `zoo/ioi-lm` follows. Section 4 suggested the subject rule.
# Test it with prompts that **decouple** the two: S is mentioned again *outside* the final clause's subject
# slot, and a third name C is the final subject —
# "friends nell and june met at the market . lia , who knew june , threw a lamp to" → **nell**.
# Repetition says: avoid june. The subject rule says: avoid lia (and leaves nell and june tied).
#
# `zoo/ioi-lm-v2` has the same architecture, trained on data where repetition is the only reliable cue: the
# repeated name sits in many slots (subject, object, after a preposition, a possessive, a sentence of its own),
# the final subject is S, a pronoun, a noun phrase or a third name, and some setups name three people, two of
# them repeated (its model card lists the recipe and the designs that did not work). Both models get the same
# decoupled prompts, held-out names, every word in both vocabularies:

# %% tags=["experiment"]
from mechinterp.course.toolkit.circuits import third_name_ids  # noqa: E402
from mechinterp.course.toolkit.ioi_v2 import ioi_v2_dataset, shared_decoupled  # noqa: E402

model2 = load_model("zoo/ioi-lm-v2", device)
decoupled = shared_decoupled(300)
print("e.g.", repr(decoupled.prompts[0]), "->", decoupled.io[0])
for label, m in (("ioi-lm", model), ("ioi-lm-v2", model2)):
    dec = encode_ioi(m, decoupled)
    dec_logits = m(dec.tokens)
    ld_dec = logit_diff(dec_logits, dec.end, dec.io, dec.s)
    c_ids = third_name_ids(m, decoupled)
    at_end = dec_logits[torch.arange(len(dec)), dec.end]
    c_minus_io = (at_end.gather(1, c_ids[:, None]) - at_end.gather(1, dec.io[:, None].to(device))).mean()
    print(f"{label:>10}: IO above the repeated name in {float((ld_dec > 0).float().mean()):.1%} of prompts, "
          f"mean logit diff {float(ld_dec.mean()):+.2f}; logit of the third name (final subject) - IO: "
          f"{float(c_minus_io):+.1f}")
for split in ("heldout_names", "heldout_templates", "heldout"):
    m2 = ioi_metrics(model2.hf, model2.tokenizer, ioi_v2_dataset(1000, seed=3, split=split))
    print(f"ioi-lm-v2 {split:>18}: accuracy {m2['accuracy']:.3f}, logit diff {m2['logit_diff']:.2f}")

# %% [markdown]
# `ioi-lm` fails the decoupled prompts: it pushes the final subject far down and barely separates the two setup
# names. `ioi-lm-v2` suppresses the *repeated* name wherever it sits. Same task, same architecture, two
# algorithms — and on the standard IOI prompts alone you could not tell them apart.
#
# Now run the **same procedure, same thresholds** on `ioi-lm-v2` (its own IOI prompts, sentence shapes drawn from
# a pool of ten so that the ABC group means average over many prompts):

# %% tags=["experiment"]
ds2 = ioi_v2_dataset(200, seed=0, split="train", pool=10)
batch2, abc2 = encode_ioi(model2, ds2), encode_ioi(model2, ds2.abc(seed=1))
CLEAN_LD2 = float(logit_diff(model2(batch2.tokens), batch2.end, batch2.io, batch2.s).mean())
circuit2 = find_circuit(model2, batch2, abc2)
att2 = attention_summary(model2, batch2)
for cls, heads in circuit2["classes"].items():
    print(f"{cls:>20}: " + ", ".join(f"{l}.{h}" for l, h in heads))
for (layer, head), qkv, effect in circuit2["edges"]:
    print(f"  edge {layer}.{head} -> {qkv}: {effect:+.2f}")

from mechinterp.course.toolkit.circuits import circuit_table  # noqa: E402

print()
print(circuit_table({"ioi-lm": circuit, "ioi-lm-v2": circuit2}))

# %% [markdown]
# Both models have an S-suppression class (output heads that raise the logit difference by writing against a
# name). On the decoupled prompts, against *which* name — the repeated one (S) or the final subject (C)? Measure
# each head's direct effect at END on logit(S) and on logit(C) (relative to the mean logit, final LayerNorm
# frozen, as in section 2), and where each head looks from END.

# %% tags=["experiment"]
from mechinterp.course.toolkit.circuits import (decoupled_attention, decoupled_direct_effects,  # noqa: E402
                                                share_against_s)

fig, axes = plt.subplots(1, 2, figsize=(10, 2.8), sharey=True)
for ax, (label, m, found) in zip(axes, (("ioi-lm", model, circuit), ("ioi-lm-v2", model2, circuit2)), strict=True):
    heads = found["classes"].get("s-suppression", [])
    on_s, on_c = decoupled_direct_effects(m, heads, decoupled)
    to_s2, to_c = decoupled_attention(m, heads, decoupled)
    print(f"{label}: share of the S-suppression heads' suppression aimed at S: {share_against_s(on_s, on_c):.2f}")
    for h, a_s, a_c in zip(heads, to_s2, to_c, strict=True):
        print(f"   head {h[0]}.{h[1]}: attention END -> S2 {a_s:.2f}, END -> C {a_c:.2f}")
    x = torch.arange(len(heads))
    ax.bar(x - 0.2, on_s, 0.4, label="on logit(S), the repeated name")
    ax.bar(x + 0.2, on_c, 0.4, label="on logit(C), the final subject")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x.tolist(), [f"{l}.{h}" for l, h in heads])
    ax.set_title(f"{label}: S-suppression heads, decoupled prompts", fontsize=9)
axes[0].set_ylabel("direct effect at END")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# `ioi-lm`'s suppressors attend to the final subject and write mostly against **C**; `ioi-lm-v2`'s write mostly
# against **S**, the repeated name. But look at where `ioi-lm-v2`'s strongest output heads attend: hardly at S2
# or C at all. On one prompt:

# %% tags=["experiment"]
top2 = sorted(circuit2["classes"].get("s-suppression", []), key=lambda h: -float(circuit2["scores"]["dla"][h]))[:2]
example = 0
toks2 = model2.to_str_tokens(batch2.tokens[example, : batch2.end[example] + 1])
_, pcache2 = model2.run_with_cache(batch2.tokens[example : example + 1],
                                   names_filter=[f"blocks.{l}.attn.hook_pattern" for l, _ in top2])
fig, ax = plt.subplots(figsize=(9, 2.4))
for (layer, head), shift in zip(top2, (-0.2, 0.2), strict=False):
    row = pcache2[f"blocks.{layer}.attn.hook_pattern"][0, head, batch2.end[example], : len(toks2)]
    ax.bar(torch.arange(len(toks2)) + shift, row.cpu(), 0.4, label=f"head {layer}.{head}")
ax.set_xticks(range(len(toks2)), toks2, rotation=90, fontsize=8)
ax.set_ylabel("attention from END")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# They read a *later* token — typically the object noun just before END, or the last word of the sentence that
# mentioned S — where earlier heads have already written the name to avoid (attention from that token to S2 is
# what to look at next; the path-patching edges above point into these heads' **values**). So `ioi-lm-v2`
# suppresses the repeated name, as the decoupled test demanded, by relaying it through an intermediate position;
# it still writes the suppression **straight into the logits**. The class the paper is famous for — **name
# movers** that attend to IO, steered by S-inhibition heads through their queries — appears in neither model.
# Faithfulness and p(IO) for the second circuit:

# %% tags=["experiment"]
_, abc_cache2 = model2.run_with_cache(abc2.tokens, names_filter=z_names)
means2 = {n: group_means(abc_cache2[n], abc2.groups) for n in z_names}
circuit_set2 = {h for heads in circuit2["classes"].values() for h in heads}
kept2 = float(logit_diff(ablate_heads(model2, batch2.tokens, means2, circuit_set2), batch2.end, batch2.io,
                         batch2.s).mean()) / CLEAN_LD2
rows2 = torch.arange(len(batch2))
p_full = float(model2(batch2.tokens)[rows2, batch2.end].softmax(-1)[rows2, batch2.io].mean())
p_alone = float(ablate_heads(model2, batch2.tokens, means2, circuit_set2)[rows2, batch2.end].softmax(-1)[
    rows2, batch2.io].mean())
print(f"ioi-lm-v2 circuit: {len(circuit_set2)} heads, faithfulness {kept2:.3f} (logit difference kept); "
      f"p(IO) full model {p_full:.3f}, circuit alone {p_alone:.3f}")

# %% [markdown]
# What would it take to grow GPT-2's circuit? Our designs (the model card lists them) changed *which* name gets
# suppressed — from the final subject to the repeated name — but every model we examined wrote the suppression
# straight into the logits. In GPT-2 small the name movers exist for reasons beyond IOI: copying
# the right name from context is useful all over natural text, and IOI only steers heads that were already
# there. A model trained mostly on IOI-shaped data finds the shorter route. That is the chapter's lesson about
# circuits in general: **the training distribution decides the algorithm**, and a behavioural test (here, the
# decoupled prompts) is what tells two algorithms with the same numbers apart.

# %% [markdown]
# ## 7. The same code on GPT-2 small (needs the Hugging Face hub)
#
# `load_model("gpt2")` returns GPT-2 small behind the same hooks API. The prompts are rendered as ordinary
# English (capitals, no space before punctuation) with common first names that GPT-2 encodes as one token.
# Offline this cell says why it cannot run and moves on.

# %% tags=["experiment"]
from mechinterp.course.toolkit.circuits import gpt2_summary  # noqa: E402
from mechinterp.course.toolkit.hub import HubUnavailable  # noqa: E402

try:
    gpt2 = load_model("gpt2", device)
except HubUnavailable as e:
    print(f"skipped: GPT-2 small is not reachable ({e.reason}). Offline, this chapter's IOI models are "
          "zoo/ioi-lm and zoo/ioi-lm-v2, studied above.")
else:
    summary = gpt2_summary(gpt2, n=100)
    print(f"GPT-2 small: mean logit diff {summary['logit_diff']:.2f} (Wang et al.: 3.56)")
    for (layer, head), value, cls in summary["output_heads"]:
        print(f"  {layer}.{head}: DLA {value:+.2f} ({cls})")
    print("Wang et al.'s name movers: 9.9, 9.6, 10.0; negative name movers: 10.7, 11.10")

# %% [markdown]
# ## 8. Interview drills
#
# **Drill 1.** In what order does information flow through Wang et al.'s IOI circuit?
# - **a.** Name movers → S-inhibition → duplicate-token heads.
# - **b.** S-inhibition → name movers → induction heads.
# - **c.** Duplicate-token and induction heads (at S2) → S-inhibition heads (at END) → name movers (at END).
# - **d.** Previous-token heads → name movers → S-inhibition heads.

# %% tags=["exercise"]
def drill_circuit_order() -> str:
    """Drill: in what order does information flow through the IOI circuit's classes? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("ioi", "drill_circuit_order", drill_circuit_order)

# %% [markdown]
# **Drill 2.** Why mean-ablate with the ABC distribution rather than set outputs to zero?
# - **a.** It is faster.
# - **b.** A zero output is off-distribution; the ABC mean keeps what all prompts share (grammar, positions)
#   and removes only the IO-vs-S information the circuit is claimed to carry.
# - **c.** It makes the ablated heads carry more of the answer.
# - **d.** GPT-2 has no zero vector.

# %% tags=["exercise"]
def drill_why_abc_mean() -> str:
    """Drill: why mean-ablate with the ABC distribution rather than zeros? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("ioi", "drill_why_abc_mean", drill_why_abc_mean)

# %% [markdown]
# **Drill 3.** What does a negative name mover do?
# - **a.** It attends from END to IO, like a name mover, but writes *against* IO, lowering the logit
#   difference (GPT-2: 10.7, 11.10) — the model hedges its prediction.
# - **b.** It moves the subject's name to the output.
# - **c.** It inhibits the S-inhibition heads.
# - **d.** It is a name mover that works at negative positions.

# %% tags=["exercise"]
def drill_negative_name_mover() -> str:
    """Drill: what does a negative name mover do? Return the letter."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% tags=["check"]
check("ioi", "drill_negative_name_mover", drill_negative_name_mover)

# %% [markdown]
# ## Where next
#
# `mechinterp reproduce ioi` reruns this chapter's measurements on `zoo/ioi-lm` and prints them beside Wang et
# al.'s. Chapter 06 turns from circuits to attributions of a prediction to its input tokens.
