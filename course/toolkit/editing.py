"""Fact editing on the zoo's facts models (chapter 08): CounterFact-style requests and prompts, key statistics,
an edited-weights context, the fine-tuning baselines and perplexity on unrelated text.

The chapter's exercises (the key, the second moment, the value, the rank-one update, the scores) are written by
the learner; what is here is the machinery around them.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from mechinterp.course.toolkit.facts import FILLERS, PREFIXES, RELATIONS, held_out, sample_row, templates
from torch import Tensor


@dataclass(frozen=True)
class EditRequest:
    """Rewrite `subject`'s `relation` from `old` to `new` (CounterFact's requested rewrite)."""

    subject: str
    relation: str
    old: str
    new: str


def edit_requests(facts: dict[str, dict[str, str]], n: int, seed: int = 0) -> list[EditRequest]:
    """n requests over distinct (subject, relation) pairs, every relation in turn, each with a new object drawn
    from the relation's other values, and chosen so that at least two other people share the old object (the
    neighbourhood prompts)."""
    rng = random.Random(seed)
    subjects = sorted(facts)
    out, seen = [], set()
    relations = list(RELATIONS)
    while len(out) < n:
        relation = relations[len(out) % len(relations)]
        s = rng.choice(subjects)
        old = facts[s][relation]
        if (s, relation) in seen or len(neighbours(facts, EditRequest(s, relation, old, old))) < 2:
            continue
        seen.add((s, relation))
        new = rng.choice([v for v in RELATIONS[relation][1] if v != old])
        out.append(EditRequest(s, relation, old, new))
    return out


def neighbours(facts: dict[str, dict[str, str]], request: EditRequest, k: int = 5) -> list[str]:
    """Up to k other people whose `relation` is the request's OLD object (CounterFact's neighbourhood: subjects
    that should keep the old object after the edit), sharing the given name first when possible."""
    same = [s for s in sorted(facts) if s != request.subject and facts[s][request.relation] == request.old]
    given = request.subject.split()[0]
    same.sort(key=lambda s: s.split()[0] != given)
    return same[:k]


def rewrite_phrase(relation: str) -> int:
    """Index of the relation phrase edits are requested with: the first whose bare form ("Given Family <phrase>",
    no prefix) is a TRAINING combination, so no held-out paraphrase is ever used to edit."""
    return next(k for k in range(len(RELATIONS[relation][0])) if (0, k) not in held_out(relation))


def rewrite_prompt(request: EditRequest) -> str:
    """The prompt the edit is requested on: the subject and the relation's rewrite phrase, no prefix."""
    return f"{request.subject} {RELATIONS[request.relation][0][rewrite_phrase(request.relation)]}"


def paraphrase_prompts(request: EditRequest) -> list[str]:
    """The relation's held-out (prefix, phrasing) combinations: never seen in training, never used to edit."""
    return [t.format(s=request.subject) for t in templates(request.relation, "heldout")]


def neighbourhood_prompts(facts: dict[str, dict[str, str]], request: EditRequest) -> list[str]:
    phrase = RELATIONS[request.relation][0][rewrite_phrase(request.relation)]
    return [f"{s} {phrase}" for s in neighbours(facts, request)]


def context_prompts(request: EditRequest) -> list[str]:
    """The rewrite prompt behind every prefix it was trained with: ROME averages the key (and optimises the value)
    over such contexts so the edit does not depend on what precedes the subject."""
    k = rewrite_phrase(request.relation)
    return [f"{p} {rewrite_prompt(request)}".strip() for i, p in enumerate(PREFIXES)
            if (i, k) not in held_out(request.relation)]


