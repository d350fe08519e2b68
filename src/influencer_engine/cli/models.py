"""Models: train the KPI models (locally or on Dask), tune them with Optuna, evaluate them and the planner."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from influencer_engine.cli._common import (
    MODEL_HELP,
    TRACKING_HELP,
    Engine,
    fit_progress,
    load_predictor,
    maybe_dask,
    report_compiled,
)
from influencer_engine.errors import InputError
from influencer_engine.registry import KPI_NAMES

if TYPE_CHECKING:
    from influencer_engine.modeling.predictor import Predictor

__all__ = ["app"]

PANEL = "Models"
app = typer.Typer()


@app.command(rich_help_panel=PANEL)
def train(
    data: Annotated[Path, typer.Option(help="Dataset folder with campaigns and outcomes (e.g. runs/demo).")],
    out: Annotated[Path, typer.Option(help="Bundle folder to write, e.g. models/demo.")] = Path("models/demo"),
    config: Annotated[Path | None, typer.Option(help="Model TOML (default configs/models.toml).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the models.")] = 0,
    tuned: Annotated[bool, typer.Option("--tuned", help="Use the parameters `ie tune` wrote under training/.")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help=TRACKING_HELP)] = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log the run to MLflow.")] = True,
    register: Annotated[bool, typer.Option("--register/--no-register", help="Register as @champion.")] = True,
    training_root: Annotated[Path, typer.Option(help="Folder for MLflow and Optuna stores.")] = Path("training"),
    engine: Annotated[Engine, typer.Option(help="local, or dask: LightGBM trains on a Dask cluster.")] = Engine.local,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: a local cluster of 2 workers).")
    ] = None,
    prior: Annotated[
        Path | None,
        typer.Option(
            help="Start from this bundle (e.g. models/demo): your outcomes correct its forecasts per KPI "
            "instead of training from scratch. For a few hundred of your own campaign results."
        ),
    ] = None,
) -> None:
    """Train every KPI model: backtest beside the baselines, fit on all campaigns, write the bundle."""
    from influencer_engine.config import load_model_config, load_tier_config

    if prior is not None:
        if tuned or config is not None or engine is not Engine.local:
            raise InputError("--prior keeps the prior's settings: --tuned, --config and --engine do not apply.",
                             fix="drop them, or train from scratch without --prior")  # fmt: skip
        _train_from_prior(data, prior, out, seed=seed, track=track, register=register, training_root=training_root,
                          tracking_uri=tracking_uri)  # fmt: skip
        return
    from influencer_engine.training.distributed import dask_trainer
    from influencer_engine.training.train import train_models, training_fits
    from influencer_engine.training.tune import load_tuned

    overrides = load_tuned(training_root) if tuned else None
    if tuned and not overrides:
        raise InputError(f"no tuned parameters under {training_root}/tuned.", fix="run `ie tune --kpi KPI` first")
    cfg = load_model_config(config)
    with maybe_dask(engine, scheduler) as client, fit_progress(training_fits(cfg)) as on_fit:
        r = train_models(data, out, cfg, load_tier_config(), seed=seed, overrides=overrides, track=track,
                         engine=engine.value, training_root=training_root, tracking_uri=tracking_uri,
                         register=register, trainer=dask_trainer(client) if client is not None else None,
                         on_fit=on_fit)  # fmt: skip
    bt = r.backtest
    typer.echo(f"trained {len(bt.metrics)} KPI models on {r.table.frame.height:,} campaign outcomes "
               f"in {r.seconds['total']:.1f}s -> {r.bundle}")  # fmt: skip
    for kpi, d in bt.metrics.items():
        m = d["model"]
        best = min((b for b in d if b != "model"), key=lambda b: d[b]["mae_log1p"])
        typer.echo(f"  {kpi:12} MAE log1p {m['mae_log1p']:.3f} (best baseline {best} {d[best]['mae_log1p']:.3f})  "
                   f"Spearman {m['spearman']:.3f}  P10-P90 coverage {m['coverage_p10_p90']:.1%}  "
                   f"forecast/observed sum {m['sum_ratio']:.2f}")  # fmt: skip
    if bt.per_dollar:
        typer.echo(f"  conversions per dollar, Spearman: {bt.per_dollar['model']:.3f}")
    from influencer_engine.modeling.compiled import enabled

    predictor = load_predictor(str(r.bundle))
    if enabled():  # compile once now: every later load reads the cache
        report_compiled(predictor.compile())
    corrections = balance_summary(predictor)
    if corrections:
        typer.echo(f"  mean correction (observed / forecast sums out of fold, +- its standard error): {corrections}")
    carried = transfer_summary(predictor)
    if carried:
        typer.echo("  the final model's forecasts over its fold models' on the market's creators no model trained on "
                   f"(each correction is carried over by it): {carried}")  # fmt: skip
    loose = uncertain_levels(predictor)
    if loose:
        typer.echo(f"  warning: {loose}", err=True)
    top = per_dollar_summary(predictor)
    if top:
        typer.echo(f"  the top forecasts per dollar, corrected out of fold by: {top} (each platform's own top in "
                   "brackets)")  # fmt: skip
    split = split_summary(predictor)
    if split:
        typer.echo(f"  bands (share of log variance out of fold): {split}")
    by_history = history_bands_summary(predictor)
    if by_history:
        typer.echo("  bands per history bucket (0-5, 6-20, 21-50, 51+ posts before; per bucket where the pooled bands "
                   f"miss one by more than the tolerance): {by_history}")  # fmt: skip
    c = predictor.completion
    if c is not None and c.widening.get("history"):
        wide = ", ".join(f"{k} {v:.2f}" for k, v in c.widening["history"].items())
        typer.echo(f"  creators with no posts and no averages per post: bands widened by log sd {wide} (the error "
                   "their forecasts add on the latest hires)")  # fmt: skip
    about = expected_error_summary(predictor)
    if about:
        typer.echo(f"  the forecasts' error about the true expected values (the backtest's later campaigns, "
                   f"simulated data): {about} of each band's variance; the rest is the luck of delivery")  # fmt: skip
    typer.echo(f"  report: {r.bundle / 'report' / 'evaluation.md'}")
    if r.tracking:
        typer.echo(f"  MLflow run {r.tracking['run_id']} at {r.tracking['tracking_uri']}"
                   + (f"; registered {r.tracking['registered_uri']} (version {r.tracking['version']})"
                      if r.tracking.get("registered_uri") else ""))  # fmt: skip


@app.command("compile", rich_help_panel=PANEL)
def compile_trees(
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "models/demo",
    jobs: Annotated[int, typer.Option(min=0, help="Models built at a time (0: one per usable CPU).")] = 0,
    tracking_uri: Annotated[str | None, typer.Option(help=TRACKING_HELP)] = None,
) -> None:
    """Build the model's inlined compiled trees ahead of time (about 15 s per model, once per model and machine).

    `ie score`, `ie plan` and the server then predict about 1.4x faster with them; without them they compile the
    quick build (3-4 s per model) on first use. Each build is checked equal to LightGBM, as every compiled model is.
    """
    import time

    from influencer_engine.modeling.compiled import build_inlined, default_cache_dir
    from influencer_engine.modeling.estimator import usable_cpus

    predictor = load_predictor(model, tracking_uri)
    cache = default_cache_dir()
    t0 = time.perf_counter()
    try:
        built = build_inlined(predictor.boosters(), cache, jobs or usable_cpus())
    except ImportError as exc:
        raise InputError(f"compiled trees need lleaves: {exc}", fix='pip install "lleaves" "llvmlite<0.45"') from exc
    new = sum(1 for s in built.values() if s > 0)
    typer.echo(f"built {new} inlined model(s), {len(built) - new} already cached, in {time.perf_counter() - t0:.1f} s "
               f"-> {cache}", err=True)  # fmt: skip
    report_compiled(predictor.compile(cache_dir=cache))  # loads them and checks each against LightGBM


def _train_from_prior(data: Path, prior: Path, out: Path, *, seed: int, track: bool, register: bool,
                      training_root: Path, tracking_uri: str | None) -> None:  # fmt: skip
    from influencer_engine.config import load_tier_config
    from influencer_engine.training.from_prior import train_from_prior

    r = train_from_prior(data, prior, out, load_tier_config(), seed=seed, track=track, register=register,
                         training_root=training_root, tracking_uri=tracking_uri)  # fmt: skip
    no_history = r.rows_without_history
    typer.echo(f"corrected {prior} with {r.table.frame.height:,} of your campaign outcomes in "
               f"{r.seconds['total']:.1f}s -> {r.bundle}"
               + (f" ({no_history:,} of them from creators without posts before the campaign)" if no_history
                  else ""))  # fmt: skip
    from influencer_engine.modeling.prior import MIN_USER_ROWS

    for kpi, c in r.corrections.items():
        kept = (f"kept the prior (fewer than {MIN_USER_ROWS} rows observe it)" if c.rows < MIN_USER_ROWS
                else "kept the prior (your rows do not beat it out of fold)")  # fmt: skip
        how = {"prior": kept, "shift": f"x{c.shift:.2f} on the prior",
               "residual": f"x{c.shift:.2f} and {c.trees} trees on the prior"}[c.method]  # fmt: skip
        line = f"  {kpi:12} {c.rows:>6,} rows: {how}"
        h = r.holdout.get(kpi)
        if h:
            line += (f"; later {h['corrected']['rows']:,.0f} rows: MAE log1p {h['prior']['mae_log1p']:.3f} -> "
                     f"{h['corrected']['mae_log1p']:.3f}, P10-P90 coverage {h['prior']['coverage_p10_p90']:.0%} -> "
                     f"{h['corrected']['coverage_p10_p90']:.0%}")  # fmt: skip
        typer.echo(line)
    drifted = [d for d in r.drift.values() if d.drifted]
    for d in drifted:
        typer.echo(f"  drift: {d.message()}", err=True)
    if drifted:
        typer.echo("  your market differs from the prior's on these KPIs: the new bundle corrects what your rows "
                   "support; add more of your results as they come in", err=True)  # fmt: skip
    if r.tracking:
        typer.echo(f"  MLflow run {r.tracking['run_id']} at {r.tracking['tracking_uri']}")


def balance_summary(predictor: Predictor) -> str:
    """Each KPI's overall out-of-fold mean correction and its standard error ("" when none was measured)."""
    from influencer_engine.modeling.balance import MIN_BIN_ROWS

    parts = []
    for kpi, m in predictor.forecaster.models_.items():
        b = getattr(m, "balance_", None)
        if b is None:
            continue
        if b.rows < MIN_BIN_ROWS:
            parts.append(f"{kpi} not measured ({b.rows} rows)")
        else:
            parts.append(f"{kpi} x{math.exp(b.overall):.2f}" + (f" +-{b.overall_se:.0%}" if b.overall_se else ""))
    return ", ".join(parts)


