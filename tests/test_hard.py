"""Training hard attention (``attention_course.hard``), its task (``data.find_by_colour``)
and the chapters' stopwatch (``timing.best_time``).

Checked against what we did not write: the straight-through estimator against
``F.gumbel_softmax``, the Gumbel CDF and the softmax Jacobian; REINFORCE against
the hand formula and against the exact expectation, enumerated over every pick;
the Picker's weights and soft context against ``F.scaled_dot_product_attention``;
the entropy bonus against ``torch.distributions.Categorical``. Statistical
checks are seeded (so they replay exactly) and their tolerances are a stated
number of standard errors.
"""

from __future__ import annotations

import itertools
import math
import time
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from attention_course import timing
from attention_course.data import FindTask, find_by_colour
from attention_course.hard import (
    METHODS,
    Picker,
    accuracy,
    expected_loss,
    gradient_estimates,
    gumbel_noise,
    method_loss,
    reinforce_surrogate,
    straight_through_gumbel,
    train_picker,
)

seeds = st.integers(min_value=0, max_value=2**32 - 1)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Every tensor here is tiny: a second intra-op thread only adds contention on a busy 2-core machine
    (measured: 4-20x slower per step while notebooks run alongside)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_picker(n_symbols: int = 5, n_colours: int = 3, size: int = 8, seed: int = 0) -> Picker:
    """A Picker initialised from ``seed`` without touching the global generator."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return Picker(n_symbols, n_colours, size)


def reference_weights(model: Picker, task: FindTask) -> torch.Tensor:
    """a (N, S) from torch's own attention: with the identity as values, the output is the weights."""
    q = model.proj_q(model.ask(task.query))[:, None, :]  # (N, 1, E)
    k = model.proj_k(model.symbol(task.symbols) + model.colour(task.colours))  # (N, S, E)
    N, S = task.symbols.shape
    eye = torch.eye(S).expand(N, S, S)  # (N, S, S)
    return F.scaled_dot_product_attention(q, k, eye)[:, 0]  # (N, S); default scale 1/sqrt(E)


def item_losses(model: Picker, task: FindTask) -> torch.Tensor:
    """Cross-entropy (N, S) of reading each item alone, one item at a time."""
    N, S = task.symbols.shape
    rows = []
    for n in range(N):
        rows.append(torch.stack([F.cross_entropy(model.out(model.value.weight[task.symbols[n, i]]),
                                                 task.target[n]) for i in range(S)]))
    return torch.stack(rows)


# --- gumbel_noise


def test_gumbel_noise_follows_the_gumbel_distribution() -> None:
    n = 100_000
    g = gumbel_noise((n,), generator(0))
    assert g.shape == (n,) and torch.isfinite(g).all()
    # Kolmogorov-Smirnov against the Gumbel CDF exp(-exp(-x)); 1.95/sqrt(n) is the 0.1% critical value
    x = g.double().sort().values
    cdf = torch.distributions.Gumbel(0.0, 1.0).cdf(x)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    d = torch.maximum(i / n - cdf, cdf - (i - 1) / n).max()
    assert d < 1.95 / math.sqrt(n), f"KS statistic {float(d):.4f}"
    assert torch.equal(gumbel_noise((3, 4), generator(5)), gumbel_noise((3, 4), generator(5)))


# --- straight_through_gumbel


