"""Partial data: plan a bare export (required columns and posts) against the same base with everything given.

One command, on a simulated world whose truth scores both:

    .venv/bin/python benchmarks/bench_partial.py --data runs/demo --model models/demo --briefs 10

Two candidate bases of the same creators and posts:
- **full**: the world's creators table (quoted prices, audience shares, credibility where the world reports them);
- **export**: what a real export has: creator_id, platform, handle, followers, following, country and categories
  (``--bare`` drops the last three too). Prices are estimated from the bundle's rate card, audiences assumed from
  the platform's (country's, category's) average, credibility estimated.

Measured on the same run, for ``--briefs`` random briefs per goal (conversions, engagement, clicks, revenue):
- the true value of each planned roster (the world's expected outcomes) as a share of the oracle roster's (the
  solver on the true values at the quoted prices), for full and export;
- the export roster's spend at the creators' quoted prices over the budget (what the estimated prices hide), and the
  quoted/estimated price ratio of the creators it picks (median, P10, P90): the optimizer's pull toward
  under-estimated prices;
- per-creator P10-P90 coverage of the true expected value (conversions, reach) for full and export, with the
  export's bands widened by its assumptions, and without the widening;
- the completion models' held-out error beside the platform-median baseline (from the bundle's manifest);
- with ``--holdout-world DIR`` (another simulated world, out of sample for the bundle): the P10-P90 coverage of the
  observed outcomes of its hires, forecast from everything given and from the stripped rows completed (with and
  without the widening), and the rate card's error on its quoted prices. This is what the bands promise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from influencer_engine.brief import Brief
from influencer_engine.config import load_planner_config, load_tier_config
from influencer_engine.evaluation.planner_eval import _random_brief
from influencer_engine.forecast import candidate_base, forecast_base, load_candidate_base
from influencer_engine.planner.knapsack import solve_additive
from influencer_engine.planner.plan import plan_candidates, prepare
from influencer_engine.planner.problem import PlanInfeasible, goal_values
from influencer_engine.registry import BASE_FORMAT
from influencer_engine.simulate.briefs import random_context
from influencer_engine.simulate.world import World
from influencer_engine.training.bundle import load_bundle

GOALS_MEASURED = ("conversions", "engagement", "clicks", "revenue")
EXPORT_COLUMNS = ("creator_id", "platform", "handle", "followers", "following", "country", "categories")
BARE_COLUMNS = ("creator_id", "platform", "handle", "followers")


def _coverage(table: pl.DataFrame, truth: pl.DataFrame, kpi: str) -> dict[str, float]:
    t = table.select("creator_id", f"{kpi}_p10", f"{kpi}_p90", "audience_source").join(
        truth.select("creator_id", pl.col(kpi).alias("_true")), on="creator_id", how="inner")  # fmt: skip
    inside = (t["_true"] >= t[f"{kpi}_p10"]) & (t["_true"] <= t[f"{kpi}_p90"])
    return {"all": float(inside.mean() or 0.0), "rows": float(t.height)}


def _quoted_price(creators: pl.DataFrame) -> pl.DataFrame:
    """creator_id and the quoted list price of the creator's base format (null when the world quotes none)."""
    fmt = pl.col("platform").replace_strict(BASE_FORMAT)
    price = pl.coalesce(*(pl.when(fmt == f).then(pl.col(f"price_{f}")) for f in set(BASE_FORMAT.values())))
    return creators.select("creator_id", price.cast(pl.Float64).alias("quoted"))


