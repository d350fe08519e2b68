from __future__ import annotations

import math

import polars as pl
import pytest

from influencer_engine.config import TierConfig
from influencer_engine.errors import ContractError
from influencer_engine.schema import (
    CONTRACTS,
    audience_columns,
    check_references,
    derive_tier,
    strictly_increasing,
    validate,
)


def _posts(**cols: list[object]) -> pl.DataFrame:
    n = len(next(iter(cols.values())))
    base: dict[str, list[object]] = {
        "post_id": [f"p{i}" for i in range(n)],
        "creator_id": ["c1"] * n,
        "posted_at": ["2025-01-01T00:00:00Z"] * n,
        "format": ["image"] * n,
        "likes": [10] * n,
    }
    base.update(cols)
    return pl.DataFrame(base, strict=False)


@pytest.mark.parametrize(
    ("cols", "reason"),
    [
        ({"likes": [-1]}, "negative:likes"),
        ({"likes": [1.5]}, "not_integer:likes"),
        ({"likes": [math.inf]}, "not_finite:likes"),
        ({"likes": [math.nan]}, "not_finite:likes"),
        ({"likes": [1e30]}, "out_of_range:likes"),
        ({"creator_id": [None]}, "missing_value:creator_id"),
        ({"format": ["hologram"]}, "unknown:format"),
        ({"posted_at": ["yesterday"]}, "bad_type:posted_at"),
        ({"likes": [None]}, "missing_value:counts"),
        ({"reach": [10], "impressions": [5]}, "inconsistent:reach>impressions"),
    ],
)
def test_row_reasons(cols: dict[str, list[object]], reason: str) -> None:
    df = pl.concat(
        [_posts(likes=[1]), _posts(**cols).with_columns(pl.lit("px").alias("post_id"))],
        how="diagonal_relaxed",
    )
    r = validate(df, "posts", source="t.csv")
    assert r.rows_out == 1 and r.rows_rejected == 1
    assert reason in r.rejects["reason"][0].split(";")
    assert r.rejects["row"][0] == 1 and r.rejects["source"][0] == "t.csv"


def test_text_numbers_and_enums_are_normalized() -> None:
    df = _posts(likes=["1,200", " 7 "], format=[" IMAGE", "Video "])
    r = validate(df, "posts")
    assert r.rows_rejected == 0
    assert r.valid["likes"].to_list() == [1200, 7]
    assert r.valid["format"].to_list() == ["image", "video"]


