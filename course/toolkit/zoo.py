"""The offline model zoo: small GPT-2-architecture models we train ourselves, shipped as safetensors.

A zoo model IS a `transformers.GPT2LMHeadModel`. Attention-only entries replace each block's MLP with
`ZeroMLP` (the block still adds `ln_2 -> mlp` to the residual stream, which is then exactly zero).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import torch
from mechinterp.course.toolkit.data import repeated_random_tokens
from safetensors.torch import load_file
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel


class ZeroMLP(nn.Module):
    """Stands in for the MLP of an attention-only block: contributes exactly nothing."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(hidden_states)


def make_attn_only(model: GPT2LMHeadModel) -> GPT2LMHeadModel:
    for block in model.transformer.h:
        block.mlp = ZeroMLP()
    return model


def zoo_dir() -> Path:
    return Path(str(resources.files("mechinterp.course.zoo")))


def zoo_names() -> list[str]:
    return sorted(p.name for p in zoo_dir().iterdir() if (p / "model.safetensors").exists())


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_card(name: str) -> dict:
    return json.loads((zoo_dir() / name / "card.json").read_text())


def load_zoo_hf(name: str) -> tuple[GPT2LMHeadModel, dict]:
    """The raw transformers model of a zoo entry, in eval mode, and its card."""
    entry = zoo_dir() / name
    if not (entry / "model.safetensors").exists():
        raise KeyError(f"no zoo model {name!r}; the zoo has: {', '.join(zoo_names()) or '(nothing yet)'}")
    if load_card(name).get("architecture") == "distilbert-classifier":
        return load_zoo_classifier(name)
    config = GPT2Config.from_json_file(entry / "config.json")
    model = GPT2LMHeadModel(config)
    if getattr(config, "attn_only", False):
        make_attn_only(model)
    state = load_file(entry / "model.safetensors")
    if config.tie_word_embeddings:
        state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state, strict=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    card = json.loads((entry / "card.json").read_text())
    return model.eval(), card


