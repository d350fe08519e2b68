"""The workspace store: briefs, shortlists and saved plans in SQLite (default) or PostgreSQL.

``open_workspace(url)`` connects, brings the schema to the newest Alembic revision (``migrations/``) and returns a
``Workspace`` whose methods take and give plain JSON-ready dicts, one short transaction each, safe to call from the
server's request threads. Names of briefs and shortlists are unique (a second one of the same name is a
``Conflict``); a missing id is ``NotFound``. Each shortlist item says whether the creator is only shortlisted,
pinned (must be in the next plan) or excluded (must not be), with a note.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from influencer_engine.errors import EngineError, InputError
from influencer_engine.workspace.models import Base, BriefRow, PlanRow, ShortlistItemRow, ShortlistRow, now

__all__ = ["ITEM_STATES", "Conflict", "NotFound", "Workspace", "open_workspace"]

ITEM_STATES = ("shortlisted", "pinned", "excluded")


class NotFound(EngineError):
    """No brief, shortlist, item or plan with that id."""


class Conflict(EngineError):
    """A name already taken, or a change that breaks a rule of the workspace."""


def _iso(t: datetime) -> str:
    """ISO time in UTC (SQLite gives back naive times; they were written in UTC)."""
    return (t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)).isoformat()


def _brief(r: BriefRow) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "brief": r.body, "created_at": _iso(r.created_at),
            "updated_at": _iso(r.updated_at)}  # fmt: skip


def _item(r: ShortlistItemRow) -> dict[str, Any]:
    return {"creator_id": r.creator_id, "state": r.state, "note": r.note, "added_at": _iso(r.added_at),
            "updated_at": _iso(r.updated_at)}  # fmt: skip


def _shortlist(r: ShortlistRow, *, items: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": r.id, "name": r.name, "description": r.description, "created_at": _iso(r.created_at),
                           "updated_at": _iso(r.updated_at)}  # fmt: skip
    counts = {s: 0 for s in ITEM_STATES}
    for it in r.items:
        counts[it.state] = counts.get(it.state, 0) + 1
    out["counts"] = counts
    if items:
        out["items"] = [_item(i) for i in r.items]
    return out


def _plan(r: PlanRow, *, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": r.id, "name": r.name, "note": r.note, "model": r.model,
                           "created_at": _iso(r.created_at), "updated_at": _iso(r.updated_at),
                           "goal": r.brief.get("goal"), "budget": r.brief.get("budget"),
                           "creators": len(r.roster), "spend": r.totals.get("spend")}  # fmt: skip
    if full:
        out.update(brief=r.brief, totals=r.totals, roster=r.roster)
    return out


def migrations_dir() -> Path:
    return Path(str(resources.files("influencer_engine.workspace") / "migrations"))


def _alembic_config(connection: sa.Connection | None = None, url: str | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the database URL"


@dataclass
class Workspace:
    url: str
    engine: sa.Engine
    _reads: sessionmaker[Session]
    _writes: sessionmaker[Session]  # on SQLite, sessions whose transaction takes the write lock when it begins
    _extra: tuple[sa.Engine, ...] = ()
    # SQLite has one writer at a time: this process's writers queue here, in order, instead of polling the file lock
    # (its busy handler's growing sleeps gave a p95 of 1.3 s at 16 writers; other processes still wait on the lock)
    _write_gate: threading.Lock | None = None

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[Session]:
        gate = self._write_gate if write else None
        if gate is None:
            with (self._writes if write else self._reads).begin() as s:
                yield s
            return
        with gate, self._writes.begin() as s:
            yield s

    def revision(self) -> str | None:
        """The database's Alembic revision."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            rev: str | None = MigrationContext.configure(conn).get_current_revision()
            return rev

    def close(self) -> None:
        self.engine.dispose()
        for e in self._extra:
            e.dispose()

    # -- briefs ----------------------------------------------------------------------------------------------
    def list_briefs(self) -> list[dict[str, Any]]:
        with self._tx(write=False) as s:
            return [_brief(r) for r in s.scalars(sa.select(BriefRow).order_by(BriefRow.updated_at.desc()))]

    def save_brief(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create the brief ``name``, or replace the body of the one of that name."""
        with self._tx() as s:
            row = s.scalars(sa.select(BriefRow).where(BriefRow.name == name)).one_or_none()
            if row is None:
                row = BriefRow(name=name, body=body)
                s.add(row)
            else:
                row.body = body
            s.flush()
            return _brief(row)

    def get_brief(self, brief_id: int) -> dict[str, Any]:
        with self._tx(write=False) as s:
            return _brief(self._get(s, BriefRow, brief_id, "brief"))

    def delete_brief(self, brief_id: int) -> None:
        with self._tx() as s:
            s.delete(self._get(s, BriefRow, brief_id, "brief"))

    # -- shortlists ------------------------------------------------------------------------------------------
    def list_shortlists(self) -> list[dict[str, Any]]:
        with self._tx(write=False) as s:
            q = sa.select(ShortlistRow).options(selectinload(ShortlistRow.items)).order_by(ShortlistRow.name)
            return [_shortlist(r, items=False) for r in s.scalars(q)]

    def create_shortlist(self, name: str, description: str = "",
                         items: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
        with self._tx() as s:
            row = ShortlistRow(name=name, description=description)
            s.add(row)
            self._flush_unique(s, f"a shortlist named '{name}' exists", "choose another name or update that one")
            for it in items or []:
                self._put(s, row, **it)
            s.flush()
            s.refresh(row)
            return _shortlist(row)

    def get_shortlist(self, shortlist_id: int) -> dict[str, Any]:
        with self._tx(write=False) as s:
            return _shortlist(self._get(s, ShortlistRow, shortlist_id, "shortlist"))

    def update_shortlist(self, shortlist_id: int, *, name: str | None = None,
                         description: str | None = None) -> dict[str, Any]:  # fmt: skip
        with self._tx() as s:
            row = self._get(s, ShortlistRow, shortlist_id, "shortlist")
            if name is not None:
                row.name = name
            if description is not None:
                row.description = description
            self._flush_unique(s, f"a shortlist named '{name}' exists", "choose another name")
            return _shortlist(row)

    def delete_shortlist(self, shortlist_id: int) -> None:
        with self._tx() as s:
            s.delete(self._get(s, ShortlistRow, shortlist_id, "shortlist"))

    def shortlists_with(self, creator_id: str) -> list[dict[str, Any]]:
        """The shortlists ``creator_id`` is on, each with that one item."""
        with self._tx(write=False) as s:
            q = (sa.select(ShortlistRow, ShortlistItemRow).join(ShortlistItemRow)
                 .where(ShortlistItemRow.creator_id == creator_id).order_by(ShortlistRow.name))  # fmt: skip
            return [{"id": sl.id, "name": sl.name, "items": [_item(it)]} for sl, it in s.execute(q)]

    def put_item(self, shortlist_id: int, creator_id: str, *, state: str | None = None,
                 note: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Add ``creator_id`` to the shortlist, or change its state or note; gives the whole shortlist."""
        with self._tx() as s:
            row = self._get(s, ShortlistRow, shortlist_id, "shortlist")
            self._put(s, row, creator_id=creator_id, state=state, note=note)
            row.updated_at = now()  # the shortlist changed when an item did
            s.flush()
            return _shortlist(row)

    def remove_item(self, shortlist_id: int, creator_id: str) -> dict[str, Any]:
        with self._tx() as s:
            row = self._get(s, ShortlistRow, shortlist_id, "shortlist")
            hit = [i for i in row.items if i.creator_id == creator_id]
            if not hit:
                raise NotFound(f"creator {creator_id} is not on shortlist {shortlist_id}.",
                               fix="list the shortlist's items (GET /api/shortlists/{id})")  # fmt: skip
            row.items.remove(hit[0])
            row.updated_at = now()
            s.flush()
            return _shortlist(row)

    @staticmethod
    def _put(s: Session, row: ShortlistRow, *, creator_id: str, state: str | None = None,
             note: str | None = None) -> None:  # fmt: skip
        if state is not None and state not in ITEM_STATES:
            raise Conflict(f"state '{state}' is unknown.", fix=f"use one of {', '.join(ITEM_STATES)}")
        hit = next((i for i in row.items if i.creator_id == creator_id), None)
        if hit is None:
            row.items.append(ShortlistItemRow(creator_id=creator_id, state=state or "shortlisted", note=note or ""))
            return
        if state is not None:
            hit.state = state
        if note is not None:
            hit.note = note

    # -- plans -----------------------------------------------------------------------------------------------
    def list_plans(self) -> list[dict[str, Any]]:
        with self._tx(write=False) as s:
            return [_plan(r, full=False) for r in s.scalars(sa.select(PlanRow).order_by(PlanRow.id.desc()))]

    def create_plan(self, name: str, brief: dict[str, Any], totals: dict[str, Any], roster: list[dict[str, Any]],
                    *, note: str = "", model: str = "") -> dict[str, Any]:  # fmt: skip
        with self._tx() as s:
            row = PlanRow(name=name, brief=brief, totals=totals, roster=roster, note=note, model=model)
            s.add(row)
            s.flush()
            return _plan(row)

    def get_plan(self, plan_id: int) -> dict[str, Any]:
        with self._tx(write=False) as s:
            return _plan(self._get(s, PlanRow, plan_id, "plan"))

    def update_plan(self, plan_id: int, *, name: str | None = None, note: str | None = None) -> dict[str, Any]:
        with self._tx() as s:
            row = self._get(s, PlanRow, plan_id, "plan")
            if name is not None:
                row.name = name
            if note is not None:
                row.note = note
            s.flush()
            return _plan(row)

    def delete_plan(self, plan_id: int) -> None:
        with self._tx() as s:
            s.delete(self._get(s, PlanRow, plan_id, "plan"))

    # -- helpers ---------------------------------------------------------------------------------------------
    @staticmethod
    def _get(s: Session, model: type[Any], key: int, what: str) -> Any:
        row = s.get(model, key)
        if row is None:
            raise NotFound(f"no {what} with id {key}.", fix=f"list the {what}s (GET /api/{what}s) for their ids")
        return row

    @staticmethod
    def _flush_unique(s: Session, message: str, fix: str) -> None:
        try:
            with s.begin_nested():
                s.flush()
        except IntegrityError as exc:
            raise Conflict(message + ".", fix=fix) from exc


def open_workspace(url: str) -> Workspace:
    """Connect to ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``) and migrate it to the newest schema."""
    from alembic import command

    try:
        parsed = sa.make_url(url)
    except Exception as exc:
        raise InputError(
            f"--db '{url}' is not a database URL.",
            fix="use sqlite:///workspace.db or postgresql+psycopg://user:password@host/dbname",
        ) from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True)
    except Exception as exc:  # a driver that is not installed
        raise InputError(f"cannot use the database {_safe_url(url)}: {exc}.",
                         fix="install its driver (PostgreSQL: pip install 'psycopg[binary]')") from exc  # fmt: skip
    writes = engine
    if parsed.get_backend_name() == "sqlite":
        # pysqlite starts transactions lazily, at the first write: two writers that both read first deadlock and
        # one gets "database is locked" at once. Each engine here begins its own transactions instead, deferred
        # for reads and IMMEDIATE (the write lock first, waiting up to busy_timeout) for writes; WAL lets reads go
        # on while one writes.
        writes = sa.create_engine(parsed, pool_pre_ping=True)
        for e, begin in ((engine, "BEGIN"), (writes, "BEGIN IMMEDIATE")):
            sa.event.listen(e, "connect", _sqlite_pragmas)
            sa.event.listen(e, "begin", lambda conn, sql=begin: conn.exec_driver_sql(sql))
    try:
        with writes.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")
    except OperationalError as exc:
        engine.dispose()
        writes.dispose()
        raise InputError(
            f"cannot open the workspace database {_safe_url(url)}: {str(exc.orig).strip()}.",
            fix="check the URL, that the server runs and that the user may create tables",
        ) from exc
    extra = (writes,) if writes is not engine else ()
    gate = threading.Lock() if parsed.get_backend_name() == "sqlite" else None
    return Workspace(url, engine, sessionmaker(engine, expire_on_commit=False),
                     sessionmaker(writes, expire_on_commit=False), extra, gate)  # fmt: skip


def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
    """Foreign keys enforced (deleting a shortlist deletes its items); a writer waits up to 10 s for another; WAL;
    the driver's own transaction handling off (the engine's "begin" event starts each transaction)."""
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL's usual setting: durable across a crash of the app, not a power cut
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def schema_matches_models(ws: Workspace) -> list[Any]:
    """Differences between the migrated database and ``models`` (empty when the migrations are complete)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with ws.engine.connect() as conn:
        diff: list[Any] = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        return diff
