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


def _exact_std(counts: pl.Expr) -> pl.Expr:
    """Sample standard deviation of integer counts from exact integer sums (null below two values).

    Polars' grouped ``std`` rounds its partial sums in an order that depends on how threads split the groups, so the
    same posts gave a different last bit from run to run (and a different training-data fingerprint). Sums of
    integers in Int128 are exact in any order; one division and one square root round the same way every time.
    """
    x = counts.cast(pl.Int128)
    n = counts.count().cast(pl.Int128)
    spread = (n * (x * x).sum() - x.sum() * x.sum()).cast(pl.Float64) / (n * (n - 1)).cast(pl.Float64)
    return pl.when(n > 1).then(spread.sqrt())


_FIXED = float(2**60)


def _fixed_sum(x: pl.Expr) -> pl.Expr:
    """The sum of a group's floats in 128-bit fixed point (steps of 2**-60, summed exactly, rounded to a double
    once): the same bits in any row order. A float sum follows the row order the join happened to produce, so its
    last bit moved between runs."""
    return (x * _FIXED).round().cast(pl.Int128).sum().cast(pl.Float64) / _FIXED


def _ewm_means(values: pl.Expr, k: pl.Expr) -> list[pl.Expr]:
    """Exponentially weighted means by post rank (rank 1 = the latest post, weight 1), one per half-life, over the
    posts of the frame they aggregate (the last ``WINDOWS[-1]``: older posts weigh little and cost much)."""
    out = []
    for hl in EWM_HALF_LIVES:
        w = 0.5 ** ((k - 1).cast(pl.Float64) / hl)
        out.append((_fixed_sum(values * w) / _fixed_sum(w)).alias(f"log_interactions_ewm{hl}"))
    return out


def _spread_and_trend(values: pl.Expr, age_days: pl.Expr, window: int) -> list[pl.Expr]:
    """Standard deviation and least-squares slope (per ``SLOPE_DAYS``) of ``values`` over the window's posts, from
    fixed-point moment sums (null below two posts, or when every post has the same time)."""
    y, t = values, -age_days / SLOPE_DAYS
    n = y.count().cast(pl.Float64)
    sy, st, syy, stt, sty = (_fixed_sum(e) for e in (y, t, y * y, t * t, t * y))
    sxx = stt - st * st / n
    var = ((syy - sy * sy / n) / (n - 1)).clip(lower_bound=0.0)
    return [
        pl.when(n > 1).then(var.sqrt()).alias(f"log_interactions_sd_last{window}"),
        pl.when((n > 1) & (sxx > 1e-9)).then((sty - st * sy / n) / sxx).alias(f"log_interactions_slope_last{window}"),
    ]


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
    if _strictly_increasing(up.gather(idx)):
        ranked, rank = past[idx], pl.int_range(pl.len(), 0, -1, dtype=pl.UInt32)
    else:  # simultaneous posts of one group: their values decide
        values = [pl.col(m) for m in HISTORY_METRICS] + [pl.col("sponsored")]
        n = 1 + len(values)
        ranked = past.sort([pl.col(group), key, *values], descending=[False] + [True] * n, nulls_last=True)
        rank = pl.int_range(1, pl.len() + 1, dtype=pl.UInt32)
    return ranked.drop("_key").with_columns(rank.over(group).alias("_k"))


def _strictly_increasing(s: pl.Series) -> bool:
    return s.len() < 2 or bool((s.slice(1) > s.slice(0, s.len() - 1)).all())


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
        keyed.lazy()
        .select("_rid", "creator_id", "as_of", pl.col("format").alias("_request_format"))
        .join(post_metrics(posts), on="creator_id", how="inner", maintain_order="right")  # posts come in order
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
    # windowed statistics read only the last `hi` posts: aggregate them on that (much smaller) frame
    windowed: list[pl.Expr] = [pl.col(m).mean().alias(history_name(m, "mean", hi)) for m in HISTORY_METRICS]
    # the coefficient of variation is undefined (null, not NaN) when there is no interaction to vary around
    windowed.append(
        (_exact_std(inter) / pl.when(inter.mean() > 0).then(inter.mean())).alias(f"interactions_cv_last{hi}")
    )
    # lags and the gap between the last two posts: the few latest rows of the (small) last-`hi` frame
    windowed += [log_inter.filter(k == lag).first().alias(f"log_interactions_lag{lag}") for lag in LAGS]
    windowed.append(age_days.filter(k == 2).first().alias("_age2"))
    windowed += _spread_and_trend(log_inter, age_days, hi)
    windowed += _ewm_means(log_inter, k)
    last = past.filter(k <= hi)
    recent = last.lazy().group_by("_rid").agg(windowed).join(_window_medians(last).lazy(), on="_rid", how="left")
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


def _window_medians(last: pl.DataFrame) -> pl.DataFrame:
    """_rid and the median of every history metric over each request's last ``w`` posts, for every window ``w``
    (``last``: the ranked posts with ``_k`` at most the largest window).

    A table of requests x ranks per metric, sorted along each row: every median is then two lookups. The same
    numbers as polars' grouped median (the midpoint's interpolation, nulls ignored, null when none), at a fraction
    of its time with 16 medians over 50,000 requests.
    """
    hi = WINDOWS[-1]
    rid = last["_rid"].to_numpy()
    if last["_rid"].is_sorted():  # the usual layout: each request's rows in one run, no sort needed
        start = np.r_[True, rid[1:] != rid[:-1]] if len(rid) else np.zeros(0, dtype=bool)
        rids, row = rid[start], np.cumsum(start) - 1
    else:
        rids, row = np.unique(rid, return_inverse=True)
    cell = row * hi + (last["_k"].to_numpy().astype(np.int64) - 1)  # where each post goes in a flat table
    out: dict[str, np.ndarray] = {"_rid": rids}
    for m in HISTORY_METRICS:
        flat = np.full(len(rids) * hi, np.nan)
        flat[cell] = last[m].cast(pl.Float64).fill_null(np.nan).to_numpy()
        table = flat.reshape(len(rids), hi)
        for w in WINDOWS:
            ordered = np.sort(table[:, :w], axis=1)  # a missing value (NaN) sorts last
            n = w - np.isnan(ordered).sum(axis=1)
            lo = np.take_along_axis(ordered, np.maximum(n - 1, 0)[:, None] // 2, axis=1)[:, 0]
            up = np.take_along_axis(ordered, (n // 2)[:, None], axis=1)[:, 0]
            out[history_name(m, "median", w)] = np.where(n > 0, lo + (up - lo) * 0.5, np.nan)
    return pl.DataFrame(out).with_columns(pl.col("_rid").cast(last.schema["_rid"])).fill_nan(None)


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
