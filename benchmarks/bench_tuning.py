"""`ie tune` against the configured settings: does a tuned bundle plan better rosters? One command:

    python benchmarks/bench_tuning.py [--creators 20000] [--seed 7] [--trials 30] [--briefs-per-goal 20]
                                      [--shifted-seed 11] [--data DIR]

It simulates the demo world (or reads --data), runs `ie tune` on every KPI (a fresh study each), trains a bundle with
the configured settings and one with `--tuned`, and scores both on the same things: the backtest (error against the
simulator's truth on the latest campaigns, the same rows `ie tune` validates on, so it flatters the tuned bundle) and
`ie evaluate --planner` (true value of planned rosters as a share of the oracle's, the same random briefs for both) on
the world and on a shifted world neither bundle has seen; then the same tuning on the shifted world's own campaigns,
scored there. Figures land in benchmarks/results/tuning.json (beside the `--out` folder) and on stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KPIS = ("reach", "impressions", "engagements", "clicks", "conversions", "revenue")
GOALS = ("reach", "engagement", "clicks", "conversions", "revenue", "roas", "emv")


def run(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "influencer_engine.cli", *args], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def shares(path: Path) -> dict[str, dict[str, float]]:
    """Mean oracle share per goal of the planner and the heuristics, per world."""
    body = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, dict[str, float]] = {}
    for world, section in body.items():
        out[world] = {g: s["planner"]["mean_share"] for g, s in section["summary"].items()}
        out[world + " / top_followers"] = {g: s["top_followers"]["mean_share"] for g, s in section["summary"].items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", type=Path, default=None, help="a world to use instead of simulating one")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--briefs-per-goal", type=int, default=20)
    ap.add_argument("--shifted-seed", type=int, default=11)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tuning")
    a = ap.parse_args()
    out: Path = a.out
    training = out / "training"
    shutil.rmtree(training, ignore_errors=True)  # fresh studies: a resumed one would mix runs
    world = a.data
    if world is None:
        world = out / "world"
        run(["simulate", "--out", str(world), "--creators", str(a.creators), "--seed", str(a.seed)])
    tune_s = {k: run(["tune", "--kpi", k, "--data", str(world), "--trials", str(a.trials), "--no-track",
                      "--training-root", str(training)]) for k in KPIS}  # fmt: skip
    tuned = {k: json.loads((training / "tuned" / f"{k}.json").read_text(encoding="utf-8")) for k in KPIS}
    result: dict[str, Any] = {"world": str(world), "trials": a.trials, "briefs_per_goal": a.briefs_per_goal,
                              "shifted_seed": a.shifted_seed, "tune": {}, "bundles": {}}  # fmt: skip
    for k in KPIS:
        t = tuned[k]
        result["tune"][k] = {
            "relative_deviance_best": t["value"],
            "relative_deviance_configured": t["default_value"],
            "kept_configured": t["kept_configured"],
            "params": t["params"],
            "seconds": tune_s[k],
        }
    for name, extra in (("configured", []), ("tuned", ["--tuned"])):
        bundle = out / f"bundle_{name}"
        train_s = run(["train", "--data", str(world), "--out", str(bundle), "--no-track", "--training-root",
                       str(training), *extra])  # fmt: skip
        report = json.loads((bundle / "report" / "evaluation.json").read_text(encoding="utf-8"))
        metrics = report["sections"]["backtest"]["metrics"]
        evaluation = out / f"planner_{name}"
        run(["evaluate", "--planner", "--model", str(bundle), "--data", str(world), "--shifted-seed",
             str(a.shifted_seed), "--shifted-creators", str(a.creators), "--briefs-per-goal", str(a.briefs_per_goal),
             "--out", str(evaluation), "--training-root", str(training)])  # fmt: skip
        result["bundles"][name] = {
            "train_s": train_s,
            "backtest_mae_log1p_vs_truth": {k: metrics[k]["model"]["mae_log1p_true"] for k in KPIS},
            "backtest_poisson_deviance": {k: metrics[k]["model"]["poisson_deviance"] for k in KPIS},
            "oracle_share": shares(evaluation / "planner_evaluation.json"),
        }
    # the same procedure on the shifted world's own campaigns: does tuning help on the data it was tuned on?
    shifted = out / "planner_configured" / f"shifted_world_{a.shifted_seed}"
    own = out / "training_shifted"
    shutil.rmtree(own, ignore_errors=True)
    for k in KPIS:
        run(["tune", "--kpi", k, "--data", str(shifted), "--trials", str(a.trials), "--no-track", "--training-root",
             str(own)])  # fmt: skip
    bundle = out / "bundle_tuned_on_shifted"
    run(["train", "--data", str(shifted), "--out", str(bundle), "--no-track", "--training-root", str(own), "--tuned"])
    run(
        [
            "evaluate",
            "--planner",
            "--model",
            str(bundle),
            "--data",
            str(shifted),
            "--briefs-per-goal",
            str(a.briefs_per_goal),
            "--out",
            str(out / "planner_tuned_on_shifted"),
            "--training-root",
            str(own),
        ]
    )
    own_shares = shares(out / "planner_tuned_on_shifted" / "planner_evaluation.json")

    def truth_mae(path: Path) -> dict[str, float]:
        report = json.loads((path / "report" / "evaluation.json").read_text(encoding="utf-8"))
        return {k: v["model"]["mae_log1p_true"] for k, v in report["sections"]["backtest"]["metrics"].items()}

    result["tuned_on_shifted"] = {
        "backtest_mae_log1p_vs_truth": {"configured": truth_mae(shifted / "model"), "tuned": truth_mae(bundle)},
        "oracle_share": next(v for w, v in own_shares.items() if "/" not in w),
    }
    (out.parent / "tuning.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    b = result["bundles"]
    print("\nbacktest MAE log1p vs truth (configured -> tuned):")
    for k in KPIS:
        c, t = b["configured"]["backtest_mae_log1p_vs_truth"][k], b["tuned"]["backtest_mae_log1p_vs_truth"][k]
        kept = " (configured kept)" if result["tune"][k]["kept_configured"] else ""
        print(f"  {k:12s} {c:.3f} -> {t:.3f}{kept}")
    for world_name in b["configured"]["oracle_share"]:
        if "/" in world_name:
            continue
        print(f"\noracle share, {world_name} (configured -> tuned; top followers):")
        for g in GOALS:
            c = b["configured"]["oracle_share"][world_name].get(g)
            t = b["tuned"]["oracle_share"][world_name].get(g)
            h = b["configured"]["oracle_share"][world_name + " / top_followers"].get(g)
            if c is not None and t is not None and h is not None:
                print(f"  {g:12s} {c:7.1%} -> {t:7.1%}   ({h:.1%})")
    own_result = result["tuned_on_shifted"]
    print(f"\ntuned on the shifted world's own campaigns (seed {a.shifted_seed}); oracle share there:")
    configured_shifted = next(v for w, v in b["configured"]["oracle_share"].items() if w.startswith("shifted"))
    for g in GOALS:
        if g in configured_shifted and g in own_result["oracle_share"]:
            print(f"  {g:12s} {configured_shifted[g]:7.1%} -> {own_result['oracle_share'][g]:7.1%}")
    mae = own_result["backtest_mae_log1p_vs_truth"]
    print("  backtest MAE log1p vs truth: " + ", ".join(
        f"{k} {mae['configured'][k]:.3f} -> {mae['tuned'][k]:.3f}" for k in KPIS))  # fmt: skip
    print(f"\n-> {out.parent / 'tuning.json'}")


if __name__ == "__main__":
    main()
