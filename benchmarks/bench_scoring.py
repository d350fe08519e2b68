"""Batch-scoring benchmark (issue 6), one command: python benchmarks/bench_scoring.py [--creators N] [--large M]

Candidates: N simulated creators (default 1M) with their post histories, written as worlds of up to 100k creators
(ids made unique per world). Model: models/demo (run `ie demo` first). Measured in one run:
1. `ie score` end to end with the local engine, as a subprocess: wall time, rows/s, peak memory (RSS of the
   process tree, polled).
2. Bare LightGBM predict of the same six models (all intervals) on the same feature matrix: the ratio of (1) to it;
   and the compiled trees (lleaves, as `ie score` uses them by default) on that matrix: speed-up and largest
   difference.
3. The same scoring with compiled trees (the default): with the inlined builds that `ie compile` makes ahead of time
   (built first, its time reported), and with the quick builds that `ie score` compiles on first use (a separate
   cache, warmed by a first run); and with `--no-compiled`.
4. The same scoring with the Dask engine on a local cluster of two workers.
5. M candidates (default 10M; 0 skips): copies of the N with new ids, streamed from Parquet by `ie score`: peak
   memory against the chunk size.
Writes benchmarks/results/scoring.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import psutil

from influencer_engine.brief import load_brief
from influencer_engine.config import load_simulator_config, load_tier_config
from influencer_engine.features.build import build_features
from influencer_engine.features.requests import brief_requests
from influencer_engine.modeling.compiled import compile_model, default_cache_dir
from influencer_engine.modeling.estimator import usable_cpus
from influencer_engine.modeling.matrix import to_matrix
from influencer_engine.simulate.generate import simulate_market
from influencer_engine.training.bundle import load_bundle

ROOT = Path(__file__).resolve().parents[1]
BRIEF = ROOT / "configs" / "briefs" / "fitness_january.toml"
WORLD = 100_000


def make_candidates(n: int, root: Path) -> list[Path]:
    cfg, tiers = load_simulator_config(), load_tier_config()
    folders = []
    for i in range(-(-n // WORLD)):
        size = min(WORLD, n - i * WORLD)
        folder = root / f"cands_{i}"
        folders.append(folder)
        if (folder / "posts.parquet").is_file():
            continue
        m = simulate_market(cfg, tiers, size, seed=100 + i)
        folder.mkdir(parents=True, exist_ok=True)
        prefix = pl.lit(f"w{i}-")
        cid = pl.concat_str([prefix, pl.col("creator_id")]).alias("creator_id")
        m.creators.with_columns(cid).write_parquet(folder / "creators.parquet")
        posts = m.posts.with_columns(cid, pl.concat_str([prefix, pl.col("post_id")]).alias("post_id"))
        posts.write_parquet(folder / "posts.parquet")
        print(f"simulated {size:,} creators, {m.posts.height:,} posts -> {folder}", flush=True)
    return folders


def replicate(folders: list[Path], n: int, root: Path) -> list[Path]:
    """``n`` candidates as copies of ``folders`` with new ids, streamed (never all in memory)."""
    have = sum(pl.scan_parquet(f / "creators.parquet").select(pl.len()).collect().item() for f in folders)
    out = []
    for j in range(-(-n // have)):
        folder = root / f"copy_{j}"
        out.append(folder)
        if (folder / "posts.parquet").is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        prefix = pl.lit(f"c{j}-")
        for table, ids in (("creators", ["creator_id"]), ("posts", ["creator_id", "post_id"])):
            frame = pl.concat([pl.scan_parquet(f / f"{table}.parquet") for f in folders])
            frame = frame.with_columns(pl.concat_str([prefix, pl.col(c)]).alias(c) for c in ids)
            tmp = folder / f".{table}.tmp.parquet"
            frame.sink_parquet(tmp)
            tmp.rename(folder / f"{table}.parquet")
        print(f"copy {j + 1}: {have:,} creators -> {folder}", flush=True)
    return out


def run_measured(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of a command and its children (``env``: added to this process's)."""
    t0 = time.perf_counter()
    proc = psutil.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        env={**os.environ, **env} if env else None)  # fmt: skip
    peak = 0
    while proc.poll() is None:
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except psutil.Error:
            rss = 0
        peak = max(peak, rss)
        time.sleep(0.05)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed with {proc.returncode}")
    return time.perf_counter() - t0, peak / 1e9


