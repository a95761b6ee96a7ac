r"""Attention over a series, a genome and a shopping history: three seeded toy tasks and their small models.

Chapter 10 (``chapters/10d_time_series_dna_recommendation.ipynb``) trains each one.

- **Time series.** :func:`seasonal_series` draws a noisy series with a season
  length :math:`T_\text{season}` = ``period`` (a day of hourly readings, say) and
  a slowly wandering level; :func:`forecast_windows` cuts it into (history,
  future) pairs, a look-back of :math:`T_\text{in}` = ``history`` steps and a
  horizon of :math:`T_\text{out}` = ``horizon`` steps;
  :class:`SeasonalAttentionForecaster` forecasts each future step as a
  weighted average of the past values, the weights coming from attention
  between the time features of the step to forecast (query) and of each past
  step (keys). Baselines: :func:`naive_forecast`, :func:`seasonal_naive_forecast`,
  :func:`seasonal_mean_forecast`; metrics :func:`mae`, :func:`mase`.
- **DNA.** :func:`planted_motif_sequences` draws random A/C/G/T sequences;
  the positives carry one copy of a short motif (at most one base changed),
  the negatives a shuffled decoy with the same letters and no copy.
  :class:`MotifAttentionClassifier` is a convolution (k-mer detectors) plus
  attention pooling with a learned query. Baselines: :func:`kmer_counts` +
  :func:`fit_logistic_regression`, and :class:`MotifMaxPoolClassifier`, the
  same convolution pooled by each channel's maximum (DeepBind's recipe).
- **Recommendation.** :func:`purchase_histories` draws users' purchase
  sequences in which an accessory follows its product a few steps later;
  :class:`NextItemTransformer` is a one-block causal self-attention model in
  the style of SASRec (Kang and McAuley 2018). Baselines:
  :func:`popularity_scores`, :func:`markov_scores` and :class:`NextItemGRU`, a
  recurrent model in the style of GRU4Rec (Hidasi et al. 2016); metric
  :func:`hit_rate_at_k`.

Every generator takes a ``seed`` and uses its own generator (no global RNG).
All batch-first; masks are bool, ``True`` = may attend. Shapes: B examples
(windows, sequences or users), T a sequence's (or a whole series') length,
T_in, T_out and T_season as above, D a model's width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from .._validate import shape_str
from ..attention import scaled_dot_product_attention
from ..masks import causal_mask, padding_mask
from ..positional import LearnedPositionalEmbedding
from ..transformer import EncoderLayer

__all__ = [
    # time series
    "SeasonalSeries", "seasonal_series", "forecast_windows", "time_features",
    "SeasonalAttentionForecaster", "naive_forecast", "seasonal_naive_forecast", "seasonal_mean_forecast",
    "mae", "mase", "weight_near_seasonal_lags",
    # DNA
    "NUCLEOTIDES", "MotifSequences", "planted_motif_sequences", "motif_matches", "one_hot_dna", "kmer_counts",
    "fit_logistic_regression", "AttentionPooling", "MotifAttentionClassifier", "MotifMaxPoolClassifier",
    # recommendation
    "PurchaseHistories", "purchase_histories", "NextItemTransformer", "NextItemGRU", "popularity_scores",
    "markov_scores", "hit_rate_at_k",
]


def _positive_int(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return n


def _check_tensor(name: str, x: object, ndim: int, legend: str, *, floating: bool) -> torch.Tensor:
    """``x`` must be a ``ndim``-D tensor of floats (``floating``) or of integers; else a ValueError naming it."""
    kind = "floating-point" if floating else "integer"
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor {legend}, got {type(x).__name__}")
    if x.dim() != ndim:
        raise ValueError(f"{name} must be {legend}, got shape {shape_str(x)}")
    is_integer = not (x.dtype.is_floating_point or x.dtype == torch.bool or x.is_complex())
    if not (x.dtype.is_floating_point if floating else is_integer):
        raise ValueError(f"{name} must be {'a' if floating else 'an'} {kind} tensor {legend}, got dtype {x.dtype}")
    return x


def _check_long(name: str, x: object, ndim: int, legend: str) -> torch.Tensor:
    return _check_tensor(name, x, ndim, legend, floating=False)


def _check_float(name: str, x: object, ndim: int, legend: str) -> torch.Tensor:
    return _check_tensor(name, x, ndim, legend, floating=True)


def _lengths_mask(lengths: torch.Tensor | None, B: int, T: int) -> torch.Tensor | None:
    """(B, T) bool, True = a real position; None when there is no padding."""
    if lengths is None:
        return None
    _check_long("lengths", lengths, 1, "(B,)")
    if lengths.shape[0] != B:
        raise ValueError(f"lengths has {lengths.shape[0]} entries for a batch of B={B}")
    if lengths.numel() and int(lengths.min()) < 1:
        raise ValueError(f"every sequence needs at least one real position, got lengths min {int(lengths.min())}")
    return padding_mask(lengths, T)  # (B, T); raises if a length exceeds T


# =========================================================================== time series


@dataclass(frozen=True)
class SeasonalSeries:
    """A seasonal series ``values[t] = level[t] + season[t mod period] + noise[t]``.

    ``values``, ``level``: (T,) float32; ``season``: (T_season,) with mean 0 and
    standard deviation 1, T_season = ``period``; ``noise_std``: the standard
    deviation of the noise.
    """

    values: torch.Tensor
    level: torch.Tensor
    season: torch.Tensor
    period: int
    noise_std: float


def seasonal_series(
    num_steps: int,
    period: int = 24,
    *,
    noise_std: float = 0.5,
    level_std: float = 0.02,
    harmonics: int | None = None,
    seed: int = 0,
) -> SeasonalSeries:
    r"""A seeded series with one seasonal shape, a slowly wandering level and noise.

    .. math::
        y_t = \mu_t + \gamma_{t \bmod T_\text{season}} + \varepsilon_t,\qquad
        \mu_t = \mu_{t-1} + \eta_t,\ \eta_t \sim \mathcal N(0, \sigma_\mu^2),\qquad
        \varepsilon_t \sim \mathcal N(0, \sigma^2)

    with level :math:`\mu` (``level_std`` = :math:`\sigma_\mu`) and season
    length :math:`T_\text{season}` = ``period``. The shape :math:`\gamma` is a
    sum of ``harmonics`` cosines (default all :math:`T_\text{season}/2` of them)
    with random amplitudes in 0.5..1 and random phases, rescaled to mean 0 and
    standard deviation 1: a profile with sharp features, so that neighbouring
    phases say little about each other. With noise the naive seasonal forecast
    :math:`\hat y_{t} = y_{t-T_\text{season}}` errs by
    :math:`\varepsilon_t - \varepsilon_{t-T_\text{season}}` (variance
    :math:`2\sigma^2`), while averaging the same phase over k past seasons
    errs by about :math:`\sigma^2 (1 + 1/k)` when the level is steady.

    Returns a :class:`SeasonalSeries` with ``values`` (num_steps,).
    """
    num_steps, period = _positive_int("num_steps", num_steps), _positive_int("period", period)
    if period < 2:
        raise ValueError(f"period must be at least 2, got {period}")
    harmonics = _positive_int("harmonics", period // 2 if harmonics is None else harmonics)
    if noise_std < 0 or level_std < 0:
        raise ValueError(f"noise_std and level_std must be >= 0, got {noise_std} and {level_std}")
    g = torch.Generator().manual_seed(seed)
    phase = 2 * math.pi * torch.arange(period, dtype=torch.float64) / period  # (T_season,)
    amplitude = 0.5 + 0.5 * torch.rand(harmonics, generator=g, dtype=torch.float64)
    offset = 2 * math.pi * torch.rand(harmonics, generator=g, dtype=torch.float64)
    k = torch.arange(1, harmonics + 1, dtype=torch.float64)
    season = (amplitude[:, None] * torch.cos(k[:, None] * phase[None, :] + offset[:, None])).sum(0)  # (T_season,)
    season = (season - season.mean()) / season.std(unbiased=False)
    level = torch.cumsum(level_std * torch.randn(num_steps, generator=g, dtype=torch.float64), 0)  # (T,), T = num_steps
    noise = noise_std * torch.randn(num_steps, generator=g, dtype=torch.float64)
    t = torch.arange(num_steps)
    values = level + season[t % period] + noise
    return SeasonalSeries(values.float(), level.float(), season.float(), period, float(noise_std))


def forecast_windows(
    values: torch.Tensor, history: int, horizon: int, starts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut (history, future) pairs out of a series.

    Window n covers ``values[starts[n] : starts[n] + history]`` (the past,
    :math:`T_\text{in}` steps) and the next ``horizon`` steps (the future,
    :math:`T_\text{out}` steps).

    Shapes: values (T,), starts (B,) -> past (B, T_in), future (B, T_out).
    """
    _check_float("values", values, 1, "(T,)")
    history, horizon = _positive_int("history", history), _positive_int("horizon", horizon)
    _check_long("starts", starts, 1, "(B,)")
    N = values.shape[0]
    if starts.numel() and (int(starts.min()) < 0 or int(starts.max()) + history + horizon > N):
        raise ValueError(f"starts must lie in 0..T-T_in-T_out = {N - history - horizon} for a series of T={N}, "
                         f"got min {int(starts.min())} and max {int(starts.max())}")
    index = starts[:, None] + torch.arange(history + horizon)[None, :]  # (B, T_in + T_out)
    window = values[index]  # (B, T_in + T_out)
    return window[:, :history], window[:, history:]


