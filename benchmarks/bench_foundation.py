"""Foundation benchmarks (issue 2): `ie simulate` at 100k creators, and validation throughput on its posts.

Run: python benchmarks/bench_foundation.py [--creators 100000] [--out benchmarks/results]

1. `ie simulate --creators N` as a child process: wall time and peak resident memory (the child's
   ru_maxrss), against the targets of 60 s and 4 GB.
2. `validate(posts)` on the ~5M simulated posts held in memory, best of 3: rows/s against 5M rows/s. Also
   on a dirty copy (1% repeated post ids, 1% negative likes), which takes the exact duplicate path and
   builds a reason for every reject, and read+validate from Parquet, so the fast path is not the only figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from influencer_engine.schema import validate


def bench_simulate(n: int, work: Path) -> dict[str, float]:
    out = work / "world"
    ie = shutil.which("ie") or str(Path(sys.executable).parent / "ie")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run([ie, "simulate", "--creators", str(n), "--seed", "7", "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "creators": n,
        "posts": manifest["tables"]["posts"]["rows_out"],
        "outcomes": manifest["tables"]["outcomes"]["rows_out"],
        "wall_s": round(wall, 2),
        "peak_rss_gb": round(max(peak_kb, before) / 1024**2, 3),
    }


def _best_of(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_validate(posts_path: Path) -> dict[str, float]:
    posts = pl.read_parquet(posts_path)
    n = posts.height
    clean = _best_of(lambda: validate(posts, "posts"))
    result = validate(posts, "posts")
    assert result.rows_rejected == 0

    k = n // 100
    dirty = pl.concat(
        [
            posts.with_columns(
                pl.when(pl.int_range(pl.len()) < k).then(-pl.col("likes")).otherwise(pl.col("likes")).alias("likes")
            ),
            posts.slice(n // 2, k),  # repeated post ids
        ]
    )
    dirty_t = _best_of(lambda: validate(dirty, "posts"))
    dirty_result = validate(dirty, "posts")
    assert dirty_result.rows_in == dirty_result.rows_out + dirty_result.rows_rejected
    read_t = _best_of(lambda: validate(pl.read_parquet(posts_path), "posts"))
    return {
        "rows": n,
        "clean_s": round(clean, 3),
        "clean_rows_per_s": round(n / clean),
        "dirty_rows": dirty.height,
        "dirty_rejected": dirty_result.rows_rejected,
        "dirty_s": round(dirty_t, 3),
        "dirty_rows_per_s": round(dirty.height / dirty_t),
        "read_parquet_and_validate_s": round(read_t, 3),
        "read_parquet_and_validate_rows_per_s": round(n / read_t),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--creators", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ie-bench-") as tmp:
        work = Path(tmp)
        sim = bench_simulate(args.creators, work)
        print(f"simulate {sim['creators']:,} creators -> {sim['posts']:,} posts, {sim['outcomes']:,} outcomes: "
              f"{sim['wall_s']} s, peak RSS {sim['peak_rss_gb']} GB (targets <= 60 s, <= 4 GB)")  # fmt: skip
        val = bench_validate(work / "world" / "posts.parquet")
        print(f"validate {val['rows']:,} posts in memory: {val['clean_s']} s = {val['clean_rows_per_s']:,} rows/s "
              "(target >= 5,000,000 rows/s)")  # fmt: skip
        print(f"validate {val['dirty_rows']:,} dirty posts ({val['dirty_rejected']:,} rejected): {val['dirty_s']} s = "
              f"{val['dirty_rows_per_s']:,} rows/s")  # fmt: skip
        print(f"read Parquet + validate: {val['read_parquet_and_validate_s']} s = "
              f"{val['read_parquet_and_validate_rows_per_s']:,} rows/s")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "polars": pl.__version__},
        "simulate": sim,
        "validate": val,
    }
    (args.out / "foundation.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"written {args.out / 'foundation.json'}")


if __name__ == "__main__":
    main()
