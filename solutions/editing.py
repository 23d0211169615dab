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
    rows = torch.arange(len(tokens))
    delta = torch.zeros(model.d_model, device=tokens.device, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=lr)
    with torch.no_grad():
        before = model(essence)[0, -1].log_softmax(-1)

    def add(positions):
        def hook(act, hp):
            act = act.clone()
            act[torch.arange(len(act)), positions] += delta
            return act

        return hook

    with torch.enable_grad():
        for _ in range(steps):
            with model.hooks([(name, add(subject_last))]):
                logp = model(tokens)[rows, last].log_softmax(-1)[:, target]
            with model.hooks([(name, add(torch.tensor([essence_subject_last])))]):
                after = model(essence)[0, -1].log_softmax(-1)
            kl = (before.exp() * (before - after)).sum()
            loss = -logp.mean() + kl_weight * kl
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
