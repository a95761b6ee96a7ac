"""The GRU encoder–decoder of ``attention_course.seq2seq``.

The encoder is checked against ``nn.GRU`` run on each unpadded sequence alone,
greedy decoding against a hand-written loop over ``Decoder.step``, and the
accuracy's counting against hand-made predictions.
"""

from __future__ import annotations

import pytest
import torch

from attention_course import SCORE_RULES, data, seq2seq
from attention_course.data import Pair, Vocab
from attention_course.seq2seq import Encoder, Seq2Seq, greedy_decode, make_seq2seq, token_accuracy

DIGITS = Vocab("0123456789")  # ids 3..12
LENGTHS = torch.tensor([7, 3, 5, 1])
B, S = len(LENGTHS), int(LENGTHS.max())


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-5)


def padded_src(lengths: torch.Tensor = LENGTHS, S: int = S, seed: int = 0) -> torch.Tensor:
    """Random digit ids (B, S), zero after each length."""
    src = torch.randint(3, len(DIGITS), (len(lengths), S), generator=torch.Generator().manual_seed(seed))
    return src.masked_fill(torch.arange(S)[None, :] >= lengths[:, None], 0)  # (B, S)


def model(attention: str | None, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    return make_seq2seq(DIGITS, DIGITS, attention=attention, embed_size=8, hidden_size=16).eval()


# --- Encoder


def test_encoder_shapes_and_zero_padding() -> None:
    torch.manual_seed(0)
    encoder = Encoder(len(DIGITS), 8, 16)
    states, final = encoder(padded_src(), LENGTHS)
    assert states.shape == (B, S, 16) and final.shape == (B, 16)
    for b, n in enumerate(LENGTHS.tolist()):
        assert (states[b, n:] == 0).all()
        assert (states[b, :n] != 0).any(dim=-1).all()
        close(final[b], states[b, n - 1])  # the final state is the last real token's, not the padding's


def test_encoder_matches_the_gru_on_each_sequence_alone() -> None:
    torch.manual_seed(0)
    encoder = Encoder(len(DIGITS), 8, 16)
    src = padded_src()
    states, final = encoder(src, LENGTHS)
    for b, n in enumerate(LENGTHS.tolist()):
        alone = src[b : b + 1, :n]  # (1, n), no padding
        out, h = encoder.gru(encoder.embedding(alone))  # plain nn.GRU: (1, n, H), (1, 1, H)
        close(states[b, :n], out[0])
        close(final[b], h[0, 0])
        states_1, final_1 = encoder(alone, torch.tensor([n]))
        close(states_1[0], out[0])
        close(final_1[0], h[0, 0])


def test_encoder_ignores_what_sits_in_the_padding() -> None:
    torch.manual_seed(0)
    encoder = Encoder(len(DIGITS), 8, 16)
    src = padded_src()
    noisy = torch.where(src == 0, padded_src(torch.full((B,), S), seed=1), src)  # real digits in the padding
    assert not torch.equal(noisy, src)
    states, final = encoder(src, LENGTHS)
    states_n, final_n = encoder(noisy, LENGTHS)
    close(final_n, final)
    close(states_n, states)


def test_encoder_uses_given_embeddings() -> None:
    torch.manual_seed(0)
    encoder = Encoder(len(DIGITS), 8, 16)
    src = padded_src()
    embedded = encoder.embedding(src).detach().requires_grad_()
    states, final = encoder(src, LENGTHS, embedded)
    close(final, encoder(src, LENGTHS)[1])
    final[1].sum().backward()  # sequence 1 has 3 tokens: only those can move its final state
    per_position = embedded.grad.abs().sum(dim=-1)  # (B, S)
    assert (per_position[1, :3] > 0).all()
    assert (per_position[1, 3:] == 0).all() and (per_position[[0, 2, 3]] == 0).all()


@pytest.mark.parametrize(
    ("src_shape", "lengths"),
    [((2, 4, 1), [4, 2]), ((4,), [4, 2]), ((2, 4), [4, 2, 1]), ((2, 4), [[4, 2]])],
)
def test_encoder_rejects_bad_shapes(src_shape: tuple[int, ...], lengths: list) -> None:
    encoder = Encoder(len(DIGITS), 8, 16)
    with pytest.raises(ValueError, match="src must be"):
        encoder(torch.full(src_shape, 3), torch.tensor(lengths))


# --- Seq2Seq forward


@pytest.mark.parametrize("rule", SCORE_RULES)
def test_every_score_rule_builds_a_model_that_runs_and_learns(rule: str) -> None:
    net = model(rule).train()
    tgt_in = padded_src(seed=2)
    logits, weights = net(padded_src(), LENGTHS, tgt_in)
    assert logits.shape == (B, tgt_in.shape[1], len(DIGITS))
    assert weights.shape == (B, tgt_in.shape[1], S)
    score_params = list(net.decoder.score.parameters())
    assert all(any(p is q for q in net.parameters()) for p in score_params)  # registered, so trained
    logits.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in score_params)
    ids, w = greedy_decode(net, padded_src(), LENGTHS, max_len=4)
    assert ids.shape[0] == B and ids.shape[1] <= 4 and w.shape == (B, ids.shape[1], S)


