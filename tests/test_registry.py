"""The registries and their consumers agree: goals, KPIs, cost figures and platforms are declared once."""

from __future__ import annotations

import re
from datetime import date
from importlib import resources

import numpy as np
import polars as pl
import pytest

from influencer_engine import registry
from influencer_engine.brief import Brief
from influencer_engine.config import load_model_config, load_planner_config, load_simulator_config, validated
from influencer_engine.errors import ConfigError
from influencer_engine.features.build import feature_columns
from influencer_engine.forecast import BriefForecast, CandidateBase
from influencer_engine.planner.plan import plan, prepare
from influencer_engine.registry import COST_FIGURES, GOALS, KPI_NAMES, KPIS, PLATFORMS, Goal
from influencer_engine.schema import CONTRACTS, REJECT_SCHEMA, audience_columns

FORECAST_COLUMNS = {*KPI_NAMES, "emv"}  # what a forecast table holds per creator (with _p10/_p90 bands)
PLAN_TOTALS = {*KPI_NAMES, "unique_reach", "emv", "roas"}


def test_every_goal_names_things_that_exist() -> None:
    for g in GOALS.values():
        assert g.kpi in KPIS, g
        assert g.column in FORECAST_COLUMNS, g
        assert g.total in PLAN_TOTALS, g
        assert g.cost_figure in COST_FIGURES, g
    assert sum(g.kind == "coverage" for g in GOALS.values()) == 1  # unique reach


def test_kpis_form_a_funnel_and_cost_figures_point_at_kpis() -> None:
    for i, k in enumerate(KPIS.values()):
        assert k.offset in feature_columns() or KPI_NAMES.index(k.offset) < i, k
    assert all(c.kpi in KPIS for c in COST_FIGURES.values())
    outcome_cols = {c.name: c for c in CONTRACTS["outcomes"].columns}
    for k in KPIS.values():
        assert outcome_cols[k.name].kind == k.kind and not outcome_cols[k.name].required


def test_configs_follow_the_registries() -> None:
    cfg = load_model_config()
    assert list(cfg.lightgbm.offset) == list(KPI_NAMES) == list(cfg.lightgbm.objective)
    assert {k: cfg.lightgbm.offset[k] for k in KPI_NAMES} == {k: v.offset for k, v in KPIS.items()}
    raw = cfg.model_dump(mode="json")
    raw["lightgbm"]["offset"] = {"clicks": "revenue"}  # a later KPI as an offset breaks the funnel
    with pytest.raises(ConfigError, match="earlier KPI"):
        validated(type(cfg), raw, source="models.toml", fix="-")
    sim = load_simulator_config()
    assert set(sim.world.platform_shares) == set(PLATFORMS) == set(sim.calibration.price)
    raw = sim.model_dump(mode="json")
    del raw["reach"]["rate_at_10k"]["youtube"]
    with pytest.raises(ConfigError, match=r"reach\.rate_at_10k"):
        validated(type(sim), raw, source="simulator.toml", fix="-")
    creators = {c.name: c for c in CONTRACTS["creators"].columns}
    assert creators["platform"].values == PLATFORMS


def test_briefs_take_goals_and_risks_from_the_registry() -> None:
    for name in GOALS:
        assert Brief(goal=name, brand_category="fitness", start_date=date(2026, 1, 5)).goal == name
    with pytest.raises(ValueError, match="goal 'likes' is unknown; use one of reach, engagement"):
        Brief(goal="likes", brand_category="fitness", start_date=date(2026, 1, 5))
    with pytest.raises(ValueError, match="risk 'p99' is unknown"):
        Brief(risk="p99", brand_category="fitness", start_date=date(2026, 1, 5))
    schema = Brief.model_json_schema()
    assert schema["properties"]["goal"]["enum"] == list(GOALS)


def test_the_web_page_keeps_no_goal_table_of_its_own() -> None:
    """The page maps goals to KPIs and cost figures through /api/options (registry.options), never by itself."""
    js = (resources.files("influencer_engine.serve") / "static" / "app.js").read_text(encoding="utf-8")
    for name in GOALS:
        assert not re.search(rf"\b{name}\s*:", js), f"app.js maps goal '{name}' itself"
    opts = registry.options()
    assert [g["name"] for g in opts["goals"]] == list(GOALS)
    assert {"kpi", "column", "cost_figure", "decimals", "label"} <= set(opts["goals"][0])
    assert [p["code"] for p in opts["platforms"]] == list(PLATFORMS)


