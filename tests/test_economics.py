"""Plausible economics: the simulated market's tails, what an optimizer picks, why budget is left, spend floors."""

from __future__ import annotations

import polars as pl
import pytest
from tests.test_planner import brief, candidate_table

from influencer_engine.config import SimulatorConfig, TierConfig
from influencer_engine.planner.knapsack import solve_additive
from influencer_engine.planner.problem import build_candidates, explain_infeasible, goal_values, with_budget
from influencer_engine.planner.slack import budget_left
from influencer_engine.simulate.generate import simulate_market
from influencer_engine.simulate.report import calibration_report, format_report, hire_figures


@pytest.fixture(scope="module")
def market(cfg: SimulatorConfig, tiers: TierConfig):  # type: ignore[no-untyped-def]
    return simulate_market(cfg, tiers, 20_000, seed=7)


def test_every_tail_row_is_inside_its_published_range(market, cfg: SimulatorConfig) -> None:  # type: ignore[no-untyped-def]
    rows = calibration_report(cfg, market.creators, market.posts, market.outcomes, market.truth,
                              expected=market.expected_outcomes)  # fmt: skip
    tails = [r for r in rows if " P10" in r.figure or " P90" in r.figure or "P90 /" in r.figure]
    assert len(tails) >= 20
    outside = [(r.figure, r.group, r.simulated, r.low, r.high) for r in tails if not r.inside]
    assert not outside, outside
    text = format_report(rows)
    assert "hires' true CPM P10" in text and "list price P90 / P10" in text
    # the 10th percentile must lie below the range's middle and the 90th above it: a spread, not a point
    cpm = {r.figure: r for r in tails if r.group == "instagram" and "CPM" in r.figure}
    assert cpm["hires' true CPM P10"].high == pytest.approx(cpm["hires' true CPM P90"].low)


def test_hires_funnel_is_plausible_per_creator(market) -> None:  # type: ignore[no-untyped-def]
    hires = hire_figures(market.creators, market.outcomes, market.expected_outcomes)
    assert hires.height == market.outcomes.height  # one row per hire, none lost in the join
    # no hire buys at more than a few tenths of a percent of its impressions, none at a CPM under a dollar
    assert hires["conversions_per_impression"].max() < 0.01  # type: ignore[operator]
    assert hires["cpm"].quantile(0.01) > 1.0  # type: ignore[operator]
    assert hires["conversion_rate"].quantile(0.99) < 0.15  # type: ignore[operator]


def _solve(table: pl.DataFrame, b):  # type: ignore[no-untyped-def]
    cand = build_candidates(table, b)
    values = goal_values(cand.table, b.goal, b.risk, emv_cpm_usd=12.0)
    return cand, values, solve_additive(cand.problem, values)


def test_budget_left_names_the_binding_constraint_and_what_loosening_buys() -> None:
    table = candidate_table(400, 1)
    b = brief(budget=200_000, roster_max=5)
    cand, values, sol = _solve(table, b)
    spend = float(cand.problem.cost[sol.chosen].sum())
    assert spend < 0.5 * b.budget and sol.chosen.size == 5
    left = budget_left(cand, values, sol, b.budget, lambda p: solve_additive(p, values), goal_label="conversions",
                       explain_below=0.95)  # fmt: skip
    assert left is not None
    assert left.binding == ["roster size <= 5"]
    assert left.unspent == pytest.approx(b.budget - spend)
    loose = left.loosen[0]
    assert loose.change == "roster_max 5 -> 8" and loose.extra_spend > 0 and loose.extra_goal > 0
    # the measured gain is what a plan with the loosened limit really adds
    _, _, wider = _solve(table, brief(budget=200_000, roster_max=8))
    assert loose.extra_goal == pytest.approx(wider.value - sol.value, rel=1e-6)
    assert left.reason.startswith(f"${left.unspent:,.0f}") and "roster size <= 5 binds" in left.reason


def test_budget_left_says_when_nothing_is_worth_buying() -> None:
    table = candidate_table(30, 2)
    b = brief(budget=1e9)
    cand, values, sol = _solve(table, b)
    left = budget_left(cand, values, sol, b.budget, lambda p: solve_additive(p, values), goal_label="conversions",
                       explain_below=0.95)  # fmt: skip
    assert left is not None and not left.binding
    assert "every eligible candidate (30) is already in the roster" in left.reason
    # a plan that spends its budget says nothing
    small = brief(budget=float(table["price"].min()) * 1.0001)  # type: ignore[operator]
    cand, values, sol = _solve(table, small)
    assert budget_left(cand, values, sol, small.budget, lambda p: solve_additive(p, values),
                       goal_label="conversions", explain_below=0.95) is None  # fmt: skip


def test_min_spend_share_makes_the_roster_spend_or_says_why_it_cannot() -> None:
    table = candidate_table(300, 3)
    free = _solve(table, brief(budget=50_000, roster_max=40))[2]
    floor = brief(budget=50_000, roster_max=40, min_spend_share=0.9)
    cand, _, sol = _solve(table, floor)
    spend = float(cand.problem.cost[sol.chosen].sum())
    assert spend >= 0.9 * 50_000 - 1e-6
    assert sol.value <= free.value + 1e-6
    assert "spend at least 90%" in cand.rows[0].label
    # the floor follows the budget in what-ifs
    assert with_budget(cand.problem, 10_000).lo[0] == pytest.approx(9_000)
    # the server prepares one problem at an infinite budget for every budget: its floor comes back with a budget
    # (it used to be 0.9 x inf, a floor no roster meets, kept at any budget)
    unbounded = floor.model_copy(update={"budget": float("inf")})  # as the server builds it
    open_cand = build_candidates(table, unbounded)
    assert open_cand.problem.lo[0] == -float("inf")
    at_50k = with_budget(open_cand.problem, 50_000)
    assert at_50k.lo[0] == pytest.approx(45_000)
    open_values = goal_values(open_cand.table, unbounded.goal, unbounded.risk, emv_cpm_usd=12.0)
    assert solve_additive(at_50k, open_values).value == pytest.approx(sol.value, rel=1e-3)
    # a floor the other constraints make impossible is explained with the most they allow
    tight = brief(budget=1e7, roster_max=3, min_spend_share=0.9)
    cand, _, sol = _solve(table, tight)
    assert sol.status == "infeasible"
    reasons = explain_infeasible(cand, 1e7)
    assert any("spend at least 90%" in r and "at most $" in r for r in reasons), reasons
