"""Draw a whole market from the configured model: creators, post histories, brands, campaigns, outcomes.

Deterministic for a seed: every component draws from its own child of one ``SeedSequence``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.special import ndtr, ndtri

from influencer_engine.config import SimulatorConfig, TierConfig
from influencer_engine.registry import BASE_FORMAT, FORMATS, GOAL_NAMES, PLATFORMS, TIERS
from influencer_engine.schema import AGE_BANDS, AUDIENCE_COUNTRIES, CATEGORIES, GENDERS, audience_columns, derive_tier
from influencer_engine.simulate import libm
from influencer_engine.simulate.model import KPIS, CreatorParams, RowContext, expected_kpis

__all__ = ["SimulatedMarket", "creator_params", "draw_outcomes", "simulate_market"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_LANGUAGE = {"US": "en", "GB": "en", "CA": "en", "AU": "en", "DE": "de", "FR": "fr", "ES": "es", "IT": "it",
             "BR": "pt", "MX": "es", "IN": "en", "ID": "id"}  # fmt: skip
_STREAMS = ("creators", "audience", "prices", "posts", "brands", "campaigns", "outcomes")


@dataclass(frozen=True)
class SimulatedMarket:
    """The public tables (they pass the contracts) and the hidden ground truth."""

    creators: pl.DataFrame
    posts: pl.DataFrame
    campaigns: pl.DataFrame
    outcomes: pl.DataFrame
    truth: pl.DataFrame  # per creator: latent parameters the engine never sees
    brands: pl.DataFrame  # brands with their order value and target (hidden: campaigns show the target)
    expected_outcomes: pl.DataFrame  # per outcome row: the true expected KPIs the draws were made around

    def tables(self) -> dict[str, pl.DataFrame]:
        return {
            "creators": self.creators,
            "posts": self.posts,
            "campaigns": self.campaigns,
            "outcomes": self.outcomes,
        }


def _dirichlet_rows(rng: np.random.Generator, alpha: F64) -> F64:
    """One Dirichlet draw per row of ``alpha`` (vectorized through Gamma draws)."""
    g = rng.gamma(alpha)
    return np.asarray(g / g.sum(axis=1, keepdims=True), dtype=np.float64)


def _truncated_pareto(rng: np.random.Generator, lo: F64, hi: F64, alpha: float) -> F64:
    u = rng.random(len(lo))
    la, ha = libm.power(lo, -alpha), libm.power(hi, -alpha)
    return np.asarray(libm.power(la - u * (la - ha), -1.0 / alpha), dtype=np.float64)


def _truncated_normal(rng: np.random.Generator, clip: float, n: int) -> F64:
    """Standard normal draws truncated to [-clip, clip] (by the inverse CDF: no point masses at the bounds)."""
    lo, hi = ndtr(-clip), ndtr(clip)
    return np.asarray(ndtri(lo + rng.random(n) * (hi - lo)), dtype=np.float64)


def _ids(prefix: str, n: int, width: int) -> pl.Series:
    return pl.select(
        pl.format(f"{prefix}{{}}", pl.int_range(n, eager=False).cast(pl.String).str.zfill(width))
    ).to_series()


def _creators(
    cfg: SimulatorConfig, tiers: TierConfig, n: int, rngs: dict[str, np.random.Generator]
) -> tuple[pl.DataFrame, pl.DataFrame, CreatorParams]:
    rng = rngs["creators"]
    pop = cfg.population
    platform = rng.choice(len(PLATFORMS), size=n, p=[cfg.world.platform_shares[p] for p in PLATFORMS])
    tier = rng.choice(len(TIERS), size=n, p=[pop.tier_shares[t] for t in TIERS])
    edges = np.array([pop.min_followers, *tiers.bounds(), pop.max_followers], dtype=np.float64)
    followers = np.floor(_truncated_pareto(rng, edges[tier], edges[tier + 1], pop.pareto_alpha)).astype(np.int64)
    following = np.floor(pop.following_median * libm.exp(rng.normal(0, 0.8, n))).astype(np.int64)
    fake = rng.beta(
        np.array([cfg.fake_followers.beta_a[t] for t in TIERS])[tier],
        np.array([cfg.fake_followers.beta_b[t] for t in TIERS])[tier],
    )
    quality = rng.normal(0.0, 1.0, n)
    growth = rng.normal(cfg.reach.follower_growth_mean, cfg.reach.follower_growth_sd, n)
    drift = rng.normal(0.0, cfg.reach.engagement_drift_sd, n)
    community = rng.integers(0, cfg.audience.communities, n)
    niche_p = np.array([cfg.categories.shares[c] for c in CATEGORIES])
    primary = rng.choice(len(CATEGORIES), size=n, p=niche_p)
    secondary = (primary + 1 + rng.integers(0, len(CATEGORIES) - 1, n)) % len(CATEGORIES)
    country_p = np.array([cfg.audience.countries[c] for c in AUDIENCE_COUNTRIES])
    home = rng.choice(len(AUDIENCE_COUNTRIES), size=n, p=country_p)
    insights_shared = rng.random(n) < 0.7
    sponsored_rate = rng.beta(1.5, 1.5 * (1 - cfg.posting.sponsored_share_mean) / cfg.posting.sponsored_share_mean, n)

    # Audiences: Dirichlet mixtures around the creator's home country, niche and platform age profile.
    arng = rngs["audience"]
    a = cfg.audience
    rows = np.arange(n)
    country_alpha = np.tile(country_p * len(AUDIENCE_COUNTRIES) * 0.3, (n, 1))
    country_alpha[rows, home] += a.home_country_concentration
    country = _dirichlet_rows(arng, country_alpha)
    age_profile = np.array([a.age_by_platform[p] for p in PLATFORMS])[platform]
    age = _dirichlet_rows(arng, age_profile * a.age_concentration)
    female_mean = np.array([cfg.categories.female_share[c] for c in CATEGORIES])[primary]
    female = arng.beta(female_mean * 20, (1 - female_mean) * 20)
    gender = np.column_stack([female, 1 - female])
    interest_alpha = np.full((n, len(CATEGORIES)), 0.3)
    interest_alpha[rows, primary] += a.niche_concentration
    interest_alpha[rows, secondary] += a.secondary_concentration
    interest = _dirichlet_rows(arng, interest_alpha)

    real = followers * (1 - fake)
    params = CreatorParams(
        platform=platform.astype(np.int64),
        followers=followers.astype(np.float64),
        real_followers=real,
        quality=quality,
        growth=growth,
        drift=drift,
        age=age,
        gender=gender,
        country=country,
        interest=interest,
    )

    # Prices: log-log in followers between the published anchors, discounted for fake followers the buyers see,
    # part quality (buyers see average views), part pure mispricing.
    prng = rngs["prices"]
    pr = cfg.price
    log_f = libm.log(np.maximum(followers, 1))
    anchors_x = libm.log(np.asarray(pr.anchor_followers))
    base = np.empty(n)
    for i, plat in enumerate(PLATFORMS):
        m = platform == i
        ys = libm.log(np.asarray(pr.anchor_usd[plat]))
        x = log_f[m]
        y = np.interp(x, anchors_x, ys)
        lo_slope = (ys[1] - ys[0]) / (anchors_x[1] - anchors_x[0])
        hi_slope = (ys[-1] - ys[-2]) / (anchors_x[-1] - anchors_x[-2])
        y = np.where(x < anchors_x[0], ys[0] + lo_slope * (x - anchors_x[0]), y)
        y = np.where(x > anchors_x[-1], ys[-1] + hi_slope * (x - anchors_x[-1]), y)
        base[m] = y
    base = libm.exp(
        base
        + pr.fake_discount * libm.log1p(-fake)
        + cfg.quality.price_loading * cfg.quality.sigma * quality
        + cfg.quality.mispricing_sigma * _truncated_normal(prng, cfg.quality.mispricing_clip, n)
    )
    prices: dict[str, F64] = {}
    for f in FORMATS:
        mult = np.array([pr.format_multiplier[p].get(f, np.nan) for p in PLATFORMS])[platform]
        listed = np.array([BASE_FORMAT[p] == f for p in PLATFORMS])[platform] | (prng.random(n) < pr.format_price_known)
        prices[f] = np.where(listed, np.round(base * mult, 2), np.nan)

    credibility = np.clip(1 - fake + arng.normal(0, cfg.fake_followers.credibility_noise, n), 0, 1)
    credibility = np.where(
        arng.random(n) < cfg.fake_followers.credibility_known_share, np.round(credibility, 4), np.nan
    )

    creator_id = _ids("c", n, 7)
    country_code = np.array(AUDIENCE_COUNTRIES)[home]
    cats = np.array(CATEGORIES)
    creators = (
        pl.DataFrame(
            {
                "creator_id": creator_id,
                "platform": np.array(PLATFORMS)[platform],
                "handle": pl.select(pl.format("{}_{}", pl.lit(cats[primary]), creator_id.str.slice(1))).to_series(),
                "followers": followers,
                "following": following,
                "country": pl.Series([None if c == "OTHER" else str(c) for c in country_code], dtype=pl.String),
                "language": pl.Series([_LANGUAGE.get(str(c)) for c in country_code], dtype=pl.String),
                "categories": np.char.add(np.char.add(cats[primary], "|"), cats[secondary]),
                **{f"price_{f}": prices[f] for f in FORMATS},
                "audience_credibility": credibility,
            },
            strict=False,
        )
        .with_columns(pl.col(f"price_{f}").fill_nan(None) for f in FORMATS)
        .with_columns(pl.col("audience_credibility").fill_nan(None))
    )
    shares = audience_columns()
    share_frame = pl.DataFrame(
        {
            **{c: np.round(age[:, i], 6) for i, c in enumerate(shares["audience_age"])},
            **{c: np.round(gender[:, i], 6) for i, c in enumerate(shares["audience_gender"])},
            **{c: np.round(country[:, i], 6) for i, c in enumerate(shares["audience_country"])},
            **{c: np.round(interest[:, i], 6) for i, c in enumerate(shares["audience_interest"])},
        }
    )
    creators = pl.concat([creators, share_frame], how="horizontal")
    creators = derive_tier(creators.lazy(), tiers).collect()
    truth = pl.DataFrame(
        {
            "creator_id": creator_id,
            "fake_share": fake,
            "real_followers": real,
            "quality": quality,
            "growth": growth,
            "drift": drift,
            "community": community,
            "primary_niche": cats[primary],
            "insights_shared": insights_shared,
            "sponsored_rate": sponsored_rate,
        }
    )
    return creators, truth, params


def creator_params(creators: pl.DataFrame, truth: pl.DataFrame) -> CreatorParams:
    """Rebuild the model's per-creator arrays from the public and hidden tables (rows aligned by creator_id)."""
    joined = creators.join(truth, on="creator_id", how="left", maintain_order="left")
    shares = audience_columns()

    def mat(group: str) -> F64:
        return joined.select(shares[group]).to_numpy().astype(np.float64)

    return CreatorParams(
        platform=joined.select(pl.col("platform").replace_strict(list(PLATFORMS), list(range(3))))
        .to_series()
        .to_numpy(),
        followers=joined["followers"].to_numpy().astype(np.float64),
        real_followers=joined["real_followers"].to_numpy(),
        quality=joined["quality"].to_numpy(),
        growth=joined["growth"].to_numpy(),
        drift=joined["drift"].to_numpy(),
        age=mat("audience_age"),
        gender=mat("audience_gender"),
        country=mat("audience_country"),
        interest=mat("audience_interest"),
    )


