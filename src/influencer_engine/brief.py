"""A campaign brief: what the planner asks for. Loaded from TOML or JSON into a frozen, typed model."""

from __future__ import annotations

import json
import tomllib
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from influencer_engine.config import validated
from influencer_engine.errors import ConfigError
from influencer_engine.registry import FORMATS, GOAL_NAMES, GOALS, PLATFORMS, RISKS, TIERS
from influencer_engine.schema import AGE_BANDS, AUDIENCE_COUNTRIES, CATEGORIES, GENDERS

__all__ = ["Brief", "Constraints", "MixLimit", "Scenario", "TargetAudience", "load_brief"]

# goals and risk levels come from the registry; the JSON schema lists them so the API docs offer them
_RISK_DOC = (
    "Plan on expected values, or risk-averse: p10 maximises the roster's own P10 (the unique-reach goal "
    "uses each creator's P10 reach), p50 each creator's median."
)


# planning dates must be in the age of creator platforms (YouTube opened in 2005) and not decades ahead
EARLIEST_START = date(2005, 1, 1)
LATEST_START_YEARS = 5


def _known(name: str, value: str | None, vocab: tuple[str, ...] | list[str]) -> str | None:
    if value is not None and value not in vocab:
        raise ValueError(f"{name} '{value}' is unknown; use one of {', '.join(vocab)}")
    return value


def _in_case_of(vocab: tuple[str, ...]) -> dict[str, str]:
    return {v.casefold(): v for v in vocab}


def _normal_case(v: object, vocab: tuple[str, ...]) -> object:
    """'Instagram' -> 'instagram', 'us' -> 'US': a vocabulary word in any case is that word."""
    table = _in_case_of(vocab)
    if isinstance(v, str):
        return table.get(v.strip().casefold(), v)
    if isinstance(v, list | tuple):
        return tuple(table.get(t.strip().casefold(), t) if isinstance(t, str) else t for t in v)
    return v


_STRICT = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class TargetAudience(BaseModel):
    """Who the brand wants to reach; an empty field means everyone."""

    model_config = _STRICT

    age: tuple[str, ...] = AGE_BANDS
    gender: tuple[str, ...] = GENDERS
    countries: tuple[str, ...] = AUDIENCE_COUNTRIES

    @field_validator("age", "gender", "countries", mode="before")
    @classmethod
    def _to_tuple(cls, v: object) -> object:
        if isinstance(v, str):
            v = tuple(t.strip() for t in v.split("|") if t.strip())
        return v

    @field_validator("age", mode="before")
    @classmethod
    def _age_case(cls, v: object) -> object:
        return _normal_case(v, AGE_BANDS)

    @field_validator("gender", mode="before")
    @classmethod
    def _gender_case(cls, v: object) -> object:
        return _normal_case(v, GENDERS)

    @field_validator("countries", mode="before")
    @classmethod
    def _country_case(cls, v: object) -> object:
        return _normal_case(v, AUDIENCE_COUNTRIES)

    @model_validator(mode="after")
    def _known(self) -> TargetAudience:
        for name, vocab in (("age", AGE_BANDS), ("gender", GENDERS), ("countries", AUDIENCE_COUNTRIES)):
            values = getattr(self, name)
            unknown = [v for v in values if v not in vocab]
            if unknown:
                raise ValueError(f"target.{name}: unknown {unknown}; use some of {', '.join(vocab)}")
            if not values:
                object.__setattr__(self, name, vocab)
        return self


