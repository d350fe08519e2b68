"""What the API serves from: the model and the candidate base, loaded once and shared by every request.

The server never loads or trains a model itself: ``ie serve`` (the CLI) loads one and hands the ``Predictor`` in.


Forecasts depend on the part of a brief that shapes features (brand category, target audience, start date,
order value), not on its budget, goal or constraints. They are computed once per such key and kept in a small
LRU cache, so a planner trying budgets, constraints or scenarios re-solves without re-forecasting. The planning
problem of a brief (eligible candidates, goal values, audience model, constraint rows) depends on everything but
the budget, so it is cached per brief without its budget, and each creator's reasons per forecast and goal: moving
the budget costs one solve. Concurrent requests for the same key wait for one computation instead of each doing it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from influencer_engine.brief import Brief
from influencer_engine.config import PlannerConfig, TierConfig, load_planner_config, load_tier_config
from influencer_engine.forecast import BriefForecast, CandidateBase, forecast_base, load_candidate_base
from influencer_engine.modeling.predictor import Predictor
from influencer_engine.planner.plan import Explain, Prepared, prepare
from influencer_engine.serve.directory import Directory
from influencer_engine.workspace import Workspace, open_workspace

__all__ = ["Server", "forecast_key", "limit_native_threads", "load_server", "new_api_key", "with_proof"]


def new_api_key() -> str:
    return secrets.token_urlsafe(24)


FORECAST_FIELDS = {"brand_category", "target", "start_date", "average_order_value"}


def forecast_key(brief: Brief) -> str:
    """The fields of a brief that forecasts depend on, hashed."""
    part = brief.model_dump(mode="json", include=FORECAST_FIELDS)
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()


def problem_key(brief: Brief) -> str:
    """Every field of a brief that its planning problem depends on: all but the budget, its name and scenarios."""
    part = brief.model_dump(mode="json", exclude={"budget", "brief_id", "scenarios"})
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()


class _Cache:
    """A small thread-safe LRU map whose values are built once per key, however many threads ask at once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.built = 0
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def get(self, key: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            gate = self._building.setdefault(key, threading.Lock())
        with gate:  # one build per key; the others wait for it and then read the result
            with self._lock:
                if key in self._items:
                    self.hits += 1
                    return self._items[key]
            value = build()
            with self._lock:
                self._items[key] = value
                self.built += 1
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._building.pop(key, None)
            return value


@dataclass
class Server:
    predictor: Predictor
    base: CandidateBase
    tiers: TierConfig
    planner: PlannerConfig
    api_key: str
    data: Path
    model_ref: str
    max_upload_bytes: int = 20 * 1024 * 1024
    max_json_bytes: int = 256 * 1024
    max_upload_creators: int = 20_000
    max_whatif_budgets: int = 40
    cache_size: int = 16
    cpu_slots: int = field(default_factory=lambda: 2 * (os.cpu_count() or 2))
    workspace: Workspace | None = None  # briefs, shortlists and saved plans (``--db``); None: not kept
    directory: Directory = field(init=False)
    _forecasts: _Cache = field(init=False)
    _problems: _Cache = field(init=False)
    _reasons: _Cache = field(init=False)

    def __post_init__(self) -> None:
        self._forecasts = _Cache(self.cache_size)
        self._problems = _Cache(4 * self.cache_size)
        self._reasons = _Cache(4 * self.cache_size)
        self._directories = _Cache(self.cache_size)
        self.directory = Directory.build(self.base)
        self._slots = threading.Semaphore(max(1, self.cpu_slots))

    @contextmanager
    def slot(self) -> Iterator[None]:
        """One of ``cpu_slots`` places for CPU-bound work (planning, forecasting, scoring).

        Requests beyond the slots wait their turn in arrival order instead of all sharing the cores at once, so
        the spread of latencies stays narrow; health and model info never wait. The default, twice the cores,
        gave the best p95 under load (2 slots left the cores idle in the Python parts of a request).
        """
        with self._slots:
            yield

    @property
    def stats(self) -> dict[str, int]:
        return {"forecasts_computed": self._forecasts.built, "forecast_cache_hits": self._forecasts.hits,
                "problems_built": self._problems.built, "problem_cache_hits": self._problems.hits}  # fmt: skip

    def forecast(self, brief: Brief) -> BriefForecast:
        """Forecasts of every candidate for ``brief`` (cached by ``forecast_key``)."""

        def build() -> BriefForecast:
            return forecast_base(self.predictor, self.base, brief, self.tiers)

        made: BriefForecast = self._forecasts.get(forecast_key(brief), build)
        return made

    def directory_for(self, brief: Brief | None) -> Any:
        """The creator directory (a Polars frame), with ``brief``'s forecast columns when one is given (cached)."""
        if brief is None:
            return self.directory.frame
        forecast = self.forecast(brief)
        return self._directories.get(forecast_key(brief), lambda: self.directory.for_forecast(forecast))

    def prepared(self, brief: Brief) -> Prepared:
        """The planning problem of ``brief`` without its budget (every candidate at any price stays eligible)."""
        forecast = self.forecast(brief)
        open_budget = brief.model_copy(update={"budget": float("inf")})

        def build() -> Prepared:
            return prepare(forecast, open_budget, self.planner)

        made: Prepared = self._problems.get(forecast_key(brief) + problem_key(brief), build)
        return made

    def reason_details(self, brief: Brief) -> Callable[[Sequence[str], str, int], list[list[dict[str, Any]]]]:
        """Each creator's reasons for ``brief`` as dicts (text, effect, group), kept per (KPI, number of reasons)."""
        forecast = self.forecast(brief)
        fkey = forecast_key(brief)

        def details(creator_ids: Sequence[str], kpi: str, top: int) -> list[list[dict[str, Any]]]:
            cache: dict[str, list[dict[str, Any]]] = self._reasons.get(f"{fkey}|{kpi}|{top}", dict)
            missing = [c for c in dict.fromkeys(creator_ids) if c not in cache]
            if missing:
                made = forecast.reasons(missing, kpi, top)
                cache.update(zip(missing, ([r.to_dict() for r in rs] for rs in made), strict=True))
            return [cache[c] for c in creator_ids]

        return details

    def explainer(self, brief: Brief) -> Explain:
        """The forecast's reasons for ``brief`` as one line per creator (the planner's explain callback)."""
        details = self.reason_details(brief)

        def explain(creator_ids: Sequence[str], kpi: str, top: int) -> list[str]:
            return ["; ".join(r["text"] for r in rs) for rs in details(creator_ids, kpi, top)]

        return explain

    def model_info(self) -> dict[str, Any]:
        return {
            "model": self.model_ref,
            **self.predictor.info(),
            "workspace": self.workspace.engine.url.render_as_string(hide_password=True) if self.workspace else None,
            "candidates": {
                "source": str(self.data),
                "creators": self.base.creators.height,
                "rejected": self.base.rejects.height,
            },
        }


def limit_native_threads() -> None:
    """One BLAS thread per request thread: the server runs requests side by side, one per CPU slot.

    OpenBLAS's own threads would spin on the cores the other requests need: measured on a 10k-candidate plan,
    they doubled its CPU time (0.13 s against 0.07 s) for the same wall time.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def load_server(predictor: Predictor, data: Path, *, model_ref: str, api_key: str | None = None,
                planner_config: Path | None = None, db: str | None = None,
                proof: Literal["full", "bounds"] | None = None, **limits: Any) -> Server:  # fmt: skip
    """Serve ``predictor`` (loaded by the caller; ``model_ref`` names it) over the candidate base in ``data``; keep
    the planners' workspace in the database at ``db`` (a SQLAlchemy URL; None keeps nothing). ``proof`` overrides
    the planner config's (``ie serve`` certifies with LP bounds by default; a request can ask for the full proof)."""
    workspace = open_workspace(db) if db else None
    planner = load_planner_config(planner_config)
    if proof is not None:
        planner = with_proof(planner, proof)
    return Server(predictor=predictor, base=load_candidate_base(data), tiers=load_tier_config(),
                  planner=planner, api_key=api_key or new_api_key(), data=data,
                  model_ref=model_ref, workspace=workspace, **limits)  # fmt: skip


def with_proof(planner: PlannerConfig, proof: Literal["full", "bounds"]) -> PlannerConfig:
    """``planner`` with its solver's proof set to ``proof`` (see ``SolverSection.proof``)."""
    return planner.model_copy(update={"solver": planner.solver.model_copy(update={"proof": proof})})