def test_forward_with_attention_gives_masked_weights() -> None:
    net = model("additive")
    T = 6
    logits, weights = net(padded_src(), LENGTHS, padded_src(torch.full((B,), T), T, seed=2))
    assert logits.shape == (B, T, len(DIGITS)) and weights.shape == (B, T, S)
    close(weights.sum(dim=-1), torch.ones(B, T))
    padding = torch.arange(S)[None, :] >= LENGTHS[:, None]  # (B, S)
    assert (weights.masked_select(padding[:, None, :]) == 0).all()
    assert (weights.masked_select(~padding[:, None, :]) > 0).all()
    close(weights[3], torch.eye(1, S).expand(T, S))  # a one-token source: all weight on it


def test_forward_without_attention_gives_no_weights() -> None:
    net = model(None)
    assert not net.decoder.uses_attention
    logits, weights = net(padded_src(), LENGTHS, padded_src(seed=2)[:, :5])
    assert logits.shape == (B, 5, len(DIGITS)) and weights is None


@pytest.mark.parametrize("attention", ["additive", "dot", None])
def test_extra_padding_changes_nothing(attention: str | None) -> None:
    net = model(attention)
    src, tgt_in = padded_src(), padded_src(seed=2)[:, :5]
    wider = torch.cat([src, torch.zeros(B, 4, dtype=torch.long)], dim=1)  # (B, S + 4), same lengths
    logits, weights = net(src, LENGTHS, tgt_in)
    logits_w, weights_w = net(wider, LENGTHS, tgt_in)
    close(logits_w, logits)
    ids, _ = greedy_decode(net, src, LENGTHS, max_len=6)
    ids_w, _ = greedy_decode(net, wider, LENGTHS, max_len=6)
    assert torch.equal(ids_w, ids)
    if attention is not None:
        close(weights_w[:, :, :S], weights)
        assert (weights_w[:, :, S:] == 0).all()


def test_a_sequence_gives_the_same_output_alone_and_in_a_batch() -> None:
    net = model("general")
    src, tgt_in = padded_src(), padded_src(seed=2)[:, :5]
    logits, weights = net(src, LENGTHS, tgt_in)
    for b, n in enumerate(LENGTHS.tolist()):
        logits_1, weights_1 = net(src[b : b + 1, :n], LENGTHS[b : b + 1], tgt_in[b : b + 1])
        close(logits_1[0], logits[b])
        close(weights_1[0], weights[b, :, :n])


# --- training (one small model, shared by the tests that need a trained one)


@pytest.fixture(scope="module")
def trained() -> tuple[Seq2Seq, list[Pair], dict]:
    pairs = data.reverse_digits(64, 3, 5, seed=0)
    torch.manual_seed(0)
    net = make_seq2seq(DIGITS, DIGITS, attention=None, embed_size=16, hidden_size=32)
    history = seq2seq.train(net, data.batches(pairs, DIGITS, DIGITS, 16, seed=0), 150, progress=False)
    return net, pairs, history


def test_train_reduces_the_loss(trained) -> None:
    _, _, history = trained
    losses = history["loss"]
    assert len(losses) == 150 and all(isinstance(x, float) for x in losses)
    assert history["seconds"] > 0
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.5 * first, (first, last)


def _rates(steps: int, **kwargs) -> list[float]:
    pairs = data.reverse_digits(16, 3, 4, seed=0)
    torch.manual_seed(0)
    net = make_seq2seq(DIGITS, DIGITS, attention=None, embed_size=4, hidden_size=4)
    batches = data.batches(pairs, DIGITS, DIGITS, 4, seed=0)
    return seq2seq.train(net, batches, steps, progress=False, **kwargs)["lr"]


def test_train_constant_rate_by_default(trained) -> None:
    assert trained[2]["lr"] == [3e-3] * 150


