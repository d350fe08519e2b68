"""A creator known only by its export's averages per post: the posts those averages stand for.

Ranking sites and creator databases export averages per recent post (views, likes, comments) instead of posts. A
creator with no posts at all, but with averages (``avg_views``, ``avg_likes``, ``avg_comments``, ``avg_shares``;
``avg_engagement`` where likes and comments are not split), is read as ``AVERAGE_POSTS`` posts in its platform's
base format, one every ``AVERAGE_SPACING_DAYS`` days up to the day before its earliest request, whose metrics are
the averages times a spread whose mean is exactly 1. So every history feature (medians, lags, weighted means, the
engagement rate and its shrinkage toward peers) is computed by the same code as for creators with posts, and the
averages are kept as averages (the posts' mean is the reported figure).

What the averages do not say is assumed, and said on every output (``history_source = "averages"``):
- how many posts they cover (``AVERAGE_POSTS``; ranking sites average over roughly the last 10-30);
- how much a creator's posts vary around the average: the log spread ``AVERAGE_LOG_SPREAD``, the median
  within-creator log sd of likes + comments over the last 20 posts (0.73 on the shared Instagram histories, 0.94 in
  the simulated market), so that the posts' median sits under their mean as a typical creator's does;
- that the creator is active: the last of these posts is a day before the request, and the cadence is weekly.
A creator with posts is read from its posts; its averages are ignored.
"""

from __future__ import annotations

from datetime import timedelta
from statistics import NormalDist

import numpy as np
import polars as pl

from influencer_engine.registry import BASE_FORMAT
from influencer_engine.schema import AVERAGE_METRICS

__all__ = [
    "AVERAGE_LOG_SPREAD",
    "AVERAGE_POSTS",
    "AVERAGE_SPACING_DAYS",
    "average_columns",
    "average_posts",
    "averaged_creators",
    "spread_multipliers",
    "with_average_posts",
]

AVERAGE_POSTS = 11  # posts an export's averages are read as (an assumption; odd, so that one sits at the median)
AVERAGE_LOG_SPREAD = 0.7  # their log spread around the average (an assumption: a typical creator's, module doc)
AVERAGE_SPACING_DAYS = 7.0
# the post columns the history group reads (features.history.post_metrics), and the average each one comes from
_POST_COLUMNS = ("creator_id", "posted_at", "format", "sponsored", "impressions", "views", "reach", "likes",
                 "comments", "shares", "saves")  # fmt: skip


def average_columns() -> list[str]:
    """The creators' average columns, in contract order."""
    return [f"avg_{m}" for m in AVERAGE_METRICS]


def spread_multipliers(n: int = AVERAGE_POSTS, sigma: float = AVERAGE_LOG_SPREAD) -> np.ndarray:
    """The ``n`` posts' metrics over the average, oldest first: exp(sigma z) at the normal quantiles (i - 1/2) / n,
    scaled to a mean of exactly 1. The latest post sits at the median; earlier ones alternate above and below it,
    moving outward (the higher of each pair first, then the lower first), so the posts show no trend and the last
    five have the median of all of them."""
    z = np.array([NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)])
    m = np.exp(sigma * z)
    m = m / m.mean()
    mid = n // 2
    latest_first = [mid]
    for k in range(1, mid + 1):
        latest_first += [mid + k, mid - k] if k % 2 else [mid - k, mid + k]
    latest_first += list(range(len(latest_first), n))  # an even n: the largest last
    return np.asarray(m[latest_first[:n]][::-1], dtype=np.float64)


def averaged_creators(creators: pl.LazyFrame, posts: pl.LazyFrame) -> pl.DataFrame:
    """The creators read from their averages (averages given, no post at all): creator_id, platform and their
    average columns. Empty without a look at the posts when no creator has an average (the usual base)."""
    given = [c for c in average_columns() if c in set(creators.collect_schema().names())]
    if not given:
        return pl.DataFrame(schema={"creator_id": pl.String, "platform": pl.String})
    with_avg = creators.filter(pl.any_horizontal(pl.col(c).is_not_null() for c in given)).select(
        "creator_id", pl.col("platform").cast(pl.String), *given
    ).collect()  # fmt: skip
    if with_avg.height == 0:
        return with_avg
    return with_avg.join(posts.select("creator_id").unique().collect(), on="creator_id", how="anti")


def average_posts(averaged: pl.DataFrame, posts: pl.LazyFrame, anchors: pl.LazyFrame) -> pl.LazyFrame:
    """The posts that the ``averaged`` creators' averages stand for (``_POST_COLUMNS``, in the posts' types), for
    those with an anchor (``anchors``: creator_id, as_of; the posts end a day before the earliest)."""
    schema = posts.collect_schema()
    avg = {m: (pl.col(f"avg_{m}") if f"avg_{m}" in averaged.columns else pl.lit(None, dtype=pl.Float64))
           for m in AVERAGE_METRICS}  # fmt: skip
    who = averaged.lazy().join(anchors.group_by("creator_id").agg(pl.col("as_of").min()), on="creator_id",
                               how="inner")  # fmt: skip
    mult = spread_multipliers()
    n = len(mult)
    ago = [timedelta(days=1 + AVERAGE_SPACING_DAYS * (n - 1 - i)) for i in range(n)]  # oldest first
    steps = pl.LazyFrame({"_i": list(range(n)), "_m": mult.tolist(), "_ago": ago},
                         schema={"_i": pl.Int64, "_m": pl.Float64, "_ago": pl.Duration("us")})  # fmt: skip
    likes = pl.coalesce(avg["likes"], pl.when(avg["comments"].is_null()).then(avg["engagement"]))
    values = {"views": avg["views"], "likes": likes, "comments": avg["comments"], "shares": avg["shares"]}
    rows = who.join(steps, how="cross").select(
        "creator_id",
        (pl.col("as_of") - pl.col("_ago")).alias("posted_at"),
        pl.col("platform").replace_strict(BASE_FORMAT, default=None).alias("format"),
        pl.lit(None, dtype=pl.Boolean).alias("sponsored"),
        *(pl.lit(None).alias(c) for c in ("impressions", "reach", "saves")),
        *((v * pl.col("_m")).round().alias(c) for c, v in values.items()),
    )
    return rows.select(pl.col(c).cast(schema[c]) for c in _POST_COLUMNS)


def with_average_posts(averaged: pl.DataFrame, posts: pl.LazyFrame, anchors: pl.LazyFrame) -> pl.LazyFrame:
    """``posts`` and the posts of the ``averaged`` creators (``averaged_creators``); ``posts`` as they are when
    there are none."""
    if averaged.height == 0:
        return posts
    return pl.concat([posts.select(_POST_COLUMNS), average_posts(averaged, posts, anchors)], how="vertical")
