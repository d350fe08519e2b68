"""Oracle evaluation of the planner on a simulated world.

For random briefs of every goal, the roster planned from forecasts is scored with the simulator's ground truth
and compared with the oracle roster (the same solver on the true expected values, and for unique reach the true
audience model with its hidden communities) and with the rosters planners pick by hand. The score is the
planned roster's true value as a share of the oracle's, at the same budget and constraints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.brief import Brief, Constraints, MixLimit, TargetAudience
from influencer_engine.config import PlannerConfig, TierConfig
from influencer_engine.evaluation.heuristics import HEURISTICS, fill_in_order, heuristic_orders
from influencer_engine.forecast import forecast_base, load_candidate_base
from influencer_engine.modeling.predictor import Predictor
from influencer_engine.planner.coverage import AudienceModel, solve_reach
from influencer_engine.planner.knapsack import solve_additive
from influencer_engine.planner.plan import prepare, solve
from influencer_engine.planner.problem import goal_values
from influencer_engine.registry import GOAL_NAMES, GOALS, PLATFORMS
from influencer_engine.schema import AGE_BANDS, AUDIENCE_COUNTRIES, CATEGORIES, GENDERS
from influencer_engine.simulate.model import segment_sizes
from influencer_engine.simulate.world import World

__all__ = ["PlannerEvaluation", "evaluate_planner", "random_context"]

_ORACLE_GAP = 1e-4

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class PlannerEvaluation:
    rows: pl.DataFrame  # one row per brief
    summary: dict[str, dict[str, Any]]  # goal -> shares of planner and heuristics

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "briefs": self.rows.to_dicts()}


def random_context(world: World, rng: np.random.Generator, k: int) -> dict[str, Any]:
    """The goal-independent part of a random brief: category, audience, dates, platforms."""
    ages = rng.choice(AGE_BANDS, size=int(rng.integers(1, 4)), replace=False)
    countries = rng.choice(AUDIENCE_COUNTRIES[:-1], size=int(rng.integers(1, 5)), replace=False)
    gender = GENDERS if rng.random() < 0.6 else (str(rng.choice(GENDERS)),)
    platforms = PLATFORMS if rng.random() < 0.5 else tuple(
        str(p) for p in rng.choice(PLATFORMS, size=int(rng.integers(1, 3)), replace=False))  # fmt: skip
    start = world.now + timedelta(days=int(rng.integers(7, 90)))
    return {
        "brief_id": f"eval-{k}",
        "brand_category": str(rng.choice(CATEGORIES)),
        "target": TargetAudience(
            age=tuple(sorted(map(str, ages))), gender=tuple(gender), countries=tuple(map(str, countries))
        ),
        "start_date": start,
        "end_date": start + timedelta(days=28),
        "platforms": tuple(sorted(platforms)),
    }


def _random_brief(context: dict[str, Any], goal: str, rng: np.random.Generator) -> Brief:
    budget = float(np.exp(rng.uniform(np.log(10_000), np.log(150_000))))
    limits: dict[str, Any] = {"roster_max": int(rng.integers(5, 41))}
    if rng.random() < 0.3:
        limits["max_spend_per_creator"] = round(budget * float(rng.uniform(0.1, 0.4)), -2)
    if rng.random() < 0.3:
        limits["tiers"] = {t: MixLimit(max_count=int(rng.integers(1, 4))) for t in ("macro", "mega")}
    if rng.random() < 0.3:
        limits["min_audience_fit"] = round(float(rng.uniform(0.02, 0.15)), 2)
    return Brief(**context, goal=goal, budget=round(budget, -2), constraints=Constraints(**limits))


def _true_audience(world: World, ids: list[str]) -> AudienceModel:
    """The simulator's own overlap model for ``ids``: segments include the hidden communities."""
    return AudienceModel(world.overlap_factors(ids), segment_sizes(world.cfg))


