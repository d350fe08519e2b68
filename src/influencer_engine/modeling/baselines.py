"""Baselines reported beside every model: what planners and platforms forecast with today.

- ``media_kit``: fixed published multipliers of followers (impressions = 15.7% of followers, and so on down
  the funnel), the way commercial platforms "forecast".
- ``trailing_median``: the creator's own median over the last 20 posts (reach, impressions, interactions);
  the funnel KPIs take that reach times the pooled training ratio (clicks per reach, ...). Creators with no
  history fall back to the tier x platform average.
- ``tier_platform``: the training mean of the KPI for the creator's tier and platform.

Every baseline is fitted from training rows only and is plain JSON, so a bundle carries it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.config import MediaKitSection

__all__ = ["BASELINES", "Baselines"]

F64 = npt.NDArray[np.float64]
BASELINES = ("media_kit", "trailing_median", "tier_platform")
_HIST = {
    "reach": ("reach_median_last20", "views_median_last20", "impressions_median_last20"),
    "impressions": ("impressions_median_last20", "views_median_last20", "reach_median_last20"),
}


def _col(frame: pl.DataFrame, name: str) -> F64:
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _first(frame: pl.DataFrame, names: tuple[str, ...]) -> F64:
    out = np.full(frame.height, np.nan)
    for n in names:
        out = np.where(np.isnan(out), _col(frame, n), out)
    return out


def _engagements_median(frame: pl.DataFrame) -> F64:
    inter = _col(frame, "interactions_median_last20")
    extra = np.nan_to_num(_col(frame, "shares_median_last20")) + np.nan_to_num(_col(frame, "saves_median_last20"))
    return inter + extra


def _sum(y: F64) -> float:
    """The exactly rounded sum (``math.fsum``): the same in any row order, so the same data gives the same bits."""
    return math.fsum(y.tolist())


def _group_means(keys: npt.NDArray[np.str_], y: F64) -> dict[str, float]:
    """Mean of ``y`` per key (exact sums, so independent of row order and threads)."""
    order = np.argsort(keys, kind="stable")
    names, starts, counts = np.unique(keys[order], return_index=True, return_counts=True)
    ys = y[order]
    return {str(n): _sum(ys[s : s + c]) / c for n, s, c in zip(names, starts, counts, strict=True)}


@dataclass(frozen=True)
class Baselines:
    """Fitted baseline parameters (JSON-able)."""

    media_kit: dict[str, Any]
    ratios: dict[str, float]  # pooled training KPI / reach (funnel KPIs), revenue per conversion by category
    group_means: dict[str, dict[str, float]]  # kpi -> "platform|tier" -> mean ("platform|*", "*|*" fallbacks)

    @classmethod
    def fit(cls, frame: pl.DataFrame, targets: dict[str, F64], media_kit: MediaKitSection) -> Baselines:
        reach = targets.get("reach")
        ratios: dict[str, float] = {}
        if reach is not None:
            r_ok = np.isfinite(reach)
            for k in ("clicks", "conversions", "revenue"):
                if k in targets:
                    ok = r_ok & np.isfinite(targets[k])
                    ratios[k] = _sum(targets[k][ok]) / max(_sum(reach[ok]), 1e-9)
        if "conversions" in targets and "revenue" in targets:
            cat = frame["brand_category"].cast(pl.String).fill_null("*").to_numpy()
            conv, rev = targets["conversions"], targets["revenue"]
            ok = np.isfinite(conv) & np.isfinite(rev)
            ratios["revenue_per_conversion|*"] = _sum(rev[ok]) / max(_sum(conv[ok]), 1e-9)
            for c in np.unique(cat):
                sel = ok & (cat == c)
                if _sum(conv[sel]) > 0:
                    ratios[f"revenue_per_conversion|{c}"] = _sum(rev[sel]) / _sum(conv[sel])
        groups = cls._groups(frame)
        platforms = np.array([g.split("|")[0] for g in groups], dtype=str)
        means: dict[str, dict[str, float]] = {}
        for k, y in targets.items():
            ok = np.isfinite(y)
            m = {"*|*": _sum(y[ok]) / int(ok.sum()) if ok.any() else 0.0}
            m.update({f"{p}|*": v for p, v in _group_means(platforms[ok], y[ok]).items()})
            m.update(_group_means(groups[ok], y[ok]))
            means[k] = m
        return cls(media_kit=media_kit.model_dump(), ratios=ratios, group_means=means)

    @staticmethod
    def _groups(frame: pl.DataFrame) -> npt.NDArray[np.str_]:
        return (
            frame.select(
                pl.concat_str([pl.col("platform").cast(pl.String), pl.col("tier").cast(pl.String)], separator="|")
            )
            .to_series()
            .to_numpy()
            .astype(str)
        )

    def tier_platform(self, frame: pl.DataFrame, kpi: str) -> F64:
        table = self.group_means[kpi]
        g = self._groups(frame)
        fallback = [table.get(x.split("|")[0] + "|*", table["*|*"]) for x in g]
        return np.array([table.get(x, f) for x, f in zip(g, fallback, strict=True)], dtype=np.float64)

    def media_kit_forecast(self, frame: pl.DataFrame, kpi: str) -> F64:
        return np.asarray(self._media_kit(frame, kpi), dtype=np.float64)

    def _media_kit(self, frame: pl.DataFrame, kpi: str) -> Any:
        mk = self.media_kit
        followers = _col(frame, "followers")
        impressions = followers * mk["impressions_per_follower"]
        reach = impressions * mk["reach_per_impression"]
        if kpi == "impressions":
            return impressions
        if kpi == "reach":
            return reach
        if kpi == "engagements":
            plat = frame["platform"].cast(pl.String).to_numpy()
            rate = np.array([mk["engagements_per_impression"].get(p, np.nan) for p in plat], dtype=np.float64)
            return impressions * rate
        clicks = reach * mk["clicks_per_reach"]
        if kpi == "clicks":
            return clicks
        conversions = clicks * mk["conversions_per_click"]
        if kpi == "conversions":
            return conversions
        return conversions * self._order_value(frame)

    def _order_value(self, frame: pl.DataFrame) -> F64:
        cat = frame["brand_category"].cast(pl.String).fill_null("*").to_list()
        pooled = self.ratios.get("revenue_per_conversion|*", np.nan)
        return np.array([self.ratios.get(f"revenue_per_conversion|{c}", pooled) for c in cat], dtype=np.float64)

    def trailing_median(self, frame: pl.DataFrame, kpi: str) -> F64:
        if kpi == "engagements":
            own = _engagements_median(frame)
        else:
            reach = _first(frame, _HIST["reach"])
            own = _first(frame, _HIST[kpi]) if kpi in _HIST else reach * self.ratios.get(kpi, np.nan)
        return np.where(np.isfinite(own), own, self.tier_platform(frame, kpi))

    def predict(self, name: str, frame: pl.DataFrame, kpi: str) -> F64:
        if name == "media_kit":
            return self.media_kit_forecast(frame, kpi)
        if name == "trailing_median":
            return self.trailing_median(frame, kpi)
        if name == "tier_platform":
            return self.tier_platform(frame, kpi)
        raise KeyError(f"unknown baseline {name}; one of {BASELINES}")

    def to_dict(self) -> dict[str, Any]:
        return {"media_kit": self.media_kit, "ratios": self.ratios, "group_means": self.group_means}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Baselines:
        return cls(media_kit=d["media_kit"], ratios=d["ratios"], group_means=d["group_means"])
