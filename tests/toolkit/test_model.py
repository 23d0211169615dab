"""The hooks API is faithful: cached activations recompose the model's own computation, patches do exactly
what they say, and bad input gets a clear error. Run on random-weight GPT-2 models built from configs (the
same adapter code loads the zoo and the hub)."""

from __future__ import annotations

import pytest
import torch
from mechinterp.course.toolkit.model import HookedModel, load_model, patch
from mechinterp.course.toolkit.zoo import make_attn_only
from transformers import GPT2Config, GPT2LMHeadModel


def make(attn_only: bool = False, n_layer: int = 3, seed: int = 0) -> HookedModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=61, n_positions=24, n_embd=32, n_layer=n_layer, n_head=4, resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0, attn_only=attn_only)
    hf = GPT2LMHeadModel(cfg)
    if attn_only:
        make_attn_only(hf)
    with torch.no_grad():  # GPT-2 initialises biases at 0: make them non-zero so the tests see them
        for name, p in hf.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return HookedModel(hf, name="random")


@pytest.fixture(params=[False, True], ids=["with-mlp", "attn-only"])
def model(request):
    return make(request.param)


TOKENS = torch.randint(0, 61, (3, 20), generator=torch.Generator().manual_seed(1))


def test_cache_has_every_hook_with_documented_shapes(model):
    logits, cache = model.run_with_cache(TOKENS)
    assert set(cache) == set(model.hook_names)
    b, p, h, dh, d = 3, 20, 4, 8, 32
    assert cache["blocks.0.attn.hook_q"].shape == (b, p, h, dh)
    assert cache["blocks.0.attn.hook_pattern"].shape == (b, h, p, p)
    assert cache["blocks.0.attn.hook_z"].shape == (b, p, h, dh)
    assert cache["blocks.0.attn.hook_result"].shape == (b, p, h, d)
    assert cache["blocks.2.hook_resid_post"].shape == (b, p, d)
    assert cache.stack("hook_resid_post").shape == (3, b, p, d)
    assert logits.shape == (b, p, 61)


def test_cache_recomposes_the_forward_pass(model):
    logits, c = model.run_with_cache(TOKENS)
    assert torch.equal(logits, model(TOKENS))  # caching changes nothing
    assert torch.equal(c["hook_embed"] + c["hook_pos_embed"], c["blocks.0.hook_resid_pre"])
    for layer in range(model.n_layers):
        p = f"blocks.{layer}."
        heads = c[p + "attn.hook_result"].sum(-2) + model.b_O(layer)
        torch.testing.assert_close(heads, c[p + "hook_attn_out"], atol=1e-5, rtol=1e-5)
        assert torch.equal(c[p + "hook_resid_mid"], c[p + "hook_resid_pre"] + c[p + "hook_attn_out"])
        if layer + 1 < model.n_layers:
            assert torch.equal(c[p + "hook_resid_post"], c[f"blocks.{layer + 1}.hook_resid_pre"])
        pattern = c[p + "attn.hook_pattern"]
        torch.testing.assert_close(pattern.sum(-1), torch.ones(pattern.shape[:-1]))
        assert float(pattern.triu(1).abs().max()) == 0.0  # causal
        v = c[p + "attn.hook_v"]
        torch.testing.assert_close(c[p + "attn.hook_z"], torch.einsum("bhqk,bkhd->bqhd", pattern, v))
        ln1 = model.hf.transformer.h[layer].ln_1
        x = c[p + "ln1.hook_normalized"] * ln1.weight + ln1.bias  # hook_normalized is before the affine
        q = torch.einsum("bpm,hmd->bphd", x, model.W_Q(layer))
        q = q + model.hf.transformer.h[layer].attn.c_attn.bias[: model.d_model].reshape(model.n_heads, -1)
        torch.testing.assert_close(q, c[p + "attn.hook_q"], atol=1e-5, rtol=1e-5)
    if model.attn_only:
        assert torch.equal(c["blocks.0.hook_resid_post"], c["blocks.0.hook_resid_mid"])
    else:
        torch.testing.assert_close(c["blocks.0.hook_resid_mid"] + c["blocks.0.hook_mlp_out"],
                                   c["blocks.0.hook_resid_post"])
    final = c["ln_final.hook_normalized"] * model.ln_final.weight + model.ln_final.bias
    torch.testing.assert_close(final @ model.W_U, logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c["unembed.hook_in"], final, atol=1e-5, rtol=1e-5)
    assert torch.equal(c["unembed.hook_out"], logits) and torch.equal(c["hook_tokens"], TOKENS)
    resid = c.stack("hook_resid_post")[-1]  # LayerNorm recomposed from hook_scale: TransformerLens 3.x's split
    centred = resid - resid.mean(-1, keepdim=True)
    torch.testing.assert_close(c["ln_final.hook_normalized"] * c["ln_final.hook_scale"], centred, atol=1e-5,
                               rtol=1e-5)


