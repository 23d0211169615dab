"""Chapter 05 reference: the indirect-object identification (IOI) circuit (Wang et al. 2022, "Interpretability in
the Wild"; path patching as in Goldowsky-Dill et al. 2023).

Conventions: an `IOIBatch` (toolkit.ioi) holds right-padded prompts and, per prompt, the positions of IO, S1, S2
and END (the last prompt token). Heads are (layer, head) pairs. The metric is the logit difference IO - S at END.
The corrupted distribution is ABC: the same prompts with the second subject mention replaced by a third name, so
the information "which name is repeated" is gone while grammar and positions stay.
"""

from __future__ import annotations

import torch
from mechinterp.course.toolkit.ioi import IOIBatch, encode_ioi, ioi_dataset
from mechinterp.course.toolkit.model import HookedModel
from torch import Tensor

Head = tuple[int, int]

# --------------------------------------------------------------------------------------- exercises


def logit_diff(logits: Tensor, end: Tensor, io: Tensor, s: Tensor) -> Tensor:
    """Logit of IO minus logit of S at each prompt's END position (prompts are right-padded, so END is not
    always the last position). logits: [batch, pos, d_vocab]; end, io, s: [batch]. Returns [batch]."""
    last = logits[torch.arange(len(end)), end]  # [batch, d_vocab]
    return last.gather(1, io[:, None])[:, 0] - last.gather(1, s[:, None])[:, 0]


def end_attention(pattern: Tensor, end: Tensor, key_pos: Tensor) -> Tensor:
    """Attention paid from each prompt's END to one key position per prompt, for every head, averaged over
    prompts. pattern: [batch, head, query, key] (one layer); end, key_pos: [batch]. Returns [head]."""
    rows = torch.arange(len(end))
    return pattern[rows, :, end, key_pos].mean(0)


def logit_diff_dla(results: Tensor, final_scale: Tensor, ln_weight: Tensor, W_U: Tensor, io: Tensor,
                   s: Tensor) -> Tensor:
    """Direct logit attribution of each head to the logit difference, at END.

    The final LayerNorm is frozen at this input: a head's output r reaches the logits as
    (r - mean(r)) / final_scale * ln_weight @ W_U, so its share of (logit IO - logit S) is that vector dotted
    with W_U[:, IO] - W_U[:, S]. results: [batch, layer, head, d_model] (every head's output at END);
    final_scale: [batch] (the std of the residual stream entering ln_final at END); ln_weight: [d_model];
    W_U: [d_model, d_vocab]; io, s: [batch]. Returns [layer, head], the mean over prompts.
    """
    centred = results - results.mean(-1, keepdim=True)
    direction = ln_weight[:, None] * (W_U[:, io] - W_U[:, s])  # [d_model, batch]
    per_prompt = torch.einsum("blhm,mb->blh", centred, direction) / final_scale[:, None, None]
    return per_prompt.mean(0)


def copy_score(model: HookedModel, layer: int, head: int, name_ids: Tensor, k: int = 5,
               negative: bool = False) -> Tensor:
    """Wang et al.'s copy score: the fraction of names that a head's OV circuit maps back to themselves.

    For each name token: its embedding (plus the positional embedding of position 1, so LayerNorm sees a
    realistic stream), through the head's input LayerNorm (blocks[layer].ln_1), W_V and W_O of the head (the
    value bias is dropped: it is the same for every token), then ln_final and W_U. Count the name as copied if
    its own token is among the k largest logits (negative=True: among the k largest of the NEGATED logits, the
    score of a head that suppresses what it attends to). Returns a scalar tensor in [0, 1].
    """
    resid = model.W_E[name_ids] + model.W_pos[1]  # [n, d_model]
    block = model.hf.transformer.h[layer]
    x = torch.nn.functional.layer_norm(resid, (model.d_model,), block.ln_1.weight, block.ln_1.bias,
                                       block.ln_1.eps)
    out = x @ model.W_V(layer)[head] @ model.W_O(layer)[head]  # [n, d_model]
    logits = model.ln_final(out) @ model.W_U
    if negative:
        logits = -logits
    top = logits.topk(k, dim=-1).indices
    return (top == name_ids[:, None]).any(-1).float().mean()


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
    z_names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
    _, clean_cache = model.run_with_cache(clean, names_filter=z_names)
    _, corrupt_cache = model.run_with_cache(corrupt, names_filter=z_names)
    by_layer: dict[int, list[int]] = {}
    for layer, head in senders:
        by_layer.setdefault(layer, []).append(head)

    def freeze(act, hp):
        layer = int(hp.name.split(".")[1])
        new = clean_cache[hp.name].clone()
        heads = by_layer.get(layer, [])
        new[:, :, heads] = corrupt_cache[hp.name][:, :, heads]
        return new

    freeze_hooks = [(n, freeze) for n in z_names]
    if receivers is None:
        with model.hooks(freeze_hooks):
            return model(clean)
    in_names = sorted({f"blocks.{layer}.attn.hook_{receiver_input}" for layer, _ in receivers})
    with model.hooks(freeze_hooks):
        _, patched_cache = model.run_with_cache(clean, names_filter=in_names)
    receiving: dict[str, list[int]] = {}
    for layer, head in receivers:
        receiving.setdefault(f"blocks.{layer}.attn.hook_{receiver_input}", []).append(head)

    def insert(act, hp):
        new = act.clone()
        heads = receiving[hp.name]
        new[:, :, heads] = patched_cache[hp.name][:, :, heads]
        return new

    with model.hooks([(n, insert) for n in in_names]):
        return model(clean)


