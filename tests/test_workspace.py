"""The planners' workspace: the store on SQLite and PostgreSQL, its migrations, and the search, profile, shortlist
and saved-plan endpoints."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

from fastapi.testclient import TestClient

from influencer_engine.brief import load_brief
from influencer_engine.serve import Server, create_app, load_server
from influencer_engine.workspace import Conflict, NotFound, Workspace, open_workspace
from influencer_engine.workspace.store import schema_matches_models

BRIEF = Path(__file__).resolve().parents[1] / "configs" / "briefs" / "fitness_january.toml"
KEY = "test-key-0123456789abcdef"
HEADERS = {"X-API-Key": KEY}
PG_ENV = "IE_TEST_POSTGRES_URL"


def _pg_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"no PostgreSQL for the workspace tests: set {PG_ENV} (.ci/run starts one with .ci/postgres)")
    return url


def _fresh_pg(url: str) -> str:
    """An empty schema on the test server (tables of earlier tests dropped)."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    except Exception as exc:  # set but not reachable: .ci/run said it started it, so that is a failure
        pytest.fail(f"{PG_ENV} is set but PostgreSQL does not answer: {exc}")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    url = f"sqlite:///{tmp_path / 'ws.db'}" if request.param == "sqlite" else _fresh_pg(_pg_url())
    w = open_workspace(url)
    yield w
    w.close()


def test_migrations_build_exactly_the_models_schema(ws: Workspace) -> None:
    assert ws.revision() == "0001"
    assert schema_matches_models(ws) == []
    # opening again is a no-op migration, and keeps what is there
    ws.create_shortlist("kept")
    again = open_workspace(ws.url)
    assert [s["name"] for s in again.list_shortlists()] == ["kept"]
    again.close()


def test_shortlists_items_and_their_rules(ws: Workspace) -> None:
    s = ws.create_shortlist("fitness Q1", "January push", [{"creator_id": "c1", "note": "good fit"}])
    assert s["counts"] == {"shortlisted": 1, "pinned": 0, "excluded": 0}
    with pytest.raises(Conflict, match="named 'fitness Q1' exists"):
        ws.create_shortlist("fitness Q1")
    s = ws.put_item(s["id"], "c2", state="pinned", note="must have")
    s = ws.put_item(s["id"], "c3", state="excluded")
    s = ws.put_item(s["id"], "c1", note="changed")  # the state stays
    items = {i["creator_id"]: i for i in s["items"]}
    assert items["c1"]["note"] == "changed" and items["c1"]["state"] == "shortlisted"
    assert items["c2"]["state"] == "pinned" and items["c3"]["state"] == "excluded"
    with pytest.raises(Conflict, match="state 'maybe' is unknown"):
        ws.put_item(s["id"], "c4", state="maybe")
    assert ws.shortlists_with("c2") == [{"id": s["id"], "name": "fitness Q1", "items": [items["c2"]]}]
    other = ws.create_shortlist("other")
    with pytest.raises(Conflict):
        ws.update_shortlist(other["id"], name="fitness Q1")
    assert ws.update_shortlist(other["id"], description="d")["description"] == "d"
    ws.remove_item(s["id"], "c3")
    with pytest.raises(NotFound):
        ws.remove_item(s["id"], "c3")
    ws.delete_shortlist(s["id"])  # its items go with it
    with pytest.raises(NotFound, match=f"no shortlist with id {s['id']}"):
        ws.get_shortlist(s["id"])
    assert ws.shortlists_with("c2") == []


