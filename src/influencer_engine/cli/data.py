"""Data: simulate a market, validate and summarize tables, list the contracts, import real public data sets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from influencer_engine.cli._common import echo_manifest
from influencer_engine.errors import InputError

__all__ = ["DEFAULT_CREATORS", "app", "import_app"]

PANEL = "Data"
DEFAULT_CREATORS = 20_000
_REPORT_CREATORS = 100_000

app = typer.Typer()
import_app = typer.Typer(help="Import real public data sets into the table contracts.", no_args_is_help=True)


@app.command(rich_help_panel=PANEL)
def simulate(
    out: Annotated[Path | None, typer.Option(help="Folder to write the world to (Parquet + truth/).")] = None,
    creators: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"Creators to draw (default {DEFAULT_CREATORS:,}; {_REPORT_CREATORS:,} for a "
            "report-only run, so every tier has enough creators to measure).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives identical tables.")] = 7,
    report: Annotated[bool, typer.Option("--report", help="Print simulated figures beside published ranges.")] = False,
    config: Annotated[Path | None, typer.Option(help="Simulator TOML (default configs/simulator.toml).")] = None,
) -> None:
    """Draw a calibrated synthetic creator market with its ground truth."""
    from influencer_engine.config import load_simulator_config, load_tier_config
    from influencer_engine.io import write_json
    from influencer_engine.simulate.generate import simulate_market
    from influencer_engine.simulate.report import calibration_report, format_report
    from influencer_engine.simulate.world import write_world

    if out is None and not report:
        raise InputError("nothing to do.", fix="give --out DIR to write a world, or --report to check calibration")
    n = creators or (DEFAULT_CREATORS if out is not None else _REPORT_CREATORS)
    cfg, tiers = load_simulator_config(config), load_tier_config()
    t0 = time.perf_counter()
    market = simulate_market(cfg, tiers, n, seed)
    if out is not None:
        write_world(market, cfg, tiers, seed, out)
        typer.echo(f"simulated {n:,} creators (seed {seed}) in {time.perf_counter() - t0:.1f}s -> {out}")
        echo_manifest(out)
    if report:
        from influencer_engine.evaluation.oracle import oracle_rows

        rows = calibration_report(cfg, market.creators, market.posts, market.outcomes, market.truth,
                                  expected=market.expected_outcomes)  # fmt: skip
        rows += oracle_rows(market, cfg, tiers, seed)
        typer.echo(format_report(rows))
        if out is not None:
            write_json({"rows": [r.to_dict() for r in rows]}, out / "calibration_report.json")
        if not all(r.inside for r in rows):
            raise typer.Exit(code=3)


@app.command("validate", rich_help_panel=PANEL)
def validate_cmd(
    kind: Annotated[str, typer.Argument(help="creators, posts, campaigns, outcomes, briefs, or world (a folder).")],
    path: Annotated[Path, typer.Argument(help="A Parquet/CSV file, or a folder for 'world'.")],
    out: Annotated[Path | None, typer.Option(help="Write valid rows, rejects.parquet and manifest.json here.")] = None,
) -> None:
    """Check a table (or a whole dataset folder) against its contract; a brief file (TOML/JSON) against the brief."""
    from influencer_engine.dataset import validate_dataset, validate_file
    from influencer_engine.io import Manifest, table_files

    if kind in ("brief", "briefs") and path.suffix.lower() in (".toml", ".json"):
        from influencer_engine.brief import load_brief

        b = load_brief(path)  # a bad brief raises one line naming the key and the fix
        typer.echo(f"brief {b.brief_id} is valid: goal {b.goal}, budget ${b.budget:,.0f}, {b.brand_category}, "
                   f"starting {b.start_date}, {len(b.scenarios)} scenario(s)")  # fmt: skip
        return

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


@app.command(rich_help_panel=PANEL)
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


@app.command(rich_help_panel=PANEL)
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


@import_app.command("instagram-posts")
def import_instagram_posts_cmd(
    src: Annotated[Path, typer.Argument(help="The instagram_posts_2015_2020 folder (read in place).")],
    out: Annotated[Path, typer.Option(help="Folder for creators, posts, rejects and manifest.")],
) -> None:
    """Import per-post Instagram histories (2015-2020)."""
    from influencer_engine.importers.instagram_posts import import_instagram_posts

    import_instagram_posts(src, out)
    typer.echo(f"imported {src} -> {out}")
    echo_manifest(out)


@import_app.command("table")
def import_table_cmd(
    src: Annotated[Path, typer.Argument(help="The export: a CSV/Parquet file, or a folder the mapping's globs read.")],
    mapping: Annotated[Path, typer.Option("--map", help="Mapping TOML (examples in configs/mappings/).")],
    out: Annotated[Path, typer.Option(help="Folder for creators, posts, rejects and manifest.")],
) -> None:
    """Import any export with a mapping: source columns, units ("353.1K"), missing-value cells, date formats."""
    from influencer_engine.importers.mapped import import_table

    import_table(mapping, src, out)
    typer.echo(f"imported {src} with {mapping} -> {out}")
    echo_manifest(out)


@import_app.command("rankings")
def import_rankings_cmd(
    src: Annotated[Path, typer.Argument(help="The top1000_creators_2022 folder (read in place).")],
    out: Annotated[Path, typer.Option(help="Folder for rankings, creators, rejects and manifest.")],
) -> None:
    """Import top-1000 ranking snapshots (Instagram, TikTok, YouTube; 2022)."""
    from influencer_engine.importers.rankings import import_rankings

    import_rankings(src, out)
    typer.echo(f"imported {src} -> {out}")
    echo_manifest(out)
