"""Label sources, the activation store and the random-init control used by chapter 02."""

from __future__ import annotations

import torch
from mechinterp.course.toolkit import activations
from mechinterp.course.toolkit.labels import POS_CLASSES, bracket_labels, load_pos_lexicon, pos_labels
from mechinterp.course.toolkit.model import load_model, randomly_initialised


def test_pos_lexicon_labels_whole_words_with_wordnet_classes():
    lexicon = load_pos_lexicon("text-lm")
    assert len(lexicon) > 1000
    assert set(lexicon.values()) == set(POS_CLASSES)
    assert lexicon[" the"] == "function" and lexicon[" man"] == "noun" and lexicon[" said"] == "verb"
    labels = pos_labels([" the", " man", " said", ",", " the", " man", "ly", "."], lexicon)
    noun, verb, function = (POS_CLASSES.index(c) for c in ("noun", "verb", "function"))
    # " man" + "ly" is a word piece, not the noun: unlabelled
    assert labels.tolist() == [function, noun, verb, -1, function, -1, -1, -1]


def test_bracket_labels_track_depth_and_reset_at_line_ends():
    tokens = [" a", " (", "b", " (", "c", ")", " d", ")", " e", " (", " f", "\n", " g"]
    assert bracket_labels(tokens).tolist() == [0, -1, 1, -1, 1, -1, 1, -1, 0, -1, 1, 1, 0]


def test_activation_store_caches_on_disk_and_keys_on_the_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHINTERP_CACHE", str(tmp_path))
    model = load_model("zoo/text-lm", "cpu")
    tokens = torch.randint(1, model.d_vocab, (5, 16), generator=torch.Generator().manual_seed(0))
    first = activations.residual_stream(model, tokens, batch_size=2, progress=False)
    files = list((tmp_path / "activations").glob("*.safetensors"))
    assert len(files) == 1
    _, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(first[0], cache["blocks.0.hook_resid_pre"])
    torch.testing.assert_close(first[-1], cache[f"blocks.{model.n_layers - 1}.hook_resid_post"])
    again = activations.residual_stream(model, tokens, batch_size=2, progress=False)  # read back
    assert torch.equal(first, again)
    random = randomly_initialised(model, seed=0)
    other = activations.residual_stream(random, tokens, batch_size=2, progress=False)
    assert len(list((tmp_path / "activations").glob("*.safetensors"))) == 2
    assert not torch.allclose(other, first)


def test_randomly_initialised_is_seeded_and_keeps_the_architecture():
    model = load_model("zoo/text-lm", "cpu")
    a, b, c = randomly_initialised(model, 0), randomly_initialised(model, 0), randomly_initialised(model, 1)
    assert torch.equal(a.W_E, b.W_E) and not torch.equal(a.W_E, c.W_E)
    assert a.hf.config.to_dict() == model.hf.config.to_dict()
    assert a.hf.lm_head.weight is a.hf.transformer.wte.weight  # embeddings stay tied
    assert not torch.equal(a.W_E, model.W_E)
