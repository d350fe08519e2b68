"""Unique reach at 100k candidates, this build against a baseline revision, in one command (issue 20, item 3):

    .venv/bin/python benchmarks/bench_reach.py --baseline 3319221 [--creators 100000] [--repeats 2]
        [--seeds 13 14 15 16 17]

The candidates and constraints of `benchmarks/bench_planner.py` (seed 13, the issue's instance, and other worlds with
the same constraints, so the solver is not tuned to one): "shares" = roster 10-60, tier counts and
the platform spend shares (TikTok at most 50% of spend, Instagram at least 20%); "simple" = roster size and tier
counts only. Each build solves both with the planner's configured rounds (configs/planner.toml) in its own process
(the baseline from a `git worktree` of --baseline with its own code), in turns, ``--repeats`` times; the best time
of each is kept. Reported: seconds, unique reach of the roster, the certified bound and gap, feasibility.
Writes benchmarks/results/reach.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

RUN = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])
from bench_planner import candidates, constrained, simple, _audience_model
from influencer_engine.config import load_planner_config
from influencer_engine.planner.coverage import solve_reach
from influencer_engine.planner.problem import build_candidates, goal_values
world, table = candidates(int(sys.argv[1]), int(sys.argv[3]))
cfg = load_planner_config()
out = {}
for name, brief in (("shares", constrained("reach", 100_000)), ("simple", simple("reach", 100_000))):
    cand = build_candidates(table, brief)
    audience = _audience_model(cand.table, world.creators, cfg.audience.people_pool)
    reach = goal_values(cand.table, "reach", "expected", emv_cpm_usd=12)
    t0 = time.perf_counter()
    sol = solve_reach(cand.problem, audience, reach, gap=cfg.solver.mip_rel_gap, time_limit=60,
                      rounds=cfg.solver.max_reach_rounds)
    out[f"{name}@{sys.argv[3]}"] = {"seconds": time.perf_counter() - t0, "value": sol.value, "bound": sol.bound,
                 "gap": sol.gap, "feasible": bool(cand.problem.feasible(sol.chosen)), "creators": int(sol.chosen.size),
                 "method": sol.stats.get("method")}
print(json.dumps(out))
"""


def run(src: Path, creators: int, seed: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    done = subprocess.run([sys.executable, "-c", RUN, str(creators), str(ROOT / "benchmarks"), str(seed)], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--creators", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15, 16, 17], help="worlds (13: the issue's)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ie-bench-reach-"))
    base_src = work / "baseline_src"
    subprocess.run(["git", "worktree", "add", "--detach", str(base_src), args.baseline], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    builds = {"baseline": base_src, "current": ROOT}
    best: dict[str, dict[str, Any]] = {}
    try:
        for turn in range(args.repeats):
            for name, src in builds.items():
                got = {k: v for seed in args.seeds for k, v in run(src, args.creators, seed).items()}
                for case, r in got.items():
                    print(f"{turn + 1}/{args.repeats} {name:8} {case:9}: {r['seconds']:.2f} s, unique reach "
                          f"{r['value']:,.0f}, bound {r['bound']:,.0f}, certified gap {r['gap']:.2%}, "
                          f"feasible {r['feasible']}", flush=True)  # fmt: skip
                    key = f"{name}/{case}"
                    if key not in best or r["seconds"] < best[key]["seconds"]:
                        best[key] = r
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_src)], cwd=ROOT, check=False)
    results = {
        "creators": args.creators,
        "baseline": args.baseline,
        "seeds": args.seeds,
        "cpus": os.cpu_count(),
        "best": best,
    }
    path = ROOT / "benchmarks" / "results" / "reach.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    for case in (f"{kind}@{seed}" for seed in args.seeds for kind in ("shares", "simple")):
        b, c = best[f"baseline/{case}"], best[f"current/{case}"]
        print(f"{case:9}: {b['seconds']:.2f} s, gap {b['gap']:.2%} -> {c['seconds']:.2f} s, gap {c['gap']:.2%} "
              f"(unique reach {b['value']:,.0f} -> {c['value']:,.0f})")  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
