"""What a real export lacks, estimated and flagged: list prices, audience credibility, audience shares.

A planner's candidate base has handles, followers, a few posts and a category; rarely a price, almost never
demographics. A bundle therefore carries, beside its KPI models, what it needs to complete such a creator:

- a **rate card**: a LightGBM model of log list price from platform, format, size, credibility and the
  creator's own results (median views and interactions, engagement rate), fitted on the quoted prices of the
  training data, with the P10/P90 of its held-out error so every estimate has a range;
- an **audience-credibility** model (the share of real followers) from what any export has: engagement against
  followers and against peers, comments per like, following per follower, posting cadence;
- **assumed audiences**: the mean audience shares of the training creators of the same platform, country (for age,
  gender and country shares) and main category (for interests), where those are known and enough creators share
  them;
- **wider bands** where something was assumed: the log-scale spread that an assumption adds to each KPI's forecast,
  measured at training time on held-out hires by forecasting them with and without the assumption.

Every completed value is flagged (``price_source``, ``credibility_source``, ``audience_source``) and leaves with the
forecast, so no output shows an estimate as if it were known.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.modeling.estimator import lightgbm_threads, split_threads
from influencer_engine.modeling.matrix import CATEGORIES_OF, to_matrix
from influencer_engine.registry import FORMATS
from influencer_engine.schema import audience_columns

__all__ = [
    "ASSUMPTION_KINDS",
    "COLUMN_KINDS",
    "CREDIBILITY_FEATURES",
    "PRICE_FEATURES",
    "Completion",
    "Estimator",
    "fit_completion",
    "needs",
    "widen",
]

F64 = npt.NDArray[np.float64]
Z90 = 1.2815515655446004  # the standard normal's 90th percentile: a P10-P90 band is +-Z90 sd wide

PRICE_FEATURES = (
    "platform",
    "format",
    "log10_followers",
    "audience_credibility",
    "er_median_last20",
    "interactions_median_last20",
    "views_median_last20",
    "comments_per_like_last20",
    "posts_per_week_last90d",
)
CREDIBILITY_FEATURES = (
    "platform",
    "log10_followers",
    "er_median_last20",
    "er_vs_peers",
    "comments_per_like_last20",
    "following_per_follower",
    "interactions_cv_last20",
    "posts_per_week_last90d",
)
# what can be assumed about a creator, in the order the flags are listed
COLUMN_KINDS = ("audience", "credibility", "price")  # assumptions that stand in for creators' columns
# ... and "history": a creator with no posts (nor averages per post), forecast from its size, platform and peers
ASSUMPTION_KINDS = (*COLUMN_KINDS, "history")
MIN_ROWS = 200  # fewer known values than this: no model (the value stays unknown)
MIN_MIX_CREATORS = 30  # a platform x country audience mix needs this many creators, else the platform's is used
_PARAMS = {
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}
_ROUNDS = 300


def _audience_cols() -> list[str]:
    return [c for cols in audience_columns().values() for c in cols]


@dataclass(frozen=True)
class Estimator:
    """One completion model: LightGBM on ``features``, its held-out error band and how it compared."""

    name: str  # "price" (log USD) or "credibility" (share)
    booster: lgb.Booster
    features: tuple[str, ...]
    residual: tuple[float, float]  # P10, P90 of (truth - estimate) on held-out rows (log scale for price)
    holdout: dict[str, float]  # rows, MAE of the model and of the platform-median baseline
    # log price = slope x log followers + trees: the size elasticity is fitted by least squares first, so the few
    # largest creators (where trees cannot extrapolate) are priced along it rather than at the largest leaf
    slope: float = 0.0

    @property
    def log_target(self) -> bool:
        return self.name == "price"

    def use_compiled(self, predict: Callable[[F64, int], F64] | None) -> None:
        """Predict with ``predict`` (compiled trees checked equal to the booster's raw scores, ``modeling.compiled``),
        or with LightGBM again (None). The objective is least squares, so raw scores are the estimates."""
        object.__setattr__(self, "_compiled", predict)

    def predict(self, frame: pl.DataFrame) -> F64:
        """The estimate for each row (USD for price, a share in [0, 1] for credibility)."""
        if frame.height == 0:
            return np.zeros(0)
        x = to_matrix(frame, self.features)
        compiled = getattr(self, "_compiled", None)
        if compiled is not None:
            raw = np.asarray(compiled(x, split_threads(2)), dtype=np.float64)
        else:
            raw = np.asarray(self.booster.predict(x, num_threads=lightgbm_threads(2, looks=1)), dtype=np.float64)
        raw = raw + self.slope * _log_followers(frame)
        return np.exp(raw) if self.log_target else np.clip(raw, 0.0, 1.0)

    def band(self, estimate: F64) -> tuple[F64, F64]:
        """P10 and P90 of the true value given the estimate."""
        lo, hi = self.residual
        if self.log_target:
            return estimate * math.exp(lo), estimate * math.exp(hi)
        return np.clip(estimate + lo, 0.0, 1.0), np.clip(estimate + hi, 0.0, 1.0)

    def text(self) -> str:
        text: str = self.booster.model_to_string()
        return text

    def state(self) -> dict[str, Any]:
        return {"name": self.name, "features": list(self.features), "residual": list(self.residual),
                "holdout": dict(self.holdout), "slope": self.slope}  # fmt: skip

    @classmethod
    def from_state(cls, state: Mapping[str, Any], text: str) -> Estimator:
        lo, hi = state["residual"]
        return cls(name=str(state["name"]), booster=lgb.Booster(model_str=text),
                   features=tuple(state["features"]), residual=(float(lo), float(hi)),
                   holdout={k: float(v) for k, v in state["holdout"].items()},
                   slope=float(state.get("slope", 0.0)))  # fmt: skip


def _log_followers(frame: pl.DataFrame) -> F64:
    out: F64 = np.log(np.maximum(frame["followers"].cast(pl.Float64).fill_null(1.0).to_numpy(), 1.0))
    return out


def _fit_estimator(name: str, frame: pl.DataFrame, target: F64, features: Sequence[str], seed: int) -> Estimator:
    """Fit on a seeded 80% of the rows; the other 20% give the error band and the comparison with the baseline."""
    rng = np.random.default_rng(seed)
    held = rng.random(frame.height) < 0.2
    x = to_matrix(frame, features)
    names = list(features)
    cats = [i for i, f in enumerate(names) if f in CATEGORIES_OF]
    slope = 0.0
    if name == "price":
        lf = _log_followers(frame)
        slope = float(np.polyfit(lf[~held], target[~held], 1)[0])
    offset = slope * _log_followers(frame)
    params = {**_PARAMS, "seed": seed, "num_threads": lightgbm_threads(2)}
    data = lgb.Dataset(x[~held], label=target[~held] - offset[~held], feature_name=names, categorical_feature=cats,
                       free_raw_data=True)  # fmt: skip
    booster = lgb.train(params, data, num_boost_round=_ROUNDS)
    pred = np.asarray(booster.predict(x[held]), dtype=np.float64) + offset[held]
    resid = target[held] - pred
    platform = frame["platform"].cast(pl.String).to_numpy()
    baseline = np.empty(int(held.sum()))
    for p in np.unique(platform):  # the platform's median: what a planner would assume without a model
        fit_rows = (platform == p) & ~held
        base = float(np.median(target[fit_rows])) if fit_rows.any() else float(np.median(target[~held]))
        baseline[platform[held] == p] = base
    holdout = {
        "rows": float(held.sum()),
        "mae_model": float(np.mean(np.abs(resid))),
        "mae_platform_median": float(np.mean(np.abs(target[held] - baseline))),
    }
    lo, hi = np.quantile(resid, [0.1, 0.9])
    return Estimator(name, booster, tuple(features), (float(lo), float(hi)), holdout, slope)


@dataclass(frozen=True)
class Completion:
    """The bundle's completion models (see the module doc)."""

    price: Estimator | None
    credibility: Estimator | None
    audience_mix: pl.DataFrame  # platform, country (null: any), creators, every audience share column
    widening: dict[str, dict[str, float]] = field(default_factory=dict)  # kind -> KPI -> extra log sd

    # ----------------------------------------------------------------------------------- what is missing
    def assumed_audience(self, creators: pl.DataFrame) -> pl.DataFrame:
        """creator_id and the assumed audience shares of each of ``creators`` (null where no mix is known).

        Age, gender and country shares are those of the platform's creators of the same country, interests those of
        the platform's creators of the same main category, where enough creators share it; else the platform's.
        """
        groups = audience_columns()
        cols = _audience_cols()
        mix = self.audience_mix
        if mix.height == 0:
            return creators.select("creator_id", *(pl.lit(None, dtype=pl.Float64).alias(c) for c in cols))
        keyed = creators.select(
            "creator_id",
            pl.col("platform").cast(pl.String),
            pl.col("country").cast(pl.String).str.to_uppercase().alias("_country"),
            pl.col("categories").cast(pl.String).str.to_lowercase().str.split("|").list.first().str.strip_chars()
            .alias("_category"),
        )  # fmt: skip

        def lookup(kind: str, key: str) -> pl.DataFrame:
            table = mix.filter(pl.col("by") == kind).select("platform", pl.col("key").alias(key), *cols)
            if kind == "platform":
                return keyed.join(table.drop(key), on="platform", how="left", maintain_order="left")
            return keyed.join(table, on=["platform", key], how="left", maintain_order="left")

        platform, country, category = (
            lookup("platform", "_none"),
            lookup("country", "_country"),
            lookup("category", "_category"),
        )
        exprs: list[pl.Expr] = []
        for g, names in groups.items():
            best = category if g == "audience_interest" else country
            found = best[names[0]].is_not_null()
            exprs.extend(pl.when(found).then(best[c]).otherwise(platform[c]).alias(c) for c in names)
        return keyed.select("creator_id", *exprs)

    def complete(self, creators: pl.DataFrame, features: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """``creators`` with what is missing filled in, and each creator's provenance (one row per creator).

        ``features`` are the creators' feature rows as built from what is known (one per creator, in the format
        that will be priced); the models read the history features from them. Given values are never changed.
        Provenance: ``price_source`` (quoted, estimated, none), ``price_p10``/``price_p90`` (the estimate's range;
        the price itself when quoted), ``credibility_source`` (given, estimated, unknown), ``audience_source``
        (given, assumed, unknown), ``history_posts``.
        """
        cols = _audience_cols()
        groups = audience_columns()
        # the usual case (a brief's features: one row per creator, in the creators' order) needs no unique or join
        aligned = features.height == creators.height and features["creator_id"].equals(creators["creator_id"])
        if aligned:
            feats = features
        else:
            first = features.unique("creator_id", keep="first", maintain_order=True)
            feats = creators.select("creator_id").join(first, on="creator_id", how="left", maintain_order="left")
        out = creators
        # 1. credibility: estimated where not given
        cred_given = creators["audience_credibility"].is_not_null()
        cred = creators["audience_credibility"].cast(pl.Float64).to_numpy().copy()
        cred_source = np.where(cred_given.to_numpy(), "given", "unknown").astype(object)
        todo = ~cred_given.to_numpy() & feats["platform"].is_not_null().to_numpy()
        if self.credibility is not None and todo.any():
            est = self.credibility.predict(feats.filter(pl.Series(todo)))
            cred[todo] = est
            cred_source[todo] = "estimated"
            out = out.with_columns(pl.Series("audience_credibility", cred, dtype=pl.Float64))
        # 2. audience: every group with no value is taken from the assumed mix
        assumed = self.assumed_audience(creators)
        unknown_groups = {g: creators[names[0]].is_null() for g, names in groups.items()}
        all_unknown = np.logical_and.reduce([m.to_numpy() for m in unknown_groups.values()])
        any_unknown = np.logical_or.reduce([m.to_numpy() for m in unknown_groups.values()])
        fills: list[pl.Expr] = []
        for g, names in groups.items():
            mask = unknown_groups[g]
            fills.extend(pl.when(pl.lit(mask)).then(assumed[c]).otherwise(pl.col(c)).alias(c) for c in names)
        out = out.with_columns(fills)
        could = assumed[cols[0]].is_not_null().to_numpy()
        aud_source = np.where(any_unknown, np.where(could, "assumed", "unknown"), "given").astype(object)
        aud_source[all_unknown & ~could] = "unknown"
        # 3. price: estimated for each priced format where none is quoted (with the completed credibility)
        if aligned:
            pairs = features.with_columns(pl.Series("_cred", cred, dtype=pl.Float64))
        else:
            pairs = features.unique(["creator_id", "format"], keep="first", maintain_order=True).join(
                pl.DataFrame({"creator_id": creators["creator_id"], "_cred": cred}), on="creator_id", how="inner",
                maintain_order="left",
            )  # fmt: skip
        pfmt = pairs["format"].cast(pl.String).to_numpy()
        pprice = pairs["price"].cast(pl.Float64).to_numpy().copy()
        pquoted = np.isfinite(pprice) & (np.nan_to_num(pprice, nan=0.0) > 0)
        plo, phi = pprice.copy(), pprice.copy()
        ptodo = ~pquoted & np.array([f is not None for f in pfmt], dtype=bool)
        if self.price is not None and ptodo.any():
            rows = pairs.filter(pl.Series(ptodo)).with_columns(pl.col("_cred").alias("audience_credibility"))
            est = self.price.predict(rows)
            lo, hi = self.price.band(est)
            pprice[ptodo], plo[ptodo], phi[ptodo] = np.round(est, 2), np.round(lo, 2), np.round(hi, 2)
            if aligned:
                at = np.arange(pairs.height, dtype=np.int64)
            else:
                index = {cid: i for i, cid in enumerate(creators["creator_id"].to_list())}
                at = np.array([index[c] for c in pairs["creator_id"].to_list()], dtype=np.int64)
            updates = []
            for f in FORMATS:
                hit = ptodo & (pfmt == f)
                if hit.any():
                    col = out[f"price_{f}"].cast(pl.Float64).to_numpy().copy()
                    col[at[hit]] = pprice[hit]
                    updates.append(pl.Series(f"price_{f}", col, dtype=pl.Float64))
            if updates:
                out = out.with_columns(updates)
        source = np.where(pquoted, "quoted", np.where(ptodo & (self.price is not None), "estimated", "none"))
        first = pl.DataFrame({"creator_id": pairs["creator_id"], "price_source": source.astype(str),
                              "price_p10": plo, "price_p90": phi})  # fmt: skip
        if not aligned:
            first = creators.select("creator_id").join(first.unique("creator_id", keep="first"), on="creator_id",
                                                       how="left", maintain_order="left")  # fmt: skip
        price_source = first["price_source"].fill_null("none").to_numpy().astype(object)
        p10, p90 = first["price_p10"].to_numpy(), first["price_p90"].to_numpy()
        provenance = pl.DataFrame({
            "creator_id": creators["creator_id"],
            "price_source": pl.Series(price_source.tolist(), dtype=pl.String),
            "price_p10": np.round(p10, 2),
            "price_p90": np.round(p90, 2),
            "credibility_source": pl.Series(cred_source.tolist(), dtype=pl.String),
            "audience_source": pl.Series(aud_source.tolist(), dtype=pl.String),
            "history_posts": feats["posts_before"].cast(pl.Int64).fill_null(0),
        })  # fmt: skip
        return out, provenance

    # ----------------------------------------------------------------------------------- the bundle form
    def files(self) -> dict[str, str]:
        """LightGBM text of each model, by file name."""
        return {f"completion_{e.name}.txt": e.text() for e in (self.price, self.credibility) if e is not None}

    def state(self, sha256: Mapping[str, str]) -> dict[str, Any]:
        """The manifest entry: each model's file, checksum and state; the audience mix; the widening."""
        models = {}
        for e in (self.price, self.credibility):
            if e is not None:
                name = f"completion_{e.name}.txt"
                models[e.name] = {"file": name, "sha256": sha256[name], "state": e.state()}
        return {"models": models, "audience_mix": self.audience_mix.to_dicts(), "widening": self.widening}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], texts: Mapping[str, str]) -> Completion:
        models = {name: Estimator.from_state(m["state"], texts[m["file"]]) for name, m in state["models"].items()}
        schema = {"platform": pl.String, "by": pl.String, "key": pl.String, "creators": pl.Int64,
                  **dict.fromkeys(_audience_cols(), pl.Float64)}  # fmt: skip
        return cls(
            price=models.get("price"),
            credibility=models.get("credibility"),
            audience_mix=pl.DataFrame(state["audience_mix"], schema=schema, orient="row")
            if state["audience_mix"]
            else pl.DataFrame(schema=schema),
            widening={k: {kk: float(vv) for kk, vv in v.items()} for k, v in state["widening"].items()},
        )


