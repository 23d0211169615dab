"""GPU code paths: run where CUDA exists, skipped (with the reason shown) where it does not."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_superposition_reference_trains_on_gpu():
    from mechinterp.solutions import superposition as ref

    W = ref.run_pentagon("cuda")["W"]
    dims = ref.feature_dimensionality(W)
    assert ((dims - 0.4).abs().amax(-1) < 0.03).float().mean() >= 0.75


def test_checks_give_the_same_verdict_on_gpu(superposition_reference):
    from mechinterp.autograder import grade

    report = grade("superposition", superposition_reference)
    assert report.score == report.max_score


def test_hooked_model_on_gpu_matches_cpu():
    from mechinterp.course.toolkit.model import load_model

    tokens = torch.randint(0, 64, (2, 40), generator=torch.Generator().manual_seed(0))
    cpu = load_model("zoo/attn-only-2l", device="cpu")
    gpu = load_model("zoo/attn-only-2l", device="cuda")
    _, c_cpu = cpu.run_with_cache(tokens)
    _, c_gpu = gpu.run_with_cache(tokens)
    for name in ("blocks.1.attn.hook_pattern", "blocks.1.hook_resid_post"):
        torch.testing.assert_close(c_gpu[name].cpu(), c_cpu[name], atol=1e-4, rtol=1e-4)


def test_sae_trains_on_gpu_at_the_gpu_preset_width():
    """The `gpu` preset's shape (d_in 768, 24,576 latents, batch 4,096) on one CUDA device, on Gaussian data
    (GPT-2 small's weights need the hub): a few hundred steps, the loss falls and L0 is exactly k."""
    from dataclasses import replace

    from mechinterp.course.toolkit.sae import PRESETS, ActivationStore, train_sae

    cfg = replace(PRESETS["gpu"], n_tokens=4096 * 200)
    data = torch.randn(65_536, cfg.d_in, generator=torch.Generator().manual_seed(0)) * 2 + 0.5
    sae, history = train_sae(cfg, ActivationStore.from_tensor(data), "cuda", progress=False)
    assert next(sae.parameters()).device.type == "cuda"
    assert history[-1]["mse"] < history[0]["mse"]
    assert history[-1]["l0"] == cfg.k
