"""Chapter 03 reference: induction heads and the logit lens (Olsson et al. 2022; Elhage et al. 2021;
nostalgebraist 2020).

Conventions: patterns are [batch, head, query, key]; repeated random sequences are [batch, 2 * half] with
the second half an exact copy of the first; per-token losses are [batch, pos - 1] (position i predicts
token i + 1); weights follow the x @ W convention of `HookedModel`.
"""

from __future__ import annotations

import torch
from mechinterp.course.toolkit.data import repeated_random_tokens
from mechinterp.course.toolkit.findings import Finding
from mechinterp.course.toolkit.model import HookedModel, load_model, patch, randomly_initialised
from mechinterp.course.toolkit.zoo import heldout_ids
from torch import Tensor

# --------------------------------------------------------------------------------------- exercises


def per_token_loss(logits: Tensor, tokens: Tensor) -> Tensor:
    """Cross-entropy of each next-token prediction: position i predicts tokens[:, i + 1].

    logits: [batch, pos, d_vocab]; tokens: [batch, pos]. Returns [batch, pos - 1] (nats, >= 0).
    """
    log_probs = logits[:, :-1].log_softmax(-1)  # [batch, pos - 1, d_vocab]
    return -log_probs.gather(-1, tokens[:, 1:, None])[..., 0]


def prev_token_score(pattern: Tensor) -> Tensor:
    """Mean attention from each position to the position just before it (positions 1 .. pos - 1).

    pattern: [batch, head, query, key]. Returns [head].
    """
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean((0, -1))


def duplicate_token_score(pattern: Tensor, half: int) -> Tensor:
    """On a repeated sequence (second half = first half), mean attention from each second-half position q
    to the earlier occurrence of the same token, q - half.

    pattern: [batch, head, 2 * half, 2 * half]. Returns [head].
    """
    return pattern.diagonal(offset=-half, dim1=-2, dim2=-1).mean((0, -1))


def induction_score(pattern: Tensor, half: int) -> Tensor:
    """On a repeated sequence, mean attention from each second-half position q to the token AFTER the
    earlier occurrence of its token, q - half + 1 (what an induction head attends to).

    pattern: [batch, head, 2 * half, 2 * half]. Returns [head].
    """
    return pattern.diagonal(offset=1 - half, dim1=-2, dim2=-1)[..., 1:].mean((0, -1))


def logit_lens(model: HookedModel, tokens: Tensor) -> Tensor:
    """Log-probability of the true next token when the residual stream is decoded early.

    Decode the residual stream entering each block (blocks.{l}.hook_resid_pre) and the one leaving the
    last block (blocks.{n_layers - 1}.hook_resid_post) through model.ln_final and model.W_U.
    tokens: [batch, pos]. Returns [n_layers + 1, batch, pos - 1]; the last row equals the model's own
    log-probabilities.
    """
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(model.n_layers)]
    names.append(f"blocks.{model.n_layers - 1}.hook_resid_post")
    _, cache = model.run_with_cache(tokens, names_filter=names)
    resid = torch.stack([cache[n] for n in names])  # [n_layers + 1, batch, pos, d_model]
    log_probs = (model.ln_final(resid) @ model.W_U).log_softmax(-1)[:, :, :-1]
    targets = tokens[None, :, 1:, None].expand(len(names), -1, -1, 1)
    return log_probs.gather(-1, targets)[..., 0]


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
    scale = (final_resid.var(-1, unbiased=False, keepdim=True) + eps).sqrt()[:, :-1, None]  # [b, p-1, 1, 1]
    centred = result[:, :-1] - result[:, :-1].mean(-1, keepdim=True)  # [batch, pos - 1, head, d_model]
    directions = (ln_weight[:, None] * W_U)[:, tokens[:, 1:]]  # [d_model, batch, pos - 1]
    contrib = torch.einsum("bphm,mbp->hbp", centred / scale, directions)
    return contrib


def ablated_repeat_loss(model: HookedModel, tokens: Tensor, layer: int, head: int, how: str = "zero") -> Tensor:
    """Mean loss on the repeated (second) half of `tokens` with one head ablated at its hook_z.

    how: "zero" (z of that head set to 0) or "mean" (z of that head replaced by its mean over batch and
    positions on these tokens). tokens: [batch, 2 * half]. Returns a scalar tensor.
    """
    name = f"blocks.{layer}.attn.hook_z"
    if how == "zero":
        hook = patch("zero", head=head)
    elif how == "mean":
        _, cache = model.run_with_cache(tokens, names_filter=name)
        hook = patch("mean", cache[name].mean((0, 1)), head=head)
    else:
        raise ValueError(f"how must be 'zero' or 'mean', got {how!r}")
    with model.hooks([(name, hook)]):
        losses = per_token_loss(model(tokens), tokens)
    half = tokens.shape[1] // 2
    return losses[:, half:].mean()


