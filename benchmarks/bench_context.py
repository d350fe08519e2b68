"""Does the model know a brand category's season? One command:

    python benchmarks/bench_context.py [--seeds 7,8] [--creators 20000] [--categories fitness,fashion,travel,food]
        [--work DIR] [--season-prior 0.15]

The simulator multiplies conversions by a season per brand category and month (configs/simulator.toml: fitness
x1.35 in January, retail x1.25 in November, travel x1.25 in June and July; six categories flat). The example brief is
a fitness brief in January. For each seed (a world of ``--creators``, trained as ``ie train`` trains it; both kept in
``--work`` and reused):

1. **Candidates' level by context.** The example brief with its brand category set to each of ``--categories`` and
   its dates moved to each month of the year after the data end: forecast over true sums of every candidate, for
   reach, clicks and conversions, beside the true season. A model that knew the season would hold conversions level
   across months; one that learned a season pooled over categories carries the retail curve into every category.
2. **What the data could teach.** Per (category, month) cell of the training campaigns: campaigns, creator rows, and
   observed over true sums of conversions (the luck of delivery a cell's season is read through).
3. **The context error out of fold.** Funnels fitted on two thirds of the creators forecast the other third
   (the mean correction's folds): per cell, forecast over true sums of conversions; its spread across cells against
   the spread of sums of the same number of rows drawn at random (what per-row error alone gives), and the excess:
   the error common to a category and month that a plan's creators share.
4. **Could a season be learned from the campaigns?** Per category, a smooth yearly curve (a constant and the first
   harmonic of the start date's day of the year) fitted to the campaigns' sums of observed conversions over their
   out-of-fold forecasts (quasi-Poisson, each coefficient with a normal prior of sd ``--season-prior``), taken
   relative to the overall level (the mean correction's job). Applied to part 1's candidate levels, the months after
   the data end: the spread of log(forecast / true) across the contexts before and after, and the curve beside the
   true season. The same fit to the true sums instead of the observed ones says what the luck of delivery costs.

Figures land in benchmarks/results/context.json (``--out``) and on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ceiling import _world  # noqa: E402
from influencer_engine.brief import load_brief  # noqa: E402
from influencer_engine.config import load_model_config, load_simulator_config, load_tier_config  # noqa: E402
from influencer_engine.features.build import feature_columns  # noqa: E402
from influencer_engine.forecast import forecast_base, load_candidate_base  # noqa: E402
from influencer_engine.io import read_table  # noqa: E402
from influencer_engine.modeling.forecaster import KPIForecaster, targets_of  # noqa: E402
from influencer_engine.modeling.metrics import sum_ratio  # noqa: E402
from influencer_engine.schema import CATEGORIES  # noqa: E402
from influencer_engine.simulate.model import _season  # noqa: E402
from influencer_engine.simulate.world import World  # noqa: E402
from influencer_engine.training.bundle import load_bundle  # noqa: E402
from influencer_engine.training.data import load_training_table  # noqa: E402
from influencer_engine.training.train import train_models  # noqa: E402

BRIEF = ROOT / "configs" / "briefs" / "fitness_january.toml"
KPIS = ("reach", "clicks", "conversions")


def seasons() -> dict[str, list[float]]:
    """The simulator's conversion multiplier per category and month (its own table: ``simulate.model._season``)."""
    cfg, months = load_simulator_config(), np.arange(1, 13)
    return {cat: [float(v) for v in _season(cfg, np.full(12, i), months)] for i, cat in enumerate(CATEGORIES)}


def months_after(end: date) -> list[date]:
    """The 5th of each of the 12 months after ``end``."""
    out, y, m = [], end.year, end.month
    for _ in range(12):
        m += 1
        if m > 12:
            y, m = y + 1, 1
        out.append(date(y, m, 5))
    return out


def _col(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].cast(pl.Float64).fill_null(0.0).to_numpy()


def candidate_levels(world_dir: Path, model_dir: Path, categories: list[str]) -> list[dict[str, Any]]:
    """Part 1: forecast over true sums of every candidate per category and month of the example brief."""
    world, tiers, predictor = World.load(world_dir), load_tier_config(), load_bundle(model_dir)
    base, brief, season = load_candidate_base(world_dir), load_brief(BRIEF), seasons()
    rows = []
    for cat in categories:
        for start in months_after(world.now):
            b = brief.model_copy(update={"brand_category": cat, "start_date": start,
                                         "end_date": date(start.year, start.month, 28)})  # fmt: skip
            t = forecast_base(predictor, base, b, tiers).table
            truth = world.expected_outcomes(b, t["creator_id"].to_list())
            j = t.select("creator_id", *KPIS).join(
                truth.select("creator_id", *(pl.col(k).alias(f"true_{k}") for k in KPIS)), on="creator_id"
            )
            levels = {k: sum_ratio(_col(j, k), _col(j, f"true_{k}")) for k in KPIS}
            rows.append({"category": cat, "month": start.month, "start": str(start),
                         "true_season": season[cat][start.month - 1], **levels})  # fmt: skip
    return rows


