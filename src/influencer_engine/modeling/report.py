"""Backtest reports: JSON for machines, Markdown for people, PNG charts (calibration, feature importance)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from influencer_engine.io import atomic_path, write_json
from influencer_engine.modeling.backtest import CONTEXT_GROUPS, METHODS, BacktestResult

__all__ = ["calibration_chart", "importance_chart", "markdown_report", "write_report"]

_LABEL = {"model": "model", "media_kit": "media-kit multiplier", "trailing_median": "trailing median",
          "tier_platform": "tier x platform mean"}  # fmt: skip


def markdown_report(sections: Mapping[str, BacktestResult], *, title: str, notes: list[str] | None = None) -> str:
    """One table per section (world): every KPI, the model beside each baseline."""
    lines = [f"# {title}", ""]
    for note in notes or []:
        lines.append(f"- {note}")
    if notes:
        lines.append("")
    for name, r in sections.items():
        lines += [f"## {name}", "", f"Rows: {r.rows['train']:,} train, {r.rows['test']:,} test (later campaigns).", ""]
        truth = any("mae_log1p_true" in m for d in r.metrics.values() for m in d.values())
        head = "| KPI | method | Poisson deviance | MAE log1p | " + ("MAE log1p vs truth | Spearman vs truth |"
                                                                   if truth else "Spearman |")  # fmt: skip
        head += " P10-P90 coverage | width (log1p) | forecast / observed sum |"
        head += " forecast / true sum |" if truth else ""
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for kpi, d in r.metrics.items():
            for m in METHODS:
                row = d[m]
                cells = [kpi, _LABEL[m], f"{row['poisson_deviance']:,.2f}", f"{row['mae_log1p']:.3f}"]
                if truth:
                    cells.append(f"{row['mae_log1p_true']:.3f}")
                cells.append(f"{row['spearman']:.3f}")
                cells.append(f"{row['coverage_p10_p90']:.1%}" if "coverage_p10_p90" in row else "")
                cells.append(f"{row['width_log1p']:.2f}" if "width_log1p" in row else "")
                cells.append(f"{row['sum_ratio']:.2f}" if "sum_ratio" in row else "")
                if truth:
                    cells.append(f"{row['sum_ratio_true']:.2f}" if "sum_ratio_true" in row else "")
                lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            "Forecast / observed sum: the level a plan's totals stand on, over these test rows (a few large "
            "creators decide it: read one period's level with a margin of 10-20%).",
            "",
        ]
        if r.per_dollar:
            lines.append("Spearman of conversions per dollar (cost paid)" + (" vs truth: " if truth else ": ")
                         + ", ".join(f"{_LABEL[m]} {v:.3f}" for m, v in r.per_dollar.items()))  # fmt: skip
            lines.append("")
        if r.breakdown:
            lines += _breakdown_table([c for c in r.breakdown if c["by"] not in CONTEXT_GROUPS])
            lines += _context_table([c for c in r.breakdown if c["by"] in CONTEXT_GROUPS])
        won = [k for k, v in r.beats.items() if v]
        lines.append(f"Model beats every baseline on every metric for {len(won)} of {len(r.beats)} KPIs"
                     + (f" (not: {', '.join(k for k, v in r.beats.items() if not v)})" if len(won) < len(r.beats)
                        else "") + ".")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def _breakdown_table(rows: list[dict[str, Any]]) -> list[str]:
    """The model's MAE log1p and P10-P90 coverage per history bucket, tier and platform: a row per KPI."""
    if not rows:
        return []
    cols = [(r["by"], r["group"]) for r in rows]
    cols = list(dict.fromkeys(cols))
    names = [f"posts {g.replace('_', '-')}" if by == "history" else g for by, g in cols]
    head = "| KPI | " + " | ".join(names) + " |"
    lines = ["The model by history (posts before the campaign), tier and platform: MAE log1p"
             + (" vs truth" if "mae_log1p_true" in rows[0] else "") + " / P10-P90 coverage (test rows).", "",
             head, "|" + "---|" * (len(cols) + 1)]  # fmt: skip
    for kpi in dict.fromkeys(r["kpi"] for r in rows):
        cell = {(r["by"], r["group"]): r for r in rows if r["kpi"] == kpi}
        out = [kpi]
        for c in cols:
            r = cell.get(c)
            out.append("" if r is None else f"{r.get('mae_log1p_true', r['mae_log1p']):.3f} / "
                       f"{r['coverage_p10_p90']:.0%} ({r['rows']:,})")  # fmt: skip
        lines.append("| " + " | ".join(out) + " |")
    return [*lines, ""]


