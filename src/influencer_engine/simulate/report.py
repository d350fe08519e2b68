"""Simulated medians beside the published ranges of calibration.md (``ie simulate --report``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import polars as pl

from influencer_engine.config import Range, SimulatorConfig
from influencer_engine.registry import BASE_FORMAT, TIERS

__all__ = ["CalibrationRow", "base_price", "calibration_report", "format_report", "hire_figures", "tail_rows"]

# the list price each platform's published price ranges refer to: the platform's base format
_BASE_PRICE = {p: f"price_{f}" for p, f in BASE_FORMAT.items()}


def base_price() -> pl.Expr:
    """Each creator's list price in its platform's base format (the format the published price ranges mean)."""
    return pl.coalesce(pl.when(pl.col("platform") == p).then(pl.col(c)) for p, c in _BASE_PRICE.items())


@dataclass(frozen=True)
class CalibrationRow:
    """One simulated figure against its published range."""

    figure: str
    group: str
    simulated: float | None
    low: float
    high: float
    n: int
    unit: str = ""  # "$", "%", "x" (a ratio) or "" (shares as %, other numbers plain)

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
    *,
    expected: pl.DataFrame | None = None,
) -> list[CalibrationRow]:
    """Compute every calibrated figure from the simulated tables.

    Engagement rate follows the common media-kit definition: (likes + comments) per organic post over
    followers, the creator's median, then the median across creators of the tier. Reach share is organic
    Instagram feed posts (image, carousel) over followers, for creators who share insights.
    With ``expected`` (the true expected KPIs of each outcome row) the tail rows follow: see ``tail_rows``.
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
    if expected is not None:
        rows += tail_rows(cfg, creators, outcomes, expected)
    return rows


def _split(lo: float, hi: float) -> tuple[Range, Range]:
    """The ranges a 10th and a 90th percentile must fall in: [low, mid] and [mid, high], mid the geometric mean."""
    mid = math.sqrt(lo * hi)
    return (lo, mid), (mid, hi)


def _percentile_rows(figure: str, group: str, values: pl.Series, rng: Range, unit: str) -> list[CalibrationRow]:
    v = values.drop_nulls().drop_nans()
    if v.len() == 0:
        lo, hi = _split(*rng)
        return [CalibrationRow(f"{figure} P10", group, None, *lo, 0, unit),
                CalibrationRow(f"{figure} P90", group, None, *hi, 0, unit)]  # fmt: skip
    p10, p90 = (float(v.quantile(q, interpolation="linear")) for q in (0.1, 0.9))  # type: ignore[arg-type]
    lo_rng, hi_rng = _split(*rng)
    return [CalibrationRow(f"{figure} P10", group, p10, *lo_rng, v.len(), unit),
            CalibrationRow(f"{figure} P90", group, p90, *hi_rng, v.len(), unit)]  # fmt: skip


def hire_figures(creators: pl.DataFrame, outcomes: pl.DataFrame, expected: pl.DataFrame) -> pl.DataFrame:
    """One row per simulated hire: what it cost, its true expected KPIs, and its true CPM, CPE, click-through,
    conversion rate and conversions per impression (the per-creator funnel, free of draw noise)."""
    keys = ["campaign_id", "creator_id", "format"]
    true_cols = [c for c in expected.columns if c.startswith("true_")]
    hires = outcomes.select(*keys, "cost").join(expected.select(*keys, *true_cols), on=keys, how="inner")
    hires = hires.join(creators.select("creator_id", "platform", "tier"), on="creator_id", how="left")

    def per(num: str, den: str, scale: float = 1.0) -> pl.Expr:
        return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den) * scale).otherwise(None)

    return hires.with_columns(
        per("cost", "true_impressions", 1000.0).alias("cpm"),
        per("cost", "true_engagements").alias("cpe"),
        per("true_clicks", "true_reach").alias("click_through"),
        per("true_conversions", "true_clicks").alias("conversion_rate"),
        per("true_conversions", "true_impressions").alias("conversions_per_impression"),
    )