@pytest.mark.parametrize("warmup", [0, 1, 5])
def test_train_decay_follows_pytorchs_cosine_annealing_after_the_warmup(warmup: int) -> None:
    steps, lr = 20, 1e-2
    rates = _rates(steps, lr=lr, warmup=warmup, decay=True)
    assert len(rates) == steps
    assert rates[:warmup] == pytest.approx([lr * (k + 1) / warmup for k in range(warmup)])
    # PyTorch's own schedule, from lr at the first step after the warm-up to lr / 10 at the last
    param = torch.nn.Parameter(torch.zeros(1))
    optimiser = torch.optim.SGD([param], lr=lr)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps - 1 - warmup, eta_min=lr / 10)
    theirs = []
    for _ in range(steps - warmup):
        theirs.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        cosine.step()
    assert rates[warmup:] == pytest.approx(theirs)
    assert rates[-1] == pytest.approx(lr / 10) and max(rates) == pytest.approx(lr)


def test_train_warmup_without_decay_stays_at_the_rate() -> None:
    assert _rates(6, lr=1e-2, warmup=3) == pytest.approx([1e-2 / 3, 2e-2 / 3, 1e-2, 1e-2, 1e-2, 1e-2])


@pytest.mark.parametrize("decay", [1, "yes", None])
def test_train_rejects_a_decay_that_is_not_a_bool(decay) -> None:
    with pytest.raises(ValueError, match="decay must be True or False"):
        _rates(2, decay=decay)


def test_train_learns_something_greedy_decoding_can_show(trained) -> None:
    net, pairs, _ = trained
    assert token_accuracy(net, pairs, DIGITS, DIGITS) > 0.6
    assert token_accuracy(model(None), pairs, DIGITS, DIGITS) < 0.3  # untrained: near chance


# --- greedy_decode