def _context_table(rows: list[dict[str, Any]]) -> list[str]:
    """The model's level (forecast over observed sums, and over true sums where known) per brand category and per
    month of the later campaigns: a row per group, a column per KPI."""
    if not rows:
        return []
    truth = "sum_ratio_true" in rows[0]
    kpis = list(dict.fromkeys(r["kpi"] for r in rows))
    lines = ["The model's level by the campaign's brand category and month: forecast / observed sum"
             + (" (forecast / true sum)" if truth else "") + ", test rows. The season is learned pooled over "
             "categories: a category whose season differs runs high or low in some months.", "",
             "| group | rows | " + " | ".join(kpis) + " |", "|" + "---|" * (len(kpis) + 2)]  # fmt: skip
    for by in CONTEXT_GROUPS:
        groups = list(dict.fromkeys(r["group"] for r in rows if r["by"] == by))
        for g in groups:
            cell = {r["kpi"]: r for r in rows if r["by"] == by and r["group"] == g}
            label = f"month {g}" if by == "month" else g
            n = max(r["rows"] for r in cell.values())
            out = [label, f"{n:,}"]
            for k in kpis:
                r = cell.get(k)
                out.append("" if r is None else f"{r['sum_ratio']:.2f}"
                           + (f" ({r['sum_ratio_true']:.2f})" if truth else ""))  # fmt: skip
            lines.append("| " + " | ".join(out) + " |")
    return [*lines, ""]


def calibration_chart(result: BacktestResult, path: Path, *, title: str) -> Path:
    """Share of test outcomes below each forecast quantile, per KPI, against the nominal level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    levels = [0.1, 0.5, 0.9]
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect")
    for kpi, c in result.calibration.items():
        ax.plot(levels, [c["below_p10"], c["below_p50"], c["below_p90"]], marker="o", label=kpi)
    ax.set_xlabel("forecast quantile (nominal)")
    ax.set_ylabel("share of outcomes at or below it")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def importance_chart(importance: Mapping[str, Mapping[str, float]], path: Path, *, top: int = 15) -> Path:
    """Gain importance of the top features, one panel per KPI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kpis = list(importance)
    cols = 3
    rows = int(np.ceil(len(kpis) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    for ax, kpi in zip(axes.flat, kpis, strict=False):
        items = sorted(importance[kpi].items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
        total = sum(importance[kpi].values()) or 1.0
        ax.barh([k for k, _ in items], [v / total for _, v in items])
        ax.set_title(f"{kpi}: share of gain")
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(kpis) :]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def write_report(
    out: Path,
    sections: Mapping[str, BacktestResult],
    *,
    title: str,
    extra: Mapping[str, Any] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Path]:
    """evaluation.json, evaluation.md and a calibration chart per section, in ``out``."""
    body: dict[str, Any] = {"title": title, "sections": {k: v.to_dict() for k, v in sections.items()}}
    body.update(extra or {})
    paths = {"json": write_json(body, out / "evaluation.json")}
    md = markdown_report(sections, title=title, notes=notes)
    with atomic_path(out / "evaluation.md") as tmp:
        tmp.write_text(md + "\n", encoding="utf-8")
    paths["markdown"] = out / "evaluation.md"
    for name, r in sections.items():
        slug = name.lower().replace(" ", "_").replace("/", "_")
        paths[f"calibration_{slug}"] = calibration_chart(
            r, out / f"calibration_{slug}.png", title=f"Calibration: {name}"
        )
    return paths