@given(seed=seeds, B=st.integers(1, 3), S=st.integers(1, 7), tau=st.sampled_from([0.1, 0.5, 1.0, 2.0, 10.0]),
       magnitude=st.sampled_from([1e-3, 1.0, 30.0]), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_straight_through_forward_is_the_gumbel_argmax_and_backward_the_soft_sample(
        seed, B, S, tau, magnitude, dtype) -> None:
    g = generator(seed)
    logits = (torch.randn(B, S, generator=g, dtype=dtype) * magnitude).requires_grad_()
    noise = gumbel_noise((B, S), g).to(dtype)
    c = torch.randn(B, S, generator=g, dtype=dtype)  # a random linear loss  sum(c * w)

    w = straight_through_gumbel(logits, tau, noise=noise)
    expected = F.one_hot((logits + noise).argmax(-1), S).to(dtype)
    assert torch.equal(w, expected), "forward: exactly the one-hot of argmax(logits + g)"
    (grad,) = torch.autograd.grad((c * w).sum(), logits)

    # backward: the Jacobian of y = softmax(z / tau) applied to c is y * (c - <c, y>) / tau
    y = torch.softmax((logits.detach() + noise) / tau, dim=-1)
    by_hand = y * (c - (c * y).sum(-1, keepdim=True)) / tau
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(grad, by_hand, atol=tol, rtol=tol)


def test_straight_through_with_a_generator_draws_the_same_noise_as_gumbel_noise() -> None:
    logits = torch.randn(6, 5, generator=generator(1))
    w = straight_through_gumbel(logits, generator=generator(7))
    noise = gumbel_noise(logits.shape, generator(7))
    assert torch.equal(w, F.one_hot((logits + noise).argmax(-1), 5).float())


def test_straight_through_picks_with_the_softmax_probabilities_like_torch() -> None:
    # The forward pick is a Gumbel-max sample, so its law is softmax(logits), whatever tau.
    N = 100_000
    logits = torch.tensor([1.0, 0.0, -0.5, 2.0, -3.0])
    p = torch.softmax(logits, -1)
    ours = straight_through_gumbel(logits.expand(N, 5), tau=2.0, generator=generator(0)).mean(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        theirs = F.gumbel_softmax(logits.expand(N, 5), tau=2.0, hard=True).mean(0)
    # 5 standard errors per category: a false alarm has probability ~3e-6 (and the seeds are fixed)
    se = (p * (1 - p) / N).sqrt()
    assert ((ours - p).abs() < 5 * se).all(), (ours, p)
    assert ((theirs - p).abs() < 5 * se).all(), (theirs, p)
    assert ((ours - theirs).abs() < 5 * math.sqrt(2) * se).all(), (ours, theirs)


def test_straight_through_pick_survives_a_large_temperature() -> None:
    logits, noise = torch.zeros(1, 2), torch.tensor([[0.0, 1e-3]])
    w = straight_through_gumbel(logits, tau=1e6, noise=noise)
    assert torch.equal(w, torch.tensor([[0.0, 1.0]]))


def test_straight_through_checks_tau_and_noise() -> None:
    logits = torch.zeros(2, 3)
    for tau in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=rf"tau must be > 0, got {tau}"):
            straight_through_gumbel(logits, tau)
    with pytest.raises(ValueError, match=r"noise has shape \(2, 4\) but logits have shape \(2, 3\)"):
        straight_through_gumbel(logits, noise=torch.zeros(2, 4))


# --- reinforce_surrogate


@st.composite
def reinforce_problems(draw, max_B: int = 4, max_S: int = 6):
    """logits (B, S) float64 leaf, picked (B,), rewards (B,), and a baseline: 0, a float, or a (B,) tensor."""
    B, S = draw(st.integers(1, max_B)), draw(st.integers(1, max_S))
    g = generator(draw(seeds))
    logits = (torch.randn(B, S, generator=g, dtype=torch.float64) * 2).requires_grad_()
    picked = torch.randint(S, (B,), generator=g)
    rewards = torch.randn(B, generator=g, dtype=torch.float64)
    kind = draw(st.sampled_from(["zero", "float", "tensor"]))
    baseline = {"zero": 0.0, "float": float(torch.randn(1, generator=g)) * 3,
                "tensor": torch.randn(B, generator=g, dtype=torch.float64)}[kind]
    return logits, picked, rewards, baseline


@given(reinforce_problems())
def test_reinforce_gradient_is_the_hand_formula(problem) -> None:
    logits, picked, rewards, baseline = problem
    B, S = logits.shape
    rewards = rewards.clone().requires_grad_()  # a reward that carries a graph must not be differentiated
    if isinstance(baseline, torch.Tensor):
        baseline = baseline.clone().requires_grad_()
    loss = reinforce_surrogate(torch.log_softmax(logits, -1), picked, rewards, baseline)
    assert loss.ndim == 0
    loss.backward()
    advantage = (rewards - baseline).detach()  # (B,)
    by_hand = -advantage[:, None] * (F.one_hot(picked, S) - torch.softmax(logits.detach(), -1)) / B
    torch.testing.assert_close(logits.grad, by_hand, atol=1e-12, rtol=1e-10)
    assert rewards.grad is None
    if isinstance(baseline, torch.Tensor):
        assert baseline.grad is None


@given(reinforce_problems(max_B=3, max_S=4))
def test_reinforce_is_unbiased_for_any_baseline(problem) -> None:
    # E over every joint pick (S**B of them, weighted by their probability) of the surrogate's gradient
    # equals the gradient of the expected loss mean_b sum_i a_bi * loss_bi, with loss = -reward.
    logits, _, _, baseline = problem
    B, S = logits.shape
    losses = torch.randn(B, S, generator=generator(B * 10 + S), dtype=torch.float64)
    a = torch.softmax(logits.detach(), -1)  # (B, S)
    expected = torch.zeros_like(logits)
    for picks in itertools.product(range(S), repeat=B):
        picked = torch.tensor(picks)
        prob = a[torch.arange(B), picked].prod()
        rewards = -losses[torch.arange(B), picked]
        (grad,) = torch.autograd.grad(reinforce_surrogate(torch.log_softmax(logits, -1), picked, rewards,
                                                          baseline), logits)
        expected += prob * grad
    (exact,) = torch.autograd.grad((torch.softmax(logits, -1) * losses).sum(-1).mean(), logits)
    torch.testing.assert_close(expected, exact, atol=1e-12, rtol=1e-9)


def test_reinforce_surrogate_names_the_shapes_it_got() -> None:
    lp, picked, rewards = torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), torch.zeros(3)
    cases = [(torch.zeros(3, 4, 1), picked, rewards, r"\(3, 4, 1\), \(3,\), \(3,\)"),
             (lp, torch.zeros(2, dtype=torch.long), rewards, r"\(3, 4\), \(2,\), \(3,\)"),
             (lp, picked, torch.zeros(3, 1), r"\(3, 4\), \(3,\), \(3, 1\)")]
    for log_probs, p, r, shapes in cases:
        with pytest.raises(ValueError, match=r"need log_probs \(B, S\), picked \(B,\), rewards \(B,\); got " + shapes):
            reinforce_surrogate(log_probs, p, r)


