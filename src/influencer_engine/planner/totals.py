"""A roster's totals with Monte Carlo bands, as one typed result (``PlanTotals``) with one JSON form.

Each creator's KPI is drawn from a split log-normal through its P10/P50/P90, rescaled so the draws average to its
forecast mean; roster totals, unique reach (recomputed per draw), EMV and ROAS get their P10/P50/P90 from the sums of
the draws. Creators are drawn independently but for the share of their bands that the models measured to be common
to the creators of one campaign (``modeling.intervals.ErrorSplit``): that part moves a roster's creators together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from pydantic import BaseModel, ConfigDict

from influencer_engine.features.averages import AVERAGE_POSTS
from influencer_engine.planner.coverage import AudienceModel
from influencer_engine.planner.knapsack import Solution
from influencer_engine.planner.slack import BudgetLeft
from influencer_engine.registry import COST_FIGURES, GOALS, KPI_NAMES

__all__ = [
    "Assumptions",
    "Band",
    "CandidateCounts",
    "GoalTotal",
    "PlanTotals",
    "SolverReport",
    "UniqueReach",
    "assumptions_of",
    "cost_figures",
    "kpi_quantiles",
    "roster_totals",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_Z90 = 1.2815515655446004  # standard normal quantile of 0.9


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Band(_Frozen):
    """An expected total and its Monte Carlo P10/P50/P90 (absent where no band can be drawn)."""

    expected: float
    p10: float | None = None
    p50: float | None = None
    p90: float | None = None


class UniqueReach(Band):
    duplication: float  # share of the roster's summed reach that reaches people twice or more
    # share of the roster's summed reach from creators whose audience is assumed or unknown: the overlap between
    # them rests on their platform's (or category's) average audience, not on theirs
    assumed_share: float = 0.0


class Assumptions(_Frozen):
    """What the roster's figures rest on besides the data (counts of roster creators), in words for people."""

    estimated_price: int = 0
    estimated_spend: float = 0.0  # spend at estimated prices
    estimated_spend_p10: float = 0.0  # that spend at the estimates' P10 and P90
    estimated_spend_p90: float = 0.0
    assumed_audience: int = 0  # platform (or category) average audience assumed
    unknown_audience: int = 0  # no audience and no average to assume
    estimated_credibility: int = 0
    averaged_history: int = 0  # no posts: the history read from the export's averages per post
    no_history: int = 0  # no posts and no averages: forecast from size, platform and peers
    notes: list[str] = []


def assumptions_of(roster: pl.DataFrame, assumed_reach_share: float) -> Assumptions:
    """The roster's assumptions from its provenance columns (``problem.build_candidates`` sees they are there)."""
    if roster.height == 0:
        return Assumptions()
    est = roster.filter(pl.col("price_source") == "estimated")
    aud = roster["audience_source"].value_counts()
    counts = dict(zip(aud["audience_source"].to_list(), aud["count"].to_list(), strict=True))
    a = Assumptions(
        estimated_price=est.height,
        estimated_spend=float(est["price"].sum()),
        estimated_spend_p10=float(est["price_p10"].sum()),
        estimated_spend_p90=float(est["price_p90"].sum()),
        assumed_audience=int(counts.get("assumed", 0)),
        unknown_audience=int(counts.get("unknown", 0)),
        estimated_credibility=int((roster["credibility_source"] == "estimated").sum()),
        averaged_history=_count(roster, "history_source", "averages"),
        no_history=_count(roster, "history_source", "none"),
    )
    n = roster.height
    notes = []
    if a.estimated_price:
        spend = (f"${a.estimated_spend:,.0f} of the spend (P10-P90 ${a.estimated_spend_p10:,.0f}-"
                 f"${a.estimated_spend_p90:,.0f})")  # fmt: skip
        notes.append(f"{a.estimated_price} of {n} prices are estimated from the rate card, not quoted: {spend}; "
                     "ask for quotes, or set constraints.quoted_prices_only")  # fmt: skip
    if a.assumed_audience or a.unknown_audience:
        notes.append(f"{a.assumed_audience + a.unknown_audience} of {n} audiences are not in the data "
                     f"({a.assumed_audience} assumed from their platform's average, {a.unknown_audience} unknown): "
                     "their audience fit is an assumption (their bands carry what that was measured to add); "
                     f"the overlap rests on assumed audiences for {assumed_reach_share:.0%} of the summed "
                     "reach")  # fmt: skip
    if a.estimated_credibility:
        notes.append(f"{a.estimated_credibility} of {n} audience credibilities are estimated from engagement "
                     f"(not reported)")  # fmt: skip
    if a.averaged_history:
        notes.append(f"{a.averaged_history} of {n} creators have no posts in the data: their history is their export's "
                     f"averages per post, read as {AVERAGE_POSTS} weekly posts up to the day before the brief, spread "
                     "like a typical creator's (features.averages)")  # fmt: skip
    if a.no_history:
        notes.append(f"{a.no_history} of {n} creators have no posts and no averages per post in the data: "
                     "forecast from their size, platform and peers alone (their bands carry what that was measured "
                     "to add)")  # fmt: skip
    return a.model_copy(update={"notes": notes})


