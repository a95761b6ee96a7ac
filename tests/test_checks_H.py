"""Chapter 9, a language model from attention: the checks of its exercise notebook.

For each implement check, a catalogue of wrong answers (a learner's mistake, or a mutation of the
right answer) that it must reject with a hint naming that mistake, correct variants that it must
accept, and an answer that only calls the library's own version, which it must reject as
:class:`~attention_course.checks.Delegated`. Then the questions (each wrong option gets its own
hint) and the experiment (its reference is measured by training the package's model, not typed).
"""

from __future__ import annotations

import math

import pytest
import torch

from attention_course import checks, lm
from attention_course.checks import ch09
from _helpers import (
    assert_accepted,
    assert_rejected_with_hint,
    assert_stub_not_attempted,
    right_params,
    wrong_params,
)
from test_checks import stub

F = torch.nn.functional
NEG = float("-inf")


# --------------------------------------------------------------------------- the causal LM loss


def causal_lm_loss_ok(model, ids):
    logits = model(ids[:, :-1])  # (B, T, V)
    return F.cross_entropy(logits.transpose(1, 2), ids[:, 1:])


def _ce(logits, targets, reduction="mean"):
    return F.cross_entropy(logits.transpose(1, 2), targets, reduction=reduction)


def _ids_inplace(model, ids):
    ids[:, 0] = ids[:, 0].clamp(max=0)  # writes into the caller's ids
    return causal_lm_loss_ok(model, ids)


CAUSAL_LM_LOSS_WRONG = {
    "targets are the inputs": (lambda m, ids: _ce(m(ids[:, :-1]), ids[:, :-1]), "the inputs themselves"),
    "no shift, whole window": (lambda m, ids: _ce(m(ids), ids), "no shift"),
    "shifted the wrong way": (lambda m, ids: _ce(m(ids[:, 1:]), ids[:, :-1]), "the wrong way"),
    "torch.roll: the last position scored": (lambda m, ids: _ce(m(ids), ids.roll(-1, dims=1)), "torch.roll"),
    "sum instead of mean": (lambda m, ids: _ce(m(ids[:, :-1]), ids[:, 1:], "sum"), "sum of the per-token"),
    "sum per sequence, mean over the batch": (
        lambda m, ids: _ce(m(ids[:, :-1]), ids[:, 1:], "sum") / ids.shape[0], "averaged over the batch"),
    "softmax before cross_entropy": (
        lambda m, ids: _ce(torch.softmax(m(ids[:, :-1]), -1), ids[:, 1:]), "softmax before cross_entropy"),
    "nll_loss on raw logits": (
        lambda m, ids: F.nll_loss(m(ids[:, :-1]).transpose(1, 2), ids[:, 1:]), "without log_softmax"),
    "in bits": (lambda m, ids: causal_lm_loss_ok(m, ids) / math.log(2), "in bits"),
    "only the last position": (
        lambda m, ids: F.cross_entropy(m(ids[:, :-1])[:, -1], ids[:, -1]), "only the last position"),
    "targets flattened transposed": (
        lambda m, ids: (lambda lg: F.cross_entropy(lg.reshape(-1, lg.shape[-1]), ids[:, 1:].T.reshape(-1)))(
            m(ids[:, :-1])), "flattened in another order"),
    "first sequence only": (lambda m, ids: causal_lm_loss_ok(m, ids[:1]), "first sequence"),
    "logits not transposed (crashes when T != V)": (
        lambda m, ids: F.cross_entropy(m(ids[:, :-1]), ids[:, 1:]), "transpose(1, 2)"),
    ".item(): no gradient": (lambda m, ids: causal_lm_loss_ok(m, ids).item(), "carries no gradient"),
    ".detach(): no gradient": (lambda m, ids: causal_lm_loss_ok(m, ids).detach(), "carries no gradient"),
    "per-position losses": (
        lambda m, ids: _ce(m(ids[:, :-1]), ids[:, 1:], "none"), "one loss per position"),
    "the logits returned": (lambda m, ids: m(ids[:, :-1]), "apply cross_entropy"),
    "whole window, logits[:, 1:] against ids[:, 1:]": (lambda m, ids: _ce(m(ids)[:, 1:], ids[:, 1:]), "should be"),
    "ids changed in place": (_ids_inplace, "in place"),
    "float ids passed to the model": (lambda m, ids: causal_lm_loss_ok(m, ids.float()), "dtype long"),
}

