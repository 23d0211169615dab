"""Small random-weight models the checks run learner code on (shared by every chapter's checks)."""

from __future__ import annotations

import torch
from mechinterp.autograder.harness import case_seed
from mechinterp.course.toolkit.model import HookedModel
from mechinterp.course.toolkit.zoo import make_attn_only
from transformers import GPT2Config, GPT2LMHeadModel


def tiny_gpt2(seed: int, vocab_size: int, n_embd: int, n_layer: int, n_head: int, n_positions: int = 16,
              attn_only: bool = False, scale: float = 0.3, hidden: bool = True) -> HookedModel:
    """A GPT-2 with large random weights (N(0, scale): every head, layer and direction matters), no dropout,
    built without touching the global random state. hidden=False: the same weights under every
    MECHINTERP_HIDDEN_SEED (a case whose mistakes were chosen to differ on these very weights)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(case_seed(seed) if hidden else seed)
        cfg = GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                         n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0,
                         eos_token_id=0, **({"attn_only": True} if attn_only else {}))
        hf = GPT2LMHeadModel(cfg)
        if attn_only:
            make_attn_only(hf)
        with torch.no_grad():
            for p in hf.parameters():
                p.normal_(0, scale)
    return HookedModel(hf, name="tiny-random")
