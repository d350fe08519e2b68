from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from influencer_engine.brief import load_brief
from influencer_engine.config import TierConfig, config_path
from influencer_engine.features.build import build_features, feature_columns, partitioned
from influencer_engine.features.catalog import catalog
from influencer_engine.features.pipeline import build_feature_table
from influencer_engine.features.requests import brief_requests, snapshot_requests, training_requests
from influencer_engine.schema import CONTRACTS
from influencer_engine.simulate.generate import SimulatedMarket

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def _creators(n: int = 3) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "creator_id": [f"c{i}" for i in range(n)],
            "platform": ["instagram", "tiktok", "youtube"][:n],
            "handle": [f"h{i}" for i in range(n)],
            "followers": [5_000, 50_000, 2_000_000][:n],
            "price_image": [20.0, None, None][:n],
            "price_video": [40.0, 60.0, 30_000.0][:n],
        }
    ).pipe(lambda f: pl.concat([pl.DataFrame(schema=CONTRACTS["creators"].schema), f], how="diagonal_relaxed"))


def _posts(rows: list[tuple[str, int, str, int, int, bool]]) -> pl.DataFrame:
    """(creator, hours before T0 (negative: after), format, likes, comments, sponsored)."""
    frame = pl.DataFrame(
        {
            "post_id": [f"p{i}" for i in range(len(rows))],
            "creator_id": [r[0] for r in rows],
            "posted_at": [T0 - timedelta(hours=r[1]) for r in rows],
            "format": [r[2] for r in rows],
            "likes": [r[3] for r in rows],
            "comments": [r[4] for r in rows],
            "sponsored": [r[5] for r in rows],
        },
        schema_overrides={"posted_at": pl.Datetime("us", "UTC")},
    )
    return pl.concat([pl.DataFrame(schema=CONTRACTS["posts"].schema), frame], how="diagonal_relaxed")


def _build(creators: pl.DataFrame, posts: pl.DataFrame, as_of: datetime = T0) -> pl.DataFrame:
    requests = snapshot_requests(creators.lazy(), as_of)
    return build_features(creators.lazy(), posts.lazy(), requests, TierConfig()).collect().sort("request_id")


def test_feature_names_are_built_from_parameters() -> None:
    names = feature_columns()
    assert len(names) == len(set(names))
    assert {"likes_median_last5", "likes_median_last20", "likes_mean_last20", "interactions_trend_5v20",
            "interactions_cv_last20", "sponsored_gap_last50", "er_median_last20", "er_last20_shrunk",
            "posts_per_week_last90d"} <= set(names)  # fmt: skip
    groups = {s.group for s in catalog()}
    assert groups == {"history", "audience_fit", "affinity", "quality", "scale", "price", "context"}
    assert all(s.meaning for s in catalog())


def test_history_against_a_hand_computation() -> None:
    rows = [("c0", h, "image", likes, 1, h % 2 == 0) for h, likes in zip(range(1, 31), range(100, 130), strict=True)]
    rows.append(("c0", -5, "image", 10_000, 1, False))  # after the as-of time: must not count
    f = _build(_creators(1), _posts(rows)).row(0, named=True)
    # the latest post is 1 hour before T0 with 100 likes; the last 5 are 100..104, the last 20 are 100..119
    assert f["posts_before"] == 30
    assert f["likes_median_last5"] == 102 and f["likes_median_last20"] == pytest.approx(109.5)
    assert f["interactions_median_last5"] == 103
    assert f["days_since_last_post"] == pytest.approx(1 / 24)
    assert f["posts_per_week_last90d"] == pytest.approx(30 / 90 * 7)
    assert f["sponsored_share"] == pytest.approx(0.5)
    assert f["er_median_last20"] == pytest.approx(110.5 / 5_000)
    assert f["price"] == 20.0 and f["format"] == "image" and f["tier"] == "nano"
    assert f["audience_fit"] is None and f["affinity"] is None  # no audience data, no brief


