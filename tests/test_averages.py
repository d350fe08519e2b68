"""A creator known only by its export's averages per post (features.averages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from influencer_engine.brief import load_brief
from influencer_engine.config import load_tier_config
from influencer_engine.features.averages import AVERAGE_POSTS, spread_multipliers
from influencer_engine.forecast import candidate_base, forecast_base
from influencer_engine.importers.rankings import import_rankings
from influencer_engine.schema import validate
from influencer_engine.training.bundle import load_bundle

ROOT = Path(__file__).resolve().parents[1]
BRIEF = ROOT / "configs" / "briefs" / "fitness_january.toml"


def test_the_posts_an_average_stands_for_keep_the_average_and_show_no_trend() -> None:
    m = spread_multipliers()
    assert len(m) == AVERAGE_POSTS and m.mean() == pytest.approx(1.0, abs=1e-12)
    assert m[-1] == pytest.approx(np.median(m))  # the latest post sits at the median, as do the last five's median
    assert np.median(m[-5:]) == pytest.approx(np.median(m))
    slope = np.polyfit(np.arange(len(m)), np.log(m), 1)[0]
    assert abs(slope) < 0.02
    assert np.median(m) < 1.0  # a typical post under the average, as for a real creator


def _creators(**avg: list[float | None]) -> pl.DataFrame:
    n = len(next(iter(avg.values())))
    return pl.DataFrame({"creator_id": [f"c{i}" for i in range(n)], "platform": ["tiktok"] * n,
                         "handle": [f"h{i}" for i in range(n)], "followers": [200_000] * n, **avg})  # fmt: skip


def test_a_creator_without_posts_is_read_from_its_averages(trained: dict[str, Path]) -> None:
    predictor = load_bundle(trained["bundle"])
    brief = load_brief(BRIEF)
    creators = _creators(avg_views=[None, 2e5, 2e5, 2e6], avg_likes=[None, 1e4, 1e5, 1e5],
                         avg_comments=[None, 100.0, 1000.0, 1000.0])  # fmt: skip
    t = forecast_base(predictor, candidate_base(creators, None, source="t"), brief, load_tier_config()).table
    t = t.sort("creator_id")
    assert t["history_source"].to_list() == ["none", "averages", "averages", "averages"]
    assert t["history_posts"].to_list() == [0, AVERAGE_POSTS, AVERAGE_POSTS, AVERAGE_POSTS]
    eng = t["engagements"].to_numpy()
    # ten times the likes and comments per post: several times the engagements (the creator's own level anchors them)
    assert eng[2] > 3 * eng[1]


def test_a_creator_with_posts_ignores_its_averages(trained: dict[str, Path]) -> None:
    predictor = load_bundle(trained["bundle"])
    brief = load_brief(BRIEF)
    world = trained["world"]
    creators = pl.read_parquet(world / "creators.parquet").head(30)
    posts = pl.read_parquet(world / "posts.parquet").join(creators.select("creator_id"), on="creator_id", how="semi")
    with_avg = creators.with_columns(pl.lit(1e7).alias("avg_views"), pl.lit(1e6).alias("avg_likes"))
    a = forecast_base(predictor, candidate_base(creators, posts, source="a"), brief, load_tier_config()).table
    b = forecast_base(predictor, candidate_base(with_avg, posts, source="b"), brief, load_tier_config()).table
    assert set(b["history_source"].to_list()) == {"posts"}
    assert b["engagements"].to_list() == a["engagements"].to_list()
    assert b["conversions"].to_list() == a["conversions"].to_list()


def test_averages_are_checked_by_the_contract() -> None:
    r = validate(_creators(avg_views=[1e5, -3.0], avg_likes=[10.0, 10.0]), "creators", source="t.csv")
    assert r.valid.height == 1 and r.rejects.height == 1
    assert r.rejects["reason"][0].endswith("avg_views")


def test_the_rankings_carry_their_averages_to_the_creators(real_data: Path, tmp_path: Path) -> None:
    import_rankings(real_data / "top1000_creators_2022", tmp_path)
    creators = pl.read_parquet(tmp_path / "creators.parquet")
    rankings = pl.read_parquet(tmp_path / "rankings.parquet")
    tiktok = creators.filter(pl.col("platform") == "tiktok")
    assert tiktok["avg_views"].null_count() < tiktok.height / 10
    instagram = creators.filter(pl.col("platform") == "instagram")
    assert instagram["avg_engagement"].null_count() < instagram.height / 10
    one = tiktok.filter(pl.col("handle") == "c.tangana").row(0, named=True)
    assert one["avg_views"] == rankings.filter(pl.col("handle") == "c.tangana")["avg_views"].max()


def test_a_creator_without_any_history_gets_the_band_widening_measured_for_such_creators(
    trained: dict[str, Path],
) -> None:
    import dataclasses

    predictor = load_bundle(trained["bundle"])
    assert predictor.completion is not None and "history" in predictor.completion.widening
    plain = dataclasses.replace(predictor, completion=dataclasses.replace(
        predictor.completion,
        widening={k: v for k, v in predictor.completion.widening.items() if k != "history"}))  # fmt: skip
    brief = load_brief(BRIEF)
    creators = _creators(avg_views=[None, 2e5], avg_likes=[None, 1e4], avg_comments=[None, 100.0])
    base = candidate_base(creators, None, source="t")
    a = forecast_base(predictor, base, brief, load_tier_config()).table.sort("creator_id")
    b = forecast_base(plain, base, brief, load_tier_config()).table.sort("creator_id")
    assert a["history_source"].to_list() == ["none", "averages"]
    widening = predictor.completion.widening["history"]
    for kpi in ("impressions", "engagements", "clicks", "conversions"):
        assert a[kpi].to_list() == b[kpi].to_list()  # the forecast itself is the funnel's
        wider = (a[f"{kpi}_p90"] - a[f"{kpi}_p10"]) / (b[f"{kpi}_p90"] - b[f"{kpi}_p10"])
        assert (wider[0] > 1 + 1e-9) == (widening[kpi] > 0) and wider[1] == pytest.approx(1.0, abs=1e-12)
    notes = _plan_notes(a)
    assert any("no posts and no averages" in n for n in notes) and any("averages per post" in n for n in notes)


def _plan_notes(table: pl.DataFrame) -> list[str]:
    from influencer_engine.planner.totals import assumptions_of

    return assumptions_of(table, 0.0).notes
