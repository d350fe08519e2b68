"""Oracle evaluation of the planner on a simulated world.

For random briefs of every goal, the roster planned from forecasts is scored with the simulator's ground truth
and compared with the oracle roster (the same solver on the true expected values, and for unique reach the true
audience model with its hidden communities) and with the rosters planners pick by hand. The score is the
planned roster's true value as a share of the oracle's, at the same budget and constraints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.brief import Brief, Constraints, MixLimit
from influencer_engine.config import PlannerConfig, TierConfig
from influencer_engine.evaluation.heuristics import HEURISTICS, fill_in_order, heuristic_orders
from influencer_engine.forecast import forecast_base, load_candidate_base
from influencer_engine.io import read_table
from influencer_engine.modeling.predictor import Predictor
from influencer_engine.planner.coverage import AudienceModel, solve_reach
from influencer_engine.planner.knapsack import Problem, solve_additive
from influencer_engine.planner.plan import Prepared, plan_candidates, prepare
from influencer_engine.planner.problem import goal_values
from influencer_engine.planner.totals import PlanTotals, cost_figures
from influencer_engine.registry import COST_FIGURES, GOAL_NAMES, GOALS, KPI_NAMES
from influencer_engine.simulate.briefs import random_context
from influencer_engine.simulate.model import segment_sizes
from influencer_engine.simulate.world import World

if TYPE_CHECKING:  # bench_economics lays this module over older builds, which lack it
    from influencer_engine.modeling.intervals import ExpectedError

__all__ = [
    "PlannerEvaluation",
    "cost_figures_of",
    "evaluate_planner",
    "expected_draws",
    "market_figures",
    "market_median_figures",
    "noisy_values",
    "random_context",
]

_ORACLE_GAP = 1e-4
# References that say how good forecasts must be: rosters planned on the truth times exp(sigma * z), z standard
# normal per creator (the same draws at every sigma); for net return the KPI (revenue) carries the error, not the net
# value (``noisy_values``). A lognormal error of log sd sigma has MAE log ~0.8 sigma.
ERROR_LEVELS = (0.1, 0.2, 0.3)


def error_reference(sigma: float) -> str:
    return f"truth_noise{round(sigma * 100)}"


DELIVERY_DRAWS = 400  # simulated deliveries of each planned roster, for the share inside its band
EXPECTED_DRAWS = 2000  # draws of a planned roster's expected total (``expected_draws``)
_Z90 = 1.2815515655446004  # standard normal quantile of 0.9

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


_COMPARED = ("planner", *HEURISTICS, *(error_reference(s) for s in ERROR_LEVELS))


@dataclass(frozen=True)
class PlannerEvaluation:
    rows: pl.DataFrame  # one row per brief
    summary: dict[str, dict[str, Any]]  # goal -> shares of planner and heuristics

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "briefs": self.rows.to_dicts()}


def _random_brief(context: dict[str, Any], goal: str, rng: np.random.Generator) -> Brief:
    budget = float(np.exp(rng.uniform(np.log(10_000), np.log(150_000))))
    limits: dict[str, Any] = {"roster_max": int(rng.integers(5, 41))}
    if rng.random() < 0.3:
        limits["max_spend_per_creator"] = round(budget * float(rng.uniform(0.1, 0.4)), -2)
    if rng.random() < 0.3:
        limits["tiers"] = {t: MixLimit(max_count=int(rng.integers(1, 4))) for t in ("macro", "mega")}
    if rng.random() < 0.3:
        limits["min_audience_fit"] = round(float(rng.uniform(0.02, 0.15)), 2)
    return Brief(**context, goal=goal, budget=round(budget, -2), constraints=Constraints(**limits))


def _true_audience(world: World, ids: list[str]) -> AudienceModel:
    """The simulator's own overlap model for ``ids``: segments include the hidden communities."""
    return AudienceModel(world.overlap_factors(ids), segment_sizes(world.cfg))


