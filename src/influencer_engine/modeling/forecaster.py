"""The funnel of KPI models: reach -> impressions -> engagements -> clicks -> conversions -> revenue.

Each KPI has its own LightGBM model. A KPI whose offset is an earlier KPI (clicks and conversions on reach,
revenue on conversions) learns a rate on top of that KPI's forecast, so the noisy, sparse end of the funnel
borrows the precision of the well-measured top. Bands are calibrated on the latest rows by time, forecast by
a funnel fitted on the earlier rows only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from influencer_engine.config import ModelConfig
from influencer_engine.modeling.estimator import BoosterTrainer, KPIModel, offset_of
from influencer_engine.modeling.matrix import to_matrix
from influencer_engine.registry import KPI_NAMES

__all__ = ["MIN_ROWS", "Forecast", "KPIForecaster", "fits_per_forecaster", "targets_of"]

F64 = npt.NDArray[np.float64]
MIN_ROWS = 100  # a KPI with fewer observed rows is not modelled


@dataclass(frozen=True)
class Forecast:
    """Expected value and quantiles (P10, P50, P90) of every modelled KPI, row-aligned with the input."""

    mean: dict[str, F64]
    quantiles: dict[str, F64]  # (n, 3)
    levels: tuple[float, ...]

    def to_frame(self) -> pl.DataFrame:
        cols: dict[str, F64] = {}
        for k, m in self.mean.items():
            cols[k] = m
            for j, lv in enumerate(self.levels):
                cols[f"{k}_p{round(lv * 100)}"] = self.quantiles[k][:, j]
        return pl.DataFrame(cols)


def fits_per_forecaster(kpis: Sequence[str] = KPI_NAMES) -> int:
    """Boosters one ``KPIForecaster.fit`` trains: each KPI on the early rows (for its bands), then on all rows."""
    return 2 * len(kpis)


def _labelled(on_fit: Callable[[str], None] | None, stage: str) -> Callable[[str], None] | None:
    return None if on_fit is None else (lambda kpi: on_fit(f"{stage}: {kpi}"))


def targets_of(frame: pl.DataFrame, kpis: Sequence[str] = KPI_NAMES) -> dict[str, F64]:
    """Each KPI column present in ``frame`` as float64, NaN where it was not observed (the targets of ``fit``)."""
    return {k: frame[k].cast(pl.Float64).fill_null(np.nan).to_numpy() for k in kpis if k in frame.columns}


def kpi_params(config: ModelConfig, kpi: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """KPIModel keyword arguments for ``kpi`` from the config (plus tuned overrides)."""
    g = config.lightgbm
    base = g.offset[kpi]
    params: dict[str, Any] = {
        "objective": g.objective[kpi],
        "tweedie_variance_power": g.tweedie_variance_power,
        "n_estimators": g.n_estimators,
        "learning_rate": g.learning_rate,
        "num_leaves": g.num_leaves,
        "min_child_samples": g.min_child_samples,
        "subsample": g.subsample,
        "colsample_bytree": g.colsample_bytree,
        "reg_lambda": g.reg_lambda,
        "monotone": tuple(config.monotone.get(kpi, [])),
        "offset": None if base in KPI_NAMES else base,
        "levels": tuple(config.intervals.levels),
        "calibration_share": 0.0,
        "bins": config.intervals.bins,
        "n_jobs": g.n_jobs,
    }
    params.update(overrides or {})
    return params


class KPIForecaster(BaseEstimator):  # type: ignore[misc]
    """Every KPI's model plus the funnel that links them (fit once, predict all KPIs together)."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        kpis: Sequence[str] = KPI_NAMES,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        random_state: int = 0,
    ) -> None:
        self.config = config
        self.kpis = kpis
        self.overrides = overrides
        self.random_state = random_state

    def _base(self, kpi: str) -> str:
        base = self.config.lightgbm.offset[kpi]
        # an upstream KPI that is not modelled falls back to followers
        return base if base not in KPI_NAMES or base in self.models_ else "followers"

    def _margin(self, kpi: str, X: pl.DataFrame, preds: Mapping[str, F64]) -> F64:
        base = self._base(kpi)
        if base in KPI_NAMES:
            return np.log(np.maximum(preds[base], 1e-9))
        return offset_of(X, base)

    def _fit_funnel(
        self,
        X: pl.DataFrame,
        targets: Mapping[str, F64],
        *,
        predict_on: pl.DataFrame | None = None,
        trainer: BoosterTrainer | None = None,
        on_fit: Callable[[str], None] | None = None,
    ) -> tuple[dict[str, KPIModel], dict[str, F64]]:
        """Fit the funnel on X; return the models and their forecasts on ``predict_on`` (default X)."""
        self.models_ = {}
        in_sample: dict[str, F64] = {}
        out: dict[str, F64] = {}
        other = X if predict_on is None else predict_on
        for kpi in KPI_NAMES:
            if kpi not in self.kpis or kpi not in targets:
                continue
            y = np.asarray(targets[kpi], dtype=np.float64)
            known = np.isfinite(y)
            if known.sum() < MIN_ROWS:
                continue
            params = kpi_params(self.config, kpi, (self.overrides or {}).get(kpi))
            params["random_state"] = self.random_state
            if self._base(kpi) not in KPI_NAMES and params["offset"] is None:
                params["offset"] = "followers"
            model = KPIModel(**params)
            margin = self._margin(kpi, X, in_sample)
            rows = X.filter(pl.Series(known)) if not known.all() else X
            model.fit(rows, y[known], base_margin=margin[known], trainer=trainer)
            if on_fit is not None:
                on_fit(kpi)
            self.models_[kpi] = model
            in_sample[kpi] = model.predict(X, margin)
            out[kpi] = in_sample[kpi] if predict_on is None else model.predict(other, self._margin(kpi, other, out))
        return self.models_, out

    def fit(self, X: pl.DataFrame, targets: Mapping[str, F64], *, time: F64, trainer: BoosterTrainer | None = None,
            on_fit: Callable[[str], None] | None = None) -> KPIForecaster:  # fmt: skip
        """Fit every KPI on X (features) and ``targets`` (NaN where a KPI was not observed).

        ``trainer`` trains every booster elsewhere (a Dask cluster); by default in this process. ``on_fit`` hears of
        every booster trained ("calibration: reach", "final: reach", ...): two per KPI (see ``fits_per_forecaster``).
        """
        n = X.height
        order = np.argsort(np.asarray(time), kind="stable")
        n_cal = max(MIN_ROWS // 5, round(n * self.config.intervals.calibration_share))
        if n - n_cal < MIN_ROWS:
            raise ValueError(f"too few rows to fit and calibrate: {n} (need at least {n_cal + MIN_ROWS})")
        fit_idx, cal_idx = np.sort(order[:-n_cal]), np.sort(order[-n_cal:])
        sub = {k: np.asarray(v, dtype=np.float64) for k, v in targets.items()}
        early, cal_pred = self._fit_funnel(X[fit_idx], {k: v[fit_idx] for k, v in sub.items()},
                                           predict_on=X[cal_idx], trainer=trainer,
                                           on_fit=_labelled(on_fit, "calibration"))  # fmt: skip
        # the funnel fitted on the earlier rows: out of sample on the latest rows, for measurements made at training
        # time (bands, the widening of completed rows); not saved with the bundle
        self.early_models_ = dict(early)
        self.calibration_rows_ = n_cal
        bands = {}
        for kpi, pred in cal_pred.items():
            y = sub[kpi][cal_idx]
            ok = np.isfinite(y)
            bands[kpi] = (y[ok], pred[ok])
        models, _ = self._fit_funnel(X, sub, trainer=trainer, on_fit=_labelled(on_fit, "final"))
        for kpi, model in models.items():
            if kpi in bands and len(bands[kpi][0]) >= 20:
                model.calibrate(*bands[kpi])
        self.features_ = list(X.columns)
        return self

    def early(self) -> KPIForecaster:
        """The funnel fitted on the earlier rows only (see ``fit``), as a forecaster of its own."""
        check_is_fitted(self, "early_models_")
        other = KPIForecaster(self.config, kpis=self.kpis, overrides=self.overrides, random_state=self.random_state)
        other.models_ = dict(self.early_models_)
        other.features_ = list(self.features_)
        return other

    def _chain(self, X: pl.DataFrame, stop: str | None = None) -> dict[str, F64]:
        """Expected values down the funnel (every KPI, or those before ``stop``), as the margins see them."""
        mean: dict[str, F64] = {}
        # the models read the same columns in the same order: one model matrix serves every KPI
        names = [str(n) for n in next(iter(self.models_.values())).feature_names_in_] if self.models_ else []
        shared = all([str(n) for n in m.feature_names_in_] == names for m in self.models_.values())
        matrix = to_matrix(X, names) if shared and names and all(n in X.columns for n in names) else None
        for kpi in KPI_NAMES:
            if kpi == stop:
                break
            if kpi in self.models_:
                mean[kpi] = self.models_[kpi].predict(X, self._margin(kpi, X, mean), matrix=matrix)
        return mean

    def predict_mean(self, X: pl.DataFrame) -> dict[str, F64]:
        """Every KPI's expected value (no bands: also for a funnel whose models are not calibrated)."""
        check_is_fitted(self, "models_")
        mean = self._chain(X)
        if "reach" in mean and "impressions" in mean:
            mean["reach"] = np.minimum(mean["reach"], mean["impressions"])
        return mean

    def predict(self, X: pl.DataFrame) -> Forecast:
        check_is_fitted(self, "models_")
        mean = self._chain(X)
        quant = {kpi: self.models_[kpi].predict_quantiles(X, m) for kpi, m in mean.items()}
        if "reach" in mean and "impressions" in mean:
            # two models, one fact: nobody is reached without an impression
            mean["reach"] = np.minimum(mean["reach"], mean["impressions"])
            quant["reach"] = np.minimum(quant["reach"], quant["impressions"])
        return Forecast(mean=mean, quantiles=quant, levels=tuple(self.config.intervals.levels))

    def contributions(self, kpi: str, X: pl.DataFrame) -> tuple[F64, F64]:
        """(SHAP contributions of ``kpi``'s own trees, log offset): offset + row sum = log forecast."""
        check_is_fitted(self, "models_")
        prior = self._chain(X, stop=kpi) if self._base(kpi) in KPI_NAMES else {}
        return self.models_[kpi].contributions(X), self._margin(kpi, X, prior)

    def base_of(self, kpi: str) -> str:
        check_is_fitted(self, "models_")
        return self._base(kpi)
