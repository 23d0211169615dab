"""The facts-lm world and its data (chapter 04): what the design promises, checked without the trained model."""

from __future__ import annotations

import random
from collections import Counter

from mechinterp.course.toolkit import facts as F


def test_a_person_is_identified_only_at_the_last_subject_token():
    people = F.people()
    assert len(people) == len(set(people)) == len(F.GIVEN) * len(F.FAMILY)
    assert set(Counter(g for g, _ in people).values()) == {len(F.FAMILY)}  # every given name is shared
    assert set(Counter(f for _, f in people).values()) == {len(F.GIVEN)}  # and every family name


def test_held_out_paraphrases_recombine_trained_words():
    for relation in F.RELATIONS:
        train, held = F.templates(relation, "train"), F.templates(relation, "heldout")
        assert len(held) == 3 and len(train) == 15 and not set(train) & set(held)
        train_words = {w for t in train for w in t.split()}
        assert {w for t in held for w in t.split()} <= train_words  # new combinations, no new words


def test_every_word_is_in_the_vocabulary_and_rows_encode_without_unknowns():
    vocab = F.vocabulary()
    tok = F.build_tokenizer(vocab)
    facts = F.world(0)
    rng = random.Random(0)
    rows = [F.sample_row(rng, facts, sorted(facts), 0.25) for _ in range(300)]
    ids, labels = F.encode_rows(tok, rows, 16)
    for row, r_ids, r_labels in zip(rows, ids, labels, strict=True):
        n = len(row.split())
        assert (r_ids[1 : n + 1] != tok.pad_token_id).all(), row  # no word fell back to the unknown id
        assert (r_labels[n + 1 :] == -100).all() and (r_labels[: n + 1] == r_ids[: n + 1]).all()


def test_str_pairs_swap_the_subject_for_one_with_a_different_answer():
    facts = F.world(0)
    pairs = F.str_pairs(facts, "city", 50, seed=3)
    assert len(pairs) == 50
    assert all(facts[a]["city"] != facts[b]["city"] for a, b in pairs)
    tok = F.build_tokenizer(F.vocabulary())
    clean = F.prompt_tokens(tok, "{s} lives in", [a for a, _ in pairs])
    corrupt = F.prompt_tokens(tok, "{s} lives in", [b for _, b in pairs])
    assert clean.shape == corrupt.shape == (50, 5)
    assert (clean[:, 3:] == corrupt[:, 3:]).all() and (clean[:, :2] == corrupt[:, :2]).all()
    assert (clean[:, 2] != corrupt[:, 2]).all()  # only the last subject token differs
