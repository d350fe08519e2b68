from __future__ import annotations

from pathlib import Path

import pytest

from influencer_engine.config import SimulatorConfig, TierConfig, load_simulator_config, load_tier_config
from influencer_engine.simulate.generate import SimulatedMarket, simulate_market

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def cfg() -> SimulatorConfig:
    return load_simulator_config()


@pytest.fixture(scope="session")
def tiers() -> TierConfig:
    return load_tier_config()


@pytest.fixture(scope="session")
def small_market(cfg: SimulatorConfig, tiers: TierConfig) -> SimulatedMarket:
    return simulate_market(cfg, tiers, 3000, seed=11)


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL.is_dir():
        pytest.skip("../shared/data/real is absent")
    return REAL