def test_lags_weighted_means_spread_trend_and_gaps_against_a_hand_computation() -> None:
    # 30 posts, one a day (the latest 24 hours before T0), interactions 101, 102, ... from the latest back; the
    # video every third post; one post after the as-of time that must not count
    rows = [("c0", 24 * d, "video" if d % 3 == 0 else "image", 100 + d, 1, False) for d in range(1, 31)]
    rows.append(("c0", -5, "image", 10_000, 1, False))
    f = _build(_creators(1), _posts(rows)).row(0, named=True)
    y = np.log1p(101.0 + np.arange(1, 31))  # rank 1 (latest) first
    assert [f[f"log_interactions_lag{k}"] for k in (1, 2, 3)] == pytest.approx(y[:3].tolist())
    for hl in (3, 10):  # over the last 20 posts
        w = 0.5 ** (np.arange(20) / hl)
        assert f[f"log_interactions_ewm{hl}"] == pytest.approx(float((w * y[:20]).sum() / w.sum()))
    assert f["log_interactions_sd_last20"] == pytest.approx(float(np.std(y[:20], ddof=1)))
    # older posts have more interactions here: the trend per 30 days is negative, the least-squares slope exactly
    t = -np.arange(1, 21) / 30.0
    slope = float(np.polyfit(t, y[:20], 1)[0])
    assert f["log_interactions_slope_last20"] == pytest.approx(slope) and slope < 0
    # the planned post is an image (the creator's base format): its latest image is the latest post
    assert f["log_interactions_last_same_format"] == pytest.approx(y[0])
    assert f["days_between_last_two_posts"] == pytest.approx(1.0)
    assert f["posts_last7d"] == 7
    # one post: no spread, no trend, no gap; lag 1 only
    g = _build(_creators(1), _posts([("c0", 5, "image", 9, 0, False)])).row(0, named=True)
    assert g["log_interactions_lag1"] == pytest.approx(np.log1p(9.0)) and g["log_interactions_lag2"] is None
    assert g["log_interactions_sd_last20"] is None and g["log_interactions_slope_last20"] is None
    assert g["days_between_last_two_posts"] is None


def test_window_statistics_skip_missing_counts_and_stay_exact_for_huge_ones() -> None:
    """Posts whose likes are unknown are left out of every window statistic (sums, weights, count alike), and the
    coefficient of variation is exact for counts too large for 64-bit squares."""
    rows = [("c0", 24 * d, "image", 100 + 7 * d + (d % 4) * 13, 1, False) for d in range(1, 21)]
    posts = _posts(rows).with_columns(  # the 3rd, 8th and 15th latest posts: likes unknown
        pl.when(pl.int_range(pl.len()).is_in([2, 7, 14])).then(None).otherwise(pl.col("likes")).alias("likes")
    )
    f = _build(_creators(1), posts).row(0, named=True)
    known = [d for d in range(1, 21) if d - 1 not in (2, 7, 14)]
    y = np.log1p(np.array([100 + 7 * d + (d % 4) * 13 + 1 for d in known], dtype=float))
    t = -np.array(known, dtype=float) / 30.0
    assert f["log_interactions_slope_last20"] == pytest.approx(float(np.polyfit(t, y, 1)[0]), rel=1e-9)
    assert f["log_interactions_sd_last20"] == pytest.approx(float(np.std(y, ddof=1)), rel=1e-9)
    for hl in (3, 10):
        w = 0.5 ** ((np.array(known) - 1) / hl)
        assert f[f"log_interactions_ewm{hl}"] == pytest.approx(float((w * y).sum() / w.sum()), rel=1e-12)
    assert f["log_interactions_lag3"] is None and f["log_interactions_lag2"] == pytest.approx(y[1])
    # counts near the contract's maximum: n * sum(x^2) is far beyond 64 bits, the deviation still exact
    from fractions import Fraction

    big = [9_999_999_937, 9_999_999_999, 10**10, 7_300_000_001, 123]
    g = _build(_creators(1), _posts([("c0", h + 1, "image", v, 0, False) for h, v in enumerate(big)]))
    n, s1, s2 = len(big), sum(big), sum(v * v for v in big)
    spread = float(Fraction(n * s2 - s1 * s1)) / float(n * (n - 1))
    assert g["interactions_cv_last20"][0] == float(np.sqrt(spread)) / (s1 / n)
    # one huge count before the request: no spread (null), not a division by zero
    one = _build(_creators(1), _posts([("c0", 1, "image", 10**10, 0, False)])).row(0, named=True)
    assert one["interactions_cv_last20"] is None and one["interactions_median_last20"] == 10**10


