"""KPI models: estimator contract, domain behaviour, intervals, baselines, bundles, explanations, bad input."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from influencer_engine.config import ModelConfig, TierConfig, load_model_config, load_planner_config, load_tier_config
from influencer_engine.errors import ContractError
from influencer_engine.features.build import feature_columns
from influencer_engine.features.requests import training_requests
from influencer_engine.modeling.backtest import backtest, time_splits
from influencer_engine.modeling.balance import PER_DOLLAR_QUANTILES, Balance
from influencer_engine.modeling.baselines import Baselines
from influencer_engine.modeling.costs import per_cost
from influencer_engine.modeling.estimator import KPIModel
from influencer_engine.modeling.explain import explain
from influencer_engine.modeling.forecaster import Forecast, KPIForecaster, fold_of, platform_of, price_of
from influencer_engine.modeling.intervals import (
    MIN_EXPECTED_ROWS,
    MIN_PAIRS,
    ConformalBands,
    ErrorSplit,
    ExpectedError,
    band_variance,
    sum_covariances,
)
from influencer_engine.modeling.matrix import CATEGORIES_OF, check_features, to_matrix
from influencer_engine.modeling.metrics import poisson_deviance, relative_poisson_deviance
from influencer_engine.modeling.predictor import TrainingInfo
from influencer_engine.modeling.report import markdown_report
from influencer_engine.registry import KPI_NAMES
from influencer_engine.simulate.generate import SimulatedMarket
from influencer_engine.training.bundle import SCHEMA_VERSION, BundleError, load_bundle, save_bundle
from influencer_engine.training.data import fingerprint, training_table

FEATURES = feature_columns()


def tiny_config(n_estimators: int = 40) -> ModelConfig:
    cfg = load_model_config()
    return cfg.model_copy(update={"lightgbm": cfg.lightgbm.model_copy(update={"n_estimators": n_estimators,
                                                                             "learning_rate": 0.15})})  # fmt: skip


@pytest.fixture(scope="module")
def table(small_market: SimulatedMarket, tiers: TierConfig) -> pl.DataFrame:
    m = small_market
    return training_table(m.creators, m.posts, m.campaigns, m.outcomes, tiers)


def targets(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    return {k: frame[k].cast(pl.Float64).to_numpy() for k in KPI_NAMES}


@pytest.fixture(scope="module")
def forecaster(table: pl.DataFrame) -> KPIForecaster:
    return KPIForecaster(tiny_config()).fit(table.select(FEATURES), targets(table), time=table["as_of"].to_numpy(),
                                            groups=table["creator_id"].to_numpy())  # fmt: skip


def test_training_table_has_one_row_per_outcome(small_market: SimulatedMarket, table: pl.DataFrame) -> None:
    assert table.height == small_market.outcomes.height
    assert table["as_of"].is_sorted()
    assert list(table.columns[-len(FEATURES) :]) == FEATURES


def test_estimator_contract(table: pl.DataFrame) -> None:
    model = KPIModel(n_estimators=10, monotone=("followers",), calibration_share=0.2)
    assert model.get_params()["monotone"] == ("followers",)  # __init__ stores only
    with pytest.raises(NotFittedError):
        model.predict(table.select(FEATURES))
    fitted = model.fit(table.select(FEATURES), table["reach"].to_numpy(), time=table["as_of"].to_numpy())
    assert fitted is model and hasattr(model, "booster_") and hasattr(model, "bands_")
    assert model.n_features_in_ == len(FEATURES)
    twin = clone(model)
    assert not hasattr(twin, "booster_") and twin.get_params() == model.get_params()


def test_same_seed_same_forecast(table: pl.DataFrame) -> None:
    x, y = table.select(FEATURES), table["conversions"].to_numpy()
    a = KPIModel(n_estimators=20, random_state=3, calibration_share=0.2).fit(x, y).predict(x)
    b = KPIModel(n_estimators=20, random_state=3, calibration_share=0.2).fit(x, y).predict(x)
    np.testing.assert_array_equal(a, b)


def test_the_trees_do_not_depend_on_the_thread_count(table: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads follow the machine's load (lightgbm_threads): that must never change a model or a forecast."""
    import re

    x, y = table.select(FEATURES), table["conversions"].to_numpy()
    texts, preds = [], []
    for threads in ("1", "2"):
        monkeypatch.setenv("IE_LIGHTGBM_THREADS", threads)
        model = KPIModel(n_estimators=30, random_state=3, calibration_share=0.2, monotone=("audience_fit",)).fit(x, y)
        texts.append(re.sub(r"\[num_threads: \d+\]", "", model.booster_.model_to_string()))
        preds.append(model.predict(x))
    assert texts[0] == texts[1]
    np.testing.assert_array_equal(preds[0], preds[1])


def test_compiled_trees_split_rows_whatever_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """LightGBM's threads back off when other threads are running (they wait for each other at every split); the
    compiled trees' threads share nothing, so they take every usable CPU whatever the load, within a thread budget
    and a count the user forces."""
    import influencer_engine.modeling.estimator as est

    monkeypatch.delenv("IE_LIGHTGBM_THREADS", raising=False)
    monkeypatch.setattr(est, "usable_cpus", lambda: 4)
    monkeypatch.setattr(est, "_others_running", lambda looks: 3)  # a busy machine
    assert est.lightgbm_threads(4, looks=1) == 1
    assert est.split_threads(4) == 4 and est.split_threads(2) == 2
    with est.thread_budget(3):
        assert est.split_threads(4) == 3 and est.lightgbm_threads(4, looks=1) == 1
    monkeypatch.setenv("IE_LIGHTGBM_THREADS", "2")
    assert est.split_threads(4) == 2 and est.lightgbm_threads(4, looks=1) == 2
    monkeypatch.setenv("IE_LIGHTGBM_THREADS", "fixed")
    assert est.split_threads(3) == 3 and est.lightgbm_threads(3, looks=1) == 3


def test_reach_never_falls_as_real_followers_rise(forecaster: KPIForecaster, table: pl.DataFrame) -> None:
    rows = table.select(FEATURES).head(40)
    prev = None
    for scale in (0.5, 1.0, 2.0, 4.0, 16.0):
        x = rows.with_columns(
            (pl.col("followers") * scale).alias("followers"),
            (pl.col("real_followers_est") * scale).alias("real_followers_est"),
            (pl.col("log10_followers") + math.log10(scale)).alias("log10_followers"),
        )
        reach = forecaster.predict(x).mean["reach"]
        if prev is not None:
            assert np.all(reach >= prev * (1 - 1e-9))
        prev = reach


def test_better_audience_fit_never_lowers_conversions(forecaster: KPIForecaster, table: pl.DataFrame) -> None:
    rows = table.select(FEATURES).head(40)
    prev = None
    for fit in (0.0, 0.1, 0.3, 0.6, 1.0):
        x = rows.with_columns(*(pl.lit(fit).alias(c) for c in ("audience_fit", "fit_age", "fit_gender", "fit_country")))
        conv = forecaster.models_["conversions"].predict(x, np.zeros(x.height))  # the conversions trees alone
        if prev is not None:
            assert np.all(conv >= prev * (1 - 1e-9))
        prev = conv


def test_quantiles_are_ordered_and_reach_within_impressions(forecaster: KPIForecaster, table: pl.DataFrame) -> None:
    fc = forecaster.predict(table.select(FEATURES))
    for k in KPI_NAMES:
        q = fc.quantiles[k]
        assert q.shape == (table.height, 3)
        assert np.all(q[:, 0] <= q[:, 1]) and np.all(q[:, 1] <= q[:, 2]) and np.all(q >= 0)
    assert np.all(fc.mean["reach"] <= fc.mean["impressions"])


