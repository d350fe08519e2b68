"""Issue 18 diagnostics: how much is left for feature work, how much for more data.

    python benchmarks/bench_ceiling.py [--creators 20000] [--seed 7] [--scales 0.25,0.5,1,2,4]

On a simulated world, one time-split backtest each (train on the earlier campaigns, test on the later 20%, scored
against the simulator's true expected outcomes):
- **the model** with the catalog's features;
- **the information ceiling**: the same model also given the simulator's hidden truths of each creator (latent
  quality, real followers, fake share, growth, drift, sponsored rate). What it gains over the model is what better
  features could at most recover; what it still misses is noise or the learner;
- **the learning curve**: the model trained on a share of the earlier campaigns (0.25, 0.5) and, for 2x and 4x, on
  worlds of 2 and 4 times the creators (and so the campaigns; their own later 20% is their test set).

Per run and KPI: MAE log1p against the truth, Spearman against the truth, and the forecast/true sum ratio of the
top decile by forecast (what a planner picks from). Figures land in benchmarks/results/ceiling.json and on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from influencer_engine.config import load_model_config, load_simulator_config, load_tier_config  # noqa: E402
from influencer_engine.modeling.backtest import BacktestResult, backtest  # noqa: E402
from influencer_engine.simulate.generate import simulate_market  # noqa: E402
from influencer_engine.simulate.world import write_world  # noqa: E402
from influencer_engine.training.data import load_training_table  # noqa: E402
from influencer_engine.training.train import load_truth  # noqa: E402

HIDDEN = ("true_quality", "true_log_real_followers", "true_fake_share", "true_growth", "true_drift",
          "true_sponsored_rate")  # fmt: skip


def _summary(r: BacktestResult) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    p = r.predictions
    for k, m in r.metrics.items():
        f, t = p[f"model__{k}"].to_numpy(), p[f"true_{k}"].cast(pl.Float64).to_numpy()
        top = f >= np.quantile(f, 0.9)
        out[k] = {"mae_log1p_true": m["model"]["mae_log1p_true"], "spearman_true": m["model"]["spearman"],
                  "top_decile_forecast_over_true": float(f[top].sum() / max(t[top].sum(), 1e-9))}  # fmt: skip
    return out


def _world(creators: int, seed: int, folder: Path) -> Path:
    sim, tiers = load_simulator_config(), load_tier_config()
    write_world(simulate_market(sim, tiers, creators, seed), sim, tiers, seed, folder)
    return folder


def _with_hidden(folder: Path, table: pl.DataFrame) -> pl.DataFrame:
    truth = pl.read_parquet(folder / "truth" / "creators_truth.parquet").select(
        "creator_id",
        pl.col("quality").alias("true_quality"),
        pl.col("real_followers").log1p().alias("true_log_real_followers"),
        pl.col("fake_share").alias("true_fake_share"),
        pl.col("growth").alias("true_growth"),
        pl.col("drift").alias("true_drift"),
        pl.col("sponsored_rate").alias("true_sponsored_rate"),
    )
    return table.join(truth, on="creator_id", how="left", maintain_order="left")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--scales", default="0.25,0.5,1,2,4")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ceiling.json")
    a = ap.parse_args()
    cfg, tiers = load_model_config(), load_tier_config()
    scales = [float(s) for s in a.scales.split(",")]
    runs: dict[str, dict[str, object]] = {}

    def run(name: str, table: pl.DataFrame, folder: Path, **kw: object) -> None:
        t0 = time.perf_counter()
        r = backtest(table, cfg, truth=load_truth(folder), seed=0, **kw)  # type: ignore[arg-type]
        kpis = _summary(r)
        runs[name] = {"seconds": time.perf_counter() - t0, "rows": r.rows, "kpis": kpis}
        cells = "  ".join(f"{k} {v['mae_log1p_true']:.3f}/{v['spearman_true']:.3f}/"
                          f"{v['top_decile_forecast_over_true']:.2f}" for k, v in kpis.items())  # fmt: skip
        print(f"{name:44s} train {r.rows['train']:>6,} test {r.rows['test']:>5,} ({time.perf_counter() - t0:4.0f} s)  "
              f"{cells}", flush=True)  # fmt: skip

    print("per KPI: MAE log1p vs truth / Spearman vs truth / top-decile forecast over true")
    with tempfile.TemporaryDirectory() as tmp:
        base = _world(a.creators, a.seed, Path(tmp) / "x1")
        table = load_training_table(base, tiers).frame
        run("model (catalog features)", table, base)
        run("information ceiling (+ hidden truths)", _with_hidden(base, table), base, extra_features=HIDDEN)
        for s in scales:
            if s < 1:
                run(f"learning curve: {s:g}x the campaigns", table, base, train_share=s)
            elif s > 1:
                folder = _world(round(a.creators * s), a.seed, Path(tmp) / f"x{s:g}")
                run(f"learning curve: {s:g}x (a world of {round(a.creators * s):,} creators)",
                    load_training_table(folder, tiers).frame, folder)  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"creators": a.creators, "seed": a.seed, "runs": runs}, indent=2) + "\n",
                     encoding="utf-8")  # fmt: skip
    print(f"written: {a.out}")


if __name__ == "__main__":
    main()
