"""Scoring: a candidate database against a brief, streamed in chunks, locally or on a Dask cluster."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from influencer_engine.cli._common import (
    MODEL_HELP,
    TRACKING_HELP,
    Engine,
    load_predictor,
    maybe_dask,
    model_loader,
    report_compiled,
)

__all__ = ["app"]

PANEL = "Scoring and serving"
app = typer.Typer()


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


@app.command(rich_help_panel=PANEL)
def score(
    candidates: Annotated[list[Path], typer.Option(help="Dataset folder(s) of candidates: creators and posts tables.")],
    brief: Annotated[Path, typer.Option(help="Brief TOML/JSON to score against.")],
    out: Annotated[Path, typer.Option(help="Folder for scores/, rejects/, manifest.json (resumable).")] = Path(
        "runs/score"
    ),
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "models/demo",
    chunk_creators: Annotated[
        int, typer.Option(min=1, help="Creators per chunk (memory is bounded by a chunk).")
    ] = 50_000,
    limit_memory: Annotated[
        float | None, typer.Option(help="Memory budget in MB: chunks are made small enough to fit it.")
    ] = None,
    restart: Annotated[bool, typer.Option("--restart", help="Start over instead of resuming a run in --out.")] = False,
    engine: Annotated[Engine, typer.Option(help="local, or dask (needs the dask extra).")] = Engine.local,
    compiled: Annotated[
        bool,
        typer.Option(
            "--compiled/--no-compiled",
            help="Predict with compiled trees (lleaves) where exactly equal to "
            "LightGBM on 5,000 rows spread over the first chunk and at every split threshold (compiled once per "
            "model, cached); LightGBM otherwise.",
        ),
    ] = True,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: a local cluster of 2 workers).")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=TRACKING_HELP)] = None,
) -> None:
    """Score a candidate database against a brief: every KPI with P10/P50/P90, cost figures, fit, quality flags.

    Streams creator chunks; a killed run started again resumes where it stopped, with no row twice or lost.
    """
    from concurrent.futures import ThreadPoolExecutor

    from influencer_engine.brief import load_brief
    from influencer_engine.sources import plan_layout  # no model library: importable before LightGBM is

    b = load_brief(brief)
    # the sources are checked, counted and split while LightGBM and scikit-learn import and the model loads
    # (polars reads without Python's lock): about 2 s of a run's start, whatever its size
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ie-layout") as pool:
        planned = pool.submit(plan_layout, candidates, chunk_creators, limit_memory)
        from influencer_engine.config import load_tier_config
        from influencer_engine.modeling.compiled import default_cache_dir
        from influencer_engine.scoring import compiled_reports, score_candidates

        predictor = load_predictor(model, tracking_uri)
        layout = planned.result()
    with maybe_dask(engine, scheduler) as client, _score_progress() as show:
        r = score_candidates(predictor, candidates, b, load_tier_config(), out, chunk_creators=chunk_creators,
                             limit_memory_mb=limit_memory, restart=restart, client=client,
                             worker_model=model_loader(model, tracking_uri) if client is not None else None,
                             compiled_dir=default_cache_dir() if compiled else None, progress=show,
                             layout=layout)  # fmt: skip
    resumed = f", {r.resumed_chunks} chunk(s) resumed from an earlier run" if r.resumed_chunks else ""
    if compiled:
        report_compiled(compiled_reports(predictor))
    if limit_memory is not None and r.peak_rss_mb is not None and r.peak_rss_mb > limit_memory:
        typer.echo(f"warning: peak memory {r.peak_rss_mb:,.0f} MB was above --limit-memory {limit_memory:,.0f} MB "
                   "(chunks are sized from an estimate); use a smaller --chunk-creators", err=True)  # fmt: skip
    typer.echo(f"scored {r.scored:,} of {r.rows_in:,} creators ({r.rejected:,} rejected) in {r.chunks} chunk(s), "
               f"{r.seconds:.1f} s{resumed} -> {out / 'scores'}; manifest {out / 'manifest.json'}")  # fmt: skip