def test_conformal_bands_cover_their_level() -> None:
    rng = np.random.default_rng(0)
    mean = np.exp(rng.uniform(0, 8, 40_000))
    y = rng.poisson(mean * np.exp(rng.normal(0, 0.5, len(mean))))
    bands = ConformalBands.fit(y[:20_000].astype(float), mean[:20_000], (0.1, 0.5, 0.9), bins=5)
    q = bands.apply(mean[20_000:])
    inside = np.mean((y[20_000:] >= q[:, 0]) & (y[20_000:] <= q[:, 2]))
    assert 0.78 <= inside <= 0.82
    assert ConformalBands.from_dict(bands.to_dict()) == bands


def test_bands_per_history_bucket_cover_within_each_bucket() -> None:
    """Forecasts from few posts are noisier: pooled bands under-cover them and over-cover the well known; bands per
    history bucket hold their level in each bucket, and a bucket with few rows borrows its neighbours'."""
    from influencer_engine.modeling.intervals import HISTORY_BUCKETS, history_bucket

    rng = np.random.default_rng(1)
    n = 60_000
    history = rng.choice([2, 12, 35, 120], size=n).astype(float)
    sd = np.select([history <= 5, history <= 20, history <= 50], [1.2, 0.7, 0.45], 0.3)
    mean = np.exp(rng.uniform(2, 8, n))
    y = rng.poisson(mean * np.exp(rng.normal(0, sd))).astype(float)
    cal, new = slice(0, n // 2), slice(n // 2, n)
    pooled = ConformalBands.fit(y[cal], mean[cal], (0.1, 0.5, 0.9), bins=5)
    split = ConformalBands.fit(y[cal], mean[cal], (0.1, 0.5, 0.9), bins=5, history=history[cal])
    assert split.history_rows == ("own",) * 4
    bucket = history_bucket(history[new])
    for bands, spread in ((pooled, 0.10), (split, 0.025)):
        q = bands.apply(mean[new], history[new])
        inside = (y[new] >= q[:, 0]) & (y[new] <= q[:, 2])
        per_bucket = [inside[bucket == b].mean() for b in range(len(HISTORY_BUCKETS))]
        if bands is pooled:  # the thin-history bucket under-covers, the long-history one over-covers
            assert per_bucket[0] < 0.8 - spread and per_bucket[3] > 0.8 + spread
        else:
            assert all(abs(c - 0.8) <= spread for c in per_bucket), per_bucket
    # a known creator's band is narrower than a new one's at the same forecast
    one = np.array([1000.0, 1000.0])
    q = split.apply(one, np.array([2.0, 120.0]))
    assert q[0, 2] / q[0, 0] > q[1, 2] / q[1, 0]
    assert ConformalBands.from_dict(split.to_dict()) == split
    # 50 calibration rows with 0-5 posts: that bucket borrows the 6-20 rows
    few = np.concatenate([np.flatnonzero(history[cal] > 5), np.flatnonzero(history[cal] <= 5)[:50]])
    borrowed = ConformalBands.fit(y[few], mean[few], (0.1, 0.5, 0.9), bins=5, history=history[few])
    assert borrowed.history_rows == ("with neighbours", "own", "own", "own")


def test_bands_per_history_bucket_only_where_pooled_bands_miss_a_bucket() -> None:
    """``tolerance``: bands per bucket where the pooled ones miss a bucket's calibration rows by more than it (the
    thin-history bucket above), pooled bands where every bucket is within it (the same noise in every bucket);
    ``history_coverage`` says what the pooled bands held of each bucket, and survives the bundle's JSON."""
    rng = np.random.default_rng(2)
    n = 30_000
    history = rng.choice([2, 12, 35, 120], size=n).astype(float)
    mean = np.exp(rng.uniform(2, 8, n))
    for sd, split_expected in ((np.select([history <= 5], [1.0], 0.4), True), (np.full(n, 0.5), False)):
        y = rng.poisson(mean * np.exp(rng.normal(0, sd))).astype(float)
        bands = ConformalBands.fit(y, mean, (0.1, 0.5, 0.9), bins=5, history=history, tolerance=0.05)
        assert bool(bands.history) == split_expected and len(bands.history_coverage) == 4
        if split_expected:
            assert bands.history_coverage[0] < 0.75 and bands.history_rows == ("own",) * 4
        else:
            assert all(abs(c - 0.8) <= 0.05 for c in bands.history_coverage)
        assert ConformalBands.from_dict(bands.to_dict()) == bands
    # no tolerance: per bucket whatever the pooled bands hold, as before
    assert ConformalBands.fit(y, mean, (0.1, 0.5, 0.9), bins=5, history=history).history


def test_baselines(table: pl.DataFrame) -> None:
    cfg = load_model_config()
    b = Baselines.fit(table.select(FEATURES), targets(table), cfg.media_kit)
    x = table.select(FEATURES)
    np.testing.assert_allclose(b.predict("media_kit", x, "impressions"), x["followers"].to_numpy() * 0.157)
    tp = b.predict("tier_platform", x, "reach")
    assert np.all(np.isfinite(tp))
    tm = b.predict("trailing_median", x, "reach")
    has = x["reach_median_last20"].is_not_null().to_numpy()
    np.testing.assert_allclose(tm[has], x["reach_median_last20"].to_numpy()[has])
    np.testing.assert_allclose(tm[~has & x["views_median_last20"].is_null().to_numpy()
                                  & x["impressions_median_last20"].is_null().to_numpy()],
                               tp[~has & x["views_median_last20"].is_null().to_numpy()
                                  & x["impressions_median_last20"].is_null().to_numpy()])  # fmt: skip
    assert Baselines.from_dict(json.loads(json.dumps(b.to_dict()))) == b
    # same data in another row order, the same baselines to the bit (means summed in a fixed order)
    order = np.random.default_rng(0).permutation(table.height)
    shuffled = table[order]
    assert Baselines.fit(shuffled.select(FEATURES), targets(shuffled), cfg.media_kit) == b


def test_time_splits_train_before_test() -> None:
    t = np.array(sorted(np.datetime64("2025-01-01") + np.arange(100).astype("timedelta64[D]")))
    for tr, te in time_splits(t, 0.3, folds=3):
        assert t[tr].max() < t[te].min()
    assert sum(len(te) for _, te in time_splits(t, 0.3, folds=3)) == 30


def test_backtest_reports_every_kpi_and_method(table: pl.DataFrame, small_market: SimulatedMarket) -> None:
    truth = small_market.expected_outcomes.select(
        pl.concat_str(["campaign_id", "creator_id", "format"], separator=":").alias("request_id"), pl.col("^true_.*$")
    )
    r = backtest(table, tiny_config(), truth=truth)
    assert set(r.metrics) == set(KPI_NAMES)
    for d in r.metrics.values():
        assert set(d) == {"model", "media_kit", "trailing_median", "tier_platform"}
        assert 0.0 <= d["model"]["coverage_p10_p90"] <= 1.0
    assert r.rows["train"] + r.rows["test"] == table.height
    assert -1 <= r.per_dollar["model"] <= 1
    # the level a plan's totals stand on: forecast over observed (and true) sums of the test rows
    preds = r.predictions
    for kpi in ("reach", "conversions"):
        f, y = preds[f"model__{kpi}"].to_numpy(), preds[kpi].cast(pl.Float64).fill_null(np.nan).to_numpy()
        seen = np.isfinite(y)
        assert r.metrics[kpi]["model"]["sum_ratio"] == pytest.approx(f[seen].sum() / y[seen].sum())
        true_sum = preds[f"true_{kpi}"].sum()
        assert r.metrics[kpi]["model"]["sum_ratio_true"] == pytest.approx(f.sum() / true_sum)
    # the error, coverage and level by history bucket, tier, platform and the campaign's context (brand category,
    # month); each group's rows add up to at most the test rows, and its level is its rows' sums
    test_rows = preds.with_columns(pl.col("brand_category").cast(pl.String), pl.col("month").cast(pl.Int64))
    for by in ("history", "tier", "platform", "category", "month"):
        cells = [c for c in r.breakdown if c["by"] == by and c["kpi"] == "reach"]
        assert cells and sum(c["rows"] for c in cells) <= r.rows["test"]
        assert all(0 <= c["coverage_p10_p90"] <= 1 and c["mae_log1p_true"] >= 0 for c in cells)
        if by in ("category", "month"):
            c = cells[0]
            column = "brand_category" if by == "category" else "month"
            value = c["group"] if by == "category" else int(c["group"])
            rows = test_rows.filter((pl.col(column) == value) & pl.col("reach").is_not_null())
            assert c["sum_ratio_true"] == pytest.approx(rows["model__reach"].sum() / rows["true_reach"].sum())
    report = markdown_report({"world": r}, title="t")
    assert "level by the campaign's brand category and month" in report and "| month " in report
    # the learning curve trains on a share of the earlier campaigns, tested on the same later rows
    half = backtest(table, tiny_config(), truth=truth, train_share=0.5)
    assert half.rows["test"] == r.rows["test"] and 0.3 * r.rows["train"] < half.rows["train"] < 0.7 * r.rows["train"]


def test_per_cost_figures() -> None:
    fc = Forecast(
        mean={"impressions": np.array([10_000.0]), "engagements": np.array([500.0]), "clicks": np.array([50.0]),
              "conversions": np.array([2.0]), "revenue": np.array([200.0])},
        quantiles={k: np.array([[lo, mid, hi]]) for k, lo, mid, hi in (
            ("impressions", 5000, 9000, 20000), ("engagements", 200, 450, 900), ("clicks", 10, 40, 100),
            ("conversions", 0, 1, 5), ("revenue", 0, 100, 500))},
        levels=(0.1, 0.5, 0.9),
    )  # fmt: skip
    c = per_cost(fc, np.array([100.0]), emv_cpm_usd=12.0).row(0, named=True)
    assert c["cpm"] == pytest.approx(10.0) and c["cpe"] == pytest.approx(0.2) and c["cpc"] == pytest.approx(2.0)
    assert c["cpa"] == pytest.approx(50.0) and c["cpa_good"] == pytest.approx(20.0) and c["cpa_bad"] is None
    assert c["roas"] == pytest.approx(2.0) and c["emv"] == pytest.approx(120.0)


def test_explanations_add_up_and_read_as_words(forecaster: KPIForecaster, table: pl.DataFrame) -> None:
    row = table.select(FEATURES).head(1)
    contrib, margin = forecaster.contributions("conversions", row)
    model = forecaster.models_["conversions"]
    total = contrib.sum(axis=1) + margin + model.intercept_
    np.testing.assert_allclose(np.exp(total), forecaster.predict(row).mean["conversions"], rtol=1e-6)
    reasons = explain(forecaster, "conversions", row, target="18-34 in US", top=4)
    assert len(reasons) == 4
    assert all("conversions" in r.text and "%" in r.text for r in reasons)
    effects = [abs(math.log1p(r.effect)) for r in reasons]
    assert effects == sorted(effects, reverse=True)


def test_bundle_round_trip_and_refusals(forecaster: KPIForecaster, table: pl.DataFrame, tmp_path: Path) -> None:
    base = Baselines.fit(table.select(FEATURES), targets(table), forecaster.config.media_kit)
    info = TrainingInfo(data="test", rows_in=table.height, rows=table.height, first_campaign="a", last_campaign="b",
                        seed=0)  # fmt: skip
    out = save_bundle(forecaster, base, tmp_path / "b", fingerprint=fingerprint(table), metrics={}, training=info)
    loaded = load_bundle(out)
    x = table.select(FEATURES).head(200)
    a, b = forecaster.predict(x), loaded.forecaster.predict(x)
    for k in KPI_NAMES:
        np.testing.assert_allclose(a.mean[k], b.mean[k], rtol=1e-12)
        np.testing.assert_allclose(a.quantiles[k], b.quantiles[k], rtol=1e-12)
    assert not list(out.glob("*.pkl")) and not list(out.glob("*.pickle"))
    # a saved again bundle replaces the old one whole
    save_bundle(forecaster, base, out, fingerprint="x", metrics={}, training=info)
    assert load_bundle(out).manifest.training_data_fingerprint == "x"
    # the manifest is typed: a missing or mistyped key is refused with the key named, not a KeyError
    body = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for broken, key in (({k: v for k, v in body.items() if k != "kpis"}, "kpis"),
                        ({**body, "random_state": "seven"}, "random_state")):  # fmt: skip
        (out / "manifest.json").write_text(json.dumps(broken), encoding="utf-8")
        with pytest.raises(BundleError, match=key):
            load_bundle(out)
    (out / "manifest.json").write_text(json.dumps(body), encoding="utf-8")
    assert load_bundle(out).kpis == tuple(KPI_NAMES)
    # tampered model file
    f = out / "kpi_reach.txt"
    f.write_text(f.read_text(encoding="utf-8").replace("learning_rate", "learning_ratf", 1), encoding="utf-8")
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(out)
    # older schema
    save_bundle(forecaster, base, out, fingerprint="x", metrics={}, training=info)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["schema_version"] = SCHEMA_VERSION - 1
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="schema"):
        load_bundle(out)
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path / "nothing")


