"""Planning: forecast one creator for a brief, plan a brief's roster, run budget what-ifs.

Each command loads the model and the candidates, calls the one forecast path (``forecast.forecast_brief``) and one
planner function, and prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from influencer_engine.cli._common import MODEL_HELP, TRACKING_HELP, load_predictor
from influencer_engine.errors import InputError

if TYPE_CHECKING:
    from influencer_engine.brief import Brief
    from influencer_engine.config import PlannerConfig
    from influencer_engine.forecast import BriefForecast

__all__ = ["app"]

PANEL = "Planning"
app = typer.Typer()
_DATA_HELP = "Dataset folder of candidate creators and their posts."


def _money(v: float | None) -> str:
    return "–" if v is None else f"${v:,.2f}"


def _forecast(brief: Path, data: Path, model: str, tracking_uri: str | None,
              planner_config: Path | None) -> tuple[Brief, PlannerConfig, BriefForecast]:  # fmt: skip
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_planner_config, load_tier_config
    from influencer_engine.forecast import forecast_brief

    b = load_brief(brief)
    cfg = load_planner_config(planner_config)
    return b, cfg, forecast_brief(load_predictor(model, tracking_uri, compiled=True), data, b, load_tier_config())


@app.command(rich_help_panel=PANEL)
def forecast(
    creator: Annotated[str, typer.Option(help="Creator id.")],
    brief: Annotated[Path, typer.Option(help="Brief TOML/JSON.")],
    data: Annotated[Path, typer.Option(help="Dataset folder holding the creator and its posts.")] = Path("runs/demo"),
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "models/demo",
    fmt: Annotated[
        str | None, typer.Option("--format", help="Post format (default: the creator's base format).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the API's form) instead of text.")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help=TRACKING_HELP)] = None,
) -> None:
    """Forecast one creator for a brief: every KPI with P10/P50/P90, cost per result, and why."""
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.forecast import forecast_brief, forecast_creator
    from influencer_engine.registry import COST_FIGURES, FORMATS, KPI_NAMES

    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"--format '{fmt}' is unknown.", fix=f"use one of {', '.join(FORMATS)}")
    b = load_brief(brief)
    predictor = load_predictor(model, tracking_uri, compiled=True)
    result = forecast_brief(predictor, data, b, load_tier_config(), creator_ids=[creator], fmt=fmt)
    cf = forecast_creator(result, creator)
    if as_json:
        typer.echo(json.dumps(cf.json_dict(), indent=2))
        return
    row = cf.row
    price = f"list price ${row['price'] or 0:,.0f}"
    if row.get("price_source") == "estimated":
        price = (f"estimated list price ${row['price'] or 0:,.0f} (P10-P90 ${row['price_p10'] or 0:,.0f}-"
                 f"${row['price_p90'] or 0:,.0f}, from the rate card)")  # fmt: skip
    elif row.get("price_source") == "none":
        price = "no price"
    source = row.get("audience_source")
    fit = f"audience fit {row['audience_fit'] or 0:.0%}" + ("" if source in (None, "given") else f" ({source})")
    history = f", {row.get('history_posts') or 0} posts of history" if "history_posts" in row else ""
    if row.get("history_source") == "averages":
        history = ", history from the export's averages per post (no posts)"
    typer.echo(f"{creator}: {row['platform']} {row['tier']}, {row['format']}, {price}, {fit}{history}")
    if row.get("credibility_source") == "estimated":
        typer.echo(f"  audience credibility {row['audience_credibility']:.0%} (estimated from engagement)")
    typer.echo(f"brief {b.brief_id}: {b.brand_category}, starting {b.start_date}")
    typer.echo(f"  {'KPI':12} {'expected':>12} {'P10':>12} {'P50':>12} {'P90':>12}")
    for k in (k for k in KPI_NAMES if k in row):
        typer.echo(
            f"  {k:12} {row[k]:>12,.1f} {row[k + '_p10']:>12,.1f} {row[k + '_p50']:>12,.1f} {row[k + '_p90']:>12,.1f}"
        )
    for key, fig in COST_FIGURES.items():
        if row.get(key) is not None:
            band = (f" (P90 case {row[key + '_good']:,.2f}, P10 case {row[key + '_bad']:,.2f})"
                    if row.get(key + "_bad") else "")  # fmt: skip
            typer.echo(f"  {fig.label:5} {row[key]:,.2f}{band}")
    typer.echo(f"  EMV   ${row['emv']:,.0f} at ${predictor.emv_cpm_usd:g} CPM")
    base = cf.goal_base
    start = {"followers": "followers", "interactions_anchor": "creator's own engagement level (its recent rate, "
             "shrunk toward peers, x followers)"}.get(base, f"forecast {base}")  # fmt: skip
    typer.echo(f"why ({cf.goal_kpi}; starts from the {start} times the average rate, then):")
    for r in cf.reasons:
        typer.echo(f"  - {r.text}")
    for n in cf.notes:
        typer.echo(f"note: {n}")


@app.command(rich_help_panel=PANEL)
def plan(
    brief: Annotated[Path, typer.Option(help="Brief TOML/JSON (examples in configs/briefs/).")],
    out: Annotated[Path, typer.Option(help="Folder for roster.csv/.parquet, totals.json, filtered.parquet.")] = Path(
        "runs/plan"
    ),
    data: Annotated[Path, typer.Option(help=_DATA_HELP)] = Path("runs/demo"),
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "models/demo",
    planner_config: Annotated[Path | None, typer.Option("--config", help="Planner TOML.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=TRACKING_HELP)] = None,
) -> None:
    """Pick the roster for a brief: forecasts for every candidate, the best roster with its certified gap."""
    from influencer_engine.io import write_parquet
    from influencer_engine.planner.plan import plan as make_plan
    from influencer_engine.planner.plan import prepare, write_plan
    from influencer_engine.planner.problem import PlanInfeasible
    from influencer_engine.registry import GOALS

    b, cfg, fc = _forecast(brief, data, model, tracking_uri, planner_config)
    try:
        result = make_plan(prepare(fc, b, cfg), cfg)
    except PlanInfeasible as exc:
        if exc.filtered is None:
            raise
        written = write_parquet(exc.filtered, out / "filtered.parquet")
        raise PlanInfeasible(exc.reasons, fix=f"{exc.fix}; who was left out, and why: {written}",
                             filtered=exc.filtered) from exc  # fmt: skip
    paths = write_plan(result, out)
    t, sol, goal = result.totals, result.totals.solver, GOALS[b.goal]
    digits = goal.decimals
    counts = t.candidates
    rejected = counts.rejected if counts is not None else 0
    bad_posts = fc.base.post_rejects.height
    posts_note = f"; {bad_posts:,} post rows rejected" if bad_posts else ""
    typer.echo(f"brief {b.brief_id}: goal {b.goal}, budget ${b.budget:,.0f}; {sol.candidates:,} eligible "
               f"candidates ({result.filtered.height:,} filtered out, {rejected:,} rejected{posts_note})")  # fmt: skip
    typer.echo(f"roster: {t.creators} creators, spend ${t.spend:,.0f} ({t.spend_share or 0:.0%} of budget)")
    if t.budget_left is not None:
        typer.echo(f"  {t.budget_left.reason}")
    typer.echo(f"  {goal.label}: expected {t.goal.expected:,.{digits}f} (P10 {t.goal.p10 or 0:,.{digits}f}, "
               f"P90 {t.goal.p90 or 0:,.{digits}f}); {goal.cost_figure.upper()} "
               f"{_money(t.cost_figures.get(goal.cost_figure))}")  # fmt: skip
    ur = t.unique_reach
    assumed = f"; overlap assumed for {ur.assumed_share:.0%} of it" if ur.assumed_share > 0 else ""
    if goal.total == "unique_reach":  # the goal's line above is the unique reach: only what it did not say
        typer.echo(f"  {ur.duplication:.0%} of summed reach is duplicated{assumed}")
    else:
        typer.echo(f"  unique reach {ur.expected:,.0f} (P10 {ur.p10 or 0:,.0f}, P90 {ur.p90 or 0:,.0f}; "
                   f"{ur.duplication:.0%} of summed reach is duplicated{assumed})")  # fmt: skip
    for k in ("conversions", "revenue"):
        if k in t.kpis and k != goal.column:
            band = t.kpis[k]
            typer.echo(f"  {k} {band.expected:,.1f} (P10 {band.p10 or 0:,.1f}, P90 {band.p90 or 0:,.1f})")
    typer.echo(f"  solver: {sol.status}, certified gap {sol.certified_gap:.3%} to the upper bound "
               f"{sol.bound:,.2f}, {sol.seconds:.2f} s ({sol.method})")  # fmt: skip
    for row in result.roster.head(10).iter_rows(named=True):
        est = "*" if row.get("price_source") == "estimated" else " "
        who = f"@{row['handle']}" if row.get("handle") else row["creator_id"]
        typer.echo(f"  {who:22} {row['platform']:9} {row['tier']:5} ${row['price']:>9,.0f}{est} "
                   f"{goal.label} {row['goal_value']:,.{max(digits, 1)}f}  "
                   f"{(row.get('reasons') or '').split(';')[0]}")  # fmt: skip
    if result.roster.height > 10:
        typer.echo(f"  ... {result.roster.height - 10} more in {paths['roster.csv']}")
    if t.assumptions.estimated_price:
        typer.echo("  * price estimated from the rate card (not quoted)")
    for n in t.assumptions.notes:
        typer.echo(f"assumed: {n}")
    for n in result.notes:
        typer.echo(f"note: {n}")
    typer.echo(f"wrote {', '.join(str(p) for p in paths.values())}")


@app.command(rich_help_panel=PANEL)
def whatif(
    brief: Annotated[Path, typer.Option(help="Brief TOML/JSON; its [[scenarios]] are compared too.")],
    budgets: Annotated[str, typer.Option(help="FROM:TO:STEPS, or a comma list of budgets.")] = "5000:200000:20",
    out: Annotated[Path, typer.Option(help="Folder for frontier.csv/.parquet/.png/.html.")] = Path("runs/whatif"),
    data: Annotated[Path, typer.Option(help=_DATA_HELP)] = Path("runs/demo"),
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "models/demo",
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="Extra scenario NAME=tiers:nano,micro[;platforms:tiktok] (repeatable)."),
    ] = None,
    planner_config: Annotated[Path | None, typer.Option("--config", help="Planner TOML.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=TRACKING_HELP)] = None,
) -> None:
    """The goal against budget with a P10-P90 band, the marginal return per $1,000 and the roster mix."""
    import polars as pl

    from influencer_engine.planner.whatif import parse_budgets, parse_scenario, saturation, write_whatif
    from influencer_engine.planner.whatif import whatif as run_whatif

    levels = parse_budgets(budgets)
    extra = tuple(parse_scenario(s) for s in scenario or [])
    b, cfg, fc = _forecast(brief, data, model, tracking_uri, planner_config)
    result = run_whatif(fc, b, cfg, levels, scenarios=(*b.scenarios, *extra))
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
    for name in dict.fromkeys(t["scenario"].to_list()):
        stop = saturation(t.filter(pl.col("scenario") == name))
        if stop is not None:
            typer.echo(f"{name}: the goal stops rising at ${stop[0]:,.0f} ({stop[1]})")
    typer.echo(f"wrote {', '.join(str(p) for p in paths.values())}")
