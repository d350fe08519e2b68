"""The generative model of the market: one place that says what a creator truly delivers.

``expected_kpis`` is the ground truth. The simulator draws observed posts and campaign outcomes around it,
and the oracle (``World``) answers with it, so forecasts and rosters are scored against exactly the process
that made the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from influencer_engine.config import SimulatorConfig, TierConfig
from influencer_engine.registry import BASE_FORMAT, FORMATS, KPI_NAMES, PLATFORMS, TIERS
from influencer_engine.schema import AUDIENCE_COUNTRIES, CATEGORIES
from influencer_engine.simulate import libm

__all__ = [
    "KPIS",
    "CreatorParams",
    "RowContext",
    "audience_fit",
    "community_mix",
    "expected_kpis",
    "format_table",
    "platform_table",
    "segment_mix",
    "segment_sizes",
    "tier_index",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
KPIS = KPI_NAMES


def tier_index(followers: npt.NDArray[np.int64] | F64, tiers: TierConfig) -> I64:
    """Tier number (0 = nano .. 4 = mega) from followers."""
    return np.searchsorted(np.asarray(tiers.bounds(), dtype=np.float64), followers, side="right").astype(np.int64)


def format_table(values: dict[str, float]) -> F64:
    """A per-format constant as an array in FORMATS order (missing formats: 0)."""
    return np.array([values.get(f, 0.0) for f in FORMATS], dtype=np.float64)


def platform_table(values: dict[str, float]) -> F64:
    return np.array([values[p] for p in PLATFORMS], dtype=np.float64)


@dataclass(frozen=True)
class CreatorParams:
    """Per-row creator state (aligned arrays). Rows may repeat a creator (one row per post or hire)."""

    platform: I64  # index into PLATFORMS
    followers: F64  # followers now (the end of the history)
    real_followers: F64  # followers now that are real people
    quality: F64  # latent quality, standard normal
    growth: F64  # yearly log growth of followers
    drift: F64  # yearly log drift of the engagement rate
    age: F64  # (n, 5) audience shares
    gender: F64  # (n, 2)
    country: F64  # (n, 13)
    interest: F64  # (n, 12)

    def take(self, idx: I64 | slice) -> CreatorParams:
        """The rows ``idx`` (an index array or a slice) of every array."""
        return CreatorParams(**{k: getattr(self, k)[idx] for k in self.__dataclass_fields__})


@dataclass(frozen=True)
class RowContext:
    """What is asked of each row: when, which format, sponsored or not, and for which brand."""

    days_from_now: F64  # days between the world's "now" and the post (negative in the past)
    month: I64  # 1..12
    fmt: I64  # index into FORMATS
    sponsored: npt.NDArray[np.bool_]
    category: I64 | None = None  # brand category index (campaigns only)
    target_age: F64 | None = None  # (n, 5) 0/1 masks
    target_gender: F64 | None = None  # (n, 2)
    target_country: F64 | None = None  # (n, 13)
    aov: F64 | None = None  # average order value (USD)


def _season(cfg: SimulatorConfig, category: I64, month: I64) -> F64:
    c = cfg.categories
    table = np.ones((len(CATEGORIES), 12))
    for name, curve in (
        ("fitness", c.season_fitness),
        ("fashion", c.season_retail),
        ("beauty", c.season_retail),
        ("tech", c.season_retail),
        ("home", c.season_retail),
        ("travel", c.season_travel),
    ):
        table[CATEGORIES.index(name)] = curve
    return np.asarray(table[category, month - 1], dtype=np.float64)


def audience_fit(p: CreatorParams, ctx: RowContext) -> F64:
    """Share of the audience inside the brief's target: P(age) x P(gender) x P(country) (independence)."""
    assert ctx.target_age is not None and ctx.target_gender is not None and ctx.target_country is not None
    return np.asarray(
        (p.age * ctx.target_age).sum(1)
        * (p.gender * ctx.target_gender).sum(1)
        * (p.country * ctx.target_country).sum(1),
        dtype=np.float64,
    )


