"""Creators known only by their export's averages per post (avg views, likes, comments): what reading them buys.

One command:

    .venv/bin/python benchmarks/bench_averages.py --data runs/demo --model models/demo [--creators 3000] [--briefs 4]
        [--plan-briefs 5] [--rankings ../shared/data/real/top1000_creators_2022]

1. **Simulated** (the truth scores it): ``--creators`` random creators of the world ``--data``, forecast for
   ``--briefs`` random briefs as three candidate bases of the same creators:
   - ``posts``: the creators and their posts (what the engine had before and still uses when posts exist);
   - ``none``: the creators alone (size, platform and peers), with the bundle's band widening for a creator without
     history, and ``none, before``: the same without it (as the engine was before);
   - ``averages``: the creators with the mean views, likes, comments and shares of their last ``AVERAGE_POSTS``
     posts before the brief as ``avg_*`` columns, and no posts (read by ``features.averages``).
   Per KPI: the median of forecast / true expected value, the ratio of their sums, the mean |log(forecast / true)|
   and the share of creators whose P10-P90 band holds the truth (mean over the briefs).
2. **Real** (``--rankings``, read in place): the top-1000 ranking snapshots imported, every TikTok and YouTube
   creator forecast for a brief on those platforms with and without the snapshot's averages, the forecast
   impressions over the reported average views and the forecast engagements over the reported average likes +
   comments (median, P10, P90; a sponsored post is expected under an average organic one). No outcomes exist
   there: this says how far the forecasts sit from what the export itself reports, not how accurate they are.

3. **Plans** (``--plan-briefs`` random briefs per goal: reach, clicks, conversions, revenue and net return) on the
   whole world as the three bases: each roster's true value over the oracle's, and the roster's forecast conversions
   over their truth (median, P10, P90 over every plan).

Figures land in benchmarks/results/averages.json and on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from influencer_engine.brief import Brief  # noqa: E402
from influencer_engine.config import load_tier_config  # noqa: E402
from influencer_engine.evaluation.planner_eval import _random_brief  # noqa: E402
from influencer_engine.features.averages import AVERAGE_POSTS, average_columns  # noqa: E402
from influencer_engine.forecast import CandidateBase, brief_as_of, candidate_base, forecast_base  # noqa: E402
from influencer_engine.importers.rankings import import_rankings  # noqa: E402
from influencer_engine.simulate.briefs import random_context  # noqa: E402
from influencer_engine.simulate.world import World  # noqa: E402
from influencer_engine.training.bundle import load_bundle  # noqa: E402

KPIS = ("reach", "impressions", "engagements", "clicks", "conversions")


def _averages(posts: pl.DataFrame, as_of: Any) -> pl.DataFrame:
    """creator_id and the mean views, likes, comments and shares of each creator's last AVERAGE_POSTS posts."""
    last = (
        posts.filter(pl.col("posted_at") < as_of)
        .sort("creator_id", "posted_at")
        .group_by("creator_id", maintain_order=True)
        .tail(AVERAGE_POSTS)
    )
    return last.group_by("creator_id").agg(
        *(pl.col(m).cast(pl.Float64).mean().alias(f"avg_{m}") for m in ("views", "likes", "comments", "shares"))
    )


def _scored(predictor: Any, base: CandidateBase, brief: Brief, truth: pl.DataFrame) -> dict[str, Any]:
    t = forecast_base(predictor, base, brief, load_tier_config()).table
    j = t.join(truth, on="creator_id", how="inner")
    out: dict[str, Any] = {"rows": j.height}
    for k in KPIS:
        f, y = j[k].cast(pl.Float64).to_numpy(), j[f"true_{k}"].cast(pl.Float64).to_numpy()
        ok = np.isfinite(f) & np.isfinite(y) & (f > 0) & (y > 0)
        lo, hi = j[f"{k}_p10"].to_numpy()[ok], j[f"{k}_p90"].to_numpy()[ok]
        r = np.log(f[ok] / y[ok])
        out[k] = {"median_ratio": float(np.exp(np.median(r))), "sum_ratio": float(f[ok].sum() / y[ok].sum()),
                  "mean_abs_log": float(np.mean(np.abs(r))),
                  "coverage": float(np.mean((lo <= y[ok]) & (y[ok] <= hi)))}  # fmt: skip
    if "history_source" in t.columns:
        out["history_source"] = dict(t["history_source"].value_counts().iter_rows())
    return out


