"""`ie import table --map`: any export to the contracts through a mapping file, every row accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from influencer_engine.cli import main

MAPPINGS = Path(__file__).resolve().parents[1] / "configs" / "mappings"

VIDEOS = """authorMeta.name,authorMeta.fans,authorMeta.region,id,createTimeISO,playCount,diggCount,commentCount,shareCount,isAd
khaby.lame,149.2M,IT,7001,2022-09-01T10:00:00.000Z,17.3M,2.3M,15.2K,Share,false
khaby.lame,149.3M,IT,7002,2022-09-05T10:00:00.000Z,12.1M,1.9M,12K,8.7K,false
addisonre,88.7M,US,7003,2022-09-02T18:30:00.000Z,22M,906.6K,7.6K,26.2K,true
addisonre,88.7M,US,7004,not a date,1M,1K,10,5,false
belindatok,N/A,MX,7005,2022-09-03T12:00:00.000Z,14.2M,1.5M,14.5K,15.3K,
"""  # noqa: E501

SHEET = """Handle,Platform,Followers,Category,Country,Price (USD),Credibility
@fitwithana,Instagram,12.5K,Fitness,US,"$1,200",87%
@chefmo,TikTok,"1,250,000",Food,GB,,0.81
@nobody,Instagram,lots,Travel,FR,$300,
@quiet,YouTube,980,Tech,?,unknown,
"""


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def _manifest(out: Path) -> dict[str, dict[str, int]]:
    tables = json.loads((out / "manifest.json").read_text())["tables"]
    for name, t in tables.items():
        assert t["rows_in"] == t["rows_out"] + t["rows_rejected"], name
    return dict(tables)


def _import(text: str, name: str, mapping: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
            ) -> tuple[Path, str]:  # fmt: skip
    """Write ``text`` as ``name`` and import it with ``configs/mappings/<mapping>``: (out folder, what was printed)."""
    src = tmp_path / name
    src.write_text(text)
    out = tmp_path / "out"
    code, printed, err = _run(["import", "table", str(src), "--map", str(MAPPINGS / mapping), "--out", str(out)],
                              capsys)  # fmt: skip
    assert code == 0, err
    return out, printed


def test_tiktok_video_export_reads_abbreviated_counts_and_placeholders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, text = _import(VIDEOS, "videos.csv", "tiktok_videos.toml", tmp_path, capsys)
    creators = pl.read_parquet(out / "creators.parquet").sort("creator_id")
    posts = pl.read_parquet(out / "posts.parquet").sort("post_id")
    # one row per author, the latest follower count; "149.3M" is a count of people
    assert creators["creator_id"].to_list() == ["tiktok:addisonre", "tiktok:khaby.lame"]
    assert creators["followers"].to_list() == [88_700_000, 149_300_000]
    assert posts["views"].to_list() == [17_300_000, 12_100_000, 22_000_000]
    assert posts["shares"].to_list()[0] is None  # "Share" is the button's label, not a count
    assert posts["sponsored"].to_list() == [False, False, True]
    rejects = pl.read_parquet(out / "rejects.parquet")
    reasons = dict(zip(rejects["key"], rejects["reason"], strict=True))
    assert reasons["tiktok:7004"] == "unparseable:posted_at"
    assert reasons["tiktok:7005"] == "unknown:creator_id"  # its author has no follower count ("N/A")
    assert reasons["tiktok:belindatok"] == "missing_value:followers"
    # rejects name the row of the source file
    assert rejects.filter(pl.col("key") == "tiktok:7004")["row"].item() == 4
    tables = _manifest(out)
    assert tables["creators"]["rows_in"] == tables["posts"]["rows_in"] == 5
    assert "merged:creator_id" in text
    # the export has no description column: the optional caption is null, not an error
    assert posts["caption"].null_count() == posts.height
    # with one, the caption comes through
    with_text = VIDEOS.replace("isAd\n", "isAd,text\n", 1).replace("false\n", "false,hello #fyp\n", 1)
    (tmp_path / "t").mkdir()
    out2, _ = _import(with_text, "videos.csv", "tiktok_videos.toml", tmp_path / "t", capsys)
    assert pl.read_parquet(out2 / "posts.parquet").sort("post_id")["caption"].to_list()[0] == "hello #fyp"


def test_spreadsheet_creators_plan_with_what_they_have(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = _import(SHEET, "creators.csv", "creators_spreadsheet.toml", tmp_path, capsys)
    c = pl.read_parquet(out / "creators.parquet").sort("creator_id")
    assert c["creator_id"].to_list() == ["chefmo", "fitwithana", "quiet"]
    row = c.filter(pl.col("creator_id") == "fitwithana").row(0, named=True)
    assert row["followers"] == 12_500 and row["price_image"] == 1200.0 and row["audience_credibility"] == 0.87
    assert row["platform"] == "instagram" and row["categories"] == "fitness"
    assert c.filter(pl.col("creator_id") == "quiet")["country"].item() is None  # "?" means missing
    rejects = pl.read_parquet(out / "rejects.parquet")
    assert rejects["reason"].to_list() == ["unparseable:followers"] and rejects["row"].to_list() == [3]
    _manifest(out)
    brief = tmp_path / "brief.toml"
    brief.write_text((Path(__file__).resolve().parents[1] / "configs" / "briefs" / "fitness_january.toml").read_text())
    code, _, err = _run(["score", "--candidates", str(out), "--brief", str(brief), "--model", str(trained["bundle"]),
                            "--out", str(tmp_path / "s")], capsys)  # fmt: skip
    assert code == 0, err
    scores = pl.read_parquet(tmp_path / "s" / "scores").sort("creator_id")
    assert scores["price_source"].to_list() == ["estimated", "quoted", "estimated"]
    assert scores["credibility_source"].to_list() == ["given", "given", "estimated"]


def test_bad_mappings_name_the_key_and_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "videos.csv"
    src.write_text(VIDEOS)
    cases = {
        "unknown": ('[[sources]]\nfiles = "*.csv"\n[sources.tables.creators.columns]\ncreator_id = "id"\n'
                    'handle = "id"\nplatform = { value = "tiktok" }\nfollowers = "id"\nfans = "id"\n',
                    "not columns of the creators contract"),
        "required": ('[[sources]]\nfiles = "*.csv"\n[sources.tables.creators.columns]\ncreator_id = "id"\n',
                     "no mapping for required column(s)"),
        "column": ('[[sources]]\nfiles = "*.csv"\n[sources.tables.creators.columns]\ncreator_id = "user"\n'
                   'handle = "id"\nplatform = { value = "tiktok" }\nfollowers = "id"\n', "has no column 'user'"),
    }  # fmt: skip
    for name, (body, words) in cases.items():
        mapping = tmp_path / f"{name}.toml"
        mapping.write_text(body)
        code, _, err = _run(["import", "table", str(src), "--map", str(mapping), "--out", str(tmp_path / name)],
                            capsys)  # fmt: skip
        assert code == 2 and words in err and "Fix:" in err and err.count("\n") == 1, (name, err)
        assert not (tmp_path / name / "creators.parquet").exists()


@pytest.mark.realdata
def test_instagram_mapping_matches_the_hard_coded_importer(
    real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = real_data / "instagram_posts_2015_2020"
    code, _, err = _run(["import", "table", str(src), "--map", str(MAPPINGS / "instagram_posts_2015_2020.toml"),
                         "--out", str(tmp_path / "m")], capsys)  # fmt: skip
    assert code == 0, err
    code, _, err = _run(["import", "instagram-posts", str(src), "--out", str(tmp_path / "h")], capsys)
    assert code == 0, err
    for table in ("creators", "posts"):
        mapped = pl.read_parquet(tmp_path / "m" / f"{table}.parquet")
        coded = pl.read_parquet(tmp_path / "h" / f"{table}.parquet")
        key = "creator_id" if table == "creators" else "post_id"
        assert mapped.height == coded.height and set(mapped[key]) == set(coded[key])
        cols = ["followers"] if table == "creators" else ["posted_at", "format", "likes"]
        joined = mapped.select(key, *cols).join(coded.select(key, *cols), on=key, suffix="_h")
        for c in cols:
            assert (joined[c] == joined[f"{c}_h"]).all(), c


@pytest.mark.realdata
def test_tiktok_rankings_mapping_reads_the_text_counts(
    real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = real_data / "top1000_creators_2022" / "tiktok_2022-09.csv"
    code, _, err = _run(["import", "table", str(src), "--map", str(MAPPINGS / "top1000_tiktok_2022.toml"), "--out",
                         str(tmp_path / "t")], capsys)  # fmt: skip
    assert code == 0, err
    c = pl.read_parquet(tmp_path / "t" / "creators.parquet")
    assert c.height > 900 and c["followers"].min() > 1_000  # type: ignore[operator]  # ranked by engagement, not size
    assert c.filter(pl.col("creator_id") == "tiktok:khaby.lame")["followers"].item() == 149_200_000
    _manifest(tmp_path / "t")


def test_every_shipped_mapping_loads() -> None:
    from influencer_engine.importers.mapped import load_mapping

    paths = sorted(MAPPINGS.glob("*.toml"))
    assert len(paths) >= 4
    for path in paths:
        m = load_mapping(path)
        assert m.description and any("creators" in s.tables for s in m.sources), path
