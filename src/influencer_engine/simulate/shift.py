"""A shifted world: the simulator's parameters perturbed at random, to check that models are not tuned to one world.

Rates (reach per follower, engagement per impression, click-through, conversion by tier), elasticities,
the sponsored discounts, the quality spread, the price anchors and the dispersion of outcomes are each
multiplied by ``exp(u)`` with ``u ~ Uniform(-strength, strength)``, drawn from ``seed``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from influencer_engine.config import SimulatorConfig
from influencer_engine.simulate import libm

__all__ = ["SHIFTED", "shifted_config"]

# section -> fields perturbed (dict fields: every value gets its own factor)
SHIFTED: dict[str, tuple[str, ...]] = {
    "reach": ("rate_at_10k", "elasticity", "reach_ratio", "sponsored_impressions", "dispersion_k"),
    "engagement": ("per_impression", "sponsored_engagement", "inverted_u_curvature", "dispersion_k"),
    "conversion": ("ctr", "ctr_platform", "rate_by_tier", "off_target_factor", "off_affinity_factor",
                   "quality_loading", "dispersion_k"),
    "quality": ("sigma", "mispricing_sigma"),
}  # fmt: skip


def shifted_config(cfg: SimulatorConfig, seed: int, strength: float = 0.3) -> tuple[SimulatorConfig, dict[str, Any]]:
    """The perturbed config and the factors applied (for the report)."""
    rng = np.random.default_rng(seed)
    body = cfg.model_dump()
    factors: dict[str, Any] = {}
    for section, fields in SHIFTED.items():
        for f in fields:
            value = body[section][f]
            if isinstance(value, dict):
                per_key = {k: float(libm.exp(rng.uniform(-strength, strength))) for k in value}
                body[section][f] = {k: v * per_key[k] for k, v in value.items()}
                factors[f"{section}.{f}"] = per_key
            else:
                one = float(libm.exp(rng.uniform(-strength, strength)))
                body[section][f] = value * one
                factors[f"{section}.{f}"] = one
    # elasticities above 1 would make reach grow faster than followers; keep the published regime
    body["reach"]["elasticity"] = {k: min(v, 0.98) for k, v in body["reach"]["elasticity"].items()}
    return SimulatorConfig.model_validate(body), factors
