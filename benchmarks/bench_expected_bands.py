"""Do plan bands hold the roster's true expected value, and if not, is the band too narrow or the forecast off? One
command:

    python benchmarks/bench_expected_bands.py [--seeds 7,8] [--creators 20000] [--per-goal 20] [--briefs 8]

For each seed: simulate the world, train a bundle on it (its backtest measures each KPI's error about the true
expected values, ``modeling.intervals.ExpectedError``), then

1. **later campaigns** (the backtest's test rows, rosters the simulated brands hired): per KPI, the measured share
   and common part, and how often the P10-P90 band of each campaign's expected total, drawn from that error alone
   (``evaluation.planner_eval.expected_draws``), holds its true total;
2. **planned rosters** (``evaluate_planner``, ``--per-goal`` random briefs per goal): how often the plan's band (of
   deliveries) and the band of the expected total hold the true value, the rosters' forecast over true sums, and the
   forecast over true sums of every eligible candidate (the level the roster was picked from);
3. **the candidates' level with and without the mean correction**: over ``--briefs`` random briefs, the forecast over
   the true sums of every candidate, with the bundle's out-of-fold corrections as shipped, with the correction as
   the fold funnels measured it (not carried over to the final funnel: ``Balance.transfer``), and with them removed
   (raw boosters). The corrections are measured on hired rows; this says whether they carry over to the candidates
   a plan picks from.

(2) runs twice in the same run: as shipped, and with the band of the expected total drawn as before the covariances of
sums (``ExpectedError.segment`` and ``context``: the error common to a platform and tier, and to a campaign, read on
the scale of sums; before, the part common to a campaign read on log1p residuals). (1) reports both bands too.

Figures land in benchmarks/results/expected_bands.json and on stdout.
"""

from __future__ import annotations

import argparse
import copy
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ceiling import _world  # noqa: E402
from influencer_engine.brief import Brief  # noqa: E402
from influencer_engine.config import load_model_config, load_planner_config, load_tier_config  # noqa: E402
from influencer_engine.evaluation.planner_eval import evaluate_planner, expected_draws  # noqa: E402
from influencer_engine.forecast import forecast_base, load_candidate_base  # noqa: E402
from influencer_engine.modeling.intervals import ExpectedError, segments_of  # noqa: E402
from influencer_engine.modeling.metrics import sum_ratio  # noqa: E402
from influencer_engine.modeling.predictor import Predictor  # noqa: E402
from influencer_engine.simulate.briefs import random_context  # noqa: E402
from influencer_engine.simulate.world import World  # noqa: E402
from influencer_engine.training.bundle import load_bundle  # noqa: E402
from influencer_engine.training.train import train_models  # noqa: E402

KPIS = ("reach", "impressions", "engagements", "clicks", "conversions", "revenue")


def later_campaigns(preds: pl.DataFrame, errors: dict[str, ExpectedError]) -> dict[str, Any]:
    """Per KPI: the measured error and the share of later campaigns whose true total the band of the expected total
    holds (campaigns of two or more creators)."""
    out: dict[str, Any] = {}
    for k in KPIS:
        e = errors.get(k)
        if e is None or e.share is None:
            continue
        cols = (f"model__{k}_p10", f"model__{k}_p50", f"model__{k}_p90", f"model__{k}", f"true_{k}")
        d = preds.select("campaign_id", pl.Series("segment", segments_of(preds)),
                         *(pl.col(c).cast(pl.Float64) for c in cols)).drop_nulls()  # fmt: skip
        before = dataclasses.replace(e, segment=None, context=None)
        held: dict[str, list[bool]] = {"now": [], "before": []}
        for i, (_, g) in enumerate(d.group_by("campaign_id", maintain_order=True)):
            if g.height < 2:
                continue
            m = g.drop("campaign_id", "segment").to_numpy()
            for name, err in (("now", e), ("before", before)):
                drawn = expected_draws(m[:, :4], err, 1000, np.random.default_rng(i),
                                       g["segment"].to_numpy()).sum(axis=1)  # fmt: skip
                lo, hi = np.quantile(drawn, [0.1, 0.9])
                held[name].append(bool(lo <= m[:, 4].sum() <= hi))
        out[k] = {"share": e.share, "common": e.common, "segment": e.segment, "context": e.context, "rows": e.rows,
                  "campaigns": len(held["now"]),
                  "band_holds_truth": float(np.mean(held["now"])) if held["now"] else None,
                  "band_holds_truth_log1p_common": float(np.mean(held["before"])) if held["before"] else None,
                  "forecast_over_true": sum_ratio(d[f"model__{k}"].to_numpy(), d[f"true_{k}"].to_numpy())}  # fmt: skip
    return out


