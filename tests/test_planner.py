"""The planner: exactness of the reduced knapsack, unique reach with its bound, infeasibility, properties."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from influencer_engine.brief import Brief, Constraints, MixLimit, load_brief
from influencer_engine.config import load_planner_config
from influencer_engine.errors import ConfigError
from influencer_engine.planner.coverage import AudienceModel, solve_reach
from influencer_engine.planner.knapsack import Problem, repair, solve_additive, solve_milp
from influencer_engine.planner.problem import PlanInfeasible, build_candidates, explain_infeasible, goal_values
from influencer_engine.registry import PLATFORMS, TIERS

BRIEFS = Path(__file__).resolve().parents[1] / "configs" / "briefs"


def candidate_table(n: int, seed: int) -> pl.DataFrame:
    """A forecast table like forecast_brief's: prices, KPIs with bands, fit, credibility."""
    rng = np.random.default_rng(seed)
    price = np.round(np.exp(rng.normal(6, 1.2, n)), 2)
    conv = price**0.8 * np.exp(rng.normal(-3, 0.8, n))
    reach = price * np.exp(rng.normal(3, 0.5, n))
    cols: dict[str, object] = {
        "creator_id": [f"c{i:04d}" for i in range(n)],
        "platform": rng.choice(PLATFORMS, n).tolist(),
        "tier": rng.choice(TIERS, n).tolist(),
        "format": ["video"] * n,
        "price": price,
        "audience_fit": rng.uniform(0, 0.6, n),
        "audience_credibility": rng.uniform(0.5, 1, n),
    }
    for kpi, v in (("reach", reach), ("impressions", reach * 1.6), ("engagements", reach * 0.05),
                   ("clicks", reach * 0.01), ("conversions", conv), ("revenue", conv * 60)):  # fmt: skip
        cols[kpi], cols[f"{kpi}_p10"], cols[f"{kpi}_p50"], cols[f"{kpi}_p90"] = v, v * 0.4, v * 0.9, v * 1.9
    return pl.DataFrame(cols)


def brief(goal: str = "conversions", budget: float = 5_000, **limits: object) -> Brief:
    return Brief(brief_id="t", goal=goal, budget=budget, brand_category="fitness", start_date=date(2026, 1, 5),
                 constraints=Constraints(**limits))  # type: ignore[arg-type]  # fmt: skip


def brute_force(table: pl.DataFrame, b: Brief, values: np.ndarray) -> float:
    cand = build_candidates(table, b)
    best = -np.inf
    for k in range(cand.problem.n + 1):
        for combo in itertools.combinations(range(cand.problem.n), k):
            idx = np.array(combo, dtype=np.int64)
            if cand.problem.feasible(idx):
                best = max(best, float(values[idx].sum()))
    return best


def test_example_briefs_load() -> None:
    for path in sorted(BRIEFS.glob("*.toml")):
        b = load_brief(path)
        assert b.constraints is not None and b.goal


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("[constraints]\nroster_min = 9\nroster_max = 3\n", "roster_min 9 > roster_max 3"),
        ("[constraints.tiers.giant]\nmax_count = 1\n", "unknown ['giant']"),
        ("[constraints]\ninclude = ['a']\nexclude = ['a']\n", "both included and excluded"),
        ("[constraints.platforms.tiktok]\nmin_share = 0.7\n[constraints.platforms.youtube]\nmin_share = 0.6\n",
         "add up to 1.30"),
        ("[constraints.tiers.micro]\nmax_share = 1.5\n", "share of spend"),
    ],
)  # fmt: skip
def test_bad_constraints_name_the_problem(tmp_path: Path, body: str, key: str) -> None:
    p = tmp_path / "b.toml"
    p.write_text('brand_category = "fitness"\nstart_date = "2026-01-05"\n' + body)
    with pytest.raises(ConfigError) as exc:
        load_brief(p)
    assert key in str(exc.value) and "b.toml" in str(exc.value)


@pytest.mark.parametrize("seed", range(6))
def test_knapsack_matches_brute_force(seed: int) -> None:
    table = candidate_table(12, seed)
    b = brief(budget=float(table["price"].sum()) * 0.4, roster_min=2, roster_max=6,
              tiers={"nano": MixLimit(max_count=2)}, platforms={"tiktok": MixLimit(max_share=0.6)})  # fmt: skip
    cand = build_candidates(table, b)
    v = goal_values(cand.table, "conversions", "expected", emv_cpm_usd=12)
    sol = solve_additive(cand.problem, v, gap=1e-9)
    best = brute_force(table, b, v)
    assert cand.problem.feasible(sol.chosen)
    assert sol.value == pytest.approx(best, rel=1e-7)
    assert sol.bound >= best - 1e-6


