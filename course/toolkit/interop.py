"""Take the course's models and SAEs into the two libraries the field uses.

    tl_model = to_hooked_transformer(load_model("zoo/ioi-lm-v2"))   # a TransformerLens 3.9 HookedTransformer
    export_sae(sae, "my-sae/", hook_name="blocks.2.hook_resid_pre")   # SAELens 6's on-disk format

`to_hooked_transformer` needs `transformer-lens==3.9.0` (the last release with `HookedTransformer`; it installs
from PyPI offline like the course). The weights are copied as they are: no LayerNorm folding, no centring, so
every hook point the two libraries share holds the same numbers (tested on every zoo language model).
`export_sae` writes plain JSON + safetensors and needs no extra package; `sae_lens.SAE.load_from_disk(dir)`
reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TRANSFORMER_LENS_VERSION = "3.9.0"


def _import_transformer_lens():
    try:
        import transformer_lens
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError(f"to_hooked_transformer needs TransformerLens: pip install "
                          f"transformer-lens=={TRANSFORMER_LENS_VERSION}") from err
    return transformer_lens


def hooked_transformer_config(model) -> dict:
    """The `HookedTransformerConfig` fields that describe `model` (a `HookedModel`) exactly."""
    hf = model.cfg
    if getattr(hf, "scale_attn_by_inverse_layer_idx", False) or not getattr(hf, "scale_attn_weights", True):
        raise ValueError("only GPT-2's standard attention scaling (1 / sqrt(d_head)) has a TransformerLens twin")
    return dict(n_layers=model.n_layers, d_model=model.d_model, n_ctx=model.n_ctx, d_head=model.d_head,
                n_heads=model.n_heads, d_vocab=model.d_vocab, d_mlp=None if model.attn_only else model.W_in(0).shape[1],
                attn_only=model.attn_only, act_fn=hf.activation_function, eps=hf.layer_norm_epsilon,
                normalization_type="LN", positional_embedding_type="standard", original_architecture="GPT2LMHeadModel",
                use_attn_result=True, default_prepend_bos=False, model_name=model.name or "mechinterp-model")


def transformer_lens_state_dict(model) -> dict[str, torch.Tensor]:
    """`model`'s weights under TransformerLens's names and shapes (the same accessors learners use)."""
    sd = {"embed.W_E": model.W_E, "pos_embed.W_pos": model.W_pos, "ln_final.w": model.ln_final.weight,
          "ln_final.b": model.ln_final.bias, "unembed.W_U": model.W_U, "unembed.b_U": model.b_U}
    for layer, block in enumerate(model.hf.transformer.h):
        p = f"blocks.{layer}."
        sd |= {p + "ln1.w": block.ln_1.weight, p + "ln1.b": block.ln_1.bias,
               p + "attn.W_Q": model.W_Q(layer), p + "attn.W_K": model.W_K(layer), p + "attn.W_V": model.W_V(layer),
               p + "attn.b_Q": model.b_Q(layer), p + "attn.b_K": model.b_K(layer), p + "attn.b_V": model.b_V(layer),
               p + "attn.W_O": model.W_O(layer), p + "attn.b_O": model.b_O(layer)}
        if not model.attn_only:
            sd |= {p + "ln2.w": block.ln_2.weight, p + "ln2.b": block.ln_2.bias,
                   p + "mlp.W_in": model.W_in(layer), p + "mlp.b_in": model.b_in(layer),
                   p + "mlp.W_out": model.W_out(layer), p + "mlp.b_out": model.b_out(layer)}
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


def to_hooked_transformer(model, device: str | torch.device | None = None):
    """A TransformerLens `HookedTransformer` with `model`'s weights, unfolded (hook names and values agree with
    this course's hooks API at every point both have). `use_attn_result` is on, so `attn.hook_result` exists."""
    tl = _import_transformer_lens()
    import warnings

    cfg = tl.HookedTransformerConfig(**hooked_transformer_config(model), device=str(device or model.device))
    with warnings.catch_warnings():  # 3.9 announces HookedTransformer's deprecation in favour of 4.x's bridge
        warnings.simplefilter("ignore", DeprecationWarning)
        out = tl.HookedTransformer(cfg)
    out.load_and_process_state_dict(transformer_lens_state_dict(model), fold_ln=False, center_writing_weights=False,
                                    center_unembed=False, fold_value_biases=False,
                                    refactor_factored_attn_matrices=False)
    return out.eval()


# ---------------------------------------------------------------------------------------------- SAEs

_SAELENS_ARCH = {"relu": "standard", "topk": "topk", "jumprelu": "jumprelu", "batchtopk": "jumprelu"}


def export_sae(sae, directory: str | Path, hook_name: str | None = None, model_name: str | None = None) -> Path:
    """Write `sae` (a `toolkit.sae.SparseAutoencoder`) in SAELens 6's on-disk format: `cfg.json` and
    `sae_weights.safetensors`, loadable with `sae_lens.SAE.load_from_disk(directory)`.

    The course's SAE scales its input (x * scale) before encoding and divides after decoding; SAELens has no such
    buffer, so the scale is folded into the weights (W_enc * scale, W_dec / scale, b_dec / scale): the exported SAE
    computes the same latents and the same reconstruction of the unscaled input. A BatchTopK SAE is exported as
    what it is at inference, a JumpReLU with one threshold for every latent (SAELens does the same)."""
    from safetensors.torch import save_file

    cfg, scale = sae.cfg, float(sae.scale)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {"W_enc": sae.W_enc * scale, "W_dec": sae.W_dec / scale, "b_enc": sae.b_enc, "b_dec": sae.b_dec / scale}
    extra = {}
    if cfg.arch == "jumprelu":
        weights["threshold"] = sae.log_threshold.exp()
    elif cfg.arch == "batchtopk":
        weights["threshold"] = sae.threshold.expand(cfg.width)
    elif cfg.arch == "topk":
        extra = {"k": cfg.k, "rescale_acts_by_decoder_norm": False}
    save_file({k: v.detach().float().cpu().contiguous() for k, v in weights.items()},
              str(directory / "sae_weights.safetensors"))
    config = {"architecture": _SAELENS_ARCH[cfg.arch], "d_in": cfg.d_in, "d_sae": cfg.width, "dtype": "float32",
              "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none", **extra,
              "metadata": {"model_name": model_name or cfg.model, "hook_name": hook_name or cfg.hook,
                           "model_class_name": "HookedTransformer", "prepend_bos": True,
                           "sae_lens_version": "6.0.0"}}  # the format's version: without it SAELens reads a 5.x config
    (directory / "cfg.json").write_text(json.dumps(config, indent=2))
    return directory