def test_matches_transformers_own_attention(model):
    reference = GPT2LMHeadModel(model.cfg)
    if model.attn_only:
        make_attn_only(reference)
    reference.load_state_dict(model.hf.state_dict())
    reference.set_attn_implementation("sdpa")
    torch.testing.assert_close(model(TOKENS), reference.eval()(TOKENS).logits, atol=1e-5, rtol=1e-5)


def test_noop_patches_everywhere_leave_logits_bit_identical(model):
    clean = model(TOKENS)
    hooks = [(n, lambda act, hook: act) for n in model.hook_names] + [(n, lambda a, h: None) for n in model.hook_names]
    with model.hooks(hooks):
        assert torch.equal(model(TOKENS), clean)


def test_patching_a_clean_cache_restores_clean_logits(model):
    corrupt = TOKENS.flip(-1)
    clean_logits, clean = model.run_with_cache(TOKENS)
    assert not torch.allclose(model(corrupt), clean_logits)
    # the whole residual stream at the start: exactly the clean run
    with model.hooks([("blocks.0.hook_resid_pre", patch("replace", clean["blocks.0.hook_resid_pre"]))]):
        assert torch.equal(model(corrupt), clean_logits)
    # the last block's output: exactly the clean logits
    last = f"blocks.{model.n_layers - 1}.hook_resid_post"
    with model.hooks([(last, patch("replace", clean[last]))]):
        assert torch.equal(model(corrupt), clean_logits)
    # every head's output, MLP output and the embeddings: the clean run up to float reassociation
    names = ["hook_embed", "hook_pos_embed"] + [f"blocks.{l}.attn.hook_result" for l in range(model.n_layers)]
    if not model.attn_only:
        names += [f"blocks.{l}.hook_mlp_out" for l in range(model.n_layers)]
    with model.hooks([(n, patch("replace", clean[n])) for n in names]):
        torch.testing.assert_close(model(corrupt), clean_logits, atol=1e-5, rtol=1e-5)
    with model.hooks([(f"blocks.{l}.hook_resid_mid", patch("replace", clean[f"blocks.{l}.hook_resid_mid"]))
                      for l in range(model.n_layers)]):
        torch.testing.assert_close(model(corrupt), clean_logits, atol=1e-5, rtol=1e-5)


def test_patch_modes_touch_only_what_they_select(model):
    _, base = model.run_with_cache(TOKENS)
    name = "blocks.1.attn.hook_z"
    with model.hooks([(name, patch("zero", head=2))]):
        _, c = model.run_with_cache(TOKENS, names_filter=[name, "blocks.1.attn.hook_result"])
    assert float(c[name][:, :, 2].abs().max()) == 0 and torch.equal(c[name][:, :, :2], base[name][:, :, :2])
    assert float(c["blocks.1.attn.hook_result"][:, :, 2].abs().max()) == 0
    mean = base["blocks.0.hook_attn_out"].mean((0, 1))
    with model.hooks([("blocks.0.hook_attn_out", patch("mean", mean, pos=5))]):
        _, c = model.run_with_cache(TOKENS, names_filter="blocks.0.hook_attn_out")
    assert torch.equal(c["blocks.0.hook_attn_out"][:, 5], mean.expand(3, -1))
    assert torch.equal(c["blocks.0.hook_attn_out"][:, 4], base["blocks.0.hook_attn_out"][:, 4])
    delta = torch.ones(32)
    with model.hooks([("blocks.0.hook_resid_pre", patch("add", delta))]):
        _, c = model.run_with_cache(TOKENS, names_filter="blocks.0.hook_resid_pre")
    torch.testing.assert_close(c["blocks.0.hook_resid_pre"], base["blocks.0.hook_resid_pre"] + 1)
    with model.hooks([("blocks.0.attn.hook_pattern", patch("apply", lambda p: p * 0, head=[0, 1]))]):
        _, c = model.run_with_cache(TOKENS, names_filter=["blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z"])
    assert float(c["blocks.0.attn.hook_z"][:, :, :2].abs().max()) == 0


def test_bad_input_gets_clear_errors(model):
    with pytest.raises(KeyError, match="Did you mean 'blocks.0.attn.hook_pattern'"):
        model.run_with_cache(TOKENS, names_filter="blocks.0.attn.hook_patern")
    with pytest.raises(KeyError, match="unknown hook name"):
        with model.hooks([("blocks.9.hook_resid_pre", lambda a, h: a)]):
            pass
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 61\)"):
        model(torch.tensor([[1, 2, 61]]))
    with pytest.raises(ValueError, match="longer than"):
        model(torch.zeros(1, 25, dtype=torch.long))
    with pytest.raises(TypeError, match="integer ids"):
        model(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="returned shape"):
        with model.hooks([("blocks.0.hook_resid_pre", lambda a, h: a[:, :1])]):
            model(TOKENS)