def _draw_formats(cfg: SimulatorConfig, platform: I64, u: F64) -> I64:
    """A format index per row, drawn from its platform's format mix with the uniforms ``u``."""
    fmt = np.empty(len(platform), dtype=np.int64)
    for i, name in enumerate(PLATFORMS):
        sel = platform == i
        mix = cfg.posting.formats[name]
        formats = list(mix)
        cum = np.cumsum([mix[f] for f in formats])
        idx = np.minimum(np.searchsorted(cum, u[sel]), len(formats) - 1)
        fmt[sel] = np.array([FORMATS.index(f) for f in formats])[idx]
    return fmt


def _gamma_poisson(rng: np.random.Generator, mean: F64, k: float) -> npt.NDArray[np.int64]:
    """Over-dispersed counts with the given mean (negative binomial as a Gamma-Poisson mixture)."""
    lam = rng.gamma(k, np.maximum(mean, 0.0) / k)
    return rng.poisson(lam).astype(np.int64)


def draw_outcomes(
    cfg: SimulatorConfig, exp: dict[str, F64], aov: F64, rng: np.random.Generator
) -> dict[str, npt.NDArray[Any]]:
    """Observed outcomes of sponsored posts: over-dispersed draws whose expectations are exactly ``exp`` (the truth).

    The campaigns' outcomes are drawn here, and so are the delivered totals the planner evaluation checks roster
    bands against.
    """
    m = len(exp["reach"])
    impressions_mean, reach_mean = exp["impressions"], exp["reach"]
    reach = _gamma_poisson(rng, reach_mean, cfg.reach.dispersion_k)
    extra = _gamma_poisson(
        rng, np.maximum(impressions_mean - reach_mean, 0) * reach / np.maximum(reach_mean, 1e-9), 4.0
    )
    impressions = reach + extra
    er = exp["engagements"] / np.maximum(impressions_mean, 1e-9)
    engagements = _gamma_poisson(rng, impressions * er, cfg.engagement.dispersion_k)
    ctr = exp["clicks"] / np.maximum(reach_mean, 1e-9)
    clicks = _gamma_poisson(rng, reach * ctr, cfg.conversion.dispersion_k)
    cr = exp["conversions"] / np.maximum(exp["clicks"], 1e-9)
    conversions = _gamma_poisson(rng, clicks * cr, cfg.conversion.dispersion_k)
    # the mean order value of n orders: log-normal around the AOV with sd sigma / sqrt(n), mean-preserving (its log
    # mean is -sd^2 / 2 of that sd), so revenue's expectation is exactly conversions x AOV, the truth
    sd = cfg.conversion.revenue_sigma / np.sqrt(np.maximum(conversions, 1))
    order_value = aov * libm.exp(rng.normal(-(sd**2) / 2, sd, m))
    revenue = np.round(conversions * order_value, 2)
    return {"reach": reach, "impressions": impressions, "engagements": engagements, "clicks": clicks,
            "conversions": conversions, "revenue": revenue}  # fmt: skip


