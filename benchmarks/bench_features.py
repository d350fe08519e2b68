"""Feature benchmarks (issue 3). Run: python benchmarks/bench_features.py [--creators 100000] [--big-copies 10]

1. Features for every creator of a 100k-creator world (~4.8M posts) for one brief, Polars, in memory: wall
   time (best of 2) and peak RSS of the process. Target <= 10 s.
2. The same features written plainly in pandas (benchmarks/pandas_features.py), same input, same run: wall time
   and peak RSS; every feature column asserted equal (floats to 1e-9 relative). Target: Polars >= 10x faster.
3. ~50M posts from Parquet (the world's posts copied under new creator ids), built partition by partition
   (`--partitions 4,16,32`): wall time and peak RSS per partition count, showing memory bounded by the chunk.

Needs the bench extra (pandas, pyarrow): pip install -e ".[bench]".
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
BRIEF = HERE.parent / "configs" / "briefs" / "fitness_january.toml"


def _peak_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3)


def _phase(args: list[str]) -> dict[str, float]:
    """Run this script in a child process for one phase; it prints one JSON line."""
    res = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def phase_polars(data: Path, out: Path) -> None:
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.features.build import build_features
    from influencer_engine.features.requests import brief_requests

    creators, posts = pl.read_parquet(data / "creators.parquet"), pl.read_parquet(data / "posts.parquet")
    brief, tiers = load_brief(BRIEF), load_tier_config()
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        frame = build_features(creators.lazy(), posts.lazy(), brief_requests(brief, creators.lazy()), tiers).collect()
        times.append(time.perf_counter() - t0)
    frame.write_parquet(out)
    print(
        json.dumps({"rows": frame.height, "posts": posts.height, "wall_s": round(min(times), 3), "peak_gb": _peak_gb()})
    )


def phase_pandas(data: Path, out: Path) -> None:
    import pandas as pd

    sys.path.insert(0, str(HERE))
    from influencer_engine.brief import load_brief
    from influencer_engine.features.requests import brief_requests
    from pandas_features import pandas_features

    creators = pd.read_parquet(data / "creators.parquet")
    posts = pd.read_parquet(data / "posts.parquet")
    requests = brief_requests(load_brief(BRIEF), pl.scan_parquet(data / "creators.parquet")).collect().to_pandas()
    t0 = time.perf_counter()
    frame = pandas_features(creators, posts, requests)
    wall = time.perf_counter() - t0
    frame.to_parquet(out)
    print(json.dumps({"rows": len(frame), "wall_s": round(wall, 3), "peak_gb": _peak_gb()}))


def compare(polars_out: Path, pandas_out: Path) -> int:
    """Assert every feature equal between the two builds; return the number of columns compared."""
    from influencer_engine.features.build import feature_columns

    a = pl.read_parquet(polars_out).sort("request_id")
    b = pl.read_parquet(pandas_out).sort("request_id")
    assert a.height == b.height, (a.height, b.height)
    assert a["request_id"].equals(b["request_id"])
    for name in feature_columns():
        x, y = a[name], b[name]
        if x.dtype in (pl.String, pl.Categorical) or isinstance(x.dtype, pl.Enum):
            assert x.cast(pl.String).equals(y.cast(pl.String)), name
            continue
        xf, yf = x.cast(pl.Float64), y.cast(pl.Float64).fill_nan(None)
        assert (xf.is_null() == yf.is_null()).all(), f"{name}: nulls differ"
        both = pl.DataFrame({"x": xf, "y": yf}).drop_nulls()
        diff = both.select(((pl.col("x") - pl.col("y")).abs() / (pl.col("y").abs() + 1e-12)).max()).item() or 0.0
        assert diff < 1e-9 or both.select((pl.col("x") - pl.col("y")).abs().max()).item() < 1e-12, f"{name}: {diff}"
    return len(feature_columns())


def phase_big(data: Path, partitions: int) -> None:
    from influencer_engine.config import load_tier_config
    from influencer_engine.features.pipeline import build_feature_table

    t0 = time.perf_counter()
    m = build_feature_table(data, data.parent / f"big-features-{partitions}", load_tier_config(),
                            brief=None, partitions=partitions)  # fmt: skip
    print(json.dumps({"posts": m.tables["posts"].rows_in, "rows": m.tables["requests"].rows_out,
                      "wall_s": round(time.perf_counter() - t0, 2), "peak_gb": _peak_gb()}))  # fmt: skip


def make_big(world: Path, target: Path, copies: int) -> int:
    """Copy the world's creators and posts ``copies`` times under new ids, as a folder of Parquet files."""
    (target / "creators").mkdir(parents=True)
    (target / "posts").mkdir()
    for i in range(copies):
        suffix = pl.lit(f"_{i:02d}")
        pl.scan_parquet(world / "creators.parquet").with_columns(
            pl.concat_str(pl.col("creator_id"), suffix).alias("creator_id")
        ).sink_parquet(target / "creators" / f"part-{i:02d}.parquet")
        pl.scan_parquet(world / "posts.parquet").with_columns(
            pl.concat_str(pl.col("creator_id"), suffix).alias("creator_id"),
            pl.concat_str(pl.col("post_id"), suffix).alias("post_id"),
        ).sink_parquet(target / "posts" / f"part-{i:02d}.parquet")
    return int(pl.scan_parquet(target / "posts").select(pl.len()).collect().item())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--creators", type=int, default=100_000)
    ap.add_argument("--big-copies", type=int, default=10)
    ap.add_argument("--partitions", default="16", help="partition count(s) for the big run, e.g. 4,16,64")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase == "polars":
        return phase_polars(args.data, args.target)
    if args.phase == "pandas":
        return phase_pandas(args.data, args.target)
    if args.phase == "big":
        return phase_big(args.data, int(args.partitions))

    record: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="ie-bench-features-") as tmp:
        work = Path(tmp)
        world = work / "world"
        subprocess.run([str(Path(sys.executable).parent / "ie"), "simulate", "--creators", str(args.creators),
                        "--seed", "7", "--out", str(world)], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        pol = _phase(["--phase", "polars", "--data", str(world), "--target", str(work / "polars.parquet")])
        print(f"polars: {pol['rows']:,} creators, {pol['posts']:,} posts: {pol['wall_s']} s, peak {pol['peak_gb']} GB "
              "(target <= 10 s)")  # fmt: skip
        pan = _phase(["--phase", "pandas", "--data", str(world), "--target", str(work / "pandas.parquet")])
        n = compare(work / "polars.parquet", work / "pandas.parquet")
        speedup = pan["wall_s"] / pol["wall_s"]
        print(f"pandas: {pan['wall_s']} s, peak {pan['peak_gb']} GB; polars {speedup:.1f}x faster (target >= 10x); "
              f"{n} feature columns equal")  # fmt: skip
        record.update(polars=pol, pandas=pan, speedup=round(speedup, 2), columns_equal=n)
        if args.big_copies > 0:
            big = work / "big"
            posts = make_big(world, big, args.big_copies)
            runs = []
            for parts in (int(x) for x in str(args.partitions).split(",")):
                b = _phase(["--phase", "big", "--data", str(big), "--partitions", str(parts)])
                print(f"{posts:,} posts from Parquet, {parts} partitions: {b['wall_s']} s, peak {b['peak_gb']} GB")
                runs.append({**b, "partitions": parts})
            record["big"] = runs
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "features.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"written {args.out / 'features.json'}")


if __name__ == "__main__":
    main()
