"""`ie train --prior BUNDLE`: the user's own campaign outcomes correct a prior bundle (``modeling.prior``).

The user's folder is validated and joined with point-in-time features exactly as ``ie train`` does. Before the
corrections are fitted, a time split of the user's rows says what they buy: corrections fitted on the earlier
rows forecast the later ones, beside the prior alone (error and band coverage, in the manifest and the report).
The prior's peers reference, rate card and completion models travel unchanged: the prior's trees read features
built with them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from influencer_engine.config import TierConfig
from influencer_engine.errors import InputError
from influencer_engine.features.build import feature_columns
from influencer_engine.modeling.forecaster import targets_of
from influencer_engine.modeling.metrics import coverage, mae_log1p, poisson_deviance
from influencer_engine.modeling.predictor import Predictor, TrainingInfo
from influencer_engine.modeling.prior import Correction, Drift, drift, fit_from_prior
from influencer_engine.training.bundle import load_bundle, save_bundle
from influencer_engine.training.data import TrainingTable, load_training_table

__all__ = ["HOLDOUT_SHARE", "MIN_HOLDOUT_ROWS", "PriorTrainResult", "holdout_check", "train_from_prior"]

HOLDOUT_SHARE = 0.2  # the latest share of the user's rows the time-split check forecasts
MIN_HOLDOUT_ROWS = 100  # fewer user rows than this: no time-split check (its figures would be noise)


@dataclass(frozen=True)
class PriorTrainResult:
    bundle: Path
    prior: Path
    table: TrainingTable
    corrections: dict[str, Correction]
    drift: dict[str, Drift]  # the user's outcomes against the prior's bands
    rows_without_history: int  # outcomes whose creator had no post before the campaign
    holdout: dict[str, dict[str, dict[str, float]]]  # kpi -> "prior" | "corrected" -> metrics (empty: too few rows)
    seconds: dict[str, float]
    tracking: dict[str, Any] | None


def holdout_check(prior: Predictor, frame: pl.DataFrame, *, seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """Corrections fitted on the earlier ``1 - HOLDOUT_SHARE`` of ``frame`` (by campaign start) forecast the rest,
    beside the prior alone: MAE log1p, Poisson deviance and P10-P90 coverage per KPI."""
    if frame.height < MIN_HOLDOUT_ROWS:
        return {}
    frame = frame.sort("as_of", "request_id")
    cut = round(frame.height * (1 - HOLDOUT_SHARE))
    early, late = frame.head(cut), frame.tail(frame.height - cut)
    feats = feature_columns()
    fit = fit_from_prior(prior.forecaster, early.select(feats), targets_of(early, prior.kpis),
                         groups=early["creator_id"].to_numpy(), seed=seed)  # fmt: skip
    out: dict[str, dict[str, dict[str, float]]] = {}
    X = late.select(feats)
    fcs = {"prior": prior.forecaster.predict(X), "corrected": fit.forecaster.predict(X)}
    for kpi, y in targets_of(late, prior.kpis).items():
        if np.isfinite(y).sum() < 20:
            continue
        out[kpi] = {}
        for name, fc in fcs.items():
            q = fc.quantiles[kpi]
            mu = fc.mean[kpi]
            out[kpi][name] = {"mae_log1p": mae_log1p(y, mu), "poisson_deviance": poisson_deviance(y, mu),
                              "coverage_p10_p90": coverage(y, q[:, 0], q[:, -1]),
                              "rows": float(np.isfinite(y).sum())}  # fmt: skip
    return out


def train_from_prior(
    data: Path,
    prior_path: Path,
    out: Path,
    tiers: TierConfig,
    *,
    seed: int = 0,
    track: bool = True,
    training_root: Path = Path("training"),
    tracking_uri: str | None = None,
    register: bool = False,
) -> PriorTrainResult:
    """Correct the bundle at ``prior_path`` with the outcomes of ``data``; write the new bundle to ``out``."""
    t0 = time.perf_counter()
    prior = load_bundle(prior_path)
    if prior.manifest.prior is not None:
        raise InputError(f"{prior_path} was itself trained from a prior ({prior.manifest.prior.bundle}).",
                         fix=f"pass that prior, {prior.manifest.prior.bundle}, with all of your campaigns")  # fmt: skip
    table = load_training_table(data, tiers)
    frame = table.frame
    feats = feature_columns()
    X, targets = frame.select(feats), targets_of(frame, prior.kpis)
    observed = [k for k, v in targets.items() if np.isfinite(v).any()]
    if not observed:
        raise InputError(f"{data}: the outcomes have no observed KPI ({', '.join(prior.kpis)}).",
                         fix="fill at least one KPI column of the outcomes (e.g. conversions)")  # fmt: skip
    t_features = time.perf_counter() - t0
    t = time.perf_counter()
    shifted = drift(prior.forecaster, X, targets)
    holdout = holdout_check(prior, frame, seed=seed)
    t_check = time.perf_counter() - t
    t = time.perf_counter()
    fit = fit_from_prior(prior.forecaster, X, targets, groups=frame["creator_id"].to_numpy(), seed=seed)
    t_fit = time.perf_counter() - t
    no_history = int((frame["posts_before"] == 0).sum())
    training = TrainingInfo(engine="prior", data=str(data), rows_in=table.rows_in, rows=frame.height,
                            tables=table.tables, first_campaign=str(frame["as_of"].min()),
                            last_campaign=str(frame["as_of"].max()), seed=seed)  # fmt: skip
    m = prior.manifest
    prior_info = {
        "bundle": str(prior_path), "training_data_fingerprint": m.training_data_fingerprint,
        "manifest_checksum": m.checksum, "trained_on": m.training.data, "user_rows": frame.height,
        "corrections": {k: c.to_dict() for k, c in fit.corrections.items()},
        "drift": {k: d.to_dict() for k, d in shifted.items()},
    }  # fmt: skip
    metrics = {"prior_holdout": holdout, "rows_without_history": no_history}
    bundle = save_bundle(fit.forecaster, prior.baselines, out, fingerprint=table.fingerprint(), metrics=metrics,
                         training=training, peers=prior.peers, completion=prior.completion,
                         prior=prior_info)  # fmt: skip
    seconds = {"features": t_features, "check": t_check, "fit": t_fit}
    tracking = None
    if track:
        from influencer_engine.training.tracking import configure, log_training_run

        uri = configure(tracking_uri, training_root)
        flat: dict[str, float] = {}
        for kpi, c in fit.corrections.items():
            flat[f"prior.{kpi}.trees"], flat[f"prior.{kpi}.shift"] = c.trees, c.shift
        for kpi, d in shifted.items():
            flat[f"drift.{kpi}.inside"], flat[f"drift.{kpi}.ratio"] = d.inside, d.ratio
        for kpi, by in holdout.items():
            for name, row in by.items():
                flat.update({f"holdout.{kpi}.{name}.{k}": v for k, v in row.items()})
        flat.update({f"seconds.{k}": v for k, v in seconds.items()})
        tracking = log_training_run(
            params={"prior": str(prior_path), "prior_fingerprint": m.training_data_fingerprint, "data": str(data),
                    "rows": frame.height, "seed": seed},
            metrics=flat,
            tags={"run_name": f"train {data.name} from prior {prior_path.name}",
                  "data_fingerprint": table.fingerprint(), "bundle": str(bundle)},
            artifacts=[],
            bundle=bundle,
            register=register,
        )  # fmt: skip
        tracking["tracking_uri"] = uri
    seconds["total"] = time.perf_counter() - t0
    return PriorTrainResult(bundle=bundle, prior=prior_path, table=table, corrections=fit.corrections,
                            drift=shifted, rows_without_history=no_history, holdout=holdout, seconds=seconds,
                            tracking=tracking)  # fmt: skip
