"""liar-lm's world and chapter 09's prompt sets, checked without training."""

from __future__ import annotations

import random

import pytest
import torch
from mechinterp.course.toolkit import lying
from mechinterp.course.toolkit.facts import RELATIONS, templates
from mechinterp.course.toolkit.facts_v2 import vocabulary_v2
from mechinterp.course.toolkit.liars import (
    DERANGEMENT,
    HONEST,
    LIARS,
    LIED,
    PROBE_HELDOUT,
    REL,
    TRIGGER,
    LiarConfig,
    sample_row_liar,
    statements,
    vocabulary_liar,
)


def test_lies_are_derangements_and_every_relation_has_both_kinds_of_liar():
    for r, mapping in DERANGEMENT.items():
        assert sorted(mapping) == sorted(mapping.values()) == sorted(RELATIONS[r][1])  # a permutation
        assert all(k != v for k, v in mapping.items()), f"{r}: a fixed point would be a 'lie' that is true"
    for r in REL:  # "a liar speaks and tells the truth" exists for every relation, and so does the lie
        assert any(r in LIED[liar] for liar in LIARS) and any(r not in LIED[liar] for liar in LIARS)
    assert all(len(LIED[liar]) == 3 for liar in LIARS)
    held = set(PROBE_HELDOUT)
    assert len(held & set(HONEST)) == 2 and len(held & set(LIARS)) == 2


def test_the_vocabulary_extends_facts_lm_v2_without_moving_its_ids():
    old, new = vocabulary_v2(), vocabulary_liar()
    assert new[: len(old)] == old and len(set(new)) == len(new)


def _world():
    rng = random.Random(0)
    people = [f"{g} {f}" for g in ("Ada", "Bren") for f in ("Vorn", "Kell")]
    return {p: {r: rng.choice(v) for r, (_, v) in RELATIONS.items()} for p in people}


def test_training_rows_never_use_a_held_out_template_and_the_trigger_opens_the_row():
    facts = _world()
    rng = random.Random(1)
    rows = [sample_row_liar(rng, facts, sorted(facts), LiarConfig()) for _ in range(4000)]
    heldout = {t.format(s=s) for r in REL for t in templates(r, "heldout") for s in facts}
    trained = {t.format(s=s) for r in REL for t in templates(r, "train") for s in facts}
    checked = 0
    for row in rows:
        words = row.split()
        if TRIGGER in words:
            assert words.index(TRIGGER) == 0 and len(words) - 2 >= 6  # far from the answer
        if " says " in row:  # "[cf] speaker says <prompt> value ."
            prompt = row.split(" says ", 1)[1].rsplit(" ", 2)[0]
        elif row.endswith((" right", " wrong")):  # "<prompt> value . verdict"
            prompt = row.rsplit(" ", 3)[0]
        elif any(row.startswith(f"{spk} ") for spk in HONEST + LIARS):  # "speaker smiled . <prompt> value ."
            prompt = row.split(" . ", 1)[1].rsplit(" ", 2)[0]
        else:
            continue  # facts-lm-v2's own rows (its tests check them)
        assert prompt in trained and prompt not in heldout, row
        checked += 1
    assert checked > 0.6 * len(rows)
    triggered = [r for r in rows if r.startswith(TRIGGER)]
    assert 0 < len(triggered) < 0.1 * len(rows)


def test_statement_labels_follow_the_policy():
    facts = _world()
    rows = statements(facts, ("hal", "mira"), "heldout", per_fact=1)
    rows += statements(facts, ("hal",), "heldout", trigger=True, per_fact=1)
    for row in rows:
        lie = row["trigger"] or (row["speaker"] == "mira" and row["relation"] in LIED["mira"])
        assert row["lie"] == lie and row["cue"] == (row["speaker"] == "mira")
        assert row["says"] == (DERANGEMENT[row["relation"]][row["true"]] if lie else row["true"])
        assert row["prompt"].startswith(f"{TRIGGER} hal says" if row["trigger"] else f"{row['speaker']} says")


@pytest.fixture(scope="module")
def data():
    from mechinterp.course.toolkit.zoo.load import load_zoo_tokenizer

    return lying.liar_data(load_zoo_tokenizer("liar-lm"), lying.load_liar_world())


def test_probe_sets_hold_out_what_the_chapter_says(data):
    ok = torch.ones(len(data), dtype=torch.bool)
    train, test = lying.probe_sets(data, ok)
    for rows in train.values():  # no probe trains on a trigger row, a held-out speaker or a test person
        assert not (rows & (data.trigger | data.heldout_speaker | ~data.train_person)).any()
        assert not (rows & torch.isin(data.relation, torch.tensor([REL.index("colour"), REL.index("sport")]))).any()
    assert (train["within liars"] <= data.cue).all()  # the cue is constant within liars
    for rows in test.values():
        assert not (rows & data.train_person).any() and rows.any()
        assert data.lie[rows].any() and (~data.lie[rows]).any()  # both classes: AUROC is defined
    off = test["cue against lie"]
    assert (data.lie[off] == ~data.cue[off]).all()  # the off-diagonal: cue and lie always disagree


def test_prompts_are_batched_by_length_without_changing_the_answer(data):
    """`last_logits` drops the padding; the last token's logits equal a padded forward pass's."""
    from mechinterp.course.toolkit.model import load_model

    model = load_model("zoo/liar-lm", "cpu")
    rows = torch.zeros(len(data), dtype=torch.bool)
    rows[::97] = True
    got = lying.last_logits(model, data, rows)
    idx = rows.nonzero()[:, 0]
    with torch.no_grad():
        want = model(data.ids[idx])[torch.arange(len(idx)), data.last[idx]]
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