def tail_rows(
    cfg: SimulatorConfig, creators: pl.DataFrame, outcomes: pl.DataFrame, expected: pl.DataFrame
) -> list[CalibrationRow]:
    """The tails of every hire's true funnel (10th and 90th percentiles) against the published ranges.

    Per platform: CPM, CPE and click-through of reached viewers; over every hire: conversions per impression and
    the top decile of the conversion rate of clicks over its tier's mean; and the spread of list prices among
    creators of one platform and follower band (P90 / P10 within bands a quarter of a decade wide).
    """
    t = cfg.calibration.tails
    hires = hire_figures(creators, outcomes, expected)
    rows: list[CalibrationRow] = []
    figures = (("cpm", "CPM", t.cpm, "$"), ("cpe", "CPE", t.cpe, "$"),
               ("click_through", "clicks per reached viewer", t.click_through, "%"))  # fmt: skip
    for name, label, ranges, unit in figures:
        for platform, rng in ranges.items():
            part = hires.filter(pl.col("platform") == platform)[name]
            rows += _percentile_rows(f"hires' true {label}", platform, part, rng, unit)
    rows += _percentile_rows("hires' true conversions per impression", "all", hires["conversions_per_impression"],
                             t.conversions_per_impression, "%")  # fmt: skip
    # macro and mega pooled: a few dozen hires per world make a 90th percentile of noise
    by_tier = (
        hires.with_columns(pl.col("tier").replace({"macro": "macro+mega", "mega": "macro+mega"}))
        .group_by("tier")
        .agg(
            (
                pl.col("conversion_rate").quantile(0.9)
                / (pl.col("true_conversions").sum() / pl.col("true_clicks").sum())
            ).alias("v"),
            pl.len().alias("n"),
        )
    )
    for r in by_tier.sort("tier").iter_rows(named=True):
        rows.append(CalibrationRow("conversion rate of clicks, P90 / tier mean", r["tier"], r["v"],
                                   *t.conversion_rate_p90_over_mean, r["n"], "x"))  # fmt: skip
    base = creators.select(
        "platform", base_price().alias("price"),
        (pl.col("followers").cast(pl.Float64).log10() * 4).floor().alias("band"),
    )  # fmt: skip
    spread = (
        base.filter(pl.col("price").is_not_null())
        .group_by("platform", "band")
        .agg((pl.col("price").quantile(0.9) / pl.col("price").quantile(0.1)).alias("v"), pl.len().alias("n"))
        .filter(pl.col("n") >= 50)
        .group_by("platform")
        .agg(pl.col("v").median(), pl.col("n").sum())
    )
    for r in spread.sort("platform").iter_rows(named=True):
        rows.append(CalibrationRow("list price P90 / P10, one follower band", r["platform"], r["v"],
                                   *t.price_p90_over_p10, r["n"], "x"))  # fmt: skip
    return rows


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if abs(v) >= 1e11:
        return "inf"
    if unit == "$":
        return f"${v:,.2f}" if abs(v) < 100 else f"${v:,.0f}"
    if unit == "x":
        return f"{v:.2f}x"
    if unit == "%":
        return f"{v:.3%}" if abs(v) < 0.001 else f"{v:.2%}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.2%}" if abs(v) < 1 else f"{v:.3f}"


def format_report(rows: list[CalibrationRow]) -> str:
    """A plain-text table: figure, group, simulated value, published range, inside or not."""
    width = max([46, *(len(r.figure) for r in rows)])
    group = max([10, *(len(r.group) for r in rows)])
    header = f"{'figure':{width}} {'group':{group}} {'simulated':>10}  {'published range':>22}  {'n':>7}  ok"
    lines = [header, "-" * len(header)]
    for r in rows:
        rng = f"{_fmt(r.low, r.unit)} .. {_fmt(r.high, r.unit)}"
        lines.append(
            f"{r.figure:{width}} {r.group:{group}} {_fmt(r.simulated, r.unit):>10}  {rng:>22}  {r.n:>7}  "
            f"{'yes' if r.inside else 'NO'}"
        )
    inside = sum(r.inside for r in rows)
    lines.append(f"{inside} of {len(rows)} figures inside their published range")
    return "\n".join(lines)