def _posts(
    cfg: SimulatorConfig,
    tiers: TierConfig,
    params: CreatorParams,
    truth: pl.DataFrame,
    creator_id: pl.Series,
    rng: np.random.Generator,
) -> pl.DataFrame:
    n = len(params.platform)
    w = cfg.world
    start = datetime(w.history_start.year, w.history_start.month, w.history_start.day, tzinfo=UTC)
    now = datetime(w.history_end.year, w.history_end.month, w.history_end.day, tzinfo=UTC) + timedelta(days=1)
    span = (now - start).total_seconds()

    counts = np.maximum(1, np.round(cfg.posting.posts_median * libm.exp(rng.normal(0, cfg.posting.posts_sigma, n))))
    counts = counts.astype(np.int64)
    owner = np.repeat(np.arange(n), counts)
    m = len(owner)
    offset = rng.random(m) * span
    order = np.lexsort((offset, owner))
    owner, offset = owner[order], offset[order]

    plat = params.platform[owner]
    fmt = _draw_formats(cfg, plat, rng.random(m))
    sponsored = rng.random(m) < truth["sponsored_rate"].to_numpy()[owner]

    posted = np.datetime64(start.replace(tzinfo=None), "us") + (offset * 1e6).astype("timedelta64[us]")
    days_from_now = (offset - span) / 86400.0
    month = (posted.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.int64)
    ctx = RowContext(days_from_now=days_from_now, month=month, fmt=fmt, sponsored=sponsored)
    exp = expected_kpis(cfg, tiers, params.take(owner), ctx)

    impressions = _gamma_poisson(rng, exp["impressions"], cfg.reach.dispersion_k)
    ratio = np.clip(exp["reach"] / np.maximum(exp["impressions"], 1e-9), 0, 1)
    reach = rng.binomial(impressions, ratio)
    engagements = rng.poisson(
        impressions * (exp["engagements"] / np.maximum(exp["impressions"], 1e-9))
        * rng.gamma(cfg.engagement.dispersion_k, 1 / cfg.engagement.dispersion_k, m)
    )  # fmt: skip
    parts = []
    left = engagements
    remaining_p = np.ones(m)
    e = cfg.engagement
    for split in (e.split_likes, e.split_comments, e.split_shares):
        share = np.array([split[q] for q in PLATFORMS])[plat]
        part = rng.binomial(left, np.clip(share / np.maximum(remaining_p, 1e-9), 0, 1))
        parts.append(part)
        left = left - part
        remaining_p = remaining_p - share
    likes, comments, shares = parts
    saves = left
    # Creators who do not share insights show only public counts (likes, comments; views for video).
    shared = truth["insights_shared"].to_numpy()[owner]
    is_video = np.isin(fmt, [FORMATS.index("video"), FORMATS.index("short"), FORMATS.index("story")])
    no_saves = plat == PLATFORMS.index("youtube")
    post_id = _ids("p", m, 9)
    return pl.DataFrame(
        {
            "post_id": post_id,
            "creator_id": creator_id.gather(owner),
            "posted_at": pl.Series(posted).dt.replace_time_zone("UTC"),
            "format": np.array(FORMATS)[fmt],
            "sponsored": sponsored,
            "impressions": np.where(shared, impressions, -1),
            "views": np.where(is_video, impressions, -1),
            "reach": np.where(shared, reach, -1),
            "likes": likes,
            "comments": comments,
            "shares": np.where(shared, shares, -1),
            "saves": np.where(shared & ~no_saves, saves, -1),
        }
    ).with_columns(
        pl.when(pl.col(c) >= 0).then(pl.col(c)).alias(c) for c in ("impressions", "views", "reach", "shares", "saves")
    )


