"""Issue 18 benchmark: do the P10-P90 bands hold 80% within each history bucket, not only on average?

    python benchmarks/bench_uncertainty.py [--creators 20000] [--seed 7] [--thin-share 0.4] [--keep 0.1]
                                           [--periods 1] [--period-share 0.2] [--pooled-only]

A simulated world's creators all have long histories by the time they are hired, so the 0-5 bucket is empty there.
Real candidate bases are not like that: an export holds a few posts per creator. So the benchmark also thins the
world: for a random ``--thin-share`` of creators, each post is kept with probability ``--keep`` (the campaigns,
outcomes and truth are untouched). On each world, time-split backtests with pooled bands, with bands per history
bucket (``intervals.by_history = true``) and with bands per bucket only for the KPIs whose pooled bands miss a
bucket's calibration rows by more than ``history_tolerance`` (``"auto"``, the default), same data, same seed: P10-P90
coverage of every KPI overall and per bucket (0-5, 6-20, 21-50, 51+ posts before the campaign), and the median band
width (log1p P90 - log1p P10) per bucket. ``--periods N`` tests N consecutive periods of ``--period-share`` of the
campaigns each (expanding window: each forecast by a bundle trained on every campaign before it) and reports each
period's coverage beside the pooled one: one period's coverage moves with that period's luck. ``--pooled-only`` skips
the bands per history bucket. Figures land in benchmarks/results/uncertainty.json and on stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from influencer_engine.config import ModelConfig, load_model_config, load_simulator_config, load_tier_config  # noqa: E402
from influencer_engine.modeling.backtest import backtest, time_splits  # noqa: E402
from influencer_engine.modeling.intervals import HISTORY_BUCKETS, history_bucket  # noqa: E402
from influencer_engine.modeling.metrics import coverage  # noqa: E402
from influencer_engine.simulate.generate import simulate_market  # noqa: E402
from influencer_engine.simulate.world import write_world  # noqa: E402
from influencer_engine.training.data import load_training_table  # noqa: E402
from influencer_engine.training.train import load_truth  # noqa: E402


def thin(world: Path, out: Path, share: float, keep: float, seed: int) -> None:
    """A copy of ``world`` where a random ``share`` of creators keep each post with probability ``keep``."""
    shutil.copytree(world, out)
    rng = np.random.default_rng(seed)
    creators = pl.read_parquet(world / "creators.parquet")["creator_id"]
    thinned = creators.filter(pl.Series(rng.random(creators.len()) < share))
    posts = pl.read_parquet(world / "posts.parquet")
    drop = posts["creator_id"].is_in(thinned.implode()) & pl.Series(rng.random(posts.height) >= keep)
    posts.filter(~drop).write_parquet(out / "posts.parquet")


def _by_history(cfg: ModelConfig, on: bool | str) -> ModelConfig:
    return cfg.model_copy(update={"intervals": cfg.intervals.model_copy(update={"by_history": on})})


def with_periods(cfg: ModelConfig, periods: int, share: float) -> ModelConfig:
    """``cfg`` whose backtest tests ``periods`` consecutive periods of ``share`` of the campaigns each (expanding
    window); a bad combination stops the benchmark with the fix."""
    if periods < 1 or not 0 < periods * share < 1:
        raise SystemExit("--periods x --period-share must be between 0 and 1 (and --periods at least 1)")
    split = {"test_share": periods * share, "folds": periods}
    return cfg.model_copy(update={"backtest": cfg.backtest.model_copy(update=split)})


def periods_of(table: pl.DataFrame, preds: pl.DataFrame, cfg: ModelConfig) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each prediction row's test period (0 = the earliest) and each period's training rows, from the backtest's own
    time splits."""
    splits = time_splits(table["as_of"].to_numpy(), cfg.backtest.test_share, cfg.backtest.folds)
    period_of = {rid: i for i, (_, test) in enumerate(splits) for rid in table[test]["request_id"].to_list()}
    return np.array([period_of[r] for r in preds["request_id"].to_list()]), [train for train, _ in splits]


