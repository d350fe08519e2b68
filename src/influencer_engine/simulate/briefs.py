"""Random briefs for a simulated world: what the oracle evaluation plans and what roster bands calibrate on.

One generator, so the briefs a model's roster bands are calibrated on and the briefs the planner is scored on come
from the same distribution (with different seeds and dates).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np

from influencer_engine.brief import TargetAudience
from influencer_engine.registry import PLATFORMS
from influencer_engine.schema import AGE_BANDS, AUDIENCE_COUNTRIES, CATEGORIES, GENDERS

__all__ = ["random_context"]


def random_context(after: date, rng: np.random.Generator, k: int, *, prefix: str = "eval") -> dict[str, Any]:
    """The goal-independent part of a random brief starting 7-90 days after ``after``: category, audience, dates,
    platforms."""
    ages = rng.choice(AGE_BANDS, size=int(rng.integers(1, 4)), replace=False)
    countries = rng.choice(AUDIENCE_COUNTRIES[:-1], size=int(rng.integers(1, 5)), replace=False)
    gender = GENDERS if rng.random() < 0.6 else (str(rng.choice(GENDERS)),)
    platforms = PLATFORMS if rng.random() < 0.5 else tuple(
        str(p) for p in rng.choice(PLATFORMS, size=int(rng.integers(1, 3)), replace=False))  # fmt: skip
    start = after + timedelta(days=int(rng.integers(7, 90)))
    return {
        "brief_id": f"{prefix}-{k}",
        "brand_category": str(rng.choice(CATEGORIES)),
        "target": TargetAudience(
            age=tuple(sorted(map(str, ages))), gender=tuple(gender), countries=tuple(map(str, countries))
        ),
        "start_date": start,
        "end_date": start + timedelta(days=28),
        "platforms": tuple(sorted(platforms)),
    }
