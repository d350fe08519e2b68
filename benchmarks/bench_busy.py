"""`ie demo` on a quiet machine and beside two CPU-bound processes, in one run.

    python benchmarks/bench_busy.py [--creators 20000] [--busy 2]

Runs the README's main job (`ie demo`, without MLflow tracking) alone and beside ``--busy`` processes that spin a
core each (`python -c "while True: pass"`, started and ended here), with the engine's OpenMP setting (short spins
at barriers, GOMP_SPINCOUNT=10000, which the CLI sets) and with libgomp's default (GOMP_SPINCOUNT=300000, what
LightGBM did before). Prints the wall times and the ratio of each busy run to the quiet run with the same setting
(the target is at most 2x with two busy processes), and writes benchmarks/results/busy.json. Every run must give
the same plan: that is checked too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _demo(work: Path, creators: int, env: dict[str, str], python: str) -> tuple[float, dict[str, Any], int]:
    shutil.rmtree(work, ignore_errors=True)
    cmd = [python, "-m", "influencer_engine.cli", "demo", "--out", str(work / "world"), "--model-out",
           str(work / "model"), "--creators", str(creators), "--no-track"]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=work.parent)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"ie demo failed: {done.stderr[-2000:]}")
    totals = json.loads((work / "world" / "plan" / "totals.json").read_text(encoding="utf-8"))["totals"]
    totals["goal_expected"] = totals["goal"]["expected"]
    fit_lines = sum("fit " in line for line in done.stderr.splitlines())  # progress: one line per booster fit
    return seconds, totals, fit_lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--busy", type=int, default=2, help="CPU-bound processes to run beside the busy runs")
    ap.add_argument("--baseline-python", help="python of an older checkout's venv, measured the same way")
    args = ap.parse_args()
    base = ROOT / "runs" / "bench_busy"
    base.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    runs: dict[str, dict[str, Any]] = {}

    def run(name: str, busy: int, python: str = sys.executable) -> None:
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            time.sleep(1.0 if busy else 0.0)
            seconds, totals, fits = _demo(base / name.replace(" ", "_"), args.creators, env, python)
        finally:
            for h in hogs:
                h.kill()
                h.wait()
        runs[name] = {"seconds": seconds, "busy_processes": busy, "python": python, "fit_progress_lines": fits,
                      "plan": {"creators": totals["creators"], "spend": round(totals["spend"], 6),
                               "goal": round(totals["goal_expected"], 6)}}  # fmt: skip
        print(f"{name:32} {seconds:8.1f} s  ({busy} busy processes; {fits} fit progress lines)", flush=True)

    pairs = {"engine": ("quiet", f"beside {args.busy} busy processes")}
    run("quiet", 0)
    run(f"beside {args.busy} busy processes", args.busy)
    if args.baseline_python:
        pairs["baseline"] = ("baseline quiet", f"baseline beside {args.busy} busy processes")
        run("baseline quiet", 0, args.baseline_python)
        run(f"baseline beside {args.busy} busy processes", args.busy, args.baseline_python)
    for quiet, busy in pairs.values():
        runs[busy]["ratio_to_quiet"] = runs[busy]["seconds"] / runs[quiet]["seconds"]
    same = len({json.dumps(r["plan"], sort_keys=True) for r in runs.values()}) == 1
    for label, (_, busy) in pairs.items():
        print(f"{label}: beside {args.busy} busy processes {runs[busy]['ratio_to_quiet']:.2f}x the quiet time")
    print(f"target <= 2x; same plan in every run: {same}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"creators": args.creators, "cpus": os.cpu_count(), "runs": runs, "same_plan": same}
    (RESULTS / "busy.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
