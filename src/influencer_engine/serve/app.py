"""The REST API and the planners' web page.

Every endpoint but ``/health`` (and the page's static files, which hold no data) needs the API key in the
``X-API-Key`` header. Bodies are size-capped before they are read; validation problems come back as 4xx with the
field, the problem and what to send instead. Handlers are plain functions, so FastAPI runs them in its thread
pool: a long what-if does not hold up the event loop, health checks or other plans. The model and the candidate
base are loaded once (``state.load_server``) and shared by all requests.
"""

from __future__ import annotations

import functools
import math
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import polars as pl
from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from influencer_engine import __version__
from influencer_engine.brief import Brief, Scenario
from influencer_engine.config import describe_problems
from influencer_engine.errors import EngineError
from influencer_engine.registry import GOALS
from influencer_engine.serve.directory import FLAGS, SearchQuery
from influencer_engine.serve.state import Server, with_proof
from influencer_engine.workspace import ITEM_STATES, Conflict, NotFound, Workspace

__all__ = ["create_app"]

API_KEY_HEADER = "X-API-Key"
_KEY_HEADER = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="The key `ie serve` printed.")
_KEY_FIX = f"send the key `ie serve` printed (or the one it was given) in the {API_KEY_HEADER} header"


# ---------------------------------------------------------------------------------------------- payloads
class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    brief: Brief
    scenario: Scenario | None = Field(None, description="A variant of the brief to plan instead (its fields win).")
    reasons: int = Field(3, ge=0, le=5, description="Reasons given per creator in the roster.")
    shortlist_id: int | None = Field(
        None,
        description="A workspace shortlist whose pinned creators must be in the "
        "roster and whose excluded creators must not be (added to the brief's own).",
    )
    prove: bool = Field(
        False,
        description="Prove the roster within the solver's gap (mip_rel_gap, 0.5%) even where that takes a MILP of "
        "seconds. By default the server certifies with LP bounds only, and totals.solver reports the gap they prove "
        "(status 'gap' where it exceeds mip_rel_gap).",
    )


class SavePlanRequest(PlanRequest):
    name: str = Field(min_length=1, max_length=200, description="The saved plan's name.")
    note: str = Field("", max_length=5000)


class NamedBrief(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    brief: Brief


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    creator_id: str = Field(min_length=1, max_length=200)
    state: str = Field("shortlisted", description=f"One of {', '.join(ITEM_STATES)}.")
    note: str = Field("", max_length=5000)


class ShortlistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    items: list[ItemIn] = Field(default_factory=list, max_length=5000)


class ShortlistPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)


class ItemPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: str | None = Field(None, description=f"One of {', '.join(ITEM_STATES)}.")
    note: str | None = Field(None, max_length=5000)


class PlanPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    note: str | None = Field(None, max_length=5000)


class Budgets(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: float = Field(gt=0, description="Lowest budget, $.")
    stop: float = Field(gt=0, description="Highest budget, $.")
    steps: int = Field(12, ge=2, le=40, description="Budgets from start to stop, evenly spaced.")

    @model_validator(mode="after")
    def _order(self) -> Budgets:
        if self.stop <= self.start:
            raise ValueError("stop must be above start")
        return self


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    brief: Brief
    budgets: Budgets
    scenarios: list[Scenario] | None = Field(None, description="Default: the brief's own scenarios.", max_length=4)


class ForecastRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    creator_id: str = Field(min_length=1)
    brief: Brief
    format: str | None = Field(None, description="Post format (default: the creator's base format).")


_BODIES: dict[str, type[BaseModel]] = {"/api/plan": PlanRequest, "/api/whatif": WhatIfRequest,
                                       "/api/forecast": ForecastRequest, "/api/plans": SavePlanRequest,
                                       "/api/shortlists": ShortlistIn, "/api/briefs": NamedBrief}  # fmt: skip


def _clean(obj: Any) -> Any:
    """JSON-safe values: NaN and infinities become null, dates become ISO text."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


def _strength(reason: dict[str, Any]) -> float:
    """How strongly a reason moves the forecast, on the log scale (x0.5 is as strong as x2), as ranked by explain."""
    effect = reason.get("effect")
    return abs(math.log1p(max(effect, -0.999999))) if isinstance(effect, float | int) else 0.0


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [_clean(r) for r in frame.to_dicts()]


# scripts and styles from this app only (the page and Swagger UI keep their scripts in files; styles may be inline)
_CSP = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
    "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "object-src 'none'",
))  # fmt: skip


@functools.cache
def example_brief() -> dict[str, Any] | None:
    """The committed example brief (configs/briefs/fitness_january.toml), the page's starting form."""
    from influencer_engine.brief import load_brief
    from influencer_engine.config import config_path

    path = config_path("briefs/fitness_january.toml")
    if not path.is_file():
        return None
    data: dict[str, Any] = load_brief(path).model_dump(mode="json")
    return data


def _swagger_assets() -> str:
    """Swagger UI 5's files (it reads OpenAPI 3.1, FastAPI's schema) as the fastapi-offline package ships them (the
    serve extra): /docs needs no network."""
    import fastapi_offline

    return str(Path(fastapi_offline.__file__).parent / "static")


def _error(status: int, message: str, fix: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "fix": fix, **extra}, status_code=status)


