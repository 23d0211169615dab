"""Checks for chapter 05 (the IOI circuit). Inputs are generated here — random logits and patterns, and small
random-weight GPT-2s — so the checks do not depend on the zoo and never assume which head does what."""

from __future__ import annotations

import functools
import random

import torch
from mechinterp.autograder.checks._models import tiny_gpt2
from mechinterp.autograder.harness import (
    CheckFailure,
    as_number,
    call,
    case_seed,
    exercise,
    expect_close,
    expect_equal_answer,
)
from mechinterp.autograder.replay import reference_module
from mechinterp.course.toolkit.model import HookedModel
from torch import Tensor

CHAPTER = "ioi"
ref = reference_module("ioi")  # or, in the student kit, its answer pack


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(case_seed(seed))


@functools.lru_cache(maxsize=1)
def _model() -> HookedModel:
    """3 layers x 4 heads with MLPs (so path patching must let MLPs recompute)."""
    return tiny_gpt2(505, vocab_size=30, n_embd=32, n_layer=3, n_head=4)


@functools.lru_cache(maxsize=1)
def _prompts() -> tuple[Tensor, Tensor]:
    """clean [4, 8] and corrupt: three positions re-drawn, like ABC changes a name."""
    clean = torch.randint(1, 30, (4, 8), generator=_gen(11))
    corrupt = clean.clone()
    corrupt[:, [2, 4, 5]] = torch.randint(1, 30, (4, 3), generator=_gen(12))
    return clean, corrupt


def _ld(logits: Tensor, pos, io: Tensor, s: Tensor) -> Tensor:
    rows = torch.arange(len(io))
    at = logits[rows, pos] if isinstance(pos, Tensor) else logits[:, pos]
    return at.gather(1, io[:, None])[:, 0] - at.gather(1, s[:, None])[:, 0]


# ---------------------------------------------------------------------------------------------- metric


@exercise(CHAPTER, points=1)
def check_logit_diff(fn) -> None:
    for seed, (b, p, v) in enumerate([(5, 7, 20), (3, 9, 40)]):
        g = _gen(seed)
        logits = torch.randn(b, p, v, generator=g) * 3
        end = torch.randint(2, p - 1, (b,), generator=g)  # right-padded: END is before the last position
        io, s = torch.randint(0, v, (b,), generator=g), torch.randint(0, v, (b,), generator=g)
        want = ref.logit_diff(logits, end, io, s)
        expect_close(call(fn, logits, end, io, s), want, what="logit difference", case=f"logits {[b, p, v]}",
                     mistakes={
            "prompts are right-padded: read each prompt's END position (logits[rows, end]), not the last position":
                _ld(logits, -1, io, s),
            "use logits, not probabilities: the logit difference is linear in the residual stream":
                _ld(logits.softmax(-1), end, io, s),
            "return one value per prompt ([batch]), not the mean": want.mean(),
            "END is the last PROMPT token: its logits predict the answer (do not read end + 1)":
                _ld(logits, end + 1, io, s),
        })


@exercise(CHAPTER, points=1)
def check_end_attention(fn) -> None:
    g = _gen(3)
    b, h, p = 6, 3, 9
    pattern = torch.randn(b, h, p, p, generator=g).softmax(-1)
    end = torch.randint(5, p - 1, (b,), generator=g)
    key = torch.randint(0, 5, (b,), generator=g)
    rows = torch.arange(b)
    want = ref.end_attention(pattern, end, key)
    expect_close(call(fn, pattern, end, key), want, what="attention from END", mistakes={
        "the query is END and the key is key_pos: pattern[rows, :, end, key_pos] (query axis before key axis)":
            pattern[rows, :, key, end].mean(0),
        "prompts are right-padded: use each prompt's END, not the last position": pattern[rows, :, -1, key].mean(0),
        "pair each prompt with its OWN END and key (rows = torch.arange(batch)); pattern[:, :, end, key_pos] mixes "
        "prompts": pattern[:, :, end, key].mean((0, 2)),
    })


