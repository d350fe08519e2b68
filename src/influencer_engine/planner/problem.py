"""From forecasts and a brief to an optimization problem: who is eligible, what each is worth, which rows bind.

Every candidate row either becomes a column of the problem or is filtered with a reason (rows in = eligible +
filtered). Constraints become linear rows ``lo <= A x <= hi``; shares of spend are written homogeneously
(sum over the tier of price x (1 - share) - sum over the rest of price x share >= 0), so a roster that meets
them keeps meeting them as the budget grows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from influencer_engine.brief import Brief, MixLimit
from influencer_engine.errors import EngineError
from influencer_engine.planner.knapsack import Problem, highs, highs_lp
from influencer_engine.registry import GOALS, PLATFORMS, RISKS, TIERS

__all__ = [
    "CAP_REASON",
    "Candidates",
    "PlanInfeasible",
    "RowInfo",
    "build_candidates",
    "explain_infeasible",
    "filter_counts",
    "goal_values",
    "money",
]

F64 = npt.NDArray[np.float64]


class PlanInfeasible(EngineError):
    """No roster meets the brief; ``reasons`` says which constraint fails and by how much."""

    def __init__(self, reasons: list[str], *, fix: str, filtered: pl.DataFrame | None = None) -> None:
        self.reasons = reasons
        self.filtered = filtered  # the candidates the brief's filters left out, with the reason of each
        super().__init__("The brief cannot be met: " + "; ".join(reasons) + ".", fix=fix)


@dataclass(frozen=True)
class RowInfo:
    label: str  # plain words, e.g. "budget $50,000" or "micro creators >= 2"
    unit: str  # "$" or "creators"
    field: str = ""  # the brief's setting behind its limit: "roster_max", "macro max_count", "tiktok max_share"


@dataclass(frozen=True)
class Candidates:
    table: pl.DataFrame  # eligible forecast rows; row i is column i of the problem
    filtered: pl.DataFrame  # creator_id, reason: candidates left out, and why
    problem: Problem
    rows: tuple[RowInfo, ...]
    cheapest: float | None = None  # the lowest list price among the candidates before the brief's filters


def goal_values(table: pl.DataFrame, goal: str, risk: str, *, emv_cpm_usd: float) -> F64:
    """What each candidate adds to an additive goal (for reach: its own reach), at the brief's risk level.

    The goal's value rule (registry): its KPI, the KPI's earned media value, or its net return (KPI minus price).
    """
    g = GOALS[goal]
    col = g.kpi + ("_p90" if risk == "p90" else RISKS[risk])  # p90: the top of the band (not a planning level)
    v = table[col].cast(pl.Float64).fill_null(np.nan).to_numpy().copy()
    v = np.nan_to_num(v, nan=0.0)
    if g.value == "emv":
        v = v * emv_cpm_usd / 1000.0
    if g.value == "net_return":
        v = v - table["price"].cast(pl.Float64).to_numpy()
    return np.asarray(v, dtype=np.float64)


# the reason a candidate priced above constraints.max_spend_per_creator is filtered with
CAP_REASON = "price above the per-creator cap"


def money(v: float) -> str:
    """Dollars for people: cents under $1, whole dollars above."""
    return f"${v:,.2f}" if 0 < abs(v) < 1 else f"${v:,.0f}"


def _filters(table: pl.DataFrame, brief: Brief) -> pl.Expr:
    """The first reason a row is not eligible (null: eligible)."""
    c = brief.constraints
    kpi = GOALS[brief.goal].kpi + RISKS[brief.risk]
    checks: list[tuple[pl.Expr, pl.Expr]] = [
        (pl.col("creator_id").is_in(list(c.exclude)), pl.lit("excluded by the brief")),
        (~pl.col("platform").is_in(list(brief.platforms)), pl.format("platform {} not in the brief", "platform")),
        (~pl.col("tier").is_in(list(brief.tiers)), pl.format("tier {} not allowed by the brief", "tier")),
        (~pl.col("format").is_in(list(brief.formats)), pl.format("format {} not in the brief", "format")),
        (pl.col("price").is_null() | (pl.col("price") <= 0), pl.lit("no price")),
        (pl.col(kpi).is_null(), pl.lit(f"no {kpi} forecast")),
        (pl.col("price") > brief.budget, pl.lit(f"price above the budget {money(brief.budget)}")),
    ]
    if c.max_spend_per_creator is not None:
        cap = c.max_spend_per_creator
        checks.append((pl.col("price") > cap, pl.lit(f"{CAP_REASON} {money(cap)}")))
    given = pl.col("audience_source") == "given"
    if c.quoted_prices_only:
        checks.append((pl.col("price_source") != "quoted",
                       pl.lit("price estimated, the brief takes quoted prices only")))  # fmt: skip
    if c.unknown_audience == "exclude":
        checks.append((~given, pl.lit("audience unknown (the brief leaves out assumed audiences)")))
    if c.min_audience_fit is not None:
        tested = pl.lit(True) if c.unknown_audience == "assume" else given
        checks.append((tested & pl.col("audience_fit").is_null(), pl.lit("audience fit unknown")))
        checks.append((tested & (pl.col("audience_fit") < c.min_audience_fit),
                       pl.when(given).then(pl.lit(f"audience fit below {c.min_audience_fit:.0%}"))
                       .otherwise(pl.lit(f"assumed audience fit below {c.min_audience_fit:.0%}"))))  # fmt: skip
    if c.min_credibility is not None:
        checks.append((pl.col("audience_credibility").is_null(), pl.lit("audience credibility unknown")))
        checks.append((pl.col("audience_credibility") < c.min_credibility,
                       pl.when(pl.col("credibility_source") == "estimated")
                       .then(pl.lit(f"estimated audience credibility below {c.min_credibility:.0%}"))
                       .otherwise(pl.lit(f"audience credibility below {c.min_credibility:.0%}"))))  # fmt: skip
    expr = pl.lit(None, dtype=pl.String)
    for cond, reason in reversed(checks):
        expr = pl.when(cond.fill_null(False)).then(reason).otherwise(expr)
    return expr


def _mix_rows(
    limits: dict[str, MixLimit], member: dict[str, npt.NDArray[np.bool_]], price: F64, what: str
) -> list[tuple[F64, float, float, RowInfo]]:
    rows: list[tuple[F64, float, float, RowInfo]] = []
    for name, lim in limits.items():
        inside = member[name].astype(np.float64)
        lo = -np.inf if lim.min_count is None else float(lim.min_count)
        hi = np.inf if lim.max_count is None else float(lim.max_count)
        if np.isfinite(lo) or np.isfinite(hi):
            label = f"{name} {what} " + (
                f"{lim.min_count}-{lim.max_count}"
                if np.isfinite(lo) and np.isfinite(hi)
                else f">= {lim.min_count}"
                if np.isfinite(lo)
                else f"<= {lim.max_count}"
            )
            rows.append((inside, lo, hi, RowInfo(label, "creators", f"{name} max_count")))
        if lim.min_share is not None and lim.min_share > 0:
            info = RowInfo(f"{name} share of spend >= {lim.min_share:.0%}", "$", f"{name} min_share")
            rows.append((price * (inside - lim.min_share), 0.0, np.inf, info))
        if lim.max_share is not None and lim.max_share < 1:
            info = RowInfo(f"{name} share of spend <= {lim.max_share:.0%}", "$", f"{name} max_share")
            rows.append((price * (inside - lim.max_share), -np.inf, 0.0, info))
    return rows


def build_candidates(table: pl.DataFrame, brief: Brief) -> Candidates:
    """Eligible candidates of a forecast table and the brief's constraints as a problem."""
    c = brief.constraints
    known = set(table["creator_id"].to_list())
    missing = [i for i in c.include if i not in known]
    if missing:
        raise PlanInfeasible(
            [f"must-include creator(s) {', '.join(missing[:5])} are not among the candidates"],
            fix="check the ids against the candidate data, or drop them from constraints.include",
        )
    # tables made before provenance existed (or by hand) hold given values only
    defaults = {"price_source": pl.lit("quoted"), "audience_source": pl.lit("given"),
                "credibility_source": pl.lit("given"),
                "price_p10": pl.col("price"), "price_p90": pl.col("price")}  # fmt: skip
    table = table.with_columns(v.alias(k) for k, v in defaults.items() if k not in table.columns)
    marked = table.with_columns(_filters(table, brief).alias("_reason"))
    blocked = marked.filter(pl.col("creator_id").is_in(list(c.include)) & pl.col("_reason").is_not_null())
    if blocked.height:
        why = [f"must-include {r['creator_id']} is ruled out ({r['_reason']})" for r in blocked.iter_rows(named=True)]
        raise PlanInfeasible(why, fix="relax the constraint that rules it out, or drop it from constraints.include",
                             filtered=marked.filter(pl.col("_reason").is_not_null())
                             .select("creator_id", pl.col("_reason").alias("reason")))  # fmt: skip
    eligible = marked.filter(pl.col("_reason").is_null()).drop("_reason")
    filtered = marked.filter(pl.col("_reason").is_not_null()).select("creator_id", pl.col("_reason").alias("reason"))

    price = eligible["price"].cast(pl.Float64).to_numpy()
    n = eligible.height
    tiers = eligible["tier"].to_numpy()
    plats = eligible["platform"].to_numpy()
    share = float(c.min_spend_share or 0.0)
    # no floor at an infinite budget (the server prepares one problem for every budget): with_budget sets it
    floor = share * float(brief.budget) if share and np.isfinite(brief.budget) else -np.inf
    rows: list[tuple[F64, float, float, RowInfo]] = [
        (price, floor, float(brief.budget), RowInfo(_budget_label(brief.budget, c.min_spend_share), "$"))
    ]
    if c.roster_min is not None or c.roster_max is not None:
        lo = -np.inf if c.roster_min is None else float(c.roster_min)
        hi = np.inf if c.roster_max is None else float(c.roster_max)
        label = "roster size " + (f"{c.roster_min}-{c.roster_max}" if c.roster_min is not None and c.roster_max
                                  is not None else f">= {c.roster_min}" if c.roster_min is not None
                                  else f"<= {c.roster_max}")  # fmt: skip
        rows.append((np.ones(n), lo, hi, RowInfo(label, "creators", "roster_max")))
    rows += _mix_rows(c.tiers, {t: tiers == t for t in TIERS}, price, "creators")
    rows += _mix_rows(c.platforms, {p: plats == p for p in PLATFORMS}, price, "creators")
    a = sp.csr_matrix(np.vstack([r[0] for r in rows])) if n else sp.csr_matrix((len(rows), 0))
    fixed = eligible["creator_id"].is_in(list(c.include)).to_numpy()
    tier_idx = eligible["tier"].replace_strict(list(TIERS), range(len(TIERS)), return_dtype=pl.Int64).to_numpy()
    plat_idx = eligible["platform"].replace_strict(list(PLATFORMS), range(len(PLATFORMS)), return_dtype=pl.Int64)
    problem = Problem(
        cost=price.astype(np.float64),
        A=a,
        lo=np.array([r[1] for r in rows], dtype=np.float64),
        hi=np.array([r[2] for r in rows], dtype=np.float64),
        names=tuple(r[3].label for r in rows),
        fixed=fixed.astype(bool),
        group=tier_idx * len(PLATFORMS) + plat_idx.to_numpy(),
        spend_floor_share=share,
    )
    priced = table.filter(pl.col("price") > 0)["price"]
    cheapest = float(priced.min()) if priced.len() else None  # type: ignore[arg-type]
    return Candidates(table=eligible, filtered=filtered, problem=problem, rows=tuple(r[3] for r in rows),
                      cheapest=cheapest)  # fmt: skip


