"""The IOI prompt generator (chapter 05's data): seeded, balanced, single-token names, held-out splits, ABC."""

from __future__ import annotations

from mechinterp.course.toolkit import ioi


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