@exercise(CHAPTER, points=2)
def check_logit_diff_dla(fn) -> None:
    for seed, (b, n_layer, n_head, d, v) in enumerate([(5, 2, 3, 8, 12), (4, 3, 2, 6, 10)]):
        g = _gen(20 + seed)
        results = torch.randn(b, n_layer, n_head, d, generator=g) + 0.5
        scale = torch.rand(b, generator=g) + 0.5
        ln_weight = torch.rand(d, generator=g) + 0.5
        W_U = torch.randn(d, v, generator=g)
        io, s = torch.randint(0, v, (b,), generator=g), torch.randint(0, v, (b,), generator=g)
        want = ref.logit_diff_dla(results, scale, ln_weight, W_U, io, s)
        centred = results - results.mean(-1, keepdim=True)
        direction = ln_weight[:, None] * (W_U[:, io] - W_U[:, s])

        def variant(r=centred, dirn=direction, sc=scale):
            return (torch.einsum("blhm,mb->blh", r, dirn) / sc[:, None, None]).mean(0)

        expect_close(call(fn, results, scale, ln_weight, W_U, io, s), want, what="DLA", case=f"case {seed}",
                     atol=1e-4, mistakes={
            "LayerNorm subtracts the mean: centre each head's output (r - r.mean(-1)) before projecting":
                variant(r=results),
            "divide by the final LayerNorm's scale (final_scale), which the frozen LayerNorm applies":
                variant(sc=torch.ones(b)),
            "multiply by ln_weight: the LayerNorm's gain sits between the residual stream and W_U":
                variant(dirn=W_U[:, io] - W_U[:, s]),
            "project onto W_U[:, IO] - W_U[:, S] (the logit DIFFERENCE), not W_U[:, IO] alone":
                variant(dirn=ln_weight[:, None] * W_U[:, io]),
            "average over prompts, do not sum": variant() * b,
        })


def _copy_variant(model, layer, head, name_ids, k, negative, *, ln1=True, final=True, pos=True):
    resid = model.W_E[name_ids] + (model.W_pos[1] if pos else 0)
    block = model.hf.transformer.h[layer]
    x = torch.nn.functional.layer_norm(resid, (model.d_model,), block.ln_1.weight, block.ln_1.bias) if ln1 else resid
    out = x @ model.W_V(layer)[head] @ model.W_O(layer)[head]
    logits = (model.ln_final(out) if final else out) @ model.W_U
    logits = -logits if negative else logits
    return (logits.topk(k, dim=-1).indices == name_ids[:, None]).any(-1).float().mean()


@functools.lru_cache(maxsize=2)
def _copy_model(hidden: bool = True) -> HookedModel:
    """A small model whose layer-1 OV circuits are made to copy (head 0) and to suppress (head 1) tokens, so the
    scores are far from 0 and the mistakes change them. hidden=False: the weights on which every mistake below
    was seen to change the score (a hidden seed draws other weights, where one of them may not)."""
    model = tiny_gpt2(77, vocab_size=40, n_embd=32, n_layer=2, n_head=4, attn_only=True, hidden=hidden)
    with torch.no_grad():
        attn = model.hf.transformer.h[1].attn
        d, dh = model.d_model, model.d_head
        W_E = model.W_E.detach()
        basis = torch.linalg.qr(W_E[:24].T)[0][:, :dh]  # a d_head-dim subspace spanned by token embeddings
        for head, sign in ((0, 1.0), (1, -1.0)):
            attn.c_attn.weight[:, 2 * d + head * dh : 2 * d + (head + 1) * dh] = basis * 3
            attn.c_proj.weight[head * dh : (head + 1) * dh] = sign * basis.T * 3
    return model


@exercise(CHAPTER, points=2)
def check_copy_score(fn) -> None:
    names = torch.arange(4, 24)
    cases = [(1, 0, 5, False), (1, 1, 5, True), (1, 1, 3, False), (0, 2, 10, False)]
    models = [_copy_model(hidden=False)] + ([_copy_model()] if case_seed(77) != 77 else [])
    for model, (layer, head, k, negative) in [(m, c) for m in models for c in cases]:
        with torch.no_grad():
            want = ref.copy_score(model, layer, head, names, k, negative)
            got = as_number(call(fn, model, layer, head, names, k, negative), "the copy score")
            case = f"layer {layer}, head {head}, k {k}, negative={negative}"
            mistakes = {
                "the head reads its input through its own LayerNorm (blocks[layer].ln_1) before W_V":
                    _copy_variant(model, layer, head, names, k, negative, ln1=False),
                "decode through ln_final before W_U, as the model does":
                    _copy_variant(model, layer, head, names, k, negative, final=False),
                "negative=True scores suppression: rank the NEGATED logits":
                    _copy_variant(model, layer, head, names, k, not negative),
                "count a name when it is among the k largest logits (topk(k)), not only the largest":
                    _copy_variant(model, layer, head, names, 1, negative),
            }
        w = float(want)
        if abs(got - w) < 1e-6:
            continue
        for hint, bad in mistakes.items():
            if abs(float(bad) - w) > 1e-6 and abs(got - float(bad)) < 1e-6:
                raise CheckFailure(f"{hint} ({case})")
        raise CheckFailure(f"copy score {got:.4g}, expected {w:.4g} ({case})")


