"""The REST API through the ASGI client, a bounded load test on loopback, and the web page in Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from influencer_engine.brief import load_brief
from influencer_engine.serve import Server, create_app, load_server
from loopback import CHROMIUM_ARGS, chromium_path, uvicorn_thread

BRIEF = Path(__file__).resolve().parents[1] / "configs" / "briefs" / "fitness_january.toml"
KEY = "test-key-0123456789abcdef"
HEADERS = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def server(trained: dict[str, Path]) -> Server:
    from influencer_engine.training.bundle import load_bundle

    return load_server(load_bundle(trained["bundle"]), trained["world"], model_ref=str(trained["bundle"]), api_key=KEY)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[TestClient]:
    with TestClient(create_app(server)) as c:
        yield c


def brief_json(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = load_brief(BRIEF).model_dump(mode="json")
    data["scenarios"] = []
    for k, v in changes.items():
        data[k] = v
    return data


def test_health_needs_no_key_and_everything_else_does(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    for method, path in [("get", "/api/model"), ("post", "/api/plan"), ("post", "/api/whatif"),
                         ("post", "/api/forecast"), ("post", "/api/score"), ("get", "/api/options")]:  # fmt: skip
        for headers in ({}, {"X-API-Key": "wrong"}):
            r = client.request(method, path, headers=headers, json={} if method == "post" else None)
            assert r.status_code == 401, (path, headers, r.text)
            assert r.json()["error"] == "missing or wrong API key" and "X-API-Key" in r.json()["fix"]
    info = client.get("/api/model", headers=HEADERS).json()
    assert len(info["training_data_fingerprint"]) == 64 and info["candidates"]["creators"] == 2500
    assert set(info["metrics"]) == {"reach", "impressions", "engagements", "clicks", "conversions", "revenue"}


def test_openapi_schema_documents_the_endpoints_and_the_key(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/api/plan", "/api/whatif", "/api/forecast", "/api/score", "/api/model", "/health"} <= set(schema["paths"])
    schemes = schema["components"]["securitySchemes"]
    assert any(s.get("name") == "X-API-Key" and s.get("in") == "header" for s in schemes.values())


def test_plan_gives_the_cli_roster(client: TestClient, server: Server) -> None:
    from influencer_engine.planner.plan import plan, prepare

    r = client.post("/api/plan", headers=HEADERS, json={"brief": brief_json()})
    assert r.status_code == 200, r.text
    body = r.json()
    roster, totals = body["roster"], body["totals"]
    assert 5 <= len(roster) <= 40 and totals["spend"] <= totals["budget"] + 1e-6
    row = roster[0]
    assert row["conversions_p10"] <= row["conversions"] <= row["conversions_p90"] and row["reasons"]
    assert {"cpa", "cpm", "audience_fit", "price"} <= set(row)
    # the same roster as planning directly (the CLI's path) on the same inputs
    b = load_brief(BRIEF)
    direct = plan(prepare(server.forecast(b), b, server.planner), server.planner)
    assert {r["creator_id"] for r in roster} == set(direct.roster["creator_id"].to_list())
    # why budget is left travels with the totals, as the CLI and totals.json give it
    assert totals["budget_left"] == direct.totals.json_dict()["budget_left"]
    # a brief can ask the roster to spend most of its budget; the API answers with the floor met or a clear reason
    r = client.post("/api/plan", headers=HEADERS, json={"brief": brief_json(constraints={"min_spend_share": 0.2})})
    assert r.status_code == 200 and r.json()["totals"]["spend"] >= 0.2 * r.json()["totals"]["budget"] - 1e-6
    # a scenario is planned in place of the brief's own tiers
    r = client.post("/api/plan", headers=HEADERS,
                    json={"brief": brief_json(), "scenario": {"name": "nano", "tiers": ["nano"]}})  # fmt: skip
    assert r.status_code == 200 and {x["tier"] for x in r.json()["roster"]} == {"nano"}


def test_a_bounds_only_server_certifies_its_plans_and_proves_in_full_on_request(server: Server) -> None:
    """`ie serve` certifies with LP bounds by default (no multi-second MILP); the gap it reports is a true
    certificate, and `prove: true` gives the roster the full proof gives (the CLI's)."""
    import dataclasses

    from influencer_engine.serve.state import with_proof

    quick = dataclasses.replace(server, planner=with_proof(server.planner, "bounds"))
    assert server.planner.solver.proof == "full" and quick.planner.solver.proof == "bounds"
    with TestClient(create_app(quick)) as c:
        for budget in (8_000, 15_000, 50_000):
            body = {"brief": brief_json(budget=budget)}
            fast = c.post("/api/plan", headers=HEADERS, json=body).json()["totals"]["solver"]
            proven = c.post("/api/plan", headers=HEADERS, json={**body, "prove": True}).json()
            full = proven["totals"]["solver"]
            assert full["status"] == "optimal" and full["certified_gap"] <= server.planner.solver.mip_rel_gap + 1e-9
            assert fast["bound"] >= full["objective"] * (1 - 1e-9)  # the quick certificate covers the best roster
            assert fast["objective"] <= full["bound"] * (1 + 1e-9)
            assert fast["status"] == ("gap" if "proof" in fast["details"] else "optimal")


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ({"brief": brief_json(budget=-5)}, 422, "budget must be positive"),
        ({"brief": brief_json(brand_category="cars")}, 422, "brand_category 'cars' unknown"),
        ({"brief": brief_json(), "extra": 1}, 422, "unknown key 'extra'"),
        ({"brief": {**brief_json(), "start_date": "next week"}}, 422, "brief.start_date"),
        ({"brief": brief_json(budget=20, constraints={"roster_min": 30})}, 422, "budget $20 is short by at least"),
        ({}, 422, "'brief' is missing"),
    ],
)
def test_bad_plan_requests_get_a_4xx_a_planner_can_act_on(
    client: TestClient, payload: dict[str, Any], status: int, words: str
) -> None:
    r = client.post("/api/plan", headers=HEADERS, json=payload)
    assert r.status_code == status, r.text
    assert words in r.json()["error"] and r.json()["fix"]