def group_means(acts: Tensor, groups: Tensor) -> Tensor:
    """Each row replaced by the mean of all rows in its group (prompts of one template and length, so that
    position p means the same word in every row of a group). acts: [batch, ...]; groups: [batch] ids.
    Returns a tensor shaped like acts."""
    out = torch.empty_like(acts)
    for g in groups.unique():
        rows = groups == g
        out[rows] = acts[rows].mean(0, keepdim=True)
    return out


def ablate_heads(model: HookedModel, tokens: Tensor, means: dict[str, Tensor], keep: set[Head]) -> Tensor:
    """Mean-ablate every head NOT in `keep`: its hook_z replaced by means[f"blocks.{l}.attn.hook_z"]
    ([batch, pos, head, d_head], aligned with `tokens`, e.g. group means over the ABC prompts). Kept heads and
    everything else run normally. Returns logits."""
    def hook(act, hp):
        layer = int(hp.name.split(".")[1])
        ablated = [h for h in range(model.n_heads) if (layer, h) not in keep]
        new = act.clone()
        new[:, :, ablated] = means[hp.name][:, :, ablated]
        return new

    return model.run_with_hooks(tokens, [(f"blocks.{layer}.attn.hook_z", hook) for layer in range(model.n_layers)])


# ------------------------------------------------------------------------------------------ drills


def drill_circuit_order() -> str:
    """Drill: in what order does information flow through the IOI circuit's classes? Return the letter."""
    return "c"


def drill_why_abc_mean() -> str:
    """Drill: why mean-ablate with the ABC distribution rather than zeros? Return the letter."""
    return "b"


def drill_negative_name_mover() -> str:
    """Drill: what does a negative name mover do? Return the letter."""
    return "a"


# --------------------------------------------------------------------------- the circuit, found by procedure


def abc_group_means(model: HookedModel, batch: IOIBatch, abc: IOIBatch) -> dict[str, Tensor]:
    """Per layer, every head's hook_z on the ABC prompts averaged within each (template, length) group,
    aligned row by row with `batch` (the ABC prompts are built from the same prompts, so groups match)."""
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
    _, cache = model.run_with_cache(abc.tokens, names_filter=names)
    return {n: group_means(cache[n], abc.groups) for n in names}


def head_results_at_end(model: HookedModel, batch: IOIBatch) -> tuple[Tensor, Tensor, Tensor]:
    """([batch, layer, head, d_model] head outputs at END, [batch] final LayerNorm scale at END, logits)."""
    names = [f"blocks.{layer}.attn.hook_result" for layer in range(model.n_layers)]
    final = f"blocks.{model.n_layers - 1}.hook_resid_post"
    logits, cache = model.run_with_cache(batch.tokens, names_filter=[*names, final])
    rows = torch.arange(len(batch))
    results = torch.stack([cache[n][rows, batch.end] for n in names], 1)
    resid = cache[final][rows, batch.end]
    eps = model.hf.transformer.ln_f.eps
    return results, (resid.var(-1, unbiased=False) + eps).sqrt(), logits