def transfer_summary(predictor: Predictor) -> str:
    """Each KPI's carry-over of its mean correction to the final model (``Balance.transfer``; "" when none was
    read: a bundle trained without unlabeled rows, or before the carry-over existed)."""
    parts = [f"{kpi} x{math.exp(m.balance_.transfer):.3f}" for kpi, m in predictor.forecaster.models_.items()
             if getattr(m, "balance_", None) is not None and m.balance_.transfer]  # fmt: skip
    return ", ".join(parts)


def uncertain_levels(predictor: Predictor) -> str:
    """A warning when the data pin some KPI's level down poorly (its mean correction's standard error is above
    ``balance.UNCERTAIN``, the correction sits at its limit, or too few rows measured it), naming those KPIs and the
    way out; "" otherwise."""
    from influencer_engine.modeling.balance import LIMITS, MIN_BIN_ROWS, UNCERTAIN

    loose: list[str] = []
    for kpi, m in predictor.forecaster.models_.items():
        b = getattr(m, "balance_", None)
        if b is None:
            continue
        at_limit = not math.log(LIMITS[0]) + 1e-9 < b.overall < math.log(LIMITS[1]) - 1e-9
        if b.rows < MIN_BIN_ROWS:
            loose.append(f"{kpi} (not measured)")
        elif at_limit or b.overall_se > UNCERTAIN:
            limit = f", x{math.exp(b.overall):.2f} is the correction's limit" if at_limit else ""
            loose.append(f"{kpi} (+-{b.overall_se:.0%}{limit})")
    if not loose:
        return ""
    return (f"the level of {', '.join(loose)} is uncertain with this many campaign outcomes: plans may promise "
            "too much or too little by about that much (on simulated brands with about a thousand campaigns, later "
            "totals ran at 0.7-2.1x the truth). Training from a prior, `ie train --data DIR --prior models/demo`, "
            "keeps a level measured on more campaigns.")  # fmt: skip