def _budget_label(budget: float, min_share: float | None) -> str:
    return f"budget {money(budget)}" + (f" (spend at least {min_share:.0%})" if min_share else "")


def _min_share(problem: Problem) -> float | None:
    """The brief's min_spend_share (None when it has none)."""
    return problem.spend_floor_share or None


def with_budget(problem: Problem, budget: float) -> Problem:
    """The same problem at another budget (row 0 is the budget row; a spend floor keeps its share)."""
    share = _min_share(problem)
    lo, hi = problem.lo.copy(), problem.hi.copy()
    hi[0] = budget
    if share is not None:
        lo[0] = share * budget
    return problem.evolve(lo=lo, hi=hi)


def at_budget(cand: Candidates, budget: float) -> Candidates:
    """The same candidates with the budget row (row 0) set to ``budget``, its label included."""
    rows = (RowInfo(_budget_label(budget, _min_share(cand.problem)), "$"), *cand.rows[1:])
    return replace(cand, problem=with_budget(cand.problem, budget), rows=rows)


def filter_counts(cand: Candidates, top: int = 3) -> str:
    """The brief's most common filter reasons with their counts: "9,025 assumed audience fit below 13%, ..."."""
    why = cand.filtered.group_by("reason").len().sort(["len", "reason"], descending=[True, False]).head(top)
    return ", ".join(f"{n:,} {r}" for r, n in why.iter_rows())


