"""The IOI prompt generator (chapter 05's data): seeded, balanced, single-token names, held-out splits, ABC."""

from __future__ import annotations

from mechinterp.course.toolkit import ioi
from mechinterp.course.toolkit.zoo.ioi_lm import train_ioi_lm


def test_prompts_mention_s_twice_io_once_and_balance_the_orders():
    ds = ioi.ioi_dataset(60, seed=0)
    assert len(ds) == 60 and ds.order.count("BABA") == ds.order.count("ABBA") == 30
    for prompt, io, s, order in zip(ds.prompts, ds.io, ds.s, ds.order, strict=True):
        words = prompt.split()
        assert words.count(s) == 2 and words.count(io) == 1 and words[-1] == "to"
        first = min(words.index(io), words.index(s))
        assert words[first] == (s if order == "BABA" else io)


def test_seeded_and_splits_hold_out_names_and_templates():
    assert ioi.ioi_dataset(20, seed=3).prompts == ioi.ioi_dataset(20, seed=3).prompts
    train, held = ioi.ioi_dataset(100, seed=0), ioi.ioi_dataset(100, seed=0, split="heldout")
    assert set(train.io + train.s).isdisjoint(ioi.HELDOUT_NAMES)
    assert set(held.io + held.s) <= set(ioi.HELDOUT_NAMES)
    assert set(held.templates) <= set(ioi.HELDOUT_TEMPLATES) and set(train.templates) <= set(ioi.TEMPLATES)


def test_abc_keeps_the_frame_and_repeats_no_name():
    ds = ioi.ioi_dataset(40, seed=1)
    abc = ds.abc(seed=2)
    for p, q in zip(ds.prompts, abc.prompts, strict=True):
        a, b = p.split(), q.split()
        assert len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1
        names = [w for w in b if w in ioi.NAMES]
        assert len(names) == len(set(names)) == 3


def test_training_text_never_puts_a_heldout_name_or_template_in_an_ioi_prompt():
    import random

    rng = random.Random(0)
    for _ in range(3000):
        prompt, answer = ioi.training_ioi_sentence(rng, p_third=0.4, p_composed=0.7)
        words = prompt.split()
        assert not set(words) & set(ioi.HELDOUT_NAMES)
        names = [w for w in words if w in ioi.NAMES]
        assert answer in names and names.count(answer) == 1
        assert max(names.count(n) for n in names) == 2  # S twice; IO and any third name once
    for t in ioi.HELDOUT_TEMPLATES:  # held-out templates' opening clauses never open a training IOI prompt
        clause = t.split("{B} ")[1].split(" {P}")[0]
        assert not any(clause in p for p in ioi.PAIR_VERBS + ioi.TEMPLATES)


class _WordModel:
    """What encode_ioi needs of a model: a word-level tokenizer, a config and a name."""

    def __init__(self):
        from types import SimpleNamespace

        import torch

        self.tokenizer = ioi.build_tokenizer()
        self.cfg = SimpleNamespace(bos_token_id=self.tokenizer.bos_token_id, eos_token_id=0)
        self.name, self.device = "zoo/ioi-lm", torch.device("cpu")


def test_encode_finds_every_position_and_groups_by_template():
    ds = ioi.ioi_dataset(50, seed=2)
    model = _WordModel()
    batch, abc = ioi.encode_ioi(model, ds), ioi.encode_ioi(model, ds.abc(seed=3))
    tok = model.tokenizer
    for i in range(len(ds)):
        ids = batch.tokens[i].tolist()
        assert ids[batch.io_pos[i]] == batch.io[i] == tok.convert_tokens_to_ids(ds.io[i])
        assert ids[batch.s1_pos[i]] == ids[batch.s2_pos[i]] == batch.s[i]
        assert tok.convert_ids_to_tokens(ids[batch.end[i]]) == "to"
        assert all(t == tok.pad_token_id for t in ids[batch.end[i] + 1 :])
        # the ABC prompt is the same frame, with the third name in the second subject mention's slot
        assert (abc.io_pos[i], abc.s1_pos[i], abc.s2_pos[i], abc.end[i]) == (
            batch.io_pos[i], batch.s1_pos[i], batch.s2_pos[i], batch.end[i])
        assert abc.tokens[i, abc.s2_pos[i]] == tok.convert_tokens_to_ids(ds.abc(seed=3).c[i])
    for g in batch.groups.unique():
        rows = (batch.groups == g).nonzero()[:, 0]
        assert len({ds.templates[r] for r in rows.tolist()}) == 1 and len({int(batch.end[r]) for r in rows}) == 1


