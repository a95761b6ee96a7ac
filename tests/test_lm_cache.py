"""Decoding the character language model with a key-value cache (``lm.prefill``, ``lm.decode_step``,
``lm.generate_cached``): the same logits as the full forward pass at every position, for every kind of
positions and with grouped-query attention; the same tokens as ``lm.generate``; against a reference built
on PyTorch's own ``scaled_dot_product_attention``; caches of the right shapes; bad input refused and no
input changed. Tiny sizes: the whole module runs in seconds."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attention_course import lm
from attention_course.efficient import KVCache
from attention_course.multihead import MultiHeadAttention, merge_heads, split_heads
from attention_course.positional import alibi_bias, rotary_embedding

VOCAB, D, H, LAYERS, FF, CONTEXT = 11, 16, 4, 2, 32, 12
E = D // H
KV_HEADS = (None, 2, 1)  # ordinary multi-head, grouped-query (G = 2), multi-query (G = 1)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread (two threads that wait for each other on a busy machine are 10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(positions: str = "rotary", kv_heads: int | None = None, seed: int = 0) -> lm.CharTransformerLM:
    """The chapter's model at toy size; ``kv_heads`` G swaps in grouped-query attention in every layer."""
    torch.manual_seed(seed)
    model = lm.CharTransformerLM(VOCAB, D, H, LAYERS, FF, CONTEXT, positions=positions)
    if kv_heads is not None:
        for layer in model.layers:
            layer.self_attn = MultiHeadAttention(D, H, rotary=positions == "rotary", alibi=positions == "alibi",
                                                 num_kv_heads=kv_heads)
    return model.eval()


def random_ids(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(seed))


def forward(model: lm.CharTransformerLM, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids)[0]  # (B, T, vocab_size)


# --------------------------------------------------------------------------- prefill


@pytest.mark.parametrize("positions", lm.POSITIONS)
@pytest.mark.parametrize("T", [1, 5, CONTEXT])
def test_prefill_gives_the_forward_logits_and_one_cache_per_layer(positions, T):
    model = tiny_model(positions)
    ids = random_ids(3, T)
    logits, caches = lm.prefill(model, ids)
    assert logits.shape == (3, T, VOCAB)
    torch.testing.assert_close(logits, forward(model, ids), atol=1e-5, rtol=0)
    assert len(caches) == LAYERS and all(isinstance(c, KVCache) for c in caches)
    assert all(c.keys.shape == c.values.shape == (3, H, T, E) and c.length == T for c in caches)


