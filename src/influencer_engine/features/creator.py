"""Quality, scale, price and context groups: row-wise features of the creator and the request."""

from __future__ import annotations

import polars as pl

from influencer_engine.features.catalog import SHRINK_PSEUDO_POSTS, WINDOWS, history_name
from influencer_engine.registry import BASE_FORMAT, FORMATS, PLATFORMS, TIERS
from influencer_engine.schema import CATEGORIES

__all__ = [
    "BASE_PEER_STRENGTH",
    "blend_peers",
    "context_features",
    "peer_features",
    "peer_table",
    "price_features",
    "quality_features",
    "scale_features",
]

PLATFORM_ENUM = pl.Enum(list(PLATFORMS))
FORMAT_ENUM = pl.Enum(list(FORMATS))
TIER_ENUM = pl.Enum(list(TIERS))
CATEGORY_ENUM = pl.Enum(list(CATEGORIES))


def scale_features(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_columns(
        pl.col("followers").cast(pl.Float64).log10().alias("log10_followers"),
        (pl.col("followers") * pl.col("audience_credibility")).alias("real_followers_est"),
        pl.col("tier").cast(TIER_ENUM),
    )


def context_features(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Platform, format (the brief's, else the creator's base format), month, season, holiday season."""
    month = pl.col("as_of").dt.month().cast(pl.Int8)
    return frame.with_columns(
        pl.col("platform").cast(PLATFORM_ENUM),
        pl.coalesce(pl.col("format"), pl.col("platform").replace_strict(BASE_FORMAT)).cast(FORMAT_ENUM).alias("format"),
        month.alias("month"),
        ((month % 12) // 3).cast(pl.Int8).alias("season"),
        month.is_in([11, 12]).cast(pl.Int8).alias("holiday_season"),
    )


def _positive(e: pl.Expr) -> pl.Expr:
    """The value where it is above 0, else null: a divisor that never gives inf or NaN."""
    return pl.when(e > 0).then(e)


def price_features(frame: pl.LazyFrame) -> pl.LazyFrame:
    """List price of the request's format and price per follower, per expected view and per interaction."""
    hi = WINDOWS[-1]
    fmt = pl.col("format").cast(pl.String)
    price = pl.coalesce(*(pl.when(fmt == f).then(pl.col(f"price_{f}")) for f in FORMATS))
    views = pl.coalesce(
        pl.col(history_name("views", "median", hi)),
        pl.col(history_name("impressions", "median", hi)),
        pl.col(history_name("reach", "median", hi)),
    )
    return frame.with_columns(price.alias("price")).with_columns(
        (pl.col("price") / _positive(pl.col("followers"))).alias("price_per_follower"),
        (pl.col("price") / _positive(views)).alias("price_per_expected_view"),
        (pl.col("price") / _positive(pl.col(history_name("interactions", "median", hi)))).alias(
            "price_per_expected_interaction"
        ),
    )


def quality_features(frame: pl.LazyFrame) -> pl.LazyFrame:
    hi = WINDOWS[-1]
    likes = pl.col(history_name("likes", "median", hi))
    return frame.with_columns(
        (pl.col(history_name("comments", "median", hi)) / _positive(likes)).alias(f"comments_per_like_last{hi}"),
        (pl.col("following") / _positive(pl.col("followers"))).alias("following_per_follower"),
    )


def peer_table(features: pl.DataFrame) -> pl.DataFrame:
    """Median engagement rate (and log rate) per platform x tier of a feature table: the peers' reference.

    A bundle carries the training table's, so scoring can compare each creator with the market the model was
    trained on instead of with whatever else is in the same batch (which would make results depend on chunking).
    """
    er = f"er_median_last{WINDOWS[-1]}"
    return (
        features.select(pl.col("platform").cast(pl.String), pl.col("tier").cast(pl.String), pl.col(er))
        .group_by("platform", "tier")
        .agg(pl.col(er).median().alias("peer_er"), (pl.col(er) + 1e-6).log().median().alias("peer_log_er"))
        .sort("platform", "tier")
    )


# creators of a platform x tier in the scored base that weigh as much as the model's reference in the blend
BASE_PEER_STRENGTH = 30.0


def blend_peers(reference: pl.DataFrame | None, rates: pl.DataFrame, strength: float = BASE_PEER_STRENGTH
                ) -> pl.DataFrame:  # fmt: skip
    """Peers of a scored base: its own median engagement rate per platform x tier, blended with the model's
    reference (``peer_table`` of the training table) on the log scale with weight n / (n + ``strength``), n the base's
    creators with a rate in the cell. A base from another population (a real export, another country) is compared
    with its own peers once it has enough of them; a small base keeps the reference's.

    ``rates``: platform, tier and ``er_median_last20`` per creator (see ``history.recent_interactions``).
    """
    er = f"er_median_last{WINDOWS[-1]}"
    own = (
        rates.filter(pl.col(er).is_not_null())
        .group_by(pl.col("platform").cast(pl.String), pl.col("tier").cast(pl.String))
        .agg(
            pl.len().alias("_n"),
            pl.col(er).median().alias("_own_er"),
            (pl.col(er) + 1e-6).log().median().alias("_own_log_er"),
        )
    )
    schema = {"platform": pl.String, "tier": pl.String, "peer_er": pl.Float64, "peer_log_er": pl.Float64}
    ref = reference if reference is not None else pl.DataFrame(schema=schema)
    both = own.join(ref, on=["platform", "tier"], how="full", coalesce=True)
    w = (pl.col("_n").fill_null(0) / (pl.col("_n").fill_null(0) + strength)).cast(pl.Float64)
    own_log, ref_log = pl.col("_own_log_er"), pl.col("peer_log_er")
    own_er, ref_er = pl.col("_own_er"), pl.col("peer_er")
    blend_log = (
        pl.when(ref_log.is_null()).then(own_log).when(own_log.is_null()).then(ref_log)
        .otherwise(w * own_log + (1 - w) * ref_log)
    )  # fmt: skip
    blend_er = (
        pl.when(ref_er.is_null()).then(own_er).when(own_er.is_null()).then(ref_er)
        .otherwise((w * own_er.log() + (1 - w) * ref_er.log()).exp())
    )  # fmt: skip
    return both.select("platform", "tier", blend_er.alias("peer_er"), blend_log.alias("peer_log_er")).sort(
        "platform", "tier"
    )


def peer_features(frame: pl.LazyFrame, peers: pl.DataFrame | None = None) -> pl.LazyFrame:
    """Engagement rate, its ratio to same platform x tier peers, and its value shrunk toward the peers.

    Peers are ``peers`` (a reference table from ``peer_table``) when given, else the other rows of the same
    build, each already point-in-time, so the result stays point-in-time.
    """
    hi = WINDOWS[-1]
    er = f"er_median_last{hi}"
    keys = ["platform", "tier"]
    log_er = (pl.col(er) + 1e-6).log()
    n = pl.col("posts_before").clip(upper_bound=hi).cast(pl.Float64)
    frame = frame.with_columns(
        (pl.col(history_name("interactions", "median", hi)) / _positive(pl.col("followers"))).alias(er)
    )
    if peers is None:
        frame = frame.with_columns(pl.col(er).median().over(keys).alias("_peer_er"),
                                   log_er.median().over(keys).alias("_peer_log_er"))  # fmt: skip
    else:
        ref = peers.lazy().select(
            pl.col("platform").alias("_pk"), pl.col("tier").alias("_tk"),
            pl.col("peer_er").alias("_peer_er"), pl.col("peer_log_er").alias("_peer_log_er"),
        )  # fmt: skip
        frame = (
            frame.with_columns(
                pl.col("platform").cast(pl.String).alias("_pk"), pl.col("tier").cast(pl.String).alias("_tk")
            )
            .join(ref, on=["_pk", "_tk"], how="left", maintain_order="left")
            .drop("_pk", "_tk")
        )  # fmt: skip
    prior = pl.col("_peer_log_er")
    # where no same platform x tier peer has a rate: the median over all peers (the reference's, else the build's)
    overall = (pl.lit(peers["peer_log_er"].median(), dtype=pl.Float64) if peers is not None and peers.height
               else prior.median())  # fmt: skip
    return (
        frame.with_columns(
            (pl.col(er) / pl.col("_peer_er")).alias("er_vs_peers"),
            ((n * log_er + SHRINK_PSEUDO_POSTS * prior) / (n + SHRINK_PSEUDO_POSTS)).exp().alias(f"er_last{hi}_shrunk"),
        )
        .with_columns(
            # no history: the peers' value alone
            pl.when(pl.col(er).is_null())
            .then(prior.exp())
            .otherwise(pl.col(f"er_last{hi}_shrunk"))
            .alias(f"er_last{hi}_shrunk")
        )
        # the level the engagement forecast starts from (its offset): the creator's own rate, shrunk toward peers by
        # all its posts (not only the window's): a long history keeps its own level even where the peers are another
        # population's (real Instagram set: MAE log1p against later levels 0.415 with the window's weight, 0.371 so)
        .with_columns(
            (
                pl.col("followers")
                * pl.coalesce(
                    (
                        (pl.col("posts_before").cast(pl.Float64) * log_er + SHRINK_PSEUDO_POSTS * prior)
                        / (pl.col("posts_before").cast(pl.Float64) + SHRINK_PSEUDO_POSTS)
                    ).exp(),
                    prior.exp(),
                    overall.exp(),
                )
            ).alias("interactions_anchor")
        )
        .drop("_peer_er", "_peer_log_er")
    )
