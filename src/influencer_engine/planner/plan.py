"""Plan a roster for a brief: forecasts -> eligible candidates -> solver -> roster, totals with bands, exports.

The planner reads forecasts (a ``BriefForecast``), never a model: what a creator is worth comes from its forecast
columns, and its reasons from an explain callback (by default the forecast's own ``reason_texts``). A prepared
problem (``prepare``) holds everything but the budget, so a caller can solve it at many budgets: ``plan`` at the
brief's or another budget, ``whatif`` along a range of budgets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.brief import Brief
from influencer_engine.config import PlannerConfig
from influencer_engine.forecast import AUDIENCE_GROUPS, BriefForecast, band_errors, profile_urls
from influencer_engine.io import write_csv, write_json, write_parquet
from influencer_engine.planner.coverage import AudienceModel, solve_reach
from influencer_engine.planner.knapsack import Problem, Solution, solve_additive
from influencer_engine.planner.problem import (
    CAP_REASON,
    Candidates,
    PlanInfeasible,
    at_budget,
    build_candidates,
    explain_infeasible,
    goal_values,
    with_budget,
)
from influencer_engine.planner.slack import BudgetLeft, budget_left
from influencer_engine.planner.totals import CandidateCounts, PlanTotals, kpi_quantiles, roster_totals
from influencer_engine.registry import COST_FIGURES, GOALS, KPIS
from influencer_engine.schema import audience_columns

__all__ = [
    "Explain",
    "Plan",
    "Prepared",
    "explain_budget",
    "goal_words",
    "plan",
    "plan_candidates",
    "prepare",
    "readable_roster",
    "solve",
    "write_plan",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
# creator ids, the KPI to explain, how many reasons -> one line of reasons per creator
Explain = Callable[[Sequence[str], str, int], list[str]]


@dataclass(frozen=True)
class Prepared:
    """A brief's candidates, goal values and audience model: everything a solve needs but the budget, built once."""

    brief: Brief
    forecast: BriefForecast
    candidates: Candidates
    values: F64
    reach: F64  # the reach each candidate is planned with (the brief's risk level)
    audience: AudienceModel
    quantiles: dict[str, F64]  # kpi -> (rows, 4): P10, P50, P90, mean, >= 0 (see kpi_quantiles)
    errors: dict[str, F64]  # kpi -> (rows, 2): what each band shares with a roster (forecast.band_errors)


@dataclass(frozen=True)
class Plan:
    brief: Brief
    roster: pl.DataFrame
    totals: PlanTotals
    solution: Solution
    filtered: pl.DataFrame
    rejects: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def _audience_model(table: pl.DataFrame, audience: pl.DataFrame, people_pool: float) -> AudienceModel:
    """Factors aligned with ``table``; a creator with unknown shares gets the market's average mix."""
    joined = table.select("creator_id").join(audience, on="creator_id", how="left", maintain_order="left")
    followers = joined["followers"].cast(pl.Float64).fill_null(0.0).to_numpy()
    factors = []
    for g in AUDIENCE_GROUPS:
        m = joined.select(audience_columns()[g]).cast(pl.Float64).to_numpy()
        known = np.isfinite(m).all(axis=1) & (np.nansum(m, axis=1) > 0)
        mean = np.average(m[known], axis=0, weights=followers[known] + 1.0) if known.any() else None
        fill = mean if mean is not None else np.full(m.shape[1], 1.0 / m.shape[1])
        m = np.where(known[:, None], m, fill[None, :])
        factors.append(m / m.sum(axis=1, keepdims=True))
    return AudienceModel.from_shares(tuple(factors), followers, people_pool)


def prepare(forecast: BriefForecast, brief: Brief, cfg: PlannerConfig) -> Prepared:
    """The planning problem of ``brief`` over ``forecast``'s candidates (``brief`` may be a scenario of its brief)."""
    cand = build_candidates(forecast.table, brief)
    emv_cpm = forecast.emv_cpm_usd
    if brief.risk == "p10" and GOALS[brief.goal].kind != "coverage":
        values = roster_downside_values(cand, brief.goal, cfg, emv_cpm_usd=emv_cpm)
    else:
        values = goal_values(cand.table, brief.goal, brief.risk, emv_cpm_usd=emv_cpm)
    reach = goal_values(cand.table, "reach", brief.risk, emv_cpm_usd=emv_cpm)
    # segment sizes come from every candidate forecast (the market); the eligible rows keep their own factors
    market = _audience_model(forecast.table, forecast.audience, cfg.audience.people_pool)
    eligible = forecast.table["creator_id"].is_in(cand.table["creator_id"].implode()).to_numpy()
    audience = market.take(np.flatnonzero(eligible))
    return Prepared(brief, forecast, cand, values, reach, audience, kpi_quantiles(cand.table),
                    band_errors(forecast, cand.table))  # fmt: skip