def test_unknown_zoo_model_lists_the_zoo():
    with pytest.raises(KeyError, match="no zoo model 'nope'; the zoo has"):
        load_model("zoo/nope")


def test_hub_fails_fast_and_names_the_zoo_model_offline():
    from mechinterp.course.toolkit.hub import HubUnavailable, _in_local_cache, _reachable

    if _in_local_cache("gpt2") or _reachable("gpt2") is None:
        pytest.skip("the Hugging Face hub is reachable here; the offline path cannot be exercised")
    from mechinterp.course.toolkit.hub import HUB_TIMEOUT_S

    assert HUB_TIMEOUT_S <= 5  # fail fast: one short probe, not transformers' retries (no wall-clock assertion)
    with pytest.raises(HubUnavailable, match=r"load_model\('zoo/text-lm'\)"):
        load_model("gpt2")


def test_per_head_weights_reproduce_attention(model):
    _, c = model.run_with_cache(TOKENS)
    layer = 1
    z = c[f"blocks.{layer}.attn.hook_z"]
    result = torch.einsum("bphd,hdm->bphm", z, model.W_O(layer))
    torch.testing.assert_close(result, c[f"blocks.{layer}.attn.hook_result"])
    assert model.W_Q(0).shape == (4, 32, 8) and model.W_O(0).shape == (4, 8, 32) and model.W_U.shape == (32, 61)
    # W_QK reproduces the attention scores from the normalised input (on a copy without LN / q / k biases,
    # which the circuit, like Elhage et al.'s, leaves out)
    plain = make(model.attn_only)
    with torch.no_grad():
        plain.hf.transformer.h[layer].ln_1.bias.zero_()
        plain.hf.transformer.h[layer].ln_1.weight.uniform_(0.5, 1.5)  # a non-trivial gain to fold in
        plain.hf.transformer.h[layer].attn.c_attn.bias[:64] = 0
    _, c0 = plain.run_with_cache(TOKENS, names_filter=lambda n: n.startswith(f"blocks.{layer}."))
    x = c0[f"blocks.{layer}.ln1.hook_normalized"]  # before the gain, as the folded circuit expects
    scores = torch.einsum("bqm,hmn,bkn->bhqk", x, plain.W_QK(layer), x) / 8**0.5
    causal = torch.ones(20, 20, dtype=torch.bool).tril()
    torch.testing.assert_close(scores[..., causal], c0[f"blocks.{layer}.attn.hook_attn_scores"][..., causal],
                               atol=1e-4, rtol=1e-4)
    assert model.W_OV(layer).shape == (4, 32, 32)


def test_gpt2_small_architecture_through_the_same_adapter():
    """What load_model("gpt2") returns online: GPT-2 small's exact architecture (random weights here)."""
    torch.manual_seed(0)
    model = HookedModel(GPT2LMHeadModel(GPT2Config()), name="gpt2-architecture")
    assert (model.n_layers, model.n_heads, model.d_model, model.d_head, model.d_vocab) == (12, 12, 768, 64, 50257)
    tokens = torch.randint(0, 50257, (1, 8))
    logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n.startswith("blocks.11."))
    heads = cache["blocks.11.attn.hook_result"].sum(-2) + model.b_O(11)
    torch.testing.assert_close(heads, cache["blocks.11.hook_attn_out"], atol=1e-4, rtol=1e-4)
    assert logits.shape == (1, 8, 50257)


def test_activation_at_stops_early_and_matches_the_cache():
    from mechinterp.course.toolkit.model import load_model

    model = load_model("zoo/text-lm", "cpu")
    tokens = torch.randint(0, 4096, (2, 16), generator=torch.Generator().manual_seed(0))
    _, cache = model.run_with_cache(tokens, names_filter=["blocks.1.hook_resid_pre"])
    seen = []
    handle = model.hf.lm_head.register_forward_hook(lambda *a: seen.append(1))
    got = model.activation_at(tokens, "blocks.1.hook_resid_pre")
    handle.remove()
    assert torch.equal(got, cache["blocks.1.hook_resid_pre"])
    assert not seen  # the unembedding never ran
    assert torch.equal(model(tokens), model.hf(tokens).logits)  # no hook left behind