@pytest.mark.parametrize("kv_heads", KV_HEADS)
def test_the_cache_holds_the_rotated_keys_and_the_values_of_each_layer(kv_heads):
    model = tiny_model("rotary", kv_heads)
    G = H if kv_heads is None else kv_heads
    ids = random_ids(2, 7)
    _, caches = lm.prefill(model, ids)
    with torch.no_grad():
        x = model.embedding(ids)  # (B, T, D): the first layer's input
        attn = model.layers[0].self_attn
        h = model.layers[0].norm1(x)
        keys = rotary_embedding(split_heads(attn.k_proj(h), G))  # (B, G, T, E), rotated by 0..T-1
        values = split_heads(attn.v_proj(h), G)  # (B, G, T, E), not rotated
    assert caches[0].keys.shape == (2, G, 7, E)
    torch.testing.assert_close(caches[0].keys, keys, atol=1e-6, rtol=0)
    torch.testing.assert_close(caches[0].values, values, atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- decode steps


@pytest.mark.parametrize("positions", lm.POSITIONS)
@pytest.mark.parametrize("kv_heads", KV_HEADS)
@pytest.mark.parametrize("prompt", [1, 4])
def test_each_decode_step_gives_the_forward_logits_at_its_position(positions, kv_heads, prompt):
    model = tiny_model(positions, kv_heads)
    G = H if kv_heads is None else kv_heads
    ids = random_ids(3, CONTEXT, seed=1)
    full = forward(model, ids)  # (B, T, vocab_size): every position at once
    logits, caches = lm.prefill(model, ids[:, :prompt])
    rows = [logits]
    for t in range(prompt, CONTEXT):  # fill the whole window, one token at a time
        logits, caches = lm.decode_step(model, ids[:, t:t + 1], caches)
        assert logits.shape == (3, 1, VOCAB)
        assert all(c.keys.shape == (3, G, t + 1, E) for c in caches)
        rows.append(logits)
    torch.testing.assert_close(torch.cat(rows, dim=1), full, atol=1e-5, rtol=0)


def test_decode_steps_match_a_forward_pass_where_the_positions_matter():
    """Two sequences that differ only in where a pattern sits: the steps must place it as the forward pass does."""
    model = tiny_model("alibi")
    a = random_ids(1, CONTEXT, seed=2)
    b = torch.roll(a, 3, dims=1)
    for ids in (a, b):
        _, caches = lm.prefill(model, ids[:, :2])
        for t in range(2, CONTEXT):
            logits, caches = lm.decode_step(model, ids[:, t:t + 1], caches)
        torch.testing.assert_close(logits[:, 0], forward(model, ids)[:, -1], atol=1e-5, rtol=0)


def test_post_norm_layers_decode_too():
    model = tiny_model("learned")
    for layer in model.layers:
        layer.norm_first = False
    ids = random_ids(2, CONTEXT, seed=3)
    logits, caches = lm.prefill(model, ids[:, :3])
    rows = [logits]
    for t in range(3, CONTEXT):
        logits, caches = lm.decode_step(model, ids[:, t:t + 1], caches)
        rows.append(logits)
    torch.testing.assert_close(torch.cat(rows, dim=1), forward(model, ids), atol=1e-5, rtol=0)


def reference_logits(model: lm.CharTransformerLM, ids: torch.Tensor) -> torch.Tensor:
    """The model's forward pass written on PyTorch's ``F.scaled_dot_product_attention`` (causal, GQA, ALiBi)."""
    B, T = ids.shape
    x = model.embedding(ids)
    if model.positions is not None:
        x = x + model.positions.embedding.weight[:T]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for layer in model.layers:
        attn = layer.self_attn
        Hq, G = attn.num_heads, attn.num_kv_heads
        h = layer.norm1(x)
        q, k, v = split_heads(attn.q_proj(h), Hq), split_heads(attn.k_proj(h), G), split_heads(attn.v_proj(h), G)
        if attn.rotary:
            q, k = rotary_embedding(q), rotary_embedding(k)
        if attn.alibi:  # a float attn_mask is added to the scores: the bias, -inf above the diagonal
            bias = alibi_bias(Hq, T, T).masked_fill(~causal, float("-inf"))[None]
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, enable_gqa=G < Hq)
        else:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=G < Hq)
        x = x + attn.out_proj(merge_heads(out))
        x = x + layer.feed_forward(layer.norm2(x))
    return model.output(model.norm(x))


@pytest.mark.parametrize("positions", lm.POSITIONS)
@pytest.mark.parametrize("kv_heads", [None, 2])
def test_decoding_agrees_with_a_reference_on_pytorch_sdpa(positions, kv_heads):
    model = tiny_model(positions, kv_heads)
    ids = random_ids(2, CONTEXT, seed=4)
    with torch.no_grad():
        reference = reference_logits(model, ids)
    logits, caches = lm.prefill(model, ids[:, :1])
    rows = [logits]
    for t in range(1, CONTEXT):
        logits, caches = lm.decode_step(model, ids[:, t:t + 1], caches)
        rows.append(logits)
    torch.testing.assert_close(torch.cat(rows, dim=1), reference, atol=1e-5, rtol=0)