def expected_kpis(cfg: SimulatorConfig, tiers: TierConfig, p: CreatorParams, ctx: RowContext) -> dict[str, F64]:
    """True expected reach, impressions and engagements (and, for sponsored rows with a brand, clicks,
    conversions and revenue) of one post per row."""
    r, e, cv = cfg.reach, cfg.engagement, cfg.conversion
    plat = p.platform
    real = np.maximum(p.real_followers, 1.0)
    years = ctx.days_from_now / 365.25
    # followers at the time of the post, and the (small) within-creator response of views to them
    real_then = real * libm.exp(p.growth * years)
    within = libm.exp(p.growth * years * r.within_creator_elasticity)
    rate = platform_table(r.rate_at_10k)[plat]
    elasticity = platform_table(r.elasticity)[plat]
    impressions = (
        real * rate * libm.power(real / 1e4, elasticity - 1.0)
        * within
        * format_table(r.format_impressions)[ctx.fmt]
        * libm.exp(cfg.quality.sigma * p.quality)
    )  # fmt: skip
    saturation = np.asarray(cfg.categories.sponsored_saturation)[ctx.month - 1]
    impressions = np.where(ctx.sponsored, impressions * r.sponsored_impressions * saturation, impressions)
    reach = impressions * platform_table(r.reach_ratio)[plat]

    # the published per-view rates are each platform's own base format (Instagram images, TikTok and YouTube videos)
    fmt_eng = format_table(e.format_engagement)
    base_eng = fmt_eng[[FORMATS.index(BASE_FORMAT[p]) for p in PLATFORMS]]
    per_imp = (
        platform_table(e.per_impression)[plat]
        * fmt_eng[ctx.fmt]
        / base_eng[plat]
        * libm.exp(e.quality_loading * cfg.quality.sigma * p.quality + p.drift * years)
    )
    inverted_u = libm.exp(-e.inverted_u_curvature * (libm.log10(real_then) - e.inverted_u_peak_log10) ** 2)
    per_imp = np.where(ctx.sponsored, per_imp * e.sponsored_engagement * inverted_u, per_imp)
    out = {"reach": reach, "impressions": impressions, "engagements": impressions * per_imp}
    if ctx.category is None:
        return out

    # Clicks and conversions: reached people click at the format's CTR; people whose main interest is the
    # brand's category click and buy more; people outside the target audience rarely buy.
    affinity = p.interest[np.arange(len(plat)), ctx.category]
    fit = audience_fit(p, ctx)
    off_a, ref_a = cv.off_affinity_factor, cv.affinity_reference
    aff_mult = (affinity + off_a * (1 - affinity)) / (ref_a + off_a * (1 - ref_a))
    off_t, ref_t = cv.off_target_factor, cv.fit_reference
    fit_mult = (fit + off_t * (1 - fit)) / (ref_t + off_t * (1 - ref_t))
    quality = libm.exp(cv.quality_loading * cfg.quality.sigma * p.quality)
    ctr = format_table(cv.ctr)[ctx.fmt] * platform_table(cv.ctr_platform)[plat]
    clicks = reach * ctr * aff_mult * quality
    tier = tier_index(p.followers, tiers)
    rate_by_tier = np.array([cv.rate_by_tier[t] for t in TIERS])
    trust = libm.exp(cv.conversion_quality_loading * cfg.quality.sigma * p.quality)
    conversions = clicks * rate_by_tier[tier] * fit_mult * aff_mult * trust * _season(cfg, ctx.category, ctx.month)
    assert ctx.aov is not None
    out.update(clicks=clicks, conversions=conversions, revenue=conversions * ctx.aov)
    return out


def segment_sizes(cfg: SimulatorConfig) -> F64:
    """People in each audience segment (age x country x niche x community), shape (5, 13, 12, K)."""
    a = cfg.audience
    platform_mix = np.array([cfg.world.platform_shares[p] for p in PLATFORMS])
    age = platform_mix @ np.array([a.age_by_platform[p] for p in PLATFORMS])
    country = np.array([a.countries[c] for c in AUDIENCE_COUNTRIES])
    niche = np.array([cfg.categories.shares[c] for c in CATEGORIES])
    k = a.communities
    sizes = a.people_pool * np.einsum("a,c,i->aci", age, country, niche)[..., None] / k
    return np.repeat(sizes, k, axis=3)


def community_mix(cfg: SimulatorConfig, community: I64) -> F64:
    """Each row's audience over the hidden communities, shape (n, K): its own community's share, the rest spread."""
    k = cfg.audience.communities
    own = cfg.audience.own_community_share
    comm = np.full((len(community), k), (1 - own) / max(k - 1, 1))
    comm[np.arange(len(community)), community] = own if k > 1 else 1.0
    return comm


def segment_mix(cfg: SimulatorConfig, p: CreatorParams, community: I64) -> F64:
    """Each row's audience spread over segments, shape (n, 5, 13, 12, K); rows sum to 1.

    Age, country and niche shares are the published marginals; the hidden community concentrates each
    creator's audience, so creators of one community share more audience than their shares alone show.
    """
    comm = community_mix(cfg, community)
    return np.asarray(np.einsum("na,nc,ni,nk->nacik", p.age, p.country, p.interest, comm), dtype=np.float64)