def attention_summary(model: HookedModel, batch: IOIBatch) -> dict[str, Tensor]:
    """[layer, head] mean attention: END->IO, END->S1, END->S2, S2->S1 (duplicate token), S2->S1+1 (induction),
    S1+1->S1 (previous token), S2->S2 (current token)."""
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.n_layers)]
    _, cache = model.run_with_cache(batch.tokens, names_filter=names)
    rows = torch.arange(len(batch))
    pairs = {"end_io": (batch.end, batch.io_pos), "end_s1": (batch.end, batch.s1_pos),
             "end_s2": (batch.end, batch.s2_pos), "s2_s1": (batch.s2_pos, batch.s1_pos),
             "s2_s1_next": (batch.s2_pos, batch.s1_pos + 1), "s1_next_s1": (batch.s1_pos + 1, batch.s1_pos),
             "s2_s2": (batch.s2_pos, batch.s2_pos)}
    return {k: torch.stack([cache[n][rows, :, q, key].mean(0) for n in names]) for k, (q, key) in pairs.items()}


def _ld_blocks(logits: Tensor, batch: IOIBatch, n_blocks: int) -> Tensor:
    """Mean logit difference of each block of len(batch) rows of a repeated batch: [n_blocks]."""
    rep = lambda t: t.repeat(n_blocks)  # noqa: E731
    return logit_diff(logits, rep(batch.end), rep(batch.io), rep(batch.s)).view(n_blocks, len(batch)).mean(1)


def path_patch_senders(model: HookedModel, batch: IOIBatch, abc: IOIBatch, senders: list[Head],
                       receivers: list[Head] | None, receiver_inputs: str = "q", chunk: int = 8) -> dict[str, Tensor]:
    """Batched path patching: for EACH sender separately (not as a set), the mean logit difference after
    patching its path to the receivers' input — `path_patch` with one sender, for many senders in one forward
    pass per chunk (the batch repeated once per sender, block i patched with sender i). receiver_inputs: any of
    "q", "k", "v" (e.g. "qkv": step 2 runs once for all three). Returns {input: [len(senders)]}; with
    receivers=None, {"logits": [len(senders)]}."""
    z_names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
    _, clean_cache = model.run_with_cache(batch.tokens, names_filter=z_names)
    _, corrupt_cache = model.run_with_cache(abc.tokens, names_filter=z_names)
    b = len(batch)
    keys = ["logits"] if receivers is None else list(receiver_inputs)
    out: dict[str, list[Tensor]] = {k: [] for k in keys}
    for start in range(0, len(senders), chunk):
        part = senders[start : start + chunk]
        n = len(part)
        big = batch.tokens.repeat(n, 1)

        def freeze(act, hp, part=part, n=n):
            layer = int(hp.name.split(".")[1])
            chosen = torch.zeros(n, model.n_heads, dtype=torch.bool, device=act.device)
            for i, (sl, sh) in enumerate(part):
                if sl == layer:
                    chosen[i, sh] = True
            rows = chosen.repeat_interleave(b, 0)[:, None, :, None]  # [n * b, 1, head, 1]
            return torch.where(rows, corrupt_cache[hp.name].repeat(n, 1, 1, 1),
                               clean_cache[hp.name].repeat(n, 1, 1, 1))

        hooks = [(name, freeze) for name in z_names]
        if receivers is None:
            with model.hooks(hooks):
                out["logits"].append(_ld_blocks(model(big), batch, n))
            continue
        in_names = {x: sorted({f"blocks.{layer}.attn.hook_{x}" for layer, _ in receivers}) for x in keys}
        with model.hooks(hooks):
            _, recorded = model.run_with_cache(big, names_filter=[n for x in keys for n in in_names[x]])
        for x in keys:
            def insert(act, hp, recorded=recorded, x=x):
                heads = [h for layer, h in receivers if f"blocks.{layer}.attn.hook_{x}" == hp.name]
                new = act.clone()
                new[:, :, heads] = recorded[hp.name][:, :, heads]
                return new

            with model.hooks([(name, insert) for name in in_names[x]]):
                out[x].append(_ld_blocks(model(big), batch, n))
    return {k: torch.cat(v) for k, v in out.items()}