def composition_score(W_A: Tensor, W_B: Tensor) -> Tensor:
    """How much two linear maps compose: ||W_A W_B||_F / (||W_A||_F ||W_B||_F) (Elhage et al. 2021).

    W_A: [..., d, d]; W_B: [..., d, d] (broadcast over leading dims). Returns [...]; 0 = orthogonal,
    1 = perfectly aligned.
    """
    return torch.linalg.matrix_norm(W_A @ W_B) / (torch.linalg.matrix_norm(W_A) * torch.linalg.matrix_norm(W_B))


def copying_fraction(full_ov: Tensor) -> Tensor:
    """For each head's full OV circuit (token in -> logit out), the fraction of input tokens whose
    highest output logit is the token itself: 1 for a perfect copying head.

    full_ov: [head, d_vocab, d_vocab] (row = input token, column = output logit). Returns [head].
    """
    vocab = torch.arange(full_ov.shape[-1], device=full_ov.device)
    return (full_ov.argmax(-1) == vocab).float().mean(-1)


# ------------------------------------------------------------------------------------------ drills


def drill_induction_needs() -> str:
    """Drill: what two things does an induction head need? Return the letter of the best answer."""
    return "b"


def drill_one_layer_cannot() -> str:
    """Drill: why can't a 1-layer attention-only model form an induction head? Return the letter."""
    return "a"


def drill_logit_lens_assumes() -> str:
    """Drill: what does the logit lens assume? Return the letter."""
    return "d"


# ------------------------------------------------------------------------------- chapter findings

HALF = 32


def repeated_tokens(model: HookedModel, batch: int = 64, seed: int = 0) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return repeated_random_tokens(batch, HALF, model.d_vocab, gen).to(model.device)


@torch.no_grad()
def head_scores(model: HookedModel, tokens: Tensor) -> dict[str, Tensor]:
    """[n_layers, n_heads] previous-token, duplicate-token and induction scores, plus per-half losses."""
    logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    patterns = [cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(model.n_layers)]
    losses = per_token_loss(logits, tokens)
    return {
        "prev": torch.stack([prev_token_score(p) for p in patterns]).cpu(),
        "duplicate": torch.stack([duplicate_token_score(p, HALF) for p in patterns]).cpu(),
        "induction": torch.stack([induction_score(p, HALF) for p in patterns]).cpu(),
        "first_half_loss": float(losses[:, : HALF - 1].mean()),
        "second_half_loss": float(losses[:, HALF:].mean()),
    }


def offset_scores(pattern: Tensor, max_offset: int = 4) -> Tensor:
    """[head, max_offset]: mean attention from each query to the key `offset` positions back (1 = previous)."""
    return torch.stack([pattern.diagonal(-d, -2, -1).mean((0, -1)) for d in range(1, max_offset + 1)], -1)


def k_composition(model: HookedModel) -> Tensor:
    """[head in layer 0, head in layer 1] K-composition scores: W_A = W_OV (layer 0), W_B = W_QK^T (layer 1)."""
    W_OV0, W_QK1 = model.W_OV(0).detach(), model.W_QK(1).detach()
    return composition_score(W_OV0[:, None], W_QK1.transpose(-1, -2)[None])


