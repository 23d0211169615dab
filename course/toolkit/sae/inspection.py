"""Reading a trained sparse autoencoder: top-activating contexts, feature dashboards, a survey of its latents'
densities and logit effects, and steered sampling."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torch import Tensor


def top_contexts(window_acts: Tensor, latent: int, tokens: Tensor, tokenizer, k: int = 5, before: int = 10,
                 after: int = 3) -> list[str]:
    """The k strongest activations of `latent` in window_acts [n_windows, pos, width], each as a short text
    with the firing token in ⟦ ⟧ and the activation value."""
    acts = window_acts[..., latent]
    top = acts.flatten().topk(k)
    out = []
    for value, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        w, p = divmod(flat, acts.shape[1])
        left = tokenizer.decode(tokens[w, max(0, p - before) : p].tolist())
        mid = tokenizer.decode(tokens[w, p : p + 1].tolist())
        right = tokenizer.decode(tokens[w, p + 1 : p + 1 + after].tolist())
        out.append(f"{value:6.2f}  …{left}⟦{mid}⟧{right}…".replace("\n", "⏎"))
    return out


def feature_dashboard(window_acts: Tensor, latent: int, tokens: Tensor, tokenizer, effects: Tensor,
                      common: Tensor | None = None):
    """One figure for one latent: activation histogram, logit effects (top and bottom tokens, among `common`
    tokens if given), top contexts."""
    acts = window_acts[..., latent].flatten()
    fig = plt.figure(figsize=(13, 5.5))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.2])
    ax = fig.add_subplot(grid[0, 0])
    ax.hist(acts[acts > 0].numpy(), bins=40)
    ax.set_title(f"latent {latent}: non-zero activations (density {float((acts > 0).float().mean()):.2%})",
                 fontsize=9)
    ax = fig.add_subplot(grid[0, 1])
    keep = torch.ones(effects.shape[1], dtype=torch.bool) if common is None else common
    up = effects[latent].masked_fill(~keep, float("-inf")).topk(8)
    down = (-effects[latent]).masked_fill(~keep, float("-inf")).topk(8)
    labels = tokenizer.convert_ids_to_tokens(up.indices.tolist() + down.indices.tolist())
    values = up.values.tolist() + (-down.values).tolist()
    ax.barh(range(16), values, color=["tab:blue"] * 8 + ["tab:red"] * 8)
    ax.set_yticks(range(16), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_title("logit effects: W_dec[latent] @ W_U", fontsize=9)
    ax = fig.add_subplot(grid[1, :])
    ax.axis("off")
    ax.text(0, 1, "top-activating contexts\n" + "\n".join(top_contexts(window_acts, latent, tokens, tokenizer,
                                                                       k=8)),
            va="top", family="monospace", fontsize=8)
    fig.tight_layout()
    return fig


@torch.no_grad()
def sample_text(model, prompts: Tensor, n_new: int, hook: str, hook_fn, watch: Tensor,
                seed: int = 0, temperature: float = 1.0) -> tuple[list[str], float, float]:
    """Sample n_new tokens after each prompt row with `hook_fn` applied at `hook` (None: unsteered). Returns
    (texts, fraction of sampled tokens that are in `watch`, perplexity of the samples under the UNSTEERED
    model)."""
    gen = torch.Generator(device=prompts.device).manual_seed(seed)
    seq = prompts.clone()
    hooks = [(hook, hook_fn)] if hook_fn is not None else []
    for _ in range(n_new):
        logits = model.run_with_hooks(seq, hooks)[:, -1] / temperature
        nxt = torch.multinomial(logits.softmax(-1), 1, generator=gen)
        seq = torch.cat([seq, nxt], dim=1)
    new = seq[:, prompts.shape[1] :]
    logp = model(seq).log_softmax(-1)[:, prompts.shape[1] - 1 : -1].gather(-1, new[..., None])
    freq = float(torch.isin(new, watch.to(new.device)).float().mean())
    return model.tokenizer.batch_decode(new.tolist()), freq, float((-logp.mean()).exp())


@torch.no_grad()
def latent_survey(model, sae, hook: str, tokens: Tensor, min_count: int = 20) -> dict:
    """What the chapter needs to interpret an SAE on `tokens` [n_windows, pos]: "window_acts" [n_windows, pos,
    width] (CPU), "density" [width], "effects" [width, vocab] (logit effects W_dec[i] @ W_U in raw units),
    "common" (bool [vocab]: tokens seen at least `min_count` times in `tokens` — rare byte-level tokens have
    large, meaningless logit effects), "candidates" (latents firing on 0.1-2% of tokens: specific enough to
    name) and "steer" — the rule for the latent to steer with: the candidate with the largest logit effect on
    a common token."""
    window_acts = sae.encode(model.activation_at(tokens.to(model.device), hook)).cpu()
    density = (window_acts > 0).float().mean((0, 1))
    candidates = ((density > 1e-3) & (density < 2e-2)).nonzero().squeeze(-1)
    effects = ((sae.W_dec / sae.scale) @ model.W_U).cpu()
    common = torch.bincount(tokens.flatten().cpu(), minlength=effects.shape[1]) >= min_count
    on_common = effects.masked_fill(~common, float("-inf"))
    steer = int(candidates[on_common[candidates].max(-1).values.argmax()])
    return {"window_acts": window_acts, "density": density, "effects": effects, "common": common,
            "candidates": candidates, "steer": steer}


def promoted_tokens(survey: dict, latent: int, k: int = 10) -> Tensor:
    """The k common tokens a latent's decoder direction promotes most (its logit effects)."""
    return survey["effects"][latent].masked_fill(~survey["common"], float("-inf")).topk(k).indices
