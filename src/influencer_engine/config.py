"""Typed, frozen configuration loaded from TOML. Unknown keys are errors; nothing happens at import."""

from __future__ import annotations

import difflib
import tomllib
import typing
from collections.abc import Mapping, Sequence
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from influencer_engine.errors import ConfigError
from influencer_engine.registry import KPI_NAMES, KPIS, PLATFORMS, TIERS

__all__ = [
    "CalibrationRanges",
    "ModelConfig",
    "SimulatorConfig",
    "TierConfig",
    "config_path",
    "load_model_config",
    "load_simulator_config",
    "load_tier_config",
    "validated",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Range = tuple[float, float]


class TierConfig(_Frozen):
    """Lower follower bound of each tier above nano."""

    micro: int = 10_000
    mid: int = 100_000
    macro: int = 500_000
    mega: int = 1_000_000

    @model_validator(mode="after")
    def _increasing(self) -> TierConfig:
        if not 0 < self.micro < self.mid < self.macro < self.mega:
            raise ValueError("tier bounds must increase: 0 < micro < mid < macro < mega")
        return self

    def bounds(self) -> list[int]:
        return [self.micro, self.mid, self.macro, self.mega]


class WorldSection(_Frozen):
    history_start: date
    history_end: date
    campaign_warmup_days: int
    platform_shares: dict[str, float]

    @model_validator(mode="after")
    def _check(self) -> WorldSection:
        if self.history_end <= self.history_start:
            raise ValueError("history_end must come after history_start")
        _check_shares("platform_shares", self.platform_shares, PLATFORMS)
        return self


class PopulationSection(_Frozen):
    tier_shares: dict[str, float]
    min_followers: int
    max_followers: int
    pareto_alpha: float
    following_median: int

    @field_validator("tier_shares")
    @classmethod
    def _tiers(cls, v: dict[str, float]) -> dict[str, float]:
        _check_shares("tier_shares", v, TIERS)
        return v


class FakeSection(_Frozen):
    beta_a: dict[str, float]
    beta_b: dict[str, float]
    credibility_noise: float
    credibility_known_share: float


class QualitySection(_Frozen):
    sigma: float
    price_loading: float
    mispricing_sigma: float
    mispricing_clip: float  # mispricing is a normal truncated at +- this many sd


class ReachSection(_Frozen):
    rate_at_10k: dict[str, float]
    elasticity: dict[str, float]
    within_creator_elasticity: float
    follower_growth_mean: float
    follower_growth_sd: float
    engagement_drift_sd: float
    reach_ratio: dict[str, float]
    format_impressions: dict[str, float]
    sponsored_impressions: float
    dispersion_k: float


class EngagementSection(_Frozen):
    per_impression: dict[str, float]
    format_engagement: dict[str, float]
    sponsored_engagement: float
    quality_loading: float
    inverted_u_peak_log10: float
    inverted_u_curvature: float
    dispersion_k: float
    split_likes: dict[str, float]
    split_comments: dict[str, float]
    split_shares: dict[str, float]
    split_saves: dict[str, float]


class PostingSection(_Frozen):
    posts_median: float
    posts_sigma: float
    sponsored_share_mean: float
    formats: dict[str, dict[str, float]]

    @field_validator("formats")
    @classmethod
    def _formats(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for platform, shares in v.items():
            _check_shares(f"formats.{platform}", shares, tuple(shares))
        return v


class PriceSection(_Frozen):
    anchor_followers: list[float]
    anchor_usd: dict[str, list[float]]
    format_multiplier: dict[str, dict[str, float]]
    format_price_known: float
    negotiation_sigma: float
    fake_discount: float  # price x (1 - fake share)^this: how far buyers see through fake followers

    @model_validator(mode="after")
    def _check(self) -> PriceSection:
        for platform, usd in self.anchor_usd.items():
            if len(usd) != len(self.anchor_followers):
                raise ValueError(f"anchor_usd.{platform} needs one price per anchor_followers entry")
        return self


class ConversionSection(_Frozen):
    ctr: dict[str, float]
    ctr_platform: dict[str, float]
    rate_by_tier: dict[str, float]
    off_target_factor: float
    fit_reference: float
    off_affinity_factor: float
    affinity_reference: float
    quality_loading: float
    conversion_quality_loading: float
    dispersion_k: float
    revenue_sigma: float


class CategoriesSection(_Frozen):
    shares: dict[str, float]
    aov_usd: dict[str, float]
    female_share: dict[str, float]
    season_fitness: list[float]
    season_retail: list[float]
    season_travel: list[float]
    sponsored_saturation: list[float]

    @model_validator(mode="after")
    def _check(self) -> CategoriesSection:
        _check_shares("categories.shares", self.shares, tuple(self.shares))
        for name in ("aov_usd", "female_share"):
            if set(getattr(self, name)) != set(self.shares):
                raise ValueError(f"categories.{name} must name exactly the categories of categories.shares")
        for name in ("season_fitness", "season_retail", "season_travel", "sponsored_saturation"):
            if len(getattr(self, name)) != 12:
                raise ValueError(f"categories.{name} needs 12 monthly values")
        return self


class AudienceSection(_Frozen):
    countries: dict[str, float]
    age_by_platform: dict[str, list[float]]
    home_country_concentration: float
    niche_concentration: float
    secondary_concentration: float
    age_concentration: float
    communities: int
    own_community_share: float
    people_pool: float

    @model_validator(mode="after")
    def _check(self) -> AudienceSection:
        _check_shares("audience.countries", self.countries, tuple(self.countries))
        for platform, shares in self.age_by_platform.items():
            if len(shares) != 5 or abs(sum(shares) - 1) > 1e-6:
                raise ValueError(f"audience.age_by_platform.{platform} needs 5 shares summing to 1")
        return self


class CampaignSection(_Frozen):
    outcomes_per_creator: float
    creators_per_campaign: float
    brands_per_1k_creators: float
    in_niche_share: float
    follower_weight_exponent: float
    shortlist: int  # creators a brand considers per hire
    fit_weight_exponent: float  # odds of hiring one of them ~ (audience fit + 0.01)^this


class TailRanges(_Frozen):
    """Published ranges read as the spread of the middle 80% of campaign hires (10th to 90th percentile).

    A tail row checks the 10th percentile inside [low, mid] and the 90th inside [mid, high], with mid the geometric
    mean of the range: the simulated spread must sit inside the published one and still span its middle.
    """

    cpm: dict[str, Range]  # platform -> USD per 1,000 impressions
    cpe: dict[str, Range]  # platform -> USD per engagement
    click_through: dict[str, Range]  # platform -> clicks per reached viewer
    conversions_per_impression: Range  # every hire
    conversion_rate_p90_over_mean: Range  # top-decile conversion rate of clicks over the tier's mean
    price_p90_over_p10: Range  # spread of list prices among creators of one platform and follower band
    oracle_vs_market: dict[str, Range]  # cpa / roas: how many times better than the market the oracle roster is
    oracle_cpm_usd: Range  # the oracle EMV roster's true CPM in dollars


class CalibrationRanges(_Frozen):
    er: dict[str, dict[str, Range]]  # platform -> tier -> range (platforms with a published figure)
    reach_share: dict[str, Range]
    price: dict[str, dict[str, Range]]  # platform -> tier -> range, for every platform
    low_fake_share: dict[str, Range]
    fake_share_overall: Range
    cpm: dict[str, Range]
    conversion_rate: dict[str, Range]
    revenue_per_follower_nano_over_macro: Range
    tails: TailRanges

    @model_validator(mode="after")
    def _platforms(self) -> CalibrationRanges:
        for name in ("er", "cpm"):
            unknown = sorted(set(getattr(self, name)) - set(PLATFORMS))
            if unknown:
                raise ValueError(f"calibration.{name} names unknown platforms {unknown}")
        for name in ("cpm", "cpe", "click_through"):
            unknown = sorted(set(getattr(self.tails, name)) - set(PLATFORMS))
            if unknown:
                raise ValueError(f"calibration.tails.{name} names unknown platforms {unknown}")
        if set(self.price) != set(PLATFORMS):
            raise ValueError(f"calibration.price must name exactly {', '.join(PLATFORMS)}")
        return self


class SimulatorConfig(_Frozen):
    """Every constant of the simulated market (configs/simulator.toml)."""

    world: WorldSection
    population: PopulationSection
    fake_followers: FakeSection
    quality: QualitySection
    reach: ReachSection
    engagement: EngagementSection
    posting: PostingSection
    price: PriceSection
    conversion: ConversionSection
    categories: CategoriesSection
    audience: AudienceSection
    campaigns: CampaignSection
    calibration: CalibrationRanges

    @model_validator(mode="after")
    def _every_platform(self) -> SimulatorConfig:
        """Every platform of the registry has its rates here (a new platform names each key it must fill)."""
        missing = [f"{section}.{key}" for section, key in _PER_PLATFORM
                   if set(PLATFORMS) - set(getattr(getattr(self, section), key))]  # fmt: skip
        if missing:
            raise ValueError(f"every platform ({', '.join(PLATFORMS)}) needs a value in {', '.join(missing)}")
        return self


# the simulator's per-platform settings: dicts keyed by the platform codes of the registry
_PER_PLATFORM = (
    ("world", "platform_shares"),
    ("reach", "rate_at_10k"),
    ("reach", "elasticity"),
    ("reach", "reach_ratio"),
    ("engagement", "per_impression"),
    ("engagement", "split_likes"),
    ("engagement", "split_comments"),
    ("engagement", "split_shares"),
    ("engagement", "split_saves"),
    ("posting", "formats"),
    ("price", "anchor_usd"),
    ("price", "format_multiplier"),
    ("conversion", "ctr_platform"),
    ("audience", "age_by_platform"),
    ("calibration", "price"),
)


def _check_shares(name: str, shares: dict[str, float], expected: tuple[str, ...]) -> None:
    if set(shares) != set(expected):
        raise ValueError(f"{name} must name exactly {', '.join(expected)}")
    if any(v < 0 for v in shares.values()) or abs(sum(shares.values()) - 1.0) > 1e-6:
        raise ValueError(f"{name} must be non-negative shares summing to 1")


def config_path(name: str) -> Path:
    """Path of a committed config: the installed copy, or the repository's configs/ in a source checkout."""
    packaged = resources.files("influencer_engine").joinpath("_configs", name)
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "configs" / name


_M = TypeVar("_M", bound=BaseModel)


def _load(model: type[_M], path: Path, section: str | None = None) -> _M:
    try:
        with path.open("rb") as fh:
            raw: dict[str, Any] = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist.", fix="pass an existing TOML file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.", fix="correct the TOML syntax") from exc
    data = raw.get(section, {}) if section else raw
    if section and set(raw) - {section}:
        extra = ", ".join(sorted(set(raw) - {section}))
        raise ConfigError(f"{path}: unknown section(s) {extra}.", fix=f"keep only [{section}]")
    return validated(
        model, data, source=str(path), fix="remove unknown keys and give every key a value of the right type"
    )


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside a field's type (``X``, ``X | None``, ``tuple[X, ...]``, ``dict[str, X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _keys_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model accepts where ``loc`` points (for "did you mean")."""
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int) or not current:
            continue
        fields = current[0].model_fields
        if part not in fields:
            continue  # a dict key (a tier or platform name): the next part names a field again
        current = _models_in(fields[part].annotation)
    return list(current[0].model_fields) if current else []


def describe_problems(exc: ValidationError | Sequence[Mapping[str, Any]], model: type[BaseModel] | None, *,
                      skip: tuple[str, ...] = ()) -> list[str]:  # fmt: skip
    """Each problem of a failed validation in a person's words: ``where: what`` (did-you-mean for unknown keys).

    ``exc`` is a pydantic ValidationError or its ``errors()`` (FastAPI's request errors); ``skip`` drops location
    parts that mean nothing to a person (FastAPI's "body"). Unknown keys come first: a misspelled key is also a
    missing one, and its name is what the person must fix.
    """
    raw = exc.errors() if isinstance(exc, ValidationError) else list(exc)
    errors = sorted(raw, key=lambda e: e["type"] != "extra_forbidden")
    out: list[str] = []
    for e in errors:
        loc = tuple(p for p in e["loc"] if p not in skip)
        where = ".".join(str(p) for p in loc)
        msg = str(e["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if e["type"] == "extra_forbidden" and loc:
            known = _keys_at(model, loc[:-1]) if model is not None else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else (f"; use {', '.join(known)}" if known else "")
            out.append(f"unknown key '{where}'{hint}")
        elif e["type"] == "missing":
            out.append(f"'{where}' is missing")
        elif e["type"] == "json_invalid":
            out.append(f"the body is not valid JSON ({e.get('ctx', {}).get('error', msg)})")
        else:
            out.append(f"{where}: {msg}" if where else msg)
    return list(dict.fromkeys(out))


def validated(model: type[_M], data: Any, *, source: str, fix: str) -> _M:
    """``model.model_validate(data)``, with a pydantic failure turned into one ConfigError naming the key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = describe_problems(exc, model)
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:3])})" if len(problems) > 1 else ""
        message = f"{source}: {problems[0]}{more}"
        raise ConfigError(message if message.endswith((".", "?", ")")) else message + ".", fix=fix) from exc


def load_simulator_config(path: Path | None = None) -> SimulatorConfig:
    """Load configs/simulator.toml (or the file given)."""
    return _load(SimulatorConfig, path or config_path("simulator.toml"))


def load_tier_config(path: Path | None = None) -> TierConfig:
    """Load configs/tiers.toml (or the file given)."""
    return _load(TierConfig, path or config_path("tiers.toml"), section="tiers")


class LightGBMSection(_Frozen):
    objective: dict[str, str]  # KPIs not named here: poisson
    tweedie_variance_power: float = 1.5
    n_estimators: int
    learning_rate: float
    num_leaves: int
    min_child_samples: int
    subsample: float
    colsample_bytree: float
    reg_lambda: float
    # log-offset of each KPI: a feature ("followers": a rate per follower) or an earlier KPI of the funnel
    # (its forecast: clicks and conversions per reached person, revenue per conversion); KPIs not named here
    # take the offset of the KPI registry
    offset: dict[str, str] = {}
    n_jobs: int = 2

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """Every KPI of the registry gets an objective and an offset (the registry's unless the file names one)."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        defaults = {"objective": {k: "poisson" for k in KPI_NAMES}, "offset": {k: KPIS[k].offset for k in KPI_NAMES}}
        for key, default in defaults.items():
            given = out.get(key) or {}
            if isinstance(given, dict):
                out[key] = {**{k: v for k, v in default.items() if k not in given}, **given}
                out[key] = {k: out[key][k] for k in (*KPI_NAMES, *sorted(set(out[key]) - set(KPI_NAMES)))}
        return out

    @field_validator("objective")
    @classmethod
    def _objectives(cls, v: dict[str, str]) -> dict[str, str]:
        if set(v) != set(KPI_NAMES):
            raise ValueError(f"objective must name exactly {', '.join(KPI_NAMES)}")
        bad = {k: o for k, o in v.items() if o not in ("poisson", "tweedie", "gamma")}
        if bad:
            raise ValueError(f"objectives must be poisson, tweedie or gamma (count objectives), not {bad}")
        return v

    @field_validator("offset")
    @classmethod
    def _offsets(cls, v: dict[str, str]) -> dict[str, str]:
        if set(v) != set(KPI_NAMES):
            raise ValueError(f"offset must name exactly {', '.join(KPI_NAMES)}")
        for kpi, base in v.items():
            if base in KPI_NAMES and KPI_NAMES.index(base) >= KPI_NAMES.index(kpi):
                raise ValueError(f"offset of {kpi} must be a feature or an earlier KPI, not {base}")
        return v


class IntervalSection(_Frozen):
    levels: tuple[float, float, float] = (0.1, 0.5, 0.9)
    calibration_share: float = 0.2
    bins: int = 5
    # bands of their own per history bucket (0-5, 6-20, 21-50, 51+ posts): always, never, or "auto": where the pooled
    # bands hold a bucket's calibration rows more than ``history_tolerance`` off their share
    by_history: bool | Literal["auto"] = "auto"
    history_tolerance: float = 0.05
    # the bands' residuals: every training row out of fold (the mean correction's folds), or the latest rows only
    calibrate_on: Literal["latest", "out_of_fold"] = "out_of_fold"
    balance_folds: int = 3  # folds of creators for the out-of-fold mean correction (0: none)

    @model_validator(mode="after")
    def _check(self) -> IntervalSection:
        lo, mid, hi = self.levels
        if not 0 < lo < mid < hi < 1:
            raise ValueError("levels must be three increasing quantiles inside (0, 1)")
        if not 0.05 <= self.calibration_share <= 0.5 or self.bins < 1:
            raise ValueError("calibration_share must be in [0.05, 0.5] and bins at least 1")
        if self.balance_folds == 1 or not 0 <= self.balance_folds <= 10:
            raise ValueError("balance_folds must be 0 (no mean correction) or 2-10")
        return self


class BacktestSection(_Frozen):
    test_share: float = 0.2
    folds: int = 1


class MediaKitSection(_Frozen):
    impressions_per_follower: float
    reach_per_impression: float
    engagements_per_impression: dict[str, float]
    clicks_per_reach: float
    conversions_per_click: float

    @field_validator("engagements_per_impression")
    @classmethod
    def _platforms(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != set(PLATFORMS):
            raise ValueError(f"engagements_per_impression must name exactly {', '.join(PLATFORMS)}")
        return v


class CostSection(_Frozen):
    emv_cpm_usd: float


class ModelConfig(_Frozen):
    """configs/models.toml: LightGBM settings, monotone constraints, intervals, backtest, baselines, costs."""

    lightgbm: LightGBMSection
    monotone: dict[str, list[str]]
    intervals: IntervalSection
    backtest: BacktestSection
    media_kit: MediaKitSection
    costs: CostSection

    @field_validator("monotone")
    @classmethod
    def _kpis(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if set(v) - set(KPI_NAMES):
            raise ValueError(f"monotone names unknown KPIs {sorted(set(v) - set(KPI_NAMES))}")
        return v


def load_model_config(path: Path | None = None) -> ModelConfig:
    """Load configs/models.toml (or the file given)."""
    return _load(ModelConfig, path or config_path("models.toml"))


class PlannerAudienceSection(_Frozen):
    people_pool: float  # people a campaign can reach on the platforms; segment sizes split it

    @field_validator("people_pool")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("people_pool must be positive")
        return v


class SolverSection(_Frozen):
    mip_rel_gap: float  # HiGHS stops once the roster is certified within this share of the bound
    time_limit_s: float
    max_reach_rounds: int  # improvement rounds of the unique-reach solver
    # how an additive roster's gap is proven: "full" runs a MILP over every candidate that could still improve the
    # roster when the LP bounds do not certify mip_rel_gap (seconds on some budgets); "bounds" stops at the LP bounds
    # and reports the gap they certify, which may exceed mip_rel_gap (interactive use: ie serve)
    proof: Literal["full", "bounds"] = "full"


class MonteCarloSection(_Frozen):
    draws: int
    seed: int


class BudgetSection(_Frozen):
    explain_below_share: float  # a plan spending less than this share of its budget says why (and what would help)

    @field_validator("explain_below_share")
    @classmethod
    def _share(cls, v: float) -> float:
        if not 0.0 <= v <= 1.0:
            raise ValueError("budget.explain_below_share is a share: use a number from 0 to 1")
        return v


class PlannerConfig(_Frozen):
    """configs/planner.toml: the audience model behind unique reach, solver limits, Monte Carlo bands."""

    audience: PlannerAudienceSection
    solver: SolverSection
    monte_carlo: MonteCarloSection
    budget: BudgetSection


def load_planner_config(path: Path | None = None) -> PlannerConfig:
    """Load configs/planner.toml (or the file given)."""
    return _load(PlannerConfig, path or config_path("planner.toml"))