def _audience_mix(creators: pl.DataFrame) -> pl.DataFrame:
    """Mean audience shares per platform, and per platform x country and platform x main category where at least
    ``MIN_MIX_CREATORS`` creators share it (``by``: platform, country or category; ``key``: its value)."""
    cols = _audience_cols()
    known = creators.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in cols))
    schema: dict[str, pl.DataType] = {"platform": pl.String(), "by": pl.String(), "key": pl.String(),
                                      "creators": pl.Int64(), **dict.fromkeys(cols, pl.Float64())}  # fmt: skip
    if known.height == 0:
        return pl.DataFrame(schema=schema)
    known = known.with_columns(
        pl.col("platform").cast(pl.String),
        pl.col("country").cast(pl.String).str.to_uppercase().alias("_country"),
        pl.col("categories").cast(pl.String).str.to_lowercase().str.split("|").list.first().str.strip_chars()
        .alias("_category"),
    )  # fmt: skip
    means = [pl.col(c).mean().alias(c) for c in cols]
    parts = [known.group_by("platform").agg(pl.len().alias("creators"), *means)
             .with_columns(pl.lit("platform").alias("by"), pl.lit(None, dtype=pl.String).alias("key"))]  # fmt: skip
    for by, col in (("country", "_country"), ("category", "_category")):
        parts.append(
            known.filter(pl.col(col).is_not_null())
            .group_by("platform", pl.col(col).alias("key"))
            .agg(pl.len().alias("creators"), *means)
            .filter(pl.col("creators") >= MIN_MIX_CREATORS)
            .with_columns(pl.lit(by).alias("by"))
        )
    return pl.concat([p.select(list(schema)).cast(pl.Schema(schema)) for p in parts]).sort("platform", "by", "key")


