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
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import polars as pl
from pydantic import ValidationError

from influencer_engine import __version__
from influencer_engine.config import ModelConfig, describe_problems
from influencer_engine.errors import EngineError
from influencer_engine.features.build import feature_columns
from influencer_engine.modeling.baselines import Baselines
from influencer_engine.modeling.completion import Completion
from influencer_engine.modeling.estimator import KPIModel
from influencer_engine.modeling.forecaster import KPIForecaster
from influencer_engine.modeling.matrix import CATEGORIES_OF
from influencer_engine.modeling.predictor import BundleManifest, KpiEntry, Predictor, TrainingInfo
from influencer_engine.registry import KPI_NAMES

__all__ = ["SCHEMA_VERSION", "BundleError", "load_bundle", "save_bundle"]

# Bump when the feature set, the manifest layout or the meaning of a model input changes.
# 3: the manifest carries a checksum of its own content.
# 4: the bundle carries its completion models (rate card, credibility, audience mix, band widening).
# 5: each KPI model carries its out-of-fold mean correction (`modeling.balance`); the bands are calibrated on it.
# 6: the history features of issue 18 (lags, weighted means, spread, trend, gaps).
# 7: each KPI model carries its per-dollar correction (`modeling.balance`) and the split of its bands
#    (`modeling.intervals.ErrorSplit`).
SCHEMA_VERSION = 7
MANIFEST = "manifest.json"


# settings of the training run, not of the model: the same data gives the same file on any machine or load
_RUN_SETTINGS = re.compile(r"^\[num_threads: [^\n]*\]\n", re.M)


