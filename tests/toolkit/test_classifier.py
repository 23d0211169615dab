"""Classifiers for chapter 06: the zoo's sentiment-clf and the hub path share one wrapper."""

from __future__ import annotations

import pytest
import torch
from mechinterp.course.toolkit.classifier import SST2, Classifier, load_classifier, reinitialised
from transformers import DistilBertConfig, DistilBertForSequenceClassification


def test_zoo_classifier_encodes_with_bert_conventions_and_classifies_from_embeddings():
    clf = load_classifier("zoo/sentiment-clf", "cpu")
    assert clf.labels == ["NEGATIVE", "POSITIVE"]
    enc = clf.encode(["the movie was wonderful", "the movie was not wonderful at all"])
    ids = enc["input_ids"]
    assert ids[0, 0] == clf.tokenizer.cls_token_id and clf.str_tokens(ids[0])[4] == "wonderful"
    assert clf.str_tokens(ids[0])[5] == "[SEP]" and ids[0, -1] == clf.pad_id  # padded to the longer sentence
    with torch.no_grad():
        from_ids = clf.probs(ids, enc["attention_mask"])
        from_embeds = clf.probs_from_embeds(clf.embed(ids), enc["attention_mask"])
    torch.testing.assert_close(from_ids, from_embeds)
    assert from_ids[0].argmax() == 1


def test_reinitialised_classifier_changes_every_weight_but_not_the_original():
    clf = load_classifier("zoo/sentiment-clf", "cpu")
    before = {k: v.clone() for k, v in clf.model.state_dict().items()}
    rnd = reinitialised(clf, 0)
    for k, v in clf.model.state_dict().items():
        assert torch.equal(v, before[k])
    changed = [k for k, v in rnd.model.state_dict().items() if not torch.equal(v, before[k])]
    weights = [k for k in before if k.endswith("weight") and "LayerNorm" not in k and "layer_norm" not in k]
    assert set(weights) <= set(changed)


def test_the_sst2_architecture_runs_through_the_same_wrapper():
    """What load_classifier(SST2) returns online: DistilBERT-base's architecture (random weights here)."""
    torch.manual_seed(0)
    cfg = DistilBertConfig(num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0,
                                                                                           "POSITIVE": 1})
    model = DistilBertForSequenceClassification(cfg).eval()
    zoo = load_classifier("zoo/sentiment-clf", "cpu")
    clf = Classifier(model, zoo.tokenizer, "distilbert-architecture", {})
    ids = torch.randint(5, 500, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(clf.probs(ids), clf.probs_from_embeds(clf.embed(ids), torch.ones_like(ids)))
    assert clf.word_embeddings.weight.shape == (30522, 768)


def test_hub_classifier_fails_fast_and_names_the_zoo_model_offline():
    from mechinterp.course.toolkit.hub import HubUnavailable, _in_local_cache, _reachable

    if _in_local_cache(SST2) or _reachable(SST2) is None:
        pytest.skip("the Hugging Face hub is reachable here; the offline path cannot be exercised")
    from mechinterp.course.toolkit.hub import HUB_TIMEOUT_S

    assert HUB_TIMEOUT_S <= 5  # fail fast: one short probe (no wall-clock assertion)
    with pytest.raises(HubUnavailable, match=r"load_classifier\('zoo/sentiment-clf'\)"):
        load_classifier(SST2)


def test_sst2_online_reproduces_its_known_behaviour():
    """Online only: the real DistilBERT SST-2 through the same code (skipped offline, with the reason)."""
    from mechinterp.course.toolkit.hub import _in_local_cache, _reachable

    reason = None if _in_local_cache(SST2) else _reachable(SST2)
    if reason is not None:
        pytest.skip(f"the Hugging Face hub is not reachable: {reason}")
    clf = load_classifier(SST2, "cpu")
    enc = clf.encode(["a wonderful, moving film", "a dull and lifeless film"])
    with torch.no_grad():
        probs = clf.probs(enc["input_ids"], enc["attention_mask"])
    assert probs.argmax(-1).tolist() == [1, 0]
