"""Plan a roster for a brief: forecasts -> eligible candidates -> solver -> roster, totals with bands, exports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.brief import Brief
from influencer_engine.config import KPI_NAMES, PlannerConfig, TierConfig
from influencer_engine.dataset import find_table
from influencer_engine.errors import InputError
from influencer_engine.forecast import BriefForecast, describe_target, forecast_brief
from influencer_engine.io import scan_table, write_csv, write_json, write_parquet
from influencer_engine.modeling.explain import explain_rows
from influencer_engine.planner.coverage import AudienceModel, solve_reach
from influencer_engine.planner.knapsack import Solution, solve_additive
from influencer_engine.planner.problem import (
    GOAL_KPI,
    Candidates,
    PlanInfeasible,
    at_budget,
    build_candidates,
    explain_infeasible,
    goal_values,
    with_budget,
)
from influencer_engine.schema import audience_columns
from influencer_engine.training.bundle import Bundle

__all__ = ["Plan", "PlanInputs", "audience_table", "load_inputs", "plan", "plan_candidates", "prepare", "write_plan"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_Z90 = 1.2815515655446004  # standard normal quantile of 0.9
AUDIENCE_GROUPS = ("audience_age", "audience_country", "audience_interest")


@dataclass(frozen=True)
class PlanInputs:
    """Forecasts for a brief plus each candidate's audience shares (for overlap)."""

    forecast: BriefForecast
    audience: pl.DataFrame  # creator_id, followers and the aud_age__/aud_country__/aud_interest__ shares


@dataclass(frozen=True)
class Prepared:
    """A brief's candidates, goal values and audience model: everything a solve needs, built once."""

    brief: Brief
    candidates: Candidates
    values: F64
    reach: F64  # the reach each candidate is planned with (the brief's risk level)
    audience: AudienceModel
    emv_cpm_usd: float
    quantiles: dict[str, F64]  # kpi -> (rows, 4): P10, P50, P90, mean, >= 0 (see kpi_quantiles)


@dataclass(frozen=True)
class Plan:
    brief: Brief
    roster: pl.DataFrame
    totals: dict[str, Any]
    solution: Solution
    filtered: pl.DataFrame
    rejects: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def audience_table(data: Path) -> pl.DataFrame:
    """creator_id, followers and the audience shares overlap is estimated from, from ``data``'s creators table."""
    cpath = find_table(data, "creators")
    if cpath is None:
        raise InputError(f"{data} has no creators table.", fix="point --data at a folder from `ie simulate`")
    cols = [c for g in AUDIENCE_GROUPS for c in audience_columns()[g]]
    return scan_table(cpath).select("creator_id", "followers", *cols).collect()


def load_inputs(bundle: Bundle, data: Path, brief: Brief, tiers: TierConfig) -> PlanInputs:
    """Forecast every creator of the dataset folder ``data`` for ``brief`` and read their audience shares."""
    return PlanInputs(forecast=forecast_brief(bundle, data, brief, tiers), audience=audience_table(data))


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


def prepare(inputs: PlanInputs, brief: Brief, cfg: PlannerConfig, *, emv_cpm_usd: float) -> Prepared:
    cand = build_candidates(inputs.forecast.table, brief)
    values = goal_values(cand.table, brief.goal, brief.risk, emv_cpm_usd=emv_cpm_usd)
    reach = goal_values(cand.table, "reach", brief.risk, emv_cpm_usd=emv_cpm_usd)
    # segment sizes come from every candidate forecast (the market); the eligible rows keep their own factors
    market = _audience_model(inputs.forecast.table, inputs.audience, cfg.audience.people_pool)
    eligible = inputs.forecast.table["creator_id"].is_in(cand.table["creator_id"].implode()).to_numpy()
    audience = market.take(np.flatnonzero(eligible))
    return Prepared(brief, cand, values, reach, audience, emv_cpm_usd, kpi_quantiles(cand.table))


def kpi_quantiles(table: pl.DataFrame) -> dict[str, F64]:
    """Each KPI's P10, P50, P90 and mean per row as one (rows, 4) array (missing as 0, negatives clipped)."""
    out: dict[str, F64] = {}
    for kpi in KPI_NAMES:
        cols = [f"{kpi}_p10", f"{kpi}_p50", f"{kpi}_p90", kpi]
        if all(c in table.columns for c in cols):
            m = table.select(pl.col(c).cast(pl.Float64).fill_null(0.0) for c in cols).to_numpy()
            out[kpi] = np.maximum(np.asarray(m, dtype=np.float64), 0.0)
    return out