def fit_completion(frame: pl.DataFrame, creators: pl.DataFrame, *, seed: int = 0) -> Completion:
    """Fit the rate card and the credibility model on a training table's rows, the audience mix on its creators.

    Each creator counts once (its latest hire's features), so prolific creators do not dominate; a model whose
    target is known on fewer than ``MIN_ROWS`` creators is not fitted (its value then stays unknown).
    """
    latest = frame.sort("as_of").unique("creator_id", keep="last", maintain_order=True).sort("creator_id")
    price: Estimator | None = None
    priced = latest.filter(pl.col("price").is_not_null() & (pl.col("price") > 0))
    if priced.height >= MIN_ROWS:
        price = _fit_estimator("price", priced, np.log(priced["price"].cast(pl.Float64).to_numpy()),
                               PRICE_FEATURES, seed)  # fmt: skip
    cred: Estimator | None = None
    rated = latest.filter(pl.col("audience_credibility").is_not_null())
    if rated.height >= MIN_ROWS:
        cred = _fit_estimator("credibility", rated, rated["audience_credibility"].cast(pl.Float64).to_numpy(),
                              CREDIBILITY_FEATURES, seed + 1)  # fmt: skip
    return Completion(price=price, credibility=cred, audience_mix=_audience_mix(creators))


