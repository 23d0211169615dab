"""Circuit-finding procedures for the IOI chapter: what a learner USES (and reads) but does not write.

    batch, abc = ioi_setup(model, 200)[1:]           # clean prompts and their ABC counterparts
    circuit = find_circuit(model, batch, abc)         # classes of heads, edges, every score it saw
    attention_summary(model, batch)["end_io"]         # [layer, head] mean attention END -> IO

The procedure follows Wang et al. 2022 (direct logit attribution for the output heads, then path patching from
the ABC distribution, two steps back) with thresholds fixed before looking at any model. The four small tensor
functions at the top are this module's own copies of chapter 05 exercises; the graders refuse them (and the
procedures built on them) as an answer to those exercises (`exercise_twin`).
"""

from __future__ import annotations

import torch
from mechinterp.course.toolkit.ioi import IOIBatch, encode_ioi, gpt2_names, ioi_dataset
from mechinterp.course.toolkit.model import HookedModel
from mechinterp.course.toolkit.twins import exercise_twin
from torch import Tensor

Head = tuple[int, int]


@exercise_twin("ioi", "logit_diff")
def _logit_diff(logits: Tensor, end: Tensor, io: Tensor, s: Tensor) -> Tensor:
    last = logits[torch.arange(len(end)), end]
    return last.gather(1, io[:, None])[:, 0] - last.gather(1, s[:, None])[:, 0]


@exercise_twin("ioi", "logit_diff_dla")
def _logit_diff_dla(results: Tensor, final_scale: Tensor, ln_weight: Tensor, W_U: Tensor, io: Tensor,
                    s: Tensor) -> Tensor:
    centred = results - results.mean(-1, keepdim=True)
    direction = ln_weight[:, None] * (W_U[:, io] - W_U[:, s])
    return (torch.einsum("blhm,mb->blh", centred, direction) / final_scale[:, None, None]).mean(0)


@exercise_twin("ioi", "group_means")
def _group_means(acts: Tensor, groups: Tensor) -> Tensor:
    out = torch.empty_like(acts)
    for g in groups.unique():
        rows = groups == g
        out[rows] = acts[rows].mean(0, keepdim=True)
    return out


@exercise_twin("ioi", "ablate_heads")
def _ablate_heads(model: HookedModel, tokens: Tensor, means: dict[str, Tensor], keep: set[Head]) -> Tensor:
    def hook(act, hp):
        ablated = [h for h in range(model.n_heads) if (hp.layer(), h) not in keep]
        new = act.clone()
        new[:, :, ablated] = means[hp.name][:, :, ablated]
        return new

    return model.run_with_hooks(tokens, [(f"blocks.{layer}.attn.hook_z", hook) for layer in range(model.n_layers)])


def abc_group_means(model: HookedModel, batch: IOIBatch, abc: IOIBatch) -> dict[str, Tensor]:
    """Per layer, every head's hook_z on the ABC prompts averaged within each (template, length) group,
    aligned row by row with `batch` (the ABC prompts are built from the same prompts, so groups match)."""
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
    _, cache = model.run_with_cache(abc.tokens, names_filter=names)
    return {n: _group_means(cache[n], abc.groups) for n in names}


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
    return _logit_diff(logits, rep(batch.end), rep(batch.io), rep(batch.s)).view(n_blocks, len(batch)).mean(1)


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
    clean_ld = float(_logit_diff(model(batch.tokens), batch.end, batch.io, batch.s).mean())
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
    ld = float(_logit_diff(logits, batch.end, batch.io, batch.s).mean())
    dla = _logit_diff_dla(results, scale, model.hf.transformer.ln_f.weight, model.W_U, batch.io, batch.s)
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
    Returns the classes, the edges found (sender, receiver input, effect), every score, the clean logit
    difference, and the output heads of step 1.
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
    return {"classes": classes, "edges": edges, "scores": scores, "clean_logit_diff": clean_ld,
            "output_heads": [h for h, _, _ in step1["output_heads"]]}


def circuit_heads(classes: dict[str, list[Head]]) -> set[Head]:
    return {h for heads in classes.values() for h in heads}


@torch.no_grad()
def ablation_logit_diff(model: HookedModel, batch: IOIBatch, means: dict[str, Tensor], keep: set[Head]) -> float:
    logits = _ablate_heads(model, batch.tokens, means, keep)
    return float(_logit_diff(logits, batch.end, batch.io, batch.s).mean())