class BundleError(EngineError):
    """A model bundle cannot be used (missing, tampered with, or made for another schema)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_bundle(
    forecaster: KPIForecaster,
    baselines: Baselines,
    out: Path,
    *,
    fingerprint: str,
    metrics: dict[str, Any],
    training: TrainingInfo,
    peers: pl.DataFrame | None = None,
    completion: Completion | None = None,
    prior: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle to ``out`` atomically (a complete new folder replaces the old one in one rename).

    A forecaster trained from a prior (``modeling.prior``) carries the prior's models with it (``prior_kpi_*.txt``);
    ``prior`` is the rest of its ``PriorInfo`` (where it came from, what the user's rows changed)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        kpis = _write_models(forecaster, tmp, "kpi_")
        prior_info = None
        prior_fc: KPIForecaster | None = getattr(forecaster, "prior_", None)
        if prior_fc is not None:
            if prior is None:
                raise ValueError("a forecaster trained from a prior needs the prior's description (prior=)")
            prior_info = {**prior, "kpis": _write_models(prior_fc, tmp, "prior_kpi_"), "config": prior_fc.config,
                          "overrides": {k: dict(v) for k, v in (prior_fc.overrides or {}).items()},
                          "random_state": prior_fc.random_state}  # fmt: skip
        completion_state = None
        if completion is not None:
            sums = {}
            for name, text in completion.files().items():
                (tmp / name).write_text(text, encoding="utf-8")
                sums[name] = _sha256(tmp / name)
            completion_state = completion.state(sums)
        features = list(forecaster.features_)
        manifest = BundleManifest.model_validate({
            "schema_version": SCHEMA_VERSION,
            "engine_version": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "features": features,
            "categorical_levels": {f: list(CATEGORIES_OF[f]) for f in features if f in CATEGORIES_OF},
            "kpis": kpis,
            "training_data_fingerprint": fingerprint,
            "training": training,
            "metrics": metrics,
            "config": forecaster.config,
            "overrides": {k: dict(v) for k, v in (forecaster.overrides or {}).items()},
            "random_state": forecaster.random_state,
            "baselines": baselines.to_dict(),
            "peers": peers.to_dicts() if peers is not None else None,
            "completion": completion_state,
            "prior": prior_info,
        }).sealed()  # fmt: skip
        (tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
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


def _write_models(forecaster: KPIForecaster, folder: Path, prefix: str) -> dict[str, KpiEntry]:
    kpis: dict[str, KpiEntry] = {}
    for kpi, model in forecaster.models_.items():
        name = f"{prefix}{kpi}.txt"
        text = _RUN_SETTINGS.sub("", model.booster_.model_to_string())
        (folder / name).write_text(text, encoding="utf-8")
        kpis[kpi] = KpiEntry(file=name, sha256=_sha256(folder / name), offset=forecaster.base_of(kpi),
                             state=model.state())  # fmt: skip
    return kpis


def _read_manifest(path: Path) -> BundleManifest:
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path} is not a model bundle (no {MANIFEST}).",
                          fix="train one with `ie train --out DIR` or point at its folder")  # fmt: skip
    try:
        raw = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mpath} is not valid JSON ({exc}).", fix="retrain with `ie train`") from exc
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version != SCHEMA_VERSION:
        raise BundleError(
            f"{path} was made for model schema {version}; this engine ({__version__}) reads schema {SCHEMA_VERSION}.",
            fix="retrain with `ie train`, or use the engine version that made it",
        )
    try:
        manifest = BundleManifest.model_validate(raw)
    except ValidationError as exc:
        problem = describe_problems(exc, BundleManifest)[0]
        raise BundleError(f"{mpath}: {problem}.", fix="retrain with `ie train`, or restore the bundle") from exc
    if not manifest.checksum_holds():
        raise BundleError(f"{mpath} does not match its own checksum (changed after training, or corrupted).",
                          fix="restore the bundle from its source, or retrain with `ie train`")  # fmt: skip
    return manifest


def load_bundle(path: Path) -> Predictor:
    """Load and verify a bundle folder (schema version, feature list, checksums) as a ``Predictor``."""
    path = Path(path)
    manifest = _read_manifest(path)
    mpath = path / MANIFEST
    if manifest.features != feature_columns():
        raise BundleError(f"{path} was trained on a different feature list than this engine builds.",
                          fix="retrain with `ie train`")  # fmt: skip
    forecaster = _forecaster(path, manifest.kpis, manifest.config, manifest.overrides, manifest.random_state,
                             manifest.features)  # fmt: skip
    if manifest.prior is not None:
        p = manifest.prior
        forecaster.prior_ = _forecaster(path, p.kpis, p.config, p.overrides, p.random_state, manifest.features)
    for kpi, entry in manifest.kpis.items():
        if forecaster.base_of(kpi) != entry.offset:
            raise BundleError(f"{mpath}: the funnel of {kpi} does not match its models.", fix="retrain")
    return Predictor(forecaster=forecaster, baselines=Baselines.from_dict(manifest.baselines), manifest=manifest,
                     path=path, completion=_load_completion(path, manifest))  # fmt: skip


def _forecaster(path: Path, entries: dict[str, KpiEntry], config: ModelConfig, overrides: dict[str, dict[str, Any]],
                random_state: int, features: list[str]) -> KPIForecaster:  # fmt: skip
    """The KPI models of ``entries`` (each file checked against its sha256) as a forecaster."""
    mpath = path / MANIFEST
    models: dict[str, KPIModel] = {}
    for kpi, entry in entries.items():
        if kpi not in KPI_NAMES:
            raise BundleError(f"{mpath}: unknown KPI '{kpi}'.", fix="retrain with `ie train`")
        file = path / entry.file
        if not file.is_file():
            raise BundleError(f"{path} lacks {entry.file}.", fix="copy the whole bundle folder, or retrain")
        if _sha256(file) != entry.sha256:
            raise BundleError(f"{file} does not match its checksum in {MANIFEST} (changed or corrupted).",
                              fix="restore the bundle from its source, or retrain with `ie train`")  # fmt: skip
        try:
            models[kpi] = KPIModel.from_state(entry.state, file.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, lgb.basic.LightGBMError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BundleError(
                f"{file} is not a LightGBM model this engine can load ({first}).",
                fix="restore the bundle from its source, or retrain with `ie train`",
            ) from exc
    forecaster = KPIForecaster(config, kpis=tuple(models), overrides=overrides or None, random_state=random_state)
    forecaster.models_ = models
    forecaster.features_ = list(features)
    return forecaster


def _load_completion(path: Path, manifest: BundleManifest) -> Completion | None:
    state = manifest.completion
    if not state:
        return None
    texts: dict[str, str] = {}
    for name, entry in state.get("models", {}).items():
        file = path / entry["file"]
        if not file.is_file():
            raise BundleError(f"{path} lacks {entry['file']} (its {name} model).",
                              fix="copy the whole bundle folder, or retrain")  # fmt: skip
        if _sha256(file) != entry["sha256"]:
            raise BundleError(f"{file} does not match its checksum in {MANIFEST} (changed or corrupted).",
                              fix="restore the bundle from its source, or retrain with `ie train`")  # fmt: skip
        texts[entry["file"]] = file.read_text(encoding="utf-8")
    try:
        return Completion.from_state(state, texts)
    except (ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as exc:
        raise BundleError(
            f"{path / MANIFEST}: its completion models cannot be read ({exc}).", fix="retrain with `ie train`"
        ) from exc
