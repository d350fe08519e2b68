"""What several sub-apps share: option help, model loading, the Dask client, the engine choice, manifests."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from influencer_engine.errors import InputError

if TYPE_CHECKING:
    from influencer_engine.modeling.predictor import Predictor

__all__ = [
    "TRACKING_HELP",
    "Engine",
    "dask_client",
    "echo_manifest",
    "fit_progress",
    "load_predictor",
    "model_loader",
]

TRACKING_HELP = "MLflow tracking URI (default: sqlite file training/mlflow.db)."
MODEL_HELP = "Bundle folder or MLflow model URI (e.g. models:/influencer-engine-kpi@champion)."


class Engine(StrEnum):
    """Where LightGBM and the scoring chunks run."""

    local = "local"
    dask = "dask"


def echo_manifest(out: Path) -> None:
    """Print the row accounting of the manifest.json a command wrote into ``out``."""
    body = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for name, t in body["tables"].items():
        reasons = ", ".join(f"{k} {v}" for k, v in list(t["reasons"].items())[:4])
        typer.echo(
            f"  {name:10} in {t['rows_in']:>10,}  out {t['rows_out']:>10,}  rejected {t['rows_rejected']:>8,}"
            + (f"  ({reasons})" if reasons else "")
        )
        for note in t.get("notes", []):
            if note.startswith(f"{name}: "):  # notes about the rows (the mapping's description is not repeated)
                typer.echo(f"    {note}")
    typer.echo(f"  manifest: {out / 'manifest.json'}")


@contextlib.contextmanager
def fit_progress(total: int, what: str = "training") -> Iterator[Callable[[str], None]]:
    """A bar over ``total`` booster fits on a terminal (so a long fit visibly moves); a line per fit on stderr when
    stderr is a file or a pipe. Yields the callback that training calls after each fit."""
    import sys
    import time

    t0 = time.perf_counter()
    if not sys.stderr.isatty():
        done = 0

        def line(label: str) -> None:
            nonlocal done
            done += 1
            typer.echo(f"{what}: fit {done}/{total} ({label}) after {time.perf_counter() - t0:,.0f} s", err=True)

        yield line
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[label]}"),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=True)  # fmt: skip
    with bar:
        task = bar.add_task(what, total=total, label="")

        def update(label: str) -> None:
            bar.update(task, advance=1, label=label)

        yield update


def model_loader(model: str, tracking_uri: str | None = None,
                 training_root: Path = Path("training")) -> Callable[[], Predictor]:  # fmt: skip
    """A picklable function that loads the model ``model`` (a Dask worker calls it to load the same model)."""
    from influencer_engine.training.tracking import load_model

    return functools.partial(load_model, model, tracking_uri=tracking_uri, training_root=training_root)


def load_predictor(model: str, tracking_uri: str | None = None, training_root: Path = Path("training"), *,
                   compiled: bool = False) -> Predictor:  # fmt: skip
    """The model named on the command line: a bundle folder or an MLflow URI, checksums verified. With ``compiled``
    (and unless ``$IE_COMPILED`` is 0) it predicts with compiled trees where they equal LightGBM."""
    from influencer_engine.modeling.compiled import enabled

    predictor = model_loader(model, tracking_uri, training_root)()
    if compiled and enabled():
        report_compiled(predictor.compile(), quiet=True)
    return predictor


def report_compiled(reports: list[Any], *, quiet: bool = False) -> None:
    """One line on stderr for the compiled trees (only the fallbacks when ``quiet``)."""
    used = [r for r in reports if r.used]
    if used and not quiet:
        seconds = sum(r.compile_s or 0.0 for r in used)
        inlined = sum(1 for r in used if r.inlined)
        built = f", {inlined} of them inlined (`ie compile`)" if inlined else ""
        typer.echo(f"compiled trees ({', '.join(sorted({r.backend for r in used}))}) for {len(used)} of "
                   f"{len(reports)} models{built}, equal to LightGBM ({seconds:.1f} s to compile or load from the "
                   "cache)", err=True)  # fmt: skip
    for r in reports:
        if not r.used:
            typer.echo(f"compiled trees not used for {r.kpi}: {r.reason}; LightGBM predicts it "
                       "(IE_COMPILED=0 skips the compiled trees)", err=True)  # fmt: skip


@contextlib.contextmanager
def dask_client(scheduler: str | None) -> Iterator[Any]:
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


def maybe_dask(engine: Engine, scheduler: str | None) -> contextlib.AbstractContextManager[Any]:
    """A Dask client for ``--engine dask``, else None."""
    return dask_client(scheduler) if engine == Engine.dask else contextlib.nullcontext()