def test_body_limits_and_malformed_json(client: TestClient, server: Server) -> None:
    big = "x" * (server.max_json_bytes + 1)
    r = client.post("/api/plan", headers={**HEADERS, "Content-Type": "application/json"}, content=big)
    assert r.status_code == 413 and "at most" in r.json()["error"]
    r = client.post("/api/plan", headers={**HEADERS, "Content-Type": "application/json"}, content="{not json")
    assert r.status_code == 422 and "JSON" in r.json()["error"]


def test_whatif_frontier_and_limits(client: TestClient) -> None:
    payload = {"brief": brief_json(), "budgets": {"start": 5000, "stop": 40000, "steps": 4},
               "scenarios": [{"name": "instagram", "platforms": ["instagram"]}]}  # fmt: skip
    r = client.post("/api/whatif", headers=HEADERS, json=payload)
    assert r.status_code == 200, r.text
    rows = pl.DataFrame(r.json()["frontier"])
    assert set(rows["scenario"]) == {"as briefed", "instagram"} and rows.height == 8
    base = rows.filter(pl.col("scenario") == "as briefed").sort("budget")
    assert (base["expected"].diff().drop_nulls() >= -1e-6).all()
    assert (base["p10"] <= base["expected"]).all() and (base["expected"] <= base["p90"]).all()
    assert {"spend_share_nano", "spend_share_tiktok", "marginal_per_1000"} <= set(rows.columns)
    payload["budgets"] = {"start": 5000, "stop": 40000, "steps": 400}
    r = client.post("/api/whatif", headers=HEADERS, json=payload)
    assert r.status_code == 422 and "budgets.steps" in r.json()["error"]


