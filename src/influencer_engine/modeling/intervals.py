"""Prediction intervals by split conformal prediction on log1p residuals, per bin of the forecast and per bucket of
the history the forecast had to go on.

LightGBM refuses monotone constraints with its quantile objective, so the quantiles come from residuals
instead: forecasts by models that did not see the rows (every training row out of fold, or the latest rows
forecast by a model fitted on the earlier ones: ``intervals.calibrate_on``), and the empirical quantiles of
``log1p(y) - log1p(forecast)`` give multiplicative bands. Small forecasts are relatively noisier
(counting noise), so residual quantiles are kept separately per bin of the forecast (Mondrian conformal).

What is known of a creator matters as much: a forecast from 3 posts is less sure than one from 200. With the
posts each calibration row had before it (``history``), each history bucket (0-5, 6-20, 21-50, 51+ posts) gets
bands of its own from its own rows; a bucket with fewer than ``MIN_PER_BIN`` calibration rows borrows its
neighbours' rows, and failing that the pooled bands. So coverage holds within each bucket, not only on average,
and a planner's P10 can prefer the creator who is well known. With a ``tolerance`` (``intervals.by_history = "auto"``)
the buckets get bands of their own only where the pooled bands miss a bucket's calibration rows by more than it: on
the simulated worlds the error hardly depends on history length, on real post histories it does (README).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = [
    "HISTORY_BUCKETS",
    "MIN_PAIRS",
    "ConformalBands",
    "ErrorSplit",
    "ExpectedError",
    "band_variance",
    "history_bucket",
    "history_of",
    "segments_of",
    "sum_covariances",
]

F64 = npt.NDArray[np.float64]
MIN_PER_BIN = 100
# Buckets of the posts a forecast had to go on (the 0-5 bucket holds creators without history too)
HISTORY_EDGES = (5, 20, 50)
HISTORY_BUCKETS = ("0_5", "6_20", "21_50", "51_plus")
# pairs of held-out residuals needed to split a band into estimate error and delivery noise (below: the whole band is
# taken as estimate error, the cautious reading)
MIN_PAIRS = 200
# rows with a known expected value needed to measure the forecast's error about it (``ExpectedError``)
MIN_EXPECTED_ROWS = 200
_Z90 = 1.2815515655446004  # standard normal quantile of 0.9


def history_of(X: pl.DataFrame) -> F64 | None:
    """The posts each feature row's forecast had to go on (``posts_before``; null as none), None without it."""
    if "posts_before" not in X.columns:
        return None
    return X["posts_before"].cast(pl.Float64).fill_null(0.0).to_numpy()


def history_bucket(posts_before: F64) -> npt.NDArray[np.int64]:
    """0 for 0-5 posts before the forecast, 1 for 6-20, 2 for 21-50, 3 for more (missing counts as none)."""
    p = np.nan_to_num(np.asarray(posts_before, dtype=np.float64), nan=0.0)
    return np.searchsorted(np.asarray(HISTORY_EDGES, dtype=np.float64), p, side="left").astype(np.int64)


def _conformal_quantile(r: F64, level: float) -> float:
    """Finite-sample conformal quantile: the upper ones round up, the lower ones round down."""
    n = len(r)
    if level > 0.5:
        q = min(1.0, math.ceil((n + 1) * level) / max(n, 1))
        return float(np.quantile(r, q, method="higher"))
    if level < 0.5:
        q = max(0.0, math.floor((n + 1) * level) / max(n, 1))
        return float(np.quantile(r, q, method="lower"))
    return float(np.quantile(r, 0.5))


def _pair_total(x: F64, groups: npt.NDArray[np.int64]) -> float:
    """The sum of ``x_i * x_j`` over every pair of rows in one group (``groups``: a code per row)."""
    s, s2 = np.bincount(groups, x), np.bincount(groups, x * x)
    return float(((s * s - s2) / 2.0).sum())


def _pair_mean(r: F64, groups: npt.NDArray[np.int64]) -> tuple[float, float]:
    """The mean product of the residuals ``r`` over every pair of rows in one group, and the number of pairs."""
    pairs = _pair_total(np.ones(len(r)), groups)
    return (_pair_total(r, groups) / pairs if pairs > 0 else 0.0), pairs


