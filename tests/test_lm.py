"""The character-level language model (``attention_course.lm``): causal, shaped right, its
attention equal to PyTorch's, baselines equal to counting by hand, sampling reproducible,
head scores as defined, and bad input refused. Tiny sizes: the whole module runs in seconds."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attention_course import lm
from attention_course.masks import causal_mask
from attention_course.multihead import split_heads
from attention_course.positional import rotary_embedding

VOCAB, D, H, LAYERS, FF, CONTEXT = 11, 16, 2, 2, 32, 12


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread (two threads that wait for each other on a busy machine are 10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(positions: str = "learned", seed: int = 0) -> lm.CharTransformerLM:
    torch.manual_seed(seed)
    return lm.CharTransformerLM(VOCAB, D, H, LAYERS, FF, CONTEXT, positions=positions).eval()


def random_ids(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- vocabulary and data


def test_vocab_round_trip_and_sorted_ids():
    text = "To be, or not to be:\nthat is the question."
    vocab = lm.CharVocab.from_text(text)
    assert vocab.itos == sorted(set(text)) and len(vocab) == len(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == torch.long and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert vocab.decode(ids.tolist()) == text  # a list of ints too
    assert vocab.encode("").shape == (0,)


def test_vocab_refuses_unknown_characters_and_ids():
    vocab = lm.CharVocab.from_text("abc")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("abz")
    with pytest.raises(ValueError, match="outside a vocabulary of 3"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match=r"\(T,\)"):
        vocab.decode(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="duplicates"):
        lm.CharVocab(["a", "a"])
    with pytest.raises(ValueError):
        lm.CharVocab.from_text("")


def test_split_is_contiguous():
    ids = torch.arange(100)
    train, val = lm.split(ids, 0.9)
    assert torch.equal(train, ids[:90]) and torch.equal(val, ids[90:])
    with pytest.raises(ValueError, match="train_fraction"):
        lm.split(ids, 1.0)
    with pytest.raises(ValueError, match="long"):
        lm.split(torch.arange(10.0))


def test_batches_are_windows_shifted_by_one_and_seeded():
    data = torch.arange(50)  # ids equal to positions: a window is consecutive numbers
    inputs, targets = next(lm.batches(data, 8, 5, seed=3))
    assert inputs.shape == targets.shape == (5, 8)
    assert torch.equal(targets, inputs + 1)  # the same text, shifted by one
    assert torch.equal(inputs[:, 1:], inputs[:, :-1] + 1)  # contiguous windows
    again, _ = next(lm.batches(data, 8, 5, seed=3))
    other, _ = next(lm.batches(data, 8, 5, seed=4))
    assert torch.equal(inputs, again) and not torch.equal(inputs, other)
    with pytest.raises(ValueError, match="fewer than context"):
        next(lm.batches(torch.arange(8), 8, 2))


# --------------------------------------------------------------------------- the model


@pytest.mark.parametrize("positions", lm.POSITIONS)
def test_shapes_and_weights(positions):
    model = tiny_model(positions)
    ids = random_ids(3, CONTEXT)
    logits, weights = model(ids)
    assert logits.shape == (3, CONTEXT, VOCAB)
    assert len(weights) == LAYERS and all(w.shape == (3, H, CONTEXT, CONTEXT) for w in weights)
    for w in weights:
        assert torch.allclose(w.sum(-1), torch.ones(3, H, CONTEXT))
        assert (w.triu(1) == 0).all()  # no weight on later positions


@pytest.mark.parametrize("positions", lm.POSITIONS)
def test_changing_later_characters_leaves_earlier_logits_alone(positions):
    model = tiny_model(positions)
    ids = random_ids(2, CONTEXT, seed=1)
    cut = 5
    changed = ids.clone()
    changed[:, cut:] = (ids[:, cut:] + 1) % VOCAB
    before, _ = model(ids)
    after, _ = model(changed)
    assert torch.allclose(before[:, :cut], after[:, :cut], atol=1e-6)
    assert not torch.allclose(before[:, cut:], after[:, cut:])
    # and a prefix alone gives the same logits as inside the longer sequence
    prefix, _ = model(ids[:, :cut])
    assert torch.allclose(prefix, before[:, :cut], atol=1e-5)


def test_attention_block_equals_pytorch_causal_sdpa():
    model = tiny_model()
    attn = model.layers[0].self_attn
    x = torch.randn(2, CONTEXT, D, generator=torch.Generator().manual_seed(2))
    ours, _ = attn(x, x, x, causal_mask(CONTEXT))  # (B, T, D)
    q, k, v = (split_heads(p(x), H) for p in (attn.q_proj, attn.k_proj, attn.v_proj))  # (B, H, T, E)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, E)
    theirs = attn.out_proj(out.transpose(1, 2).reshape(2, CONTEXT, D))
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_rotary_attention_block_equals_pytorch_sdpa_on_rotated_queries_and_keys():
    model = tiny_model("rotary")
    attn = model.layers[1].self_attn
    x = torch.randn(2, CONTEXT, D, generator=torch.Generator().manual_seed(3))
    ours, _ = attn(x, x, x, causal_mask(CONTEXT))
    q, k, v = (split_heads(p(x), H) for p in (attn.q_proj, attn.k_proj, attn.v_proj))  # (B, H, T, E)
    out = F.scaled_dot_product_attention(rotary_embedding(q), rotary_embedding(k), v, is_causal=True)
    theirs = attn.out_proj(out.transpose(1, 2).reshape(2, CONTEXT, D))
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_learned_position_model_equals_pytorch_encoder_stack():
    """Our blocks under a causal mask = nn.TransformerEncoderLayer(norm_first=True) with is_causal."""
    model = tiny_model()
    ids = random_ids(2, CONTEXT, seed=4)
    torch.manual_seed(5)
    theirs = [nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=True).eval()
              for _ in range(LAYERS)]
    from attention_course.transformer import EncoderLayer

    model.layers = nn.ModuleList(EncoderLayer.from_torch(layer) for layer in theirs)
    ours, _ = model(ids)
    with torch.no_grad():
        x = model.positions(model.embedding(ids))
        mask = nn.Transformer.generate_square_subsequent_mask(CONTEXT)  # float, -inf above the diagonal
        for layer in theirs:
            x = layer(x, src_mask=mask, is_causal=True)
        reference = model.output(model.norm(x))
    assert torch.allclose(ours, reference, atol=1e-5)


def test_model_refuses_bad_input():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(random_ids(CONTEXT))
    with pytest.raises(ValueError, match="context=12"):
        model(random_ids(1, CONTEXT + 1))
    with pytest.raises(ValueError, match="outside a vocabulary"):
        model(torch.full((1, 3), VOCAB))
    with pytest.raises(ValueError, match="long"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="divisible"):
        lm.CharTransformerLM(VOCAB, 10, 3, 1, 8, 4)
    with pytest.raises(ValueError, match="positions"):
        lm.CharTransformerLM(VOCAB, D, H, 1, FF, 4, positions="sinusoidal")


def test_training_lowers_the_loss_and_is_reproducible():
    data = torch.tensor([0, 1, 2, 3, 4] * 40)  # a cycle: perfectly predictable
    runs = []
    for _ in range(2):
        model = tiny_model(seed=1)
        runs.append(lm.train_lm(model, data, 60, batch_size=8, lr=1e-2, warmup=5, seed=0, progress=False))
    assert runs[0]["loss"] == runs[1]["loss"]  # same seed, same steps, same losses
    assert len(runs[0]["loss"]) == 60
    assert sum(runs[0]["loss"][-5:]) / 5 < 0.5 * runs[0]["loss"][0]
    assert max(runs[0]["lr"]) == pytest.approx(1e-2)
    with pytest.raises(ValueError, match="warmup"):
        lm.train_lm(model, data, 5, warmup=5, progress=False)


# --------------------------------------------------------------------------- bits and baselines


def test_nats_to_bits():
    assert lm.nats_to_bits(math.log(2)) == pytest.approx(1.0)
    assert lm.nats_to_bits(math.log(75)) == pytest.approx(math.log2(75))


def test_baselines_against_hand_computation():
    # vocabulary {a: 0, b: 1, c: 2}; train "aab", val "ab"; add-one smoothing
    train, val = torch.tensor([0, 0, 1]), torch.tensor([0, 1])
    uni = lm.unigram_probs(train, 3)
    assert torch.allclose(uni, torch.tensor([3 / 6, 2 / 6, 1 / 6], dtype=torch.float64))
    bi = lm.bigram_probs(train, 3)
    # after a: (a a) once, (a b) once -> (1+1, 1+1, 0+1) / (2 + 3); after b and c: nothing seen -> uniform
    expected = torch.tensor([[2 / 5, 2 / 5, 1 / 5], [1 / 3] * 3, [1 / 3] * 3], dtype=torch.float64)
    assert torch.allclose(bi, expected)
    # targets are val[1:] = "b": unigram -log2(2/6), bigram -log2 p(b | a) = -log2(2/5)
    assert lm.unigram_bits(train, val, 3) == pytest.approx(-math.log2(2 / 6))
    assert lm.bigram_bits(train, val, 3) == pytest.approx(-math.log2(2 / 5))
    assert lm.bigram_probs(train, 3, alpha=0.5)[0, 2] == pytest.approx(0.5 / (2 + 1.5))


def test_evaluate_covers_every_target_once_like_the_bigram():
    """A model whose logits are log bigram probabilities scores exactly bigram_bits."""
    data = random_ids(200, seed=6)
    probs = lm.bigram_probs(data[:150], VOCAB)

    class Bigram(lm.CharTransformerLM):
        def forward(self, ids):
            return probs[ids].log().float(), []

    model = Bigram(VOCAB, D, H, 1, FF, CONTEXT)
    for n in (2, CONTEXT + 1, 50, 49):  # windows that fit exactly and ones that leave a remainder
        assert lm.evaluate_bits_per_char(model, data[150:150 + n]) == \
            pytest.approx(lm.bigram_bits(data[:150], data[150:150 + n], VOCAB), abs=1e-5)


def test_position_losses_are_the_per_position_cross_entropy():
    model = tiny_model()
    ids = random_ids(2, 9, seed=9)
    logits, _ = model(ids[:, :-1])
    expected = F.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1), reduction="none")
    assert torch.allclose(lm.position_losses(model, ids), expected.reshape(2, 8))
    with pytest.raises(ValueError, match="T >= 2"):
        lm.position_losses(model, ids[:, :1])


def test_baselines_refuse_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        lm.unigram_probs(torch.tensor([0, 1]), 3, alpha=0)
    with pytest.raises(ValueError, match="outside a vocabulary of 2"):
        lm.bigram_probs(torch.tensor([0, 2]), 2)
    with pytest.raises(ValueError, match=r"\(T,\)"):
        lm.unigram_bits(torch.zeros(2, 2, dtype=torch.long), torch.tensor([0, 1]), 3)


def test_sample_bigram_follows_a_deterministic_table():
    probs = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert lm.sample_bigram(probs, 0, 5).tolist() == [1, 2, 0, 1, 2]
    with pytest.raises(ValueError, match="square"):
        lm.sample_bigram(probs[:2], 0, 3)


# --------------------------------------------------------------------------- generation


def test_generate_is_reproducible_by_seed():
    model = tiny_model()
    prompt = random_ids(3, seed=7)
    a = lm.generate(model, prompt, 20, temperature=1.0, seed=1)
    b = lm.generate(model, prompt, 20, temperature=1.0, seed=1)
    c = lm.generate(model, prompt, 20, temperature=1.0, seed=2)
    assert a.shape == (20,) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(prompt, random_ids(3, seed=7))  # the prompt is not modified


def test_greedy_is_the_limit_of_low_temperature_and_runs_past_the_context():
    model = tiny_model()
    prompt = random_ids(2, 4, seed=8)
    greedy = lm.generate(model, prompt, CONTEXT + 5, temperature=0)  # longer than the context
    cold = lm.generate(model, prompt, CONTEXT + 5, temperature=1e-4, seed=3)
    assert greedy.shape == (2, CONTEXT + 5) and torch.equal(greedy, cold)
    # greedy by hand, one step
    logits, _ = model(prompt)
    assert torch.equal(greedy[:, 0], logits[:, -1].argmax(-1))
    # top_k = 1 is greedy too, at any temperature
    assert torch.equal(lm.generate(model, prompt, 6, temperature=2.0, top_k=1, seed=5), greedy[:, :6])


def test_generate_refuses_bad_input():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"\(T0,\) or \(B, T0\)"):
        lm.generate(model, torch.zeros(0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="outside a vocabulary"):
        lm.generate(model, torch.tensor([VOCAB]), 3)
    with pytest.raises(ValueError, match="n must be"):
        lm.generate(model, torch.tensor([1]), 0)


# --------------------------------------------------------------------------- head scores


def test_previous_token_score_on_hand_made_maps():
    T = 5
    prev = torch.zeros(T, T)
    prev[0, 0] = 1
    prev[torch.arange(1, T), torch.arange(T - 1)] = 1  # every query on the position before it
    assert lm.previous_token_score(prev) == pytest.approx(1.0)
    uniform = causal_mask(T).float() / torch.arange(1, T + 1)[:, None]  # row t: 1/(t+1) on each key
    assert lm.previous_token_score(uniform) == pytest.approx(sum(1 / t for t in range(2, T + 1)) / (T - 1))
    diagonal = torch.eye(T)
    assert lm.previous_token_score(diagonal) == 0
    batched = torch.stack([prev, diagonal])[None]  # (1, 2, T, T): scores per map
    assert lm.previous_token_score(batched).tolist() == [[1.0, 0.0]]


def test_induction_score_on_hand_made_maps():
    period, T = 3, 6  # x = a b c a b c
    induction = torch.zeros(T, T)
    induction[:period, 0] = 1
    for t in range(period, T):
        induction[t, t - period + 1] = 1  # at the second c (t=5), look at the second a (t=3)
    assert lm.induction_score(induction, period) == pytest.approx(1.0)
    # a head that looks at the previous occurrence itself, not the token after it, scores 0
    matching = torch.zeros(T, T)
    matching[:period, 0] = 1
    matching[torch.arange(period, T), torch.arange(T - period)] = 1
    assert lm.induction_score(matching, period) == 0
    # half the weight on the right token
    assert lm.induction_score(0.5 * induction + 0.5 * matching, period) == pytest.approx(0.5)


def test_head_scores_refuse_bad_input():
    with pytest.raises(ValueError, match="square"):
        lm.previous_token_score(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="T >= 2"):
        lm.previous_token_score(torch.ones(1, 1))
    with pytest.raises(ValueError, match="period"):
        lm.induction_score(torch.zeros(4, 4), 4)
    with pytest.raises(ValueError, match="floating-point"):
        lm.induction_score(torch.zeros(4, 4, dtype=torch.long), 2)


# --------------------------------------------------------------------------- Kneser-Ney n-gram baseline


def _kn_reference(train: list[int], V: int, n: int, D: float, context: list[int], w: int) -> float:
    """Interpolated Kneser-Ney written from the textbook definition, with dicts and loops."""
    from collections import Counter, defaultdict

    def count(k):  # order k: counts of (k+1)-grams; raw at the top order, continuation below
        grams = [tuple(train[i:i + k + 1]) for i in range(len(train) - k)]
        if k == n - 1:
            return Counter(grams)
        left = defaultdict(set)
        for i in range(1, len(train) - k):
            left[tuple(train[i:i + k + 1])].add(train[i - 1])
        return Counter({g: len(s) for g, s in left.items()})

    p = 1.0 / V
    for k in range(n):
        if len(context) < k:
            break
        c = count(k)
        h = tuple(context[len(context) - k:]) if k else ()
        c_h = sum(v for g, v in c.items() if g[:-1] == h)
        types = sum(1 for g in c if g[:-1] == h)
        if c_h:
            p = (max(c.get(h + (w,), 0) - D, 0) + D * types * p) / c_h
    return p


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_kneser_ney_matches_the_textbook_definition(n):
    g = torch.Generator().manual_seed(n)
    V = 4
    train = torch.randint(0, V, (60,), generator=g)
    model = lm.KneserNey(train, V, n, discount=0.6)
    for context in ([], [1], [2, 3], [0, 0, 0], [3, 1, 2, 0]):
        got = model.next_probs(torch.tensor(context, dtype=torch.long))
        want = [_kn_reference(train.tolist(), V, n, 0.6, context[-(n - 1):] if n > 1 else [], w)
                for w in range(V)]
        assert got.tolist() == pytest.approx(want, abs=1e-12)


def test_kneser_ney_distributions_sum_to_one_even_for_unseen_contexts():
    train = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])  # characters 3 and 4 never occur
    model = lm.KneserNey(train, 5, 3)
    for context in ([0, 1], [4, 4], [3], [2, 3, 4, 0]):
        p = model.next_probs(torch.tensor(context))
        assert p.sum().item() == pytest.approx(1.0) and (p > 0).all()
    # an unseen character still costs finitely many bits
    assert math.isfinite(model.bits(torch.tensor([4, 3, 4, 3])))


def test_kneser_ney_bits_averages_next_probs_over_every_target():
    data = torch.randint(0, 6, (300,), generator=torch.Generator().manual_seed(0))
    model = lm.KneserNey(data[:250], 6, 3)
    val = data[250:]
    by_hand = -sum(math.log2(model.next_probs(val[:t])[val[t]].item()) for t in range(1, len(val)))
    assert model.bits(val) == pytest.approx(by_hand / (len(val) - 1))


def test_kneser_ney_beats_the_bigram_on_text_with_longer_structure():
    text = "the cat sat on the mat. " * 40
    vocab = lm.CharVocab.from_text(text)
    ids = vocab.encode(text)
    train, val = ids[:800], ids[800:]
    bigram = lm.bigram_bits(train, val, len(vocab))
    assert lm.KneserNey(train, len(vocab), 4).bits(val) < bigram / 3


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "n must be"), (dict(discount=1.0), "discount"), (dict(discount=0), "discount"),
    (dict(vocab_size=2), "outside a vocabulary"), (dict(n=40), "too large"),
    (dict(n=5), "at least 6"),
])
def test_kneser_ney_rejects_bad_arguments(kwargs, match):
    args = dict(train=torch.tensor([0, 1, 2, 1, 0]), vocab_size=3, n=2) | kwargs
    with pytest.raises(ValueError, match=match):
        lm.KneserNey(**args)


def test_kneser_ney_generate_is_seeded_and_follows_the_counts():
    train = torch.tensor([0, 1, 2] * 30)  # 0 -> 1 -> 2 -> 0 always
    model = lm.KneserNey(train, 4, 3, discount=0.1)
    a = model.generate(torch.tensor([0, 1]), 50, seed=3)
    assert torch.equal(a, model.generate(torch.tensor([0, 1]), 50, seed=3))
    assert a.shape == (50,) and a.dtype == torch.long
    # with a small discount the continuation of ...0 1 is almost always 2, 0, 1, 2, ...
    expected = torch.tensor([2, 0, 1] * 17)[:50]
    assert (a == expected).float().mean() > 0.8
    assert model.generate(torch.tensor([], dtype=torch.long), 5).shape == (5,)
    with pytest.raises(ValueError, match="n must be"):
        model.generate(torch.tensor([0]), 0)
