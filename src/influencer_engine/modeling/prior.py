"""Learning from the user's own campaigns, with the simulated market's models as the prior.

A brand's own hires are a few hundred rows: too few to learn the market from scratch, and exactly what says how the
brand's market differs from the simulated one (its prices, its conversion rates, its categories). ``fit_from_prior``
keeps the prior forecaster whole and learns, per KPI, a correction of the prior's expected value from the user's
rows, picking how much to learn by cross-validation on those rows (folds by creator):

- ``prior``: the prior's forecast as it is (the user's rows say nothing the prior does not);
- ``shift``: the prior times one factor, the ratio of observed to forecast sums (the Poisson maximum-likelihood
  shift: "this brand converts at 0.6 times the market");
- ``residual``: the shift plus a few shallow LightGBM trees on the log ratio, with the prior's log forecast as the
  offset and the prior's monotone constraints (the sum of two monotone functions stays monotone); the number of
  trees is picked by the folds, so with more rows the correction can grow toward a model of its own.

Prior and shift compete on held-out deviance alone; trees must beat the better of them by more than one standard
error, and the fewest trees within one standard error of the best count are kept (with few rows the folds are
noisy, and trees that do not clearly help are a risk). Bands are recalibrated on the held-out
forecasts of the kept correction when at least ``MIN_BAND_ROWS`` rows observe the KPI (the prior's own bands,
relative to the new forecast, otherwise). ``drift`` measures how far the
user's outcomes sit from the prior's bands: the warning ``ie train`` and ``ie evaluate`` print.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from influencer_engine.modeling.estimator import KPIModel
from influencer_engine.modeling.forecaster import KPIForecaster, fold_of
from influencer_engine.modeling.intervals import ConformalBands
from influencer_engine.modeling.matrix import to_matrix
from influencer_engine.registry import KPI_NAMES

__all__ = ["CORRECTION_ROUNDS", "MIN_USER_ROWS", "Correction", "Drift", "PriorFit", "drift", "fit_from_prior"]

F64 = npt.NDArray[np.float64]
Method = Literal["prior", "shift", "residual"]

MIN_USER_ROWS = 20  # a KPI observed on fewer user rows keeps the prior's forecast
MIN_BAND_ROWS = 200  # fewer rows: a corrected KPI keeps the prior's relative bands (50 rows' own held 90% of 80%)
CORRECTION_ROUNDS = (5, 10, 20, 40, 80, 150, 300)  # tree counts the folds compare
MAX_SHIFT = float(np.log(20.0))  # a market 20x away from the prior is a data problem, not a shift
FOLDS = 5
LEVEL_SHIFT = 1.15  # a level off by less than this is within what the prior's own bias may be


@dataclass(frozen=True)
class Correction:
    """What the user's rows changed for one KPI, and the held-out deviance of each candidate behind the choice."""

    kpi: str
    method: Method
    trees: int
    rows: int
    shift: float  # weighted ratio of observed to the prior's forecast, all user rows (1.0: the prior's level)
    deviance: dict[str, float]  # candidate -> mean held-out Poisson deviance per row, NB-weighted (``_weights``)

    def to_dict(self) -> dict[str, Any]:
        return {"kpi": self.kpi, "method": self.method, "trees": self.trees, "rows": self.rows,
                "shift": self.shift, "deviance": dict(self.deviance)}  # fmt: skip


@dataclass(frozen=True)
class PriorFit:
    forecaster: KPIForecaster
    corrections: dict[str, Correction]
    oof: dict[str, F64] = field(repr=False)  # held-out expected value of the kept correction, per user row


def _deviance(y: F64, mu: F64) -> F64:
    """Poisson deviance of each row (the objective the models train on)."""
    mu = np.maximum(mu, 1e-9)
    term = np.where(y > 0, y * np.log(np.maximum(y, 1e-300) / mu), 0.0)
    return np.asarray(2.0 * (term - (y - mu)), dtype=np.float64)


def _shift(y: F64, mu: F64, w: F64) -> float:
    """log(sum w y / sum w mu), the weighted maximum-likelihood shift, clipped to +-``MAX_SHIFT``."""
    r = max(float((w * y).sum()), 1e-9) / max(float((w * mu).sum()), 1e-9)
    return float(np.clip(np.log(r), -MAX_SHIFT, MAX_SHIFT))