def test_creator_without_history_gets_nulls_not_a_crash() -> None:
    f = _build(_creators(3), _posts([("c0", 1, "image", 5, 1, False)]))
    assert f["posts_before"].to_list() == [1, 0, 0]
    assert f["likes_median_last20"].null_count() == 2
    # no same platform x tier peer has history either: nothing to shrink toward
    assert f["er_last20_shrunk"].null_count() == 2
    # the engagement forecast still has a level to start from: followers x the median rate of all peers
    assert f["interactions_anchor"].null_count() == 0
    assert f.height == 3
    # a peer (Instagram nano) without history gets the peers' value
    peer = pl.concat([_creators(1), _creators(1).with_columns(pl.lit("c9").alias("creator_id"))])
    g = _build(peer, _posts([("c0", 1, "image", 5, 1, False)]))
    assert g["er_last20_shrunk"][1] == pytest.approx(g["er_last20_shrunk"][0], rel=1e-3)
    assert g["er_median_last20"][1] is None


_post = st.tuples(
    st.sampled_from(["c0", "c1", "c2"]),
    st.integers(1, 24 * 400),
    st.sampled_from(["image", "video", "carousel", "story"]),
    st.integers(0, 10**6),
    st.integers(0, 10**4),
    st.booleans(),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.lists(_post, max_size=40), after=st.lists(_post, min_size=1, max_size=20))
# simultaneous posts: which one is lag 1 must not follow the row order (CI found this one)
@example(
    before=[("c0", 1, "image", 0, 0, False), ("c0", 1, "image", 0, 0, False), ("c0", 1, "image", 0, 1, False)],
    after=[("c0", 1, "image", 1, 0, False)],
)
def test_no_leakage_appending_later_posts_changes_nothing(
    before: list[tuple[str, int, str, int, int, bool]], after: list[tuple[str, int, str, int, int, bool]]
) -> None:
    """Features at t use only posts before t: posts at or after t (appended in any order) change nothing."""
    creators = _creators(3)
    late = [(c, -h + 1, f, likes, com, s) for c, h, f, likes, com, s in after]  # hours <= 0: at or after T0
    base = _build(creators, _posts(before))
    mixed = _posts(late + before)  # later posts first, so order cannot hide a leak
    assert_frame_equal(base, _build(creators, mixed))


def test_simultaneous_posts_give_the_same_features_in_any_row_order() -> None:
    """Posts at the same time rank by their values, not by the order the rows came in."""
    rows = [("c0", 1, "image", 0, 0, False), ("c0", 1, "image", 0, 1, False), ("c0", 1, "image", 7, 0, True)]
    rows += [("c0", 30 + i, "image", 10 * i, i, False) for i in range(25)]
    rows += [("c0", 46, "image", 3, 0, False)]  # ties with the 20th latest post: which one the window keeps
    rows += [("c0", 60, "video", 5, 0, False), ("c0", 60, "video", 9, 0, False)]
    base = _build(_creators(1), _posts(rows))
    rng = np.random.default_rng(0)
    for _ in range(5):
        order = rng.permutation(len(rows))
        assert_frame_equal(base, _build(_creators(1), _posts([rows[i] for i in order])))


