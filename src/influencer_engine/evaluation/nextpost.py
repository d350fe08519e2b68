"""The next-post forecaster: post histories alone (no campaign outcomes), so it runs on real data.

For every post, the features use only the creator's earlier posts (as of the post's time) and what is known of the
post itself when it goes out (format, hour and weekday, a disclosed partnership, caption length, hashtags,
mentions, and a score of its caption's words); the target is the post's engagement (likes + comments). Time split:
posts in the last ``test_share`` of the time range are the test set. The model is scored against two baselines: the
trailing median of the creator's last N posts, and followers x the tier's median engagement rate.

The model is two LightGBM boosters (L1 loss on log1p, i.e. the median) on the same features, averaged in log:
one forecasts the post's level (log1p engagement), the other its ratio to the creator's trailing median (the
median as its starting score, as the engagement KPI model forecasts a multiple of the creator's own level), weighted
``RESIDUAL_WEIGHT``. Trees cannot extrapolate: a level booster puts a creator whose engagement has grown past
anything in the training period in the top leaf of the training period, while a ratio to the creator's own median
moves with the creator. On the shared Instagram set the two do about as well alone and better averaged; where
creators' levels trend (each creator's level given a steady yearly trend, ``benchmarks/bench_nextpost.py --trend``)
the level booster alone loses most of its gain over the median and the ratio booster keeps it (module figures in
the README, "The next-post test on real histories").

Each test post also gets a P10-P90 band (split conformal on log1p residuals of the training posts forecast out of
fold by creator), pooled and per bucket of the posts before it: on real histories the error grows as the history
shrinks, and pooled bands held 67-73% of the posts of creators with 1-5 earlier posts (README).

The caption score is a ridge regression on hashed word and word-pair counts (TF-IDF) of what a post earned over its
creator's trailing median (its penalty picked by out-of-fold error on the training posts): fitted on training posts
only, out of fold for the training rows (so the booster sees it as it will be for a new post), on all training posts
for the test rows. A data set without captions gets no
score (the column is null and the booster ignores it).

The level ceiling (``NextPostResult.level_ceiling``) says how much of the error is the creator's level: the median of
the creator's posts about each post (before and after it, so not a forecast), alone and as the model's anchor and a
feature. On the shared set it buys under half a point over the model, with or without captions: what is left is each
post's own, which only its content tells.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.config import IntervalSection, TierConfig
from influencer_engine.dataset import validate_dataset
from influencer_engine.errors import InputError
from influencer_engine.features.build import build_features, feature_columns
from influencer_engine.features.catalog import catalog
from influencer_engine.modeling.intervals import HISTORY_BUCKETS, ConformalBands, history_bucket, history_of
from influencer_engine.modeling.matrix import CATEGORIES_OF, to_matrix
from influencer_engine.modeling.metrics import mae_log1p, spearman

__all__ = ["POST_ATTRIBUTES", "RESIDUAL_WEIGHT", "NextPostResult", "next_post_backtest", "next_post_features",
           "post_attributes"]  # fmt: skip

# Brief-only groups are null without a brief; price is unknown in public post data.
_EXCLUDED_GROUPS = ("audience_fit", "affinity", "price")
_PARAMS = {"objective": "l1", "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 40,
           "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
           "deterministic": True, "force_col_wise": True, "verbosity": -1, "num_threads": 2}  # fmt: skip


# What is known of a post when it goes out (besides its format, a catalog feature)
POST_ATTRIBUTES = ("post_hour", "post_weekday", "post_sponsored", "post_caption_chars", "post_hashtags",
                   "post_mentions", "post_caption_lines", "post_caption_score")  # fmt: skip
# The features of each ablation row: the catalog as it was before issue 18's history features, the catalog, and
# the catalog with the post's own attributes (the model)
_NEW_HISTORY = ("log_interactions_", "days_between_last_two_posts", "posts_last7d")
_CAPTION_FOLDS = 5
_CAPTION_MIN_POSTS = 200  # fewer training captions than this: no caption score
_TOKENS = r"(?u)[#@]?\w\w+"
_RIDGE_ALPHAS = (1.0, 3.0, 10.0, 30.0)
# The ratio booster's weight in the log average. Chosen on the shared set and on two copies with moving levels (a
# random walk per post, a steady trend per creator), with and without captions: 0.5 did best on the shared set
# itself, 0.75-1.0 on the moving ones, 0.75 was within 0.4 points of the best on each of the six (README).
RESIDUAL_WEIGHT = 0.75
# The bands' calibration: every training post forecast out of fold, by this many folds of creators
BAND_FOLDS = 5
_BAND_BINS = 5  # bins of the forecast, as the KPI models' bands (configs/models.toml)
# The level ceiling: the median of a creator's this many posts before and as many after each post (not the post)
NEIGHBOURS = 10


def next_post_features() -> list[str]:
    """The catalog features the next-post model reads (brief-only and price groups are null in post data)."""
    groups = {s.name: s.group for s in catalog()}
    return [f for f in feature_columns() if groups[f] not in _EXCLUDED_GROUPS and f != "brand_category"]


def _caption(posts: pl.DataFrame) -> pl.Expr:
    """The posts' caption column, or nulls where the data has none (it is optional in the contract)."""
    return pl.col("caption") if "caption" in posts.columns else pl.lit(None, dtype=pl.String)