CAUSAL_LM_LOSS_ACCEPTED = {
    "run on the whole window, last logits dropped (causal)": lambda m, ids: _ce(m(ids)[:, :-1], ids[:, 1:]),
    "flattened": lambda m, ids: (lambda lg: F.cross_entropy(lg.reshape(-1, lg.shape[-1]), ids[:, 1:].reshape(-1)))(
        m(ids[:, :-1])),
    "log_softmax and gather": lambda m, ids: -torch.log_softmax(m(ids[:, :-1]), -1).gather(
        -1, ids[:, 1:, None]).mean(),
    "float32": lambda m, ids: _ce(m(ids[:, :-1]).float(), ids[:, 1:]),
    "mean of per-sequence means": lambda m, ids: _ce(m(ids[:, :-1]), ids[:, 1:], "none").mean(1).mean(),
}


# --------------------------------------------------------------------------- temperature


def temperature_probs_ok(logits, temperature):
    if temperature == 0:
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits / temperature, dim=-1)


def _tp(body, zero=None):
    """A temperature_probs whose τ > 0 branch is ``body`` and τ = 0 branch ``zero`` (default: right)."""
    def temperature_probs(logits, temperature):
        if temperature == 0:
            return (zero or temperature_probs_ok)(logits, temperature)
        return body(logits, temperature)
    return temperature_probs


def _tp_naive(z, t):
    e = torch.exp(z / t)  # overflows near 1000
    return e / e.sum(-1, keepdim=True)


def _tp_inplace(z, t):
    return torch.softmax(z.div_(t), dim=-1) if t else temperature_probs_ok(z, t)


TEMPERATURE_WRONG = {
    "multiplied by τ": (_tp(lambda z, t: torch.softmax(z * t, -1)), "multiplied by the temperature"),
    "τ ignored": (_tp(lambda z, t: torch.softmax(z, -1)), "temperature is ignored"),
    "probabilities divided by τ": (_tp(lambda z, t: torch.softmax(z, -1) / t), "divided the probabilities"),
    "scaled logits returned": (_tp(lambda z, t: z / t), "scaled logits"),
    "log_softmax": (_tp(lambda z, t: torch.log_softmax(z / t, -1)), "log-probabilities"),
    "τ = 0 uniform": (_tp(temperature_probs_ok, lambda z, t: torch.full_like(z, 1 / z.shape[-1])),
                      "same probability"),
    "τ = 0 argmin": (_tp(temperature_probs_ok, lambda z, t: F.one_hot(z.argmin(-1), z.shape[-1]).to(z.dtype)),
                     "not argmin"),
    "τ = 0 the index": (_tp(temperature_probs_ok, lambda z, t: z.argmax(-1)), "index of the argmax"),
    "τ = 0 not handled (division by zero)": (lambda z, t: torch.softmax(z / t, -1), "handle it first"),
    "τ = 0 softmax(z)": (_tp(temperature_probs_ok, lambda z, t: torch.softmax(z, -1)),
                         "at temperature 0 you returned softmax"),
    "exp without the max (overflows)": (_tp(_tp_naive), "overflows"),
    "softmax over dim 0": (_tp(lambda z, t: torch.softmax(z / t, 0)), "wrong axis"),
    "logits divided in place": (_tp_inplace, "in place"),
    "normalised over the whole tensor": (
        _tp(lambda z, t: torch.exp(z / t - (z / t).max()) / torch.exp(z / t - (z / t).max()).sum()), "should be"),
    "τ = 0 one-hot of the first token": (
        _tp(temperature_probs_ok, lambda z, t: F.one_hot(torch.zeros_like(z[..., 0], dtype=torch.long),
                                                         z.shape[-1]).to(z.dtype)), "should be"),
}