def solve(prep: Prepared, cfg: PlannerConfig, *, budget: float | None = None,
          incumbent: I64 | None = None) -> Solution:  # fmt: skip
    problem = prep.candidates.problem if budget is None else with_budget(prep.candidates.problem, budget)
    s = cfg.solver
    if prep.brief.goal == "reach":
        return solve_reach(problem, prep.audience, prep.reach, gap=s.mip_rel_gap, time_limit=s.time_limit_s,
                           rounds=s.max_reach_rounds, incumbent=incumbent)  # fmt: skip
    return solve_additive(problem, prep.values, gap=s.mip_rel_gap, time_limit=s.time_limit_s, incumbent=incumbent)


def _draws(quantiles: F64, draws: int, rng: np.random.Generator) -> F64:
    """(draws, rows) samples of a KPI: a split log-normal through each row's P10/P50/P90 on log1p scale.

    ``quantiles`` is (rows, 4): P10, P50, P90 and the forecast mean (see ``kpi_quantiles``).
    """
    q = np.log1p(quantiles[:, :3]).T
    z = rng.standard_normal((draws, quantiles.shape[0]))
    lo_s, hi_s = (q[1] - q[0]) / _Z90, (q[2] - q[1]) / _Z90
    x = np.expm1(q[1] + z * np.where(z < 0, lo_s, hi_s))
    # the shape comes from the quantiles, the level from the forecast mean: draws average to the expected value
    mean = quantiles[:, 3]
    drawn = x.mean(axis=0)
    return np.asarray(x * np.where(drawn > 0, mean / np.where(drawn > 0, drawn, 1.0), 0.0), dtype=np.float64)


def _band(x: F64) -> dict[str, float]:
    p10, p50, p90 = np.quantile(x, [0.1, 0.5, 0.9])
    return {"p10": float(p10), "p50": float(p50), "p90": float(p90)}


def roster_totals(prep: Prepared, chosen: I64, cfg: PlannerConfig, budget: float) -> dict[str, Any]:
    """Spend, unique reach and every KPI summed over the roster, each with a Monte Carlo P10-P90 band."""
    table = prep.candidates.table[chosen.tolist()]
    rng = np.random.default_rng(cfg.monte_carlo.seed)
    draws = cfg.monte_carlo.draws
    spend = float(table["price"].sum()) if table.height else 0.0
    out: dict[str, Any] = {"creators": table.height, "spend": spend, "budget": budget,
                           "spend_share": spend / budget if budget else float("nan")}  # fmt: skip
    samples: dict[str, F64] = {}
    for kpi in KPI_NAMES:
        if kpi not in prep.quantiles:
            continue
        s = _draws(prep.quantiles[kpi][chosen], draws, rng) if table.height else np.zeros((draws, 0))
        samples[kpi] = s
        out[kpi] = {"expected": float(table[kpi].fill_null(0.0).sum()), **_band(s.sum(axis=1))}
    aud = prep.audience.take(chosen)
    r_exp = np.nan_to_num(table["reach"].cast(pl.Float64).to_numpy()) if table.height else np.zeros(0)
    ur = aud.unique_reach(np.arange(len(chosen)), r_exp)
    per_draw = aud.covered_many(np.maximum(samples["reach"], 0.0)) if table.height else np.zeros(1)
    duplication = 1.0 - ur / max(float(r_exp.sum()), 1e-9) if table.height else 0.0
    out["unique_reach"] = {"expected": ur, **_band(per_draw), "duplication": duplication}
    if "impressions" in samples:
        emv = samples["impressions"].sum(axis=1) * prep.emv_cpm_usd / 1000.0
        out["emv"] = {"expected": out["impressions"]["expected"] * prep.emv_cpm_usd / 1000.0, **_band(emv)}
    if "revenue" in samples and spend > 0:
        rev = samples["revenue"].sum(axis=1)
        out["roas"] = {"expected": out["revenue"]["expected"] / spend, **_band(rev / spend)}
    if "conversions" in samples and out["conversions"]["expected"] > 0:
        out["cpa"] = {"expected": spend / out["conversions"]["expected"]}
    return out


def goal_total(prep: Prepared, totals: dict[str, Any]) -> dict[str, float]:
    """The brief's goal over the roster: expected value and band, in the goal's own terms."""
    goal = prep.brief.goal
    if goal == "reach":
        return dict(totals["unique_reach"])
    if goal == "roas":
        return dict(totals.get("roas", {"expected": 0.0}))
    if goal == "emv":
        return dict(totals["emv"])
    return dict(totals[GOAL_KPI[goal]])


