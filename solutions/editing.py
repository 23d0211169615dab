"""Reference solutions for chapter 08: locating and editing facts (ROME, Meng et al. 2022)."""

from __future__ import annotations

import torch
from mechinterp.course.toolkit.model import HookedModel
from torch import Tensor

# ------------------------------------------------------------------------------------------ the key


def compute_key(model: HookedModel, tokens: Tensor, subject_last: Tensor, layer: int) -> Tensor:
    """ROME's key k*: the input of `layer`'s MLP output matrix (`blocks.{layer}.mlp.hook_post`, AFTER the
    nonlinearity) at each row's LAST SUBJECT TOKEN, averaged over the rows (the same subject behind different
    prefixes).

    tokens: [n, pos]; subject_last: [n] positions. Returns [d_mlp].
    """
    name = f"blocks.{layer}.mlp.hook_post"
    _, cache = model.run_with_cache(tokens, names_filter=[name])
    return cache[name][torch.arange(len(tokens)), subject_last].mean(0)


def second_moment(keys: Tensor) -> Tensor:
    """C = E[k kᵀ], the UNCENTRED second moment of the keys (ROME's key statistics), over the rows of
    keys [n, d_mlp]. Returns [d_mlp, d_mlp]."""
    return keys.T @ keys / len(keys)


# ------------------------------------------------------------------------------------------ the value


def optimise_delta(model: HookedModel, layer: int, tokens: Tensor, subject_last: Tensor, last: Tensor,
                   target: int, essence: Tensor, essence_subject_last: int, steps: int = 30, lr: float = 0.1,
                   kl_weight: float = 1.0) -> Tensor:
    """ROME's value optimisation, written as the change δ of the MLP output. δ [d_model] starts at zero and is
    ADDED to `blocks.{layer}.hook_mlp_out` at the last subject token of every row of `tokens` and of the
    `essence` prompt. `steps` Adam steps (learning rate `lr`) minimise

        mean over rows of −log p(target | row, at the row's `last` position)
        + kl_weight · KL( p_before ‖ p_with_δ )   at the essence prompt's final position,

    where p_before is the unedited model's next-token distribution there (ROME's "essence drift" term, which
    keeps what else the model says about the subject). tokens: [n, pos] (right-padded); subject_last, last: [n];
    essence: [1, pos_e]. Returns δ (detached); the model is unchanged.
    """
    name = f"blocks.{layer}.hook_mlp_out"
    n, width = len(tokens), max(tokens.shape[1], essence.shape[1])
    # one batch: the prompts, then the essence prompt (right-padded; padding never reaches earlier positions)
    batch = torch.zeros(n + 1, width, dtype=tokens.dtype, device=tokens.device)
    batch[:n, : tokens.shape[1]], batch[n, : essence.shape[1]] = tokens, essence[0]
    rows = torch.arange(n + 1, device=tokens.device)
    at = torch.cat([subject_last, torch.tensor([essence_subject_last], device=tokens.device)])
    read = torch.cat([last, torch.tensor([essence.shape[1] - 1], device=tokens.device)])
    delta = torch.zeros(model.d_model, device=tokens.device, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=lr)

    def add_delta(act, hp):
        act = act.clone()
        act[rows, at] += delta
        return act

    with torch.no_grad():
        before = model(essence)[0, -1].log_softmax(-1)
    with torch.enable_grad():
        for _ in range(steps):
            with model.hooks([(name, add_delta)]):
                logp = model(batch)[rows, read].log_softmax(-1)
            kl = (before.exp() * (before - logp[n])).sum()
            loss = -logp[:n, target].mean() + kl_weight * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
    return delta.detach()


# ------------------------------------------------------------------------------------------ the update


def rank_one_update(W: Tensor, key: Tensor, value: Tensor, C: Tensor) -> Tensor:
    """ROME's closed-form edit of an MLP output matrix W [d_mlp, d_model] (the MLP adds key @ W + b): the new
    matrix W' = W + (C⁻¹k) Λᵀ with Λ = (v − kᵀW) / (kᵀ C⁻¹ k), so that key @ W' == value exactly while keys
    that C says are typical change as little as possible. key: [d_mlp]; value: [d_model]; C: [d_mlp, d_mlp].
    Solve with C rather than inverting it. Returns W' (W itself is not modified)."""
    c_inv_k = torch.linalg.solve(C, key)
    lam = (value - key @ W) / (key @ c_inv_k)
    return W + torch.outer(c_inv_k, lam)


def constrain_linf(W: Tensor, W_original: Tensor, eps: float) -> Tensor:
    """FT-L's projection: the matrix nearest W whose every entry is within eps of W_original (elementwise
    clamp of the CHANGE). Returns a new tensor."""
    return W_original + (W - W_original).clamp(-eps, eps)


# ------------------------------------------------------------------------------------------ evaluation


