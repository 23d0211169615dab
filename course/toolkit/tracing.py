"""ROME's causal tracing (Meng et al. 2022) as a toolkit procedure, with restoration windows and averaging over
facts: what chapter 08 (and `zoo verify` for `facts-lm-v2`) locate facts with. Chapter 04 has the learner write
the single-layer trace; this copy is refused as an answer to that exercise while it is checked."""

from __future__ import annotations

import random

import torch
from mechinterp.course.toolkit.facts import RELATIONS
from mechinterp.course.toolkit.twins import exercise_twin
from torch import Tensor

SITE_HOOKS = {"resid": "blocks.{layer}.hook_resid_post", "attn": "blocks.{layer}.hook_attn_out",
              "mlp": "blocks.{layer}.hook_mlp_out"}


@exercise_twin("patching", "causal_trace")
@torch.no_grad()
def causal_trace(model, tokens: Tensor, subject_pos: list[int], answer: int, noise: Tensor, site: str,
                 window: int = 1) -> Tensor:
    """[n_layers, pos] indirect effects for one prompt tokens [1, pos]: p(answer) at the last position when the
    clean `site` output is restored at one position in a run whose subject embeddings carry `noise`
    [n_samples, len(subject_pos), d_model], minus p(answer) with no restoration. With `window` > 1 the row for
    layer l restores layers l - window//2 .. l + (window-1)//2 (clipped) together, as ROME does for MLPs and
    attention."""
    n_samples, n_pos, n_layers = noise.shape[0], tokens.shape[1], model.n_layers
    names = [SITE_HOOKS[site].format(layer=layer) for layer in range(n_layers)]
    noise = noise.to(model.device)

    def add_noise(act, hp):
        act = act.clone()
        act[:, subject_pos] += noise.repeat(act.shape[0] // n_samples, 1, 1)
        return act

    with model.hooks([("hook_embed", add_noise)]):
        corrupted = model(tokens.repeat(n_samples, 1))[:, -1].softmax(-1)[:, answer].mean()
    _, cache = model.run_with_cache(tokens, names_filter=names)
    rows = torch.arange(n_pos * n_samples, device=model.device)
    where = rows // n_samples  # position-major blocks of n_samples rows, one block per restored position

    def restore(act, hp):
        act = act.clone()
        act[rows, where] = cache[hp.name][0, where]
        return act

    out = torch.zeros(n_layers, n_pos)
    for layer in range(n_layers):
        lo, hi = max(0, layer - window // 2), min(n_layers, layer + (window - 1) // 2 + 1)
        with model.hooks([("hook_embed", add_noise), *[(names[j], restore) for j in range(lo, hi)]]):
            probs = model(tokens.repeat(n_pos * n_samples, 1))[:, -1].softmax(-1)[:, answer]
        out[layer] = (probs.view(n_pos, n_samples).mean(1) - corrupted).cpu()
    return out


def trace_facts(model, facts: dict[str, dict[str, str]], relations: list[str], n_subjects: int = 12,
                n_samples: int = 10, window: int = 1, sites: tuple[str, ...] = ("mlp", "attn"),
                seed: int = 0) -> dict:
    """Average causal traces over n_subjects people x `relations`, each asked as "Given Family <first phrase>"
    ([BOS] Given Family ... : the subject is positions 1-2), with ROME's noise (3 x the embedding std) on both
    subject tokens. Returns {site: [n_layers, 3] mean indirect effect at (first subject token, last subject
    token, final token)}, plus "p_clean" and "p_corrupted" (means)."""
    gen = torch.Generator().manual_seed(seed)
    std = float(model.W_E.detach().std())
    subjects = random.Random(seed + 1).sample(sorted(facts), n_subjects)
    traces = {site: [] for site in sites}
    p_clean, p_corrupted = [], []
    tok = model.tokenizer
    for relation in relations:
        for s in subjects:
            words = f"{s} {RELATIONS[relation][0][0]}".split()
            tokens = torch.tensor([[tok.bos_token_id, *tok.convert_tokens_to_ids(words)]], device=model.device)
            answer = int(tok.convert_tokens_to_ids(facts[s][relation]))
            noise = torch.randn(n_samples, 2, model.d_model, generator=gen) * 3 * std
            for site in sites:
                trace = causal_trace(model, tokens, [1, 2], answer, noise, site, window)
                traces[site].append(trace[:, [1, 2, -1]])
            with torch.no_grad():
                p_clean.append(float(model(tokens)[0, -1].softmax(-1)[answer]))
                noised = model.hf.transformer.wte(tokens).repeat(n_samples, 1, 1)
                noised[:, 1:3] += noise.to(model.device)
                p_corrupted.append(float(model.hf(inputs_embeds=noised).logits[:, -1].softmax(-1)[:, answer].mean()))
    out = {site: torch.stack(t).mean(0) for site, t in traces.items()}
    out["p_clean"] = sum(p_clean) / len(p_clean)
    out["p_corrupted"] = sum(p_corrupted) / len(p_corrupted)
    return out
