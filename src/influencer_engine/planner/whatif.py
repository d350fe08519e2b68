"""Budget what-ifs: the goal against budget with a P10-P90 band, marginal return, roster mix, scenarios."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.brief import Brief, Scenario
from influencer_engine.config import PlannerConfig
from influencer_engine.errors import ConfigError
from influencer_engine.forecast import BriefForecast
from influencer_engine.io import atomic_path, write_csv, write_parquet
from influencer_engine.planner.plan import explain_budget, plan_candidates, prepare
from influencer_engine.planner.problem import PlanInfeasible
from influencer_engine.registry import GOALS, PLATFORMS, TIERS

__all__ = ["WhatIf", "parse_budgets", "parse_scenario", "saturation", "whatif", "write_whatif"]

BASE = "as briefed"
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class WhatIf:
    brief: Brief
    table: pl.DataFrame  # one row per scenario x budget


def parse_budgets(spec: str) -> list[float]:
    """'5000:200000:20' -> 20 budgets from 5,000 to 200,000; '10000,20000' -> those budgets."""
    try:
        if ":" in spec:
            lo, hi, n = spec.split(":")
            values = np.linspace(float(lo), float(hi), int(n)).tolist()
        else:
            values = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError as exc:
        raise ConfigError(f"--budgets '{spec}' is not understood.",
                          fix="use FROM:TO:STEPS (5000:200000:20) or a list (10000,20000,50000)") from exc  # fmt: skip
    if not values or min(values) <= 0:
        raise ConfigError(f"--budgets '{spec}' needs positive budgets.", fix="use for example 5000:200000:20")
    return sorted(set(values))


def parse_scenario(spec: str) -> Scenario:
    """'small=tiers:nano,micro;platforms:tiktok' -> a scenario named 'small' with those tiers and platforms."""
    name, _, body = spec.partition("=")
    fields: dict[str, tuple[str, ...]] = {}
    for part in filter(None, body.split(";")):
        key, _, values = part.partition(":")
        if key.strip() not in ("tiers", "platforms") or not values:
            raise ConfigError(f"--scenario '{spec}': '{part}' is not understood.",
                              fix="use NAME=tiers:nano,micro or NAME=platforms:tiktok,instagram")  # fmt: skip
        fields[key.strip()] = tuple(v.strip() for v in values.split(",") if v.strip())
        vocab = TIERS if key.strip() == "tiers" else PLATFORMS
        unknown = [v for v in fields[key.strip()] if v not in vocab]
        if unknown:
            raise ConfigError(f"--scenario '{spec}': unknown {key.strip()} {unknown}.", fix=f"use {', '.join(vocab)}")
    if not name.strip() or not fields:
        raise ConfigError(f"--scenario '{spec}' needs a name and a change.", fix="use NAME=tiers:nano,micro")
    try:
        return Scenario(name=name.strip(), **fields)
    except ValueError as exc:
        raise ConfigError(f"--scenario '{spec}': {exc}.", fix="use tiers and platforms the engine knows") from exc


def _mix(table: pl.DataFrame) -> dict[str, float]:
    spend = float(table["price"].sum()) if table.height else 0.0
    out: dict[str, float] = {}
    for col, vocab in (("tier", TIERS), ("platform", PLATFORMS)):
        for v in vocab:
            part = table.filter(pl.col(col) == v)
            out[f"n_{v}"] = float(part.height)
            out[f"spend_share_{v}"] = float(part["price"].sum()) / spend if spend else 0.0
    return out


def whatif(forecast: BriefForecast, brief: Brief, cfg: PlannerConfig, budgets: list[float], *,
           scenarios: tuple[Scenario, ...] | None = None) -> WhatIf:  # fmt: skip
    """Plan every scenario at every budget (ascending, each warm-started with the roster one step down)."""
    variants = [(BASE, brief.model_copy(update={"budget": max(budgets)}))]
    for sc in brief.scenarios if scenarios is None else scenarios:
        variants.append((sc.name, brief.with_scenario(sc).model_copy(update={"budget": max(budgets)})))
    rows: list[dict[str, Any]] = []
    for name, variant in variants:
        try:
            prep = prepare(forecast, variant, cfg)
        except PlanInfeasible as exc:
            rows += [{"scenario": name, "budget": b, "status": "infeasible", "reason": "; ".join(exc.reasons)}
                     for b in budgets]  # fmt: skip
            continue
        prev, prev_value, prev_budget = None, None, None
        limit: tuple[I64, str] | None = None  # the roster at which spending stopped, and what stops it
        for b in budgets:
            try:
                sol, totals = plan_candidates(prep, cfg, budget=b, incumbent=prev)
            except PlanInfeasible as exc:
                rows.append({"scenario": name, "budget": b, "status": "infeasible", "reason": "; ".join(exc.reasons)})
                continue
            goal = totals.goal
            roster = prep.candidates.table[sol.chosen.tolist()]
            marginal: float | None = (None if prev_value is None or prev_budget is None
                        else (goal.expected - prev_value) / (b - prev_budget) * 1000.0)  # fmt: skip
            conversions = totals.kpis.get("conversions")
            limited_by = None
            if totals.spend < cfg.budget.explain_below_share * b:
                if limit is None or not np.array_equal(limit[0], sol.chosen):
                    left = explain_budget(prep, cfg, sol, b)
                    words = "; ".join(left.binding) if left is not None and left.binding else None
                    limit = (sol.chosen, words or (left.reason.split(": ", 1)[-1] if left is not None else ""))
                limited_by = limit[1]
            rows.append({
                "scenario": name, "budget": b, "status": sol.status, "reason": None,
                "goal": brief.goal, "expected": goal.expected, "p10": goal.p10, "p50": goal.p50,
                "p90": goal.p90, "marginal_per_1000": marginal, "spend": totals.spend,
                "creators": totals.creators, "certified_gap": sol.gap, "spend_share": totals.spend_share,
                "limited_by": limited_by,
                "unique_reach": totals.unique_reach.expected,
                "conversions": conversions.expected if conversions is not None else None,
                **_mix(roster),
            })  # fmt: skip
            prev, prev_value, prev_budget = sol.chosen, goal.expected, b
    return WhatIf(brief=brief, table=pl.DataFrame(rows, infer_schema_length=None))


def saturation(rows: pl.DataFrame) -> tuple[float, str, float] | None:
    """The first budget of one scenario's frontier where the plan stops spending it (budget, what stops it, the
    goal's expected value there), or None when every budget is spent."""
    if "limited_by" not in rows.columns:
        return None
    hit = rows.filter(pl.col("limited_by").is_not_null())
    if hit.height == 0:
        return None
    r = hit.row(0, named=True)
    return float(r["budget"]), str(r["limited_by"]), float(r["expected"])


