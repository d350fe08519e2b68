"""Audience fit and affinity groups: how well a creator's audience matches the brief."""

from __future__ import annotations

import polars as pl

from influencer_engine.schema import AGE_BANDS, AUDIENCE_COUNTRIES, CATEGORIES, GENDERS, audience_columns

__all__ = ["affinity_features", "audience_fit_features"]


def _target_share(columns: tuple[str, ...], vocab: tuple[str, ...], target: str) -> pl.Expr:
    """Share of the audience inside the target list; a null target means everyone (1.0); unknown shares: null."""
    wanted = pl.col(target).str.split("|")
    inside = pl.sum_horizontal(
        pl.when(wanted.list.contains(pl.lit(v))).then(pl.col(c)).otherwise(0.0)
        for c, v in zip(columns, vocab, strict=True)
    )
    return pl.when(pl.col(columns[0]).is_null()).then(None).when(pl.col(target).is_null()).then(1.0).otherwise(inside)


def audience_fit_features(frame: pl.LazyFrame) -> pl.LazyFrame:
    """fit_age, fit_gender, fit_country and their product (independence across dimensions)."""
    groups = audience_columns()
    return frame.with_columns(
        _target_share(groups["audience_age"], AGE_BANDS, "target_age").alias("fit_age"),
        _target_share(groups["audience_gender"], GENDERS, "target_gender").alias("fit_gender"),
        _target_share(groups["audience_country"], AUDIENCE_COUNTRIES, "target_countries").alias("fit_country"),
    ).with_columns((pl.col("fit_age") * pl.col("fit_gender") * pl.col("fit_country")).alias("audience_fit"))


def affinity_features(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Share of the audience interested in the brand's category, and the creator's own niche match."""
    interest = audience_columns()["audience_interest"]
    cat = pl.col("brand_category")
    share = pl.coalesce(
        *(pl.when(cat == c).then(pl.col(col)) for c, col in zip(CATEGORIES, interest, strict=True)),
    )
    niches = pl.col("categories").str.to_lowercase().str.split("|")
    rank = (
        pl.when(cat.is_null() | pl.col("categories").is_null())
        .then(None)
        .when(niches.list.first() == cat)
        .then(2)
        .when(niches.list.contains(cat))
        .then(1)
        .otherwise(0)
    )
    return frame.with_columns(share.alias("affinity"), rank.cast(pl.Int8).alias("category_rank"))