@dataclass(frozen=True)
class ErrorSplit:
    """What a band is made of: the shares of its log1p variance that are the forecast's error about the expected
    value, one creator's own (``creator``) or common to every creator of a campaign (``common``); the rest is
    delivery noise (what one campaign draws around its expected value), which averages out over a roster.

    Read from held-out residuals ``r = log1p(y) - log1p(forecast)``: two campaigns of one creator share that creator's
    error and nothing else, so their mean product is its variance (a creator's rows in one campaign are left out:
    they share the campaign too); two creators of one campaign share the common error. What a forecast misses of one
    campaign only (its format, timing, brief fit) looks like noise here, so ``creator`` is a lower bound of the error
    share. A share needs ``MIN_PAIRS`` pairs of its kind: without them nothing is common (``common`` 0), and all that
    is not common counts as the creator's own error (the cautious reading, when few creators were hired twice).

    The planner's roster totals draw the common part together for every creator of a roster (``planner.totals``).
    """

    creator: float = 1.0
    common: float = 0.0
    creator_pairs: int = 0
    campaign_pairs: int = 0

    @classmethod
    def fit(cls, y: F64, forecast: F64, creators: npt.NDArray[Any], campaigns: npt.NDArray[Any]) -> ErrorSplit:
        ok = np.isfinite(y) & np.isfinite(forecast)
        r = np.log1p(np.maximum(y[ok], 0.0)) - np.log1p(np.maximum(forecast[ok], 0.0))
        if len(r) < 2:
            return cls()
        r = r - r.mean()
        var = float(r.var())
        if var <= 0:
            return cls()
        _, creator = np.unique(np.asarray(creators)[ok].astype(str), return_inverse=True)
        _, campaign = np.unique(np.asarray(campaigns)[ok].astype(str), return_inverse=True)
        both = creator.astype(np.int64) * (int(campaign.max()) + 1) + campaign
        _, both = np.unique(both, return_inverse=True)
        m_cr, n_cr = _pair_mean(r, creator)
        m_ca, n_ca = _pair_mean(r, campaign)
        m_bo, n_bo = _pair_mean(r, both)
        across = n_cr - n_bo  # one creator, two campaigns
        within = n_ca - n_bo  # one campaign, two creators
        k = 0.0
        if within >= MIN_PAIRS:
            k = min(max((m_ca * n_ca - m_bo * n_bo) / within / var, 0.0), 1.0)
        c = 1.0 - k
        if across >= MIN_PAIRS:
            c = min(max((m_cr * n_cr - m_bo * n_bo) / across / var, 0.0), 1.0 - k)
        return cls(round(c, 6), round(k, 6), int(across), int(within))

    def to_dict(self) -> dict[str, Any]:
        return {"creator": self.creator, "common": self.common, "creator_pairs": self.creator_pairs,
                "campaign_pairs": self.campaign_pairs}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ErrorSplit:
        if not d:
            return cls()
        return cls(float(d["creator"]), float(d["common"]), int(d.get("creator_pairs", 0)),
                   int(d.get("campaign_pairs", 0)))  # fmt: skip


def band_variance(quantiles: F64) -> F64:
    """Each row's band variance on the log1p scale, the mean of its lower and upper halves' squared normal scales:
    ``quantiles`` is (rows, 3), P10, P50 and P90 (the planner's roster draws read a band the same way)."""
    q = np.log1p(np.maximum(np.asarray(quantiles, dtype=np.float64), 0.0)).T
    lo, hi = (q[1] - q[0]) / _Z90, (q[2] - q[1]) / _Z90
    return np.asarray((lo**2 + hi**2) / 2.0, dtype=np.float64)


def segments_of(frame: pl.DataFrame) -> npt.NDArray[Any] | None:
    """Each row's segment, its platform and tier, as text (``sum_covariances``); None without those columns."""
    if not {"platform", "tier"} <= set(frame.columns):
        return None
    return frame.select(pl.concat_str([pl.col("platform").cast(pl.String), pl.col("tier").cast(pl.String)],
                                      separator="/", ignore_nulls=True)).to_series().to_numpy()  # fmt: skip