def evaluate_planner(
    predictor: Predictor,
    data: Path,
    cfg: PlannerConfig,
    tiers: TierConfig,
    *,
    per_goal: int = 20,
    seed: int = 0,
    goals: tuple[str, ...] = GOAL_NAMES,
) -> PlannerEvaluation:
    """``per_goal`` random briefs per goal on the world in ``data`` (contexts shared across goals)."""
    world = World.load(data)
    rng = np.random.default_rng(seed)
    emv_cpm = predictor.emv_cpm_usd
    models = getattr(getattr(predictor, "forecaster", None), "models_", {})
    errors = {kpi: m.expected_error for kpi, m in models.items() if hasattr(m, "expected_error")}
    candidates = load_candidate_base(data)
    rows: list[dict[str, Any]] = []
    for k in range(per_goal):
        context = random_context(world.now, rng, k)
        base = Brief(**context, goal="conversions")
        forecast = forecast_base(predictor, candidates, base, tiers)
        truth = world.expected_outcomes(base)
        for goal in goals:
            brief = _random_brief(context, goal, rng)
            t0 = time.perf_counter()
            prep = prepare(forecast, brief, cfg)
            planned, totals = plan_candidates(prep, cfg)
            seconds = time.perf_counter() - t0
            table = prep.candidates.table
            true_rows = table.select("creator_id", "price").join(
                truth.drop("platform", "tier", "followers", "format", "audience_fit", "affinity"), on="creator_id",
                how="left", maintain_order="left")  # fmt: skip
            problem = prep.candidates.problem
            if GOALS[goal].kind == "coverage":
                model = _true_audience(world, table["creator_id"].to_list())
                true_reach = true_rows["reach"].cast(pl.Float64).fill_null(0.0).to_numpy()

                score: Callable[[I64], float] = partial(_reach_score, model, true_reach)

                s = cfg.solver
                oracle = solve_reach(problem, model, true_reach, gap=_ORACLE_GAP, time_limit=s.time_limit_s,
                                     rounds=s.max_reach_rounds)  # fmt: skip
                reference, audience = true_reach, model
            else:
                true_values = goal_values(true_rows, goal, "expected", emv_cpm_usd=emv_cpm)

                score = partial(_additive_score, true_values)

                oracle = solve_additive(problem, true_values, gap=_ORACLE_GAP, time_limit=cfg.solver.time_limit_s)
                reference, audience = true_values, None
            picked = _picked(goal, prep, planned.chosen, oracle.chosen, true_rows, totals, score, errors,
                             np.random.default_rng([seed, k, GOAL_NAMES.index(goal), 3]))  # fmt: skip
            picked["band_holds_delivered"] = _delivered_inside(
                world, brief, goal, table["creator_id"].gather(planned.chosen).to_list(), picked, totals,
                np.random.default_rng([seed, k, GOAL_NAMES.index(goal)]))  # fmt: skip
            orders = heuristic_orders(table, forecast.features, predictor.baselines)
            compared = {"planner": score(planned.chosen)}
            compared.update({name: score(fill_in_order(problem, orders[name])) for name in HEURISTICS})
            downside = _risk_downside(world, brief, goal, planned.chosen, table, forecast, cfg, score,
                                      np.random.default_rng([seed, k, GOAL_NAMES.index(goal), 2]))  # fmt: skip
            z = np.random.default_rng([seed, k, GOAL_NAMES.index(goal), 1]).standard_normal(len(reference))
            compared.update({error_reference(sg): score(_plan_on(
                problem, noisy_values(true_rows, goal, sg * z, emv_cpm_usd=emv_cpm), cfg, audience))
                for sg in ERROR_LEVELS})  # fmt: skip
            # the reference is the best roster known on the truth: the oracle solve, or a compared roster if one
            # beats it (possible within the oracle's certified gap, and for unique reach, whose solver has a gap)
            oracle_value = max(score(oracle.chosen), *compared.values())
            row: dict[str, Any] = {
                "brief": k, "goal": goal, "budget": brief.budget, "candidates": problem.n,
                "roster_max": brief.constraints.roster_max, "planned_creators": int(planned.chosen.size),
                "oracle_creators": int(oracle.chosen.size), "plan_seconds": seconds,
                "planner_certified_gap": planned.gap, "oracle_certified_gap": oracle.gap,
                "oracle_value": oracle_value, "oracle_solver_value": score(oracle.chosen),
                **{f"{name}_value": v for name, v in compared.items()}, **picked, **downside,
            }  # fmt: skip
            for name in _COMPARED:
                row[f"{name}_share"] = row[f"{name}_value"] / oracle_value if oracle_value > 0 else None
            rows.append(row)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return PlannerEvaluation(rows=frame, summary=_summary(frame, market_figures(data)))