def test_one_step_attention_is_pytorch_sdpa_of_one_query_over_the_cache():
    """Inside a step: the new token's query against every cached key, no mask needed (all are in the past)."""
    model = tiny_model("rotary")
    ids = random_ids(1, 9, seed=5)
    _, caches = lm.prefill(model, ids[:, :8])
    _, longer = lm.decode_step(model, ids[:, 8:9], caches)
    with torch.no_grad():
        x = model.embedding(ids[:, 8:9])  # (1, 1, D)
        attn = model.layers[0].self_attn
        h = model.layers[0].norm1(x)
        q = rotary_embedding(split_heads(attn.q_proj(h), H), torch.tensor([8]))  # the query at position 8
        out = F.scaled_dot_product_attention(q, longer[0].keys, longer[0].values)  # (1, H, 1, E)
        scores = (q @ longer[0].keys.transpose(-2, -1)) / E**0.5  # (1, H, 1, 9)
        ours = scores.softmax(-1) @ longer[0].values
    torch.testing.assert_close(ours, out, atol=1e-6, rtol=0)
    torch.testing.assert_close(longer[0].keys[:, :, :8], caches[0].keys)  # the old keys are untouched


# --------------------------------------------------------------------------- generation


@pytest.mark.parametrize("positions", lm.POSITIONS)
@pytest.mark.parametrize("kwargs", [dict(temperature=0), dict(temperature=1.0), dict(temperature=0.7, top_k=4),
                                    dict(temperature=1.3, top_p=0.8)])
def test_generate_cached_gives_the_tokens_of_generate(positions, kwargs):
    model = tiny_model(positions, seed=6)
    prompts = random_ids(4, 3, seed=7)
    n = CONTEXT - 3 + 1  # the longest run that stays in the window: T0 + n - 1 = context
    for seed in (0, 1):
        plain = lm.generate(model, prompts, n, seed=seed, **kwargs)
        cached = lm.generate_cached(model, prompts, n, seed=seed, **kwargs)
        assert cached.shape == (4, n) and torch.equal(cached, plain)
    single = lm.generate_cached(model, prompts[0], 5, seed=0, **kwargs)  # (T0,) -> (n,)
    assert single.shape == (5,) and torch.equal(single, lm.generate(model, prompts[0], 5, seed=0, **kwargs))


def test_generate_cached_with_grouped_query_attention():
    model = tiny_model("rotary", kv_heads=1, seed=8)
    prompt = random_ids(2, 4, seed=9)
    assert torch.equal(lm.generate_cached(model, prompt, 9, seed=2), lm.generate(model, prompt, 9, seed=2))


def test_sampled_generation_depends_on_the_seed():
    model = tiny_model("rotary", seed=10)
    prompt = random_ids(3, 2, seed=11)
    a, b = (lm.generate_cached(model, prompt, 10, seed=s) for s in (0, 1))
    assert torch.equal(a, lm.generate_cached(model, prompt, 10, seed=0)) and not torch.equal(a, b)


def test_beyond_the_window_generate_cached_refuses_where_generate_slides():
    model = tiny_model("rotary")
    prompt = random_ids(1, 4)
    n = CONTEXT - 4 + 2  # T0 + n - 1 = context + 1: one position past the window
    assert lm.generate(model, prompt, n).shape == (1, n)  # generate slides its window
    with pytest.raises(ValueError, match=r"T0 \+ n - 1 = 13 positions, more than its context=12.*slides"):
        lm.generate_cached(model, prompt, n)


# --------------------------------------------------------------------------- bad input, and nothing changed


def test_decode_step_refuses_a_full_window():
    model = tiny_model("learned")
    _, caches = lm.prefill(model, random_ids(1, CONTEXT))
    with pytest.raises(ValueError, match=r"t=12 positions, the model's whole context=12"):
        lm.decode_step(model, random_ids(1, 1), caches)


