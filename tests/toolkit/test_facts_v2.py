"""facts-lm-v2's rows and chapter 08's editing machinery, checked without training."""

from __future__ import annotations

import random

import torch
from mechinterp.course.toolkit import editing as ed
from mechinterp.course.toolkit import facts as F
from mechinterp.course.toolkit import facts_v2 as V


def _rows(n=600, seed=0):
    facts = F.world(0)
    rng = random.Random(seed)
    return facts, [V.sample_row_v2(rng, facts, sorted(facts), V.FactsV2Config()) for _ in range(n)]


def test_profile_rows_list_all_five_attributes_right_after_the_name():
    facts, rows = _rows()
    values = {v for _, vs in F.RELATIONS.values() for v in vs}
    profiles = [r for r in rows if " ".join(r.split()[:2]) in facts and r.split()[2] in values]
    assert 0.25 < len(profiles) / len(rows) < 0.45
    for row in profiles:
        words = row.split()
        assert sorted(words[2:7]) == sorted(facts[" ".join(words[:2])].values()) and words[7] == "."


def test_back_references_and_statements_state_true_facts_and_no_heldout_combination():
    facts, rows = _rows()
    heldout = {t.format(s=s) for r in F.RELATIONS for t in F.templates(r, "heldout") for s in facts}
    backs = [r for r in rows if " . they " in r]
    assert 0.08 < len(backs) / len(rows) < 0.22
    for row in rows:
        assert not any(row.startswith(h + " ") for h in heldout), row
    for row in backs:
        subject, answer = " ".join(row.split()[:2]), row.split()[-2]
        assert answer in facts[subject].values()


def test_every_row_encodes_without_unknown_words():
    _, rows = _rows(300)
    tok = F.build_tokenizer(V.vocabulary_v2())
    ids, _ = F.encode_rows(tok, rows, V.FactsV2Config().n_ctx)
    for row, r_ids in zip(rows, ids, strict=True):
        n = len(row.split())
        assert n + 1 <= V.FactsV2Config().n_ctx and (r_ids[1 : n + 1] != tok.pad_token_id).all(), row


def test_edit_requests_have_a_new_object_and_neighbours_that_share_the_old_one():
    facts = F.world(0)
    requests = ed.edit_requests(facts, 50, seed=0)
    assert len({(r.subject, r.relation) for r in requests}) == 50
    assert {r.relation for r in requests} == set(F.RELATIONS)
    for r in requests:
        assert facts[r.subject][r.relation] == r.old != r.new and r.new in F.RELATIONS[r.relation][1]
        near = ed.neighbours(facts, r)
        assert len(near) >= 2 and r.subject not in near and all(facts[s][r.relation] == r.old for s in near)
        trained = {t.format(s=r.subject) for t in F.templates(r.relation, "train")}
        assert set(ed.paraphrase_prompts(r)).isdisjoint(trained)
        assert {ed.rewrite_prompt(r), *ed.context_prompts(r)} <= trained  # edits never see a paraphrase


def test_encode_finds_the_last_subject_token_behind_every_prefix():
    tok = F.build_tokenizer(V.vocabulary_v2())
    r = ed.EditRequest("Ada Vorn", "city", "quen", "tarsk")
    ids, last, sub_last = ed.encode(tok, ed.context_prompts(r), r.subject)
    for row, end, s in zip(ids, last, sub_last, strict=True):
        assert tok.convert_ids_to_tokens(int(row[s])) == "Vorn" and tok.convert_ids_to_tokens(int(row[s - 1])) == "Ada"
        assert tok.convert_ids_to_tokens(int(row[end])) == "in"


def test_edited_restores_the_weights_and_fine_tune_leaves_the_model_alone():
    from mechinterp.course.toolkit.model import load_model

    model = load_model("zoo/facts-lm-v2", "cpu")
    before = ed.mlp_out_weight(model, 1).detach().clone()
    r = ed.edit_requests(F.world(0), 1)[0]
    ids, last, _ = ed.encode(model.tokenizer, [ed.rewrite_prompt(r)])
    W = ed.fine_tune(model, 1, ids, last, ed.token_id(model.tokenizer, r.new), steps=3,
                     project=lambda W_, W0: W0 + (W_ - W0).clamp(-1e-3, 1e-3))
    assert torch.equal(ed.mlp_out_weight(model, 1), before) and not torch.equal(W, before)
    assert (W - before).abs().max() <= 1e-3 + 1e-7
    with ed.edited(model, 1, W):
        assert torch.equal(ed.mlp_out_weight(model, 1), W)
    assert torch.equal(ed.mlp_out_weight(model, 1), before)
    assert all(p.requires_grad for p in model.hf.parameters())