# P10 of a normal total: mean - 1.2816 sd
_Z10 = 1.2815515655446004
_DOWNSIDE_ROUNDS = 3


def roster_downside_values(cand: Candidates, goal: str, cfg: PlannerConfig, *, emv_cpm_usd: float) -> F64:
    """Values whose sum over a roster approximates the roster's own P10 (risk = "p10" for an additive goal).

    The P10 of a roster's total is about ``sum(mean) - z * sqrt(sum(var))`` (independent creators; each creator's
    variance from its P10-P90 band, a normal's 2 x 1.2816 sd). Summing each creator's own P10 instead punishes
    every creator for its whole spread, as if all fell short together: it drops small creators (a P10 of 0) and
    concentrates the roster on a few big ones, whose shortfalls do not average out. The square root is linearised
    at the roster's own variance, ``sqrt(V) ~ sqrt(V0) + (V - V0) / (2 sqrt(V0))``, so each creator is worth its mean
    less ``z * var / (2 sqrt(V0))``: a linear objective the same solver maximises. V0 starts from the
    expected-value roster and is updated from each new roster (a few rounds; it settles in one or two).
    """
    table = cand.table
    mean = goal_values(table, goal, "expected", emv_cpm_usd=emv_cpm_usd)
    lo = goal_values(table, goal, "p10", emv_cpm_usd=emv_cpm_usd)
    hi = goal_values(table, goal, "p90", emv_cpm_usd=emv_cpm_usd)
    var = ((hi - lo) / (2 * _Z10)) ** 2
    s = cfg.solver
    prove = s.proof == "full"
    chosen = solve_additive(cand.problem, mean, gap=s.mip_rel_gap, time_limit=s.time_limit_s, prove=prove).chosen
    values = mean
    for _ in range(_DOWNSIDE_ROUNDS):
        v0 = float(var[chosen].sum())
        if v0 <= 0:
            break
        values = mean - _Z10 * var / (2 * np.sqrt(v0))
        nxt = solve_additive(cand.problem, values, gap=s.mip_rel_gap, time_limit=s.time_limit_s, prove=prove).chosen
        if set(nxt.tolist()) == set(chosen.tolist()):
            break
        chosen = nxt
    return np.asarray(values, dtype=np.float64)


def solve(prep: Prepared, cfg: PlannerConfig, *, budget: float | None = None,
          incumbent: I64 | None = None) -> Solution:  # fmt: skip
    problem = prep.candidates.problem if budget is None else with_budget(prep.candidates.problem, budget)
    return _solve_problem(prep, cfg, problem, incumbent)


def _solve_problem(prep: Prepared, cfg: PlannerConfig, problem: Problem, incumbent: I64 | None = None) -> Solution:
    s = cfg.solver
    if GOALS[prep.brief.goal].kind == "coverage":
        return solve_reach(problem, prep.audience, prep.reach, gap=s.mip_rel_gap, time_limit=s.time_limit_s,
                           rounds=s.max_reach_rounds, incumbent=incumbent)  # fmt: skip
    return solve_additive(problem, prep.values, gap=s.mip_rel_gap, time_limit=s.time_limit_s, incumbent=incumbent,
                          prove=s.proof == "full")  # fmt: skip


def plan_candidates(prep: Prepared, cfg: PlannerConfig, *, budget: float | None = None,
                    incumbent: I64 | None = None) -> tuple[Solution, PlanTotals]:  # fmt: skip
    """Solve at ``budget`` (default: the brief's) and total the roster; raises PlanInfeasible with reasons."""
    b = prep.brief.budget if budget is None else budget
    sol = solve(prep, cfg, budget=b, incumbent=incumbent)
    if sol.status == "infeasible":
        cand = prep.candidates if budget is None else at_budget(prep.candidates, b)
        raise PlanInfeasible(explain_infeasible(cand, b), fix="relax the constraints named, or raise the budget",
                             filtered=cand.filtered)  # fmt: skip
    mc = cfg.monte_carlo
    totals = roster_totals(prep.candidates.table, prep.quantiles, prep.audience, sol.chosen, sol, goal=prep.brief.goal,
                           budget=b, emv_cpm_usd=prep.forecast.emv_cpm_usd, draws=mc.draws, seed=mc.seed,
                           errors=prep.errors)  # fmt: skip
    return sol, totals