def test_training_requests_are_point_in_time(small_market: SimulatedMarket) -> None:
    m = small_market
    req = training_requests(m.campaigns.lazy(), m.outcomes.lazy())
    f = build_features(m.creators.lazy(), m.posts.lazy(), req, TierConfig()).collect()
    assert f.height == m.outcomes.height
    # the latest post used is strictly before the campaign start
    assert (f["days_since_last_post"].drop_nulls() > 0).all()
    # with the hires' future posts removed, the features are the same
    cut = m.posts.join(
        f.select("creator_id", "as_of").group_by("creator_id").agg(pl.col("as_of").min()), on="creator_id"
    )
    only_past = cut.filter(pl.col("posted_at") < pl.col("as_of")).drop("as_of")
    g = build_features(m.creators.lazy(), only_past.lazy(), req, TierConfig()).collect()
    firsts = f.join(g.select("request_id"), on="request_id").sort("request_id")
    # requests at each creator's earliest as-of see exactly the same posts
    earliest = f.group_by("creator_id").agg(pl.col("as_of").min())
    keep = f.join(earliest, on=["creator_id", "as_of"]).select("request_id")
    assert_frame_equal(
        firsts.join(keep, on="request_id").drop("er_vs_peers", "er_last20_shrunk", "interactions_anchor"),
        g.join(keep, on="request_id").sort("request_id").drop("er_vs_peers", "er_last20_shrunk", "interactions_anchor"),
    )


def test_brief_features_direction(small_market: SimulatedMarket) -> None:
    brief = load_brief(config_path("briefs/fitness_january.toml"))
    req = brief_requests(brief, small_market.creators.lazy())
    f = build_features(small_market.creators.lazy(), small_market.posts.lazy(), req, TierConfig()).collect()
    assert f.height == small_market.creators.height
    assert f["audience_fit"].is_between(0, 1).all() and f["affinity"].is_between(0, 1).all()
    niche = f.join(small_market.truth.select("creator_id", "primary_niche"), on="creator_id")
    by = niche.group_by(pl.col("primary_niche") == "fitness").agg(pl.col("affinity").mean()).sort("primary_niche")
    assert by["affinity"][1] > 3 * by["affinity"][0]
    assert (f["month"] == 1).all() and (f["season"] == 0).all()


def test_partitions_match_the_whole_build(small_market: SimulatedMarket) -> None:
    m = small_market
    req = snapshot_requests(m.creators.lazy(), datetime(2026, 1, 1, tzinfo=UTC))
    whole = build_features(m.creators.lazy(), m.posts.lazy(), req, TierConfig()).collect().sort("request_id")
    parts = pl.concat(list(partitioned(m.creators.lazy(), m.posts.lazy(), req, TierConfig(), 4))).sort("request_id")
    peer = ["er_vs_peers", "er_last20_shrunk", "interactions_anchor"]  # peer statistics are per partition (documented)
    assert_frame_equal(whole.drop(peer), parts.drop(peer))


def test_feature_table_manifest_conserves_rows(tmp_path: Path, small_market: SimulatedMarket) -> None:
    data = tmp_path / "data"
    data.mkdir()
    creators = small_market.creators
    posts = pl.concat([small_market.posts, small_market.posts.head(3)])  # 3 duplicate posts
    creators.write_parquet(data / "creators.parquet")
    posts.write_parquet(data / "posts.parquet")
    m = build_feature_table(data, tmp_path / "out", TierConfig(), partitions=3)
    for t in m.tables.values():
        assert t.rows_in == t.rows_out + t.rows_rejected
    assert m.tables["posts"].reasons == {"duplicate:post_id": 3}
    out = pl.read_parquet(tmp_path / "out" / "features")
    assert out.height == creators.height and out["request_id"].is_unique().all()


