"""`ie train`: backtest, fit every KPI on all campaigns, write the bundle and report, track it in MLflow."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from influencer_engine.config import ModelConfig, TierConfig
from influencer_engine.features.build import feature_columns
from influencer_engine.features.creator import peer_table
from influencer_engine.features.requests import outcome_request_id
from influencer_engine.io import read_table
from influencer_engine.modeling.backtest import BacktestResult, backtest, expected_errors
from influencer_engine.modeling.baselines import Baselines
from influencer_engine.modeling.estimator import BoosterTrainer, thread_budget, usable_cpus
from influencer_engine.modeling.forecaster import KPIForecaster, fits_per_forecaster, targets_of
from influencer_engine.modeling.predictor import TrainingInfo
from influencer_engine.modeling.report import importance_chart, write_report
from influencer_engine.training.bundle import save_bundle
from influencer_engine.training.completion import fit_bundle_completion
from influencer_engine.training.data import TrainingTable, load_training_table, market_rows

__all__ = ["TrainResult", "backtest_metrics", "load_truth", "train_models", "training_fits"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class TrainResult:
    bundle: Path
    backtest: BacktestResult
    seconds: dict[str, float]
    tracking: dict[str, Any] | None
    table: TrainingTable


def _within_budget(threads: int, task: Callable[[], _T]) -> _T:
    with thread_budget(threads):
        return task()


def training_fits(config: ModelConfig) -> int:
    """Boosters ``train_models`` trains: each backtest fold's forecaster, then the final one."""
    return (config.backtest.folds + 1) * fits_per_forecaster(config)


def load_truth(folder: Path) -> pl.DataFrame | None:
    """A simulated world's true expected outcomes keyed by request_id (None for real data)."""
    path = folder / "truth" / "expected_outcomes.parquet"
    if not path.is_file():
        return None
    t = read_table(path)
    return t.select(outcome_request_id(), pl.col("^true_.*$"))


def backtest_metrics(result: BacktestResult) -> dict[str, float]:
    """Flat metric names for MLflow: backtest.<kpi>.<method>.<metric>."""
    out: dict[str, float] = {}
    for kpi, methods in result.metrics.items():
        for m, row in methods.items():
            for name, v in row.items():
                out[f"backtest.{kpi}.{m}.{name}"] = v
    for m, v in result.per_dollar.items():
        out[f"backtest.conversions_per_dollar_spearman.{m}"] = v
    return out


