"""Does the backtest's level (forecast over true sums) move with the number of campaigns? One command:

    python benchmarks/bench_levels.py [--creators 20000] [--seed 7] [--scales 1,2,4]

For each scale, the demo world's creators with that many times the campaigns (as ``bench_ceiling.py``'s learning
curve), one time-split backtest (train on the earlier campaigns, test on the later 20%), and per KPI the sum of the
forecasts over the sum of the simulator's true expected values: over every test row and over the top decile by
forecast (what a planner picks from), each for creators the training rows saw and creators they did not, with the MAE
on log1p against the truth. ``--without-balance`` repeats each backtest with ``balance_folds = 0`` (no out-of-fold mean
correction) to see what the correction does to the level. Figures land in benchmarks/results/levels.json and on
stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ceiling import _world  # noqa: E402
from influencer_engine.config import load_model_config, load_tier_config  # noqa: E402
from influencer_engine.modeling.backtest import backtest, time_splits  # noqa: E402
from influencer_engine.training.data import load_training_table  # noqa: E402
from influencer_engine.training.train import load_truth  # noqa: E402

KPIS = ("reach", "impressions", "engagements", "clicks", "conversions", "revenue")


def _cell(f: np.ndarray, t: np.ndarray) -> dict[str, float]:
    if len(f) == 0:
        return {"rows": 0}
    return {"rows": len(f), "forecast_over_true": float(f.sum() / max(t.sum(), 1e-9)),
            "mae_log1p_true": float(np.mean(np.abs(np.log1p(f) - np.log1p(t))))}  # fmt: skip


def _text(c: dict[str, Any]) -> str:
    """``top decile/all rows (MAE)`` of one group's cells."""
    top, every = c["top_decile"], c["all"]
    if not every["rows"]:
        return "-"
    head = f"{top['forecast_over_true']:.2f}" if top["rows"] else "-"
    return f"{head}/{every['forecast_over_true']:.2f} ({every['mae_log1p_true']:.3f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--scales", default="1,2,4")
    ap.add_argument("--without-balance", action="store_true", help="also backtest with balance_folds = 0")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "levels.json")
    a = ap.parse_args()
    configured, tiers = load_model_config(), load_tier_config()
    off = configured.model_copy(update={"intervals": configured.intervals.model_copy(update={"balance_folds": 0})})
    configs = [("configured", configured), *([("balance off", off)] if a.without_balance else [])]
    out: dict[str, Any] = {"creators": a.creators, "seed": a.seed, "scales": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for scale, (name, cfg) in ((float(s), c) for s in a.scales.split(",") for c in configs):
            folder = Path(tmp) / f"x{scale:g}"
            if not folder.exists():
                _world(a.creators, a.seed, folder, campaigns=scale)
            table = load_training_table(folder, tiers).frame
            splits = list(time_splits(table["as_of"].to_numpy(), cfg.backtest.test_share, cfg.backtest.folds))
            seen_ids = set(table[splits[-1][0]]["creator_id"].to_list())
            r = backtest(table, cfg, truth=load_truth(folder), seed=0)
            p = r.predictions
            creator = p["request_id"].str.split(":").list.get(1).to_list()  # campaign:creator:format
            seen = np.array([c in seen_ids for c in creator])
            row: dict[str, Any] = {"test_rows": p.height, "seen_share": float(seen.mean()), "kpis": {}}
            print(f"{scale:g}x the campaigns, {name}: {p.height:,} test rows, {seen.mean():.1%} of them of creators "
                  "the training rows saw; forecast/true sums (top decile by forecast / all rows), MAE log1p",
                  flush=True)  # fmt: skip
            for k in KPIS:
                f, t = p[f"model__{k}"].to_numpy(), p[f"true_{k}"].cast(pl.Float64).to_numpy()
                top = f >= np.quantile(f, 0.9)
                cells = {group: {"top_decile": _cell(f[top & m], t[top & m]), "all": _cell(f[m], t[m])}
                         for group, m in (("all", np.ones_like(seen)), ("seen", seen), ("unseen", ~seen))}  # fmt: skip
                row["kpis"][k] = cells

                print(f"  {k:12s} all {_text(cells['all'])}  seen {_text(cells['seen'])}  "
                      f"unseen {_text(cells['unseen'])}", flush=True)  # fmt: skip
            out["scales"].setdefault(f"{scale:g}", {})[name] = row
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"written: {a.out}")


if __name__ == "__main__":
    main()