def simulated(data: Path, model: Path, n: int, briefs: int, seed: int) -> dict[str, Any]:
    world, predictor = World.load(data), load_bundle(model)
    # the same bundle as before the no-history widening existed
    c = predictor.completion
    before = predictor if c is None else dataclasses.replace(predictor, completion=dataclasses.replace(
        c, widening={k: v for k, v in c.widening.items() if k != "history"}))  # fmt: skip
    creators = pl.read_parquet(data / "creators.parquet")
    posts = pl.read_parquet(data / "posts.parquet")
    rng = np.random.default_rng(seed)
    ids = sorted(rng.choice(creators["creator_id"].to_numpy(), size=min(n, creators.height), replace=False).tolist())
    keep = pl.col("creator_id").is_in(ids)
    c, p = creators.filter(keep), posts.filter(keep)
    per_brief: list[dict[str, Any]] = []
    for b in range(briefs):
        context = random_context(world.now, rng, b, prefix="averages")
        brief = _random_brief(context, "conversions", rng)
        truth = world.expected_outcomes(brief, ids).select("creator_id", *(pl.col(k).alias(f"true_{k}") for k in KPIS))
        avg = _averages(p, brief_as_of(brief))
        bare = c.drop(average_columns(), strict=False)
        bases = {
            "posts": candidate_base(c, p, source="posts"),
            "none": candidate_base(bare, None, source="none"),
            "averages": candidate_base(bare.join(avg, on="creator_id", how="left"), None, source="averages"),
        }
        row = {"brief": brief.brief_id, "start": str(brief.start_date), "category": brief.brand_category}
        row.update({name: _scored(predictor, base, brief, truth) for name, base in bases.items()})
        row["none, before"] = _scored(before, bases["none"], brief, truth)
        per_brief.append(row)
        print(
            f"brief {b + 1}/{briefs} {brief.brand_category} {brief.start_date}: "
            + "; ".join(f"{name} conversions |log| {row[name]['conversions']['mean_abs_log']:.3f}" for name in bases),
            flush=True,
        )
    summary: dict[str, Any] = {}
    for name in ("posts", "none, before", "none", "averages"):
        summary[name] = {k: {m: float(np.mean([r[name][k][m] for r in per_brief]))
                             for m in ("median_ratio", "sum_ratio", "mean_abs_log", "coverage")}
                         for k in KPIS}  # fmt: skip
    return {"creators": len(ids), "briefs": per_brief, "mean_over_briefs": summary}


PLAN_GOALS = ("reach", "clicks", "conversions", "revenue", "roas")


def plans(data: Path, model: Path, briefs: int, seed: int) -> dict[str, Any]:
    """Random briefs per goal planned on the whole world as three bases (posts, averages, none): each roster's true
    value over the oracle's (the solver on the true values at the quoted prices, under the brief's constraints), and
    its forecast conversions over its true ones."""
    from influencer_engine.config import load_planner_config
    from influencer_engine.forecast import load_candidate_base
    from influencer_engine.planner.knapsack import solve_additive
    from influencer_engine.planner.plan import plan_candidates, prepare
    from influencer_engine.planner.problem import PlanInfeasible, goal_values

    predictor, world, cfg, tiers = load_bundle(model), World.load(data), load_planner_config(), load_tier_config()
    full = load_candidate_base(data)
    bare = full.creators.drop(average_columns(), strict=False)
    rng = np.random.default_rng(seed + 1)
    shares: dict[str, dict[str, list[float]]] = {}
    picked: dict[str, list[float]] = {}
    for k in range(briefs):
        context = random_context(world.now, rng, k, prefix="averages-plan")
        probe = Brief(**context, goal="conversions")
        truth = world.expected_outcomes(probe)
        averaged = bare.join(_averages(full.posts, brief_as_of(probe)), on="creator_id", how="left")
        fcs = {"posts": forecast_base(predictor, full, probe, tiers),
               "averages": forecast_base(predictor, candidate_base(averaged, None, source="averages"), probe, tiers),
               "none": forecast_base(predictor, candidate_base(bare, None, source="none"), probe, tiers)}  # fmt: skip
        for goal in PLAN_GOALS:
            brief = _random_brief(context, goal, rng)
            prep0 = prepare(fcs["posts"], brief, cfg)
            table = prep0.candidates.table
            true_rows = table.select("creator_id", "price").join(
                truth.drop("platform", "tier", "followers", "format", "audience_fit", "affinity"), on="creator_id",
                how="left", maintain_order="left")  # fmt: skip
            values = goal_values(true_rows, goal, "expected", emv_cpm_usd=predictor.emv_cpm_usd)
            oracle = solve_additive(prep0.candidates.problem, values, gap=1e-4, time_limit=cfg.solver.time_limit_s)
            best = float(values[oracle.chosen].sum())
            value_of = dict(zip(table["creator_id"].to_list(), values.tolist(), strict=True))
            for name, fc in fcs.items():
                try:
                    prep = prepare(fc, brief, cfg)
                    plan, _ = plan_candidates(prep, cfg)
                except PlanInfeasible:
                    shares.setdefault(name, {}).setdefault(goal, []).append(float("nan"))
                    continue
                rows = prep.candidates.table[plan.chosen.tolist()]
                ids = rows["creator_id"].to_list()
                shares.setdefault(name, {}).setdefault(goal, []).append(sum(value_of.get(i, 0.0) for i in ids) / best)
                t = float(truth.filter(pl.col("creator_id").is_in(ids))["conversions"].sum())
                if t > 0:
                    picked.setdefault(name, []).append(float(rows["conversions"].sum()) / t)
        done = "; ".join(f"{n} " + ", ".join(f"{g} {v[-1]:.2f}" for g, v in shares[n].items()) for n in fcs)
        print(f"plan brief {k + 1}/{briefs}: {done}", flush=True)
    return {
        "briefs_per_goal": briefs,
        "oracle_share": {n: {g: float(np.nanmean(v)) for g, v in by.items()} for n, by in shares.items()},
        "picked_conversions_forecast_over_true": {
            n: {"median": float(np.median(v)), "p10": float(np.quantile(v, 0.1)), "p90": float(np.quantile(v, 0.9))}
            for n, v in picked.items()
        },
    }


