"""The creator directory behind search and profiles: one row per candidate with what a planner filters on.

Built once per candidate base (``Directory.build``): identity (handle, platform link), size, country, categories,
recent results (median interactions and views of the last 20 posts, engagement rate = median interactions over
followers), the quoted price of the base format, audience quality, and flags, each with its reason. For a brief, the
brief's forecast columns (price with its source, audience fit, every KPI with its band, cost figures) are joined on
(``Directory.for_forecast``, cached by the server per forecast), so results can be filtered and sorted by any of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from influencer_engine.brief import Brief
from influencer_engine.errors import InputError
from influencer_engine.forecast import BriefForecast, CandidateBase, profile_urls
from influencer_engine.registry import BASE_FORMAT, COST_FIGURES, KPIS
from influencer_engine.schema import audience_columns

__all__ = ["FLAGS", "Directory", "SearchQuery", "SearchResult"]

RECENT_POSTS = 20  # the posts recent results are read from
LOW_CREDIBILITY = 0.7  # a share of real followers below this is flagged
SHORT_HISTORY = 10  # fewer posts than this is flagged
INACTIVE_DAYS = 60  # no post for this many days before the base's newest post is flagged

FLAGS = {
    "estimated_price": "no quoted price for its base format: estimated from the rate card",
    "assumed_audience": "no audience demographics: an assumed mix for its platform, tier and category",
    "assumed_credibility": "no audience-quality figure: estimated",
    "low_credibility": f"fewer than {LOW_CREDIBILITY:.0%} of its followers look real",
    "short_history": f"fewer than {SHORT_HISTORY} posts of history: its forecasts are less sure",
    "inactive": f"no post in the {INACTIVE_DAYS} days before the newest post of the base",
    "no_history": "no posts at all: forecast from its size and peers only",
}
# columns of the brief's forecast joined onto the directory (KPIs with P10/P90, cost figures, price, fit)
_FORECAST_COLS = ("price", "price_source", "audience_fit", "format",
                  *(c for k in KPIS for c in (k, f"{k}_p10", f"{k}_p90")), *COST_FIGURES, "emv")  # fmt: skip
DIRECTORY_SORTS = ("handle", "followers", "engagement_rate", "median_interactions", "median_views", "posts",
                   "last_post_at", "quoted_price", "audience_credibility")  # fmt: skip


@dataclass(frozen=True)
class SearchQuery:
    q: str | None = None
    platforms: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    followers_min: float | None = None
    followers_max: float | None = None
    er_min: float | None = None  # engagement rate as a share (0.02 = 2%)
    er_max: float | None = None
    price_min: float | None = None
    price_max: float | None = None
    flags: tuple[str, ...] = ()  # must have every one
    without_flags: tuple[str, ...] = ()  # must have none
    ids: tuple[str, ...] = ()  # only these creators (a shortlist's)
    sort: str = "followers"
    desc: bool = True
    offset: int = 0
    limit: int = 25


@dataclass(frozen=True)
class SearchResult:
    total: int
    rows: list[dict[str, Any]]
    sorts: tuple[str, ...]


def _jsonable(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, datetime):
        return v.isoformat()
    return v


class Directory:
    def __init__(self, frame: pl.DataFrame, posts: pl.DataFrame | None = None) -> None:
        self.frame = frame
        # every post, by creator and time: a creator's history is a slice found by binary search, not a filter
        self.posts = posts if posts is not None else pl.DataFrame()

    @classmethod
    def build(cls, base: CandidateBase) -> Directory:
        c = base.creators
        base_price = pl.coalesce(
            [pl.when(pl.col("platform") == p).then(pl.col(f"price_{f}")) for p, f in BASE_FORMAT.items()]
        )
        aud = [col for cols in audience_columns().values() for col in cols]
        # every post once, by creator and time: recent results below, and profiles' history (``history``)
        history = base.posts.select(
            "creator_id", "post_id", "posted_at", "format", "sponsored",
            (pl.col("likes").fill_null(0) + pl.col("comments").fill_null(0)).alias("interactions"),
            pl.coalesce("views", "impressions", "reach").alias("views"),
        ).sort("creator_id", "posted_at")  # fmt: skip
        recent = history.group_by("creator_id").agg(
            pl.len().alias("posts"),
            pl.col("posted_at").max().alias("last_post_at"),
            pl.col("interactions").tail(RECENT_POSTS).median().alias("median_interactions"),
            pl.col("views").tail(RECENT_POSTS).median().alias("median_views"),
        )
        newest = recent["last_post_at"].max() if recent.height else None
        frame = (
            c.select(
                "creator_id",
                "handle",
                "platform",
                "tier",
                "followers",
                "country",
                "language",
                pl.col("categories").fill_null(""),
                base_price.alias("quoted_price"),
                "audience_credibility",
                pl.any_horizontal([pl.col(a).is_not_null() for a in aud]).alias("has_audience")
                if aud
                else pl.lit(False).alias("has_audience"),
            )
            .join(recent, on="creator_id", how="left")
            .with_columns(
                pl.col("posts").fill_null(0),
                pl.col("categories")
                .str.split("|")
                .list.eval(pl.element().str.strip_chars())
                .list.filter(pl.element() != "")
                .alias("category_list"),
                (pl.col("median_interactions") / pl.col("followers").clip(lower_bound=1)).alias("engagement_rate"),
            )
        )
        frame = frame.with_columns(
            profile_urls(frame).fill_null(""),
            pl.col("category_list").list.first().alias("category"),
            pl.concat_list(
                pl.when(pl.col("quoted_price").is_null()).then(pl.lit("estimated_price")),
                pl.when(~pl.col("has_audience")).then(pl.lit("assumed_audience")),
                pl.when(pl.col("audience_credibility").is_null()).then(pl.lit("assumed_credibility")),
                pl.when(pl.col("audience_credibility") < LOW_CREDIBILITY).then(pl.lit("low_credibility")),
                pl.when(pl.col("posts") == 0).then(pl.lit("no_history")),
                pl.when((pl.col("posts") > 0) & (pl.col("posts") < SHORT_HISTORY)).then(pl.lit("short_history")),
                pl.when(
                    pl.lit(newest is not None)
                    & (pl.col("last_post_at") < (pl.lit(newest) - pl.duration(days=INACTIVE_DAYS)))
                ).then(pl.lit("inactive")),
            )
            .list.drop_nulls()
            .alias("flags"),
        )
        return cls(frame, history)

    def history(self, creator_id: str, last: int) -> pl.DataFrame:
        """The creator's ``last`` posts, oldest first."""
        if self.posts.height == 0:
            return self.posts
        ids = self.posts["creator_id"]
        lo = int(ids.search_sorted(creator_id, side="left"))
        hi = int(ids.search_sorted(creator_id, side="right"))
        return self.posts.slice(max(lo, hi - last), min(last, hi - lo)).drop("creator_id")

    # ------------------------------------------------------------------------------------------------- brief
    def for_forecast(self, forecast: BriefForecast) -> pl.DataFrame:
        """The directory with the brief's forecast columns (null for creators that could not be forecast)."""
        cols = [c for c in _FORECAST_COLS if c in forecast.table.columns]
        fc = forecast.table.select("creator_id", *cols).unique("creator_id", keep="first")
        return self.frame.join(fc, on="creator_id", how="left", maintain_order="left")

    # ------------------------------------------------------------------------------------------------ search
    @staticmethod
    def sorts(frame: pl.DataFrame) -> tuple[str, ...]:
        extra = tuple(c for c in _FORECAST_COLS if c in frame.columns and c not in ("price_source", "format"))
        return DIRECTORY_SORTS + extra

    @staticmethod
    def search(frame: pl.DataFrame, q: SearchQuery) -> SearchResult:
        sorts = Directory.sorts(frame)
        if q.sort not in sorts:
            hint = " (forecast figures need a brief)" if q.sort in _FORECAST_COLS else ""
            raise InputError(f"cannot sort by '{q.sort}'{hint}.", fix=f"sort by one of {', '.join(sorts)}")
        price = pl.col("price") if "price" in frame.columns else pl.col("quoted_price")
        cond: list[pl.Expr] = []
        if q.q:
            needle = q.q.strip().lstrip("@").lower()
            cond.append(pl.col("handle").str.to_lowercase().str.contains(needle, literal=True)
                        | pl.col("creator_id").str.to_lowercase().str.contains(needle, literal=True))  # fmt: skip
        for col, values in (("platform", q.platforms), ("tier", q.tiers), ("country", q.countries)):
            if values:
                cond.append(pl.col(col).is_in(list(values)))
        if q.categories:
            cond.append(pl.any_horizontal([pl.col("category_list").list.contains(v) for v in q.categories]))
        for expr, lo, hi in (
            (pl.col("followers"), q.followers_min, q.followers_max),
            (pl.col("engagement_rate"), q.er_min, q.er_max),
            (price, q.price_min, q.price_max),
        ):
            if lo is not None:
                cond.append(expr >= lo)
            if hi is not None:
                cond.append(expr <= hi)
        for f in q.flags:
            cond.append(pl.col("flags").list.contains(f))
        for f in q.without_flags:
            cond.append(~pl.col("flags").list.contains(f))
        if q.ids:
            cond.append(pl.col("creator_id").is_in(list(q.ids)))
        # the filter as one mask, then only the sort keys of the hits are sorted and only the page's rows gathered
        # (sorting whole rows of ~50 columns cost more than the rest of the request)
        keys = frame.select(q.sort, "creator_id").with_row_index("_row")
        if cond:
            keys = keys.filter(frame.select(pl.all_horizontal(cond)).to_series())
        top = keys.sort(q.sort, "creator_id", descending=[q.desc, False], nulls_last=True).slice(q.offset, q.limit)
        page = frame[top["_row"].to_list()].drop("category_list", "has_audience")
        rows = [{k: _jsonable(v) for k, v in r.items()} for r in page.to_dicts()]
        return SearchResult(total=keys.height, rows=rows, sorts=sorts)

    # ----------------------------------------------------------------------------------------------- profile
    def profile(self, base: CandidateBase, creator_id: str, *, forecast: BriefForecast | None = None,
                brief: Brief | None = None, history: int = 120, reasons: int = 5) -> dict[str, Any] | None:  # fmt: skip
        """One creator: identity, flags with reasons, prices, audience (given or assumed), post history and, for a
        brief, the forecasts with bands and the top reasons. None when the creator is not in the base."""
        row = self.frame.filter(pl.col("creator_id") == creator_id)
        if row.height == 0:
            return None
        ident = {k: _jsonable(v) for k, v in row.drop("category_list", "has_audience").row(0, named=True).items()}
        ident["categories"] = row["category_list"][0].to_list()
        creator = base.creators.filter(pl.col("creator_id") == creator_id).row(0, named=True)
        prices = {k.removeprefix("price_"): v for k, v in creator.items() if k.startswith("price_") and v is not None}
        out: dict[str, Any] = {
            "creator": ident,
            "flags": [{"flag": f, "reason": FLAGS[f]} for f in ident["flags"]],
            "prices": {"quoted": prices, "base_format": BASE_FORMAT.get(str(creator["platform"]))},
        }
        given = bool(row["has_audience"][0])
        source = creator
        if not given and forecast is not None:  # the bundle's assumed mix, as the forecast used it
            done = forecast.base.creators.filter(pl.col("creator_id") == creator_id)
            source = done.row(0, named=True) if done.height else creator
        out["audience"] = {
            "source": "given" if given else ("assumed" if source is not creator else "unknown"),
            **{group: {c.split("__", 1)[1]: _jsonable(source.get(c)) for c in cols}
               for group, cols in audience_columns().items()},
        }  # fmt: skip
        posts = self.history(creator_id, history)
        out["posts"] = [{k: _jsonable(v) for k, v in r.items()} for r in posts.to_dicts()]
        out["posts_total"] = int(ident.get("posts") or 0)
        if forecast is not None:
            from influencer_engine.forecast import forecast_creator

            try:
                fc = forecast_creator(forecast, creator_id, top=reasons).json_dict()
            except InputError as exc:
                out["forecast"] = None
                out["forecast_error"] = exc.message
            else:
                out["forecast"] = fc
                price = fc["creator"].get("price_source")
                out["prices"]["brief"] = {"price": fc["creator"].get("price"), "format": fc["creator"].get("format"),
                                          "source": price, "p10": fc["creator"].get("price_p10"),
                                          "p90": fc["creator"].get("price_p90")}  # fmt: skip
                out["brief_id"] = brief.brief_id if brief is not None else None
        return out

    def identities(self, creator_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Handle, profile address, platform, tier and country of each creator id (for shortlists)."""
        keep = ("creator_id", "handle", "url", "platform", "tier", "country")
        sub = self.frame.filter(pl.col("creator_id").is_in(list(creator_ids))).select(keep)
        return {r.pop("creator_id"): r for r in sub.to_dicts()}
