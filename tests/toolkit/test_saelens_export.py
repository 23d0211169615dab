"""`export_sae` writes SAELens 6's format: SAELens loads each architecture and computes the same latents, the same
reconstruction, and so the same FVE and L0, on the same activations."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from mechinterp.course.toolkit.interop import export_sae
from mechinterp.course.toolkit.sae import SYNTHETIC_PRESETS, ActivationStore, synthetic_dictionary_data, train_sae
from sae_lens import SAE


def fve(x, recon):
    return float(1 - (x - recon).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


@pytest.mark.parametrize("arch", ["relu", "topk", "jumprelu", "batchtopk"])
def test_saelens_loads_an_exported_sae_with_equal_metrics(arch, tmp_path):
    data, _ = synthetic_dictionary_data(128, 32, 0.02, 6_000, seed=3)
    x = data * 3.0 + 1.0  # off-centre and off-scale, so the folded input scale and b_dec matter
    cfg = replace(SYNTHETIC_PRESETS["topk"], arch=arch, d_in=32, width=128, k=4, aux_k=16, n_tokens=40_000,
                  batch_size=256, l1_coeff=1.0, l0_coeff=0.01)
    sae, _ = train_sae(cfg, ActivationStore.from_tensor(x[:5_000]), "cpu", progress=False)
    sae.eval()
    assert float(sae.scale) != 1.0
    held = x[5_000:]
    with torch.no_grad():
        recon, acts = sae(held)
        theirs = SAE.load_from_disk(export_sae(sae, tmp_path / arch, hook_name="blocks.0.hook_resid_pre"))
        their_acts = theirs.encode(held)
        their_recon = theirs.decode(their_acts)
    assert theirs.cfg.metadata.hook_name == "blocks.0.hook_resid_pre"
    torch.testing.assert_close(their_acts, acts, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(their_recon, recon, atol=1e-4, rtol=1e-4)
    assert fve(held, their_recon) == pytest.approx(fve(held, recon), abs=1e-5)
    assert float((their_acts > 0).sum(-1).float().mean()) == float((acts > 0).sum(-1).float().mean())
    assert fve(held, recon) > 0.5 and 0 < float((acts > 0).sum(-1).float().mean()) < 128  # a real, sparse SAE
