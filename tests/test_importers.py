from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from influencer_engine.errors import InputError
from influencer_engine.importers._text import parse_number
from influencer_engine.importers.instagram_posts import import_instagram_posts
from influencer_engine.importers.rankings import import_rankings, read_ranking_file


def _manifest(out: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out / "manifest.json").read_text())


def _reconciles(m: dict) -> None:  # type: ignore[type-arg]
    for name, t in m["tables"].items():
        assert t["rows_in"] == t["rows_out"] + t["rows_rejected"], name


def test_parse_number() -> None:
    s = pl.Series(["48.5M", "274.9K", "1,234", "477900000.00", "1.2B", "#VALOR!", "N/A'", "-", "", "12 k", "abc"])
    out = pl.select(parse_number(pl.lit(s))).to_series().to_list()
    assert out[:5] == [48_500_000.0, 274_900.0, 1234.0, 477_900_000.0, 1_200_000_000.0]
    assert out[5:9] == [None] * 4
    assert out[9] == 12_000.0 and out[10] is None


MESSY = (
    'S.no,Tiktoker name,Tiktok name,"\nFollowers",Views (Avg.),Views (Avg.),Likes (Avg.),Comments (Avg.)\n'
    ",,,,,,,\n"
    "1,mrbeast,MrBeast,55.6M,38.1M,38100000,3.8M,19K\n"
    "2,karol.g,Karol G,#VALOR!,23.7M,N/A',3.4M,21.7K\n"
    '3,"Some Name With Spaces",x,1.1M,2M,2000000,#NAME?,-\n'
    "4,mrbeast,MrBeast,55.7M,38M,38000000,3.7M,18K\n"
    "5,,Nobody,1M,1M,1000000,1K,10\n"
)


def test_messy_ranking_file_rows_conserved(tmp_path: Path) -> None:
    p = tmp_path / "tiktok_2022-11.csv"
    p.write_text(MESSY)
    rows, rejects, _ = read_ranking_file(p)
    assert rows.height + rejects.height == 6
    reasons = dict(zip(rejects["row"].to_list(), rejects["reason"].to_list(), strict=True))
    assert reasons == {
        1: "empty_row",
        3: "bad_type:followers",
        5: "duplicate:handle",
        6: "missing_value:handle",
    }
    first = rows.row(0, named=True)
    assert first["handle"] == "mrbeast" and first["name"] == "MrBeast"
    assert first["followers"] == 55_600_000 and first["avg_views"] == 38_100_000 and first["avg_comments"] == 19_000
    spaced = rows.filter(pl.col("rank") == 3).row(0, named=True)
    assert spaced["avg_likes"] is None and spaced["avg_comments"] is None  # spreadsheet errors -> missing


def test_shifted_country_column(tmp_path: Path) -> None:
    p = tmp_path / "instagram_2022-06.csv"
    p.write_text(
        "instagram name,influencer name ,Category_1,Category_2,Subscribers count,Subscribers count,Views avg.,"
        "Likes avg,Likes avg,Comments avg.,Comments avg.\n"
        "433,433,Sports with a ball,,50.7M,50700000,Spain,274.9K,274900,456.7K,456700\n"
        "kyliejenner,Kylie,Fashion,,368M,368000000,United States,3.5M,3500000,5.5M,5500000\n"
    )
    rows, rejects, notes = read_ranking_file(p)
    assert rejects.is_empty() and notes
    assert rows["country"].to_list() == ["ES", "US"]
    assert rows["authentic_engagement"].to_list() == [274_900, 3_500_000]
    assert rows["avg_engagement"].to_list() == [456_700, 5_500_000]
    assert rows["avg_views"].null_count() == 2


def test_bad_file_name_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "rankings.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="file name"):
        read_ranking_file(p)


def test_instagram_posts_synthetic(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "influencer_names_final.csv").write_text("username,following,post,followers\nann,10,5,20000\nbob,3,2,x\n")
    (src / "data_batch_1.csv").write_text(
        "link,likes,comment_counts,dates,captions,type_posts,username\n"
        'https://www.instagram.com/p/AAA/,100,3,1594174009,"multi\nline\ncaption",GraphImage,ann\n'
        "https://www.instagram.com/p/BBB/,5000,0,1594174010,hi,GraphVideo,ann\n"
        "https://www.instagram.com/p/CCC/,-1,0,1594174011,,GraphSidecar,ann\n"
        "https://www.instagram.com/p/DDD/,7,1,1594174012,,GraphImage,bob\n"
        "https://www.instagram.com/p/AAA/,100,3,1594174009,dup,GraphImage,ann\n"
    )
    out = tmp_path / "out"
    m = _manifest(import_instagram_posts(src, out).out_dir)
    _reconciles(m)
    assert m["tables"]["creators"]["reasons"] == {"bad_type:followers": 1}
    assert m["tables"]["posts"]["rows_in"] == 5
    assert m["tables"]["posts"]["reasons"] == {
        "negative:likes": 1,
        "duplicate:post_id": 1,
        "unknown:creator_id": 1,
    }
    posts = pl.read_parquet(out / "posts.parquet")
    assert posts["post_id"].to_list() == ["AAA", "BBB"]
    assert posts["comments"].to_list() == [3, None]  # 5,000 likes and 0 comments: comments were off
    assert pl.read_parquet(out / "rejects.parquet").height == 4  # 1 creator + 3 posts


@pytest.mark.realdata
def test_real_instagram_posts_import(real_data: Path, tmp_path: Path) -> None:
    m = _manifest(import_instagram_posts(real_data / "instagram_posts_2015_2020", tmp_path).out_dir)
    _reconciles(m)
    assert m["tables"]["posts"]["rows_in"] == 48_174  # the source README's count
    assert m["tables"]["creators"]["rows_in"] == 720
    posts = pl.read_parquet(tmp_path / "posts.parquet")
    assert posts["creator_id"].n_unique() == 524
    assert set(posts["format"]) == {"image", "video", "carousel"}


@pytest.mark.realdata
def test_real_rankings_import(real_data: Path, tmp_path: Path) -> None:
    src = real_data / "top1000_creators_2022"
    m = _manifest(import_rankings(src, tmp_path).out_dir)
    _reconciles(m)
    # rows in = every data row of every file (header excluded), counted independently of the importer
    physical = sum(pl.read_csv(p, has_header=False, infer_schema=False).height - 1 for p in src.glob("*.csv"))
    assert m["tables"]["rankings"]["rows_in"] == physical
    rankings = pl.read_parquet(tmp_path / "rankings.parquet")
    assert rankings.group_by("platform").len()["len"].min() > 4000  # type: ignore[operator]
    assert rankings["followers"].null_count() == 0
    creators = pl.read_parquet(tmp_path / "creators.parquet")
    assert creators["creator_id"].is_unique().all()
    assert m["derived"]["creators"]["accounts"] == creators.height + m["tables"]["creators"]["rows_rejected"]