def explain_infeasible(cand: Candidates, budget: float) -> list[str]:
    """Which constraints cannot be met together, and by at least how much (an elastic LP over all candidates).

    Each row gets slack columns; the LP minimizes the total slack (dollars over the budget, creators short);
    the rows left with slack are the ones to relax, and the slack is the least they must move.
    """
    p = cand.problem
    m, n = p.A.shape
    unit_scale = np.array([budget if r.unit == "$" else 1.0 for r in cand.rows])
    eye = sp.identity(m, format="csr")
    a = sp.hstack([p.A, -eye, eye])  # A x - s_up + s_down, with lo <= . <= hi
    h = highs()
    h.passModel(highs_lp(a, np.concatenate([np.zeros(n), 1.0 / unit_scale, 1.0 / unit_scale]),
                         np.concatenate([p.fixed.astype(np.float64), np.zeros(2 * m)]),
                         np.concatenate([np.ones(n), np.full(2 * m, np.inf)]), p.lo, p.hi, maximize=False))  # fmt: skip
    h.run()
    s = np.asarray(h.getSolution().col_value)
    up, down = s[n : n + m], s[n + m :]
    reasons = []
    for i, row in enumerate(cand.rows):
        amount = max(up[i], down[i])
        if amount <= 1e-6 * unit_scale[i]:
            continue
        how = money(amount) if row.unit == "$" else f"{amount:,.1f} creators"
        if row.label.startswith("budget") and down[i] > up[i]:
            reasons.append(
                f"{row.label}: the other constraints let the roster spend at most {money(p.lo[0] - down[i])}"
                f", {how} short of the floor (lower constraints.min_spend_share or loosen the others)"
            )
        elif row.label.startswith("budget"):
            reasons.append(f"{row.label} is short by at least {how}")
        elif "share" in row.label:
            reasons.append(f"{row.label} cannot be met with the eligible candidates and the other constraints")
        else:
            reasons.append(f"{row.label} is off by at least {how}")
    if not reasons:
        reasons.append("the constraints can be met only by fractions of creators; no whole roster meets them all")
    eligible = cand.table.height
    if eligible < 50:
        common = filter_counts(cand)
        reasons.append(f"only {eligible} candidates pass the brief's filters" + (f" ({common})" if common else ""))
    if cand.cheapest is not None and budget < cand.cheapest:
        # the budget itself rules everyone out: say so first, whatever else the LP found short
        reasons.insert(0, f"budget {money(budget)} is below the cheapest candidate's price ({money(cand.cheapest)})")
    return reasons
