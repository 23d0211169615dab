"""The zoo's `sentiment-clf`: a small DistilBERT-architecture sentiment classifier trained on generated sentences.

Data: sentences built from templates around ONE sentiment adjective from VADER's lexicon (Hutto & Gilbert
2014; PyPI `vadersentiment`, MIT license), restricted to adjectives WordNet 3.0 attests (SemCor-tagged) with
|valence| >= 1.5 and rater std <= 1.0, optionally intensified ("very", "truly", ...) and negated ("not",
"never"), which flips the label. Templates are split: the last ones never appear in training, so held-out
sentences test generalisation to new sentence frames. Every sentence records its planted sentiment word, which
chapter 06 uses to test whether attributions find it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from mechinterp.course.toolkit.labels import read_wordnet
from mechinterp.course.toolkit.zoo.load import wrap_tokenizer
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from torch import Tensor
from transformers import DistilBertConfig

NOUNS = ("movie", "film", "book", "meal", "food", "hotel", "service", "song", "album", "game", "show", "room", "trip",
         "car", "phone", "story", "teacher", "team", "weather", "concert", "party", "class", "coffee", "staff", "view",
         "garden", "city", "plan", "idea", "speech")
INTENSIFIERS = ("very", "really", "extremely", "quite", "so", "truly", "incredibly")
NEGATORS = ("not", "never")
# (template, negatable): {x} = [negator] [intensifier] adjective, {noun} a neutral noun
TEMPLATES = (
    ("the {noun} was {x}", True), ("this {noun} is {x}", True), ("that {noun} seemed {x}", True),
    ("i found the {noun} {x}", True), ("my {noun} was {x} today", True), ("honestly , the {noun} is {x}", True),
    ("the {noun} looks {x} to me", True), ("everyone said the {noun} was {x}", True), ("what a {x} {noun}", False),
    ("it was a {x} {noun}", False), ("we had a {x} {noun} yesterday", False), ("they made a {x} {noun}", False),
    ("overall , my {noun} was {x}", True), ("the {noun} felt {x} , as always", True),
    ("our {noun} and {noun2} were {x}", True), ("the {noun} turned out {x}", True), ("such a {x} {noun}", False),
    # held out: new sentence frames made of words the training frames use
    ("overall the {noun} felt {x}", True), ("our {noun} turned out {x}", True),
    ("such a {x} {noun} , as always", False), ("the {noun} and the {noun2} were {x}", True),
)
N_HELDOUT_TEMPLATES = 4
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
LABELS = ("NEGATIVE", "POSITIVE")


def sentiment_adjectives(wordnet_dir: Path) -> dict[str, float]:
    """{adjective: VADER valence} for clear-cut, WordNet-attested adjectives."""
    counts, _ = read_wordnet(wordnet_dir)
    words = {}
    for line in (resources.files("vaderSentiment") / "vader_lexicon.txt").read_text().splitlines():
        word, mean, std, *_ = line.split("\t")
        if (word.isalpha() and word.islower() and len(word) >= 3 and float(std) <= 1.0 and abs(float(mean)) >= 1.5
                and counts.get(word, {}).get("adjective", 0) > 0):
            words[word] = float(mean)
    return dict(sorted(words.items()))


def make_sentence(rng: random.Random, adjectives: dict[str, float], templates) -> dict:
    template, negatable = rng.choice(templates)
    word = rng.choice(sorted(adjectives))
    parts = []
    negated = negatable and rng.random() < 0.35
    if negated:
        parts.append(rng.choice(NEGATORS))
    if rng.random() < 0.3:
        parts.append(rng.choice(INTENSIFIERS))
    parts.append(word)
    nouns = rng.sample(NOUNS, 2)
    text = template.format(noun=nouns[0], noun2=nouns[1], x=" ".join(parts))
    positive = (adjectives[word] > 0) != negated
    return {"text": text, "label": int(positive), "word": word, "negated": negated, "template": template}


def vocabulary(adjectives: dict[str, float]) -> list[str]:
    words = set(adjectives) | set(NOUNS) | set(INTENSIFIERS) | set(NEGATORS)
    for template, _ in TEMPLATES:
        words |= {w for w in template.split() if not w.startswith("{")}
    return [*SPECIAL, *sorted(words)]


def build_tokenizer(vocab: list[str]):
    """A word-level tokenizer with BERT's conventions: [CLS] sentence [SEP], [PAD] = 0, lower-cased."""
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[
        ("[CLS]", vocab.index("[CLS]")), ("[SEP]", vocab.index("[SEP]"))])
    return wrap_tokenizer(tok)