def _short(text: str, n: int = 70) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def write_whatif(result: WhatIf, out: Path) -> dict[str, Path]:
    """frontier.csv / .parquet, frontier.png (matplotlib) and frontier.html (plotly, self-contained)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    paths = {k: out / f"frontier.{k}" for k in ("csv", "parquet", "png", "html")}
    t = result.table
    write_csv(t, paths["csv"])
    write_parquet(t, paths["parquet"])
    ok = t.filter(pl.col("status") != "infeasible") if "status" in t.columns else t
    goal = GOALS[result.brief.goal].label
    names = list(dict.fromkeys(t["scenario"].to_list()))

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    for name in names:
        s = ok.filter(pl.col("scenario") == name)
        if s.height == 0:
            continue
        line = ax.plot(s["budget"], s["expected"], marker="o", ms=3, label=name)[0]
        ax.fill_between(s["budget"], s["p10"], s["p90"], alpha=0.2, color=line.get_color())
        stop = saturation(s)
        if stop is not None:
            ax.axvline(stop[0], color=line.get_color(), ls="--", lw=1)
            ax.annotate(
                f"{name}: stops rising at ${stop[0]:,.0f}\n({_short(stop[1])})",
                (stop[0], stop[2]),
                textcoords="offset points",
                xytext=(6, -28),
                fontsize=7,
                color=line.get_color(),
            )
    ax.set_xlabel("budget ($)")
    ax.set_ylabel(f"{goal} (line: expected; band: P10-P90)")
    ax.set_title(f"{result.brief.brief_id}: {goal} against budget")
    ax.grid(alpha=0.3)
    if ok.height:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no budget meets the brief (see frontier.csv)", ha="center", transform=ax.transAxes)
    base = ok.filter(pl.col("scenario") == names[0])
    mixes = all(f"spend_share_{v}" in base.columns for v in (*TIERS, *PLATFORMS)) and base.height > 0
    bottom = np.zeros(base.height)
    width = float(np.max(base["budget"].to_numpy(), initial=1.0)) / 40
    for tier in TIERS if mixes else ():
        share = base[f"spend_share_{tier}"].to_numpy()
        bx.bar(base["budget"], share, bottom=bottom, width=width, label=tier)
        bottom += share
    bx.set_xlabel("budget ($)")
    bx.set_ylabel("share of spend")
    bx.set_title(f"tier mix ({names[0]})")
    if mixes:
        bx.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(paths["png"]) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)

    pf = make_subplots(rows=1, cols=3, column_widths=[0.5, 0.25, 0.25],
                       subplot_titles=(f"{goal} against budget (P10-P90 band)", f"tier mix ({names[0]})",
                                       f"platform mix ({names[0]})"))  # fmt: skip
    for name in names:
        s = ok.filter(pl.col("scenario") == name)
        if s.height == 0:
            continue
        x = s["budget"].to_list()
        pf.add_trace(go.Scatter(x=x + x[::-1], y=s["p90"].to_list() + s["p10"].to_list()[::-1], fill="toself",
                                opacity=0.2, line={"width": 0}, name=f"{name} P10-P90", hoverinfo="skip"),
                     row=1, col=1)  # fmt: skip
        pf.add_trace(go.Scatter(x=x, y=s["expected"].to_list(), mode="lines+markers", name=name,
                                customdata=np.column_stack([s["creators"].to_numpy(), s["marginal_per_1000"]
                                                            .fill_null(np.nan).to_numpy()]),
                                hovertemplate="budget $%{x:,.0f}<br>expected %{y:,.0f}<br>creators %{customdata[0]}"
                                "<br>marginal per $1,000: %{customdata[1]:,.1f}<extra></extra>"),
                     row=1, col=1)  # fmt: skip
        stop = saturation(s)
        if stop is not None:
            pf.add_vline(x=stop[0], line_dash="dash", line_width=1, row=1, col=1)
            pf.add_annotation(x=stop[0], y=stop[2], text=f"{name}: stops rising at ${stop[0]:,.0f}<br>"
                              f"({_short(stop[1])})", showarrow=True, font={"size": 10}, row=1, col=1)  # fmt: skip
    for where, vocab in ((2, TIERS), (3, PLATFORMS)) if mixes else ():
        for v in vocab:
            bar = go.Bar(x=base["budget"].to_list(), y=base[f"spend_share_{v}"].to_list(), name=v,
                         hovertemplate=f"{v}: %{{y:.0%}} of spend<extra></extra>")  # fmt: skip
            pf.add_trace(bar, row=1, col=where)
    pf.update_layout(barmode="stack", title=f"What-if: {result.brief.brief_id}", height=520)
    with atomic_path(paths["html"]) as tmp:
        pf.write_html(tmp, include_plotlyjs=True, full_html=True)
    return paths
