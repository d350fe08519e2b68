"""The ``ie`` command line: one sub-app per stage, each parsing its options, calling one library function and printing.

Errors print as one line with the fix; ``--debug`` shows the traceback. Stages: ``data`` (simulate, validate,
summary, contracts, import), ``features``, ``models`` (train, tune, evaluate), ``planning`` (forecast, plan,
whatif), ``scoring`` (score), ``serving`` (serve) and the ``demo`` that runs the main job end to end.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from influencer_engine.cli import (
    _allocator,  # noqa: F401  (first: it sets polars' allocator before polars loads)
    data,
    demo,
    features,
    models,
    planning,
    scoring,
    serving,
)
from influencer_engine.errors import EngineError

__all__ = ["app", "main"]

app = typer.Typer(
    name="ie",
    help="Influencer selection and forecasting engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for _stage in (demo, data, models, planning, scoring, serving):
    app.add_typer(_stage.app)  # no name: the stage's commands sit at the top level (ie plan, ie train, ...)
app.add_typer(data.import_app, name="import", rich_help_panel=data.PANEL)
app.add_typer(features.app, name="features", rich_help_panel="Features")


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """Influencer selection and forecasting engine."""


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


# OpenMP threads spin this many times at a barrier before they sleep (libgomp's GOMP_SPINCOUNT; its default is
# 300,000). Measured on 2 cores, `ie train` on the demo world: libgomp's default 47 s alone, 203 s beside two busy
# processes; OMP_WAIT_POLICY=PASSIVE (no spinning) 136 s and 117 s; 10,000 spins 43 s and 99 s.
OPENMP_SPINCOUNT = "10000"


def _short_openmp_spins() -> None:
    """OpenMP threads that spin briefly at barriers, then sleep, unless the user chose otherwise.

    Long spins burn the cores that the other threads (and other processes) need: on a busy 2-core machine LightGBM
    stalled for minutes per fit. No spinning at all (PASSIVE) tripled the time on a quiet machine. OpenMP reads
    this once, when LightGBM's library loads, which every command does after this point (LightGBM is imported
    inside the commands).
    """
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", OPENMP_SPINCOUNT)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``ie``: one-line errors for people, tracebacks only with --debug."""
    _short_openmp_spins()
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