TEMPERATURE_ACCEPTED = {
    "probabilities to the power 1/τ, renormalised": _tp(
        lambda z, t: (lambda q: q / q.sum(-1, keepdim=True))(torch.softmax(z, -1) ** (1 / t))),
    "max subtracted by hand": _tp(lambda z, t: (lambda e: e / e.sum(-1, keepdim=True))(
        torch.exp((z - z.amax(-1, keepdim=True)) / t))),
    "float32": lambda z, t: temperature_probs_ok(z.float(), t),
    "τ = 0 with where": _tp(temperature_probs_ok, lambda z, t: torch.where(
        z == z.amax(-1, keepdim=True), 1.0, 0.0).to(z.dtype)),
}


# --------------------------------------------------------------------------- top-p


def top_p_filter_ok(logits, p):
    if p >= 1:
        return logits.clone()
    probs = logits.softmax(-1)
    sorted_probs, order = probs.sort(-1, descending=True)
    keep_sorted = sorted_probs.cumsum(-1) - sorted_probs < p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, NEG)


def _tpf(keep_rule, *, descending=True, back=True, out="logits", fill=NEG, one=True, dim=-1, sort_dim=-1):
    """A top-p filter with one step changed."""
    def top_p_filter(logits, p):
        if one and p >= 1:
            return logits.clone()
        probs = logits.softmax(dim)
        sp, order = probs.sort(sort_dim, descending=descending)
        cum = sp.cumsum(sort_dim)
        keep_sorted = keep_rule(cum, sp, p)
        keep = torch.zeros_like(keep_sorted).scatter(sort_dim, order, keep_sorted) if back else keep_sorted
        source = probs if out == "probs" else logits
        return source.masked_fill(~keep, fill)
    return top_p_filter


_RIGHT = lambda cum, sp, p: cum - sp < p  # noqa: E731


def _tpf_inplace(logits, p):
    keep = torch.isfinite(top_p_filter_ok(logits, p))
    return logits.masked_fill_(~keep, NEG)


def _tpf_one_d(logits, p):
    probs = logits.softmax(-1)
    sp, order = probs.sort(-1, descending=True)
    keep_sorted = sp.cumsum(-1) - sp < p
    return logits.masked_fill(~keep_sorted[order.argsort(-1)], NEG) if logits.dim() == 1 else logits[order]


TOP_P_WRONG = {
    "cumsum < p (drops the token that crosses p)": (_tpf(lambda cum, sp, p: cum < p), "crosses p"),
    "cumsum <= p": (_tpf(lambda cum, sp, p: cum <= p), "crosses p"),
    "(cumsum - probs) <= p: one too many on an exact tie": (
        _tpf(lambda cum, sp, p: cum - sp <= p), "should keep 2"),
    "sorted ascending": (_tpf(_RIGHT, descending=False), "ascending"),
    "mask not mapped back": (_tpf(_RIGHT, back=False), "mapped back"),
    "result in sorted order": (
        lambda z, p: (lambda sp, o: z.gather(-1, o).masked_fill(~(sp.cumsum(-1) - sp < p), NEG))(
            *z.softmax(-1).sort(-1, descending=True)) if p < 1 else z.clone(), "sorted order"),
    "filtered probabilities": (_tpf(_RIGHT, out="probs"), "probabilities, not the logits"),
    "renormalised probabilities": (lambda z, p: torch.softmax(top_p_filter_ok(z, p), -1), "renormalised"),
    "excluded set to 0": (_tpf(_RIGHT, fill=0.0), "not -inf"),
    "excluded set to -1e9": (_tpf(_RIGHT, fill=-1e9), "large finite"),
    "top-k with k = ceil(p V)": (
        lambda z, p: z.masked_fill(~torch.zeros_like(z, dtype=torch.bool).scatter(
            -1, z.topk(max(1, math.ceil(p * z.shape[-1])), -1).indices, True), NEG), "top-k"),
    "softmax over dim 0": (_tpf(_RIGHT, dim=0), "wrong axis"),
    "sort and cumsum over dim 0": (_tpf(_RIGHT, sort_dim=0), "dim 0, across the rows"),
    "p = 1 not special-cased (float32 rounding)": (_tpf(_RIGHT, one=False), "p = 1 keeps every token"),
    "logits filled in place": (_tpf_inplace, "in place"),
    "1-D indexing logits[order] (crashes)": (_tpf_one_d, "raised IndexError"),
    "the mask returned": (lambda z, p: torch.isfinite(top_p_filter_ok(z, p)), "should be"),
}

