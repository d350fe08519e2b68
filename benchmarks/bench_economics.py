"""Plausible economics: the world's tails, what the planner picks, and whether plan bands hold the truth.

One command measures a baseline build and this build on the same seeds and prints them side by side:

    .venv/bin/python benchmarks/bench_economics.py --baseline REV --out /tmp/econ

For each build (``measure``): simulate the demo world for seeds 7, 8 and 9 (20,000 creators each), train the KPI
models on seed 7 (with their backtest), plan the example brief (configs/briefs/fitness_january.toml) and score its
roster with the simulator's truth, and run the oracle evaluation (``--per-goal`` random briefs per goal): oracle and
heuristic shares, the forecast/true ratio of every picked creator, whether each roster's P10-P90 band holds its true
value, and the true CPM, CPA and ROAS of the planned and the oracle rosters against the market's.

The baseline is a ``git worktree`` of ``--baseline`` run with this checkout's evaluation harness
(evaluation/planner_eval.py and the brief generator simulate/briefs.py) laid over it, so both builds are measured
by the same instrument. The harness imports what later builds added (``planner.totals.cost_figures``,
``simulate.libm``): the oldest baseline it imports on is feacf58. 802aa5e (the build before the plausible-economics
work), d22b6e8 and 8579fed fail to import it; their figures are the README's, from runs of their time. Without
``--baseline`` only this build is measured. The tail rows of the calibration report are computed by this build's
report, with this build's published ranges, on both builds' worlds. The market is the median simulated campaign (its
cost over its true expected results), for both builds.
``--reuse`` keeps a measure already written (the baseline takes about as long as this build).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BRIEF = ROOT / "configs" / "briefs" / "fitness_january.toml"
# the instrument: the evaluation, the brief generator, and the world's oracle with its delivery draws (the refactor
# that exposed draw_outcomes leaves every world equal to the bit)
HARNESS = (
    "src/influencer_engine/evaluation/planner_eval.py",
    "src/influencer_engine/simulate/briefs.py",
    "src/influencer_engine/simulate/world.py",
    "src/influencer_engine/simulate/generate.py",
)


def measure(out: Path, seeds: list[int], creators: int, per_goal: int) -> None:
    """Everything one build produces, into out/measure.json (run with the build's own code on sys.path)."""
    import polars as pl

    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_model_config, load_planner_config, load_simulator_config, load_tier_config
    from influencer_engine.evaluation.planner_eval import evaluate_planner
    from influencer_engine.forecast import forecast_brief
    from influencer_engine.planner.plan import plan, prepare
    from influencer_engine.simulate.generate import simulate_market
    from influencer_engine.simulate.world import World, write_world
    from influencer_engine.training.bundle import load_bundle
    from influencer_engine.training.train import train_models

    out.mkdir(parents=True, exist_ok=True)
    cfg, tiers = load_simulator_config(), load_tier_config()
    result: dict[str, Any] = {"worlds": {}, "seconds": {}}
    for seed in seeds:
        folder = out / f"world_{seed}"
        if not (folder / "truth" / "world.json").is_file():
            write_world(simulate_market(cfg, tiers, creators, seed), cfg, tiers, seed, folder)
        result["worlds"][str(seed)] = str(folder)
    world = out / f"world_{seeds[0]}"
    t0 = time.perf_counter()
    trained = train_models(world, out / "model", load_model_config(), tiers, track=False, register=False)
    result["seconds"]["train"] = time.perf_counter() - t0
    bt = trained.backtest
    result["backtest"] = {
        kpi: {
            "model": m["model"],
            "best_baseline_mae_log1p": min(v["mae_log1p"] for k, v in m.items() if k != "model"),
            "best_baseline_poisson_deviance": min(v["poisson_deviance"] for k, v in m.items() if k != "model"),
        }
        for kpi, m in bt.metrics.items()
    }
    result["backtest_per_dollar"] = bt.per_dollar
    predictor = load_bundle(out / "model")

    brief = load_brief(BRIEF)
    planner = load_planner_config()
    fc = forecast_brief(predictor, world, brief, tiers)
    planned = plan(prepare(fc, brief, planner), planner)
    t = planned.totals
    ids = planned.roster["creator_id"].to_list()
    truth = World.load(world).expected_outcomes(brief, ids)
    roster = planned.roster.select("creator_id", "price", "impressions", "conversions", "revenue").join(
        truth.select("creator_id", *(pl.col(k).alias(f"true_{k}") for k in ("impressions", "conversions", "revenue"))),
        on="creator_id",
    )
    spend = float(roster["price"].sum())
    sums = {k: float(roster[k].sum()) for k in roster.columns if k not in ("creator_id", "price")}
    totals = t.json_dict()
    result["example_plan"] = {
        "creators": t.creators, "spend": spend, "budget": brief.budget, "spend_share": t.spend_share,
        "forecast": {"cpm": spend / sums["impressions"] * 1000, "cpa": spend / sums["conversions"],
                     "roas": sums["revenue"] / spend, "conversions": sums["conversions"],
                     "band": [t.goal.p10, t.goal.p90]},
        "true": {"cpm": spend / sums["true_impressions"] * 1000, "cpa": spend / sums["true_conversions"],
                 "roas": sums["true_revenue"] / spend, "conversions": sums["true_conversions"]},
        "budget_note": totals.get("budget_left"),
        "picked_median_forecast_over_true": float(
            (roster["conversions"] / roster["true_conversions"]).median()  # type: ignore[arg-type,operator]
        ),
    }  # fmt: skip
    t0 = time.perf_counter()
    ev = evaluate_planner(predictor, world, planner, tiers, per_goal=per_goal, seed=0)
    result["seconds"]["evaluate_planner"] = time.perf_counter() - t0
    result["evaluation"] = ev.summary
    (out / "measure.json").write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")


def tail_report(world: Path) -> list[dict[str, Any]]:
    """This build's calibration report (published ranges from this checkout's configs) on ``world``'s tables."""
    from influencer_engine.config import load_simulator_config
    from influencer_engine.io import read_table
    from influencer_engine.simulate.report import calibration_report

    tables = {n: read_table(world / f"{n}.parquet") for n in ("creators", "posts", "outcomes")}
    truth = read_table(world / "truth" / "creators_truth.parquet")
    expected = read_table(world / "truth" / "expected_outcomes.parquet")
    rows = calibration_report(load_simulator_config(), tables["creators"], tables["posts"], tables["outcomes"], truth,
                              expected=expected)  # fmt: skip
    return [r.to_dict() for r in rows]


def _run_baseline(rev: str, out: Path, args: argparse.Namespace) -> None:
    src = out / "baseline_src"
    if src.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(src)], cwd=ROOT, check=False)
        shutil.rmtree(src, ignore_errors=True)
    subprocess.run(["git", "worktree", "add", "--detach", str(src), rev], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for rel in HARNESS:
        shutil.copy2(ROOT / rel, src / rel)
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    cmd = [sys.executable, str(Path(__file__).resolve()), "measure", "--out", str(out / "baseline"),
           "--creators", str(args.creators), "--per-goal", str(args.per_goal),
           "--seeds", *map(str, args.seeds)]  # fmt: skip
    # the baseline reads its own configs: run it from its checkout; the worktree goes either way
    try:
        subprocess.run(cmd, cwd=src, env=env, check=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(src)], cwd=ROOT, check=False)


