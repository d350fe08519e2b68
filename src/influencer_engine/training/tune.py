"""`ie tune`: Optuna search over one KPI's LightGBM settings, pruned through a LightGBM callback.

The study lives in a sqlite file under training/ (``optuna.db``), so a stopped study resumes where it left
off: running the command again adds trials to the same study. The objective is the Poisson deviance on the
latest campaigns (a time split of the training table), with the funnel upstream of the KPI fitted once.
The best parameters go to ``training/tuned/<kpi>.json`` (read by ``ie train --tuned``) and to MLflow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.config import ModelConfig, TierConfig
from influencer_engine.errors import InputError
from influencer_engine.features.build import feature_columns
from influencer_engine.io import write_json
from influencer_engine.modeling.estimator import KPIModel
from influencer_engine.modeling.forecaster import KPIForecaster, kpi_params, targets_of
from influencer_engine.modeling.metrics import poisson_deviance
from influencer_engine.registry import KPI_NAMES
from influencer_engine.training.data import TrainingTable, load_training_table

__all__ = ["TuneResult", "load_tuned", "tune", "tune_kpi"]

TUNED = ("learning_rate", "num_leaves", "min_child_samples", "subsample", "colsample_bytree", "reg_lambda",
         "n_estimators")  # fmt: skip


@dataclass(frozen=True)
class TuneResult:
    kpi: str
    best_value: float
    best_params: dict[str, Any]
    trials: int
    complete: int
    pruned: int
    default_value: float
    path: Path
    seconds: float = 0.0
    tracking_run: str | None = None  # the MLflow run the best parameters were logged to


def _pruning_callback(trial: Any, every: int = 10) -> Callable[[Any], None]:
    """Report the validation deviance to Optuna as LightGBM trains; stop the trial when Optuna prunes it."""
    import optuna

    def callback(env: Any) -> None:
        if (env.iteration + 1) % every:
            return
        for _, metric, value, _ in env.evaluation_result_list:
            if metric == "poisson" or metric.startswith("tweedie") or metric == "gamma":
                trial.report(float(value), step=env.iteration + 1)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at iteration {env.iteration + 1}")
                return

    return callback


def load_tuned(root: Path) -> dict[str, dict[str, Any]]:
    """Tuned overrides per KPI written by `ie tune` (empty when none)."""
    out: dict[str, dict[str, Any]] = {}
    for kpi in KPI_NAMES:
        p = root / "tuned" / f"{kpi}.json"
        if p.is_file():
            out[kpi] = dict(json.loads(p.read_text(encoding="utf-8"))["params"])
    return out


def tune_kpi(
    table: TrainingTable,
    config: ModelConfig,
    kpi: str,
    *,
    trials: int,
    root: Path,
    seed: int = 0,
    storage: str | None = None,
    timeout: float | None = None,
) -> TuneResult:
    import optuna

    if kpi not in KPI_NAMES:
        raise InputError(f"unknown KPI '{kpi}'.", fix=f"use one of {', '.join(KPI_NAMES)}")
    frame = table.frame
    features = feature_columns()
    cut = frame["as_of"].cast(pl.Int64).quantile(1 - config.backtest.test_share)
    is_valid = (frame["as_of"].cast(pl.Int64) >= cut).to_numpy()
    tr, va = frame.filter(pl.Series(~is_valid)), frame.filter(pl.Series(is_valid))
    y_tr, y_va = targets_of(tr, [kpi])[kpi], targets_of(va, [kpi])[kpi]
    ok_tr, ok_va = np.isfinite(y_tr), np.isfinite(y_va)
    # the funnel upstream of the KPI, fitted once with the configured settings
    upstream = list(KPI_NAMES[: KPI_NAMES.index(kpi)])
    funnel = KPIForecaster(config, kpis=tuple(upstream), random_state=seed)
    base = config.lightgbm.offset[kpi]
    m_tr: npt.NDArray[np.float64] | None = None
    m_va: npt.NDArray[np.float64] | None = None
    if base in KPI_NAMES:
        funnel.fit(tr.select(features), targets_of(tr, upstream),
                   time=tr["as_of"].to_numpy())  # fmt: skip
        m_tr = np.log(np.maximum(funnel.predict(tr.select(features)).mean[base], 1e-9))
        m_va = np.log(np.maximum(funnel.predict(va.select(features)).mean[base], 1e-9))
    x_tr, x_va = tr.select(features).filter(pl.Series(ok_tr)), va.select(features).filter(pl.Series(ok_va))

    def fit(params: dict[str, Any], callbacks: list[Any]) -> tuple[KPIModel, float]:
        p = kpi_params(config, kpi, params)
        p["random_state"] = seed
        model = KPIModel(**p)
        mt = None if m_tr is None else m_tr[ok_tr]
        mv = None if m_va is None else m_va[ok_va]
        model.fit(x_tr, y_tr[ok_tr], base_margin=mt, valid=(x_va, y_va[ok_va], mv), callbacks=callbacks)
        pred = model.predict(x_va, mv)
        return model, poisson_deviance(y_va[ok_va], pred)

    def objective(trial: Any) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 7, 127, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 200, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
            "n_estimators": trial.suggest_int("n_estimators", 100, 800, step=50),
        }
        _, value = fit(params, [_pruning_callback(trial)])
        return value

    root.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(root / 'optuna.db').resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"kpi-{kpi}",
        storage=url,
        load_if_exists=True,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=50),
    )
    study.optimize(objective, n_trials=trials, timeout=timeout, gc_after_trial=False)
    _, default_value = fit({}, [])
    states = [t.state for t in study.trials]
    complete = sum(s == optuna.trial.TrialState.COMPLETE for s in states)
    if complete == 0:
        raise InputError(f"no tuning trial of {kpi} completed.", fix="run more trials (--trials)")
    best = dict(study.best_params)
    path = write_json({"kpi": kpi, "params": best, "value": study.best_value, "default_value": default_value,
                       "metric": "poisson_deviance (validation: latest campaigns)", "study": f"kpi-{kpi}",
                       "storage": url, "trials": len(study.trials)}, root / "tuned" / f"{kpi}.json")  # fmt: skip
    return TuneResult(kpi=kpi, best_value=float(study.best_value), best_params=best, trials=len(study.trials),
                      complete=complete, pruned=sum(s == optuna.trial.TrialState.PRUNED for s in states),
                      default_value=default_value, path=path)  # fmt: skip


def tune(
    data: Path,
    config: ModelConfig,
    tiers: TierConfig,
    kpi: str,
    *,
    trials: int,
    root: Path,
    seed: int = 0,
    storage: str | None = None,
    track: bool = True,
    tracking_uri: str | None = None,
) -> TuneResult:
    """`ie tune`: the training table of ``data``, ``trials`` more trials of the KPI's study, the best parameters
    written under ``root``/tuned and, with ``track``, logged to MLflow (experiment ``kpi-tuning``)."""
    import time
    from dataclasses import replace

    t0 = time.perf_counter()
    table = load_training_table(data, tiers)
    r = tune_kpi(table, config, kpi, trials=trials, root=root, seed=seed, storage=storage)
    run = None
    if track:
        from influencer_engine.training.tracking import configure, log_tuning_run

        configure(tracking_uri, root, experiment="kpi-tuning")
        metrics = {"best_poisson_deviance": r.best_value, "default_poisson_deviance": r.default_value,
                   "trials": r.trials, "pruned": r.pruned}  # fmt: skip
        run = log_tuning_run(kpi=kpi, seed=seed, best_params=r.best_params, artifact=r.path, metrics=metrics)
    return replace(r, seconds=time.perf_counter() - t0, tracking_run=run)