def test_concurrent_writers_lose_nothing(ws: Workspace) -> None:
    s = ws.create_shortlist("shared")
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            for j in range(5):
                ws.put_item(s["id"], f"c{i}_{j}", note=f"by planner {i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(ws.get_shortlist(s["id"])["items"]) == 30


def test_briefs_and_plans(ws: Workspace) -> None:
    b = ws.save_brief("jan", {"goal": "reach", "budget": 100.0})
    assert ws.save_brief("jan", {"goal": "clicks", "budget": 5.0})["id"] == b["id"]  # replaced, not duplicated
    assert [x["brief"]["goal"] for x in ws.list_briefs()] == ["clicks"]
    p = ws.create_plan("p1", {"goal": "reach", "budget": 10.0}, {"spend": 9.5}, [{"creator_id": "c1"}], note="n")
    listed = ws.list_plans()
    assert listed[0]["creators"] == 1 and "roster" not in listed[0] and listed[0]["spend"] == 9.5
    assert ws.update_plan(p["id"], note="approved")["note"] == "approved"
    assert ws.get_plan(p["id"])["roster"] == [{"creator_id": "c1"}]
    ws.delete_plan(p["id"])
    ws.delete_brief(b["id"])
    assert ws.list_plans() == [] and ws.list_briefs() == []


def test_a_bad_database_url_says_how_to_fix_it(tmp_path: Path) -> None:
    from influencer_engine.errors import InputError

    with pytest.raises(InputError, match="is not a database URL"):
        open_workspace("not a url")
    with pytest.raises(InputError, match="cannot open the workspace database") as exc:
        open_workspace("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(exc.value)


# ---------------------------------------------------------------------------------------------- the API
@pytest.fixture(scope="module")
def db_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workspace") / "workspace.db"


def _server(trained: dict[str, Path], db: Path | None) -> Server:
    from influencer_engine.training.bundle import load_bundle

    return load_server(load_bundle(trained["bundle"]), trained["world"], model_ref=str(trained["bundle"]),
                       api_key=KEY, db=f"sqlite:///{db}" if db else None)  # fmt: skip


@pytest.fixture(scope="module")
def client(trained: dict[str, Path], db_file: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_server(trained, db_file))) as c:
        yield c


def brief_json(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = load_brief(BRIEF).model_dump(mode="json")
    data["scenarios"] = []
    data.update(changes)
    return data


def _brief_param(**changes: Any) -> str:
    import json

    return json.dumps(brief_json(**changes))


def test_search_filters_sorts_and_pages(client: TestClient) -> None:
    params: dict[str, Any] = {"platform": ["instagram", "tiktok"], "tier": ["micro", "mid"], "er_min": 0.01,
                              "sort": "engagement_rate", "order": "desc", "limit": 50}  # fmt: skip
    r = client.get("/api/creators", headers=HEADERS, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    rows = body["rows"]
    assert body["total"] >= len(rows) > 0 and len(rows) <= 50
    assert all(x["platform"] in ("instagram", "tiktok") and x["tier"] in ("micro", "mid") for x in rows)
    assert all(x["engagement_rate"] >= 0.01 for x in rows)
    ers = [x["engagement_rate"] for x in rows]
    assert ers == sorted(ers, reverse=True)
    assert all(x["url"].startswith("https://www.") and x["handle"].lstrip("@") in x["url"] for x in rows)
    # the next page continues the order without overlap
    nxt = client.get("/api/creators", headers=HEADERS, params={**params, "offset": 50}).json()["rows"]
    assert not {x["creator_id"] for x in nxt} & {x["creator_id"] for x in rows}
    if nxt:
        assert nxt[0]["engagement_rate"] <= ers[-1]
    # a handle fragment finds that creator
    handle = rows[0]["handle"]
    hits = client.get("/api/creators", headers=HEADERS, params={"q": handle.upper()}).json()["rows"]
    assert rows[0]["creator_id"] in {x["creator_id"] for x in hits}
    # flags filter both ways
    flagged = client.get("/api/creators", headers=HEADERS, params={"flag": "low_credibility", "limit": 200}).json()
    assert flagged["total"] > 0 and all("low_credibility" in x["flags"] for x in flagged["rows"])
    clean = client.get("/api/creators", headers=HEADERS, params={"without_flag": "low_credibility"}).json()
    assert clean["total"] + flagged["total"] == client.get("/api/creators", headers=HEADERS).json()["total"]


def test_search_for_a_brief_sorts_by_its_forecasts(client: TestClient) -> None:
    params = {"brief": _brief_param(), "sort": "cpa", "order": "asc", "category": "fitness", "price_max": 2000}
    r = client.get("/api/creators", headers=HEADERS, params=params)
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    cpas = [x["cpa"] for x in rows if x["cpa"] is not None]
    assert cpas == sorted(cpas) and len(cpas) > 0
    assert all("fitness" in x["categories"].split("|") and x["price"] <= 2000 for x in rows)
    assert all(x["conversions_p10"] <= x["conversions"] <= x["conversions_p90"] for x in rows)
    # forecast columns without a brief: a message that says what to send
    r = client.get("/api/creators", headers=HEADERS, params={"sort": "cpa"})
    assert r.status_code == 422 and "need a brief" in r.json()["error"]
    r = client.get("/api/creators", headers=HEADERS, params={"brief": "{bad"})
    assert r.status_code == 422 and "brief" in r.json()["error"] and r.json()["fix"]
    r = client.get("/api/creators", headers=HEADERS, params={"flag": "famous"})
    assert r.status_code == 422 and "famous" in r.json()["error"]


def test_profile_gives_identity_flags_prices_audience_history_and_forecasts(client: TestClient) -> None:
    row = client.get("/api/creators", headers=HEADERS, params={"sort": "followers", "limit": 1}).json()["rows"][0]
    cid = row["creator_id"]
    r = client.get(f"/api/creators/{cid}", headers=HEADERS, params={"brief": _brief_param()})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["creator"]["handle"] == row["handle"] and p["creator"]["url"] == row["url"]
    assert {f["flag"] for f in p["flags"]} == set(row["flags"]) and all(f["reason"] for f in p["flags"])
    assert p["audience"]["source"] in ("given", "assumed")
    ages = [v for v in p["audience"]["audience_age"].values() if v is not None]
    assert ages and abs(sum(ages) - 1) < 1e-3
    times = [x["posted_at"] for x in p["posts"]]
    assert times == sorted(times) and 0 < len(times) <= 120 and p["posts_total"] >= len(times)
    fc = p["forecast"]
    assert fc["creator"]["conversions_p10"] <= fc["creator"]["conversions"] <= fc["creator"]["conversions_p90"]
    assert fc["reasons"] and p["prices"]["brief"]["source"] in ("quoted", "estimated")
    r = client.get("/api/creators/nobody", headers=HEADERS)
    assert r.status_code == 404 and "not in the candidate base" in r.json()["error"]


def test_shortlist_pins_and_exclusions_shape_the_next_plan(client: TestClient) -> None:
    first = client.post("/api/plan", headers=HEADERS, json={"brief": brief_json()}).json()
    assert all(x["handle"] and x["url"] for x in first["roster"])
    in_roster = [x["creator_id"] for x in first["roster"]]
    outside = client.get("/api/creators", headers=HEADERS,
                         params={"brief": _brief_param(), "sort": "conversions", "tier": "micro", "limit": 60,
                                 "platform": brief_json()["platforms"] or None, "without_flag": "low_credibility",
                                 "category": "fitness"}).json()["rows"]  # fmt: skip
    pin = next(x["creator_id"] for x in outside if x["creator_id"] not in in_roster)
    out = in_roster[0]
    items = [{"creator_id": pin, "state": "pinned", "note": "client asked"}, {"creator_id": out, "state": "excluded"}]
    r = client.post("/api/shortlists", headers=HEADERS, json={"name": "api round trip", "items": items})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert client.post("/api/shortlists", headers=HEADERS, json={"name": "api round trip"}).status_code == 409
    got = client.get(f"/api/shortlists/{sid}", headers=HEADERS).json()
    assert {i["creator_id"]: i["state"] for i in got["items"]} == {pin: "pinned", out: "excluded"}
    assert all(i["handle"] for i in got["items"])
    r = client.post("/api/plan", headers=HEADERS, json={"brief": brief_json(), "shortlist_id": sid})
    assert r.status_code == 200, r.text
    ids = {x["creator_id"] for x in r.json()["roster"]}
    assert pin in ids and out not in ids and r.json()["include"] == [pin] and r.json()["exclude"] == [out]
    # the search can show just the shortlist
    mine = client.get("/api/creators", headers=HEADERS, params={"shortlist_id": sid}).json()
    assert mine["total"] == 2
    # a creator not in the base cannot be shortlisted
    r = client.put(f"/api/shortlists/{sid}/items/nobody", headers=HEADERS, json={})
    assert r.status_code == 404 and "not in the candidate base" in r.json()["error"]
    r = client.put(f"/api/shortlists/{sid}/items/{out}", headers=HEADERS, json={"state": "shortlisted"})
    assert r.status_code == 200 and r.json()["counts"] == {"shortlisted": 1, "pinned": 1, "excluded": 0}
    assert all(i["handle"] and i["platform"] for i in r.json()["items"])  # every answer names the creators
    profile = client.get(f"/api/creators/{pin}", headers=HEADERS).json()
    assert profile["shortlists"] == [{"id": sid, "name": "api round trip", "state": "pinned", "note": "client asked"}]


def test_saved_plans_and_briefs_survive_a_restart(client: TestClient, trained: dict[str, Path], db_file: Path) -> None:
    r = client.post("/api/plans", headers=HEADERS, json={"name": "January v1", "brief": brief_json(), "note": "draft"})
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["roster"] and saved["totals"]["spend"] > 0 and saved["model"]
    assert client.post("/api/briefs", headers=HEADERS, json={"name": "jan", "brief": brief_json()}).status_code == 201
    assert client.post("/api/shortlists", headers=HEADERS, json={"name": "kept"}).status_code == 201
    # a new server on the same database (as after `ie serve` restarts) has them all
    with TestClient(create_app(_server(trained, db_file))) as again:
        plans = again.get("/api/plans", headers=HEADERS).json()
        assert saved["id"] in [p["id"] for p in plans]
        got = again.get(f"/api/plans/{saved['id']}", headers=HEADERS).json()
        assert got["roster"] == saved["roster"] and got["note"] == "draft"
        assert "kept" in [s["name"] for s in again.get("/api/shortlists", headers=HEADERS).json()]
        assert "jan" in [b["name"] for b in again.get("/api/briefs", headers=HEADERS).json()]
        assert again.patch(f"/api/plans/{saved['id']}", headers=HEADERS, json={"name": "Jan final"}).status_code == 200
        assert again.delete(f"/api/plans/{saved['id']}", headers=HEADERS).status_code == 204
        assert again.get(f"/api/plans/{saved['id']}", headers=HEADERS).status_code == 404


def test_without_a_workspace_the_endpoints_say_how_to_get_one(trained: dict[str, Path]) -> None:
    with TestClient(create_app(_server(trained, None))) as c:
        r = c.get("/api/shortlists", headers=HEADERS)
        assert r.status_code == 503 and "--db" in r.json()["fix"]
        assert c.get("/api/creators", headers=HEADERS).status_code == 200  # search needs no workspace
        assert pl.DataFrame(c.get("/api/creators", headers=HEADERS).json()["rows"]).height == 25