def path_patching_effects(model: HookedModel, batch: IOIBatch, abc: IOIBatch, receivers: list[Head] | None,
                          receiver_inputs: str = "q") -> dict[str, Tensor]:
    """{input: [layer, head]}: relative change of the mean logit difference when ONE sender head's path to the
    receivers' input is patched from ABC (e.g. -0.3 = the logit difference falls by 30%). Heads that cannot send
    to the receivers (at or after the last receiver's layer) and the receivers themselves: 0. receivers=None:
    {"logits": direct effects}."""
    clean_ld = float(logit_diff(model(batch.tokens), batch.end, batch.io, batch.s).mean())
    last = model.n_layers if receivers is None else max(layer for layer, _ in receivers)
    senders = [(l, h) for l in range(last) for h in range(model.n_heads)
               if receivers is None or (l, h) not in receivers]
    keys = ["logits"] if receivers is None else list(receiver_inputs)
    out = {k: torch.zeros(model.n_layers, model.n_heads) for k in keys}
    if senders:
        for k, lds in path_patch_senders(model, batch, abc, senders, receivers, receiver_inputs).items():
            for (l, h), value in zip(senders, lds.tolist(), strict=True):
                out[k][l, h] = value / clean_ld - 1.0
    return out


def _pick(scores: Tensor, threshold: float, exclude: set[Head] = frozenset()) -> list[Head]:
    """Heads whose score is >= threshold, largest first."""
    flat = [(float(scores[l, h]), (l, h)) for l in range(scores.shape[0]) for h in range(scores.shape[1])]
    return [head for value, head in sorted(flat, reverse=True) if value >= threshold and head not in exclude]


# A head joins the circuit when its effect is at least this share of the clean logit difference (DLA) or of the
# logit difference lost (path patching). Chosen before looking at any model; the chapter shows every score.
DLA_SHARE, PATH_SHARE, SIGNATURE_MIN = 0.1, 0.05, 0.2
# The attention that identifies an upstream class (Wang et al.'s evidence): query -> key.
SIGNATURES = {"s-inhibition": "end_s2", "duplicate token": "s2_s1", "induction": "s2_s1_next",
              "previous token": "s1_next_s1", "current token": "s2_s2"}


def output_class(dla: float, att: dict[str, Tensor], head: Head) -> str:
    """Heads that write the logit difference directly, by the sign of their DLA and whom END attends to."""
    reads_io = float(att["end_io"][head]) > float(att["end_s1"][head] + att["end_s2"][head])
    if dla > 0:
        return "name mover" if reads_io else "s-suppression"
    return "negative name mover" if reads_io else "negative s-mover"


def upstream_class(att: dict[str, Tensor], head: Head) -> str:
    """An upstream head's class: the signature attention it shows most strongly (>= 0.2), else "other"."""
    best = max(SIGNATURES, key=lambda c: float(att[SIGNATURES[c]][head]))
    return best if float(att[SIGNATURES[best]][head]) >= SIGNATURE_MIN else "other"


@torch.no_grad()
def output_heads(model: HookedModel, batch: IOIBatch) -> dict:
    """Step 1 of the procedure: the clean logit difference, every head's DLA to it, the attention summary, and
    the heads whose DLA is >= 10% of the logit difference (positive first, then negative) with their class."""
    results, scale, logits = head_results_at_end(model, batch)
    ld = float(logit_diff(logits, batch.end, batch.io, batch.s).mean())
    dla = logit_diff_dla(results, scale, model.hf.transformer.ln_f.weight, model.W_U, batch.io, batch.s)
    att = attention_summary(model, batch)
    heads = [*_pick(dla, DLA_SHARE * ld), *_pick(-dla, DLA_SHARE * ld)]
    return {"logit_diff": ld, "dla": dla, "attention": att,
            "output_heads": [(h, float(dla[h]), output_class(float(dla[h]), att, h)) for h in heads]}


