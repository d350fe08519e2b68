"""Forecast metrics: Poisson deviance, MAE on log1p, Spearman rank correlation, interval coverage and width."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.stats import spearmanr

__all__ = [
    "coverage",
    "interval_width",
    "mae_log1p",
    "poisson_deviance",
    "relative_poisson_deviance",
    "spearman",
    "sum_ratio",
]

F64 = npt.NDArray[np.float64]


def _ok(*arrays: F64) -> npt.NDArray[np.bool_]:
    mask = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        mask &= np.isfinite(a)
    return mask


def _row_deviance(y: F64, pred: F64) -> tuple[F64, F64]:
    """Each finite row's Poisson deviance and its forecast (floored at 1e-9)."""
    ok = _ok(y, pred)
    y, p = y[ok], np.maximum(pred[ok], 1e-9)
    term = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / p), 0.0)
    return 2.0 * (term - (y - p)), p


def poisson_deviance(y: F64, pred: F64) -> float:
    """Mean Poisson deviance (lower is better); predictions are floored at 1e-9."""
    return float(np.mean(_row_deviance(y, pred)[0]))


def relative_poisson_deviance(y: F64, pred: F64) -> float:
    """Mean of each row's Poisson deviance over its forecast (lower is better): scale-free, so a creator with 5k
    followers counts as much as one with 5M. The plain mean deviance grows with the counts, so the largest creators
    decide it; the planner compares creators of every size by value per dollar."""
    dev, p = _row_deviance(y, pred)
    return float(np.mean(dev / p))


def mae_log1p(y: F64, pred: F64) -> float:
    ok = _ok(y, pred)
    return float(np.mean(np.abs(np.log1p(np.maximum(y[ok], 0)) - np.log1p(np.maximum(pred[ok], 0)))))


def sum_ratio(forecast: F64, actual: F64) -> float:
    """Sum of forecasts over the sum of what happened (or of the truth), on rows where both are known: the level a
    plan's totals stand on (NaN when nothing happened)."""
    ok = _ok(forecast, actual)
    total = float(actual[ok].sum())
    return float(forecast[ok].sum()) / total if total > 0 else float("nan")


def spearman(a: F64, b: F64) -> float:
    ok = _ok(a, b)
    if ok.sum() < 3:
        return float("nan")
    return float(spearmanr(a[ok], b[ok]).statistic)


def coverage(y: F64, lo: F64, hi: F64) -> float:
    ok = _ok(y, lo, hi)
    return float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok])))


def interval_width(lo: F64, hi: F64, mid: F64) -> dict[str, float]:
    """Mean width on the log1p scale, and the median width relative to the P50."""
    ok = _ok(lo, hi, mid)
    return {
        "width_log1p": float(np.mean(np.log1p(hi[ok]) - np.log1p(lo[ok]))),
        "width_rel_median": float(np.median((hi[ok] - lo[ok]) / np.maximum(mid[ok], 1.0))),
    }