def market_figures(data: Path) -> dict[str, float]:
    """The market's cost figures for the simulated world in ``data`` (see ``market_median_figures``)."""
    return market_median_figures(read_table(data / "outcomes.parquet"),
                                 read_table(data / "truth" / "expected_outcomes.parquet"))  # fmt: skip


def market_median_figures(outcomes: pl.DataFrame, expected: pl.DataFrame) -> dict[str, float]:
    """The cost figures of the median simulated campaign: its posts' cost over their true expected results (so a
    campaign with no conversion drawn still has a CPA). The aggregate over every post, which ``ie summary`` prints,
    is dominated by the largest hires; the median campaign is what "the market" means when a best-in-class campaign
    is said to beat it a few times."""
    keys = ["campaign_id", "creator_id", "format"]
    kpis = [k for k in KPI_NAMES if f"true_{k}" in expected.columns]
    per = (
        outcomes.select(*keys, "cost")
        .join(expected, on=keys, how="inner")
        .group_by("campaign_id")
        .agg(pl.col("cost").sum(), *(pl.col(f"true_{k}").sum().alias(k) for k in kpis))
    )
    rows = [cost_figures_of(r["cost"], r) for r in per.iter_rows(named=True)]
    return {name: float(np.nanmedian([r[name] for r in rows])) for name in COST_FIGURES}


def cost_figures_of(spend: float, kpis: dict[str, Any]) -> dict[str, float]:
    """The plan totals' cost figures (``planner.totals.cost_figures``) of ``spend`` buying ``kpis``, NaN where
    undefined (so medians and ratios skip them)."""
    figures = cost_figures(spend, {k: float(kpis.get(k) or 0.0) for k in KPI_NAMES})
    return {name: float("nan") if v is None else v for name, v in figures.items()}


def expected_draws(quantiles: F64, error: ExpectedError, draws: int, rng: np.random.Generator,
                   segments: npt.NDArray[Any] | None = None) -> F64:  # fmt: skip
    """(draws, rows) samples of each row's expected value from the forecasts' error about it alone: ``quantiles`` is
    (rows, 4), P10, P50, P90 and the forecast mean (``planner.totals.kpi_quantiles``); each row's draw has the
    share ``error.share`` of its band's log1p variance (each half of the band its own scale, as the plan's delivery
    draws), rescaled to average to the forecast mean.

    What the rows share: where the backtest measured it on the scale of sums (``error.segment`` and
    ``error.context``, ``intervals.sum_covariances``), every row is multiplied by a mean-one log-normal factor of
    relative variance ``context`` drawn once (the rows are one roster, one campaign) and by one of relative variance
    ``segment`` drawn once per segment (``segments``: each row's platform and tier; None: all rows one segment);
    the row's own draw is then what is left of its share once the factors' log variance is taken out (the factors are
    part of the error the share measured). Otherwise the part ``error.common`` of each row's log1p draw is drawn once
    for every row. Needs a measured share."""
    if error.share is None:
        raise ValueError("the error about expected values was not measured (ExpectedError.share is None)")
    q = np.log1p(np.maximum(quantiles[:, :3], 0.0)).T
    lo_s, hi_s = (q[1] - q[0]) / _Z90, (q[2] - q[1]) / _Z90
    share = min(max(error.share, 0.0), 1.0)
    # bench_economics lays this module over builds whose ExpectedError has no covariances of sums
    seg, ctx = getattr(error, "segment", None), getattr(error, "context", None)
    on_sums = seg is not None or ctx is not None
    common = 0.0 if on_sums else min(max(error.common, 0.0), 1.0)
    if on_sums:
        # the shared factors are part of each row's measured error: its own part is what is left of it (log scale)
        shared = math.log1p((seg or 0.0) + (ctx or 0.0))
        lo_s = np.sqrt(np.maximum(share * lo_s**2 - shared, 0.0))
        hi_s = np.sqrt(np.maximum(share * hi_s**2 - shared, 0.0))
    else:
        lo_s, hi_s = np.sqrt(share) * lo_s, np.sqrt(share) * hi_s
    rows = quantiles.shape[0]
    z = rng.standard_normal((draws, rows))
    z = np.sqrt(1.0 - common) * z + np.sqrt(common) * rng.standard_normal((draws, 1))
    mean = np.maximum(quantiles[:, 3], 0.0)
    x = np.expm1(np.log1p(mean) + z * np.where(z < 0, lo_s, hi_s))
    drawn = x.mean(axis=0)
    x = x * np.where(drawn > 0, mean / np.where(drawn > 0, drawn, 1.0), 0.0)
    if on_sums:
        groups = np.zeros(rows, dtype=np.int64)
        if segments is not None and rows:
            groups = np.unique(np.asarray(segments).astype(str), return_inverse=True)[1].astype(np.int64)
        for kappa, shape in ((ctx, (draws, 1)), (seg, (draws, int(groups.max(initial=0)) + 1))):
            sd = math.sqrt(math.log1p(kappa or 0.0))
            factor = np.exp(sd * rng.standard_normal(shape) - sd * sd / 2.0)
            x = x * (factor if shape[1] == 1 else factor[:, groups])
    return np.asarray(x, dtype=np.float64)