@torch.no_grad()
def find_circuit(model: HookedModel, batch: IOIBatch, abc: IOIBatch, depth: int = 2) -> dict:
    """The reference procedure; every step is a measurement and no head index is assumed:

    1. output heads: direct logit attribution to the logit difference >= 10% of it (either sign), classed by the
       sign and by whether END attends to IO or to S (`output_class`);
    2. walk back `depth` times: path-patch every earlier head (ABC) into the current heads' queries, keys and
       values; a head whose path lowers the logit difference by >= 5% joins, classed by its signature attention
       (`upstream_class`: END->S2 S-inhibition, S2->S1 duplicate token, S2->S1+1 induction, S1+1->S1 previous
       token, S2->S2 current token).
    Returns the classes, the edges found (sender, receiver input, effect), every score, and the clean logit
    difference.
    """
    step1 = output_heads(model, batch)
    clean_ld, att = step1["logit_diff"], step1["attention"]
    classes: dict[str, list[Head]] = {}
    for h, _, cls in step1["output_heads"]:
        classes.setdefault(cls, []).append(h)
    found = {h for h, _, _ in step1["output_heads"]}
    scores = {"dla": step1["dla"], "attention": att, "paths": {}}
    edges = []
    frontier = sorted(found)
    for step in range(depth):
        new: dict[Head, None] = {}  # an ordered set: the heads this step adds, in the order found
        effects = path_patching_effects(model, batch, abc, frontier, "qkv")
        for qkv in "qkv":
            effect = effects[qkv]
            scores["paths"][(step, qkv)] = effect
            for h in _pick(-effect, PATH_SHARE, found):
                edges.append((h, qkv, float(effect[h])))
                new[h] = None
        for h in new:
            classes.setdefault(upstream_class(att, h), []).append(h)
        found |= set(new)
        frontier = sorted(new)
        if not frontier:
            break
    return {"classes": classes, "edges": edges, "scores": scores, "clean_logit_diff": clean_ld}


def circuit_heads(classes: dict[str, list[Head]]) -> set[Head]:
    return {h for heads in classes.values() for h in heads}


@torch.no_grad()
def ablation_logit_diff(model: HookedModel, batch: IOIBatch, means: dict[str, Tensor], keep: set[Head]) -> float:
    logits = ablate_heads(model, batch.tokens, means, keep)
    return float(logit_diff(logits, batch.end, batch.io, batch.s).mean())


def all_heads(model: HookedModel) -> set[Head]:
    return {(layer, head) for layer in range(model.n_layers) for head in range(model.n_heads)}


def ioi_setup(model: HookedModel, n: int = 200, seed: int = 0, split: str = "train"):
    """(dataset, clean batch, ABC batch) for `model` (GPT-2 gets its own single-token English names)."""
    names = None
    if "gpt2" in model.name:
        from mechinterp.course.toolkit.ioi import gpt2_names

        names = gpt2_names(model.tokenizer)
    ds = ioi_dataset(n, seed=seed, split=split, names=names)
    return ds, encode_ioi(model, ds), encode_ioi(model, ds.abc(seed=seed + 1))


WANG_NAME_MOVERS = {(9, 9), (9, 6), (10, 0)}
WANG_LOGIT_DIFF = 3.56


@torch.no_grad()
def gpt2_summary(model: HookedModel, n: int = 100, seed: int = 0) -> dict:
    """GPT-2 small (online): mean logit difference and the output heads (DLA >= 10% of it) with their class."""
    _, batch, _ = ioi_setup(model, n, seed)
    return output_heads(model, batch)


def findings_gpt2(device: str | torch.device = "cpu") -> list:
    """Online only (GPT-2 small from the hub): Wang et al.'s headline numbers through the same code."""
    from mechinterp.course.toolkit.model import load_model
    from mechinterp.solutions.findings import Finding

    summary = gpt2_summary(load_model("gpt2", device))
    movers = [h for h, _, cls in summary["output_heads"] if cls == "name mover"]
    return [
        Finding("GPT-2 small: mean logit diff IO - S", "3.56 (Wang et al.)", summary["logit_diff"],
                lo=WANG_LOGIT_DIFF - 0.2, hi=WANG_LOGIT_DIFF + 0.2),
        Finding("GPT-2 small: the strongest name mover is one of 9.9 / 9.6 / 10.0", "9.9, 9.6, 10.0",
                float(bool(movers) and movers[0] in WANG_NAME_MOVERS), 1.0, 1.0),
        Finding("GPT-2 small: Wang et al.'s name movers among the name movers found", "3 of 3",
                float(len(WANG_NAME_MOVERS & set(movers))), lo=2),
    ]


# ------------------------------------------------------------------------------- chapter findings