TOP_P_ACCEPTED = {
    "float64 probabilities": lambda z, p: z.clone() if p >= 1 else z.masked_fill(
        ~torch.isfinite(top_p_filter_ok(z.double(), p)), NEG),
    "Hugging Face style: remove cumsum >= p, shifted right": lambda z, p: z.clone() if p >= 1 else (
        lambda sz, o: (lambda remove: z.masked_fill(torch.zeros_like(remove).scatter(-1, o, remove), NEG))(
            torch.cat([torch.zeros_like(sz[..., :1], dtype=torch.bool),
                       (sz.softmax(-1).cumsum(-1) >= p)[..., :-1]], -1)))(*z.sort(-1, descending=True)),
    "torch.where": lambda z, p: torch.where(torch.isfinite(top_p_filter_ok(z, p)), z, torch.full_like(z, NEG)),
    "row by row in a loop": lambda z, p: torch.stack([top_p_filter_ok(r, p) for r in z.reshape(
        -1, z.shape[-1])]).reshape(z.shape),
}


# --------------------------------------------------------------------------- previous-token head


def previous_token_head_ok(weights):
    scores = torch.stack([w.diagonal(-1, -2, -1).mean(-1).mean(0) for w in weights])  # (N, H)
    layer, head = divmod(int(scores.argmax()), scores.shape[1])
    return layer, head, scores[layer, head].item()


def _pth(score_of, *, split=lambda i, N, H: divmod(i, H), shift=0, swap=False):
    def previous_token_head(weights):
        scores = torch.stack([score_of(w) for w in weights])  # (N, H)
        N, H = scores.shape
        layer, head = split(int(scores.argmax()), N, H)
        value = scores.flatten()[int(scores.argmax())].item()
        out = (layer + shift, head + shift, value)
        return (out[1], out[0], out[2]) if swap else out
    return previous_token_head


def _pth_zero_row0(weights):
    for w in weights:
        w[..., 0, :] = 0.0  # "row 0 has no previous key": written into the caller's tensors
    return previous_token_head_ok(weights)


