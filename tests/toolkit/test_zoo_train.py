"""The zoo's one training loop: a run interrupted and resumed from its checkpoint ends with exactly the weights
of an uninterrupted run; the schedule's shapes."""

from __future__ import annotations

import math
import random

import pytest
import torch
from mechinterp.course.toolkit.zoo.load import make_attn_only
from mechinterp.course.toolkit.zoo.train import (
    Run,
    Schedule,
    adamw,
    generator_state,
    gpt2_config,
    python_random_state,
    train_loop,
)
from transformers import GPT2LMHeadModel


class Interrupted(Exception):
    pass


def _train(ckpt, stop_at=None, streams=True):
    torch.manual_seed(0)
    model = make_attn_only(GPT2LMHeadModel(gpt2_config(16, 12, 16, 2, 2)))
    gen, rng = torch.Generator().manual_seed(1), random.Random(2)
    calls = []

    def batch():
        if len(calls) == stop_at:
            raise Interrupted
        calls.append(1)
        x = torch.randint(0, 16, (4, 12), generator=gen)
        return x[:, torch.randperm(12, generator=gen)] if rng.random() < 0.5 else x  # both streams matter

    run = Run("tiny", 12, batch, lambda m, x: m(x, labels=x).loss, Schedule(1e-2, 12, 3), checkpoint_every=4,
              random_states={"gen": generator_state(gen), "rng": python_random_state(rng)} if streams else {})
    train_loop(model, adamw(model, 1e-2, 0.01), run, ckpt, log=lambda *_: None)
    return model.state_dict()


def test_a_resumed_run_ends_bit_for_bit_where_an_uninterrupted_one_does(tmp_path):
    straight = _train(tmp_path / "a.ckpt")
    with pytest.raises(Interrupted):
        _train(tmp_path / "b.ckpt", stop_at=10)  # checkpoints were written after steps 4 and 8
    assert (tmp_path / "b.ckpt" / "state.pt").exists()
    resumed = _train(tmp_path / "b.ckpt")  # a fresh process would start here: new model, new streams
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    # the contrast: a checkpoint without the data streams' states resumes on other batches
    with pytest.raises(Interrupted):
        _train(tmp_path / "c.ckpt", stop_at=10, streams=False)
    forgetful = _train(tmp_path / "c.ckpt", streams=False)
    assert not all(torch.equal(straight[k], forgetful[k]) for k in straight)


def test_the_schedule_shapes():
    cosine = Schedule(1.0, 100, 10)
    assert [round(cosine(s), 12) for s in range(3)] == [0.1, 0.2, 0.3]  # linear warm-up from step 0
    assert cosine(10) == 1.0 and math.isclose(cosine(99), 0.1, abs_tol=1e-3)  # cosine to 0.1 x peak at the end
    assert all(cosine(s) >= cosine(s + 1) for s in range(10, 99))
    constant = Schedule(1.0, 100, 10, decay="constant")
    assert constant(5) == cosine(5) and constant(50) == constant(99) == 1.0
    overlap = Schedule(1.0, 100, 10, overlap=True)  # the ramp multiplies a cosine that started at step 0
    assert overlap(5) < cosine(5)
    assert math.isclose(overlap(10), 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.1)), rel_tol=1e-12)
    f32 = Schedule(1.0, 100, 10, overlap=True, float32_cos=True)
    assert any(f32(s) != overlap(s) for s in range(100))  # float32 rounding, kept for facts-lm's weights
    assert max(abs(f32(s) - overlap(s)) for s in range(100)) < 1e-6
