"""Explanations: a forecast's largest feature contributions (LightGBM ``pred_contrib``) in plain words.

Contributions are SHAP values on the log scale, so a group of features moves the forecast by the factor
``exp(sum of its contributions)``: "audience fit with 25-34 women in US: +38% conversions". Features are
grouped by what a planner would recognise (audience fit, interest in the category, size, past results ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from influencer_engine.features.catalog import catalog
from influencer_engine.modeling.forecaster import KPIForecaster

__all__ = ["Reason", "explain"]

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip
_CADENCE = {"posts_before", "history_days", "days_since_last_post", "posts_per_week_last90d"}
_SPONSORED = {"sponsored_gap_last50", "sponsored_share"}


@dataclass(frozen=True)
class Reason:
    group: str
    text: str
    effect: float  # multiplicative effect minus 1 (+0.38 = +38%)
    features: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "text": self.text, "effect": self.effect, "features": list(self.features)}


def _group_of(name: str, spec_group: str) -> str:
    if spec_group == "history":
        if name in _CADENCE:
            return "cadence"
        if name in _SPONSORED:
            return "sponsored"
        return "history"
    if name in ("platform", "format"):
        return "format"
    if name == "brand_category":
        return "category"
    if spec_group == "context":
        return "timing"
    return spec_group


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "unknown"
    v = float(v)
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}".rstrip("0").rstrip(".")


def _pct(v: Any) -> str:
    return "unknown" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.0%}"


_DESCRIBE: dict[str, Callable[[Mapping[str, Any], str], str]] = {
    "audience_fit": lambda r, t: f"audience fit with {t} ({_pct(r.get('audience_fit'))} of the audience in target)",
    "affinity": lambda r, t: (
        f"audience interest in {r.get('brand_category') or 'the category'} ({_pct(r.get('affinity'))} mainly into it)"
    ),
    "category": lambda r, t: f"brand category {r.get('brand_category') or 'unknown'}",
    "quality": lambda r, t: (
        f"audience quality (credibility {_pct(r.get('audience_credibility'))}, "
        f"engagement {_num(r.get('er_vs_peers'))}x peers)"
    ),
    "scale": lambda r, t: f"size ({_num(r.get('followers'))} followers, {r.get('tier')})",
    "price": lambda r, t: f"price signals (list price ${_num(r.get('price'))})",
    "history": lambda r, t: (
        f"recent results (median {_num(r.get('interactions_median_last20'))} interactions, "
        f"{_num(r.get('views_median_last20') or r.get('impressions_median_last20'))} views per post)"
    ),
    "cadence": lambda r, t: (
        f"posting activity ({_num(r.get('posts_per_week_last90d'))} posts a week, {_num(r.get('posts_before'))} posts)"
    ),
    "sponsored": lambda r, t: f"sponsored-post track record ({_pct(r.get('sponsored_share'))} of posts sponsored)",
    "format": lambda r, t: f"{r.get('format')} on {r.get('platform')}",
    "timing": lambda r, t: f"timing ({_MONTHS[int(r['month']) - 1] if r.get('month') else 'unknown month'})",
}


def explain(
    forecaster: KPIForecaster, kpi: str, row: pl.DataFrame, *, target: str = "the target", top: int = 5
) -> list[Reason]:
    """The ``top`` groups of features that moved ``kpi``'s forecast for the single row ``row`` the most."""
    if row.height != 1:
        raise ValueError("explain takes exactly one row")
    return explain_rows(forecaster, kpi, row, target=target, top=top)[0]


def explain_rows(
    forecaster: KPIForecaster, kpi: str, rows: pl.DataFrame, *, target: str = "the target", top: int = 5
) -> list[list[Reason]]:
    """``explain`` for every row of ``rows`` with one batch of contributions."""
    if rows.height == 0:
        return []
    contrib, _ = forecaster.contributions(kpi, rows)
    names = forecaster.features_
    spec = {s.name: s.group for s in catalog()}
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(_group_of(n, spec.get(n, "other")), []).append(i)
    sums = {g: contrib[:, idx].sum(axis=1) for g, idx in groups.items()}
    out = []
    for k, raw in enumerate(rows.iter_rows(named=True)):
        values = {key: (v.value if hasattr(v, "value") else v) for key, v in raw.items()}
        reasons = []
        for g, idx in groups.items():
            describe = _DESCRIBE.get(g, lambda r, t, g=g: g)
            effect = math.expm1(float(sums[g][k]))
            sign = "+" if effect >= 0 else "-"
            reasons.append(Reason(group=g, text=f"{describe(values, target)}: {sign}{abs(effect):.0%} {kpi}",
                                  effect=effect, features=tuple(names[i] for i in idx)))  # fmt: skip
        reasons.sort(key=lambda r: abs(math.log1p(r.effect)), reverse=True)
        out.append(reasons[:top])
    return out