def per_dollar_summary(predictor: Predictor) -> str:
    """Each KPI's correction at the top of its forecasts per dollar, and of each platform's own top where it has one
    ("" when none was measured)."""
    parts = []
    for kpi, m in predictor.forecaster.models_.items():
        b = getattr(m, "per_dollar_", None)
        if b is None or len(b.knots) < 2:
            continue
        own = ", ".join(f"{p} x{math.exp(s.log_factors[-1]):.2f}" for p, s in sorted(b.segments.items()))
        parts.append(f"{kpi} x{math.exp(b.log_factors[-1]):.2f}" + (f" ({own})" if own else ""))
    return ", ".join(parts)


def expected_error_summary(predictor: Predictor) -> str:
    """Each KPI's measured share of its bands that is the forecast's error about the expected value, the part of it
    common to a campaign, and the error creators share on the scale of sums as a log sd (one platform and tier; one
    campaign: ``intervals.ExpectedError``); "" where the data carried no expected values."""
    parts = []
    for kpi, m in predictor.forecaster.models_.items():
        e = m.expected_error
        if e.share is None:
            continue
        shared = [f"{name} sd {math.sqrt(math.log1p(v)):.2f}" for name, v in (("segment", e.segment),
                  ("campaign", e.context)) if v is not None]  # fmt: skip
        parts.append(f"{kpi} {e.share:.0%} ({e.common:.0%} of it common" + "".join(f"; {p}" for p in shared) + ")")
    return ", ".join(parts)