def plan_candidates(prep: Prepared, cfg: PlannerConfig, *, budget: float | None = None,
                    incumbent: I64 | None = None) -> tuple[Solution, dict[str, Any]]:  # fmt: skip
    """Solve at ``budget`` (default: the brief's) and total the roster; raises PlanInfeasible with reasons."""
    b = prep.brief.budget if budget is None else budget
    sol = solve(prep, cfg, budget=b, incumbent=incumbent)
    if sol.status == "infeasible":
        cand = prep.candidates if budget is None else at_budget(prep.candidates, b)
        raise PlanInfeasible(explain_infeasible(cand, b),
                             fix="relax the constraints named, or raise the budget")  # fmt: skip
    totals = roster_totals(prep, sol.chosen, cfg, b)
    totals["goal"] = {"name": prep.brief.goal, **goal_total(prep, totals)}
    totals["solver"] = {"status": sol.status, "objective": sol.value, "bound": sol.bound,
                        "certified_gap": sol.gap, **sol.stats}  # fmt: skip
    return sol, totals


def plan(bundle: Bundle, inputs: PlanInputs, brief: Brief, cfg: PlannerConfig, *, reasons: int = 3,
         prep: Prepared | None = None, reason_cache: dict[str, str] | None = None) -> Plan:  # fmt: skip
    """The roster for a brief, with totals, the certified gap and each creator's top reasons.

    ``prep`` may be one prepared for the same brief at another budget (a server keeps one per brief and moves
    only the budget); ``reason_cache`` keeps each creator's reasons for this forecast and goal across calls.
    """
    if prep is None:
        prep = prepare(inputs, brief, cfg, emv_cpm_usd=bundle.forecaster.config.costs.emv_cpm_usd)
    sol, totals = plan_candidates(prep, cfg, budget=brief.budget)
    scored, rejected = inputs.forecast.table.height, inputs.forecast.rejects.height
    cand = prep.candidates
    over = int((cand.table["price"] > brief.budget).sum())  # priced above this budget (a prep for a larger one)
    totals["candidates"] = {"rows_in": scored + rejected, "rejected": rejected, "filtered": cand.filtered.height + over,
                            "eligible": cand.table.height - over}  # fmt: skip
    roster = prep.candidates.table[sol.chosen.tolist()]
    roster = roster.with_columns(pl.Series("goal_value", prep.values[sol.chosen]))
    if reasons and roster.height:
        kpi = GOAL_KPI[brief.goal]
        cache: dict[str, str] = {} if reason_cache is None else reason_cache
        ids = roster["creator_id"].to_list()
        missing = [c for c in dict.fromkeys(ids) if c not in cache]
        if missing:
            rows = pl.DataFrame({"creator_id": missing}).join(
                inputs.forecast.features.unique("creator_id", keep="first"), on="creator_id", how="left",
                maintain_order="left").select(bundle.features)  # fmt: skip
            found = explain_rows(bundle.forecaster, kpi, rows, target=describe_target(brief), top=reasons)
            for c, rs in zip(missing, found, strict=True):
                cache[c] = "; ".join(r.text for r in rs)
        roster = roster.with_columns(pl.Series("reasons", [cache[c] for c in ids]))
    order = "goal_value" if brief.goal != "reach" else "reach"
    roster = roster.sort(order, descending=True)
    notes = list(inputs.forecast.notes)
    if brief.risk != "expected":
        notes.append(f"planned on each creator's {brief.risk.upper()} forecast (risk-averse)")
    if brief.goal == "roas":
        notes.append("ROAS is planned as net return (revenue minus spend), so every creator must pay back")
    return Plan(brief, roster, totals, sol, prep.candidates.filtered, inputs.forecast.rejects, notes)


def write_plan(result: Plan, out: Path) -> dict[str, Path]:
    """roster.csv, roster.parquet, totals.json, filtered.parquet, rejects.parquet (atomic writes)."""
    doc = {"brief": json.loads(result.brief.model_dump_json()), "totals": result.totals, "notes": result.notes,
           "roster": result.roster.select("creator_id", "platform", "tier", "price").to_dicts()}  # fmt: skip
    return {
        "roster.csv": write_csv(result.roster, out / "roster.csv"),
        "roster.parquet": write_parquet(result.roster, out / "roster.parquet"),
        "totals.json": write_json(doc, out / "totals.json"),
        "filtered.parquet": write_parquet(result.filtered, out / "filtered.parquet"),
        "rejects.parquet": write_parquet(result.rejects, out / "rejects.parquet"),
    }
