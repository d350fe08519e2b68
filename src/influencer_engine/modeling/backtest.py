"""Backtests: train on earlier campaigns, forecast later ones, score the model beside the baselines.

Metrics per KPI and method: Poisson deviance and MAE on log1p against the observed outcome; where the data
is simulated, MAE on log1p and Spearman rank correlation against the true expected value too; for the model,
P10-P90 coverage and width. Conversions per dollar (cost paid) are ranked against the truth as a planner would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.config import ModelConfig
from influencer_engine.features.build import feature_columns
from influencer_engine.modeling.baselines import BASELINES, Baselines
from influencer_engine.modeling.estimator import BoosterTrainer
from influencer_engine.modeling.forecaster import KPIForecaster, targets_of
from influencer_engine.modeling.intervals import HISTORY_BUCKETS, ExpectedError, history_bucket, segments_of
from influencer_engine.modeling.metrics import (
    coverage,
    interval_width,
    mae_log1p,
    poisson_deviance,
    spearman,
    sum_ratio,
)
from influencer_engine.registry import KPI_NAMES

__all__ = [
    "CONTEXT_GROUPS",
    "METHODS",
    "BacktestResult",
    "backtest",
    "expected_errors",
    "score_predictions",
    "time_splits",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.intp]
METHODS = ("model", *BASELINES)


def time_splits(times: npt.NDArray[Any], test_share: float, folds: int = 1) -> list[tuple[I64, I64]]:
    """Expanding-window splits: fold i trains on rows before its cutoff and tests on the next block.

    The last ``test_share`` of rows by time is cut into ``folds`` consecutive blocks.
    """
    t = np.asarray(times)
    qs = np.quantile(t.astype("datetime64[us]").astype(np.int64), np.linspace(1 - test_share, 1, folds + 1))
    tv = t.astype("datetime64[us]").astype(np.int64)
    out = []
    for i in range(folds):
        lo, hi = qs[i], qs[i + 1]
        train = np.flatnonzero(tv < lo)
        test = np.flatnonzero((tv >= lo) & ((tv < hi) if i < folds - 1 else (tv <= hi)))
        out.append((train, test))
    return out


def _in_fold(on_fit: Callable[[str], None] | None, fold: int) -> Callable[[str], None] | None:
    if on_fit is None:
        return None
    report = on_fit
    return lambda label: report(f"backtest fold {fold + 1}, {label}")


@dataclass
class BacktestResult:
    metrics: dict[str, dict[str, dict[str, float]]]  # kpi -> method -> metric -> value
    per_dollar: dict[str, float]  # method -> Spearman of conversions per dollar vs truth (or observed)
    rows: dict[str, int]
    predictions: pl.DataFrame  # test rows: keys, observed, truth, model mean + quantiles, baselines
    calibration: dict[str, dict[str, float]]  # kpi -> "below_p10"/"below_p50"/"below_p90"
    beats: dict[str, bool] = field(default_factory=dict)  # kpi -> model beats every baseline on every metric
    # the model's error and coverage per history bucket (posts before the campaign), tier and platform
    breakdown: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "conversions_per_dollar_spearman": self.per_dollar, "rows": self.rows,
                "calibration": self.calibration, "beats_every_baseline": self.beats,
                "breakdown": self.breakdown}  # fmt: skip


def backtest(
    table: pl.DataFrame,
    config: ModelConfig,
    *,
    truth: pl.DataFrame | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    trainer: BoosterTrainer | None = None,
    on_fit: Callable[[str], None] | None = None,
    extra_features: Sequence[str] = (),
    train_share: float = 1.0,
    unlabeled: pl.DataFrame | None = None,
) -> BacktestResult:
    """Time-split backtest of the model and the baselines on a training table (``trainer``: see KPIModel.fit;
    ``on_fit`` hears of every booster trained, as ``KPIForecaster.fit``'s).

    Diagnostics: ``extra_features`` are table columns the model also reads (the simulator's hidden truths give the
    information ceiling); ``train_share`` < 1 trains on that share of the earlier campaigns (a campaign's hires stay
    together, picked by a hash of its id), tested on the same later rows (the learning curve)."""
    features = [*feature_columns(), *extra_features]
    times = table["as_of"].to_numpy()
    parts = []
    for fold, (train_idx, test_idx) in enumerate(time_splits(times, config.backtest.test_share, config.backtest.folds)):
        train, test = table[train_idx], table[test_idx]
        if train_share < 1.0:
            campaign = train["request_id"].str.split(":").list.first()
            train = train.filter(pl.Series((campaign.hash(seed) % 10_000).to_numpy() < round(train_share * 10_000)))
        n_train = train.height
        y = targets_of(train)
        model = KPIForecaster(config, overrides=overrides, random_state=seed).fit(
            train.select(features),
            y,
            time=train["as_of"].to_numpy(),
            groups=train["creator_id"].to_numpy() if "creator_id" in train.columns else None,
            unlabeled=None if unlabeled is None else unlabeled.select(features),
            trainer=trainer,
            on_fit=_in_fold(on_fit, fold),
        )
        base = Baselines.fit(train.select(features), y, config.media_kit)
        fc = model.predict(test.select(features))
        cols: dict[str, Any] = {}
        for k in fc.mean:
            cols[f"model__{k}"] = fc.mean[k]
            for j, lv in enumerate(fc.levels):
                cols[f"model__{k}_p{round(lv * 100)}"] = fc.quantiles[k][:, j]
            for b in BASELINES:
                cols[f"{b}__{k}"] = base.predict(b, test, k)
        keep = [c for c in ("creator_id", "campaign_id", "posts_before", "tier", "platform", "brand_category", "month")
                if c in test.columns]  # fmt: skip
        parts.append(test.select("request_id", "as_of", "cost", *keep, *(k for k in KPI_NAMES if k in test.columns))
                     .with_columns(**{c: pl.Series(c, v) for c, v in cols.items()}))  # fmt: skip
    preds = pl.concat(parts, how="vertical")
    if truth is not None:
        preds = preds.join(truth, on="request_id", how="left")
    return score_predictions(preds, n_train=n_train)


def expected_errors(preds: pl.DataFrame) -> dict[str, ExpectedError]:
    """Each KPI's error about the expected value (``intervals.ExpectedError``) on the backtest's later campaigns, where
    the predictions carry the truth (``true_<kpi>``, simulated data); empty without it."""
    needed = {"creator_id", "campaign_id"}
    if not needed <= set(preds.columns):
        return {}
    out: dict[str, ExpectedError] = {}
    segments = segments_of(preds)
    for k in KPI_NAMES:
        cols = [f"true_{k}", f"model__{k}", f"model__{k}_p10", f"model__{k}_p50", f"model__{k}_p90"]
        if not all(c in preds.columns for c in cols):
            continue
        m = preds.select(pl.col(c).cast(pl.Float64) for c in cols).to_numpy()
        out[k] = ExpectedError.fit(m[:, 0], m[:, 1], m[:, 2:5], preds["creator_id"].to_numpy(),
                                   preds["campaign_id"].to_numpy(), segments)  # fmt: skip
    return out


def score_predictions(preds: pl.DataFrame, *, n_train: int) -> BacktestResult:
    """Metrics from a predictions frame (observed KPIs, optional true_<kpi>, method__<kpi> columns)."""
    has_truth = any(c.startswith("true_") for c in preds.columns)
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    calib: dict[str, dict[str, float]] = {}
    beats: dict[str, bool] = {}
    breakdown: list[dict[str, Any]] = []
    groups = _groups(preds)

    def col(name: str) -> F64:
        return preds[name].cast(pl.Float64).fill_null(np.nan).to_numpy()

    for k in KPI_NAMES:
        if f"model__{k}" not in preds.columns:
            continue
        y = col(k)
        tru = col(f"true_{k}") if has_truth else None
        metrics[k] = {}
        for m in METHODS:
            p = col(f"{m}__{k}")
            row = {"poisson_deviance": poisson_deviance(y, p), "mae_log1p": mae_log1p(y, p),
                   "spearman": spearman(p, tru if tru is not None else y)}  # fmt: skip
            row["sum_ratio"] = sum_ratio(p, y)
            if tru is not None:
                row["mae_log1p_true"] = mae_log1p(tru, p)
                row["sum_ratio_true"] = sum_ratio(p, tru)
            metrics[k][m] = row
        lo, mid, hi = col(f"model__{k}_p10"), col(f"model__{k}_p50"), col(f"model__{k}_p90")
        metrics[k]["model"].update(coverage_p10_p90=coverage(y, lo, hi), **interval_width(lo, hi, mid))
        p = col(f"model__{k}")
        for by, (labels, index) in groups.items():
            for g, label in enumerate(labels):
                inside = (index == g) & np.isfinite(y)
                if inside.sum() < MIN_GROUP_ROWS:
                    continue
                cell = {"kpi": k, "by": by, "group": label, "rows": int(inside.sum()),
                        "mae_log1p": mae_log1p(y[inside], p[inside]),
                        "coverage_p10_p90": coverage(y[inside], lo[inside], hi[inside]),
                        "sum_ratio": sum_ratio(p[inside], y[inside])}  # fmt: skip
                if tru is not None:
                    cell["mae_log1p_true"] = mae_log1p(tru[inside], p[inside])
                    cell["sum_ratio_true"] = sum_ratio(p[inside], tru[inside])
                breakdown.append(cell)
        ok = np.isfinite(y)
        calib[k] = {f"below_{q}": float(np.mean(y[ok] <= col(f"model__{k}_{q}")[ok])) for q in ("p10", "p50", "p90")}
        mine = metrics[k]["model"]
        beats[k] = all(
            mine["poisson_deviance"] < metrics[k][b]["poisson_deviance"]
            and mine["mae_log1p"] < metrics[k][b]["mae_log1p"]
            and mine["spearman"] > metrics[k][b]["spearman"]
            and (tru is None or mine["mae_log1p_true"] < metrics[k][b]["mae_log1p_true"])
            for b in BASELINES
        )
    per_dollar: dict[str, float] = {}
    if "model__conversions" in preds.columns:
        cost = col("cost")
        target = col("true_conversions") if has_truth else col("conversions")
        for m in METHODS:
            per_dollar[m] = spearman(col(f"{m}__conversions") / cost, target / cost)
    rows = {"train": n_train, "test": preds.height}
    return BacktestResult(metrics=metrics, per_dollar=per_dollar, rows=rows, predictions=preds,
                          calibration=calib, beats=beats, breakdown=breakdown)  # fmt: skip


MIN_GROUP_ROWS = 20  # a group of the breakdown with fewer test rows is left out


# the breakdowns by the campaign's context, beside those by the creator (``_groups``): the brief's brand category and
# the month it starts in. The model learns a season pooled over categories (benchmarks/bench_context.py), so a
# category's level can run off in some months; these groups show it on the later campaigns
CONTEXT_GROUPS = {"category": "brand_category", "month": "month"}


def _groups(preds: pl.DataFrame) -> dict[str, tuple[tuple[str, ...], npt.NDArray[np.int64]]]:
    """The breakdowns the predictions allow (history bucket, tier, platform, and the context: brand category and
    month): each one's group labels, in order, and every prediction row's group index among them (-1: none)."""
    out: dict[str, tuple[tuple[str, ...], npt.NDArray[np.int64]]] = {}
    if "posts_before" in preds.columns:
        out["history"] = (HISTORY_BUCKETS, history_bucket(preds["posts_before"].cast(pl.Float64).to_numpy()))
    for by, c in {"tier": "tier", "platform": "platform", **CONTEXT_GROUPS}.items():
        if c in preds.columns:
            values = preds[c].cast(pl.Int64 if c == "month" else pl.String).cast(pl.String)
            labels = tuple(sorted((str(v) for v in values.drop_nulls().unique().to_list()),
                                  key=int if c == "month" else None))  # fmt: skip
            index = {v: i for i, v in enumerate(labels)}
            out[by] = (labels, np.array([-1 if v is None else index[v] for v in values.to_list()], dtype=np.int64))
    return out
