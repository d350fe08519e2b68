"""The feature builder: contract tables + requests -> one feature row per request, collected once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from influencer_engine.config import TierConfig
from influencer_engine.features.audience import affinity_features, audience_fit_features
from influencer_engine.features.averages import averaged_creators, with_average_posts
from influencer_engine.features.catalog import WINDOWS, catalog, history_name
from influencer_engine.features.creator import (
    CATEGORY_ENUM,
    blend_peers,
    context_features,
    peer_features,
    price_features,
    quality_features,
    scale_features,
)
from influencer_engine.features.history import history_features, recent_interactions
from influencer_engine.registry import BASE_FORMAT
from influencer_engine.schema import derive_tier

__all__ = [
    "FeatureBuild",
    "base_peers",
    "build_features",
    "engagement_rates",
    "feature_columns",
    "partitioned",
    "rates_from_history",
    "request_history",
]

KEY_COLUMNS = ("request_id", "creator_id", "as_of")


def feature_columns() -> list[str]:
    return [s.name for s in catalog()]


def _planned(requests: pl.LazyFrame, creators: pl.LazyFrame) -> pl.LazyFrame:
    """The requests with their planned post's format: the request's, else the creator's base format (every group
    sees the same one). The join keeps the requests' order, so the same input gives rows in the same order."""
    return requests.join(
        creators.select("creator_id", "platform"), on="creator_id", how="left", maintain_order="left"
    ).select(
        *(c for c in requests.collect_schema().names() if c != "format"),
        pl.coalesce(pl.col("format"), pl.col("platform").replace_strict(BASE_FORMAT, default=None)).alias("format"),
    )


def request_history(creators: pl.LazyFrame, posts: pl.LazyFrame, requests: pl.LazyFrame) -> pl.DataFrame:
    """The history group of every request (``history.history_features`` for its planned format), keyed by
    request_id: built once, it serves ``build_features`` (``history=``) and ``rates_from_history`` alike.

    A creator with no posts but its export's averages per post is read from those (``features.averages``);
    ``history_source`` says what each request's history was read from: "posts", "averages" or "none"."""
    return _history(creators, posts, _planned(requests, creators))


def _history(creators: pl.LazyFrame, posts: pl.LazyFrame, planned: pl.LazyFrame) -> pl.DataFrame:
    """``request_history`` of requests already given their planned format (``_planned``)."""
    averaged = averaged_creators(creators, posts)
    read = with_average_posts(averaged, posts, planned.select("creator_id", "as_of"))
    built = history_features(planned, read).collect()
    from_averages = pl.lit(False)
    if averaged.height:
        ids = planned.select("request_id", "creator_id").join(averaged.lazy().select("creator_id"), on="creator_id",
                                                               how="semi").collect()  # fmt: skip
        from_averages = pl.col("request_id").is_in(ids["request_id"].implode())
    source = (
        pl.when(pl.col("posts_before").fill_null(0) == 0)
        .then(pl.lit("none"))
        .when(from_averages)
        .then(pl.lit("averages"))
        .otherwise(pl.lit("posts"))
    )
    return built.with_columns(source.alias("history_source"))


def build_features(
    creators: pl.LazyFrame,
    posts: pl.LazyFrame,
    requests: pl.LazyFrame,
    tiers: TierConfig,
    *,
    peers: pl.DataFrame | None = None,
    history: pl.DataFrame | None = None,
) -> pl.LazyFrame:
    """One row per request whose creator is known: the request keys, then every catalog feature in order.

    ``peers`` (a model bundle's reference table) makes each row independent of the other rows of the build.
    ``history`` (``request_history`` of these requests, or of more) is used instead of building the history group
    from ``posts`` again: it depends only on the posts and the requests, not on the creators' other columns.
    """
    creators = derive_tier(creators, tiers)
    requests = _planned(requests, creators)
    built = (
        (_history(creators, posts, requests) if history is None else history)
        .lazy()
        .drop("history_source", strict=False)
    )
    frame = (
        requests.join(creators, on="creator_id", how="inner", maintain_order="left")
        .join(built, on="request_id", how="left", maintain_order="left")
        .with_columns(pl.col("posts_before").fill_null(0).cast(pl.Int64))
        .pipe(context_features)
        .pipe(audience_fit_features)
        .pipe(affinity_features)
        .pipe(scale_features)
        .pipe(price_features)
        .pipe(quality_features)
        .pipe(peer_features, peers)
    )
    # the brand category is compared as a string above; it leaves as an Enum like the other categories
    return frame.with_columns(pl.col("brand_category").cast(CATEGORY_ENUM)).select(*KEY_COLUMNS, *feature_columns())


