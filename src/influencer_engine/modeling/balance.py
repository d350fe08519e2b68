"""Mean calibration from out-of-fold forecasts: a count model's expected values, summed, match what happens.

A Poisson booster matches its training sums exactly (its intercept sees to it), but on rows it has not seen it
runs low, and lowest where forecasts are high. With heavy-tailed counts its leaves fit the few large rows they
hold; a new row's leaf estimate is most often a sample without such a row (every step's log-ratio is biased low by
Jensen's inequality, and three hundred of them add up). Measured on the demo world (4-fold out-of-fold sums,
observed over forecast): reach 1.12, engagements 1.17, clicks 1.22, conversions 1.27, revenue 1.43; the top decile
of forecasts 1.15-1.44. A planner sums expected values over a roster picked from the top, so a forecast that is a
typical value rather than an expected one under-states every plan (the picked rosters of random briefs ran at
0.59-0.78 of their true totals, and their P10-P90 bands held the truth in 13-63% of briefs).

``Balance`` is that correction: the ratio of observed to forecast sums out of fold, per bin of the forecast,
shrunk toward the overall ratio by its standard error, interpolated in log forecast so that the corrected forecast
still rises with the raw one. It is the "balance property" of actuarial boosting (Wuthrich, 2020), measured out of
fold instead of in sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Balance"]

F64 = npt.NDArray[np.float64]
PRIOR_SD = 0.15  # assumption: how far (log) a bin's factor may plausibly sit from the overall one
LIMITS = (0.5, 2.0)  # factors outside this say the folds disagree with the data, not that the model is off
MIN_BIN_ROWS = 200
_MAX_FALL = -0.5  # the correction's slope in log forecast never falls below this: corrected forecasts keep the order


def _log_ratio(y: F64, f: F64) -> tuple[float, float]:
    """log(sum y / sum f) and its standard error (delta method on the ratio estimator)."""
    r = float(y.sum() / f.sum())
    se = float(np.sqrt(np.sum((y - r * f) ** 2)) / f.sum())
    return float(np.log(np.clip(r, *LIMITS))), se / max(r, 1e-12)


@dataclass(frozen=True)
class Balance:
    """Multiplicative correction of forecasts, piecewise linear in log forecast between ``knots``."""

    knots: tuple[float, ...]  # log forecast at the bins' medians
    log_factors: tuple[float, ...]  # log correction at each knot
    overall: float  # overall log correction (sum observed / sum forecast, out of fold)
    rows: int

    @classmethod
    def fit(cls, y: F64, forecast: F64, *, quantiles: Sequence[float] = (0.5, 0.9)) -> Balance:
        """From targets and out-of-fold forecasts of the same rows (NaN targets are skipped)."""
        ok = np.isfinite(y) & np.isfinite(forecast) & (forecast > 0)
        yv, fv = np.asarray(y, dtype=np.float64)[ok], np.asarray(forecast, dtype=np.float64)[ok]
        if len(yv) < MIN_BIN_ROWS or fv.sum() <= 0 or yv.sum() <= 0:
            return cls.identity(len(yv))
        overall, _ = _log_ratio(yv, fv)
        lf = np.log(fv)
        edges = np.unique(np.quantile(lf, list(quantiles)))
        which = np.searchsorted(edges, lf, side="right")
        knots, factors = [], []
        for b in range(len(edges) + 1):
            sel = which == b
            if sel.sum() < MIN_BIN_ROWS:
                continue
            own, se = _log_ratio(yv[sel], fv[sel])
            w = PRIOR_SD**2 / (PRIOR_SD**2 + se**2)  # shrink a noisy bin toward the overall ratio
            knots.append(float(np.median(lf[sel])))
            factors.append(overall + w * (own - overall))
        if not knots:  # no bin holds enough rows: the overall ratio alone
            return cls((0.0,), (overall,), overall, len(yv))
        for i in range(1, len(factors)):  # keep the corrected forecast rising with the raw one
            factors[i] = max(factors[i], factors[i - 1] + _MAX_FALL * (knots[i] - knots[i - 1]))
        return cls(tuple(knots), tuple(factors), overall, len(yv))

    @classmethod
    def identity(cls, rows: int = 0) -> Balance:
        return cls((0.0,), (0.0,), 0.0, rows)

    def factor(self, forecast: F64) -> F64:
        lf = np.log(np.maximum(np.asarray(forecast, dtype=np.float64), 1e-300))
        return np.asarray(np.exp(np.interp(lf, np.asarray(self.knots), np.asarray(self.log_factors))), dtype=np.float64)

    def apply(self, forecast: F64) -> F64:
        return np.asarray(forecast, dtype=np.float64) * self.factor(forecast)

    def to_dict(self) -> dict[str, Any]:
        return {"knots": list(self.knots), "log_factors": list(self.log_factors), "overall": self.overall,
                "rows": self.rows}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Balance:
        return cls(tuple(float(v) for v in d["knots"]), tuple(float(v) for v in d["log_factors"]),
                   float(d["overall"]), int(d["rows"]))  # fmt: skip
