"""Importer for per-post Instagram histories (``shared/data/real/instagram_posts_2015_2020``).

Source files: ``data_batch_*.csv`` (link, likes, comment_counts, dates, captions, type_posts, username) and
``influencer_names_final.csv`` (username, following, post, followers; scraped at the end of the history),
optionally ``influencer_names_raw.csv`` (username, category list). Captions are multi-line quoted text; the
CSV reader keeps them whole.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from influencer_engine.errors import InputError
from influencer_engine.io import Manifest
from influencer_engine.schema import CONTRACTS, check_references, validate

__all__ = ["import_instagram_posts"]

_FORMATS = {"GraphImage": "image", "GraphVideo": "video", "GraphSidecar": "carousel"}
# A creator with this many likes and exactly zero comments had comments turned off: unknown, not zero.
_COMMENTS_DISABLED_LIKES = 1000
_POST_COLUMNS = ("link", "likes", "comment_counts", "dates", "type_posts", "username")
# Paid-partnership disclosures in a caption (hashtags and the words creators use, English and Indonesian). A post
# without one is read as organic: undisclosed partnerships exist, so sponsored is a floor, not a census.
_DISCLOSURE = (
    r"(?i)#(ad|ads|sponsored|sponsor|spon|paidpromote|paidpartnership|endorse\w*|iklan)\b|paid partnership|\bendorse"
)


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path} cannot be read as CSV: {str(exc).splitlines()[0]}.", fix="check the file") from exc


def _require(frame: pl.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: column(s) {', '.join(missing)} missing (found: {', '.join(frame.columns)}).",
            fix="use the original files of the instagram_posts_2015_2020 set",
        )


def import_instagram_posts(src: Path, out: Path) -> Manifest:
    """Map the post histories and follower snapshot to the creators and posts contracts."""
    if not src.is_dir():
        raise InputError(f"{src} is not a folder.", fix="point at the instagram_posts_2015_2020 folder")
    batches = sorted(src.glob("data_batch_*.csv"))
    names_path = src / "influencer_names_final.csv"
    if not batches:
        raise InputError(f"{src} has no data_batch_*.csv files.", fix="point at the instagram_posts_2015_2020 folder")
    if not names_path.is_file():
        raise InputError(f"{names_path} is missing.", fix="it holds the follower counts the posts are scaled by")

    manifest = Manifest(command="import instagram-posts", out_dir=out, params={"src": str(src)})

    names = _read_csv(names_path)
    _require(names, ("username", "following", "followers"), names_path)
    categories = None
    raw_path = src / "influencer_names_raw.csv"
    if raw_path.is_file():
        raw = _read_csv(raw_path)
        if {"username_2", "category"} <= set(raw.columns):
            categories = (
                raw.select(
                    pl.col("username_2").str.strip_chars().alias("username"),
                    pl.col("category")
                    .str.replace_all(r"[\[\]']", "")
                    .str.split(",")
                    .list.eval(pl.element().str.strip_chars().str.to_lowercase())
                    .list.join("|")
                    .alias("categories"),
                )
                .filter(pl.col("username").is_not_null())
                .unique("username", keep="first", maintain_order=True)
            )
    creators_raw = names.select(
        pl.col("username").str.strip_chars().alias("creator_id"),
        pl.lit("instagram").alias("platform"),
        pl.col("username").str.strip_chars().alias("handle"),
        pl.col("followers"),
        pl.col("following"),
        pl.lit("ID").alias("country"),  # the set's creators are Indonesian (source README)
        pl.lit("id").alias("language"),
    )
    if categories is not None:
        creators_raw = creators_raw.join(
            categories, left_on="creator_id", right_on="username", how="left", maintain_order="left"
        )
    creators = validate(creators_raw, CONTRACTS["creators"], source=str(names_path))

    frames = []
    for path in batches:
        frame = _read_csv(path)
        _require(frame, _POST_COLUMNS, path)
        captions = pl.col("captions") if "captions" in frame.columns else pl.lit(None, dtype=pl.String)
        frames.append(
            frame.select(*_POST_COLUMNS, captions.alias("captions")).with_columns(pl.lit(path.name).alias("__file"))
        )
    posts_in = pl.concat(frames, how="vertical")
    likes = pl.col("likes").str.strip_chars().cast(pl.Int64, strict=False)
    comments = pl.col("comment_counts").str.strip_chars().cast(pl.Int64, strict=False)
    disabled = (comments == 0) & (likes >= _COMMENTS_DISABLED_LIKES)
    posts_mapped = posts_in.select(
        pl.coalesce(pl.col("link").str.extract(r"/p/([^/?#]+)"), pl.col("link")).alias("post_id"),
        pl.col("username").str.strip_chars().alias("creator_id"),
        pl.col("dates").str.strip_chars().cast(pl.Float64, strict=False).alias("posted_at"),
        pl.col("type_posts").replace(_FORMATS).alias("format"),
        pl.col("captions").str.contains(_DISCLOSURE).alias("sponsored"),
        pl.col("likes"),
        pl.when(disabled).then(None).otherwise(pl.col("comment_counts")).alias("comments"),
        pl.col("captions").alias("caption"),
    )
    n_disabled = posts_in.select(disabled.fill_null(False).sum()).item()
    n_disclosed = posts_mapped.select(pl.col("sponsored").fill_null(False).sum()).item()
    sources = [str(p) for p in batches]
    posts = validate(posts_mapped, CONTRACTS["posts"], source=",".join(p.name for p in batches))
    posts = check_references(
        posts, "creator_id", creators.valid["creator_id"], table="posts", source=str(src), key=("post_id",)
    )

    manifest.write_table("creators", creators.valid)
    manifest.write_table("posts", posts.valid)
    manifest.add_result("creators", creators, [str(names_path)] + ([str(raw_path)] if categories is not None else []))
    manifest.add_result(
        "posts",
        posts,
        sources,
        notes=[
            f"{n_disabled} posts with >= {_COMMENTS_DISABLED_LIKES} likes and 0 comments: comments set to null "
            "(comments were turned off, so the count is unknown, not zero)",
            f"sponsored: {n_disclosed} posts disclose a paid partnership in the caption (#ad, #sponsored, "
            "#paidpromote, endorse, ...); the others are read as organic (null without a caption)",
        ],
    )
    manifest.write()
    return manifest