def _weights(y: F64, mu: F64) -> F64:
    """Negative-binomial weights 1 / (1 + mu / k), scaled to mean 1, with the dispersion k from the rows' moments
    around the prior's forecast (rescaled to their level).

    Counts this overdispersed are not Poisson: unweighted, the deviance is the few largest creators' (the sum ratio
    of 8,000 outcomes of a shifted world still moved 0.67 to 1.46 between random samples of its campaigns); weighted
    1 / mu, it is the smallest forecasts' Poisson noise (a 0.1-conversion forecast that converted once counts as a
    10x miss). The NB score equation weighs a row by 1 / (1 + mu / k): relative where mu >> k, Poisson where mu << k.
    """
    level = max(float(y.sum()), 1e-9) / max(float(mu.sum()), 1e-9)
    m = mu * level
    excess = float(np.sum((y - m) ** 2 - m))
    inv_k = max(excess / max(float(np.sum(m * m)), 1e-12), 1e-4)  # 1 / k, at least nearly Poisson
    w = 1.0 / (1.0 + mu * level * inv_k)
    return np.asarray(w / w.mean(), dtype=np.float64)


def _residual_model(prior: KPIModel, rows: int, trees: int, seed: int) -> KPIModel:
    """Shallow, regularised trees on the log ratio to the prior, with the prior model's monotone constraints."""
    return KPIModel(objective=prior.objective, tweedie_variance_power=prior.tweedie_variance_power,
                    n_estimators=max(1, trees), learning_rate=0.05, num_leaves=7,
                    min_child_samples=max(10, rows // 25), subsample=0.8, colsample_bytree=0.8, reg_lambda=10.0,
                    monotone=tuple(prior.monotone), offset=None, levels=tuple(prior.levels), calibration_share=0.0,
                    bins=prior.bins, random_state=seed, n_jobs=prior.n_jobs)  # fmt: skip


def _null_model(prior: KPIModel, X: pl.DataFrame, log_prior: F64, y: F64, shift: float, seed: int) -> KPIModel:
    """A model whose trees add nothing: its forecast is the prior's times exp(``shift``). (LightGBM needs one tree:
    a single leaf, set to zero.)"""
    model = _residual_model(prior, X.height, 1, seed)
    model.set_params(min_child_samples=X.height + 1)
    model.fit(X, y, base_margin=log_prior)
    for t, tree in enumerate(model.booster_.dump_model()["tree_info"]):
        for leaf in range(tree["num_leaves"]):
            model.booster_.set_leaf_output(t, leaf, 0.0)
    model.booster_ = type(model.booster_)(model_str=model.booster_.model_to_string())
    model.intercept_ = shift
    return model


def _gain(dev: Mapping[str, F64], better: str, than: str) -> tuple[float, float]:
    """Mean paired deviance gain of ``better`` over ``than`` and its standard error."""
    d = dev[than] - dev[better]
    return float(d.mean()), (float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("inf"))


def _pick(candidates: Sequence[str], dev: Mapping[str, F64]) -> str:
    """Prior or shift, whichever has the lower held-out deviance (one parameter: little to over-fit); trees only
    when the best tree count beats that by more than one standard error, and then the fewest trees within one
    standard error of the best count (folds of a few hundred rows are noisy)."""
    level = [c for c in candidates if not c.startswith("residual")]
    trees = [c for c in candidates if c.startswith("residual")]
    base = min(level, key=lambda c: float(dev[c].mean())) if level else None
    if not trees:
        assert base is not None
        return base
    best = min(trees, key=lambda c: float(dev[c].mean()))
    if base is not None:
        gain, se = _gain(dev, best, base)
        if gain <= se:
            return base
    for c in trees:  # in increasing tree count
        loss, se_c = _gain(dev, best, c)
        if loss <= se_c:
            return c
    return best


def fit_from_prior(
    prior: KPIForecaster,
    X: pl.DataFrame,
    targets: Mapping[str, F64],
    *,
    groups: npt.NDArray[Any] | None = None,
    seed: int = 0,
    folds: int = FOLDS,
    rounds: Sequence[int] = CORRECTION_ROUNDS,
    methods: Sequence[Method] = ("prior", "shift", "residual"),
) -> PriorFit:
    """A forecaster = ``prior`` + per-KPI corrections learned from the user's rows ``X`` / ``targets`` (NaN: not
    observed); see the module doc. ``groups`` (creator ids) keep a creator's rows in one fold. ``methods`` limits
    the candidates (the benchmark's "shift only")."""
    prior_log = {k: np.log(np.maximum(m, 1e-9)) for k, m in prior._expected(X).items()}
    n = X.height
    k_folds = max(2, min(folds, len(np.unique(np.asarray(groups).astype(str))) if groups is not None else n))
    fold = fold_of(groups, n, k_folds, seed)
    models: dict[str, KPIModel] = {}
    corrections: dict[str, Correction] = {}
    oof_kept: dict[str, F64] = {}
    for kpi in KPI_NAMES:
        if kpi not in prior.models_:
            continue
        pm = prior.models_[kpi]
        y_all = np.asarray(targets.get(kpi, np.full(n, np.nan)), dtype=np.float64)
        known = np.isfinite(y_all)
        m = int(known.sum())
        rows, y, lp, fo = X.filter(pl.Series(known)), y_all[known], prior_log[kpi][known], fold[known]
        wt = _weights(y, np.exp(lp))
        if m < MIN_USER_ROWS or len(np.unique(fo)) < 2:
            model = _null_model(pm, X, prior_log[kpi], np.ones(n), 0.0, seed)
            _copy_bands(pm, model)
            models[kpi] = model
            corrections[kpi] = Correction(kpi, "prior", 0, m, 1.0, {})
            continue
        # held-out forecasts of every candidate, fold by fold
        oof: dict[str, F64] = {"prior": np.exp(lp)}
        oof["shift"] = np.empty(m)
        tree_rounds = [r for r in rounds if "residual" in methods]
        for r in tree_rounds:
            oof[f"residual_{r}"] = np.empty(m)
        for j in np.unique(fo):
            out, keep = fo == j, fo != j
            s = _shift(y[keep], np.exp(lp[keep]), wt[keep])
            oof["shift"][out] = np.exp(lp[out] + s)
            if tree_rounds:
                res = _residual_model(pm, int(keep.sum()), max(tree_rounds), seed)
                res.fit(rows.filter(pl.Series(keep)), y[keep], base_margin=lp[keep], sample_weight=wt[keep])
                xo = to_matrix(rows.filter(pl.Series(out)), list(rows.columns))
                for r in tree_rounds:
                    raw = np.asarray(res.booster_.predict(xo, raw_score=True, num_iteration=r), dtype=np.float64)
                    oof[f"residual_{r}"][out] = np.exp(np.minimum(raw + res.intercept_ + lp[out], 700.0))
        candidates = [c for c in oof if c.split("_")[0] in methods]
        dev = {c: wt * _deviance(y, oof[c]) for c in candidates}
        choice = _pick(candidates, dev)
        shift_all = _shift(y, np.exp(lp), wt)
        if choice == "prior":
            model = _null_model(pm, rows, lp, y, 0.0, seed)
        elif choice == "shift":
            model = _null_model(pm, rows, lp, y, shift_all, seed)
        else:
            model = _residual_model(pm, m, int(choice.split("_")[1]), seed).fit(rows, y, base_margin=lp,
                                                                                 sample_weight=wt)  # fmt: skip
        if choice != "prior" and m >= MIN_BAND_ROWS:
            model.bands_ = ConformalBands.fit(y, oof[choice], tuple(pm.levels), pm.bins)
            _copy_split(pm, model)
        else:  # the prior's bands, relative to the new forecast: a few dozen residuals make a cruder band
            _copy_bands(pm, model)
        full = np.full(n, np.nan)
        full[known] = oof[choice]
        oof_kept[kpi] = full
        models[kpi] = model
        method: Method = "prior" if choice == "prior" else "shift" if choice == "shift" else "residual"
        trees = int(choice.split("_")[1]) if method == "residual" else 0
        corrections[kpi] = Correction(kpi, method, trees, m, float(np.exp(shift_all)),
                                      {c: float(d.mean()) for c, d in dev.items()})  # fmt: skip
    out = KPIForecaster(prior.config, kpis=tuple(models), overrides=prior.overrides, random_state=seed)
    out.prior_ = prior
    out.models_ = models
    out.features_ = list(X.columns)
    return PriorFit(forecaster=out, corrections=corrections, oof=oof_kept)


def _copy_bands(source: KPIModel, target: KPIModel) -> None:
    """The prior's bands apply as they are: a kept prior forecasts the same expected value."""
    if hasattr(source, "bands_"):
        target.bands_ = source.bands_
    _copy_split(source, target)


def _copy_split(source: KPIModel, target: KPIModel) -> None:
    """The prior's split of its bands into estimate error and delivery noise: a brand's few hundred campaigns rarely
    hire one creator twice, so they cannot measure their own (``intervals.ErrorSplit``). Its share of error about the
    expected value too (``intervals.ExpectedError``): a brand's outcomes do not carry their expected values."""
    if hasattr(source, "error_split_"):
        target.error_split_ = source.error_split_
    if hasattr(source, "expected_error_"):
        target.expected_error_ = source.expected_error_


@dataclass(frozen=True)
class Drift:
    """How the user's outcomes of one KPI sit in the prior's bands."""

    kpi: str
    rows: int
    inside: float  # share of outcomes inside the prior's P10-P90
    promised: float  # the share the bands promise (0.8 for P10-P90)
    below: float  # share under the P10
    above: float  # share over the P90
    ratio: float  # NB-weighted ratio of observed to forecast (the size of the shift, as the corrections see it)
    ratio_se: float  # standard error of log(ratio) (delta method)
    p_value: float  # binomial test of `inside` against `promised` (two-sided)

    @property
    def bands_off(self) -> bool:
        """Outside the promise by more than chance allows (p < 0.01) and by at least 10 points."""
        return self.p_value < 0.01 and abs(self.inside - self.promised) >= 0.10

    @property
    def level_off(self) -> bool:
        """The level differs by at least ``LEVEL_SHIFT`` and by more than 2.58 standard errors (99%)."""
        lr = abs(float(np.log(max(self.ratio, 1e-12))))
        return lr >= np.log(LEVEL_SHIFT) and lr > 2.58 * self.ratio_se

    @property
    def drifted(self) -> bool:
        return self.bands_off or self.level_off

    def message(self) -> str:
        side = "above the P90" if self.above > self.below else "below the P10"
        return (f"{self.kpi}: your results run at {self.ratio:.2f}x the prior's forecasts (+-{self.ratio_se:.0%}); "
                f"{self.inside:.0%} of your {self.rows:,} outcomes fall inside its P10-P90 (promised "
                f"{self.promised:.0%}), {max(self.above, self.below):.0%} {side}")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"kpi": self.kpi, "rows": self.rows, "inside": self.inside, "promised": self.promised,
                "below": self.below, "above": self.above, "ratio": self.ratio, "ratio_se": self.ratio_se,
                "p_value": self.p_value, "bands_off": bool(self.bands_off),
                "level_off": bool(self.level_off)}  # fmt: skip


