"""The feature catalog written plainly in pandas: the reference the Polars builder is timed and checked against.

Benchmark-only code (pandas is not a dependency of the engine). It follows the same definitions as
influencer_engine.features, step by step, the way one would write them without Polars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from influencer_engine.features.catalog import (
    CADENCE_DAYS,
    EWM_HALF_LIVES,
    HISTORY_METRICS,
    LAGS,
    SHRINK_PSEUDO_POSTS,
    SLOPE_DAYS,
    SPONSORED_GAP_WINDOW,
    WINDOWS,
    history_name,
)
from influencer_engine.registry import FORMATS
from influencer_engine.schema import AGE_BANDS, AUDIENCE_COUNTRIES, CATEGORIES, GENDERS, audience_columns

BASE_FORMAT = {"instagram": "image", "tiktok": "video", "youtube": "video"}
TIER_BOUNDS = [(1_000_000, "mega"), (500_000, "macro"), (100_000, "mid"), (10_000, "micro"), (0, "nano")]


def _history(requests: pd.DataFrame, posts: pd.DataFrame) -> pd.DataFrame:
    lo, hi = WINDOWS[0], WINDOWS[-1]
    p = posts.copy()
    p["interactions"] = p["likes"] + p["comments"].fillna(0)
    df = requests[["request_id", "creator_id", "as_of", "format"]].rename(columns={"format": "request_format"})
    df = df.merge(p, on="creator_id", how="inner")
    df = df[df["posted_at"] < df["as_of"]]
    df = df.sort_values(["request_id", "posted_at", "format"], ascending=[True, False, False])
    df["k"] = df.groupby("request_id").cumcount() + 1
    df["age_days"] = (df["as_of"] - df["posted_at"]).dt.total_seconds() / 86_400
    g = df.groupby("request_id")
    out = pd.DataFrame(
        {
            "posts_before": g.size(),
            "history_days": g["age_days"].max(),
            "days_since_last_post": g["age_days"].min(),
            f"posts_per_week_last{CADENCE_DAYS}d": (df["age_days"] <= CADENCE_DAYS).groupby(df["request_id"]).sum()
            / CADENCE_DAYS
            * 7,
        }
    )
    for m in HISTORY_METRICS:
        for w in WINDOWS:
            out[history_name(m, "median", w)] = df[df["k"] <= w].groupby("request_id")[m].median()
        out[history_name(m, "mean", hi)] = df[df["k"] <= hi].groupby("request_id")[m].mean()
    recent = df[df["k"] <= hi].groupby("request_id")["interactions"]
    out[f"interactions_cv_last{hi}"] = recent.std() / recent.mean().where(recent.mean() > 0)
    window = df[df["k"] <= SPONSORED_GAP_WINDOW]
    spons = window[window["sponsored"].fillna(False).astype(bool)].groupby("request_id")["interactions"].median()
    organic = window[window["sponsored"].notna() & ~window["sponsored"].fillna(False).astype(bool)]
    org = organic.groupby("request_id")["interactions"].median()
    out["sponsored_share"] = df["sponsored"].map({True: 1.0, False: 0.0}).groupby(df["request_id"]).mean()
    same = df[df["format"] == df["request_format"]]
    out["interactions_median_same_format"] = same.groupby("request_id")["interactions"].median()
    out["same_format_share"] = (df["format"] == df["request_format"]).groupby(df["request_id"]).mean()
    out[f"interactions_trend_{lo}v{hi}"] = np.log(out[history_name("interactions", "median", lo)] + 1) - np.log(
        out[history_name("interactions", "median", hi)] + 1
    )
    out[f"sponsored_gap_last{SPONSORED_GAP_WINDOW}"] = np.log(spons.reindex(out.index) + 1) - np.log(
        org.reindex(out.index) + 1
    )
    df["ly"] = np.log1p(df["interactions"].astype(float))
    for lag in LAGS:
        out[f"log_interactions_lag{lag}"] = df[df["k"] == lag].set_index("request_id")["ly"]
    last = df[df["k"] <= hi].copy()
    for hl in EWM_HALF_LIVES:
        last["w"] = 0.5 ** ((last["k"] - 1) / hl)
        last["wy"] = last["w"] * last["ly"]
        sums = last.groupby("request_id")[["wy", "w"]].sum()
        out[f"log_interactions_ewm{hl}"] = sums["wy"] / sums["w"]
    out[f"log_interactions_sd_last{hi}"] = last.groupby("request_id")["ly"].std()
    last["t"] = -last["age_days"] / SLOPE_DAYS

    def slope(g: pd.DataFrame) -> float:
        dt = g["t"] - g["t"].mean()
        sxx = (dt * dt).sum()
        return float((dt * (g["ly"] - g["ly"].mean())).sum() / sxx) if len(g) > 1 and sxx > 1e-9 else np.nan

    out[f"log_interactions_slope_last{hi}"] = last.groupby("request_id")[["t", "ly"]].apply(slope)
    same = df[df["format"] == df["request_format"]]
    out["log_interactions_last_same_format"] = same.sort_values("k").groupby("request_id")["ly"].first()
    out["days_between_last_two_posts"] = (
        df[df["k"] == 2].set_index("request_id")["age_days"] - out["days_since_last_post"]
    )
    out["posts_last7d"] = (df["age_days"] <= 7).groupby(df["request_id"]).sum()
    return out.reset_index()


def _share(frame: pd.DataFrame, cols: tuple[str, ...], vocab: tuple[str, ...], target: pd.Series) -> pd.Series:
    """Share of the audience inside the '|'-separated target; null target: 1.0; unknown shares: NaN."""
    inside = sum(
        frame[c] * target.str.contains(rf"(?:^|\|){v}(?:$|\|)", regex=True).fillna(False).astype(float)
        for c, v in zip(cols, vocab, strict=True)
    )
    out = inside.where(target.notna(), 1.0)
    return out.where(frame[cols[0]].notna())


def _pick(frame: pd.DataFrame, key: pd.Series, columns: dict[str, str]) -> np.ndarray:
    """Row-wise frame[columns[key]] (NaN where the key is not in columns)."""
    names = list(columns)
    matrix = frame[[columns[n] for n in names]].to_numpy(dtype=float)
    idx = key.map({n: i for i, n in enumerate(names)})
    ok = idx.notna().to_numpy()
    out = np.full(len(frame), np.nan)
    out[ok] = matrix[np.flatnonzero(ok), idx[ok].astype(int).to_numpy()]
    return out


def pandas_features(creators: pd.DataFrame, posts: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    hi = WINDOWS[-1]
    c = creators.copy()
    if "tier" not in c or c["tier"].isna().any():
        derived = pd.Series(
            np.select([c["followers"] >= b for b, _ in TIER_BOUNDS], [t for _, t in TIER_BOUNDS]), index=c.index
        )
        c["tier"] = c["tier"].fillna(derived) if "tier" in c else derived
    requests = requests.merge(c[["creator_id", "platform"]], on="creator_id", how="left")
    requests["format"] = requests["format"].fillna(requests["platform"].map(BASE_FORMAT))
    requests = requests.drop(columns="platform")
    df = requests.merge(c, on="creator_id", how="inner")
    df = df.merge(_history(requests, posts), on="request_id", how="left")
    df["posts_before"] = df["posts_before"].fillna(0).astype("int64")
    # context
    df["format"] = df["format"].fillna(df["platform"].map(BASE_FORMAT))
    df["month"] = df["as_of"].dt.month
    df["season"] = (df["month"] % 12) // 3
    df["holiday_season"] = df["month"].isin([11, 12]).astype(int)
    # audience fit and affinity
    groups = audience_columns()
    df["fit_age"] = _share(df, groups["audience_age"], AGE_BANDS, df["target_age"])
    df["fit_gender"] = _share(df, groups["audience_gender"], GENDERS, df["target_gender"])
    df["fit_country"] = _share(df, groups["audience_country"], AUDIENCE_COUNTRIES, df["target_countries"])
    df["audience_fit"] = df["fit_age"] * df["fit_gender"] * df["fit_country"]
    df["affinity"] = _pick(df, df["brand_category"], dict(zip(CATEGORIES, groups["audience_interest"], strict=True)))
    niches = df["categories"].str.lower().str.split("|")
    first = niches.str[0]
    listed = pd.Series(
        [
            b in n if isinstance(n, list) and isinstance(b, str) else False
            for n, b in zip(niches, df["brand_category"], strict=True)
        ],
        index=df.index,
    )
    rank = np.where(first == df["brand_category"], 2.0, np.where(listed, 1.0, 0.0))
    df["category_rank"] = pd.Series(rank, index=df.index).where(df["categories"].notna() & df["brand_category"].notna())
    # scale
    df["log10_followers"] = np.log10(df["followers"].astype(float))
    df["real_followers_est"] = df["followers"] * df["audience_credibility"]
    # price
    df["price"] = _pick(df, df["format"], {f: f"price_{f}" for f in FORMATS})
    pos = lambda s: s.where(s > 0)  # noqa: E731
    views = (
        df[history_name("views", "median", hi)]
        .fillna(df[history_name("impressions", "median", hi)])
        .fillna(df[history_name("reach", "median", hi)])
    )
    df["price_per_follower"] = df["price"] / pos(df["followers"].astype(float))
    df["price_per_expected_view"] = df["price"] / pos(views)
    df["price_per_expected_interaction"] = df["price"] / pos(df[history_name("interactions", "median", hi)])
    # quality
    df[f"comments_per_like_last{hi}"] = df[history_name("comments", "median", hi)] / pos(
        df[history_name("likes", "median", hi)]
    )
    df["following_per_follower"] = df["following"] / pos(df["followers"].astype(float))
    # peers
    er = f"er_median_last{hi}"
    df[er] = df[history_name("interactions", "median", hi)] / pos(df["followers"].astype(float))
    peers = df.groupby(["platform", "tier"])[er]
    df["er_vs_peers"] = df[er] / peers.transform("median")
    log_er = np.log(df[er] + 1e-6)
    prior = log_er.groupby([df["platform"], df["tier"]]).transform("median")
    n = df["posts_before"].clip(upper=hi).astype(float)
    shrunk = np.exp((n * log_er + SHRINK_PSEUDO_POSTS * prior) / (n + SHRINK_PSEUDO_POSTS))
    df[f"er_last{hi}_shrunk"] = shrunk.where(df[er].notna(), np.exp(prior))
    n_all = df["posts_before"].astype(float)
    anchor = np.exp((n_all * log_er + SHRINK_PSEUDO_POSTS * prior) / (n_all + SHRINK_PSEUDO_POSTS))
    anchor = anchor.where(df[er].notna(), np.exp(prior)).fillna(np.exp(prior.median()))
    df["interactions_anchor"] = df["followers"] * anchor
    return df