def _segments(roster: pl.DataFrame) -> npt.NDArray[Any] | None:
    """The roster's platform and tier per row (``intervals.segments_of``); None on builds without it (bench_economics
    lays this module over older builds)."""
    try:
        from influencer_engine.modeling.intervals import segments_of
    except ImportError:
        return None
    return segments_of(roster)


def _picked(
    goal: str,
    prep: Prepared,
    planned: I64,
    oracle: I64,
    true_rows: pl.DataFrame,
    totals: PlanTotals,
    score: Callable[[I64], float],
    errors: dict[str, ExpectedError],
    rng: np.random.Generator,
) -> dict[str, Any]:
    """What was picked, against the truth: each picked creator's forecast over its true expected value of the goal's
    KPI, whether the plan's P10-P90 band of its goal holds the roster's true value, and the true and forecast cost
    figures of the planned roster and the oracle roster.

    Where the models measured their error about expected values (``errors``), also the P10-P90 band of the roster's
    expected total of the goal's KPI (summed, for reach too) drawn from that error alone (``expected_draws``) and
    whether it holds the true sum; and the forecast over the true sum of the goal's KPI over every eligible
    candidate (the level the roster was picked from)."""
    g = GOALS[goal]
    table = prep.candidates.table
    price = table["price"].cast(pl.Float64).to_numpy()
    forecast_kpi = table[g.kpi].cast(pl.Float64).fill_null(0.0).to_numpy()
    true_kpis = {k: true_rows[k].cast(pl.Float64).fill_null(0.0).to_numpy() for k in KPI_NAMES}
    t = true_kpis[g.kpi][planned]
    ratios = np.where(t > 0, forecast_kpi[planned] / np.where(t > 0, t, 1.0), np.nan)
    spend = float(price[planned].sum())
    truth = true_kpis["revenue"][planned].sum() / spend if g.value == "net_return" and spend > 0 else score(planned)
    band = totals.goal
    holds = None if band.p10 is None or band.p90 is None else bool(band.p10 <= truth <= band.p90)
    lo = hi = expected_holds = None
    error = errors.get(g.kpi)
    if error is not None and error.share is not None and g.kpi in prep.quantiles:
        segments = _segments(table[planned.tolist()])
        drawn = expected_draws(prep.quantiles[g.kpi][planned], error, EXPECTED_DRAWS, rng, segments).sum(axis=1)
        lo, hi = (float(v) for v in np.quantile(drawn, [0.1, 0.9]))
        expected_holds = bool(lo <= float(t.sum()) <= hi)
    known = np.isfinite(true_kpis[g.kpi]) & np.isfinite(forecast_kpi)
    base_true = float(true_kpis[g.kpi][known].sum())
    out: dict[str, Any] = {
        "picked_forecast_over_true": [float(x) for x in ratios[np.isfinite(ratios)]],
        "roster_true_total": float(truth), "roster_true_kpi": float(t.sum()),
        "roster_forecast_kpi": float(forecast_kpi[planned].sum()),
        "roster_band_p10": band.p10, "roster_band_p90": band.p90,
        "roster_expected": band.expected, "band_holds_truth": holds,
        "roster_expected_band_p10": lo, "roster_expected_band_p90": hi, "expected_band_holds_truth": expected_holds,
        "base_forecast_over_true": float(forecast_kpi[known].sum()) / base_true if base_true > 0 else None,
        "spend": spend,
    }  # fmt: skip
    for name, rows in (("planned", planned), ("oracle", oracle)):
        s = float(price[rows].sum())
        for fig, v in cost_figures_of(s, {k: float(a[rows].sum()) for k, a in true_kpis.items()}).items():
            out[f"{name}_true_{fig}"] = v
    for fig in ("cpm", "cpa", "roas"):
        got = totals.cost_figures.get(fig)
        out[f"planned_forecast_{fig}"] = float(got) if got is not None else float("nan")
    return out