def bare_predict(folders: list[Path], model: Path) -> dict[str, float]:
    """LightGBM's own predict of the six models on the same feature matrix (built beforehand), timed alone."""
    bundle, brief, tiers = load_bundle(model), load_brief(BRIEF), load_tier_config()
    frames = []
    for f in folders:
        creators = pl.scan_parquet(f / "creators.parquet")
        feats = build_features(creators, pl.scan_parquet(f / "posts.parquet"), brief_requests(brief, creators), tiers,
                               peers=bundle.peers)  # fmt: skip
        frames.append(feats.collect())
    x = pl.concat(frames).select(bundle.features)
    del frames
    seconds, compiled_s, diff = 0.0, 0.0, 0.0
    for kpi, model_ in bundle.forecaster.models_.items():
        matrix = to_matrix(x, [str(n) for n in model_.feature_names_in_])
        t0 = time.perf_counter()
        ref = model_.booster_.predict(matrix, raw_score=True)
        seconds += time.perf_counter() - t0
        try:  # the same model compiled (cached by its hash, as `ie score` does)
            fast, _, _ = compile_model(model_.booster_, default_cache_dir(), bundle.kpi_hashes[kpi], "lleaves")
        except Exception as exc:  # report, do not fail the benchmark
            print(f"compiled trees unavailable: {exc}")
            continue
        t0 = time.perf_counter()
        got = fast(matrix, usable_cpus())
        compiled_s += time.perf_counter() - t0
        diff = max(diff, float(np.max(np.abs(got - ref))))
    return {
        "rows": float(x.height),
        "seconds": seconds,
        "compiled_seconds": compiled_s,
        "compiled_speedup": seconds / compiled_s if compiled_s else 0.0,
        "compiled_max_abs_diff": diff,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creators", type=int, default=1_000_000)
    ap.add_argument("--large", type=int, default=10_000_000, help="candidates streamed for peak memory (0: skip)")
    ap.add_argument("--chunk-creators", type=int, default=50_000)
    args = ap.parse_args()
    model = ROOT / "models" / "demo"
    if not (model / "manifest.json").is_file():
        raise SystemExit("models/demo is missing: run `ie demo` first")
    work = ROOT / "runs" / "bench_scoring"
    folders = make_candidates(args.creators, work)
    demo = str(ROOT / "runs" / "demo")
    # the inlined builds, ahead of time (once per model and machine; nothing to do when cached already)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "influencer_engine.cli", "compile", "--model", str(model)], check=True,
                   capture_output=True)  # fmt: skip
    compile_s = time.perf_counter() - t0
    print(f"ie compile (inlined builds, or loads them when cached): {compile_s:.1f} s", flush=True)
    # the quick builds `ie score` compiles on first use, in a cache of their own (the default cache has the inlined)
    quick = {"IE_COMPILED_CACHE": str(work / "quick_cache")}
    warm = [sys.executable, "-m", "influencer_engine.cli", "score", "--brief", str(BRIEF), "--model", str(model),
            "--restart", "--candidates", demo, "--out", str(work / "warm")]  # fmt: skip
    subprocess.run(warm, check=True, capture_output=True, env={**os.environ, **quick})
    base = [sys.executable, "-m", "influencer_engine.cli", "score", "--brief", str(BRIEF), "--model", str(model),
            "--chunk-creators", str(args.chunk_creators), "--restart", "--candidates", *map(str, folders)]  # fmt: skip
    results: dict[str, object] = {"creators": args.creators, "chunk_creators": args.chunk_creators,
                                  "ie_compile_seconds": compile_s}  # fmt: skip
    wall, peak = run_measured([*base, "--out", str(work / "out_local"), "--no-compiled"])  # LightGBM's predict
    results["local"] = {"seconds": wall, "rows_per_s": args.creators / wall, "peak_rss_gb": peak}
    print(f"local engine: {wall:.1f} s, {args.creators / wall:,.0f} creators/s, peak RSS {peak:.2f} GB", flush=True)
    bare = bare_predict(folders, model)
    results["bare_predict"] = bare
    results["ratio_end_to_end_to_bare_predict"] = wall / bare["seconds"]
    print(
        f"bare LightGBM predict: {bare['seconds']:.1f} s; end-to-end / bare = {wall / bare['seconds']:.2f}; "
        f"compiled predict (inlined builds) {bare['compiled_seconds']:.1f} s (x{bare['compiled_speedup']:.2f}, "
        f"max diff {bare['compiled_max_abs_diff']:.3g})",
        flush=True,
    )
    wall_c, peak_c = run_measured([*base, "--out", str(work / "out_compiled")])
    results["local_compiled"] = {"seconds": wall_c, "rows_per_s": args.creators / wall_c, "peak_rss_gb": peak_c,
                                 "compiled": json.loads((work / "out_compiled" / "manifest.json").read_text())
                                 ["compiled_trees"]}  # fmt: skip
    results["ratio_end_to_end_compiled_to_bare_predict"] = wall_c / bare["seconds"]
    print(f"local engine, compiled trees (inlined builds of `ie compile`): {wall_c:.1f} s, "
          f"{args.creators / wall_c:,.0f} creators/s; end-to-end / bare LightGBM predict = "
          f"{wall_c / bare['seconds']:.2f}", flush=True)  # fmt: skip
    wall_q, peak_q = run_measured([*base, "--out", str(work / "out_quick")], env=quick)
    results["local_compiled_quick_builds"] = {"seconds": wall_q, "rows_per_s": args.creators / wall_q,
                                              "peak_rss_gb": peak_q,
                                              "ratio_to_bare_predict": wall_q / bare["seconds"]}  # fmt: skip
    print(f"local engine, compiled trees (quick builds, no `ie compile`): {wall_q:.1f} s, "
          f"{args.creators / wall_q:,.0f} creators/s; end-to-end / bare LightGBM predict = "
          f"{wall_q / bare['seconds']:.2f}", flush=True)  # fmt: skip
    wall_d, peak_d = run_measured([*base, "--out", str(work / "out_dask"), "--engine", "dask"])
    results["dask_local_cluster"] = {"seconds": wall_d, "rows_per_s": args.creators / wall_d, "peak_rss_gb": peak_d}
    print(f"dask engine (local cluster, 2 workers): {wall_d:.1f} s, peak RSS {peak_d:.2f} GB")
    a = pl.read_parquet(work / "out_local" / "scores").sort("creator_id")
    b = pl.read_parquet(work / "out_dask" / "scores").sort("creator_id")
    # both engines predict with the compiled trees by default: the Dask rows are compared with the compiled local rows
    results["dask_equals_local"] = b.equals(pl.read_parquet(work / "out_compiled" / "scores").sort("creator_id"))
    c = pl.read_parquet(work / "out_compiled" / "scores").sort("creator_id")
    floats = [k for k in a.columns if a[k].dtype.is_float()]
    rel = max(float(((c[k] - a[k]).abs() / a[k].abs().clip(1e-12)).max() or 0.0) for k in floats)
    results["compiled_same_rows_and_text"] = a.drop(floats).equals(c.drop(floats))
    results["compiled_max_rel_diff"] = rel  # the same leaves summed in another order: last bits of a double
    q = pl.read_parquet(work / "out_quick" / "scores").sort("creator_id")
    results["quick_same_rows_and_text"] = q.drop(floats).equals(c.drop(floats))
    results["quick_max_rel_diff_to_inlined"] = max(
        float(((q[k] - c[k]).abs() / c[k].abs().clip(1e-12)).max() or 0.0) for k in floats
    )
    # peak memory against the chunk size (what --limit-memory sizes chunks from), on the first 200k candidates
    by_chunk = {}
    for size in (10_000, 25_000, 50_000):
        cmd = [*base[: base.index("--candidates")], "--candidates", *map(str, folders[:2]), "--out",
               str(work / f"out_chunk_{size}")]  # fmt: skip
        cmd[cmd.index("--chunk-creators") + 1] = str(size)
        by_chunk[size] = run_measured(cmd)[1]
    results["peak_rss_gb_by_chunk_creators"] = by_chunk
    print("peak RSS by --chunk-creators: " + ", ".join(f"{k:,}: {v:.2f} GB" for k, v in by_chunk.items()), flush=True)
    path = ROOT / "benchmarks" / "results" / "scoring.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")  # the figures so far, before the long streamed run
    if args.large:
        copies = replicate(folders, args.large, work)
        n_large = sum(pl.scan_parquet(f / "creators.parquet").select(pl.len()).collect().item() for f in copies)
        large = [sys.executable, "-m", "influencer_engine.cli", "score", "--brief", str(BRIEF), "--model", str(model),
                 "--chunk-creators", str(args.chunk_creators), "--restart", "--candidates", *map(str, copies),
                 "--out", str(work / "out_large")]  # fmt: skip
        wall_l, peak_l = run_measured(large)
        results["large"] = {"creators": n_large, "seconds": wall_l, "rows_per_s": n_large / wall_l,
                            "peak_rss_gb": peak_l, "chunks": json.loads((work / "out_large" / "manifest.json")
                                                                         .read_text())["chunks"]}  # fmt: skip
        print(
            f"{n_large:,} candidates streamed: {wall_l:.0f} s, {n_large / wall_l:,.0f} creators/s, "
            f"peak RSS {peak_l:.2f} GB",
            flush=True,
        )
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"dask rows equal local rows: {results['dask_equals_local']}; wrote {path}")


if __name__ == "__main__":
    main()
