"""The loaded-model interface: what forecasting needs from a trained model, and nothing about how it was trained.

``training.bundle`` produces a ``Predictor`` (from a bundle folder, or from MLflow through ``training.tracking``);
forecasts, planning inputs, batch scoring and the server use only this: the feature list, the peers reference, every
KPI's forecast with its bands, contributions and plain-word reasons, and the model's manifest for display. The
manifest is a typed model with one JSON form (the bundle's ``manifest.json``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from pydantic import BaseModel, ConfigDict

from influencer_engine.config import ModelConfig
from influencer_engine.modeling.baselines import Baselines
from influencer_engine.modeling.completion import Completion
from influencer_engine.modeling.explain import Reason, explain_rows
from influencer_engine.modeling.forecaster import Forecast, KPIForecaster

__all__ = ["BundleManifest", "KpiEntry", "PeerRow", "Predictor", "PriorInfo", "TrainingInfo"]

F64 = npt.NDArray[np.float64]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KpiEntry(_Frozen):
    """One KPI model of a bundle: its LightGBM text file, that file's sha256, its offset and estimator state."""

    file: str
    sha256: str
    offset: str
    state: dict[str, Any]  # KPIModel.state(): parameters, feature order, conformal bands, intercept


class TrainingInfo(_Frozen):
    """What a bundle was trained on."""

    engine: str = "local"
    data: str
    rows_in: int
    rows: int
    tables: dict[str, dict[str, int]] = {}
    first_campaign: str
    last_campaign: str
    seed: int


class PriorInfo(_Frozen):
    """The prior a bundle trained from the user's own campaigns started from (``modeling.prior``), and what the
    user's rows changed."""

    bundle: str  # where the prior was loaded from
    training_data_fingerprint: str  # the prior's
    manifest_checksum: str  # the prior's manifest checksum: which prior, exactly
    trained_on: str  # the data the prior was trained on
    kpis: dict[str, KpiEntry]  # the prior's models, copied into this bundle (prior_kpi_<name>.txt)
    config: ModelConfig
    overrides: dict[str, dict[str, Any]] = {}
    random_state: int = 0
    user_rows: int  # outcome rows of the user's data the corrections saw
    corrections: dict[str, dict[str, Any]]  # Correction.to_dict() per KPI
    drift: dict[str, dict[str, Any]] = {}  # Drift.to_dict() per KPI: the user's outcomes in the prior's bands


class PeerRow(_Frozen):
    """The training table's engagement reference of one platform x tier (see features.creator.peer_table)."""

    platform: str
    tier: str
    peer_er: float | None
    peer_log_er: float | None


class BundleManifest(_Frozen):
    """``manifest.json`` of a model bundle."""

    schema_version: int
    engine_version: str
    created_at: str
    features: list[str]
    categorical_levels: dict[str, list[str]]
    kpis: dict[str, KpiEntry]
    training_data_fingerprint: str
    training: TrainingInfo
    metrics: dict[str, Any]  # BacktestResult.to_dict() of the training run's backtest
    config: ModelConfig
    overrides: dict[str, dict[str, Any]] = {}
    random_state: int = 0
    baselines: dict[str, Any]  # Baselines.to_dict()
    peers: list[PeerRow] | None = None
    completion: dict[str, Any] | None = None  # Completion.state(): rate card, credibility, audience mix, widening
    prior: PriorInfo | None = None  # set when trained from a prior on the user's own campaigns
    checksum: str = ""  # sha256 of the manifest's content without this field (see ``content_sha256``)

    def content_sha256(self, *, as_read: bool = False) -> str:
        """sha256 of everything but ``checksum``, in the manifest's one JSON form: a changed value changes it.

        ``as_read``: only the fields the manifest file held (pydantic's unset fields left out). A bundle made before a
        field with a default existed (a setting added to ``configs/models.toml`` later) was hashed without it; read
        now, the field takes its default, which the plain hash counts and the one as read does not. Either matching
        the stored checksum means the content is as it was written.
        """
        # a manifest without a prior hashes as before the field existed: older bundles keep their checksums
        skip = {"checksum"} | ({"prior"} if self.prior is None else set())
        return hashlib.sha256(self.model_dump_json(exclude=skip, exclude_unset=as_read).encode("utf-8")).hexdigest()

    def checksum_holds(self) -> bool:
        """Whether the stored checksum is this content's, as hashed now or as the file held it (``content_sha256``)."""
        return self.checksum == self.content_sha256() or self.checksum == self.content_sha256(as_read=True)

    def sealed(self) -> BundleManifest:
        """This manifest with its checksum set."""
        return self.model_copy(update={"checksum": self.content_sha256()})

    def to_json(self) -> str:
        """The one JSON form of a manifest."""
        return self.model_dump_json(indent=2) + "\n"