def test_reduction_keeps_optimality_against_plain_milp() -> None:
    table = candidate_table(4000, 7)
    b = brief(budget=40_000, roster_min=5, roster_max=30, tiers={"micro": MixLimit(min_count=3, max_share=0.5)},
              platforms={"instagram": MixLimit(min_share=0.2)})  # fmt: skip
    cand = build_candidates(table, b)
    v = goal_values(cand.table, "conversions", "expected", emv_cpm_usd=12)
    ours = solve_additive(cand.problem, v, gap=1e-6)
    plain = solve_milp(cand.problem, v, gap=1e-6, time_limit=120)
    assert cand.problem.feasible(ours.chosen) and cand.problem.feasible(plain.chosen)
    assert ours.value >= plain.value * (1 - 1e-5)
    assert ours.bound >= plain.value - 1e-6  # the certificate covers the true optimum
    assert ours.stats["after_fixing"] < cand.problem.n / 10


def test_repair_drops_members_until_a_spend_share_cap_holds() -> None:
    table = candidate_table(300, 3)
    b = brief(budget=50_000, roster_max=20, platforms={"tiktok": MixLimit(max_share=0.5)})
    cand = build_candidates(table, b)
    v = goal_values(cand.table, "conversions", "expected", emv_cpm_usd=12)
    price = cand.table["price"].to_numpy()
    tiktok = np.flatnonzero((cand.table["platform"] == "tiktok").to_numpy())
    others = np.setdiff1d(np.arange(cand.problem.n), tiktok)
    # the dearest TikTok creators and the cheapest others: well over half the spend on TikTok
    over = np.sort(np.r_[tiktok[np.argsort(-price[tiktok])][:6], others[np.argsort(price[others])][:4]])
    assert not cand.problem.feasible(over)
    fixed = repair(cand.problem, v, over, milp=False)  # simple moves only, no MILP
    assert fixed is not None and cand.problem.feasible(fixed)
    spend = price[fixed]
    assert spend[np.isin(fixed, tiktok)].sum() <= 0.5 * spend.sum() + 1e-6
    assert np.intersect1d(fixed, over).size > 0  # it kept part of the roster it was given


def audience(n: int, seed: int, pool: float = 2e6) -> AudienceModel:
    rng = np.random.default_rng(seed)
    factors = tuple(rng.dirichlet(np.full(k, 0.5), size=n) for k in (3, 4, 2))
    return AudienceModel.from_shares(factors, np.ones(n), pool)


def test_unique_reach_is_below_summed_reach_and_counts_overlap() -> None:
    aud = audience(5, 1)
    r = np.full(5, 1e5)
    one = aud.unique_reach(np.array([0]), r[:1])
    assert one == pytest.approx(1e5, rel=0.1)
    both = aud.unique_reach(np.array([0, 0]), r[:2])  # the same audience twice adds less than twice
    assert one < both < 2 * one


@pytest.mark.parametrize("per_dollar", [False, True])
def test_lazy_greedy_picks_what_the_plain_greedy_picks(per_dollar: bool) -> None:
    """The lazy greedy (stale gains refreshed a batch at a time, candidates a full cap rules out cleared at once)
    makes the plain greedy's picks: each time, the creator of largest true marginal unique reach (per dollar) among
    those every cap still allows."""
    from influencer_engine.planner.coverage import _lazy_greedy

    table = candidate_table(300, 5).with_columns((pl.col("reach") * 40).alias("reach"))
    b = brief("reach", budget=float(table["price"].sum()) * 0.08, roster_max=25, tiers={"nano": MixLimit(max_count=6)})
    cand = build_candidates(table, b)
    p = cand.problem
    aud = audience(p.n, 5, pool=3e6)
    reach = goal_values(cand.table, "reach", "expected", emv_cpm_usd=12)
    dense = p.A.toarray()
    chosen: list[int] = []
    while True:
        ax = dense[:, chosen].sum(axis=1)
        base = aud.unique_reach(np.array(chosen, dtype=np.int64), reach[chosen])
        best, pick = 0.0, None
        for j in range(p.n):
            if j in chosen or np.any(ax + dense[:, j] > p.hi + 1e-9) or reach[j] <= 0:
                continue
            idx = np.array([*chosen, j], dtype=np.int64)
            gain = aud.unique_reach(idx, reach[idx]) - base
            key = gain / p.cost[j] if per_dollar else gain
            if key > best:
                best, pick = key, j
        if pick is None:
            break
        chosen.append(pick)
    lazy = _lazy_greedy(p, aud, reach, per_dollar=per_dollar)
    assert lazy is not None and len(chosen) >= 5
    assert set(lazy.tolist()) == set(chosen)


@pytest.mark.parametrize("seed", range(4))
def test_reach_solver_bound_covers_brute_force(seed: int) -> None:
    table = candidate_table(11, seed).with_columns((pl.col("reach") * 40).alias("reach"))
    b = brief("reach", budget=float(table["price"].sum()) * 0.5, roster_max=5)
    cand = build_candidates(table, b)
    aud = audience(cand.problem.n, seed, pool=3e6)
    reach = goal_values(cand.table, "reach", "expected", emv_cpm_usd=12)
    sol = solve_reach(cand.problem, aud, reach, gap=1e-9, rounds=20)
    best = 0.0
    for k in range(cand.problem.n + 1):
        for combo in itertools.combinations(range(cand.problem.n), k):
            idx = np.array(combo, dtype=np.int64)
            if cand.problem.feasible(idx):
                best = max(best, aud.unique_reach(idx, reach[idx]))
    assert cand.problem.feasible(sol.chosen)
    assert sol.value <= best + 1e-6
    assert sol.bound >= best - 1e-6  # the certified bound really bounds the optimum
    assert sol.value >= best * 0.97