# --- the Picker, expected_loss and method_loss on a small find_by_colour batch


@pytest.fixture(scope="module")
def small() -> tuple[Picker, FindTask]:
    return make_picker(5, 3, size=8, seed=0), find_by_colour(4, length=4, n_symbols=5, n_colours=3, seed=1)


def test_picker_attends_like_torch_and_soft_reads_the_weighted_values(small) -> None:
    model, task = small
    with torch.no_grad():
        a = reference_weights(model, task)  # (N, S)
        torch.testing.assert_close(model.log_weights(task).exp(), a, atol=1e-6, rtol=1e-5)
        q = model.proj_q(model.ask(task.query))[:, None, :]
        k = model.proj_k(model.symbol(task.symbols) + model.colour(task.colours))
        context = F.scaled_dot_product_attention(q, k, model.value(task.symbols))[:, 0]  # (N, E)
        ce = F.cross_entropy(model.out(context), task.target, reduction="none")
        loss, per_example = method_loss(model, task, "soft")
    torch.testing.assert_close(per_example, ce, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(loss, ce.mean(), atol=1e-6, rtol=1e-5)


def test_expected_loss_is_the_probability_weighted_sum_over_every_pick(small) -> None:
    model, task = small
    with torch.no_grad():
        a, losses = reference_weights(model, task), item_losses(model, task)
        N, S = a.shape
        brute = sum(a[n, i] * losses[n, i] for n in range(N) for i in range(S)) / N
        torch.testing.assert_close(expected_loss(model, task), brute, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("method", ["reinforce", "reinforce_no_baseline", "gumbel_st"])
def test_hard_methods_read_exactly_one_item(small, method) -> None:
    model, task = small
    with torch.no_grad():
        losses = item_losses(model, task)  # (N, S)
        for seed in range(5):
            _, ce = method_loss(model, task, method, baseline=1.0, generator=generator(seed))
            gap = (ce[:, None] - losses).abs().min(-1).values  # (N,): distance to the nearest single-item loss
            assert (gap < 1e-5).all(), f"{method} read a mixture, not one item"


@pytest.mark.parametrize("method", ["reinforce", "reinforce_no_baseline"])
def test_entropy_bonus_is_minus_entropy_times_the_mean_entropy(small, method) -> None:
    model, task = small
    with torch.no_grad():
        plain, ce0 = method_loss(model, task, method, baseline=0.5, generator=generator(3))
        bonus, ce1 = method_loss(model, task, method, baseline=0.5, entropy=0.3, generator=generator(3))
        H = torch.distributions.Categorical(logits=model.log_weights(task)).entropy().mean()
    assert torch.equal(ce0, ce1), "same seed, same picks"
    torch.testing.assert_close(bonus - plain, -0.3 * H, atol=1e-6, rtol=1e-5)
    assert bonus < plain


@pytest.mark.parametrize("method", ["soft", "gumbel_st"])
def test_entropy_is_ignored_outside_reinforce(small, method) -> None:
    model, task = small
    with torch.no_grad():
        plain, _ = method_loss(model, task, method, generator=generator(3))
        bonus, _ = method_loss(model, task, method, entropy=0.3, generator=generator(3))
    assert torch.equal(plain, bonus)


def test_reinforce_without_baseline_is_reinforce_with_baseline_zero(small) -> None:
    model, task = small
    a = method_loss(model, task, "reinforce", baseline=0.0, generator=generator(4))
    b = method_loss(model, task, "reinforce_no_baseline", baseline=5.0, generator=generator(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_unknown_method_is_refused(small) -> None:
    model, task = small
    with pytest.raises(ValueError, match=r"method must be one of .*'soft'.*, got 'hard'"):
        method_loss(model, task, "hard")
    with pytest.raises(ValueError, match=r"got 'hard'"):
        gradient_estimates(model, task, "hard", 1)


# --- gradient_estimates: unbiased REINFORCE, biased straight-through, deterministic soft


@pytest.fixture(scope="module")
def estimates(small) -> dict[str, torch.Tensor]:
    model, task = small
    return {m: gradient_estimates(model, task, m, 1 if m in ("exact", "soft") else 400, generator=generator(0))
            for m in ("exact", "soft", "reinforce", "reinforce_no_baseline", "gumbel_st")}


def noise_floor(rows: torch.Tensor) -> torch.Tensor:
    """The expected norm of (mean of the rows - their expectation): sqrt(trace(cov) / n)."""
    return (rows.var(0).sum() / rows.shape[0]).sqrt()


def test_exact_gradient_is_the_gradient_of_expected_loss(small, estimates) -> None:
    model, task = small
    params = model.score_parameters()
    grads = torch.autograd.grad(expected_loss(model, task), params)
    assert estimates["exact"].shape == (1, sum(p.numel() for p in params))
    torch.testing.assert_close(estimates["exact"][0], torch.cat([g.reshape(-1) for g in grads]))
    twice = gradient_estimates(model, task, "exact", 2)
    assert torch.equal(twice[0], twice[1])


@pytest.mark.parametrize("method", ["reinforce", "reinforce_no_baseline"])
def test_reinforce_estimates_average_to_the_exact_gradient(estimates, method) -> None:
    rows, exact = estimates[method], estimates["exact"][0]
    error, floor = (rows.mean(0) - exact).norm(), noise_floor(rows)
    # ||error||^2 has expectation floor^2; beyond 3 floors is a < 0.3% event even if all the noise
    # were in one direction (chi-square with one degree of freedom).
    assert error < 3 * floor, f"{method}: error {float(error):.3g} vs noise floor {float(floor):.3g}"
    assert floor < exact.norm(), "the test has the power to see an error the size of the gradient"


def test_the_baseline_reduces_reinforce_variance(estimates) -> None:
    # with the batch's expected loss as baseline, the advantage is small; without it, it is ~ log(V)
    assert estimates["reinforce"].var(0).sum() < estimates["reinforce_no_baseline"].var(0).sum() / 4


def test_straight_through_is_biased(estimates) -> None:
    rows, exact = estimates["gumbel_st"], estimates["exact"][0]
    error, floor = (rows.mean(0) - exact).norm(), noise_floor(rows)
    assert error > 5 * floor, f"bias {float(error):.3g} is not above the noise floor {float(floor):.3g}"
    assert error > 0.1 * exact.norm()
    assert rows.var(0).sum() < estimates["reinforce"].var(0).sum(), "low variance is what the bias buys"


def test_soft_gradient_has_no_randomness(small) -> None:
    model, task = small
    rows = gradient_estimates(model, task, "soft", 3, generator=generator(0))
    assert torch.equal(rows[0], rows[1]) and torch.equal(rows[0], rows[2])
    assert rows[0].abs().sum() > 0


# --- accuracy and train_picker


@pytest.fixture(scope="module")
def find8() -> tuple[FindTask, FindTask]:
    return find_by_colour(2000, length=8, seed=0), find_by_colour(500, length=8, seed=100)


def test_train_picker_is_deterministic_and_reports_its_history(find8) -> None:
    train, test = find8
    runs = []
    for _ in range(2):
        model = make_picker(10, 6, size=16, seed=3)
        history = train_picker(model, train, "reinforce", 12, eval_task=test, eval_every=5, seed=4)
        runs.append((history, [p.detach().clone() for p in model.parameters()]))
    (h1, p1), (h2, p2) = runs
    assert set(h1) == {"loss", "steps", "accuracy", "seconds"}
    assert len(h1["loss"]) == 12 and h1["steps"] == [5, 10, 12] and len(h1["accuracy"]) == 3
    assert isinstance(h1["seconds"], float) and h1["seconds"] > 0
    assert all(0.0 <= acc <= 1.0 for acc in h1["accuracy"])
    assert h1["loss"] == h2["loss"] and h1["accuracy"] == h2["accuracy"]
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))
    other = train_picker(make_picker(10, 6, size=16, seed=3), train, "reinforce", 12, seed=5)
    assert other["loss"] != h1["loss"] and other["steps"] == [] and other["accuracy"] == []


class RecordingTask(FindTask):
    """A FindTask that remembers which batches were drawn from it."""

    def __getitem__(self, index):
        self.seen.append(index.clone())
        return super().__getitem__(index)


def test_every_method_sees_the_same_batches(find8) -> None:
    train, _ = find8
    seen = {}
    for i, method in enumerate(METHODS):  # different models too: the batches depend on the seed alone
        task = RecordingTask(train.symbols, train.colours, train.query, train.position, train.target)
        task.seen = []
        train_picker(make_picker(10, 6, size=16, seed=i), task, method, 4, batch_size=8, seed=2)
        seen[method] = torch.stack(task.seen)
    assert all(torch.equal(seen["soft"], s) for s in seen.values())


@pytest.mark.parametrize("method", ["soft", "reinforce", "gumbel_st"])
def test_train_picker_learns_find_by_colour(find8, method) -> None:
    train, test = find8
    model = make_picker(10, 6, size=16, seed=0)
    assert accuracy(model, test, method)[0] < 0.5  # untrained: near chance (1/10)
    history = train_picker(model, train, method, 200, eval_task=test, seed=0)
    answer, pick = accuracy(model, test, method)
    assert history["accuracy"][-1] == answer > 0.95
    assert pick > 0.95, "the task is solved by attending to the asked item"
    assert history["steps"] == [50, 100, 150, 200]


# --- data.find_by_colour and FindTask


@given(n=st.integers(1, 20), length=st.integers(2, 12), n_symbols=st.integers(2, 12),
       n_colours=st.integers(2, 8), seed=seeds)
def test_find_by_colour_has_exactly_one_item_of_the_asked_colour(n, length, n_symbols, n_colours, seed) -> None:
    task = find_by_colour(n, length, n_symbols, n_colours, seed=seed)
    assert len(task) == n
    assert task.symbols.shape == task.colours.shape == (n, length)
    assert task.query.shape == task.position.shape == task.target.shape == (n,)
    assert all(t.dtype == torch.long for t in (task.symbols, task.colours, task.query, task.position, task.target))
    assert ((0 <= task.symbols) & (task.symbols < n_symbols)).all()
    assert ((0 <= task.colours) & (task.colours < n_colours)).all()
    assert ((0 <= task.position) & (task.position < length)).all()
    asked = task.colours == task.query[:, None]  # (N, S)
    assert (asked.sum(-1) == 1).all(), "exactly one item per example has the asked colour"
    assert torch.equal(asked.long().argmax(-1), task.position)
    for i in range(n):
        assert task.target[i] == task.symbols[i, task.position[i]]


def test_find_by_colour_draws_the_other_colours_uniformly() -> None:
    task = find_by_colour(6000, length=6, n_symbols=4, n_colours=4, seed=0)
    others = task.colours.masked_select(task.colours != task.query[:, None])
    query = task.query[:, None].expand(-1, 6).masked_select(task.colours != task.query[:, None])
    for c in range(4):
        counts = torch.bincount(others[query == c], minlength=4).double()
        assert counts[c] == 0
        share = counts / counts.sum()
        # 30000 items over 4 asked colours, ~2500 per other colour: 5 standard errors is ~0.03
        for d in range(4):
            if d != c:
                assert abs(share[d] - 1 / 3) < 0.03, share
    position_share = torch.bincount(task.position, minlength=6).double() / 6000
    assert (position_share - 1 / 6).abs().max() < 0.025  # 5 standard errors of a 1/6 share of 6000


def test_find_by_colour_is_deterministic_per_seed() -> None:
    a, b, c = find_by_colour(50, seed=3), find_by_colour(50, seed=3), find_by_colour(50, seed=4)
    fields = ("symbols", "colours", "query", "position", "target")
    assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in fields)
    assert not torch.equal(a.symbols, c.symbols) and not torch.equal(a.colours, c.colours)
    assert not torch.equal(a.position, c.position)


@pytest.mark.parametrize("kwargs, named", [
    ({"n": 0}, "n=0"), ({"n": 5, "length": 1}, "length=1"),
    ({"n": 5, "n_symbols": 1}, "n_symbols=1"), ({"n": 5, "n_colours": 1}, "n_colours=1"),
])
def test_find_by_colour_refuses_bad_sizes(kwargs, named) -> None:
    with pytest.raises(ValueError, match=rf"need n >= 1, length >= 2, .*got .*{named}"):
        find_by_colour(**kwargs)


def test_find_task_indexes_with_a_slice_and_with_a_long_tensor() -> None:
    task = find_by_colour(10, length=5, seed=0)
    fields = ("symbols", "colours", "query", "position", "target")
    part = task[2:6]
    assert isinstance(part, FindTask) and len(part) == 4
    assert all(torch.equal(getattr(part, f), getattr(task, f)[2:6]) for f in fields)
    idx = torch.tensor([7, 0, 7, 3])
    picked = task[idx]
    assert len(picked) == 4
    for j, i in enumerate(idx.tolist()):
        assert all(torch.equal(getattr(picked, f)[j], getattr(task, f)[i]) for f in fields)
    # the invariant survives indexing
    assert torch.equal(picked.target, picked.symbols[torch.arange(4), picked.position])


# --- timing.best_time


class FakeClock:
    """perf_counter that moves only when the timed function says so."""

    def __init__(self) -> None:
        self.now, self.calls = 0.0, 0

    def __call__(self) -> float:
        return self.now

    def function(self, durations):
        it = iter(durations)

        def fn() -> None:
            self.calls += 1
            self.now += next(it)

        return fn


def test_best_time_is_the_minimum_over_repeats(monkeypatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=clock))
    # warmup 1 (slow, untimed), then 3 repeats of 2 calls each
    fn = clock.function([5.0, 0.03, 0.03, 0.01, 0.01, 0.02, 0.02])
    assert timing.best_time(fn, repeat=3, number=2, warmup=1) == pytest.approx(0.01)
    assert clock.calls == 7