def test_feature_table_bad_input(table: pl.DataFrame) -> None:
    frame = table.select("request_id", *FEATURES).head(10)
    with pytest.raises(ContractError, match="audience_fit"):
        check_features(frame.drop("audience_fit"), FEATURES, source="f.parquet")
    bad = frame.with_columns(pl.col("platform").cast(pl.String)).with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("snapchat")).otherwise(pl.col("platform")).alias("platform"),
        pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise(pl.col("followers")).alias("followers"),
    )
    checked = check_features(bad, FEATURES, source="f.parquet")
    assert checked.valid.height + checked.rejects.height == checked.rows_in == 10
    reasons = dict(zip(checked.rejects["row"].to_list(), checked.rejects["reason"].to_list(), strict=True))
    assert reasons == {2: "unseen:platform=snapchat", 5: "null:followers"}
    with pytest.raises(ContractError, match="not a number"):
        check_features(frame.with_columns(pl.col("price").cast(pl.String)), FEATURES, source="f.parquet")


@pytest.mark.realdata
def test_next_post_on_real_instagram(real_data: Path, tmp_path: Path, tiers: TierConfig) -> None:
    from influencer_engine.evaluation.nextpost import next_post_backtest
    from influencer_engine.importers.instagram_posts import import_instagram_posts

    import_instagram_posts(real_data / "instagram_posts_2015_2020", tmp_path / "ig")
    r = next_post_backtest(tmp_path / "ig", tiers, n_estimators=100)
    assert r.rows["train"] > 0 and r.rows["test"] > 0
    assert r.rows["posts_scored"] == r.rows["train"] + r.rows["test"] + r.rows["without_earlier_post"]
    assert r.rows["posts_in"] == r.rows["posts_scored"] + r.rows["without_likes"]
    m = r.metrics
    assert m["model"]["mae_log1p"] < m["followers_x_tier_rate"]["mae_log1p"]
    assert m["model"]["mae_log1p"] < m["trailing_median_last20"]["mae_log1p"]
    # the set has captions: the caption score is used, and the ablation ends at the model's own figure
    assert r.caption_score and list(r.ablation.values())[-1] == m["model"]["mae_log1p"]
    assert set(r.by_half) == {"half_0", "half_1"}
    # P10-P90 bands calibrated out of fold: near 80% of the test posts, and every test post in one history bucket
    assert set(r.coverage) == {"pooled", "by_history", "auto"} and all(0.7 < v < 0.9 for v in r.coverage.values())
    assert sum(h["rows"] for h in r.by_history.values()) == r.rows["test"]
    assert set(r.by_history) <= {"0_5", "6_20", "21_50", "51_plus"}
    # the level ceiling is reported, and knowing the creator's level from later posts does not do worse than the model
    assert set(r.level_ceiling) == {"neighbours_median", "model_with_neighbours"}
    assert r.level_ceiling["model_with_neighbours"] > r.improvement_vs_trailing_median - 0.01


