"""Partial data is first-class: a creators table with only its required columns plans, scores and serves, and
every value the engine completed (price, audience, credibility) is flagged as such."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from influencer_engine.cli import main
from influencer_engine.modeling.completion import widen
from influencer_engine.training.bundle import BundleError, load_bundle

BRIEF = Path(__file__).resolve().parents[1] / "configs" / "briefs" / "fitness_january.toml"
REQUIRED = ("creator_id", "platform", "handle", "followers")


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture(scope="module")
def bare(trained: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained world's creators with only the required columns, and their posts."""
    folder = tmp_path_factory.mktemp("bare")
    pl.read_parquet(trained["world"] / "creators.parquet").select(REQUIRED).write_parquet(folder / "creators.parquet")
    pl.read_parquet(trained["world"] / "posts.parquet").write_parquet(folder / "posts.parquet")
    return folder


def _brief(tmp_path: Path, *settings: str) -> Path:
    """The example brief with ``key = value`` settings of its [constraints] replaced."""
    text = BRIEF.read_text()
    for line in settings:
        key = line.split("=")[0].strip()
        text, n = re.subn(rf"(?m)^{key} = .*$", line, text)
        assert n == 1, key
    path = tmp_path / "brief.toml"
    path.write_text(text)
    return path


def test_plan_on_required_columns_flags_every_assumption(
    trained: dict[str, Path], bare: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan"
    code, text, err = _run(["plan", "--brief", str(BRIEF), "--data", str(bare), "--model", str(trained["bundle"]),
                            "--out", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    roster = pl.read_parquet(out / "roster.parquet")
    assert roster.height >= 5
    assert set(roster["price_source"]) == {"estimated"} and set(roster["audience_source"]) == {"assumed"}
    assert set(roster["credibility_source"]) == {"estimated"}
    assert (roster["price_p10"] < roster["price"]).all() and (roster["price"] < roster["price_p90"]).all()
    # an assumed audience is one plain reason, first, with no signed effect in its words
    first = roster["reasons"].str.split(";").list.first()
    assert first.str.starts_with("audience unknown: ").all()
    assert not first.str.contains("%.*(conversions)").any()
    totals = json.loads((out / "totals.json").read_text())["totals"]
    a = totals["assumptions"]
    assert a["estimated_price"] == a["assumed_audience"] == a["estimated_credibility"] == roster.height
    assert a["estimated_spend"] == pytest.approx(totals["spend"])
    assert a["estimated_spend_p10"] < a["estimated_spend"] < a["estimated_spend_p90"]
    assert totals["unique_reach"]["assumed_share"] == pytest.approx(1.0)
    assert len(a["notes"]) == 3 and all(f"assumed: {n}" in text for n in a["notes"])
    assert "overlap assumed for 100%" in text and "* price estimated" in text


def test_bare_rows_are_flagged_and_their_bands_widened_by_the_measured_amount(
    trained: dict[str, Path], bare: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses

    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.forecast import forecast_brief

    rows = {}
    for name, data in (("given", trained["world"]), ("bare", bare)):
        out = tmp_path / name
        code, _, err = _run(["score", "--candidates", str(data), "--brief", str(BRIEF), "--model",
                             str(trained["bundle"]), "--out", str(out)], capsys)  # fmt: skip
        assert code == 0, err
        rows[name] = pl.read_parquet(out / "scores")
    both = rows["given"].join(rows["bare"], on="creator_id", suffix="_bare")
    assert both.height == rows["given"].height == 2500
    assert set(both["audience_source_bare"]) == {"assumed"} and set(both["price_source_bare"]) == {"estimated"}
    given = both.filter(pl.col("price_source") == "quoted")
    assert given.height > 0 and (given["price"] > 0).all()
    # the rate card's estimates of the quoted prices: not priced systematically off
    ratio = (given["price"] / given["price_bare"]).log()
    assert abs(float(ratio.mean())) < 0.2  # type: ignore[arg-type]
    # the bands of completed rows are widened by what each assumption was measured to add, and no more
    p = load_bundle(trained["bundle"])
    assert p.completion is not None
    plain = dataclasses.replace(p, completion=dataclasses.replace(p.completion, widening={}))
    brief, tiers = load_brief(BRIEF), load_tier_config()
    wide, narrow = (forecast_brief(x, bare, brief, tiers).table for x in (p, plain))
    for kpi in ("reach", "conversions"):
        extra = math.sqrt(sum(p.completion.widening[k][kpi] ** 2 for k in ("audience", "credibility", "price")))
        w = (wide[f"{kpi}_p90"] + 1).log() - (wide[f"{kpi}_p10"] + 1).log()
        n = (narrow[f"{kpi}_p90"] + 1).log() - (narrow[f"{kpi}_p10"] + 1).log()
        assert (wide[kpi] == narrow[kpi]).all()
        np.testing.assert_allclose(wide[f"{kpi}_p50"].to_numpy(), narrow[f"{kpi}_p50"].to_numpy(), rtol=1e-9)
        assert (w >= n - 1e-9).all()
        assert (float((w - n).max()) > 0) == (extra > 0)  # type: ignore[arg-type]
    # widened bands stay plausible: no count below zero, nobody reached without an impression
    for kpi in ("reach", "impressions", "engagements", "clicks", "conversions", "revenue"):
        assert (wide[f"{kpi}_p10"] >= 0).all()
    for q in ("p10", "p50", "p90"):
        assert (wide[f"reach_{q}"] <= wide[f"impressions_{q}"]).all()


def test_whatif_and_api_on_required_columns(
    trained: dict[str, Path], bare: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["whatif", "--brief", str(BRIEF), "--data", str(bare), "--model", str(trained["bundle"]),
                         "--budgets", "10000,40000", "--out", str(tmp_path / "w")], capsys)  # fmt: skip
    assert code == 0, err
    assert pl.read_csv(tmp_path / "w" / "frontier.csv").filter(pl.col("status") != "infeasible").height > 0
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from influencer_engine.brief import load_brief
    from influencer_engine.serve import create_app, load_server

    server = load_server(load_bundle(trained["bundle"]), bare, model_ref=str(trained["bundle"]), api_key="k" * 24)
    brief = load_brief(BRIEF).model_dump(mode="json")
    brief["scenarios"] = []
    with TestClient(create_app(server)) as client:
        res = client.post("/api/plan", json={"brief": brief}, headers={"X-API-Key": "k" * 24})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["roster"] and {r["price_source"] for r in body["roster"]} == {"estimated"}
    assert body["totals"]["assumptions"]["notes"]


def test_quoted_prices_only_names_the_filter_and_writes_who_was_left_out(
    trained: dict[str, Path], bare: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p"
    code, _, err = _run(["plan", "--brief", str(_brief(tmp_path, "quoted_prices_only = true")), "--data", str(bare),
                         "--model", str(trained["bundle"]), "--out", str(out)], capsys)  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    assert "price estimated, the brief takes quoted prices only" in err and "filtered.parquet" in err
    filtered = pl.read_parquet(out / "filtered.parquet")
    assert filtered.height == 2500  # every candidate, each with its reason
    assert filtered["reason"].str.contains("quoted prices only").sum() > 0


@pytest.mark.parametrize(
    ("policy", "expect"),
    [("exclude", "audience unknown (the brief leaves out"), ("pass", None), ("assume", "assumed audience fit below")],
)
def test_unknown_audience_policy(
    trained: dict[str, Path], bare: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str,
    expect: str | None,
) -> None:  # fmt: skip
    brief = _brief(tmp_path, f'unknown_audience = "{policy}"').read_text().replace(
        "min_audience_fit = 0.05", "min_audience_fit = 0.5")  # fmt: skip
    path = tmp_path / "b.toml"
    path.write_text(brief)
    out = tmp_path / "p"
    code, _, err = _run(["plan", "--brief", str(path), "--data", str(bare), "--model", str(trained["bundle"]),
                         "--out", str(out)], capsys)  # fmt: skip
    filtered = pl.read_parquet(out / "filtered.parquet")
    if expect is None:
        assert code == 0, err
        assert not filtered["reason"].str.contains("audience fit|audience unknown").any()
    else:
        assert code == 2 and expect in err
        assert filtered["reason"].str.starts_with(expect).sum() > 0


def test_given_values_are_never_changed(trained: dict[str, Path]) -> None:
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.forecast import forecast_brief

    fc = forecast_brief(load_bundle(trained["bundle"]), trained["world"], load_brief(BRIEF), load_tier_config())
    creators = pl.read_parquet(trained["world"] / "creators.parquet")
    t = fc.table.join(creators.select("creator_id", "audience_credibility", "price_image", "price_video"),
                      on="creator_id", suffix="_given")  # fmt: skip
    given = t.filter(pl.col("credibility_source") == "given")
    assert (given["audience_credibility"] == given["audience_credibility_given"]).all()
    estimated = t.filter(pl.col("credibility_source") == "estimated")
    assert estimated["audience_credibility_given"].is_null().all()
    quoted = t.filter(pl.col("price_source") == "quoted")
    listed = pl.when(pl.col("format") == "image").then(pl.col("price_image")).otherwise(pl.col("price_video"))
    assert (quoted["price"] == quoted.select(listed).to_series()).all()
    assert set(t["audience_source"]) == {"given"}


def test_bundle_carries_its_completion_and_refuses_a_changed_one(trained: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    p = load_bundle(trained["bundle"])
    assert p.completion is not None and p.completion.price is not None and p.completion.credibility is not None
    manifest = json.loads((trained["bundle"] / "manifest.json").read_text())["completion"]
    assert set(manifest["widening"]) == {"audience", "credibility", "price", "history"}
    assert set(manifest["widening"]["history"]) == set(p.kpis)  # no posts nor averages: measured on the latest hires
    assert all(v >= 0 for kinds in manifest["widening"].values() for v in kinds.values())
    copy = tmp_path / "b"
    shutil.copytree(trained["bundle"], copy)
    f = copy / manifest["models"]["price"]["file"]
    f.write_text(f.read_text().replace("Tree=0", "Tree=0 "))
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(copy)


def test_widen_keeps_the_median_and_adds_in_quadrature() -> None:
    q = np.array([[1.0, 4.0, 9.0], [0.0, 0.0, 0.0]])
    w = widen(q, np.array([0.3, 0.0]))
    assert w[0, 1] == pytest.approx(4.0) and w[0, 0] < 1.0 and w[0, 2] > 9.0
    np.testing.assert_allclose(w[1], q[1])
    lo, mid = np.log1p(q[0, 0]), np.log1p(q[0, 1])
    assert mid - np.log1p(w[0, 0]) == pytest.approx(np.hypot(mid - lo, 1.2815515655446004 * 0.3))
    # a small count's band widened past zero stops at zero (a nano creator's clicks), its P90 still widens
    small = widen(np.array([[0.05, 0.4, 2.0]]), np.array([1.0]))
    assert small[0, 0] == 0.0 and small[0, 1] == pytest.approx(0.4) and small[0, 2] > 2.0


@pytest.mark.realdata
def test_real_instagram_histories_import_score_and_plan(
    trained: dict[str, Path], real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shared Instagram set (handles, followers, posts; no prices, no audiences) planned end to end."""
    data = tmp_path / "ig"
    code, _, err = _run(["import", "instagram-posts", str(real_data / "instagram_posts_2015_2020"), "--out",
                         str(data)], capsys)  # fmt: skip
    assert code == 0, err
    text = BRIEF.read_text()
    for old, new in (('"2026-01-05"', '"2020-08-03"'), ('"2026-01-31"', '"2020-08-31"'),
                     ('["instagram", "tiktok"]', '["instagram"]'), ('["US", "GB", "CA"]', '["ID"]'),
                     ("max_share = 0.7", "max_share = 1.0"),
                     # the test bundle's world has 2,500 creators: its estimates of these big creators' credibility
                     # and prices are cruder than the demo bundle's, so the floors are looser than the example's
                     ("min_credibility = 0.6", "min_credibility = 0.0"),
                     ("max_spend_per_creator = 10000", "max_spend_per_creator = 50000")):  # fmt: skip
        text = text.replace(old, new)
    brief = tmp_path / "ig.toml"
    brief.write_text(text)
    code, _, err = _run(["score", "--candidates", str(data), "--brief", str(brief), "--model", str(trained["bundle"]),
                         "--out", str(tmp_path / "s")], capsys)  # fmt: skip
    assert code == 0, err
    scores = pl.read_parquet(tmp_path / "s" / "scores")
    assert scores.height == pl.read_parquet(data / "creators.parquet").height
    assert set(scores["price_source"]) == {"estimated"} and scores["price"].min() > 0  # type: ignore[operator]
    assert set(scores["audience_source"]) == {"assumed"} and scores["history_posts"].median() > 20  # type: ignore[operator]
    out = tmp_path / "p"
    code, printed, err = _run(["plan", "--brief", str(brief), "--data", str(data), "--model", str(trained["bundle"]),
                               "--out", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    roster = pl.read_parquet(out / "roster.parquet")
    assert roster.height >= 5 and set(roster["platform"]) == {"instagram"}
    assert roster["reasons"].str.starts_with("audience unknown: instagram average assumed").all()
    assert "prices are estimated from the rate card" in printed


@pytest.mark.realdata
def test_real_rankings_without_posts_plan_with_estimated_prices(
    trained: dict[str, Path], real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rankings set has no posts at all: prices come from the rate card, histories from each snapshot's averages
    per post (features.averages), and the plan says so."""
    data = tmp_path / "rk"
    code, _, err = _run(["import", "rankings", str(real_data / "top1000_creators_2022"), "--out", str(data)], capsys)
    assert code == 0, err
    out = tmp_path / "p"
    # looser floors than the example brief's, as for the Instagram set above
    brief = _brief(tmp_path, "min_credibility = 0.0", "max_spend_per_creator = 50000")
    code, _, err = _run(["plan", "--brief", str(brief), "--data", str(data), "--model", str(trained["bundle"]),
                         "--out", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    roster = pl.read_parquet(out / "roster.parquet")
    assert roster.height >= 5 and (roster["history_posts"] == 11).all()
    assert set(roster["history_source"]) == {"averages"}
    assert set(roster["price_source"]) == {"estimated"}
    assert (roster["price_p10"] < roster["price"]).all() and (roster["price"] < roster["price_p90"]).all()
    totals = json.loads((out / "totals.json").read_text())["totals"]
    assert totals["assumptions"]["estimated_price"] == roster.height
    assert totals["assumptions"]["averaged_history"] == roster.height
    assert any("their history is their export's averages per post" in n for n in totals["assumptions"]["notes"])


def test_an_empty_roster_names_the_filters_that_emptied_it(
    trained: dict[str, Path], bare: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    brief = _brief(tmp_path, "roster_min = 0", "min_audience_fit = 0.9")
    out = tmp_path / "p"
    code, text, err = _run(["plan", "--brief", str(brief), "--data", str(bare), "--model", str(trained["bundle"]),
                            "--out", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    left = json.loads((out / "totals.json").read_text())["totals"]["budget_left"]
    assert left["unspent_share"] == 1.0
    assert "the brief's filters leave out" in left["reason"] and "assumed audience fit below 90%" in left["reason"]
    assert left["reason"] in text


def test_one_creator_is_forecast_as_in_the_whole_base(trained: dict[str, Path]) -> None:
    """Peers come from the whole base, so a creator forecast alone (ie forecast, /api/forecast) gets its plan row."""
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.forecast import forecast_brief

    p, brief, tiers = load_bundle(trained["bundle"]), load_brief(BRIEF), load_tier_config()
    whole = forecast_brief(p, trained["world"], brief, tiers).table
    ids = whole["creator_id"].head(3).to_list()
    alone = forecast_brief(p, trained["world"], brief, tiers, creator_ids=ids).table
    expected = whole.filter(pl.col("creator_id").is_in(ids)).sort("creator_id")
    np.testing.assert_allclose(alone.sort("creator_id")["conversions"].to_numpy(), expected["conversions"].to_numpy(),
                               rtol=1e-12)  # fmt: skip


def test_revenue_says_which_order_value_it_assumes(trained: dict[str, Path]) -> None:
    """A brief with an average order value gets revenue = conversions x it; one without gets the revenue model's, and a
    note with the value per conversion that assumes (the forecast-weighted one over the candidates)."""
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.forecast import forecast_brief

    p, brief, tiers = load_bundle(trained["bundle"]), load_brief(BRIEF), load_tier_config()
    given = forecast_brief(p, trained["world"], brief, tiers)
    assert brief.average_order_value and any("the brief's average order value" in n for n in given.notes)
    assert not any("assumes the value per conversion" in n for n in given.notes)
    unstated = forecast_brief(p, trained["world"], brief.model_copy(update={"average_order_value": None}), tiers)
    t = unstated.table
    implied = float(t["revenue"].sum() / t["conversions"].sum())
    note = [n for n in unstated.notes if "assumes the value per conversion" in n]
    assert len(note) == 1 and f"${implied:,.2f} a conversion" in note[0] and "average_order_value" in note[0]
    # the revenue model's own value per conversion, not the brief's
    assert not np.allclose(t["revenue"].to_numpy(), t["conversions"].to_numpy() * brief.average_order_value)