def encode(tokenizer, prompts: list[str], subject: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Right-padded [n, pos] ids (BOS first), the position of each row's last token and of the LAST token of
    `subject` in it (the first occurrence; -1 when absent or no subject given)."""
    rows = [[tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(p.split())] for p in prompts]
    width = max(map(len, rows))
    ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])
    last = torch.tensor([len(r) - 1 for r in rows])
    sub_last = torch.full((len(rows),), -1)
    if subject is not None:
        sub = tokenizer.convert_tokens_to_ids(subject.split())
        for i, r in enumerate(rows):
            for j in range(1, len(r) - len(sub) + 1):
                if r[j : j + len(sub)] == sub:
                    sub_last[i] = j + len(sub) - 1
                    break
    return ids, last, sub_last


def token_id(tokenizer, word: str) -> int:
    return int(tokenizer.convert_tokens_to_ids(word))


def mlp_out_weight(model, layer: int) -> Tensor:
    """The MLP's output matrix of `layer` as ROME edits it: [d_mlp, d_model], the MLP adds key @ W + b."""
    return model.hf.transformer.h[layer].mlp.c_proj.weight


@contextmanager
def edited(model, layer: int, W: Tensor):
    """Run the model with `layer`'s MLP output matrix replaced by W; the original is restored on exit."""
    param = mlp_out_weight(model, layer)
    original = param.detach().clone()
    with torch.no_grad():
        param.copy_(W)
    try:
        yield model
    finally:
        with torch.no_grad():
            param.copy_(original)


@torch.no_grad()
def last_logits(model, ids: Tensor, last: Tensor) -> Tensor:
    """[n, d_vocab]: each row's logits at its own last token."""
    logits = model(ids.to(model.device))
    return logits[torch.arange(len(ids)), last.to(model.device)].float().cpu()


def text_rows(facts: dict[str, dict[str, str]], n: int, seed: int = 0) -> list[str]:
    """n rows of the model's training text that state no fact (filler sentences about people): the
    "unrelated text" a fact edit must leave alone."""
    rng = random.Random(seed)
    subjects = sorted(facts)
    return [rng.choice(FILLERS).format(s=rng.choice(subjects), s2=rng.choice(subjects)) for _ in range(n)]


def fact_rows(facts: dict[str, dict[str, str]], n: int, seed: int = 0) -> list[str]:
    """n training-distribution statements "[prefix] Given Family <phrase> answer .": text to estimate the key
    statistics C = E[k kᵀ] from."""
    rng = random.Random(seed)
    return [sample_row(rng, facts, sorted(facts), p_filler=0.0) for _ in range(n)]


@torch.no_grad()
def collect_keys(model, layers: list[int], rows: list[str], batch_size: int = 512) -> dict[int, Tensor]:
    """{layer: [n_tokens, d_mlp]}: the MLP's hidden activation (mlp.hook_post, the input of its output matrix)
    of each of `layers` at every real token of `rows` (BOS and padding excluded), in one pass."""
    names = {layer: f"blocks.{layer}.mlp.hook_post" for layer in layers}
    keys = {layer: [] for layer in layers}
    for i in range(0, len(rows), batch_size):
        ids, last, _ = encode(model.tokenizer, rows[i : i + batch_size])
        _, cache = model.run_with_cache(ids.to(model.device), names_filter=list(names.values()))
        mask = (torch.arange(ids.shape[1])[None] <= last[:, None]) & (torch.arange(ids.shape[1])[None] > 0)
        for layer, name in names.items():
            keys[layer].append(cache[name].float().cpu()[mask])
    return {layer: torch.cat(k) for layer, k in keys.items()}


@torch.no_grad()
def perplexity(model, rows: list[str], batch_size: int = 256) -> float:
    """exp(mean next-token cross-entropy) over every predicted token of `rows` (the BOS is not predicted)."""
    total, count = 0.0, 0
    for i in range(0, len(rows), batch_size):
        ids, last, _ = encode(model.tokenizer, rows[i : i + batch_size])
        logits = model(ids.to(model.device)).float().cpu()
        logp = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]
        mask = torch.arange(1, ids.shape[1])[None] <= last[:, None]
        total -= float(logp[mask].sum())
        count += int(mask.sum())
    return float(torch.exp(torch.tensor(total / count)))


