"""Do forecasts track a real base's own engagement levels? The shared Instagram set, scored by a bundle trained on
the simulated market.

    .venv/bin/python benchmarks/bench_real_levels.py --model models/demo [--history-share 0.8]

The shared set (../shared/data/real/instagram_posts_2015_2020, read in place) is imported to a temporary folder.
Each creator's first ``--history-share`` of posts (to the end of that month) are its history; its later posts (at
least ``--min-after``) give its observed level: the median interactions (likes + comments) per post. A brief
starting at each creator's cutoff (Instagram, the creators' own country ID) is forecast through the one forecast
path, and the forecast engagements of a
sponsored post are compared with that observed level, as MAE of log1p, beside:

- the trailing median of the creator's last 20 posts before the cutoff (what a planner would read off the profile);
- the peer median: followers x the median engagement rate of the base's creators of the same tier (history before
  the cutoff), the level a creator with no history of its own would be given;
- the bias of each: the median of log(forecast / observed).

The engagement rates per follower (median over creators) are printed too: forecast, observed, trailing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from influencer_engine.brief import Brief, Constraints, TargetAudience
from influencer_engine.config import load_tier_config
from influencer_engine.forecast import forecast_base, load_candidate_base
from influencer_engine.importers.instagram_posts import import_instagram_posts
from influencer_engine.training.bundle import load_bundle

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "instagram_posts_2015_2020"


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(np.log1p(a) - np.log1p(b))))


def bias(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.median(np.log(np.maximum(a, 1e-9) / np.maximum(b, 1e-9))))


def measure(model: Path, share: float, min_after: int, source: Path = REAL) -> dict[str, object]:
    tiers = load_tier_config()
    predictor = load_bundle(model)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "ig"
        import_instagram_posts(source, data)
        base = load_candidate_base(data)
    posts = base.posts.with_columns((pl.col("likes").fill_null(0) + pl.col("comments").fill_null(0)).alias("inter"))
    # each creator's cutoff: the first day of the month after its first ``share`` of posts (by time)
    cut = (
        posts.sort("posted_at")
        .group_by("creator_id", maintain_order=True)
        .agg(pl.col("posted_at").get((pl.len() * share).cast(pl.Int64).clip(0, pl.len() - 1)).alias("t"))
        .with_columns(pl.col("t").dt.offset_by("1mo").dt.truncate("1mo").alias("cutoff"))
        .select("creator_id", "cutoff")
    )
    posts = posts.join(cut, on="creator_id")
    before = posts.filter(pl.col("posted_at") < pl.col("cutoff")).sort("posted_at")
    after = posts.filter(pl.col("posted_at") >= pl.col("cutoff"))
    observed = after.group_by("creator_id").agg(pl.len().alias("n_after"), pl.col("inter").median().alias("observed"))
    trailing = before.group_by("creator_id").agg(pl.len().alias("n_before"),
                                                 pl.col("inter").tail(20).median().alias("trailing"))  # fmt: skip
    forecasts = []
    # one brief per cutoff month; each creator is forecast from its posts before its own cutoff only
    for when, ids in cut.group_by("cutoff").agg(pl.col("creator_id")).sort("cutoff").iter_rows():
        start = when.date()
        brief = Brief(brief_id=f"real-levels-{start}", goal="engagement", budget=1e9, brand_category="fashion",
                      target=TargetAudience(countries=("ID",)), start_date=start, end_date=start,
                      platforms=("instagram",), constraints=Constraints())  # fmt: skip
        sub = base.subset(ids)
        # its own posts before the cutoff; peers from the whole base's posts before the cutoff (point in time)
        history = dataclasses.replace(sub, posts=sub.posts.filter(pl.col("posted_at") < pl.lit(when)))
        forecasts.append(forecast_base(predictor, history, brief, tiers).table.select(
            "creator_id", "tier", pl.col("engagements").alias("forecast")))  # fmt: skip
    rows = (
        pl.concat(forecasts)
        .join(base.creators.select("creator_id", "followers"), on="creator_id")
        .join(observed, on="creator_id")
        .join(trailing, on="creator_id")
        .filter((pl.col("n_after") >= min_after) & (pl.col("n_before") >= 1))
    )
    er = (pl.col("trailing") / pl.col("followers")).median().over("tier")
    rows = rows.with_columns((er * pl.col("followers")).alias("peer"))
    obs = rows["observed"].to_numpy()
    out: dict[str, object] = {"creators": rows.height, "history_share": share, "model": str(model)}
    for name in ("forecast", "trailing", "peer"):
        v = rows[name].to_numpy()
        out[name] = {"mae_log1p": mae(v, obs), "median_log_bias": bias(v, obs),
                     "median_rate_per_follower": float(np.median(v / rows["followers"].to_numpy()))}  # fmt: skip
    out["observed_median_rate_per_follower"] = float(np.median(obs / rows["followers"].to_numpy()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("models/demo"))
    ap.add_argument("--history-share", type=float, default=0.8, help="share of each creator's posts used as history")
    ap.add_argument("--min-after", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not REAL.is_dir():
        raise SystemExit(f"{REAL} is absent: this benchmark reads the shared real data in place")
    t0 = time.perf_counter()
    res = measure(args.model, args.history_share, args.min_after)
    print(json.dumps(res, indent=2))
    print(f"{time.perf_counter() - t0:.0f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
