"""Per-cost figures from forecasts and price: CPM, CPE, CPC, CPA, ROAS, EMV.

Each figure comes with a band: the cost per result at the KPI's P90 is the good case, at its P10 the bad
case (a P10 of zero conversions gives no finite CPA: null).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.modeling.forecaster import Forecast
from influencer_engine.registry import COST_FIGURES

__all__ = ["per_cost"]

F64 = npt.NDArray[np.float64]


def _div(a: F64, b: F64) -> F64:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    return np.where(np.isfinite(out) & (b > 0), out, np.nan)


def per_cost(forecast: Forecast, price: F64, *, emv_cpm_usd: float) -> pl.DataFrame:
    """One row per forecast row: each figure from the expected value, with _good and _bad bands, and EMV."""
    cols: dict[str, F64] = {}
    price = np.asarray(price, dtype=np.float64)
    for name, fig in COST_FIGURES.items():
        kpi, per = fig.kpi, fig.per
        if kpi not in forecast.mean:
            continue
        mean, q = forecast.mean[kpi], forecast.quantiles[kpi]
        if fig.kind == "cost":
            cols[name] = _div(price * per, mean)
            cols[f"{name}_good"] = _div(price * per, q[:, -1])
            cols[f"{name}_bad"] = _div(price * per, q[:, 0])
        else:
            cols[name] = _div(mean, price)
            cols[f"{name}_good"] = _div(q[:, -1], price)
            cols[f"{name}_bad"] = _div(q[:, 0], price)
    if "impressions" in forecast.mean:
        cols["emv"] = forecast.mean["impressions"] * emv_cpm_usd / 1000.0
        cols["emv_p10"] = forecast.quantiles["impressions"][:, 0] * emv_cpm_usd / 1000.0
        cols["emv_p90"] = forecast.quantiles["impressions"][:, -1] * emv_cpm_usd / 1000.0
    return pl.DataFrame({k: pl.Series(k, v).fill_nan(None) for k, v in cols.items()})
