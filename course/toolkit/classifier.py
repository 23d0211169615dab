"""Sequence classifiers for attribution (chapter 06): the zoo's `sentiment-clf` offline, DistilBERT SST-2 online.

    clf = load_classifier("zoo/sentiment-clf")   # or "distilbert-base-uncased-finetuned-sst-2-english"
    batch = clf.encode(["the movie was not good"])          # input_ids, attention_mask
    embeds = clf.embed(batch["input_ids"])                  # word embeddings: what attribution interpolates
    probs = clf.probs_from_embeds(embeds, batch["attention_mask"])   # [batch, n_labels]

Both are DistilBERT-architecture `transformers` models: position embeddings and LayerNorm are applied inside
the model after the word embeddings, so interpolating the word embeddings leaves positions untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from mechinterp.course.toolkit.device import get_device
from mechinterp.course.toolkit.hub import load_hub_classifier
from mechinterp.course.toolkit.model import reinitialised_copy
from mechinterp.course.toolkit.zoo.load import load_zoo_classifier, load_zoo_tokenizer
from torch import Tensor, nn

SST2 = "distilbert-base-uncased-finetuned-sst-2-english"


@dataclass
class Classifier:
    model: nn.Module  # a transformers *ForSequenceClassification model, eval mode
    tokenizer: object
    name: str
    card: dict

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def labels(self) -> list[str]:
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def mask_id(self) -> int:
        return self.tokenizer.mask_token_id

    def encode(self, texts: list[str] | str) -> dict[str, Tensor]:
        texts = [texts] if isinstance(texts, str) else texts
        enc = self.tokenizer(texts, return_tensors="pt", padding=True)
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}

    def embed(self, input_ids: Tensor) -> Tensor:
        """[batch, pos, dim] word embeddings (no positions, no LayerNorm: the model adds those)."""
        return self.word_embeddings(input_ids)

    def logits_from_embeds(self, embeds: Tensor, attention_mask: Tensor) -> Tensor:
        return self.model(inputs_embeds=embeds, attention_mask=attention_mask).logits

    def probs_from_embeds(self, embeds: Tensor, attention_mask: Tensor) -> Tensor:
        return self.logits_from_embeds(embeds, attention_mask).softmax(-1)

    def probs(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits.softmax(-1)

    def str_tokens(self, input_ids: Tensor) -> list[str]:
        return self.tokenizer.convert_ids_to_tokens(input_ids.tolist())


def load_classifier(name: str, device: str | torch.device = "auto") -> Classifier:
    """"zoo/<name>" loads a shipped classifier (no network); a hub name (e.g. SST2) loads through transformers
    when the hub is reachable and fails fast, naming the zoo model to use, when it is not."""
    if name.startswith("zoo/"):
        model, card = load_zoo_classifier(name.removeprefix("zoo/"))
        clf = Classifier(model, load_zoo_tokenizer(name.removeprefix("zoo/")), name, card)
    else:
        model, tokenizer = load_hub_classifier(name)
        clf = Classifier(model.eval(), tokenizer, name, {})
    clf.model.to(get_device(device))
    return clf


def reinitialised(clf: Classifier, seed: int = 0) -> Classifier:
    """The same architecture with every weight re-drawn by transformers' initialisation (Adebayo et al.'s
    full model-parameter randomisation test)."""
    model = reinitialised_copy(clf.model, seed)
    return Classifier(model.eval(), clf.tokenizer, f"{clf.name} (randomised, seed {seed})", {})