@dataclass(frozen=True)
class Predictor:
    """A trained model as forecasting uses it (see the module doc)."""

    forecaster: KPIForecaster
    baselines: Baselines
    manifest: BundleManifest
    path: Path | None = None  # the bundle folder it was loaded from, when there is one
    completion: Completion | None = None  # what completes a creator a real export leaves partial

    @property
    def features(self) -> list[str]:
        """The feature columns every forecast needs, in model order."""
        return list(self.manifest.features)

    @property
    def kpis(self) -> tuple[str, ...]:
        return tuple(self.forecaster.models_)

    @property
    def fingerprint(self) -> str:
        """The training data's fingerprint: the model's identity in reports and scoring manifests."""
        return self.manifest.training_data_fingerprint

    @property
    def kpi_hashes(self) -> dict[str, str]:
        """sha256 of every KPI's model text."""
        return {k: e.sha256 for k, e in self.manifest.kpis.items()}

    def _completion_hashes(self) -> dict[str, str]:
        """sha256 of every completion model's text (rate card, credibility), by name; empty when it has none."""
        if self.completion is None or not self.manifest.completion:
            return {}
        return {name: str(m["sha256"]) for name, m in self.manifest.completion.get("models", {}).items()}

    def _prior(self) -> tuple[KPIForecaster, dict[str, str]] | None:
        """The prior's forecaster (its trees run under the corrections) and the sha256 of its KPI models, if any."""
        prior: KPIForecaster | None = getattr(self.forecaster, "prior_", None)
        if prior is None or self.manifest.prior is None:
            return None
        return prior, {k: e.sha256 for k, e in self.manifest.prior.kpis.items()}

    def boosters(self) -> list[tuple[str, Any, str]]:
        """Every tree model the bundle predicts with, as (label, booster, sha256 of its text): the KPI models, the
        completion models (rate card, credibility) and a prior's KPI models, in the order ``compile`` reports them."""
        out: list[tuple[str, Any, str]] = [(kpi, m.booster_, self.kpi_hashes[kpi])
                                           for kpi, m in self.forecaster.models_.items()]  # fmt: skip
        hashes = self._completion_hashes()
        if self.completion is not None and hashes:
            kept = [e for e in (self.completion.price, self.completion.credibility) if e is not None]
            out += [(f"completion {e.name}", e.booster, hashes[e.name]) for e in kept if e.name in hashes]
        prior = self._prior()
        if prior is not None:
            forecaster, digests = prior
            out += [(f"prior {k}", forecaster.models_[k].booster_, digest) for k, digest in digests.items()]
        return out

    def compile(self, sample: pl.DataFrame | None = None, cache_dir: Path | None = None) -> list[Any]:
        """Predict with compiled trees where they equal LightGBM (``modeling.compiled``; compiled once per model and
        cached); returns one ``CompileReport`` per KPI model, then one per completion model. ``sample``: feature
        rows to check on besides the models' own split thresholds."""
        from dataclasses import replace

        from influencer_engine.modeling.compiled import compile_completion, default_cache_dir, use_compiled

        cache = cache_dir or default_cache_dir()
        reports = list(use_compiled(self.forecaster, sample, cache, hashes=self.kpi_hashes))  # a copy: extended below
        hashes = self._completion_hashes()
        if self.completion is not None and hashes:  # the rate card and credibility models too
            reports += compile_completion(self.completion, sample, cache, hashes=hashes)
        prior = self._prior()
        if prior is not None:  # the prior's trees run under the corrections
            forecaster, digests = prior
            checked = use_compiled(forecaster, sample, cache, hashes=digests)
            reports += [replace(r, kpi=f"prior {r.kpi}") for r in checked]
        return reports

    @property
    def emv_cpm_usd(self) -> float:
        """The CPM that earned media value is priced at."""
        return float(self.forecaster.config.costs.emv_cpm_usd)

    @property
    def peers(self) -> pl.DataFrame | None:
        """The training table's platform x tier engagement reference (None in bundles made before it existed)."""
        rows = self.manifest.peers
        if not rows:
            return None
        schema = {"platform": pl.String, "tier": pl.String, "peer_er": pl.Float64, "peer_log_er": pl.Float64}
        return pl.DataFrame([r.model_dump() for r in rows], schema=schema)

    def predict(self, features: pl.DataFrame) -> Forecast:
        """Every KPI's expected value and P10/P50/P90 for rows of features (extra columns are ignored)."""
        return self.forecaster.predict(features.select(self.features))

    def base_of(self, kpi: str) -> str:
        """What ``kpi`` is a rate of: "followers", or the earlier KPI whose forecast is its offset."""
        return self.forecaster.base_of(kpi)

    def explain(self, kpi: str, rows: pl.DataFrame, *, target: str = "the target", top: int = 5) -> list[list[Reason]]:
        """The ``top`` plain-word reasons behind ``kpi``'s forecast, for every row of features."""
        return explain_rows(self.forecaster, kpi, rows.select(self.features), target=target, top=top)

    def info(self) -> dict[str, Any]:
        """What a person is shown about the model: version, when, what it was trained on, backtest metrics."""
        m = self.manifest
        metrics = (m.metrics or {}).get("metrics", {})
        return {
            "engine_version": m.engine_version,
            "created_at": m.created_at,
            "training_data_fingerprint": m.training_data_fingerprint,
            "training": m.training.model_dump(exclude={"tables"}),
            "kpis": list(m.kpis),
            "metrics": {k: v.get("model", {}) for k, v in metrics.items()},
            # trained from a prior on the user's own campaigns: which prior, how many rows, what they changed
            "prior": None if m.prior is None else {
                "bundle": m.prior.bundle, "trained_on": m.prior.trained_on, "user_rows": m.prior.user_rows,
                "corrections": {k: {"method": c["method"], "shift": c["shift"], "trees": c["trees"]}
                                for k, c in m.prior.corrections.items()},
            },
        }  # fmt: skip
