"""`ie tune`: Optuna search over one KPI's LightGBM settings, pruned through a LightGBM callback.

The study lives in a sqlite file under training/ (``optuna.db``), so a stopped study resumes where it left
off: running the command again adds trials to the same study. The objective is the relative Poisson deviance
(each row's deviance over its forecast, ``metrics.relative_poisson_deviance``) on the latest campaigns (a time split
of the training table), with the funnel upstream of the KPI fitted once.

Why relative: the plain mean deviance grows with the counts, so a few of the largest creators decide it. On the demo
world, across the trials of one study per KPI, the plain deviance of the settings picked tracked their error against
the simulator's truth poorly (correlation -0.15 to +0.89 over the trials; picking by it made every KPI's error worse,
engagements' MAE log1p 0.219 -> 0.315), the relative one closely (+0.95 to +0.99 for reach, impressions, clicks and
revenue; +0.50 for engagements).
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
from influencer_engine.modeling.estimator import KPIModel, offset_of
from influencer_engine.modeling.forecaster import KPIForecaster, kpi_params, targets_of
from influencer_engine.modeling.matrix import to_matrix
from influencer_engine.modeling.metrics import relative_poisson_deviance
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
    kept_configured: bool = False  # no trial beat the configured settings: the tuned file keeps them


# pruning compares trials after equal boosting (iterations x learning rate), in units of this much; none is pruned
# before 5 units (the configured settings do 300 x 0.06 = 18, the search space 2 to 160)
_PROGRESS_UNIT = 2.0
_WARMUP_UNITS = 5


def _pruning_callback(
    trial: Any, score: Callable[[Any], float], learning_rate: float, unit: float = _PROGRESS_UNIT
) -> Callable[[Any], None]:
    """Report ``score`` of the booster so far to Optuna as LightGBM trains; stop the trial when Optuna prunes it.

    Steps count the boosting done (iterations x learning rate) in ``unit``s, not iterations: the pruner compares
    trials at equal steps, and at equal iterations a trial with a low learning rate looks worse than it will end (on the
    demo world, counted in iterations, 21 of 30 reach trials were pruned, every one at the first look, iteration 50).
    A report falls when a trial's boosting crosses each whole unit."""
    import optuna

    done = {"step": 0}

    def callback(env: Any) -> None:
        step = int((env.iteration + 1) * learning_rate / unit + 1e-9)
        if step <= done["step"]:
            return
        done["step"] = step
        trial.report(score(env.model), step=step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at iteration {env.iteration + 1} (boosting {step * unit:g})")

    return callback


# the search space: name -> (low, high, log scale, step of an integer)
_SPACE: dict[str, tuple[float, float, bool, int] | tuple[int, int, bool, int]] = {
    "learning_rate": (0.02, 0.2, True, 1),
    "num_leaves": (7, 127, True, 1),
    "min_child_samples": (5, 200, True, 1),
    "subsample": (0.5, 1.0, False, 1),
    "colsample_bytree": (0.4, 1.0, False, 1),
    "reg_lambda": (1e-3, 30.0, True, 1),
    "n_estimators": (100, 800, False, 50),
}


def _space(config: ModelConfig, kpi: str) -> tuple[dict[str, tuple[Any, Any, bool, int]], dict[str, Any] | None]:
    """The search space of ``kpi``, widened to hold its configured settings, and those settings as a trial (None
    when one cannot be a trial: a zero on a log scale)."""
    params = kpi_params(config, kpi)
    space: dict[str, tuple[Any, Any, bool, int]] = {}
    configured: dict[str, Any] | None = {}
    for name, (low, high, log, step) in _SPACE.items():
        v = params[name]
        if isinstance(low, int):
            v = int(v)
            lo = v - step * ((v - min(low, v)) // step)  # on the grid through v
            space[name] = (lo, lo + step * ((max(high, v) - lo) // step), log, step)
        else:
            v = float(v)
            space[name] = (min(low, v), max(high, v), log, step)
        if configured is not None and (not log or v > 0):
            configured[name] = v
        else:
            configured = None
    if any(lo <= 0 for lo, _, log, _ in space.values() if log):
        space = dict(_SPACE)
    return space, configured


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
    matrix_va, yv = to_matrix(x_va, features), y_va[ok_va]
    mt = None if m_tr is None else m_tr[ok_tr]
    mv = None if m_va is None else m_va[ok_va]
    # the validation rows' log offset (the funnel's forecast, or the configured column): the same for every trial
    offset_va = offset_of(x_va, kpi_params(config, kpi)["offset"]) if mv is None else mv

    def fit(params: dict[str, Any], trial: Any | None) -> tuple[KPIModel, float]:
        p = kpi_params(config, kpi, params)
        p["random_state"] = seed
        model = KPIModel(**p)

        def so_far(booster: Any) -> float:  # the validation score of the trees built so far (intercept set by fit)
            raw = booster.predict(matrix_va, raw_score=True) + offset_va + model.intercept_
            return relative_poisson_deviance(yv, np.exp(raw))

        callbacks = [] if trial is None else [_pruning_callback(trial, so_far, float(p["learning_rate"]))]
        model.fit(x_tr, y_tr[ok_tr], base_margin=mt, callbacks=callbacks)
        return model, relative_poisson_deviance(yv, model.predict(x_va, mv))

    space, configured = _space(config, kpi)

    def objective(trial: Any) -> float:
        params = {
            name: trial.suggest_float(name, low, high, log=log) if isinstance(low, float)
            else trial.suggest_int(name, low, high, log=log, step=step)
            for name, (low, high, log, step) in space.items()
        }  # fmt: skip
        _, value = fit(params, trial)
        return value

    root.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(root / 'optuna.db').resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"kpi-{kpi}-relative",  # studies named kpi-<name> scored the plain deviance: not resumed
        storage=url,
        load_if_exists=True,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=_WARMUP_UNITS),
    )
    if not study.trials and configured is not None:  # a new study tries the configured settings first
        study.enqueue_trial(configured)
    study.optimize(objective, n_trials=trials, timeout=timeout, gc_after_trial=False)
    _, default_value = fit({}, None)
    states = [t.state for t in study.trials]
    complete = sum(s == optuna.trial.TrialState.COMPLETE for s in states)
    if complete == 0:
        raise InputError(f"no tuning trial of {kpi} completed.", fix="run more trials (--trials)")
    # the configured settings stay unless a trial beat them: `ie train --tuned` never trains with worse settings
    kept = study.best_value >= default_value
    best = {} if kept else dict(study.best_params)
    value = default_value if kept else float(study.best_value)
    path = write_json({"kpi": kpi, "params": best, "value": value, "default_value": default_value,
                       "kept_configured": kept, "best_trial_value": study.best_value,
                       "metric": "relative_poisson_deviance (validation: latest campaigns)", "study": study.study_name,
                       "storage": url, "trials": len(study.trials)}, root / "tuned" / f"{kpi}.json")  # fmt: skip
    return TuneResult(kpi=kpi, best_value=value, best_params=best, trials=len(study.trials), complete=complete,
                      pruned=sum(s == optuna.trial.TrialState.PRUNED for s in states), default_value=default_value,
                      path=path, kept_configured=kept)  # fmt: skip


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
        metrics = {"best_relative_poisson_deviance": r.best_value, "default_relative_poisson_deviance": r.default_value,
                   "trials": r.trials, "pruned": r.pruned, "kept_configured": float(r.kept_configured)}  # fmt: skip
        run = log_tuning_run(kpi=kpi, seed=seed, best_params=r.best_params, artifact=r.path, metrics=metrics)
    return replace(r, seconds=time.perf_counter() - t0, tracking_run=run)