def engagement_rates(creators: pl.LazyFrame, posts: pl.LazyFrame, as_of: datetime, tiers: TierConfig) -> pl.LazyFrame:
    """creator_id, platform, tier and ``er_median_last20`` as of ``as_of`` (the value ``build_features`` gives)."""
    hi = WINDOWS[-1]
    inter = history_name("interactions", "median", hi)
    anchors = creators.select("creator_id", pl.lit(as_of).alias("as_of"))
    read = with_average_posts(averaged_creators(creators, posts), posts, anchors)
    return (
        derive_tier(creators.select("creator_id", "platform", "followers", "tier"), tiers)
        .join(recent_interactions(read, as_of), on="creator_id", how="left")
        .select(
            "creator_id",
            "platform",
            "tier",
            (pl.col(inter) / pl.when(pl.col("followers") > 0).then(pl.col("followers"))).alias(f"er_median_last{hi}"),
        )
    )


def rates_from_history(creators: pl.LazyFrame, requests: pl.LazyFrame, history: pl.DataFrame,
                       tiers: TierConfig) -> pl.DataFrame:  # fmt: skip
    """``engagement_rates`` read from a built history (``request_history`` of one request per creator, all as of the
    same time): the same rates without ranking the posts again. A creator with no request or no post before the
    as-of gets a null rate, as there."""
    hi = WINDOWS[-1]
    inter = history_name("interactions", "median", hi)
    medians = (
        requests.select("request_id", "creator_id")
        .join(history.lazy().select("request_id", inter), on="request_id", how="inner")
        .unique("creator_id", keep="any")  # the window's median does not depend on the request's format
        .select("creator_id", inter)
    )
    return (
        derive_tier(creators.select("creator_id", "platform", "followers", "tier"), tiers)
        .join(medians, on="creator_id", how="left")
        .select(
            "creator_id",
            "platform",
            "tier",
            (pl.col(inter) / pl.when(pl.col("followers") > 0).then(pl.col("followers"))).alias(f"er_median_last{hi}"),
        )
        .collect()
    )


def base_peers(creators: pl.LazyFrame, posts: pl.LazyFrame, as_of: datetime, tiers: TierConfig,
               reference: pl.DataFrame | None) -> pl.DataFrame:  # fmt: skip
    """The peers a scored base's creators are compared with: its own rates blended with ``reference``."""
    return blend_peers(reference, engagement_rates(creators, posts, as_of, tiers).collect())


@dataclass(frozen=True)
class FeatureBuild:
    features: pl.DataFrame
    unknown_creator: pl.DataFrame  # requests whose creator is not in the creators table


def partitioned(
    creators: pl.LazyFrame, posts: pl.LazyFrame, requests: pl.LazyFrame, tiers: TierConfig, partitions: int
) -> Iterator[pl.DataFrame]:
    """Build features one creator partition at a time, so memory is bounded by the partition, not the input.

    Peer statistics (er_vs_peers, the shrinkage prior) are computed within the partition; with hash partitions of
    thousands of creators each they match the whole-build values closely but not exactly.
    """
    for i in range(partitions):
        part = pl.col("creator_id").hash(0) % partitions == i
        yield build_features(creators.filter(part), posts.filter(part), requests.filter(part), tiers).collect()
