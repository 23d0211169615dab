"""The second IOI model's data: repetition, not position or syntax, marks the name to avoid; what is held out
stays out of every training IOI prompt."""

from __future__ import annotations

import dataclasses
import random

from mechinterp.course.toolkit import ioi, ioi_v2
from mechinterp.course.toolkit.zoo.ioi_lm import train_ioi_lm_v2


def _names(words):
    return [w for w in words if w in ioi.NAMES]


def test_every_training_prompt_repeats_s_and_answers_the_name_said_once():
    rng = random.Random(0)
    triples = thirds = 0
    for i in range(3000):
        p = ioi_v2.sample_prompt(rng, "train", "all", 0.4, triple=i % 2 == 0)
        words = ioi_v2.render(p).split()
        counts = {n: _names(words).count(n) for n in set(_names(words))}
        assert counts[p.io] == 1 and counts[p.s] == 2, (" ".join(words), p.io)
        assert not set(counts) & set(ioi.HELDOUT_NAMES)
        repeated = [n for n, k in counts.items() if k == 2]
        triples += len(repeated) == 2
        thirds += bool(p.fill["C"])
        if p.fill["C"]:  # the third name is never in the setup: it comes after IO's only mention
            assert words.index(p.fill["C"]) > words.index(p.io)
        text = " ".join(words)
        assert " took " not in text and " thanked " not in text
        assert not any(f"after {n} sat down" in text for n in ioi.NAMES)  # the held-out mention forms
    assert triples == 1500 and thirds > 300


def test_training_rows_answer_io_and_hold_out_names_in_prompts():
    rng = random.Random(1)
    cfg = ioi_v2.IOIV2Config()
    n_ioi = 0
    for _ in range(2000):
        words, answer = ioi_v2.training_row(rng, cfg)
        if answer >= 0:
            n_ioi += 1
            assert words[answer] not in ioi.HELDOUT_NAMES and words[answer + 1] == "."
    assert 1000 < n_ioi < 1400  # p_ioi = 0.6


def test_heldout_splits_and_decoupled_prompts():
    held = ioi_v2.ioi_v2_dataset(200, seed=0, split="heldout")
    train = ioi_v2.ioi_v2_dataset(200, seed=0, split="train")
    assert set(held.io + held.s) <= set(ioi.HELDOUT_NAMES)
    assert not set(train.io + train.s) & set(ioi.HELDOUT_NAMES)
    assert all(any(w in t for w in (" took ", " thanked ", "after {S} sat down")) for t in held.templates)
    dec = ioi_v2.ioi_v2_dataset(200, seed=1, split="heldout", kind="decoupled")
    for prompt, io, s, fill in zip(dec.prompts, dec.io, dec.s, dec.fillers, strict=True):
        words = prompt.split()
        assert words.count(s) == 2 and words.count(io) == 1 and words.count(fill["C"]) == 1
        assert words.index(fill["C"]) > words.index(io)  # C is in the final clause, not the setup
    shared = ioi_v2.shared_decoupled(100)
    v1 = set(ioi.vocabulary())
    assert all(set(p.split()) <= v1 for p in shared.prompts)


def test_abc_avoids_the_third_name_and_pool_groups_are_large():
    ds = ioi_v2.ioi_v2_dataset(200, seed=2, split="train", pool=10)
    assert len(set(ds.templates)) <= 10
    abc = ds.abc(seed=3)
    for prompt, io, s, c, fill in zip(abc.prompts, abc.io, abc.s, abc.c, abc.fillers, strict=True):
        assert c not in (io, s, fill["C"]) and prompt.split().count(s) == 1


def test_recipe_smoke(tmp_path):
    cfg = dataclasses.replace(ioi_v2.IOIV2Config(), steps=3, batch_size=4)
    card = train_ioi_lm_v2(cfg, tmp_path / "ioi-lm-v2", log=lambda *_: None)
    assert set(card["metrics"]) >= {"heldout", "heldout_decoupled"}
    assert (tmp_path / "ioi-lm-v2" / "MODEL_CARD.md").exists()
