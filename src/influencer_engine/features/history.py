"""History group: what a creator's posts before the as-of time say about its next post."""

from __future__ import annotations

import numpy as np
import polars as pl

from influencer_engine.features.catalog import (
    CADENCE_DAYS,
    EWM_HALF_LIVES,
    HISTORY_METRICS,
    LAGS,
    SLOPE_DAYS,
    SPONSORED_GAP_WINDOW,
    WINDOWS,
    history_name,
)
from influencer_engine.registry import FORMATS
from influencer_engine.schema import strictly_increasing

__all__ = ["history_features", "post_metrics", "recent_interactions"]

_FORMAT_ENUM = pl.Enum(list(FORMATS))


def post_metrics(posts: pl.LazyFrame) -> pl.LazyFrame:
    """The post columns the history group reads, with ``interactions`` = likes + comments (public everywhere)."""
    return posts.select(
        "creator_id",
        "posted_at",
        "format",
        pl.col("sponsored"),
        *(pl.col(m) for m in HISTORY_METRICS if m != "interactions"),
        (pl.col("likes") + pl.col("comments").fill_null(0)).alias("interactions"),
    )


def _log_ratio(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return (a.cast(pl.Float64) + 1).log() - (b.cast(pl.Float64) + 1).log()


_LOW = 2**64  # the order key's group part is multiplied by this: the time key fills the low 64 bits


def _rank_latest_first(past: pl.DataFrame, group: str) -> pl.DataFrame:
    """``past`` with ``_k`` = 1 for the latest post of each ``group``, 2 for the one before, ... (its ``_key``, see
    ``_time_key``, dropped).

    Posts at the same time are ordered by their values (format, then every metric, then the disclosure), never by
    the order the rows came in: two posts that tie on everything are interchangeable, so any order gives the same
    features. (An ordinal rank on time alone let the input order decide which of two simultaneous posts was lag 1
    and which fell out of a window.) One integer key, microseconds * 8 + format code, carries the time and format.

    Rows that come in order already (each group's posts together, strictly oldest first or latest first, as exports
    and the simulator write them) are not moved at all: the rank is counted along each run (``_in_order``). Other
    rows are put in order by one 128-bit key: the group (its hash, unless it is an integer) in the high bits and
    the time key in the low 64. That one-column sort is several times cheaper than sorting on the group, the time
    and every metric. Where two rows of one group share that key
    (the same time and format), the metrics decide, as before: the frame is then sorted on every column instead. A
    hash collision between two groups only puts their rows side by side; each group's own rows are still in time
    order, and the rank is counted per group.
    """
    in_place = _in_order(past, group)
    if in_place is not None:  # the common layout: nothing to move, the rank is each row's place in its run
        return past.drop("_key").with_columns(pl.Series("_k", in_place, dtype=pl.UInt32))
    key = pl.col("_key")
    # the group part times 2**64 must stay inside Int128: integers up to 64 bits signed as they are, else 63 hash bits
    kind = past.schema[group]
    part = pl.col(group) if kind.is_integer() and kind != pl.UInt64 else pl.col(group).hash(0) // 2
    low = key.cast(pl.Int128) + pl.lit(2**63, dtype=pl.Int128)  # in [0, 2**64)
    up = past.select((part.cast(pl.Int128) * pl.lit(_LOW, dtype=pl.Int128) + low).alias("up"))["up"]  # oldest first
    idx = up.arg_sort()
    if strictly_increasing(up.gather(idx)):
        ranked, rank = past[idx], pl.int_range(pl.len(), 0, -1, dtype=pl.UInt32)
    else:  # simultaneous posts of one group: their values decide
        values = [pl.col(m) for m in HISTORY_METRICS] + [pl.col("sponsored")]
        n = 1 + len(values)
        ranked = past.sort([pl.col(group), key, *values], descending=[False] + [True] * n, nulls_last=True)
        rank = pl.int_range(1, pl.len() + 1, dtype=pl.UInt32)
    return ranked.drop("_key").with_columns(rank.over(group).alias("_k"))


def _in_order(past: pl.DataFrame, group: str) -> np.ndarray | None:
    """Each row's rank, latest first, when ``past`` needs no sort (else None): every group's rows are together
    (one run each, the groups in any order) and, within every run, strictly latest first or strictly oldest first
    (one direction for the whole frame). Exports and the simulator write a creator's posts that way; a strict order
    means no two posts of a group share a time and format, so the rank is the one the full sort gives."""
    n = past.height
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    change = past.select((pl.col(group) != pl.col(group).shift(1)).fill_null(True).alias("c"))["c"].to_numpy()
    starts = np.flatnonzero(change).astype(np.uint32)
    if len(starts) != past[group].n_unique():  # a group comes back after another: not one run each
        return None
    key = past["_key"].to_numpy()
    inside = ~change[1:]  # neighbours of one group
    if (key[1:] < key[:-1])[inside].all():
        latest_first = True
    elif (key[1:] > key[:-1])[inside].all():
        latest_first = False
    else:
        return None
    # 32-bit throughout (a chunk's posts): the rank is counted along each run without 64-bit temporaries
    run = np.cumsum(change, dtype=np.uint32)
    run -= 1  # each row's run
    if latest_first:  # 1 at the run's first row
        rank = np.arange(1, n + 1, dtype=np.uint32)
        rank -= starts[run]
    else:  # oldest first: count down to 1 at the run's last row
        ends = np.append(starts[1:], np.uint32(n))
        rank = ends[run]
        rank -= np.arange(n, dtype=np.uint32)
    return rank


def _time_key() -> pl.Expr:
    """``_key``: microseconds * 8 + format code, the order of a creator's posts (``_rank_latest_first``)."""
    fmt = pl.col("format").cast(_FORMAT_ENUM).to_physical().cast(pl.Int64)
    return (pl.col("posted_at").dt.epoch("us") * 8 + fmt).alias("_key")


def _with_requests(keyed: pl.DataFrame, posts: pl.LazyFrame) -> pl.LazyFrame:
    """Every post (``post_metrics``) of a creator with a request, in the posts' order, beside that request's columns
    (``keyed``: creator_id, ``_rid`` and the request's others): the rows of the inner join on creator_id.

    With one request per creator (a brief's: every scoring and planning run), the posts' creator ids are matched run
    by run: a creator's posts come together in exports and the simulator, so only the first post of each run is
    looked up and its request is repeated along the run. That is the join's result without hashing every post's id
    (2.4M posts of 50k creators: 0.20-0.27 -> 0.14 s of CPU). Posts whose creators come back in several runs are
    matched once per run, so any order gives the join's rows. Several requests per creator (training, backtests):
    the join itself.
    """
    if keyed["creator_id"].n_unique() < keyed.height:
        return keyed.lazy().join(post_metrics(posts), on="creator_id", how="inner", maintain_order="right")
    metrics = post_metrics(posts).collect()
    ids = metrics["creator_id"]
    start = (ids != ids.shift(1)).fill_null(True)  # the first post of each run (a null id: a run of its own)
    run = (start.cum_sum() - 1).cast(pl.UInt32)
    heads = ids.filter(start).to_frame().join(keyed, on="creator_id", how="left", maintain_order="left")
    matched = heads.drop("creator_id")[run]  # each post: its run's request (a null _rid where its creator has none)
    return pl.concat([metrics, matched], how="horizontal").lazy().filter(pl.col("_rid").is_not_null())


def history_features(requests: pl.LazyFrame, posts: pl.LazyFrame) -> pl.LazyFrame:
    """Per request: trailing statistics of the creator's posts strictly before ``as_of``.

    Point in time: a post at or after ``as_of`` never enters any feature. Requests with no earlier post get
    ``posts_before = 0`` and nulls elsewhere (the builder's left join).
    """
    lo, hi = WINDOWS[0], WINDOWS[-1]
    # an integer key per request: grouping on it is much cheaper than on the request_id strings. The requests are
    # collected once here, so the ids joined back on _rid below are those the posts were joined with.
    keyed = requests.select("request_id", "creator_id", "as_of", "format").with_row_index("_rid").collect()
    # the posts before each request's as-of, with only the columns the statistics read (the sort moves every
    # column it carries: the request's strings stay behind, its format is compared here)
    past = _rank_latest_first(
        _with_requests(keyed.select("_rid", "creator_id", "as_of", pl.col("format").alias("_request_format")), posts)
        .filter(pl.col("posted_at") < pl.col("as_of"))
        .select(
            "_rid",
            _time_key(),
            "sponsored",
            *HISTORY_METRICS,
            (pl.col("format") == pl.col("_request_format")).alias("_same"),
            ((pl.col("as_of") - pl.col("posted_at")).dt.total_microseconds() / 86_400e6).alias("_age_days"),
        )
        .collect(),
        "_rid",
    )
    if past["_rid"].is_sorted():  # the usual layout (requests in the posts' order): grouping by slices, not hashes
        past = past.with_columns(pl.col("_rid").set_sorted())
    k = pl.col("_k")
    age_days = pl.col("_age_days")
    inter = pl.col("interactions")
    log_inter = (inter.cast(pl.Float64) + 1).log()
    gap_window = k <= SPONSORED_GAP_WINDOW
    sponsored = pl.col("sponsored").fill_null(False)
    same = pl.col("_same")
    # statistics over the whole history before as_of
    whole = (
        past.lazy()
        .group_by("_rid")
        .agg(
            pl.len().alias("posts_before"),
            age_days.max().alias("history_days"),
            age_days.min().alias("days_since_last_post"),
            # a product, not a quotient: polars divided this count by a constant through its reciprocal on most rows
            # but exactly on some, so a row's last bit hung on where it fell in the frame
            ((age_days <= CADENCE_DAYS).sum() * (7 / CADENCE_DAYS)).alias(f"posts_per_week_last{CADENCE_DAYS}d"),
            inter.filter(gap_window & sponsored).median().alias("_sponsored_median"),
            inter.filter(gap_window & ~sponsored & pl.col("sponsored").is_not_null()).median().alias("_organic_median"),
            pl.col("sponsored").cast(pl.Float64).mean().alias("sponsored_share"),
            inter.filter(same).median().alias("interactions_median_same_format"),
            same.cast(pl.Float64).mean().alias("same_format_share"),
            log_inter.filter(same).get(k.filter(same).arg_min()).alias("log_interactions_last_same_format"),
            (age_days <= 7).sum().alias("posts_last7d"),
        )
    )
    # windowed statistics read only the last `hi` posts: a table of requests x ranks (``_window_stats``)
    recent = _window_stats(past.filter(k <= hi)).lazy()
    return (
        keyed.lazy()
        .select("_rid", "request_id")
        .join(whole, on="_rid", how="inner")
        .join(recent, on="_rid", how="left")
        .with_columns(
            _log_ratio(
                pl.col(history_name("interactions", "median", lo)), pl.col(history_name("interactions", "median", hi))
            ).alias(f"interactions_trend_{lo}v{hi}"),
            _log_ratio(pl.col("_sponsored_median"), pl.col("_organic_median")).alias(
                f"sponsored_gap_last{SPONSORED_GAP_WINDOW}"
            ),
            (pl.col("_age2") - pl.col("days_since_last_post")).alias("days_between_last_two_posts"),
        )
        .drop("_rid", "_sponsored_median", "_organic_median", "_age2")
    )


_INT_SAFE = 150_000_000  # |x| below this: n * sum(x^2) and sum(x)^2 of up to 20 counts fit in int64


def _window_stats(last: pl.DataFrame) -> pl.DataFrame:
    """_rid and every statistic of each request's last ``WINDOWS[-1]`` posts (``last``: the ranked posts with ``_k``
    at most that): per metric its mean and its median over every window; the coefficient of variation of
    interactions; the log interactions' lags, spread, least-squares trend and exponentially weighted means; the age
    of the second latest post (``_age2``).

    Each metric goes into a table of ranks x requests (row 0 = every request's latest post), so every statistic is
    a few array operations over 20 rows, summed row by row in rank order: the same bits whatever order the posts
    came in (a grouped float sum follows the row order). Rank-major, each of those sums reads contiguous memory (a
    table of requests x ranks was read with a stride of 20 values, 20 times over). Missing values are skipped. The
    medians equal polars' grouped median (the midpoint's interpolation); the counts' standard deviation comes from
    exact integer sums (``_count_cv``).
    """
    hi = WINDOWS[-1]
    rid = last["_rid"].to_numpy()
    if last["_rid"].is_sorted():  # the usual layout: each request's rows in one run, no sort needed
        start = np.r_[True, rid[1:] != rid[:-1]] if len(rid) else np.zeros(0, dtype=bool)
        rids, row = rid[start], np.cumsum(start) - 1
    else:
        rids, row = np.unique(rid, return_inverse=True)
    n_req = len(rids)
    cell = (last["_k"].to_numpy().astype(np.int64) - 1) * n_req + row  # where each post goes in a flat table

    def table(values: pl.Series) -> np.ndarray:
        flat = np.full(hi * n_req, np.nan)
        flat[cell] = values.cast(pl.Float64).fill_null(np.nan).to_numpy()
        return flat.reshape(hi, n_req)

    def rank_sum(values: np.ndarray) -> np.ndarray:  # rank by rank: a fixed order of additions
        acc = np.zeros(n_req)
        for j in range(hi):
            acc += values[j]
        return acc

    out: dict[str, np.ndarray] = {"_rid": rids}
    none = np.full(n_req, np.nan)
    # a metric the data never has (most real exports: likes and comments only) is null throughout, at no cost
    tables = {m: table(last[m]) for m in HISTORY_METRICS if m == "interactions" or last[m].null_count() < last.height}
    for m in HISTORY_METRICS:
        if m not in tables:
            out[history_name(m, "mean", hi)] = none
            continue
        known = ~np.isnan(tables[m])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[history_name(m, "mean", hi)] = rank_sum(np.where(known, tables[m], 0.0)) / known.sum(axis=0)
    out[f"interactions_cv_last{hi}"] = _count_cv(tables["interactions"].T)
    y = table((last["interactions"].cast(pl.Float64) + 1).log())  # polars' log, as the whole history's (NaN: missing)
    for lag in LAGS:
        out[f"log_interactions_lag{lag}"] = y[lag - 1]
    age = table(last["_age_days"])
    out["_age2"] = age[1]
    known = ~np.isnan(y)
    n = known.sum(axis=0).astype(np.float64)
    t = np.where(known, -age / SLOPE_DAYS, 0.0)
    y0 = np.where(known, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dy = np.where(known, y - rank_sum(y0) / n, 0.0)
        dt = np.where(known, t - rank_sum(t) / n, 0.0)
        sxx = rank_sum(dt * dt)
        out[f"log_interactions_sd_last{hi}"] = np.where(n > 1, np.sqrt(rank_sum(dy * dy) / (n - 1)), np.nan)
        out[f"log_interactions_slope_last{hi}"] = np.where((n > 1) & (sxx > 1e-9), rank_sum(dt * dy) / sxx, np.nan)
        for hl in EWM_HALF_LIVES:
            w = np.where(known, np.array([0.5 ** (j / hl) for j in range(hi)])[:, None], 0.0)
            out[f"log_interactions_ewm{hl}"] = rank_sum(w * y0) / rank_sum(w)
    for m in HISTORY_METRICS:
        for win in WINDOWS:
            if m not in tables:
                out[history_name(m, "median", win)] = none
                continue
            ordered = np.ascontiguousarray(tables[m][:win].T)  # requests x ranks, each row sorted in place
            ordered.sort(axis=1)  # a missing value (NaN) sorts last
            cnt = win - np.isnan(ordered).sum(axis=1)
            lo = np.take_along_axis(ordered, np.maximum(cnt - 1, 0)[:, None] // 2, axis=1)[:, 0]
            up = np.take_along_axis(ordered, (cnt // 2)[:, None], axis=1)[:, 0]
            out[history_name(m, "median", win)] = np.where(cnt > 0, lo + (up - lo) * 0.5, np.nan)
    return pl.DataFrame(out).with_columns(pl.col("_rid").cast(last.schema["_rid"])).fill_nan(None)


def _count_cv(x: np.ndarray) -> np.ndarray:
    """Each row's sample standard deviation over its mean (NaN below two counts or when the mean is not positive).

    The deviation comes from exact integer sums, n * sum(x^2) - sum(x)^2, rounded once (float sums of squares of
    counts lose low bits in an order-dependent way): int64 where the counts are small enough, Python's integers
    elsewhere."""
    known = ~np.isnan(x)
    n = known.sum(axis=1)
    xi = np.where(known, x, 0.0).astype(np.int64)
    s1, s2 = xi.sum(axis=1), (xi * xi).sum(axis=1)
    big = np.abs(xi).max(axis=1, initial=0) >= _INT_SAFE
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = (n * s2 - s1 * s1).astype(np.float64) / (n * (n - 1)).astype(np.float64)
        for i in np.flatnonzero(big & (n > 1)):  # exact in Python's integers (one count has no spread)
            v = [int(a) for a in xi[i][known[i]]]
            spread[i] = float(len(v) * sum(a * a for a in v) - sum(v) ** 2) / float(len(v) * (len(v) - 1))
        mean = s1.astype(np.float64) / n
        return np.where((n > 1) & (mean > 0), np.sqrt(spread) / np.where(mean > 0, mean, 1.0), np.nan)


def recent_interactions(posts: pl.LazyFrame, as_of: pl.Expr | object) -> pl.LazyFrame:
    """creator_id and the median interactions of its last ``WINDOWS[-1]`` posts before ``as_of`` (one as-of for
    every creator): ``interactions_median_last20`` of ``history_features`` for a brief's requests, without the rest of
    the history group (a base's peers are read from it before its features are built)."""
    hi = WINDOWS[-1]
    when = as_of if isinstance(as_of, pl.Expr) else pl.lit(as_of)
    past = (
        post_metrics(posts)
        .filter(pl.col("posted_at") < when)
        .select("creator_id", _time_key(), "sponsored", *HISTORY_METRICS)
        .collect()
    )
    return (
        _rank_latest_first(past, "creator_id")
        .lazy()
        .filter(pl.col("_k") <= hi)
        .group_by("creator_id")
        .agg(pl.col("interactions").median().alias(history_name("interactions", "median", hi)))
    )