def test_best_time_picks_number_as_timeit_does(monkeypatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=clock))
    fn = clock.function(itertools.repeat(0.001))
    # runs of 1, 2, 4, 8 calls last < 0.01 s; 16 calls last 0.016 s: number = 16
    assert timing.best_time(fn, repeat=2, warmup=0, min_seconds=0.01) == pytest.approx(0.001)
    assert clock.calls == (1 + 2 + 4 + 8 + 16) + 2 * 16


def test_best_time_measures_a_known_sleep() -> None:
    result = timing.best_time(lambda: time.sleep(0.005), repeat=3, number=1, warmup=0)
    assert isinstance(result, float)
    assert 0.005 <= result < 0.1  # sleep lasts at least its argument; a busy machine adds a little


@pytest.mark.parametrize("kwargs", [{"repeat": 0}, {"number": 0}, {"warmup": -1}])
def test_best_time_refuses_bad_counts(kwargs) -> None:
    with pytest.raises(ValueError, match=r"need repeat >= 1, number >= 1, warmup >= 0; got"):
        timing.best_time(lambda: None, **kwargs)


def test_best_times_interleaves_rounds_so_a_burst_of_load_hits_every_function(monkeypatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=clock))
    order = []
    load = {"extra": 0.0}

    def timed(name, cost):
        def fn() -> None:
            order.append(name)
            clock.now += cost + load["extra"]
        return fn

    fns = {"a": timed("a", 0.02), "b": timed("b", 0.03)}
    # each call lasts >= min_seconds: number = 1 for both, found after the warmup call
    result = timing.best_times(fns, repeat=3, warmup=1, min_seconds=0.01)
    assert result == {"a": pytest.approx(0.02), "b": pytest.approx(0.03)}
    assert order == ["a", "a", "b", "b"] + ["a", "b"] * 3  # setup per function, then interleaved rounds
    with pytest.raises(ValueError, match="at least one function"):
        timing.best_times({})
    with pytest.raises(ValueError, match="need repeat >= 1"):
        timing.best_times(fns, repeat=0)