def goal_words(goal: str) -> str:
    """What a goal's solver objective counts, in words ("conversions", "net return ($)")."""
    g = GOALS[goal]
    return "net return ($)" if g.value == "net_return" else g.label


def explain_budget(prep: Prepared, cfg: PlannerConfig, sol: Solution, budget: float | None = None) -> BudgetLeft | None:
    """Why the roster ``sol`` leaves budget unspent (None when it spends at least ``budget.explain_below_share``)."""
    b = prep.brief.budget if budget is None else budget
    cand = prep.candidates if budget is None else at_budget(prep.candidates, b)
    spend = float(cand.problem.cost[sol.chosen].sum()) if sol.chosen.size else 0.0
    c = prep.brief.constraints
    cap = None
    capped = cand.filtered["reason"].str.starts_with(CAP_REASON).any()
    if c.max_spend_per_creator is not None and capped:

        def replan(new_cap: float) -> tuple[float, float] | None:
            looser = prep.brief.model_copy(update={"budget": b, "constraints": c.model_copy(
                update={"max_spend_per_creator": new_cap})})  # fmt: skip
            try:
                p2 = prepare(prep.forecast, looser, cfg)
                s2 = solve(p2, cfg)
            except PlanInfeasible:
                return None
            if s2.status == "infeasible":
                return None
            return float(p2.candidates.problem.cost[s2.chosen].sum()) - spend, float(s2.value - sol.value)

        cap = (float(c.max_spend_per_creator), replan)
    return budget_left(cand, prep.values, sol, b, lambda p: _solve_problem(prep, cfg, p, sol.chosen),
                       goal_label=goal_words(prep.brief.goal), explain_below=cfg.budget.explain_below_share,
                       cap=cap)  # fmt: skip


def plan(prep: Prepared, cfg: PlannerConfig, *, budget: float | None = None, reasons: int = 3,
         explain: Explain | None = None) -> Plan:  # fmt: skip
    """The roster for the prepared brief at ``budget`` (default: the brief's), with totals, the certified gap and
    each creator's top ``reasons`` from ``explain`` (default: the forecast's own reasons)."""
    brief = prep.brief if budget is None else prep.brief.model_copy(update={"budget": budget})
    sol, totals = plan_candidates(prep, cfg, budget=brief.budget)
    forecast, cand = prep.forecast, prep.candidates
    scored, rejected = forecast.table.height, forecast.rejects.height
    over = int((cand.table["price"] > brief.budget).sum())  # priced above this budget (a prep for a larger one)
    counts = CandidateCounts(rows_in=scored + rejected, rejected=rejected, filtered=cand.filtered.height + over,
                             eligible=cand.table.height - over)  # fmt: skip
    left = explain_budget(prep, cfg, sol, brief.budget)
    totals = totals.model_copy(update={"candidates": counts, "budget_left": left})
    goal = GOALS[brief.goal]
    roster = cand.table[sol.chosen.tolist()]
    roster = roster.with_columns(pl.Series("goal_value", prep.values[sol.chosen]))
    # who they are: the handle and the profile's address, beside the id
    creators = forecast.base.creators
    handles = creators.select(
        "creator_id", pl.col("handle") if "handle" in creators.columns else pl.lit(None, pl.String).alias("handle")
    )
    who = roster.select("creator_id", "platform").join(handles, on="creator_id", how="left", maintain_order="left")
    roster = roster.insert_column(1, who["handle"]).insert_column(2, profile_urls(who))
    if reasons and roster.height:
        why = (explain or forecast.reason_texts)(roster["creator_id"].to_list(), goal.kpi, reasons)
        roster = roster.with_columns(pl.Series("reasons", why, dtype=pl.String))
    order = "goal_value" if goal.kind != "coverage" else "reach"
    roster = roster.sort(order, descending=True)
    notes = list(forecast.notes)
    if brief.risk != "expected":
        if brief.risk == "p10" and GOALS[brief.goal].kind != "coverage":
            notes.append("planned on the roster's P10 (risk-averse: each creator's mean less its share of the "
                         "roster's spread, so shortfalls can average out)")  # fmt: skip
        else:
            notes.append(f"planned on each creator's {brief.risk.upper()} forecast (risk-averse)")
    if goal.value == "net_return":
        notes.append(f"{goal.label} is planned as net return (revenue minus spend), so every creator must pay back")
    # every row not planned is accounted for: creators filtered (with the brief's reason) or rejected, posts rejected
    rejects = pl.concat([forecast.rejects, forecast.base.post_rejects], how="diagonal_relaxed")
    return Plan(brief, roster, totals, sol, cand.filtered, rejects, notes)