def all_heads(model: HookedModel) -> set[Head]:
    return {(layer, head) for layer in range(model.n_layers) for head in range(model.n_heads)}


def ioi_setup(model: HookedModel, n: int = 200, seed: int = 0, split: str = "train"):
    """(dataset, clean batch, ABC batch) for `model` (GPT-2 gets its own single-token English names)."""
    names = None
    if "gpt2" in model.name:
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



def third_name_ids(model: HookedModel, ds) -> Tensor:
    """[len(ds)] token id of each prompt's third name C (`ds.fillers[i]["C"]`, e.g. `ioi_v2.shared_decoupled`)."""
    return torch.tensor(model.tokenizer.convert_tokens_to_ids([f["C"] for f in ds.fillers]), device=model.device)


@torch.no_grad()
def decoupled_attention(model: HookedModel, heads: list[Head], ds) -> tuple[list[float], list[float]]:
    """On prompts with a third name C (`ds.fillers[i]["C"]`, e.g. `ioi_v2.shared_decoupled`): each head's mean
    attention from END to S2 (the repeated name) and from END to C. Returns (to_s2, to_c), one value per head."""
    batch = encode_ioi(model, ds)
    c_pos = (batch.tokens == third_name_ids(model, ds)[:, None]).float().argmax(1).cpu()
    names = sorted({f"blocks.{layer}.attn.hook_pattern" for layer, _ in heads})
    _, cache = model.run_with_cache(batch.tokens, names_filter=names)
    rows = torch.arange(len(batch))

    def mean_att(layer: int, head: int, key: Tensor) -> float:
        return float(cache[f"blocks.{layer}.attn.hook_pattern"][rows, head, batch.end, key].mean())

    return [mean_att(l, h, batch.s2_pos) for l, h in heads], [mean_att(l, h, c_pos) for l, h in heads]


@torch.no_grad()
def decoupled_direct_effects(model: HookedModel, heads: list[Head], ds) -> tuple[list[float], list[float]]:
    """On prompts with a third name C (`ds.fillers[i]["C"]`): each head's direct effect at END on logit(S) and
    on logit(C), each relative to the mean logit (final LayerNorm frozen). Negative = the head writes against
    that name. Returns (on_s, on_c), one value per head."""
    batch = encode_ioi(model, ds)
    results, scale, _ = head_results_at_end(model, batch)
    c_ids = third_name_ids(model, ds)
    ln_w = model.hf.transformer.ln_f.weight
    on_s = io_logit_dla(results, scale, ln_w, model.W_U, batch.s.to(model.device))
    on_c = io_logit_dla(results, scale, ln_w, model.W_U, c_ids)
    return [float(on_s[h]) for h in heads], [float(on_c[h]) for h in heads]


def share_against_s(on_s: list[float], on_c: list[float]) -> float:
    """Of a set of heads' combined suppression of S and C, the share aimed at S: (-sum on_s) / (-sum on_s -
    sum on_c). 1: they write only against the repeated name; 0: only against the final subject."""
    against_s, against_c = -sum(on_s), -sum(on_c)
    return against_s / (against_s + against_c) if against_s + against_c > 0 else float("nan")


# Wang et al. 2022's classes in GPT-2 small (their Figure 2), for side-by-side tables.
WANG_CLASSES = {"name mover": "9.9, 9.6, 10.0", "negative name mover": "10.7, 11.10",
                "s-inhibition": "7.3, 7.9, 8.6, 8.10", "induction": "5.5, 5.8, 5.9, 6.9",
                "duplicate token": "0.1, 0.10, 3.0", "previous token": "2.2, 4.11"}


def circuit_table(circuits: dict[str, dict]) -> str:
    """Class by class: Wang et al.'s GPT-2 small heads beside the heads `find_circuit` found in each model
    ({label: find_circuit(...) result}). Classes nobody has are left out."""
    classes = list(WANG_CLASSES) + sorted({c for found in circuits.values() for c in found["classes"]}
                                         - set(WANG_CLASSES))
    rows = [("class", "GPT-2 small (Wang et al.)", *circuits)]
    for cls in classes:
        found = [", ".join(f"{l}.{h}" for l, h in c["classes"].get(cls, [])) or "—" for c in circuits.values()]
        rows.append((cls, WANG_CLASSES.get(cls, "—"), *found))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join([lines[0], "-+-".join("-" * w for w in widths), *lines[1:]])
