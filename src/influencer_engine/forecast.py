"""Forecasts for a brief: features as of the brief's start, every KPI with P10/P50/P90, per-cost figures.

This is what `ie forecast` prints for one creator, and what planning and scoring build on for many.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from influencer_engine.brief import Brief
from influencer_engine.config import TierConfig
from influencer_engine.dataset import find_table
from influencer_engine.errors import InputError
from influencer_engine.features.build import build_features
from influencer_engine.features.requests import brief_requests
from influencer_engine.io import scan_table
from influencer_engine.modeling.costs import per_cost
from influencer_engine.modeling.explain import Reason, explain
from influencer_engine.modeling.forecaster import Forecast
from influencer_engine.modeling.matrix import check_features
from influencer_engine.schema import AGE_BANDS, AUDIENCE_COUNTRIES, GENDERS, check_references, validate
from influencer_engine.training.bundle import Bundle

__all__ = [
    "BriefForecast",
    "CandidateBase",
    "describe_target",
    "forecast_base",
    "forecast_brief",
    "forecast_features",
    "load_candidate_base",
]


@dataclass(frozen=True)
class BriefForecast:
    table: pl.DataFrame  # creator_id, platform, tier, format, price, audience_fit, KPIs + bands, cost figures
    features: pl.DataFrame  # the scored feature rows, aligned with table
    rejects: pl.DataFrame
    notes: list[str]


def describe_target(brief: Brief) -> str:
    """'25-34 women in US' style words for a brief's target audience."""
    t = brief.target
    bands = [a.replace("_plus", "+").replace("_", "-") for a in t.age]
    age = "all ages" if set(t.age) == set(AGE_BANDS) else "/".join(bands)
    gender = "" if set(t.gender) == set(GENDERS) else (" women" if t.gender == ("female",) else " men")
    where = "" if set(t.countries) == set(AUDIENCE_COUNTRIES) else f" in {', '.join(t.countries)}"
    return f"{age}{gender}{where}"


