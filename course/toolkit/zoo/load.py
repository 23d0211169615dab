"""Loading zoo entries: weights, configs, cards and tokenizers from `mechinterp.course.zoo`.

A zoo language model IS a `transformers.GPT2LMHeadModel`. Attention-only entries replace each block's MLP with
`ZeroMLP` (the block still adds `ln_2 -> mlp` to the residual stream, which is then exactly zero). The
sentiment classifier is a `transformers.DistilBertForSequenceClassification`.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import nn
from transformers import (
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)


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
    if load_card(name).get("architecture") == "distilbert-classifier":
        return wrap_tokenizer(Tokenizer.from_file(str(path)))
    return PreTrainedTokenizerFast(tokenizer_file=str(path), bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """A word-level `tokenizers.Tokenizer` with BERT's special tokens as a transformers tokenizer."""
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