def test_next_post_without_captions_or_sponsorship(tmp_path: Path, tiers: TierConfig) -> None:
    """A set without captions (most exports) runs, and says it had no caption score; the post's own attributes
    read from the post table as it is."""
    from influencer_engine.config import load_simulator_config
    from influencer_engine.evaluation.nextpost import next_post_backtest, post_attributes
    from influencer_engine.simulate.generate import simulate_market
    from influencer_engine.simulate.world import write_world

    cfg = load_simulator_config()
    write_world(simulate_market(cfg, tiers, 300, 3), cfg, tiers, 3, tmp_path / "w")
    # hidden like counts: those posts have no engagement to score, and the report counts them
    posts_file = tmp_path / "w" / "posts.parquet"
    hidden = pl.read_parquet(posts_file).with_row_index("i")
    hidden.with_columns(pl.when(pl.col("i") % 50 == 0).then(None).otherwise(pl.col("likes")).alias("likes")).drop(
        "i").write_parquet(posts_file)  # fmt: skip
    r = next_post_backtest(tmp_path / "w", tiers, n_estimators=30, ablation=False)
    assert r.rows["without_likes"] == (hidden.height + 49) // 50
    assert not r.caption_score and r.ablation == {}
    assert sum(h["rows"] for h in r.by_history.values()) == r.rows["test"] and 0.5 < r.coverage["by_history"] < 1.0
    assert r.rows["posts_scored"] == r.rows["train"] + r.rows["test"] + r.rows["without_earlier_post"]
    assert r.rows["posts_in"] == r.rows["posts_scored"] + r.rows["without_likes"]
    posts = pl.DataFrame({"post_id": ["a", "b"], "posted_at": [datetime(2024, 3, 4, 13, tzinfo=UTC)] * 2,
                          "caption": ["Hi #one #two @x\nbye", None]})  # fmt: skip
    a = post_attributes(posts)
    assert a.row(0, named=True) == {"post_id": "a", "post_hour": 13, "post_weekday": 1, "post_sponsored": None,
                                    "post_caption_chars": 19.0, "post_hashtags": 2.0, "post_mentions": 1.0,
                                    "post_caption_lines": 2.0}  # fmt: skip
    assert a.row(1, named=True)["post_caption_chars"] is None


def test_next_post_ratio_booster_follows_levels_past_the_training_range(tmp_path: Path, tiers: TierConfig) -> None:
    """Every creator's engagement grows x20 a year: the test period's levels lie above anything the training period
    saw. A booster of the level cannot extrapolate there; the one of the ratio to the creator's trailing median can,
    and the model averages the two (RESIDUAL_WEIGHT on the ratio)."""
    from influencer_engine.config import load_simulator_config
    from influencer_engine.evaluation.nextpost import RESIDUAL_WEIGHT, next_post_backtest
    from influencer_engine.simulate.generate import simulate_market
    from influencer_engine.simulate.world import write_world

    cfg = load_simulator_config()
    write_world(simulate_market(cfg, tiers, 300, 3), cfg, tiers, 3, tmp_path / "w")
    posts = pl.read_parquet(tmp_path / "w" / "posts.parquet")
    growth = ((pl.col("posted_at") - pl.col("posted_at").min()).dt.total_seconds() / (365.25 * 86400) * 3.0).exp()
    posts.with_columns(
        *((pl.col(c).cast(pl.Float64) * growth).round().cast(posts.schema[c]).alias(c) for c in ("likes", "comments"))
    ).write_parquet(tmp_path / "w" / "posts.parquet")
    r = next_post_backtest(tmp_path / "w", tiers, n_estimators=30, ablation=False)
    b = r.boosters
    assert b["model"] == r.metrics["model"]["mae_log1p"] and 0.5 < RESIDUAL_WEIGHT < 1.0
    assert b["ratio"] < 0.8 * b["level"] and b["model"] < b["level"]
    assert b["model"] < r.metrics["trailing_median_last20"]["mae_log1p"]
    # levels that grow: the median of the posts about each post (later ones too) beats the trailing median
    assert r.level_ceiling["neighbours_median"] > 0.05


def test_next_post_neighbours_median_reads_the_creators_other_posts_about_each_post() -> None:
    """The level ceiling's median: the creator's NEIGHBOURS posts before and after, never the post itself nor another
    creator's, whatever the frame's row order."""
    from influencer_engine.evaluation.nextpost import NEIGHBOURS, _neighbours_median

    n = 2 * NEIGHBOURS + 5
    frame = pl.DataFrame({
        "request_id": [f"a{i:02d}" for i in range(n)] + ["b0", "c0", "c1"],
        "creator_id": ["a"] * n + ["b", "c", "c"],
        "as_of": [datetime(2024, 1, 1 + i, tzinfo=UTC) for i in range(n)] + [datetime(2024, 1, 1, tzinfo=UTC)] * 3,
        "__y": [float(np.expm1(i)) for i in range(n)] + [5.0, 1.0, 3.0],
    })  # fmt: skip
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1)
    got = dict(zip(shuffled["request_id"], _neighbours_median(shuffled).to_list(), strict=True))
    assert got["b0"] is None or np.isnan(got["b0"])  # a creator with one post has no neighbours
    assert got["c0"] == pytest.approx(3.0) and got["c1"] == pytest.approx(1.0)
    # the first post: the median of the 10 after it (log1p 1..10 -> 5.5); one in the middle: 10 each side
    assert np.log1p(got["a00"]) == pytest.approx(np.median(np.arange(1, NEIGHBOURS + 1)))
    mid = NEIGHBOURS + 2
    around = [i for i in range(mid - NEIGHBOURS, mid + NEIGHBOURS + 1) if i != mid]
    assert np.log1p(got[f"a{mid:02d}"]) == pytest.approx(np.median(around))


def test_shifted_world_is_deterministic_and_bounded() -> None:
    from influencer_engine.config import load_simulator_config
    from influencer_engine.simulate.shift import shifted_config

    base = load_simulator_config()
    a, fa = shifted_config(base, 8)
    b, fb = shifted_config(base, 8)
    assert a == b and fa == fb and a != base
    for fac in fa.values():
        for v in fac.values() if isinstance(fac, dict) else [fac]:
            assert math.exp(-0.3) - 1e-12 <= v <= math.exp(0.3) + 1e-12