def test_forecast_one_creator_with_reasons(client: TestClient, server: Server) -> None:
    cid = server.base.creators["creator_id"][7]
    r = client.post("/api/forecast", headers=HEADERS, json={"creator_id": cid, "brief": brief_json()})
    assert r.status_code == 200, r.text
    body = r.json()
    c = body["creator"]
    assert c["creator_id"] == cid and c["conversions_p10"] <= c["conversions_p50"] <= c["conversions_p90"]
    assert body["goal_kpi"] == "conversions" and body["reasons"] and "text" in body["reasons"][0]
    r = client.post("/api/forecast", headers=HEADERS,
                    json={"creator_id": cid, "brief": brief_json(), "format": "reel"})  # fmt: skip
    assert r.status_code in (200, 422), r.text
    r = client.post("/api/forecast", headers=HEADERS, json={"creator_id": "nobody", "brief": brief_json()})
    assert r.status_code == 404 and "not in the candidate base" in r.json()["error"]
    r = client.post("/api/forecast", headers=HEADERS, json={"creator_id": cid, "brief": brief_json(), "format": "x"})
    assert r.status_code == 422 and "format 'x' is unknown" in r.json()["error"]


def test_score_upload_accounts_for_every_row(client: TestClient, server: Server, trained: dict[str, Path],
                                             tmp_path: Path) -> None:  # fmt: skip
    creators = pl.read_parquet(trained["world"] / "creators.parquet").head(200)
    creators = creators.with_columns(
        pl.when(pl.int_range(pl.len()) < 2).then(-1).otherwise(pl.col("followers")).alias("followers")
    )  # two bad rows
    posts = pl.read_parquet(trained["world"] / "posts.parquet").filter(
        pl.col("creator_id").is_in(creators["creator_id"].implode())
    )
    creators.write_csv(tmp_path / "creators.csv")
    posts.write_parquet(tmp_path / "posts.parquet")
    octet = "application/octet-stream"
    files = {"creators": ("creators.csv", (tmp_path / "creators.csv").read_bytes(), "text/csv"),
             "posts": ("posts.parquet", (tmp_path / "posts.parquet").read_bytes(), octet)}  # fmt: skip
    r = client.post("/api/score", headers=HEADERS, data={"brief": json.dumps(brief_json())}, files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rows_in"] == 200 == body["scored"] + body["rejected"] and body["rejected"] == 2
    by_table = {t: [x for x in body["rejects"] if x["table"] == t] for t in ("creators", "posts")}
    assert len(by_table["creators"]) == 2 and all("negative:followers" in x["reason"] for x in by_table["creators"])
    # the two rejected creators' posts are accounted for as rejected posts, with the reason
    p = body["posts"]
    assert p["rows_in"] == posts.height == p["rows_out"] + p["rows_rejected"] == p["rows_out"] + len(by_table["posts"])
    assert p["rows_rejected"] > 0 and {x["reason"] for x in by_table["posts"]} == {"unknown:creator_id"}
    assert {"conversions_p90", "cpa", "flags"} <= set(body["scores"][0])
    # wrong type, bad brief, too large
    bad = {"creators": ("creators.xlsx", b"abc", "application/octet-stream")}
    r = client.post("/api/score", headers=HEADERS, data={"brief": json.dumps(brief_json())}, files=bad)
    assert r.status_code == 415 and ".csv or .parquet" in r.json()["fix"]
    r = client.post("/api/score", headers=HEADERS, data={"brief": json.dumps(brief_json(budget=0))}, files=files)
    assert r.status_code == 422 and "budget must be positive" in r.json()["error"]
    old = server.max_upload_bytes
    server.max_upload_bytes = 1000
    try:
        r = client.post("/api/score", headers=HEADERS, data={"brief": json.dumps(brief_json())}, files=files)
        assert r.status_code == 413 and "ie score" in r.json()["fix"]
    finally:
        server.max_upload_bytes = old


def test_the_page_and_its_assets_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "brief-form" in page.text
    assert "https://" not in page.text  # every asset comes from this app
    js = client.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/app.css").status_code == 200


# ------------------------------------------------------------------------------------------- loopback
@pytest.fixture(scope="module")
def live(server: Server) -> Iterator[str]:
    """The app under uvicorn on a loopback port, in a thread of this process."""
    with uvicorn_thread(create_app(server)) as url:
        yield url


async def _load(base: str, requests: int, concurrency: int) -> tuple[list[float], list[str]]:
    import httpx

    budgets = [8_000 + 1_000 * (i % 25) for i in range(requests)]  # 25 different budgets: solves differ
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=60) as http:

        async def one(budget: int) -> None:
            async with sem:
                t0 = time.perf_counter()
                r = await http.post("/api/plan", json={"brief": brief_json(budget=budget)})
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")

        await asyncio.gather(*(one(b) for b in budgets))
    return latencies, errors


