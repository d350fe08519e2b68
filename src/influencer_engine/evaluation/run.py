"""`ie evaluate` as library functions: the KPI models on worlds and real histories, the planner against the oracle.

``evaluate_models`` backtests a model's settings on a simulated world, on shifted worlds (rates, prices and
elasticities moved) and runs the next-post test on real post histories, and writes the JSON and Markdown report.
``evaluate_planners`` plans random briefs on worlds and scores the rosters with the simulator's truth; on a shifted
world it first trains a model inside that world. The CLI parses, calls one of these and prints the summary lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from influencer_engine.config import PlannerConfig, TierConfig, load_simulator_config
from influencer_engine.errors import InputError
from influencer_engine.evaluation.nextpost import NEIGHBOURS, next_post_backtest
from influencer_engine.evaluation.planner_eval import PlannerEvaluation, evaluate_planner, summary_lines
from influencer_engine.io import write_json
from influencer_engine.modeling.backtest import BacktestResult, backtest
from influencer_engine.modeling.forecaster import targets_of
from influencer_engine.modeling.predictor import Predictor
from influencer_engine.modeling.prior import Drift, drift
from influencer_engine.modeling.report import write_report
from influencer_engine.simulate.generate import simulate_market
from influencer_engine.simulate.shift import shifted_config
from influencer_engine.simulate.world import write_world
from influencer_engine.training.bundle import load_bundle
from influencer_engine.training.data import load_training_table, market_rows
from influencer_engine.training.train import load_truth, train_models

__all__ = ["ModelEvaluation", "PlannerReport", "drift_lines", "evaluate_models", "evaluate_planners", "shifted_world"]


def shifted_world(seed: int, creators: int, out: Path, tiers: TierConfig) -> tuple[Path, dict[str, Any]]:
    """Simulate the shifted world of ``seed`` into out/shifted_world_<seed>; its folder and the shift factors."""
    shifted, factors = shifted_config(load_simulator_config(), seed)
    folder = out / f"shifted_world_{seed}"
    write_world(simulate_market(shifted, tiers, creators, seed), shifted, tiers, seed, folder)
    return folder, factors


def drift_lines(shifted: dict[str, Drift], data: Path, *, in_sample: bool = False) -> list[str]:
    """What a person reads about the model's bands on ``data``'s outcomes: a line per drifted KPI, or one line
    saying the outcomes sit where the bands promise."""
    where = f"{data}" + (" (the data the model was trained on: in sample)" if in_sample else "")
    off = [d for d in shifted.values() if d.drifted]
    if not shifted:
        return []
    if not off:
        inside = ", ".join(f"{d.kpi} {d.inside:.0%}" for d in shifted.values())
        return [f"drift check on {where}: the outcomes sit in the model's P10-P90 as promised ({inside})"]
    return [f"drift on {where}: {d.message()}" for d in off]


@dataclass(frozen=True)
class ModelEvaluation:
    sections: dict[str, BacktestResult]  # world name -> backtest
    notes: list[str]  # what a person reads first (the next-post result among them)
    paths: dict[str, Path]  # the report's files

    def summary_lines(self) -> list[str]:
        lines = []
        for name, r in self.sections.items():
            won = sum(r.beats.values())
            cov = ", ".join(f"{k} {d['model']['coverage_p10_p90']:.0%}" for k, d in r.metrics.items())
            lines.append(f"{name}: model beats every baseline on {won}/{len(r.beats)} KPIs; conversions/$ Spearman "
                         f"{r.per_dollar.get('model', float('nan')):.3f}; coverage {cov}")  # fmt: skip
        return lines + self.notes[1:]


def evaluate_models(
    predictor: Predictor,
    model_ref: str,
    tiers: TierConfig,
    out: Path,
    *,
    data: Path | None = None,
    shifted_seeds: list[int] | None = None,
    shifted_creators: int = 20_000,
    real_posts: Path | None = None,
) -> ModelEvaluation:
    """Backtest ``predictor``'s settings on each world asked for, the next-post test on real histories; write the
    report (evaluation.json, evaluation.md, calibration charts) into ``out``."""
    if data is None and not shifted_seeds and real_posts is None:
        raise InputError("nothing to evaluate.", fix="give --data DIR, --shifted-seed N and/or --real-posts DIR")
    f = predictor.forecaster
    cfg, overrides, seed = f.config, f.overrides, f.random_state
    sections: dict[str, BacktestResult] = {}
    extra: dict[str, object] = {"model": model_ref, "training_data_fingerprint": predictor.fingerprint}
    notes = [f"model {model_ref} (trained on {predictor.manifest.training.data}); each world is backtested with the "
             "model's settings: train on earlier campaigns, test on later ones"]  # fmt: skip
    if data is not None:
        table = load_training_table(data, tiers)
        market = market_rows(table, tiers, seed=seed)  # as `ie train` backtests: the correction carried over
        sections[f"world {data.name}"] = backtest(table.frame, cfg, truth=load_truth(data), overrides=overrides,
                                                  seed=seed, unlabeled=market)  # fmt: skip
        shifted = drift(f, table.frame.select(predictor.features), targets_of(table.frame, predictor.kpis))
        extra["drift"] = {k: d.to_dict() for k, d in shifted.items()}
        notes += drift_lines(shifted, data, in_sample=table.fingerprint() == predictor.fingerprint)
        if predictor.manifest.prior is not None:
            notes.append(f"{model_ref} was trained from the prior {predictor.manifest.prior.bundle} on "
                         f"{predictor.manifest.prior.user_rows:,} of your rows: the backtest above fits the prior's "
                         "settings from scratch on the data; the drift check reads the bundle itself")  # fmt: skip
    for s in shifted_seeds or []:
        folder, factors = shifted_world(s, shifted_creators, out, tiers)
        table = load_training_table(folder, tiers)
        market = market_rows(table, tiers, seed=seed)
        sections[f"shifted world (seed {s})"] = backtest(table.frame, cfg, truth=load_truth(folder),
                                                         overrides=overrides, seed=seed, unlabeled=market)  # fmt: skip
        extra[f"shifted_world_{s}"] = {"creators": shifted_creators, "factors": factors, "folder": str(folder)}
    if real_posts is not None:
        r = next_post_backtest(real_posts, tiers)
        extra["next_post"] = {"data": str(real_posts), **r.to_dict()}
        m = r.metrics
        notes.append(
            f"next-post engagement on {real_posts}: MAE log1p model {m['model']['mae_log1p']:.3f} "
            f"vs trailing median of the last {r.window} posts {m[f'trailing_median_last{r.window}']['mae_log1p']:.3f} "
            f"({r.improvement_vs_trailing_median:+.1%} better), followers x tier rate "
            f"{m['followers_x_tier_rate']['mae_log1p']:.3f}; {r.rows['test']:,} test posts; on each half of the "
            f"creators {', '.join(f'{v:+.1%}' for v in r.by_half.values())}"
        )
        notes.append(f"next-post rows: {r.rows['posts_in']:,} posts in; {r.rows['without_likes']:,} without a like "
                     f"count (no engagement to score), {r.rows['without_earlier_post']:,} without an earlier post (no "
                     f"history to forecast from), {r.rows['train']:,} train, {r.rows['test']:,} test")  # fmt: skip
        base = m[f"trailing_median_last{r.window}"]["mae_log1p"]
        notes.append(f"next-post boosters: the level alone MAE log1p {r.boosters['level']:.3f}, the ratio to the "
                     f"trailing median alone {r.boosters['ratio']:.3f}, their log average (the model) "
                     f"{r.boosters['model']:.3f}")  # fmt: skip
        c = r.level_ceiling
        notes.append(f"next-post level ceiling (reads later posts, not a forecast): the median of the creator's "
                     f"{NEIGHBOURS} posts before and after {c['neighbours_median']:+.1%} over the trailing median, "
                     f"the model with that median {c['model_with_neighbours']:+.1%}: what the model misses beyond "
                     f"it is each post's own")  # fmt: skip
        notes.append(f"next-post P10-P90 coverage of the test posts: pooled bands {r.coverage['pooled']:.1%}, bands "
                     f"per history bucket {r.coverage['by_history']:.1%}, auto {r.coverage['auto']:.1%} "
                     f"({'per bucket' if r.auto_per_bucket else 'pooled'}); by posts before: " + "; ".join(
                         f"{b} {h['rows']:,.0f} posts MAE {h['mae_model']:.3f} (trailing median "
                         f"{h['mae_trailing_median']:.3f}) coverage {h['coverage_pooled']:.1%} / "
                         f"{h['coverage_by_history']:.1%}" for b, h in r.by_history.items()))  # fmt: skip
        notes += [f"next-post features, {step}: MAE log1p {mae:.3f} ({1 - mae / base:+.1%})"
                  for step, mae in r.ablation.items()]  # fmt: skip
    paths = write_report(out, sections, title="KPI model evaluation", extra=extra, notes=notes)
    return ModelEvaluation(sections=sections, notes=notes, paths=paths)


@dataclass(frozen=True)
class PlannerReport:
    worlds: dict[str, PlannerEvaluation]
    seconds: dict[str, float]
    path: Path
    lines: list[str] = field(default_factory=list)  # the summary a person reads, world by world (also progress)


def evaluate_planners(
    predictor: Predictor,
    tiers: TierConfig,
    planner: PlannerConfig,
    out: Path,
    *,
    data: Path | None = None,
    shifted_seeds: list[int] | None = None,
    shifted_creators: int = 20_000,
    per_goal: int = 20,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> PlannerReport:
    """Random briefs per goal (``seed``) on ``data`` (with ``predictor``) and on shifted worlds (each with a model
    trained in it with ``predictor``'s settings: its config, tuned overrides and seed); every planned roster scored
    against the oracle. Writes planner_evaluation.json."""
    if data is None and not shifted_seeds:
        raise InputError("nothing to evaluate the planner on.", fix="give --data WORLD and/or --shifted-seed N")
    say = progress or (lambda _: None)
    f = predictor.forecaster
    worlds: list[tuple[str, Path, Predictor]] = []
    if data is not None:
        worlds.append((f"world {data.name}", data, predictor))
    for s in shifted_seeds or []:
        folder, _ = shifted_world(s, shifted_creators, out, tiers)
        say(f"shifted world {s}: {shifted_creators:,} creators in {folder}; training a model within it with the "
            "model's settings")  # fmt: skip
        train_models(folder, folder / "model", f.config, tiers, seed=f.random_state, overrides=f.overrides,
                     track=False, register=False)  # fmt: skip
        worlds.append((f"shifted world (seed {s})", folder, load_bundle(folder / "model")))
    results: dict[str, PlannerEvaluation] = {}
    seconds: dict[str, float] = {}
    lines: list[str] = []
    for name, folder, model in worlds:
        t0 = time.perf_counter()
        ev = evaluate_planner(model, folder, planner, tiers, per_goal=per_goal, seed=seed)
        results[name], seconds[name] = ev, time.perf_counter() - t0
        head = (f"{name}: {per_goal} random briefs per goal, {seconds[name]:.0f} s; true value as a share of the "
                "oracle roster's (mean):")  # fmt: skip
        for line in (head, *("  " + s for s in summary_lines(ev))):
            lines.append(line)
            say(line)
    path = write_json({name: ev.to_dict() for name, ev in results.items()}, out / "planner_evaluation.json")
    return PlannerReport(worlds=results, seconds=seconds, path=path, lines=lines)