def _variant(predictor: Predictor, mode: str) -> Predictor:
    """A copy of the bundle: ``"raw"`` without its out-of-fold mean and per-dollar corrections (the boosters' own
    means), ``"as_measured"`` with the mean correction as the fold funnels measured it (not carried over to the final
    funnel: ``Balance.transfer`` 0, the build before it existed), ``"log1p_common"`` with the error about expected
    values drawn as before the covariances of sums (``ExpectedError.segment`` and ``context`` None: the part common
    to a campaign read on log1p residuals)."""
    forecaster = copy.copy(predictor.forecaster)
    models = {}
    for kpi, m in predictor.forecaster.models_.items():
        c = copy.copy(m)
        if mode == "raw":
            for attr in ("balance_", "per_dollar_"):
                if hasattr(c, attr):
                    delattr(c, attr)
        elif mode == "as_measured" and hasattr(c, "balance_"):
            c.balance_ = c.balance_.with_transfer(0.0)
        elif mode == "log1p_common" and hasattr(c, "expected_error_"):
            c.expected_error_ = dataclasses.replace(c.expected_error_, segment=None, context=None)
        models[kpi] = c
    forecaster.models_ = models
    return dataclasses.replace(predictor, forecaster=forecaster)


VARIANTS = ("corrected", "as_measured", "raw")


def candidate_levels(predictor: Predictor, world_dir: Path, briefs: int) -> dict[str, Any]:
    """Forecast over true sums of every candidate for ``briefs`` random briefs, per KPI: as shipped (the correction
    carried over to the final funnel), with the correction as measured, and raw."""
    world, tiers = World.load(world_dir), load_tier_config()
    base = load_candidate_base(world_dir)
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, list[float]]] = {v: {} for v in VARIANTS}
    predictors = {"corrected": predictor, "as_measured": _variant(predictor, "as_measured"),
                  "raw": _variant(predictor, "raw")}  # fmt: skip
    for k in range(briefs):
        brief = Brief(**random_context(world.now, rng, k), goal="conversions")
        truth = world.expected_outcomes(brief)
        for name, p in predictors.items():
            t = forecast_base(p, base, brief, tiers).table
            j = t.select("creator_id", *(k2 for k2 in KPIS if k2 in t.columns)).join(
                truth.select("creator_id", *(pl.col(k2).alias(f"true_{k2}") for k2 in KPIS if k2 in truth.columns)),
                on="creator_id", how="inner")  # fmt: skip
            for kpi in KPIS:
                if kpi in j.columns and f"true_{kpi}" in j.columns:
                    f = j[kpi].cast(pl.Float64).fill_null(0.0).to_numpy()
                    tr = j[f"true_{kpi}"].cast(pl.Float64).fill_null(0.0).to_numpy()
                    out[name].setdefault(kpi, []).append(sum_ratio(f, tr))
    return {name: {kpi: {"min": min(v), "median": float(np.median(v)), "max": max(v)} for kpi, v in d.items()}
            for name, d in out.items()}  # fmt: skip


