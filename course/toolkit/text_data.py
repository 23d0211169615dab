"""Tokenizer training, encoding, batching and n-gram baselines for the zoo's text LM."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers


def train_tokenizer(docs: list[str], vocab_size: int, separator: str) -> Tokenizer:
    """Byte-level BPE (GPT-2 style) trained on `docs`; the document separator is token 0."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[separator],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(docs, trainer)
    return tok


def encode_documents(tok: Tokenizer, docs: list[str], separator: str) -> torch.Tensor:
    """One long stream of token ids: separator, doc, separator, doc, ..."""
    sep = tok.token_to_id(separator)
    ids: list[int] = []
    for enc in tok.encode_batch(docs):
        ids.append(sep)
        ids.extend(enc.ids)
    return torch.tensor(ids, dtype=torch.int32)


def window_batches(ids: torch.Tensor, batch_size: int, n_ctx: int, generator: torch.Generator
                   ) -> Iterator[torch.Tensor]:
    """Random windows of n_ctx tokens from the stream, forever."""
    while True:
        starts = torch.randint(0, len(ids) - n_ctx, (batch_size,), generator=generator)
        yield torch.stack([ids[s : s + n_ctx] for s in starts.tolist()]).long()


def ngram_baselines(train: torch.Tensor, val: torch.Tensor, vocab_size: int) -> dict:
    """Held-out cross-entropy (nats/token) of add-one unigram and interpolated bigram models."""
    train, val = train.long(), val.long()
    uni = torch.bincount(train, minlength=vocab_size).double() + 1
    uni_p = uni / uni.sum()
    big = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
    big.index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1, dtype=torch.float64), accumulate=True)
    prev, nxt = val[:-1], val[1:]
    best = math.inf
    for lam in (0.5, 0.7, 0.8, 0.9, 0.95):  # the interpolation weight is tuned on held-out data (favours it)
        row = big[prev]
        p = lam * row.gather(1, nxt[:, None])[:, 0] / row.sum(1).clamp_min(1) + (1 - lam) * uni_p[nxt]
        best = min(best, float(-(p.log()).mean()))
    return {"unigram_loss": float(-(uni_p[val].log()).mean()), "bigram_loss": best}
