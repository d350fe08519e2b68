"""Additive goals: a 0/1 knapsack with side constraints, solved exactly by HiGHS on a provably safe reduction.

Plain HiGHS MILP stalls on 100k+ candidates. The reduction keeps optimality:

1. **LP bound by column generation.** The LP relaxation is solved on a seed of promising columns; the row duals
   price every candidate (reduced cost d_j = v_j - a_j.y). Columns with d_j > 0 join, until none is left: the
   LP optimum over all candidates, with a Lagrangian upper bound UB(y) valid at every step.
2. **An incumbent.** The LP optimum rounded down (members dropped where a cap breaks) and filled by reduced
   cost; then a small MILP over the 80 columns with the highest reduced costs plus that roster, started from
   it. When the roster is within the gap of UB, the solve stops here: UB certifies it.
3. **Reduced-cost fixing.** Any roster that picks a column with d_j < -(UB - incumbent), or drops one with
   d_j > UB - incumbent, is worth less than the incumbent (LP duality), so those columns are fixed.
4. **MILP on what is left** (a few hundred columns), warm-started with the incumbent. HiGHS's dual bound on
   the reduced problem is then a bound on the full one, so the gap reported is certified.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

__all__ = [
    "Problem",
    "Relaxation",
    "Solution",
    "cap_rows",
    "highs",
    "highs_lp",
    "relax",
    "repair",
    "roster_rows",
    "solve_additive",
    "solve_milp",
    "top_k",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B8 = npt.NDArray[np.bool_]
_INF = highspy.kHighsInf
_FILL_POOL = 5000  # best value-per-dollar columns a greedy fill walks through
_FIT_BLOCK = 512  # candidates checked against the constraint rows at a time
_SHAPE_CACHES = ("dense", "csc", "group_slices", "_cheapest", "_row_scale")  # Problem's caches of A, cost, group
_SUB_GAP = 0.5  # its gap as a share of the solve's (0.1: rosters 0.01% better on average, 40% slower)
_SUB_COLUMNS = 80  # columns of the MILP that looks for a roster near the LP optimum (with the best roster found)
_QUICK_NODES = 50  # branch-and-bound nodes of the quick (not proven) MILPs: a deterministic work limit


@dataclass(frozen=True)
class Problem:
    """max v.x  s.t.  lo <= A x <= hi,  x binary,  x_j = 1 for the fixed (must-include) columns."""

    cost: F64  # (n,) price of each candidate
    A: sp.csr_matrix  # (m, n)
    lo: F64  # (m,) -inf where there is no lower limit
    hi: F64  # (m,) +inf where there is no upper limit
    names: tuple[str, ...]  # (m,) plain words for each row, for explanations
    fixed: B8  # (n,) must be in the roster
    group: I64  # (n,) a class per candidate (tier x platform): seeds the column generation
    # the brief's min_spend_share: row 0 (the budget) has lo = this x hi; kept here so that a problem built without
    # a budget (the server's, at an infinite one) gets its floor back when a budget is set
    spend_floor_share: float = 0.0

    @property
    def n(self) -> int:
        return int(self.cost.shape[0])

    def evolve(self, **changes: Any) -> Problem:
        """``dataclasses.replace`` for the limits, the must-includes or the spend floor, keeping what is cached from
        the matrix, the prices and the classes (each plan sets its budget on the server's cached problem: without
        this, every plan rebuilt the dense matrix, the classes and their cheapest candidates)."""
        if {"A", "cost", "group"} & changes.keys():
            raise ValueError("evolve keeps the matrix, prices and classes: build a new Problem to change them")
        out = replace(self, **changes)
        for key in _SHAPE_CACHES:
            if key in self.__dict__:
                out.__dict__[key] = self.__dict__[key]
        return out

    def take(self, cols: I64) -> Problem:
        # from the dense copy where the heuristics built one (a sparse column slice costs far more than it holds)
        a = sp.csr_matrix(self.dense[:, cols]) if "dense" in self.__dict__ else self.A[:, cols].tocsr()
        return Problem(self.cost[cols], a, self.lo, self.hi, self.names, self.fixed[cols], self.group[cols],
                       self.spend_floor_share)  # fmt: skip

    @cached_property
    def dense(self) -> F64:
        """``A`` as a dense (rows, n) array: a brief has a few rows, and the heuristics read whole columns of it
        many times (a sparse column slice costs far more than the few numbers it returns)."""
        return np.asarray(self.A.toarray(), dtype=np.float64)

    @cached_property
    def csc(self) -> sp.csc_matrix:
        """``A`` by columns (a creator's rows), built once: the heuristics walk it column by column."""
        return self.A.tocsc()

    @cached_property
    def group_slices(self) -> list[I64]:
        """The candidates of each class (``group``), in index order."""
        order = np.argsort(self.group, kind="stable")
        bounds = [*np.searchsorted(self.group[order], np.unique(self.group), side="left").tolist(), self.n]
        return [order[lo:hi] for lo, hi in itertools.pairwise(bounds)]

    def cheapest(self, k: int) -> I64:
        """The ``k`` cheapest candidates of each class (they do not change with the values: kept per k)."""
        cache: dict[int, I64] = self.__dict__.setdefault("_cheapest", {})
        if k not in cache:
            parts = [idx[np.argpartition(self.cost[idx], min(k, idx.size) - 1)[:k]] for idx in self.group_slices]
            cache[k] = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
        return cache[k]

    @cached_property
    def _row_scale(self) -> F64:
        return np.maximum(1.0, np.abs(self.dense).max(axis=1)) if min(self.A.shape) else np.ones(self.A.shape[0])

    def feasible(self, chosen: I64, tol: float = 1e-6) -> bool:
        if bool(self.fixed.any()) and not bool(np.all(np.isin(np.flatnonzero(self.fixed), chosen))):
            return False
        ax = self.dense[:, np.unique(np.asarray(chosen, dtype=np.int64))].sum(axis=1)
        scale = self._row_scale
        return bool(np.all(ax <= self.hi + tol * scale) and np.all(ax >= self.lo - tol * scale))


@dataclass(frozen=True)
class Solution:
    chosen: I64  # indices of the picked candidates, ascending
    value: float  # objective of the roster
    bound: float  # certified upper bound on the best roster's objective
    status: str  # "optimal" (within the gap asked), "time_limit", "infeasible"
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """Certified relative gap to the upper bound (0 = proven optimal)."""
        if self.status == "infeasible":
            return float("nan")
        return max(0.0, self.bound - self.value) / max(abs(self.value), 1e-12)


_BANNER_SHOWN = False


def highs() -> highspy.Highs:
    """A silent HiGHS instance. HiGHS >= 1.16 prints a banner on the first construction in a process, before
    any option can be set; that first construction runs with the process's stdout pointed at /dev/null."""
    global _BANNER_SHOWN  # noqa: PLW0603 - once per process, as HiGHS prints it
    if _BANNER_SHOWN:
        h = highspy.Highs()  # type: ignore[no-untyped-call]
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()  # type: ignore[no-untyped-call]
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _BANNER_SHOWN = True
    h.silent()
    return h


def highs_lp(a: sp.spmatrix, cost: F64, col_lower: F64, col_upper: F64, row_lower: F64, row_upper: F64, *,
             maximize: bool, integer: bool = False) -> highspy.HighsLp:  # fmt: skip
    """A HiGHS model: ``row_lower <= a x <= row_upper`` and column bounds (infinite values allowed)."""
    m, n = a.shape
    csc = sp.csc_matrix(a)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, m
    lp.col_cost_ = cost
    lp.col_lower_ = np.where(np.isfinite(col_lower), col_lower, -_INF)
    lp.col_upper_ = np.where(np.isfinite(col_upper), col_upper, _INF)
    lp.row_lower_ = np.where(np.isfinite(row_lower), row_lower, -_INF)
    lp.row_upper_ = np.where(np.isfinite(row_upper), row_upper, _INF)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = csc.indptr, csc.indices, csc.data
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    return lp


def _solver(time_limit: float) -> highspy.Highs:
    """A silent HiGHS instance as every solve here runs it: ``time_limit``, a fixed seed, one thread."""
    h = highs()
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("threads", 1)
    return h


def _lp(problem: Problem, values: F64, *, integer: bool, time_limit: float, gap: float,
        start: F64 | None = None, nodes: int | None = None, presolve: bool = True,
        neighbourhoods: bool = False) -> highspy.Highs:  # fmt: skip
    """A HiGHS model of ``problem`` (LP relaxation or MILP), solved.

    A MILP runs without HiGHS's RINS and RENS neighbourhood searches unless ``neighbourhoods``: on this module's
    MILPs (a few rows, their columns chosen by the LP, started from a roster) those sub-MIPs took most of the
    time and the root reduced-cost sub-MIP found the rosters (on the 20k-candidate server world, 155 briefs and
    budgets: the solves about 40% cheaper, the rosters' values equal on average and within 0.25% either way).
    """
    n = problem.n
    h = _solver(time_limit)
    if not presolve:
        h.setOptionValue("presolve", "off")
    if integer:
        h.setOptionValue("mip_rel_gap", float(gap))
        if not neighbourhoods:
            h.setOptionValue("mip_heuristic_run_rins", False)
            h.setOptionValue("mip_heuristic_run_rens", False)
        if nodes is not None:  # a work limit, not a clock: the same input gives the same roster on any machine
            h.setOptionValue("mip_max_nodes", int(nodes))
    h.passModel(highs_lp(problem.A, values, problem.fixed.astype(np.float64), np.ones(n), problem.lo, problem.hi,
                         maximize=True, integer=integer))  # fmt: skip
    if integer and start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = list(start)
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    return h


def _status(h: highspy.Highs) -> str:
    s = h.getModelStatus()
    if s == highspy.HighsModelStatus.kOptimal:
        return "optimal"
    if s in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return "infeasible"
    if s == highspy.HighsModelStatus.kTimeLimit:
        return "time_limit"
    return h.modelStatusToString(s)


def _mip_result(h: highspy.Highs, n: int) -> tuple[I64 | None, float, float, str]:
    status = _status(h)
    info = h.getInfo()
    if status == "infeasible" or info.primal_solution_status == 0:
        return None, -np.inf, np.inf, "infeasible" if status == "infeasible" else status
    x = np.asarray(h.getSolution().col_value)
    chosen = np.flatnonzero(x > 0.5).astype(np.int64)
    return chosen, float(info.objective_function_value), float(info.mip_dual_bound), status


def solve_milp(problem: Problem, values: F64, *, gap: float = 1e-3, time_limit: float = 60.0) -> Solution:
    """Plain HiGHS MILP on every candidate (the baseline the reduction is measured against)."""
    t0 = time.perf_counter()
    h = _lp(problem, values, integer=True, time_limit=time_limit, gap=gap, neighbourhoods=True)  # HiGHS's defaults
    chosen, value, bound, status = _mip_result(h, problem.n)
    stats = {"method": "plain MILP", "candidates": problem.n, "seconds": time.perf_counter() - t0}
    if chosen is None:
        return Solution(np.zeros(0, np.int64), float("nan"), float("nan"), status, stats)
    return Solution(chosen, value, bound, status, stats)


def _seed_columns(problem: Problem, values: F64, per_group: int) -> I64:
    """Promising columns per class: best value per dollar, best value, cheapest; plus the fixed ones."""
    keep = np.zeros(problem.n, dtype=bool)
    keep[problem.fixed] = True
    ratio = values / np.maximum(problem.cost, 1e-9)
    keep[problem.cheapest(per_group)] = True
    for idx in problem.group_slices:
        k = min(per_group, idx.size)
        for key in (-ratio[idx], -values[idx]):
            keep[idx[np.argpartition(key, k - 1)[:k]]] = True
    return np.flatnonzero(keep).astype(np.int64)


def _lagrangian(problem: Problem, values: F64, y: F64, *, fixed: B8 | None = None,
                out: B8 | None = None) -> tuple[F64, float]:  # fmt: skip
    """Reduced costs of every column and the Lagrangian upper bound UB(y) on the LP (so on the MILP); with
    ``fixed`` (default: the problem's must-includes) counted as they are and the columns ``out`` left out."""
    d = values - problem.A.T @ y
    side = np.where(y > 0, problem.hi, np.where(y < 0, problem.lo, 0.0))
    rows = float(np.dot(y, np.where(np.isfinite(side), side, 0.0)))
    free = np.where(problem.fixed if fixed is None else fixed, d, np.maximum(d, 0.0))
    if out is not None:
        free[out] = 0.0
    return d, rows + float(free.sum())


@dataclass(frozen=True)
class Relaxation:
    """The LP relaxation over every candidate, solved by column generation."""

    cols: I64  # the priced-in columns
    x: F64  # LP values of those columns
    reduced: F64  # reduced cost of every column (scaled values)
    bound: float  # Lagrangian upper bound (scaled values)
    value: float  # LP optimum (scaled values)
    rounds: int
    scale: float


def relax(problem: Problem, values: F64, *, time_limit: float = 60.0, per_group: int = 64,
          seed: I64 | None = None) -> Relaxation | None:  # fmt: skip
    """Column generation for the LP relaxation (None if the LP is infeasible)."""
    n = problem.n
    scale = float(np.max(np.abs(values))) if n else 1.0
    scale = scale or 1.0
    v = values / scale
    cols = _seed_columns(problem, v, per_group)
    if seed is not None and seed.size:
        cols = np.union1d(cols, seed).astype(np.int64)
    best_ub, rounds = np.inf, 0
    tol = 1e-9
    while True:
        rounds += 1
        sub = problem.take(cols)
        h = _lp(sub, v[cols], integer=False, time_limit=time_limit, gap=0.0)
        if _status(h) == "infeasible":
            if cols.size == n:
                return None
            cols = np.arange(n, dtype=np.int64)  # the seed cannot meet the constraints: price everything in
            continue
        y = np.asarray(h.getSolution().row_dual, dtype=np.float64)
        d, ub = _lagrangian(problem, v, y)
        best_ub = min(best_ub, ub)
        outside = np.ones(n, dtype=bool)
        outside[cols] = False
        enter = np.flatnonzero(outside & (d > tol))
        if enter.size == 0:
            break
        if enter.size > 4096:
            enter = enter[np.argpartition(-d[enter], 4095)[:4096]]
        cols = np.union1d(cols, enter).astype(np.int64)
    return Relaxation(cols, np.asarray(h.getSolution().col_value), d, best_ub,
                      float(h.getInfo().objective_function_value), rounds, scale)  # fmt: skip


def solve_additive(
    problem: Problem,
    values: F64,
    *,
    gap: float = 1e-3,
    time_limit: float = 60.0,
    incumbent: I64 | None = None,
    per_group: int | None = None,
    exact: bool = True,
    prove: bool = True,
) -> Solution:
    """The best roster for an additive objective ``values`` (see the module doc), with its certified gap.

    ``exact=False`` stops after the LP bound and a quick roster (rounded LP, or one second of MILP on the
    priced-in columns). ``prove=False`` runs every step but the last MILP (step 4): the roster searches and the
    branched LP bound still run, and the gap reported is what the LP bounds certify, which may exceed ``gap``
    (status "gap"). That MILP is what takes seconds on some budgets (its root cuts over thousands of columns); on
    the demo world's example brief (4 goals x 25 budgets) the rosters it found were worth 0-0.19% more.
    """
    t0 = time.perf_counter()
    n = problem.n
    stats: dict[str, Any] = {"method": "LP column generation + reduced-cost fixing + MILP", "candidates": n}
    if n == 0:
        return _empty(problem, stats, t0)
    tol = 1e-9
    rel = relax(problem, values, time_limit=time_limit, per_group=per_group or 64, seed=incumbent)
    if rel is None:
        stats.update(seconds=time.perf_counter() - t0)
        return Solution(np.zeros(0, np.int64), float("nan"), float("nan"), "infeasible", stats)
    scale, cols, d, best_ub, x_lp = rel.scale, rel.cols, rel.reduced, rel.bound, rel.x
    v = values / scale
    sub = problem.take(cols)
    stats.update(lp_rounds=rel.rounds, lp_columns=int(cols.size), lp_bound=best_ub * scale, lp_value=rel.value * scale)
    # first rosters (all feasible for the full problem): the LP optimum rounded, repaired and filled; the one
    # handed in; then, unless one is within the gap already, the search MILP below
    found: list[I64] = []
    rounded = _round_and_fill(sub, v[cols], x_lp, d[cols])
    if rounded is not None:
        found.append(cols[rounded])
    if incumbent is not None and incumbent.size and problem.feasible(incumbent):
        found.append(np.sort(incumbent))

    def within_gap(c: I64 | None) -> bool:
        return c is not None and best_ub - float(v[c].sum()) <= gap * max(abs(float(v[c].sum())), 1e-12)

    best_found = max(found, key=lambda c: float(v[c].sum())) if found else None
    # a MILP over the columns the LP rates best (highest reduced costs) plus the best roster found, started
    # from it; over every priced-in column when no roster was found. Skipped when a roster found is already
    # within the gap of the LP bound. It only looks for a roster: the LP bound certifies it, and the
    # reduced-cost-fixing MILP below takes over when the gap is not met.
    if (exact and not within_gap(best_found)) or not found:
        if best_found is not None:
            pool = np.union1d(top_k(d, _SUB_COLUMNS), best_found)
            pool = np.union1d(pool, np.flatnonzero(problem.fixed)).astype(np.int64)
            start: F64 | None = np.isin(pool, best_found).astype(np.float64)
        else:
            pool, start = cols, None
        h = _lp(
            problem.take(pool),
            v[pool],
            integer=True,
            time_limit=time_limit if exact else min(time_limit, 1.0),
            gap=gap * _SUB_GAP if exact else gap,
            start=start,
            presolve=False,  # a few rows over a few hundred columns: presolve costs more than it saves here
        )
        sub_chosen, _, _, _ = _mip_result(h, pool.size)
        if sub_chosen is not None:
            found.append(pool[sub_chosen])
    inc = max(found, key=lambda c: float(v[c].sum())) if found else None
    inc_value = float(v[inc].sum()) if inc is not None else -np.inf

    stats["incumbent"] = inc_value * scale  # the best roster before the bounds and the proving MILP
    root_ub = best_ub  # the root LP's bound: the one its reduced costs fix columns against
    if exact and inc is not None and not within_gap(inc):
        # a tighter bound before the big MILP: the LP branched on its fractional creators (each in, each out)
        branched = _branched_bound(problem, values, cols[(x_lp > _FRAC) & (x_lp < 1 - _FRAC)], cols, time_limit)
        stats["branched_bound"] = branched
        best_ub = min(best_ub, branched / scale)
        if not within_gap(inc):
            # before the MILP over most candidates: a search that adds each class's 8 best creators by value, by
            # value per dollar and cheapest. The LP can rate a creator the best roster needs below the top 80
            # (the roster size binding before the budget); on the example brief over 25 budgets this found the
            # best roster at 2 budgets where the proving MILP used to ($10k: 1.5 s -> 0.2 s, $11k: 4.7 s -> 0.2 s).
            # Only here: given those columns from the start, the search stopped at other rosters within its gap
            # (the example brief's plan spent $45k of $50k instead of $49,990).
            top = np.union1d(top_k(d, _SUB_COLUMNS), inc)
            classes = np.union1d(_seed_columns(problem, v, 8), np.flatnonzero(problem.fixed))
            wider = np.union1d(top, classes).astype(np.int64)
            h = _lp(problem.take(wider), v[wider], integer=True, time_limit=time_limit, gap=gap * _SUB_GAP,
                    start=np.isin(wider, inc).astype(np.float64), presolve=False)  # fmt: skip
            picked, _, _, _ = _mip_result(h, wider.size)
            if picked is not None and float(v[wider[picked]].sum()) > inc_value:
                inc, inc_value = wider[picked], float(v[wider[picked]].sum())
            stats["incumbent_wider"] = inc_value * scale
    if inc is not None and (not exact or not prove or within_gap(inc)):
        if exact and not within_gap(inc):
            stats["proof"] = "LP bounds only (prove=False)"
        stats.update(after_fixing=0, seconds=time.perf_counter() - t0)  # certified by the LP bound alone
        done = within_gap(inc)
        return Solution(inc, float(values[inc].sum()), max(best_ub * scale, float(values[inc].sum())),
                        "optimal" if done else "gap", stats)  # fmt: skip

    # reduced-cost fixing: only columns that could still improve on the incumbent stay free
    slack = root_ub - inc_value
    free = np.flatnonzero((d >= -slack - tol) | problem.fixed)
    if inc is not None:
        free = np.union1d(free, inc)
    stats["after_fixing"] = int(free.size)
    start = np.isin(free, inc).astype(np.float64) if inc is not None else None
    h = _lp(problem.take(free), v[free], integer=True, time_limit=time_limit, gap=gap, start=start)
    chosen, value, bound, status = _mip_result(h, free.size)
    if chosen is None and inc is None:
        stats["seconds"] = time.perf_counter() - t0
        return Solution(np.zeros(0, np.int64), float("nan"), float("nan"), status, stats)
    if chosen is None or (inc is not None and value < inc_value):
        chosen_full, value = inc, inc_value
    else:
        chosen_full = free[chosen]
    assert chosen_full is not None
    # the reduced MILP's bound covers every roster better than the incumbent; the LP bound covers all
    bound = min(best_ub, max(bound, value)) if np.isfinite(bound) else best_ub
    stats["seconds"] = time.perf_counter() - t0
    out_value = float(values[chosen_full].sum())
    done = (bound - value) <= gap * max(abs(value), 1e-12) + 1e-12
    return Solution(np.sort(chosen_full), out_value, max(bound * scale, out_value), "optimal" if done else status,
                    stats)  # fmt: skip


_FRAC = 1e-6  # an LP value strictly between this and 1 - this is fractional
_BRANCH_MAX = 3  # fractional creators branched on (2**3 leaves, each one LP by column generation)


def _branched_bound(problem: Problem, values: F64, fractional: I64, seed: I64, time_limit: float) -> float:
    """An upper bound on the best roster (unscaled values): the LP relaxation branched on up to ``_BRANCH_MAX`` of
    its fractional creators, each leaf with every one of them fixed in or left out; the bound is the largest leaf's.
    Every roster lies in one leaf, so it is as valid as the LP bound, and tighter where a few expensive creators are
    split (a small budget): there the LP bound alone can sit more than the gap above the best roster, and only a
    MILP over most candidates would prove it.

    The leaves share one HiGHS LP over the root's priced-in columns ``seed``: each leaf only moves the bounds of the
    branched columns and re-solves from the last basis, then prices every candidate with its duals (columns that
    price in join the shared LP) until none is left; its bound is the Lagrangian one of those duals, with the
    columns left out excluded and the ones fixed in counted as they are. On the 20k-candidate server world's example
    brief this gave the same bounds as solving each leaf afresh by column generation, about 5 times faster. A leaf
    the shared columns cannot make feasible is solved afresh (``relax`` over all its candidates)."""
    frac = fractional[:_BRANCH_MAX]
    if frac.size == 0:
        return float("inf")
    n = problem.n
    scale = float(np.max(np.abs(values))) or 1.0
    v = values / scale
    cols = np.union1d(np.union1d(seed, frac), np.flatnonzero(problem.fixed)).astype(np.int64)
    place = np.full(n, -1, dtype=np.int64)  # each candidate's column in the shared LP (-1: not priced in)
    place[cols] = np.arange(cols.size)
    lower = problem.fixed.astype(np.float64)
    h = _solver(time_limit)
    h.passModel(highs_lp(problem.take(cols).A, v[cols], lower[cols], np.ones(cols.size), problem.lo, problem.hi,
                         maximize=True))  # fmt: skip
    branched = place[frac].astype(np.int32)
    best = -np.inf
    for pattern in itertools.product((False, True), repeat=int(frac.size)):
        inside = np.asarray(pattern, dtype=bool)
        if bool(problem.fixed[frac[~inside]].any()):
            continue  # a must-include creator left out: no roster in this leaf
        left_out = np.zeros(n, dtype=bool)
        left_out[frac[~inside]] = True
        forced = problem.fixed.copy()
        forced[frac[inside]] = True
        both = inside.astype(np.float64)
        h.changeColsBounds(branched.size, branched, both, both)
        while True:
            h.run()
            if _status(h) != "optimal":
                y = None
                break
            y = np.asarray(h.getSolution().row_dual, dtype=np.float64)
            d, bound = _lagrangian(problem, v, y, fixed=forced, out=left_out)
            enter = np.flatnonzero((place < 0) & ~left_out & (d > 1e-9))
            if enter.size == 0:
                break
            if enter.size > 4096:
                enter = enter[np.argpartition(-d[enter], 4095)[:4096]]
            block = problem.csc[:, enter]
            h.addCols(enter.size, v[enter], lower[enter], np.ones(enter.size), block.nnz,
                      block.indptr[:-1].astype(np.int32), block.indices.astype(np.int32),
                      block.data.astype(np.float64))  # fmt: skip
            place[enter] = np.arange(h.getNumCol() - enter.size, h.getNumCol())
        if y is None:  # not solved over the shared columns: this leaf afresh, by column generation over all of it
            leaf, idx, _ = _leaf(problem, frac[~inside], frac[inside])
            r = relax(leaf, values[idx], time_limit=time_limit)
            if r is not None:  # None: no roster in this leaf
                best = max(best, r.bound * r.scale)
            continue
        best = max(best, bound * scale)
    return float(best)


def _leaf(problem: Problem, out: I64, into: I64) -> tuple[Problem, I64, I64]:
    """The problem without the columns ``out`` and with ``into`` fixed in: (leaf, the problem's columns it keeps,
    each problem column's place in the leaf). The leaf's classes come from the problem's (what
    ``Problem.group_slices`` would compute, without its sort over every candidate)."""
    keep = np.ones(problem.n, dtype=bool)
    keep[out] = False
    fixed = problem.fixed.copy()
    fixed[into] = True
    idx = np.flatnonzero(keep).astype(np.int64)
    leaf = problem.evolve(fixed=fixed).take(idx)
    at = np.cumsum(keep) - 1
    leaf.__dict__["group_slices"] = [p for p in (at[c[keep[c]]] for c in problem.group_slices) if p.size]
    return leaf, idx, at


def _round_and_fill(problem: Problem, values: F64, x: F64, reduced: F64 | None = None) -> I64 | None:
    """The LP solution rounded down, repaired to meet the lower limits, then filled by value per dollar.

    With the LP's ``reduced`` costs, the fill goes by reduced cost instead: it prices every constraint
    (the budget, the roster size, spend shares), so it adds what the LP almost took.

    Every step keeps the upper limits; the result is None if the lower limits cannot be repaired this way.
    Also repairs any roster given as a 0/1 ``x``.
    """
    take = (x > 1 - 1e-7) | problem.fixed
    a = problem.csc
    a_rows = problem.A
    ax = a @ take.astype(np.float64)
    hi = problem.hi + 1e-9 * np.maximum(1.0, np.abs(problem.hi))
    lo = problem.lo - 1e-9 * np.maximum(1.0, np.abs(problem.lo))
    ratio = values / np.maximum(problem.cost, 1e-12)
    # over a cap (rounding down can break a spend share, a roster may come in too large): drop members until
    # every cap holds, each time the one that gives up the least value per unit of the excess it removes
    for _ in range(problem.n + 1):
        over = np.flatnonzero(ax > hi)
        if over.size == 0:
            break
        r = int(over[0])
        lo_r, up_r = a_rows.indptr[r], a_rows.indptr[r + 1]
        cols, coef = a_rows.indices[lo_r:up_r], a_rows.data[lo_r:up_r]
        loads = take[cols] & ~problem.fixed[cols] & (coef > 0)
        if not loads.any():
            return None
        cols, coef = cols[loads], coef[loads]
        j = int(cols[np.argmin(values[cols] / np.minimum(coef, ax[r] - hi[r]))])
        ax[a.indices[a.indptr[j] : a.indptr[j + 1]]] -= a.data[a.indptr[j] : a.indptr[j + 1]]
        take[j] = False
    else:
        return None

    def first_fit(cands: I64) -> int | None:
        """Where in ``cands`` the first one is that keeps every cap and pushes no row below its minimum (rows
        already short may only rise), checked a block of candidates at a time. The caps hold before, so rows a
        candidate does not touch stay fine."""
        dense = problem.dense
        for lo_c in range(0, cands.size, _FIT_BLOCK):
            vals = dense[:, cands[lo_c : lo_c + _FIT_BLOCK]]  # a few rows x the block
            new = ax[:, None] + vals
            ok = np.all(new <= hi[:, None], axis=0) & np.all((new >= lo[:, None]) | (vals >= 0), axis=0)
            if ok.any():
                return lo_c + int(np.argmax(ok))
        return None

    def add(j: int) -> None:
        ax[a.indices[a.indptr[j] : a.indptr[j + 1]]] += a.data[a.indptr[j] : a.indptr[j + 1]]
        take[j] = True

    size_rows = roster_rows(problem)
    helpers: dict[int, I64] = {}
    # repair: for a row under its minimum, add the best-ratio candidate that raises it and keeps every cap
    for _ in range(problem.n):
        short = np.flatnonzero(ax < lo)
        if short.size == 0:
            break
        r = int(short[0])
        if r not in helpers:
            row = a_rows.getrow(r)
            helps = row.indices[row.data > 0]
            if helps.size > _FILL_POOL:
                helps = helps[np.argpartition(-ratio[helps], _FILL_POOL - 1)[:_FILL_POOL]]
            helpers[r] = helps[np.argsort(-ratio[helps])]
        picked = False
        if not np.any(ax[size_rows] >= hi[size_rows] - 0.5):
            cands = helpers[r][~take[helpers[r]]]
            at = first_fit(cands)
            if at is not None:
                add(int(cands[at]))
                picked = True
        if not picked:  # caps are full: drop the weakest member that does not help this row, then retry
            members = np.flatnonzero(take & ~problem.fixed)
            dense_r = np.zeros(problem.n)
            lo_r, up_r = a_rows.indptr[r], a_rows.indptr[r + 1]
            dense_r[a_rows.indices[lo_r:up_r]] = a_rows.data[lo_r:up_r]
            coef = dense_r[members]
            droppable = members[coef <= 0]
            dropped = False
            for j in droppable[np.argsort(ratio[droppable])]:
                rows, vals = a.indices[a.indptr[j] : a.indptr[j + 1]], a.data[a.indptr[j] : a.indptr[j + 1]]
                after = ax[rows] - vals
                if np.all(((after >= lo[rows]) | (vals <= 0)) & (after <= hi[rows])):  # keep the other rows
                    ax[rows] = after
                    take[j] = False
                    dropped = True
                    break
            if not dropped:
                return None
    positive = np.flatnonzero(~take & (values > 0))
    key = ratio if reduced is None else reduced
    if positive.size > _FILL_POOL:
        positive = positive[np.argpartition(-key[positive], _FILL_POOL - 1)[:_FILL_POOL]]
    order = positive[np.argsort(-key[positive], kind="stable")]
    pos = 0
    while pos < order.size and not np.any(ax[size_rows] >= hi[size_rows] - 0.5):  # until the roster is full
        at = first_fit(order[pos:])
        if at is None:
            break
        add(int(order[pos + at]))
        pos += at + 1
    if np.any(ax < lo):
        return None
    return np.flatnonzero(take).astype(np.int64)


def top_k(values: F64, k: int) -> I64:
    """Indices of the ``k`` largest ``values``, largest first (ties by index): a partial sort, not a full one."""
    k = min(k, values.size)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-values, k - 1)[:k] if k < values.size else np.arange(values.size)
    return np.asarray(part[np.lexsort((part, -values[part]))], dtype=np.int64)