# ------------------------------------------------------------------------------------------ path patching


def _path_variant(clean, corrupt, senders, receivers, qkv, *, freeze=True, only_receivers=True, base=None):
    """Mistaken path patching: no freezing of the other heads / every head of a receiver layer replaced /
    runs 2 and 3 on the corrupt prompts."""
    model = _model()
    base = clean if base is None else base
    z_names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
    _, clean_cache = model.run_with_cache(base, names_filter=z_names)
    _, corrupt_cache = model.run_with_cache(corrupt if base is clean else clean, names_filter=z_names)

    def hook(act, hp):
        layer = int(hp.name.split(".")[1])
        heads = [h for sl, h in senders if sl == layer]
        new = (clean_cache[hp.name] if freeze else act).clone()
        new[:, :, heads] = corrupt_cache[hp.name][:, :, heads]
        return new

    hooks = [(n, hook) for n in z_names]
    if receivers is None:
        with model.hooks(hooks):
            return model(base)
    names = sorted({f"blocks.{layer}.attn.hook_{qkv}" for layer, _ in receivers})
    with model.hooks(hooks):
        _, mid = model.run_with_cache(base, names_filter=names)

    def insert(act, hp):
        layer = int(hp.name.split(".")[1])
        heads = [h for rl, h in receivers if rl == layer] if only_receivers else list(range(model.n_heads))
        new = act.clone()
        new[:, :, heads] = mid[hp.name][:, :, heads]
        return new

    with model.hooks([(n, insert) for n in names]):
        return model(base)


def _random_path_cases(seed: int = 7, n: int = 3) -> list[tuple[list, list | None, str]]:
    """Random sender / receiver sets on the 3-layer check model (seeded, so every learner gets the same ones):
    1-2 receivers in layer 1 or 2, 1-2 senders in earlier layers, the receivers' queries, keys and values in
    turn; then one case with the logits as receiver."""
    rng = random.Random(seed)
    heads = [(layer, head) for layer in range(3) for head in range(4)]
    cases = []
    for i in range(n):
        layer = rng.choice([1, 2])
        receivers = sorted(rng.sample([h for h in heads if h[0] == layer], rng.randint(1, 2)))
        senders = sorted(rng.sample([h for h in heads if h[0] < layer], rng.randint(1, 2)))
        cases.append((senders, receivers, "qkv"[i % 3]))
    cases.append((sorted(rng.sample(heads[:8], 2)), None, "q"))
    return cases


PATH_CASES = _random_path_cases()


@functools.lru_cache(maxsize=1)
def _path_expected() -> list[tuple[Tensor, dict]]:
    clean, corrupt = _prompts()
    out = []
    with torch.no_grad():
        for senders, receivers, qkv in PATH_CASES:
            want = ref.path_patch(_model(), clean, corrupt, senders, receivers, qkv)
            mistakes = {
                "freeze every head that is not a sender at its CLEAN output in run 2; otherwise you measure the "
                "senders' effect through every path, not the path to the receivers":
                    _path_variant(clean, corrupt, senders, receivers, qkv, freeze=False),
                "runs 2 and 3 use the CLEAN prompts; only the senders' outputs come from the corrupt run":
                    _path_variant(clean, corrupt, senders, receivers, qkv, base=corrupt),
            }
            if receivers is not None:
                mistakes["replace only the receivers' own heads (act[:, :, heads]) at their input, not every head "
                         "of the layer"] = _path_variant(clean, corrupt, senders, receivers, qkv,
                                                         only_receivers=False)
            out.append((want, mistakes))
    return out


