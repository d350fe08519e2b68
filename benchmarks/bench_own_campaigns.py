"""Learning from the user's own campaigns (issue 19): the N-curve of prior only, scratch and prior + user rows.

Run: python benchmarks/bench_own_campaigns.py [--prior models/demo] [--seeds 1,2] [--ns 50,100,300,1000,3000]

A shifted world (its rates, prices and elasticities moved; ``simulate.shift``) stands in for the user's market. Its
campaign outcomes are split by time: the latest 30% are the test rows, the earlier 70% the pool the user's N rows
are drawn from (whole campaigns at random, so N rows look like a brand's own hires). Each N is trained four ways:

- ``prior``: the prior bundle (trained on the simulated default world) as it is;
- ``scratch``: `ie train`'s forecaster on the N rows alone (it refuses fewer than 120 rows);
- ``prior_shift``: the prior with one factor per KPI (the recalibration a few rows can afford);
- ``prior_user``: ``fit_from_prior``, which picks prior, shift or shift + trees per KPI by cross-validation.

Per way: MAE log1p of the forecast against the simulator's true expected value on the test rows (every KPI), P10-P90
coverage of the observed test outcomes, and the oracle share of planned rosters on the shifted world (random briefs
per goal, `--briefs`, goals `--goals`), scored with the world's truth. Writes benchmarks/results/own_campaigns.json.
Without --prior a prior is trained first on the demo world (20k creators, seed 7), as the README's main job does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from influencer_engine.config import load_model_config, load_planner_config, load_simulator_config, load_tier_config
from influencer_engine.evaluation.planner_eval import evaluate_planner
from influencer_engine.evaluation.run import shifted_world
from influencer_engine.features.build import feature_columns
from influencer_engine.modeling.baselines import Baselines
from influencer_engine.modeling.forecaster import KPIForecaster, targets_of
from influencer_engine.modeling.metrics import coverage, mae_log1p
from influencer_engine.modeling.predictor import Predictor
from influencer_engine.modeling.prior import fit_from_prior
from influencer_engine.registry import KPI_NAMES
from influencer_engine.simulate.shift import shifted_config
from influencer_engine.training.bundle import load_bundle
from influencer_engine.training.data import load_training_table
from influencer_engine.training.train import load_truth

HERE = Path(__file__).resolve().parent
TEST_SHARE = 0.3


def _prior(path: Path | None, work: Path) -> Path:
    if path is not None:
        return path
    from influencer_engine.simulate.generate import simulate_market
    from influencer_engine.simulate.world import write_world
    from influencer_engine.training.train import train_models

    tiers = load_tier_config()
    world = work / "demo_world"
    if not (world / "manifest.json").is_file():
        cfg = load_simulator_config()
        write_world(simulate_market(cfg, tiers, 20_000, 7), cfg, tiers, 7, world)
    bundle = work / "prior_demo"
    if not (bundle / "manifest.json").is_file():
        train_models(world, bundle, load_model_config(), tiers, seed=0, track=False, register=False)
    return bundle


def _sample(pool: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """The first ``n`` rows of the pool's campaigns in a random order (whole campaigns, the last one cut)."""
    camps = pool["campaign_id"].unique().sort()
    order = pl.DataFrame({"campaign_id": camps, "_o": np.random.default_rng(seed).permutation(camps.len())})
    return pool.join(order, on="campaign_id").sort("_o", "request_id").head(n).drop("_o")


