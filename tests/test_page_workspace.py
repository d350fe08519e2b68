"""The planners' workspace on the web page, in Chromium: search, profile, a shortlist made on the page that pins and
excludes creators in the next plan and survives a server restart, saved plans, and the layout at 1024 and 1440 px.

Screenshots are saved for review in tests/screenshots/ (or $IE_SCREENSHOT_DIR)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from influencer_engine.serve import create_app, load_server
from loopback import CHROMIUM_ARGS, chromium_path, free_port, uvicorn_thread

KEY = "test-key-0123456789abcdef"
SHOTS = Path(os.environ.get("IE_SCREENSHOT_DIR") or Path(__file__).parent / "screenshots")


@contextmanager
def serving(trained: dict[str, Path], db: Path, port: int) -> Iterator[str]:
    """`ie serve` as the CLI builds it (model, candidates, workspace database), under uvicorn on ``port``."""
    from influencer_engine.training.bundle import load_bundle

    server = load_server(load_bundle(trained["bundle"]), trained["world"], model_ref=str(trained["bundle"]),
                         api_key=KEY, db=f"sqlite:///{db}")  # fmt: skip
    try:
        with uvicorn_thread(create_app(server), port) as url:
            yield url
    finally:
        assert server.workspace is not None
        server.workspace.close()


def _numbers(texts: list[str]) -> list[float]:
    return [float(t.split()[0].replace(",", "").replace("$", "")) for t in texts]


def _no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    assert width <= inner, f"the page is {width} px wide in a {inner} px window"


def test_search_profile_shortlist_pin_exclude_replan_and_restart(trained: dict[str, Path], tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    browser_path = chromium_path()
    SHOTS.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "workspace.db"
    port = free_port()
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1024, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: d.accept())
        with serving(trained, db, port) as live:
            page.goto(live + "/")
            # before the key: a message, not an empty form that does nothing
            assert page.locator("#connect-first").is_visible() and page.locator("#plan").is_disabled()
            page.fill("#api-key", KEY)
            page.click("#connect")
            page.wait_for_selector("#model-info.ok")
            assert not page.locator("#connect-first").is_visible()
            # the form targets someone from the start: not every age, gender and country ticked
            for group in ("age", "countries"):
                boxes = page.locator(f"#{group} input")
                assert 0 < page.locator(f"#{group} input:checked").count() < boxes.count(), group

            # -- a brief saved from the page (loaded again after the restart below)
            page.fill("input[name=budget]", "42000")
            page.click("#save-brief")
            page.wait_for_selector("#brief-status.ok")

            # -- search: filters and a sort by the brief's goal forecast
            page.click("#tabs [data-view=search]")
            page.check("#s-tiers input[value=micro]")
            page.check("#s-tiers input[value=mid]")
            page.check("#s-platforms input[value=instagram]")
            page.check("#s-platforms input[value=tiktok]")
            page.select_option("#s-category", "fitness")
            page.click("#search")
            page.wait_for_selector("#results tbody tr[data-cid]", timeout=60_000)
            status = page.locator("#search-status").inner_text()
            assert "creators match" in status, status
            rows = page.locator("#results tbody tr[data-cid]")
            assert 1 <= rows.count() <= 25
            subs = page.locator("#results tbody tr .who .sub").all_inner_texts()
            parts = [s.split(" · ") for s in subs]
            assert all(x[0] in ("instagram", "tiktok") and x[1] in ("micro", "mid") for x in parts), subs
            goal = _numbers(page.locator("#results tbody tr td:nth-child(5)").all_inner_texts())
            assert goal == sorted(goal, reverse=True), goal
            _no_sideways_scroll(page)
            page.screenshot(path=str(SHOTS / "search-1024.png"), full_page=True)
            if page.locator("#next").is_enabled():
                page.click("#next")
                expect(page.locator("#page-info")).to_have_text(re.compile(r"^26–"), timeout=60_000)

            # -- a profile
            page.click("#results tbody tr:first-child a.open")
            page.wait_for_selector("#profile-chart .main-svg", timeout=60_000)
            page.wait_for_selector("#profile-forecast table")
            assert "Audience" in page.locator("#profile-body").inner_text()
            assert page.locator("#profile-forecast ul.why li").count() >= 1
            page.screenshot(path=str(SHOTS / "profile-1024.png"))
            page.click("#profile-close")
            assert page.locator("#profile").is_hidden()

            # -- a shortlist made on the page, with a pinned creator and a listed one
            page.click("#tabs [data-view=shortlists]")
            page.fill("#shortlist-name", "January fitness")
            page.click("#shortlist-create")
            page.wait_for_selector("#shortlist-status.ok")
            page.click("#tabs [data-view=search]")
            # pin a creator the plan would not pick on its own: the lowest goal forecast of the page
            last = rows.nth(rows.count() - 1)
            pinned = last.get_attribute("data-cid")
            last.locator("button[data-act=pinned]").click()
            page.wait_for_selector(f"#results tr[data-cid='{pinned}'] button[data-act=pinned][aria-pressed=true]")
            listed = rows.nth(0).get_attribute("data-cid")
            rows.nth(0).locator("button[data-act=shortlisted]").click()
            page.wait_for_selector(f"#results tr[data-cid='{listed}'] button[data-act=shortlisted][aria-pressed=true]")

            # -- plan with the shortlist: the pinned creator is in the roster
            page.click("#tabs [data-view=plan]")
            page.click("#plan")
            page.wait_for_selector(f"#roster tbody tr[data-cid='{pinned}']", timeout=60_000)
            assert "1 pinned" in page.locator("#status").inner_text()
            # exclude the top pick from the roster, re-plan: it is gone and the pinned one stays
            first = page.locator("#roster tbody tr[data-cid]").first.get_attribute("data-cid")
            assert first is not None
            if first == pinned:
                first = page.locator("#roster tbody tr[data-cid]").nth(1).get_attribute("data-cid")
            page.locator(f"#roster tr[data-cid='{first}'] button[data-act=excluded]").click()
            page.wait_for_selector(f"#roster tr[data-cid='{first}'] button[data-act=excluded][aria-pressed=true]")
            page.click("#plan")
            expect(page.locator("#status")).to_contain_text("1 excluded", timeout=60_000)
            ids = [r.get_attribute("data-cid") for r in page.locator("#roster tbody tr[data-cid]").all()]
            assert pinned in ids and first not in ids
            # every roster row shows a handle with its platform link, and its reasons as a signed list
            assert page.locator("#roster tbody tr .who a[target=_blank]").count() == len(ids)
            assert page.locator("#roster tbody tr ul.why li b").first.inner_text()[:1] in "+−±"
            _no_sideways_scroll(page)
            wrap = page.locator("#roster-panel .table-wrap")  # the roster fits its panel: no sideways scrolling
            assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth + 1"), "the roster scrolls sideways at 1024 px"
            page.screenshot(path=str(SHOTS / "plan-1024.png"), full_page=True)
            page.set_viewport_size({"width": 1440, "height": 900})
            _no_sideways_scroll(page)
            page.screenshot(path=str(SHOTS / "plan-1440.png"), full_page=True)
            page.click("#tabs [data-view=search]")
            page.screenshot(path=str(SHOTS / "search-1440.png"), full_page=True)

            # -- save the plan; it is listed under saved plans
            page.click("#tabs [data-view=plan]")
            page.fill("#plan-name", "January v1")
            page.click("#save-plan")
            page.wait_for_selector("#save-status.ok", timeout=60_000)
            page.click("#tabs [data-view=saved]")
            page.wait_for_selector("#saved-plans tbody tr button[data-open-plan]")
            assert "January v1" in page.locator("#saved-plans").inner_text()

        # -- the server restarts on the same database: the shortlist and the plan are still there
        with serving(trained, db, port) as live:
            page.goto(live + "/")
            page.fill("#api-key", KEY)
            page.click("#connect")
            page.wait_for_selector("#model-info.ok")
            page.click("#tabs [data-view=shortlists]")
            # the page remembers the shortlist it had open (this browser's storage for this server's address)
            page.wait_for_selector("#shortlist-items tbody tr[data-cid]")
            assert "January fitness" in page.locator("#shortlist-select option:checked").inner_text()
            states = {r.get_attribute("data-cid"): r.locator("select.item-state").input_value()
                      for r in page.locator("#shortlist-items tbody tr[data-cid]").all()}  # fmt: skip
            assert states == {pinned: "pinned", listed: "shortlisted", first: "excluded"}, states
            # each item shows who it is, not an id
            handles = page.locator("#shortlist-items tbody tr .who a.open").all_inner_texts()
            assert all(h.startswith("@") and not h.startswith("@c0") for h in handles), handles
            # a note typed on the page is kept
            page.locator(f"#shortlist-items tr[data-cid='{listed}'] input.item-note").fill("ask for a rate card")
            page.locator(f"#shortlist-items tr[data-cid='{listed}'] input.item-note").press("Tab")
            page.wait_for_selector("#shortlist-status.ok")
            page.screenshot(path=str(SHOTS / "shortlist-1440.png"), full_page=True)
            # the saved brief fills the form again
            page.click("#tabs [data-view=plan]")
            page.fill("input[name=budget]", "1000")
            page.select_option("#saved-briefs", index=1)
            expect(page.locator("input[name=budget]")).to_have_value("42000")
            page.click("#tabs [data-view=saved]")
            page.wait_for_selector("#saved-plans tbody tr button[data-open-plan]")
            page.click("#saved-plans tbody tr button[data-open-plan]")
            page.wait_for_selector("#roster tbody tr[data-cid]")
            assert "January v1" in page.locator("#roster-title").inner_text()
        browser.close()
    assert not errors, errors
    from influencer_engine.workspace import open_workspace

    ws = open_workspace(f"sqlite:///{db}")
    items = {i["creator_id"]: i for i in ws.get_shortlist(ws.list_shortlists()[0]["id"])["items"]}
    ws.close()
    assert items[listed]["note"] == "ask for a rate card"
