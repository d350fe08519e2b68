"""Registries: every platform, format, tier, KPI, cost figure, goal and risk level the engine knows, declared once.

Everything else reads these tables: the table contracts and briefs (their vocabularies), the configs (which keys
each section must name), the models (funnel order and offsets), cost figures, the planner (what a goal is worth
and how it is totalled), evaluation, the CLI and the server's ``/api/options``, through which the web page learns
goals, their KPIs and their cost figures. Adding a row is how a new one enters the engine; ARCHITECTURE.md lists
the few other places that hold what is truly new about it (a simulator's rates, a baseline's rule).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = [
    "BASE_FORMAT",
    "COST_FIGURES",
    "FORMATS",
    "GOALS",
    "GOAL_NAMES",
    "KPIS",
    "KPI_NAMES",
    "PLATFORMS",
    "PLATFORM_TABLE",
    "RISKS",
    "TIERS",
    "CostFigure",
    "Goal",
    "Kpi",
    "Platform",
    "options",
]


# -- platforms and formats ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Platform:
    code: str  # as written in the creators table
    label: str  # as shown to people
    base_format: str  # the format a creator's list price refers to, and the one planned when a brief names none
    profile_url: str = ""  # the public profile's address, {handle} filled in (no leading @): forecast.profile_urls


FORMATS = ("image", "carousel", "video", "story", "short")
PLATFORM_TABLE = (
    Platform("instagram", "Instagram", "image", "https://www.instagram.com/{handle}/"),
    Platform("tiktok", "TikTok", "video", "https://www.tiktok.com/@{handle}"),
    Platform("youtube", "YouTube", "video", "https://www.youtube.com/@{handle}"),
)
PLATFORMS = tuple(p.code for p in PLATFORM_TABLE)
BASE_FORMAT = {p.code: p.base_format for p in PLATFORM_TABLE}

# Tiers in follower order; their bounds are configs/tiers.toml (a configurable banding of followers).
TIERS = ("nano", "micro", "mid", "macro", "mega")


# -- KPIs and the cost figures derived from them -----------------------------------------------------------------
@dataclass(frozen=True)
class Kpi:
    name: str  # column name in outcomes, forecasts and rosters
    unit: str  # what one count is
    offset: str  # the log offset it is modelled on: a feature ("followers", "interactions_anchor"), or an earlier KPI
    decimals: int  # digits a planner sees
    kind: Literal["count", "float"] = "count"  # how the outcomes contract reads it
    meaning: str = ""  # the outcomes column's meaning (`ie contracts outcomes`); default "observed <name>"


# Funnel order: a KPI's offset is a feature or an earlier KPI (configs/models.toml may move offsets, in that order).
KPIS = {
    k.name: k
    for k in (
        Kpi("reach", "people", "followers", 0),
        Kpi("impressions", "impressions", "followers", 0),
        Kpi("engagements", "likes, comments, shares and saves", "interactions_anchor", 0),
        Kpi("clicks", "link clicks", "reach", 0),
        Kpi("conversions", "purchases", "reach", 1),
        Kpi("revenue", "USD", "conversions", 0, kind="float", meaning="attributed revenue (USD)"),
    )
}
KPI_NAMES = tuple(KPIS)


@dataclass(frozen=True)
class CostFigure:
    name: str  # column name: cpm, cpe, ...
    label: str
    kpi: str
    per: float  # results per unit of the figure (1,000 impressions for CPM)
    kind: Literal["cost", "return"]  # price per result (lower is better), or result per price (higher is better)
    decimals: int


COST_FIGURES = {
    c.name: c
    for c in (
        CostFigure("cpm", "CPM", "impressions", 1000.0, "cost", 2),
        CostFigure("cpe", "CPE", "engagements", 1.0, "cost", 2),
        CostFigure("cpc", "CPC", "clicks", 1.0, "cost", 2),
        CostFigure("cpa", "CPA", "conversions", 1.0, "cost", 2),
        CostFigure("roas", "ROAS", "revenue", 1.0, "return", 2),
    )
}


# -- goals -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Goal:
    name: str  # as written in briefs
    label: str  # as shown to people (chart axes, cards)
    kpi: str  # the forecast KPI it is computed from (its reasons, its risk quantile)
    kind: Literal["additive", "coverage"]  # a sum over the roster (knapsack), or people counted once (coverage)
    value: Literal["kpi", "emv", "net_return"]  # a creator's worth: the KPI, its EMV, or its revenue minus price
    column: str  # the per-creator forecast column that shows it (with _p10 and _p90 bands)
    total: str  # the plan total that reports it
    cost_figure: str  # the cost per result shown beside it
    decimals: int


GOALS = {
    g.name: g
    for g in (
        Goal("reach", "unique reach", "reach", "coverage", "kpi", "reach", "unique_reach", "cpm", 0),
        Goal("engagement", "engagements", "engagements", "additive", "kpi", "engagements", "engagements", "cpe", 0),
        Goal("clicks", "clicks", "clicks", "additive", "kpi", "clicks", "clicks", "cpc", 0),
        Goal("conversions", "conversions", "conversions", "additive", "kpi", "conversions", "conversions", "cpa", 1),
        Goal("revenue", "revenue", "revenue", "additive", "kpi", "revenue", "revenue", "roas", 0),
        # ROAS alone would pick the one best ratio: it is planned as net return, revenue minus what creators cost
        Goal("roas", "ROAS", "revenue", "additive", "net_return", "revenue", "roas", "roas", 2),
        Goal("emv", "EMV ($)", "impressions", "additive", "emv", "emv", "emv", "cpm", 0),
    )
}
GOAL_NAMES = tuple(GOALS)

# Risk levels of a brief: the forecast column suffix a roster is planned on.
RISKS = {"expected": "", "p50": "_p50", "p10": "_p10"}


def options() -> dict[str, Any]:
    """The registries as plain JSON (the server's options endpoint; the web page builds its form from it)."""
    return {
        "goals": [asdict(g) for g in GOALS.values()],
        "kpis": [asdict(k) for k in KPIS.values()],
        "cost_figures": [asdict(c) for c in COST_FIGURES.values()],
        "platforms": [asdict(p) for p in PLATFORM_TABLE],
        "formats": list(FORMATS),
        "tiers": list(TIERS),
        "risks": list(RISKS),
    }
