"""One hooks API over real `transformers` GPT-2-architecture models (the zoo's and the hub's).

    model = load_model("zoo/attn-only-2l")             # or "gpt2" when the hub is reachable
    logits, cache = model.run_with_cache(tokens)
    cache["blocks.1.attn.hook_pattern"]                 # [batch, head, query, key]
    with model.hooks([("blocks.0.attn.hook_z", zero_ablate(head=3))]):
        logits = model(tokens)

Hook names follow TransformerLens 3.9 (listed at the end of this docstring). Each name is served by a PyTorch forward
(pre-)hook on the HF module that computes it, registered only while a cache or patch needs it, so outside
`run_with_cache` / `hooks(...)` the model runs exactly as transformers runs it. Attention patterns come from
an eager attention function registered with transformers' AttentionInterface.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from mechinterp.course.toolkit.device import get_device
from mechinterp.course.toolkit.hub import load_hub_gpt2
from mechinterp.course.toolkit.zoo.load import load_zoo_hf, load_zoo_tokenizer, zoo_names
from torch import Tensor, nn
from transformers import AttentionInterface, GPT2LMHeadModel

HookFn = Callable[[Tensor, "HookPoint"], Tensor | None]

HOOK_NAMES_DOC = """
hook_tokens                               [batch, pos]            the token ids (an edit changes the input)
hook_embed, hook_pos_embed                [batch, pos, d_model]
blocks.{l}.hook_resid_pre                 [batch, pos, d_model]   residual stream entering block l
blocks.{l}.ln1.hook_scale                 [batch, pos, 1]         sqrt(var + eps) of the block's input
blocks.{l}.ln1.hook_normalized            [batch, pos, d_model]   centred / scale, BEFORE the gain and bias
blocks.{l}.attn.hook_q / hook_k / hook_v  [batch, pos, head, d_head]
blocks.{l}.attn.hook_attn_scores          [batch, head, query, key]  scaled, masked, before softmax
blocks.{l}.attn.hook_pattern              [batch, head, query, key]  attention probabilities
blocks.{l}.attn.hook_z                    [batch, pos, head, d_head]  pattern @ v
blocks.{l}.attn.hook_result               [batch, pos, head, d_model] each head's output, z_h @ W_O[h]
blocks.{l}.hook_attn_out                  [batch, pos, d_model]   sum of hook_result + b_O
blocks.{l}.hook_resid_mid                 [batch, pos, d_model]   resid_pre + attn_out
blocks.{l}.ln2.hook_scale / hook_normalized, blocks.{l}.mlp.hook_pre / hook_post   (models with MLPs)
blocks.{l}.hook_mlp_out                   [batch, pos, d_model]   (models with MLPs)
blocks.{l}.hook_resid_post                [batch, pos, d_model]   = hook_resid_pre of block l + 1
ln_final.hook_scale / hook_normalized     as ln1 (before ln_final's gain and bias)
unembed.hook_in                           [batch, pos, d_model]   input to the unembedding (after ln_final)
unembed.hook_out                          [batch, pos, d_vocab]   the logits
"""
__doc__ += "\nHook points:\n" + HOOK_NAMES_DOC


@dataclass(frozen=True)
class HookPoint:
    """Passed to hook functions: which activation they are looking at (`hook.name`, `hook.layer()`, as in
    TransformerLens)."""

    name: str

    def layer(self) -> int:
        """The block index of a `blocks.{l}.*` hook point (TransformerLens' `hook.layer()`)."""
        if not self.name.startswith("blocks."):
            raise ValueError(f"{self.name} is not inside a block: it has no layer")
        return int(self.name.split(".")[1])


class ActivationCache(dict):
    """name -> activation tensor, with helpful errors and a few TransformerLens-style accessors."""

    def __getitem__(self, name: str) -> Tensor:
        if name not in self:
            raise KeyError(_unknown(name, sorted(self), "cached activation"))
        return super().__getitem__(name)

    def stack(self, suffix: str) -> Tensor:
        """[n_layers, ...]: the activation `blocks.{l}.<suffix>` of every layer."""
        names = sorted((n for n in self if n.startswith("blocks.") and n.endswith("." + suffix)),
                       key=lambda n: int(n.split(".")[1]))
        if not names:
            raise KeyError(f"no cached activation ends with {suffix!r}")
        return torch.stack([self[n] for n in names])


def _unknown(name: str, valid: Sequence[str], what: str) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}.{hint} Valid names look like: {', '.join(list(valid)[:12])} ..."


# ------------------------------------------------------------------------------ attention with hooks


def _hooked_eager_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers-compatible eager attention that exposes scores and pattern to the active hooks."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling  # [batch, head, q, k]
    if attention_mask is not None:
        scores = scores + attention_mask
    else:  # causal mask when transformers hands us none (e.g. a single unpadded sequence with SDPA-style masks)
        q, k = scores.shape[-2:]
        causal = torch.ones(q, k, dtype=torch.bool, device=scores.device).tril(k - q)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
    session = getattr(module, "_mi_session", None)
    if session is not None:
        scores = session.fire(f"blocks.{module.layer_idx}.attn.hook_attn_scores", scores)
    pattern = nn.functional.softmax(scores, dim=-1).type(value.dtype)
    if session is not None:
        pattern = session.fire(f"blocks.{module.layer_idx}.attn.hook_pattern", pattern)
    pattern = nn.functional.dropout(pattern, p=dropout, training=module.training)
    out = torch.matmul(pattern, value).transpose(1, 2)
    return out, pattern


AttentionInterface.register("mechinterp_eager", _hooked_eager_attention)


# ------------------------------------------------------------------------------------- the session


class _Session:
    """The hooks and cache of one `hooks(...)` / `run_with_cache` context."""

    def __init__(self, hooks: dict[str, list[HookFn]], cache: ActivationCache | None,
                 cache_filter: Callable[[str], bool], detach: bool):
        self.hooks, self.cache, self.cache_filter, self.detach = hooks, cache, cache_filter, detach
        self.stash: dict[str, Tensor] = {}
        self.handles: list = []

    def wants(self, name: str) -> bool:
        return name in self.hooks or (self.cache is not None and self.cache_filter(name))

    def fire(self, name: str, act: Tensor) -> Tensor:
        for fn in self.hooks.get(name, ()):
            new = fn(act, HookPoint(name))
            if new is not None:
                if new.shape != act.shape:
                    raise ValueError(f"hook on {name} returned shape {list(new.shape)}, expected {list(act.shape)}")
                act = new
        if self.cache is not None and self.cache_filter(name):
            self.cache[name] = act.detach() if self.detach else act
        return act

    def fire_edited(self, name: str, act: Tensor) -> tuple[Tensor, bool]:
        """`fire`, and whether a hook changed the activation, by returning a new value or by editing it in place
        (TransformerLens' idiom): for hook points whose value the forward pass must rebuild when edited."""
        if name not in self.hooks:
            return self.fire(name, act), False
        before = act.clone()
        new = self.fire(name, act)
        return new, not torch.equal(new, before)


class _StopForward(Exception):
    """Raised by activation_at's hook to end a forward pass early."""


def _first(output):
    return output[0] if isinstance(output, tuple) else output


def _replace_first(output, new):
    return (new, *output[1:]) if isinstance(output, tuple) else new


# ----------------------------------------------------------------------------------- the wrapper


class HookedModel(nn.Module):
    """A GPT-2-architecture transformers model with named activations, caching and patching."""

    def __init__(self, hf_model: GPT2LMHeadModel, tokenizer=None, name: str = "", card: dict | None = None):
        super().__init__()
        self.hf = hf_model.eval()
        self.hf.set_attn_implementation("mechinterp_eager")
        self.tokenizer = tokenizer
        self.name = name
        self.card = card or {}
        cfg = hf_model.config
        self.n_layers, self.n_heads, self.d_model = cfg.n_layer, cfg.n_head, cfg.n_embd
        self.d_head, self.n_ctx, self.d_vocab = cfg.n_embd // cfg.n_head, cfg.n_positions, cfg.vocab_size
        self.attn_only = bool(getattr(cfg, "attn_only", False))
        self.hook_names = self._list_hook_names()
        self._session: _Session | None = None

    # ---- basic properties
    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

    @property
    def cfg(self):
        return self.hf.config

    def _list_hook_names(self) -> list[str]:
        names = ["hook_tokens", "hook_embed", "hook_pos_embed"]
        per_layer = ["hook_resid_pre", "ln1.hook_scale", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k",
                     "attn.hook_v",
                     "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z", "attn.hook_result",
                     "hook_attn_out", "hook_resid_mid"]
        if not self.attn_only:
            per_layer += ["ln2.hook_scale", "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out"]
        per_layer += ["hook_resid_post"]
        for layer in range(self.n_layers):
            names += [f"blocks.{layer}.{n}" for n in per_layer]
        return names + ["ln_final.hook_scale", "ln_final.hook_normalized",
                        "unembed.hook_in", "unembed.hook_out"]

    def check_hook_name(self, name: str) -> None:
        if name not in self.hook_names:
            raise KeyError(_unknown(name, self.hook_names, "hook name"))

    # ---- weights, split by head (TransformerLens conventions: x @ W; HF's Conv1D stores [in, out])
    @property
    def W_E(self) -> Tensor:
        return self.hf.transformer.wte.weight  # [d_vocab, d_model]

    @property
    def W_pos(self) -> Tensor:
        return self.hf.transformer.wpe.weight  # [n_ctx, d_model]

    @property
    def W_U(self) -> Tensor:
        return self.hf.lm_head.weight.T  # [d_model, d_vocab]

    @property
    def ln_final(self) -> nn.LayerNorm:
        return self.hf.transformer.ln_f

    def _qkv(self, layer: int, which: int) -> Tensor:
        W = self.hf.transformer.h[layer].attn.c_attn.weight  # [d_model, 3 * d_model]
        W = W[:, which * self.d_model : (which + 1) * self.d_model]
        return W.reshape(self.d_model, self.n_heads, self.d_head).permute(1, 0, 2)  # [head, d_model, d_head]

    def W_Q(self, layer: int) -> Tensor:
        return self._qkv(layer, 0)

    def W_K(self, layer: int) -> Tensor:
        return self._qkv(layer, 1)

    def W_V(self, layer: int) -> Tensor:
        return self._qkv(layer, 2)

    def _qkv_bias(self, layer: int, which: int) -> Tensor:
        b = self.hf.transformer.h[layer].attn.c_attn.bias[which * self.d_model : (which + 1) * self.d_model]
        return b.reshape(self.n_heads, self.d_head)  # [head, d_head]

    def b_Q(self, layer: int) -> Tensor:
        return self._qkv_bias(layer, 0)

    def b_K(self, layer: int) -> Tensor:
        return self._qkv_bias(layer, 1)

    def b_V(self, layer: int) -> Tensor:
        return self._qkv_bias(layer, 2)

    def W_in(self, layer: int) -> Tensor:
        return self.hf.transformer.h[layer].mlp.c_fc.weight  # [d_model, d_mlp]

    def b_in(self, layer: int) -> Tensor:
        return self.hf.transformer.h[layer].mlp.c_fc.bias  # [d_mlp]

    def W_out(self, layer: int) -> Tensor:
        return self.hf.transformer.h[layer].mlp.c_proj.weight  # [d_mlp, d_model]

    def b_out(self, layer: int) -> Tensor:
        return self.hf.transformer.h[layer].mlp.c_proj.bias  # [d_model]

    @property
    def b_U(self) -> Tensor:
        """[d_vocab]: GPT-2's unembedding has no bias, so zeros (TransformerLens's b_U for GPT-2 is zeros too)."""
        bias = self.hf.lm_head.bias
        return bias if bias is not None else torch.zeros(self.hf.lm_head.weight.shape[0],
                                                         device=self.hf.lm_head.weight.device)

    def W_O(self, layer: int) -> Tensor:
        W = self.hf.transformer.h[layer].attn.c_proj.weight  # [d_model (= head * d_head), d_model]
        return W.reshape(self.n_heads, self.d_head, self.d_model)  # [head, d_head, d_model]

    def b_O(self, layer: int) -> Tensor:
        return self.hf.transformer.h[layer].attn.c_proj.bias

    def _ln1_gain(self, layer: int) -> Tensor:
        return self.hf.transformer.h[layer].ln_1.weight[:, None]  # [d_model, 1]

    def W_OV(self, layer: int) -> Tensor:
        """[head, d_model, d_model] OV circuits W_V W_O, with the block's ln_1 gain folded into the input side
        (LayerNorm's centring and scale ignored, as in Elhage et al. 2021)."""
        return (self._ln1_gain(layer) * self.W_V(layer)) @ self.W_O(layer)

    def W_QK(self, layer: int) -> Tensor:
        """[head, d_model, d_model] QK circuits W_Q W_K^T (query side x rows, key side x columns), ln_1 gain
        folded in on both sides."""
        gain = self._ln1_gain(layer)
        return (gain * self.W_Q(layer)) @ (gain * self.W_K(layer)).transpose(-1, -2)

    # ---- tokens
    def to_tokens(self, text: str | list[str] | Tensor, prepend_bos: bool = True) -> Tensor:
        """Text (or a list of texts of equal token length) -> [batch, pos] token ids on the model's device."""
        if isinstance(text, Tensor):
            tokens = text if text.ndim == 2 else text[None]
        else:
            if self.tokenizer is None:
                raise ValueError(f"{self.name} has no tokenizer: pass token ids as a tensor")
            texts = [text] if isinstance(text, str) else list(text)
            bos = [self.cfg.bos_token_id] if prepend_bos else []
            rows = [bos + self.tokenizer.encode(t, add_special_tokens=False) for t in texts]
            if len({len(r) for r in rows}) != 1:
                raise ValueError("texts tokenize to different lengths; pass them one at a time or pad yourself")
            tokens = torch.tensor(rows)
        return tokens.to(self.device)

    def to_str_tokens(self, tokens: str | Tensor, prepend_bos: bool = True) -> list[str]:
        if isinstance(tokens, str):
            tokens = self.to_tokens(tokens, prepend_bos)
        ids = tokens.flatten().tolist() if tokens.ndim < 2 or tokens.shape[0] == 1 else tokens[0].tolist()
        if self.tokenizer is None:
            return [f"<{i}>" for i in ids]
        return [self.tokenizer.decode([i]) for i in ids]

    def _validate(self, tokens: Tensor) -> Tensor:
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.dtype not in (torch.long, torch.int, torch.int32, torch.int64):
            raise TypeError(f"tokens must be integer ids, got {tokens.dtype}")
        if tokens.shape[-1] > self.n_ctx:
            raise ValueError(f"sequence of {tokens.shape[-1]} tokens is longer than {self.name}'s context of "
                             f"{self.n_ctx}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.d_vocab):
            raise ValueError(f"token ids must lie in [0, {self.d_vocab}); got min {int(tokens.min())}, max "
                             f"{int(tokens.max())}")
        return tokens.long().to(self.device)

    # ---- running
    def forward(self, tokens: Tensor | str, attention_mask: Tensor | None = None) -> Tensor:
        """Logits [batch, pos, d_vocab] (runs the active hooks, if any)."""
        if isinstance(tokens, str):
            tokens = self.to_tokens(tokens)
        tokens = self._validate(tokens)
        if self._session is not None and self._session.wants("hook_tokens"):
            tokens = self._validate(self._session.fire("hook_tokens", tokens.clone()))  # never edit the caller's ids
        # explicit position ids, one row per sequence: hook_pos_embed is [batch, pos, d_model] as in
        # TransformerLens (transformers would compute [1, pos] and broadcast)
        positions = torch.arange(tokens.shape[-1], device=tokens.device).expand(tokens.shape[0], -1)
        return self.hf(tokens, attention_mask=attention_mask, position_ids=positions).logits

    @contextlib.contextmanager
    def hooks(self, fwd_hooks: Iterable[tuple[str, HookFn]] = (), cache: ActivationCache | None = None,
              names_filter: Callable[[str], bool] | None = None, detach: bool = True) -> Iterator[HookedModel]:
        """Run the model with hook functions `fn(activation, hook) -> new activation or None`.

        Contexts nest: an inner context adds its hooks after the outer ones (and may add a cache)."""
        table: dict[str, list[HookFn]] = {}
        outer = self._session
        if outer is not None:
            for name, fns in outer.hooks.items():
                table[name] = list(fns)
            if cache is None:
                cache, names_filter, detach = outer.cache, outer.cache_filter, outer.detach
        for name, fn in fwd_hooks:
            if callable(name):  # a name filter, as TransformerLens allows: every hook point it accepts
                for n in filter(name, self.hook_names):
                    table.setdefault(n, []).append(fn)
                continue
            self.check_hook_name(name)
            table.setdefault(name, []).append(fn)
        session = _Session(table, cache, names_filter or (lambda n: False), detach)
        if outer is not None:
            self._unregister(outer)
        self._register(session)
        self._session = session
        try:
            yield self
        finally:
            self._unregister(session)
            self._session = outer
            if outer is not None:
                self._register(outer)

    def reset_hooks(self) -> None:
        """Remove every hook this wrapper registered (TransformerLens' `reset_hooks()`). Contexts remove their
        own hooks on exit; this is for a context left open, e.g. after an interrupted notebook cell."""
        if self._session is not None:
            self._unregister(self._session)
            self._session = None

    def _unregister(self, session: _Session) -> None:
        for h in session.handles:
            h.remove()
        session.handles = []
        for block in self.hf.transformer.h:
            block.attn._mi_session = None

    def activation_at(self, tokens: Tensor, name: str) -> Tensor:
        """The activation `name` on `tokens`, computing only as far into the model as needed: the forward pass
        stops at that hook (e.g. an SAE's training data from a middle layer skips the later blocks and the
        unembedding)."""
        got: list[Tensor] = []

        def grab(act: Tensor, hp: HookPoint) -> None:
            got.append(act.detach())
            raise _StopForward

        try:
            self.run_with_hooks(tokens, [(name, grab)])
        except _StopForward:
            pass
        return got[0]

    def run_with_hooks(self, tokens: Tensor, fwd_hooks: Iterable[tuple[str, HookFn]]) -> Tensor:
        with self.hooks(fwd_hooks):
            return self(tokens)

    def run_with_cache(self, tokens: Tensor | str, names_filter: str | Sequence[str] | Callable[[str], bool] | None
                       = None, fwd_hooks: Iterable[tuple[str, HookFn]] = (), detach: bool = True
                       ) -> tuple[Tensor, ActivationCache]:
        """Logits and an ActivationCache of every hook point (or those `names_filter` selects)."""
        if names_filter is None:
            keep = lambda n: True  # noqa: E731
        elif callable(names_filter):
            keep = names_filter
        else:
            wanted = {names_filter} if isinstance(names_filter, str) else set(names_filter)
            for n in wanted:
                self.check_hook_name(n)
            keep = wanted.__contains__
        cache = ActivationCache()
        with self.hooks(fwd_hooks, cache=cache, names_filter=keep, detach=detach):
            logits = self(tokens)
        return logits, cache

    # ---- registration of the PyTorch hooks a session needs
    def _register(self, s: _Session) -> None:
        handles = s.handles
        t = self.hf.transformer

        def on_output(module: nn.Module, name: str):
            if s.wants(name):
                handles.append(module.register_forward_hook(
                    lambda m, args, out, name=name: _replace_first(out, s.fire(name, _first(out)))))

        on_output(t.wte, "hook_embed")
        on_output(t.wpe, "hook_pos_embed")
        for layer, block in enumerate(t.h):
            p = f"blocks.{layer}."
            block.attn._mi_session = s if (s.wants(p + "attn.hook_attn_scores") or s.wants(p + "attn.hook_pattern")) \
                else None
            handles.append(block.register_forward_pre_hook(self._resid_pre_hook(s, p), with_kwargs=True))
            self._ln_hooks(s, block.ln_1, p + "ln1.")
            if any(s.wants(p + f"attn.hook_{x}") for x in "qkv"):
                handles.append(block.attn.c_attn.register_forward_hook(self._qkv_hook(s, p)))
            if s.wants(p + "attn.hook_z") or s.wants(p + "attn.hook_result"):
                handles.append(block.attn.c_proj.register_forward_pre_hook(self._z_hook(s, p)))
            if s.wants(p + "attn.hook_result"):
                handles.append(block.attn.c_proj.register_forward_hook(self._result_hook(s, p, layer)))
            on_output(block.attn, p + "hook_attn_out")
            if s.wants(p + "hook_resid_mid"):
                handles.append(block.attn.register_forward_hook(self._resid_mid_hook(s, p)))
            if not self.attn_only:
                self._ln_hooks(s, block.ln_2, p + "ln2.")
                on_output(block.mlp.c_fc, p + "mlp.hook_pre")
                if s.wants(p + "mlp.hook_post"):
                    handles.append(block.mlp.c_proj.register_forward_pre_hook(
                        lambda m, args, name=p + "mlp.hook_post": (s.fire(name, args[0]), *args[1:])))
                on_output(block.mlp, p + "hook_mlp_out")
            on_output(block, p + "hook_resid_post")
        self._ln_hooks(s, t.ln_f, "ln_final.")
        if s.wants("unembed.hook_in"):
            handles.append(self.hf.lm_head.register_forward_pre_hook(
                lambda m, args: (s.fire("unembed.hook_in", args[0]), *args[1:])))
        on_output(self.hf.lm_head, "unembed.hook_out")

    @staticmethod
    def _ln_hooks(s: _Session, ln: nn.LayerNorm, prefix: str) -> None:
        """`hook_scale` and `hook_normalized` as TransformerLens 3.x computes them: the input centred, divided by
        sqrt(var + eps), BEFORE the gain and bias. Unedited, transformers' own LayerNorm output is kept."""
        scale_name, norm_name = prefix + "hook_scale", prefix + "hook_normalized"
        if not (s.wants(scale_name) or s.wants(norm_name)):
            return

        def hook(module, args, out):
            centred = args[0] - args[0].mean(-1, keepdim=True)
            scale, edited_scale = s.fire_edited(scale_name, (centred.pow(2).mean(-1, keepdim=True) + module.eps).sqrt())
            normalized, edited = s.fire_edited(norm_name, centred / scale)
            if not (edited or edited_scale):
                return None
            return normalized * module.weight + module.bias
        s.handles.append(ln.register_forward_hook(hook))

    @staticmethod
    def _resid_pre_hook(s: _Session, p: str):
        def hook(module, args, kwargs):
            if args:
                x = s.fire(p + "hook_resid_pre", args[0])
                args = (x, *args[1:])
            else:
                x = kwargs["hidden_states"] = s.fire(p + "hook_resid_pre", kwargs["hidden_states"])
            s.stash[p + "resid_pre"] = x  # the value the block's residual connection will add
            return args, kwargs
        return hook

    def _qkv_hook(self, s: _Session, p: str):
        def hook(module, args, out):
            heads = [x.reshape(*x.shape[:-1], self.n_heads, self.d_head) for x in out.split(self.d_model, dim=-1)]
            names = [p + f"attn.hook_{n}" for n in "qkv"]
            # hooks get copies: views of one split cannot be edited in place under autograd
            fired = [s.fire_edited(n, x.clone() if n in s.hooks else x) for n, x in zip(names, heads, strict=True)]
            if not any(edited for _, edited in fired):
                return None  # unchanged: leave transformers' tensor untouched
            return torch.cat([x.reshape(*x.shape[:-2], self.d_model) for x, _ in fired], dim=-1)
        return hook

    def _z_hook(self, s: _Session, p: str):
        def hook(module, args):
            z_in = args[0].reshape(*args[0].shape[:-1], self.n_heads, self.d_head)
            z = s.stash[p + "z"] = s.fire(p + "attn.hook_z", z_in)
            return None if z is z_in else (z.reshape(*z.shape[:-2], self.d_model),)
        return hook

    def _result_hook(self, s: _Session, p: str, layer: int):
        def hook(module, args, out):
            z = s.stash[p + "z"]  # [batch, pos, head, d_head]
            result = torch.einsum("bphd,hdm->bphm", z, self.W_O(layer))
            patched, edited = s.fire_edited(p + "attn.hook_result", result)
            return patched.sum(-2) + self.b_O(layer) if edited else out  # edited: rebuild from the heads
        return hook

    @staticmethod
    def _resid_mid_hook(s: _Session, p: str):
        def hook(module, args, out):
            resid_pre = s.stash[p + "resid_pre"]
            attn_out = _first(out)
            mid = attn_out + resid_pre  # the same sum, in the same order, as GPT2Block computes
            new_mid, edited = s.fire_edited(p + "hook_resid_mid", mid)
            return _replace_first(out, new_mid - resid_pre) if edited else out
        return hook


# ------------------------------------------------------------------------------ patching helpers


def _select(act: Tensor, name: str, pos, head) -> tuple:
    """Index into an activation by position and/or head, whatever the hook's layout."""
    index: list = [slice(None)] * act.ndim
    if pos is not None:
        index[2 if name.endswith(("hook_pattern", "hook_attn_scores")) else 1] = pos
    if head is not None:
        if not re.search(r"hook_(q|k|v|z|result|pattern|attn_scores)$", name):
            raise ValueError(f"{name} has no head axis")
        index[1 if name.endswith(("hook_pattern", "hook_attn_scores")) else 2] = head
    return tuple(index)


def patch(how: str, value: Tensor | Callable[[Tensor], Tensor] | None = None, pos=None, head=None) -> HookFn:
    """A hook function that replaces / adds to / zeroes / mean-ablates (part of) an activation.

    how: "replace" (value: e.g. the same activation from a clean cache), "add" (value added), "zero",
    "mean" (value: the mean activation to substitute, e.g. [head, d_head] for hook_z), or "apply" (value: a
    function of the activation). `value` broadcasts to the activation's full shape before pos / head select.
    pos / head: an index (int, slice, list or tensor) selecting
    positions / heads; everything else is left untouched."""
    if how not in ("replace", "add", "zero", "mean", "apply"):
        raise ValueError(f"unknown patch {how!r}: use replace, add, zero, mean or apply")

    def hook(act: Tensor, hp: HookPoint) -> Tensor:
        idx = _select(act, hp.name, pos, head)
        new = act.clone()
        if how == "zero":
            new[idx] = 0
        elif how == "apply":
            new[idx] = value(act[idx])
        else:  # replace / mean / add: `value` broadcasts to the whole activation, then is indexed like it
            v = torch.broadcast_to(value.to(act.device, act.dtype), act.shape)
            new[idx] = act[idx] + v[idx] if how == "add" else v[idx]
        return new

    return hook


def load_model(name: str, device: str | torch.device = "auto") -> HookedModel:
    """`"zoo/<name>"` loads a shipped zoo model (no network); a GPT-2-family hub name (e.g. "gpt2") loads
    from the Hugging Face hub when it is reachable and fails fast, naming the zoo model to use, when not."""
    if name.startswith("zoo/"):
        zoo_name = name.removeprefix("zoo/")
        if zoo_name not in zoo_names():
            raise KeyError(f"no zoo model {zoo_name!r}; the zoo has: "
                           f"{', '.join('zoo/' + n for n in zoo_names())}")
        hf, card = load_zoo_hf(zoo_name)
        model = HookedModel(hf, load_zoo_tokenizer(zoo_name), name, card)
    else:
        hf, tokenizer = load_hub_gpt2(name)
        model = HookedModel(hf, tokenizer, name)
    return model.to(get_device(device))


def randomly_initialised(model: HookedModel, seed: int = 0) -> HookedModel:
    """The same architecture (config, tokenizer, attention-only or not) with fresh random weights, drawn by
    transformers' own initialisation: the control for "does the model know it, or does the probe learn it?"."""
    hf = reinitialised_copy(model.hf, seed)
    if hf.config.tie_word_embeddings:
        hf.tie_weights()
    return HookedModel(hf, model.tokenizer, f"{model.name} (random init, seed {seed})", {})


def reinitialised_copy(hf_model: nn.Module, seed: int) -> nn.Module:
    """A deep copy of a transformers model with every weight re-drawn by its own `_init_weights` (seeded,
    without touching the global random state)."""
    hf = copy.deepcopy(hf_model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf.apply(hf._init_weights)
    return hf