@pytest.mark.realdata
def test_features_on_real_data(real_data: Path, tmp_path: Path) -> None:
    from influencer_engine.importers.instagram_posts import import_instagram_posts
    from influencer_engine.importers.rankings import import_rankings

    import_instagram_posts(real_data / "instagram_posts_2015_2020", tmp_path / "ig")
    import_rankings(real_data / "top1000_creators_2022", tmp_path / "rk")
    for name in ("ig", "rk"):
        m = build_feature_table(tmp_path / name, tmp_path / f"f{name}", TierConfig())
        assert m.tables["requests"].rows_rejected == 0
    ig = pl.read_parquet(tmp_path / "fig" / "features")
    assert ig.height == 720 and (ig["posts_before"] > 0).sum() == 524
    assert ig["likes_median_last20"].drop_nulls().min() >= 0  # type: ignore[operator]
    rk = pl.read_parquet(tmp_path / "frk" / "features")
    # the rankings have no posts: their creators are read from each snapshot's averages per post (features.averages)
    from influencer_engine.features.averages import AVERAGE_POSTS

    assert set(rk["posts_before"].unique().to_list()) <= {0, AVERAGE_POSTS} and rk["followers"].null_count() == 0
    assert (rk["posts_before"] == AVERAGE_POSTS).mean() > 0.9  # type: ignore[operator]
    read = rk.filter(pl.col("posts_before") > 0)
    assert read["interactions_median_last20"].null_count() < read.height / 100  # views alone: no interactions


def test_equal_to_the_pandas_reference(small_market: SimulatedMarket, tmp_path: Path) -> None:
    """The benchmark's plain-pandas version of every feature agrees with the Polars builder."""
    pytest.importorskip("pandas")
    import sys

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        from bench_features import compare
        from pandas_features import pandas_features
    finally:
        sys.path.remove(str(bench))
    brief = load_brief(config_path("briefs/fitness_january.toml"))
    m = small_market
    req = brief_requests(brief, m.creators.lazy()).collect()
    build_features(m.creators.lazy(), m.posts.lazy(), req.lazy(), TierConfig()).collect().write_parquet(
        tmp_path / "a.parquet"
    )
    pandas_features(m.creators.to_pandas(), m.posts.to_pandas(), req.to_pandas()).to_parquet(tmp_path / "b.parquet")
    assert compare(tmp_path / "a.parquet", tmp_path / "b.parquet") == len(feature_columns())


def test_feature_rows_follow_the_requests_order(small_market: SimulatedMarket, tiers: TierConfig) -> None:
    """Row order is part of determinism: planning's Monte Carlo draws are assigned to rows by position."""
    brief = load_brief(config_path("briefs/fitness_january.toml"))
    creators = small_market.creators.sample(fraction=1.0, shuffle=True, seed=3)
    requests = brief_requests(brief, creators.lazy())
    for _ in range(3):
        feats = build_features(creators.lazy(), small_market.posts.lazy(), requests, tiers).collect()
        assert feats["creator_id"].to_list() == creators["creator_id"].to_list()


def test_features_do_not_depend_on_the_posts_row_order(small_market: SimulatedMarket, tiers: TierConfig) -> None:
    """Same data, same bits: shuffled post rows give bit-identical features (floats summed in a fixed order)."""
    brief = load_brief(config_path("briefs/fitness_january.toml"))
    requests = brief_requests(brief, small_market.creators.lazy())
    ref = build_features(small_market.creators.lazy(), small_market.posts.lazy(), requests, tiers).collect()
    for seed in (1, 2):
        posts = small_market.posts.sample(fraction=1.0, shuffle=True, seed=seed)
        got = build_features(small_market.creators.lazy(), posts.lazy(), requests, tiers).collect()
        assert_frame_equal(got, ref, check_exact=True)