def _unit(kpi: str) -> str:
    """The column-name suffix of a KPI's unit where its name does not say it: revenue_usd, reach_people."""
    return {"USD": "_usd", "people": "_people"}.get(KPIS[kpi].unit, "")


def readable_roster(roster: pl.DataFrame, goal: str) -> pl.DataFrame:
    """The roster as a planner reads it (roster.csv): identity first, units in the column names, sensible digits
    (counts whole, money in cents, shares as percent with one decimal), P10/P90 bands beside each KPI, cost figures
    with their value if the KPI lands at its P90 or P10, and the reasons. roster.parquet keeps every column at full
    precision. The README's data dictionary describes each column."""
    g = GOALS[goal]
    cols: list[pl.Expr] = []

    def add(name: str, expr: pl.Expr) -> None:
        cols.append(expr.alias(name))

    have = set(roster.columns)
    for c in ("creator_id", "handle"):
        if c in have:
            add(c, pl.col(c))
    if "url" in have:
        add("profile_url", pl.col("url"))
    for c in ("platform", "tier", "format"):
        if c in have:
            add(c, pl.col(c))
    add("price_usd", pl.col("price").round(2))
    for c in ("price_source",):
        if c in have:
            add(c, pl.col(c))
    for k, kpi in KPIS.items():
        if k not in have:
            continue
        d = 2 if kpi.unit == "USD" else kpi.decimals
        for suffix in ("", "_p10", "_p90"):
            value = pl.col(f"{k}{suffix}").round(d)
            add(f"{k}{_unit(k)}{suffix}", value.cast(pl.Int64) if d == 0 else value)
    for name, fig in COST_FIGURES.items():
        if name not in have:
            continue
        unit = "_usd" if fig.kind == "cost" else ""
        add(f"{name}{unit}", pl.col(name).round(fig.decimals))
        add(f"{name}{unit}_if_p90", pl.col(f"{name}_good").round(fig.decimals))
        add(f"{name}{unit}_if_p10", pl.col(f"{name}_bad").round(fig.decimals))
    if "emv" in have:
        for suffix in ("", "_p10", "_p90"):
            add(f"emv_usd{suffix}", pl.col(f"emv{suffix}").round(2))
    if g.value != "kpi" and "goal_value" in have:  # a goal worth more than one KPI column (net return): its value
        add(f"goal_{g.name}_usd", pl.col("goal_value").round(2))
    for c, name in (("audience_fit", "audience_fit_pct"), ("affinity", "category_interest_pct"),
                    ("audience_credibility", "real_followers_pct")):  # fmt: skip
        if c in have:
            add(name, (100 * pl.col(c)).round(1))
    for c in ("audience_source", "credibility_source", "history_source", "reasons"):
        if c in have:
            add(c, pl.col(c))
    return roster.select(cols)


def write_plan(result: Plan, out: Path) -> dict[str, Path]:
    """roster.csv (readable_roster), roster.parquet (every column, full precision), totals.json, filtered.parquet,
    rejects.parquet (atomic writes)."""
    doc = {"brief": json.loads(result.brief.model_dump_json()), "totals": result.totals.json_dict(),
           "notes": result.notes,
           "roster": result.roster.select("creator_id", "platform", "tier", "price").to_dicts()}  # fmt: skip
    return {
        "roster.csv": write_csv(readable_roster(result.roster, result.brief.goal), out / "roster.csv"),
        "roster.parquet": write_parquet(result.roster, out / "roster.parquet"),
        "totals.json": write_json(doc, out / "totals.json"),
        "filtered.parquet": write_parquet(result.filtered, out / "filtered.parquet"),
        "rejects.parquet": write_parquet(result.rejects, out / "rejects.parquet"),
    }