def test_in_place_edits_count_like_returned_ones_at_every_hook_point(model):
    """TransformerLens' idiom: a hook may edit its tensor in place and return it, or return None. Every hook
    point must then change the forward pass (and the cache) exactly as returning an edited copy does."""
    tokens = torch.randint(0, model.d_vocab, (2, 7), generator=torch.Generator().manual_seed(1))
    clean = model(tokens)

    def returned(act, hook):
        return act // 2 if hook.name == "hook_tokens" else act * 0.5

    def in_place(act, hook):
        act.floor_divide_(2) if hook.name == "hook_tokens" else act.mul_(0.5)

    def in_place_returned(act, hook):
        in_place(act, hook)
        return act

    for name in model.hook_names:
        expected, expected_cache = model.run_with_cache(tokens, names_filter=[name], fwd_hooks=[(name, returned)])
        assert not torch.allclose(expected, clean), name  # the edit matters at this point
        for fn in (in_place, in_place_returned):
            logits, cache = model.run_with_cache(tokens, names_filter=[name], fwd_hooks=[(name, fn)])
            torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5, msg=f"{name}: {fn.__name__}")
            torch.testing.assert_close(cache[name], expected_cache[name], rtol=1e-5, atol=1e-5)


def test_transformerlens_hook_conventions(model):
    tokens = torch.randint(0, model.d_vocab, (2, 5), generator=torch.Generator().manual_seed(2))
    seen = []

    def record(act, hook):
        seen.append((hook.name, hook.layer()))

    # a name filter given as a function, as TransformerLens accepts it
    model.run_with_hooks(tokens, [(lambda n: n.endswith("attn.hook_z"), record)])
    assert seen == [(f"blocks.{layer}.attn.hook_z", layer) for layer in range(model.n_layers)]
    with pytest.raises(ValueError, match="no layer"):
        model.run_with_hooks(tokens, [("hook_embed", lambda act, hook: hook.layer())])
    # reset_hooks removes hooks left behind by a context that was never closed
    clean = model(tokens)
    context = model.hooks([("blocks.0.hook_resid_pre", patch("zero"))])
    context.__enter__()
    assert not torch.allclose(model(tokens), clean)  # the stale hook is active
    model.reset_hooks()
    assert torch.equal(model(tokens), clean)


def test_per_layer_biases_and_mlp_weights_reproduce_the_hooked_activations():
    """b_Q/b_K/b_V, W_in/b_in/W_out/b_out and b_U in TransformerLens's shapes, checked against the forward pass."""
    import torch
    from mechinterp.course.toolkit.model import load_model

    model = load_model("zoo/facts-lm-v2", "cpu")
    tokens = torch.randint(1, model.d_vocab, (2, 6), generator=torch.Generator().manual_seed(0))
    layer = 1
    names = [f"blocks.{layer}.ln1.hook_normalized", f"blocks.{layer}.attn.hook_q", f"blocks.{layer}.attn.hook_v",
             f"blocks.{layer}.ln2.hook_normalized", f"blocks.{layer}.mlp.hook_pre", f"blocks.{layer}.hook_mlp_out"]
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens, names_filter=names)
        block = model.hf.transformer.h[layer]  # hook_normalized is before each LayerNorm's gain and bias
        x1 = cache[names[0]] * block.ln_1.weight + block.ln_1.bias
        x2 = cache[names[3]] * block.ln_2.weight + block.ln_2.bias
        q = torch.einsum("bpd,hde->bphe", x1, model.W_Q(layer)) + model.b_Q(layer)
        v = torch.einsum("bpd,hde->bphe", x1, model.W_V(layer)) + model.b_V(layer)
        pre = x2 @ model.W_in(layer) + model.b_in(layer)
        out = model.hf.transformer.h[layer].mlp.act(pre) @ model.W_out(layer) + model.b_out(layer)
    assert model.b_K(layer).shape == (model.n_heads, model.d_head)
    torch.testing.assert_close(q, cache[names[1]])
    torch.testing.assert_close(v, cache[names[2]])
    torch.testing.assert_close(pre, cache[names[4]])
    torch.testing.assert_close(out, cache[names[5]])
    assert model.b_U.shape == (model.d_vocab,) and not model.b_U.any()


def test_hook_pos_embed_has_a_batch_axis_and_patching_one_row_changes_only_that_row():
    import torch
    from mechinterp.course.toolkit.model import load_model

    model = load_model("zoo/attn-only-2l", "cpu")
    tokens = torch.randint(0, model.d_vocab, (3, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens, names_filter=["hook_pos_embed"])
        assert cache["hook_pos_embed"].shape == (3, 10, model.d_model)
        assert torch.equal(cache["hook_pos_embed"][0], model.W_pos[:10])

        def zero_row_1(act, hook):
            act = act.clone()
            act[1] = 0
            return act

        with model.hooks([("hook_pos_embed", zero_row_1)]):
            edited = model(tokens)
    assert torch.equal(edited[[0, 2]], logits[[0, 2]]) and not torch.allclose(edited[1], logits[1])