@exercise(CHAPTER, points=3)
def check_path_patch(fn) -> None:
    clean, corrupt = _prompts()
    for (senders, receivers, qkv), (want, mistakes) in zip(PATH_CASES, _path_expected(), strict=True):
        with torch.no_grad():
            got = call(fn, _model(), clean, corrupt, senders, receivers, qkv)
        expect_close(got, want, what="logits", case=f"senders {senders} -> receivers {receivers} ({qkv})",
                     atol=1e-4, rtol=1e-4, mistakes=mistakes)


# ------------------------------------------------------------------------------------------ mean ablation


@exercise(CHAPTER, points=1)
def check_group_means(fn) -> None:
    g = _gen(31)
    acts = torch.randn(7, 4, 3, generator=g)
    groups = torch.tensor([0, 1, 0, 2, 1, 0, 2])
    want = ref.group_means(acts, groups)
    expect_close(call(fn, acts, groups), want, what="group means", mistakes={
        "average only the rows of the SAME group (prompts of one template), not every row":
            acts.mean(0, keepdim=True).expand_as(acts),
        "average over rows only: keep the position axis (position p is the same word within a group)":
            ref.group_means(acts.mean(1, keepdim=True).expand_as(acts).contiguous(), groups),
        "average within the group (divide the group's sum by its number of rows)":
            ref.group_means(acts, groups) * torch.bincount(groups)[groups].view(-1, 1, 1),
    })


def _ablate_variant(tokens, means, keep, *, invert=False, zero=False, last_only=False):
    model = _model()

    def hook(act, hp):
        layer = int(hp.name.split(".")[1])
        heads = [h for h in range(model.n_heads) if ((layer, h) in keep) == invert]
        new = act.clone()
        source = torch.zeros_like(act) if zero else means[hp.name]
        if last_only:
            new[:, -1:, heads] = source[:, -1:, heads]
        else:
            new[:, :, heads] = source[:, :, heads]
        return new

    return model.run_with_hooks(tokens, [(f"blocks.{layer}.attn.hook_z", hook) for layer in range(model.n_layers)])


@exercise(CHAPTER, points=2)
def check_ablate_heads(fn) -> None:
    clean, corrupt = _prompts()
    model = _model()
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(corrupt, names_filter=names)
    means = {n: ref.group_means(cache[n], torch.tensor([0, 1, 0, 1])) for n in names}
    for keep in [{(0, 1), (2, 3)}, {(1, 0), (1, 1), (1, 2)}, set()]:
        with torch.no_grad():
            want = ref.ablate_heads(model, clean, means, keep)
            got = call(fn, model, clean, means, keep)
            mistakes = {
                "ablate the heads NOT in keep (the complement of the circuit), and let the kept heads run":
                    _ablate_variant(clean, means, keep, invert=True),
                "mean-ablate: replace with means[name], not with zeros": _ablate_variant(clean, means, keep,
                                                                                         zero=True),
                "ablate at every position, not only the last": _ablate_variant(clean, means, keep, last_only=True),
            }
        expect_close(got, want, what="logits", case=f"keep {sorted(keep)}", atol=1e-4, rtol=1e-4, mistakes=mistakes)


# ------------------------------------------------------------------------------------------ drills


@exercise(CHAPTER, points=1)
def check_drill_circuit_order(fn) -> None:
    expect_equal_answer(call(fn), "c", {
        "a": "name movers act LAST: they read the answer out at END, after S has been marked and inhibited",
        "b": "the induction / duplicate-token heads must come first: S-inhibition heads move THEIR signal",
        "d": "previous-token heads feed induction heads; S-inhibition sits between those and the name movers",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_why_abc_mean(fn) -> None:
    expect_equal_answer(call(fn), "b", {
        "a": "speed is not the reason: both ablations cost one forward pass",
        "c": "ABC is chosen to REMOVE the IO-vs-S information, so an ablated head should carry less of it",
        "d": "a zero vector always exists; the point is that a head's output is never zero in practice",
    }, default_hint="answer with one of the letters a, b, c, d")


@exercise(CHAPTER, points=1)
def check_drill_negative_name_mover(fn) -> None:
    expect_equal_answer(call(fn), "a", {
        "b": "that describes S-inhibition's signal, and it does not write S to the output",
        "c": "negative name movers act on the logits directly; they do not inhibit other heads",
        "d": "'negative' refers to the sign of its direct effect on the IO logit, not to positions",
    }, default_hint="answer with one of the letters a, b, c, d")