@pytest.mark.parametrize("distinct", ["few", "many"])
def test_enums_normalized_per_value_equal_the_per_row_rules(distinct: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A text enum with few distinct values is normalized once per value (and its unknown-value check is skipped
    when every value is known): the same valid rows, rejects and reasons as the per-row expressions, which still run
    where a column has many distinct values."""
    from influencer_engine import schema

    formats = [" IMAGE", "Video ", "image", "hologram", None, "caro usel", "video"]
    if distinct == "many":
        formats += [f"odd{i}" for i in range(80)]
    df = _posts(format=formats * 3, likes=list(range(len(formats) * 3)))
    got = validate(df, "posts", source="t.csv")
    monkeypatch.setattr(schema, "_ENUM_BY_VALUE", 0)  # every column per row, as before
    want = validate(df, "posts", source="t.csv")
    assert got.valid.equals(want.valid) and got.rejects.equals(want.rejects)
    assert got.valid_rows is not None and want.valid_rows is not None and got.valid_rows.equals(want.valid_rows)
    assert set(got.valid["format"].unique().to_list()) == {"image", "video", "carousel"}
    clean = _posts(format=["image", "video"] * 5, likes=list(range(10)))  # already normal: the column as it is
    assert validate(clean, "posts").valid["format"].to_list() == ["image", "video"] * 5


def test_clean_typed_rows_skip_the_flag_columns_and_keep_their_row_numbers() -> None:
    """Typed rows with nothing wrong take the one-pass path (no flag columns); the same rows with a bad one among
    them take the full path: both give the same valid rows, in order, with the same source row numbers."""
    typed = validate(_posts(likes=list(range(6))), "posts").valid  # typed as the contract says (as Parquet is)
    clean = validate(typed, "posts")
    assert clean.rows_rejected == 0 and clean.valid.equals(typed)
    assert clean.valid_rows is not None and clean.valid_rows.to_list() == list(range(6))
    bad = typed.with_columns(pl.when(pl.col("post_id") == "p3").then(-1).otherwise(pl.col("likes")).alias("likes"))
    mixed = validate(bad, "posts")
    assert mixed.rejects["row"].to_list() == [3] and mixed.rejects["reason"].to_list() == ["negative:likes"]
    assert mixed.valid.equals(typed.filter(pl.col("post_id") != "p3"))
    assert mixed.valid_rows is not None and mixed.valid_rows.to_list() == [0, 1, 2, 4, 5]
    assert clean.rejects.schema == mixed.rejects.schema


def test_timestamps_in_many_spellings_and_unix_seconds() -> None:
    texts = ["2025-01-01T00:00:00Z", "2025-01-01", "2025-01-01 00:00:00", "2025-01-01T02:00:00+02:00"]
    r = validate(_posts(posted_at=texts, likes=[1] * 4), "posts")
    assert r.rows_rejected == 0
    assert r.valid["posted_at"].n_unique() == 1
    secs = validate(_posts(posted_at=[1735689600], likes=[1]), "posts")
    assert secs.valid["posted_at"][0] == r.valid["posted_at"][0]


def test_duplicates_keep_the_first_and_reject_the_rest() -> None:
    df = _posts(post_id=["a", "b", "a", "a"], likes=[1, 2, 3, 4])
    r = validate(df, "posts")
    assert r.valid["likes"].to_list() == [1, 2]
    assert r.rejects["row"].to_list() == [2, 3]
    assert set(r.rejects["reason"]) == {"duplicate:post_id"}


def test_ids_in_order_skip_the_hash_and_ids_out_of_order_still_get_it() -> None:
    """Ids written strictly increasing cannot repeat (no hash needed); a repeat right after, a repeat after 1,000 in
    order, a null id or ids in no order go through the hash check as before."""
    assert strictly_increasing(pl.Series(["a", "b", "c"])) and strictly_increasing(pl.Series([1, 5, 9]))
    assert not strictly_increasing(pl.Series(["a", "b", "b"]))  # equal neighbours: a repeat
    assert not strictly_increasing(pl.Series(["a", None, "c"]))
    assert not strictly_increasing(pl.Series(["b", "a", "c"]))
    ids = [f"p{i:05d}" for i in range(1_500)]
    assert validate(_posts(post_id=ids, likes=[1] * 1_500), "posts").rows_rejected == 0
    late = [*ids[:1_200], ids[1_199], *ids[1_200:1_499]]  # in order for its first 1,000 rows and more
    r = validate(_posts(post_id=late, likes=list(range(1_500))), "posts")
    assert r.rejects["row"].to_list() == [1_200] and r.rejects["reason"].to_list() == ["duplicate:post_id"]
    r = validate(_posts(post_id=["b", "a", "b"], likes=[1, 2, 3]), "posts")
    assert r.rejects["row"].to_list() == [2]


def test_composite_key_duplicates() -> None:
    df = pl.DataFrame(
        {
            "campaign_id": ["k1", "k1", "k1"],
            "creator_id": ["c1", "c2", "c1"],
            "format": ["image", "image", "image"],
            "cost": [1.0, 2.0, 3.0],
        }
    )
    r = validate(df, "outcomes")
    assert r.rejects["reason"].to_list() == ["duplicate:campaign_id+creator_id+format"]


def test_share_groups() -> None:
    cols = audience_columns()["audience_gender"]
    df = pl.DataFrame(
        {
            "creator_id": ["a", "b", "c", "d"],
            "platform": ["instagram"] * 4,
            "handle": ["a", "b", "c", "d"],
            "followers": [100, 100, 100, 100],
            cols[0]: [0.6, 0.6, 0.6, None],
            cols[1]: [0.4, 0.6, None, None],
        }
    )
    r = validate(df, "creators")
    assert r.valid["creator_id"].to_list() == ["a", "d"]
    assert r.rejects["reason"].to_list() == ["share_sum:audience_gender", "share_partial:audience_gender"]


def test_enum_lists() -> None:
    row = {"campaign_id": ["k1", "k2"], "brand_id": ["b", "b"], "brand_category": ["fitness", "fitness"],
           "target_age": ["18_24|25_34", "18_24|99_100"], "target_countries": ["us|gb", "US"],
           "start_date": ["2025-01-01", "2025-01-01"], "end_date": ["2025-01-31", "2024-12-01"]}  # fmt: skip
    r = validate(pl.DataFrame(row), "campaigns")
    assert r.valid["campaign_id"].to_list() == ["k1"]
    assert r.valid["target_countries"][0] == "US|GB"
    assert r.rejects["reason"][0] == "unknown:target_age;inconsistent:end_date<start_date"


def test_missing_required_column_is_a_file_error() -> None:
    with pytest.raises(ContractError) as err:
        validate(_posts(likes=[1]).drop("format"), "posts", source="posts.csv")
    msg = str(err.value)
    assert "posts.csv" in msg and "'format'" in msg and "Fix:" in msg


def test_column_of_text_where_numbers_belong_is_a_file_error() -> None:
    with pytest.raises(ContractError, match=r"column 'likes'.*no value could be read as count"):
        validate(_posts(likes=["many"] * 6), "posts", source="p.csv")


def test_nested_column_is_a_file_error() -> None:
    df = _posts(likes=[1]).with_columns(pl.lit([1, 2]).alias("creator_id"))
    with pytest.raises(ContractError, match="creator_id"):
        validate(df, "posts")


def test_extra_columns_are_reported_not_kept() -> None:
    r = validate(_posts(likes=[1]).with_columns(pl.lit(1).alias("caption_len")), "posts")
    assert r.ignored_columns == ("caption_len",)
    assert r.valid.columns == CONTRACTS["posts"].names


def test_check_references_rejects_orphans_with_their_row() -> None:
    r = validate(_posts(creator_id=["c1", "ghost", "c1"], likes=[1, 2, 3]), "posts", source="p.csv")
    r2 = check_references(r, "creator_id", pl.Series(["c1"]), table="posts", source="p.csv", key=("post_id",))
    assert r2.rows_out == 2 and r2.rows_rejected == 1
    assert r2.rejects.row(0, named=True) | {} == {
        "table": "posts",
        "row": 1,
        "key": "p1",
        "reason": "unknown:creator_id",
        "source": "p.csv",
    }


def test_derive_tier_fills_only_missing() -> None:
    lf = pl.LazyFrame({"followers": [5, 20_000, 2_000_000, 50], "tier": [None, None, None, "mega"]})
    out = derive_tier(lf, TierConfig()).collect()
    assert out["tier"].to_list() == ["nano", "micro", "mega", "mega"]


def test_empty_frame_with_header_is_valid() -> None:
    r = validate(_posts(likes=[1]).head(0), "posts")
    assert (r.rows_in, r.rows_out, r.rows_rejected) == (0, 0, 0)
