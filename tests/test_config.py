from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from influencer_engine.config import TierConfig, load_simulator_config, load_tier_config
from influencer_engine.errors import ConfigError


def test_committed_configs_load() -> None:
    cfg = load_simulator_config()
    assert abs(sum(cfg.population.tier_shares.values()) - 1) < 1e-9
    assert load_tier_config().bounds() == [10_000, 100_000, 500_000, 1_000_000]


def test_configs_are_frozen() -> None:
    cfg = load_simulator_config()
    with pytest.raises(ValidationError):
        cfg.quality.sigma = 2.0  # type: ignore[misc]


def test_unknown_key_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    text = Path(load_simulator_config.__globals__["config_path"]("simulator.toml")).read_text()
    bad = tmp_path / "sim.toml"
    bad.write_text(text.replace("[quality]\n", "[quality]\nsigmaa = 1.0\n"))
    with pytest.raises(ConfigError) as err:
        load_simulator_config(bad)
    assert str(bad) in str(err.value) and "quality.sigmaa" in str(err.value)


def test_tier_bounds_must_increase(tmp_path: Path) -> None:
    p = tmp_path / "tiers.toml"
    p.write_text("[tiers]\nmicro = 10\nmid = 5\nmacro = 500\nmega = 1000\n")
    with pytest.raises(ConfigError, match="increase"):
        load_tier_config(p)
    assert TierConfig().micro == 10_000


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    p = tmp_path / "x.toml"
    p.write_text("[tiers\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_tier_config(p)


def test_brief_errors_name_the_file_and_field(tmp_path: Path) -> None:
    from influencer_engine.brief import load_brief

    p = tmp_path / "b.toml"
    p.write_text('brand_category = "candy"\nstart_date = "2026-01-01"\n')
    with pytest.raises(ConfigError, match=r"b\.toml.*candy.*Fix: see configs/briefs/"):
        load_brief(p)
    p.write_text('brand_category = "food"\nstart_date = "2026-01-01"\nbudgett = 5\n')
    with pytest.raises(ConfigError, match="budgett"):
        load_brief(p)


def test_example_briefs_load() -> None:
    from influencer_engine.brief import load_brief
    from influencer_engine.config import config_path

    for p in sorted((config_path("simulator.toml").parent / "briefs").glob("*.toml")):
        assert load_brief(p).budget > 0