def _coverage_by_period(preds: pl.DataFrame, period: np.ndarray, k: str) -> list[float]:
    y = preds[k].cast(pl.Float64).fill_null(np.nan).to_numpy()
    lo, hi = preds[f"model__{k}_p10"].to_numpy(), preds[f"model__{k}_p90"].to_numpy()
    return [coverage(y[period == i], lo[period == i], hi[period == i]) for i in range(int(period.max()) + 1)]


def measure(folder: Path, cfg: ModelConfig, pooled_only: bool = False) -> dict[str, object]:
    tiers = load_tier_config()
    table = load_training_table(folder, tiers).frame
    out: dict[str, object] = {}
    variants: tuple[tuple[str, bool | str], ...] = (("pooled bands", False),)
    if not pooled_only:
        variants += (("bands per history bucket", True), ("bands per bucket where pooled miss one (auto)", "auto"))
    for label, on in variants:
        t0 = time.perf_counter()
        r = backtest(table, _by_history(cfg, on), truth=load_truth(folder), seed=0)
        preds = r.predictions
        period, _ = periods_of(table, preds, cfg)
        bucket = history_bucket(preds["posts_before"].cast(pl.Float64).to_numpy())
        rows = {b: int((bucket == i).sum()) for i, b in enumerate(HISTORY_BUCKETS)}
        kpis: dict[str, object] = {}
        for k, m in r.metrics.items():
            cov = {c["group"]: c["coverage_p10_p90"] for c in r.breakdown if c["kpi"] == k and c["by"] == "history"}
            spread = np.log1p(preds[f"model__{k}_p90"].to_numpy()) - np.log1p(preds[f"model__{k}_p10"].to_numpy())
            width = {b: float(np.median(spread[bucket == i])) for i, b in enumerate(HISTORY_BUCKETS)
                     if (bucket == i).sum() >= 20}  # fmt: skip
            kpis[k] = {"coverage": m["model"]["coverage_p10_p90"], "coverage_by_history": cov,
                       "coverage_by_period": _coverage_by_period(preds, period, k),
                       "median_width_log1p_by_history": width}  # fmt: skip
        out[label] = {"seconds": time.perf_counter() - t0, "test_rows_by_history": rows, "kpis": kpis}
        print(f"  {label} ({time.perf_counter() - t0:.0f} s); test rows by history bucket {rows}")
        for k, v in kpis.items():
            cells = "  ".join(f"{b} {c:.1%} (width {v['median_width_log1p_by_history'].get(b, float('nan')):.2f})"
                              for b, c in v["coverage_by_history"].items())  # fmt: skip
            by_period = " / ".join(f"{c:.1%}" for c in v["coverage_by_period"])
            print(f"    {k:12s} overall {v['coverage']:.1%} (by period {by_period})   {cells}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--thin-share", type=float, default=0.4)
    ap.add_argument("--keep", type=float, default=0.1)
    ap.add_argument("--periods", type=int, default=1, help="consecutive test periods (expanding window)")
    ap.add_argument("--period-share", type=float, default=0.2, help="share of the campaigns in each test period")
    ap.add_argument("--pooled-only", action="store_true", help="skip the bands per history bucket")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "uncertainty.json")
    a = ap.parse_args()
    cfg, tiers, sim = load_model_config(), load_tier_config(), load_simulator_config()
    cfg = with_periods(cfg, a.periods, a.period_share)
    results: dict[str, object] = {"creators": a.creators, "seed": a.seed, "thin_share": a.thin_share, "keep": a.keep,
                                  "periods": a.periods, "period_share": a.period_share}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp) / "world"
        write_world(simulate_market(sim, tiers, a.creators, a.seed), sim, tiers, a.seed, world)
        thin(world, Path(tmp) / "thin", a.thin_share, a.keep, a.seed)
        for name, folder in (("world", world), ("thinned world", Path(tmp) / "thin")):
            print(f"\n{name} ({a.creators:,} creators, seed {a.seed})")
            results[name] = measure(folder, cfg, a.pooled_only)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {a.out}")


if __name__ == "__main__":
    main()
