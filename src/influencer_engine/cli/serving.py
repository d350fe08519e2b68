"""Serving: the REST API and the planners' web page."""

from __future__ import annotations

import importlib.util
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from influencer_engine.cli._common import MODEL_HELP, TRACKING_HELP, load_predictor
from influencer_engine.errors import InputError

__all__ = ["app"]

PANEL = "Scoring and serving"


class Proof(StrEnum):
    bounds = "bounds"
    full = "full"


app = typer.Typer()
# the serve extra: package -> the module names it may install under
_SERVE_EXTRA = {"fastapi": ("fastapi",), "uvicorn": ("uvicorn",), "python-multipart": ("python_multipart", "multipart"),
                "fastapi-offline": ("fastapi_offline",), "sqlalchemy": ("sqlalchemy",),
                "alembic": ("alembic",)}  # fmt: skip


@app.command(rich_help_panel=PANEL)
def serve(
    data: Annotated[Path, typer.Option(help="Dataset folder of the candidate base planned from.")] = Path("runs/demo"),
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "models/demo",
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    api_key_file: Annotated[
        Path | None, typer.Option(help="File holding the API key (else $IE_API_KEY, else one is generated).")
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(min=0.01, help="Largest upload /api/score takes, in MB.")] = 20.0,
    planner_config: Annotated[Path | None, typer.Option("--config", help="Planner TOML.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=TRACKING_HELP)] = None,
    db: Annotated[
        str,
        typer.Option(
            help="Workspace database (briefs, shortlists, saved plans) as a SQLAlchemy URL: "
            "sqlite:///path.db, or postgresql+psycopg://user:password@host/dbname; "
            "'none' keeps nothing."
        ),
    ] = "sqlite:///workspace.db",
    proof: Annotated[
        Proof,
        typer.Option(
            help="How plans prove their gap: 'bounds' certifies with LP bounds only (a plan in well under a second; "
            "the gap it proves is in the answer, and a request can ask for the full proof with prove=true); 'full' "
            "proves the planner config's mip_rel_gap on every plan, a MILP of seconds on some budgets."
        ),
    ] = Proof.bounds,
) -> None:
    """Serve the REST API (OpenAPI at /docs) and the planners' web page at / (needs the serve extra)."""
    # FastAPI can arrive with MLflow while the rest of the serve extra is missing: check every part of it
    missing = [name for name, modules in _SERVE_EXTRA.items() if not any(importlib.util.find_spec(m) for m in modules)]
    if missing:
        raise InputError(f"`ie serve` needs the serve extra ({', '.join(missing)} missing).",
                         fix='pip install -e ".[serve]"')  # fmt: skip
    import uvicorn

    from influencer_engine.serve import create_app, limit_native_threads, load_server

    key, shown = None, "from $IE_API_KEY"
    if api_key_file is not None:
        if not api_key_file.is_file():
            raise InputError(f"--api-key-file {api_key_file} does not exist.", fix="write the key into that file")
        key, shown = api_key_file.read_text(encoding="utf-8").strip(), f"from {api_key_file}"
        if len(key) < 16:
            raise InputError(f"the key in {api_key_file} is shorter than 16 characters.", fix="use a longer key")
    elif os.environ.get("IE_API_KEY"):
        key = os.environ["IE_API_KEY"]
    workspace = None if db.strip().lower() in ("", "none") else db
    server = load_server(load_predictor(model, tracking_uri, compiled=True), data, model_ref=model, api_key=key,
                         planner_config=planner_config, max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                         db=workspace, proof=proof.value)  # fmt: skip
    if key is None:
        typer.echo(f"API key (shown once; send it in the X-API-Key header): {server.api_key}")
    else:
        typer.echo(f"API key: {shown}")
    typer.echo(f"{server.base.creators.height:,} candidates from {data}; model {model}")
    if server.workspace is not None:
        typer.echo(f"workspace {server.workspace.engine.url.render_as_string(hide_password=True)}")
    typer.echo(f"web page http://{host}:{port}/  API docs http://{host}:{port}/docs")
    limit_native_threads()
    uvicorn.run(create_app(server), host=host, port=port, log_level="warning")