def _brands(cfg: SimulatorConfig, n_creators: int, rng: np.random.Generator) -> pl.DataFrame:
    nb = max(10, round(n_creators / 1000 * cfg.campaigns.brands_per_1k_creators))
    cat = rng.choice(len(CATEGORIES), size=nb, p=[cfg.categories.shares[c] for c in CATEGORIES])
    aov = np.array([cfg.categories.aov_usd[c] for c in CATEGORIES])[cat] * libm.exp(rng.normal(0, 0.3, nb))
    first_age = rng.integers(0, len(AGE_BANDS) - 1, nb)
    width = rng.integers(1, 4, nb)
    ages = ["|".join(AGE_BANDS[a : a + w]) for a, w in zip(first_age, width, strict=True)]
    female = np.array([cfg.categories.female_share[c] for c in CATEGORIES])[cat]
    g = rng.random(nb)
    genders = np.where(g < female - 0.25, "female", np.where(g > female + 0.25, "male", "female|male"))
    named = [c for c in AUDIENCE_COUNTRIES if c != "OTHER"]
    cp = np.array([cfg.audience.countries[c] for c in named])
    countries = [
        "|".join(sorted(rng.choice(named, size=k, replace=False, p=cp / cp.sum()))) for k in rng.integers(1, 4, nb)
    ]
    return pl.DataFrame(
        {
            "brand_id": _ids("b", nb, 5),
            "brand_category": np.array(CATEGORIES)[cat],
            "aov": np.round(aov, 2),
            "target_age": ages,
            "target_gender": genders,
            "target_countries": countries,
            "goal": rng.choice(np.array(GOAL_NAMES), nb),
        }
    )