def _codes(keys: Sequence[npt.NDArray[Any]]) -> npt.NDArray[np.int64]:
    """One code per row for the rows that agree on each of ``keys`` (``_pair_total``'s groups)."""
    code = np.zeros(len(keys[0]), dtype=np.int64)
    for key in keys:
        _, idx = np.unique(np.asarray(key).astype(str), return_inverse=True)
        code = code * (int(idx.max()) + 1 if len(idx) else 1) + idx
    return np.unique(code, return_inverse=True)[1].astype(np.int64)


def sum_covariances(true: F64, forecast: F64, segments: npt.NDArray[Any], campaigns: npt.NDArray[Any],
                    creators: npt.NDArray[Any]) -> tuple[float | None, float | None]:  # fmt: skip
    """The error two creators' forecasts share, as a relative covariance of sums: over pairs of rows of different
    creators, ``sum((t_i - f_i) (t_j - f_j)) / sum(f_i f_j)``, (1) for pairs in one segment (platform and tier) but in
    different campaigns (``segment``: a level the models get wrong for a kind of creator), (2) for pairs in one
    campaign but different segments (``context``: a level they get wrong for a campaign's brief, such as its brand
    category's season). A roster's total is a forecast-weighted sum, so this is the scale its common error lives on:
    the relative variance of a sum of many creators of one segment in one campaign tends to ``segment + context``.
    Read on the ratio scale, not on log1p residuals, whose pairs hardly see a shared 20% miss of small counts (a
    creator's 0.5 expected conversions). Non-negative (a negative estimate is noise: 0); None with fewer than
    ``MIN_PAIRS`` pairs of the kind."""
    t, f = np.asarray(true, dtype=np.float64), np.asarray(forecast, dtype=np.float64)
    d = t - f
    seg, camp, cr = np.asarray(segments), np.asarray(campaigns), np.asarray(creators)
    ones = np.ones(len(f))

    def kind(first: npt.NDArray[Any], other: npt.NDArray[Any]) -> tuple[float, float]:
        # pairs sharing ``first``, minus those sharing ``other`` or the creator too (inclusion-exclusion)
        groups = [_codes(k) for k in ([first], [first, other], [first, cr], [first, other, cr])]

        def pairs(x: F64) -> float:
            a, b, c, e = (_pair_total(x, g) for g in groups)
            return a - b - c + e

        return pairs(d) / max(pairs(f), 1e-300), pairs(ones)

    out: list[float | None] = []
    for first, other in ((seg, camp), (camp, seg)):
        kappa, n = kind(first, other)
        out.append(round(max(kappa, 0.0), 6) if n >= MIN_PAIRS else None)
    return out[0], out[1]