def post_attributes(posts: pl.DataFrame) -> pl.DataFrame:
    """post_id and what is known of each post when it goes out (null where the data does not say)."""
    caption = _caption(posts)
    sponsored = pl.col("sponsored") if "sponsored" in posts.columns else pl.lit(None, dtype=pl.Boolean)
    return posts.select(
        "post_id",
        pl.col("posted_at").dt.hour().cast(pl.Int32).alias("post_hour"),
        pl.col("posted_at").dt.weekday().cast(pl.Int32).alias("post_weekday"),
        sponsored.cast(pl.Float64).alias("post_sponsored"),
        caption.str.len_chars().cast(pl.Float64).alias("post_caption_chars"),
        caption.str.count_matches(r"#\w+").cast(pl.Float64).alias("post_hashtags"),
        caption.str.count_matches(r"@[\w.]+").cast(pl.Float64).alias("post_mentions"),
        (caption.str.count_matches("\n") + 1).cast(pl.Float64).alias("post_caption_lines"),
    )


def _caption_scores(
    train_text: list[str | None], residual: npt.NDArray[np.float64], test_text: list[str | None], seed: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """Out-of-fold caption scores of the training posts and scores of the test posts (None: too few captions)."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold

    known = np.array([t is not None for t in train_text])
    if known.sum() < _CAPTION_MIN_POSTS:
        return None
    hasher = HashingVectorizer(n_features=2**18, ngram_range=(1, 2), alternate_sign=False, norm=None,
                               token_pattern=_TOKENS)  # fmt: skip
    x_train = hasher.transform([t or "" for t in train_text])
    x_test = hasher.transform([t or "" for t in test_text])
    tfidf = TfidfTransformer(sublinear_tf=True).fit(x_train)
    x_train, x_test = tfidf.transform(x_train), tfidf.transform(x_test)
    folds = list(KFold(_CAPTION_FOLDS, shuffle=True, random_state=seed).split(np.arange(len(residual))))
    best: tuple[float, float, npt.NDArray[np.float64]] | None = None
    for alpha in _RIDGE_ALPHAS:  # the penalty with the least out-of-fold error on the training posts
        oof = np.zeros(len(residual))
        for fit_rows, held in folds:
            oof[held] = Ridge(alpha=alpha).fit(x_train[fit_rows], residual[fit_rows]).predict(x_train[held])
        err = float(np.mean(np.abs(residual[known] - oof[known])))
        if best is None or err < best[0]:
            best = (err, alpha, oof)
    assert best is not None
    _, alpha, oof = best
    test = Ridge(alpha=alpha).fit(x_train, residual).predict(x_test)
    no_caption = np.array([t is None for t in test_text])
    oof[~known], test[no_caption] = np.nan, np.nan
    return oof, test


@dataclass(frozen=True)
class NextPostResult:
    metrics: dict[str, dict[str, float]]  # method -> metric -> value
    rows: dict[str, int]
    improvement_vs_trailing_median: float  # 1 - MAE(model) / MAE(trailing median, last N)
    window: int
    # MAE log1p of the model with fewer features: what each addition bought, in the same run
    ablation: dict[str, float]
    # the improvement on each half of the creators (split by a hash of the id): does it hold on creators apart?
    by_half: dict[str, float]
    caption_score: bool  # whether the data had enough captions for the caption score
    # MAE log1p of the model's two boosters alone and averaged: "level" (log1p engagement), "ratio" (over the
    # trailing median), "model" (their log average, RESIDUAL_WEIGHT on the ratio)
    boosters: dict[str, float]
    # how often the test posts fall inside the model's P10-P90 band: "pooled" (one set of bands), "by_history"
    # (bands of each history bucket's own) and "auto" (per bucket only where the pooled ones miss a bucket's
    # calibration posts by more than the KPI models' ``intervals.history_tolerance``), calibrated on the training
    # posts out of fold
    coverage: dict[str, float]
    auto_per_bucket: bool  # whether "auto" chose bands per bucket
    # per bucket of the posts before (HISTORY_BUCKETS): rows, MAE log1p of the model and of the trailing median, and
    # the coverage of both kinds of band
    by_history: dict[str, dict[str, float]]
    # What knowing the creator's level exactly would buy, as improvements over the trailing median like the model's:
    # "neighbours_median" (the median of the creator's NEIGHBOURS posts before and after each test post, later
    # posts included: no forecast can know it) and "model_with_neighbours" (the model refitted with that median as
    # its anchor and a feature). What the model misses beyond the latter is each post's own, not its creator's level.
    level_ceiling: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "rows": self.rows, "window": self.window,
                "improvement_vs_trailing_median": self.improvement_vs_trailing_median, "ablation": self.ablation,
                "by_half": self.by_half, "caption_score": self.caption_score, "boosters": self.boosters,
                "coverage": self.coverage, "auto_per_bucket": self.auto_per_bucket,
                "by_history": self.by_history, "level_ceiling": self.level_ceiling}  # fmt: skip


def _booster(train: pl.DataFrame, test: pl.DataFrame, names: list[str], y: npt.NDArray[np.float64],
             init: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None, seed: int,
             n_estimators: int) -> npt.NDArray[np.float64]:  # fmt: skip
    """One booster's log1p forecasts of the test rows (``init``: the train and test rows' starting scores)."""
    cats = [i for i, n in enumerate(names) if n in CATEGORIES_OF]
    data = lgb.Dataset(to_matrix(train, names), label=y, feature_name=names, categorical_feature=cats,
                       init_score=None if init is None else init[0])  # fmt: skip
    booster = lgb.train({**_PARAMS, "seed": seed}, data, num_boost_round=n_estimators)
    out = np.asarray(booster.predict(to_matrix(test, names)), dtype=np.float64)
    return out if init is None else out + init[1]


def _fit_predict(train: pl.DataFrame, test: pl.DataFrame, names: list[str], y: npt.NDArray[np.float64],
                 anchor: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]], seed: int,
                 n_estimators: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:  # fmt: skip
    """The level and the ratio booster's log1p forecasts of the test rows (``anchor``: log1p trailing median)."""
    return (_booster(train, test, names, y, None, seed, n_estimators),
            _booster(train, test, names, y, anchor, seed, n_estimators))  # fmt: skip


