"""Features: list the catalog, build point-in-time feature tables."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from influencer_engine.cli._common import echo_manifest
from influencer_engine.errors import InputError

__all__ = ["app"]

app = typer.Typer(help="Point-in-time creator features for any brief.", no_args_is_help=True)


@app.command("list")
def features_list(group: Annotated[str | None, typer.Option(help="Only this group.")] = None) -> None:
    """Print every feature: name, group and meaning."""
    from influencer_engine.features.catalog import catalog

    specs = [s for s in catalog() if group is None or s.group == group]
    if not specs:
        raise InputError(f"no feature group '{group}'.", fix="run `ie features list` to see the groups")
    for s in specs:
        typer.echo(f"{s.name:36} {s.group:13} {s.meaning}")


@app.command("build")
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
    echo_manifest(out)
