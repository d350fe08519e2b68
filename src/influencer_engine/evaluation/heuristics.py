"""The rosters planners pick by hand today, for comparison: sort a list, take from the top while money lasts."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.modeling.baselines import Baselines
from influencer_engine.planner.knapsack import Problem

__all__ = ["HEURISTICS", "fill_in_order", "heuristic_orders"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
HEURISTICS = ("top_followers", "top_engagement_rate", "lowest_media_kit_cpe")


def fill_in_order(problem: Problem, order: I64) -> I64:
    """Walk ``order`` and take every candidate that keeps all upper limits (budget, roster size, mix caps)."""
    a = problem.A.tocsc()
    ax = a @ problem.fixed.astype(np.float64)
    take = problem.fixed.copy()
    hi = problem.hi + 1e-9 * np.maximum(1.0, np.abs(problem.hi))
    for j in order:
        if take[j]:
            continue
        lo, up = a.indptr[j], a.indptr[j + 1]
        rows, vals = a.indices[lo:up], a.data[lo:up]
        if np.all(ax[rows] + vals <= hi[rows]):
            ax[rows] += vals
            take[j] = True
    return np.flatnonzero(take).astype(np.int64)


def heuristic_orders(table: pl.DataFrame, features: pl.DataFrame, baselines: Baselines) -> dict[str, I64]:
    """Candidate orders (``table`` rows) by followers, by trailing engagement rate, by media-kit CPE."""
    f = table.select("creator_id").join(features.unique("creator_id", keep="first"), on="creator_id", how="left",
                                        maintain_order="left")  # fmt: skip
    followers = f["followers"].cast(pl.Float64).fill_null(0.0).to_numpy()
    er = f["er_median_last20"].cast(pl.Float64).fill_null(0.0).to_numpy()
    kit = baselines.media_kit_forecast(f, "engagements")
    price = table["price"].cast(pl.Float64).to_numpy()
    cpe = np.where(kit > 0, price / np.maximum(kit, 1e-12), np.inf)
    return {
        "top_followers": np.argsort(-followers, kind="stable").astype(np.int64),
        "top_engagement_rate": np.argsort(-er, kind="stable").astype(np.int64),
        "lowest_media_kit_cpe": np.argsort(cpe, kind="stable").astype(np.int64),
    }
