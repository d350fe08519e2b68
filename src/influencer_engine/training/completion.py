"""Fit a bundle's completion models and measure how much each assumption widens the KPI bands.

The widening is measured, not set: the latest hires of the training data (the rows the bands are calibrated on)
are forecast by the funnel fitted on the earlier rows only (so out of sample), once as they are and once per
assumption with that part of their data removed and completed the way a real export's would be (audience shares
assumed from the platform's mix, credibility estimated, price estimated). The extra uncertainty an assumption
brings is the mean square error (log1p scale, against the observed outcomes) it adds to each KPI's forecast;
``modeling.completion.widen`` adds its root in quadrature to the band of every creator the assumption applies to.
Where the noise of the outcome swamps the change (small counts), the assumption adds little and the band barely
moves.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from influencer_engine.config import TierConfig
from influencer_engine.features.build import build_features
from influencer_engine.modeling.completion import COLUMN_KINDS, Completion, fit_completion
from influencer_engine.modeling.forecaster import KPIForecaster
from influencer_engine.schema import audience_columns
from influencer_engine.training.data import TrainingTable

__all__ = ["MEASURE_ROWS", "fit_bundle_completion", "strip"]

MEASURE_ROWS = 3000  # latest hires the widening is measured on


def strip(creators: pl.DataFrame, kind: str) -> pl.DataFrame:
    """``creators`` without what assumption ``kind`` stands in for (as a bare export would have them)."""
    if kind == "audience":
        cols = [c for names in audience_columns().values() for c in names]
    elif kind == "credibility":
        cols = ["audience_credibility"]
    elif kind == "price":
        cols = [c for c in creators.columns if c.startswith("price_")]
    else:
        raise ValueError(f"unknown assumption {kind!r}")
    return creators.with_columns(pl.lit(None, dtype=creators.schema[c]).alias(c) for c in cols)


def fit_bundle_completion(table: TrainingTable, model: KPIForecaster, tiers: TierConfig, *, seed: int = 0,
                          peers: pl.DataFrame | None = None) -> Completion:  # fmt: skip
    """The completion models of ``table`` with each assumption's band widening measured on ``model``."""
    creators = table.inputs["creators"]
    completion = fit_completion(table.frame, creators, seed=seed)
    # out of sample: the funnel fitted on the earlier rows forecasts the latest rows (the calibration rows)
    if hasattr(model, "early_models_"):
        model, n_rows = model.early(), min(MEASURE_ROWS, int(model.calibration_rows_))
    else:  # a forecaster fitted elsewhere: in sample, where the assumptions look costlier than they are
        n_rows = MEASURE_ROWS
    rows = table.frame.tail(n_rows)
    requests = table.inputs["requests"].join(rows.select("request_id"), on="request_id", how="semi")
    ids = rows.select("creator_id").unique()
    base_creators = creators.join(ids, on="creator_id", how="semi")
    posts = table.inputs["posts"].join(ids, on="creator_id", how="semi")
    features = list(model.features_)
    order = rows.select("request_id")

    def forecast(c: pl.DataFrame, p: pl.DataFrame = posts) -> dict[str, np.ndarray]:
        built = build_features(c.lazy(), p.lazy(), requests.lazy(), tiers, peers=peers).collect()
        built = order.join(built, on="request_id", how="left", maintain_order="left")
        return model.predict_mean(built.select(features))

    def extra_sd(m0: np.ndarray, after: np.ndarray, y: np.ndarray) -> float | None:
        """The log sd the assumption adds beyond the forecast's own error (mean square, log1p scale)."""
        ok = np.isfinite(y) & np.isfinite(m0) & np.isfinite(after)
        if ok.sum() < 50:
            return None
        ly = np.log1p(np.maximum(y[ok], 0.0))
        extra = float(np.mean((ly - np.log1p(np.maximum(after[ok], 0.0))) ** 2)
                      - np.mean((ly - np.log1p(np.maximum(m0[ok], 0.0))) ** 2))  # fmt: skip
        return round(math.sqrt(max(extra, 0.0)), 4)

    def observed(kpi: str, n: int) -> np.ndarray:
        return rows[kpi].cast(pl.Float64).to_numpy() if kpi in rows.columns else np.full(n, np.nan)

    before = forecast(base_creators)
    widening: dict[str, dict[str, float]] = {}
    for kind in COLUMN_KINDS:
        bare = strip(base_creators, kind)
        seen = build_features(bare.lazy(), posts.lazy(), requests.lazy(), tiers, peers=peers).collect()
        # completion reads a creator's first row (here its latest hire) and prices every format it is hired in
        completed, _ = completion.complete(bare, seen.sort("as_of", "request_id", descending=True))
        after = forecast(completed)
        widening[kind] = {kpi: extra_sd(m0, after[kpi], observed(kpi, len(m0))) or 0.0 for kpi, m0 in before.items()}
    # no post history (no posts, no averages per post): the same rows forecast without their posts. The band is
    # widened by the error that adds; the forecast itself is left as the funnel gives it. (A level measured on the
    # market's sums, with posts over without, made the typical such creator right but over-stated the ones a planner
    # picks by value per dollar 2.3x, and net-return plans lost money: README, "Partial data".)
    without = forecast(base_creators, posts.head(0))
    widening["history"] = {kpi: extra_sd(m0, without[kpi], observed(kpi, len(m0))) or 0.0
                           for kpi, m0 in before.items()}  # fmt: skip
    return Completion(price=completion.price, credibility=completion.credibility,
                      audience_mix=completion.audience_mix, widening=widening)  # fmt: skip