def fine_tune(model, layer: int, ids: Tensor, last: Tensor, target: int, steps: int = 25, lr: float = 1e-2,
              project=None) -> Tensor:
    """The baselines ROME is compared with (Meng et al. 2022, "FT" and "FT-L"): Adam steps on `layer`'s MLP
    output matrix alone, maximising log p(target) at each row's last token. With `project(W, W_original)`
    (FT-L: the chapter's `constrain_linf` with its ε), every step is followed by that projection. Returns the
    new matrix; the model is left unchanged."""
    param = mlp_out_weight(model, layer)
    original = param.detach().clone()
    trainable = [p.requires_grad for p in model.hf.parameters()]
    model.hf.requires_grad_(False)
    param.requires_grad_(True)
    opt = torch.optim.Adam([param], lr=lr)
    ids, last = ids.to(model.device), last.to(model.device)
    rows = torch.arange(len(ids), device=model.device)
    try:
        with torch.enable_grad():
            for _ in range(steps):
                loss = -model(ids)[rows, last].float().log_softmax(-1)[:, target].mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if project is not None:
                    with torch.no_grad():
                        param.copy_(project(param.detach(), original))
        return param.detach().clone()
    finally:
        with torch.no_grad():
            param.copy_(original)
        param.grad = None
        for p, flag in zip(model.hf.parameters(), trainable, strict=True):
            p.requires_grad_(flag)


# ------------------------------------------------------------------------------------ pipelines
# ROME and the evaluation written once, with the chapter's pieces passed in: the notebook passes the learner's
# functions, the findings pass the reference's.


def rome_edit(model, layer: int, request: EditRequest, C: Tensor, *, compute_key, optimise_delta, rank_one_update,
              steps: int = 30, lr: float = 0.1, kl_weight: float = 1.0) -> Tensor:
    """The new MLP output matrix of `layer` for one request: k* over the context prompts, δ by optimisation on
    them with the bare subject as the essence prompt, v* = k*·W + δ, then the rank-one update with C."""
    tok = model.tokenizer
    ids, last, sub_last = encode(tok, context_prompts(request), request.subject)
    essence, _, essence_sub = encode(tok, [request.subject], request.subject)
    ids, last, sub_last, essence = ids.to(model.device), last.to(model.device), sub_last.to(model.device), \
        essence.to(model.device)
    W = mlp_out_weight(model, layer).detach()
    with torch.no_grad():
        key = compute_key(model, ids, sub_last, layer)
    delta = optimise_delta(model, layer, ids, sub_last, last, token_id(tok, request.new), essence,
                           int(essence_sub[0]), steps=steps, lr=lr, kl_weight=kl_weight)
    return rank_one_update(W, key, key @ W + delta, C)


def evaluate_edit(model, layer: int, W: Tensor, request: EditRequest, facts: dict, score) -> dict[str, float]:
    """CounterFact's three scores for one edit (`score(logits, want, against)` is the pairwise score):
    efficacy on the rewrite prompt and paraphrase on held-out phrasings (new beats old), specificity on
    neighbouring subjects with the same old object (old still beats new)."""
    tok = model.tokenizer
    new, old = token_id(tok, request.new), token_id(tok, request.old)
    sets = {"efficacy": ([rewrite_prompt(request)], new, old),
            "paraphrase": (paraphrase_prompts(request), new, old),
            "specificity": (neighbourhood_prompts(facts, request), old, new)}
    out = {}
    with edited(model, layer, W):
        for metric, (prompts, want, against) in sets.items():
            ids, last, _ = encode(tok, prompts)
            logits = last_logits(model, ids, last)
            out[metric] = float(score(logits, torch.full((len(prompts),), want), torch.full((len(prompts),),
                                                                                           against)))
    return out


def key_statistics(model, layers: list[int], facts: dict, n_rows: int = 2000, seed: int = 2, second_moment=None,
                   ridge: float = 1e-3) -> dict[int, Tensor]:
    """{layer: C} from the keys at every token of n_rows training-distribution statements (`second_moment`
    computes E[k kᵀ] from keys), plus `ridge` x its mean diagonal on the diagonal so that solving with it is well
    conditioned."""
    out = {}
    for layer, keys in collect_keys(model, layers, fact_rows(facts, n_rows, seed)).items():
        C = second_moment(keys.to(model.device))
        out[layer] = C + ridge * C.diagonal().mean() * torch.eye(len(C), device=C.device)
    return out