def test_features_are_the_same_bits_on_either_polars_engine(small_market: SimulatedMarket, tiers: TierConfig) -> None:
    """``featurize`` collects the feature rows on polars' in-memory engine (``FEATURES_ENGINE``: cheaper there than
    Polars 2's default streaming engine); both engines give the same rows in the requests' order, bit for bit."""
    from influencer_engine.forecast import FEATURES_ENGINE

    brief = load_brief(config_path("briefs/fitness_january.toml"))
    creators = small_market.creators.sample(fraction=1.0, shuffle=True, seed=5)
    requests = brief_requests(brief, creators.lazy())
    query = build_features(creators.lazy(), small_market.posts.lazy(), requests, tiers)
    streamed = query.collect(engine="streaming")
    assert streamed["creator_id"].to_list() == creators["creator_id"].to_list()
    assert_frame_equal(query.collect(engine=FEATURES_ENGINE), streamed, check_exact=True)


def test_engagement_rates_are_the_features_rates(small_market: SimulatedMarket) -> None:
    from influencer_engine.features.build import engagement_rates

    m = small_market
    as_of = datetime(2026, 1, 1, tzinfo=UTC)
    f = build_features(m.creators.lazy(), m.posts.lazy(), snapshot_requests(m.creators.lazy(), as_of),
                       TierConfig()).collect()  # fmt: skip
    r = engagement_rates(m.creators.lazy(), m.posts.lazy(), as_of, TierConfig()).collect()
    joined = f.select("creator_id", "er_median_last20").join(r, on="creator_id", suffix="_r")
    assert joined.height == m.creators.height
    assert (joined["er_median_last20"].fill_null(-1.0) == joined["er_median_last20_r"].fill_null(-1.0)).all()


def test_peers_blend_toward_the_base_as_it_grows() -> None:
    from influencer_engine.features.creator import BASE_PEER_STRENGTH, blend_peers

    ref = pl.DataFrame({"platform": ["instagram"], "tier": ["micro"], "peer_er": [0.01],
                        "peer_log_er": [float(np.log(0.01))]})  # fmt: skip

    def rates(n: int) -> pl.DataFrame:
        return pl.DataFrame({"platform": ["instagram"] * n, "tier": ["micro"] * n, "er_median_last20": [0.04] * n})

    small, large = blend_peers(ref, rates(3)), blend_peers(ref, rates(3000))
    w = 3 / (3 + BASE_PEER_STRENGTH)
    assert small["peer_er"].item() == pytest.approx(np.exp(w * np.log(0.04) + (1 - w) * np.log(0.01)))
    assert large["peer_er"].item() == pytest.approx(0.04, rel=0.02)  # 3,000 creators weigh 99%
    # a cell the reference lacks takes the base's own; a cell the base lacks keeps the reference's
    other = rates(2).with_columns(pl.lit("tiktok").alias("platform"))
    both = blend_peers(ref, other).sort("platform")
    assert both["peer_er"].to_list() == pytest.approx([0.01, 0.04])


@pytest.mark.parametrize("layout", ["runs", "split runs", "any", "null ids"])
@pytest.mark.parametrize("per_creator", [1, 2])
def test_posts_matched_to_requests_run_by_run_are_the_join(layout: str, per_creator: int) -> None:
    """``_with_requests`` (one request per creator: only the first post of each run of a creator's posts is looked
    up) gives the inner join's rows in the posts' order: posts in runs, a creator's posts in several runs, posts in
    no order, null creator ids, creators without a request; several requests per creator take the join itself."""
    from influencer_engine.features.catalog import HISTORY_METRICS
    from influencer_engine.features.history import _with_requests, post_metrics

    rng = np.random.default_rng(11)
    n = 3_000
    creator = np.sort(rng.integers(0, 80, n))  # runs: each creator's posts together
    if layout == "split runs":  # every creator's posts in two runs
        creator = np.concatenate([creator[::2], creator[1::2]])
    if layout == "any":
        creator = rng.permutation(creator)
    ids: list[str | None] = [f"c{i}" for i in creator]
    if layout == "null ids":
        ids = [None if i % 9 == 0 else c for i, c in enumerate(ids)]
    posts = pl.DataFrame(
        {
            "creator_id": ids,
            "posted_at": [T0 - timedelta(hours=int(h)) for h in rng.integers(0, 10**5, n)],
            "format": rng.choice(["image", "video"], n).tolist(),
            "sponsored": rng.random(n) < 0.3,
            **{m: rng.integers(0, 5, n) for m in HISTORY_METRICS if m != "interactions"},
        },
        schema_overrides={"posted_at": pl.Datetime("us", "UTC"), "creator_id": pl.String},
    )
    # requests for 60 of the 80 creators (and for one without posts), in no order
    who = [f"c{i}" for i in rng.permutation(np.r_[np.arange(60), 999])]
    keyed = pl.DataFrame(
        {
            "creator_id": who * per_creator,
            "as_of": [T0 - timedelta(days=int(d)) for d in rng.integers(0, 3, len(who) * per_creator)],
        },
        schema_overrides={"as_of": pl.Datetime("us", "UTC")},
    ).with_row_index("_rid")
    got = _with_requests(keyed, posts.lazy()).collect()
    want = keyed.lazy().join(post_metrics(posts.lazy()), on="creator_id", how="inner", maintain_order="right").collect()
    assert got.height == want.height > 0
    assert_frame_equal(got.select(want.columns), want, check_exact=True)