@pytest.mark.parametrize("seed", range(3))
def test_the_split_relaxation_is_concave_and_above_unique_reach_at_whole_rosters(seed: int) -> None:
    """Where creators reach more than a segment's people, the union pieces take those pairs: the relaxation is at
    least unique reach at every whole roster, concave between fractional rosters, and the solver's bound taken on it
    still covers the brute-force optimum."""
    from influencer_engine.planner.coverage import _Relaxed

    table = candidate_table(12, seed).with_columns((pl.col("reach") * 400).alias("reach"))
    b = brief("reach", budget=float(table["price"].sum()) * 0.5, roster_max=5)
    cand = build_candidates(table, b)
    p = cand.problem
    aud = audience(p.n, seed, pool=3e6)
    reach = goal_values(cand.table, "reach", "expected", emv_cpm_usd=12)
    relaxed = _Relaxed(aud, reach)
    assert relaxed.big.size > 0 and relaxed.band.min() < relaxed.bands  # some pairs are bounded by the union
    best = 0.0
    for k in range(p.n + 1):
        for combo in itertools.combinations(range(p.n), k):
            idx = np.array(combo, dtype=np.int64)
            truth = aud.unique_reach(idx, reach[idx])
            assert relaxed.value(relaxed.vertex(idx, np.ones(idx.size))) >= truth * (1 - 1e-12)
            if p.feasible(idx):
                best = max(best, truth)
    rng = np.random.default_rng(seed)
    every = np.arange(p.n, dtype=np.int64)
    for _ in range(20):
        x, y = rng.random(p.n), rng.random(p.n)
        vx, vy = relaxed.vertex(every, x), relaxed.vertex(every, y)
        mid = relaxed.value(relaxed.vertex(every, (x + y) / 2))
        assert mid >= (relaxed.value(vx) + relaxed.value(vy)) / 2 * (1 - 1e-12)
        # the tangent at x over-estimates the value at y (the gradient is a supergradient)
        # the tangent of the pieces weighted at x (sharp or soft minimum) over-estimates the relaxation at y
        for smooth in (0.0, 0.03):
            relaxed.smooth = smooth
            grad, error = relaxed.gradient(vx)
            top = relaxed.upper(vx)
            assert relaxed.value(vx) <= top * (1 + 1e-12)
            assert relaxed.value(vy) <= top + grad @ (y - x) + error @ np.abs(y - x)
            if smooth == 0.0:
                assert top == pytest.approx(relaxed.value(vx), rel=1e-12)
            # single precision: within the stated error of the double-precision gradient
            per_load = relaxed._weights(vx)[0]
            fast_part, _ = aud.weighted_reach_fast(reach, per_load)
            assert np.all(np.abs(fast_part - aud.weighted_reach(reach, per_load)) <= error)
    sol = solve_reach(p, aud, reach, gap=1e-9, rounds=6)
    assert p.feasible(sol.chosen)
    assert sol.bound >= best * (1 - 1e-9)


def _searched_roster(n: int, seed: int, *, budget_share: float, roster_max: int,
                     nano_max: int) -> tuple[Problem, AudienceModel, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """A small unique-reach brief whose budget and roster size bind: its problem, audience and reach, the per-dollar
    lazy greedy's roster, and that roster after the local search has run until it stops (every candidate in its
    pool)."""
    from influencer_engine.planner.coverage import _lazy_greedy, _local_search

    table = candidate_table(n, seed).with_columns((pl.col("reach") * 60).alias("reach"))
    b = brief("reach", budget=float(table["price"].sum()) * budget_share, roster_max=roster_max,
              tiers={"nano": MixLimit(max_count=nano_max)})  # fmt: skip
    cand = build_candidates(table, b)
    p = cand.problem
    aud = audience(p.n, seed, pool=3e6)
    reach = goal_values(cand.table, "reach", "expected", emv_cpm_usd=12)
    start = _lazy_greedy(p, aud, reach, per_dollar=True)
    assert start is not None
    return p, aud, reach, start, _local_search(p, aud, reach, start, pool=p.n, passes=500)


@pytest.mark.parametrize("seed", range(3))
def test_local_search_stops_only_where_no_single_move_helps(seed: int) -> None:
    """The local search scores moves in the order of an upper bound and stops scoring where no bound beats the best:
    run until it stops, with every candidate in its pool, no feasible add or swap raises unique reach."""
    p, aud, reach, start, done = _searched_roster(80, seed, budget_share=0.1, roster_max=8, nano_max=3)
    assert p.feasible(done)
    value = aud.unique_reach(done, reach[done])
    assert value >= aud.unique_reach(start, reach[start])
    members = [int(j) for j in done]
    for out in [None, *members]:
        for j in range(p.n):
            if j in members:
                continue
            moved = np.array([m for m in members if m != out] + [j], dtype=np.int64)
            if p.feasible(moved):
                assert aud.unique_reach(moved, reach[moved]) <= value * (1 + 1e-9)


def test_exchange_trades_one_creator_for_two_where_no_single_swap_fits() -> None:
    """A roster at its budget: swapping its creator for either cheaper one loses reach, adding one breaks the
    budget; dropping it for both raises unique reach. The local search stops there; the exchange finds the trade."""
    import scipy.sparse as sp

    from influencer_engine.planner.coverage import _exchange, _local_search

    cost = np.array([100.0, 50.0, 50.0, 100.0])
    mix = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]])  # one segment each; 3 overlaps 0
    aud = AudienceModel.from_shares((mix,), np.ones(4), 1e7)
    reach = np.array([1000.0, 700.0, 700.0, 100.0])
    a = sp.csr_matrix(np.vstack([cost, np.ones(4)]))
    p = Problem(cost, a, np.array([-np.inf, 1.0]), np.array([100.0, 2.0]), ("budget", "roster"), np.zeros(4, bool),
                np.zeros(4, np.int64))  # fmt: skip
    start = np.array([0], dtype=np.int64)
    assert np.array_equal(_local_search(p, aud, reach, start, pool=4, passes=10), start)
    traded = _exchange(p, aud, reach, start, np.arange(4, dtype=np.int64))
    assert traded is not None and p.feasible(traded)
    assert traded.tolist() == [1, 2]
    assert aud.unique_reach(traded, reach[traded]) > aud.unique_reach(start, reach[start])


