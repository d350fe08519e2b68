"""The next-post forecaster: post histories alone (no campaign outcomes), so it runs on real data.

For every post, the features use only the creator's earlier posts (as of the post's time), and the target is
the post's engagement (likes + comments). Time split: posts in the last ``test_share`` of the time range are
the test set. The model (LightGBM, L1 loss on log1p, i.e. the median) is scored against two baselines: the
trailing median of the creator's last N posts, and followers x the tier's median engagement rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from influencer_engine.config import TierConfig
from influencer_engine.dataset import validate_dataset
from influencer_engine.errors import InputError
from influencer_engine.features.build import build_features, feature_columns
from influencer_engine.features.catalog import catalog
from influencer_engine.modeling.matrix import CATEGORIES_OF, to_matrix
from influencer_engine.modeling.metrics import mae_log1p, spearman

__all__ = ["NextPostResult", "next_post_backtest", "next_post_features"]

# Brief-only groups are null without a brief; price is unknown in public post data.
_EXCLUDED_GROUPS = ("audience_fit", "affinity", "price")
_PARAMS = {"objective": "l1", "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 40,
           "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
           "deterministic": True, "force_col_wise": True, "verbosity": -1, "num_threads": 2}  # fmt: skip


def next_post_features() -> list[str]:
    groups = {s.name: s.group for s in catalog()}
    return [f for f in feature_columns() if groups[f] not in _EXCLUDED_GROUPS and f != "brand_category"]


@dataclass(frozen=True)
class NextPostResult:
    metrics: dict[str, dict[str, float]]  # method -> metric -> value
    rows: dict[str, int]
    improvement_vs_trailing_median: float  # 1 - MAE(model) / MAE(trailing median, last N)
    window: int

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "rows": self.rows, "window": self.window,
                "improvement_vs_trailing_median": self.improvement_vs_trailing_median}  # fmt: skip


def next_post_backtest(
    data: Path, tiers: TierConfig, *, test_share: float = 0.2, window: int = 20, seed: int = 0,
    n_estimators: int = 400,
) -> NextPostResult:  # fmt: skip
    """Time-split backtest of next-post engagement on a dataset folder with creators and posts."""
    if window not in (5, 20):
        raise InputError(f"--window {window} has no trailing-median feature.", fix="use 5 or 20")
    ds = validate_dataset(data)
    if "posts" not in ds.results:
        raise InputError(f"{data} has no posts table.", fix="import post histories first (`ie import instagram-posts`)")
    creators, posts = ds.results["creators"].valid, ds.results["posts"].valid
    posts = posts.with_columns((pl.col("likes").fill_null(0) + pl.col("comments").fill_null(0)).alias("__y"))
    posts = posts.filter(pl.col("likes").is_not_null())
    requests = posts.select(
        pl.col("post_id").alias("request_id"),
        "creator_id",
        pl.col("posted_at").alias("as_of"),
        pl.col("format"),
        *(pl.lit(None, dtype=pl.String).alias(c) for c in ("brand_category", "target_age", "target_gender",
                                                          "target_countries")),
    )  # fmt: skip
    feats = build_features(creators.lazy(), posts.drop("__y").lazy(), requests.lazy(), tiers).collect()
    frame = feats.join(posts.select(pl.col("post_id").alias("request_id"), "__y"), on="request_id", how="inner")
    n_all = frame.height
    frame = frame.filter(pl.col("posts_before") >= 1).sort("as_of", "request_id")
    cut = frame["as_of"].cast(pl.Int64).quantile(1 - test_share)
    is_test = frame["as_of"].cast(pl.Int64) >= cut
    train, test = frame.filter(~is_test), frame.filter(is_test)
    names = next_post_features()
    cats = [i for i, n in enumerate(names) if n in CATEGORIES_OF]
    y_tr = train["__y"].cast(pl.Float64).to_numpy()
    booster = lgb.train(
        {**_PARAMS, "seed": seed},
        lgb.Dataset(to_matrix(train, names), label=np.log1p(y_tr), feature_name=names, categorical_feature=cats),
        num_boost_round=n_estimators,
    )
    y = test["__y"].cast(pl.Float64).to_numpy()
    model = np.expm1(booster.predict(to_matrix(test, names)))
    trailing = test[f"interactions_median_last{window}"].cast(pl.Float64).to_numpy()
    # followers x the tier's median engagement rate (likes + comments per follower), from training posts
    rate = (train.with_columns((pl.col("__y") / pl.col("followers")).alias("r"))
            .group_by(pl.col("tier").cast(pl.String)).agg(pl.col("r").median()))  # fmt: skip
    rates = dict(zip(rate["tier"].to_list(), rate["r"].to_list(), strict=True))
    tier_rate = test["followers"].cast(pl.Float64).to_numpy() * np.array(
        [rates.get(t, np.nan) for t in test["tier"].cast(pl.String).to_list()]
    )
    preds = {"model": model, f"trailing_median_last{window}": trailing, "followers_x_tier_rate": tier_rate}
    if window != 5:
        preds["trailing_median_last5"] = test["interactions_median_last5"].cast(pl.Float64).to_numpy()
    metrics = {m: {"mae_log1p": mae_log1p(y, p), "spearman": spearman(p, y)} for m, p in preds.items()}
    improvement = 1.0 - metrics["model"]["mae_log1p"] / metrics[f"trailing_median_last{window}"]["mae_log1p"]
    rows = {"posts_scored": n_all, "without_earlier_post": n_all - frame.height, "train": train.height,
            "test": test.height, "creators": frame["creator_id"].n_unique()}  # fmt: skip
    return NextPostResult(metrics=metrics, rows=rows, improvement_vs_trailing_median=improvement, window=window)
