"""The funnel of KPI models: reach -> impressions -> engagements -> clicks -> conversions -> revenue.

Each KPI has its own LightGBM model. A KPI whose offset is an earlier KPI (clicks and conversions on reach,
revenue on conversions) learns a rate on top of that KPI's forecast, so the noisy, sparse end of the funnel
borrows the precision of the well-measured top. Expected values carry each KPI's out-of-fold mean correction
(``modeling.balance``: funnels fitted on all but one fold of creators forecast that fold). Bands are calibrated on
the latest rows by time, forecast by a funnel fitted on the earlier rows only.
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
from influencer_engine.modeling.balance import PER_DOLLAR_QUANTILES, Balance, transfer_of
from influencer_engine.modeling.estimator import BoosterTrainer, KPIModel, offset_of
from influencer_engine.modeling.intervals import ErrorSplit, history_of
from influencer_engine.modeling.matrix import to_matrix
from influencer_engine.registry import KPI_NAMES

__all__ = [
    "MIN_ROWS",
    "PRIOR",
    "Forecast",
    "KPIForecaster",
    "fits_per_forecaster",
    "reach_within_impressions",
    "targets_of",
]

F64 = npt.NDArray[np.float64]
MIN_ROWS = 100  # a KPI with fewer observed rows is not modelled
PRIOR = "prior"  # the offset of every KPI of a forecaster trained from a prior (``modeling.prior``)


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


def reach_within_impressions(values: dict[str, F64]) -> dict[str, F64]:
    """``values`` (KPI -> expected values or quantile rows) with reach capped by impressions, in place: two models,
    one fact, nobody is reached without an impression. Bands widened later (``forecast``) are capped again."""
    if "reach" in values and "impressions" in values:
        values["reach"] = np.minimum(values["reach"], values["impressions"])
    return values


def fits_per_forecaster(config: ModelConfig, kpis: Sequence[str] = KPI_NAMES) -> int:
    """Boosters one ``KPIForecaster.fit`` trains: each KPI on the early rows (for its bands), on all but one fold
    of creators per fold (for its mean correction), then on all rows."""
    folds = config.intervals.balance_folds
    return (2 + (folds if folds >= 2 else 0)) * len(kpis)


def fold_of(groups: npt.NDArray[Any] | None, n: int, folds: int, seed: int) -> npt.NDArray[np.int64]:
    """Each row's fold: rows of one group (a creator) share a fold, groups are dealt to folds at random (``seed``);
    without groups every row is its own."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return np.asarray(rng.permutation(n) % folds, dtype=np.int64)
    uniq, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    dealt = rng.permutation(len(uniq)) % folds
    return np.asarray(dealt[inverse], dtype=np.int64)


def price_of(X: pl.DataFrame) -> F64 | None:
    """Each row's price (NaN where missing), None without a price column: the key of the per-dollar correction."""
    if "price" not in X.columns:
        return None
    return X["price"].cast(pl.Float64).fill_null(np.nan).to_numpy()


