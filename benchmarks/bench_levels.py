"""Does the backtest's level (forecast over true sums) move with the number of campaigns? One command:

    python benchmarks/bench_levels.py [--creators 20000] [--seed 7] [--scales 1,2,4] [--periods 1] [--balance-folds N]

For each scale, the demo world's creators with that many times the campaigns (as ``bench_ceiling.py``'s learning
curve), a time-split backtest (train on the earlier campaigns, test on the later 20%), and per KPI the sum of the
forecasts over the sum of the simulator's true expected values: over every test row and over the top decile by
forecast (what a planner picks from), each for creators the training rows saw and creators they did not, with the MAE
on log1p against the truth, and a 90% interval of the all-rows ratio from resampling the test rows' creators.
``--periods N`` tests N consecutive periods of ``--period-share`` of the campaigns each (expanding window: each period
forecast by a bundle trained on every campaign before it), so that one period's luck is not read as the model's bias.
``--without-balance`` repeats each backtest with ``balance_folds = 0`` (no out-of-fold mean correction) to see what the
correction does to the level; ``--balance-folds N`` measures the configured bundle's correction with N folds instead
of the config's. Each period also gets the level per platform x tier (groups with ``--min-group-rows`` test rows: a
plan's roster is made of a few such groups) and, over consecutive periods, how well the groups' levels repeat. Figures
land in benchmarks/results/levels.json (``--out``) and on stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
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
from bench_uncertainty import periods_of, with_periods  # noqa: E402
from influencer_engine.config import load_model_config, load_tier_config  # noqa: E402
from influencer_engine.modeling.backtest import backtest  # noqa: E402
from influencer_engine.modeling.metrics import mae_log1p, sum_ratio  # noqa: E402
from influencer_engine.training.data import load_training_table, market_rows  # noqa: E402
from influencer_engine.training.train import load_truth  # noqa: E402

KPIS = ("reach", "impressions", "engagements", "clicks", "conversions", "revenue")


def _cell(f: np.ndarray, t: np.ndarray) -> dict[str, float]:
    if len(f) == 0:
        return {"rows": 0}
    return {"rows": len(f), "forecast_over_true": sum_ratio(f, t), "mae_log1p_true": mae_log1p(t, f)}


def _interval(f: np.ndarray, t: np.ndarray, creator: np.ndarray, draws: int = 400) -> tuple[float, float]:
    """5th and 95th percentile of forecast/true sums over test sets resampled by creator (a creator's rows stay
    together: sums of heavy-tailed outcomes are decided by a few creators)."""
    codes = np.unique(creator, return_inverse=True)[1]
    n = int(codes.max()) + 1
    fs, ts = np.bincount(codes, f, n), np.bincount(codes, t, n)
    rng = np.random.default_rng(0)
    ratios = [fs[i].sum() / max(ts[i].sum(), 1e-9) for i in (rng.integers(0, n, n) for _ in range(draws))]
    return float(np.quantile(ratios, 0.05)), float(np.quantile(ratios, 0.95))


def _text(c: dict[str, Any]) -> str:
    """``top decile/all rows [90% interval] (MAE)`` of one group's cells."""
    top, every = c["top_decile"], c["all"]
    if not every["rows"]:
        return "-"
    head = f"{top['forecast_over_true']:.2f}" if top["rows"] else "-"
    band = f" [{every['interval'][0]:.2f}, {every['interval'][1]:.2f}]" if "interval" in every else ""
    return f"{head}/{every['forecast_over_true']:.2f}{band} ({every['mae_log1p_true']:.3f})"


def _by_group(q: pl.DataFrame, f: np.ndarray, t: np.ndarray, min_rows: int) -> dict[str, dict[str, Any]]:
    """Forecast over true sums per platform x tier with at least ``min_rows`` test rows, largest first: a plan picks
    creators of a few such groups, so a group's level is what its roster stands on."""
    keys = (q["platform"].cast(pl.String) + " " + q["tier"].cast(pl.String)).to_numpy()
    names, counts = np.unique(keys, return_counts=True)
    order = sorted(zip(names, counts, strict=True), key=lambda x: -x[1])
    return {str(g): _cell(f[keys == g], t[keys == g]) for g, n in order if n >= min_rows}