@pytest.mark.parametrize("seed", range(6))
def test_exchange_finds_the_best_forced_trade(seed: int) -> None:
    """From a roster where no single swap helps, on small briefs whose budget and roster size bind, by brute force
    over every move of up to two creators out and two in: the exchange returns the best of the moves its estimate
    sees (the add set's gain at the roster beats the members' single losses), and never a worse roster. Moves
    that only pay because the new creators share the audience of the ones leaving are the local search's kind, and
    two of these seeds have one the exchange does not see (noted, not asserted)."""
    from influencer_engine.planner.coverage import _exchange

    p, aud, reach, _, done = _searched_roster(40, seed, budget_share=0.15, roster_max=6, nano_max=2)

    def value_of(roster: list[int]) -> float:
        idx = np.asarray(roster, dtype=np.int64)
        return aud.unique_reach(idx, reach[idx])

    value = value_of(done.tolist())
    members = [int(j) for j in done]
    outsiders = [j for j in range(p.n) if j not in members]
    loss = {m: value - value_of([x for x in members if x != m]) for m in members}
    seen = 0.0  # the best improvement among the moves the exchange's estimate sees
    for k_out in range(3):
        for out in itertools.combinations(members, k_out):
            for k_in in range(1, 3):
                for new in itertools.combinations(outsiders, k_in):
                    moved = [m for m in members if m not in out] + list(new)
                    if not p.feasible(np.asarray(moved, dtype=np.int64)):
                        continue
                    change = value_of(moved) - value
                    estimate = value_of(members + list(new)) - value - sum(loss[m] for m in out)
                    if change > 1e-9 * value and estimate > 1e-9 * value:
                        seen = max(seen, change)
    traded = _exchange(p, aud, reach, done, np.arange(p.n, dtype=np.int64))
    if traded is None:
        assert seen == 0.0
    else:
        assert p.feasible(traded)
        assert value_of(traded.tolist()) - value == pytest.approx(seen, rel=1e-9)


def test_infeasible_brief_says_which_constraint_and_by_how_much() -> None:
    table = candidate_table(60, 3)
    b = brief(budget=100.0, roster_min=10)
    cand = build_candidates(table, b)
    assert solve_additive(cand.problem, np.ones(cand.problem.n)).status == "infeasible"
    reasons = explain_infeasible(cand, 100.0)
    cheapest10 = float(np.sort(cand.table["price"].to_numpy())[:10].sum())
    assert any("budget $100 is short by at least" in r for r in reasons)
    short = float(next(r for r in reasons if r.startswith("budget")).split("$")[-1].replace(",", ""))
    assert short == pytest.approx(cheapest10 - 100.0, abs=1.0)  # roster of the 10 cheapest, whole creators

    no_mega = table.filter(pl.col("tier") != "mega")
    cand = build_candidates(no_mega, brief(budget=1e6, tiers={"mega": MixLimit(min_count=2)}))
    assert any(r.startswith("mega creators >= 2 is off by at least 2.0 creators") for r in
               explain_infeasible(cand, 1e6))  # fmt: skip


def test_must_include_that_a_filter_rules_out_is_explained() -> None:
    table = candidate_table(30, 4)
    dear = table.sort("price", descending=True)["creator_id"][0]
    with pytest.raises(PlanInfeasible) as exc:
        build_candidates(table, brief(budget=1e6, max_spend_per_creator=10.0, include=(dear,)))
    assert dear in str(exc.value) and "per-creator cap" in str(exc.value)
    with pytest.raises(PlanInfeasible, match="not among the candidates"):
        build_candidates(table, brief(include=("nobody",)))


