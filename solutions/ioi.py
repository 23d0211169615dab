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
    S1+1->S1 (previous token)."""
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.n_layers)]
    _, cache = model.run_with_cache(batch.tokens, names_filter=names)
    rows = torch.arange(len(batch))
    pairs = {"end_io": (batch.end, batch.io_pos), "end_s1": (batch.end, batch.s1_pos),
             "end_s2": (batch.end, batch.s2_pos), "s2_s1": (batch.s2_pos, batch.s1_pos),
             "s2_s1_next": (batch.s2_pos, batch.s1_pos + 1), "s1_next_s1": (batch.s1_pos + 1, batch.s1_pos)}
    return {k: torch.stack([cache[n][rows, :, q, key].mean(0) for n in names]) for k, (q, key) in pairs.items()}


def _relative(model: HookedModel, batch: IOIBatch, logits: Tensor, clean_ld: float) -> float:
    return float(logit_diff(logits, batch.end, batch.io, batch.s).mean()) / clean_ld - 1.0


def _ld_blocks(logits: Tensor, batch: IOIBatch, n_blocks: int) -> Tensor:
    """Mean logit difference of each block of len(batch) rows of a repeated batch: [n_blocks]."""
    rep = lambda t: t.repeat(n_blocks)  # noqa: E731
    return logit_diff(logits, rep(batch.end), rep(batch.io), rep(batch.s)).view(n_blocks, len(batch)).mean(1)


def path_patch_senders(model: HookedModel, batch: IOIBatch, abc: IOIBatch, senders: list[Head],
                       receivers: list[Head] | None, receiver_input: str = "q", chunk: int = 8) -> Tensor:
    """Batched path patching: for EACH sender separately (not as a set), the mean logit difference after
    patching its path to the receivers — `path_patch` with one sender, for many senders in one forward pass
    per chunk (the batch repeated once per sender, block i patched with sender i). Returns [len(senders)]."""
    z_names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
    _, clean_cache = model.run_with_cache(batch.tokens, names_filter=z_names)
    _, corrupt_cache = model.run_with_cache(abc.tokens, names_filter=z_names)
    b = len(batch)
    out = []
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
                out.append(_ld_blocks(model(big), batch, n))
            continue
        in_names = sorted({f"blocks.{layer}.attn.hook_{receiver_input}" for layer, _ in receivers})
        with model.hooks(hooks):
            _, recorded = model.run_with_cache(big, names_filter=in_names)

        def insert(act, hp, recorded=recorded):
            heads = [h for layer, h in receivers if f"blocks.{layer}.attn.hook_{receiver_input}" == hp.name]
            new = act.clone()
            new[:, :, heads] = recorded[hp.name][:, :, heads]
            return new

        with model.hooks([(name, insert) for name in in_names]):
            out.append(_ld_blocks(model(big), batch, n))
    return torch.cat(out)


def path_patching_effects(model: HookedModel, batch: IOIBatch, abc: IOIBatch, receivers: list[Head] | None,
                          receiver_input: str = "q") -> Tensor:
    """[layer, head]: relative change of the mean logit difference when ONE sender head's path to the receivers
    is patched from ABC (e.g. -0.3 = the logit difference falls by 30%). Heads that cannot send to the receivers
    (at or after the last receiver's layer) and the receivers themselves: 0."""
    clean_ld = float(logit_diff(model(batch.tokens), batch.end, batch.io, batch.s).mean())
    last = model.n_layers if receivers is None else max(layer for layer, _ in receivers)
    senders = [(l, h) for l in range(last) for h in range(model.n_heads)
               if receivers is None or (l, h) not in receivers]
    out = torch.zeros(model.n_layers, model.n_heads)
    if senders:
        lds = path_patch_senders(model, batch, abc, senders, receivers, receiver_input)
        for (l, h), value in zip(senders, lds.tolist(), strict=True):
            out[l, h] = value / clean_ld - 1.0
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
              "previous token": "s1_next_s1"}


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
def find_circuit(model: HookedModel, batch: IOIBatch, abc: IOIBatch, depth: int = 2) -> dict:
    """The reference procedure; every step is a measurement and no head index is assumed:

    1. output heads: direct logit attribution to the logit difference >= 10% of it (either sign), classed by the
       sign and by whether END attends to IO or to S (`output_class`);
    2. walk back `depth` times: path-patch every earlier head (ABC) into the current heads' queries, keys and
       values; a head whose path lowers the logit difference by >= 5% joins, classed by its signature attention
       (`upstream_class`: END->S2 S-inhibition, S2->S1 duplicate token, S2->S1+1 induction, S1+1->S1 previous
       token).
    Returns the classes, the edges found (sender, receiver input, effect), every score, and the clean logit
    difference.
    """
    results, scale, logits = head_results_at_end(model, batch)
    clean_ld = float(logit_diff(logits, batch.end, batch.io, batch.s).mean())
    dla = logit_diff_dla(results, scale, model.hf.transformer.ln_f.weight, model.W_U, batch.io, batch.s)
    att = attention_summary(model, batch)
    classes: dict[str, list[Head]] = {}
    found = set()
    for sign in (1, -1):
        for h in _pick(sign * dla, DLA_SHARE * clean_ld):
            classes.setdefault(output_class(float(dla[h]), att, h), []).append(h)
            found.add(h)
    scores = {"dla": dla, "attention": att, "paths": {}}
    edges = []
    frontier = sorted(found)
    for step in range(depth):
        new: dict[Head, float] = {}
        for qkv in "qkv":
            effect = path_patching_effects(model, batch, abc, frontier, qkv)
            scores["paths"][(step, qkv)] = effect
            for h in _pick(-effect, PATH_SHARE, found):
                edges.append((h, qkv, float(effect[h])))
                new[h] = min(new.get(h, 0.0), float(effect[h]))
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
    results, scale, logits = head_results_at_end(model, batch)
    ld = float(logit_diff(logits, batch.end, batch.io, batch.s).mean())
    dla = logit_diff_dla(results, scale, model.hf.transformer.ln_f.weight, model.W_U, batch.io, batch.s)
    att = attention_summary(model, batch)
    heads = [*_pick(dla, DLA_SHARE * ld), *_pick(-dla, DLA_SHARE * ld)]
    return {"logit_diff": ld, "dla": dla,
            "output_heads": [(h, float(dla[h]), output_class(float(dla[h]), att, h)) for h in heads]}


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
