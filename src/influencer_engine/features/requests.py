"""Feature requests: the (creator, brief, as-of) rows to compute features for.

One schema serves the three callers: training (past campaigns, as-of = campaign start), planning (a new brief,
as-of = now) and batch scoring (every candidate, as-of = now).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from influencer_engine.brief import Brief
from influencer_engine.schema import AGE_BANDS, AUDIENCE_COUNTRIES, GENDERS

__all__ = ["REQUEST_SCHEMA", "brief_requests", "outcome_request_id", "snapshot_requests", "training_requests"]

REQUEST_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "creator_id": pl.String(),
    "as_of": pl.Datetime("us", "UTC"),
    "format": pl.String(),  # null: the creator's base format
    "brand_category": pl.String(),  # null: no brief (brief features come out null)
    "target_age": pl.String(),  # '|'-separated; null: everyone
    "target_gender": pl.String(),
    "target_countries": pl.String(),
}


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def outcome_request_id() -> pl.Expr:
    """The request id of a past hire: campaign:creator:format (the outcomes table's key)."""
    return pl.concat_str([pl.col("campaign_id"), pl.col("creator_id"), pl.col("format")], separator=":").alias(
        "request_id"
    )


def training_requests(campaigns: pl.LazyFrame, outcomes: pl.LazyFrame) -> pl.LazyFrame:
    """One request per past hire, as of the campaign's first day (features use only posts before it)."""
    return (
        outcomes.select("campaign_id", "creator_id", "format")
        .join(campaigns, on="campaign_id", how="left")
        .select(
            outcome_request_id(),
            pl.col("creator_id"),
            pl.col("start_date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("as_of"),
            pl.col("format"),
            pl.col("brand_category"),
            pl.col("target_age"),
            pl.col("target_gender"),
            pl.col("target_countries"),
        )
    )


def brief_requests(brief: Brief, creators: pl.LazyFrame, *, as_of: datetime | None = None) -> pl.LazyFrame:
    """One request per creator for a new brief, as of ``as_of`` (default: the brief's start date)."""
    when = as_of or _midnight(brief.start_date)

    def joined(values: tuple[str, ...], vocab: tuple[str, ...]) -> str | None:
        return None if set(values) == set(vocab) else "|".join(values)

    return creators.select(
        pl.concat_str([pl.lit(brief.brief_id), pl.col("creator_id")], separator=":").alias("request_id"),
        pl.col("creator_id"),
        pl.lit(when, dtype=pl.Datetime("us", "UTC")).alias("as_of"),
        pl.lit(None, dtype=pl.String).alias("format"),
        pl.lit(brief.brand_category).alias("brand_category"),
        pl.lit(joined(brief.target.age, AGE_BANDS), dtype=pl.String).alias("target_age"),
        pl.lit(joined(brief.target.gender, GENDERS), dtype=pl.String).alias("target_gender"),
        pl.lit(joined(brief.target.countries, AUDIENCE_COUNTRIES), dtype=pl.String).alias("target_countries"),
    )


def snapshot_requests(creators: pl.LazyFrame, as_of: datetime) -> pl.LazyFrame:
    """One request per creator with no brief (audience fit and affinity come out null)."""
    return creators.select(
        pl.col("creator_id").alias("request_id"),
        pl.col("creator_id"),
        pl.lit(as_of, dtype=pl.Datetime("us", "UTC")).alias("as_of"),
        *(pl.lit(None, dtype=pl.String).alias(c) for c in list(REQUEST_SCHEMA)[3:]),
    )