def _delivered_inside(world: World, brief: Brief, goal: str, ids: list[str], picked: dict[str, Any],
                      totals: PlanTotals, rng: np.random.Generator) -> float | None:  # fmt: skip
    """The share of simulated deliveries of the roster (the outcomes a campaign would observe, drawn with the
    world's own noise) whose goal total falls inside the plan's P10-P90 band: what the band promises is 80%.
    None for unique reach (its delivered value is not drawn) and for rosters without a band."""
    g, band = GOALS[goal], totals.goal
    if g.kind == "coverage" or band.p10 is None or band.p90 is None or not ids:
        return None
    drawn = world.delivered_totals(brief, ids, draws=DELIVERY_DRAWS, rng=rng)[g.kpi]
    if g.value == "net_return":  # the band of the ROAS goal is on revenue over spend
        spend = picked["spend"]
        goal_drawn = drawn / spend if spend > 0 else drawn
    else:  # EMV is impressions at a fixed CPM: the goal is the KPI times a constant
        true_kpi = picked["roster_true_kpi"]
        goal_drawn = drawn * (picked["roster_true_total"] / true_kpi) if true_kpi > 0 else drawn
    return float(np.mean((goal_drawn >= band.p10) & (goal_drawn <= band.p90)))


# goals whose value is one KPI's total, so a roster's downside can be read from its simulated deliveries
_DOWNSIDE_GOALS = ("engagement", "clicks", "conversions", "revenue")


def _risk_downside(world: World, brief: Brief, goal: str, planned: I64, table: pl.DataFrame, forecast: Any,
                   cfg: PlannerConfig, score: Callable[[I64], float],
                   rng: np.random.Generator) -> dict[str, Any]:  # fmt: skip
    """The brief planned on each creator's P10 beside the expected-value plan (``planned``, rows of ``table``): both
    rosters' true value and their downside, the 10th percentile of the goal's total over simulated deliveries.
    Empty for goals that are not one KPI's total."""
    if goal not in _DOWNSIDE_GOALS:
        return {}
    averse = prepare(forecast, brief.model_copy(update={"risk": "p10"}), cfg)
    roster, _ = plan_candidates(averse, cfg)
    position = {c: i for i, c in enumerate(table["creator_id"].to_list())}
    picked = averse.candidates.table["creator_id"].gather(roster.chosen).to_list()
    rosters = {"expected": planned, "p10": np.array([position[c] for c in picked], dtype=np.intp)}
    out: dict[str, Any] = {"risk_same_roster": set(rosters["expected"].tolist()) == set(rosters["p10"].tolist())}
    for name, idx in rosters.items():
        ids = table["creator_id"].gather(idx).to_list()
        drawn = world.delivered_totals(brief, ids, draws=DELIVERY_DRAWS, rng=rng)[GOALS[goal].kpi] if ids else [0.0]
        out[f"risk_{name}_true_value"] = score(idx)
        out[f"risk_{name}_delivered_p10"] = float(np.quantile(drawn, 0.1))
    return out


