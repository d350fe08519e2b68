"""One KPI's forecaster: LightGBM with a count objective, monotone constraints and conformal bands.

The estimator follows the scikit-learn contract: ``__init__`` stores its arguments, ``fit`` returns self,
learned attributes end in ``_``, and predicting before fitting raises ``NotFittedError``. Inputs are Polars
frames of feature columns (categorical features as strings or Enums); see ``modeling.matrix``.

With ``offset="followers"`` the model forecasts a rate per follower: ``log(followers)`` enters as LightGBM's
init score, so trees learn multipliers, not the scale that followers already explain.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from influencer_engine.modeling.balance import Balance
from influencer_engine.modeling.intervals import ConformalBands, ErrorSplit, ExpectedError, history_of
from influencer_engine.modeling.matrix import CATEGORIES_OF, to_matrix

__all__ = [
    "BoosterTrainer",
    "KPIModel",
    "lightgbm_threads",
    "offset_of",
    "split_threads",
    "thread_budget",
    "usable_cpus",
]

F64 = npt.NDArray[np.float64]


class BoosterTrainer(Protocol):
    """Trains one booster somewhere else than in this process (``training.distributed`` passes one for Dask).

    Called with the LightGBM parameters, the feature matrix, targets, init scores (log offsets), feature names,
    categorical feature indices and the number of trees; returns the trained booster.
    """

    def __call__(self, params: dict[str, Any], x: F64, y: F64, init: F64, names: list[str], categorical: list[int],
                 rounds: int) -> lgb.Booster: ...  # fmt: skip


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask and its cgroup's CPU quota, not the machine's core count.

    LightGBM's OpenMP threads wait for each other at every split: more threads than the process can run at once
    turns waits into stalls (3 of 24 fits did not finish in 10 minutes on a 2-core machine under load).
    """
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="utf-8").split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def _others_running(looks: int) -> int:
    """Threads of other processes running or ready to run now (Linux /proc/loadavg; 0 where unknown).

    The fourth field of /proc/loadavg counts runnable scheduling entities, this thread included; the median of a few
    looks 4 ms apart smooths a momentary spike.
    """
    counts = []
    for i in range(looks):
        try:
            runnable = int(Path("/proc/loadavg").read_text(encoding="utf-8").split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0
        counts.append(max(0, runnable - 1))
        if i + 1 < looks:
            time.sleep(0.004)
    return sorted(counts)[len(counts) // 2]


_BUDGET = threading.local()


@contextmanager
def thread_budget(threads: int) -> Iterator[None]:
    """While the block runs, LightGBM fits and predictions made in this thread use at most ``threads`` threads.

    For callers that run independent fits side by side (``training.train`` runs the backtest and the final fit at
    once): each gets its share of the CPUs instead of each asking for all of them.
    """
    old = getattr(_BUDGET, "threads", None)
    _BUDGET.threads = max(1, threads)
    try:
        yield
    finally:
        _BUDGET.threads = old


def lightgbm_threads(wanted: int, *, looks: int = 5) -> int:
    """Threads for one LightGBM fit or predict: at most ``wanted``, at most what the process may use, and no more
    than the CPUs other processes leave free (at least one).

    LightGBM's threads meet at a barrier many times per tree: when one of them waits for a core that another
    process holds, the other waits with it. Measured on 2 cores beside two busy processes, `ie train` on the demo
    world took 245 s with 2 threads (39 s alone). Col-wise deterministic training gives the same trees for any
    thread count (a test checks it), so the count can follow the machine's load without changing a result.
    Predictions take one look (they must stay fast: a server forecasts per request). ``$IE_LIGHTGBM_THREADS`` sets
    the count ("fixed": always ``wanted``, as before this existed).
    """
    threads = split_threads(wanted)
    if _forced_threads(wanted) is not None:  # a count the user set: no look at the load
        return threads
    return max(1, min(threads, usable_cpus() - _others_running(looks)))


def _forced_threads(wanted: int) -> int | None:
    """The count ``$IE_LIGHTGBM_THREADS`` sets ("fixed": ``wanted``), or None when it sets none."""
    forced = os.environ.get("IE_LIGHTGBM_THREADS", "").strip()
    if forced == "fixed":
        return max(1, wanted)
    if forced.isdigit():
        return max(1, int(forced))
    return None


def split_threads(wanted: int) -> int:
    """Threads for a predictor whose threads share nothing (compiled trees: each thread scores its own rows, with no
    barrier between them): ``lightgbm_threads`` without the look at the load. A thread that waits for a core only
    delays its own rows, so there is nothing to stall; batch scoring's compiled predict ran on one thread while its
    own featurizing thread was busy (the look counts that thread), which left a core idle for half the pass.
    ``$IE_LIGHTGBM_THREADS`` and ``thread_budget`` apply as to ``lightgbm_threads``."""
    forced = _forced_threads(wanted)
    if forced is not None:
        return forced
    budget = getattr(_BUDGET, "threads", None)
    if budget is not None:
        wanted = min(wanted, budget)
    return max(1, min(wanted, usable_cpus()))


def offset_of(frame: pl.DataFrame, offset: str | None) -> F64:
    """The log-scale offset of each row (0 without an offset feature)."""
    if offset is None:
        return np.zeros(frame.height)
    return np.asarray(
        np.log(np.maximum(frame[offset].cast(pl.Float64).fill_null(1.0).to_numpy(), 1.0)), dtype=np.float64
    )


class KPIModel(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """LightGBM forecaster of one count KPI, with P10/P50/P90 from split-conformal bands."""

    def __init__(
        self,
        *,
        objective: str = "poisson",
        tweedie_variance_power: float = 1.5,
        n_estimators: int = 500,
        learning_rate: float = 0.04,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        monotone: Sequence[str] = (),
        offset: str | None = "followers",
        levels: Sequence[float] = (0.1, 0.5, 0.9),
        calibration_share: float = 0.2,
        bins: int = 5,
        random_state: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.objective = objective
        self.tweedie_variance_power = tweedie_variance_power
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.monotone = monotone
        self.offset = offset
        self.levels = levels
        self.calibration_share = calibration_share
        self.bins = bins
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- training ---------------------------------------------------------------------------------------
    def lgb_params(self) -> dict[str, Any]:
        """The LightGBM parameters this estimator trains with (deterministic for a seed)."""
        params: dict[str, Any] = {
            "objective": self.objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "seed": self.random_state,
            "num_threads": lightgbm_threads(self.n_jobs),
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }
        if self.objective == "tweedie":
            params["tweedie_variance_power"] = self.tweedie_variance_power
        return params

    def _train(
        self,
        x: F64,
        y: F64,
        init: F64,
        names: list[str],
        *,
        callbacks: Sequence[Callable[..., Any]] = (),
        trainer: BoosterTrainer | None = None,
        weight: F64 | None = None,
    ) -> lgb.Booster:
        cats = [i for i, n in enumerate(names) if n in CATEGORIES_OF]
        params = self.lgb_params()
        unknown = sorted(set(self.monotone) - set(names))
        if unknown:
            raise ValueError(f"monotone constraint on unknown feature(s) {unknown}")
        if self.monotone:
            params["monotone_constraints"] = [1 if n in self.monotone else 0 for n in names]
            params["monotone_constraints_method"] = "intermediate"
        if trainer is not None and not callbacks and weight is None:  # `ie train --engine dask`
            return trainer(params, x, y, init, names, cats, self.n_estimators)
        data = lgb.Dataset(x, label=y, init_score=init, weight=weight, feature_name=names, categorical_feature=cats,
                           free_raw_data=True)  # fmt: skip
        return lgb.train(params, data, num_boost_round=self.n_estimators, callbacks=list(callbacks))

    def fit(
        self,
        X: pl.DataFrame,
        y: F64 | Sequence[float],
        *,
        base_margin: F64 | None = None,
        time: F64 | None = None,
        callbacks: Sequence[Callable[..., Any]] = (),
        trainer: BoosterTrainer | None = None,
        sample_weight: F64 | None = None,
    ) -> KPIModel:
        """Fit on feature frame ``X`` and non-negative targets ``y`` (``sample_weight``: each row's weight in the
        loss and in the intercept; none by default).

        ``base_margin`` is the log-scale offset of each row (default: ``log(offset feature)``); a funnel model
        passes the log forecast of an upstream KPI here. With ``calibration_share > 0`` the bands come from the
        latest share of rows by ``time`` (row order when None): a model fitted on the earlier rows forecasts
        them. Callers that calibrate on their own hold-out (``calibrate``) pass ``calibration_share=0``.
        ``trainer`` trains the boosters elsewhere (a Dask cluster); by default they train in this process.
        ``callbacks`` are LightGBM's, run as the final booster trains (`ie tune` prunes trials with one).
        """
        yv = np.asarray(y, dtype=np.float64)
        if len(yv) != X.height:
            raise ValueError(f"X has {X.height} rows but y has {len(yv)}")
        if np.any(~np.isfinite(yv)) or np.any(yv < 0):
            raise ValueError("y must be finite and non-negative")
        names = list(X.columns)
        x = to_matrix(X, names)
        init = offset_of(X, self.offset) if base_margin is None else np.asarray(base_margin, dtype=np.float64)
        w = np.ones(len(yv)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        # LightGBM does not boost from the average when given init scores: start from the mean rate instead
        self.intercept_ = float(np.log(max(float((w * yv).sum()), 1e-9) / max(float((w * np.exp(init)).sum()), 1e-9)))
        init = init + self.intercept_
        if self.calibration_share > 0:
            order = np.argsort(np.asarray(time), kind="stable") if time is not None else np.arange(len(yv))
            n_cal = max(20, round(len(yv) * self.calibration_share))
            if len(yv) - n_cal < 50:
                raise ValueError(f"too few rows to fit and calibrate: {len(yv)} (need at least {n_cal + 50})")
            fit_idx, cal_idx = order[:-n_cal], order[-n_cal:]
            early = self._train(x[fit_idx], yv[fit_idx], init[fit_idx], names, trainer=trainer)
            self.calibrate(yv[cal_idx], np.exp(early.predict(x[cal_idx], raw_score=True) + init[cal_idx]))
        self.booster_ = self._train(x, yv, init, names, callbacks=callbacks, trainer=trainer, weight=sample_weight)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        return self

    def calibrate(self, y: F64, forecast: F64, *, history: F64 | None = None,
                  tolerance: float | None = None) -> KPIModel:  # fmt: skip
        """Set the bands from held-out targets and their forecasts (by a model that did not see them); ``history``
        (posts before each row) gives each history bucket bands of its own (with ``tolerance``: only if the pooled
        bands miss a bucket by more, ``ConformalBands.fit``)."""
        self.bands_ = ConformalBands.fit(np.asarray(y, dtype=np.float64), forecast, self.levels, self.bins,
                                         history=history, tolerance=tolerance)  # fmt: skip
        return self

    def set_error_split(self, split: ErrorSplit) -> KPIModel:
        """Set what the bands are made of (the creator's own error, error common to a campaign, delivery noise:
        ``intervals.ErrorSplit``)."""
        self.error_split_ = split
        return self

    @property
    def error_split(self) -> ErrorSplit:
        """What the bands are made of; without a measurement the whole band counts as estimate error."""
        split: ErrorSplit | None = getattr(self, "error_split_", None)
        return ErrorSplit() if split is None else split

    def set_expected_error(self, error: ExpectedError) -> KPIModel:
        """Set how far the forecasts were from known expected values (``intervals.ExpectedError``)."""
        self.expected_error_ = error
        return self

    @property
    def expected_error(self) -> ExpectedError:
        """How far the forecasts were from known expected values; unknown without a measurement."""
        error: ExpectedError | None = getattr(self, "expected_error_", None)
        return ExpectedError() if error is None else error

    def set_balance(self, balance: Balance) -> KPIModel:
        """Set the mean correction measured out of fold (``modeling.balance``); ``balanced`` applies it."""
        self.balance_ = balance
        return self

    def set_per_dollar(self, balance: Balance) -> KPIModel:
        """Set the out-of-fold correction by value per dollar (``modeling.balance``), applied after ``balance_``."""
        self.per_dollar_ = balance
        return self

    def balanced(self, forecast: F64, price: F64 | None = None, platform: npt.NDArray[Any] | None = None) -> F64:
        """Expected values from this model's raw forecasts (``predict``): the out-of-fold mean correction applied
        (the raw forecast where none was measured), then, with ``price``, the correction by forecast per dollar (each
        row's ``platform``'s own where it has one). Raw forecasts are what the funnel's offsets were trained on."""
        balance = getattr(self, "balance_", None)
        out = forecast if balance is None else balance.apply(forecast)
        per_dollar = getattr(self, "per_dollar_", None)
        return out if per_dollar is None or price is None else per_dollar.apply(out, price, platform)

    # -- prediction -------------------------------------------------------------------------------------
    def _raw(self, X: pl.DataFrame, base_margin: F64 | None, matrix: F64 | None = None) -> F64:
        check_is_fitted(self, "booster_")
        if matrix is None:
            names = [str(n) for n in self.feature_names_in_]
            missing = [n for n in names if n not in X.columns]
            if missing:
                raise ValueError(f"X lacks feature(s) {missing[:5]}")
            matrix = to_matrix(X, names)
        fast = getattr(self, "fast_", None)  # compiled trees, set by modeling.compiled where exactly equal
        raw: F64
        if fast is not None:
            raw = np.asarray(fast(matrix), dtype=np.float64)
        else:
            threads = lightgbm_threads(self.n_jobs, looks=1)
            raw = np.asarray(self.booster_.predict(matrix, raw_score=True, num_threads=threads), dtype=np.float64)
        return raw + self.intercept_ + (offset_of(X, self.offset) if base_margin is None else base_margin)

    def predict(self, X: pl.DataFrame, base_margin: F64 | None = None, *, matrix: F64 | None = None) -> F64:
        """Expected value of the KPI for each row; ``matrix``: ``to_matrix(X, feature_names_in_)`` if already built."""
        return np.exp(np.minimum(self._raw(X, base_margin, matrix), 700.0))

    def predict_quantiles(self, X: pl.DataFrame, mean: F64 | None = None) -> F64:
        """Quantile forecasts at ``levels`` (P10, P50, P90 by default), shape (n, 3)."""
        check_is_fitted(self, "bands_")
        return self.bands_.apply(self.predict(X) if mean is None else mean, history_of(X))

    def contributions(self, X: pl.DataFrame) -> F64:
        """Per-feature contributions on the log scale (SHAP values from LightGBM ``pred_contrib``).

        Shape (n, n_features + 1): the last column is the trees' base value. Row sums plus the offset and
        ``intercept_`` give the log of the forecast, so ``exp(c)`` is the multiplicative effect of a feature.
        """
        check_is_fitted(self, "booster_")
        names = [str(n) for n in self.feature_names_in_]
        matrix = to_matrix(X, names)
        threads = lightgbm_threads(self.n_jobs, looks=1)
        return np.asarray(self.booster_.predict(matrix, pred_contrib=True, num_threads=threads), dtype=np.float64)

    # -- persistence (text + JSON, never pickle) ---------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What a bundle needs besides the booster text: parameters, feature order, bands."""
        check_is_fitted(self, "booster_")
        return {
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()},
            "features": [str(n) for n in self.feature_names_in_],
            "bands": self.bands_.to_dict() if hasattr(self, "bands_") else None,
            "balance": self.balance_.to_dict() if hasattr(self, "balance_") else None,
            "per_dollar": self.per_dollar_.to_dict() if hasattr(self, "per_dollar_") else None,
            "error_split": self.error_split_.to_dict() if hasattr(self, "error_split_") else None,
            "expected_error": self.expected_error_.to_dict() if hasattr(self, "expected_error_") else None,
            "intercept": self.intercept_,
            "num_trees": self.booster_.num_trees(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], booster_text: str) -> KPIModel:
        params = dict(state["params"])
        for k in ("monotone", "levels"):
            params[k] = tuple(params[k])
        model = cls(**params)
        model.booster_ = lgb.Booster(model_str=booster_text)
        model.intercept_ = float(state["intercept"])
        if state.get("bands") is not None:
            model.bands_ = ConformalBands.from_dict(state["bands"])
        if state.get("balance") is not None:
            model.balance_ = Balance.from_dict(state["balance"])
        if state.get("per_dollar") is not None:
            model.per_dollar_ = Balance.from_dict(state["per_dollar"])
        if state.get("error_split") is not None:
            model.error_split_ = ErrorSplit.from_dict(state["error_split"])
        if state.get("expected_error") is not None:
            model.expected_error_ = ExpectedError.from_dict(state["expected_error"])
        model.feature_names_in_ = np.asarray(state["features"], dtype=object)
        model.n_features_in_ = len(state["features"])
        if model.booster_.feature_name() != list(state["features"]):
            raise ValueError("the booster's features differ from the manifest's")
        return model