PREVIOUS_HEAD_WRONG = {
    "diagonal": (_pth(lambda w: w.diagonal(0, -2, -1).mean(-1).mean(0)), "the diagonal, a_{t,t}"),
    "super-diagonal": (_pth(lambda w: w.diagonal(1, -2, -1).mean(-1).mean(0)), "just *after*"),
    "divided by T (row 0 counted)": (
        _pth(lambda w: w.diagonal(-1, -2, -1).sum(-1).mean(0) / w.shape[-1]), "divided by T"),
    "max over the queries": (_pth(lambda w: w.diagonal(-1, -2, -1).amax(-1).mean(0)), "largest weight"),
    "sum over the queries": (_pth(lambda w: w.diagonal(-1, -2, -1).sum(-1).mean(0)), "summed"),
    "first sequence only": (_pth(lambda w: w[0].diagonal(-1, -2, -1).mean(-1)), "first sequence"),
    "(head, layer)": (_pth(lambda w: w.diagonal(-1, -2, -1).mean(-1).mean(0), swap=True), "swapped"),
    "divmod by the number of layers": (
        _pth(lambda w: w.diagonal(-1, -2, -1).mean(-1).mean(0), split=lambda i, N, H: divmod(i, N)),
        "divmod(i, N_ℓ"),
    "1-based": (_pth(lambda w: w.diagonal(-1, -2, -1).mean(-1).mean(0), shift=1), "1-based"),
    "diagonal over the default dims (0, 1)": (_pth(lambda w: w.diagonal(-1).mean((0, 1))), "should"),
    "sum of the lower triangle": (_pth(lambda w: w.tril(-1).sum((-2, -1)).mean(0)), "head is right"),
    "the best head of layer 0": (
        lambda ws: (lambda s: (0, int(s[0].argmax()), s[0].max().item()))(
            torch.stack([w.diagonal(-1, -2, -1).mean(-1).mean(0) for w in ws])), "should be"),
    "the whole table returned as the score": (
        lambda ws: (lambda s: (*divmod(int(s.argmax()), s.shape[1]), s))(
            torch.stack([w.diagonal(-1, -2, -1).mean(-1).mean(0) for w in ws])), "own score, one number"),
    "row 0 zeroed in place": (_pth_zero_row0, "in place"),
    "returns (layer, head) only": (lambda ws: previous_token_head_ok(ws)[:2], "(layer, head, score)"),
}

PREVIOUS_HEAD_ACCEPTED = {
    "a shifted identity as a mask": lambda ws: (lambda s: (*divmod(int(s.argmax()), s.shape[1]), s.max()))(
        torch.stack([(w * torch.diag(torch.ones(w.shape[-1] - 1, dtype=w.dtype), -1)).sum((-2, -1)).mean(0)
                     / (w.shape[-1] - 1) for w in ws])),
    "python loops, numpy ints": lambda ws: (lambda best: best)(max(
        ((float(sum(ws[l][b, h, t, t - 1] for b in range(ws[l].shape[0]) for t in range(1, ws[l].shape[-1])))
          / (ws[l].shape[0] * (ws[l].shape[-1] - 1)), l, h)
         for l in range(len(ws)) for h in range(ws[l].shape[1])), key=lambda x: x[0])[1:] + (max(
        float(ws[l][:, h].diagonal(-1, -2, -1).mean()) for l in range(len(ws)) for h in range(ws[l].shape[1])),)),
    "w[..., 1:, :-1].diagonal": lambda ws: (lambda s: (*divmod(int(s.argmax()), s.shape[1]), float(s.max())))(
        torch.stack([w[..., 1:, :-1].diagonal(0, -2, -1).mean((0, -1)) for w in ws])),
}


# --------------------------------------------------------------------------- the experiment


def _experiment(*, steps=200, data="val", measure=None, seed_arg=True, positions="rotary", per_window=False,
                transpose=False, per_layer=False, width=32):
    def previous_token_experiment(seed):
        vocab, train, val = ch09._shakespeare_split()
        s = seed if seed_arg else 0
        torch.manual_seed(s)
        model = lm.CharTransformerLM(len(vocab), 32, 2, 2, 64, 32, positions=positions)
        if steps:
            lm.train_lm(model, train, steps, batch_size=16, lr=1e-2, warmup=20, seed=s, progress=False)
        source = val if data == "val" else train
        windows = source[: 32 * width].reshape(32, width)[:, :32]
        with torch.no_grad():
            _, maps = model(windows)
        score = measure or (lambda w: lm.previous_token_score(w))
        table = torch.stack([score(w) if per_window else score(w).mean(0) for w in maps])
        if per_layer:
            table = table.mean(-1)
        return table.T if transpose else table
    return previous_token_experiment


previous_token_experiment_ok = _experiment()