def _forecast(n: int = 300, seed: int = 3) -> BriefForecast:
    """A forecast as the forecast path makes one, without a model (the planner never needs it)."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:04d}" for i in range(n)]
    price = np.round(np.exp(rng.normal(6, 1.0, n)), 2)
    cols: dict[str, object] = {"creator_id": ids, "platform": rng.choice(PLATFORMS, n).tolist(),
                               "tier": rng.choice(["nano", "micro", "mid"], n).tolist(), "format": ["video"] * n,
                               "price": price, "audience_fit": rng.uniform(0, 0.6, n), "affinity": rng.uniform(0, 1, n),
                               "audience_credibility": rng.uniform(0.5, 1, n)}  # fmt: skip
    reach = price * np.exp(rng.normal(3, 0.5, n))
    for kpi, v in (("reach", reach), ("impressions", reach * 1.6), ("engagements", reach * 0.05),
                   ("clicks", reach * 0.01), ("conversions", reach * 0.0005), ("revenue", reach * 0.03),
                   ("emv", reach * 1.6 * 0.012)):  # fmt: skip
        cols[kpi], cols[f"{kpi}_p10"], cols[f"{kpi}_p50"], cols[f"{kpi}_p90"] = v, v * 0.4, v * 0.9, v * 1.9
    table = pl.DataFrame(cols)
    shares = [c for g in ("audience_age", "audience_country", "audience_interest") for c in audience_columns()[g]]
    creators = pl.DataFrame({"creator_id": ids, "followers": rng.integers(1_000, 500_000, n)}).with_columns(
        pl.lit(None, dtype=pl.Float64).alias(c) for c in shares
    )
    base = CandidateBase("synthetic", creators, pl.DataFrame(schema=CONTRACTS["posts"].schema),
                         pl.DataFrame(schema=REJECT_SCHEMA))  # fmt: skip
    b = Brief(brand_category="fitness", start_date=date(2026, 1, 5), budget=20_000)
    return BriefForecast(brief=b, base=base, table=table, features=table, rejects=base.rejects, notes=[],
                         emv_cpm_usd=12.0, predictor=None)  # type: ignore[arg-type]  # fmt: skip


def test_a_new_goal_is_a_registry_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Impressions as a goal: one registry row, and briefs, the planner and the totals take it."""
    monkeypatch.setitem(GOALS, "views", Goal("views", "impressions", "impressions", "additive", "kpi", "impressions",
                                             "impressions", "cpm", 0))  # fmt: skip
    fc, cfg = _forecast(), load_planner_config()
    b = fc.brief.model_copy(update={"goal": "views"})
    b = Brief.model_validate(b.model_dump())  # a brief with the new goal validates
    result = plan(prepare(fc, b, cfg), cfg, reasons=0)
    t = result.totals
    assert t.goal.name == "views" and t.goal.expected == pytest.approx(t.kpis["impressions"].expected)
    assert t.spend <= b.budget and t.cost_figures["cpm"] == pytest.approx(t.spend * 1000 / t.goal.expected)
    # the roster is the best for impressions per the solver: no other goal's roster has more impressions
    conv = plan(prepare(fc, b.model_copy(update={"goal": "conversions"}), cfg), cfg, reasons=0).totals
    assert t.kpis["impressions"].expected >= conv.kpis["impressions"].expected * (1 - cfg.solver.mip_rel_gap)


def test_every_registered_goal_plans_with_typed_totals() -> None:
    fc, cfg = _forecast(), load_planner_config()
    for name, g in GOALS.items():
        b = fc.brief.model_copy(update={"goal": name})
        result = plan(prepare(fc, b, cfg), cfg, reasons=0)
        t = result.totals
        doc = t.json_dict()
        assert doc["goal"]["name"] == name and doc["goal"]["label"] == g.label
        assert set(doc["kpis"]) == set(KPI_NAMES) and doc["solver"]["certified_gap"] <= cfg.solver.mip_rel_gap + 1e-9
        if g.total in KPI_NAMES:
            assert t.goal.expected == pytest.approx(t.kpis[g.total].expected)
        else:
            assert t.goal.expected == pytest.approx(getattr(t, g.total).expected)
