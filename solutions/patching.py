"""Chapter 04 reference: activation patching, ablation and causal tracing (Meng et al. 2022, ROME; Zhang & Nanda
2023; Heimersheim & Nanda 2024; Nanda 2023 on attribution patching).

Conventions: prompts are [batch, pos] token ids whose LAST position predicts the answer; a patching map is
[n_layers, pos]; "sites" are hook names: `blocks.{l}.hook_resid_pre` (residual stream entering block l),
`blocks.{l}.hook_attn_out`, `blocks.{l}.hook_mlp_out`. Denoising = run the corrupted prompt and restore one
clean activation; noising = run the clean prompt and insert one corrupted activation.
"""

from __future__ import annotations

import torch
from mechinterp.course.toolkit.model import HookedModel, randomly_initialised
from torch import Tensor

SITES = {"resid": "blocks.{layer}.hook_resid_pre", "attn": "blocks.{layer}.hook_attn_out",
         "mlp": "blocks.{layer}.hook_mlp_out"}

# --------------------------------------------------------------------------------------- exercises


def logit_diff(logits: Tensor, correct: Tensor, incorrect: Tensor) -> Tensor:
    """Logit of the correct answer minus the logit of the incorrect one, at the LAST position.

    logits: [batch, pos, d_vocab]; correct, incorrect: [batch] token ids. Returns [batch].
    """
    last = logits[:, -1]
    return last.gather(1, correct[:, None])[:, 0] - last.gather(1, incorrect[:, None])[:, 0]


def normalised_metric(value: Tensor, clean: Tensor, corrupted: Tensor) -> Tensor:
    """Rescale a metric so that 0 = the corrupted run's value and 1 = the clean run's value.

    value: any shape; clean, corrupted: broadcastable to it. Returns (value - corrupted) / (clean - corrupted).
    """
    return (value - corrupted) / (clean - corrupted)


def patch_one(model: HookedModel, tokens: Tensor, source_cache: dict, name: str, pos: int) -> Tensor:
    """Run `tokens` with the activation `name` at position `pos` (every batch row) replaced by the same
    activation from `source_cache` (a cache of another run with the same shape). Returns logits
    [batch, pos, d_vocab]."""
    def hook(act, hp):
        act = act.clone()
        act[:, pos] = source_cache[name][:, pos]
        return act

    with model.hooks([(name, hook)]):
        return model(tokens)


def patching_map(model: HookedModel, tokens: Tensor, source_cache: dict, site: str, metric) -> Tensor:
    """The naive loop: for every layer and position, patch_one at `site` ("resid", "attn" or "mlp") and
    record metric(logits) (a scalar tensor). Returns [n_layers, pos]."""
    out = torch.zeros(model.n_layers, tokens.shape[1])
    for layer in range(model.n_layers):
        name = SITES[site].format(layer=layer)
        for pos in range(tokens.shape[1]):
            out[layer, pos] = metric(patch_one(model, tokens, source_cache, name, pos))
    return out


def batched_patching_map(model: HookedModel, tokens: Tensor, source_cache: dict, site: str, metric) -> Tensor:
    """The same map with ONE forward pass per layer: repeat the batch once per position (position-major: all
    rows patched at position 0 first, then position 1, ...), patch row block p at position p, and apply
    `metric` to each block's logits. Returns [n_layers, pos], equal to patching_map's."""
    batch, n_pos = tokens.shape
    out = torch.zeros(model.n_layers, n_pos)
    big = tokens.repeat(n_pos, 1)
    rows = torch.arange(n_pos * batch)
    positions = rows // batch
    for layer in range(model.n_layers):
        name = SITES[site].format(layer=layer)
        source = source_cache[name].repeat(n_pos, *([1] * (source_cache[name].dim() - 1)))

        def hook(act, hp, source=source):
            act = act.clone()
            act[rows, positions] = source[rows, positions]
            return act

        with model.hooks([(name, hook)]):
            logits = model(big)
        for p in range(n_pos):
            out[layer, p] = metric(logits[p * batch : (p + 1) * batch])
    return out


def subject_noise(shape: tuple[int, ...], embedding_std: float, generator: torch.Generator) -> Tensor:
    """ROME's corruption: Gaussian noise with standard deviation 3 x the std of the token embeddings, to be
    added to the subject tokens' embeddings. shape: e.g. [n_samples, n_subject_tokens, d_model]."""
    return torch.randn(shape, generator=generator) * 3 * embedding_std