def _time_split(frame: pl.DataFrame, share: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows before, and from, the ``1 - share`` quantile of the rows' times (``as_of``)."""
    cut = frame["as_of"].cast(pl.Int64).quantile(1 - share)
    later = frame["as_of"].cast(pl.Int64) >= cut
    return frame.filter(~later), frame.filter(later)


def _anchors(train: pl.DataFrame, test: pl.DataFrame,
             window: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:  # fmt: skip
    """The ratio booster's starting scores of the train and test rows: log1p of the trailing median, or of the
    training posts' median where a creator's earlier posts have no known count."""
    y_tr = np.log1p(train["__y"].cast(pl.Float64).to_numpy())
    fallback = float(np.median(y_tr)) if len(y_tr) else 0.0

    def of(f: pl.DataFrame) -> npt.NDArray[np.float64]:
        v = np.log1p(f[f"interactions_median_last{window}"].cast(pl.Float64).to_numpy())
        return np.asarray(np.nan_to_num(v, nan=fallback), dtype=np.float64)

    return of(train), of(test)


def _bands(train: pl.DataFrame, test: pl.DataFrame, names: list[str], model: npt.NDArray[np.float64], window: int,
           seed: int, n_estimators: int) -> tuple[dict[str, npt.NDArray[np.float64]], bool]:  # fmt: skip
    """P10 and P90 of each test post, by split conformal prediction on log1p residuals: every training post forecast
    out of fold (``BAND_FOLDS`` folds of creators, each forecast by the model refitted on the others, as the KPI
    models' bands are calibrated), whose residuals per bin of the forecast (``modeling.intervals.ConformalBands``)
    give the bands of the test posts' forecasts ``model``. "pooled": one set of bands; "by_history": each bucket of
    the posts before its own (Mondrian by history length); "auto": the latter only where the pooled bands miss a
    bucket (as the KPI models' ``intervals.by_history = "auto"``), and whether it did."""
    _, codes = np.unique(train["creator_id"].cast(pl.String).fill_null("").to_numpy(), return_inverse=True)
    fold = (np.random.default_rng(seed).permutation(int(codes.max()) + 1) % BAND_FOLDS)[codes]
    forecast = np.full(train.height, np.nan)
    for j in range(BAND_FOLDS):
        rest, held = train.filter(pl.Series(fold != j)), train.filter(pl.Series(fold == j))
        if rest.height == 0 or held.height == 0:
            continue
        y_rest = np.log1p(rest["__y"].cast(pl.Float64).to_numpy())
        forecast[fold == j] = _blend(*_fit_predict(rest, held, names, y_rest, _anchors(rest, held, window), seed,
                                                   n_estimators))  # fmt: skip
    y = train["__y"].cast(pl.Float64).to_numpy()
    out, history, auto_per_bucket = {}, history_of(train), False
    tolerance = IntervalSection().history_tolerance
    for kind, hist, tol in (("pooled", None, None), ("by_history", history, None), ("auto", history, tolerance)):
        bands = ConformalBands.fit(y, forecast, (0.1, 0.9), _BAND_BINS, history=hist, tolerance=tol)
        out[kind] = bands.apply(model, None if hist is None else history_of(test))
        auto_per_bucket = auto_per_bucket or (kind == "auto" and bool(bands.history))
    return out, auto_per_bucket


def _neighbours_median(frame: pl.DataFrame) -> pl.Series:
    """Per row, the median engagement of the creator's ``NEIGHBOURS`` posts before and as many after (not the post
    itself; null for a creator with one post): the creator's level about the post, read from later posts too."""
    log_y = pl.col("__y").cast(pl.Float64).log1p()
    shifted = frame.with_row_index("__row").sort("creator_id", "as_of", "request_id").select(
        "__row", *(log_y.shift(o).over("creator_id").alias(f"__s{o}") for o in range(-NEIGHBOURS, NEIGHBOURS + 1) if o)
    )  # fmt: skip
    values = shifted.drop("__row").to_numpy().astype(np.float64)
    known = np.isfinite(values)
    med = np.full(values.shape[0], np.nan)
    rows = known.any(axis=1)
    med[rows] = np.nanmedian(values[rows], axis=1)
    out = np.full(frame.height, np.nan)
    out[shifted["__row"].to_numpy()] = np.expm1(med)
    return pl.Series("__neighbours", out, dtype=pl.Float64)


def _blend(level: npt.NDArray[np.float64], ratio: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(np.expm1((1.0 - RESIDUAL_WEIGHT) * level + RESIDUAL_WEIGHT * ratio), dtype=np.float64)


def next_post_backtest(
    data: Path, tiers: TierConfig, *, test_share: float = 0.2, window: int = 20, seed: int = 0,
    n_estimators: int = 400, ablation: bool = True,
) -> NextPostResult:  # fmt: skip
    """Time-split backtest of next-post engagement on a dataset folder with creators and posts."""
    if window not in (5, 20):
        raise InputError(f"--window {window} has no trailing-median feature.", fix="use 5 or 20")
    ds = validate_dataset(data)
    if "posts" not in ds.results:
        raise InputError(f"{data} has no posts table.", fix="import post histories first (`ie import instagram-posts`)")
    creators, posts = ds.results["creators"].valid, ds.results["posts"].valid
    posts = posts.with_columns((pl.col("likes").fill_null(0) + pl.col("comments").fill_null(0)).alias("__y"))
    # a post without a like count (hidden, or a set that counts views only) has no engagement to score: counted
    n_in = posts.height
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
    own = post_attributes(posts).rename({"post_id": "request_id"})
    text = posts.select(pl.col("post_id").alias("request_id"), "__y", _caption(posts).alias("__caption"))
    frame = feats.join(own, on="request_id", how="left").join(text, on="request_id", how="inner")
    frame = frame.with_columns(_neighbours_median(frame))
    n_all = frame.height
    frame = frame.filter(pl.col("posts_before") >= 1).sort("as_of", "request_id")
    train, test = _time_split(frame, test_share)
    y_tr = np.log1p(train["__y"].cast(pl.Float64).to_numpy())
    anchors = _anchors(train, test, window)
    scores = _caption_scores(train["__caption"].to_list(), y_tr - anchors[0], test["__caption"].to_list(), seed)
    oof, test_score = scores if scores is not None else (np.full(train.height, np.nan), np.full(test.height, np.nan))
    train = train.with_columns(pl.Series("post_caption_score", oof, dtype=pl.Float64))
    test = test.with_columns(pl.Series("post_caption_score", test_score, dtype=pl.Float64))
    catalog_names = next_post_features()
    names = catalog_names + list(POST_ATTRIBUTES)
    level, ratio = _fit_predict(train, test, names, y_tr, anchors, seed, n_estimators)
    model = _blend(level, ratio)
    y = test["__y"].cast(pl.Float64).to_numpy()
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
    base = metrics[f"trailing_median_last{window}"]["mae_log1p"]
    improvement = 1.0 - metrics["model"]["mae_log1p"] / base
    half = (test["creator_id"].hash(0) % 2).to_numpy()
    by_half = {f"half_{h}": 1.0 - mae_log1p(y[rows], model[rows]) / mae_log1p(y[rows], trailing[rows])
               for h in (0, 1) if (rows := half == h).any()}  # fmt: skip
    steps: dict[str, float] = {}
    if ablation:
        old = [n for n in catalog_names if not n.startswith(_NEW_HISTORY)]
        steps["history as before (medians of 5 and 20 posts, cadence, format share)"] = mae_log1p(
            y, _blend(*_fit_predict(train, test, old, y_tr, anchors, seed, n_estimators))
        )
        steps["+ lags, weighted means, spread, trend, gaps"] = mae_log1p(
            y, _blend(*_fit_predict(train, test, catalog_names, y_tr, anchors, seed, n_estimators))
        )
        steps["+ the post's hour, weekday, disclosure, caption length, hashtags, mentions"] = mae_log1p(
            y, _blend(*_fit_predict(train, test, names[:-1], y_tr, anchors, seed, n_estimators))
        )
        steps["+ the caption score (the model)"] = metrics["model"]["mae_log1p"]
    rows = {"posts_in": n_in, "without_likes": n_in - n_all, "posts_scored": n_all,
            "without_earlier_post": n_all - frame.height, "train": train.height,
            "test": test.height, "creators": frame["creator_id"].n_unique()}  # fmt: skip
    boosters = {"level": mae_log1p(y, np.expm1(level)), "ratio": mae_log1p(y, np.expm1(ratio)),
                "model": metrics["model"]["mae_log1p"]}  # fmt: skip
    # the level ceiling: the creator's level about each post read from its neighbours (later posts included)
    neighbours = test["__neighbours"].to_numpy()
    known_level = (np.where(np.isfinite(v := train["__neighbours"].to_numpy()), np.log1p(v), anchors[0]),
                   np.where(np.isfinite(neighbours), np.log1p(neighbours), anchors[1]))  # fmt: skip
    ceiling = _blend(*_fit_predict(train, test, [*names, "__neighbours"], y_tr, known_level, seed, n_estimators))
    level_ceiling = {"neighbours_median": 1.0 - mae_log1p(y, neighbours) / base,
                     "model_with_neighbours": 1.0 - mae_log1p(y, ceiling) / base}  # fmt: skip
    bands, auto_per_bucket = _bands(train, test, names, model, window, seed, n_estimators)
    inside = {k: (b[:, 0] <= y) & (y <= b[:, 1]) for k, b in bands.items()}
    coverage = {k: float(v.mean()) for k, v in inside.items()}
    test_history = history_of(test)
    bucket = history_bucket(test_history if test_history is not None else np.zeros(test.height))
    by_history = {
        name: {"rows": float(sel.sum()), "mae_model": mae_log1p(y[sel], model[sel]),
               "mae_trailing_median": mae_log1p(y[sel], trailing[sel]),
               **{f"coverage_{k}": float(v[sel].mean()) for k, v in inside.items()}}
        for b, name in enumerate(HISTORY_BUCKETS) if (sel := bucket == b).any()
    }  # fmt: skip
    return NextPostResult(metrics=metrics, rows=rows, improvement_vs_trailing_median=improvement, window=window,
                          ablation=steps, by_half=by_half, caption_score=scores is not None,
                          boosters=boosters, coverage=coverage, auto_per_bucket=auto_per_bucket,
                          by_history=by_history, level_ceiling=level_ceiling)  # fmt: skip