def test_balance_corrects_a_forecast_that_runs_low_and_keeps_its_order() -> None:
    rng = np.random.default_rng(4)
    truth = np.exp(rng.normal(2.0, 1.2, 20_000))
    y = rng.poisson(truth).astype(np.float64)
    # a forecast that runs 20% low overall and 40% low at the top (what a shrunk booster does out of fold)
    forecast = truth * np.where(truth > np.quantile(truth, 0.9), 0.6, 0.8) * np.exp(rng.normal(0, 0.2, truth.size))
    b = Balance.fit(y, forecast)
    corrected = b.apply(forecast)
    assert corrected.sum() == pytest.approx(y.sum(), rel=0.05)
    top = forecast > np.quantile(forecast, 0.9)
    assert y[top].sum() / corrected[top].sum() == pytest.approx(1.0, abs=0.1)
    grid = np.geomspace(forecast.min(), forecast.max(), 500)
    assert np.all(np.diff(b.apply(grid)) > 0)  # a higher raw forecast is never corrected below a lower one
    assert Balance.from_dict(b.to_dict()) == b
    few = Balance.fit(y[:50], forecast[:50])  # too few rows to measure: no correction
    np.testing.assert_allclose(few.apply(forecast[:50]), forecast[:50])


def test_balance_level_carries_a_standard_error_clustered_by_creator() -> None:
    """The overall ratio's standard error counts a creator's campaigns as one draw (they share the creator's error)
    and shrinks as creators are added; old bundles without it read as 0."""
    rng = np.random.default_rng(6)

    def rows(creators: int, per: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        base = np.repeat(np.exp(rng.normal(2.0, 1.0, creators)), per)
        own = np.repeat(np.exp(rng.normal(-0.18, 0.6, creators)), per)  # each creator's error, mean about 1
        return rng.poisson(base * own).astype(np.float64), base, np.repeat(np.arange(creators), per).astype(str)

    y, f, g = rows(400)
    clustered, plain = Balance.fit(y, f, groups=g), Balance.fit(y, f)
    # the level deals whole creators into its median of means; where no creator stands out, that is the ratio of sums
    assert clustered.overall == pytest.approx(plain.overall, abs=0.01)
    assert clustered.overall == pytest.approx(math.log(y.sum() / f.sum()), abs=0.01)
    assert clustered.overall_se > 1.5 * plain.overall_se > 0
    y10, f10, g10 = rows(4_000)
    assert Balance.fit(y10, f10, groups=g10).overall_se == pytest.approx(clustered.overall_se / np.sqrt(10), rel=0.35)
    assert Balance.from_dict(clustered.to_dict()) == clustered
    old = {k: v for k, v in clustered.to_dict().items() if k != "overall_se"}
    assert Balance.from_dict(old).overall_se == 0.0


def test_balance_level_is_not_decided_by_one_creator() -> None:
    """The level is a median of means over creators: one creator whose campaigns delivered fifteen times their
    forecast (a fifth of every outcome) moves the ratio of sums by half, the level by a few percent. Deterministic;
    with too few creators for three groups it is the plain ratio of sums."""
    from influencer_engine.modeling.balance import MOM_MIN_CREATORS

    rng = np.random.default_rng(9)
    creators, per = 3_000, 3
    f = np.repeat(np.exp(rng.normal(1.0, 1.0, creators)), per)
    g = np.repeat(np.arange(creators), per).astype(str)
    y = rng.poisson(1.2 * f).astype(np.float64)  # the forecasts run 20% low for every creator
    base = Balance.fit(y, f, groups=g)
    assert base.overall == pytest.approx(math.log(1.2), abs=0.03)
    star = g == "7"
    y_star = y.copy()
    y_star[star] = 15 * 1.2 * f[star] * (0.25 * y.sum() / (15 * 1.2 * f[star].sum()))  # a fifth of all outcomes
    f_star = f.copy()
    f_star[star] = y_star[star] / 15
    plain = math.log(y_star.sum() / f_star.sum())
    robust = Balance.fit(y_star, f_star, groups=g)
    assert plain - base.overall > 0.15  # the ratio of sums follows the one creator
    assert abs(robust.overall - base.overall) < 0.05  # the level does not
    assert Balance.fit(y_star, f_star, groups=g) == robust  # the same rows give the same correction
    few = 3 * MOM_MIN_CREATORS - 1  # two groups at most: the plain ratio of sums
    sel = np.isin(g, [str(i) for i in range(few)])
    assert Balance.fit(y[sel], f[sel], groups=g[sel]).overall == pytest.approx(math.log(y[sel].sum() / f[sel].sum()))


def test_per_dollar_balance_of_each_platform_reads_its_own_top() -> None:
    """A brief limited to one platform picks that platform's top forecasts per dollar. On both platforms the top 10%
    by forecast per dollar deliver 0.6 of their forecast, but YouTube's value per dollar sits far below TikTok's, so
    the pooled bins put all its rows in the lowest bin: the pooled correction misses YouTube's top, the platform's own
    bins (about the pooled level) correct it. A platform with too few rows keeps the pooled correction; the segments
    survive a round trip through the bundle's dict."""
    from influencer_engine.modeling.balance import MIN_SEGMENT_ROWS

    rng = np.random.default_rng(5)
    n = 6_000
    platform = np.where(np.arange(n) < n // 2, "tiktok", "youtube")
    price = np.where(platform == "tiktok", 1.0, 20.0) * np.exp(rng.normal(0, 0.5, n))
    f = np.exp(rng.normal(3.0, 1.0, n))
    pd = f / price
    top = np.zeros(n, dtype=bool)
    for p in ("tiktok", "youtube"):
        sel = platform == p
        top |= sel & (pd >= np.quantile(pd[sel], 0.9))
    delivered = np.where(top, 0.6, 1.0)
    y = rng.poisson(f * delivered).astype(np.float64)
    g = np.arange(n).astype(str)
    pooled = Balance.fit(y, f, quantiles=(0.5, 0.9), price=price, groups=g)
    own = Balance.fit(y, f, quantiles=(0.5, 0.9), price=price, groups=g, segments=platform)
    assert set(own.segments) == {"tiktok", "youtube"} and not pooled.segments
    yt_top = top & (platform == "youtube")

    def level(b: Balance, rows: npt.NDArray[np.bool_]) -> float:
        return float(y[rows].sum() / b.apply(f[rows], price[rows], platform[rows]).sum())

    assert abs(level(pooled, yt_top) - 1.0) > 0.3  # the pooled bins run YouTube's top ~1.6x over what it delivered
    assert level(own, yt_top) == pytest.approx(1.0, abs=0.1)
    assert level(own, platform == "tiktok") == pytest.approx(1.0, abs=0.1)
    # without a platform per row (a caller that has none) the pooled correction applies
    assert np.array_equal(own.apply(f, price), pooled.apply(f, price))
    assert Balance.from_dict(json.loads(json.dumps(own.to_dict()))) == own
    assert all(b.transfer == 0.1 for b in own.with_transfer(0.1).segments.values())  # carried over with the pooled
    few = (platform == "tiktok") | (np.arange(n) < n // 2 + MIN_SEGMENT_ROWS - 1)
    assert set(Balance.fit(y[few], f[few], price=price[few], groups=g[few], segments=platform[few]).segments) == {
        "tiktok"
    }


def test_a_correction_carries_over_to_a_model_whose_level_differs() -> None:
    """A correction measured on fold models applies to a final model whose forecasts run r times theirs as it would to
    theirs: the final model's F is corrected as the folds' F / r, then divided by r. ``transfer_of`` reads r from the
    sums of forecasts of rows none trained on (0 with too few rows, held within its limit)."""
    from influencer_engine.modeling.balance import MIN_BIN_ROWS, TRANSFER_LIMIT, transfer_of

    rng = np.random.default_rng(8)
    truth = np.exp(rng.normal(2.0, 1.2, 20_000))
    y = rng.poisson(truth).astype(np.float64)
    fold = truth * np.where(truth > np.quantile(truth, 0.9), 0.6, 0.8) * np.exp(rng.normal(0, 0.2, truth.size))
    b = Balance.fit(y, fold)
    r = 1.15
    final = fold * r  # a model trained on more rows: its forecasts run higher than the folds'
    carried = b.with_transfer(math.log(r))
    np.testing.assert_allclose(carried.apply(final), b.apply(fold), rtol=1e-12)
    assert carried.apply(final).sum() == pytest.approx(y.sum(), rel=0.05)  # the level holds for the final model
    assert b.apply(final).sum() > 1.1 * y.sum()  # without the carry-over it would promise r times too much
    assert Balance.from_dict(carried.to_dict()) == carried
    assert Balance.from_dict({k: v for k, v in b.to_dict().items() if k != "transfer"}).transfer == 0.0
    folds = [fold[:5_000] * 0.95, fold[:5_000] * 1.05]
    assert transfer_of(final[:5_000], folds) == pytest.approx(math.log(r), abs=1e-9)
    assert transfer_of(final[: MIN_BIN_ROWS - 1], [f[: MIN_BIN_ROWS - 1] for f in folds]) == 0.0
    assert transfer_of(final[:5_000] * 10, folds) == pytest.approx(TRANSFER_LIMIT)


def test_forecaster_carries_its_correction_over_by_the_level_of_unlabeled_rows(
    table: pl.DataFrame, small_market: SimulatedMarket, tiers: TierConfig
) -> None:
    """With rows no model trains on (the market's creators under past campaigns' contexts), each KPI's correction
    carries the final funnel's level against its fold funnels' on them; the bands are measured as before."""
    from influencer_engine.modeling.balance import transfer_of
    from influencer_engine.training.data import TrainingTable, market_rows

    m = small_market
    requests = training_requests(m.campaigns.lazy(), m.outcomes.lazy()).collect()
    tt = TrainingTable(frame=table, source="memory", rows_in=table.height, rejects=pl.DataFrame(),
                       inputs={"creators": m.creators, "posts": m.posts, "requests": requests})  # fmt: skip
    market = market_rows(tt, tiers, seed=0, contexts=3, per_context=150)
    assert market is not None and market.height == 3 * min(150, m.creators.height)
    assert market["as_of"].n_unique() == 3 and market["format"].is_not_null().all()  # each creator's base format
    assert market["as_of"].min() > table["as_of"].max()  # as a plan scores them: a brief after the data end
    assert not set(market["request_id"]) & set(table["request_id"])
    X, U = table.select(FEATURES), market.select(FEATURES)
    kw = {"time": table["as_of"].to_numpy(), "groups": table["creator_id"].to_numpy()}
    with_u = KPIForecaster(tiny_config()).fit(X, targets(table), unlabeled=U, **kw)
    plain = KPIForecaster(tiny_config()).fit(X, targets(table), **kw)
    final = with_u._chain(U)
    for kpi, model in with_u.models_.items():
        want = transfer_of(final[kpi], with_u.fold_unlabeled_[kpi])
        assert model.balance_.transfer == pytest.approx(want) and want != 0.0, kpi
        assert plain.models_[kpi].balance_.transfer == 0.0
        # the same correction as measured and the same bands: only the carry-over differs
        assert model.balance_.with_transfer(0.0) == plain.models_[kpi].balance_, kpi
        np.testing.assert_allclose(model.predict_quantiles(X, np.ones(X.height)),
                                   plain.models_[kpi].predict_quantiles(X, np.ones(X.height)))  # fmt: skip


def test_train_warns_when_the_data_pin_a_level_down_poorly() -> None:
    from types import SimpleNamespace

    from influencer_engine.cli.models import balance_summary, uncertain_levels

    def predictor(**se: float) -> Any:
        def balance(v: float) -> Balance:  # v < 0: measured on too few rows; v >= 1: a correction at its limit, x2
            level = math.log(2.0) if v >= 1 else 0.1
            return Balance((0.0,), (level,), level, 5_000 if v >= 0 else 50, "forecast", max(v % 1, 0.0))

        models = {k: SimpleNamespace(balance_=balance(v)) for k, v in se.items()}
        return SimpleNamespace(forecaster=SimpleNamespace(models_=models))

    tight = predictor(reach=0.05, conversions=0.09)
    assert uncertain_levels(tight) == ""
    assert balance_summary(tight) == "reach x1.11 +-5%, conversions x1.11 +-9%"
    loose = uncertain_levels(predictor(reach=0.05, conversions=0.3, revenue=-1, clicks=1.05))
    assert "conversions (+-30%)" in loose and "revenue (not measured)" in loose and "reach" not in loose
    assert "clicks (+-5%, x2.00 is the correction's limit)" in loose
    assert "--prior" in loose
    assert balance_summary(predictor(revenue=-1)) == "revenue not measured (50 rows)"
    from influencer_engine.cli.models import transfer_summary

    assert transfer_summary(tight) == ""  # trained without unlabeled rows: nothing carried over
    carried = SimpleNamespace(forecaster=SimpleNamespace(models_={
        "reach": SimpleNamespace(balance_=Balance((0.0,), (0.1,), 0.1, 5_000).with_transfer(math.log(1.04))),
        "clicks": SimpleNamespace(balance_=Balance((0.0,), (0.1,), 0.1, 5_000))}))  # fmt: skip
    assert transfer_summary(carried) == "reach x1.040"


def test_per_dollar_balance_lowers_the_top_per_dollar_and_keeps_its_order() -> None:
    """A forecast that runs high where its value per dollar stands out (the winner's curse of a ranking) is corrected
    there, by the ratio of sums in its bins of forecast per dollar; the corrected value per dollar keeps its order."""
    rng = np.random.default_rng(5)
    n = 20_000
    truth = np.exp(rng.normal(3.0, 1.0, n))
    price = np.exp(rng.normal(4.0, 0.8, n))
    y = rng.poisson(truth).astype(np.float64)
    noisy = truth * np.exp(rng.normal(0, 0.4, n))  # the rows whose forecast per dollar stands out are those it ran high
    per = noisy / price
    top = per > np.quantile(per, 0.98)
    b = Balance.fit(y, noisy, quantiles=PER_DOLLAR_QUANTILES, price=price)
    assert b.key == "per_dollar"
    before = y[top].sum() / noisy[top].sum()
    assert before < 0.9  # the premise: the top per dollar ran high
    corrected = b.apply(noisy, price)
    assert y[top].sum() / corrected[top].sum() == pytest.approx(1.0, abs=max(0.5 * (1 - before), 0.05))
    order = np.argsort(per)
    assert np.all(np.diff(corrected[order] / price[order]) >= -1e-9 * (corrected / price).max())
    assert Balance.from_dict(b.to_dict()) == b
    np.testing.assert_allclose(b.apply(noisy), noisy)  # no prices: nothing to key on, no correction
    unpriced = price.copy()
    unpriced[:10] = np.nan
    np.testing.assert_allclose(b.apply(noisy, unpriced)[:10], noisy[:10])


def test_error_split_recovers_creator_and_campaign_shares() -> None:
    """Residuals made of a creator effect, a campaign effect and noise: pairs of one creator in two campaigns measure
    the first, pairs of two creators in one campaign the second."""
    rng = np.random.default_rng(6)
    creators, campaigns, rows = 3_000, 800, 12_000
    c = rng.integers(0, creators, rows)
    k = rng.integers(0, campaigns, rows)
    a, b, e = 0.1, 0.05, 0.6  # variances: creator, campaign, noise
    forecast = np.exp(rng.normal(6.0, 1.0, rows))
    log_y = (np.log(forecast) + rng.normal(0, np.sqrt(a), creators)[c] + rng.normal(0, np.sqrt(b), campaigns)[k]
             + rng.normal(0, np.sqrt(e), rows))  # fmt: skip
    split = ErrorSplit.fit(np.expm1(log_y), np.expm1(np.log(forecast)), c, k)
    total = a + b + e
    assert split.creator == pytest.approx(a / total, abs=0.03)
    assert split.common == pytest.approx(b / total, abs=0.02)
    assert ErrorSplit.from_dict(split.to_dict()) == split
    alone = ErrorSplit.fit(np.expm1(log_y), forecast, np.arange(rows), k)  # nobody hired twice: own error unknown
    assert alone.creator_pairs < MIN_PAIRS and alone.creator == pytest.approx(1.0 - alone.common)
    assert ErrorSplit() == ErrorSplit.from_dict(None)


def test_expected_error_measures_the_forecasts_error_about_known_expected_values() -> None:
    """Where the expected values are known (simulated data), the share of each band that is the forecast's error
    about them is their error's variance over the band's, and the part common to a campaign comes from pairs; with
    too few known values nothing is claimed."""
    rng = np.random.default_rng(8)
    creators, campaigns, rows = 3_000, 600, 6_000
    c = rng.integers(0, creators, rows)
    k = rng.integers(0, campaigns, rows)
    forecast = np.exp(rng.normal(8.0, 0.5, rows))  # large counts: log1p is about log
    own, shared, band_sd = 0.09, 0.03, 1.0  # variances of the error about the expected value; the band's log sd
    true = forecast * np.exp(rng.normal(0, np.sqrt(own), rows) + rng.normal(0, np.sqrt(shared), campaigns)[k])
    z = 1.2815515655446004
    quantiles = np.column_stack([forecast * np.exp(-z * band_sd), forecast, forecast * np.exp(z * band_sd)])
    assert band_variance(quantiles) == pytest.approx(np.full(rows, band_sd**2), rel=0.02)
    error = ExpectedError.fit(true, forecast, quantiles, c, k)
    assert error.rows == rows
    assert error.share == pytest.approx((own + shared) / band_sd**2, abs=0.02)
    assert error.common == pytest.approx(shared / (own + shared), abs=0.06)
    assert ExpectedError.from_dict(error.to_dict()) == error
    few = ExpectedError.fit(true[: MIN_EXPECTED_ROWS - 1], forecast[: MIN_EXPECTED_ROWS - 1],
                            quantiles[: MIN_EXPECTED_ROWS - 1], c[: MIN_EXPECTED_ROWS - 1],
                            k[: MIN_EXPECTED_ROWS - 1])  # fmt: skip
    assert few.share is None and few.rows == MIN_EXPECTED_ROWS - 1
    assert ExpectedError.from_dict(None) == ExpectedError() and ExpectedError().share is None
    exact = ExpectedError.fit(forecast, forecast, quantiles, c, k)  # forecasts equal to the truth: no error
    assert exact.share == pytest.approx(0.0, abs=1e-9)


def test_sum_covariances_read_what_creators_share_on_the_scale_of_sums() -> None:
    """A level missed for a whole segment (platform and tier) and one missed for a whole campaign come back as the
    relative covariances of sums that pairs of other creators show, each without the other; a level missed for one
    creator alone is not shared; too few pairs of a kind claim nothing."""
    rng = np.random.default_rng(5)
    creators, campaigns, segments, rows = 8_000, 2_000, 12, 20_000
    c = rng.integers(0, creators, rows)
    k = rng.integers(0, campaigns, rows)
    seg = (c % segments).astype(str)  # a creator's segment is fixed
    forecast = np.exp(rng.normal(3.0, 1.0, rows))
    s_seg, s_camp, s_own = 0.25, 0.15, 0.5  # log sds: segment, campaign, the creator's own
    levels = rng.normal(0, s_seg, segments)
    briefs = rng.normal(0, s_camp, campaigns)
    true = forecast * np.exp(levels[c % segments] + briefs[k] + rng.normal(0, s_own, creators)[c]
                             - (s_seg**2 + s_camp**2 + s_own**2) / 2)  # fmt: skip
    segment, context = sum_covariances(true, forecast, seg, k, c)
    assert segment is not None and context is not None
    # 12 segments are a small sample of levels: compare with the squared misses drawn, not with the population's (a
    # campaign's pairs span segments, whose mean miss is shared by all: the level missed for every creator)
    seg_miss, brief_miss = np.exp(levels - s_seg**2 / 2), np.exp(briefs - s_camp**2 / 2)
    assert segment == pytest.approx(float(np.mean((seg_miss * brief_miss.mean() - 1.0) ** 2)), rel=0.3)
    assert context == pytest.approx(float(np.mean((brief_miss * seg_miss.mean() - 1.0) ** 2)), rel=0.3)
    own_only = forecast * np.exp(rng.normal(0, s_own, creators)[c] - s_own**2 / 2)
    assert all(v is not None and v < 0.01 for v in sum_covariances(own_only, forecast, seg, k, c))
    assert sum_covariances(true[:20], forecast[:20], seg[:20], k[:20], c[:20]) == (None, None)
    z = 1.2815515655446004
    q = np.column_stack([forecast * np.exp(-z), forecast, forecast * np.exp(z)])
    error = ExpectedError.fit(true, forecast, q, c, k, seg)
    assert (error.segment, error.context) == (segment, context)
    assert ExpectedError.from_dict(error.to_dict()) == error
    assert ExpectedError.fit(true, forecast, q, c, k).segment is None  # no segments given: not measured


def test_expected_errors_need_known_expected_values() -> None:
    """The backtest's predictions measure the error about expected values only where they carry the truth (simulated
    data) and name each row's creator and campaign; real outcomes hold the delivery's luck too: nothing is claimed."""
    from influencer_engine.modeling.backtest import expected_errors

    rng = np.random.default_rng(2)
    n = 400
    f = np.exp(rng.normal(5.0, 1.0, n))
    preds = pl.DataFrame({
        "creator_id": [f"c{i % 150}" for i in range(n)], "campaign_id": [f"k{i // 8}" for i in range(n)],
        "model__reach": f, "model__reach_p10": f * 0.4, "model__reach_p50": f * 0.9, "model__reach_p90": f * 2.0,
    })  # fmt: skip
    assert expected_errors(preds) == {}  # observed outcomes only
    with_truth = preds.with_columns(true_reach=pl.Series(f * np.exp(rng.normal(0.0, 0.3, n))))
    got = expected_errors(with_truth)
    assert set(got) == {"reach"} and got["reach"].rows == n and got["reach"].share is not None
    assert expected_errors(with_truth.drop("campaign_id")) == {}


def test_forecaster_means_are_corrected_out_of_fold(forecaster: KPIForecaster, table: pl.DataFrame) -> None:
    """Each KPI carries the correction its out-of-fold forecasts measured; outputs are raw forecasts times it, while
    the funnel's offsets stay raw (what the downstream models were trained on)."""
    X = table.select(FEATURES)
    raw = forecaster._chain(X)
    mean = forecaster.predict(X).mean
    for kpi, model in forecaster.models_.items():
        assert model.balance_.rows > 0, kpi
        assert model.per_dollar_.key == "per_dollar", kpi
        expected = model.balanced(raw[kpi], price_of(X), platform_of(X))
        if kpi == "reach":
            expected = np.minimum(expected, mean["impressions"])
        np.testing.assert_allclose(mean[kpi], expected, rtol=1e-9)
    folds = fold_of(table["creator_id"].to_numpy(), table.height, 3, 0)
    per_creator = pl.DataFrame({"c": table["creator_id"], "f": folds}).group_by("c").agg(pl.col("f").n_unique())
    assert per_creator["f"].max() == 1  # a creator's rows share a fold


def test_dask_training_sees_its_workers_when_the_cached_identity_lists_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's background refresh (every 2 s) leaves a cached identity with no workers: a fit must not read it.

    CI once failed with "Need array(s) to concatenate": the workers were read from ``client.scheduler_info()``
    just after the refresh had emptied them, so the rows were split over no worker.
    """
    distributed = pytest.importorskip("distributed")
    from influencer_engine.training.distributed import train_booster

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = x[:, 0] * 2.0 + rng.normal(scale=0.1, size=400)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        monkeypatch.setattr(client, "scheduler_info", lambda *a, **k: {"workers": {}})
        params = {"objective": "regression", "learning_rate": 0.3, "num_leaves": 7, "min_data_in_leaf": 5, "seed": 1}
        booster = train_booster(client, params, x, y, np.zeros(400), ["a", "b", "c"], [], 20)
    assert booster.num_trees() == 20
    assert np.corrcoef(booster.predict(x), y)[0, 1] > 0.9


def test_relative_deviance_weighs_every_creator_alike_whatever_its_size() -> None:
    """`ie tune`'s objective: the plain deviance grows with the counts, so the largest rows decide it; the relative
    one is the same at any scale, and it ranks a forecast that is 20% off on a small creator as worse as one that is
    20% off on a large one."""
    rng = np.random.default_rng(0)
    mu = np.exp(rng.uniform(2, 5, 500))
    y = rng.poisson(mu).astype(np.float64)
    pred = mu * np.exp(rng.normal(0, 0.2, mu.size))
    assert relative_poisson_deviance(mu, mu) == pytest.approx(0.0, abs=1e-12)
    big = 1000.0
    assert poisson_deviance(y * big, pred * big) == pytest.approx(big * poisson_deviance(y, pred), rel=1e-9)
    assert relative_poisson_deviance(y * big, pred * big) == pytest.approx(relative_poisson_deviance(y, pred), rel=1e-9)
    small_off = np.array([10.0, 1e5]), np.array([12.0, 1e5])  # the small creator's forecast 20% high
    large_off = np.array([10.0, 1e5]), np.array([10.0, 1.2e5])  # the large one's
    assert relative_poisson_deviance(*small_off) == pytest.approx(relative_poisson_deviance(*large_off), rel=0.01)
    assert poisson_deviance(*large_off) > 1000 * poisson_deviance(*small_off)
    zeros = relative_poisson_deviance(np.array([0.0, 3.0]), np.array([0.5, 3.0]))  # a zero count is a valid outcome
    assert zeros == pytest.approx(2 * 0.5 / 0.5 / 2)


def test_tune_prunes_trials_after_equal_boosting_not_equal_iterations() -> None:
    """`ie tune` reports to Optuna when a trial's iterations x learning rate cross each whole unit: trials of any
    learning rate are compared after the same amount of boosting."""
    from types import SimpleNamespace

    from influencer_engine.training.tune import _pruning_callback

    class Trial:
        def __init__(self) -> None:
            self.steps: list[tuple[int, float]] = []

        def report(self, value: float, step: int) -> None:
            self.steps.append((step, value))

        def should_prune(self) -> bool:
            return False

    seen: dict[float, list[tuple[int, float]]] = {}
    for lr in (0.1, 0.02):
        trial = Trial()
        callback = _pruning_callback(trial, float, lr, unit=2.0)
        for i in range(200):
            callback(SimpleNamespace(iteration=i, model=i + 1))
        seen[lr] = trial.steps
    assert seen[0.1] == [(k, 20.0 * k) for k in range(1, 11)]  # every 20 iterations at 0.1
    assert seen[0.02] == [(1, 100.0), (2, 200.0)]  # every 100 at 0.02


def test_planner_evaluation_trains_each_shifted_world_with_the_models_own_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`ie evaluate --planner --shifted-seed N` judges a bundle's settings (a tuned one's overrides among them) on a
    world it has not seen: the model trained inside that world must use them, not the repository's config."""
    from types import SimpleNamespace

    from influencer_engine.evaluation import run

    cfg = load_model_config(None)
    overrides = {"revenue": {"num_leaves": 13, "n_estimators": 100}}
    predictor = SimpleNamespace(forecaster=SimpleNamespace(config=cfg, overrides=overrides, random_state=5))
    seen: dict[str, Any] = {}

    def fake_train(data: Path, out: Path, config: Any, tiers: Any, **kw: Any) -> None:
        seen.update(config=config, **kw)

    evaluation = SimpleNamespace(to_dict=lambda: {})
    monkeypatch.setattr(run, "shifted_world", lambda s, n, out, tiers: (tmp_path / f"w{s}", {}))
    monkeypatch.setattr(run, "train_models", fake_train)
    monkeypatch.setattr(run, "load_bundle", lambda path: "bundle")
    monkeypatch.setattr(run, "evaluate_planner", lambda *a, **k: evaluation)
    monkeypatch.setattr(run, "summary_lines", lambda ev: [])
    run.evaluate_planners(predictor, load_tier_config(), load_planner_config(), tmp_path, shifted_seeds=[3],  # type: ignore[arg-type]
                          seed=0)  # fmt: skip
    assert seen["config"] is cfg and seen["overrides"] == overrides and seen["seed"] == 5


def test_model_matrix_is_row_major_with_codes_nan_for_null_and_finite_infinities() -> None:
    """The matrix the trees read: one float64 row per frame row (row-major, writable), categories as their codes,
    nulls as NaN, and infinities as the largest finite doubles (as numpy's nan_to_num gives them)."""
    frame = pl.DataFrame({"platform": ["tiktok", None, "youtube"], "followers": [10, None, 30],
                          "x": [float("inf"), -float("inf"), 0.5]})  # fmt: skip
    m = to_matrix(frame, ["x", "platform", "followers"])
    assert m.dtype == np.float64 and m.flags["C_CONTIGUOUS"] and m.flags["WRITEABLE"] and m.shape == (3, 3)
    big = np.finfo(np.float64).max
    assert m[:, 0].tolist() == [big, -big, 0.5]
    codes = CATEGORIES_OF["platform"]
    assert m[0, 1] == codes.index("tiktok") and np.isnan(m[1, 1]) and m[2, 1] == codes.index("youtube")
    assert m[0, 2] == 10.0 and np.isnan(m[1, 2]) and m[2, 2] == 30.0
    assert to_matrix(frame.head(0), ["x"]).shape == (0, 1)