def history_bands_summary(predictor: Predictor) -> str:
    """Which KPIs got bands per history bucket and what the pooled bands held of each bucket's calibration rows
    (``intervals.by_history = "auto"``); "" when the pooled bands were not measured per bucket."""
    parts = []
    for kpi, m in predictor.forecaster.models_.items():
        bands = getattr(m, "bands_", None)
        if bands is None or not bands.history_coverage:
            continue
        held = " / ".join("-" if math.isnan(c) else f"{c:.1%}" for c in bands.history_coverage)
        parts.append(f"{kpi} {'per bucket' if bands.history else 'pooled'} (pooled held {held})")
    return "; ".join(parts)


def split_summary(predictor: Predictor) -> str:
    """Each KPI's measured split of its bands: the creator's own error, error common to a campaign (the rest is
    delivery noise); "" when nothing was measured."""
    parts = []
    for kpi, m in predictor.forecaster.models_.items():
        s = getattr(m, "error_split_", None)
        if s is not None and s.creator_pairs:
            parts.append(f"{kpi} own error {s.creator:.0%}, common {s.common:.0%}")
    return "; ".join(parts)


@app.command(rich_help_panel=PANEL)
def tune(
    kpi: Annotated[str, typer.Option(help=f"KPI to tune: {', '.join(KPI_NAMES)}.")],
    data: Annotated[Path, typer.Option(help="Dataset folder with campaigns and outcomes.")] = Path("runs/demo"),
    trials: Annotated[int, typer.Option(min=1, help="Trials to add to the study.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the sampler and the models.")] = 0,
    config: Annotated[Path | None, typer.Option(help="Model TOML (default configs/models.toml).")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL (default sqlite training/optuna.db).")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=TRACKING_HELP)] = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log the best parameters to MLflow.")] = True,
    training_root: Annotated[Path, typer.Option(help="Folder for MLflow and Optuna stores.")] = Path("training"),
) -> None:
    """Tune one KPI's LightGBM settings with Optuna (resumable study, pruned trials)."""
    from influencer_engine.config import load_model_config, load_tier_config
    from influencer_engine.training.tune import tune as run_tune

    r = run_tune(data, load_model_config(config), load_tier_config(), kpi, trials=trials, root=training_root,
                 seed=seed, storage=storage, track=track, tracking_uri=tracking_uri)  # fmt: skip
    typer.echo(f"tuned {kpi}: {r.trials} trials in the study ({r.complete} complete, {r.pruned} pruned) "
               f"in {r.seconds:.1f}s")  # fmt: skip
    typer.echo(f"  validation relative Poisson deviance (each row's over its forecast): best {r.best_value:.4f} vs "
               f"configured settings {r.default_value:.4f}")  # fmt: skip
    if r.kept_configured:
        typer.echo(f"  no trial beat the configured settings: {r.path} keeps them (`ie train --tuned` trains {kpi} "
                   "as configured)")  # fmt: skip
    else:
        typer.echo(f"  best parameters -> {r.path} (use with `ie train --tuned`)")
    if r.tracking_run:
        typer.echo(f"  MLflow run {r.tracking_run}")


@app.command(rich_help_panel=PANEL)
def evaluate(
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "models/demo",
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
    tracking_uri: Annotated[str | None, typer.Option(help=TRACKING_HELP)] = None,
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
    from influencer_engine.config import load_planner_config, load_tier_config
    from influencer_engine.evaluation.run import evaluate_models, evaluate_planners

    tiers = load_tier_config()
    if planner:
        report = evaluate_planners(load_predictor(model, tracking_uri, training_root), tiers, load_planner_config(),
                                   out, data=data, shifted_seeds=shifted_seed or [], shifted_creators=shifted_creators,
                                   per_goal=briefs_per_goal, seed=seed, progress=typer.echo)  # fmt: skip
        typer.echo(f"report: {report.path}")
        return
    if data is None and not shifted_seed and real_posts is None:
        raise InputError("nothing to evaluate.", fix="give --data DIR, --shifted-seed N and/or --real-posts DIR")
    ev = evaluate_models(load_predictor(model, tracking_uri, training_root), model, tiers, out, data=data,
                         shifted_seeds=shifted_seed or [], shifted_creators=shifted_creators,
                         real_posts=real_posts)  # fmt: skip
    for line in ev.summary_lines():
        typer.echo(line)
    typer.echo(f"report: {ev.paths['markdown']} and {ev.paths['json']}")