@dataclass(frozen=True)
class ExpectedError:
    """How far a forecast is from the expected value it forecasts, where that value is known (the simulator's truth):
    the share of a band's variance that is this error (``share``; the rest is delivery noise), the part of it common
    to a campaign's creators (``common``), and what creators share of it on the scale of sums (``segment``,
    ``context``: ``sum_covariances``). The planner evaluation bands a roster's expected total with this error alone
    (``evaluation.planner_eval.expected_draws``), beside the plan's band of deliveries, which draws the whole band;
    plans do not show it (README, "Totals").

    Measured on the backtest's later campaigns (forecast by models that saw only earlier ones), with
    ``e = log1p(true) - log1p(forecast)``: ``share`` is the forecast-weighted variance of ``e`` about its weighted
    mean over the weighted band variance (``band_variance``), weighted by the forecast because a roster's total is
    made of its large creators, and centred because a mean forecast sits above the typical value on the log scale;
    ``common`` is ``ErrorSplit``'s common share read on ``e``. ``segment`` and ``context`` are read on ``true -
    forecast`` (not centred: a level the models miss for every creator is common error too); None where not measured
    (bundles from before them, or too few pairs). Observed outcomes cannot measure ``share``: they hold the expected
    value and the delivery's luck together (``ErrorSplit`` gets a lower bound), so without known expected values
    (``rows`` below ``MIN_EXPECTED_ROWS``) the share is unknown (``share`` None).
    """

    share: float | None = None
    common: float = 0.0
    rows: int = 0
    segment: float | None = None
    context: float | None = None

    @classmethod
    def fit(cls, true: F64, forecast: F64, quantiles: F64, creators: npt.NDArray[Any],
            campaigns: npt.NDArray[Any], segments: npt.NDArray[Any] | None = None) -> ExpectedError:  # fmt: skip
        t, f = np.asarray(true, dtype=np.float64), np.asarray(forecast, dtype=np.float64)
        q = np.asarray(quantiles, dtype=np.float64)
        ok = np.isfinite(t) & np.isfinite(f) & np.isfinite(q).all(axis=1) & (f > 0)
        n = int(ok.sum())
        if n < MIN_EXPECTED_ROWS:
            return cls(rows=n)
        t, f, q = np.maximum(t[ok], 0.0), f[ok], q[ok]
        e = np.log1p(t) - np.log1p(f)
        w = f / f.sum()
        centred = e - float(np.sum(w * e))
        base = float(np.sum(w * band_variance(q)))
        share = min(float(np.sum(w * centred**2)) / base, 1.0) if base > 0 else 1.0
        cr, camp = np.asarray(creators)[ok], np.asarray(campaigns)[ok]
        common = ErrorSplit.fit(t, f, cr, camp).common
        segment = context = None
        if segments is not None:
            segment, context = sum_covariances(t, f, np.asarray(segments)[ok], camp, cr)
        return cls(round(share, 6), round(common, 6), n, segment, context)

    def to_dict(self) -> dict[str, Any]:
        return {"share": self.share, "common": self.common, "rows": self.rows, "segment": self.segment,
                "context": self.context}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ExpectedError:
        if not d:
            return cls()
        share, seg, ctx = d.get("share"), d.get("segment"), d.get("context")
        return cls(None if share is None else float(share), float(d.get("common", 0.0)), int(d.get("rows", 0)),
                   None if seg is None else float(seg), None if ctx is None else float(ctx))  # fmt: skip


