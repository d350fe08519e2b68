"""A candidate export scored by this build and by a baseline revision, in one command:

    .venv/bin/python benchmarks/bench_lean.py --baseline 4e41e46 [--creators 50000] [--repeats 3]
        [--candidates FOLDER ...] [--chunk-creators N]

The candidates are the first ``--creators`` creators of a simulated world (seed 100, with their posts), written once
under runs/bench_lean, or the dataset folders ``--candidates`` (for instance bench_scoring's worlds). They are scored
in one chunk, or in chunks of ``--chunk-creators`` (staged, with the first pass). Each build runs `ie score` on
them as a subprocess (the demo model, the example brief, compiled trees as configured by default), ``--repeats``
times in turns, and the best wall time of each is kept. The baseline runs from a ``git worktree`` of ``--baseline``
with its own code. Their score rows are compared (sorted by creator).
Writes benchmarks/results/lean.json.
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

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
BRIEF = ROOT / "configs" / "briefs" / "fitness_january.toml"


def candidates(n: int, folder: Path) -> Path:
    if (folder / "posts.parquet").is_file():
        return folder
    from influencer_engine.config import load_simulator_config, load_tier_config
    from influencer_engine.simulate.generate import simulate_market

    m = simulate_market(load_simulator_config(), load_tier_config(), n, seed=100)
    folder.mkdir(parents=True, exist_ok=True)
    m.creators.write_parquet(folder / "creators.parquet")
    m.posts.write_parquet(folder / "posts.parquet")
    return folder


def run(src: Path, cands: list[Path], out: Path, chunk: int) -> float:
    cmd = [sys.executable, "-m", "influencer_engine.cli", "score", "--brief", str(BRIEF), "--model",
           str(ROOT / "models" / "demo"), "--candidates", *map(str, cands), "--out", str(out), "--restart",
           "--chunk-creators", str(chunk)]  # fmt: skip
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    subprocess.run(cmd, cwd=src, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--creators", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--candidates", type=Path, nargs="*", default=None, help="dataset folders (default: simulated)")
    ap.add_argument("--chunk-creators", type=int, default=None, help="default: one chunk")
    args = ap.parse_args()
    work = ROOT / "runs" / "bench_lean"
    if args.candidates:
        cands = [p.resolve() for p in args.candidates]
        args.creators = sum(pl.scan_parquet(p / "creators.parquet").select(pl.len()).collect().item() for p in cands)
    else:
        cands = [candidates(args.creators, work / f"cands_{args.creators}")]
    chunk = args.chunk_creators or args.creators
    base_src = work / "baseline_src"
    if base_src.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(base_src)], cwd=ROOT, check=False)
        shutil.rmtree(base_src, ignore_errors=True)
    subprocess.run(["git", "worktree", "add", "--detach", str(base_src), args.baseline], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    builds = {"baseline": base_src, "current": ROOT}
    times: dict[str, list[float]] = {b: [] for b in builds}
    for _ in range(args.repeats):
        for name, src in builds.items():
            times[name].append(run(src, cands, work / f"out_{name}", chunk))
    best = {b: min(t) for b, t in times.items()}
    a = pl.read_parquet(work / "out_baseline" / "scores").sort("creator_id")
    b = pl.read_parquet(work / "out_current" / "scores").sort("creator_id")
    result = {
        "creators": args.creators, "chunk_creators": chunk, "baseline": args.baseline, "seconds": times,
        "best_seconds": best,
        "creators_per_s": {k: args.creators / v for k, v in best.items()},
        "speedup": best["baseline"] / best["current"], "same_rows": a.equals(b),
    }  # fmt: skip
    path = ROOT / "benchmarks" / "results" / "lean.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for k in builds:
        print(f"{k:9} best {best[k]:.1f} s ({args.creators / best[k]:,.0f} creators/s); runs {times[k]}")
    print(f"speed-up x{result['speedup']:.2f}; same rows: {result['same_rows']}")
    subprocess.run(["git", "worktree", "remove", "--force", str(base_src)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