def planned(predictor: Predictor, world: Path, per_goal: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per goal and pooled: the plan's band and the expected-value band against the truth, levels, oracle share."""
    ev = evaluate_planner(predictor, world, load_planner_config(), load_tier_config(), per_goal=per_goal, seed=0)
    per = {
        goal: {"briefs": e["briefs"], "band_holds_truth": e["picked"]["band_holds_truth"],
               "expected_band_holds_truth": e["picked"]["expected_band_holds_truth"],
               "roster_kpi_forecast_over_true": e["picked"]["roster_kpi_forecast_over_true"],
               "base_forecast_over_true": e["picked"]["base_forecast_over_true"],
               "planner_share": e["planner"]["mean_share"]}
        for goal, e in ev.summary.items()
    }  # fmt: skip
    rows = ev.rows
    pooled = {
        "band_holds_truth": float(rows["band_holds_truth"].drop_nulls().mean()),  # type: ignore[arg-type]
        "expected_band_holds_truth": float(rows["expected_band_holds_truth"].drop_nulls().mean()),  # type: ignore[arg-type]
        "briefs": rows.height,
    }
    return per, pooled


def run_seed(seed: int, creators: int, per_goal: int, briefs: int, work: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    world = _world(creators, seed, work / f"world_{seed}")
    trained = train_models(world, work / f"model_{seed}", load_model_config(), load_tier_config(), track=False,
                           register=False)  # fmt: skip
    predictor = load_bundle(work / f"model_{seed}")
    errors = {k: m.expected_error for k, m in predictor.forecaster.models_.items()}
    out: dict[str, Any] = {"later_campaigns": later_campaigns(trained.backtest.predictions, errors)}
    out["transfer"] = {k: float(np.exp(m.balance_.transfer)) for k, m in predictor.forecaster.models_.items()
                       if hasattr(m, "balance_")}  # fmt: skip
    out["planned"], out["planned_pooled"] = planned(predictor, world, per_goal)
    out["planned_log1p_common"], out["planned_pooled_log1p_common"] = planned(
        _variant(predictor, "log1p_common"), world, per_goal)  # fmt: skip
    out["candidate_levels"] = candidate_levels(predictor, world, briefs)
    out["seconds"] = time.perf_counter() - t0
    return out


def _f(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return f"{v:.0%}" if pct else f"{v:.2f}"


def report(results: dict[str, Any]) -> str:
    lines = []
    for seed, r in results.items():
        lines.append(f"## seed {seed} ({r['seconds']:.0f} s)")
        lines.append("later campaigns: KPI share common segment context | band of the expected total holds the "
                     "truth (before: log1p common) | forecast/true")  # fmt: skip
        for k, c in r["later_campaigns"].items():
            lines.append(f"  {k:12} {c['share']:.2f} {c['common']:.2f} {_f(c['segment'])} {_f(c['context'])} | "
                         f"{_f(c['band_holds_truth'], True):>4} ({_f(c['band_holds_truth_log1p_common'], True)}) of "
                         f"{c['campaigns']} | {_f(c['forecast_over_true'])}")  # fmt: skip
        lines.append("the final funnel's level over its fold funnels' (the correction's carry-over): "
                     + ", ".join(f"{k} x{v:.3f}" for k, v in r["transfer"].items()))  # fmt: skip
        before = "expected band without the sums' covariances (before)"
        for tag, key in (("as shipped", ""), (before, "_log1p_common")):
            lines.append(f"planned rosters, {tag}: goal | plan band holds truth | expected band holds truth | roster "
                         "f/t median (P10-P90) | candidates f/t median | oracle share")  # fmt: skip
            for g, p in r[f"planned{key}"].items():
                rr, b = p["roster_kpi_forecast_over_true"], p["base_forecast_over_true"]
                held = f"{_f(p['band_holds_truth'], True):>4} | {_f(p['expected_band_holds_truth'], True):>4}"
                lines.append(f"  {g:12} {held} | {_f(rr['median'])} ({_f(rr['p10'])}-{_f(rr['p90'])}) | "
                             f"{_f(b['median'])} | {_f(p['planner_share'], True)}")  # fmt: skip
            pp = r[f"planned_pooled{key}"]
            lines.append(f"  pooled over {pp['briefs']} briefs: plan band {pp['band_holds_truth']:.1%}, expected band "
                         f"{pp['expected_band_holds_truth']:.1%}")  # fmt: skip
        lines.append("candidates' forecast/true sums over random briefs (median, min-max): as shipped | correction as "
                     "measured | raw")  # fmt: skip
        for k in KPIS:
            cells = [r["candidate_levels"][v].get(k) for v in VARIANTS]
            if all(cells):
                lines.append(f"  {k:12} " + " | ".join(f"{c['median']:.2f} ({c['min']:.2f}-{c['max']:.2f})"
                                                        for c in cells if c))  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="7,8")
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--per-goal", type=int, default=20)
    ap.add_argument("--briefs", type=int, default=8, help="random briefs for the candidates' level")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "expected_bands.json")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ie-bench-bands-") as tmp:
        for seed in seeds:
            results[str(seed)] = run_seed(seed, args.creators, args.per_goal, args.briefs, Path(tmp))
            print(report({str(seed): results[str(seed)]}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"creators": args.creators, "per_goal": args.per_goal, "seeds": results},
                                   indent=1, default=str), encoding="utf-8")  # fmt: skip
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