# ---------------------------------------------------------------------------------------------- the app
def create_app(server: Server) -> FastAPI:
    app = FastAPI(
        title="Influencer engine",
        version=__version__,
        description="Plan creator rosters for a brief, run budget what-ifs, forecast and score creators. "
        f"Send the API key in the `{API_KEY_HEADER}` header.",
        docs_url=None,  # served below from local assets (FastAPI's own page loads Swagger UI from a CDN)
        redoc_url=None,
    )
    app.state.server = server

    def require_key(key: Annotated[str | None, Depends(_KEY_HEADER)]) -> None:
        if key is None or not secrets.compare_digest(key.encode(), server.api_key.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong API key",
                                headers={"WWW-Authenticate": "APIKey"})  # fmt: skip

    auth = [Depends(require_key)]

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        """Refuse bodies over the limit from their Content-Length, before reading them."""
        if request.method in ("POST", "PUT", "PATCH"):
            cap = server.max_upload_bytes if request.url.path == "/api/score" else server.max_json_bytes
            length = request.headers.get("content-length")
            if length is None and request.headers.get("transfer-encoding", "").lower() == "chunked":
                return _error(411, "the request has no Content-Length", "send the body with its length, not chunked")
            if length is not None and (not length.isdigit() or int(length) > cap):
                return _error(413, f"the body is {length} bytes; this endpoint takes at most {cap:,}",
                              "send less; score large candidate bases with `ie score` instead")  # fmt: skip
        return await call_next(request)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        """Headers that keep the page and the API out of other sites' frames, scripts and content sniffing."""
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Content-Security-Policy", _CSP)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        fixes = {401: _KEY_FIX, 404: f"no such endpoint: {request.url.path} (the schema is at /docs)",
                 405: f"{request.method} is not allowed on {request.url.path} (the schema is at /docs)",
                 503: "start `ie serve` with a workspace database (--db sqlite:///workspace.db)"}  # fmt: skip
        fix = fixes.get(exc.status_code, "see the API schema at /docs")
        return JSONResponse({"error": str(exc.detail), "fix": fix}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = describe_problems(exc.errors(), _BODIES.get(request.url.path), skip=("body",))
        return _error(422, "the request is not valid: " + "; ".join(problems[:5]),
                      "fix the fields named (the schema is at /docs)", problems=problems)  # fmt: skip

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, exc.message, exc.fix or "")

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return _error(409, exc.message, exc.fix or "")

    @app.exception_handler(EngineError)
    async def engine_error(_: Request, exc: EngineError) -> JSONResponse:
        reasons = list(getattr(exc, "reasons", []) or [])
        return _error(422, str(getattr(exc, "message", exc)), getattr(exc, "fix", "") or "", reasons=reasons)

    # -- pages ------------------------------------------------------------------------------------------
    static = resources.files("influencer_engine.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.mount("/docs-assets", StaticFiles(directory=_swagger_assets()), name="docs-assets")

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> HTMLResponse:
        """The API's try-it page (Swagger UI from this app's own assets; the schema holds no data)."""
        return HTMLResponse((static / "docs.html").read_text(encoding="utf-8"))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        """plotly.js as shipped inside the plotly Python package: the page needs no CDN."""
        import plotly

        return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
                            media_type="text/javascript")  # fmt: skip

    # -- API --------------------------------------------------------------------------------------------
    def with_shortlist(brief: Brief, shortlist_id: int | None) -> Brief:
        """``brief`` with the shortlist's pinned creators included and its excluded ones excluded."""
        if shortlist_id is None:
            return brief
        items = need_workspace().get_shortlist(shortlist_id)["items"]
        pinned = [i["creator_id"] for i in items if i["state"] == "pinned"]
        out = [i["creator_id"] for i in items if i["state"] == "excluded"]
        c = brief.constraints
        include = tuple(dict.fromkeys([*c.include, *pinned]))
        exclude = tuple(dict.fromkeys([x for x in [*c.exclude, *out] if x not in include]))
        constraints = c.model_validate({**c.model_dump(), "include": include, "exclude": exclude})
        return brief.model_copy(update={"constraints": constraints})

    def make_plan_body(req: PlanRequest) -> dict[str, Any]:
        from influencer_engine.planner.plan import plan as make_plan

        t0 = time.perf_counter()
        brief = req.brief.with_scenario(req.scenario) if req.scenario is not None else req.brief
        brief = with_shortlist(brief, req.shortlist_id)
        cfg = with_proof(server.planner, "full") if req.prove else server.planner
        with server.slot():
            result = make_plan(server.prepared(brief), cfg, budget=brief.budget, reasons=req.reasons,
                               explain=server.explainer(brief))  # fmt: skip
        rows = _rows(result.roster)
        ids = [r["creator_id"] for r in rows]
        why = server.reason_details(brief)(ids, GOALS[brief.goal].kpi, req.reasons) if req.reasons and ids else []
        for i, r in enumerate(rows):  # the reasons as a list, strongest first
            if why:
                ranked = sorted(why[i], key=_strength, reverse=True)
                r["why"] = [{"text": x["text"], "effect": _clean(x["effect"]), "group": x["group"]} for x in ranked]
        return {"brief_id": brief.brief_id, "goal": brief.goal, "budget": brief.budget, "roster": rows,
                "totals": _clean(result.totals.json_dict()), "notes": result.notes,
                "include": list(brief.constraints.include), "exclude": list(brief.constraints.exclude),
                "seconds": time.perf_counter() - t0}  # fmt: skip

    def need_workspace() -> Workspace:
        if server.workspace is None:
            raise HTTPException(status_code=503, detail="this server keeps no workspace")
        return server.workspace

    def parse_brief(text: str | None) -> Brief | None:
        if not text:
            return None
        try:
            return Brief.model_validate_json(text)
        except ValidationError as exc:
            problems = describe_problems(exc, Brief)
            raise EngineError(
                "the brief is not valid: " + "; ".join(problems[:5]),
                fix="send the brief as JSON in the brief parameter, as POST /api/plan takes it",
            ) from exc

    @app.get("/health", tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness; no key needed."""
        return {"status": "ok", "version": __version__, "candidates": server.base.creators.height}

    @app.get("/api/model", tags=["service"], dependencies=auth)
    def model_info() -> dict[str, Any]:
        """The model's version, backtest metrics and training-data fingerprint, and the candidate base."""
        info: dict[str, Any] = _clean({**server.model_info(), "cache": dict(server.stats)})
        return info

    @app.get("/api/options", tags=["service"], dependencies=auth)
    def options() -> dict[str, Any]:
        """What the brief form offers: goals (with the KPI, cost figure and digits of each), KPIs, cost figures,
        platforms, formats, tiers, risk levels, categories and audience bands. The page builds itself from this."""
        from influencer_engine import registry
        from influencer_engine.schema import AGE_BANDS, AUDIENCE_COUNTRIES, CATEGORIES, GENDERS

        return {**registry.options(), "categories": list(CATEGORIES), "age": list(AGE_BANDS),
                "gender": list(GENDERS), "countries": list(AUDIENCE_COUNTRIES), "flags": FLAGS,
                "example_brief": example_brief()}  # fmt: skip

    @app.post("/api/plan", tags=["planner"], dependencies=auth, response_class=JSONResponse)
    def plan(req: PlanRequest) -> JSONResponse:
        """A roster for the brief: each creator's forecasts with P10-P90, cost per result and reasons; totals."""
        # a JSONResponse as is: the payload is JSON-safe already (_clean), so FastAPI's encoder pass is skipped
        return JSONResponse(make_plan_body(req))

    # -- search and profiles ----------------------------------------------------------------------------
    @app.get("/api/creators", tags=["creators"], dependencies=auth)
    def creators(
        q: Annotated[str | None, Query(max_length=200, description="Part of the handle or id.")] = None,
        platform: Annotated[list[str] | None, Query(description="Any of these platforms.")] = None,
        tier: Annotated[list[str] | None, Query(description="Any of these tiers.")] = None,
        country: Annotated[list[str] | None, Query(description="The creator's country, any of these.")] = None,
        category: Annotated[list[str] | None, Query(description="Any of these among the creator's niches.")] = None,
        followers_min: Annotated[float | None, Query(ge=0)] = None,
        followers_max: Annotated[float | None, Query(ge=0)] = None,
        er_min: Annotated[
            float | None, Query(ge=0, description="Engagement rate at least (a share: 0.02 = 2%).")
        ] = None,
        er_max: Annotated[float | None, Query(ge=0)] = None,
        price_min: Annotated[
            float | None, Query(ge=0, description="Price at least ($; the brief's when given).")
        ] = None,
        price_max: Annotated[float | None, Query(ge=0)] = None,
        flag: Annotated[list[str] | None, Query(description=f"Has every one of: {', '.join(FLAGS)}.")] = None,
        without_flag: Annotated[list[str] | None, Query(description="Has none of these flags.")] = None,
        shortlist_id: Annotated[int | None, Query(description="Only the creators on this shortlist.")] = None,
        brief: Annotated[
            str | None,
            Query(
                max_length=20_000,
                description="A brief as JSON: adds its forecasts, "
                "cost figures, price and audience fit to each row, to filter and sort by.",
            ),
        ] = None,
        sort: Annotated[str, Query(description="Column to sort by (the response lists them).")] = "followers",
        order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=200)] = 25,
    ) -> JSONResponse:
        """Search the candidate base: filters, sorting by any column (forecast and cost figures for a brief), pages."""
        t0 = time.perf_counter()
        unknown = sorted({f for f in (flag or []) + (without_flag or []) if f not in FLAGS})
        if unknown:
            return _error(422, f"unknown flag(s) {', '.join(unknown)}", f"use some of {', '.join(FLAGS)}")
        ids: tuple[str, ...] = ()
        if shortlist_id is not None:
            ids = tuple(i["creator_id"] for i in need_workspace().get_shortlist(shortlist_id)["items"]) or ("",)
        b = parse_brief(brief)
        query = SearchQuery(q=q, platforms=tuple(platform or ()), tiers=tuple(tier or ()),
                            countries=tuple(country or ()), categories=tuple(category or ()),
                            followers_min=followers_min, followers_max=followers_max, er_min=er_min, er_max=er_max,
                            price_min=price_min, price_max=price_max, flags=tuple(flag or ()),
                            without_flags=tuple(without_flag or ()), ids=ids, sort=sort, desc=order == "desc",
                            offset=offset, limit=limit)  # fmt: skip
        if b is not None:
            with server.slot():
                frame = server.directory_for(b)
        else:
            frame = server.directory_for(None)
        found = server.directory.search(frame, query)
        # the rows are JSON-safe already (Directory.search): no second pass over them
        body = {"total": found.total, "offset": offset, "limit": limit, "sort": sort, "order": order,
                "sorts": list(found.sorts), "rows": found.rows, "brief_id": b.brief_id if b else None,
                "seconds": time.perf_counter() - t0}  # fmt: skip
        return JSONResponse(body)

    @app.get("/api/creators/{creator_id}", tags=["creators"], dependencies=auth)
    def creator_profile(
        creator_id: str,
        brief: Annotated[
            str | None,
            Query(
                max_length=20_000,
                description="A brief as JSON: adds the forecasts for it, with bands and the top reasons.",
            ),
        ] = None,
        history: Annotated[int, Query(ge=0, le=1000, description="Most recent posts returned.")] = 120,
    ) -> JSONResponse:
        """One creator: identity and link, flags with reasons, prices, audience, post history, forecasts."""
        b = parse_brief(brief)
        forecast = None
        if b is not None:
            with server.slot():
                forecast = server.forecast(b)
        prof = server.directory.profile(server.base, creator_id, forecast=forecast, brief=b, history=history)
        if prof is None:
            rejected = server.base.rejects.filter(pl.col("key") == creator_id)
            note = f" (rejected: {rejected['reason'][0]})" if rejected.height else ""
            return _error(404, f"creator {creator_id} is not in the candidate base{note}",
                          "search for creators with GET /api/creators")  # fmt: skip
        if server.workspace is not None:
            prof["shortlists"] = [
                {"id": s["id"], "name": s["name"], "state": i["state"], "note": i["note"]}
                for s in server.workspace.shortlists_with(creator_id)
                for i in s["items"]
            ]
        return JSONResponse(_clean(prof))

    # -- the workspace ----------------------------------------------------------------------------------
    @app.get("/api/briefs", tags=["workspace"], dependencies=auth)
    def list_briefs() -> list[dict[str, Any]]:
        """Saved briefs, newest first."""
        return need_workspace().list_briefs()

    @app.post("/api/briefs", tags=["workspace"], dependencies=auth, status_code=201)
    def save_brief(req: NamedBrief) -> dict[str, Any]:
        """Save a brief under a name (a brief of that name is replaced)."""
        return need_workspace().save_brief(req.name, req.brief.model_dump(mode="json"))

    @app.get("/api/briefs/{brief_id}", tags=["workspace"], dependencies=auth)
    def get_brief(brief_id: int) -> dict[str, Any]:
        return need_workspace().get_brief(brief_id)

    @app.delete("/api/briefs/{brief_id}", tags=["workspace"], dependencies=auth, status_code=204)
    def delete_brief(brief_id: int) -> Response:
        need_workspace().delete_brief(brief_id)
        return Response(status_code=204)

    @app.get("/api/shortlists", tags=["workspace"], dependencies=auth)
    def list_shortlists() -> list[dict[str, Any]]:
        """Shortlists by name, with how many creators each has shortlisted, pinned and excluded."""
        return need_workspace().list_shortlists()

    @app.post("/api/shortlists", tags=["workspace"], dependencies=auth, status_code=201)
    def create_shortlist(req: ShortlistIn) -> dict[str, Any]:
        """A new shortlist (names are unique), optionally with its first creators."""
        check_ids([i.creator_id for i in req.items])
        return named(need_workspace().create_shortlist(req.name, req.description, [i.model_dump() for i in req.items]))

    @app.get("/api/shortlists/{shortlist_id}", tags=["workspace"], dependencies=auth)
    def get_shortlist(shortlist_id: int) -> dict[str, Any]:
        """A shortlist with its creators (state and note each, and their handle and link)."""
        return named(need_workspace().get_shortlist(shortlist_id))

    @app.patch("/api/shortlists/{shortlist_id}", tags=["workspace"], dependencies=auth)
    def update_shortlist(shortlist_id: int, req: ShortlistPatch) -> dict[str, Any]:
        return named(need_workspace().update_shortlist(shortlist_id, name=req.name, description=req.description))

    @app.delete("/api/shortlists/{shortlist_id}", tags=["workspace"], dependencies=auth, status_code=204)
    def delete_shortlist(shortlist_id: int) -> Response:
        need_workspace().delete_shortlist(shortlist_id)
        return Response(status_code=204)

    @app.put("/api/shortlists/{shortlist_id}/items/{creator_id}", tags=["workspace"], dependencies=auth)
    def put_item(shortlist_id: int, creator_id: str, req: ItemPatch) -> dict[str, Any]:
        """Add a creator to the shortlist, or set its state (shortlisted, pinned, excluded) or its note."""
        check_ids([creator_id])
        return named(need_workspace().put_item(shortlist_id, creator_id, state=req.state, note=req.note))

    @app.delete("/api/shortlists/{shortlist_id}/items/{creator_id}", tags=["workspace"], dependencies=auth)
    def remove_item(shortlist_id: int, creator_id: str) -> dict[str, Any]:
        return named(need_workspace().remove_item(shortlist_id, creator_id))

    @app.get("/api/plans", tags=["workspace"], dependencies=auth)
    def list_plans() -> list[dict[str, Any]]:
        """Saved plans, newest first (without their rosters)."""
        return need_workspace().list_plans()

    @app.post("/api/plans", tags=["workspace"], dependencies=auth, status_code=201)
    def save_plan(req: SavePlanRequest) -> dict[str, Any]:
        """Plan the brief (as POST /api/plan) and keep the result under a name."""
        ws = need_workspace()
        body = make_plan_body(req)
        brief = with_shortlist(req.brief.with_scenario(req.scenario) if req.scenario else req.brief, req.shortlist_id)
        return ws.create_plan(req.name, brief.model_dump(mode="json"), body["totals"], body["roster"],
                              note=req.note, model=server.model_ref)  # fmt: skip

    @app.get("/api/plans/{plan_id}", tags=["workspace"], dependencies=auth)
    def get_plan(plan_id: int) -> dict[str, Any]:
        return need_workspace().get_plan(plan_id)

    @app.patch("/api/plans/{plan_id}", tags=["workspace"], dependencies=auth)
    def update_plan(plan_id: int, req: PlanPatch) -> dict[str, Any]:
        return need_workspace().update_plan(plan_id, name=req.name, note=req.note)

    @app.delete("/api/plans/{plan_id}", tags=["workspace"], dependencies=auth, status_code=204)
    def delete_plan(plan_id: int) -> Response:
        need_workspace().delete_plan(plan_id)
        return Response(status_code=204)

    def named(shortlist: dict[str, Any]) -> dict[str, Any]:
        """A shortlist whose items carry each creator's handle, profile link, platform, tier and country."""
        ident = server.directory.identities([i["creator_id"] for i in shortlist.get("items", [])])
        for i in shortlist.get("items", []):
            i.update(ident.get(i["creator_id"], dict.fromkeys(("handle", "url", "platform", "tier", "country"))))
        return shortlist

    def check_ids(ids: list[str]) -> None:
        known = set(server.directory.frame.filter(pl.col("creator_id").is_in(ids))["creator_id"].to_list())
        missing = [i for i in ids if i not in known]
        if missing:
            raise NotFound(f"creator(s) {', '.join(missing[:5])} are not in the candidate base.",
                           fix="pick creators from GET /api/creators")  # fmt: skip

    @app.post("/api/whatif", tags=["planner"], dependencies=auth)
    def whatif(req: WhatIfRequest) -> dict[str, Any]:
        """The goal against budget (expected, P10-P90, marginal return per +$1,000) and the mix, per scenario."""
        import numpy as np

        from influencer_engine.planner.whatif import whatif as run_whatif

        b = req.budgets
        budgets = sorted({round(float(v), 2) for v in np.linspace(b.start, b.stop, b.steps)})
        scenarios = tuple(req.scenarios) if req.scenarios is not None else None
        with server.slot():
            res = run_whatif(server.forecast(req.brief), req.brief, server.planner, budgets, scenarios=scenarios)
        return {"goal": req.brief.goal, "frontier": _rows(res.table)}

    @app.post("/api/forecast", tags=["forecast"], dependencies=auth)
    def forecast(req: ForecastRequest) -> Any:
        """One creator for the brief: every KPI with P10/P50/P90, cost figures, and the reasons for the goal."""
        from influencer_engine.forecast import forecast_base, forecast_creator
        from influencer_engine.registry import FORMATS

        if req.format is not None and req.format not in FORMATS:
            return _error(422, f"format '{req.format}' is unknown", f"use one of {', '.join(FORMATS)}")
        known = server.base.creators.filter(pl.col("creator_id") == req.creator_id).height > 0
        if not known:
            rejected = server.base.rejects.filter(pl.col("key") == req.creator_id)
            note = f" (rejected: {rejected['reason'][0]})" if rejected.height else ""
            return _error(404, f"creator {req.creator_id} is not in the candidate base{note}",
                          "check the id (GET /api/model gives the base's size)")  # fmt: skip
        with server.slot():
            if req.format is None:
                result = server.forecast(req.brief)
            else:
                one = server.base.subset([req.creator_id])
                result = forecast_base(server.predictor, one, req.brief, server.tiers, fmt=req.format)
            return forecast_creator(result, req.creator_id).json_dict()

    @app.post("/api/score", tags=["forecast"], dependencies=auth)
    def score(
        brief: Annotated[str, Form(description="The brief as JSON.")],
        creators: Annotated[UploadFile, File(description="Creators table, CSV or Parquet.")],
        posts: Annotated[UploadFile | None, File(description="Their posts, CSV or Parquet (optional).")] = None,
    ) -> Any:
        """Score an uploaded candidate file (bounded size; score large bases with `ie score`)."""
        from influencer_engine.scoring import read_scores, score_candidates

        try:
            b = Brief.model_validate_json(brief)
        except ValidationError as exc:
            problems = describe_problems(exc, Brief)
            return _error(422, "the brief is not valid: " + "; ".join(problems[:5]), "fix the fields named",
                          problems=problems)  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="ie-upload-") as tmp:
            folder = Path(tmp) / "candidates"
            folder.mkdir()
            for name, up in (("creators", creators), ("posts", posts)):
                if up is None:
                    continue
                suffix = Path(up.filename or "").suffix.lower()
                if suffix not in (".csv", ".parquet", ".tsv"):
                    return _error(415, f"{name} file '{up.filename}' is neither CSV nor Parquet",
                                  "upload a .csv or .parquet file")  # fmt: skip
                (folder / f"{name}{suffix}").write_bytes(up.file.read())
            from influencer_engine.io import collect_table, scan_table

            names = {str(f): (up.filename or f.name) for f, up in
                     ((next(folder.glob(f"{n}.*"), None), u) for n, u in (("creators", creators), ("posts", posts)))
                     if f is not None and up is not None}  # fmt: skip

            def scrub(text: str) -> str:
                """Server paths out of a message: the uploaded file's own name instead."""
                for path, name in names.items():
                    text = text.replace(path, f"'{name}'")
                return text.replace(str(tmp), "the upload")

            path = next(folder.glob("creators.*"))
            try:
                n = int(collect_table(scan_table(path).select(pl.len()), path).item())
                if n > server.max_upload_creators:
                    return _error(
                        413,
                        f"the file has {n:,} creators; uploads take at most {server.max_upload_creators:,}",
                        "score large candidate bases with `ie score`",
                    )
                out = Path(tmp) / "out"
                with server.slot():
                    r = score_candidates(server.predictor, [folder], b, server.tiers, out, chunk_creators=max(n, 1))
            except EngineError as exc:
                return _error(422, scrub(exc.message), scrub(exc.fix or "upload a valid CSV or Parquet file"))
            any_rejects = r.rejected > 0 or (r.manifest is not None and r.manifest.posts.rows_rejected > 0)
            rejects = pl.read_parquet(out / "rejects") if any_rejects else pl.DataFrame()
            body = {"rows_in": r.rows_in, "scored": r.scored, "rejected": r.rejected,
                    "posts": r.manifest.posts.model_dump() if r.manifest else None,
                    "scores": _rows(read_scores(out)) if r.scored else [], "rejects": _rows(rejects)}  # fmt: skip
            return body

    return app
