"""Issue 4 benchmark: `ie train` wall time on the demo world, the evaluation table on the demo and a shifted
world, and the next-post test on the real Instagram histories. One command:

    python benchmarks/bench_models.py [--creators 20000] [--shifted-seed 8] [--real ../shared/data/real]

Figures land in benchmarks/results/models.json and on stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "influencer_engine.cli", *args], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--shifted-seed", type=int, default=8)
    ap.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "models")
    a = ap.parse_args()
    out = a.out
    world, bundle, training = out / "world", out / "bundle", out / "training"
    run(["simulate", "--out", str(world), "--creators", str(a.creators), "--seed", str(a.seed)])
    train_s = run(["train", "--data", str(world), "--out", str(bundle), "--training-root", str(training)])
    args = ["evaluate", "--model", str(bundle), "--data", str(world), "--shifted-seed", str(a.shifted_seed),
            "--shifted-creators", str(a.creators), "--out", str(out / "evaluation")]  # fmt: skip
    ig = a.real / "instagram_posts_2015_2020"
    if ig.is_dir():
        run(["import", "instagram-posts", str(ig), "--out", str(out / "instagram")])
        args += ["--real-posts", str(out / "instagram")]
    eval_s = run(args)
    body = json.loads((out / "evaluation" / "evaluation.json").read_text(encoding="utf-8"))
    summary = {"creators": a.creators, "train_wall_s": train_s, "evaluate_wall_s": eval_s, "sections": {}}
    for name, sec in body["sections"].items():
        summary["sections"][name] = {
            "beats_every_baseline": sec["beats_every_baseline"],
            "conversions_per_dollar_spearman": sec["conversions_per_dollar_spearman"],
            "coverage": {k: d["model"]["coverage_p10_p90"] for k, d in sec["metrics"].items()},
            "mae_log1p": {k: {m: r["mae_log1p"] for m, r in d.items()} for k, d in sec["metrics"].items()},
        }
    if "next_post" in body:
        summary["next_post"] = body["next_post"]
    (out.parent / "models.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    print(f"full report: {out / 'evaluation' / 'evaluation.md'}")


if __name__ == "__main__":
    main()
