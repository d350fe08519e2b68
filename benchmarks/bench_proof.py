"""What the bounds-only proof (`ie serve`'s default) costs against the full proof, in one command:

    .venv/bin/python benchmarks/bench_proof.py [--data runs/demo] [--model models/demo]

The example brief (configs/briefs/fitness_january.toml) with goals conversions, clicks, engagement and revenue, each
at 25 budgets from $8k to $32k, solved in-process twice on the same prepared problem: with `[solver] proof =
"bounds"` and with "full". Reported: how many solves the LP bounds alone did not prove within mip_rel_gap, the gap
they proved there, how much more the fully proven roster is worth, and the solve time of each. Writes
benchmarks/results/proof.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from influencer_engine.brief import load_brief
from influencer_engine.cli._common import load_predictor
from influencer_engine.planner.plan import solve
from influencer_engine.serve.state import load_server, with_proof

ROOT = Path(__file__).resolve().parents[1]
BRIEF = ROOT / "configs" / "briefs" / "fitness_january.toml"
GOALS = ("conversions", "clicks", "engagement", "revenue")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT / "runs" / "demo")
    ap.add_argument("--model", default=str(ROOT / "models" / "demo"))
    args = ap.parse_args()
    server = load_server(load_predictor(args.model, None, compiled=True), args.data, model_ref=args.model,
                         proof="bounds")  # fmt: skip
    full = with_proof(server.planner, "full")
    rows: list[dict[str, Any]] = []
    for goal in GOALS:
        prep = server.prepared(load_brief(BRIEF).model_copy(update={"scenarios": [], "goal": goal}))
        for budget in range(8_000, 33_000, 1_000):
            t0 = time.perf_counter()
            quick = solve(prep, server.planner, budget=budget)
            t1 = time.perf_counter()
            proven = solve(prep, full, budget=budget)
            t2 = time.perf_counter()
            rows.append({"goal": goal, "budget": budget, "bounds_only": "proof" in quick.stats,
                         "bounds_gap": quick.gap, "full_gap": proven.gap, "bounds_value": quick.value,
                         "full_value": proven.value, "bounds_s": t1 - t0, "full_s": t2 - t1})  # fmt: skip
    short = [r for r in rows if r["bounds_only"]]
    gaps = [r["bounds_gap"] for r in short]
    summary = {
        "solves": len(rows),
        "bounds_only": len(short),
        "bounds_gap_range": [min(gaps, default=None), max(gaps, default=None)],
        "largest_full_gain": max((r["full_value"] / r["bounds_value"] - 1 for r in short), default=0.0),
        "seconds_bounds": sum(r["bounds_s"] for r in rows),
        "seconds_full": sum(r["full_s"] for r in rows),
    }
    for r in short:
        print(f"{r['goal']:12s} ${r['budget']:,}: bounds prove {r['bounds_gap']:.2%}, the full proof "
              f"{r['full_gap']:.2%}; its roster worth {r['full_value'] / r['bounds_value'] - 1:+.3%}")  # fmt: skip
    print(f"{summary['solves']} solves, {summary['bounds_only']} not proven within mip_rel_gap by the LP bounds; "
          f"the full proof's roster worth at most {summary['largest_full_gain']:.3%} more; solve time "
          f"{summary['seconds_bounds']:.1f} s (bounds) vs {summary['seconds_full']:.1f} s (full)")  # fmt: skip
    path = ROOT / "benchmarks" / "results" / "proof.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