def train_models(
    data: Path,
    out: Path,
    config: ModelConfig,
    tiers: TierConfig,
    *,
    seed: int = 0,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    track: bool = True,
    training_root: Path = Path("training"),
    tracking_uri: str | None = None,
    register: bool = True,
    engine: str = "local",
    trainer: BoosterTrainer | None = None,
    on_fit: Callable[[str], None] | None = None,
) -> TrainResult:
    """Backtest beside the baselines, fit on every campaign of ``data``, write the bundle ``out`` and its report.

    ``trainer`` trains the boosters elsewhere (``training.distributed.dask_trainer``; ``engine`` names it in the
    manifest); with ``track`` the run is logged to MLflow and, with ``register``, registered as @champion.
    ``on_fit`` hears of each of the ``training_fits(config)`` boosters as it is trained (a progress bar).
    """
    t0 = time.perf_counter()
    table = load_training_table(data, tiers)
    truth = load_truth(data)
    features = feature_columns()
    frame = table.frame
    targets = targets_of(frame)
    # the market's creators under past campaigns' contexts, outcomes unknown: the final funnel's level against its
    # fold funnels' is read on them (``KPIForecaster.fit``)
    market = market_rows(table, tiers, seed=seed)
    market_features = None if market is None else market.select(features)
    t_features = time.perf_counter() - t0

    def run_backtest() -> tuple[BacktestResult, float]:
        t = time.perf_counter()
        r = backtest(frame, config, truth=truth, overrides=overrides, seed=seed, trainer=trainer, on_fit=on_fit,
                     unlabeled=market_features)  # fmt: skip
        return r, time.perf_counter() - t

    def fit_final() -> tuple[KPIForecaster, float]:
        t = time.perf_counter()
        m = KPIForecaster(config, overrides=overrides, random_state=seed).fit(
            frame.select(features),
            targets,
            time=frame["as_of"].to_numpy(),
            groups=frame["creator_id"].to_numpy(),
            campaigns=frame["campaign_id"].to_numpy(),
            unlabeled=market_features,
            trainer=trainer,
            on_fit=on_fit,
        )
        return m, time.perf_counter() - t

    # The backtest and the final fit are independent: on 2+ CPUs they run side by side, each LightGBM fit on its
    # share of the CPUs. Fewer threads per fit means fewer waits at LightGBM's barriers, which on a busy machine
    # are where the time goes (the trees are the same for any thread count). The Dask engine trains elsewhere.
    cpus = usable_cpus()
    if trainer is None and cpus >= 2:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ie-train") as pool:
            share = cpus // 2
            bt = pool.submit(_within_budget, share, run_backtest)
            fin = pool.submit(_within_budget, share, fit_final)
            (result, t_backtest), (model, t_fit) = bt.result(), fin.result()
    else:
        (result, t_backtest), (model, t_fit) = run_backtest(), fit_final()
    # where the data carry their expected values (simulated), the backtest measures how far forecasts are from them
    # (the planner evaluation bands a roster's expected total with it)
    for kpi, error in expected_errors(result.predictions).items():
        if kpi in model.models_:
            model.models_[kpi].set_expected_error(error)
    baselines = Baselines.fit(frame.select(features), targets, config.media_kit)
    fingerprint = table.fingerprint()
    training = TrainingInfo(engine=engine, data=str(data), rows_in=table.rows_in, rows=frame.height,
                            tables=table.tables, first_campaign=str(frame["as_of"].min()),
                            last_campaign=str(frame["as_of"].max()), seed=seed)  # fmt: skip
    peers = peer_table(frame)
    t = time.perf_counter()
    completion = fit_bundle_completion(table, model, tiers, seed=seed, peers=peers)
    t_completion = time.perf_counter() - t
    bundle = save_bundle(model, baselines, out, fingerprint=fingerprint, metrics=result.to_dict(), training=training,
                         peers=peers, completion=completion)  # fmt: skip
    report_dir = out / "report"
    paths = write_report(
        report_dir, {"backtest": result}, title=f"KPI models: backtest on {data}",
        notes=[f"training data fingerprint {fingerprint[:16]}", f"seed {seed}"],
    )  # fmt: skip
    importance = {k: dict(zip(m.booster_.feature_name(), m.booster_.feature_importance("gain").tolist(), strict=True))
                  for k, m in model.models_.items()}  # fmt: skip
    paths["importance"] = importance_chart(importance, report_dir / "feature_importance.png")
    seconds = {"features": t_features, "backtest": t_backtest, "fit": t_fit, "completion": t_completion}
    tracking = None
    if track:
        from influencer_engine.training.tracking import configure, flatten, log_training_run

        uri = configure(tracking_uri, training_root)
        params = flatten({"config": config.model_dump(mode="json")})
        params.update(flatten({"overrides": {k: dict(v) for k, v in (overrides or {}).items()}}))
        params.update({"seed": seed, "data": str(data), "rows": frame.height})
        metrics = backtest_metrics(result)
        metrics.update({f"seconds.{k}": v for k, v in seconds.items()})
        tracking = log_training_run(
            params=params,
            metrics=metrics,
            tags={"run_name": f"train {data.name}", "data_fingerprint": fingerprint, "bundle": str(bundle)},
            artifacts=list(paths.values()),
            bundle=bundle,
            register=register,
        )
        tracking["tracking_uri"] = uri
    seconds["total"] = time.perf_counter() - t0
    return TrainResult(bundle=bundle, backtest=result, seconds=seconds, tracking=tracking, table=table)