def io_logit_dla(results: Tensor, final_scale: Tensor, ln_weight: Tensor, W_U: Tensor, io: Tensor) -> Tensor:
    """[layer, head]: each head's direct effect on the logit of IO relative to the mean logit (what raises IO
    above the rest of the vocabulary, whether or not it also raises S)."""
    centred = results - results.mean(-1, keepdim=True)
    direction = ln_weight[:, None] * (W_U[:, io] - W_U.mean(1, keepdim=True))  # [d_model, batch]
    return (torch.einsum("blhm,mb->blh", centred, direction) / final_scale[:, None, None]).mean(0)


def name_copiers(io_dla: Tensor, att: dict[str, Tensor], exclude: set[Head], share: float = 0.1) -> list[Head]:
    """Heads outside `exclude` that raise the IO logit directly (>= `share` of all heads' positive io_logit_dla)
    while END attends to IO no more than to S1 + S2: they raise names (IO and S alike, or every name), they do
    not choose between them."""
    total = float(io_dla.clamp(min=0).sum())
    return [h for h in _pick(io_dla, share * total, exclude)
            if float(att["end_io"][h]) <= float(att["end_s1"][h] + att["end_s2"][h]) + 0.05]


def prob_of(logits: Tensor, batch: IOIBatch, ids: Tensor) -> float:
    rows = torch.arange(len(batch))
    return float(logits[rows, batch.end].softmax(-1)[rows, ids].mean())


