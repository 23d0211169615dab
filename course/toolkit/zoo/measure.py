"""What a zoo language model does, measured: attention patterns, induction scores, held-out loss, logit lens."""

from __future__ import annotations

import torch
from mechinterp.course.toolkit.data import repeated_random_tokens
from transformers import GPT2LMHeadModel


@torch.no_grad()
def attention_patterns(model: GPT2LMHeadModel, tokens: torch.Tensor) -> list[torch.Tensor]:
    """Per layer [batch, head, query, key] attention probabilities (computed with eager attention)."""
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        out = model(tokens, output_attentions=True)
    finally:
        model.set_attn_implementation(previous)
    return list(out.attentions)


@torch.no_grad()
def measure_induction(model: GPT2LMHeadModel, half: int | None = None, batch: int = 100, seed: int = 0) -> dict:
    """Induction and previous-token scores per head, and loss on each half of repeated random tokens.

    induction score: mean attention from position i of the second copy to i - half + 1 (the token after the
    earlier occurrence); previous-token score: mean attention from i to i - 1 (Olsson et al. 2022)."""
    n_ctx = model.config.n_positions
    half = half or min(32, n_ctx // 2)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(seed)
    tokens = repeated_random_tokens(batch, half, vocab, gen, low=1 if vocab > 256 else 0)
    patterns = attention_patterns(model, tokens)
    q = torch.arange(half, 2 * half)
    induction = [p[:, :, q, q - half + 1].mean((0, 2)).tolist() for p in patterns]  # [layer][head]
    prev = [p[:, :, torch.arange(1, 2 * half), torch.arange(0, 2 * half - 1)].mean((0, 2)).tolist()
            for p in patterns]
    logits = model(tokens).logits
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
    return {
        "induction_score": induction, "prev_token_score": prev,
        "first_half_loss": float(losses[:, : half - 1].mean()), "second_half_loss": float(losses[:, half:].mean()),
    }


@torch.no_grad()
def heldout_loss(model: GPT2LMHeadModel, ids: torch.Tensor, n_ctx: int, max_windows: int = 400) -> float:
    windows = ids[: (len(ids) // n_ctx) * n_ctx].long().view(-1, n_ctx)[:max_windows]
    total = 0.0
    for chunk in windows.split(50):
        total += float(model(chunk, labels=chunk).loss) * len(chunk)
    return total / len(windows)


@torch.no_grad()
def logit_lens_curve(model: GPT2LMHeadModel, ids: torch.Tensor, n_ctx: int, max_windows: int = 100) -> list[float]:
    """Mean log-probability of the next token when decoding the residual stream after each block (through
    the final LayerNorm and unembedding); index 0 is the embeddings, the last entry the model's output."""
    windows = ids[: (len(ids) // n_ctx) * n_ctx].long().view(-1, n_ctx)[:max_windows]
    out = model(windows, output_hidden_states=True)
    hidden = list(out.hidden_states)  # HF: the last entry already has ln_f applied
    curve = []
    for i, h in enumerate(hidden):
        normed = h if i == len(hidden) - 1 else model.transformer.ln_f(h)
        logp = model.lm_head(normed).log_softmax(-1)[:, :-1]
        curve.append(float(logp.gather(-1, windows[:, 1:, None]).mean()))
    return curve