def test_prefill_refuses_bad_ids():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"ids \(B, T\) = \(1, 13\) must have 1 <= T <= context=12"):
        lm.prefill(model, random_ids(1, CONTEXT + 1))
    with pytest.raises(ValueError, match=r"must be \(B, T\), got shape \(5,\)"):
        lm.prefill(model, random_ids(5))
    with pytest.raises(ValueError, match="long"):
        lm.prefill(model, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="outside a vocabulary of 11"):
        lm.prefill(model, torch.full((1, 3), VOCAB))
    with pytest.raises(ValueError, match="must be a CharTransformerLM"):
        lm.prefill(torch.nn.Linear(2, 2), random_ids(1, 3))


def test_decode_step_refuses_bad_tokens_and_caches():
    model = tiny_model("rotary", kv_heads=2)
    _, caches = lm.prefill(model, random_ids(2, 4))
    token = random_ids(2, 1)
    with pytest.raises(ValueError, match=r"one new token per row, \(B, 1\), got shape \(2, 2\)"):
        lm.decode_step(model, random_ids(2, 2), caches)
    with pytest.raises(ValueError, match=r"must be \(B, T\), got shape \(2,\)"):
        lm.decode_step(model, token[:, 0], caches)
    with pytest.raises(ValueError, match="a list of 2 KVCache, one per layer"):
        lm.decode_step(model, token, caches[:1])
    with pytest.raises(ValueError, match="a list of 2 KVCache"):
        lm.decode_step(model, token, None)
    with pytest.raises(ValueError, match=r"caches\[1\] must be a KVCache, got Tensor"):
        lm.decode_step(model, token, [caches[0], caches[1].keys])
    with pytest.raises(ValueError, match=r"caches\[0\] holds keys \(2, 2, 4, 4\), expected \(B, G, t, D/H\) = "
                                         r"\(3, 2, 4, 4\)"):
        lm.decode_step(model, random_ids(3, 1), caches)
    full_heads = KVCache(caches[0].keys.repeat(1, 2, 1, 1), caches[0].values.repeat(1, 2, 1, 1))  # G = 4
    with pytest.raises(ValueError, match=r"expected \(B, G, t, D/H\) = \(2, 2, 4, 4\)"):
        lm.decode_step(model, token, [full_heads, caches[1]])
    shorter = KVCache(caches[1].keys[:, :, :3], caches[1].values[:, :, :3])
    with pytest.raises(ValueError, match=r"the same number of positions, got \[3, 4\]"):
        lm.decode_step(model, token, [caches[0], shorter])
    doubles = [KVCache(c.keys.double(), c.values.double()) for c in caches]
    with pytest.raises(ValueError, match="float64 but the model is torch.float32"):
        lm.decode_step(model, token, doubles)


def test_generate_cached_refuses_bad_arguments():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"\(T0,\) or \(B, T0\)"):
        lm.generate_cached(model, torch.zeros(1, 1, 3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"\(T0,\) or \(B, T0\)"):
        lm.generate_cached(model, torch.zeros(2, 0, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="n must be a positive int"):
        lm.generate_cached(model, random_ids(3), 0)
    with pytest.raises(ValueError, match="temperature"):
        lm.generate_cached(model, random_ids(3), 2, temperature=-1.0)


def test_no_input_is_changed():
    model = tiny_model("alibi", kv_heads=2).train()  # training mode, to see it restored
    state = {k: v.clone() for k, v in model.state_dict().items()}
    ids = random_ids(2, 6)
    ids_before = ids.clone()
    _, caches = lm.prefill(model, ids)
    kept = [(c.keys.clone(), c.values.clone()) for c in caches]
    token = random_ids(2, 1, seed=1)
    token_before = token.clone()
    _, longer = lm.decode_step(model, token, caches)
    lm.generate_cached(model, ids, 5, seed=0)
    assert torch.equal(ids, ids_before) and torch.equal(token, token_before)
    assert all(c.length == 6 and torch.equal(c.keys, k) and torch.equal(c.values, v)
               for c, (k, v) in zip(caches, kept))  # the caches passed in still hold 6 positions
    assert all(c.length == 7 for c in longer)
    assert model.training  # generate_cached restored the mode
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert not any(c.keys.requires_grad for c in longer)  # decoding keeps no autograd graph