def _f(v: Any, kind: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if kind == "%":
        return f"{v:.1%}"
    if kind == "$":
        return f"${v:,.2f}"
    return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"


def compare(out: Path, seeds: list[int]) -> str:
    builds = [b for b in ("baseline", "current") if (out / b / "measure.json").is_file()]
    data = {b: json.loads((out / b / "measure.json").read_text(encoding="utf-8")) for b in builds}
    lines = [f"# Plausible economics: {' vs '.join(builds)}", ""]
    lines += ["## Tail rows of the calibration report (this build's published ranges)", ""]
    for seed in seeds:
        reps = {b: tail_report(out / b / f"world_{seed}") for b in builds}
        keys = [(r["figure"], r["group"]) for r in reps[builds[-1]]]
        lines.append(f"### seed {seed}")
        lines.append("| figure | group | range | " + " | ".join(builds) + " |")
        lines.append("|---|---|---|" + "---|" * len(builds))
        inside = {b: 0 for b in builds}
        for key in keys:
            cells = []
            rng = ""
            for b in builds:
                r = next((x for x in reps[b] if (x["figure"], x["group"]) == key), None)
                if r is None:
                    cells.append("n/a")
                    continue
                rng = f"{_f(r['low'])} .. {_f(r['high'])}"
                inside[b] += bool(r["inside"])
                cells.append(f"{_f(r['simulated'])} {'ok' if r['inside'] else 'OUT'}")
            lines.append(f"| {key[0]} | {key[1]} | {rng} | " + " | ".join(cells) + " |")
        lines.append("inside: " + ", ".join(f"{b} {inside[b]}/{len(keys)}" for b in builds))
        lines.append("")
    lines += ["## The example brief's plan (fitness_january, seed-7 world)", ""]
    lines.append("| figure | " + " | ".join(builds) + " |")
    lines.append("|---|" + "---|" * len(builds))
    for label, path, kind in (
        ("creators", ("creators",), ""), ("spend share", ("spend_share",), "%"),
        ("forecast CPM", ("forecast", "cpm"), "$"), ("true CPM", ("true", "cpm"), "$"),
        ("forecast CPA", ("forecast", "cpa"), "$"), ("true CPA", ("true", "cpa"), "$"),
        ("forecast ROAS", ("forecast", "roas"), ""), ("true ROAS", ("true", "roas"), ""),
        ("forecast conversions", ("forecast", "conversions"), ""), ("true conversions", ("true", "conversions"), ""),
        ("median forecast/true of picked", ("picked_median_forecast_over_true",), ""),
    ):  # fmt: skip
        cells = []
        for b in builds:
            v: Any = data[b]["example_plan"]
            for k in path:
                v = v.get(k) if isinstance(v, dict) else None
            cells.append(_f(v, kind))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for b in builds:
        p = data[b]["example_plan"]
        lines.append(f"- {b}: band P10-P90 {_f(p['forecast']['band'][0])} .. {_f(p['forecast']['band'][1])}; "
                     f"budget note: {p.get('budget_note')}")  # fmt: skip
    lines += ["", "## Oracle evaluation per goal (mean share of the oracle roster's true value)", ""]
    goals = list(data[builds[-1]]["evaluation"])
    heur = [k for k, v in data[builds[-1]]["evaluation"][goals[0]].items()
            if isinstance(v, dict) and "mean_share" in v and k != "planner"]  # fmt: skip
    lines.append(
        "| goal | build | planner | " + " | ".join(heur) + " | forecast/true of picked P10 / P50 / P90 | "
        "band holds truth | band holds delivered | oracle true CPA vs market | oracle true ROAS vs market | "
        "oracle true CPM vs market |"
    )
    lines.append("|---|---|---|" + "---|" * len(heur) + "---|---|---|---|---|---|")
    for g in goals:
        for b in builds:
            e = data[b]["evaluation"].get(g)
            if e is None:
                continue
            pk = e.get("picked", {})
            r = pk.get("picked_forecast_over_true", {})
            vs = {f: pk.get("oracle_true", {}).get(f, {}).get("vs_market", {}).get("median") for f in
                  ("cpa", "roas", "cpm")}  # fmt: skip
            lines.append(
                f"| {g} | {b} | {_f(e['planner']['mean_share'], '%')} | "
                + " | ".join(_f(e[h]["mean_share"], "%") for h in heur)
                + f" | {_f(r.get('p10'))} / {_f(r.get('median'))} / {_f(r.get('p90'))} | "
                f"{_f(pk.get('band_holds_truth'), '%')} | {_f(pk.get('band_holds_delivered'), '%')} | "
                f"{_f(vs['cpa'])}x | {_f(vs['roas'])}x | {_f(vs['cpm'])}x |"
            )
    for b in builds:
        ev = data[b]["evaluation"]
        held = sum(e["picked"]["band_holds_truth"] * e["briefs"] for e in ev.values())
        n = sum(e["briefs"] for e in ev.values())
        lines.append(f"- {b}: roster bands hold the true value in {held / n:.1%} of {n} briefs (all goals pooled)")
        dl = [(e["picked"].get("band_holds_delivered"), e["briefs"]) for e in ev.values()]
        dl = [(v, k) for v, k in dl if v is not None and not math.isnan(v)]
        if dl:
            share = sum(v * k for v, k in dl) / sum(k for _, k in dl)
            lines.append(f"- {b}: and {share:.1%} of simulated deliveries (additive goals pooled)")
    lines += [
        "",
        "## Backtest on the seed-7 world (MAE log1p and Poisson deviance of the model; the best baseline's; "
        "P10-P90 coverage)",
        "",
    ]
    lines.append("| KPI | " + " | ".join(f"{b} model | {b} best baseline | {b} deviance | {b} best baseline deviance | "
                                          f"{b} coverage" for b in builds) + " |")  # fmt: skip
    lines.append("|---|" + "---|---|---|---|---|" * len(builds))
    for kpi in data[builds[-1]]["backtest"]:
        cells = []
        for b in builds:
            m = data[b]["backtest"].get(kpi, {})
            cells += [_f(m.get("model", {}).get("mae_log1p")), _f(m.get("best_baseline_mae_log1p")),
                      _f(m.get("model", {}).get("poisson_deviance")), _f(m.get("best_baseline_poisson_deviance")),
                      _f(m.get("model", {}).get("coverage_p10_p90"), "%")]  # fmt: skip
        lines.append(f"| {kpi} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Market figures (all simulated campaign posts, seed 7): " + "; ".join(
        f"{b} CPM {_f(data[b]['evaluation'][goals[0]]['picked']['market']['cpm'], '$')}, CPA "
        f"{_f(data[b]['evaluation'][goals[0]]['picked']['market']['cpa'], '$')}, ROAS "
        f"{_f(data[b]['evaluation'][goals[0]]['picked']['market']['roas'])}" for b in builds))  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", nargs="?", default="all", choices=("all", "measure", "compare"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_economics"))
    ap.add_argument("--baseline", help="a git revision to measure beside this build (feacf58 or later)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--per-goal", type=int, default=20)
    ap.add_argument("--reuse", action="store_true", help="keep measures already written")
    args = ap.parse_args()
    if args.stage == "measure":
        measure(args.out, args.seeds, args.creators, args.per_goal)
        return
    if args.stage == "all":
        if args.baseline and not (args.reuse and (args.out / "baseline" / "measure.json").is_file()):
            _run_baseline(args.baseline, args.out, args)
        if not (args.reuse and (args.out / "current" / "measure.json").is_file()):
            measure(args.out / "current", args.seeds, args.creators, args.per_goal)
    text = compare(args.out, args.seeds)
    (args.out / "report.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
