"""The ``ie`` command line. Errors print as one line with the fix; ``--debug`` shows the traceback."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from influencer_engine.errors import EngineError, InputError

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
) -> None:
    """The main job end to end on the simulated world: simulate, validate, summarize."""
    from influencer_engine.config import load_simulator_config, load_tier_config
    from influencer_engine.dataset import summarize, validate_dataset
    from influencer_engine.io import Manifest
    from influencer_engine.simulate.generate import simulate_market
    from influencer_engine.simulate.world import write_world

    cfg, tiers = load_simulator_config(), load_tier_config()
    t0 = time.perf_counter()
    market = simulate_market(cfg, tiers, creators, seed)
    write_world(market, cfg, tiers, seed, out)
    typer.echo(f"1/3 simulated {creators:,} creators (seed {seed}) in {time.perf_counter() - t0:.1f}s -> {out}")
    ds = validate_dataset(out)
    ds.to_manifest(Manifest(command="validate world", out_dir=out / "validation", params={"path": str(out)})).write()
    bad = sum(r.rows_rejected for r in ds.results.values())
    typer.echo(f"2/3 validated {sum(r.rows_in for r in ds.results.values()):,} rows: {bad:,} rejected "
               f"(manifest: {out / 'validation' / 'manifest.json'})")  # fmt: skip
    typer.echo("3/3 summary")
    typer.echo(summarize({name: r.valid for name, r in ds.results.items()}))
    if bad:
        raise EngineError(f"the simulated world broke its own contracts ({bad} rows).", fix="report this as a bug")


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


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``ie``: one-line errors for people, tracebacks only with --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        # --debug is honoured anywhere on the line, not only before the sub-command
        app(args=[a for a in args if a != "--debug"], prog_name="ie")
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