@dataclass(frozen=True)
class ConformalBands:
    """Residual quantiles per forecast bin (and per history bucket); ``apply`` turns forecasts into quantiles."""

    levels: tuple[float, ...]
    edges: tuple[float, ...]  # interior edges on log1p(forecast); len(edges) + 1 bins
    quantiles: tuple[tuple[float, ...], ...]  # per bin, per level
    counts: tuple[int, ...]  # calibration rows per bin
    # per HISTORY_BUCKETS: that bucket's own bands (from its rows, or its neighbours'), None: the pooled ones
    history: tuple[ConformalBands | None, ...] = ()
    history_rows: tuple[str, ...] = ()  # per bucket, whose rows calibrated it ("own", "with neighbours", "pooled")
    # per HISTORY_BUCKETS, the share of its calibration rows inside the pooled bands' outer band (NaN: fewer than
    # MIN_PER_BIN rows); measured when bands per bucket were asked for "only if needed" (``fit``'s ``tolerance``)
    history_coverage: tuple[float, ...] = ()

    @classmethod
    def _pooled(cls, y: F64, forecast: F64, levels: Sequence[float], bins: int) -> ConformalBands:
        lf = np.log1p(np.maximum(forecast, 0.0))
        r = np.log1p(np.maximum(y, 0.0)) - lf
        k = max(1, min(bins, len(y) // MIN_PER_BIN))
        edges = np.unique(np.quantile(lf, np.linspace(0, 1, k + 1)[1:-1])) if k > 1 else np.array([])
        which = np.searchsorted(edges, lf, side="right")
        qs, counts = [], []
        for b in range(len(edges) + 1):
            rb = r[which == b]
            qs.append(tuple(_conformal_quantile(rb, lv) for lv in levels))
            counts.append(len(rb))
        return cls(tuple(levels), tuple(float(e) for e in edges), tuple(qs), tuple(counts))

    @classmethod
    def fit(cls, y: F64, forecast: F64, levels: Sequence[float], bins: int,
            history: F64 | None = None, tolerance: float | None = None) -> ConformalBands:  # fmt: skip
        """Bands from held-out targets ``y`` and their ``forecast``; with ``history`` (posts before each row), each
        history bucket gets bands of its own. With ``tolerance`` as well, only if needed: when the pooled bands' outer
        band holds the share it should of every bucket's calibration rows (those with ``MIN_PER_BIN`` rows), within
        ``tolerance``, the pooled bands are kept (``history_coverage`` says what each bucket held)."""
        ok = np.isfinite(y) & np.isfinite(forecast)
        y, forecast = y[ok], forecast[ok]
        if len(y) < 20:
            raise ValueError(f"conformal calibration needs at least 20 rows, got {len(y)}")
        pooled = cls._pooled(y, forecast, levels, bins)
        if history is None:
            return pooled
        bucket = history_bucket(np.asarray(history, dtype=np.float64)[ok])
        held: tuple[float, ...] = ()
        if tolerance is not None:
            outer = pooled._apply_pooled(forecast)
            inside = (outer[:, 0] <= y) & (y <= outer[:, -1])
            held = tuple(float(inside[bucket == b].mean()) if (bucket == b).sum() >= MIN_PER_BIN else float("nan")
                         for b in range(len(HISTORY_BUCKETS)))  # fmt: skip
            nominal = levels[-1] - levels[0]
            if all(not abs(h - nominal) > tolerance for h in held):  # NaN (too few rows) counts as within
                return dataclasses.replace(pooled, history_coverage=held)
        own: list[ConformalBands | None] = []
        rows: list[str] = []
        for b in range(len(HISTORY_BUCKETS)):
            for label, members in (("own", (b,)), ("with neighbours", (b - 1, b, b + 1))):
                take = np.isin(bucket, members)
                if take.sum() >= MIN_PER_BIN:
                    own.append(cls._pooled(y[take], forecast[take], levels, bins))
                    rows.append(label)
                    break
            else:
                own.append(None)
                rows.append("pooled")
        return cls(pooled.levels, pooled.edges, pooled.quantiles, pooled.counts, tuple(own), tuple(rows), held)

    def _apply_pooled(self, forecast: F64) -> F64:
        lf = np.log1p(np.maximum(forecast, 0.0))
        which = np.searchsorted(np.asarray(self.edges), lf, side="right")
        q = np.asarray(self.quantiles, dtype=np.float64)[which]
        out = np.expm1(lf[:, None] + q)
        return np.maximum.accumulate(np.maximum(out, 0.0), axis=1)

    def apply(self, forecast: F64, history: F64 | None = None) -> F64:
        """Quantile forecasts, shape (n, len(levels)), non-decreasing across levels; ``history`` (posts before each
        forecast) picks each row's history bucket where the bands have them.

        The outer band always holds the expected value itself: for a small, mostly-zero count (0.13 conversions)
        the residual P90 can fall just below the mean (0.10), which reads as a contradiction and, for counts under
        one, changes no coverage (an outcome of 0 or 1 falls on the same side of 0.10 and of 0.13)."""
        forecast = np.asarray(forecast, dtype=np.float64)
        out = self._apply_pooled(forecast)
        if history is not None and self.history:
            bucket = history_bucket(history)
            for b, bands in enumerate(self.history):
                rows = bucket == b
                if bands is not None and rows.any():
                    out[rows] = bands._apply_pooled(forecast[rows])
        mean = np.maximum(forecast, 0.0)
        out[:, 0] = np.minimum(out[:, 0], mean)
        out[:, -1] = np.maximum(out[:, -1], mean)
        return np.maximum.accumulate(out, axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"levels": list(self.levels), "edges": list(self.edges),
                "quantiles": [list(q) for q in self.quantiles], "counts": list(self.counts),
                "history": [None if h is None else h.to_dict() for h in self.history],
                "history_rows": list(self.history_rows),
                "history_coverage": [None if math.isnan(v) else v for v in self.history_coverage]}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConformalBands:
        return cls(
            levels=tuple(float(v) for v in d["levels"]),
            edges=tuple(float(v) for v in d["edges"]),
            quantiles=tuple(tuple(float(v) for v in q) for q in d["quantiles"]),
            counts=tuple(int(v) for v in d["counts"]),
            history=tuple(None if h is None else cls.from_dict(h) for h in d.get("history", [])),
            history_rows=tuple(str(v) for v in d.get("history_rows", [])),
            history_coverage=tuple(float("nan") if v is None else float(v) for v in d.get("history_coverage", [])),
        )