@torch.no_grad()
def findings(device: str | torch.device = "cpu") -> list:
    import time

    from mechinterp.course.toolkit.ioi import NAMES, ioi_metrics
    from mechinterp.course.toolkit.model import load_model
    from mechinterp.solutions.findings import Finding

    start_all = time.perf_counter()
    model = load_model("zoo/ioi-lm", device)
    held = ioi_metrics(model.hf, model.tokenizer, ioi_dataset(2000, seed=7, split="heldout"))
    _, batch, abc = ioi_setup(model, 200, 0, "train")
    start = time.perf_counter()
    circuit = find_circuit(model, batch, abc)
    find_s = time.perf_counter() - start
    clean_ld, classes = circuit["clean_logit_diff"], circuit["classes"]
    abc_ld = float(logit_diff(model(abc.tokens), abc.end, abc.io, abc.s).mean())
    results, scale, logits = head_results_at_end(model, batch)
    dla = circuit["scores"]["dla"]
    att = circuit["scores"]["attention"]
    final = f"blocks.{model.n_layers - 1}.hook_resid_post"
    _, cache = model.run_with_cache(batch.tokens, names_filter=[final])
    rest = cache[final][torch.arange(len(batch)), batch.end] - results.sum((1, 2))
    rest_dla = logit_diff_dla(rest[:, None, None], scale, model.hf.transformer.ln_f.weight, model.W_U, batch.io,
                              batch.s)
    ln_bias = float((model.hf.transformer.ln_f.bias @ (model.W_U[:, batch.io] - model.W_U[:, batch.s])).mean())
    senders = [(0, 0), (0, 3), (1, 2), (2, 5)]
    receivers = [h for h in circuit_heads(classes) if h[0] == model.n_layers - 1] or None
    batched = path_patch_senders(model, batch, abc, senders, receivers, "q")["logits" if receivers is None else "q"]
    loop = torch.stack([logit_diff(path_patch(model, batch.tokens, abc.tokens, [s], receivers, "q"), batch.end,
                                   batch.io, batch.s).mean() for s in senders])
    means = abc_group_means(model, batch, abc)
    heads = all_heads(model)
    keep = circuit_heads(classes)
    faithful = ablation_logit_diff(model, batch, means, keep) / clean_ld
    nothing = ablation_logit_diff(model, batch, means, set()) / clean_ld
    zero_means = {k: torch.zeros_like(v) for k, v in means.items()}
    zero_faithful = ablation_logit_diff(model, batch, zero_means, keep) / clean_ld
    movers = classes.get("name mover", [])
    suppressors = classes.get("s-suppression", [])
    without_suppressors = ablation_logit_diff(model, batch, means, heads - set(suppressors)) / clean_ld
    qk = max([float(-circuit["scores"]["paths"][(0, x)].min()) for x in "qk"])
    v_path = float(-circuit["scores"]["paths"][(0, "v")].min())
    _, abc_patterns = model.run_with_cache(abc.tokens, names_filter=[f"blocks.{l}.attn.hook_pattern"
                                                                     for l, _ in suppressors])
    abc_att_s2 = min(float(end_attention(abc_patterns[f"blocks.{l}.attn.hook_pattern"], abc.end, abc.s2_pos)[h])
                     for l, h in suppressors) if suppressors else 0.0
    name_ids = torch.tensor(model.tokenizer.convert_tokens_to_ids(list(NAMES)), device=model.device)
    io_dla = io_logit_dla(results, scale, model.hf.transformer.ln_f.weight, model.W_U, batch.io)
    copiers = name_copiers(io_dla, att, keep)
    p_io = prob_of(logits, batch, batch.io)
    p_io_circuit = prob_of(ablate_heads(model, batch.tokens, means, keep), batch, batch.io)
    p_io_with_copiers = prob_of(ablate_heads(model, batch.tokens, means, keep | set(copiers)), batch, batch.io)
    neg_copy = min((float(copy_score(model, l, h, name_ids, negative=True)) for l, h in suppressors), default=0.0)
    return [
        Finding("ioi-lm: mean logit diff IO - S, held-out names AND templates", "> 2 (GPT-2 small: 3.56 on Wang "
                "et al.'s prompts)", held["logit_diff"], lo=2.0),
        Finding("ioi-lm: accuracy (logit IO > logit S), held-out names AND templates", "> 0.9", held["accuracy"],
                lo=0.9),
        Finding("ABC prompts: logit diff ÷ clean logit diff", "≈ 0 (the repeated name is the only clue)",
                abc_ld / clean_ld, lo=-0.1, hi=0.1),
        Finding("direct logit attribution: heads + embeddings and biases + final LayerNorm bias - logit diff",
                "0 (an exact decomposition)", float(dla.sum() + rest_dla.sum()) + ln_bias - clean_ld,
                lo=-1e-4 * clean_ld, hi=1e-4 * clean_ld),
        Finding("batched path patching = one sender at a time: max |difference| in logit diff", "≤ 1e-4",
                float((batched - loop).abs().max()), hi=1e-4),
        Finding(f"faithfulness: circuit ({len(keep)} of {len(heads)} heads) alone, complement ABC-mean-ablated",
                "0.87 (Wang et al., GPT-2 small)", faithful, lo=0.8),
        Finding("every head ABC-mean-ablated: logit diff kept", "≈ 0", nothing, lo=-0.2, hi=0.2),
        Finding("the circuit with ZERO-ablation of the complement instead: logit diff kept", "lower: zero is "
                "off-distribution (report)", zero_faithful),
        Finding("name movers (END attends IO > S, DLA ≥ 10% of the logit diff)", "3 in GPT-2 small (9.9, 9.6, "
                "10.0); not reproduced: here the selection happens in the logits", float(len(movers)), hi=0),
        Finding("output heads that attend END -> S2 and write against S (S-suppression)", "no such class in "
                "GPT-2 small (S-inhibition heads attend S2 but act through the name movers' queries)",
                float(len(suppressors)), lo=1),
        Finding("removing the S-suppression class (ABC mean): logit diff kept", "Wang et al.: without the name movers "
                "most of it is lost; here the class that carries it", without_suppressors, hi=0.5),
        Finding("S-suppression heads: negative copy score (min over the class)", "GPT-2's negative name movers: "
                "high", neg_copy, lo=0.5),
        Finding("path patching (ABC) from any head into the output heads' queries or keys: largest loss",
                "GPT-2: S-inhibition -> name-mover queries matters; not reproduced: where the S-suppressors look "
                "does not depend on repetition", qk, hi=0.05),
        Finding("S-suppression heads: attention END -> S2 slot on ABC prompts (no repeated name), min", "high: "
                "they find the final clause's subject by position and syntax", abc_att_s2, lo=0.5),
        Finding("largest path into the output heads' VALUES (ABC): logit diff lost", "report", v_path),
        Finding(f"p(IO) with the circuit alone (full model {p_io:.3f})", "the logit difference is kept; the "
                "probability of IO is not (report)", p_io_circuit),
        Finding(f"p(IO) gained by also keeping the {len(copiers)} heads that raise logit(IO) without choosing it",
                "report", p_io_with_copiers - p_io_circuit),
        Finding("find_circuit on 200 prompts, seconds", "report", find_s),
        Finding("all findings, seconds", "< 120 (the chapter's budget)", time.perf_counter() - start_all, hi=120),
    ]