def holdout_coverage(predictor: Any, world: Path, rows: int) -> dict[str, Any]:
    """P10-P90 coverage of observed outcomes of ``world``'s latest ``rows`` hires: given, completed, unwidened."""
    from influencer_engine.features.build import build_features
    from influencer_engine.forecast import assumed_kinds
    from influencer_engine.modeling.completion import ASSUMPTION_KINDS, widen
    from influencer_engine.training.completion import strip
    from influencer_engine.training.data import load_training_table

    tiers = load_tier_config()
    table = load_training_table(world, tiers)
    frame = table.frame.tail(rows)
    requests = table.inputs["requests"].join(frame.select("request_id"), on="request_id", how="semi")
    ids = frame.select("creator_id").unique()
    creators = table.inputs["creators"].join(ids, on="creator_id", how="semi")
    posts = table.inputs["posts"].join(ids, on="creator_id", how="semi")
    order = frame.select("request_id")
    completion = predictor.completion
    features = predictor.features

    def built(c: pl.DataFrame) -> pl.DataFrame:
        out = build_features(c.lazy(), posts.lazy(), requests.lazy(), tiers, peers=predictor.peers).collect()
        return order.join(out, on="request_id", how="left", maintain_order="left")

    bare = creators
    for kind in ASSUMPTION_KINDS:
        bare = strip(bare, kind)
    seen = built(bare)
    completed, prov = completion.complete(bare, seen.sort("as_of", "request_id", descending=True))
    given_fc = predictor.predict(built(creators).select(features))
    done = built(completed)
    done_fc = predictor.predict(done.select(features))
    # the hires' own priced formats: the provenance per creator says which kinds were completed
    kinds = assumed_kinds(order.join(frame.select("request_id", "creator_id"), on="request_id", how="left")
                          .join(prov, on="creator_id", how="left", maintain_order="left"))  # fmt: skip
    out: dict[str, Any] = {"rows": frame.height}
    for kpi in ("reach", "engagements", "clicks", "conversions"):
        y = frame[kpi].cast(pl.Float64).to_numpy()
        ok = np.isfinite(y)
        var = np.zeros(frame.height)
        for kind in ASSUMPTION_KINDS:
            var += kinds[kind] * completion.widening.get(kind, {}).get(kpi, 0.0) ** 2
        bands = {"given": given_fc.quantiles[kpi], "completed_unwidened": done_fc.quantiles[kpi],
                 "completed": widen(done_fc.quantiles[kpi], np.sqrt(var))}  # fmt: skip
        for name, q in bands.items():
            inside = (y >= q[:, 0]) & (y <= q[:, 2])
            out[f"{kpi}:{name}"] = float(inside[ok].mean())
        ratio = np.log(np.maximum(done_fc.mean[kpi], 1e-9) / np.maximum(given_fc.mean[kpi], 1e-9))
        out[f"{kpi}:completed_vs_given_log_bias"] = float(np.mean(ratio))
    priced = frame.select("request_id", pl.col("tier").cast(pl.String), "price").join(
        done.select("request_id", pl.col("price").alias("est")), on="request_id").drop_nulls()  # fmt: skip
    lr = np.log(priced["price"].to_numpy() / priced["est"].to_numpy())
    lo, hi = completion.price.residual
    out["price_log_error"] = {"rows": len(lr), "mean": float(lr.mean()), "mae": float(np.abs(lr).mean()),
                              "p10": float(np.quantile(lr, 0.1)), "p90": float(np.quantile(lr, 0.9)),
                              "inside_estimate_p10_p90": float(np.mean((lr >= lo) & (lr <= hi))),
                              "mean_by_tier": {t: float(lr[priced["tier"].to_numpy() == t].mean())
                                               for t in sorted(set(priced["tier"].to_list()))}}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("runs/demo"))
    ap.add_argument("--model", type=Path, default=Path("models/demo"))
    ap.add_argument("--briefs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bare", action="store_true", help="required columns only (no following, country, category)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    ap.add_argument("--holdout-world", type=Path, default=None, help="another world: band coverage out of sample")
    ap.add_argument("--holdout-rows", type=int, default=4000)
    args = ap.parse_args()

    t0 = time.perf_counter()
    predictor = load_bundle(args.model)
    assert predictor.completion is not None
    no_widening = dataclasses.replace(predictor, completion=dataclasses.replace(predictor.completion, widening={}))
    cfg, tiers = load_planner_config(), load_tier_config()
    world = World.load(args.data)
    full = load_candidate_base(args.data)
    cols = BARE_COLUMNS if args.bare else EXPORT_COLUMNS
    export = candidate_base(full.creators.select(cols), full.posts, source="export")
    quoted = _quoted_price(full.creators)
    rng = np.random.default_rng(args.seed)
    rows: list[dict[str, Any]] = []
    coverage: dict[str, list[dict[str, float]]] = {}
    for k in range(args.briefs):
        context = random_context(world.now, rng, k, prefix="partial")
        probe = Brief(**context, goal="conversions")
        fc_full = forecast_base(predictor, full, probe, tiers)
        fc_export = forecast_base(predictor, export, probe, tiers)
        truth = world.expected_outcomes(probe)
        if k < 3:
            fc_plain = forecast_base(no_widening, export, probe, tiers)
            for kpi in ("conversions", "reach"):
                for name, fc in (("full", fc_full), ("export", fc_export), ("export_unwidened", fc_plain)):
                    coverage.setdefault(f"{name}:{kpi}", []).append(_coverage(fc.table, truth, kpi))
        for goal in GOALS_MEASURED:
            brief = _random_brief(context, goal, rng)
            try:
                prep_full = prepare(fc_full, brief, cfg)
                plan_full, _ = plan_candidates(prep_full, cfg)
                prep_export = prepare(fc_export, brief, cfg)
                plan_export, _ = plan_candidates(prep_export, cfg)
            except PlanInfeasible:
                continue
            # the oracle: the true values at the quoted prices, under the brief's constraints
            table = prep_full.candidates.table
            true_rows = table.select("creator_id", "price").join(
                truth.drop("platform", "tier", "followers", "format", "audience_fit", "affinity"), on="creator_id",
                how="left", maintain_order="left")  # fmt: skip
            true_values = goal_values(true_rows, goal, "expected", emv_cpm_usd=predictor.emv_cpm_usd)
            oracle = solve_additive(prep_full.candidates.problem, true_values, gap=1e-4,
                                    time_limit=cfg.solver.time_limit_s)  # fmt: skip
            value_of = dict(zip(table["creator_id"].to_list(), true_values.tolist(), strict=True))
            oracle_value = float(true_values[oracle.chosen].sum())

            ids_full = prep_full.candidates.table["creator_id"].to_numpy()[plan_full.chosen].tolist()
            full_value = float(sum(value_of.get(i, 0.0) for i in ids_full))
            picked = prep_export.candidates.table[plan_export.chosen.tolist()].select("creator_id", "price").join(
                quoted, on="creator_id", how="left", maintain_order="left")  # fmt: skip
            ratio = (picked["quoted"] / picked["price"]).drop_nulls().to_numpy()
            # creators the export picks but the full data would filter (e.g. reported credibility below the floor)
            # count at their true value; their quoted price is what the brand would pay
            ids_export = picked["creator_id"].to_list()
            export_truth = truth.filter(pl.col("creator_id").is_in(ids_export)).select(
                "creator_id", *[c for c in ("reach", "impressions", "engagements", "clicks", "conversions", "revenue")]
            )
            export_value = float(goal_values(export_truth.join(picked.select("creator_id", pl.col("quoted")
                                                                            .alias("price")), on="creator_id"),
                                             goal, "expected", emv_cpm_usd=predictor.emv_cpm_usd).sum())  # fmt: skip
            rows.append({
                "brief": k, "goal": goal, "budget": brief.budget, "oracle": oracle_value,
                "full_share": full_value / oracle_value if oracle_value > 0 else None,
                "export_share": export_value / oracle_value if oracle_value > 0 else None,
                "export_quoted_spend_share": float(picked["quoted"].fill_null(picked["price"]).sum()) / brief.budget,
                "export_estimated_spend_share": float(picked["price"].sum()) / brief.budget,
                "price_ratio_median": float(np.median(ratio)) if len(ratio) else None,
                "price_ratio_p10": float(np.quantile(ratio, 0.1)) if len(ratio) else None,
                "price_ratio_p90": float(np.quantile(ratio, 0.9)) if len(ratio) else None,
                "full_creators": len(ids_full), "export_creators": len(ids_export),
            })  # fmt: skip
    frame = pl.DataFrame(rows)
    summary = (
        frame.group_by("goal")
        .agg(
            pl.len().alias("briefs"),
            pl.col("full_share").mean(),
            pl.col("export_share").mean(),
            pl.col("export_estimated_spend_share").mean(),
            pl.col("export_quoted_spend_share").mean(),
            pl.col("price_ratio_median").median(),
            pl.col("price_ratio_p10").median(),
            pl.col("price_ratio_p90").median(),
        )
        .sort("goal")
    )
    cover = {k: float(np.mean([c["all"] for c in v])) for k, v in coverage.items()}
    manifest = json.loads((args.model / "manifest.json").read_text())
    holdout = {n: m["state"]["holdout"] | {"residual_p10_p90": m["state"]["residual"]}
               for n, m in manifest["completion"]["models"].items()}  # fmt: skip
    pl.Config.set_tbl_cols(20)
    pl.Config.set_tbl_width_chars(200)
    print(f"world {args.data}, model {args.model}, base {'bare' if args.bare else 'export'} columns {cols}")
    print(summary)
    print("per-creator P10-P90 coverage of the true expected value (3 briefs):")
    for k, v in sorted(cover.items()):
        print(f"  {k:32} {v:.1%}")
    print("completion models, held-out (price: log USD; credibility: share):")
    for n, h in holdout.items():
        print(f"  {n:12} rows {h['rows']:.0f}  MAE model {h['mae_model']:.3f}  MAE platform median "
              f"{h['mae_platform_median']:.3f}  residual P10/P90 {h['residual_p10_p90'][0]:+.3f}/"
              f"{h['residual_p10_p90'][1]:+.3f}")  # fmt: skip
    print("band widening (extra log sd) per assumption:", json.dumps(manifest["completion"]["widening"]))
    held = None
    if args.holdout_world is not None:
        held = holdout_coverage(predictor, args.holdout_world, args.holdout_rows)
        print(f"out of sample ({args.holdout_world}, latest {held['rows']} hires): P10-P90 coverage of observed "
              f"outcomes, and mean log(completed / given forecast)")  # fmt: skip
        for k, v in held.items():
            if k not in ("rows", "price_log_error"):
                print(f"  {k:40} {v:.1%}" if "bias" not in k else f"  {k:40} {v:+.3f}")
        print(f"  rate card on its quoted prices: {held['price_log_error']}")
    print(f"{time.perf_counter() - t0:.0f} s")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        doc = {"summary": summary.to_dicts(), "briefs": frame.to_dicts(), "coverage": cover, "holdout": holdout,
               "widening": manifest["completion"]["widening"], "out_of_sample": held}  # fmt: skip
        (args.out / "partial.json").write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