def platform_of(X: pl.DataFrame) -> npt.NDArray[Any] | None:
    """Each row's platform (None without a platform column): the segment of the per-dollar correction."""
    if "platform" not in X.columns:
        return None
    return X["platform"].cast(pl.String).fill_null("").to_numpy()


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
        if getattr(self, "prior_", None) is not None:
            return PRIOR  # trained from a prior: every KPI corrects the prior's own forecast of it
        base = self.config.lightgbm.offset[kpi]
        # an upstream KPI that is not modelled falls back to followers
        return base if base not in KPI_NAMES or base in self.models_ else "followers"

    def prior_margins(self, X: pl.DataFrame) -> dict[str, F64]:
        """Log of the prior's expected value of every KPI (empty without a prior): the offsets of a forecaster
        trained from a prior (``modeling.prior``)."""
        prior: KPIForecaster | None = getattr(self, "prior_", None)
        if prior is None:
            return {}
        return {k: np.log(np.maximum(m, 1e-9)) for k, m in prior._expected(X).items()}

    def _margin(self, kpi: str, X: pl.DataFrame, preds: Mapping[str, F64]) -> F64:
        """The log offset of ``kpi`` in the funnel (``preds``: the upstream KPIs' raw forecasts); a forecaster trained
        from a prior reads ``prior_margins`` instead."""
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

    def _cross_fit(
        self,
        X: pl.DataFrame,
        targets: Mapping[str, F64],
        groups: npt.NDArray[Any] | None,
        trainer: BoosterTrainer | None,
        on_fit: Callable[[str], None] | None,
        unlabeled: pl.DataFrame | None = None,
    ) -> dict[str, tuple[Balance, Balance]]:
        """Each KPI's mean correction from out-of-fold forecasts: per fold, a funnel fitted on the other folds
        forecasts it (raw, as the final funnel's offsets will be); then the correction by forecast per dollar,
        measured on the first one's output (``modeling.balance``). The raw forecasts stay in ``oof_``; each fold
        funnel's raw forecasts of ``unlabeled`` in ``fold_unlabeled_`` (for ``balance.transfer_of``)."""
        self.oof_: dict[str, F64] = {}
        self.fold_unlabeled_: dict[str, list[F64]] = {}
        folds = self.config.intervals.balance_folds
        if folds < 2:
            return {}
        fold = fold_of(groups, X.height, folds, self.random_state)
        oof: dict[str, F64] = {}
        on_unlabeled: dict[str, list[F64]] = {}
        for j in range(folds):
            out = fold == j
            if out.all() or not out.any():
                return {}
            keep = pl.Series(~out)
            held = X.filter(pl.Series(out))
            n_out = held.height
            if unlabeled is not None:
                held = pl.concat([held, unlabeled], how="vertical_relaxed")
            _, pred = self._fit_funnel(X.filter(keep), {k: v[~out] for k, v in targets.items()},
                                       predict_on=held, trainer=trainer,
                                       on_fit=_labelled(on_fit, f"fold {j + 1}/{folds}"))  # fmt: skip
            for kpi, p in pred.items():
                oof.setdefault(kpi, np.full(X.height, np.nan))[out] = p[:n_out]
                if unlabeled is not None:
                    on_unlabeled.setdefault(kpi, []).append(p[n_out:])
        self.oof_ = oof
        self.fold_unlabeled_ = on_unlabeled
        price = price_of(X)
        out_: dict[str, tuple[Balance, Balance]] = {}
        for kpi, p in oof.items():
            y = np.asarray(targets[kpi], dtype=np.float64)
            first = Balance.fit(y, p, groups=groups)
            per_dollar = (Balance.fit(y, first.apply(p), quantiles=PER_DOLLAR_QUANTILES, price=price, groups=groups,
                                      segments=platform_of(X))
                          if price is not None else Balance.identity(key="per_dollar"))  # fmt: skip
            out_[kpi] = (first, per_dollar)
        return out_

    def fit(
        self,
        X: pl.DataFrame,
        targets: Mapping[str, F64],
        *,
        time: F64,
        groups: npt.NDArray[Any] | None = None,
        campaigns: npt.NDArray[Any] | None = None,
        unlabeled: pl.DataFrame | None = None,
        trainer: BoosterTrainer | None = None,
        on_fit: Callable[[str], None] | None = None,
    ) -> KPIForecaster:
        """Fit every KPI on X (features) and ``targets`` (NaN where a KPI was not observed).

        ``groups`` (a creator id per row) keeps each creator's rows in one fold when the mean correction is
        measured; without it rows are dealt to folds one by one. With ``campaigns`` (a campaign id per row) as well,
        each band is split into the creator's own error, error common to a campaign's creators and delivery noise,
        from its out-of-fold residuals (``intervals.ErrorSplit``: a roster's creators move together by the common
        part). ``unlabeled``: feature rows without outcomes that no model trains on (the market's creators under
        past campaigns' contexts): the fold funnels and the final one forecast them, and each KPI's correction is
        carried over to the final funnel by the ratio of their sums (``balance.transfer_of``; without it the
        correction applies as measured). ``trainer`` trains every booster elsewhere (a Dask cluster); by default in
        this process. ``on_fit`` hears of every booster trained ("calibration: reach", "fold 1/3: reach", "final:
        reach", ...; ``fits_per_forecaster`` counts them).
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
        # time (the widening of completed rows; the bands with calibrate_on = "latest"); not saved with the bundle
        self.early_models_ = dict(early)
        self.calibration_rows_ = n_cal
        # the posts each row had before it, for bands per history bucket (None: pooled bands)
        history = history_of(X) if self.config.intervals.by_history else None
        # "auto": bands per bucket only where the pooled ones miss a bucket's share by more than the tolerance
        tolerance = self.config.intervals.history_tolerance if self.config.intervals.by_history == "auto" else None
        price, platform = price_of(X), platform_of(X)
        bands = {}
        for kpi, pred in cal_pred.items():
            y = sub[kpi][cal_idx]
            ok = np.isfinite(y)
            bands[kpi] = (y[ok], pred[ok], None if history is None else history[cal_idx][ok],
                          None if price is None else price[cal_idx][ok],
                          None if platform is None else platform[cal_idx][ok])  # fmt: skip
        unlabeled = None if unlabeled is None else unlabeled.select(X.columns)
        balances = self._cross_fit(X, sub, groups, trainer, on_fit, unlabeled)
        models, _ = self._fit_funnel(X, sub, trainer=trainer, on_fit=_labelled(on_fit, "final"))
        # the final funnel's level against its fold funnels' on the same unlabeled rows (log; 0 without them)
        final_unlabeled = self._chain(unlabeled) if self.fold_unlabeled_ and unlabeled is not None else {}
        self.transfer_ = {kpi: transfer_of(final_unlabeled[kpi], self.fold_unlabeled_[kpi])
                          for kpi in final_unlabeled if kpi in self.fold_unlabeled_}  # fmt: skip
        for kpi, model in models.items():
            if kpi in balances:
                # the bands and the error split below read the fold funnels' forecasts: they are measured with the
                # correction as it was measured, and the final funnel gets it carried over at the end
                model.set_balance(balances[kpi][0])
                model.set_per_dollar(balances[kpi][1])
            if self.config.intervals.calibrate_on == "out_of_fold" and kpi in self.oof_:
                y_all, p_all = sub[kpi], self.oof_[kpi]
                ok = np.isfinite(y_all) & np.isfinite(p_all)
                expected = model.balanced(p_all[ok], None if price is None else price[ok],
                                          None if platform is None else platform[ok])  # fmt: skip
                model.calibrate(
                    y_all[ok], expected, history=None if history is None else history[ok], tolerance=tolerance
                )
                if groups is not None and campaigns is not None:
                    split = ErrorSplit.fit(y_all[ok], expected, np.asarray(groups)[ok], np.asarray(campaigns)[ok])
                    model.set_error_split(split)
            elif kpi in bands and len(bands[kpi][0]) >= 20:
                y_cal, raw_cal, hist_cal, price_cal, platform_cal = bands[kpi]
                model.calibrate(y_cal, model.balanced(raw_cal, price_cal, platform_cal), history=hist_cal,
                                tolerance=tolerance)  # fmt: skip
            if kpi in balances and self.transfer_.get(kpi):
                model.set_balance(balances[kpi][0].with_transfer(self.transfer_[kpi]))
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
        """Raw forecasts down the funnel (every KPI, or those before ``stop``), as the margins see them (the mean
        correction is applied to outputs only: the offsets were trained on raw forecasts)."""
        mean: dict[str, F64] = {}
        prior = self.prior_margins(X)  # empty unless trained from a prior: then every KPI's offset
        # the models read the same columns in the same order: one model matrix serves every KPI
        names = [str(n) for n in next(iter(self.models_.values())).feature_names_in_] if self.models_ else []
        shared = all([str(n) for n in m.feature_names_in_] == names for m in self.models_.values())
        matrix = to_matrix(X, names) if shared and names and all(n in X.columns for n in names) else None
        for kpi in KPI_NAMES:
            if kpi == stop:
                break
            if kpi in self.models_:
                margin = prior[kpi] if prior else self._margin(kpi, X, mean)
                mean[kpi] = self.models_[kpi].predict(X, margin, matrix=matrix)
        return mean

    def _expected(self, X: pl.DataFrame) -> dict[str, F64]:
        price, platform = price_of(X), platform_of(X)
        return {kpi: self.models_[kpi].balanced(raw, price, platform) for kpi, raw in self._chain(X).items()}

    def predict_mean(self, X: pl.DataFrame) -> dict[str, F64]:
        """Every KPI's expected value (no bands: also for a funnel whose models are not calibrated)."""
        check_is_fitted(self, "models_")
        return reach_within_impressions(self._expected(X))

    def predict(self, X: pl.DataFrame) -> Forecast:
        check_is_fitted(self, "models_")
        mean = self._expected(X)
        quant = {kpi: self.models_[kpi].predict_quantiles(X, m) for kpi, m in mean.items()}
        reach_within_impressions(mean)
        reach_within_impressions(quant)
        return Forecast(mean=mean, quantiles=quant, levels=tuple(self.config.intervals.levels))

    def contributions(self, kpi: str, X: pl.DataFrame) -> tuple[F64, F64]:
        """(SHAP contributions of ``kpi``'s own trees, log offset with the mean correction): offset + intercept + row
        sum = log forecast."""
        check_is_fitted(self, "models_")
        base = self._base(kpi)
        model = self.models_[kpi]
        if base == PRIOR:
            # the prior's contributions plus the correction's own (SHAP values add up across added models)
            pc, pm = self.prior_.contributions(kpi, X)
            rc = model.contributions(X)
            # offset + this model's intercept + row sum = log forecast, as for any other KPI: the prior model's
            # intercept joins the offset, and the prior's log forecast (this model's offset) is its own sum
            pm = pm + self.prior_.models_[kpi].intercept_
            log_prior = np.maximum(pm + pc.sum(axis=1), np.log(1e-9))
            raw = np.exp(np.minimum(rc.sum(axis=1) + log_prior + model.intercept_, 700.0))
            return pc + rc, pm + np.log(model.balanced(raw, price_of(X), platform_of(X)) / np.maximum(raw, 1e-300))
        prior = self._chain(X, stop=kpi) if base in KPI_NAMES else {}
        contrib, margin = model.contributions(X), self._margin(kpi, X, prior)
        # the mean correction belongs to the offset: offset + row sum is still the log of the expected value
        raw = np.exp(np.minimum(contrib.sum(axis=1) + margin + model.intercept_, 700.0))
        return contrib, margin + np.log(model.balanced(raw, price_of(X), platform_of(X)) / np.maximum(raw, 1e-300))

    def base_of(self, kpi: str) -> str:
        check_is_fitted(self, "models_")
        return self._base(kpi)
