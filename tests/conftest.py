from __future__ import annotations

import os
from pathlib import Path

import pytest

from influencer_engine.cli import main
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


TINY_MODELS = Path(__file__).resolve().parents[1] / "configs" / "models.toml"


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2,500-creator world trained with small models, tracked in a throwaway MLflow store."""
    root = tmp_path_factory.mktemp("trained")
    cfg = root / "models.toml"
    text = TINY_MODELS.read_text(encoding="utf-8").replace("n_estimators = 300", "n_estimators = 40")
    cfg.write_text(text, encoding="utf-8")
    world = root / "w"
    with pytest.raises(SystemExit):
        main(["simulate", "--out", str(world), "--creators", "2500", "--seed", "5"])
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(world), "--out", str(root / "bundle"), "--config", str(cfg),
              "--training-root", str(root / "training")])  # fmt: skip
    assert exc.value.code in (0, None)
    return {"root": root, "world": world, "bundle": root / "bundle", "config": cfg, "training": root / "training"}


@pytest.fixture(autouse=True, scope="session")
def _compiled_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compiled trees go to a cache of the test session, not the user's."""
    os.environ["IE_COMPILED_CACHE"] = str(tmp_path_factory.mktemp("compiled"))