def reference_decode(net: Seq2Seq, src: torch.Tensor, lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Every step by hand, no early stop: (B, max_len) raw argmax ids, eos not handled."""
    with torch.no_grad():
        enc_states, final = net.encoder(src, lengths)
        mask = torch.arange(src.shape[1])[None, :] < lengths[:, None]  # (B, S)
        state = net.decoder.initial_state(final)
        y = torch.full((src.shape[0],), DIGITS.bos_id)
        out = []
        for _ in range(max_len):
            logits, state, _ = net.decoder.step(y, state, enc_states, final, mask)
            y = logits.argmax(dim=-1)  # fed back as the next input
            out.append(y)
    return torch.stack(out, dim=1)


def expected_ids(raw: torch.Tensor, eos_id: int = DIGITS.eos_id) -> torch.Tensor:
    """Zero after each row's first eos; cut after the column where the last row finished."""
    ids = raw.clone()
    ends = []
    for b in range(ids.shape[0]):
        hits = (ids[b] == eos_id).nonzero()
        end = int(hits[0]) + 1 if len(hits) else ids.shape[1]
        ids[b, end:] = 0
        ends.append(end)
    return ids[:, : max(ends)]


def test_greedy_decode_stops_at_eos(trained) -> None:
    net, pairs, _ = trained
    batch = data.make_batch(pairs[:16], DIGITS, DIGITS)
    max_len = 12
    ids, weights = greedy_decode(net, batch.src, batch.src_lengths, max_len=max_len)
    raw = reference_decode(net, batch.src, batch.src_lengths, max_len)
    ends = [(row == DIGITS.eos_id).nonzero()[0].item() for row in raw]  # precondition: every row ends
    assert len(set(ends)) > 1  # ... and at different steps, so some rows get padded
    assert weights is None
    assert ids.shape[1] == max(ends) + 1 < max_len  # stopped as soon as all had ended
    assert torch.equal(ids, expected_ids(raw))
    for b, end in enumerate(ends):
        assert ids[b, end] == DIGITS.eos_id and (ids[b, end + 1 :] == 0).all()


@pytest.mark.parametrize("attention", ["concat", None])
def test_greedy_decode_feeds_back_its_own_predictions(attention: str | None) -> None:
    net = model(attention)
    src = padded_src()
    raw = reference_decode(net, src, LENGTHS, 9)
    ids, _ = greedy_decode(net, src, LENGTHS, max_len=9)
    assert torch.equal(ids, expected_ids(raw))
    # teacher forcing with its own predictions as inputs reproduces the same argmax
    tgt_in = torch.cat([torch.full((B, 1), DIGITS.bos_id), raw[:, :-1]], dim=1)
    logits, _ = net(src, LENGTHS, tgt_in)
    assert torch.equal(logits.argmax(dim=-1), raw)


def test_greedy_decode_respects_max_len() -> None:
    net = model("additive")
    with torch.no_grad():
        net.decoder.out.bias[DIGITS.eos_id] = -1e4  # never ends by itself
    for max_len in (1, 5):
        ids, weights = greedy_decode(net, padded_src(), LENGTHS, max_len=max_len)
        assert ids.shape == (B, max_len) and weights.shape == (B, max_len, S)
        assert (ids != DIGITS.eos_id).all() and (ids != 0).all()
    with torch.no_grad():
        net.decoder.out.bias[DIGITS.eos_id] = 1e4  # ends at once
    ids, _ = greedy_decode(net, padded_src(), LENGTHS, max_len=5)
    assert ids.tolist() == [[DIGITS.eos_id]] * B


# --- token_accuracy and accuracy_by_length

PAIRS = [
    Pair(tuple("123"), tuple("321"), (2, 1, 0)),  # labels 3 2 1 <eos>
    Pair(tuple("4"), tuple("4"), (0,)),  # labels 4 <eos>: 6 labels in all
]


def fake_decoder(monkeypatch, outputs: dict[str, str]) -> None:
    """Make greedy decoding return ``outputs[source]`` (digits, "." for <eos>, "_" for padding)."""
    code = {".": DIGITS.eos_id, "_": 0} | {d: DIGITS.stoi[d] for d in "0123456789"}

    def fake(model, src, lengths, max_len, bos_id=1, eos_id=2):
        rows = ["".join(DIGITS.decode(src[b, : lengths[b]])) for b in range(src.shape[0])]
        width = max(len(outputs[r]) for r in rows)
        ids = [[code[c] for c in outputs[r].ljust(width, "_")][:max_len] for r in rows]
        return torch.tensor(ids), None

    monkeypatch.setattr(seq2seq, "greedy_decode", fake)


@pytest.mark.parametrize(
    ("out_123", "out_4", "correct"),
    [
        ("321.", "4.", 6),  # perfect
        ("32", "4.", 4),  # stopped early without <eos>: the last two labels missed
        ("3.", "4.", 3),  # <eos> too soon
        ("3210", "4.", 5),  # too long: <eos> missing where it belongs
        ("321.", "4..", 6),  # anything after the reference's end is not counted
        ("331.", "4.", 5),  # one wrong token, the rest in place
        ("3321", "4.", 3),  # an inserted token shifts the rest: only in-place tokens count
        ("321.", "47", 5),  # the <eos> itself is a label
        (".", ".", 0),  # <eos> at once: nothing right
        ("....", "..", 2),  # counting is by position: a late <eos> that lines up still counts
    ],
)
def test_token_accuracy_counts_in_place_tokens_and_eos(monkeypatch, out_123: str, out_4: str, correct: int) -> None:
    fake_decoder(monkeypatch, {"123": out_123, "4": out_4})
    assert token_accuracy(None, PAIRS, DIGITS, DIGITS) == pytest.approx(correct / 6)
    # tokens, not batches, are averaged: one pair a batch gives the same share
    assert token_accuracy(None, PAIRS, DIGITS, DIGITS, batch_size=1) == pytest.approx(correct / 6)


def test_token_accuracy_of_a_real_model_that_always_says_three() -> None:
    """A model whose output is the constant 3: correct exactly where a label is 3 (no <eos> ever)."""
    net = model("dot")
    with torch.no_grad():
        net.decoder.out.weight.zero_()
        net.decoder.out.bias.zero_()
        net.decoder.out.bias[DIGITS.stoi["3"]] = 1.0
    pairs = data.reverse_digits(40, 1, 6, seed=3)
    labels = sum(len(p.target) + 1 for p in pairs)
    threes = sum(p.target.count("3") for p in pairs)
    assert 0 < threes < labels
    assert token_accuracy(net, pairs, DIGITS, DIGITS, batch_size=7) == pytest.approx(threes / labels)


def test_accuracy_by_length(monkeypatch) -> None:
    fake_decoder(monkeypatch, {"123": "32", "4": "4."})
    buckets = data.length_buckets(PAIRS, [1, 2, 3, 4, 10])
    assert seq2seq.accuracy_by_length(None, buckets, DIGITS, DIGITS) == {(1, 2): 1.0, (3, 4): 0.5}  # empty left out
