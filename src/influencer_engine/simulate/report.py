"""Simulated medians beside the published ranges of calibration.md (``ie simulate --report``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

from influencer_engine.config import SimulatorConfig
from influencer_engine.registry import BASE_FORMAT, TIERS

__all__ = ["CalibrationRow", "calibration_report", "format_report"]

# the list price each platform's published price ranges refer to: the platform's base format
_BASE_PRICE = {p: f"price_{f}" for p, f in BASE_FORMAT.items()}


@dataclass(frozen=True)
class CalibrationRow:
    """One simulated figure against its published range."""

    figure: str
    group: str
    simulated: float | None
    low: float
    high: float
    n: int

    @property
    def inside(self) -> bool:
        return self.simulated is not None and self.low <= self.simulated <= self.high

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "inside": self.inside}


def _median_by(frame: pl.DataFrame, value: pl.Expr, by: str) -> dict[str, tuple[float, int]]:
    out = frame.group_by(by).agg(value.median().alias("v"), pl.len().alias("n"))
    return {row[by]: (row["v"], row["n"]) for row in out.iter_rows(named=True)}


def calibration_report(
    cfg: SimulatorConfig,
    creators: pl.DataFrame,
    posts: pl.DataFrame,
    outcomes: pl.DataFrame,
    truth: pl.DataFrame,
) -> list[CalibrationRow]:
    """Compute every calibrated figure from the simulated tables.

    Engagement rate follows the common media-kit definition: (likes + comments) per organic post over
    followers, the creator's median, then the median across creators of the tier. Reach share is organic
    Instagram feed posts (image, carousel) over followers, for creators who share insights.
    """
    cal = cfg.calibration
    rows: list[CalibrationRow] = []
    c = creators.select("creator_id", "platform", "tier", "followers", *sorted(set(_BASE_PRICE.values())))
    organic = posts.filter(~pl.col("sponsored")).join(c, on="creator_id")
    per_creator = organic.group_by("creator_id", "platform", "tier").agg(
        ((pl.col("likes") + pl.col("comments")) / pl.col("followers")).median().alias("er"),
        (pl.col("reach") / pl.col("followers"))
        .filter(pl.col("format").is_in(["image", "carousel"]))
        .median()
        .alias("reach_share"),
    )
    for platform, ranges in cal.er.items():
        med = _median_by(per_creator.filter(pl.col("platform") == platform), pl.col("er"), "tier")
        for tier in TIERS:
            if tier in ranges:
                v, n = med.get(tier, (None, 0))
                rows.append(CalibrationRow(f"engagement rate, {platform}", tier, v, *ranges[tier], n))
    ig = per_creator.filter((pl.col("platform") == "instagram") & pl.col("reach_share").is_not_null())
    med = _median_by(ig, pl.col("reach_share"), "tier")
    for tier in TIERS:
        v, n = med.get(tier, (None, 0))
        rows.append(CalibrationRow("reach / followers, instagram feed", tier, v, *cal.reach_share[tier], n))
    for platform, ranges in cal.price.items():
        med = _median_by(c.filter(pl.col("platform") == platform), pl.col(_BASE_PRICE[platform]), "tier")
        for tier in TIERS:
            if tier in ranges:
                v, n = med.get(tier, (None, 0))
                rows.append(CalibrationRow(f"price per post (USD), {platform}", tier, v, *ranges[tier], n))
    fake = truth.select("creator_id", "fake_share").join(c.select("creator_id", "tier"), on="creator_id")
    low = fake.group_by("tier").agg((pl.col("fake_share") < 0.1).mean().alias("v"), pl.len().alias("n"))
    low_map = {r["tier"]: (r["v"], r["n"]) for r in low.iter_rows(named=True)}
    for tier, (lo, hi) in cal.low_fake_share.items():
        v, n = low_map.get(tier, (None, 0))
        rows.append(CalibrationRow("share of creators with < 10% fake followers", tier, v, lo, hi, n))
    rows.append(
        CalibrationRow(
            "fake share of all followers",
            "all",
            float(truth.select(pl.col("fake_share").mean()).item()),
            *cal.fake_share_overall,
            truth.height,
        )
    )
    # the mean over accounts, as the source counts it (a follower-weighted share is a handful of mega accounts)

    hires = outcomes.join(c.select("creator_id", "platform", "tier", "followers"), on="creator_id")
    cpm = hires.filter(pl.col("impressions") > 0).with_columns(
        (pl.col("cost") / pl.col("impressions") * 1000).alias("cpm")
    )
    med = _median_by(cpm, pl.col("cpm"), "platform")
    for platform, (lo, hi) in cal.cpm.items():
        v, n = med.get(platform, (None, 0))
        rows.append(CalibrationRow("CPM of campaign posts (USD)", platform, v, lo, hi, n))
    conv = hires.group_by("tier").agg(
        (pl.col("conversions").sum() / pl.col("clicks").sum()).alias("v"), pl.len().alias("n")
    )
    conv_map = {r["tier"]: (r["v"], r["n"]) for r in conv.iter_rows(named=True)}
    for tier, (lo, hi) in cal.conversion_rate.items():
        v, n = conv_map.get(tier, (None, 0))
        rows.append(CalibrationRow("conversion rate of clicks", tier, v, lo, hi, n))
    rpf = hires.group_by("tier").agg(
        (pl.col("revenue").sum() / pl.col("followers").sum()).alias("v"), pl.len().alias("n")
    )
    rpf_map = {r["tier"]: (r["v"], r["n"]) for r in rpf.iter_rows(named=True)}
    if "nano" in rpf_map and "macro" in rpf_map and rpf_map["macro"][0]:
        ratio = rpf_map["nano"][0] / rpf_map["macro"][0]
        n = rpf_map["nano"][1] + rpf_map["macro"][1]
    else:
        ratio, n = None, 0
    rows.append(
        CalibrationRow(
            "revenue per follower, nano / macro", "ratio", ratio, *cal.revenue_per_follower_nano_over_macro, n
        )
    )
    return rows


def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    if abs(v) >= 1e11:
        return "inf"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.2%}" if abs(v) < 1 else f"{v:.3f}"


def format_report(rows: list[CalibrationRow]) -> str:
    """A plain-text table: figure, group, simulated value, published range, inside or not."""
    header = f"{'figure':46} {'group':10} {'simulated':>10}  {'published range':>22}  {'n':>7}  ok"
    lines = [header, "-" * len(header)]
    for r in rows:
        rng = f"{_fmt(r.low)} .. {_fmt(r.high)}"
        lines.append(
            f"{r.figure:46} {r.group:10} {_fmt(r.simulated):>10}  {rng:>22}  {r.n:>7}  {'yes' if r.inside else 'NO'}"
        )
    inside = sum(r.inside for r in rows)
    lines.append(f"{inside} of {len(rows)} figures inside their published range")
    return "\n".join(lines)
