"""The ``ie`` command line. Errors print as one line with the fix; ``--debug`` shows the traceback."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import typer

from influencer_engine.errors import EngineError, InputError

if TYPE_CHECKING:
    from influencer_engine.brief import Brief
    from influencer_engine.config import ModelConfig, PlannerConfig, TierConfig
    from influencer_engine.planner.plan import PlanInputs
    from influencer_engine.training.bundle import Bundle

__all__ = ["app", "main"]

app = typer.Typer(
    name="ie",
    help="Influencer selection and forecasting engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
import_app = typer.Typer(help="Import real public data sets into the table contracts.", no_args_is_help=True)
app.add_typer(import_app, name="import")
features_app = typer.Typer(help="Point-in-time creator features for any brief.", no_args_is_help=True)
app.add_typer(features_app, name="features")

_REPORT_CREATORS = 100_000
_COMPILED_CACHE = Path.home() / ".cache" / "influencer-engine" / "compiled"
_DEFAULT_CREATORS = 20_000


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """Influencer selection and forecasting engine."""


def _echo_manifest(out: Path) -> None:
    body = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for name, t in body["tables"].items():
        reasons = ", ".join(f"{k} {v}" for k, v in list(t["reasons"].items())[:4])
        typer.echo(
            f"  {name:10} in {t['rows_in']:>10,}  out {t['rows_out']:>10,}  rejected {t['rows_rejected']:>8,}"
            + (f"  ({reasons})" if reasons else "")
        )
    typer.echo(f"  manifest: {out / 'manifest.json'}")


@app.command()
def simulate(
    out: Annotated[Path | None, typer.Option(help="Folder to write the world to (Parquet + truth/).")] = None,
    creators: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"Creators to draw (default {_DEFAULT_CREATORS:,}; {_REPORT_CREATORS:,} for a "
            "report-only run, so every tier has enough creators to measure).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives identical tables.")] = 7,
    report: Annotated[bool, typer.Option("--report", help="Print simulated figures beside published ranges.")] = False,
    config: Annotated[Path | None, typer.Option(help="Simulator TOML (default configs/simulator.toml).")] = None,
) -> None:
    """Draw a calibrated synthetic creator market with its ground truth."""
    from influencer_engine.config import load_simulator_config, load_tier_config
    from influencer_engine.simulate.generate import simulate_market
    from influencer_engine.simulate.report import calibration_report, format_report
    from influencer_engine.simulate.world import write_world

    if out is None and not report:
        raise InputError("nothing to do.", fix="give --out DIR to write a world, or --report to check calibration")
    n = creators or (_DEFAULT_CREATORS if out is not None else _REPORT_CREATORS)
    cfg, tiers = load_simulator_config(config), load_tier_config()
    t0 = time.perf_counter()
    market = simulate_market(cfg, tiers, n, seed)
    if out is not None:
        write_world(market, cfg, tiers, seed, out)
        typer.echo(f"simulated {n:,} creators (seed {seed}) in {time.perf_counter() - t0:.1f}s -> {out}")
        _echo_manifest(out)
    if report:
        rows = calibration_report(cfg, market.creators, market.posts, market.outcomes, market.truth)
        typer.echo(format_report(rows))
        if out is not None:
            from influencer_engine.io import write_json

            write_json({"rows": [r.to_dict() for r in rows]}, out / "calibration_report.json")
        if not all(r.inside for r in rows):
            raise typer.Exit(code=3)


@app.command("validate")
def validate_cmd(
    kind: Annotated[str, typer.Argument(help="creators, posts, campaigns, outcomes, briefs, or world (a folder).")],
    path: Annotated[Path, typer.Argument(help="A Parquet/CSV file, or a folder for 'world'.")],
    out: Annotated[Path | None, typer.Option(help="Write valid rows, rejects.parquet and manifest.json here.")] = None,
) -> None:
    """Check a table (or a whole dataset folder) against its contract."""
    from influencer_engine.dataset import validate_dataset, validate_file
    from influencer_engine.io import Manifest, table_files

    manifest = Manifest(command=f"validate {kind}", out_dir=out or Path("."), params={"path": str(path)})
    if kind == "world":
        ds = validate_dataset(path)
        ds.to_manifest(manifest)
        results = ds.results
    else:
        result = validate_file(kind, path)
        manifest.add_result(kind, result, [str(p) for p in table_files(path)])
        results = {kind: result}
    rejected = sum(r.rows_rejected for r in results.values())
    for name, r in results.items():
        reasons = ", ".join(f"{k} {v}" for k, v in list(r.reason_counts().items())[:5])
        typer.echo(
            f"{name:10} in {r.rows_in:>10,}  valid {r.rows_out:>10,}  rejected {r.rows_rejected:>8,}"
            + (f"  ({reasons})" if reasons else "")
            + (f"  ignored columns: {', '.join(r.ignored_columns)}" if r.ignored_columns else "")
        )
    if out is not None:
        for name, r in results.items():
            manifest.write_table(name, r.valid)
        manifest.write()
        typer.echo(f"manifest: {out / 'manifest.json'}")
    if rejected:
        typer.echo(f"{rejected:,} row(s) rejected" + ("" if out else "; rerun with --out DIR to get every reason"))
        raise typer.Exit(code=1)
    typer.echo("all rows valid")


@app.command()
def summary(
    folder: Annotated[Path, typer.Argument(help="A dataset folder (creators, posts, campaigns, outcomes).")],
) -> None:
    """Describe a dataset: creators by platform and tier, posting, engagement, campaign economics."""
    from influencer_engine.dataset import TABLES, find_table, summarize
    from influencer_engine.io import read_table

    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder.", fix="point at a dataset folder")
    tables = {name: read_table(p) for name in TABLES if (p := find_table(folder, name)) is not None}
    typer.echo(summarize(tables))


@app.command()
def contracts(
    table: Annotated[str | None, typer.Argument(help="One table; all when omitted.")] = None,
) -> None:
    """List the columns each table contract expects."""
    from influencer_engine.schema import CONTRACTS

    names = [table] if table else list(CONTRACTS)
    for name in names:
        if name not in CONTRACTS:
            raise InputError(f"unknown table '{name}'.", fix=f"use one of {', '.join(CONTRACTS)}")
        c = CONTRACTS[name]
        typer.echo(f"{name} (key: {', '.join(c.key)})")
        for col in c.columns:
            need = "required" if col.required else "optional"
            extra = f" one of {'|'.join(col.values)}" if col.values and len(col.values) <= 8 else ""
            typer.echo(f"  {col.name:28} {col.kind:9} {need:8} {col.meaning}{extra}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo world.")] = Path("runs/demo"),
    creators: Annotated[int, typer.Option(min=1, help="Creators to draw.")] = _DEFAULT_CREATORS,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    model_out: Annotated[Path, typer.Option(help="Bundle folder for the trained models.")] = Path("models/demo"),
    brief: Annotated[
        Path | None, typer.Option(help="Brief to forecast (default configs/briefs/fitness_january.toml).")
    ] = None,
    train_models: Annotated[
        bool, typer.Option("--train/--no-train", help="Train and forecast after simulating.")
    ] = True,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log training to MLflow (training/).")] = True,
    training_root: Annotated[Path, typer.Option(help="Folder for the MLflow store.")] = Path("training"),
) -> None:
    """The main job end to end on the simulated world: simulate, validate, summarize, train, forecast and plan a
    brief (roster with its certified gap)."""
    from influencer_engine.brief import load_brief
    from influencer_engine.config import config_path, load_model_config, load_simulator_config, load_tier_config
    from influencer_engine.dataset import summarize, validate_dataset
    from influencer_engine.io import Manifest, write_csv
    from influencer_engine.simulate.generate import simulate_market
    from influencer_engine.simulate.world import write_world

    steps = 6 if train_models else 3
    cfg, tiers = load_simulator_config(), load_tier_config()
    t0 = time.perf_counter()
    market = simulate_market(cfg, tiers, creators, seed)
    write_world(market, cfg, tiers, seed, out)
    typer.echo(f"1/{steps} simulated {creators:,} creators (seed {seed}) in {time.perf_counter() - t0:.1f}s -> {out}")
    ds = validate_dataset(out)
    ds.to_manifest(Manifest(command="validate world", out_dir=out / "validation", params={"path": str(out)})).write()
    bad = sum(r.rows_rejected for r in ds.results.values())
    typer.echo(f"2/{steps} validated {sum(r.rows_in for r in ds.results.values()):,} rows: {bad:,} rejected "
               f"(manifest: {out / 'validation' / 'manifest.json'})")  # fmt: skip
    typer.echo(f"3/{steps} summary")
    typer.echo(summarize({name: r.valid for name, r in ds.results.items()}))
    if bad:
        raise EngineError(f"the simulated world broke its own contracts ({bad} rows).", fix="report this as a bug")
    if not train_models:
        return
    from influencer_engine.forecast import forecast_brief
    from influencer_engine.training.bundle import load_bundle
    from influencer_engine.training.train import train_models as run_training

    t1 = time.perf_counter()
    r = run_training(out, model_out, load_model_config(), tiers, track=track, training_root=training_root)
    won = sum(r.backtest.beats.values())
    typer.echo(f"4/{steps} trained {len(r.backtest.metrics)} KPI models in {time.perf_counter() - t1:.1f}s -> "
               f"{model_out}; backtest: beats every baseline on {won}/{len(r.backtest.beats)} KPIs, conversions "
               f"per dollar Spearman {r.backtest.per_dollar.get('model', float('nan')):.3f} "
               f"(report: {model_out / 'report' / 'evaluation.md'})")  # fmt: skip
    b = load_brief(brief or config_path("briefs/fitness_january.toml"))
    bundle = load_bundle(model_out)
    fc = forecast_brief(bundle, out, b, tiers)
    write_csv(fc.table, out / "forecasts" / f"{b.brief_id}.csv")
    top = fc.table.filter(pl.col("price").is_not_null()).sort("cpa", nulls_last=True).head(5)
    typer.echo(f"5/{steps} forecast {fc.table.height:,} creators for brief {b.brief_id} -> "
               f"{out / 'forecasts' / (b.brief_id + '.csv')}; lowest expected cost per conversion:")  # fmt: skip
    for row in top.iter_rows(named=True):
        typer.echo(f"  {row['creator_id']} {row['platform']:9} {row['tier']:5} price ${row['price']:>9,.0f}  "
                   f"conversions {row['conversions']:6.1f} (P10 {row['conversions_p10']:.1f}, P90 "
                   f"{row['conversions_p90']:.1f})  CPA ${row['cpa']:,.2f}")  # fmt: skip
    from influencer_engine.config import load_planner_config
    from influencer_engine.planner.plan import PlanInputs, audience_table, plan, write_plan

    t2 = time.perf_counter()
    result = plan(bundle, PlanInputs(fc, audience_table(out)), b, load_planner_config())
    paths = write_plan(result, out / "plan")
    t, sol = result.totals, result.totals["solver"]
    typer.echo(f"6/{steps} planned brief {b.brief_id} in {time.perf_counter() - t2:.1f}s: {t['creators']} creators, "
               f"spend ${t['spend']:,.0f} of ${b.budget:,.0f}, expected {b.goal} {t['goal']['expected']:,.0f} "
               f"(P10 {t['goal']['p10']:,.0f}, P90 {t['goal']['p90']:,.0f}), unique reach "
               f"{t['unique_reach']['expected']:,.0f}; certified gap {sol['certified_gap']:.2%} -> "
               f"{paths['roster.csv']}")  # fmt: skip


@import_app.command("instagram-posts")
def import_instagram_posts_cmd(
    src: Annotated[Path, typer.Argument(help="The instagram_posts_2015_2020 folder (read in place).")],
    out: Annotated[Path, typer.Option(help="Folder for creators, posts, rejects and manifest.")],
) -> None:
    """Import per-post Instagram histories (2015-2020)."""
    from influencer_engine.importers.instagram_posts import import_instagram_posts

    import_instagram_posts(src, out)
    typer.echo(f"imported {src} -> {out}")
    _echo_manifest(out)


@import_app.command("rankings")
def import_rankings_cmd(
    src: Annotated[Path, typer.Argument(help="The top1000_creators_2022 folder (read in place).")],
    out: Annotated[Path, typer.Option(help="Folder for rankings, creators, rejects and manifest.")],
) -> None:
    """Import top-1000 ranking snapshots (Instagram, TikTok, YouTube; 2022)."""
    from influencer_engine.importers.rankings import import_rankings

    import_rankings(src, out)
    typer.echo(f"imported {src} -> {out}")
    _echo_manifest(out)


@features_app.command("list")
def features_list(group: Annotated[str | None, typer.Option(help="Only this group.")] = None) -> None:
    """Print every feature: name, group and meaning."""
    from influencer_engine.features.catalog import catalog

    specs = [s for s in catalog() if group is None or s.group == group]
    if not specs:
        raise InputError(f"no feature group '{group}'.", fix="run `ie features list` to see the groups")
    for s in specs:
        typer.echo(f"{s.name:36} {s.group:13} {s.meaning}")


@features_app.command("build")
def features_build(
    data: Annotated[
        Path, typer.Option(help="Dataset folder (from `ie simulate`, `ie import` or `ie validate --out`).")
    ],
    out: Annotated[Path, typer.Option(help="Output folder, e.g. features/demo.")],
    brief: Annotated[Path | None, typer.Option(help="Brief TOML/JSON: one row per creator for this brief.")] = None,
    as_of: Annotated[
        str | None, typer.Option(help="As-of date YYYY-MM-DD (default: brief start, else day after the last post).")
    ] = None,
    partitions: Annotated[int, typer.Option(min=1, help="Creator partitions processed one at a time.")] = 1,
) -> None:
    """Materialize a feature table: training rows for past hires, or one row per creator for a brief."""
    from datetime import UTC, datetime

    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.features.pipeline import build_feature_table

    when = None
    if as_of is not None:
        try:
            when = datetime.strptime(as_of, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError as exc:
            raise InputError(f"--as-of '{as_of}' is not a date.", fix="write it as YYYY-MM-DD") from exc
    t0 = time.perf_counter()
    build_feature_table(
        data, out, load_tier_config(), brief=load_brief(brief) if brief else None, as_of=when, partitions=partitions
    )
    typer.echo(f"features built in {time.perf_counter() - t0:.1f}s -> {out}")
    _echo_manifest(out)


_TRACKING_HELP = "MLflow tracking URI (default: sqlite file training/mlflow.db)."


def _tiers_and_config(config: Path | None) -> tuple[TierConfig, ModelConfig]:
    from influencer_engine.config import load_model_config, load_tier_config

    return load_tier_config(), load_model_config(config)


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Dataset folder with campaigns and outcomes (e.g. runs/demo).")],
    out: Annotated[Path, typer.Option(help="Bundle folder to write, e.g. models/demo.")] = Path("models/demo"),
    config: Annotated[Path | None, typer.Option(help="Model TOML (default configs/models.toml).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the models.")] = 0,
    tuned: Annotated[bool, typer.Option("--tuned", help="Use the parameters `ie tune` wrote under training/.")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help=_TRACKING_HELP)] = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log the run to MLflow.")] = True,
    register: Annotated[bool, typer.Option("--register/--no-register", help="Register as @champion.")] = True,
    training_root: Annotated[Path, typer.Option(help="Folder for MLflow and Optuna stores.")] = Path("training"),
    engine: Annotated[str, typer.Option(help="local, or dask: LightGBM trains on a Dask cluster.")] = "local",
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: a local cluster of 2 workers).")
    ] = None,
) -> None:
    """Train every KPI model: backtest beside the baselines, fit on all campaigns, write the bundle."""
    from influencer_engine.training.distributed import dask_training
    from influencer_engine.training.train import train_models
    from influencer_engine.training.tune import load_tuned

    if engine not in ("local", "dask"):
        raise InputError(f"--engine '{engine}' is unknown.", fix="use --engine local or --engine dask")
    tiers, cfg = _tiers_and_config(config)
    overrides = load_tuned(training_root) if tuned else None
    if tuned and not overrides:
        raise InputError(f"no tuned parameters under {training_root}/tuned.", fix="run `ie tune --kpi KPI` first")
    with contextlib.ExitStack() as stack:
        if engine == "dask":
            stack.enter_context(dask_training(stack.enter_context(_dask_client(scheduler))))
        r = train_models(data, out, cfg, tiers, seed=seed, overrides=overrides, track=track, engine=engine,
                         training_root=training_root, tracking_uri=tracking_uri, register=register)  # fmt: skip
    bt = r.backtest
    typer.echo(f"trained {len(bt.metrics)} KPI models on {r.table.frame.height:,} campaign outcomes "
               f"in {r.seconds['total']:.1f}s -> {r.bundle}")  # fmt: skip
    for kpi, d in bt.metrics.items():
        m = d["model"]
        best = min((b for b in d if b != "model"), key=lambda b: d[b]["mae_log1p"])
        typer.echo(f"  {kpi:12} MAE log1p {m['mae_log1p']:.3f} (best baseline {best} {d[best]['mae_log1p']:.3f})  "
                   f"Spearman {m['spearman']:.3f}  P10-P90 coverage {m['coverage_p10_p90']:.1%}")  # fmt: skip
    if bt.per_dollar:
        typer.echo(f"  conversions per dollar, Spearman: {bt.per_dollar['model']:.3f}")
    typer.echo(f"  report: {r.bundle / 'report' / 'evaluation.md'}")
    if r.tracking:
        typer.echo(f"  MLflow run {r.tracking['run_id']} at {r.tracking['tracking_uri']}"
                   + (f"; registered {r.tracking['registered_uri']} (version {r.tracking['version']})"
                      if r.tracking.get("registered_uri") else ""))  # fmt: skip


@app.command()
def tune(
    kpi: Annotated[
        str, typer.Option(help="KPI to tune: reach, impressions, engagements, clicks, conversions, revenue.")
    ],
    data: Annotated[Path, typer.Option(help="Dataset folder with campaigns and outcomes.")] = Path("runs/demo"),
    trials: Annotated[int, typer.Option(min=1, help="Trials to add to the study.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the sampler and the models.")] = 0,
    config: Annotated[Path | None, typer.Option(help="Model TOML (default configs/models.toml).")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL (default sqlite training/optuna.db).")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=_TRACKING_HELP)] = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log the best parameters to MLflow.")] = True,
    training_root: Annotated[Path, typer.Option(help="Folder for MLflow and Optuna stores.")] = Path("training"),
) -> None:
    """Tune one KPI's LightGBM settings with Optuna (resumable study, pruned trials)."""
    from influencer_engine.training.data import load_training_table
    from influencer_engine.training.tune import tune_kpi

    tiers, cfg = _tiers_and_config(config)
    t0 = time.perf_counter()
    table = load_training_table(data, tiers)
    r = tune_kpi(table, cfg, kpi, trials=trials, root=training_root, seed=seed, storage=storage)
    typer.echo(f"tuned {kpi}: {r.trials} trials in the study ({r.complete} complete, {r.pruned} pruned) "
               f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip
    typer.echo(f"  validation Poisson deviance: best {r.best_value:.4f} vs configured settings {r.default_value:.4f}")
    typer.echo(f"  best parameters -> {r.path} (use with `ie train --tuned`)")
    if track:
        import mlflow

        from influencer_engine.training.tracking import configure

        configure(tracking_uri, training_root, experiment="kpi-tuning")
        with mlflow.start_run(run_name=f"tune {kpi}"):
            mlflow.log_params({f"best.{k}": v for k, v in r.best_params.items()} | {"kpi": kpi, "seed": seed})
            mlflow.log_metrics({"best_poisson_deviance": r.best_value, "default_poisson_deviance": r.default_value,
                                "trials": r.trials, "pruned": r.pruned})  # fmt: skip
            mlflow.log_artifact(str(r.path))


@app.command()
def evaluate(
    model: Annotated[
        str, typer.Option(help="Bundle folder, or an MLflow URI such as models:/influencer-engine-kpi@champion.")
    ] = "models/demo",
    data: Annotated[Path | None, typer.Option(help="Dataset folder to backtest on (campaign outcomes).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for evaluation.json, evaluation.md and charts.")] = Path(
        "runs/evaluation"
    ),
    shifted_seed: Annotated[
        list[int] | None, typer.Option(help="Also evaluate on a shifted world of this seed (repeatable).")
    ] = None,
    shifted_creators: Annotated[int, typer.Option(min=1000, help="Creators of each shifted world.")] = 20_000,
    real_posts: Annotated[
        Path | None, typer.Option(help="Imported post histories for the next-post test (`ie import instagram-posts`).")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=_TRACKING_HELP)] = None,
    training_root: Annotated[Path, typer.Option(help="Folder of the MLflow store.")] = Path("training"),
    planner: Annotated[
        bool, typer.Option("--planner", help="Score planned rosters against the oracle on --data / shifted worlds.")
    ] = False,
    briefs_per_goal: Annotated[int, typer.Option(min=1, help="Random briefs per goal (--planner).")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the random briefs (--planner).")] = 0,
) -> None:
    """Backtest the model's settings beside the baselines; also on shifted worlds and real post histories.

    With --planner: rosters planned from forecasts, scored with the simulator's truth against the oracle roster
    and the heuristics planners use (top followers, top engagement rate, lowest media-kit CPE).
    """
    if planner:
        _evaluate_planner(model, data, out, shifted_seed or [], shifted_creators, briefs_per_goal, seed,
                          tracking_uri, training_root)  # fmt: skip
        return
    from influencer_engine.config import load_tier_config
    from influencer_engine.evaluation.backtest import backtest
    from influencer_engine.evaluation.report import write_report
    from influencer_engine.training.tracking import load_model
    from influencer_engine.training.train import load_truth

    tiers = load_tier_config()
    bundle = load_model(model, tracking_uri=tracking_uri, training_root=training_root)
    cfg, overrides, seed = bundle.forecaster.config, bundle.forecaster.overrides, bundle.forecaster.random_state
    sections = {}
    extra: dict[str, object] = {
        "model": str(model),
        "training_data_fingerprint": bundle.manifest["training_data_fingerprint"],
    }
    notes = [f"model {model} (trained on {bundle.manifest['training']['data']}); each world is backtested with the "
             "model's settings: train on earlier campaigns, test on later ones"]  # fmt: skip
    if data is None and not shifted_seed and real_posts is None:
        raise InputError("nothing to evaluate.", fix="give --data DIR, --shifted-seed N and/or --real-posts DIR")
    if data is not None:
        from influencer_engine.training.data import load_training_table

        table = load_training_table(data, tiers)
        sections[f"world {data.name}"] = backtest(
            table.frame, cfg, truth=load_truth(data), overrides=overrides, seed=seed
        )
    for s in shifted_seed or []:
        from influencer_engine.training.data import load_training_table

        folder, factors = _shifted_world(s, shifted_creators, out, tiers)
        table = load_training_table(folder, tiers)
        sections[f"shifted world (seed {s})"] = backtest(table.frame, cfg, truth=load_truth(folder),
                                                         overrides=overrides, seed=seed)  # fmt: skip
        extra[f"shifted_world_{s}"] = {"creators": shifted_creators, "factors": factors, "folder": str(folder)}
    if real_posts is not None:
        from influencer_engine.evaluation.nextpost import next_post_backtest

        np_result = next_post_backtest(real_posts, tiers)
        extra["next_post"] = {"data": str(real_posts), **np_result.to_dict()}
        m = np_result.metrics
        notes.append(
            f"next-post engagement on {real_posts}: MAE log1p model {m['model']['mae_log1p']:.3f} "
            f"vs trailing median of the last {np_result.window} posts "
            f"{m[f'trailing_median_last{np_result.window}']['mae_log1p']:.3f} "
            f"({np_result.improvement_vs_trailing_median:+.1%} better), followers x tier rate "
            f"{m['followers_x_tier_rate']['mae_log1p']:.3f}; {np_result.rows['test']:,} test posts"
        )
    paths = write_report(out, sections, title="KPI model evaluation", extra=extra, notes=notes)
    for name, r in sections.items():
        won = sum(r.beats.values())
        cov = ", ".join(f"{k} {d['model']['coverage_p10_p90']:.0%}" for k, d in r.metrics.items())
        typer.echo(f"{name}: model beats every baseline on {won}/{len(r.beats)} KPIs; "
                   f"conversions/$ Spearman {r.per_dollar.get('model', float('nan')):.3f}; coverage {cov}")  # fmt: skip
    for n in notes[1:]:
        typer.echo(n)
    typer.echo(f"report: {paths['markdown']} and {paths['json']}")


def _shifted_world(seed: int, creators: int, out: Path, tiers: TierConfig) -> tuple[Path, dict[str, Any]]:
    """Simulate the shifted world of ``seed`` into out/shifted_world_<seed>; its folder and the shift factors."""
    from influencer_engine.config import load_simulator_config
    from influencer_engine.simulate.generate import simulate_market
    from influencer_engine.simulate.shift import shifted_config
    from influencer_engine.simulate.world import write_world

    shifted, factors = shifted_config(load_simulator_config(), seed)
    folder = out / f"shifted_world_{seed}"
    write_world(simulate_market(shifted, tiers, creators, seed), shifted, tiers, seed, folder)
    return folder, factors


def _evaluate_planner(model: str, data: Path | None, out: Path, shifted: list[int], creators: int, per_goal: int,
                      seed: int, tracking_uri: str | None, training_root: Path) -> None:  # fmt: skip
    from influencer_engine.config import load_model_config, load_planner_config, load_tier_config
    from influencer_engine.evaluation.planner_eval import evaluate_planner, summary_lines
    from influencer_engine.training.bundle import load_bundle
    from influencer_engine.training.tracking import load_model

    if data is None and not shifted:
        raise InputError("nothing to evaluate the planner on.", fix="give --data WORLD and/or --shifted-seed N")
    tiers, cfg = load_tier_config(), load_planner_config()
    worlds = []
    if data is not None:
        worlds.append((f"world {data.name}", data, load_model(model, tracking_uri=tracking_uri,
                                                                 training_root=training_root)))  # fmt: skip
    for s in shifted:
        from influencer_engine.training.train import train_models

        folder, _ = _shifted_world(s, creators, out, tiers)
        typer.echo(f"shifted world {s}: {creators:,} creators in {folder}; training a model within it")
        train_models(folder, folder / "model", load_model_config(), tiers, seed=seed, track=False, register=False)
        worlds.append((f"shifted world (seed {s})", folder, load_bundle(folder / "model")))
    report: dict[str, object] = {}
    for name, folder, bundle in worlds:
        t0 = time.perf_counter()
        ev = evaluate_planner(bundle, folder, cfg, tiers, per_goal=per_goal, seed=seed)
        report[name] = ev.to_dict()
        typer.echo(f"{name}: {per_goal} random briefs per goal, {time.perf_counter() - t0:.0f} s; true value as a "
                   "share of the oracle roster's (mean):")  # fmt: skip
        for line in summary_lines(ev):
            typer.echo("  " + line)
    from influencer_engine.io import write_json

    path = write_json(report, out / "planner_evaluation.json")
    typer.echo(f"report: {path}")


def _plan_inputs(
    brief: Path, data: Path, model: str, tracking_uri: str | None, planner_config: Path | None
) -> tuple[Brief, PlannerConfig, Bundle, PlanInputs]:
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_planner_config, load_tier_config
    from influencer_engine.planner.plan import load_inputs
    from influencer_engine.training.tracking import load_model

    b = load_brief(brief)
    cfg = load_planner_config(planner_config)
    bundle = load_model(model, tracking_uri=tracking_uri)
    return b, cfg, bundle, load_inputs(bundle, data, b, load_tier_config())


@app.command()
def plan(
    brief: Annotated[Path, typer.Option(help="Brief TOML/JSON (examples in configs/briefs/).")],
    out: Annotated[Path, typer.Option(help="Folder for roster.csv/.parquet, totals.json, filtered.parquet.")] = Path(
        "runs/plan"
    ),
    data: Annotated[Path, typer.Option(help="Dataset folder of candidate creators and their posts.")] = Path(
        "runs/demo"
    ),
    model: Annotated[str, typer.Option(help="Bundle folder or MLflow model URI.")] = "models/demo",
    planner_config: Annotated[Path | None, typer.Option("--config", help="Planner TOML.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=_TRACKING_HELP)] = None,
) -> None:
    """Pick the roster for a brief: forecasts for every candidate, the best roster with its certified gap."""
    from influencer_engine.planner.plan import plan as make_plan
    from influencer_engine.planner.plan import write_plan

    b, cfg, bundle, inputs = _plan_inputs(brief, data, model, tracking_uri, planner_config)
    result = make_plan(bundle, inputs, b, cfg)
    paths = write_plan(result, out)
    t, sol = result.totals, result.totals["solver"]
    goal = t["goal"]
    typer.echo(f"brief {b.brief_id}: goal {b.goal}, budget ${b.budget:,.0f}; {sol['candidates']:,} eligible "
               f"candidates ({result.filtered.height:,} filtered out, {result.rejects.height:,} rejected)")  # fmt: skip
    typer.echo(f"roster: {t['creators']} creators, spend ${t['spend']:,.0f} ({t['spend_share']:.0%} of budget)")
    typer.echo(f"  {b.goal}: expected {goal['expected']:,.2f} (P10 {goal['p10']:,.2f}, P90 {goal['p90']:,.2f})")
    ur = t["unique_reach"]
    typer.echo(f"  unique reach {ur['expected']:,.0f} (P10 {ur['p10']:,.0f}, P90 {ur['p90']:,.0f}; "
               f"{ur['duplication']:.0%} of summed reach is duplicated)")  # fmt: skip
    for k in ("conversions", "revenue"):
        if k in t:
            typer.echo(f"  {k} {t[k]['expected']:,.1f} (P10 {t[k]['p10']:,.1f}, P90 {t[k]['p90']:,.1f})")
    typer.echo(f"  solver: {sol['status']}, certified gap {sol['certified_gap']:.3%} to the upper bound "
               f"{sol['bound']:,.2f}, {sol['seconds']:.2f} s ({sol['method']})")  # fmt: skip
    for row in result.roster.head(10).iter_rows(named=True):
        typer.echo(f"  {row['creator_id']} {row['platform']:9} {row['tier']:5} ${row['price']:>9,.0f}  "
                   f"{b.goal} {row['goal_value']:,.1f}  {(row.get('reasons') or '').split(';')[0]}")  # fmt: skip
    if result.roster.height > 10:
        typer.echo(f"  ... {result.roster.height - 10} more in {paths['roster.csv']}")
    for n in result.notes:
        typer.echo(f"note: {n}")
    typer.echo(f"wrote {', '.join(str(p) for p in paths.values())}")


@app.command()
def whatif(
    brief: Annotated[Path, typer.Option(help="Brief TOML/JSON; its [[scenarios]] are compared too.")],
    budgets: Annotated[str, typer.Option(help="FROM:TO:STEPS, or a comma list of budgets.")] = "5000:200000:20",
    out: Annotated[Path, typer.Option(help="Folder for frontier.csv/.parquet/.png/.html.")] = Path("runs/whatif"),
    data: Annotated[Path, typer.Option(help="Dataset folder of candidate creators and their posts.")] = Path(
        "runs/demo"
    ),
    model: Annotated[str, typer.Option(help="Bundle folder or MLflow model URI.")] = "models/demo",
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="Extra scenario NAME=tiers:nano,micro[;platforms:tiktok] (repeatable)."),
    ] = None,
    planner_config: Annotated[Path | None, typer.Option("--config", help="Planner TOML.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=_TRACKING_HELP)] = None,
) -> None:
    """The goal against budget with a P10-P90 band, the marginal return per $1,000 and the roster mix."""
    from influencer_engine.planner.whatif import parse_budgets, parse_scenario, write_whatif
    from influencer_engine.planner.whatif import whatif as run_whatif

    levels = parse_budgets(budgets)
    extra = tuple(parse_scenario(s) for s in scenario or [])
    b, cfg, bundle, inputs = _plan_inputs(brief, data, model, tracking_uri, planner_config)
    result = run_whatif(inputs, b, cfg, levels, emv_cpm_usd=bundle.forecaster.config.costs.emv_cpm_usd,
                        scenarios=(*b.scenarios, *extra))  # fmt: skip
    paths = write_whatif(result, out)
    t = result.table
    typer.echo(f"{'scenario':16} {'budget':>10} {'expected':>14} {'P10':>14} {'P90':>14} {'per +$1k':>10} "
               f"{'creators':>8}  mix")  # fmt: skip
    for r in t.iter_rows(named=True):
        if r["status"] == "infeasible":
            typer.echo(f"{r['scenario']:16} {r['budget']:>10,.0f}  infeasible: {r['reason']}")
            continue
        mix = " ".join(f"{k[2:]} {int(r[k])}" for k in r if k.startswith("n_") and r[k])
        marginal = "" if r["marginal_per_1000"] is None else f"{r['marginal_per_1000']:,.1f}"
        typer.echo(f"{r['scenario']:16} {r['budget']:>10,.0f} {r['expected']:>14,.1f} {r['p10']:>14,.1f} "
                   f"{r['p90']:>14,.1f} {marginal:>10} {r['creators']:>8}  {mix}")  # fmt: skip
    typer.echo(f"wrote {', '.join(str(p) for p in paths.values())}")


@contextlib.contextmanager
def _dask_client(scheduler: str | None) -> Iterator[Any]:
    """A Dask client: the scheduler at ``scheduler``, or a local cluster of 2 single-threaded workers."""
    try:
        import distributed
    except ImportError as exc:
        raise InputError("the Dask engine needs Dask.", fix='pip install -e ".[dask]"') from exc
    client_of: Any = distributed.Client  # typed Any: distributed's own hints are partial
    if scheduler is not None:
        with client_of(scheduler) as client:
            yield client
        return
    cluster_of: Any = distributed.LocalCluster
    with cluster_of(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, client_of(cluster) as c:
        yield c


@contextlib.contextmanager
def _score_progress() -> Iterator[Callable[[Any], None]]:
    """A redrawn progress bar (rows/s, ETA) on a terminal; one line per chunk when stderr is a file or pipe."""
    if not sys.stderr.isatty():

        def line(p: Any) -> None:
            typer.echo(f"chunk {p.chunks_done}/{p.chunks}: {p.rows_done:,}/{p.rows:,} creators, "
                       f"{p.rows_per_s:,.0f} rows/s, ETA {p.eta_s:,.0f} s", err=True)  # fmt: skip

        yield line
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                   TimeRemainingColumn(), console=Console(stderr=True), transient=False)  # fmt: skip
    with bar:
        task = bar.add_task("score", total=None, rate="")

        def update(p: Any) -> None:
            bar.update(task, total=p.rows, completed=p.rows_done, rate=f"{p.rows_per_s:,.0f} rows/s")

        yield update


@app.command()
def score(
    candidates: Annotated[list[Path], typer.Option(help="Dataset folder(s) of candidates: creators and posts tables.")],
    brief: Annotated[Path, typer.Option(help="Brief TOML/JSON to score against.")],
    out: Annotated[Path, typer.Option(help="Folder for scores/, rejects/, manifest.json (resumable).")] = Path(
        "runs/score"
    ),
    model: Annotated[str, typer.Option(help="Bundle folder or MLflow model URI.")] = "models/demo",
    chunk_creators: Annotated[
        int, typer.Option(min=1, help="Creators per chunk (memory is bounded by a chunk).")
    ] = 50_000,
    limit_memory: Annotated[
        float | None, typer.Option(help="Memory budget in MB: chunks are made small enough to fit it.")
    ] = None,
    restart: Annotated[bool, typer.Option("--restart", help="Start over instead of resuming a run in --out.")] = False,
    engine: Annotated[str, typer.Option(help="local, or dask (needs the dask extra).")] = "local",
    compiled: Annotated[
        bool, typer.Option("--compiled", help="Compile the trees (tl2cgen, the fast extra) where equal and faster.")
    ] = False,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: a local cluster of 2 workers).")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=_TRACKING_HELP)] = None,
) -> None:
    """Score a candidate database against a brief: every KPI with P10/P50/P90, cost figures, fit, quality flags.

    Streams creator chunks; a killed run started again resumes where it stopped, with no row twice or lost.
    """
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.scoring import score_candidates
    from influencer_engine.training.tracking import load_model

    if engine not in ("local", "dask"):
        raise InputError(f"--engine '{engine}' is unknown.", fix="use --engine local or --engine dask")
    b = load_brief(brief)
    bundle = load_model(model, tracking_uri=tracking_uri)
    with (_dask_client(scheduler) if engine == "dask" else contextlib.nullcontext()) as client, \
            _score_progress() as show:  # fmt: skip
        r = score_candidates(bundle, candidates, b, load_tier_config(), out, chunk_creators=chunk_creators,
                             limit_memory_mb=limit_memory, restart=restart, client=client,
                             compiled_dir=_COMPILED_CACHE if compiled else None, progress=show)  # fmt: skip
    resumed = f", {r.resumed_chunks} chunk(s) resumed from an earlier run" if r.resumed_chunks else ""
    if compiled:
        from influencer_engine.scoring import compiled_reports

        for rep in compiled_reports(bundle):
            typer.echo(f"compiled trees, {rep.kpi}: {'used' if rep.used else 'not used'} ({rep.reason})", err=True)
    if limit_memory is not None and r.peak_rss_mb is not None and r.peak_rss_mb > limit_memory:
        typer.echo(f"warning: peak memory {r.peak_rss_mb:,.0f} MB was above --limit-memory {limit_memory:,.0f} MB "
                   "(chunks are sized from an estimate); use a smaller --chunk-creators", err=True)  # fmt: skip
    typer.echo(f"scored {r.scored:,} of {r.rows_in:,} creators ({r.rejected:,} rejected) in {r.chunks} chunk(s), "
               f"{r.seconds:.1f} s{resumed} -> {out / 'scores'}; manifest {out / 'manifest.json'}")  # fmt: skip


@app.command()
def serve(
    data: Annotated[Path, typer.Option(help="Dataset folder of the candidate base planned from.")] = Path("runs/demo"),
    model: Annotated[str, typer.Option(help="Bundle folder or MLflow model URI.")] = "models/demo",
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    api_key_file: Annotated[
        Path | None, typer.Option(help="File holding the API key (else $IE_API_KEY, else one is generated).")
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(min=0.01, help="Largest upload /api/score takes, in MB.")] = 20.0,
    planner_config: Annotated[Path | None, typer.Option("--config", help="Planner TOML.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=_TRACKING_HELP)] = None,
) -> None:
    """Serve the REST API (OpenAPI at /docs) and the planners' web page at / (needs the serve extra)."""
    import os

    try:
        import uvicorn

        from influencer_engine.serve import create_app, limit_native_threads, load_server
    except ImportError as exc:
        raise InputError(f"`ie serve` needs FastAPI and uvicorn ({exc.name} is missing).",
                         fix='pip install -e ".[serve]"') from exc  # fmt: skip
    key, shown = None, "from $IE_API_KEY"
    if api_key_file is not None:
        if not api_key_file.is_file():
            raise InputError(f"--api-key-file {api_key_file} does not exist.", fix="write the key into that file")
        key, shown = api_key_file.read_text(encoding="utf-8").strip(), f"from {api_key_file}"
        if len(key) < 16:
            raise InputError(f"the key in {api_key_file} is shorter than 16 characters.", fix="use a longer key")
    elif os.environ.get("IE_API_KEY"):
        key = os.environ["IE_API_KEY"]
    server = load_server(model, data, api_key=key, tracking_uri=tracking_uri, planner_config=planner_config,
                         max_upload_bytes=int(max_upload_mb * 1024 * 1024))  # fmt: skip
    if key is None:
        typer.echo(f"API key (shown once; send it in the X-API-Key header): {server.api_key}")
    else:
        typer.echo(f"API key: {shown}")
    typer.echo(f"{server.base.creators.height:,} candidates from {data}; model {model}")
    typer.echo(f"web page http://{host}:{port}/  API docs http://{host}:{port}/docs")
    limit_native_threads()
    uvicorn.run(create_app(server), host=host, port=port, log_level="warning")


@app.command()
def forecast(
    creator: Annotated[str, typer.Option(help="Creator id.")],
    brief: Annotated[Path, typer.Option(help="Brief TOML/JSON.")],
    data: Annotated[Path, typer.Option(help="Dataset folder holding the creator and its posts.")] = Path("runs/demo"),
    model: Annotated[str, typer.Option(help="Bundle folder or MLflow model URI.")] = "models/demo",
    fmt: Annotated[
        str | None, typer.Option("--format", help="Post format (default: the creator's base format).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help=_TRACKING_HELP)] = None,
) -> None:
    """Forecast one creator for a brief: every KPI with P10/P50/P90, cost per result, and why."""
    from influencer_engine.brief import load_brief
    from influencer_engine.config import KPI_NAMES, load_tier_config
    from influencer_engine.forecast import forecast_brief, reasons_for
    from influencer_engine.planner.problem import GOAL_KPI
    from influencer_engine.schema import FORMATS
    from influencer_engine.training.tracking import load_model

    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"--format '{fmt}' is unknown.", fix=f"use one of {', '.join(FORMATS)}")
    b = load_brief(brief)
    bundle = load_model(model, tracking_uri=tracking_uri)
    result = forecast_brief(bundle, data, b, load_tier_config(), creator_ids=[creator], fmt=fmt)
    if result.table.height == 0:
        reasons = ", ".join(result.rejects["reason"].to_list()[:3])
        raise InputError(f"creator {creator} cannot be forecast ({reasons}).", fix="fix the creator's row")
    row = result.table.row(0, named=True)
    goal_kpi = GOAL_KPI[b.goal]
    why = reasons_for(bundle, result, creator, goal_kpi, b)
    kpis = [k for k in KPI_NAMES if k in row]
    if as_json:
        typer.echo(json.dumps({"creator": row, "reasons": {goal_kpi: [r.to_dict() for r in why]},
                               "notes": result.notes}, default=str, indent=2))  # fmt: skip
        return
    typer.echo(f"{creator}: {row['platform']} {row['tier']}, {row['format']}, list price ${row['price'] or 0:,.0f}, "
               f"audience fit {row['audience_fit'] or 0:.0%}")  # fmt: skip
    typer.echo(f"brief {b.brief_id}: {b.brand_category}, starting {b.start_date}")
    typer.echo(f"  {'KPI':12} {'expected':>12} {'P10':>12} {'P50':>12} {'P90':>12}")
    for k in kpis:
        typer.echo(
            f"  {k:12} {row[k]:>12,.1f} {row[k + '_p10']:>12,.1f} {row[k + '_p50']:>12,.1f} {row[k + '_p90']:>12,.1f}"
        )
    figures = [("CPM", "cpm"), ("CPE", "cpe"), ("CPC", "cpc"), ("CPA", "cpa"), ("ROAS", "roas")]
    for label, key in figures:
        if row.get(key) is not None:
            band = (
                f" (P90 case {row[key + '_good']:,.2f}, P10 case {row[key + '_bad']:,.2f})"
                if row.get(key + "_bad")
                else ""
            )
            typer.echo(f"  {label:5} {row[key]:,.2f}{band}")
    typer.echo(f"  EMV   ${row['emv']:,.0f} at ${bundle.forecaster.config.costs.emv_cpm_usd:g} CPM")
    base = bundle.forecaster.base_of(goal_kpi)
    typer.echo(f"why ({goal_kpi}; starts from the {'forecast ' + base if base != 'followers' else 'followers'} "
               "times the average rate, then):")  # fmt: skip
    for r in why:
        typer.echo(f"  - {r.text}")
    for n in result.notes:
        typer.echo(f"note: {n}")


def _expand_multi(args: list[str], option: str = "--candidates") -> list[str]:
    """``--candidates A B C`` -> ``--candidates A --candidates B --candidates C`` (click options take one value)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        out.append(args[i])
        i += 1
        if out[-1] != option:
            continue
        values = 0
        while i < len(args) and not args[i].startswith("-"):
            if values:
                out.append(option)
            out.append(args[i])
            values += 1
            i += 1
    return out


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``ie``: one-line errors for people, tracebacks only with --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        # --debug is honoured anywhere on the line, not only before the sub-command
        app(args=_expand_multi([a for a in args if a != "--debug"]), prog_name="ie")
    except EngineError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc.one_line()}", err=True)
        sys.exit(2)
    except Exception as exc:
        if debug:
            raise
        typer.echo(
            f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            "(rerun with --debug for the traceback, and report it)",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
