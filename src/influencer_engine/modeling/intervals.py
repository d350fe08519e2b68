"""Prediction intervals by split conformal prediction on log1p residuals, per bin of the forecast.

LightGBM refuses monotone constraints with its quantile objective, so the quantiles come from residuals
instead: a model fitted on earlier rows forecasts the latest rows (the calibration set), and the empirical
quantiles of ``log1p(y) - log1p(forecast)`` give multiplicative bands. Small forecasts are relatively noisier
(counting noise), so residual quantiles are kept separately per bin of the forecast (Mondrian conformal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ConformalBands"]

F64 = npt.NDArray[np.float64]
MIN_PER_BIN = 100


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


@dataclass(frozen=True)
class ConformalBands:
    """Residual quantiles per forecast bin; ``apply`` turns forecasts into quantile forecasts."""

    levels: tuple[float, ...]
    edges: tuple[float, ...]  # interior edges on log1p(forecast); len(edges) + 1 bins
    quantiles: tuple[tuple[float, ...], ...]  # per bin, per level
    counts: tuple[int, ...]  # calibration rows per bin

    @classmethod
    def fit(cls, y: F64, forecast: F64, levels: Sequence[float], bins: int) -> ConformalBands:
        ok = np.isfinite(y) & np.isfinite(forecast)
        y, forecast = y[ok], forecast[ok]
        if len(y) < 20:
            raise ValueError(f"conformal calibration needs at least 20 rows, got {len(y)}")
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

    def apply(self, forecast: F64) -> F64:
        """Quantile forecasts, shape (n, len(levels)), non-decreasing across levels."""
        lf = np.log1p(np.maximum(forecast, 0.0))
        which = np.searchsorted(np.asarray(self.edges), lf, side="right")
        q = np.asarray(self.quantiles, dtype=np.float64)[which]
        out = np.expm1(lf[:, None] + q)
        return np.maximum.accumulate(np.maximum(out, 0.0), axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"levels": list(self.levels), "edges": list(self.edges),
                "quantiles": [list(q) for q in self.quantiles], "counts": list(self.counts)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConformalBands:
        return cls(
            levels=tuple(float(v) for v in d["levels"]),
            edges=tuple(float(v) for v in d["edges"]),
            quantiles=tuple(tuple(float(v) for v in q) for q in d["quantiles"]),
            counts=tuple(int(v) for v in d["counts"]),
        )
