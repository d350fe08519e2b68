"""A corpus of bad inputs, generated (nothing committed): data files, briefs and tampered bundles.

Each case says what a careless user or an attacker would hand the engine; the hardening tests and
``benchmarks/bench_hardening.py`` run every case through the CLI and the API and check the answer: a clean result
(rows in = rows out + rows rejected, reasons for each reject) or one line that names the problem and the fix,
never an internal error, never a 500, and no temporary file left behind.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

__all__ = ["BRIEF_CASES", "BUNDLE_CASES", "DATA_CASES", "BriefCase", "BundleCase", "DataCase", "data_case_files"]

# words of the validation library that mean nothing to a planner
JARGON = ("Extra inputs are not permitted", "Value error,", "(top level)", "Field required", "Traceback",
          "internal error")  # fmt: skip


# ------------------------------------------------------------------------------------------------ data files
@dataclass(frozen=True)
class DataCase:
    name: str
    family: str
    # writes the case's creators (and posts) files into a folder, from a good world's tables; returns their paths
    make: Callable[[pl.DataFrame, pl.DataFrame, Path], dict[str, Path]]
    clean_error: bool  # the whole input is unusable: one error line; otherwise rows are scored or rejected


def _csv(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(pl.all().cast(pl.String))


def _write(folder: Path, creators: pl.DataFrame | bytes | str | None, posts: pl.DataFrame | bytes | str | None,
           *, suffix: str = "csv", post_suffix: str = "parquet") -> dict[str, Path]:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name, value, ext in (("creators", creators, suffix), ("posts", posts, post_suffix)):
        if value is None:
            continue
        path = folder / f"{name}.{ext}"
        if isinstance(value, bytes):
            path.write_bytes(value)
        elif isinstance(value, str):
            path.write_text(value, encoding="utf-8")
        elif ext == "parquet":
            value.write_parquet(path)
        else:
            _csv(value).write_csv(path, separator="\t" if ext == "tsv" else ",")
        out[name] = path
    return out


def _bad_rows(c: pl.DataFrame) -> pl.DataFrame:
    """Rows that break the contract one way each, beside good ones."""
    s = _csv(c)
    followers = ["-5", "abc", "1e400", "NaN", "", "12.5", "99999999999999999999", "7"]
    platforms = ["instagram", "tiktok", "youtube", "instagram", "tiktok", "youtube", "snapchat", "tiktok"]
    bad = s.head(8).with_columns(pl.Series("followers", followers), pl.Series("platform", platforms))
    dup = s.slice(10, 2).with_columns(pl.lit(s["creator_id"][20]).alias("creator_id"))  # duplicate ids
    no_id = s.slice(30, 1).with_columns(pl.lit(None, dtype=pl.String).alias("creator_id"))
    return pl.concat([bad, s.slice(8, 200), dup, no_id])


def _formula_ids(c: pl.DataFrame) -> pl.DataFrame:
    evil = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\tx"]
    head = c.head(len(evil)).with_columns(pl.Series("handle", evil))
    return pl.concat([head, c.slice(len(evil), 100)])


def _posts_of(p: pl.DataFrame, c: pl.DataFrame) -> pl.DataFrame:
    return p.filter(pl.col("creator_id").is_in(c["creator_id"].implode()))


def _odd_posts(p: pl.DataFrame, c: pl.DataFrame) -> pl.DataFrame:
    mine = _posts_of(p, c)
    future = mine.head(3).with_columns(pl.lit("2099-01-01T00:00:00Z").str.to_datetime(time_zone="UTC")
                                       .alias("posted_at"), (pl.col("post_id") + "_f").alias("post_id"))  # fmt: skip
    ancient = mine.head(3).with_columns(pl.lit("1950-01-01T00:00:00Z").str.to_datetime(time_zone="UTC")
                                        .alias("posted_at"), (pl.col("post_id") + "_a").alias("post_id"))  # fmt: skip
    orphan = mine.head(3).with_columns(
        pl.lit("nobody").alias("creator_id"), (pl.col("post_id") + "_o").alias("post_id")
    )
    negative = mine.head(2).with_columns(pl.lit(-4, dtype=mine.schema["likes"]).alias("likes"),
                                         (pl.col("post_id") + "_n").alias("post_id"))  # fmt: skip
    return pl.concat([mine, future, ancient, orphan, negative], how="vertical_relaxed")


def _latin1(c: pl.DataFrame, p: pl.DataFrame, d: Path) -> dict[str, Path]:
    text = "creator_id,platform,handle,followers\nc1,instagram,Jos\xe9,5000\n"
    return _write(d, text.encode("latin-1"), None)


def _truncated_parquet(c: pl.DataFrame, p: pl.DataFrame, d: Path) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    c.head(50).write_parquet(d / "_full.parquet")
    return _write(d, (d / "_full.parquet").read_bytes()[:300], None, suffix="parquet")


def _bom_crlf(c: pl.DataFrame, p: pl.DataFrame, d: Path) -> dict[str, Path]:
    text = _csv(c.head(30)).write_csv().replace("\n", "\r\n")
    return _write(d, b"\xef\xbb\xbf" + text.encode(), None)


def _line_breaks(c: pl.DataFrame, p: pl.DataFrame, d: Path) -> dict[str, Path]:
    return _write(d, c.head(30).with_columns(pl.lit('two\nlines, "quoted"').alias("handle")), None)


def _words_for_numbers(c: pl.DataFrame, p: pl.DataFrame, d: Path) -> dict[str, Path]:
    return _write(d, _csv(c.head(20)).with_columns(pl.lit("many").alias("followers")), None)


DATA_CASES: tuple[DataCase, ...] = (
    DataCase("empty file", "unreadable file", lambda c, p, d: _write(d, b"", None), True),
    DataCase("header only", "empty table",
             lambda c, p, d: _write(d, "creator_id,platform,handle,followers\n", None), False),
    DataCase("not UTF-8", "unreadable file", _latin1, True),
    DataCase("truncated Parquet", "unreadable file", _truncated_parquet, True),
    DataCase("garbage as Parquet", "unreadable file",
             lambda c, p, d: _write(d, b"PK\x03\x04" + b"\x00" * 64, None, suffix="parquet"), True),
    DataCase("semicolon CSV", "wrong layout",
             lambda c, p, d: _write(d, _csv(c.head(20)).write_csv(separator=";"), None), True),
    DataCase("tabs in a .csv", "wrong layout",
             lambda c, p, d: _write(d, _csv(c.head(20)).write_csv(separator="\t"), None), True),
    DataCase("no followers column", "wrong layout",
             lambda c, p, d: _write(d, c.head(20).drop("followers"), None), True),
    DataCase("a column of words where numbers go", "wrong layout", _words_for_numbers, True),
    DataCase("bad rows beside good ones", "row rejects",
             lambda c, p, d: _write(d, _bad_rows(c), _posts_of(p, c)), False),
    DataCase("creators and no posts table", "optional tables", lambda c, p, d: _write(d, c.head(150), None), False),
    DataCase("posts of unknown creators, future and 1950 dates, negative counts", "row rejects",
             lambda c, p, d: _write(d, c.head(120), _odd_posts(p, c.head(120))), False),
    DataCase("formula-like handles", "formula injection", lambda c, p, d: _write(d, _formula_ids(c), None), False),
    DataCase("byte-order mark and CRLF lines", "text quirks", _bom_crlf, False),
    DataCase("quoted line breaks in handles", "text quirks", _line_breaks, False),
)  # fmt: skip


def data_case_files(case: DataCase, creators: pl.DataFrame, posts: pl.DataFrame, folder: Path) -> dict[str, Path]:
    """Write ``case`` into ``folder`` (a fresh dataset folder) and return its table files."""
    shutil.rmtree(folder, ignore_errors=True)
    files = case.make(creators, posts, folder)
    for helper in folder.glob("_*"):
        helper.unlink()
    return files


# ------------------------------------------------------------------------------------------------ briefs
_EXAMPLE = Path(__file__).resolve().parents[1] / "configs" / "briefs" / "fitness_january.toml"


@dataclass(frozen=True)
class BriefCase:
    name: str
    family: str
    change: Callable[[dict[str, object]], dict[str, object] | str]  # the good brief -> a bad one (or raw text)
    words: str  # what the one-line answer must say ("" when the brief is valid and must plan)


def _with(**kw: object) -> Callable[[dict[str, object]], dict[str, object]]:
    return lambda b: {**b, **kw}


def _renamed(old: str, new: str) -> Callable[[dict[str, object]], dict[str, object]]:
    return lambda b: {(new if k == old else k): v for k, v in b.items()}


def _constraints(**kw: object) -> Callable[[dict[str, object]], dict[str, object]]:
    return lambda b: {**b, "constraints": {**dict(b.get("constraints") or {}), **kw}}  # type: ignore[dict-item]


BRIEF_CASES: tuple[BriefCase, ...] = (
    BriefCase("budget NaN", "numbers", _with(budget=math.nan), "budget"),
    BriefCase("budget infinite", "numbers", _with(budget=math.inf), "budget"),
    BriefCase("budget zero", "numbers", _with(budget=0), "budget must be positive"),
    BriefCase("budget in words", "numbers", _with(budget="lots"), "budget"),
    BriefCase("negative order value", "numbers", _with(average_order_value=-20), "average_order_value"),
    BriefCase("budget a cent", "infeasible", _with(budget=0.01), "budget $0.01"),
    BriefCase("start in 1900", "dates", _with(start_date="1900-01-05"), "start_date"),
    BriefCase("start in 2200", "dates", _with(start_date="2200-01-05"), "start_date"),
    BriefCase("end before start", "dates", _with(end_date="2020-01-01"), "end_date"),
    BriefCase("not a date", "dates", _with(start_date="next week"), "start_date"),
    BriefCase("misspelled key", "keys", _renamed("brand_category", "brand_catgory"), "did you mean 'brand_category'"),
    BriefCase("unknown key", "keys", _with(colour="blue"), "colour'"),
    BriefCase(
        "missing category", "keys", lambda b: {k: v for k, v in b.items() if k != "brand_category"}, "brand_category"
    ),
    BriefCase("unknown goal", "vocabulary", _with(goal="likes"), "goal 'likes' is unknown"),
    BriefCase("unknown platform", "vocabulary", _with(platforms=["snapchat"]), "snapchat"),
    BriefCase(
        "capitalised platform and goal", "vocabulary", _with(platforms=["Instagram", "TikTok"], goal="Clicks"), ""
    ),
    BriefCase("roster min above max", "constraints", _constraints(roster_min=9, roster_max=3), "roster_min 9"),
    BriefCase("share above 1", "constraints", _constraints(tiers={"micro": {"max_share": 1.5}}), "share"),
    BriefCase("unknown tier limit", "constraints", _constraints(tiers={"giant": {"max_count": 1}}), "giant"),
    BriefCase(
        "included and excluded", "constraints", _constraints(include=["a"], exclude=["a"]), "both included and excluded"
    ),
    BriefCase(
        "budget = nan in TOML",
        "numbers",
        lambda b: _EXAMPLE.read_text().replace("budget = 50000", "budget = nan"),
        "budget",
    ),
    BriefCase("not TOML", "syntax", lambda b: "goal = = conversions\n[[", "not valid"),
    BriefCase("empty file", "syntax", lambda b: "", "brand_category"),
)


# ------------------------------------------------------------------------------------------------ bundles
@dataclass(frozen=True)
class BundleCase:
    name: str
    tamper: Callable[[Path], None]  # changes a copy of a good bundle in place
    words: str


def _manifest(path: Path, change: Callable[[dict[str, object]], object]) -> None:
    """Edit manifest.json in place (``change`` mutates the parsed manifest; what it returns is ignored)."""
    m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    change(m)
    (path / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


def _intercept_plus_5(m: dict[str, object]) -> None:
    kpis = m["kpis"]
    assert isinstance(kpis, dict)
    kpis["reach"]["state"]["intercept"] += 5


def _garbage_model_with_its_checksum(path: Path) -> None:
    import hashlib

    text = "tree\nversion=v4\nnot a model at all\n"
    (path / "kpi_reach.txt").write_text(text, encoding="utf-8")

    def fix(m: dict[str, object]) -> None:
        m["kpis"]["reach"]["sha256"] = hashlib.sha256(text.encode()).hexdigest()  # type: ignore[index]
        _reseal(m)

    _manifest(path, fix)


def _reseal(m: dict[str, object]) -> None:
    from influencer_engine.modeling.predictor import BundleManifest

    m["checksum"] = BundleManifest.model_validate(m).content_sha256()


def _reversed_features(m: dict[str, object]) -> None:
    features = m["features"]
    assert isinstance(features, list)
    features.reverse()
    _reseal(m)


BUNDLE_CASES: tuple[BundleCase, ...] = (
    BundleCase("model text edited", lambda p: (p / "kpi_clicks.txt").open("a").write("\n"), "checksum"),
    BundleCase("intercept + 5 in the manifest", lambda p: _manifest(p, _intercept_plus_5), "its own checksum"),
    BundleCase("manifest without kpis", lambda p: _manifest(p, lambda m: m.pop("kpis")), "kpis"),
    BundleCase("manifest checksum removed", lambda p: _manifest(p, lambda m: m.pop("checksum")), "checksum"),
    BundleCase("garbage model text with a matching checksum", _garbage_model_with_its_checksum, "kpi_reach.txt"),
    BundleCase("model file missing", lambda p: (p / "kpi_revenue.txt").unlink(), "kpi_revenue.txt"),
    BundleCase("manifest not JSON", lambda p: (p / "manifest.json").write_text("{nope"), "not valid JSON"),
    BundleCase("manifest a list", lambda p: (p / "manifest.json").write_text("[1, 2]"), "schema"),
    BundleCase("manifest empty", lambda p: (p / "manifest.json").write_text(""), "not valid JSON"),
    BundleCase("older schema", lambda p: _manifest(p, lambda m: m.update(schema_version=1)), "schema"),
    BundleCase("unknown key in the manifest", lambda p: _manifest(p, lambda m: m.update(extra=1)), "extra"),
    BundleCase("feature list changed (manifest resealed)", lambda p: _manifest(p, _reversed_features), "feature list"),
    BundleCase("not a bundle folder", lambda p: (p / "manifest.json").unlink(), "not a model bundle"),
)