def noisy_values(rows: pl.DataFrame, goal: str, log_error: F64, *, emv_cpm_usd: float) -> F64:
    """Goal values (``planner.problem.goal_values``) of ``rows`` (true KPIs and prices) as a forecast with a known log
    error of the goal's KPI would give them: the KPI times exp(error), then the goal's value rule. For net return (the
    KPI minus the price) a creator near paying back can so land on either side; an error on the net value itself
    would never flip its sign."""
    kpi = GOALS[goal].kpi
    noisy = rows.with_columns(pl.col(kpi).cast(pl.Float64).fill_null(0.0) * pl.Series(np.exp(log_error)))
    return goal_values(noisy, goal, "expected", emv_cpm_usd=emv_cpm_usd)


def _plan_on(problem: Problem, values: F64, cfg: PlannerConfig, audience: AudienceModel | None) -> I64:
    """The roster the planner's solver picks on ``values`` (unique reach when an audience model is given)."""
    s = cfg.solver
    if audience is not None:
        return solve_reach(problem, audience, values, gap=s.mip_rel_gap, time_limit=s.time_limit_s,
                           rounds=s.max_reach_rounds).chosen  # fmt: skip
    return solve_additive(problem, values, gap=s.mip_rel_gap, time_limit=s.time_limit_s).chosen


def _reach_score(model: AudienceModel, reach: F64, chosen: I64) -> float:
    return model.unique_reach(chosen, reach[chosen])


def _additive_score(values: F64, chosen: I64) -> float:
    return float(values[chosen].sum())


def _num(x: Any) -> float:
    return float(x) if x is not None else 0.0


def _quantiles(values: list[float] | F64) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    if not a.size:
        return {"p10": float("nan"), "median": float("nan"), "p90": float("nan"), "n": 0}
    p10, p50, p90 = np.quantile(a, [0.1, 0.5, 0.9])
    return {"p10": float(p10), "median": float(p50), "p90": float(p90), "n": int(a.size)}


def _picked_summary(part: pl.DataFrame, market: dict[str, float]) -> dict[str, Any]:
    """Per goal: forecast/true of picked creators, band coverage, and the rosters' cost figures against the market's
    (``vs_market``: how many times better than the market the roster is; > 1 is better)."""
    ratios = [x for xs in part["picked_forecast_over_true"].to_list() for x in (xs or [])]
    holds = part["band_holds_truth"].drop_nulls()
    expected_holds = part["expected_band_holds_truth"].drop_nulls()
    delivered = part["band_holds_delivered"].drop_nulls()
    roster_ratio = (part["roster_expected"] / part["roster_true_total"]).to_numpy()
    out: dict[str, Any] = {
        "picked_forecast_over_true": _quantiles(ratios),
        "roster_forecast_over_true": _quantiles(roster_ratio),
        "band_holds_truth": float(holds.mean()) if holds.len() else float("nan"),  # type: ignore[arg-type]
        # the band of the roster's expected sum of the goal's KPI, from the forecasts' error about expected values
        # alone (NaN where the models did not measure it), and the levels of the roster's and the candidates' sums
        "expected_band_holds_truth": (
            float(expected_holds.mean())  # type: ignore[arg-type]
            if expected_holds.len()
            else float("nan")
        ),
        "roster_kpi_forecast_over_true": _quantiles((part["roster_forecast_kpi"] / part["roster_true_kpi"]).to_numpy()),
        "base_forecast_over_true": _quantiles(part["base_forecast_over_true"].cast(pl.Float64).to_numpy()),
        # the mean share of simulated deliveries inside the band (NaN for unique reach, whose delivery is not drawn)
        "band_holds_delivered": float(delivered.mean()) if delivered.len() else float("nan"),  # type: ignore[arg-type]
        "market": market,
    }
    for name in ("planned_true", "oracle_true", "planned_forecast"):
        fig: dict[str, Any] = {}
        for f in ("cpm", "cpa", "roas"):
            v = part[f"{name}_{f}"].to_numpy().astype(np.float64)
            m = market[f]
            better = m / v if f != "roas" else v / m
            fig[f] = {**_quantiles(v), "vs_market": _quantiles(better)}
        out[name] = fig
    return out


