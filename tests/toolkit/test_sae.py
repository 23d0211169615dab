"""The SAE toolkit: its building blocks agree with the chapter's reference solutions, the activation store caches
and shuffles correctly, a saved SAE loads back, and 2-process DDP training follows the 1-process trajectory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from mechinterp.course.toolkit import sae as tk
from mechinterp.course.toolkit.sae import model as sae_model
from mechinterp.solutions import sparse_autoencoders as ref


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _tiny(arch: str, **kw) -> tk.SparseAutoencoder:
    cfg = replace(tk.PRESETS["cpu-small"], d_in=12, width=40, arch=arch, k=4, aux_k=6, **kw)
    sae = tk.SparseAutoencoder(cfg)
    sae.initialise(torch.randn(200, 12, generator=_gen(1)) * 4 + 2)
    return sae


def test_toolkit_activations_match_the_reference():
    pre = torch.randn(9, 40, generator=_gen(0))
    assert torch.equal(_tiny("topk").activation(pre), ref.topk_activation(pre, 4))
    batch = _tiny("batchtopk").train()
    assert torch.equal(batch.activation(pre), ref.batchtopk_activation(pre, 4)[0])
    jump = _tiny("jumprelu", jump_init_threshold=0.3, jump_bandwidth=0.2)
    p1, p2 = pre.clone().requires_grad_(True), pre.clone().requires_grad_(True)
    t1 = jump.log_threshold.detach().exp().requires_grad_(True)
    t2 = t1.detach().clone().requires_grad_(True)
    up = torch.randn(9, 40, generator=_gen(2))
    (sae_model._JumpReLU.apply(p1, t1, 0.2) * up).sum().backward()
    (ref.jumprelu(p2, t2, 0.2) * up).sum().backward()
    assert torch.allclose(p1.grad, p2.grad) and torch.allclose(t1.grad, t2.grad)
    assert t1.grad.abs().sum() > 0  # some pre-activations sit inside the kernel


def test_toolkit_losses_and_tricks_match_the_reference():
    g = _gen(3)
    x, recon, pre = torch.randn(6, 12, generator=g), torch.randn(6, 12, generator=g), torch.randn(6, 40, generator=g)
    W = torch.randn(40, 12, generator=g)
    dead = torch.rand(40, generator=g) < 0.3
    assert torch.allclose(tk.auxk_loss(x, recon, pre, dead, W, 6), ref.auxk_loss(x, recon, pre, dead, W, 6))
    assert float(tk.auxk_loss(x, recon, pre, torch.zeros(40, dtype=torch.bool), W, 6)) == 0.0
    pts = torch.randn(50, 5, generator=g)
    assert torch.allclose(tk.geometric_median(pts, 80), ref.geometric_median(pts, 80), atol=1e-6)
    sae = _tiny("relu")
    sae.W_dec.grad = torch.randn(40, 12, generator=g)
    want = ref.remove_parallel_grad(sae.W_dec.detach(), sae.W_dec.grad.clone())
    sae.remove_parallel_grad()
    assert torch.allclose(sae.W_dec.grad, want, atol=1e-6)
    acts = torch.relu(torch.randn(6, 40, generator=g))
    relu_losses = sae.losses(x, l1_scale=1.0)
    a = relu_losses["acts"]
    assert torch.allclose(relu_losses["sparsity"], sae.cfg.l1_coeff * ref.l1_penalty(a, sae.W_dec))
    assert acts.shape == a.shape


def test_scaling_and_init():
    sample = torch.randn(500, 12, generator=_gen(4)) * 7 + 3
    sae = _tiny("topk")
    sae.initialise(sample)
    assert abs(float((sample * sae.scale).norm(dim=-1).mean()) - 12**0.5) < 1e-4
    assert torch.allclose(sae.b_dec, ref.geometric_median(sample * sae.scale), atol=1e-4)
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(40))
    assert torch.allclose(sae.W_enc, sae.W_dec.T)  # tied init
    recon, acts = sae(sample)
    assert recon.shape == sample.shape and int((acts > 0).sum(-1).max()) <= 4


def test_save_and_load_round_trip(tmp_path):
    sae = _tiny("jumprelu")
    path = tmp_path / "sae.safetensors"
    sae.save(path)
    back = tk.SparseAutoencoder.load(path)
    assert back.cfg == sae.cfg
    x = torch.randn(5, 12, generator=_gen(5))
    assert torch.equal(back(x)[0], sae(x)[0])


def test_store_batches_cover_an_epoch_and_split_by_rank():
    store = tk.ActivationStore.from_tensor(torch.arange(64 * 3, dtype=torch.float32).view(64, 3))
    batches = store.batches(16, seed=0)
    epoch = torch.cat([next(batches) for _ in range(4)])
    assert sorted(epoch[:, 0].tolist()) == [3.0 * i for i in range(64)]  # every row once per epoch
    assert not torch.equal(epoch, torch.cat([next(batches) for _ in range(4)]))  # reshuffled next epoch
    full = next(store.batches(16, seed=1))
    halves = [next(store.batches(16, seed=1, rank=r, world=2)) for r in (0, 1)]
    assert sorted(torch.cat(halves)[:, 0].tolist()) == sorted(full[:, 0].tolist())


def test_store_caches_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHINTERP_CACHE", str(tmp_path))
    from mechinterp.autograder.checks.sparse_autoencoders import _model

    model = _model()
    tokens = torch.randint(0, 30, (6, 10), generator=_gen(6))
    hook = "blocks.1.hook_resid_pre"
    store = tk.ActivationStore(model, hook, tokens, batch_size=4, progress=False)
    _, cache = model.run_with_cache(tokens, names_filter=[hook])
    assert torch.allclose(torch.from_numpy(store.acts.copy()), cache[hook].reshape(-1, 24))
    calls = []
    handle = model.hf.register_forward_hook(lambda *a: calls.append(1))
    again = tk.ActivationStore(model, hook, tokens, batch_size=4, progress=False)
    handle.remove()
    assert not calls and again.path == store.path  # read back, no forward pass
    assert store.path.is_relative_to(tmp_path)


def _run_cli(args: list[str], procs: int, tmp_path) -> list[dict]:
    hist = tmp_path / f"history{procs}.json"
    out = tmp_path / f"sae{procs}.safetensors"
    common = ["--synthetic", "8192", "--log-every", "1", "--history", str(hist), "--out", str(out), "--set", *args]
    if procs == 1:
        cmd = [sys.executable, "-m", "mechinterp.course.toolkit.sae", *common]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
               "-m", "mechinterp.course.toolkit.sae", *common]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(hist.read_text())


@pytest.mark.parametrize("arch", ["topk", "relu"])
def test_ddp_two_processes_follow_the_single_process_trajectory(tmp_path, arch):
    """Same global batch (512), same seed: gloo DDP with 2 processes vs 1 process, 40 steps."""
    args = ["d_in=32", "width=128", "k=8", "aux_k=16", "batch_size=512", "n_tokens=20480", "dead_tokens=2048",
            f"arch={arch}", "l1_coeff=0.5"]
    single = _run_cli(args, 1, tmp_path)
    ddp = _run_cli(args, 2, tmp_path)
    assert len(single) == len(ddp) == 40
    for a, b in zip(single, ddp, strict=True):
        assert abs(a["mse"] - b["mse"]) <= 1e-5 * abs(a["mse"]), (a, b)  # measured: 2e-7
        assert abs(a["l0"] - b["l0"]) <= 1e-3, (a, b)  # measured: 0
    assert single[-1]["mse"] < 0.8 * single[0]["mse"]  # it trained


def test_training_leaves_the_global_rng_alone_and_never_starts_at_the_true_dictionary():
    data, dirs = tk.synthetic_dictionary_data(64, 16, 0.05, 4096, seed=0)
    cfg = replace(tk.PRESETS["cpu-small"], d_in=16, width=64, k=2, batch_size=512, n_tokens=1024, seed=0)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    tk.train_sae(cfg, tk.ActivationStore.from_tensor(data), progress=False)
    assert torch.equal(torch.rand(3), expected)
    init = tk.SparseAutoencoder(cfg).W_dec
    assert ref.mmcs(init, dirs) < 0.8  # a random init is far from the answer (a shared seed once made it 1.0)