def test_english_rendering_for_bpe_models():
    assert ioi.as_english("then , Mary and John went to the market . John gave a book to") == \
        "Then, Mary and John went to the market. John gave a book to"


def test_the_ioi_lm_recipe_writes_a_complete_zoo_entry(tmp_path):
    """A 3-step run of the real recipe (`mechinterp zoo train ioi-lm` runs 8,000): the entry loads through the
    zoo loader and its card records the held-out metrics and the weights' checksum."""
    import json

    from mechinterp.course.toolkit.zoo import sha256

    card = train_ioi_lm(ioi.IOIConfig(steps=3, batch_size=8), tmp_path / "ioi-lm", log=lambda s: None,
                            eval_every=2)
    entry = tmp_path / "ioi-lm"
    assert sorted(p.name for p in entry.iterdir()) == ["MODEL_CARD.md", "card.json", "config.json",
                                                       "model.safetensors", "tokenizer.json"]
    assert not (tmp_path / "ioi-lm.ckpt").exists()
    written = json.loads((entry / "card.json").read_text())
    assert written["sha256"] == sha256(entry / "model.safetensors") == card["sha256"]
    assert set(written["metrics"]) == {"train", "heldout_names", "heldout_templates", "heldout"}
    assert written["config"]["vocab_size"] == len(ioi.vocabulary())


def test_the_shipped_tokenizer_is_the_recipe_vocabulary():
    from mechinterp.course.toolkit.zoo import load_zoo_tokenizer

    tok = load_zoo_tokenizer("ioi-lm")
    assert tok.convert_ids_to_tokens(list(range(len(tok)))) == ioi.vocabulary()


def test_english_prompts_keep_every_name_one_and_the_same_token():
    """For BPE models (GPT-2) a name at the start of a prompt would encode differently from the same name after a
    space. A byte-level BPE trained here on rendered prompts (so names are single tokens, as in GPT-2) stands in
    for GPT-2's tokenizer, which needs the hub."""
    from types import SimpleNamespace

    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    names = ioi.GPT2_CANDIDATE_NAMES[:12]
    ds = ioi.ioi_dataset(120, seed=4, names=names)
    corpus = [ioi.as_english(p) for p in ds.prompts + ds.abc(seed=5).prompts] * 20 + [" " + n for n in names] * 50
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=1200, min_frequency=2, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>",
                                  eos_token="<|endoftext|>")
    assert ioi.gpt2_names(tok, names) == names
    model = SimpleNamespace(tokenizer=tok, cfg=SimpleNamespace(bos_token_id=0, eos_token_id=0), name="gpt2",
                            device=torch.device("cpu"))
    openers = [i for i, p in enumerate(ds.prompts) if p.split()[0] in (ds.io[i], ds.s[i])]
    assert openers, "some templates open with a name"
    batch = ioi.encode_ioi(model, ds)
    for i in openers:
        ids = batch.tokens[i].tolist()
        assert ids[batch.s1_pos[i]] == ids[batch.s2_pos[i]] == batch.s[i] and ids[batch.io_pos[i]] == batch.io[i]
        assert min(batch.io_pos[i], batch.s1_pos[i]) == 1  # the opening name, right after BOS