def causal_trace(model: HookedModel, tokens: Tensor, subject_pos: list[int], answer: int, noise: Tensor,
                 site: str) -> Tensor:
    """ROME's causal trace for one prompt. Corrupted run: `noise` [n_samples, len(subject_pos), d_model] added
    to hook_embed at the subject positions (one noise sample per row). For each (layer, position), restore the
    CLEAN activation of `site` ("resid" = blocks.{l}.hook_resid_post, the block's output, or "attn" / "mlp")
    at that position in every noisy row. Returns [n_layers, pos]: mean probability of `answer` at the last
    position with that restoration MINUS without any (the indirect effect). tokens: [1, pos].
    """
    n_samples, n_pos = noise.shape[0], tokens.shape[1]
    name_of = {"resid": "blocks.{layer}.hook_resid_post", "attn": "blocks.{layer}.hook_attn_out",
               "mlp": "blocks.{layer}.hook_mlp_out"}[site]

    def add_noise(act, hp):
        act = act.clone()
        act[:, subject_pos] = act[:, subject_pos] + noise.repeat(act.shape[0] // n_samples, 1, 1)
        return act

    with model.hooks([("hook_embed", add_noise)]):
        corrupted = model(tokens.repeat(n_samples, 1))[:, -1].softmax(-1)[:, answer].mean()
    names = [name_of.format(layer=layer) for layer in range(model.n_layers)]
    _, cache = model.run_with_cache(tokens, names_filter=names)
    big = tokens.repeat(n_pos * n_samples, 1)  # position-major blocks of n_samples rows
    rows = torch.arange(n_pos * n_samples)
    out = torch.zeros(model.n_layers, n_pos)
    for layer, name in enumerate(names):
        def restore(act, hp, clean=cache[name]):
            act = act.clone()
            act[rows, rows // n_samples] = clean[0, rows // n_samples]
            return act

        with model.hooks([("hook_embed", add_noise), (name, restore)]):
            probs = model(big)[:, -1].softmax(-1)[:, answer].view(n_pos, n_samples).mean(1)
        out[layer] = probs - corrupted
    return out


def ablate(model: HookedModel, tokens: Tensor, name: str, how: str, reference: Tensor | None = None,
           generator: torch.Generator | None = None) -> Tensor:
    """Run `tokens` with the activation `name` ablated at every position. how: "zero" (set to 0), "mean" (at
    each position, its mean over the rows of `reference`, a [n, pos] token batch of the same length), or
    "resample" (each row gets the activation of a random row of `reference`, drawn with `generator`).
    Returns logits."""
    if how == "zero":
        def hook(act, hp):
            return torch.zeros_like(act)
    else:
        _, cache = model.run_with_cache(reference, names_filter=[name])
        ref_act = cache[name]
        if how == "mean":
            def hook(act, hp):
                return ref_act.mean(0, keepdim=True).expand_as(act).clone()
        elif how == "resample":
            pick = torch.randint(0, len(reference), (tokens.shape[0],), generator=generator)

            def hook(act, hp):
                return ref_act[pick.to(ref_act.device)].clone()
        else:
            raise ValueError(f"how must be zero, mean or resample, got {how!r}")
    with model.hooks([(name, hook)]):
        return model(tokens)


def attribution_patching_map(model: HookedModel, clean: Tensor, corrupted: Tensor, site: str, metric) -> Tensor:
    """Attribution patching (a first-order Taylor approximation of denoising): for each layer and position,
    (clean activation - corrupted activation) . d metric / d activation, the gradient taken ONCE on the
    corrupted run and summed over d_model (and over the batch). metric(logits) returns a scalar.
    Returns [n_layers, pos]."""
    names = [SITES[site].format(layer=layer) for layer in range(model.n_layers)]
    _, clean_cache = model.run_with_cache(clean, names_filter=names)
    with torch.enable_grad():
        logits, corr_cache = model.run_with_cache(corrupted, names_filter=names, detach=False)
        grads = torch.autograd.grad(metric(logits), [corr_cache[n] for n in names])
    return torch.stack([((clean_cache[n] - corr_cache[n].detach()) * g).sum((0, -1))
                        for n, g in zip(names, grads, strict=True)])


# ------------------------------------------------------------------------------------------ drills


def drill_noising_vs_denoising() -> str:
    """Drill: what does a large DENOISING effect at one site tell you? Return the letter."""
    return "b"


def drill_why_normalise() -> str:
    """Drill: why normalise the patching metric? Return the letter."""
    return "c"


def drill_str_fixes() -> str:
    """Drill: what does symmetric token replacement fix over Gaussian noise? Return the letter."""
    return "a"


# ------------------------------------------------------------------------------- chapter findings

RELATION, TEMPLATE = "city", "{s} lives in"
LAST_SUBJECT, LAST = 2, -1  # token positions in "[BOS] Given Family lives in"


def _setup(device):
    from mechinterp.course.toolkit.facts import answer_ids, load_world, prompt_tokens, str_pairs
    from mechinterp.course.toolkit.model import load_model

    model = load_model("zoo/facts-lm", device)
    facts = load_world()
    pairs = str_pairs(facts, RELATION, 32, seed=0)
    clean = prompt_tokens(model.tokenizer, TEMPLATE, [a for a, _ in pairs]).to(model.device)
    corrupt = prompt_tokens(model.tokenizer, TEMPLATE, [b for _, b in pairs]).to(model.device)
    good = answer_ids(model.tokenizer, facts, RELATION, [a for a, _ in pairs]).to(model.device)
    bad = answer_ids(model.tokenizer, facts, RELATION, [b for _, b in pairs]).to(model.device)
    return model, facts, clean, corrupt, good, bad


def average_traces(model: HookedModel, facts: dict, n_facts: int = 40, n_samples: int = 10, seed: int = 0):
    """Average indirect effects [n_layers, pos] per site over n_facts facts, and clean / corrupted p(answer)."""
    from mechinterp.course.toolkit.facts import answer_ids, prompt_tokens, str_pairs

    gen = torch.Generator().manual_seed(seed)
    std = float(model.W_E.std())
    traces = {site: [] for site in ("resid", "mlp", "attn")}
    p_clean, p_corrupt = [], []
    for subject, _ in str_pairs(facts, RELATION, n_facts, seed=1):
        tokens = prompt_tokens(model.tokenizer, TEMPLATE, [subject]).to(model.device)
        answer = int(answer_ids(model.tokenizer, facts, RELATION, [subject])[0])
        noise = subject_noise((n_samples, 2, model.d_model), std, gen).to(model.device)
        for site in traces:
            traces[site].append(causal_trace(model, tokens, [1, 2], answer, noise, site))
        p_clean.append(float(model(tokens)[0, -1].softmax(-1)[answer]))
        # restoring the final residual stream at the last position restores the clean output exactly
        p_corrupt.append(p_clean[-1] - float(traces["resid"][-1][-1, -1]))
    return {site: torch.stack(t).mean(0) for site, t in traces.items()}, p_clean, p_corrupt


@torch.no_grad()
def noise_elsewhere(model: HookedModel, facts: dict, position: int = 0, n_facts: int = 40, n_samples: int = 10,
                    seed: int = 0) -> float:
    """The contrast for the subject noise: p(answer) ÷ clean with the SAME noise (one token's worth) added to the
    embedding at `position` (default the BOS token) instead of the subject's."""
    from mechinterp.course.toolkit.facts import answer_ids, prompt_tokens, str_pairs

    gen = torch.Generator().manual_seed(seed)
    std = float(model.W_E.std())
    noised, clean = 0.0, 0.0
    for subject, _ in str_pairs(facts, RELATION, n_facts, seed=1):
        tokens = prompt_tokens(model.tokenizer, TEMPLATE, [subject]).to(model.device)
        answer = int(answer_ids(model.tokenizer, facts, RELATION, [subject])[0])
        noise = subject_noise((n_samples, model.d_model), std, gen).to(model.device)
        clean += float(model(tokens)[0, -1].softmax(-1)[answer])
        def add_noise(act, hook, noise=noise):
            act = act.clone()
            act[:, position] += noise
            return act

        with model.hooks([("hook_embed", add_noise)]):
            noised += float(model(tokens.expand(n_samples, -1))[:, -1].softmax(-1)[:, answer].mean())
    return noised / clean


@torch.no_grad()
def findings(device: str | torch.device = "cpu") -> list:
    import time

    from mechinterp.course.toolkit.facts import fact_prompts, recall
    from mechinterp.course.toolkit.findings import Finding

    model, facts, clean, corrupt, good, bad = _setup(device)
    _, clean_cache = model.run_with_cache(clean)
    clean_ld = logit_diff(model(clean), good, bad).mean()
    corrupt_ld = logit_diff(model(corrupt), good, bad).mean()

    def metric(logits):
        return normalised_metric(logit_diff(logits, good[: len(logits)], bad[: len(logits)]).mean(), clean_ld,
                                 corrupt_ld)

    start = time.perf_counter()
    naive = patching_map(model, corrupt, clean_cache, "resid", metric)
    naive_s = time.perf_counter() - start
    start = time.perf_counter()
    batched = batched_patching_map(model, corrupt, clean_cache, "resid", metric)
    batched_s = time.perf_counter() - start
    denoise = {site: batched if site == "resid" else batched_patching_map(model, corrupt, clean_cache, site, metric)
               for site in SITES}
    corrupt_metric = metric(model(corrupt))
    real = {site: denoise[site] - corrupt_metric for site in SITES}
    approx = {site: attribution_patching_map(model, clean, corrupt, site, metric) for site in SITES}
    r = {site: float(torch.corrcoef(torch.stack([approx[site].flatten(), real[site].flatten()]))[0, 1])
         for site in SITES}
    start = time.perf_counter()
    aie, p_clean, p_corrupt = average_traces(model, facts)
    trace_s = time.perf_counter() - start
    total_effect = (sum(p_clean) - sum(p_corrupt)) / len(p_clean)
    fresh = randomly_initialised(model, 0)
    shuffle = torch.Generator().manual_seed(0)

    def shuffled_r(site):  # the contrast: the same correlation against a shuffled attribution map
        flat = approx[site].flatten()
        flat = flat[torch.randperm(len(flat), generator=shuffle)]
        return float(torch.corrcoef(torch.stack([flat, real[site].flatten()]))[0, 1])

    return [
        Finding("facts-lm: recall of held-out paraphrases", "high", recall(model.hf, model.tokenizer,
                fact_prompts(facts, "heldout")), lo=0.9,
                contrast=recall(fresh.hf, model.tokenizer, fact_prompts(facts, "heldout")),
                contrast_name="facts-lm re-initialised"),
        Finding("clean p(answer) (40 traced facts, mean)", "high", sum(p_clean) / len(p_clean), lo=0.8,
                contrast=sum(p_corrupt) / len(p_corrupt), contrast_name="the same facts, subject noised"),
        Finding("Gaussian-noised subject: p(answer) ÷ clean", "low (ROME: noise destroys the recall)",
                sum(p_corrupt) / sum(p_clean), hi=0.5, contrast=noise_elsewhere(model, facts),
                contrast_name="the same noise on the BOS token instead"),
        Finding("batched patching map = naive loop: max |difference|", "≤ 1e-5", float((batched - naive).abs().max()),
                hi=1e-5, kind="sanity"),
        Finding(f"batched ÷ naive patching speed ({naive_s:.2f} s vs {batched_s:.2f} s, 8 layers x 5 positions)",
                "report", naive_s / batched_s),
        Finding("STR denoising: restoring the last subject token's stream at layer 0 (the only token that differs)",
                "= 1 (sanity check)", float(naive[0, LAST_SUBJECT]), lo=0.99, hi=1.01, kind="sanity"),
        Finding("STR denoising: the last subject token's stream after block 0, max over layers 1-7",
                "ROME (GPT-2 XL): the subject's last token carries the fact into middle layers; here ≈ 0 — "
                "layer-0 attention has already copied the name to the final token",
                float(naive[1:, LAST_SUBJECT].abs().max()), hi=0.05, contrast=float(naive[0, LAST_SUBJECT]),
                contrast_name="the same restore at layer 0 (the positive control)"),
        Finding("STR denoising: MLP 0's output at the FINAL token alone (normalised logit diff)",
                "not in ROME; in this model the lookup happens at the final token, mostly in MLP 0",
                float(denoise["mlp"][0, LAST]), lo=0.9, contrast=float(denoise["mlp"][:, LAST_SUBJECT].max()),
                contrast_name="any MLP at the last subject token"),
        Finding("causal trace (Gaussian noise): MLP indirect effect at the last subject token, max over layers",
                "ROME (GPT-2 XL): the MLP map's peak, early-to-middle layers; not reproduced here",
                float(aie["mlp"][:, LAST_SUBJECT].max()), hi=0.05, contrast=float(aie["mlp"][:, LAST].max()),
                contrast_name="the same trace at the final token (the positive control)"),
        Finding("final token's stream after block 0: STR restores (normalised) minus Gaussian noise restores "
                "(AIE ÷ total effect)", "Zhang & Nanda: the corruption method changes the map",
                float(naive[1, LAST]) - float(aie["resid"][0, LAST]) / total_effect, lo=0.3,
                contrast=float(naive[1, LAST_SUBJECT]) - float(aie["resid"][0, LAST_SUBJECT]) / total_effect,
                contrast_name="the same difference at the last subject token"),
        *[Finding(f"attribution patching vs activation patching ({site}): Pearson r", "high where linear",
                  r[site], lo=0.5, contrast=shuffled_r(site), contrast_name="the attribution map shuffled")
          for site in SITES],
        Finding("causal tracing sweep: 40 facts x 3 sites x every (layer, position), seconds", "report (budget: "
                "< 60 on 2 idle cores; a timing, not a finding)", trace_s),
    ]