def test_filtered_rows_account_for_every_candidate() -> None:
    table = candidate_table(200, 5)
    b = brief(min_audience_fit=0.2, min_credibility=0.7, max_spend_per_creator=800.0, exclude=("c0001",))
    cand = build_candidates(table, b)
    assert cand.table.height + cand.filtered.height == table.height
    reasons = set(cand.filtered["reason"].to_list())
    assert "excluded by the brief" in reasons and "audience fit below 20%" in reasons


def test_planner_config_loads() -> None:
    cfg = load_planner_config()
    assert cfg.audience.people_pool > 0 and 0 < cfg.solver.mip_rel_gap < 0.01


@st.composite
def instances(draw: st.DrawFn) -> tuple[pl.DataFrame, Brief, Brief]:
    n = draw(st.integers(6, 25))
    table = candidate_table(n, draw(st.integers(0, 10_000)))
    ids = table["creator_id"].to_list()
    include = tuple(draw(st.lists(st.sampled_from(ids), max_size=2, unique=True)))
    exclude = tuple(i for i in draw(st.lists(st.sampled_from(ids), max_size=3, unique=True)) if i not in include)
    cheap_enough = float(table.filter(pl.col("creator_id").is_in(list(include)))["price"].sum())
    b1 = draw(st.floats(50, 5_000)) + cheap_enough
    b2 = b1 + draw(st.floats(0, 5_000))
    limits = {
        "roster_max": draw(st.integers(max(2, len(include)), 10)),
        "include": include,
        "exclude": exclude,
        "tiers": {"mega": MixLimit(max_count=draw(st.integers(0, 2)))},
        "platforms": {"youtube": MixLimit(max_share=draw(st.floats(0.2, 1.0)))},
    }
    goal = draw(st.sampled_from(["conversions", "engagement", "roas", "reach"]))
    return table, brief(goal, b1, **limits), brief(goal, b2, **limits)


