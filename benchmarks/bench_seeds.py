"""Issue 18 diagnostics: how much of the forecasts' error is the trees' own variance? One command:

    python benchmarks/bench_seeds.py [--creators 20000] [--seed 7] [--seeds 3] [--briefs-per-goal 20] [--data DIR]

On the demo world (simulated, or read from --data), bundles are fitted on every campaign as ``ie train``'s final fit
does, with random states 0 .. K-1 (LightGBM's row and column sampling and the creators' folds of the mean correction
differ), and one more predictor averages the K forecasts (every KPI's mean and quantiles). Each plans the same random
briefs per goal (``evaluate_planner``, as ``ie evaluate --planner``). If averaging beats the single seeds, part of the
planner's loss is the variance of one fit, which more campaigns or averaged fits would cut; the spread of the single
seeds says how far one seed's oracle shares are from another's.

The average is a diagnostic, not an engine setting: K fits cost K times the training and the scoring.
Figures land in benchmarks/results/seeds.json and on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ceiling import _bundle, _world  # noqa: E402
from influencer_engine.config import load_model_config, load_planner_config, load_tier_config  # noqa: E402
from influencer_engine.evaluation.planner_eval import evaluate_planner  # noqa: E402
from influencer_engine.features.build import feature_columns  # noqa: E402
from influencer_engine.modeling.forecaster import Forecast, KPIForecaster, targets_of  # noqa: E402
from influencer_engine.modeling.predictor import Predictor  # noqa: E402
from influencer_engine.training.data import load_training_table  # noqa: E402


@dataclass(frozen=True)
class _Averaged(Predictor):
    """The bundle with its forecaster and ``others`` averaged (held in memory; diagnostics only)."""

    others: tuple[KPIForecaster, ...] = ()

    def predict(self, features: pl.DataFrame) -> Forecast:
        rows = features.select(self.features)
        each = [m.predict(rows) for m in (self.forecaster, *self.others)]
        mean = {k: np.mean([f.mean[k] for f in each], axis=0) for k in each[0].mean}
        quantiles = {k: np.mean([f.quantiles[k] for f in each], axis=0) for k in each[0].quantiles}
        return Forecast(mean, quantiles, each[0].levels)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7, help="the world's seed")
    ap.add_argument("--seeds", type=int, default=3, help="random states of the fits (0 .. K-1)")
    ap.add_argument("--briefs-per-goal", type=int, default=20)
    ap.add_argument("--data", type=Path, help="a world folder to use instead of simulating one")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "seeds.json")
    a = ap.parse_args()
    if a.seeds < 2:
        raise SystemExit("--seeds must be at least 2: the point is the average")
    cfg, tiers, planner = load_model_config(), load_tier_config(), load_planner_config()
    out: dict[str, Any] = {"seeds": a.seeds, "briefs_per_goal": a.briefs_per_goal, "planner_share": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.data or _world(a.creators, a.seed, Path(tmp) / "world")
        out["world"] = str(a.data) if a.data else {"creators": a.creators, "seed": a.seed}
        table = load_training_table(folder, tiers)
        frame = table.frame
        t0 = time.perf_counter()
        base = _bundle(table, frame, cfg, tiers, Path(tmp) / "bundle", None)
        fits = [base.forecaster]
        for s in range(1, a.seeds):
            fits.append(KPIForecaster(cfg, random_state=s).fit(
                frame.select(feature_columns()), targets_of(frame), time=frame["as_of"].to_numpy(),
                groups=frame["creator_id"].to_numpy(), campaigns=frame["campaign_id"].to_numpy()))  # fmt: skip
        out["fit_seconds"] = time.perf_counter() - t0
        print(f"{a.seeds} fits of {frame.height:,} campaign rows in {out['fit_seconds']:.0f} s", flush=True)
        variants = [(f"seed {s}", _Averaged(f, base.baselines, base.manifest, None, base.completion))
                    for s, f in enumerate(fits)]  # fmt: skip
        variants.append((f"mean of {a.seeds} seeds", _Averaged(fits[0], base.baselines, base.manifest, None,
                                                                 base.completion, others=tuple(fits[1:]))))  # fmt: skip
        for name, predictor in variants:
            t = time.perf_counter()
            ev = evaluate_planner(predictor, folder, planner, tiers, per_goal=a.briefs_per_goal, seed=0)
            goals = {g: e["planner"]["mean_share"] for g, e in ev.summary.items()}
            out["planner_share"][name] = goals
            print(f"oracle share, {name:16s} ({time.perf_counter() - t:.0f} s): "
                  + "  ".join(f"{g} {v:.1%}" for g, v in goals.items()), flush=True)  # fmt: skip
    singles = [out["planner_share"][f"seed {s}"] for s in range(a.seeds)]
    averaged = out["planner_share"][f"mean of {a.seeds} seeds"]
    out["gain_over_single_mean"] = {g: averaged[g] - float(np.mean([s[g] for s in singles])) for g in averaged}
    out["single_spread"] = {g: float(np.ptp([s[g] for s in singles])) for g in averaged}
    print("averaged minus the single seeds' mean: "
          + "  ".join(f"{g} {v * 100:+.1f}" for g, v in out["gain_over_single_mean"].items()))  # fmt: skip
    print("single seeds' range: " + "  ".join(f"{g} {v * 100:.1f}" for g, v in out["single_spread"].items()))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"written: {a.out}")


if __name__ == "__main__":
    main()