def _scores(fc: Any, test: pl.DataFrame, truth: pl.DataFrame) -> dict[str, dict[str, float]]:
    t = test.select("request_id").join(truth, on="request_id", how="left", maintain_order="left")
    out = {}
    for k in KPI_NAMES:
        if k not in fc.mean or f"true_{k}" not in t.columns:
            continue
        y = test[k].cast(pl.Float64).fill_null(np.nan).to_numpy()
        tru = t[f"true_{k}"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        q = fc.quantiles[k]
        out[k] = {"mae_log1p_true": mae_log1p(tru, fc.mean[k]), "coverage_p10_p90": coverage(y, q[:, 0], q[:, -1]),
                  "sum_forecast_over_true": float(np.nansum(fc.mean[k]) / np.nansum(tru))}  # fmt: skip
    return out


def _oracle(predictor: Predictor, folder: Path, briefs: int, goals: tuple[str, ...]) -> dict[str, float]:
    tiers, cfg = load_tier_config(), load_planner_config()
    ev = evaluate_planner(predictor, folder, cfg, tiers, per_goal=briefs, seed=0, goals=goals)
    return {g: float(e["planner"]["mean_share"]) for g, e in ev.summary.items()}


def _line(ways: dict[str, Any]) -> str:
    parts = []
    for w, v in ways.items():
        if not isinstance(v, dict) or "scores" not in v:
            continue
        scores = v["scores"]
        mae = " ".join(f"{k} {scores[k]['mae_log1p_true']:.3f}" for k in ("reach", "conversions") if k in scores)
        share = " ".join(f"{g} {s:.1%}" for g, s in v.get("oracle_share", {}).items())
        parts.append(f"{w}: MAE vs truth {mae}; oracle share {share}")
    return " | ".join(parts)


def _side_by_side(a: argparse.Namespace, seeds: list[int]) -> None:
    """One child process per world (the prior trained first, once), their JSON merged into ``a.out``."""
    t0 = time.perf_counter()
    prior = _prior(a.prior, a.work)
    parts, procs = [], []
    for seed in seeds:
        part = a.work / f"own_campaigns_{seed}.json"
        args = [sys.executable, __file__, "--prior", str(prior), "--seeds", str(seed), "--creators", str(a.creators),
                "--ns", a.ns, "--briefs", str(a.briefs), "--goals", a.goals, "--work", str(a.work), "--out", str(part),
                "--jobs", "1"]  # fmt: skip
        procs.append(subprocess.Popen(args))
        parts.append(part)
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a world's run failed (see its output above)")
    merged: dict[str, Any] = {}
    for part in parts:
        body = json.loads(part.read_text(encoding="utf-8"))
        worlds = merged.setdefault("worlds", {})
        worlds.update(body.pop("worlds"))
        body.pop("seconds", None)
        merged.update({k: v for k, v in body.items() if k != "worlds"})
    merged["seconds"] = time.perf_counter() - t0
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(merged, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"wrote {a.out} in {merged['seconds']:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prior", type=Path, default=None, help="prior bundle (default: train one on the demo world)")
    ap.add_argument("--seeds", default="1,2", help="shifted worlds' seeds")
    ap.add_argument("--creators", type=int, default=20_000)
    ap.add_argument("--ns", default="50,100,300,1000,3000")
    ap.add_argument("--briefs", type=int, default=8, help="random briefs per goal for the oracle share (0: skip)")
    ap.add_argument("--goals", default="conversions,reach")
    ap.add_argument("--work", type=Path, default=Path("runs/bench_own_campaigns"))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "own_campaigns.json")
    ap.add_argument("--jobs", type=int, default=2, help="worlds evaluated side by side (one process each)")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.jobs > 1 and len(seeds) > 1:
        _side_by_side(a, seeds)
        return
    tiers, mcfg = load_tier_config(), load_model_config()
    t0 = time.perf_counter()
    prior_path = _prior(a.prior, a.work)
    prior = load_bundle(prior_path)
    goals = tuple(g for g in a.goals.split(",") if g)
    feats = feature_columns()
    result: dict[str, Any] = {"prior": str(prior_path), "prior_trained_on": prior.manifest.training.data,
                              "test_share": TEST_SHARE, "briefs_per_goal": a.briefs, "goals": list(goals),
                              "worlds": {}}  # fmt: skip
    for seed in seeds:
        folder = a.work / f"shifted_world_{seed}"
        if not (folder / "manifest.json").is_file():
            folder, factors = shifted_world(seed, a.creators, a.work, tiers)
        else:  # the world of a seed is always the same: its factors too
            factors = shifted_config(load_simulator_config(), seed)[1]
        frame = load_training_table(folder, tiers).frame.sort("as_of", "request_id")
        truth = load_truth(folder)
        assert truth is not None
        cut = round(frame.height * (1 - TEST_SHARE))
        pool, test = frame.head(cut), frame.tail(frame.height - cut)
        world: dict[str, Any] = {"folder": str(folder), "factors": factors, "pool_rows": pool.height,
                                 "test_rows": test.height, "by_n": {}}  # fmt: skip
        base = {"prior": prior.forecaster}
        rows_prior = {"scores": _scores(prior.forecaster.predict(test.select(feats)), test, truth)}
        if a.briefs:
            rows_prior["oracle_share"] = _oracle(prior, folder, a.briefs, goals)
        world["prior"] = rows_prior
        print(f"world {seed}: {_line({'prior': rows_prior})}", flush=True)
        for n in (int(v) for v in a.ns.split(",")):
            user = _sample(pool, n, seed)
            X, y = user.select(feats), targets_of(user)
            ways: dict[str, Any] = {}
            fcs: dict[str, KPIForecaster | None] = {**base}
            t = time.perf_counter()
            try:
                fcs["scratch"] = KPIForecaster(mcfg, random_state=0).fit(
                    X, y, time=user["as_of"].to_numpy(), groups=user["creator_id"].to_numpy()
                )
            except ValueError as exc:
                fcs["scratch"] = None
                ways["scratch"] = {"error": str(exc)}
            t_scratch = time.perf_counter() - t
            t = time.perf_counter()
            shift_fit = fit_from_prior(prior.forecaster, X, y, groups=user["creator_id"].to_numpy(),
                                       methods=("prior", "shift"))  # fmt: skip
            fcs["prior_shift"] = shift_fit.forecaster
            user_fit = fit_from_prior(prior.forecaster, X, y, groups=user["creator_id"].to_numpy())
            fcs["prior_user"] = user_fit.forecaster
            t_prior = time.perf_counter() - t
            for name, fc in fcs.items():
                if name == "prior":
                    continue
                if fc is None:
                    continue
                entry: dict[str, Any] = {"scores": _scores(fc.predict(test.select(feats)), test, truth)}
                if a.briefs:
                    pred = Predictor(forecaster=fc, manifest=prior.manifest, completion=prior.completion,
                                     baselines=prior.baselines if name != "scratch"
                                     else Baselines.fit(X, y, mcfg.media_kit))  # fmt: skip
                    entry["oracle_share"] = _oracle(pred, folder, a.briefs, goals)
                ways[name] = entry
            ways["prior_user"]["corrections"] = {k: c.to_dict() for k, c in user_fit.corrections.items()}
            ways["seconds"] = {"scratch_fit": t_scratch, "prior_fits": t_prior}
            world["by_n"][str(n)] = ways
            print(f"world {seed} N={n}: {_line(ways)}", flush=True)
        result["worlds"][str(seed)] = world
    result["seconds"] = time.perf_counter() - t0
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"wrote {a.out} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