EXPERIMENT_WRONG = {
    "untrained": (_experiment(steps=0), "untrained"),
    "training windows": (_experiment(data="train"), "training windows"),
    "the diagonal": (_experiment(measure=lambda w: w.diagonal(0, -2, -1).mean(-1)), "on itself"),
    "transposed (H, N_ℓ)": (_experiment(transpose=True), "transposed"),
    "seed ignored": (_experiment(seed_arg=False), "seed 0"),
    "the batch axis kept": (_experiment(per_window=True), "batch axis"),
    "one number per layer": (_experiment(per_layer=True), "one number per layer"),
    "100 steps": (_experiment(steps=100), "should be"),
    "learned positions": (_experiment(positions="learned"), "should be"),
    "windows of 33 cut to 32": (_experiment(width=33), "should be"),
}


# --------------------------------------------------------------------------- the parametrised tests

WRONG = [
    (checks.check_causal_lm_loss, CAUSAL_LM_LOSS_WRONG),
    (checks.check_temperature_probs, TEMPERATURE_WRONG),
    (checks.check_top_p_filter, TOP_P_WRONG),
    (checks.check_previous_token_head, PREVIOUS_HEAD_WRONG),
    (checks.check_previous_token_experiment, EXPERIMENT_WRONG),
]

ACCEPTED = [
    (checks.check_causal_lm_loss, CAUSAL_LM_LOSS_ACCEPTED),
    (checks.check_temperature_probs, TEMPERATURE_ACCEPTED),
    (checks.check_top_p_filter, TOP_P_ACCEPTED),
    (checks.check_previous_token_head, PREVIOUS_HEAD_ACCEPTED),
]


@pytest.mark.parametrize("check, wrong, hint", wrong_params(WRONG))
def test_wrong_answer_rejected_with_a_hint(check, wrong, hint, capsys):
    assert_rejected_with_hint(check, wrong, hint, capsys)


@pytest.mark.parametrize("check, variant", right_params(ACCEPTED))
def test_correct_variant_accepted(check, variant, capsys):
    assert_accepted(check, variant, capsys)


def test_each_implement_check_has_at_least_ten_wrong_answers_and_two_variants():
    for check, catalogue in WRONG[:4]:
        assert len(catalogue) >= 10, check.__name__
    for check, catalogue in ACCEPTED:
        assert len(catalogue) >= 2, check.__name__


DELEGATING = {
    "causal_lm_loss via position_losses": (
        checks.check_causal_lm_loss, lambda model, ids: lm.position_losses(model, ids).mean()),
    "top_p_filter via the library": (
        checks.check_top_p_filter, lambda logits, p: __import__("attention_course").sampling.top_p_filter(logits, p)),
    "previous_token_head via previous_token_score": (
        checks.check_previous_token_head, lambda ws: (lambda s: (*divmod(int(s.argmax()), s.shape[1]), s.max()))(
            torch.stack([lm.previous_token_score(w).mean(0) for w in ws]))),
}


@pytest.mark.parametrize("name", sorted(DELEGATING))
def test_an_answer_that_calls_the_librarys_version_is_rejected(name):
    check, answer = DELEGATING[name]
    with pytest.raises(checks.Delegated, match="build it yourself"):
        check(answer)


def test_a_library_name_imported_into_the_learners_namespace_is_caught_and_restored():
    from attention_course import sampling

    namespace = {"top_p_filter": sampling.top_p_filter}
    exec("def answer(logits, p):\n    return top_p_filter(logits, p)\n", namespace)
    with pytest.raises(checks.Delegated, match="top_p_filter"):
        checks.check_top_p_filter(namespace["answer"])
    assert namespace["top_p_filter"] is sampling.top_p_filter  # put back, also after a failure


# --------------------------------------------------------------------------- questions, experiment, stubs

SOLUTIONS = [
    (checks.check_causal_lm_loss, causal_lm_loss_ok),
    (checks.check_temperature_probs, temperature_probs_ok),
    (checks.check_top_p_filter, top_p_filter_ok),
    (checks.check_previous_token_head, previous_token_head_ok),
    (checks.check_previous_token_experiment, previous_token_experiment_ok),
]