class MixLimit(BaseModel):
    """Limits on one tier's or platform's part of the roster: creator counts and shares of the roster's spend."""

    model_config = _STRICT

    min_count: int | None = None
    max_count: int | None = None
    min_share: float | None = None  # of the roster's spend, 0..1
    max_share: float | None = None

    @model_validator(mode="after")
    def _check(self) -> MixLimit:
        for name in ("min_count", "max_count"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("min_share", "max_share"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} is a share of spend: use a number from 0 to 1")
        if self.min_count is not None and self.max_count is not None and self.min_count > self.max_count:
            raise ValueError(f"min_count {self.min_count} > max_count {self.max_count}")
        if self.min_share is not None and self.max_share is not None and self.min_share > self.max_share:
            raise ValueError(f"min_share {self.min_share} > max_share {self.max_share}")
        return self


class Constraints(BaseModel):
    """What a roster must respect besides the budget. Every field is optional."""

    model_config = _STRICT

    roster_min: int | None = None
    roster_max: int | None = None
    max_spend_per_creator: float | None = None
    min_spend_share: float | None = None  # spend at least this share of the budget, 0..1
    min_audience_fit: float | None = None  # share of the audience inside the target, 0..1
    min_credibility: float | None = None  # share of real followers, 0..1
    # creators whose audience is not in the data: "assume" tests the assumed (platform average) audience against
    # min_audience_fit, "pass" lets them through the fit floor, "exclude" leaves them out
    unknown_audience: Literal["assume", "pass", "exclude"] = "assume"
    quoted_prices_only: bool = False  # leave out creators whose price is estimated, not quoted
    include: tuple[str, ...] = ()  # creator ids that must be in the roster
    exclude: tuple[str, ...] = ()  # creator ids that must not be
    tiers: dict[str, MixLimit] = {}
    platforms: dict[str, MixLimit] = {}

    @field_validator("tiers", "platforms", mode="before")
    @classmethod
    def _mix_case(cls, v: object, info: ValidationInfo) -> object:
        if not isinstance(v, dict):
            return v
        table = _in_case_of(TIERS if info.field_name == "tiers" else PLATFORMS)
        return {table.get(str(k).strip().casefold(), k): x for k, x in v.items()}

    @model_validator(mode="after")
    def _check(self) -> Constraints:
        if self.roster_min is not None and self.roster_min < 0:
            raise ValueError("roster_min must be >= 0")
        if self.roster_max is not None and self.roster_max < 1:
            raise ValueError("roster_max must be >= 1")
        if self.roster_min is not None and self.roster_max is not None and self.roster_min > self.roster_max:
            raise ValueError(f"roster_min {self.roster_min} > roster_max {self.roster_max}")
        if self.max_spend_per_creator is not None and self.max_spend_per_creator <= 0:
            raise ValueError("max_spend_per_creator must be positive")
        for name in ("min_audience_fit", "min_credibility", "min_spend_share"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} is a share: use a number from 0 to 1")
        both = sorted(set(self.include) & set(self.exclude))
        if both:
            raise ValueError(f"creator(s) {', '.join(both[:5])} are both included and excluded")
        for group, vocab in (("tiers", TIERS), ("platforms", PLATFORMS)):
            unknown = [k for k in getattr(self, group) if k not in vocab]
            if unknown:
                raise ValueError(f"constraints.{group}: unknown {unknown}; use some of {', '.join(vocab)}")
            limits: dict[str, MixLimit] = getattr(self, group)
            low = sum(v.min_share or 0.0 for v in limits.values())
            if low > 1.0 + 1e-9:
                raise ValueError(f"constraints.{group}: the min_share values add up to {low:.2f}, more than 1")
        return self


class Scenario(BaseModel):
    """A variant of the brief for what-if comparisons: the fields it sets replace the brief's."""

    model_config = _STRICT

    name: str
    tiers: tuple[str, ...] | None = None
    platforms: tuple[str, ...] | None = None
    constraints: Constraints | None = None
    risk: str | None = Field(None, json_schema_extra={"enum": list(RISKS)}, description=_RISK_DOC)

    @field_validator("tiers", "platforms", "risk", mode="before")
    @classmethod
    def _case(cls, v: object, info: ValidationInfo) -> object:
        return _normal_case(v, {"tiers": TIERS, "platforms": PLATFORMS, "risk": tuple(RISKS)}[str(info.field_name)])

    @field_validator("risk")
    @classmethod
    def _risk(cls, v: str | None) -> str | None:
        return _known("risk", v, list(RISKS))


class Brief(BaseModel):
    """A campaign brief. Fields beyond the audience and dates are used by the planner."""

    model_config = _STRICT

    brief_id: str = "brief"
    goal: str = Field("conversions", json_schema_extra={"enum": list(GOAL_NAMES)}, description="What to maximize.")
    budget: float = 50_000.0
    brand_category: str
    target: TargetAudience = TargetAudience()
    start_date: date
    end_date: date | None = None
    platforms: tuple[str, ...] = PLATFORMS
    formats: tuple[str, ...] = FORMATS
    average_order_value: float | None = None
    tiers: tuple[str, ...] = TIERS  # tiers allowed in the roster
    constraints: Constraints = Constraints()
    risk: str = Field("expected", json_schema_extra={"enum": list(RISKS)}, description=_RISK_DOC)
    scenarios: tuple[Scenario, ...] = ()

    @field_validator("goal", "risk", "brand_category", "platforms", "formats", "tiers", mode="before")
    @classmethod
    def _case(cls, v: object, info: ValidationInfo) -> object:
        vocab = {"goal": tuple(GOALS), "risk": tuple(RISKS), "brand_category": CATEGORIES, "platforms": PLATFORMS,
                 "formats": FORMATS, "tiers": TIERS}[str(info.field_name)]  # fmt: skip
        return _normal_case(v, vocab)

    @field_validator("goal")
    @classmethod
    def _goal(cls, v: str) -> str:
        return str(_known("goal", v, list(GOALS)))

    @field_validator("risk")
    @classmethod
    def _risk(cls, v: str) -> str:
        return str(_known("risk", v, list(RISKS)))

    def with_scenario(self, scenario: Scenario) -> Brief:
        """This brief with a scenario's fields in place of its own."""
        changes = {k: getattr(scenario, k) for k in ("tiers", "platforms", "constraints", "risk")}
        data = {**self.model_dump(), **{k: v for k, v in changes.items() if v is not None}}
        data["brief_id"] = f"{self.brief_id}:{scenario.name}"
        data["scenarios"] = ()
        return Brief.model_validate(data)

    @model_validator(mode="after")
    def _check(self) -> Brief:
        if self.brand_category not in CATEGORIES:
            raise ValueError(f"brand_category '{self.brand_category}' unknown; use one of {', '.join(CATEGORIES)}")
        if self.budget <= 0:
            raise ValueError("budget must be positive")
        if self.average_order_value is not None and self.average_order_value <= 0:
            raise ValueError("average_order_value must be positive (USD per order), or left out")
        latest = date(date.today().year + LATEST_START_YEARS, 12, 31)
        if not EARLIEST_START <= self.start_date <= latest:
            raise ValueError(f"start_date {self.start_date} is outside {EARLIEST_START} to {latest}")
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date comes before start_date")
        for name, vocab in (("platforms", PLATFORMS), ("formats", FORMATS), ("tiers", TIERS)):
            unknown = [v for v in getattr(self, name) if v not in vocab]
            if unknown:
                raise ValueError(f"{name}: unknown {unknown}; use some of {', '.join(vocab)}")
        names = [s.name for s in self.scenarios]
        if len(set(names)) != len(names):
            raise ValueError("scenario names must be unique")
        for name, vocab in (("tiers", TIERS), ("platforms", PLATFORMS)):
            for sc in self.scenarios:
                unknown = [v for v in getattr(sc, name) or () if v not in vocab]
                if unknown:
                    raise ValueError(f"scenario '{sc.name}' {name}: unknown {unknown}; use some of {', '.join(vocab)}")
        return self


def load_brief(path: Path) -> Brief:
    """Read a brief from TOML or JSON, with errors that name the file and the field."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"brief {path} cannot be read ({exc.strerror}).", fix="pass an existing brief file") from exc
    try:
        data = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"brief {path} is not valid {path.suffix[1:].upper()}: {exc}.", fix="fix its syntax") from exc
    return validated(Brief, data, source=f"brief {path}", fix="see configs/briefs/ for a complete example")