@torch.no_grad()
def findings(device: str | torch.device = "cpu") -> list[Finding]:
    """Run the chapter's experiments on the shipped zoo models and compare them with the papers."""
    m2, m1 = load_model("zoo/attn-only-2l", device), load_model("zoo/attn-only-1l", device)
    tokens2, tokens1 = repeated_tokens(m2), repeated_tokens(m1)
    s2, s1 = head_scores(m2, tokens2), head_scores(m1, tokens1)
    ind_head = int(s2["induction"][1].argmax())
    prev_head = int(s2["prev"][0].argmax())
    _, cache = m2.run_with_cache(tokens2, names_filter="blocks.0.attn.hook_pattern")
    offsets = offset_scores(cache["blocks.0.attn.hook_pattern"]).cpu()  # [head, 4]
    two_back = int(offsets[:, 1].argmax())
    base = float(per_token_loss(m2(tokens2), tokens2)[:, HALF:].mean())
    increase = {how: torch.tensor([[float(ablated_repeat_loss(m2, tokens2, layer, h, how)) - base
                                    for h in range(m2.n_heads)] for layer in range(m2.n_layers)])
                for how in ("zero", "mean")}
    # the circuit as the detectors find it: layer-0 heads that attend to a fixed recent offset (1 or 2 back;
    # this model's induction heads key on the previous TWO tokens) and the layer-1 induction heads
    circuit = {(0, h) for h in range(m2.n_heads) if offsets[h, :2].max() > 0.4}
    circuit |= {(1, h) for h in range(m2.n_heads) if s2["induction"][1, h] > 0.4}
    outside = [(l, h) for l in range(2) for h in range(m2.n_heads) if (l, h) not in circuit]
    worst_outside = {how: max(float(inc[l, h]) for l, h in outside) for how, inc in increase.items()}
    k_comp = k_composition(m2).cpu()
    # contrasts: the same architecture with fresh weights (scores of an untrained model)
    r2 = randomly_initialised(m2, 0)
    rs2 = head_scores(r2, tokens2)
    _, rcache = r2.run_with_cache(tokens2, names_filter="blocks.0.attn.hook_pattern")
    r_offsets = offset_scores(rcache["blocks.0.attn.hook_pattern"]).cpu()
    r_comp = k_composition(r2).cpu()
    text_lm = load_model("zoo/text-lm", device)
    ids = heldout_ids("text-lm")[: 16 * text_lm.n_ctx].view(16, text_lm.n_ctx).to(text_lm.device)
    lens = logit_lens(text_lm, ids).mean((1, 2)).cpu()  # [n_layers + 1]
    r_lens = logit_lens(randomly_initialised(text_lm, 0), ids).mean((1, 2)).cpu()

    def monotone(curve):
        return float(all(b > a for a, b in zip(curve, curve[1:], strict=False)))

    def final_best(curve):
        return float(int(curve.argmax()) == len(curve) - 1)

    ratio2 = s2["second_half_loss"] / s2["first_half_loss"]
    ratio1 = s1["second_half_loss"] / s1["first_half_loss"]
    fresh = "attn-only-2l re-initialised (same architecture, fresh weights)"
    margin = {"zero": 0.05, "mean": 0.5}
    return [
        Finding("attn-only-2l: best layer-1 induction score", "> 0.4 (Olsson et al.: induction heads)",
                float(s2["induction"][1].max()), lo=0.4, contrast=float(s1["induction"].max()),
                contrast_name="attn-only-1l (cannot compose)"),
        Finding("attn-only-2l: best layer-0 previous-token score", "> 0.4 (the K-composition partner)",
                float(s2["prev"][0].max()), lo=0.4, contrast=float(rs2["prev"][0].max()), contrast_name=fresh),
        Finding("attn-only-2l: repeated-half / first-half loss", "< 0.5 (in-context copying)", ratio2, hi=0.5,
                contrast=ratio1, contrast_name="attn-only-1l"),
        Finding("attn-only-1l: best induction score of any head", "< 0.2 (cannot compose)",
                float(s1["induction"].max()), hi=0.2, contrast=float(s2["induction"][1].max()),
                contrast_name="attn-only-2l, same detector (the positive control)"),
        Finding("attn-only-1l: repeated-half / first-half loss", "≈ 1 (no in-context copying)", ratio1, lo=0.8,
                contrast=ratio2, contrast_name="attn-only-2l (the positive control)"),
        Finding(f"attn-only-2l: head 0.{two_back} attends two tokens back", "— (this model's extra component)",
                float(offsets[two_back, 1]), lo=0.4, contrast=float(r_offsets[:, 1].max()), contrast_name=fresh),
        *[Finding(f"{how}-ablating induction head 1.{ind_head}: repeated-half loss increase (nats), at least "
                  f"{margin[how]} above the largest from any of the {len(outside)} non-circuit heads",
                  "the circuit matters most", float(increase[how][1, ind_head]), lo=worst_outside[how] + margin[how],
                  contrast=worst_outside[how], contrast_name="the largest non-circuit head's increase")
          for how in ("zero", "mean")],
        Finding(f"mean-ablating previous-token head 0.{prev_head}: repeated-half loss increase (nats)",
                "large (breaks every induction head)", float(increase["mean"][0, prev_head]), lo=1.0,
                contrast=worst_outside["mean"], contrast_name="the largest non-circuit head's increase"),
        Finding(f"K-composition 0.{prev_head} -> 1.{ind_head} minus the median over all pairs", "> 0",
                float(k_comp[prev_head, ind_head] - k_comp.median()), lo=0.05,
                contrast=float(r_comp[prev_head, ind_head] - r_comp.median()), contrast_name=fresh),
        Finding("text-lm logit lens: log-prob of the true token improves at every layer", "monotone",
                monotone(lens), 1.0, 1.0, contrast=monotone(r_lens), contrast_name="text-lm re-initialised"),
        Finding("text-lm logit lens: final layer is the best", "final layer best", final_best(lens), 1.0, 1.0,
                contrast=final_best(r_lens), contrast_name="text-lm re-initialised"),
    ]