QUESTIONS = [  # (check, the right answer, {wrong answer: a word of its own hint})
    (checks.check_nats_to_bits_question, 1.5 / math.log(2), {
        1.5 * math.log(2): "smaller", math.log2(1.5): "another log", math.exp(1.5): "perplexity",
        2**1.5: "exponentiates", 1.5 / math.log(10): "decimal digits", 3.0: "is not it"}),
    (checks.check_greedy_cycle_question, "c", {"a": "cannot escape", "b": "nothing bounds it",
                                               "d": "do not make two equal windows different"}),
    (checks.check_masked_lm_question, "b", {"a": "costs the same", "c": "no causal mask at all",
                                            "d": "whether the token itself is visible"}),
]


@pytest.mark.parametrize("check, solution", [pytest.param(c, s, id=c.__name__) for c, s in SOLUTIONS] +
                         [pytest.param(c, (lambda a=a: a), id=c.__name__) for c, a, _ in QUESTIONS])
def test_the_solution_passes(check, solution, capsys):
    assert_accepted(check, solution, capsys)


ALL_CHECKS = [c for c, _ in SOLUTIONS] + [c for c, _, _ in QUESTIONS]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_an_untouched_stub_is_not_attempted(check, monkeypatch, capsys):
    assert_stub_not_attempted(check, stub, monkeypatch, capsys)


@pytest.mark.parametrize("check, answer, hint", [
    pytest.param(c, a, h, id=f"{c.__name__}: {a!r}") for c, _, wrong in QUESTIONS for a, h in wrong.items()])
def test_each_wrong_answer_to_a_question_gets_its_own_hint(check, answer, hint, capsys):
    assert_rejected_with_hint(check, lambda: answer, hint, capsys)


def test_question_hints_are_all_different():
    for check, _, wrong in QUESTIONS:
        messages = set()
        for answer in wrong:
            with pytest.raises(AssertionError) as info:
                check(lambda a=answer: a)
            messages.add(str(info.value).split(". ", 1)[-1])
        assert len(messages) == len(wrong), check.__name__


def test_the_experiment_reference_is_measured_and_shows_a_previous_token_head():
    """Training makes a previous-token head: the best trained head is several times the untrained best
    and the uniform score; the known wrong measurements are all different from the right one."""
    ref = ch09._experiment_reference(1)
    T = ch09.EXPERIMENT["context"]
    uniform = sum(1 / t for t in range(2, T + 1)) / (T - 1)
    assert ref["right"].max() > 3 * uniform and ref["right"].max() > 2 * ref["untrained"].max()
    for kind in ("untrained", "train", "diagonal", "transposed"):
        assert abs(ref[kind] - ref["right"]).max() > 1e-3, kind


def test_the_check_leaves_the_thread_count_and_the_rng_alone():
    threads = torch.get_num_threads()
    state = torch.random.get_rng_state()
    ch09._experiment_model(2, steps=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    with ch09._one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == threads


def test_the_planted_heads_separate_the_mistakes():
    """In both test sets of weights, the right head differs from what each scoring mistake picks."""
    for seed, (N, H, B, T), plants in ((96, (3, 4, 2, 6), {(2, 1): (-1, 2.5, None, None),
                                                             (0, 3): (0, 4.0, None, None)}),):
        weights = ch09._planted_weights(seed, N, H, B, T, plants)
        right = ch09._best(ch09._prev_scores(weights))
        assert right[:2] == (2, 1)
        assert ch09._best(ch09._prev_scores(weights, offset=0))[:2] == (0, 3)


def test_the_checks_are_exported_by_the_chapter_module():
    names = {"check_causal_lm_loss", "check_nats_to_bits_question", "check_temperature_probs",
             "check_top_p_filter", "check_greedy_cycle_question", "check_previous_token_head",
             "check_previous_token_experiment", "check_masked_lm_question"}
    assert names == set(ch09.__all__)
    assert all(getattr(checks, n) is getattr(ch09, n) for n in names)