def load_zoo_classifier(name: str):
    """A zoo sequence classifier (DistilBERT architecture), in eval mode, and its card."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    entry = zoo_dir() / name
    model = DistilBertForSequenceClassification(DistilBertConfig.from_json_file(entry / "config.json"))
    model.load_state_dict(load_file(entry / "model.safetensors"), strict=True)
    model.set_attn_implementation("eager")  # attention weights can be returned (SDPA returns none)
    return model.eval(), load_card(name)


def heldout_ids(name: str) -> torch.Tensor:
    """Held-out token ids shipped with a text model (never seen in training), as int64."""
    return load_file(zoo_dir() / name / "heldout.safetensors")["ids"].long()


def sae_sample_ids(name: str = "text-lm") -> torch.Tensor:
    """[4096, 128] windows of the text model's TRAINING text (chapter 07's SAE training data), as int64."""
    return load_file(zoo_dir() / name / "sae_sample.safetensors")["ids"].long()


def load_zoo_tokenizer(name: str):
    """The entry's tokenizer (a transformers fast tokenizer), or None for models trained on token ids."""
    path = zoo_dir() / name / "tokenizer.json"
    if not path.exists():
        return None
    from transformers import PreTrainedTokenizerFast

    if load_card(name).get("architecture") == "distilbert-classifier":
        from mechinterp.course.toolkit.sentiment import wrap_tokenizer
        from tokenizers import Tokenizer

        return wrap_tokenizer(Tokenizer.from_file(str(path)))
    return PreTrainedTokenizerFast(tokenizer_file=str(path), bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")


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


# ------------------------------------------------------------------------------------ verification

INDUCTION_MIN, PREV_TOKEN_MIN, NO_INDUCTION_MAX = 0.4, 0.4, 0.2


def verify(name: str) -> list:
    """Re-measure the phenomena a zoo entry is shipped for; a list of Findings (checksum first)."""
    from mechinterp.course.toolkit.findings import Finding

    entry = zoo_dir() / name
    model, card = load_zoo_hf(name)
    found = [Finding(f"{name}: weights checksum matches the card", "sha256 in card.json",
                     float(sha256(entry / "model.safetensors") == card.get("sha256")), 1.0, 1.0)]
    if name.startswith("attn-only"):
        m = measure_induction(model)
        ratio = m["second_half_loss"] / m["first_half_loss"]
        best_induction = max(m["induction_score"][-1])
        if name == "attn-only-2l":
            found += [
                Finding(f"{name}: best layer-1 induction score", "> 0.4 (an induction head)", best_induction,
                        lo=INDUCTION_MIN),
                Finding(f"{name}: best layer-0 previous-token score", "> 0.4 (a previous-token head)",
                        max(m["prev_token_score"][0]), lo=PREV_TOKEN_MIN),
                Finding(f"{name}: repeated-half / first-half loss", "< 0.5 (in-context copying)", ratio, hi=0.5),
            ]
        else:
            found += [
                Finding(f"{name}: best induction score", "< 0.2 (one layer cannot compose)",
                        max(max(r) for r in m["induction_score"]), hi=NO_INDUCTION_MAX),
                Finding(f"{name}: repeated-half / first-half loss", "≈ 1 (no in-context copying)", ratio, lo=0.8),
            ]
    elif name == "facts-lm":
        from mechinterp.course.toolkit.facts import fact_prompts, recall

        facts = json.loads((entry / "world.json").read_text())
        tokenizer = load_zoo_tokenizer(name)
        found += [
            Finding(f"{name}: recall of every fact in the training templates", "> 0.95",
                    recall(model, tokenizer, fact_prompts(facts, "train")), lo=0.95),
            Finding(f"{name}: recall in held-out paraphrases (templates never trained)", "> 0.9",
                    recall(model, tokenizer, fact_prompts(facts, "heldout")), lo=0.9),
        ]
    elif name == "facts-lm-v2":
        from mechinterp.course.toolkit.facts import fact_prompts, recall
        from mechinterp.course.toolkit.model import HookedModel
        from mechinterp.course.toolkit.tracing import trace_facts

        facts = json.loads((entry / "world.json").read_text())
        tokenizer = load_zoo_tokenizer(name)
        v1, _ = load_zoo_hf("facts-lm")
        trace = trace_facts(HookedModel(model, tokenizer, name, {}), facts, ["city", "job"], n_subjects=8)
        contrast = trace_facts(HookedModel(v1, load_zoo_tokenizer("facts-lm"), "facts-lm", {}), facts,
                               ["city", "job"], n_subjects=8, sites=("mlp",))
        mlp, attn = trace["mlp"], trace["attn"]
        peak, half = int(mlp[:, 1].argmax()), model.config.n_layer // 2
        found += [
            Finding(f"{name}: recall in held-out paraphrases (templates never trained)", "> 0.9",
                    recall(model, tokenizer, fact_prompts(facts, "heldout")), lo=0.9),
            Finding(f"{name}: causal trace, MLP effect at the last subject token (peak layer {peak}) minus the same "
                    "MLP at the first subject token", "> 0.2 (subject enrichment)",
                    float(mlp[peak, 1] - mlp[peak, 0]), lo=0.2),
            Finding(f"{name}: that peak's layer", f"early-to-middle (< {half})", peak, hi=half - 1),
            Finding(f"{name}: attention effect at the final token, later half minus first half (max)",
                    "> 0.05 (extraction by later attention)", float(attn[half:, 2].max() - attn[:half, 2].max()),
                    lo=0.05),
            Finding("facts-lm (the contrast): MLP effect at the last subject token, max over layers",
                    "< 0.05 (no subject enrichment)", float(contrast["mlp"][:, 1].max()), hi=0.05),
        ]
    elif name == "ioi-lm":
        from mechinterp.course.toolkit.ioi import ioi_dataset, ioi_metrics

        tokenizer = load_zoo_tokenizer(name)
        held = ioi_metrics(model, tokenizer, ioi_dataset(2000, seed=7, split="heldout"))
        found += [
            Finding(f"{name}: mean logit diff IO - S, held-out names AND templates", "> 2", held["logit_diff"],
                    lo=2.0),
            Finding(f"{name}: IOI accuracy (IO above S), held-out names AND templates", "> 0.9", held["accuracy"],
                    lo=0.9),
        ]
    elif name == "ioi-lm-v2":
        from mechinterp.course.toolkit.ioi import ioi_metrics
        from mechinterp.course.toolkit.ioi_v2 import ioi_v2_dataset, shared_decoupled

        tokenizer = load_zoo_tokenizer(name)
        held = ioi_metrics(model, tokenizer, ioi_v2_dataset(2000, seed=7, split="heldout"))
        shared = shared_decoupled(1000)
        v1, _ = load_zoo_hf("ioi-lm")
        found += [
            Finding(f"{name}: mean logit diff IO - S, held-out names AND mention forms", "> 2", held["logit_diff"],
                    lo=2.0),
            Finding(f"{name}: IOI accuracy (IO above S), held-out names AND mention forms", "> 0.9",
                    held["accuracy"], lo=0.9),
            Finding(f"{name}: decoupled prompts (a third name is the final subject), IO above the REPEATED name",
                    "> 0.8", ioi_metrics(model, tokenizer, shared)["accuracy"], lo=0.8),
            Finding("ioi-lm (the contrast): the same decoupled prompts", "< 0.8 (it suppresses the final subject)",
                    ioi_metrics(v1, load_zoo_tokenizer("ioi-lm"), shared)["accuracy"], hi=0.8),
        ]
    elif name == "sentiment-clf":
        from mechinterp.course.toolkit.sentiment import accuracy

        held = json.loads((entry / "heldout.json").read_text())
        tokenizer = load_zoo_tokenizer(name)
        found += [
            Finding(f"{name}: held-out accuracy (unseen templates)", "> 0.9", accuracy(model, tokenizer, held),
                    lo=0.9),
            Finding(f"{name}: held-out accuracy on negated sentences", "> 0.9",
                    accuracy(model, tokenizer, [s for s in held if s["negated"]]), lo=0.9),
        ]
    elif name == "text-lm":
        held = heldout_ids(name)
        loss = heldout_loss(model, held, model.config.n_positions)
        metrics = card["metrics"]
        curve = logit_lens_curve(model, held, model.config.n_positions)
        found += [
            Finding(f"{name}: held-out loss (nats/token)", f"< bigram {metrics['bigram_loss']:.2f} - 0.3",
                    loss, hi=metrics["bigram_loss"] - 0.3),
            Finding(f"{name}: held-out loss below unigram", f"< unigram {metrics['unigram_loss']:.2f}", loss,
                    hi=metrics["unigram_loss"]),
            Finding(f"{name}: logit lens improves with every block", "monotone",
                    float(all(b > a for a, b in zip(curve, curve[1:], strict=False))), 1.0, 1.0),
            Finding(f"{name}: SAE training sample checksum matches the card", "sha256 in card.json",
                    float(sha256(entry / "sae_sample.safetensors") == card.get("sae_sample_sha256")), 1.0, 1.0),
        ]
    return found
