"""Issue 18 diagnostics: how much is left for feature work, how much for more data.

    python benchmarks/bench_ceiling.py [--creators 20000] [--seed 7] [--scales 0.25,0.5,1,2,4] [--balance-folds N]

``--balance-folds 0`` fits every bundle and backtest without the out-of-fold mean correction (the config's
``balance_folds`` otherwise).

On a simulated world, one time-split backtest each (train on the earlier campaigns, test on the later 20%, scored
against the simulator's true expected outcomes):
- **the model** with the catalog's features;
- **the information ceiling**: the same model also given the simulator's hidden truths of each creator (latent
  quality, real followers, fake share, growth, drift, sponsored rate). What it gains over the model is what better
  features could at most recover; what it still misses is noise or the learner;
- **the learning curve**: the model trained on a share of the earlier campaigns (0.25, 0.5) and, for 2x and 4x, on
  the same world with 2 and 4 times the campaigns (the same seed with ``outcomes_per_creator`` scaled: the same
  creators, posts and truths, only the campaign stream draws more hires; their own later 20% is their test set).

Per run and KPI: MAE log1p against the truth, Spearman against the truth, and the forecast/true sum ratio of the
top decile by forecast (what a planner picks from).

**Oracle shares** (``--oracle-briefs N``, 10 by default, 0 skips): the same question asked of rosters. Bundles are
fitted on every campaign of the world, as ``ie train`` fits them (the model; the ceiling, whose forecasts also read the
hidden truths; the model on each share < 1 of the campaigns and on every campaign of each scaled world > 1, whose
creators are the world's own), and each plans the same N random briefs per goal
(``evaluate_planner``, as ``ie evaluate --planner``). Reported per goal: the planner's mean oracle share for each
bundle, beside the hand heuristics and rosters planned on the truth with a lognormal error (log sd 0.1, 0.2, 0.3). The
bundles share the model's completion models and baselines, so only the KPI trees differ.
Figures land in benchmarks/results/ceiling.json and on stdout.
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

from influencer_engine.config import (  # noqa: E402
    ModelConfig,
    TierConfig,
    load_model_config,
    load_planner_config,
    load_simulator_config,
    load_tier_config,
)
from influencer_engine.evaluation.heuristics import HEURISTICS  # noqa: E402
from influencer_engine.evaluation.planner_eval import ERROR_LEVELS, error_reference, evaluate_planner  # noqa: E402
from influencer_engine.features.build import feature_columns  # noqa: E402
from influencer_engine.features.creator import peer_table  # noqa: E402
from influencer_engine.modeling.backtest import BacktestResult, backtest  # noqa: E402
from influencer_engine.modeling.baselines import Baselines  # noqa: E402
from influencer_engine.modeling.forecaster import Forecast, KPIForecaster, targets_of  # noqa: E402
from influencer_engine.modeling.predictor import Predictor, TrainingInfo  # noqa: E402
from influencer_engine.simulate.generate import simulate_market  # noqa: E402
from influencer_engine.simulate.world import write_world  # noqa: E402
from influencer_engine.training.bundle import load_bundle, save_bundle  # noqa: E402
from influencer_engine.training.completion import fit_bundle_completion  # noqa: E402
from influencer_engine.training.data import TrainingTable, load_training_table  # noqa: E402
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


def _world(creators: int, seed: int, folder: Path, campaigns: float = 1.0) -> Path:
    """A simulated world; ``campaigns`` scales its campaign rows (the same creators, posts and truths: the simulator
    draws campaigns from their own random stream)."""
    sim, tiers = load_simulator_config(), load_tier_config()
    if campaigns != 1.0:
        per = sim.campaigns.outcomes_per_creator * campaigns
        sim = sim.model_copy(update={"campaigns": sim.campaigns.model_copy(update={"outcomes_per_creator": per})})
    write_world(simulate_market(sim, tiers, creators, seed), sim, tiers, seed, folder)
    return folder


def _same_creators(a: Path, b: Path) -> None:
    """A scaled world must differ from the base only in its campaigns, or its bundle would plan for other creators."""
    for name in ("creators.parquet", "posts.parquet", "truth/creators_truth.parquet"):
        if not pl.read_parquet(a / name).equals(pl.read_parquet(b / name)):
            raise SystemExit(f"{b / name} differs from {a / name}: the scaled world is not the same market")


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


def _hidden_of(folder: Path) -> pl.DataFrame:
    ids = pl.read_parquet(folder / "creators.parquet").select("creator_id")
    return _with_hidden(folder, ids)


@dataclass(frozen=True)
class _Ceiling(Predictor):
    """A bundle whose trees also read the simulator's hidden truths: forecasting joins them by creator id, so the
    forecast path builds the catalog features as for any bundle (diagnostics only)."""

    hidden: pl.DataFrame | None = None

    @property
    def features(self) -> list[str]:
        return [f for f in self.manifest.features if f not in HIDDEN]

    def predict(self, features: pl.DataFrame) -> Forecast:
        assert self.hidden is not None
        full = features.join(self.hidden, on="creator_id", how="left", maintain_order="left")
        return self.forecaster.predict(full.select(self.manifest.features))


def _campaign_share(frame: pl.DataFrame, share: float, seed: int) -> pl.DataFrame:
    """``share`` of the campaigns (a campaign's hires stay together), picked by a hash of the id (as the backtest)."""
    if share >= 1.0:
        return frame
    keep = (frame["campaign_id"].hash(seed) % 10_000).to_numpy() < round(share * 10_000)
    return frame.filter(pl.Series(keep))


def _bundle(table: TrainingTable, frame: pl.DataFrame, cfg: ModelConfig, tiers: TierConfig, out: Path,
            shared: Predictor | None) -> Predictor:  # fmt: skip
    """Fit every KPI on ``frame`` as ``ie train``'s final fit does, save the bundle and load it back; with ``shared``,
    its baselines and completion models are kept (only the trees differ)."""
    targets = targets_of(frame)
    model = KPIForecaster(cfg, random_state=0).fit(
        frame.select(feature_columns()), targets, time=frame["as_of"].to_numpy(),
        groups=frame["creator_id"].to_numpy(), campaigns=frame["campaign_id"].to_numpy())  # fmt: skip
    if shared is None:
        baselines = Baselines.fit(table.frame.select(feature_columns()), targets_of(table.frame), cfg.media_kit)
        completion = fit_bundle_completion(table, model, tiers, seed=0, peers=peer_table(table.frame))
    else:
        baselines, completion = shared.baselines, shared.completion
    training = TrainingInfo(engine="local", data=table.source, rows_in=table.rows_in, rows=frame.height,
                            tables=table.tables, first_campaign=str(frame["as_of"].min()),
                            last_campaign=str(frame["as_of"].max()), seed=0)  # fmt: skip
    save_bundle(model, baselines, out, fingerprint=table.fingerprint(), metrics={}, training=training,
                peers=peer_table(table.frame), completion=completion)  # fmt: skip
    return load_bundle(out)


def _ceiling(table: TrainingTable, folder: Path, cfg: ModelConfig, model: Predictor) -> Predictor:
    """The model's bundle with trees that also read the hidden truths (held in memory: a bundle on disk must have the
    engine's feature list)."""
    frame = _with_hidden(folder, table.frame)
    features = [*feature_columns(), *HIDDEN]
    trees = KPIForecaster(cfg, random_state=0).fit(
        frame.select(features), targets_of(frame), time=frame["as_of"].to_numpy(),
        groups=frame["creator_id"].to_numpy(), campaigns=frame["campaign_id"].to_numpy())  # fmt: skip
    manifest = model.manifest.model_copy(update={"features": features})
    return _Ceiling(trees, model.baselines, manifest, None, model.completion, hidden=_hidden_of(folder))


def _config(balance_folds: int | None) -> ModelConfig:
    """The repository's model config; ``balance_folds`` (if given) replaces its mean correction's folds (0: off)."""
    cfg = load_model_config()
    if balance_folds is None:
        return cfg
    return cfg.model_copy(update={"intervals": cfg.intervals.model_copy(update={"balance_folds": balance_folds})})


def oracle_shares(folder: Path, table: TrainingTable, shares: list[float], per_goal: int, work: Path,
                  scaled: dict[float, TrainingTable] | None = None,
                  balance_folds: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Every bundle's planner share per goal on the same random briefs of ``folder``, with the heuristics and truth
    references; ``scaled`` holds the training tables of the same creators with more campaigns (by scale)."""
    cfg, tiers, planner = _config(balance_folds), load_tier_config(), load_planner_config()
    scaled = scaled or {}
    variants: list[tuple[str, float]] = [("model", 1.0), ("ceiling", 1.0)]
    variants += [(f"{s:g}x the campaigns", s) for s in shares if s < 1]
    variants += [(f"{s:g}x the campaigns", s) for s in sorted(scaled)]
    model: Predictor | None = None
    out: dict[str, Any] = {"briefs_per_goal": per_goal, "bundles": {}}
    for name, share in variants:
        t0 = time.perf_counter()
        source = scaled[share] if share > 1 else table
        frame = _campaign_share(source.frame, share, 0)
        if name == "ceiling":
            assert model is not None
            predictor = _ceiling(table, folder, cfg, model)
        else:
            predictor = _bundle(source, frame, cfg, tiers, work / name.replace(" ", "_"), model)
            model = model or predictor
        fitted = time.perf_counter() - t0
        ev = evaluate_planner(predictor, folder, planner, tiers, per_goal=per_goal, seed=0)
        goals = {g: e["planner"]["mean_share"] for g, e in ev.summary.items()}
        seconds = time.perf_counter() - t0 - fitted
        out["bundles"][name] = {"campaign_rows": frame.height, "fit_seconds": fitted, "evaluate_seconds": seconds,
                                "planner_share": goals}  # fmt: skip
        if "references" not in out:  # the same briefs and draws for every bundle
            refs = [*HEURISTICS, *(error_reference(s) for s in ERROR_LEVELS)]
            out["references"] = {r: {g: e[r]["mean_share"] for g, e in ev.summary.items()} for r in refs}
        print(f"oracle share, {name:24s} ({frame.height:,} campaign rows, fit {fitted:.0f} s): "
              + "  ".join(f"{g} {v:.1%}" for g, v in goals.items()), flush=True)  # fmt: skip
    for r, goals in out["references"].items():
        print(f"oracle share, {r:24s}: " + "  ".join(f"{g} {v:.1%}" for g, v in goals.items()), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--scales", default="0.25,0.5,1,2,4")
    ap.add_argument("--oracle-briefs", type=int, default=10, help="random briefs per goal for oracle shares (0: skip)")
    ap.add_argument("--balance-folds", type=int, help="mean correction folds of every fit (0: off)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ceiling.json")
    a = ap.parse_args()
    cfg, tiers = _config(a.balance_folds), load_tier_config()
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
        training = load_training_table(base, tiers)
        table = training.frame
        run("model (catalog features)", table, base)
        run("information ceiling (+ hidden truths)", _with_hidden(base, table), base, extra_features=HIDDEN)
        scaled: dict[float, TrainingTable] = {}
        for s in scales:
            if s < 1:
                run(f"learning curve: {s:g}x the campaigns", table, base, train_share=s)
            elif s > 1:
                folder = _world(a.creators, a.seed, Path(tmp) / f"x{s:g}", campaigns=s)
                _same_creators(base, folder)
                scaled[s] = load_training_table(folder, tiers)
                run(f"learning curve: {s:g}x the campaigns (same creators)", scaled[s].frame, folder)
        oracle: dict[str, Any] = {}
        if a.oracle_briefs > 0:
            oracle = oracle_shares(base, training, scales, a.oracle_briefs, Path(tmp) / "b", scaled, a.balance_folds)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"creators": a.creators, "seed": a.seed, "balance_folds": cfg.intervals.balance_folds,
                                 "runs": runs, "oracle": oracle},
                                indent=2) + "\n",
                     encoding="utf-8")  # fmt: skip
    print(f"written: {a.out}")


if __name__ == "__main__":
    main()