def _count(roster: pl.DataFrame, column: str, value: str) -> int:
    return int((roster[column] == value).sum()) if column in roster.columns else 0


class GoalTotal(Band):
    name: str  # the brief's goal
    label: str  # its name for people


class SolverReport(_Frozen):
    status: str  # "optimal" (within the gap asked), "gap", "time_limit"
    objective: float
    bound: float  # certified upper bound on the best roster's objective
    certified_gap: float
    method: str
    candidates: int  # columns the solver saw
    seconds: float
    details: dict[str, float | int | str] = {}  # solver-specific counts (LP rounds, columns after fixing, ...)


class CandidateCounts(_Frozen):
    """Every candidate row is eligible, filtered by the brief (with a reason) or rejected (with a reason)."""

    rows_in: int
    rejected: int
    filtered: int
    eligible: int


class PlanTotals(_Frozen):
    creators: int
    spend: float
    budget: float
    spend_share: float | None  # spend / budget
    goal: GoalTotal
    kpis: dict[str, Band]  # every forecast KPI summed over the roster
    unique_reach: UniqueReach
    emv: Band | None = None
    roas: Band | None = None
    cost_figures: dict[str, float | None] = {}  # the roster's CPM, CPE, CPC, CPA (spend per result) and ROAS
    solver: SolverReport
    candidates: CandidateCounts | None = None
    budget_left: BudgetLeft | None = None  # why budget stays unspent, when the plan spends well under it
    assumptions: Assumptions = Assumptions()  # estimated prices, assumed audiences, estimated credibility

    def json_dict(self) -> dict[str, Any]:
        """The one JSON form (NaN and infinities as null)."""
        return self.model_dump(mode="json")


def cost_figures(spend: float, totals: Mapping[str, float]) -> dict[str, float | None]:
    """CPM, CPE, CPC, CPA (spend per result) and ROAS of ``spend`` buying ``totals`` (KPI -> total), for every
    figure whose KPI is there (None where it is undefined: nothing bought, or nothing spent)."""
    figures: dict[str, float | None] = {}
    for name, fig in COST_FIGURES.items():
        if fig.kpi not in totals:
            continue
        total = totals[fig.kpi]
        if fig.kind == "cost":
            figures[name] = spend * fig.per / total if total > 0 else None
        else:
            figures[name] = total / (spend * fig.per) if spend > 0 else None
    return figures


def kpi_quantiles(table: pl.DataFrame) -> dict[str, F64]:
    """Each KPI's P10, P50, P90 and mean per row as one (rows, 4) array (missing as 0, negatives clipped)."""
    out: dict[str, F64] = {}
    for kpi in KPI_NAMES:
        cols = [f"{kpi}_p10", f"{kpi}_p50", f"{kpi}_p90", kpi]
        if all(c in table.columns for c in cols):
            m = table.select(pl.col(c).cast(pl.Float64).fill_null(0.0) for c in cols).to_numpy()
            out[kpi] = np.maximum(np.asarray(m, dtype=np.float64), 0.0)
    return out


def _draws(quantiles: F64, errors: F64 | None, draws: int, rng: np.random.Generator) -> F64:
    """(draws, rows) samples of a KPI: a split log-normal through each row's P10/P50/P90 on log1p scale, rescaled to
    average to the forecast mean.

    ``quantiles`` is (rows, 4): P10, P50, P90 and the forecast mean (see ``kpi_quantiles``); ``errors`` is (rows, 2):
    the share of each band's base variance common to a campaign's creators, and the variance the row's assumptions
    added (its own; see ``forecast.band_errors``). None: creators independent.
    """
    rows = quantiles.shape[0]
    q = np.log1p(quantiles[:, :3]).T
    lo_s, hi_s = (q[1] - q[0]) / _Z90, (q[2] - q[1]) / _Z90
    z = rng.standard_normal((draws, rows))
    if errors is not None:
        total = (lo_s**2 + hi_s**2) / 2.0
        base = total - np.minimum(errors[:, 1], total)
        common = np.where(total > 0, errors[:, 0] * base / np.where(total > 0, total, 1.0), 0.0)
        z = np.sqrt(1.0 - common) * z + np.sqrt(common) * rng.standard_normal((draws, 1))
    x = np.expm1(q[1] + z * np.where(z < 0, lo_s, hi_s))
    # the shape comes from the quantiles, the level from the forecast mean: draws average to the expected value
    mean = quantiles[:, 3]
    drawn = x.mean(axis=0)
    return np.asarray(x * np.where(drawn > 0, mean / np.where(drawn > 0, drawn, 1.0), 0.0), dtype=np.float64)


