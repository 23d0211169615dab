"""`python -m mechinterp.course.toolkit.sae`: train one sparse autoencoder from the command line, in one process or
data-parallel under torchrun."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from mechinterp.course.toolkit.model import load_model
from mechinterp.course.toolkit.sae.model import PRESETS, with_overrides
from mechinterp.course.toolkit.sae.store import ActivationStore
from mechinterp.course.toolkit.sae.train import _world, train_sae
from mechinterp.course.toolkit.zoo.load import load_zoo_tokenizer, sae_sample_ids
from torch import Tensor


def main(argv: list[str] | None = None) -> bool:
    """`torchrun --nproc_per_node 2 -m mechinterp.course.toolkit.sae --preset cpu-small --out sae.safetensors`
    (or plain `python -m ...` for one process). `--synthetic N` trains on N seeded Gaussian vectors instead of a
    model's activations (what the DDP test uses); `--history FILE` writes the loss trajectory as JSON."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--preset", default="cpu-small", choices=sorted(PRESETS))
    p.add_argument("--out", default="sae.safetensors")
    p.add_argument("--history", default=None)
    p.add_argument("--synthetic", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--set", nargs="*", default=[], help="config overrides, e.g. width=512 n_tokens=100000")
    args = p.parse_args(argv)
    cfg = with_overrides(PRESETS[args.preset], dict(s.split("=", 1) for s in args.set))
    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    device = torch.device("cpu")
    if distributed:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if backend == "nccl":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("WORLD_SIZE", 1))))
    if args.synthetic:
        gen = torch.Generator().manual_seed(1234)
        store = ActivationStore.from_tensor(torch.randn(args.synthetic, cfg.d_in, generator=gen) * 3 + 1)
    else:
        model = load_model(cfg.model, device)
        tokens = sae_sample_ids() if cfg.model.startswith("zoo/") else sample_tokens_for(model)
        store = ActivationStore(model, cfg.hook, tokens, progress=_world()[0] == 0)
    sae, history = train_sae(cfg, store, device, log_every=args.log_every)
    if _world()[0] == 0:
        sae.save(args.out)
        if args.history:
            Path(args.history).write_text(json.dumps(history))
        print(f"final FVE {history[-1]['fve']:.4f}, L0 {history[-1]['l0']:.1f}, "
              f"{history[-1]['seconds']:.1f} s -> {args.out}")
    if distributed:
        dist.barrier()  # every rank waits for rank 0's save
        dist.destroy_process_group()
    return distributed


def sample_tokens_for(model, n_ctx: int = 128) -> Tensor:
    """The zoo's SAE text sample re-tokenised for another model (e.g. GPT-2 small): the same English text."""
    text = load_zoo_tokenizer("text-lm").batch_decode(sae_sample_ids().tolist())
    ids = [i for t in text for i in model.tokenizer(t)["input_ids"]]
    n = len(ids) // n_ctx
    return torch.tensor(ids[: n * n_ctx]).view(n, n_ctx)

if __name__ == "__main__":
    if main():
        # A torchrun worker leaves at once once its work is saved and its group destroyed: on a loaded machine,
        # letting the interpreter tear down gloo's threads aborts the worker about one run in ten ("terminate
        # called without an active exception", measured under load), which fails a finished run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