def _summary(frame: pl.DataFrame, market: dict[str, float]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for goal in dict.fromkeys(frame["goal"].to_list()):
        part = frame.filter((pl.col("goal") == goal) & pl.col("planner_share").is_not_null())
        entry: dict[str, Any] = {
            "briefs": part.height,
            "briefs_without_oracle_value": frame.filter(pl.col("goal") == goal).height - part.height,
        }
        for name in _COMPARED:
            s = part[f"{name}_share"]
            entry[name] = {"mean_share": _num(s.mean()), "median_share": _num(s.median()), "min_share": _num(s.min())}
        if "risk_p10_true_value" in part.columns:  # planned on P10 vs on expected values, the same briefs
            r = part.filter(pl.col("risk_p10_true_value").is_not_null())
            entry["risk_averse"] = {
                "briefs": r.height,
                "same_roster": _num(r["risk_same_roster"].cast(pl.Float64).mean()),
                "true_value_p10_over_expected": _num((r["risk_p10_true_value"] / r["risk_expected_true_value"]).mean()),
                "delivered_p10_p10_over_expected": _num(
                    (r["risk_p10_delivered_p10"] / r["risk_expected_delivered_p10"]).mean()),
            }  # fmt: skip
        entry["oracle_certified_gap_max"] = _num(part["oracle_certified_gap"].max())
        entry["plan_seconds_median"] = _num(part["plan_seconds"].median())
        entry["picked"] = _picked_summary(part, market)
        out[goal] = entry
    return out


def summary_lines(ev: PlannerEvaluation) -> list[str]:
    refs = [error_reference(s) for s in ERROR_LEVELS]
    lines = [f"{'goal':12} {'briefs':>6} {'planner':>8} " + " ".join(f"{h:>21}" for h in HEURISTICS)
             + " " + " ".join(f"{'truth, log sd ' + f'{s:g}':>18}" for s in ERROR_LEVELS)
             + f" {'forecast/true P10-P50-P90':>26} {'band holds truth':>16} {'delivered':>9}"
             + f" {'expected band holds':>19} {'base f/t':>8}"]  # fmt: skip
    for goal, e in ev.summary.items():
        r = e["picked"]["picked_forecast_over_true"]
        lines.append(f"{goal:12} {e['briefs']:>6} {e['planner']['mean_share']:>8.1%} "
                     + " ".join(f"{e[h]['mean_share']:>21.1%}" for h in HEURISTICS)
                     + " " + " ".join(f"{e[h]['mean_share']:>18.1%}" for h in refs)
                     + f" {r['p10']:>8.2f} {r['median']:>8.2f} {r['p90']:>8.2f}"
                     + f" {e['picked']['band_holds_truth']:>16.0%}"
                     + f" {e['picked']['band_holds_delivered']:>9.0%}"
                     + f" {e['picked']['expected_band_holds_truth']:>19.0%}"
                     + f" {e['picked']['base_forecast_over_true']['median']:>8.2f}")  # fmt: skip
    for goal, e in ev.summary.items():
        r = e.get("risk_averse")
        if r and r["briefs"]:
            lines.append(f"risk p10 vs expected, {goal}: same roster in {r['same_roster']:.0%} of briefs; true value "
                         f"x{r['true_value_p10_over_expected']:.3f}; P10 of delivered totals "
                         f"x{r['delivered_p10_p10_over_expected']:.3f}")  # fmt: skip
    return lines
