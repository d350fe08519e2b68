"""Where does a net-return plan lose against the oracle? One command:

    python benchmarks/bench_net_return.py [--seed 7] [--creators 20000] [--briefs 12] [--work DIR]

Net return (the "roas" goal) plans revenue minus price: every creator must pay back. For ``--briefs`` random briefs
(the evaluation's contexts and constraints, ``evaluation.planner_eval``) on a simulated world of ``--creators``
(trained as ``ie train`` trains it; both kept in ``--work`` and reused), the planned roster and the oracle's (planned on
the true expected revenue) are compared creator by creator:

- how many candidates pay back in truth and by the forecast, and the rosters' sizes against the brief's roster_max;
- what the planned creators who lose money in truth cost (their true net return below zero);
- what the oracle's creators that the plan missed held (their true net return), against the plan's and the oracle's
  totals;
- the planned creators' forecast over true revenue.

A plan can lose by picking creators who do not pay back, or by missing the best payers when the roster's size binds;
the two call for different fixes (a stricter bar per creator, or a better ranking of the top of the margins).
Figures land in benchmarks/results/net_return.json (``--out``) and on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ceiling import _world  # noqa: E402
from influencer_engine.brief import Brief  # noqa: E402
from influencer_engine.config import load_model_config, load_planner_config, load_tier_config  # noqa: E402
from influencer_engine.evaluation.planner_eval import _random_brief  # noqa: E402
from influencer_engine.forecast import forecast_base, load_candidate_base  # noqa: E402
from influencer_engine.planner.knapsack import solve_additive  # noqa: E402
from influencer_engine.planner.plan import plan_candidates, prepare  # noqa: E402
from influencer_engine.planner.problem import goal_values  # noqa: E402
from influencer_engine.simulate.briefs import random_context  # noqa: E402
from influencer_engine.simulate.world import World  # noqa: E402
from influencer_engine.training.bundle import load_bundle  # noqa: E402
from influencer_engine.training.train import train_models  # noqa: E402

GOAL = "roas"  # planned as net return (registry: value rule "net_return")
TRUTH_DROP = ("platform", "tier", "followers", "format", "audience_fit", "affinity")


def brief_rows(world_dir: Path, model_dir: Path, briefs: int) -> list[dict[str, Any]]:
    world, tiers, cfg = World.load(world_dir), load_tier_config(), load_planner_config()
    base, predictor = load_candidate_base(world_dir), load_bundle(model_dir)
    rng = np.random.default_rng(0)
    rows = []
    for k in range(briefs):
        context = random_context(world.now, rng, k)
        forecast = forecast_base(predictor, base, Brief(**context, goal="conversions"), tiers)
        truth = world.expected_outcomes(Brief(**context, goal="conversions"))
        brief = _random_brief(context, GOAL, rng)
        prep = prepare(forecast, brief, cfg)
        planned, _ = plan_candidates(prep, cfg)
        table = prep.candidates.table
        true_rows = table.select("creator_id", "price").join(truth.drop(*TRUTH_DROP), on="creator_id", how="left",
                                                             maintain_order="left")  # fmt: skip
        true_net = goal_values(true_rows, GOAL, "expected", emv_cpm_usd=predictor.emv_cpm_usd)
        oracle = solve_additive(prep.candidates.problem, true_net, gap=1e-4, time_limit=cfg.solver.time_limit_s)
        price = table["price"].cast(pl.Float64).to_numpy()
        f_rev = table["revenue"].cast(pl.Float64).fill_null(0.0).to_numpy()
        t_rev = true_rows["revenue"].cast(pl.Float64).fill_null(0.0).to_numpy()
        p, o = planned.chosen, oracle.chosen
        lost = true_net[p][true_net[p] < 0]
        rows.append({
            "brief": k, "budget": brief.budget, "roster_max": brief.constraints.roster_max, "candidates": table.height,
            "pay_back_true": int((true_net > 0).sum()), "pay_back_forecast": int((f_rev - price > 0).sum()),
            "planned": int(p.size), "oracle": int(o.size), "in_both": int(np.intersect1d(p, o).size),
            "planned_losing": int(lost.size), "planned_losing_net": float(lost.sum()),
            "planned_net": float(true_net[p].sum()), "oracle_net": float(true_net[o].sum()),
            "missed_oracle_net": float(true_net[np.setdiff1d(o, p)].sum()),
            "planned_revenue_forecast_over_true": float(f_rev[p].sum() / t_rev[p].sum()) if t_rev[p].sum() > 0
            else None,
        })  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--briefs", type=int, default=12)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_net_return")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "net_return.json")
    a = ap.parse_args()
    t0 = time.perf_counter()
    world, model = a.work / f"world_{a.seed}", a.work / f"model_{a.seed}"
    if not (world / "truth" / "world.json").is_file():
        _world(a.creators, a.seed, world)
    if not (model / "manifest.json").is_file():
        train_models(world, model, load_model_config(), load_tier_config(), seed=0, track=False, register=False)
    rows = brief_rows(world, model, a.briefs)
    d = pl.DataFrame(rows).with_columns(share=pl.col("planned_net") / pl.col("oracle_net"))
    with pl.Config(tbl_cols=-1, tbl_rows=-1, tbl_width_chars=250):
        print(d)
    binds = int((d["planned"] == d["roster_max"]).sum())
    print(f"\n{d.height} briefs: the roster's size limit reached by {binds}; creators paying back in truth "
          f"{d['pay_back_true'].min():,}-{d['pay_back_true'].max():,}; planned creators losing money in truth cost "
          f"${-d['planned_losing_net'].min():,.0f} at most a brief; the oracle's creators the plan missed held "
          f"${d['missed_oracle_net'].min():,.0f}-{d['missed_oracle_net'].max():,.0f}; mean share "
          f"{d['share'].mean():.1%} ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"seed": a.seed, "creators": a.creators, "rows": rows}, indent=1) + "\n",
                     encoding="utf-8")  # fmt: skip
    print(f"written: {a.out}")


if __name__ == "__main__":
    main()