def _group_agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per KPI, the correlation of the groups' log levels between consecutive periods (groups in both) and their
    spread: levels that repeat from one period to the next are the model's bias for that group, not luck."""
    out: dict[str, Any] = {}
    for k in KPIS:
        pairs: list[tuple[float, float]] = []
        for a, b in itertools.pairwise(rows):
            ga, gb = a["by_group"][k], b["by_group"][k]
            pairs += [(math.log(ga[g]["forecast_over_true"]), math.log(gb[g]["forecast_over_true"]))
                      for g in ga if g in gb]  # fmt: skip
        if len(pairs) >= 3:
            x = np.array(pairs)
            out[k] = {"pairs": len(pairs), "correlation": float(np.corrcoef(x[:, 0], x[:, 1])[0, 1]),
                      "log_sd": float(x.std())}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--scales", default="1,2,4")
    ap.add_argument("--periods", type=int, default=1, help="consecutive test periods (expanding window)")
    ap.add_argument("--period-share", type=float, default=0.2, help="share of the campaigns in each test period")
    ap.add_argument("--balance-folds", type=int, help="the configured bundle's mean correction folds (2-10)")
    ap.add_argument("--without-balance", action="store_true", help="also backtest with balance_folds = 0")
    ap.add_argument("--min-group-rows", type=int, default=100, help="test rows a platform x tier group needs")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "levels.json")
    a = ap.parse_args()
    configured, tiers = with_periods(load_model_config(), a.periods, a.period_share), load_tier_config()
    if a.balance_folds is not None:
        folds = {"balance_folds": a.balance_folds}
        configured = configured.model_copy(update={"intervals": configured.intervals.model_copy(update=folds)})
    off = configured.model_copy(update={"intervals": configured.intervals.model_copy(update={"balance_folds": 0})})
    configs = [("configured", configured), *([("balance off", off)] if a.without_balance else [])]
    out: dict[str, Any] = {"creators": a.creators, "seed": a.seed, "periods": a.periods,
                           "period_share": a.period_share, "scales": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for scale, (name, cfg) in ((float(s), c) for s in a.scales.split(",") for c in configs):
            folder = Path(tmp) / f"x{scale:g}"
            if not folder.exists():
                _world(a.creators, a.seed, folder, campaigns=scale)
            tt = load_training_table(folder, tiers)
            table = tt.frame
            # as `ie train` backtests: each correction carried over by the level of the market's rows
            p = backtest(table, cfg, truth=load_truth(folder), seed=0, unlabeled=market_rows(tt, tiers)).predictions
            which, trains = periods_of(table, p, cfg)
            creator = np.array(p["request_id"].str.split(":").list.get(1).to_list())  # campaign:creator:format
            rows = []
            for i, train_idx in enumerate(trains):
                here = which == i
                seen_ids = set(table[train_idx]["creator_id"].to_list())
                seen = np.array([c in seen_ids for c in creator[here]])
                q = p.filter(pl.Series(here))
                row: dict[str, Any] = {"period": i + 1, "from": str(q["as_of"].min()), "to": str(q["as_of"].max()),
                                       "train_rows": len(train_idx), "test_rows": q.height,
                                       "seen_share": float(seen.mean()), "kpis": {}}  # fmt: skip
                print(f"{scale:g}x the campaigns, {name}, period {i + 1} of {len(trains)} ({row['from'][:10]} to "
                      f"{row['to'][:10]}, trained on {len(train_idx):,} rows): {q.height:,} test rows, "
                      f"{seen.mean():.1%} of creators the training rows saw; forecast/true sums (top decile by "
                      "forecast / all rows [90% interval, creators resampled]), MAE log1p", flush=True)  # fmt: skip
                for k in KPIS:
                    f, t = q[f"model__{k}"].to_numpy(), q[f"true_{k}"].cast(pl.Float64).to_numpy()
                    top = f >= np.quantile(f, 0.9)
                    groups = (("all", np.ones_like(seen)), ("seen", seen), ("unseen", ~seen))
                    cells: dict[str, dict[str, dict[str, Any]]] = {
                        g: {"top_decile": _cell(f[top & m], t[top & m]), "all": _cell(f[m], t[m])} for g, m in groups
                    }
                    cells["all"]["all"]["interval"] = _interval(f, t, creator[here])
                    row["kpis"][k] = cells
                    row.setdefault("by_group", {})[k] = _by_group(q, f, t, a.min_group_rows)
                    print(f"  {k:12s} all {_text(cells['all'])}  seen {_text(cells['seen'])}  "
                          f"unseen {_text(cells['unseen'])}", flush=True)  # fmt: skip
                    levels = ", ".join(f"{g} {c['forecast_over_true']:.2f}" for g, c in row["by_group"][k].items())
                    print(f"  {'':12s} by platform x tier: {levels}", flush=True)
                rows.append(row)
            out["scales"].setdefault(f"{scale:g}", {})[name] = rows
            if len(rows) > 1:
                out["scales"][f"{scale:g}"][f"{name}, group levels between periods"] = _group_agreement(rows)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"written: {a.out}")


if __name__ == "__main__":
    main()