def real(rankings: Path, model: Path) -> dict[str, Any]:
    predictor = load_bundle(model)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        import_rankings(rankings, Path(tmp))
        creators = pl.read_parquet(Path(tmp) / "creators.parquet")
    brief = Brief(brief_id="rankings", goal="engagement", budget=50_000, brand_category="entertainment",
                  start_date="2023-01-09", end_date="2023-01-31", platforms=["tiktok", "youtube"])  # fmt: skip
    reported = creators.select(
        "creator_id", "avg_views", (pl.col("avg_likes") + pl.col("avg_comments").fill_null(0)).alias("avg_inter")
    )
    for name, c in (("followers only", creators.drop(average_columns())), ("with the averages", creators)):
        t = forecast_base(predictor, candidate_base(c, None, source=name), brief, load_tier_config()).table
        j = t.join(reported, on="creator_id", how="inner")
        res: dict[str, Any] = {}
        for platform in ("tiktok", "youtube"):
            s = j.filter(pl.col("platform") == platform)
            res[platform] = {"creators": s.height}
            for kpi, rep in (("impressions", "avg_views"), ("engagements", "avg_inter")):
                f, y = s[kpi].cast(pl.Float64).to_numpy(), s[rep].cast(pl.Float64).to_numpy()
                ok = np.isfinite(f) & np.isfinite(y) & (f > 0) & (y > 0)
                r = np.log(f[ok] / y[ok])
                res[platform][f"{kpi}_over_{rep}"] = {
                    "rows": int(ok.sum()), "median": float(np.exp(np.median(r))),
                    "p10": float(np.exp(np.quantile(r, 0.1))), "p90": float(np.exp(np.quantile(r, 0.9))),
                    "log_corr": float(np.corrcoef(np.log(f[ok]), np.log(y[ok]))[0, 1]),
                }  # fmt: skip
        out[name] = res
        for platform, v in res.items():
            print(f"{name:18s} {platform:8s} " + "; ".join(
                f"{k}: median {m['median']:.2f} (P10 {m['p10']:.2f}, P90 {m['p90']:.2f}), log corr {m['log_corr']:.2f}"
                for k, m in v.items() if isinstance(m, dict)), flush=True)  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT / "runs" / "demo", help="a simulated world (with truth/)")
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "demo")
    ap.add_argument("--creators", type=int, default=3000)
    ap.add_argument("--briefs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plan-briefs", type=int, default=5, help="random briefs per goal planned on each base (0: none)")
    ap.add_argument("--rankings", type=Path, default=ROOT.parent / "shared" / "data" / "real" / "top1000_creators_2022")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "averages.json")
    a = ap.parse_args()
    t0 = time.perf_counter()
    result: dict[str, Any] = {"simulated": simulated(a.data, a.model, a.creators, a.briefs, a.seed)}
    for name, s in result["simulated"]["mean_over_briefs"].items():
        print(f"{name:12s} " + "; ".join(f"{k} {v['median_ratio']:.2f}x (sums {v['sum_ratio']:.2f}x) |log| "
                                         f"{v['mean_abs_log']:.3f} cover {v['coverage']:.1%}"
                                         for k, v in s.items()))  # fmt: skip
    if a.plan_briefs:
        result["plans"] = p = plans(a.data, a.model, a.plan_briefs, a.seed)
        for name, by in p["oracle_share"].items():
            f = p["picked_conversions_forecast_over_true"].get(name, {})
            print(f"plans on {name:9s}: oracle share " + ", ".join(f"{g} {v:.1%}" for g, v in by.items())
                  + (f"; picked creators' forecast / true conversions median {f['median']:.2f} "
                     f"(P10 {f['p10']:.2f}, P90 {f['p90']:.2f})" if f else ""))  # fmt: skip
    if a.rankings.is_dir():
        result["real"] = real(a.rankings, a.model)
    else:
        print(f"{a.rankings} not found: the real part is skipped")
    result["seconds"] = time.perf_counter() - t0
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"written: {a.out} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
