"""Planner benchmarks (issue 5), one command: python benchmarks/bench_planner.py [--quick]

1. Knapsack at 100k candidates (tier, platform and size constraints): time to a roster with certified gap
   <= 0.5% with the reduction, and plain HiGHS MILP on the same instance in the same run. Target <= 2 s.
2. The same at 1M candidates. Target <= 20 s.
3. Unique reach at 100k candidates. Target <= 1 s.
4. Oracle share: random briefs per goal on the demo world (runs/demo with models/demo, made by `ie demo`) and on
   a shifted world (simulated, a model trained within it), beside the heuristics. Target >= 95% for every goal.

Candidates for 1-3 are simulated creators of the default world with their *true* expected KPIs for a brief (the
instance is realistic in sizes, prices and audiences; forecasts are not needed to time a solver).
Writes benchmarks/results/planner.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import polars as pl

from influencer_engine.brief import Brief, Constraints, MixLimit, TargetAudience
from influencer_engine.config import load_planner_config, load_simulator_config, load_tier_config
from influencer_engine.planner.coverage import solve_reach
from influencer_engine.planner.knapsack import solve_additive, solve_milp
from influencer_engine.planner.plan import _audience_model
from influencer_engine.planner.problem import build_candidates, goal_values
from influencer_engine.simulate.generate import simulate_creators
from influencer_engine.simulate.world import World

ROOT = Path(__file__).resolve().parents[1]


def candidates(n: int, seed: int) -> tuple[World, pl.DataFrame]:
    """n simulated creators (no posts needed) and their true expected KPIs for a brief, as a forecast table."""
    cfg, tiers = load_simulator_config(), load_tier_config()
    creators, truth = simulate_creators(cfg, tiers, n, seed)
    world = World(cfg=cfg, tiers=tiers, seed=seed, creators=creators, truth=truth)
    brief = Brief(
        brief_id="bench",
        goal="conversions",
        budget=100_000,
        brand_category="fitness",
        start_date=date(2026, 1, 5),
        target=TargetAudience(age=("18_24", "25_34"), countries=("US", "GB")),
    )
    exp = world.expected_outcomes(brief)
    base_price = pl.coalesce(pl.col("price_image"), pl.col("price_video"))
    price = creators.select("creator_id", base_price.alias("price"))
    table = exp.join(price, on="creator_id").with_columns(audience_credibility=pl.lit(0.9))
    for k in ("reach", "impressions", "engagements", "clicks", "conversions", "revenue"):
        table = table.with_columns(pl.col(k).alias(f"{k}_p50"), (pl.col(k) * 0.5).alias(f"{k}_p10"),
                                   (pl.col(k) * 1.6).alias(f"{k}_p90"))  # fmt: skip
    return world, table.with_columns(pl.col("platform").cast(pl.String), pl.col("tier").cast(pl.String))


def constrained(goal: str, budget: float) -> Brief:
    return Brief(brief_id="bench", goal=goal, budget=budget, brand_category="fitness", start_date=date(2026, 1, 5),
                 constraints=Constraints(roster_min=10, roster_max=60,
                                         tiers={"nano": MixLimit(max_count=20), "micro": MixLimit(min_count=5),
                                                "macro": MixLimit(max_count=5), "mega": MixLimit(max_count=2)},
                                         platforms={"tiktok": MixLimit(max_share=0.5),
                                                    "instagram": MixLimit(min_share=0.2)}))  # fmt: skip


def bench_knapsack(n: int, plain_limit: float, seed: int) -> dict[str, object]:
    _, table = candidates(n, seed)
    brief = constrained("conversions", 100_000)
    cand = build_candidates(table, brief)
    v = goal_values(cand.table, "conversions", "expected", emv_cpm_usd=12)
    t0 = time.perf_counter()
    sol = solve_additive(cand.problem, v, gap=0.005, time_limit=120)
    ours = time.perf_counter() - t0
    out: dict[str, object] = {"candidates": cand.problem.n, "constraint_rows": len(cand.rows), "seconds": ours,
                              "value": sol.value, "certified_gap": sol.gap, "status": sol.status,
                              "feasible": cand.problem.feasible(sol.chosen), "stats": sol.stats}  # fmt: skip
    if plain_limit > 0:
        t0 = time.perf_counter()
        plain = solve_milp(cand.problem, v, gap=0.005, time_limit=plain_limit)
        out["plain_milp"] = {"seconds": time.perf_counter() - t0, "status": plain.status, "time_limit": plain_limit,
                             "value": plain.value if plain.chosen.size else None,
                             "certified_gap": plain.gap if plain.chosen.size else None}  # fmt: skip
    print(f"knapsack {n:,}: {ours:.2f} s, certified gap {sol.gap:.3%} ({sol.status}); plain MILP: "
          f"{out.get('plain_milp')}")  # fmt: skip
    return out


def simple(goal: str, budget: float) -> Brief:
    """Roster size and tier counts only (no spend shares)."""
    return Brief(brief_id="bench", goal=goal, budget=budget, brand_category="fitness", start_date=date(2026, 1, 5),
                 constraints=Constraints(roster_min=10, roster_max=60, tiers={"nano": MixLimit(max_count=20),
                                         "macro": MixLimit(max_count=5), "mega": MixLimit(max_count=2)}))  # fmt: skip


def bench_reach(n: int, seed: int, *, shares: bool = True) -> dict[str, object]:
    world, table = candidates(n, seed)
    brief = constrained("reach", 100_000) if shares else simple("reach", 100_000)
    cand = build_candidates(table, brief)
    audience = _audience_model(cand.table, world.creators, load_planner_config().audience.people_pool)
    reach = goal_values(cand.table, "reach", "expected", emv_cpm_usd=12)
    t0 = time.perf_counter()
    sol = solve_reach(cand.problem, audience, reach, gap=0.005, time_limit=60, rounds=8)
    secs = time.perf_counter() - t0
    what = "tier, platform-share and size constraints" if shares else "size and tier-count constraints"
    print(f"unique reach {n:,} ({what}): {secs:.2f} s, certified gap {sol.gap:.3%}, {sol.stats.get('rounds')} rounds")
    return {"candidates": cand.problem.n, "constraints": what, "seconds": secs, "value": sol.value, "bound": sol.bound,
            "certified_gap": sol.gap, "no_overlap_bound": sol.stats.get("no_overlap_bound"),
            "rounds": sol.stats.get("rounds"), "feasible": cand.problem.feasible(sol.chosen)}  # fmt: skip


def bench_oracle(per_goal: int, shifted_creators: int) -> dict[str, object]:
    import subprocess
    import sys

    out = ROOT / "runs" / "bench_planner_eval"
    cmd = [sys.executable, "-m", "influencer_engine.cli", "evaluate", "--planner", "--briefs-per-goal", str(per_goal),
           "--out", str(out), "--seed", "1"]  # fmt: skip
    if (ROOT / "runs" / "demo" / "truth").is_dir() and (ROOT / "models" / "demo").is_dir():
        cmd += ["--data", str(ROOT / "runs" / "demo"), "--model", str(ROOT / "models" / "demo")]
    else:
        print("runs/demo or models/demo missing (run `ie demo`): only the shifted world is evaluated")
    cmd += ["--shifted-seed", "8", "--shifted-creators", str(shifted_creators)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    report = json.loads((out / "planner_evaluation.json").read_text())
    return {"seconds": time.perf_counter() - t0, "per_goal": per_goal,
            "summary": {k: v["summary"] for k, v in report.items()}}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--plain-limit", type=float, default=120.0, help="time limit of the plain MILP (s)")
    ap.add_argument("--per-goal", type=int, default=20)
    args = ap.parse_args()
    sizes = (5_000, 20_000) if args.quick else (100_000, 1_000_000)
    results: dict[str, object] = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()}
    }
    results["knapsack_100k"] = bench_knapsack(sizes[0], args.plain_limit, seed=11)
    results["knapsack_1m"] = bench_knapsack(sizes[1], 0.0 if not args.quick else 10.0, seed=12)
    results["unique_reach_100k"] = bench_reach(sizes[0], seed=13)
    results["unique_reach_100k_simple"] = bench_reach(sizes[0], seed=13, shares=False)
    results["oracle"] = bench_oracle(2 if args.quick else args.per_goal, 3_000 if args.quick else 20_000)
    path = ROOT / "benchmarks" / "results" / "planner.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