def evaluate_planner(
    predictor: Predictor,
    data: Path,
    cfg: PlannerConfig,
    tiers: TierConfig,
    *,
    per_goal: int = 20,
    seed: int = 0,
    goals: tuple[str, ...] = GOAL_NAMES,
) -> PlannerEvaluation:
    """``per_goal`` random briefs per goal on the world in ``data`` (contexts shared across goals)."""
    world = World.load(data)
    rng = np.random.default_rng(seed)
    emv_cpm = predictor.emv_cpm_usd
    candidates = load_candidate_base(data)
    rows: list[dict[str, Any]] = []
    for k in range(per_goal):
        context = random_context(world, rng, k)
        base = Brief(**context, goal="conversions")
        forecast = forecast_base(predictor, candidates, base, tiers)
        truth = world.expected_outcomes(base)
        for goal in goals:
            brief = _random_brief(context, goal, rng)
            t0 = time.perf_counter()
            prep = prepare(forecast, brief, cfg)
            planned = solve(prep, cfg)
            seconds = time.perf_counter() - t0
            table = prep.candidates.table
            true_rows = table.select("creator_id", "price").join(
                truth.drop("platform", "tier", "followers", "format", "audience_fit", "affinity"), on="creator_id",
                how="left", maintain_order="left")  # fmt: skip
            problem = prep.candidates.problem
            if GOALS[goal].kind == "coverage":
                model = _true_audience(world, table["creator_id"].to_list())
                true_reach = true_rows["reach"].cast(pl.Float64).fill_null(0.0).to_numpy()

                score: Callable[[I64], float] = partial(_reach_score, model, true_reach)

                s = cfg.solver
                oracle = solve_reach(problem, model, true_reach, gap=_ORACLE_GAP, time_limit=s.time_limit_s,
                                     rounds=s.max_reach_rounds)  # fmt: skip
            else:
                true_values = goal_values(true_rows, goal, "expected", emv_cpm_usd=emv_cpm)

                score = partial(_additive_score, true_values)

                oracle = solve_additive(problem, true_values, gap=_ORACLE_GAP, time_limit=cfg.solver.time_limit_s)
            orders = heuristic_orders(table, forecast.features, predictor.baselines)
            compared = {"planner": score(planned.chosen)}
            compared.update({name: score(fill_in_order(problem, orders[name])) for name in HEURISTICS})
            # the reference is the best roster known on the truth: the oracle solve, or a compared roster if one
            # beats it (possible within the oracle's certified gap, and for unique reach, whose solver has a gap)
            oracle_value = max(score(oracle.chosen), *compared.values())
            row: dict[str, Any] = {
                "brief": k, "goal": goal, "budget": brief.budget, "candidates": problem.n,
                "roster_max": brief.constraints.roster_max, "planned_creators": int(planned.chosen.size),
                "oracle_creators": int(oracle.chosen.size), "plan_seconds": seconds,
                "planner_certified_gap": planned.gap, "oracle_certified_gap": oracle.gap,
                "oracle_value": oracle_value, "oracle_solver_value": score(oracle.chosen),
                **{f"{name}_value": v for name, v in compared.items()},
            }  # fmt: skip
            for name in ("planner", *HEURISTICS):
                row[f"{name}_share"] = row[f"{name}_value"] / oracle_value if oracle_value > 0 else None
            rows.append(row)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return PlannerEvaluation(rows=frame, summary=_summary(frame))


def _reach_score(model: AudienceModel, reach: F64, chosen: I64) -> float:
    return model.unique_reach(chosen, reach[chosen])


def _additive_score(values: F64, chosen: I64) -> float:
    return float(values[chosen].sum())


def _num(x: Any) -> float:
    return float(x) if x is not None else 0.0


def _summary(frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for goal in dict.fromkeys(frame["goal"].to_list()):
        part = frame.filter((pl.col("goal") == goal) & pl.col("planner_share").is_not_null())
        entry: dict[str, Any] = {
            "briefs": part.height,
            "briefs_without_oracle_value": frame.filter(pl.col("goal") == goal).height - part.height,
        }
        for name in ("planner", *HEURISTICS):
            s = part[f"{name}_share"]
            entry[name] = {"mean_share": _num(s.mean()), "median_share": _num(s.median()), "min_share": _num(s.min())}
        entry["oracle_certified_gap_max"] = _num(part["oracle_certified_gap"].max())
        entry["plan_seconds_median"] = _num(part["plan_seconds"].median())
        out[goal] = entry
    return out


def summary_lines(ev: PlannerEvaluation) -> list[str]:
    lines = [f"{'goal':12} {'briefs':>6} {'planner':>8} " + " ".join(f"{h:>21}" for h in HEURISTICS)]
    for goal, e in ev.summary.items():
        lines.append(f"{goal:12} {e['briefs']:>6} {e['planner']['mean_share']:>8.1%} "
                     + " ".join(f"{e[h]['mean_share']:>21.1%}" for h in HEURISTICS))  # fmt: skip
    return lines