@pytest.mark.parametrize("group", ["creator_id", "_rid"])
@pytest.mark.parametrize(
    ("tied", "layout"), [(False, "any"), (False, "oldest"), (False, "latest"), (False, "runs"), (True, "any")]
)
def test_rank_by_one_key_equals_the_full_sort(group: str, tied: bool, layout: str) -> None:
    """The one-key rank (group and time in 128 bits) gives every post the rank the full sort on the group, the time,
    the format and every metric gives: rows in any order, rows already in order (a creator's posts together, oldest
    or latest first: nothing is moved), and posts that share a time and format (the fallback)."""
    from influencer_engine.features.catalog import HISTORY_METRICS
    from influencer_engine.features.history import _in_order, _rank_latest_first, _time_key

    rng = np.random.default_rng(7 + tied)
    n = 4_000
    hours = rng.integers(0, 40 if tied else 10**7, n)  # 40 distinct hours over 60 groups: many ties
    frame = pl.DataFrame(
        {
            "creator_id": [f"c{i}" for i in rng.integers(0, 60, n)],
            "posted_at": [T0 - timedelta(hours=int(h), microseconds=(1 - tied) * i) for i, h in enumerate(hours)],
            "format": rng.choice(["image", "video"], n).tolist(),
            "sponsored": rng.random(n) < 0.3,
            **{m: rng.integers(0, 5, n) for m in HISTORY_METRICS},
        },
        schema_overrides={"posted_at": pl.Datetime("us", "UTC")},
    ).with_columns(pl.col("creator_id").str.slice(1).cast(pl.UInt32).alias("_rid"))
    past = frame.select(group, _time_key(), "sponsored", *HISTORY_METRICS)
    if layout in ("oldest", "latest"):
        past = past.sort(group, "_key", descending=[False, layout == "latest"])
    if layout == "runs":  # each group's posts together, latest first, the groups in no order: nothing is moved
        past = past.sort(group, "_key", descending=[False, True]).with_columns(pl.col(group).hash(3).alias("_h"))
        past = past.sort("_h", maintain_order=True).drop("_h")
        assert _in_order(past, group) is not None
    got = _rank_latest_first(past, group)
    values = [pl.col(m) for m in HISTORY_METRICS] + [pl.col("sponsored")]
    want = (
        past.sort([pl.col(group), pl.col("_key"), *values], descending=[False] + [True] * 10, nulls_last=True)
        .drop("_key")
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).over(group).alias("_k"))
    )
    key = [group, "_k"]
    assert_frame_equal(got.sort(key), want.sort(key), check_exact=True)
    if not tied:  # every (group, time, format) distinct here: the one-key sort ran, not the fallback
        assert past.select(pl.struct(group, "_key").is_unique().all()).item()