def forecast_features(bundle: Bundle, features: pl.DataFrame, brief: Brief | None, *, source: str) -> BriefForecast:
    """Forecast checked feature rows (row rejects for unusable rows); revenue uses the brief's order value."""
    checked = check_features(features, bundle.features, source=source)
    frame = checked.valid
    fc = bundle.forecaster.predict(frame.select(bundle.features))
    notes: list[str] = []
    if brief is not None and brief.average_order_value and "conversions" in fc.mean:
        aov = float(brief.average_order_value)
        fc = Forecast(
            mean={**fc.mean, "revenue": fc.mean["conversions"] * aov},
            quantiles={**fc.quantiles, "revenue": fc.quantiles["conversions"] * aov},
            levels=fc.levels,
        )
        notes.append(f"revenue = conversions x the brief's average order value ${aov:,.2f}")
    price = frame["price"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    costs = per_cost(fc, price, emv_cpm_usd=bundle.forecaster.config.costs.emv_cpm_usd)
    keys = frame.select(
        "creator_id",
        pl.col("platform").cast(pl.String),
        pl.col("tier").cast(pl.String),
        pl.col("format").cast(pl.String),
        pl.col("price").cast(pl.Float64),
        pl.col("audience_fit").cast(pl.Float64),
        pl.col("affinity").cast(pl.Float64),
        pl.col("audience_credibility").cast(pl.Float64),
    )
    table = pl.concat([keys, fc.to_frame(), costs], how="horizontal")
    return BriefForecast(table=table, features=frame, rejects=checked.rejects, notes=notes)


@dataclass(frozen=True)
class CandidateBase:
    """A dataset folder's creators and posts, validated once; forecast for any number of briefs."""

    source: str
    creators: pl.DataFrame  # valid creator rows
    posts: pl.DataFrame  # valid post rows of those creators
    rejects: pl.DataFrame  # creator rows that cannot be forecast, with reasons

    def subset(self, creator_ids: Sequence[str]) -> CandidateBase:
        """The valid rows of ``creator_ids`` only, taken from memory (nothing read or validated again)."""
        keep = pl.col("creator_id").is_in(list(creator_ids))
        posts = self.posts.filter(keep) if "creator_id" in self.posts.columns else self.posts
        return CandidateBase(self.source, self.creators.filter(keep), posts, self.rejects.head(0))


def load_candidate_base(data: Path, *, creator_ids: Sequence[str] | None = None) -> CandidateBase:
    """Read and validate the creators (all, or ``creator_ids``) and their posts of the dataset folder ``data``."""
    cpath, ppath = find_table(data, "creators"), find_table(data, "posts")
    if cpath is None:
        raise InputError(
            f"{data} has no creators table.", fix="point --data at a folder from `ie simulate` or `ie import`"
        )
    creators = scan_table(cpath)
    if creator_ids is not None:
        creators = creators.filter(pl.col("creator_id").is_in(list(creator_ids)))
    cv = validate(creators.collect(), "creators", source=str(cpath))
    if creator_ids is not None:
        found = set(cv.valid["creator_id"].to_list())
        unknown = [c for c in creator_ids if c not in found]
        if unknown:
            raise InputError(f"creator(s) {', '.join(unknown[:5])} not found (or invalid) in {cpath}.",
                             fix="check the id with `ie summary` or the creators table")  # fmt: skip
    ids = cv.valid["creator_id"]
    posts = scan_table(ppath).filter(pl.col("creator_id").is_in(ids.implode())).collect() if ppath else None
    pv = validate(posts, "posts", source=str(ppath)) if posts is not None else None
    post_rows = (check_references(pv, "creator_id", ids, table="posts", source=str(ppath), key=("post_id",)).valid
                 if pv is not None else pl.DataFrame(schema={"post_id": pl.String}))  # fmt: skip
    return CandidateBase(str(data), cv.valid, post_rows, cv.rejects)


def forecast_base(bundle: Bundle, base: CandidateBase, brief: Brief, tiers: TierConfig, *,
                  fmt: str | None = None) -> BriefForecast:  # fmt: skip
    """Forecast every creator of ``base`` for ``brief`` (in the creator's base format, or ``fmt``)."""
    requests = brief_requests(brief, base.creators.lazy())
    if fmt is not None:
        requests = requests.with_columns(pl.lit(fmt).alias("format"))
    feats = build_features(base.creators.lazy(), base.posts.lazy(), requests, tiers, peers=bundle.peers).collect()
    out = forecast_features(bundle, feats, brief, source=f"features of {base.source}")
    rejects = pl.concat([base.rejects, out.rejects], how="vertical_relaxed")
    return BriefForecast(table=out.table, features=out.features, rejects=rejects, notes=out.notes)


def forecast_brief(
    bundle: Bundle,
    data: Path,
    brief: Brief,
    tiers: TierConfig,
    *,
    creator_ids: Sequence[str] | None = None,
    fmt: str | None = None,
) -> BriefForecast:
    """Forecast creators of the dataset folder ``data`` for ``brief`` (all creators, or ``creator_ids``)."""
    return forecast_base(bundle, load_candidate_base(data, creator_ids=creator_ids), brief, tiers, fmt=fmt)


def reasons_for(bundle: Bundle, result: BriefForecast, creator_id: str, kpi: str, brief: Brief,
                top: int = 5) -> list[Reason]:  # fmt: skip
    """Plain-word reasons behind ``kpi``'s forecast for one creator of ``result``."""
    row = result.features.filter(pl.col("creator_id") == creator_id).head(1)
    if row.height == 0:
        raise InputError(f"no forecast for creator {creator_id}.", fix="check the rejects for why it was not scored")
    return explain(bundle.forecaster, kpi, row.select(bundle.features), target=describe_target(brief), top=top)
