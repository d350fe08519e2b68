"""A campaign brief: what the planner asks for. Loaded from TOML or JSON into a frozen, typed model."""

from __future__ import annotations

import json
import tomllib
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from influencer_engine.config import validated
from influencer_engine.errors import ConfigError
from influencer_engine.schema import (
    AGE_BANDS,
    AUDIENCE_COUNTRIES,
    CATEGORIES,
    FORMATS,
    GENDERS,
    GOALS,
    PLATFORMS,
)

__all__ = ["Brief", "TargetAudience", "load_brief"]

Goal = Literal["reach", "engagement", "clicks", "conversions", "revenue", "roas", "emv"]


class TargetAudience(BaseModel):
    """Who the brand wants to reach; an empty field means everyone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    age: tuple[str, ...] = AGE_BANDS
    gender: tuple[str, ...] = GENDERS
    countries: tuple[str, ...] = AUDIENCE_COUNTRIES

    @field_validator("age", "gender", "countries", mode="before")
    @classmethod
    def _to_tuple(cls, v: object) -> object:
        if isinstance(v, str):
            return tuple(t.strip() for t in v.split("|") if t.strip())
        return v

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


class Brief(BaseModel):
    """A campaign brief. Fields beyond the audience and dates are used by the planner."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    brief_id: str = "brief"
    goal: Goal = "conversions"
    budget: float = 50_000.0
    brand_category: str
    target: TargetAudience = TargetAudience()
    start_date: date
    end_date: date | None = None
    platforms: tuple[str, ...] = PLATFORMS
    formats: tuple[str, ...] = FORMATS
    average_order_value: float | None = None

    @model_validator(mode="after")
    def _check(self) -> Brief:
        if self.brand_category not in CATEGORIES:
            raise ValueError(f"brand_category '{self.brand_category}' unknown; use one of {', '.join(CATEGORIES)}")
        if self.budget <= 0:
            raise ValueError("budget must be positive")
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date comes before start_date")
        for name, vocab in (("platforms", PLATFORMS), ("formats", FORMATS)):
            unknown = [v for v in getattr(self, name) if v not in vocab]
            if unknown:
                raise ValueError(f"{name}: unknown {unknown}; use some of {', '.join(vocab)}")
        if self.goal not in GOALS:  # pragma: no cover - Literal already checks
            raise ValueError(f"goal must be one of {GOALS}")
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
