"""The demo: the main job end to end on the simulated default world."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from influencer_engine.cli._common import fit_progress
from influencer_engine.cli.data import DEFAULT_CREATORS

__all__ = ["app"]

app = typer.Typer()


@app.command(rich_help_panel="Start here")
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo world.")] = Path("runs/demo"),
    creators: Annotated[int, typer.Option(min=1, help="Creators to draw.")] = DEFAULT_CREATORS,
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
    from influencer_engine.config import load_model_config
    from influencer_engine.demo import run_demo
    from influencer_engine.training.train import training_fits

    with fit_progress(training_fits(load_model_config()), "4/6 training") as on_fit:
        run_demo(out, creators=creators, seed=seed, model_out=model_out, brief=brief, train=train_models, track=track,
                 training_root=training_root, say=typer.echo, on_fit=on_fit)  # fmt: skip
