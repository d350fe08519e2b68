"""Why a plan leaves budget unspent, and what loosening each binding constraint would buy.

A roster spends less than its budget when something else stops it first: a row of the problem at its limit
(roster size, a tier's or platform's count or share), the per-creator price cap, a pool of candidates with nothing
left worth adding, or a leftover smaller than any remaining candidate's price. Each row at its limit is loosened
alone and the problem re-solved at the same budget, so the answer is measured, not guessed: "roster size <= 40
binds: 50 creators would spend $X more for about Y more conversions".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from influencer_engine.planner.knapsack import Problem, Solution
from influencer_engine.planner.problem import Candidates, RowInfo, filter_counts, money

__all__ = ["BudgetLeft", "Loosening", "budget_left"]

F64 = npt.NDArray[np.float64]
# a re-solve of the same goal on a changed problem (the caller's solver, at the same budget)
Resolve = Callable[[Problem], Solution]
_TOL = 1e-6


class Loosening(BaseModel):
    """One constraint loosened alone, re-solved at the same budget."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    constraint: str  # the row as the brief states it, e.g. "roster size 5-40"
    change: str  # what was loosened, e.g. "roster_max 40 -> 50"
    extra_spend: float  # dollars the loosened plan spends beyond this one
    extra_goal: float  # what it adds to the goal (the solver's objective: the goal at the brief's risk level)
    binds: bool  # loosening it buys something (spend or goal)


class BudgetLeft(BaseModel):
    """Why ``unspent`` dollars of the budget stay unspent (present when a plan spends under the configured share)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unspent: float
    unspent_share: float
    binding: list[str]  # the constraints that stop the roster from spending more (empty: none does)
    reason: str  # one sentence for people
    loosen: list[Loosening] = []


def _step_count(limit: float) -> float:
    return limit + max(5.0, math.ceil(0.25 * limit)) if limit >= 10 else limit + max(1.0, math.ceil(0.5 * limit))


def _loosen_row(problem: Problem, i: int, info: RowInfo) -> tuple[Problem, str] | None:
    """The problem with row ``i`` loosened one step, and the change in words (None: nothing to loosen)."""
    if info.unit == "creators":
        if not np.isfinite(problem.hi[i]):
            return None
        old = float(problem.hi[i])
        hi = problem.hi.copy()
        hi[i] = _step_count(old)
        return problem.evolve(hi=hi), f"{info.field} {old:.0f} -> {hi[i]:.0f}"
    if not info.field.endswith("_share"):
        return None
    # a share row is price x (inside - share): moving the share by d adds -d x price (max) or +d x price (min)
    d = 0.10
    sign = -1.0 if np.isfinite(problem.hi[i]) else 1.0
    delta = sp.csr_matrix((sign * d * problem.cost, (np.full(problem.n, i), np.arange(problem.n))),
                          shape=problem.A.shape)  # fmt: skip
    what = f"{info.field} {'+' if sign < 0 else '-'}{d:.0%}"
    return replace(problem, A=(problem.A + delta).tocsr()), what


def _blocking(problem: Problem, rows: tuple[RowInfo, ...], chosen: npt.NDArray[np.int64]) -> list[int]:
    """Rows (besides the budget) that adding a creator could break: at their upper limit, or share floors at 0."""
    x = np.zeros(problem.n)
    x[chosen] = 1.0
    ax = problem.A @ x
    out = []
    for i in range(1, len(rows)):
        if rows[i].unit == "creators":
            if np.isfinite(problem.hi[i]) and ax[i] >= problem.hi[i] - 0.5:
                out.append(i)
        elif rows[i].field.endswith("_share"):
            scale = max(float(problem.cost[chosen].sum()), 1.0)
            at_hi = np.isfinite(problem.hi[i]) and ax[i] >= problem.hi[i] - 1e-3 * scale
            at_lo = np.isfinite(problem.lo[i]) and ax[i] <= problem.lo[i] + 1e-3 * scale
            if at_hi or at_lo:
                out.append(i)
    return out


def budget_left(
    cand: Candidates,
    values: F64,
    sol: Solution,
    budget: float,
    resolve: Resolve,
    *,
    goal_label: str,
    explain_below: float,
    cap: tuple[float, Callable[[float], tuple[float, float] | None]] | None = None,
) -> BudgetLeft | None:
    """Why the roster ``sol`` spends under ``explain_below`` of ``budget`` (None when it does not).

    ``values`` are the goal values the solver maximized (for additive goals; only their sign is read);
    ``resolve`` re-solves a loosened problem at the same budget. ``cap`` is the brief's per-creator price cap and a
    function that re-plans with a raised cap and returns (extra spend, extra goal), or None.
    """
    problem = cand.problem
    chosen = sol.chosen
    spend = float(problem.cost[chosen].sum()) if chosen.size else 0.0
    unspent = budget - spend
    if budget <= 0 or spend >= explain_below * budget:
        return None
    loosen: list[Loosening] = []
    for i in _blocking(problem, cand.rows, chosen):
        info = cand.rows[i]
        changed = _loosen_row(problem, i, info)
        if changed is None:
            continue
        new_problem, what = changed
        new = resolve(new_problem)
        if new.status == "infeasible":
            continue
        extra_spend = float(new_problem.cost[new.chosen].sum()) - spend
        extra_goal = float(new.value - sol.value)
        binds = extra_spend > 0.01 * budget or extra_goal > 1e-3 * max(abs(sol.value), 1.0)
        loosen.append(Loosening(constraint=info.label, change=what, extra_spend=extra_spend, extra_goal=extra_goal,
                                binds=binds))  # fmt: skip
    if cap is not None:
        limit, replan = cap
        got = replan(limit * 2.0)
        if got is not None:
            extra_spend, extra_goal = got
            binds = extra_spend > 0.01 * budget or extra_goal > 1e-3 * max(abs(sol.value), 1.0)
            loosen.append(Loosening(constraint=f"price cap per creator {money(limit)}",
                                    change=f"max_spend_per_creator {money(limit)} -> {money(limit * 2)}",
                                    extra_spend=extra_spend, extra_goal=extra_goal, binds=binds))  # fmt: skip
    binding = [lo.constraint for lo in loosen if lo.binds]
    share = unspent / budget
    head = f"{money(unspent)} ({share:.0%}) of the budget is left"
    if binding:
        parts = [f"{lo.constraint} binds: {lo.change} would spend {money(lo.extra_spend)} more for about "
                 f"{_amount(lo.extra_goal)} more {goal_label}" for lo in loosen if lo.binds]  # fmt: skip
        reason = f"{head}: " + "; ".join(parts)
    else:
        picked = np.zeros(problem.n, dtype=bool)
        picked[chosen] = True
        rest = ~picked
        worth = rest & (values > 0)
        if not rest.any():
            reason = f"{head}: every eligible candidate ({problem.n:,}) is already in the roster"
            common = filter_counts(cand)
            if common:
                reason += f"; the brief's filters leave out {common} (filtered.parquet lists every one)"
        elif not worth.any():
            reason = f"{head}: no candidate left adds to {goal_label}"
        elif float(problem.cost[worth].min()) > unspent:
            reason = (f"{head}: every candidate left that adds to {goal_label} costs more than that "
                      f"(cheapest {money(float(problem.cost[worth].min()))})")  # fmt: skip
        else:
            reason = f"{head}: adding more would break a constraint together with the others (no single one binds)"
    return BudgetLeft(unspent=unspent, unspent_share=share, binding=binding, reason=reason, loosen=loosen)


def _amount(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 else f"{v:,.1f}"
