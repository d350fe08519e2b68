"""MLflow tracking: a local sqlite store under training/ by default, any tracking URI by option.

Nothing here runs at import: the CLI calls ``configure`` with the URI it was given.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from influencer_engine.errors import InputError
from influencer_engine.modeling.predictor import Predictor

__all__ = [
    "REGISTERED_MODEL",
    "configure",
    "default_uri",
    "flatten",
    "load_bundle_uri",
    "load_model",
    "log_training_run",
    "log_tuning_run",
]

REGISTERED_MODEL = "influencer-engine-kpi"
EXPERIMENT = "kpi-models"


def default_uri(root: Path) -> str:
    return f"sqlite:///{(root / 'mlflow.db').resolve()}"


def configure(tracking_uri: str | None, root: Path, experiment: str = EXPERIMENT) -> str:
    """Point MLflow at ``tracking_uri`` (default: sqlite in ``root``) and select the experiment."""
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"mlflow\..*")
    root.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri or default_uri(root)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        # a sqlite store would put artifacts in ./mlruns of whatever folder the command ran in
        location = (root / "artifacts").resolve().as_uri() if tracking_uri is None else None
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)
    return uri


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def log_training_run(
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: list[Path],
    bundle: Path,
    register: bool,
    alias: str | None = "champion",
) -> dict[str, Any]:
    """Log one training run with the bundle as a pyfunc model; register it and set ``alias``."""
    import mlflow
    from mlflow import MlflowClient

    code = Path(__file__).with_name("mlflow_model.py")
    with mlflow.start_run(run_name=tags.get("run_name")) as run:
        mlflow.set_tags(dict(tags))
        flat = {k: (str(v) if isinstance(v, (list, tuple)) else v) for k, v in params.items()}
        for i in range(0, len(flat), 90):  # MLflow caps params per batch
            mlflow.log_params(dict(list(flat.items())[i : i + 90]))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if not math.isnan(float(v))})
        for a in artifacts:
            mlflow.log_artifact(str(a), artifact_path="report")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            artifacts={"bundle": str(bundle)},
            pip_requirements=["lightgbm", "polars", "numpy", "scikit-learn", "scipy", "pydantic", "mlflow"],
            registered_model_name=REGISTERED_MODEL if register else None,
        )
        out: dict[str, Any] = {"run_id": run.info.run_id, "model_uri": info.model_uri}
    if register:
        client = MlflowClient()
        versions = client.search_model_versions(f"name='{REGISTERED_MODEL}' and run_id='{out['run_id']}'")
        version = max(int(v.version) for v in versions)
        if alias:
            client.set_registered_model_alias(REGISTERED_MODEL, alias, str(version))
        out.update(version=version, registered_uri=f"models:/{REGISTERED_MODEL}@{alias}" if alias else None)
    return out


def log_tuning_run(*, kpi: str, seed: int, best_params: Mapping[str, Any], metrics: Mapping[str, float],
                   artifact: Path) -> str:  # fmt: skip
    """Log one tuning study's best parameters and scores (in the experiment ``configure`` selected); the run id."""
    import mlflow

    with mlflow.start_run(run_name=f"tune {kpi}") as run:
        mlflow.log_params({f"best.{k}": v for k, v in best_params.items()} | {"kpi": kpi, "seed": seed})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.log_artifact(str(artifact))
        return str(run.info.run_id)


def load_bundle_uri(uri: str) -> Path:
    """Download the bundle of a logged or registered model (``models:/name@alias``, ``runs:/id/model``)."""
    import mlflow

    dst = Path(tempfile.mkdtemp(prefix="ie-model-"))
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    except Exception as exc:
        raise InputError(f"model URI {uri} cannot be resolved: {str(exc).splitlines()[0]}.",
                         fix="check --tracking-uri and the model name/alias (`ie train` registers "
                         f"models:/{REGISTERED_MODEL}@champion)") from exc  # fmt: skip
    found = sorted(p.parent for p in (local / "artifacts").glob("*/manifest.json"))
    bundle = found[0] if found else local / "artifacts" / "bundle"
    if not (bundle / "manifest.json").is_file():
        raise InputError(f"{uri} holds no engine bundle.", fix="point at a model logged by `ie train`")
    return bundle


def load_model(spec: str, *, tracking_uri: str | None = None, training_root: Path = Path("training")) -> Predictor:
    """A bundle from a folder, or from an MLflow URI (``models:/...``, ``runs:/...``); checksums verified."""
    import shutil

    from influencer_engine.training.bundle import load_bundle

    if "://" not in spec and not spec.startswith(("models:/", "runs:/")):
        return load_bundle(Path(spec))
    configure(tracking_uri, training_root)
    path = load_bundle_uri(spec)
    try:
        return load_bundle(path)
    finally:
        shutil.rmtree(path.parents[1], ignore_errors=True)
