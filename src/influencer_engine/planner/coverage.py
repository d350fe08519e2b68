"""Unique reach: audiences overlap, so the value of a roster is coverage of audience segments (submodular).

The audience model: each creator's reach lands on segments (age x country x interest) in proportion to its
audience shares; a segment of N people reached with a total load L (the sum of the reach landing on it) holds
N (1 - exp(-L / N)) distinct people (independent exposure). Segment sizes split the people pool by the
candidates' follower-weighted audience mix, so the estimate works for any candidate base.

Rosters come from a lazy (CELF) greedy on marginal unique reach, per dollar and absolute, the best single
creator, and the no-overlap knapsack, improved by Frank-Wolfe vertices, the relaxation's optimum rounded, and
add/swap moves. The bound: a concave function f of a fractional roster x that is at least unique reach at every
whole roster (``_Relaxed``: per segment, the least of the plain form and union-bound forms for creators who saturate
it). Any weighted mean g of its pieces (weights fixed, per segment) is at least f, concave and smooth, so at any x
its tangent plane over the LP relaxation of the brief's constraints (HiGHS, column generation) bounds every roster:

    best roster <= g(x) + max_{y in LP} grad g(x) . y - grad g(x) . x,

with the weights a soft minimum's at x; Frank-Wolfe steps move x toward the relaxation's optimum to tighten it. The
gap reported is to that bound.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from influencer_engine.planner.knapsack import (
    Problem,
    Solution,
    cap_rows,
    relax,
    repair,
    roster_rows,
    solve_additive,
    top_k,
)

__all__ = ["AudienceModel", "solve_reach"]

_GREEDY_POOL = 4000  # candidates the lazy greedy considers (by their own reach, or reach per dollar)
_GREEDY_BATCH = 16  # stale keys the lazy greedy refreshes at once
# relative error of a single-precision sum of nonnegative products: (terms + 3) x 2^-24 for up to ~100 terms per
# sum (segments of one factor, then of the other, and the rounding of each input), with room to spare
_SINGLE_ERROR = 1e-4

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def _outer_rows(factors: tuple[F64, ...]) -> F64:
    """Row-wise outer product of factor matrices, flattened: (n, prod k_f)."""
    out = factors[0]
    for f in factors[1:]:
        out = (out[:, :, None] * f[:, None, :]).reshape(out.shape[0], out.shape[1] * f.shape[1])
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class AudienceModel:
    """Candidates' audience spread as factors (each (n, k_f), rows summing to 1) and segment sizes.

    A creator's mix over segments is the outer product of its factor rows. It is held as ``head`` (outer
    product of all factors but the last, (n, D1)) and ``tail`` (the last factor, (n, D2)), so loads and
    gradients are matrix products.
    """

    factors: tuple[F64, ...]
    sizes: F64  # shape (k_1, ..., k_F)
    head: F64 = field(init=False, repr=False)
    tail: F64 = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # row-major: the gradient's product over every candidate runs 2.5 times faster than on a column-major head
        object.__setattr__(self, "head", np.ascontiguousarray(_outer_rows(self.factors[:-1]) if len(self.factors) > 1
                           else np.ones((self.factors[0].shape[0], 1))))  # fmt: skip
        object.__setattr__(self, "tail", np.ascontiguousarray(self.factors[-1], dtype=np.float64))

    @classmethod
    def from_shares(cls, factors: tuple[F64, ...], weights: F64, people_pool: float) -> AudienceModel:
        """Segment sizes = the pool split by the ``weights``-weighted (followers) average audience mix."""
        fs = tuple(np.asarray(f, dtype=np.float64) for f in factors)
        w = np.asarray(weights, dtype=np.float64)
        w = w / w.sum() if w.sum() > 0 else np.full(w.shape, 1.0 / max(w.size, 1))
        probe = cls(fs, np.ones(tuple(f.shape[1] for f in fs)))
        mix = probe.load(np.arange(probe.n), w)
        mix = mix / mix.sum()
        # a segment nobody's audience touches still gets a sliver, so the model never divides by zero
        return cls(fs, people_pool * np.maximum(mix, 1e-12))

    @property
    def n(self) -> int:
        return int(self.tail.shape[0])

    def take(self, idx: I64) -> AudienceModel:
        return AudienceModel(tuple(f[idx] for f in self.factors), self.sizes)

    def load(self, idx: npt.ArrayLike, reach: npt.ArrayLike) -> F64:
        """Reach landing on each segment from creators ``idx`` with reach ``reach`` (aligned)."""
        rows = np.asarray(idx, dtype=np.int64)
        out = (self.head[rows] * np.asarray(reach, dtype=np.float64)[:, None]).T @ self.tail[rows]
        return np.asarray(out.reshape(self.sizes.shape), dtype=np.float64)

    def loads_each(self, idx: I64, reach: F64) -> F64:
        """Each creator's own load, a flattened row per creator of ``idx`` (``reach`` aligned): (len(idx), segments)."""
        rows = np.asarray(idx, dtype=np.int64)
        own = (self.head[rows] * np.asarray(reach, dtype=np.float64)[:, None])[:, :, None] * self.tail[rows][:, None, :]
        return np.asarray(own.reshape(rows.size, -1), dtype=np.float64)

    def covered(self, load: F64) -> float:
        return float((self.sizes * -np.expm1(-load / self.sizes)).sum())

    def unique_reach(self, idx: I64, reach: F64) -> float:
        """Expected distinct people reached by creators ``idx`` (``reach`` aligned with ``idx``)."""
        if len(idx) == 0:
            return 0.0
        return self.covered(self.load(np.asarray(idx), reach))

    def covered_many(self, reach: F64) -> F64:
        """Unique reach of all ``n`` creators for each row of ``reach`` (draws, n): one value per draw."""
        mix = (self.head[:, :, None] * self.tail[:, None, :]).reshape(self.n, self.head.shape[1] * self.tail.shape[1])
        fresh = reach @ mix  # load per segment and draw, then in place: the share of each segment left unreached
        sizes = self.sizes.reshape(-1)
        fresh *= -1.0 / sizes
        np.exp(fresh, out=fresh)
        return np.asarray(sizes.sum() - fresh @ sizes, dtype=np.float64)  # sum of sizes x (1 - unreached share)

    def gains_upper(self, reach: F64, load: F64) -> F64:
        """Gradient of unique reach at ``load``: reach x unreached share, per candidate (and an upper bound on
        each candidate's marginal unique reach, since 1 - exp(-u) <= u)."""
        return self.weighted_reach(reach, np.exp(-load / self.sizes))

    @cached_property
    def _single(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        return np.ascontiguousarray(self.head, np.float32), np.ascontiguousarray(self.tail, np.float32)

    def weighted_reach_fast(self, reach: F64, weight: F64) -> tuple[F64, F64]:
        """``weighted_reach`` of every candidate in single precision (3-4 times faster at 100k), and a bound on
        each one's error: every term is a product of nonnegative numbers, so rounding moves each sum by at most
        ``_SINGLE_ERROR`` of itself, whatever order the matrix product adds them in."""
        head, tail = self._single
        w = np.asarray(weight, dtype=np.float32).reshape(self.head.shape[1], self.tail.shape[1])
        out = reach * np.einsum("nd,nd->n", head @ w, tail).astype(np.float64)
        # (plus an absolute sliver for weights so small that single precision holds them with fewer digits)
        return out, np.abs(out) * _SINGLE_ERROR + np.abs(reach) * 1e-30

    def weighted_reach(self, reach: F64, weight: F64, idx: I64 | None = None) -> F64:
        """Each candidate's reach spread over the segments, summed with one ``weight`` per segment (of candidates
        ``idx`` only, with ``reach`` aligned to them, when given)."""
        w = np.asarray(weight, dtype=np.float64).reshape(self.head.shape[1], self.tail.shape[1])
        head, tail = (self.head, self.tail) if idx is None else (self.head[idx], self.tail[idx])
        return np.asarray(reach * np.einsum("nd,nd->n", head @ w, tail), dtype=np.float64)


def _lazy_greedy(problem: Problem, audience: AudienceModel, reach: F64, *, per_dollar: bool) -> I64 | None:
    """Lazy (CELF) greedy on true marginal unique reach, per dollar or absolute, under the upper limits.

    Rows whose coefficients are all >= 0 (budget, roster and mix caps) only fill up, so a candidate that breaks
    one now breaks it for good and is dropped; other rows (spend shares, minimums) are repaired at the end. Stale
    keys at the top of the heap are refreshed a batch at a time (one matrix product instead of one small product per
    candidate): the picks are the same, since a pick is still a fresh gain no stale upper bound exceeds.
    """
    a = problem.csc
    caps = cap_rows(problem)
    counts = roster_rows(problem)
    ax = a @ problem.fixed.astype(np.float64)
    take = problem.fixed.copy()
    sizes = audience.sizes.reshape(-1)
    load = audience.load(np.flatnonzero(take), reach[take]).reshape(-1)
    unreached = sizes * np.exp(-load / sizes)  # people of each segment not reached yet
    cost = np.maximum(problem.cost, 1e-9)
    key0 = reach / cost if per_dollar else reach.copy()
    # the pool: the best candidates by the key's upper bound (a gain never exceeds the creator's own reach)
    pool = np.flatnonzero(~take & (reach > 0))
    if pool.size > _GREEDY_POOL:
        pool = pool[np.argpartition(-key0[pool], _GREEDY_POOL - 1)[:_GREEDY_POOL]]
    heap = [(-float(key0[j]), int(j)) for j in pool]
    heapq.heapify(heap)
    fresh = np.full(problem.n, -1)  # the pick count at which a key was last recomputed
    picks = 0
    hi = problem.hi + 1e-9 * np.maximum(1.0, np.abs(problem.hi))

    cap_cols = problem.dense[caps]

    def fitting(js: I64) -> npt.NDArray[np.bool_]:
        """Which candidates ``js`` still fit every cap (a row a candidate does not touch cannot break)."""
        add = cap_cols[:, js]
        return np.asarray(np.all((add == 0) | (ax[caps][:, None] + add <= hi[caps][:, None]), axis=0))

    def keep_fitting(items: list[tuple[float, int]]) -> list[tuple[float, int]]:
        """The heap's candidates that still fit every cap, all checked at once (a heap again)."""
        ok = fitting(np.fromiter((j for _, j in items), dtype=np.int64, count=len(items)))
        kept = [item for item, good in zip(items, ok.tolist(), strict=True) if good]
        heapq.heapify(kept)
        return kept

    full = bool(np.any(ax[counts] >= hi[counts] - 0.5))
    swept = -1  # the pick count at which the heap was last cleared of candidates that no longer fit
    while heap and not full:
        stale: list[int] = []
        while heap and len(stale) < _GREEDY_BATCH and fresh[heap[0][1]] != picks:
            stale.append(heapq.heappop(heap)[1])
        if stale and swept != picks:
            ok = fitting(np.asarray(stale, dtype=np.int64))
            if not ok.all():  # a cap is full for some, and for good (caps only fill up): clear all such at once
                stale = [j for j, good in zip(stale, ok.tolist(), strict=True) if good]
                heap = keep_fitting(heap)
                swept = picks
        if stale:
            js = np.asarray(stale, dtype=np.int64)
            gains = -np.expm1(-audience.loads_each(js, reach[js]) / sizes) @ unreached
            keys = gains / cost[js] if per_dollar else gains
            fresh[js] = picks
            for j, k in zip(stale, keys.tolist(), strict=True):
                heapq.heappush(heap, (-k, j))
            continue
        if not heap:
            break
        _, j = heapq.heappop(heap)  # fresh at this pick: its gain beats every other key, and it still fits
        take[j] = True
        ax[a.indices[a.indptr[j] : a.indptr[j + 1]]] += a.data[a.indptr[j] : a.indptr[j + 1]]
        load += audience.loads_each(np.array([j]), reach[[j]])[0]
        unreached = sizes * np.exp(-load / sizes)
        picks += 1
        full = bool(np.any(ax[counts] >= hi[counts] - 0.5))
    chosen = np.flatnonzero(take).astype(np.int64)
    # no MILP here: when simple moves cannot repair the shares, the rosters from the relaxation will do (a repair
    # MILP per greedy cost 0.8-2.8 s on 100k candidates and gave worse rosters than those)
    return chosen if problem.feasible(chosen) else repair(problem, reach, chosen, milp=False)


def _local_search(problem: Problem, audience: AudienceModel, reach: F64, chosen: I64, *, pool: int = 60,
                  passes: int = 6, universe: I64 | None = None) -> I64:  # fmt: skip
    """Add and swap moves (drop one member, take one outsider) while one raises true unique reach.

    Outsiders (among ``universe``, every candidate when None) are tried by their gradient and their gradient per
    dollar, overall and per class (``_pool``), against every member; every move keeps all rows. Each pass takes the
    best move: every (member, outsider) pair is checked against the rows at once, and scored exactly in the order
    of an upper bound on its value until no bound left beats the best score.
    """
    among = np.arange(problem.n, dtype=np.int64) if universe is None else np.asarray(universe, dtype=np.int64)
    a = problem.csc
    lo_b = problem.lo - 1e-9 * np.maximum(1.0, np.abs(problem.lo))
    hi_b = problem.hi + 1e-9 * np.maximum(1.0, np.abs(problem.hi))
    sizes = audience.sizes.reshape(-1)

    def cols(js: list[int]) -> F64:
        return problem.dense[:, js]  # rows x len(js)

    def own(js: list[int]) -> F64:
        return audience.loads_each(np.asarray(js, dtype=np.int64), reach[js])  # len(js) x segments

    current = [int(j) for j in chosen]
    for _ in range(passes):
        ax = a @ np.isin(np.arange(problem.n), current).astype(np.float64)
        load = audience.load(np.array(current, dtype=np.int64), reach[current]).reshape(-1)
        total = audience.covered(load.reshape(audience.sizes.shape))
        gains = audience.weighted_reach(reach[among], np.exp(-load / sizes), among)
        gains[np.isin(among, current)] = -np.inf
        outsiders = _pool(problem, gains, pool, among).tolist()
        if not outsiders:
            break
        add_cols, add_loads = cols(outsiders), own(outsiders)
        members = [j for j in current if not problem.fixed[j]]
        drop_cols = cols(members) if members else np.zeros((problem.A.shape[0], 0))
        drop_loads = own(members) if members else np.zeros((0, sizes.size))
        best: tuple[float, int | None, int | None] = (total * (1 + 1e-9), None, None)
        # every move (add one outsider, or swap it for one member) at once: which keep every row, and an upper bound
        # on each one's value (the roster without the member, plus the outsider's reach weighted by the share each
        # segment has left unreached then: 1 - exp(-u) <= u). Moves are scored exactly in the order of their bound
        # until no bound left beats the best score: the best move, without scoring most of them
        bases = np.vstack([load[None, :], np.maximum(load[None, :] - drop_loads, 0.0)])
        unreached = np.exp(-bases / sizes)
        kept = sizes.sum() - unreached @ sizes  # unique reach of each base
        upper = kept[:, None] + unreached @ add_loads.T  # (bases, outsiders)
        base_ax = np.hstack([ax[:, None], ax[:, None] - drop_cols])  # rows x bases
        new_ax = base_ax[:, :, None] + add_cols[:, None, :]  # rows x bases x outsiders
        ok = np.all(new_ax <= hi_b[:, None, None], axis=0) & np.all(new_ax >= lo_b[:, None, None], axis=0)
        upper = np.where(ok & (upper > best[0]), upper, -np.inf)
        order = np.argsort(-upper, axis=None, kind="stable")
        dropped = [None, *members]
        for start in range(0, order.size, _MOVE_BATCH):
            batch = order[start : start + _MOVE_BATCH]
            batch = batch[upper.flat[batch] > best[0]]
            if batch.size == 0:
                break
            b, o = np.divmod(batch, len(outsiders))
            values = (sizes * -np.expm1(-(bases[b] + add_loads[o]) / sizes)).sum(axis=1)
            at = int(np.argmax(values))
            if values[at] > best[0]:
                best = (float(values[at]), dropped[int(b[at])], outsiders[int(o[at])])
        if best[2] is None:
            break
        current = [j for j in current if j != best[1]] + [best[2]]
    return np.sort(np.array(current, dtype=np.int64))


_MOVE_BATCH = 64  # local-search moves scored exactly at a time, best upper bound first


def _exchange(problem: Problem, audience: AudienceModel, reach: F64, chosen: I64, universe: I64) -> I64 | None:
    """The best move that drops up to two members and brings in up to two outsiders, where a single swap cannot
    help (the local search has stopped): a roster whose budget or class counts bind can often only trade one
    creator for two cheaper ones, or two for two. None when no such move is found to raise unique reach.

    Outsiders: ``_EXCHANGE_POOL`` by gradient and by gradient per dollar (and one of each per class), among
    ``universe``. Each add set's gain at the roster is exact (one matrix product for all pairs); a drop set's loss
    is the sum of its members' single losses (at most the true loss). The estimate, gain minus loss, misses what
    an outsider gains once a member with the same audience is out: it finds trades that budget and counts force,
    while the local search finds the swaps of like for like. Drop sets are scanned in order of loss, a block at a
    time, for every add set still worth it; the first few that keep every row (the tightest row checked on the
    whole block, the others on the survivors) are kept per add set, and the ``_EXCHANGE_SCORED`` best by estimate
    are scored exactly."""
    sizes = audience.sizes.reshape(-1)
    total = sizes.sum()
    load = audience.load(chosen, reach[chosen]).reshape(-1)
    unreached = sizes * np.exp(-load / sizes)
    base = total - unreached.sum()
    among = np.asarray(universe, dtype=np.int64)
    gains = audience.weighted_reach(reach[among], np.exp(-load / sizes), among)
    gains[np.isin(among, chosen)] = -np.inf
    picked = _best_of(problem, gains, among, _EXCHANGE_POOL, 1)
    outs = among[picked[np.isfinite(gains[picked]) & (gains[picked] > 0)]]
    members = chosen[~problem.fixed[chosen]]
    if outs.size == 0 or members.size == 0:
        return None
    own_m = audience.loads_each(members, reach[members])  # each member's load per segment
    own_o = audience.loads_each(outs, reach[outs])
    fresh = np.exp(-own_o / sizes)  # the share each outsider leaves unreached
    loss = (sizes * np.exp(-np.maximum(load - own_m, 0.0) / sizes)).sum(axis=1) - unreached.sum()  # each alone
    q, k = outs.size, members.size
    pi, pj = np.triu_indices(q, 1)
    add_i, add_j = np.r_[np.arange(q), pi], np.r_[np.full(q, -1), pj]
    pairs = (fresh * unreached) @ fresh.T  # people left unreached after adding i and j
    gain = np.r_[unreached.sum() - fresh @ unreached, unreached.sum() - pairs[pi, pj]]
    di, dj = np.triu_indices(k, 1)
    drop_i, drop_j = np.r_[-1, np.arange(k), di], np.r_[-1, np.full(k, -1), dj]
    lost = np.where(drop_i >= 0, loss[np.maximum(drop_i, 0)], 0.0)
    lost += np.where(drop_j >= 0, loss[np.maximum(drop_j, 0)], 0.0)
    order = np.argsort(lost, kind="stable")
    drop_i, drop_j, lost = drop_i[order], drop_j[order], lost[order]
    dense = problem.dense
    ax = dense[:, chosen].sum(axis=1)
    cols_o, cols_m = dense[:, outs], dense[:, members]
    d_add = cols_o[:, add_i] + np.where(add_j >= 0, cols_o[:, np.maximum(add_j, 0)], 0.0)  # rows x add sets
    d_drop = -(np.where(drop_i >= 0, cols_m[:, np.maximum(drop_i, 0)], 0.0)
               + np.where(drop_j >= 0, cols_m[:, np.maximum(drop_j, 0)], 0.0))  # fmt: skip
    lo_b = problem.lo - 1e-9 * np.maximum(1.0, np.abs(problem.lo))
    hi_b = problem.hi + 1e-9 * np.maximum(1.0, np.abs(problem.hi))

    def keeps(r: int, row: F64) -> npt.NDArray[np.bool_]:
        return np.asarray((row <= hi_b[r]) & (row >= lo_b[r]))

    # rows some move can break, the tightest first (judged on a fixed sample of moves)
    rows = [r for r in range(dense.shape[0])
            if not (ax[r] + d_add[r].max() + d_drop[r].max() <= hi_b[r]
                    and ax[r] + d_add[r].min() + d_drop[r].min() >= lo_b[r])]  # fmt: skip
    sample_a = np.arange(0, gain.size, max(1, gain.size // 64))
    sample_d = np.arange(0, lost.size, max(1, lost.size // 64))
    rows.sort(key=lambda r: float(keeps(r, ax[r] + d_add[r][sample_a][:, None] + d_drop[r][sample_d][None, :]).mean()))
    floor = base * 1e-9
    # an add set that no drop set can make fit (on some row, even the most favourable one) is out from the start
    fits = gain - lost[0] > floor
    for r in rows:
        fits &= (ax[r] + d_add[r] + d_drop[r].min() <= hi_b[r]) & (ax[r] + d_add[r] + d_drop[r].max() >= lo_b[r])
    active = np.flatnonzero(fits)
    found = np.zeros(gain.size, dtype=np.int64)
    hits_a: list[I64] = []
    hits_d: list[I64] = []
    for start in range(0, lost.size, _EXCHANGE_BLOCK):
        active = active[gain[active] - lost[start] > floor]  # later drop sets lose more than these gain
        if active.size == 0:
            break
        block = np.arange(start, min(start + _EXCHANGE_BLOCK, lost.size))
        ok = gain[active][:, None] - lost[block][None, :] > floor
        if rows:
            ok &= keeps(rows[0], ax[rows[0]] + d_add[rows[0], active][:, None] + d_drop[rows[0], block][None, :])
        a, d = np.nonzero(ok)
        a, d = active[a], block[d]
        if a.size and len(rows) > 1:
            rest = rows[1:]
            after = ax[rest][:, None] + d_add[rest][:, a] + d_drop[rest][:, d]
            good = np.all((after <= hi_b[rest][:, None]) & (after >= lo_b[rest][:, None]), axis=0)
            a, d = a[good], d[good]
        if a.size:
            hits_a.append(a)
            hits_d.append(d)
            np.add.at(found, a, 1)
            active = active[found[active] < _EXCHANGE_KEEP]
    if not hits_a:
        return None
    a, d = np.concatenate(hits_a), np.concatenate(hits_d)
    top = np.argsort(-(gain[a] - lost[d]), kind="stable")[:_EXCHANGE_SCORED]
    a, d = a[top], d[top]
    after = load - np.where((drop_i[d] >= 0)[:, None], own_m[np.maximum(drop_i[d], 0)], 0.0)
    after -= np.where((drop_j[d] >= 0)[:, None], own_m[np.maximum(drop_j[d], 0)], 0.0)
    after = (
        np.maximum(after, 0.0)
        + own_o[add_i[a]]
        + np.where((add_j[a] >= 0)[:, None], own_o[np.maximum(add_j[a], 0)], 0.0)
    )
    values = total - (sizes * np.exp(-after / sizes)).sum(axis=1)
    at = int(np.argmax(values))
    if values[at] <= base * (1 + 1e-9):
        return None
    dropped = [int(members[x]) for x in (drop_i[d[at]], drop_j[d[at]]) if x >= 0]
    added = [int(outs[x]) for x in (add_i[a[at]], add_j[a[at]]) if x >= 0]
    return np.sort(np.r_[np.setdiff1d(chosen, dropped), np.asarray(added, dtype=np.int64)]).astype(np.int64)


_EXCHANGE_POOL = 30  # outsiders an exchange pass may bring in, by gradient and by gradient per dollar (+ per class)
_EXCHANGE_BLOCK = 64  # drop sets checked at a time, least loss first
_EXCHANGE_KEEP = 2  # feasible drop sets kept per add set
_EXCHANGE_SCORED = 256  # moves scored exactly, best estimate first
_EXCHANGE_PASSES = 4  # exchange moves (each followed by a local search) at most per solve


def _best_of(problem: Problem, gains: F64, among: I64, overall: int, each: int) -> I64:
    """Positions in ``among`` (``gains`` aligned with it) of the best by gains and by gains per dollar: ``overall``
    of each, then ``each`` of each per class (a swap that keeps a spend share or a tier count may need one of the
    same class, which the overall best may not hold). In that order, without repeats."""
    per_dollar = gains / np.maximum(problem.cost[among], 1e-9)
    parts = [top_k(gains, overall), top_k(per_dollar, overall)]
    group = problem.group[among]
    for g in np.unique(group):
        inside = np.flatnonzero(group == g)
        parts += [inside[top_k(gains[inside], each)], inside[top_k(per_dollar[inside], each)]]
    return np.asarray(list(dict.fromkeys(np.concatenate(parts).tolist())), dtype=np.int64)


def _pool(problem: Problem, gains: F64, size: int, among: I64) -> I64:
    """Outsiders a local-search pass tries, among ``among`` (``gains``: their gradient): ``_best_of`` with
    ``size`` overall and a share of it per class, those with a positive gradient."""
    each = max(4, size // max(np.unique(problem.group[among]).size, 1))
    picked = _best_of(problem, gains, among, size, each)
    return np.asarray(among[picked[gains[picked] > 0]], dtype=np.int64)


_SEARCH_POOL = 150  # outsiders a local-search pass tries, by gradient and by gradient per dollar (and per class)
_UNIVERSE = 2000  # candidates by marginal reach and by it per dollar the local search may bring in (and per class)


def _universe(problem: Problem, gains: F64, *keep: I64) -> I64:
    """The candidates a local search may bring in: ``_best_of`` by ``gains`` (marginal reach at a roster) over
    every candidate, and ``keep`` (the relaxation's support, the rosters found). Scoring only these makes a pass
    20-50 times cheaper at 100k candidates."""
    best = _best_of(problem, gains, np.arange(problem.n, dtype=np.int64), _UNIVERSE, _UNIVERSE // 20)
    parts = [best, np.flatnonzero(problem.fixed), *keep]
    return np.unique(np.concatenate([np.asarray(p, dtype=np.int64) for p in parts]))


def _best_single(problem: Problem, reach: F64) -> I64 | None:
    """The one creator with the most reach that is a feasible roster on its own (with the must-includes)."""
    for j in top_k(reach, 50):
        chosen = np.union1d(np.flatnonzero(problem.fixed), [j]).astype(np.int64)
        if problem.feasible(chosen):
            return chosen
    return None


_SMOOTH = 0.03  # soft-minimum temperature over a segment's pieces, per person of the segment, at the start (it halves
# whenever the excess it adds to the bound outgrows what Frank-Wolfe has left to close; see ``_Relaxed.upper``)
_BIG_SHARES = (1.0, 0.5)  # a creator's own load over a segment's people above which the union bound may
# take the pair (each threshold is one candidate relaxation per segment; the lowest is taken per segment)


class _Relaxed:
    """A concave function of a fractional roster x that is at least unique reach at every whole roster: the
    relaxation the Frank-Wolfe bound is taken on.

    The plain concave relaxation N (1 - exp(-sum_j a_j x_j)) per segment (a_j: creator j's load over the segment's
    N people) lets a fractional optimum take a creator who saturates a segment in part, at far more than that part
    of its value (a creator whose own load is 1.8 x the segment, at x = 0.3, covers 42% of it where the creator
    whole covers 83%); on 100k candidates with spend shares the bound sat 3.6% above the best roster. For any set
    B of creators,

        g_B(x) = N min(1, sum_{j in B} b_j x_j + 1 - exp(-sum_{j not in B} a_j x_j)),   b_j = 1 - exp(-a_j),

    is concave and, at a whole roster S, at least N (1 - prod_{j in S} (1 - b_j)), its unique reach on the segment
    (the people some creator of B reaches are at most the sum of each one's; the rest are counted as before). So is
    the least of several: per segment, this takes the least of g_B over B = {j: a_j > t} for each t in
    ``_BIG_SHARES`` and B empty (the plain relaxation). A sum of those is concave; the bound is taken on a weighted
    mean of each segment's pieces (``upper``), which is at least it.

    A vertex (a fractional roster) is held as one row, per segment: its whole load, then the load and the union
    sum of the pairs in each band between thresholds (all in people).
    """

    def __init__(self, audience: AudienceModel, reach: F64, shares: tuple[float, ...] = _BIG_SHARES,
                 smooth: float = _SMOOTH) -> None:  # fmt: skip
        self.audience, self.reach, self.smooth = audience, reach, smooth
        self.sizes = audience.sizes.reshape(-1)
        self.bands = len(shares)
        low = min(shares)
        # an upper bound on each creator's largest share of a segment, then the exact shares of those above the line
        least = audience.sizes.reshape(audience.head.shape[1], -1).min(axis=1)
        upper = reach * (audience.head / least).max(axis=1) * audience.tail.max(axis=1)
        maybe = np.flatnonzero(upper > low)
        share = audience.loads_each(maybe, reach[maybe]) / self.sizes if maybe.size else np.zeros((0, self.sizes.size))
        keep = share.max(axis=1, initial=0.0) > low
        self.big, share = maybe[keep], share[keep]
        # band of each pair: 0 for above the first threshold ... bands - 1 above the last; bands for none
        self.band = np.full(share.shape, self.bands, dtype=np.int64)
        for k, t in reversed(list(enumerate(shares))):
            self.band[share > t] = k
        self.own = share * self.sizes  # loads, in people
        self.union = -np.expm1(-share) * self.sizes  # people each reaches there
        self.row = np.full(audience.n, -1, dtype=np.int64)
        self.row[self.big] = np.arange(self.big.size)

    def vertex(self, idx: I64, x: F64) -> F64:
        """The row of fractional roster ``x`` on creators ``idx`` (see the class)."""
        seg = self.sizes.size
        out = np.zeros((1 + 2 * self.bands) * seg)
        out[:seg] = self.audience.load(idx, self.reach[idx] * x).reshape(-1)
        r = self.row[idx]
        on = r >= 0
        if on.any():
            w, band = x[on], self.band[r[on]]
            for k in range(self.bands):
                inside = band == k
                out[(1 + k) * seg : (2 + k) * seg] = w @ (self.own[r[on]] * inside)
                out[(1 + self.bands + k) * seg : (2 + self.bands + k) * seg] = w @ (self.union[r[on]] * inside)
        return out

    def _pieces(self, v: F64) -> tuple[F64, F64]:
        """Per segment, at the mix ``v``: the share left unreached in each piece's exp part (k + 1, seg), and each
        piece's value (k + 2, seg): the plain relaxation, the union forms above each threshold, then the cap (the
        segment's people)."""
        seg, k = self.sizes.size, self.bands
        total = v[:seg]
        own = v[seg : (1 + k) * seg].reshape(k, seg)
        union = v[(1 + k) * seg :].reshape(k, seg)
        loads = np.vstack([total, np.maximum(total - np.cumsum(own, axis=0), 0.0)])  # (k + 1, seg)
        unions = np.vstack([np.zeros(seg), np.cumsum(union, axis=0)])
        fresh = np.exp(-loads / self.sizes)
        return fresh, np.vstack([unions + self.sizes * (1.0 - fresh), self.sizes[None, :]])

    def value(self, v: F64) -> float:
        """The relaxation at the mix ``v``: per segment, its least piece."""
        return float(self._pieces(v)[1].min(axis=0).sum())

    def _weights(self, v: F64) -> tuple[F64, F64, F64, float]:
        """The pieces' weights at the mix ``v`` (see ``upper``): per segment, the load slope (sum of weight x
        unreached share over the exp parts), and for a pair in band b the weight (M[b]) and weighted unreached
        share (Q[b]) of the pieces whose union part holds it (bands above b); and the weighted value."""
        fresh, values = self._pieces(v)
        gap = values - values.min(axis=0)
        if self.smooth > 0:
            mu = np.exp(-gap / (self.smooth * self.sizes))
            mu /= mu.sum(axis=0)
        else:
            mu = (np.arange(values.shape[0])[:, None] == np.argmin(values, axis=0)[None, :]).astype(np.float64)
        slope = mu[:-1] * fresh  # (k + 1, seg); the cap's piece has no slope
        # pieces 1..k hold bands below them in their union part: sums over pieces above each band
        m = np.cumsum(mu[1:-1][::-1], axis=0)[::-1]  # (k, seg): m[b] = sum over pieces p > b (of 1..k)
        q = np.cumsum(slope[1:][::-1], axis=0)[::-1]
        return slope.sum(axis=0), m, q, float((mu * values).sum())

    def upper(self, v: F64) -> float:
        """The pieces weighted at ``v`` and added up: a smooth concave function, at least the relaxation
        everywhere (a weighted mean of pieces is at least their least), equal to it at ``v`` up to the
        smoothing (``smooth`` x the segment's people x log(pieces) at most). Its tangent at ``v`` bounds every
        roster; the weights are the soft minimum's, so at a kink the tangent blends the pieces that meet there
        (the least piece's tangent alone left the bound stalled 0.6% above the relaxation's value)."""
        return self._weights(v)[3]

    def vertex_gradient(self, rows: F64, v: F64) -> F64:
        """d upper / d weight of each vertex row, at the mix ``v`` (the weights held at ``v``'s)."""
        seg, k = self.sizes.size, self.bands
        per_load, m, q, _ = self._weights(v)
        own = rows[:, seg : (1 + k) * seg].reshape(-1, k * seg)
        union = rows[:, (1 + k) * seg :].reshape(-1, k * seg)
        return np.asarray(rows[:, :seg] @ per_load - own @ q.reshape(-1) + union @ m.reshape(-1), dtype=np.float64)

    def gradient(self, v: F64) -> tuple[F64, F64]:
        """d upper / d x_j for every candidate at the mix ``v`` (weights held), in single precision, and a bound
        on each one's error (the bound taken from it stays valid: see ``solve_reach``)."""
        per_load, m, q, _ = self._weights(v)
        grad, error = self.audience.weighted_reach_fast(self.reach, per_load)
        if self.big.size:  # pairs in a piece's union part count by their union share there, not their load
            inside = self.band < self.bands
            b = np.minimum(self.band, self.bands - 1)
            cols = np.arange(self.sizes.size)[None, :]
            grad[self.big] += (inside * (self.union * m[b, cols] - self.own * q[b, cols])).sum(axis=1)
        return grad, error


def _hull_weights(relaxed: _Relaxed, rows: F64, weights: F64, iters: int = 30) -> F64:
    """Weights on the simplex over the vertices found so far that maximize the relaxation at their mix (``rows``:
    one per vertex): exponentiated gradient, cheap since there are few vertices."""
    lam = np.asarray(weights, dtype=np.float64).copy()
    for _ in range(iters):
        g = relaxed.vertex_gradient(rows, lam @ rows)  # d value / d weight of each vertex
        top = float(g.max())
        spread = top - float(g.min())
        if spread <= 1e-12 * max(top, 1.0):
            break
        lam = lam * np.exp(4.0 * (g - top) / spread)
        lam /= lam.sum()
    return lam


def _round_by_weight(problem: Problem, x: F64) -> I64 | None:
    """Creators by their weight in the fractional roster ``x``, each taken while every cap holds; then repaired to
    meet the minimums (no MILP)."""
    a = problem.csc
    caps = cap_rows(problem)
    hi = problem.hi + 1e-9 * np.maximum(1.0, np.abs(problem.hi))
    take = problem.fixed.copy()
    ax = a @ take.astype(np.float64)
    support = np.flatnonzero(x > 1e-9)
    for j in support[np.argsort(-x[support], kind="stable")]:
        if take[j]:
            continue
        rows, vals = a.indices[a.indptr[j] : a.indptr[j + 1]], a.data[a.indptr[j] : a.indptr[j + 1]]
        if np.any(ax[rows][caps[rows]] + vals[caps[rows]] > hi[rows][caps[rows]]):
            continue
        take[j] = True
        ax[rows] += vals
    chosen = np.flatnonzero(take).astype(np.int64)
    return chosen if problem.feasible(chosen) else repair(problem, x, chosen, milp=False)


def solve_reach(
    problem: Problem,
    audience: AudienceModel,
    reach: F64,
    *,
    gap: float = 1e-3,
    time_limit: float = 60.0,
    rounds: int = 8,
    incumbent: I64 | None = None,
) -> Solution:
    """A roster maximizing unique reach under the problem's constraints, with a certified upper bound.

    ``rounds`` caps the Frank-Wolfe steps that tighten the bound (and offer new rosters).
    """
    t0 = time.perf_counter()
    reach = np.maximum(np.asarray(reach, dtype=np.float64), 0.0)
    if problem.n == 0:
        return solve_additive(problem, reach)
    stats: dict[str, Any] = {"method": "lazy greedy, roundings of the relaxation + local search; fully corrective "
                             "Frank-Wolfe bound on the concave relaxation",
                             "candidates": problem.n}  # fmt: skip
    first = relax(problem, reach, time_limit=time_limit)  # no overlap: the LP over summed reach
    if first is None:
        stats["seconds"] = time.perf_counter() - t0
        return Solution(np.zeros(0, np.int64), float("nan"), float("nan"), "infeasible", stats)
    flat = np.zeros(problem.n)
    flat[first.cols] = first.x
    starts = [repair(problem, reach, np.flatnonzero(flat > 0.5), milp=False), _best_single(problem, reach),
              _lazy_greedy(problem, audience, reach, per_dollar=True),
              _lazy_greedy(problem, audience, reach, per_dollar=False)]  # fmt: skip
    if incumbent is not None and incumbent.size and problem.feasible(incumbent):
        starts.append(np.sort(incumbent))
    if all(c is None for c in starts):  # the quick starts found no whole roster: ask the exact solver
        exact = solve_additive(problem, reach, gap=gap, time_limit=time_limit)
        if exact.status == "infeasible":
            stats["seconds"] = time.perf_counter() - t0
            return Solution(exact.chosen, float("nan"), float("nan"), "infeasible", stats)
        starts.append(exact.chosen)
    scored = [(audience.unique_reach(c, reach[c]), -k, c) for k, c in enumerate(starts) if c is not None]
    best_value, _, best = max(scored, key=lambda t: (t[0], t[1]))
    bound = first.bound * first.scale  # without overlap, the summed reach bounds unique reach
    # fully corrective Frank-Wolfe: x is the best mix of every vertex met so far (the rosters started from and each
    # LP vertex), re-weighted each round; its tangent plane over the LP bounds every roster. On 100k candidates
    # with spend shares it reached the relaxation's optimum to 0.1% in about 15 rounds, where plain Frank-Wolfe
    # steps were still 0.6% above it after 30.
    verts: list[tuple[I64, F64]] = []
    for c in dict.fromkeys(tuple(c.tolist()) for c in starts if c is not None and len(c)):
        idx = np.asarray(c, dtype=np.int64)
        verts.append((idx, np.ones(idx.size)))
    if not verts:
        verts.append((best, np.ones(best.size)))
    relaxed = _Relaxed(audience, reach)
    rows = np.array([relaxed.vertex(c, w) for c, w in verts])
    lam = np.full(len(verts), 1.0 / len(verts))
    warm = best
    used = 0
    for used in range(1, rounds + 1):  # noqa: B007 - the count is reported
        lam = _hull_weights(relaxed, rows, lam)
        mix = lam @ rows
        fx = relaxed.upper(mix)
        # the gradient is off by at most ``error`` per candidate: the LP takes the highest it can be and x's side
        # the lowest, so the tangent bound holds for the exact gradient too (0.002% looser at most)
        grad, error = relaxed.gradient(mix)
        gx = sum(w * float((grad[c] - error[c]) @ v) for w, (c, v) in zip(lam, verts, strict=True))
        rel = relax(problem, grad + error, time_limit=time_limit, per_group=16, seed=warm)
        if rel is None:
            break
        keep = rel.x > 1e-9
        warm = rel.cols[keep]
        bound = min(bound, fx + rel.bound * rel.scale - gx)
        if fx - relaxed.value(mix) > rel.bound * rel.scale - gx:  # the smoothing's excess outweighs the gap left
            relaxed.smooth /= 2
        # the LP vertex rounded and filled among the LP's own columns (the fill over every candidate cost 4-10 ms
        # a round at 100k for rosters no better)
        picked = repair(problem.take(rel.cols), grad[rel.cols], np.flatnonzero(rel.x > 0.5), milp=False)
        roster = None if picked is None else rel.cols[picked]
        if roster is not None:
            value = audience.unique_reach(roster, reach[roster])
            if value > best_value:
                best, best_value = roster, value
        if bound - best_value <= gap * best_value or fx + rel.bound * rel.scale - gx <= fx * (1 + 1e-4):
            break  # certified, or x is the relaxation's optimum: more rounds cannot lower the bound
        verts.append((rel.cols[keep], rel.x[keep]))
        rows = np.vstack([rows, relaxed.vertex(rel.cols[keep], rel.x[keep])[None, :]])
        lam = np.append(lam * 0.9, 0.1)
    # a roster from the relaxation's optimum: its largest weights first, as the caps allow, then repaired and filled
    lam = _hull_weights(relaxed, rows, lam)
    x_star = np.zeros(problem.n)
    for w, (cols_k, x_k) in zip(lam, verts, strict=True):
        x_star[cols_k] += w * x_k
    # the local search brings in creators good at the best roster's margin (its gradient there), not by raw reach.
    # It runs from the relaxation's optimum rounded and from the best roster met so far: which of the two ends
    # higher varies by world and by round count (the best roster alone, searched, ended 2.5% lower on one world)
    at_best = audience.gains_upper(reach, audience.load(best, reach[best]))
    universe = _universe(problem, at_best, np.flatnonzero(x_star > 1e-9), best)
    rounded = _round_by_weight(problem, x_star)
    for start in ([] if rounded is None else [rounded]) + [best]:
        if bound - best_value <= gap * best_value:
            break
        moved = _local_search(problem, audience, reach, start, pool=_SEARCH_POOL, passes=40, universe=universe)
        value = audience.unique_reach(moved, reach[moved])
        if value > best_value:
            best, best_value = moved, value
    # then moves of up to two creators each way, each followed by a local search, while they raise unique reach
    for _ in range(_EXCHANGE_PASSES):
        if bound - best_value <= gap * best_value:
            break
        traded = _exchange(problem, audience, reach, best, universe)
        if traded is None:
            break
        moved = _local_search(problem, audience, reach, traded, pool=_SEARCH_POOL, passes=40, universe=universe)
        value = audience.unique_reach(moved, reach[moved])
        if value <= best_value * (1 + 1e-9):
            break
        best, best_value = moved, value
    stats.update(rounds=used, no_overlap_bound=first.bound * first.scale, seconds=time.perf_counter() - t0)
    status = "optimal" if bound - best_value <= max(gap, 1e-9) * best_value else "gap"
    return Solution(np.sort(best), best_value, max(bound, best_value), status, stats)