def with_truth(world_dir: Path, table: pl.DataFrame, oof: np.ndarray) -> pl.DataFrame:
    """The training rows with their out-of-fold forecast of conversions (``oof``) and true expected conversions
    (``t``), where both the truth and the observed conversions are known (parts 2-4)."""
    truth = read_table(world_dir / "truth" / "expected_outcomes.parquet")
    frame = table.select("campaign_id", "creator_id", "brand_category", "month", "as_of", "conversions").with_columns(
        pl.Series("oof", oof)
    ).join(truth.select("campaign_id", "creator_id", pl.col("true_conversions").alias("t")),
           on=["campaign_id", "creator_id"], how="left")  # fmt: skip
    return frame.filter(pl.col("t").is_not_null() & pl.col("conversions").is_not_null())


def cells(frame: pl.DataFrame) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Parts 2 and 3: per (category, month) cell of the training campaigns (``with_truth``), observed and out-of-fold
    forecast over true sums of conversions; and the spread of the latter across cells against random rows of the same
    counts."""
    grouped = (
        frame.group_by(pl.col("brand_category").cast(pl.String).alias("category"), "month")
        .agg(
            pl.col("campaign_id").n_unique().alias("campaigns"),
            pl.len().alias("rows"),
            (pl.col("conversions").sum() / pl.col("t").sum()).alias("observed_over_true"),
            (pl.col("oof").sum() / pl.col("t").sum()).alias("oof_over_true"),
        )
        .sort("category", "month")
    )
    lr = np.log(grouped["oof_over_true"].to_numpy())
    f, t = frame["oof"].to_numpy(), frame["t"].to_numpy()
    rng = np.random.default_rng(0)
    drawn = []
    for _ in range(20):
        for n in grouped["rows"].to_numpy():
            idx = rng.integers(0, len(f), n)
            drawn.append(np.log(f[idx].sum() / t[idx].sum()))
    spread = {"cells_sd": float(lr.std()), "random_rows_sd": float(np.std(drawn)),
              "excess_sd": float(np.sqrt(max(lr.var() - np.var(drawn), 0.0)))}  # fmt: skip
    return grouped.to_dicts(), spread


def _harmonics(day_of_year: np.ndarray) -> np.ndarray:
    a = 2 * np.pi * np.asarray(day_of_year, dtype=np.float64) / 365.25
    return np.column_stack([np.ones_like(a), np.sin(a), np.cos(a)])


def _quasi_poisson(y: np.ndarray, f: np.ndarray, x: np.ndarray, prior_sd: float, phi: float) -> np.ndarray:
    """Coefficients b of y ~ f exp(x b), dispersion ``phi``, normal prior N(0, prior_sd^2) on each (Newton)."""
    b, prior = np.zeros(x.shape[1]), np.eye(x.shape[1]) / prior_sd**2
    for _ in range(100):
        mu = f * np.exp(x @ b)
        step = np.linalg.solve((x * mu[:, None]).T @ x / phi + prior, x.T @ (y - mu) / phi - prior @ b)
        b += step
        if np.abs(step).max() < 1e-9:
            break
    return b


def learned_seasons(frame: pl.DataFrame, prior_sd: float) -> dict[str, dict[str, list[float]]]:
    """Part 4: per category, a yearly curve by month (the 15th) relative to the overall level, fitted to campaign
    sums of observed conversions (``observed``) and of true ones (``true``) over the out-of-fold forecasts
    (``with_truth``'s rows)."""
    frame = frame.with_columns(pl.col("brand_category").cast(pl.String)).filter(pl.col("oof").is_not_nan())
    days = np.array([date(2025, m, 15).timetuple().tm_yday for m in range(1, 13)])
    out: dict[str, dict[str, list[float]]] = {}
    for name, col in (("observed", "conversions"), ("true", "t")):
        camp = frame.group_by("campaign_id", "brand_category").agg(
            pl.col(col).sum().cast(pl.Float64).alias("y"), pl.col("oof").sum().alias("f"),
            pl.col("as_of").first().dt.ordinal_day().alias("day"),
        ).filter(pl.col("f") > 0).sort("campaign_id")  # fmt: skip
        y, f = camp["y"].to_numpy(), camp["f"].to_numpy()
        level = y.sum() / f.sum()
        phi = float(np.sum((y - level * f) ** 2 / (level * f)) / max(len(y) - 1, 1))  # Pearson, one level
        for cat in sorted(set(camp["brand_category"].to_list())):
            sel = (camp["brand_category"] == cat).to_numpy()
            b = _quasi_poisson(y[sel], f[sel] * level, _harmonics(camp["day"].to_numpy()[sel]), prior_sd, phi)
            out.setdefault(cat, {})[name] = [float(v) for v in np.exp(_harmonics(days) @ b)]
    return out


def season_check(levels: list[dict[str, Any]], learned: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """Part 4 applied to part 1: sd across contexts of log(candidates' conversions forecast / true), as forecast and
    times each learned curve."""
    lv = np.array([r["conversions"] for r in levels])
    out: dict[str, Any] = {"contexts": len(levels), "sd_as_forecast": float(np.log(lv).std())}
    for name in ("observed", "true"):
        curve = np.array([learned.get(r["category"], {}).get(name, [1.0] * 12)[r["month"] - 1] for r in levels])
        out[f"sd_with_{name}_curve"] = float(np.log(lv * curve).std())
    return out


def out_of_fold(table: pl.DataFrame, seed: int) -> np.ndarray:
    """The mean correction's out-of-fold raw forecasts of conversions (funnels fitted on the other folds' creators)."""
    m = KPIForecaster(load_model_config(), random_state=seed)
    targets = {k: np.asarray(v, dtype=np.float64) for k, v in targets_of(table).items()}
    m._cross_fit(table.select(feature_columns()), targets, table["creator_id"].to_numpy(), None, None)
    return np.asarray(m.oof_["conversions"], dtype=np.float64)


def run_seed(seed: int, creators: int, categories: list[str], work: Path, prior_sd: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    world, model = work / f"world_{seed}", work / f"model_{seed}"
    if not (world / "truth" / "world.json").is_file():
        _world(creators, seed, world)
    if not (model / "manifest.json").is_file():
        train_models(world, model, load_model_config(), load_tier_config(), seed=0, track=False, register=False)
    levels = candidate_levels(world, model, categories)
    table = load_training_table(world, load_tier_config()).frame  # read once for both
    oof = out_of_fold(table, 0)
    joined = with_truth(world, table, oof)
    cell_rows, spread = cells(joined)
    learned = learned_seasons(joined, prior_sd)
    return {
        "levels": levels,
        "cells": cell_rows,
        "spread": spread,
        "learned_seasons": learned,
        "season_check": season_check(levels, learned),
        "seconds": time.perf_counter() - t0,
    }


def report(seed: str, r: dict[str, Any]) -> str:
    lines = [
        f"## seed {seed} ({r['seconds']:.0f} s)",
        "",
        "Candidates' conversions forecast / true (the true season in brackets), by the brief's start month:",
        "",
    ]
    levels = pl.DataFrame(r["levels"])
    months = levels.filter(pl.col("category") == levels["category"][0])["month"].to_list()
    lines.append("| category | " + " | ".join(str(m) for m in months) + " |")
    lines.append("|---|" + "---|" * len(months))
    for cat in dict.fromkeys(levels["category"].to_list()):
        sub = levels.filter(pl.col("category") == cat)
        lines.append(
            f"| {cat} | "
            + " | ".join(f"{c:.2f} [{s:.2f}]" for c, s in zip(sub["conversions"], sub["true_season"], strict=True))
            + " |"
        )
    for k in ("reach", "clicks"):
        lines.append(f"\n{k}: forecast / true {levels[k].min():.2f}-{levels[k].max():.2f} over the same contexts")
    c = pl.DataFrame(r["cells"])
    fitness_january = c.filter((pl.col("category") == "fitness") & (pl.col("month") == 1)).to_dicts()
    lines.append(
        f"\nTraining cells (category x month): {c.height}, {int(c['campaigns'].min())}-"
        f"{int(c['campaigns'].max())} campaigns each; observed / true conversions per cell "
        f"{c['observed_over_true'].quantile(0.1):.2f}-{c['observed_over_true'].quantile(0.9):.2f} (10th-90th "
        f"percentile), fitness in January: "
        + ", ".join(f"{row['campaigns']} campaigns, {row['observed_over_true']:.2f}" for row in fitness_january)
    )
    if r["spread"]:
        s = r["spread"]
        lines.append(
            f"Out of fold, log(forecast / true) per cell: sd {s['cells_sd']:.3f}; random rows of the same "
            f"counts {s['random_rows_sd']:.3f}; excess (common to a category and month) {s['excess_sd']:.3f}"
        )
    if "season_check" in r:
        s = r["season_check"]
        lines.append(
            f"\nA season learned per category (part 4), applied to the {s['contexts']} contexts above: sd of "
            f"log(forecast / true) {s['sd_as_forecast']:.3f} as forecast, {s['sd_with_observed_curve']:.3f} with the "
            f"curve learned from observed conversions, {s['sd_with_true_curve']:.3f} from true ones. Curves (Jan, "
            "Apr, Jul, Oct; observed / true / the simulator's):"
        )
        season = seasons()
        for cat, curves in r["learned_seasons"].items():
            pick = (0, 3, 6, 9)
            lines.append(
                f"- {cat}: "
                + " / ".join(
                    ", ".join(f"{v[i]:.2f}" for i in pick) for v in (curves["observed"], curves["true"], season[cat])
                )
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="7,8")
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--categories", default="fitness,fashion,travel,food")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_context")
    ap.add_argument("--season-prior", type=float, default=0.15, help="prior sd of a learned season's coefficients")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "context.json")
    a = ap.parse_args()
    results = {}
    for seed in (int(s) for s in a.seeds.split(",")):
        results[str(seed)] = run_seed(seed, a.creators, a.categories.split(","), a.work, a.season_prior)
        print(report(str(seed), results[str(seed)]), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"creators": a.creators, "seeds": results}, indent=1) + "\n", encoding="utf-8")
    print(f"written: {a.out}")


if __name__ == "__main__":
    main()
