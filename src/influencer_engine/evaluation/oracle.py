"""What an optimizer picks out of the simulated market: the oracle roster's true cost figures against the market's.

An optimizer finds every flaw in a world's tails. For random briefs the oracle (the planner's solver on the true
expected values) picks its roster for conversions, revenue and EMV; its true CPA and ROAS are compared with the
market's, the median simulated campaign (cost over true expected results), and its CPM with the published CPM floors.
Best-in-class campaigns beat the average by a few times (configs/simulator.toml, calibration.tails), not by 50x; these
rows join ``ie simulate --report``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from influencer_engine.brief import Brief, Constraints
from influencer_engine.config import SimulatorConfig, TierConfig
from influencer_engine.evaluation.planner_eval import cost_figures_of, market_median_figures
from influencer_engine.planner.knapsack import solve_additive
from influencer_engine.planner.problem import PlanInfeasible, build_candidates, goal_values
from influencer_engine.registry import COST_FIGURES, KPI_NAMES
from influencer_engine.simulate.briefs import random_context
from influencer_engine.simulate.generate import SimulatedMarket
from influencer_engine.simulate.report import CalibrationRow, base_price
from influencer_engine.simulate.world import World

__all__ = ["oracle_rows"]

# goal planned -> the cost figure it is judged on
_JUDGED = {"conversions": "cpa", "revenue": "roas", "emv": "cpm"}


def _truth_table(world: World, brief: Brief) -> pl.DataFrame:
    """A forecast-like table whose KPIs are the truth: what the oracle plans with."""
    truth = world.expected_outcomes(brief)
    prices = world.creators.select("creator_id", "audience_credibility", base_price().alias("price"))
    return truth.join(prices, on="creator_id", how="left")


def oracle_rows(
    market: SimulatedMarket, cfg: SimulatorConfig, tiers: TierConfig, seed: int, *, briefs: int = 10
) -> list[CalibrationRow]:
    """Per goal, the median over ``briefs`` random briefs of how many times the oracle roster's true figure beats
    the market's median campaign, against the plausible range."""
    world = World(cfg=cfg, tiers=tiers, seed=seed, creators=market.creators, truth=market.truth)
    market_fig = market_median_figures(market.outcomes, market.expected_outcomes)
    rng = np.random.default_rng(seed)
    ratios: dict[str, list[float]] = {g: [] for g in _JUDGED}
    for k in range(briefs):
        context = random_context(world.now, rng, k)
        budget = float(np.exp(rng.uniform(np.log(5_000), np.log(100_000))))
        roster_max = int(rng.integers(10, 41))
        table = _truth_table(world, Brief(**context, goal="conversions"))
        for goal, figure in _JUDGED.items():
            brief = Brief(
                **context, goal=goal, budget=round(budget, -2), constraints=Constraints(roster_max=roster_max)
            )
            try:
                cand = build_candidates(table, brief)
            except PlanInfeasible:
                continue
            values = goal_values(cand.table, goal, "expected", emv_cpm_usd=12.0)
            sol = solve_additive(cand.problem, values, gap=1e-3)
            if sol.status == "infeasible" or not sol.chosen.size:
                continue
            roster = cand.table[sol.chosen.tolist()]
            got = cost_figures_of(
                float(roster["price"].sum()), {k: float(roster[k].fill_null(0.0).sum()) for k in KPI_NAMES}
            )
            mine, theirs = got[figure], market_fig[figure]
            if figure == "cpm":  # checked in dollars (published floors)
                ratio = mine
            else:
                ratio = mine / theirs if COST_FIGURES[figure].kind == "return" else theirs / mine
            if np.isfinite(ratio):
                ratios[goal].append(float(ratio))
    tails = cfg.calibration.tails
    rows = []
    for goal, figure in _JUDGED.items():
        v = ratios[goal]
        median = float(np.median(v)) if v else None
        if figure == "cpm":
            rows.append(CalibrationRow("oracle roster's true CPM (USD)", f"{goal} briefs", median,
                                       *tails.oracle_cpm_usd, len(v), "$"))  # fmt: skip
        else:
            label = f"oracle roster's true {figure.upper()}, x better than the market's"
            rng_x = tails.oracle_vs_market[figure]
            rows.append(CalibrationRow(label, f"{goal} briefs", median, *rng_x, len(v), "x"))
    return rows