def drift(forecaster: KPIForecaster, X: pl.DataFrame, targets: Mapping[str, F64]) -> dict[str, Drift]:
    """Per KPI: the user's observed outcomes against ``forecaster``'s P10-P90 bands on the same rows."""
    fc = forecaster.predict(X)
    levels = list(fc.levels)
    lo_i, hi_i = int(np.argmin(levels)), int(np.argmax(levels))
    promised = float(levels[hi_i] - levels[lo_i])
    out: dict[str, Drift] = {}
    for kpi, q in fc.quantiles.items():
        y = np.asarray(targets.get(kpi, np.full(X.height, np.nan)), dtype=np.float64)
        ok = np.isfinite(y)
        m = int(ok.sum())
        if m < MIN_USER_ROWS:
            continue
        lo, hi, mu = q[ok, lo_i], q[ok, hi_i], fc.mean[kpi][ok]
        below, above = float(np.mean(y[ok] < lo)), float(np.mean(y[ok] > hi))
        inside = 1.0 - below - above
        p = float(stats.binomtest(round(inside * m), m, promised).pvalue)
        # the ratio of observed to forecast as the corrections measure it (NB-weighted; a plain sum ratio is the few
        # largest rows'), and its standard error by the delta method
        yo, mf = y[ok], np.maximum(mu, 1e-9)
        w = _weights(yo, mf)
        ratio = float((w * yo).sum() / (w * mf).sum())
        se = float(np.sqrt(np.sum(w**2 * (yo - ratio * mf) ** 2)) / (w * mf).sum()) / max(ratio, 1e-12)
        out[kpi] = Drift(kpi, m, inside, promised, below, above, ratio, se, p)
    return out