def _band(expected: float, x: F64) -> dict[str, float]:
    p10, p50, p90 = np.quantile(x, [0.1, 0.5, 0.9])
    return {"expected": expected, "p10": float(p10), "p50": float(p50), "p90": float(p90)}


def _solver(sol: Solution) -> SolverReport:
    stats = dict(sol.stats)
    known = {"method": str(stats.pop("method", "")), "candidates": int(stats.pop("candidates", 0)),
             "seconds": float(stats.pop("seconds", 0.0))}  # fmt: skip
    return SolverReport(status=sol.status, objective=sol.value, bound=sol.bound, certified_gap=sol.gap, **known,
                        details=stats)  # fmt: skip


def roster_totals(
    table: pl.DataFrame,
    quantiles: dict[str, F64],
    audience: AudienceModel,
    chosen: I64,
    sol: Solution,
    *,
    goal: str,
    budget: float,
    emv_cpm_usd: float,
    draws: int,
    seed: int,
    errors: dict[str, F64] | None = None,
) -> PlanTotals:
    """Spend, every KPI, unique reach, EMV and ROAS over the roster ``chosen`` (rows of ``table``), with bands;
    ``errors`` says what each row's bands share with the roster (``forecast.band_errors``; None: nothing)."""
    roster = table[chosen.tolist()]
    rng = np.random.default_rng(seed)
    spend = float(roster["price"].sum()) if roster.height else 0.0
    samples: dict[str, F64] = {}
    kpis: dict[str, Band] = {}
    for kpi in KPI_NAMES:
        if kpi not in quantiles:
            continue
        err = errors[kpi][chosen] if errors is not None and kpi in errors else None
        s = _draws(quantiles[kpi][chosen], err, draws, rng) if roster.height else np.zeros((draws, 0))
        samples[kpi] = s
        kpis[kpi] = Band(**_band(float(roster[kpi].fill_null(0.0).sum()), s.sum(axis=1)))
    aud = audience.take(chosen)
    r_exp = np.nan_to_num(roster["reach"].cast(pl.Float64).to_numpy()) if roster.height else np.zeros(0)
    ur = aud.unique_reach(np.arange(len(chosen)), r_exp)
    per_draw = aud.covered_many(np.maximum(samples["reach"], 0.0)) if roster.height else np.zeros(1)
    duplication = 1.0 - ur / max(float(r_exp.sum()), 1e-9) if roster.height else 0.0
    assumed = (roster["audience_source"] != "given").to_numpy()
    assumed_share = float(r_exp[assumed].sum() / max(float(r_exp.sum()), 1e-9)) if roster.height else 0.0
    unique = UniqueReach(**_band(ur, per_draw), duplication=duplication, assumed_share=assumed_share)
    emv = None
    if "impressions" in samples:
        emv = Band(**_band(kpis["impressions"].expected * emv_cpm_usd / 1000.0,
                           samples["impressions"].sum(axis=1) * emv_cpm_usd / 1000.0))  # fmt: skip
    roas = None
    if "revenue" in samples and spend > 0:
        roas = Band(**_band(kpis["revenue"].expected / spend, samples["revenue"].sum(axis=1) / spend))
    figures = cost_figures(spend, {k: b.expected for k, b in kpis.items()})
    g = GOALS[goal]
    parts: dict[str, Band | None] = {"unique_reach": unique, "emv": emv, "roas": roas, **kpis}
    band = parts.get(g.total) or Band(expected=0.0)
    return PlanTotals(
        creators=roster.height,
        spend=spend,
        budget=budget,
        spend_share=spend / budget if budget else None,
        goal=GoalTotal(name=g.name, label=g.label, **band.model_dump(exclude={"duplication", "assumed_share"})),
        kpis=kpis,
        unique_reach=unique,
        emv=emv,
        roas=roas,
        cost_figures=figures,
        solver=_solver(sol),
        assumptions=assumptions_of(roster, assumed_share),
    )