def time_features(times: torch.Tensor, period: int, harmonics: int) -> torch.Tensor:
    r"""The phase of each time step within the period, as sines and cosines.

    .. math:: \phi(t) = [\cos(2\pi g t/T_\text{season}),\ \sin(2\pi g t/T_\text{season})]_{g=1..G}

    with :math:`T_\text{season}` = ``period`` and G = ``harmonics``. Two steps a
    whole number of seasons apart get the same features, and
    :math:`\phi(t)\cdot\phi(t') = \sum_g \cos(2\pi g (t - t')/T_\text{season})`
    depends only on the lag (the sinusoidal encoding of chapter 7, with the
    season length as the longest wavelength).

    Shapes: times (...) int -> (..., 2G) float32.
    """
    if not isinstance(times, torch.Tensor):
        raise ValueError(f"times must be a torch.Tensor, got {type(times).__name__}")
    _positive_int("period", period), _positive_int("harmonics", harmonics)
    angle = 2 * math.pi * (times.double() % period) / period  # (...)
    k = torch.arange(1, harmonics + 1, dtype=torch.float64)
    a = angle[..., None] * k  # (..., G): k holds the harmonics g = 1..G
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1).float()  # (..., 2G)


class SeasonalAttentionForecaster(nn.Module):
    r"""Forecast each future step as an attention-weighted average of the past values.

    .. math::
        q_i = [\,c \odot \phi(t_i);\ \alpha\,],\qquad k_j = [\,\phi(t_j);\ r_j\,],\qquad v_j = y_j,\qquad
        \hat y_i = \sum_j \mathrm{softmax}_j(q_i\cdot k_j)\, y_j

    for the forecast steps i = 1..T_out (queries) and the past steps
    j = 1..T_in (keys):

    - query: the time features :math:`\phi` (:func:`time_features`) of the step
      to forecast, each harmonic g scaled by a learned :math:`c_g`, and a learned
      recency slope :math:`\alpha`;
    - keys: the time features of each past step and its recency
      :math:`r_j \in [-1, 0)` (:math:`(j - 1 - T_\text{in})/T_\text{in}`);
    - values: the past values themselves, so the forecast is a weighted
      average of the history, and its weights say exactly which past steps it used.

    The score is then a learned function of the lag alone,
    :math:`q_i\cdot k_j = \sum_g c_g \cos(2\pi g\,(t_i - t_j)/T_\text{season}) + \alpha\, r_j`
    (the same phase one or more seasons back, and how much to prefer recent
    ones): like rotary encodings (chapter 7), queries and keys carry absolute
    times but their dot product sees only differences. Scores are not divided
    by :math:`\sqrt{E}`; the learned :math:`c_g` set the sharpness.

    Args:
        period: :math:`T_\text{season}`, the season length the time features use.
        history: :math:`T_\text{in}`, the number of past steps.
        horizon: :math:`T_\text{out}`, the number of future steps.
        harmonics: G, the cosine/sine pairs per time step (default T_season/2).

    ``forward(past (B, T_in), start (B,))`` -> forecast (B, T_out), weights (B, T_out, T_in);
    ``start[n]`` is the time index of ``past[n, 0]``.
    """

    def __init__(self, period: int, history: int, horizon: int, *, harmonics: int | None = None) -> None:
        super().__init__()
        self.period, self.history, self.horizon = (
            _positive_int(n, v) for n, v in (("period", period), ("history", history), ("horizon", horizon)))
        self.harmonics = _positive_int("harmonics", period // 2 if harmonics is None else harmonics)
        self.harmonic_weight = nn.Parameter(torch.full((self.harmonics,), 0.1))  # c (G,)
        self.recency_weight = nn.Parameter(torch.zeros(()))  # alpha

    def forward(self, past: torch.Tensor, start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_float("past", past, 2, "(B, T_in)")
        _check_long("start", start, 1, "(B,)")
        B, S = past.shape
        H, m, K = self.horizon, self.period, self.harmonics  # here S = T_in, H = T_out, m = T_season, K = G
        if S != self.history or start.shape[0] != B:
            raise ValueError(f"past must be (B, T_in={self.history}) with start (B,), got {shape_str(past)} "
                             f"and {shape_str(start)}")
        t_past = start[:, None] + torch.arange(S)[None, :]  # (B, T_in)
        t_future = start[:, None] + S + torch.arange(H)[None, :]  # (B, T_out)
        c = self.harmonic_weight.repeat(2).to(past.dtype)  # (2G,): c_g for the cosine and the sine of harmonic g
        recency = ((torch.arange(S, dtype=past.dtype) - S) / S).expand(B, S)  # (B, T_in)
        q = torch.cat([c * time_features(t_future, m, K).to(past.dtype),
                       self.recency_weight.to(past.dtype).expand(B, H, 1)], -1)  # (B, T_out, 2G+1)
        k = torch.cat([time_features(t_past, m, K).to(past.dtype), recency[..., None]], -1)  # (B, T_in, 2G+1)
        out, weights = scaled_dot_product_attention(q, k, past[..., None], scale=1.0)  # (B, T_out, 1), (B, T_out, T_in)
        return out[..., 0], weights  # (B, T_out), (B, T_out, T_in)


def naive_forecast(past: torch.Tensor, horizon: int) -> torch.Tensor:
    r"""Repeat the last value: :math:`\hat y_{t+i} = y_t`, t the last past step.

    Shapes: past (B, T_in) -> (B, T_out).
    """
    _check_float("past", past, 2, "(B, T_in)")
    return past[:, -1:].expand(-1, _positive_int("horizon", horizon)).clone()


def seasonal_naive_forecast(past: torch.Tensor, horizon: int, period: int) -> torch.Tensor:
    r"""Repeat the last season: :math:`\hat y_{t+i} = y_{t+i-k\, T_\text{season}}`.

    Here :math:`k = \lceil i/T_\text{season}\rceil`, t is the last past step,
    i = 1..T_out the steps ahead and :math:`T_\text{season}` = ``period``. For
    :math:`T_\text{out} \le T_\text{season}` this is :math:`y_{t+i-T_\text{season}}`;
    beyond one season the last season starts over. Shapes: past (B, T_in) -> (B, T_out).
    """
    _check_float("past", past, 2, "(B, T_in)")
    horizon, period = _positive_int("horizon", horizon), _positive_int("period", period)
    S = past.shape[1]
    if period > S:
        raise ValueError(f"the seasonal naive forecast needs a whole season, period T_season <= T_in, "
                         f"got T_season={period}, past {shape_str(past)}")
    return past[:, S - period + torch.arange(horizon) % period]  # (B, T_out): a new tensor (advanced indexing)


def seasonal_mean_forecast(past: torch.Tensor, horizon: int, period: int, seasons: int) -> torch.Tensor:
    r"""Average the same phase over the last k = ``seasons`` seasons.

    .. math:: \hat y_{t+i} = \frac1k\sum_{c=1}^{k} y_{t+i-c\, T_\text{season}}

    t is the last past step, i = 1..T_out the steps ahead and
    :math:`T_\text{season}` = ``period``. Shapes: past (B, T_in) -> (B, T_out);
    needs T_out <= T_season and seasons·T_season <= T_in.
    """
    _check_float("past", past, 2, "(B, T_in)")
    horizon, period, seasons = (_positive_int(n, v) for n, v in
                                (("horizon", horizon), ("period", period), ("seasons", seasons)))
    S = past.shape[1]
    if horizon > period or seasons * period > S:
        raise ValueError(f"the seasonal mean needs T_out <= T_season and seasons*T_season <= T_in, got "
                         f"T_out={horizon}, T_season={period}, seasons={seasons}, past {shape_str(past)}")
    stacked = torch.stack([past[:, S - i * period: S - i * period + horizon] for i in range(1, seasons + 1)])
    return stacked.mean(0)  # (B, T_out)


def mae(forecast: torch.Tensor, actual: torch.Tensor) -> float:
    """Mean absolute error over every forecast step. Shapes: both (B, T_out)."""
    if not isinstance(forecast, torch.Tensor) or not isinstance(actual, torch.Tensor) or forecast.shape != actual.shape:
        raise ValueError(f"forecast and actual must be tensors of one shape, got "
                         f"{getattr(forecast, 'shape', type(forecast))} and {getattr(actual, 'shape', type(actual))}")
    return float((forecast - actual).abs().mean())


def mase(forecast: torch.Tensor, actual: torch.Tensor, train_values: torch.Tensor, period: int) -> float:
    r"""Mean absolute scaled error (Hyndman and Koehler 2006).

    .. math:: \mathrm{MASE} = \frac{\mathrm{MAE}}
              {\frac{1}{T-T_\text{season}}\sum_{t>T_\text{season}} |y_t - y_{t-T_\text{season}}|}

    The scale is the in-sample MAE of the naive seasonal forecast on the
    training series: MASE < 1 means better than that one-step benchmark.
    Shapes: forecast, actual (B, T_out); train_values (T,) with T > T_season = ``period``.
    """
    _check_float("train_values", train_values, 1, "(T,)")
    period = _positive_int("period", period)
    if train_values.shape[0] <= period:
        raise ValueError(f"train_values needs more than T_season={period} steps, got {shape_str(train_values)}")
    scale = (train_values[period:] - train_values[:-period]).abs().mean()
    return mae(forecast, actual) / float(scale)


def weight_near_seasonal_lags(weights: torch.Tensor, history: int, period: int, tolerance: int = 1) -> torch.Tensor:
    r"""The share of each forecast's attention on past steps within ``tolerance`` of a whole number of periods back.

    Counting from 0 as the code does, query i (the step :math:`T_\text{in} + i`)
    and key j are :math:`\text{lag} = T_\text{in} + i - j` steps apart; the
    key counts if :math:`\min_{c \ge 1} |\text{lag} - c\, T_\text{season}| \le`
    tolerance, with :math:`T_\text{season}` = ``period``.

    Shapes: weights (B, T_out, T_in) -> (B, T_out).
    """
    _check_float("weights", weights, 3, "(B, T_out, T_in)")
    B, H, S = weights.shape  # H = T_out, S = T_in
    if S != history:
        raise ValueError(f"weights has T_in={S} keys but history={history}")
    period = _positive_int("period", period)
    lag = S + torch.arange(H)[:, None] - torch.arange(S)[None, :]  # (T_out, T_in), >= 1
    distance = torch.minimum(lag % period, period - lag % period)  # (T_out, T_in)
    near = (distance <= tolerance) & (lag >= period - tolerance)  # (T_out, T_in)
    return (weights * near).sum(-1)  # (B, T_out)


# =========================================================================== DNA

NUCLEOTIDES = "ACGT"


@dataclass(frozen=True)
class MotifSequences:
    """DNA sequences as ids 0..3 (A, C, G, T), with where the motif or its decoy was planted.

    ``tokens`` (B, T) long; ``labels`` (B,) long, 1 = carries the motif;
    ``starts`` (B,) long, the first position of the planted copy (label 1) or
    of the shuffled decoy (label 0); ``motif`` the consensus, e.g. ``"TATAAT"``.
    """

    tokens: torch.Tensor
    labels: torch.Tensor
    starts: torch.Tensor
    motif: str

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def text(self, index: int) -> str:
        return "".join(NUCLEOTIDES[int(i)] for i in self.tokens[index])


def _encode_dna(text: str) -> np.ndarray:
    if not text or any(c not in NUCLEOTIDES for c in text):
        raise ValueError(f"a DNA string must be non-empty and use only {NUCLEOTIDES}, got {text!r}")
    return np.array([NUCLEOTIDES.index(c) for c in text])


def _count_matches(seq: np.ndarray, motif: np.ndarray, max_mismatches: int) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(seq, len(motif))  # (T-k+1, k)
    return np.flatnonzero((windows != motif).sum(1) <= max_mismatches)


def motif_matches(tokens: torch.Tensor, motif: str, max_mismatches: int = 1) -> list[list[int]]:
    """For each sequence, the start of every window within ``max_mismatches`` substitutions of ``motif``.

    Shapes: tokens (B, T) ids 0..3 -> B lists of positions.
    """
    _check_long("tokens", tokens, 2, "(B, T)")
    m = _encode_dna(motif)
    if tokens.shape[1] < len(m):
        raise ValueError(f"sequences of T={tokens.shape[1]} are shorter than the motif ({len(m)})")
    arr = tokens.numpy()
    return [_count_matches(row, m, max_mismatches).tolist() for row in arr]


def planted_motif_sequences(
    num_sequences: int, length: int = 80, motif: str = "TATAAT", *, seed: int = 0
) -> MotifSequences:
    r"""Random DNA; half the sequences carry one copy of ``motif``, the other half a decoy.

    The rule (checked by the tests with :func:`motif_matches`): a sequence is
    positive iff some window of it is within **one substitution** of the motif,
    and a positive has exactly one such window, the planted copy.

    - background: uniform i.i.d. bases, redrawn until it has no such window
      besides the planted one;
    - positive: a copy of the motif at a uniform position, unchanged with
      probability 1/2, else with one base changed at random;
    - negative: the same kind of copy, *shuffled* (and redrawn until the
      sequence has no window within one substitution of the motif). Both
      classes then have about the same base composition, so counting bases
      cannot tell them apart.

    Labels alternate 1, 0, 1, 0, ... Returns a :class:`MotifSequences`.
    """
    num_sequences, length = _positive_int("num_sequences", num_sequences), _positive_int("length", length)
    m = _encode_dna(motif)
    k = len(m)
    if length < 2 * k:
        raise ValueError(f"length must be at least twice the motif's ({2 * k}), got {length}")
    rng = np.random.default_rng(seed)
    tokens = np.empty((num_sequences, length), dtype=np.int64)
    labels = np.arange(num_sequences) % 2 == 0
    starts = rng.integers(0, length - k + 1, size=num_sequences)
    for n in range(num_sequences):
        s = starts[n]
        while True:  # redraw the copy and the background until the rule holds
            copy = m.copy()
            if rng.random() < 0.5:
                i = rng.integers(k)
                copy[i] = (copy[i] + rng.integers(1, 4)) % 4  # a different base
            if not labels[n]:
                copy = rng.permutation(copy)  # a decoy shifted against the motif can never pass: redrawn
            seq = rng.integers(0, 4, size=length)
            seq[s: s + k] = copy
            found = _count_matches(seq, m, 1)
            if (labels[n] and found.tolist() == [s]) or (not labels[n] and found.size == 0):
                break
        tokens[n] = seq
    return MotifSequences(torch.from_numpy(tokens), torch.from_numpy(labels.astype(np.int64)),
                          torch.from_numpy(starts.astype(np.int64)), motif)


def one_hot_dna(tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """One-hot bases; padded positions (at or after ``lengths[n]``) are all zeros.

    Shapes: tokens (B, T) ids 0..3, lengths (B,) or None -> (B, T, 4) float32.
    """
    _check_long("tokens", tokens, 2, "(B, T)")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) > 3):
        raise ValueError(f"tokens must be base ids 0..3 ({NUCLEOTIDES}), got min {int(tokens.min())} "
                         f"and max {int(tokens.max())}")
    x = torch.nn.functional.one_hot(tokens, 4).float()  # (B, T, 4)
    keep = _lengths_mask(lengths, *tokens.shape)
    return x if keep is None else x * keep[..., None]


def kmer_counts(tokens: torch.Tensor, k: int) -> torch.Tensor:
    """How often each of the 4^k words of length k occurs in each sequence (a bag of k-mers).

    Shapes: tokens (B, T) ids 0..3 -> (B, 4^k) float32; k=1 is the base composition.
    """
    _check_long("tokens", tokens, 2, "(B, T)")
    k = _positive_int("k", k)
    N, T = tokens.shape
    if T < k:
        raise ValueError(f"sequences of T={T} have no {k}-mers")
    index = torch.zeros(N, T - k + 1, dtype=torch.long)
    for i in range(k):
        index = index * 4 + tokens[:, i: T - k + 1 + i]  # (B, T-k+1): the k-mer's number in base 4
    counts = torch.zeros(N, 4 ** k)
    counts.scatter_add_(1, index, torch.ones(N, T - k + 1))
    return counts


def fit_logistic_regression(
    features: torch.Tensor, labels: torch.Tensor, *, l2: float = 1e-3, steps: int = 100
) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""Fit :math:`p(y=1\mid x) = \sigma(w\cdot z + b)` on standardised features z, by L-BFGS.

    Returns ``predict(features (B', n_features)) -> probabilities (B',)``. Shapes:
    features (B, n_features) float, labels (B,) 0/1.
    """
    _check_float("features", features, 2, "(B, n_features)")
    _check_long("labels", labels, 1, "(B,)")
    if labels.shape[0] != features.shape[0]:
        raise ValueError(f"features {shape_str(features)} and labels {shape_str(labels)} disagree on B")
    x = features.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z, y = (x - mean) / std, labels.double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(z @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach(), b.detach()

    def predict(new: torch.Tensor) -> torch.Tensor:
        _check_float("features", new, 2, f"(B', n_features={x.shape[1]})")
        if new.shape[1] != x.shape[1]:
            raise ValueError(f"features must have n_features={x.shape[1]} columns, got {shape_str(new)}")
        return torch.sigmoid(((new.double() - mean) / std) @ w + b).float()

    return predict


class AttentionPooling(nn.Module):
    r"""Pool a sequence into one vector with one learned query.

    .. math:: a = \mathrm{softmax}\!\left(\frac{q\,(X W_k)^\top}{\sqrt{E}}\right),\qquad
              \text{pooled} = a\,(X W_v)

    The query q (E,) is a trained vector, the same for every sequence; keys and
    values are projections of the positions' features X = ``h``, one row per
    position (``key.weight`` is :math:`W_k^\top`, ``nn.Linear``'s layout).
    E = ``d_k``, Ev = ``d_v``.

    ``forward(h (B, T, D), lengths=None)`` -> pooled (B, Ev), weights (B, T);
    padded positions (at or after ``lengths[n]``) get weight 0.
    """

    def __init__(self, d_in: int, d_k: int, d_v: int) -> None:
        super().__init__()
        self.d_in = _positive_int("d_in", d_in)
        self.query = nn.Parameter(torch.randn(_positive_int("d_k", d_k)) / math.sqrt(d_k))
        self.key = nn.Linear(d_in, d_k)
        self.value = nn.Linear(d_in, _positive_int("d_v", d_v))

    def forward(self, h: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        _check_float("h", h, 3, f"(B, T, D={self.d_in})")
        B, T, D = h.shape
        if D != self.d_in:
            raise ValueError(f"h must be (B, T, D={self.d_in}), got {shape_str(h)}")
        keep = _lengths_mask(lengths, B, T)
        q = self.query.to(h.dtype).expand(B, 1, -1)  # (B, 1, E)
        mask = None if keep is None else keep[:, None, :]  # (B, 1, T)
        pooled, weights = scaled_dot_product_attention(q, self.key(h), self.value(h), mask)  # (B, 1, Ev), (B, 1, T)
        return pooled[:, 0], weights[:, 0]  # (B, Ev), (B, T)


class MotifAttentionClassifier(nn.Module):
    r"""Convolution (k-mer detectors) then attention pooling, then one logit: does the sequence carry the motif?

    .. math::
        h_j = \mathrm{LN}(\mathrm{ReLU}(\mathrm{conv}(x)_j)),\qquad
        a = \mathrm{softmax}_j(q \cdot h_j W_k / \sqrt{E}),\qquad
        \text{logit} = \big(\textstyle\sum_j a_j h_j W_v\big)\, w + b

    Each :math:`h_j` describes the ``kernel_size`` bases around position j (a
    learned k-mer detector per channel, as in DeepBind); the learned query
    asks "is the motif here?", the keys answer for each position, and the
    values carry that position's features into the pooled vector. The layer
    norm puts every position's features on one scale; without it, training
    from some seeds stalls with part of the motif's variants undetected.

    ``forward(tokens (B, T), lengths=None)`` -> logits (B,), weights (B, T);
    padded positions (at or after ``lengths[n]``) are zeros to the
    convolution and get weight 0.
    """

    def __init__(self, channels: int = 16, kernel_size: int = 7, d_k: int = 16) -> None:
        super().__init__()
        channels, kernel_size = _positive_int("channels", channels), _positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (centred windows), got {kernel_size}")
        self.conv = nn.Conv1d(4, channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(channels)
        self.pool = AttentionPooling(channels, d_k, channels)
        self.out = nn.Linear(channels, 1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = one_hot_dna(tokens, lengths)  # (B, T, 4)
        h = self.norm(torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2))  # (B, T, C)
        pooled, weights = self.pool(h, lengths)  # (B, C), (B, T)
        return self.out(pooled)[:, 0], weights  # (B,), (B, T)


class MotifMaxPoolClassifier(nn.Module):
    r"""Convolution (k-mer detectors), each channel's maximum over the sequence, one logit: DeepBind, no attention.

    .. math::
        h_{jc} = \mathrm{ReLU}(\mathrm{conv}(x)_{jc}),\qquad
        m_c = \max_j h_{jc},\qquad
        \text{logit} = m\, w + b

    DeepBind's recipe (Alipanahi et al. 2015): a bank of learned motif
    detectors, pooled by a fixed rule instead of attention. With
    ``pooling="max+avg"`` each channel also contributes its mean over the real
    positions, ``[m, mean_j h_j] w + b``, DeepBind's other option. The
    convolution is the one of :class:`MotifAttentionClassifier` (no layer norm:
    DeepBind has none, and a maximum needs no common scale); DeepBind's
    optional hidden layer and dropout are left out. Chapter 10
    (``chapters/10d_time_series_dna_recommendation.ipynb``) compares the two.

    ``forward(tokens (B, T), lengths=None)`` -> logits (B,), features h
    (B, T, C); padded positions (at or after ``lengths[n]``) are zeros to the
    convolution, take no part in the pooling and have features 0.
    :meth:`peak_position` reads off where the evidence is.
    """

    def __init__(self, channels: int = 16, kernel_size: int = 7, pooling: str = "max") -> None:
        super().__init__()
        channels, kernel_size = _positive_int("channels", channels), _positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (centred windows), got {kernel_size}")
        if pooling not in ("max", "max+avg"):
            raise ValueError(f"pooling must be 'max' or 'max+avg', got {pooling!r}")
        self.channels, self.pooling = channels, pooling
        self.conv = nn.Conv1d(4, channels, kernel_size, padding=kernel_size // 2)
        self.out = nn.Linear(channels * (2 if pooling == "max+avg" else 1), 1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = one_hot_dna(tokens, lengths)  # (B, T, 4); raises on bad tokens or lengths
        B, T, _ = x.shape
        h = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (B, T, C)
        keep = _lengths_mask(lengths, B, T)
        if keep is not None:
            h = h * keep[..., None]  # (B, T, C): padded positions 0
        pooled = [self._masked_max(h, keep)[0]]  # (B, C): m
        if self.pooling == "max+avg":
            n = torch.full((B, 1), T, dtype=h.dtype) if keep is None else keep.sum(1, keepdim=True).to(h.dtype)
            pooled.append(h.sum(1) / n)  # (B, C): the mean over real positions
        return self.out(torch.cat(pooled, 1))[:, 0], h  # (B,), (B, T, C)

    @staticmethod
    def _masked_max(h: torch.Tensor, keep: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if keep is not None:
            h = h.masked_fill(~keep[..., None], float("-inf"))  # a padded position never wins
        values, indices = h.max(1)  # (B, C), (B, C)
        return values, indices

    def peak_position(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        r"""Where the detector that adds most to the logit peaks: :math:`\arg\max_j h_{jc^*}`.

        The channel is :math:`c^* = \arg\max_c w_c m_c`, the largest term of
        the logit's max-pooled part: the max-pooling counterpart of
        attention's largest weight. ``features`` is the second output of
        :meth:`forward`. Shapes: features (B, T, C), lengths (B,) or None ->
        positions (B,) long.
        """
        _check_float("features", features, 3, f"(B, T, C={self.channels})")
        B, T, C = features.shape
        if C != self.channels:
            raise ValueError(f"features must be (B, T, C={self.channels}), got {shape_str(features)}")
        peak, where = self._masked_max(features, _lengths_mask(lengths, B, T))  # (B, C), (B, C)
        w = self.out.weight[0, :C].detach().to(features.dtype)  # (C,): the weights of the maxima
        best = (peak * w).argmax(1)  # (B,): the channel c*
        return where[torch.arange(B), best]  # (B,)


# =========================================================================== recommendation


@dataclass(frozen=True)
class PurchaseHistories:
    """Users' purchase sequences.

    With n_p = ``num_products`` and n_e = ``num_everyday``, item ids are:
    products ``0..n_p-1``, accessories ``n_p..2n_p-1`` (the accessory of
    product i is ``n_p + i``), everyday items ``2n_p..2n_p+n_e-1``; their
    ``names`` are ``P0, P1, ...``, ``A0, A1, ...`` (``A3`` goes with ``P3``)
    and ``e0, e1, ...``. ``items`` (B, T) long, one row per user; ``trigger``
    (B, T) long: for an accessory, the position of the product it follows, else -1.
    """

    items: torch.Tensor
    trigger: torch.Tensor
    num_products: int
    num_everyday: int
    names: list[str]

    @property
    def num_items(self) -> int:
        return 2 * self.num_products + self.num_everyday

    def __len__(self) -> int:
        return self.items.shape[0]


def _zipf(n: int, exponent: float) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** exponent
    return p / p.sum()


def purchase_histories(
    num_users: int,
    length: int = 20,
    *,
    num_products: int = 20,
    num_everyday: int = 40,
    product_rate: float = 0.15,
    delays: tuple[int, int] = (1, 6),
    seed: int = 0,
) -> PurchaseHistories:
    r"""Seeded purchase sequences in which each product is followed by its accessory some steps later.

    At each step a user buys, in this order of precedence:

    1. the accessory of the product bought d steps earlier, d drawn uniformly
       from ``delays`` (inclusive) when the product was bought (never, if
       that step falls after the end);
    2. else, if no product is waiting for its accessory, with probability
       ``product_rate`` a product the user has not bought yet, by Zipf
       popularity (the i-th most popular with probability :math:`\propto 1/i`):
       at most one product waits at a time;
    3. else an everyday item, by Zipf popularity (:math:`\propto 1/i` again).

    The accessory depends on a purchase up to ``delays[1]`` steps back, with
    everyday items in between: the last item alone does not predict it.
    Returns a :class:`PurchaseHistories` with items (num_users, length).
    """
    num_users, length = _positive_int("num_users", num_users), _positive_int("length", length)
    P, F = _positive_int("num_products", num_products), _positive_int("num_everyday", num_everyday)
    if not (isinstance(delays, tuple) and len(delays) == 2 and all(isinstance(d, int) for d in delays)
            and 1 <= delays[0] <= delays[1]):
        raise ValueError(f"delays must be a tuple of two ints 1 <= lo <= hi, got {delays!r}")
    lo, hi = delays
    if not 0.0 <= product_rate <= 1.0:
        raise ValueError(f"product_rate must lie in 0..1, got {product_rate}")
    rng = np.random.default_rng(seed)
    p_product, p_everyday = _zipf(P, 1.0), _zipf(F, 1.0)
    items = np.empty((num_users, length), dtype=np.int64)
    trigger = np.full((num_users, length), -1, dtype=np.int64)
    for u in range(num_users):
        due: dict[int, tuple[int, int]] = {}  # step -> (accessory id, product position)
        bought: set[int] = set()
        for t in range(length):
            if t in due:
                items[u, t], trigger[u, t] = due.pop(t)
            elif not due and rng.random() < product_rate and len(bought) < P:
                free = np.array([i for i in range(P) if i not in bought])
                p = int(rng.choice(free, p=p_product[free] / p_product[free].sum()))
                bought.add(p)
                items[u, t] = p
                due[t + int(rng.integers(lo, hi + 1))] = (P + p, t)  # after the end: never bought, still waits
            else:
                items[u, t] = 2 * P + int(rng.choice(F, p=p_everyday))
    names = [f"P{i}" for i in range(P)] + [f"A{i}" for i in range(P)] + [f"e{i}" for i in range(F)]
    return PurchaseHistories(torch.from_numpy(items), torch.from_numpy(trigger), P, F, names)


class NextItemTransformer(nn.Module):
    r"""Next-item prediction with causal self-attention over the history, in the style of SASRec.

    .. math::
        x_t = W_{\text{item}}[\text{item}_t] + W_{\text{pos}}[t - 1],\qquad
        h = \mathrm{EncoderLayer}(x,\ \text{causal mask}),\qquad
        \text{scores}_t = \mathrm{LN}(h_t)\, W_{\text{item}}^\top

    with :math:`W_\text{item}` the (num_items, D) item embeddings and
    :math:`W_\text{pos}` the learned position table, row p = t - 1 for the
    step t = 1..T. Position t's query looks at the items bought at steps <= t
    (keys and values), and its output scores every item of the catalogue as
    the purchase at step t + 1. As in SASRec (Kang and McAuley 2018) the
    output shares the item embedding; unlike it we use one pre-norm block and
    no dropout.

    ``forward(items (B, T), lengths=None)`` -> scores (B, T, num_items),
    weights (B, H, T, T); padded keys (at or after ``lengths[n]``) get weight 0.
    """

    def __init__(self, num_items: int, max_length: int, *, d_model: int = 32, num_heads: int = 1,
                 d_ff: int = 64) -> None:
        super().__init__()
        self.num_items = _positive_int("num_items", num_items)
        self.max_length = _positive_int("max_length", max_length)
        self.item_embedding = nn.Embedding(num_items, d_model)
        nn.init.normal_(self.item_embedding.weight, std=d_model ** -0.5)
        self.position = LearnedPositionalEmbedding(max_length, d_model)
        self.block = EncoderLayer(d_model, num_heads, d_ff, norm_first=True)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, items: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        _check_long("items", items, 2, "(B, T)")
        B, T = items.shape
        if T > self.max_length:
            raise ValueError(f"items has T={T} steps but the model covers max_length={self.max_length}")
        if items.numel() and (int(items.min()) < 0 or int(items.max()) >= self.num_items):
            raise ValueError(f"item ids must lie in 0..{self.num_items - 1}, got min {int(items.min())} "
                             f"and max {int(items.max())}")
        mask = causal_mask(T, device=items.device)  # (T, T)
        keep = _lengths_mask(lengths, B, T)
        if keep is not None:
            mask = mask[None] & keep[:, None, :]  # (B, T, T): no padded key
        x = self.position(self.item_embedding(items))  # (B, T, D)
        h, weights = self.block(x, mask)  # (B, T, D), (B, H, T, T)
        return self.norm(h) @ self.item_embedding.weight.T, weights  # (B, T, num_items), (B, H, T, T)


class NextItemGRU(nn.Module):
    r"""Next-item prediction with a recurrent state over the history, in the style of GRU4Rec.

    .. math::
        s_t = \mathrm{GRU}\big(s_{t-1},\ W_{\text{item}}[\text{item}_t]\big),\quad s_0 = 0,\qquad
        \text{scores}_t = s_t W_{\text{out}}^\top + b

    with :math:`W_\text{item}` the (num_items, D) item embeddings and
    :math:`W_\text{out}` (num_items, D) a separate output layer. The state
    after step t has read the items bought at steps <= t, one at a time; its
    scores rank every item of the catalogue as the purchase at step t + 1.
    GRU4Rec (Hidasi et al. 2016) trains this model on sessions with
    session-parallel minibatches and ranking losses over sampled items; its
    later version also offers cross-entropy (Hidasi and Karatzoglou 2018).
    Chapter 10 trains it like :class:`NextItemTransformer` (cross-entropy over
    the whole catalogue), so that the two differ only in how they read the
    history (``chapters/10d_time_series_dna_recommendation.ipynb``).

    ``forward(items (B, T))`` -> scores (B, T, num_items). No padding
    argument: the state at step t never sees later steps, so the scores of
    the real steps of a right-padded history are those of the history alone.
    """

    def __init__(self, num_items: int, *, d_model: int = 32) -> None:
        super().__init__()
        self.num_items = _positive_int("num_items", num_items)
        d_model = _positive_int("d_model", d_model)
        self.item_embedding = nn.Embedding(num_items, d_model)
        self.gru = nn.GRU(d_model, d_model, batch_first=True)
        self.out = nn.Linear(d_model, num_items)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        _check_long("items", items, 2, "(B, T)")
        if items.numel() and (int(items.min()) < 0 or int(items.max()) >= self.num_items):
            raise ValueError(f"item ids must lie in 0..{self.num_items - 1}, got min {int(items.min())} "
                             f"and max {int(items.max())}")
        states, _ = self.gru(self.item_embedding(items))  # (B, T, D): s_1 .. s_T
        return self.out(states)  # (B, T, num_items)


def popularity_scores(train_items: torch.Tensor, num_items: int) -> torch.Tensor:
    """How often each item was bought in the training histories: the same ranking for everyone.

    Shapes: train_items (B, T) -> (num_items,) float32.
    """
    _check_long("train_items", train_items, 2, "(B, T)")
    return torch.bincount(train_items.flatten(), minlength=_positive_int("num_items", num_items)).float()


def markov_scores(train_items: torch.Tensor, num_items: int) -> torch.Tensor:
    r"""First-order Markov model: count the transitions last item -> next item.

    .. math:: \text{score}(j \mid i) = \#(i \to j) + 10^{-3}\,\#(j)

    The small popularity term only breaks ties (unseen transitions). Row i
    of the result scores every item as the successor of item i.
    Shapes: train_items (B, T) -> (num_items, num_items) float32.
    """
    _check_long("train_items", train_items, 2, "(B, T)")
    num_items = _positive_int("num_items", num_items)
    prev, nxt = train_items[:, :-1].flatten(), train_items[:, 1:].flatten()
    counts = torch.zeros(num_items * num_items)
    counts.scatter_add_(0, prev * num_items + nxt, torch.ones(prev.shape[0]))
    return counts.view(num_items, num_items) + 1e-3 * popularity_scores(train_items, num_items)[None, :]


def hit_rate_at_k(scores: torch.Tensor, targets: torch.Tensor, k: int) -> float:
    """The share of predictions whose true next item is among the k highest-scored items.

    Ties are broken by ``torch.topk``. Shapes: scores (B, num_items), targets (B,).
    """
    _check_float("scores", scores, 2, "(B, num_items)")
    _check_long("targets", targets, 1, "(B,)")
    if scores.shape[0] != targets.shape[0]:
        raise ValueError(f"scores {shape_str(scores)} and targets {shape_str(targets)} disagree on B")
    k = _positive_int("k", k)
    if k > scores.shape[1]:
        raise ValueError(f"k={k} exceeds the num_items={scores.shape[1]} items")
    top = scores.topk(k, dim=1).indices  # (B, k)
    return float((top == targets[:, None]).any(1).float().mean())