@dataclass
class SentimentConfig:
    name: str = "sentiment-clf"
    n_layers: int = 2
    dim: int = 64
    n_heads: int = 4
    hidden_dim: int = 256
    max_len: int = 24
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3  # 2e-3 was unstable (training loss stuck near 0.12-0.18, held-out accuracy 0.71)
    weight_decay: float = 0.01
    label_smoothing: float = 0.1  # bounded logits: a smoother function along IG's path
    p_word: float = 0.15  # share of sentences whose sentiment word becomes [PAD]/[MASK] (target 50/50)
    p_all: float = 0.05  # share whose every content token does (IG's baseline itself, target 50/50)
    n_heldout: int = 600
    seed: int = 0
    threads: int = 2


def neutralise(input_ids: Tensor, batch: list[dict], tokenizer, rng: random.Random, cfg: SentimentConfig) -> Tensor:
    """Soft targets [batch, 2] (label smoothing), after making some sentences evidence-free IN PLACE: with
    probability cfg.p_word the sentiment word, with cfg.p_all every content token, becomes [PAD] or [MASK],
    and the target becomes 50/50 — so "no word here" is neutral to the model, and IG's [PAD]/[MASK] baselines
    are inputs the model has seen and scores near 0.5."""
    eps = cfg.label_smoothing
    targets = torch.zeros(len(batch), 2)
    special = torch.tensor(tokenizer.all_special_ids)
    pad, mask = tokenizer.pad_token_id, tokenizer.mask_token_id
    word_ids = tokenizer.convert_tokens_to_ids([s["word"] for s in batch])
    for i, s in enumerate(batch):
        u = rng.random()
        if u < cfg.p_word + cfg.p_all:
            replace = (input_ids[i] == word_ids[i]) if u < cfg.p_word else ~torch.isin(input_ids[i], special)
            input_ids[i, replace] = rng.choice((pad, mask))
            targets[i] = 0.5
        else:
            targets[i, s["label"]] = 1 - eps / 2
            targets[i, 1 - s["label"]] = eps / 2
    return targets


def distilbert_config(cfg: SentimentConfig, vocab_size: int) -> DistilBertConfig:
    return DistilBertConfig(vocab_size=vocab_size, max_position_embeddings=cfg.max_len, n_layers=cfg.n_layers,
                            dim=cfg.dim, n_heads=cfg.n_heads, hidden_dim=cfg.hidden_dim, dropout=0.0,
                            attention_dropout=0.0, seq_classif_dropout=0.0, pad_token_id=0, num_labels=2,
                            id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)})


@torch.no_grad()
def accuracy(model, tokenizer, sentences: list[dict]) -> float:
    batch = tokenizer([s["text"] for s in sentences], return_tensors="pt", padding=True)
    pred = model(**batch).logits.argmax(-1)
    return float((pred == torch.tensor([s["label"] for s in sentences])).float().mean())


def planted_positions(input_ids: Tensor, tokenizer, words: list[str]) -> Tensor:
    """[batch] position of each sentence's planted sentiment word in its token ids."""
    ids = torch.tensor(tokenizer.convert_tokens_to_ids(words))
    return (input_ids == ids[:, None]).float().argmax(-1)