def counterfact_score(logits: Tensor, want: Tensor, against: Tensor) -> float:
    """CounterFact's pairwise score: the fraction of prompts whose `want` token gets a HIGHER probability than
    its `against` token (ties do not count). logits: [n, d_vocab] at each prompt's last token; want, against:
    [n] token ids. Efficacy and paraphrase use (want=new, against=old); specificity uses (want=old, against=new)
    on neighbouring subjects. Returns a float."""
    rows = torch.arange(len(logits))
    return float((logits[rows, want] > logits[rows, against]).float().mean())


# ------------------------------------------------------------------------------------------ drills


def drill_why_c_inverse() -> str:
    """Drill: why does ROME's update use C⁻¹k* rather than k* as the direction in key space? Return the letter."""
    return "c"


def drill_rank_one_preserves() -> str:
    """Drill: which keys does a rank-one update W' = W + u Λᵀ leave exactly unchanged? Return the letter."""
    return "b"


def drill_specificity() -> str:
    """Drill: a method scores efficacy 1.0 and specificity 0.2. What happened? Return the letter."""
    return "d"


# ------------------------------------------------------------------------------- chapter findings

N_EDITS, N_LAYER_EDITS = 50, 10
FT_STEPS, FT_LR, FT_EPS = 25, 1e-2, 5e-3


def _edit_scores(model, layer: int, requests, C, facts, methods=("ROME", "FT", "FT-L"), n_ppl: int = 10):
    """Mean CounterFact scores per method over `requests` at `layer`, and the perplexity ratio on unrelated text
    over the first n_ppl edits (each method's max and mean)."""
    from mechinterp.course.toolkit import editing as ed

    text = ed.text_rows(facts, 400, seed=1)
    ppl0 = ed.perplexity(model, text)
    out = {}
    for method in methods:
        sums, ratios = {"efficacy": 0.0, "paraphrase": 0.0, "specificity": 0.0}, []
        for i, req in enumerate(requests):
            if method == "none":  # the contrast: the unedited model, scored the same way
                W = ed.mlp_out_weight(model, layer).detach().clone()
            elif method == "ROME":
                W = ed.rome_edit(model, layer, req, C, compute_key=compute_key, optimise_delta=optimise_delta,
                                 rank_one_update=rank_one_update)
            else:
                ids, last, _ = ed.encode(model.tokenizer, [ed.rewrite_prompt(req)])
                project = None if method == "FT" else (lambda W_, W0: constrain_linf(W_, W0, FT_EPS))
                W = ed.fine_tune(model, layer, ids, last, ed.token_id(model.tokenizer, req.new), steps=FT_STEPS,
                                 lr=FT_LR, project=project)
            for metric, v in ed.evaluate_edit(model, layer, W, req, facts, counterfact_score).items():
                sums[metric] += v / len(requests)
            if i < n_ppl:
                with ed.edited(model, layer, W):
                    ratios.append(ed.perplexity(model, text) / ppl0)
        out[method] = {**sums, "ppl_max": max(ratios) if ratios else float("nan"),
                       "ppl_mean": sum(ratios) / len(ratios) if ratios else float("nan")}
    return out


