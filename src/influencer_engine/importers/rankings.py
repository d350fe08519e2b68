"""Importer for top-1000 ranking snapshots (``shared/data/real/top1000_creators_2022``).

Every file is a scraped spreadsheet with its own header spelling, most numbers twice (as "48.5M" and as
48500000), spreadsheet error cells, headers with line breaks, an empty first row in one file and, in the June
Instagram file, columns shifted by one. The importer maps each file's header to one set of fields by keyword,
reads numbers from either spelling, and turns every unusable row into a reject with its reason.

Output: ``rankings`` (one row per creator and snapshot, rows conserved against the files) and ``creators``
(the latest snapshot of each account, mapped to the creators contract, with its averages per recent post:
``avg_views``, ``avg_likes``, ``avg_comments``, ``avg_shares``, ``avg_engagement``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from influencer_engine.errors import InputError
from influencer_engine.importers._text import country_code, is_junk, normalize_header, parse_number
from influencer_engine.io import Manifest, TableCount
from influencer_engine.registry import PLATFORMS
from influencer_engine.schema import CONTRACTS, REJECT_SCHEMA, validate

__all__ = ["RANKING_COLUMNS", "import_rankings", "read_ranking_file"]

_NUMERIC = ("followers", "avg_views", "avg_likes", "avg_comments", "avg_shares", "authentic_engagement",
            "avg_engagement")  # fmt: skip
RANKING_COLUMNS = {
    "platform": pl.String, "snapshot": pl.String, "rank": pl.Int64, "handle": pl.String, "name": pl.String,
    "categories": pl.String, "country": pl.String, **{c: pl.Float64 for c in _NUMERIC},
    "source_file": pl.String, "source_row": pl.Int64,
}  # fmt: skip
_FILE_RE = re.compile(r"^(instagram|tiktok|youtube)_(\d{4}-\d{2}|undated)\.csv$")
_HANDLE_RE = r"^@?[A-Za-z0-9._]+$"


@dataclass(frozen=True)
class _Field:
    name: str
    columns: tuple[str, ...]


def _classify(header: str) -> str | None:
    """The field a header belongs to, by keyword (order matters: 'authentic engagement' before 'engagement')."""
    h = re.sub(r"[^a-z0-9]+", " ", header).strip()
    compact = h.replace(" ", "")
    rules = (
        ("rank", compact in ("rank", "sno", "rowcell")),
        ("authentic_engagement", "auth" in h),
        ("avg_engagement", "engagement" in h or compact.startswith("eng")),
        ("avg_views", "view" in h),
        ("avg_likes", "like" in h),
        ("avg_comments", "comment" in h),
        ("avg_shares", "share" in h),
        ("followers", "follower" in h or "subscriber" in h),
        ("country", "country" in h),
        ("category", "categor" in h),
        ("namelike", any(k in h for k in ("name", "tiktoker", "youtuber", "channel", "instagram"))),
    )
    for name, hit in rules:
        if hit:
            return name
    return None


def _handle_score(values: pl.Series) -> float:
    """How much a column looks like account handles: handle characters only (no spaces), and mostly lower case
    (display names such as 'MrBeast' pass the first test but rarely the second)."""
    v = values.drop_nulls()
    if v.is_empty():
        return 0.0
    frame = v.to_frame("v")
    handle_like = float(frame.select(pl.col("v").str.contains(_HANDLE_RE).mean()).item() or 0.0)
    lower = float(frame.select((pl.col("v") == pl.col("v").str.to_lowercase()).mean()).item() or 0.0)
    return handle_like + 0.5 * lower


def read_ranking_file(path: Path) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """Read one snapshot: (rows mapped to RANKING_COLUMNS, rejects, notes). Rows in = rows out + rejects."""
    m = _FILE_RE.match(path.name)
    if not m:
        raise InputError(
            f"{path.name}: cannot tell platform and snapshot from the file name.",
            fix="name ranking files <instagram|tiktok|youtube>_<yyyy-mm|undated>.csv",
        )
    platform, snapshot = m.group(1), (None if m.group(2) == "undated" else m.group(2))
    try:
        raw = pl.read_csv(path, has_header=False, infer_schema=False)
    except pl.exceptions.NoDataError as exc:
        raise InputError(f"{path} is empty.", fix="remove it or restore the original file") from exc
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path} cannot be read as CSV: {str(exc).splitlines()[0]}.", fix="check the file") from exc
    headers = [normalize_header(h) for h in raw.row(0)]
    data = raw.slice(1).with_row_index("source_row", offset=1)
    notes: list[str] = []

    groups: dict[str, list[str]] = {}
    for col, header in zip(raw.columns, headers, strict=True):
        field = _classify(header)
        if field:
            groups.setdefault(field, []).append(col)
    namelike = groups.get("namelike", [])
    if not namelike:
        raise InputError(f"{path}: no handle or name column found (headers: {headers}).", fix="keep the header row")
    scores = {c: _handle_score(data[c]) for c in namelike}
    handle_col = max(namelike, key=lambda c: (scores[c], -namelike.index(c)))
    name_cols = [c for c in namelike if c != handle_col]

    def text_of(col: str) -> pl.Expr:
        return pl.when(is_junk(pl.col(col))).then(None).otherwise(pl.col(col).str.strip_chars())

    def number(field: str) -> pl.Expr:
        cols = groups.get(field, [])
        # the numeric spelling (usually the second column) first, the abbreviated one as a fallback
        return pl.coalesce([parse_number(pl.col(c)) for c in reversed(cols)]) if cols else pl.lit(None, pl.Float64)

    # The June Instagram file is shifted: its "Views avg." holds the country, and its likes / comments pairs
    # hold authentic and average engagement (they match the other snapshots' engagement for the same accounts).
    views = groups.get("avg_views", [])
    if views and data.height:
        numeric_share = data.select(parse_number(pl.col(views[0])).is_not_null().mean()).item() or 0.0
        wordy_share = data.select(pl.col(views[0]).str.contains(r"^[A-Za-z ]{3,}$").mean()).item() or 0.0
        if wordy_share > 0.5 and numeric_share < 0.1:
            groups["country"] = groups.get("country", []) + views
            groups.pop("avg_views")
            if platform == "instagram":
                groups["authentic_engagement"] = groups.pop("avg_likes", [])
                groups["avg_engagement"] = groups.pop("avg_comments", [])
            notes.append(
                f"{path.name}: the views column holds country names; read as country"
                + (
                    ", and the likes / comments columns as authentic / average engagement"
                    if platform == "instagram"
                    else ""
                )
            )

    country_cols = groups.get("country", [])
    category_cols = groups.get("category", [])
    empty = pl.all_horizontal(pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in raw.columns)
    mapped = data.select(
        pl.lit(platform).alias("platform"),
        pl.lit(snapshot, dtype=pl.String).alias("snapshot"),
        (
            parse_number(pl.col(groups["rank"][0])).cast(pl.Int64, strict=False)
            if "rank" in groups
            else pl.lit(None, pl.Int64)
        ).alias("rank"),
        text_of(handle_col).str.strip_prefix("@").alias("handle"),
        (pl.coalesce([text_of(c) for c in name_cols]) if name_cols else pl.lit(None, pl.String)).alias("name"),
        (
            pl.concat_str([text_of(c) for c in category_cols], separator="|", ignore_nulls=True)
            if category_cols
            else pl.lit(None, pl.String)
        ).alias("categories"),
        (
            pl.coalesce([country_code(pl.col(c)) for c in country_cols]) if country_cols else pl.lit(None, pl.String)
        ).alias("country"),
        *(number(f).alias(f) for f in _NUMERIC),
        pl.lit(path.name).alias("source_file"),
        pl.col("source_row").cast(pl.Int64),
        empty.alias("__empty"),
        (
            pl.concat_str([pl.col(c) for c in groups.get("followers", [])], separator="", ignore_nulls=True)
            .fill_null("")
            .str.strip_chars()
            != ""
        ).alias("__followers_given"),
    ).with_columns(pl.when(pl.col("categories") == "").then(None).otherwise(pl.col("categories")).alias("categories"))

    reason = (
        pl.when(pl.col("__empty")).then(pl.lit("empty_row"))
        .when(pl.col("handle").is_null()).then(pl.lit("missing_value:handle"))
        .when(pl.col("followers").is_null() & pl.col("__followers_given")).then(pl.lit("bad_type:followers"))
        .when(pl.col("followers").is_null()).then(pl.lit("missing_value:followers"))
        .when(~pl.col("handle").is_first_distinct()).then(pl.lit("duplicate:handle"))
    )  # fmt: skip
    flagged = mapped.with_columns(reason.alias("__reason"))
    # duplicates are judged among the rows that are otherwise fine
    ok = flagged.filter(pl.col("__reason").is_null() | (pl.col("__reason") == "duplicate:handle"))
    dup = ok.filter(~pl.col("handle").is_first_distinct())["source_row"]
    flagged = flagged.with_columns(
        pl.when(pl.col("__reason") == "duplicate:handle")
        .then(pl.when(pl.col("source_row").is_in(dup.implode())).then(pl.lit("duplicate:handle")))
        .otherwise(pl.col("__reason"))
        .alias("__reason")
    )
    rows = flagged.filter(pl.col("__reason").is_null()).select(list(RANKING_COLUMNS)).cast(RANKING_COLUMNS)  # type: ignore[arg-type]
    rejects = flagged.filter(pl.col("__reason").is_not_null()).select(
        pl.lit("rankings").alias("table"),
        pl.col("source_row").alias("row"),
        pl.coalesce(pl.col("handle"), pl.lit("<null>")).alias("key"),
        pl.col("__reason").alias("reason"),
        pl.lit(str(path)).alias("source"),
    )
    assert rows.height + rejects.height == data.height
    return rows, rejects, notes


def import_rankings(src: Path, out: Path) -> Manifest:
    """Import every ranking snapshot in ``src``; write rankings, creators (latest snapshot per account)."""
    files = sorted(p for p in src.glob("*.csv")) if src.is_dir() else [src]
    if not files or not all(p.is_file() for p in files):
        raise InputError(f"{src} holds no ranking CSV files.", fix="point at the top1000_creators_2022 folder")
    manifest = Manifest(command="import rankings", out_dir=out, params={"src": str(src)})
    frames, rejects, notes = [], [], []
    rows_in = 0
    for path in files:
        rows, rej, file_notes = read_ranking_file(path)
        rows_in += rows.height + rej.height
        frames.append(rows)
        rejects.append(rej)
        notes.extend(file_notes)
    rankings = pl.concat(frames, how="vertical")
    all_rejects = pl.concat(rejects, how="vertical").cast(REJECT_SCHEMA)  # type: ignore[arg-type]
    reasons = all_rejects.group_by("reason").len().sort("len", descending=True)
    manifest.tables["rankings"] = TableCount(
        rows_in=rows_in,
        rows_out=rankings.height,
        rows_rejected=all_rejects.height,
        sources=[str(p) for p in files],
        reasons=dict(zip(reasons["reason"].to_list(), reasons["len"].to_list(), strict=True)),
        notes=[*notes, "spreadsheet error cells (#VALOR!, N/A', -) read as missing values"],
    )
    manifest.add_rejects(all_rejects)

    # creators: the latest snapshot of each account ('undated' is the earliest)
    latest = (
        rankings.with_columns(pl.col("snapshot").fill_null("0000-00").alias("__order"))
        .sort("platform", "handle", "__order", "source_row")
        .unique(["platform", "handle"], keep="last", maintain_order=True)
    )
    creators_raw = latest.select(
        pl.concat_str([pl.col("platform"), pl.col("handle")], separator=":").alias("creator_id"),
        pl.col("platform"),
        pl.col("handle"),
        pl.col("followers").round(0).cast(pl.Int64, strict=False).alias("followers"),
        pl.col("country"),
        pl.col("categories").str.to_lowercase(),
        # the snapshot's averages per recent post: a creator without posts is read from them (features.averages)
        *(pl.col(c) for c in ("avg_views", "avg_likes", "avg_comments", "avg_shares", "avg_engagement")),
    )
    creators = validate(creators_raw, CONTRACTS["creators"], source="rankings (latest snapshot per account)")
    manifest.add_result("creators", creators, ["rankings"])
    manifest.derived["creators"] = {
        "from": "rankings",
        "rule": "latest snapshot per (platform, handle); 'undated' counts as the earliest",
        "accounts": latest.height,
        "snapshots_superseded": rankings.height - latest.height,
    }
    assert set(PLATFORMS) >= set(rankings["platform"].unique().to_list())
    manifest.write_table("rankings", rankings)
    manifest.write_table("creators", creators.valid)
    manifest.write()
    return manifest