def test_load_500_plans_16_at_a_time_without_errors(live: str, capsys: pytest.CaptureFixture[str]) -> None:
    latencies, errors = asyncio.run(_load(live, 500, 16))
    assert not errors, errors[:3]
    assert len(latencies) == 500
    q = statistics.quantiles(latencies, n=100)
    with capsys.disabled():
        print(f"\nload test on loopback, 2,500 candidates: 500 plans, 16 at a time: "
              f"p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")  # fmt: skip


def test_a_long_whatif_does_not_hold_up_other_requests(live: str) -> None:
    import httpx

    body = {"brief": brief_json(), "budgets": {"start": 2000, "stop": 60000, "steps": 30}}
    done: dict[str, float] = {}

    def long_request() -> None:
        t0 = time.perf_counter()
        r = httpx.post(live + "/api/whatif", json=body, headers=HEADERS, timeout=300)
        done["whatif"] = time.perf_counter() - t0
        assert r.status_code == 200

    worker = threading.Thread(target=long_request)
    worker.start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    assert httpx.get(live + "/health", timeout=30).status_code == 200
    health = time.perf_counter() - t0
    r = httpx.get(live + "/api/model", headers=HEADERS, timeout=30)
    other = time.perf_counter() - t0
    worker.join()
    assert r.status_code == 200 and "whatif" in done
    assert health < 0.5 and other < done["whatif"], (health, other, done)