@torch.no_grad()
def findings(device: str | torch.device = "cpu") -> list:
    import time

    from mechinterp.course.toolkit import editing as ed
    from mechinterp.course.toolkit.facts import fact_prompts, load_world, recall
    from mechinterp.course.toolkit.findings import Finding
    from mechinterp.course.toolkit.model import load_model, randomly_initialised
    from mechinterp.course.toolkit.tracing import trace_facts

    model, contrast = load_model("zoo/facts-lm-v2", device), load_model("zoo/facts-lm", device)
    facts = load_world("facts-lm-v2")
    start = time.perf_counter()
    traces = {name: trace_facts(m, facts, ["city", "job"], n_subjects=8)
              for name, m in (("v2", model), ("v1", contrast))}
    trace_s = time.perf_counter() - start
    mlp_last, mlp_first = traces["v2"]["mlp"][:, 1], traces["v2"]["mlp"][:, 0]
    peak = int(mlp_last.argmax())
    attn_final = traces["v2"]["attn"][:, 2]
    half = model.n_layers // 2
    requests = ed.edit_requests(facts, N_EDITS, seed=0)
    start = time.perf_counter()
    C = ed.key_statistics(model, list(range(model.n_layers)), facts, second_moment=second_moment)
    scores = _edit_scores(model, peak, requests, C[peak], facts, ("ROME", "FT", "FT-L", "none"))
    edit_s = time.perf_counter() - start
    start = time.perf_counter()
    para_by_layer = []
    for layer in range(model.n_layers):
        para_by_layer.append(_edit_scores(model, layer, requests[:N_LAYER_EDITS], C[layer], facts, ("ROME",),
                                          n_ppl=0)["ROME"]["paraphrase"])
    layers_s = time.perf_counter() - start
    rome, ft, ftl, unedited = scores["ROME"], scores["FT"], scores["FT-L"], scores["none"]
    fresh = randomly_initialised(model, 0)
    v1_last, v1_first = traces["v1"]["mlp"][:, 1], traces["v1"]["mlp"][:, 0]
    v1_attn = traces["v1"]["attn"][:, 2]
    weak = [layer for layer in range(half) if mlp_last[layer] < 0.2 * mlp_last.max()]
    return [
        Finding("facts-lm-v2: recall of held-out paraphrases", "high (model card bar ≥ 0.9)",
                recall(model.hf, model.tokenizer, fact_prompts(facts, "heldout")), lo=0.9,
                contrast=recall(fresh.hf, model.tokenizer, fact_prompts(facts, "heldout")),
                contrast_name="facts-lm-v2 re-initialised"),
        Finding("causal trace, facts-lm-v2: MLP effect at the LAST subject token, peak over layers",
                "ROME (GPT-2 XL): a strong early-to-middle-layer peak", float(mlp_last.max()), lo=0.2,
                contrast=float(v1_last.max()), contrast_name="facts-lm (statements only), same code and noise"),
        Finding("… minus the same layer's MLP effect at the FIRST subject token",
                "ROME: the effect is at the last subject token", float(mlp_last[peak] - mlp_first[peak]), lo=0.1,
                contrast=float((v1_last - v1_first).max()), contrast_name="facts-lm, best layer"),
        Finding("… its layer (of 8)", "ROME: early-to-middle layers (report)", peak),
        Finding("facts-lm (statements only): MLP effect at the last subject token, peak over layers",
                "≈ 0: no subject enrichment (same code and noise as the line above)",
                float(v1_last.max()), hi=0.05, contrast=float(mlp_last.max()),
                contrast_name="facts-lm-v2, same code and noise (the positive control)"),
        Finding("causal trace, facts-lm-v2: attention effect at the FINAL token, later half minus first half "
                "(max over layers)", "ROME / Geva et al.: attribute extraction by later attention",
                float(attn_final[half:].max() - attn_final[:half].max()), lo=0.05,
                contrast=float(v1_attn[half:].max() - v1_attn[:half].max()), contrast_name="facts-lm"),
        Finding(f"ROME at layer {peak}, {N_EDITS} edits: efficacy", "GPT-2 XL on CounterFact: 100%",
                rome["efficacy"], lo=0.9, contrast=unedited["efficacy"], contrast_name="the unedited model"),
        Finding("ROME: paraphrase (held-out phrasings)", "GPT-2 XL: 96.4% (paraphrase score)", rome["paraphrase"],
                lo=0.7, contrast=unedited["paraphrase"], contrast_name="the unedited model"),
        Finding("ROME: specificity (neighbours keep the old object)", "GPT-2 XL: 75.4% (neighbourhood score)",
                rome["specificity"], lo=0.8, contrast=ft["specificity"], contrast_name="FT, same layer and requests"),
        Finding("ROME: perplexity on unrelated text ÷ unedited, worst of 10 edits", "within 5%",
                rome["ppl_max"], lo=0.95, hi=1.05, contrast=ft["ppl_max"],
                contrast_name="FT, same edits (the positive control: the measure detects damage)"),
        Finding("FT (same MLP, same layer): efficacy", "GPT-2 XL FT: 100%", ft["efficacy"], lo=0.9,
                contrast=unedited["efficacy"], contrast_name="the unedited model"),
        Finding("ROME specificity minus FT specificity", "GPT-2 XL: 75.4% vs FT's 52.9% (report)",
                rome["specificity"] - ft["specificity"]),
        Finding("FT-L (L∞ ≤ 5e-3): efficacy", "GPT-2 XL FT-L: lower efficacy, higher specificity than FT",
                ftl["efficacy"]),
        Finding("FT-L: specificity", "(reported)", ftl["specificity"]),
        Finding(f"location: ROME paraphrase at the traced layer ({peak}) minus at the last layer",
                "editing after the attribute has been read fails", para_by_layer[peak] - para_by_layer[-1], lo=0.3,
                contrast=para_by_layer[-2] - para_by_layer[-1], contrast_name="the same between the last two layers"),
        Finding(f"location: ROME paraphrase, worst of the early layers where the MLP trace is < 20% of its peak "
                f"(layers {weak})", "Hase et al. 2023: edits succeed where tracing finds little",
                min((para_by_layer[layer] for layer in weak), default=float("nan")), lo=0.7,
                contrast=para_by_layer[-1], contrast_name="the last layer"),
        Finding("location: layers where ROME's paraphrase ≥ 0.7 (of 8)",
                "Hase et al. 2023: many layers work, not only the traced one",
                sum(p >= 0.7 for p in para_by_layer)),
        Finding("timing: traces of both models, seconds", "(reported)", trace_s),
        Finding(f"timing: {N_EDITS} edits x 3 methods (and the unedited scores), seconds", "(reported)", edit_s),
        Finding(f"timing: ROME at every layer ({N_LAYER_EDITS} edits each), seconds", "(reported)", layers_s),
    ]
