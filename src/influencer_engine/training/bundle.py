"""Model bundles: LightGBM's own text format per KPI plus a JSON manifest. Nothing is ever unpickled.

A bundle folder holds ``kpi_<name>.txt`` for each KPI and ``manifest.json``: the schema version, the features
in order (with categorical levels), the training data fingerprint, the backtest metrics, the configuration,
the fitted baselines, the conformal bands, and a sha256 of every file. Loading verifies the schema version,
the feature list and every checksum, and refuses the bundle with a one-line reason on any mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from influencer_engine import __version__
from influencer_engine.config import KPI_NAMES, ModelConfig, validated
from influencer_engine.errors import EngineError
from influencer_engine.features.build import feature_columns
from influencer_engine.modeling.baselines import Baselines
from influencer_engine.modeling.estimator import KPIModel
from influencer_engine.modeling.forecaster import KPIForecaster
from influencer_engine.modeling.matrix import CATEGORIES_OF

__all__ = ["SCHEMA_VERSION", "Bundle", "BundleError", "load_bundle", "save_bundle"]

# Bump when the feature set, the manifest layout or the meaning of a model input changes.
SCHEMA_VERSION = 2
MANIFEST = "manifest.json"


class BundleError(EngineError):
    """A model bundle cannot be used (missing, tampered with, or made for another schema)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    forecaster: KPIForecaster
    baselines: Baselines
    manifest: dict[str, Any]
    path: Path

    @property
    def features(self) -> list[str]:
        return list(self.manifest["features"])

    @property
    def peers(self) -> pl.DataFrame | None:
        """The training table's platform x tier engagement reference (None in bundles made before it existed)."""
        rows = self.manifest.get("peers")
        if not rows:
            return None
        return pl.DataFrame(rows, schema={"platform": pl.String, "tier": pl.String, "peer_er": pl.Float64,
                                          "peer_log_er": pl.Float64})  # fmt: skip


def save_bundle(
    forecaster: KPIForecaster,
    baselines: Baselines,
    out: Path,
    *,
    fingerprint: str,
    metrics: dict[str, Any],
    training: dict[str, Any],
    peers: pl.DataFrame | None = None,
) -> Path:
    """Write a bundle to ``out`` atomically (a complete new folder replaces the old one in one rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        kpis: dict[str, Any] = {}
        for kpi, model in forecaster.models_.items():
            name = f"kpi_{kpi}.txt"
            (tmp / name).write_text(model.booster_.model_to_string(), encoding="utf-8")
            kpis[kpi] = {"file": name, "sha256": _sha256(tmp / name), "offset": forecaster.base_of(kpi),
                         "state": model.state()}  # fmt: skip
        features = list(forecaster.features_)
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "engine_version": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "features": features,
            "categorical_levels": {f: list(CATEGORIES_OF[f]) for f in features if f in CATEGORIES_OF},
            "kpis": kpis,
            "training_data_fingerprint": fingerprint,
            "training": training,
            "metrics": metrics,
            "config": forecaster.config.model_dump(mode="json"),
            "overrides": {k: dict(v) for k, v in (forecaster.overrides or {}).items()},
            "random_state": forecaster.random_state,
            "baselines": baselines.to_dict(),
            "peers": peers.to_dicts() if peers is not None else None,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        old = out.with_name(f".{out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def load_bundle(path: Path) -> Bundle:
    """Load and verify a bundle folder (schema version, feature list, checksums)."""
    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path} is not a model bundle (no {MANIFEST}).",
                          fix="train one with `ie train --out DIR` or point at its folder")  # fmt: skip
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{mpath} is not valid JSON ({exc.msg}).", fix="retrain with `ie train`") from exc
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(
            f"{path} was made for model schema {version}; this engine ({__version__}) reads schema {SCHEMA_VERSION}.",
            fix="retrain with `ie train`, or use the engine version that made it",
        )
    if manifest.get("features") != feature_columns():
        raise BundleError(f"{path} was trained on a different feature list than this engine builds.",
                          fix="retrain with `ie train`")  # fmt: skip
    models: dict[str, KPIModel] = {}
    for kpi, entry in manifest["kpis"].items():
        if kpi not in KPI_NAMES:
            raise BundleError(f"{mpath}: unknown KPI '{kpi}'.", fix="retrain with `ie train`")
        file = path / entry["file"]
        if not file.is_file():
            raise BundleError(f"{path} lacks {entry['file']}.", fix="copy the whole bundle folder, or retrain")
        if _sha256(file) != entry["sha256"]:
            raise BundleError(f"{file} does not match its checksum in {MANIFEST} (changed or corrupted).",
                              fix="restore the bundle from its source, or retrain with `ie train`")  # fmt: skip
        try:
            models[kpi] = KPIModel.from_state(entry["state"], file.read_text(encoding="utf-8"))
        except (ValueError, KeyError) as exc:
            raise BundleError(f"{file} cannot be loaded: {exc}.", fix="retrain with `ie train`") from exc
    config = validated(ModelConfig, manifest["config"], source=str(mpath), fix="retrain with `ie train`")
    forecaster = KPIForecaster(config, kpis=tuple(models), overrides=manifest.get("overrides") or None,
                               random_state=int(manifest.get("random_state", 0)))  # fmt: skip
    forecaster.models_ = models
    forecaster.features_ = list(manifest["features"])
    for kpi, entry in manifest["kpis"].items():
        if forecaster.base_of(kpi) != entry["offset"]:
            raise BundleError(f"{mpath}: the funnel of {kpi} does not match its models.", fix="retrain")
    return Bundle(forecaster=forecaster, baselines=Baselines.from_dict(manifest["baselines"]), manifest=manifest,
                  path=path)  # fmt: skip