def needs(creators: pl.DataFrame, features: pl.DataFrame) -> pl.Series:
    """True for each creator that lacks a credibility, an audience group or a price for its feature row's format."""
    groups = audience_columns()
    missing = creators.select(
        "creator_id",
        (pl.col("audience_credibility").is_null()
         | pl.any_horizontal(pl.col(names[0]).is_null() for names in groups.values())).alias("_m"),
    )  # fmt: skip
    no_price = features.select("creator_id", (pl.col("price").is_null() | (pl.col("price") <= 0)).alias("_p"))
    joined = missing.join(no_price.unique("creator_id", keep="first"), on="creator_id", how="left",
                          maintain_order="left")  # fmt: skip
    return (joined["_m"] | joined["_p"].fill_null(False)).alias("needs_completion")


def widen(quantiles: F64, extra_sd: F64) -> F64:
    """P10/P50/P90 rows widened by an extra log-scale spread per row (added in quadrature on the log1p scale; P50
    unchanged). A count cannot go below zero: the widened P10 stops there (unclipped, 1.2% of a million scored
    candidates got a negative clicks P10, down to -0.17)."""
    if quantiles.shape[1] != 3 or not np.any(extra_sd > 0):
        return quantiles
    lp = np.log1p(np.maximum(quantiles, 0.0))
    lo, mid, hi = lp[:, 0], lp[:, 1], lp[:, 2]
    add = (Z90 * extra_sd) ** 2
    new_lo = np.maximum(mid - np.sqrt((mid - lo) ** 2 + add), 0.0)
    new_hi = mid + np.sqrt((hi - mid) ** 2 + add)
    out: F64 = np.expm1(np.stack([new_lo, mid, new_hi], axis=1))
    return out