def cap_rows(problem: Problem) -> npt.NDArray[np.bool_]:
    """Rows that only fill up as creators join (no negative coefficient) and have a cap: budget, roster size, mix
    counts. A candidate that breaks one of them breaks it for good."""
    return np.asarray(np.all(problem.dense >= 0, axis=1) & np.isfinite(problem.hi), dtype=np.bool_)


def roster_rows(problem: Problem) -> npt.NDArray[np.bool_]:
    """Rows that count every candidate once (roster size) and have a cap."""
    return np.asarray(np.all(problem.dense == 1.0, axis=1) & np.isfinite(problem.hi), dtype=np.bool_)


def repair(problem: Problem, values: F64, chosen: I64, *, time_limit: float = 60.0, milp: bool = True) -> I64 | None:
    """A roster made to meet the lower limits (adding, or swapping out the weakest), then filled while caps allow.

    When simple moves cannot meet the limits (spend shares can need many swaps), a small HiGHS MILP over the
    roster and each class's best columns finds a feasible roster close to it (a node limit, not a clock, so
    the result does not depend on the machine's load).
    """
    x = np.zeros(problem.n)
    x[chosen] = 1.0
    fixed = _round_and_fill(problem, values, x)
    if fixed is not None or problem.n == 0 or not milp:
        return fixed
    scale = float(np.max(np.abs(values))) or 1.0
    cols = np.union1d(_seed_columns(problem, values / scale, 24), chosen).astype(np.int64)
    keep = np.isin(cols, chosen) * 0.05  # a small premium for staying close to the roster handed in
    h = _lp(problem.take(cols), values[cols] / scale + keep, integer=True, time_limit=time_limit, gap=0.01,
            nodes=_QUICK_NODES)  # fmt: skip
    picked, _, _, _ = _mip_result(h, cols.size)
    return None if picked is None else cols[picked]


def _empty(problem: Problem, stats: dict[str, Any], t0: float) -> Solution:
    stats["seconds"] = time.perf_counter() - t0
    ok = problem.feasible(np.zeros(0, np.int64))
    return Solution(np.zeros(0, np.int64), 0.0, 0.0, "optimal" if ok else "infeasible", stats)
