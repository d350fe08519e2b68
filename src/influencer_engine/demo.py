"""`ie demo`: the main job end to end on the simulated default world, as one library function.

Simulate a market, validate it against the contracts, summarize it, train the KPI models with their backtest,
forecast the example brief for every creator and plan its roster. Each step reports one line (or a block) through
``say``; the CLI prints them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from influencer_engine.brief import load_brief
from influencer_engine.config import (
    config_path,
    load_model_config,
    load_planner_config,
    load_simulator_config,
    load_tier_config,
)
from influencer_engine.dataset import summarize, validate_dataset
from influencer_engine.errors import EngineError
from influencer_engine.forecast import forecast_brief, profile_urls
from influencer_engine.io import Manifest, write_csv
from influencer_engine.modeling.compiled import enabled as compiled_enabled
from influencer_engine.planner.plan import Plan, plan, prepare, readable_roster, write_plan
from influencer_engine.simulate.generate import simulate_market
from influencer_engine.simulate.world import write_world
from influencer_engine.training.bundle import load_bundle
from influencer_engine.training.train import train_models

__all__ = ["DEFAULT_BRIEF", "DemoResult", "run_demo"]

DEFAULT_BRIEF = "briefs/fitness_january.toml"


@dataclass(frozen=True)
class DemoResult:
    world: Path
    bundle: Path | None
    plan: Plan | None
    outputs: dict[str, Path]


def run_demo(
    out: Path,
    *,
    creators: int,
    seed: int,
    model_out: Path,
    brief: Path | None = None,
    train: bool = True,
    track: bool = True,
    training_root: Path = Path("training"),
    say: Callable[[str], None] = print,
    on_fit: Callable[[str], None] | None = None,
) -> DemoResult:
    """The demo's six steps (three without ``train``); see the module doc. ``on_fit`` hears of every booster fit
    (``training.train.training_fits`` of them) while step 4 trains."""
    steps = 6 if train else 3
    cfg, tiers = load_simulator_config(), load_tier_config()
    t0 = time.perf_counter()
    market = simulate_market(cfg, tiers, creators, seed)
    write_world(market, cfg, tiers, seed, out)
    say(f"1/{steps} simulated {creators:,} creators (seed {seed}) in {time.perf_counter() - t0:.1f}s -> {out}")
    ds = validate_dataset(out)
    ds.to_manifest(Manifest(command="validate world", out_dir=out / "validation", params={"path": str(out)})).write()
    bad = sum(r.rows_rejected for r in ds.results.values())
    say(f"2/{steps} validated {sum(r.rows_in for r in ds.results.values()):,} rows: {bad:,} rejected "
        f"(manifest: {out / 'validation' / 'manifest.json'})")  # fmt: skip
    say(f"3/{steps} summary")
    say(summarize({name: r.valid for name, r in ds.results.items()}))
    if bad:
        raise EngineError(f"the simulated world broke its own contracts ({bad} rows).", fix="report this as a bug")
    if not train:
        return DemoResult(out, None, None, {})

    t1 = time.perf_counter()
    r = train_models(out, model_out, load_model_config(), tiers, track=track, training_root=training_root,
                     on_fit=on_fit)  # fmt: skip
    won = sum(r.backtest.beats.values())
    say(f"4/{steps} trained {len(r.backtest.metrics)} KPI models in {time.perf_counter() - t1:.1f}s -> "
        f"{model_out}; backtest: beats every baseline on {won}/{len(r.backtest.beats)} KPIs, conversions "
        f"per dollar Spearman {r.backtest.per_dollar.get('model', float('nan')):.3f} "
        f"(report: {model_out / 'report' / 'evaluation.md'})")  # fmt: skip

    b = load_brief(brief or config_path(DEFAULT_BRIEF))
    predictor = load_bundle(model_out)
    if compiled_enabled():  # compiled trees where exactly equal (cached per model)
        reports = predictor.compile()  # the KPI models, then the completion models
        used = [r for r in reports if r.used]
        say(f"  compiled trees for {len(used)} of {len(reports)} models, equal to LightGBM "
            f"({sum(r.compile_s or 0.0 for r in used):.1f} s)")  # fmt: skip
    fc = forecast_brief(predictor, out, b, tiers)
    # every candidate's forecasts as roster.csv lays them out (readable: identity first, units, sensible digits)
    named = fc.table.join(fc.base.creators.select("creator_id", "handle"), on="creator_id", how="left",
                          maintain_order="left")  # fmt: skip
    named = named.with_columns(profile_urls(named))
    forecasts = write_csv(readable_roster(named, b.goal), out / "forecasts" / f"{b.brief_id}.csv")
    top = named.filter(pl.col("price").is_not_null()).sort("cpa", nulls_last=True).head(5)
    say(f"5/{steps} forecast {fc.table.height:,} creators for brief {b.brief_id} -> {forecasts}; lowest expected "
        "cost per conversion:")  # fmt: skip
    for row in top.iter_rows(named=True):
        who = f"@{row['handle']}" if row["handle"] else row["creator_id"]
        say(f"  {who:22} {row['platform']:9} {row['tier']:5} price ${row['price']:>9,.0f}  "
            f"conversions {row['conversions']:6.1f} (P10 {row['conversions_p10']:.1f}, P90 "
            f"{row['conversions_p90']:.1f})  CPA ${row['cpa']:,.2f}")  # fmt: skip

    t2 = time.perf_counter()
    planner = load_planner_config()
    result = plan(prepare(fc, b, planner), planner)
    paths = write_plan(result, out / "plan")
    t = result.totals
    say(f"6/{steps} planned brief {b.brief_id} in {time.perf_counter() - t2:.1f}s: {t.creators} creators, "
        f"spend ${t.spend:,.0f} of ${b.budget:,.0f}, expected {b.goal} {t.goal.expected:,.0f} "
        f"(P10 {t.goal.p10 or 0:,.0f}, P90 {t.goal.p90 or 0:,.0f}), unique reach {t.unique_reach.expected:,.0f}; "
        f"certified gap {t.solver.certified_gap:.2%} -> {paths['roster.csv']}")  # fmt: skip
    if t.budget_left is not None:
        say(f"  {t.budget_left.reason}")
    for note in result.notes:
        say(f"  note: {note}")
    return DemoResult(out, model_out, result, {"forecasts": forecasts, **paths})