def _masks(values: pl.Series, vocab: tuple[str, ...]) -> F64:
    out = np.zeros((len(values), len(vocab)))
    for j, v in enumerate(vocab):
        out[:, j] = values.str.split("|").list.contains(v).to_numpy()
    return out


def _campaigns(
    cfg: SimulatorConfig,
    tiers: TierConfig,
    params: CreatorParams,
    creators: pl.DataFrame,
    truth: pl.DataFrame,
    brands: pl.DataFrame,
    rngs: dict[str, np.random.Generator],
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = rngs["campaigns"]
    c = cfg.campaigns
    n = creators.height
    n_out = max(1, round(n * c.outcomes_per_creator))
    n_camp = max(1, round(n_out / c.creators_per_campaign))
    w = cfg.world
    first = np.datetime64(w.history_start) + np.timedelta64(w.campaign_warmup_days, "D")
    last = np.datetime64(w.history_end) - np.timedelta64(30, "D")
    start = first + rng.integers(0, int((last - first) / np.timedelta64(1, "D")), n_camp).astype("timedelta64[D]")
    brand = rng.integers(0, brands.height, n_camp)
    size = 1 + rng.poisson(c.creators_per_campaign - 1, n_camp)

    # Hires: most from the brand's own niche, bigger creators more often (selection bias, as in real markets).
    slot_campaign = np.repeat(np.arange(n_camp), size)
    brand_cat = brands["brand_category"].replace_strict(list(CATEGORIES), list(range(len(CATEGORIES)))).to_numpy()
    slot_cat = brand_cat[brand[slot_campaign]]
    weight = libm.power(params.followers, c.follower_weight_exponent)
    primary = truth["primary_niche"].replace_strict(list(CATEGORIES), list(range(len(CATEGORIES)))).to_numpy()
    # Each slot shortlists a few creators (same rules) and hires one with odds growing with its audience fit:
    # brands look at audience demographics before they hire (assumption: odds ~ (fit + 0.01)^exponent).
    k_short = max(1, c.shortlist)
    shortlist = np.empty((len(slot_campaign), k_short), dtype=np.int64)
    in_niche = rng.random(len(slot_campaign)) < c.in_niche_share
    all_cum = np.cumsum(weight)
    u = rng.random((len(slot_campaign), k_short))
    for k in range(len(CATEGORIES)):
        pool = np.flatnonzero(primary == k)
        sel = in_niche & (slot_cat == k)
        if len(pool) and sel.any():
            cum = np.cumsum(weight[pool])
            shortlist[sel] = pool[np.minimum(np.searchsorted(cum, u[sel] * cum[-1]), len(pool) - 1)]
        elif sel.any():
            in_niche[sel] = False
    out_sel = ~in_niche
    shortlist[out_sel] = np.minimum(np.searchsorted(all_cum, u[out_sel] * all_cum[-1]), n - 1)
    slot_brand = brand[slot_campaign]
    # each brand's target as 0/1 masks, shared by the hiring odds and the outcomes' context below
    age_mask = _masks(brands["target_age"], AGE_BANDS)
    gender_mask = _masks(brands["target_gender"], GENDERS)
    country_mask = _masks(brands["target_countries"], AUDIENCE_COUNTRIES)
    t_age, t_gender, t_country = age_mask[slot_brand], gender_mask[slot_brand], country_mask[slot_brand]
    fit = (
        np.einsum("skj,sj->sk", params.age[shortlist], t_age)
        * np.einsum("skj,sj->sk", params.gender[shortlist], t_gender)
        * np.einsum("skj,sj->sk", params.country[shortlist], t_country)
    )
    odds = libm.power(fit + 0.01, c.fit_weight_exponent)
    cum_odds = np.cumsum(odds, axis=1)
    pick = (cum_odds < rng.random(len(slot_campaign))[:, None] * cum_odds[:, -1:]).sum(axis=1)
    chosen = shortlist[np.arange(len(slot_campaign)), np.minimum(pick, k_short - 1)]
    pairs = pl.DataFrame({"campaign": slot_campaign, "creator": chosen}).unique(maintain_order=True)
    slot_campaign = pairs["campaign"].to_numpy()
    chosen = pairs["creator"].to_numpy()
    m = len(chosen)

    orng = rngs["outcomes"]
    plat = params.platform[chosen]
    fmt = _draw_formats(cfg, plat, orng.random(m))
    posted = start[slot_campaign].astype("datetime64[us]") + (orng.random(m) * 7 * 86400e6).astype("timedelta64[us]")
    now = np.datetime64(w.history_end) + np.timedelta64(1, "D")
    days_from_now = (posted - now.astype("datetime64[us]")) / np.timedelta64(1, "D")
    month = (posted.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.int64)
    b = brand[slot_campaign]
    ctx = RowContext(
        days_from_now=days_from_now.astype(np.float64),
        month=month,
        fmt=fmt,
        sponsored=np.ones(m, dtype=bool),
        category=brand_cat[b],
        target_age=age_mask[b],
        target_gender=gender_mask[b],
        target_country=country_mask[b],
        aov=brands["aov"].to_numpy()[b],
    )
    exp = expected_kpis(cfg, tiers, params.take(chosen), ctx)

    drawn = draw_outcomes(cfg, exp, brands["aov"].to_numpy()[b], orng)
    reach, impressions, engagements = drawn["reach"], drawn["impressions"], drawn["engagements"]
    clicks, conversions, revenue = drawn["clicks"], drawn["conversions"], drawn["revenue"]

    price_cols = np.column_stack([creators[f"price_{f}"].fill_null(np.nan).to_numpy() for f in FORMATS])
    list_price = price_cols[chosen, fmt]
    base_fmt = np.array([FORMATS.index(BASE_FORMAT[p]) for p in PLATFORMS])[plat]
    mult = np.array(
        [[cfg.price.format_multiplier[p].get(f, 1.0) / cfg.price.format_multiplier[p][BASE_FORMAT[p]] for f in FORMATS]
         for p in PLATFORMS]
    )[plat, fmt]  # fmt: skip
    list_price = np.where(np.isnan(list_price), price_cols[chosen, base_fmt] * mult, list_price)
    cost = np.round(list_price * libm.exp(orng.normal(0, cfg.price.negotiation_sigma, m)), 2)

    campaign_id = _ids("k", n_camp, 7)
    outcomes = pl.DataFrame(
        {
            "campaign_id": campaign_id.gather(slot_campaign),
            "creator_id": creators["creator_id"].gather(chosen),
            "format": np.array(FORMATS)[fmt],
            "posted_at": pl.Series(posted).dt.replace_time_zone("UTC"),
            "cost": cost,
            "reach": reach,
            "impressions": impressions,
            "engagements": engagements,
            "clicks": clicks,
            "conversions": conversions,
            "revenue": revenue,
        }
    )
    spend = outcomes.group_by("campaign_id").agg(pl.col("cost").sum().alias("budget"))
    bsel = brands[brand]
    campaigns = (
        pl.DataFrame(
            {
                "campaign_id": campaign_id,
                "brand_id": bsel["brand_id"],
                "brand_category": bsel["brand_category"],
                "target_age": bsel["target_age"],
                "target_gender": bsel["target_gender"],
                "target_countries": bsel["target_countries"],
                "start_date": pl.Series(start).cast(pl.Date),
                "end_date": pl.Series(start + rng.integers(14, 46, n_camp).astype("timedelta64[D]")).cast(pl.Date),
                "goal": bsel["goal"],
            }
        )
        .join(spend, on="campaign_id", how="left")
        .with_columns(pl.col("budget").fill_null(0.0).round(2))
    )
    # expected values travel with the outcomes in the truth folder, for scoring forecasts
    expected = outcomes.select("campaign_id", "creator_id", "format").with_columns(
        *(pl.Series(f"true_{k}", exp[k]) for k in KPIS)
    )
    campaigns = campaigns.select(
        "campaign_id", "brand_id", "brand_category", "target_age", "target_gender", "target_countries",
        "start_date", "end_date", "budget", "goal",
    )  # fmt: skip
    return campaigns, outcomes, expected


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(_STREAMS, children, strict=True)}


def simulate_creators(
    cfg: SimulatorConfig, tiers: TierConfig, n_creators: int, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Only the creators and their hidden truth (no posts or campaigns): the same rows simulate_market draws."""
    creators, truth, _ = _creators(cfg, tiers, n_creators, _streams(seed))
    return creators, truth


def simulate_market(cfg: SimulatorConfig, tiers: TierConfig, n_creators: int, seed: int) -> SimulatedMarket:
    """Draw a market of ``n_creators`` creators. The same seed and config give identical tables."""
    if n_creators < 1:
        raise ValueError("n_creators must be at least 1")
    rngs = _streams(seed)
    creators, truth, params = _creators(cfg, tiers, n_creators, rngs)
    posts = _posts(cfg, tiers, params, truth, creators["creator_id"], rngs["posts"])
    brands = _brands(cfg, n_creators, rngs["brands"])
    campaigns, outcomes, expected = _campaigns(cfg, tiers, params, creators, truth, brands, rngs)
    return SimulatedMarket(
        creators=creators,
        posts=posts,
        campaigns=campaigns,
        outcomes=outcomes,
        truth=truth,
        brands=brands,
        expected_outcomes=expected,
    )