def test_reinforce_surrogate_rejects_bad_picks_and_baselines() -> None:
    logp = torch.log_softmax(torch.zeros(3, 4), dim=-1)
    rewards = torch.ones(3)
    with pytest.raises(ValueError, match=r"baseline must be a number or shaped like rewards \(3,\), got \(3, 1\)"):
        reinforce_surrogate(logp, torch.zeros(3, dtype=torch.long), rewards, torch.ones(3, 1))
    with pytest.raises(ValueError, match="picked must be long indices in 0..S-1=3"):
        reinforce_surrogate(logp, torch.zeros(3), rewards)
    with pytest.raises(ValueError, match="picked must be long indices in 0..S-1=3"):
        reinforce_surrogate(logp, torch.tensor([0, 1, 4]), rewards)


def test_accuracy_and_train_picker_reject_bad_arguments() -> None:
    task = find_by_colour(16, length=4, seed=0)
    model = Picker(10, 6, 8)
    with pytest.raises(ValueError, match="method must be one of"):
        accuracy(model, task, "nonsense")
    with pytest.raises(ValueError, match="method must be one of"):
        train_picker(model, task, "nonsense", 1)
    with pytest.raises(ValueError, match="eval_every >= 1"):
        train_picker(model, task, "soft", 1, batch_size=4, eval_task=task, eval_every=0)