def test_the_page_plans_a_brief_in_chromium(live: str, tmp_path: Path) -> None:
    """Playwright drives Debian's Chromium: connect, fill a brief, plan, sort, export, what-if, compare."""
    sync_api = pytest.importorskip("playwright.sync_api")
    browser_path = chromium_path()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
        failed: list[str] = []
        page.on("requestfailed", lambda req: failed.append(req.url))
        console: list[str] = []  # the Content-Security-Policy must not block anything the page needs
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.goto(live + "/")
        page.fill("#api-key", KEY)
        page.click("#connect")
        page.wait_for_selector("#model-info.ok")
        page.fill("input[name=budget]", "30000")
        page.select_option("#category", "fitness")
        page.fill("input[name=start_date]", "2026-01-05")
        page.fill("input[name=roster_max]", "25")
        page.uncheck("#tiers input[value=mega]")
        page.click("#plan")
        page.wait_for_selector("#roster tbody tr", timeout=60_000)
        rows = page.locator("#roster tbody tr").count()
        assert 1 <= rows <= 25
        assert "mega" not in page.locator("#roster tbody").inner_text()
        page.click("#roster th[data-col=price]")  # sort by price, descending
        # "$1,200", with "estimated" under it for a price from the rate card
        prices = [float(t.split()[0].replace("$", "").replace(",", "")) for t in
                  page.locator("#roster tbody tr td:nth-child(2)").all_inner_texts()]  # fmt: skip
        assert prices == sorted(prices, reverse=True)
        with page.expect_download() as dl:
            page.click("#export")
        csv = pl.read_csv(dl.value.path())
        assert csv.height == rows and "conversions_p90" in csv.columns and "history_source" in csv.columns
        page.fill("#wf-steps", "5")
        page.click("#whatif")
        page.wait_for_selector("#frontier-chart .main-svg", timeout=120_000)
        page.wait_for_selector("#mix-tier-chart .main-svg")
        page.wait_for_selector("#mix-platform-chart .main-svg")
        # every chart says what it shows: a title and both axes' labels
        for chart in ("#frontier-chart", "#mix-tier-chart", "#mix-platform-chart"):
            assert page.locator(f"{chart} .gtitle").count() == 1, chart
            assert page.locator(f"{chart} .xtitle").count() == 1 and page.locator(f"{chart} .ytitle").count() == 1
        # 25 creators cannot spend the top budgets: the frontier names where the goal stops rising and why
        assert "as briefed: the goal stops rising at $" in page.locator("#wf-limits").inner_text()
        page.click("#compare")
        page.wait_for_selector("#comparison tbody tr:nth-child(3)", timeout=60_000)
        assert "Unique reach" in page.locator("#comparison").inner_text()
        # a roster capped at 3 creators cannot spend $30,000: the page says which constraint binds and what
        # loosening it would buy
        page.fill("input[name=roster_max]", "3")
        page.fill("input[name=roster_min]", "")
        page.click("#plan")
        page.wait_for_selector("#budget-left:not([hidden])", timeout=60_000)
        left = page.locator("#budget-left").inner_text()
        assert left.startswith("$") and "of the budget is left" in left, left
        assert "roster size <= 3 binds" in left, left
        assert "left" in page.locator("#totals").inner_text()
        shot = tmp_path / "planner.png"
        page.screenshot(path=str(shot), full_page=True)
        page.goto(live + "/docs")  # the API's try-it page, from local assets under the same policy
        page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        browser.close()
    assert not [m for m in console if "Content Security Policy" in m], console
    assert shot.stat().st_size > 20_000
    assert not failed, failed  # nothing was fetched from outside the app
    keep = os.environ.get("IE_SCREENSHOT_DIR")  # to look at it: IE_SCREENSHOT_DIR=some/folder pytest ...
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(keep) / "planner.png")


def test_the_page_offers_the_full_proof_where_the_lp_bounds_fall_short(server: Server) -> None:
    """A server that proves with LP bounds, asked for a gap they cannot prove (0.001%): the page says the gap is from
    LP bounds and offers "Prove the gap"; pressing it plans with the full proof, and the offer goes away."""
    import dataclasses

    from influencer_engine.serve.state import with_proof

    sync_api = pytest.importorskip("playwright.sync_api")
    browser_path = chromium_path()
    cfg = with_proof(server.planner, "bounds")
    cfg = cfg.model_copy(update={"solver": cfg.solver.model_copy(update={"mip_rel_gap": 1e-5})})
    quick = dataclasses.replace(server, planner=cfg)
    with uvicorn_thread(create_app(quick)) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(url + "/")
        page.fill("#api-key", KEY)
        page.click("#connect")
        page.wait_for_selector("#model-info.ok")
        page.click("#plan")
        page.wait_for_selector("#prove", timeout=60_000)
        assert "(LP bounds)" in page.locator("#totals").inner_text()
        page.click("#prove")
        page.wait_for_selector("#prove", state="detached", timeout=120_000)
        text = page.locator("#totals").inner_text()
        assert "(LP bounds)" not in text and "certified gap" in text
        browser.close()


def test_serve_command_refuses_a_bad_key_file(trained: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from influencer_engine.cli import main

    args = ["serve", "--data", str(trained["world"]), "--model", str(trained["bundle"])]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--api-key-file", str(tmp_path / "missing")])
    assert exc.value.code == 2 and "does not exist" in capsys.readouterr().err
    (tmp_path / "short").write_text("abc")
    with pytest.raises(SystemExit) as exc:
        main([*args, "--api-key-file", str(tmp_path / "short")])
    assert exc.value.code == 2 and "shorter than 16" in capsys.readouterr().err
