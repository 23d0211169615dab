"""Benchmark: this course's SAE trainer against SAELens's `SAETrainer`, on identical cached activations.

Both train a TopK SAE (same width, k, batch, learning rate, Adam, number of tokens) on the SAME batches, in the
same order, of `zoo/text-lm`'s residual stream (the chapter-07 store), on this machine's CPU threads. Reported:
training tokens/s of each and their ratio, final held-out fraction of variance explained (FVE) of each, and our
throughput as a fraction of this CPU's measured fp32 matmul rate (FLOPs per token ~ 6 * d_in * width for the
encoder and decoder, forward and backward).

    pip install "mechinterp-course[bench]"          # adds sae-lens (not a core dependency)
    python bench/sae_vs_saelens.py --tokens 1200000 --threads 2 --json bench/result.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def held_out_fve(encode_decode, x: torch.Tensor) -> float:
    with torch.no_grad():
        recon = encode_decode(x)
    return float(1 - (x - recon).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=1_200_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from mechinterp.course.toolkit.model import load_model
    from mechinterp.course.toolkit.sae import PRESETS, ActivationStore, train_sae
    from mechinterp.course.toolkit.zoo import heldout_ids, sae_sample_ids
    from sae_lens import SAETrainer, TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import SAETrainerConfig

    cfg = replace(PRESETS["cpu-small"], n_tokens=args.tokens)
    model = load_model(cfg.model, "cpu")
    store = ActivationStore(model, cfg.hook, sae_sample_ids())
    x = model.activation_at(heldout_ids("text-lm")[: 160 * 128].view(160, 128), cfg.hook).flatten(0, 1)
    peak = matmul_gflops()

    start = time.perf_counter()
    ours, _ = train_sae(cfg, store, "cpu", progress=False)
    ours_s = time.perf_counter() - start

    lens_cfg = TopKTrainingSAEConfig(d_in=cfg.d_in, d_sae=cfg.width, k=cfg.k, aux_loss_coefficient=cfg.aux_coeff,
                                     normalize_activations="expected_average_only_in", dtype="float32",
                                     device="cpu")
    torch.manual_seed(cfg.seed)
    lens_sae = TopKTrainingSAE(lens_cfg)
    trainer_cfg = SAETrainerConfig(total_training_samples=cfg.n_steps * cfg.batch_size,
                                   train_batch_size_samples=cfg.batch_size, lr=cfg.lr, lr_end=cfg.lr, device="cpu",
                                   dead_feature_window=cfg.dead_tokens // cfg.batch_size,
                                   n_batches_for_norm_estimate=8)
    # the same batches in the same order (the norm estimate reads 8 extra batches first)
    trainer = SAETrainer(trainer_cfg, lens_sae, data_provider=store.batches(cfg.batch_size, seed=cfg.seed))
    start = time.perf_counter()
    trainer.fit()
    lens_s = time.perf_counter() - start

    n = cfg.n_steps * cfg.batch_size
    flops_per_token = 6 * cfg.d_in * cfg.width
    result = {
        "tokens": n, "threads": args.threads, "width": cfg.width, "k": cfg.k, "batch": cfg.batch_size, "lr": cfg.lr,
        "ours_tokens_per_s": n / ours_s, "saelens_tokens_per_s": n / lens_s, "speed_ratio": lens_s / ours_s,
        "ours_fve": held_out_fve(lambda t: ours(t)[0], x),
        "saelens_fve": held_out_fve(lambda t: lens_sae.decode(lens_sae.encode(t)), x),
        "matmul_gflops": peak, "ours_fraction_of_matmul_peak": n / ours_s * flops_per_token / 1e9 / peak,
    }
    for key, value in result.items():
        print(f"{key:32s} {value:.4g}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