@settings(
    max_examples=int(__import__("os").environ.get("HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(instances())
def test_roster_properties(case: tuple[pl.DataFrame, Brief, Brief]) -> None:
    table, small, large = case
    market = audience(table.height, 0)  # one audience per creator, whichever candidates a budget leaves eligible
    values = []
    prev = None
    for b in (small, large):
        try:
            cand = build_candidates(table, b)
        except PlanInfeasible:
            return
        v = goal_values(cand.table, b.goal, "expected", emv_cpm_usd=12)
        if b.goal == "reach":
            rows = np.flatnonzero(np.isin(table["creator_id"].to_numpy(), cand.table["creator_id"].to_numpy()))
            aud = market.take(rows)
            sol = solve_reach(cand.problem, aud, v, gap=1e-9, incumbent=prev)
            again = solve_reach(cand.problem, aud, v, gap=1e-9, incumbent=prev)
        else:
            sol = solve_additive(cand.problem, v, gap=1e-9, incumbent=prev)
            again = solve_additive(cand.problem, v, gap=1e-9, incumbent=prev)
        if sol.status == "infeasible":
            assert explain_infeasible(cand, b.budget)
            return
        chosen = cand.table[sol.chosen.tolist()]
        assert float(chosen["price"].sum()) <= b.budget + 1e-6  # never over budget
        assert cand.problem.feasible(sol.chosen)  # every constraint row holds
        assert chosen.height <= (b.constraints.roster_max or 10**9)
        assert chosen.filter(pl.col("tier") == "mega").height <= (b.constraints.tiers["mega"].max_count or 0)
        ids = set(chosen["creator_id"].to_list())
        assert set(b.constraints.include) <= ids and not ids & set(b.constraints.exclude)
        assert np.array_equal(sol.chosen, again.chosen)  # same brief, same roster
        values.append(sol.value)
        # the smaller budget's roster is feasible at the larger budget: hand it over as the incumbent
        prev = np.flatnonzero(np.isin(cand.table["creator_id"].to_numpy(), chosen["creator_id"].to_numpy()))
    assert values[1] >= values[0] - 1e-6 * max(1.0, abs(values[0]))  # value never drops with more budget


def budget_and_roster(rng: np.random.Generator, n: int, *, log_price: tuple[float, float], noise: float,
                      budgets: float, roster: float, fixed: npt.NDArray[np.bool_] | None = None,
                      ) -> tuple[Problem, npt.NDArray[np.float64]]:  # fmt: skip
    """A random knapsack of ``n`` creators (log-normal prices, values around them) with a budget of ``budgets``
    median prices and a roster cap; and the creators' values."""
    import scipy.sparse as sp

    cost = np.exp(rng.normal(log_price[0], log_price[1], n))
    values = cost * np.exp(rng.normal(0, noise, n))
    a = sp.csr_matrix(np.vstack([cost, np.ones(n)]))
    p = Problem(cost, a, np.array([-np.inf, -np.inf]), np.array([float(np.quantile(cost, 0.5) * budgets), roster]),
                ("budget", "roster"), np.zeros(n, dtype=bool) if fixed is None else fixed,
                np.zeros(n, dtype=np.int64))  # fmt: skip
    return p, values


def test_branched_bound_is_valid_and_no_looser_than_the_lp() -> None:
    """The bound that spares the big MILP: every roster lies in one leaf of the branching, so it never falls below
    the best roster (found by a plain MILP), and it never rises above the LP bound."""
    from influencer_engine.planner.knapsack import _branched_bound, relax, solve_milp

    rng = np.random.default_rng(3)
    tighter = 0
    for trial in range(5):
        fixed = np.zeros(80, dtype=bool)
        fixed[trial] = trial % 2 == 1  # some problems with a must-include creator
        p, values = budget_and_roster(rng, 80, log_price=(7, 1.2), noise=0.5, budgets=4, roster=6, fixed=fixed)
        best = solve_milp(p, values, gap=0.0)
        rel = relax(p, values)
        assert rel is not None
        frac = rel.cols[(rel.x > 1e-6) & (rel.x < 1 - 1e-6)]
        bound = _branched_bound(p, values, frac, rel.cols, 60.0)
        assert best.value <= bound * (1 + 1e-9) + 1e-9, trial
        assert bound <= rel.bound * rel.scale * (1 + 1e-9) + 1e-9, trial
        tighter += bound < rel.bound * rel.scale * (1 - 1e-6)
    assert tighter >= 1  # and it does tighten


def test_bounds_only_proof_certifies_what_it_reports_and_skips_the_big_milp() -> None:
    """prove=False (ie serve's default) keeps every step but the proving MILP: its bound still covers the best
    roster (a plain MILP's), the gap it reports is the gap to that bound, and where the LP bounds already prove the
    gap asked it gives the full solve's roster."""
    rng = np.random.default_rng(11)
    skipped = 0
    for trial in range(6):
        p, values = budget_and_roster(rng, 400, log_price=(6, 1.0), noise=0.4, budgets=8, roster=12)
        best = solve_milp(p, values, gap=0.0)
        full = solve_additive(p, values, gap=1e-4)
        quick = solve_additive(p, values, gap=1e-4, prove=False)
        assert p.feasible(quick.chosen) and quick.value <= best.value + 1e-9
        assert quick.bound >= best.value * (1 - 1e-9), trial  # a valid certificate
        assert quick.gap == pytest.approx((quick.bound - quick.value) / quick.value)
        assert quick.stats["after_fixing"] == 0  # no MILP over the candidates left after fixing
        if "proof" in quick.stats:
            skipped += 1
            assert quick.status == "gap" and quick.gap > 1e-4
        else:
            assert np.array_equal(quick.chosen, full.chosen) and quick.status == "optimal"
    assert skipped >= 1  # the tight gap asked is beyond the LP bounds on some of these


def test_risk_averse_plan_maximises_the_rosters_p10_not_the_sum_of_each_creators() -> None:
    """One big creator against ten small ones at the same price and mean: summed P10s cannot tell them apart (the
    same relative band), but the ten's shortfalls average out, so the roster's own P10 is higher with them."""
    from influencer_engine.planner.plan import roster_downside_values

    n = 11
    mean = np.array([1000.0] + [100.0] * 10)
    price = np.array([1000.0] + [100.0] * 10)
    table = candidate_table(n, 0).with_columns(pl.Series("price", price), pl.Series("conversions", mean),
                                               pl.Series("conversions_p10", mean * 0.4),
                                               pl.Series("conversions_p90", mean * 1.9))  # fmt: skip
    b = brief(budget=1_000)
    cand = build_candidates(table, b)
    summed = goal_values(cand.table, "conversions", "p10", emv_cpm_usd=12.0)
    assert summed[0] == pytest.approx(summed[1:].sum())  # no preference either way
    values = roster_downside_values(cand, "conversions", load_planner_config(), emv_cpm_usd=12.0)
    chosen = solve_additive(cand.problem, values, gap=1e-6, time_limit=10).chosen
    ids = set(cand.table["creator_id"].gather(chosen).to_list())
    assert ids == {f"c{i:04d}" for i in range(1, 11)}
    # the roster's P10 (normal approximation from the bands) is higher for the ten than for the one
    sd = (mean * 1.9 - mean * 0.4) / (2 * 1.2815515655446004)
    assert 1000 - 1.28 * np.sqrt((sd[1:] ** 2).sum()) > 1000 - 1.28 * sd[0]


def test_a_rosters_expected_total_is_drawn_from_the_forecasts_error_alone() -> None:
    """The evaluation's band of a roster's expected total draws only the share of each band measured to be error about
    the expected value: it averages to the forecast, sits inside the band of deliveries, widens with the part the
    creators share, and equals the band of deliveries when the whole band is that error."""
    from influencer_engine.evaluation.planner_eval import expected_draws
    from influencer_engine.modeling.intervals import ExpectedError
    from influencer_engine.planner.totals import _draws

    rows = 40
    q = np.tile(np.array([50.0, 100.0, 200.0, 110.0]), (rows, 1))
    delivered = _draws(q, None, 4000, np.random.default_rng(3)).sum(axis=1)

    def width(x: npt.NDArray[np.float64]) -> float:
        lo, hi = np.quantile(x, [0.1, 0.9])
        return float(hi - lo)

    alone = expected_draws(q, ExpectedError(0.2, 0.0, 1000), 4000, np.random.default_rng(4))
    np.testing.assert_allclose(alone.mean(axis=0), q[:, 3])
    shared = expected_draws(q, ExpectedError(0.2, 0.5, 1000), 4000, np.random.default_rng(4))
    whole = expected_draws(q, ExpectedError(1.0, 0.0, 1000), 4000, np.random.default_rng(4))
    assert width(alone.sum(axis=1)) < 0.6 * width(delivered)  # a fifth of each band's variance, independent
    assert width(shared.sum(axis=1)) > 2.0 * width(alone.sum(axis=1))  # 40 creators: what they share dominates
    assert width(whole.sum(axis=1)) == pytest.approx(width(delivered), rel=0.1)
    with pytest.raises(ValueError, match="not measured"):
        expected_draws(q, ExpectedError(), 10, np.random.default_rng(4))


def test_a_rosters_expected_total_carries_what_its_segments_and_campaign_share() -> None:
    """Where the error creators share was measured on the scale of sums, a roster's expected total draws it: a
    context factor for the whole roster and one factor per segment (platform and tier). Forty creators of one segment
    then spread as the two factors do (their own errors average out), forty creators of four segments less, and
    every creator still averages to its forecast."""
    from influencer_engine.evaluation.planner_eval import expected_draws
    from influencer_engine.modeling.intervals import ExpectedError

    rows = 40
    q = np.tile(np.array([50.0, 100.0, 200.0, 110.0]), (rows, 1))
    error = ExpectedError(0.2, 0.5, 1000, segment=0.04, context=0.01)
    one = expected_draws(q, error, 20_000, np.random.default_rng(4), np.array(["tiktok/nano"] * rows))
    four = expected_draws(q, error, 20_000, np.random.default_rng(4),
                          np.array(["tiktok/nano", "tiktok/micro", "instagram/nano", "youtube/mid"] * 10))  # fmt: skip
    np.testing.assert_allclose(one.mean(axis=0), q[:, 3], rtol=0.03)
    np.testing.assert_allclose(four.mean(axis=0), q[:, 3], rtol=0.03)

    def rel_var(x: npt.NDArray[np.float64]) -> float:
        total = x.sum(axis=1)
        return float(total.var() / total.mean() ** 2)

    own = rel_var(expected_draws(q, ExpectedError(0.2, 0.0, 1000, segment=0.0, context=0.0), 20_000,
                                 np.random.default_rng(4)))  # fmt: skip
    assert rel_var(one) == pytest.approx((1 + own) * 1.04 * 1.01 - 1, rel=0.1)
    assert rel_var(four) == pytest.approx((1 + own) * (1 + 0.04 / 4) * 1.01 - 1, rel=0.15)
    # before the covariances of sums were measured (None), the log1p common part moves the roster instead
    before = expected_draws(q, ExpectedError(0.2, 0.5, 1000), 20_000, np.random.default_rng(4))
    assert rel_var(before) > 5 * own


def test_a_common_error_moves_a_rosters_creators_together() -> None:
    """The share of each band that the models measured to be common to a campaign's creators is drawn once per
    roster: the roster's band widens with it, every creator's draws still average to its forecast, and a band made
    wholly of assumptions (its own) shares nothing."""
    from influencer_engine.planner.totals import _draws

    rows = 40
    q = np.tile(np.array([50.0, 100.0, 200.0, 110.0]), (rows, 1))
    none = _draws(q, None, 4000, np.random.default_rng(3))
    zero = _draws(q, np.zeros((rows, 2)), 4000, np.random.default_rng(3))
    np.testing.assert_allclose(zero, none)  # nothing common: creators independent, as without a split
    common = _draws(q, np.column_stack([np.full(rows, 0.3), np.zeros(rows)]), 4000, np.random.default_rng(3))
    np.testing.assert_allclose(common.mean(axis=0), q[:, 3])
    width = {
        name: np.subtract(*np.quantile(d.sum(axis=1), [0.9, 0.1])) for name, d in (("none", none), ("common", common))
    }
    assert width["common"] > 2.0 * width["none"]  # 40 creators: 30% common is most of the roster's spread
    assumed = _draws(q, np.column_stack([np.full(rows, 0.3), np.full(rows, 10.0)]), 4000, np.random.default_rng(3))
    np.testing.assert_allclose(assumed, none)  # the whole band is the rows' own assumptions


def test_a_leaf_of_the_branching_is_the_problem_without_its_columns() -> None:
    """The branched bound's leaves keep their classes from the problem's (no sort per leaf): the same classes,
    cheapest creators and columns as a leaf built from scratch, also where a class loses every member."""
    import dataclasses

    from influencer_engine.planner.knapsack import _leaf

    rng = np.random.default_rng(5)
    p, _ = budget_and_roster(rng, 60, log_price=(7, 1.0), noise=0.5, budgets=4, roster=6)
    group = rng.integers(0, 5, 60)
    group[[7, 11]] = 9  # a class of two, both left out below
    p = dataclasses.replace(p, group=group)
    out, into = np.array([7, 11, 20]), np.array([3, 40])
    leaf, idx, at = _leaf(p, out, into)
    assert np.array_equal(idx, np.setdiff1d(np.arange(60), out))
    assert np.array_equal(at[idx], np.arange(idx.size))
    scratch = dataclasses.replace(p, fixed=np.isin(np.arange(60), into)).take(idx)  # no caches: computed afresh
    assert len(leaf.group_slices) == len(scratch.group_slices) == 5
    for a, b in zip(leaf.group_slices, scratch.group_slices, strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(np.sort(leaf.cheapest(2)), np.sort(scratch.cheapest(2)))
    assert np.array_equal(leaf.fixed, scratch.fixed) and leaf.fixed[at[into]].all()
    assert np.array_equal(leaf.A.toarray(), scratch.A.toarray()) and np.array_equal(leaf.cost, scratch.cost)


def test_evolve_keeps_the_caches_of_what_it_does_not_change() -> None:
    """A plan sets its budget on the server's cached problem: the matrix, classes and cheapest creators cached
    there carry over (they do not depend on the limits); changing the matrix needs a new problem."""
    rng = np.random.default_rng(6)
    p, _ = budget_and_roster(rng, 30, log_price=(7, 1.0), noise=0.5, budgets=4, roster=6)
    dense, classes, cheapest = p.dense, p.group_slices, p.cheapest(3)
    q = p.evolve(hi=p.hi * 2)
    assert q.dense is dense and q.group_slices is classes and q.cheapest(3) is cheapest
    assert np.array_equal(q.hi, p.hi * 2) and not np.array_equal(q.hi, p.hi)
    with pytest.raises(ValueError, match="matrix"):
        p.evolve(cost=p.cost * 2)


def test_branched_bound_equals_each_leaf_solved_afresh() -> None:
    """The leaves share one warm-started LP over the root's columns: each leaf's bound is the one column generation
    over the whole leaf gives (the bound, not a looser one), with lower limits (negative duals) and must-includes."""
    import itertools

    import scipy.sparse as sp

    from influencer_engine.planner.knapsack import _branched_bound, _leaf, relax

    def afresh(p: Problem, values: npt.NDArray[np.float64], frac: npt.NDArray[np.int64]) -> float:
        best = -np.inf
        for pattern in itertools.product((False, True), repeat=frac.size):
            inside = np.asarray(pattern, dtype=bool)
            if p.fixed[frac[~inside]].any():
                continue
            leaf, idx, _ = _leaf(p, frac[~inside], frac[inside])
            r = relax(leaf, values[idx])
            if r is not None:
                best = max(best, r.bound * r.scale)
        return float(best)

    rng = np.random.default_rng(11)
    compared = 0
    for trial in range(6):
        n = 300
        fixed = np.zeros(n, dtype=bool)
        fixed[trial] = trial % 3 == 0
        p, values = budget_and_roster(rng, n, log_price=(7, 1.2), noise=0.6, budgets=6, roster=9, fixed=fixed)
        group = rng.integers(0, 4, n)
        # class 0 at least 3 creators; class 1 at most 40% of the spend (price x (in class - 0.4) <= 0)
        rows = np.vstack([p.A.toarray(), (group == 0).astype(float), p.cost * ((group == 1) - 0.4)])
        p = Problem(p.cost, sp.csr_matrix(rows), np.r_[p.lo, 3.0, -np.inf], np.r_[p.hi, np.inf, 0.0],
                    (*p.names, "class 0 min", "class 1 share"), p.fixed, group)  # fmt: skip
        rel = relax(p, values, per_group=4)
        assert rel is not None
        frac = rel.cols[(rel.x > 1e-6) & (rel.x < 1 - 1e-6)][:3]
        if frac.size == 0:
            continue
        shared = _branched_bound(p, values, frac, rel.cols, 60.0)
        reference = afresh(p, values, frac)
        assert shared == pytest.approx(reference, rel=1e-7), trial
        # seeded with the branched columns alone, leaves start infeasible (class 0's minimum) and are solved afresh
        assert _branched_bound(p, values, frac, frac, 60.0) == pytest.approx(reference, rel=1e-7), trial
        compared += 1
    assert compared >= 3


def test_the_truth_with_noise_reference_puts_a_net_returns_error_on_its_revenue() -> None:
    """The reference rosters planned on the truth with a known error: for a KPI goal the error scales each value; for
    net return (revenue minus price) it is the revenue's error, so a creator who barely pays back can be planned as
    losing money and one who barely loses as paying back, as a forecast of revenue would have them."""
    from influencer_engine.evaluation.planner_eval import noisy_values

    price = np.array([100.0, 100.0, 100.0])
    conversions = np.array([10.0, 20.0, 0.0])
    rows = pl.DataFrame({"price": price, "revenue": [105.0, 95.0, 400.0], "conversions": conversions})  # net 5, -5, 300
    error = np.array([-0.1, 0.1, 0.0])
    got = noisy_values(rows, "roas", error, emv_cpm_usd=10.0)
    np.testing.assert_allclose(got, [105 * np.exp(-0.1) - 100, 95 * np.exp(0.1) - 100, 300.0])
    assert got[0] < 0 < got[1]  # both signs flipped
    np.testing.assert_allclose(noisy_values(rows, "conversions", error, emv_cpm_usd=10.0), conversions * np.exp(error))
