"""Where a scoring run's rows come from, and how they split into chunks: the candidate sources read and checked, the
chunk count for a memory limit, and chunks as row ranges of the sources' own files where their layout allows.

Nothing here loads a model library, so `ie score` plans its chunks (reading every file's head and the id columns)
while the model loads (``plan_layout`` in a thread: polars reads without holding Python's lock, and importing
LightGBM and scikit-learn takes seconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from influencer_engine.dataset import find_table
from influencer_engine.errors import InputError
from influencer_engine.io import collect_table, scan_table, table_files
from influencer_engine.schema import validate

__all__ = ["Layout", "candidate_sources", "chunk_count", "plan_layout", "row_ranges"]

# memory model behind --limit-memory, from peak RSS measured on 200k creators (48 posts each) in chunks of 10k to
# 50k (peaks 790, 957, 1,501 and 2,032 MB at 10k, 14.3k, 33.3k and 50k: about 530 MB + 30 kB per creator of a
# chunk): the process with its model takes about 550 MB; each creator of a chunk in flight about 11 kB plus 80 B per
# post (two chunks are in flight: two in the first pass, with their posts; one featurized while the other is scored)
_BASE_BYTES = 550e6
_BYTES_PER_POST = 80
_BYTES_PER_CREATOR = 11_200


def candidate_sources(paths: Sequence[Path], *,
                      check: bool = False) -> tuple[pl.LazyFrame, pl.LazyFrame | None, list[Path]]:  # fmt: skip
    """Creators and posts of one or more dataset folders (each table a file or a folder of files).

    With ``check``, every file's header and first rows are read now, so an unreadable file stops the run before it
    starts with an error naming it (empty, not UTF-8, truncated Parquet).
    """
    creators, posts, files = [], [], []
    for path in paths:
        if not path.is_dir():
            raise InputError(f"{path} is not a dataset folder.",
                             fix="pass folders holding a creators table and a posts table")  # fmt: skip
        c, p = find_table(path, "creators"), find_table(path, "posts")
        if c is None:
            raise InputError(f"{path} has no creators table (creators.parquet, creators.csv or creators/).",
                             fix="point --candidates at a dataset folder")  # fmt: skip
        for name, table in (("creators", c), ("posts", p)):
            if table is None:
                continue
            if check:
                for f in table_files(table):
                    # readable, and laid out as the contract says (a wrong delimiter is named here, not mid-run)
                    validate(collect_table(scan_table(f).head(100), f), name, source=str(f))
            files += table_files(table)
        creators.append(scan_table(c))
        if p is not None:
            posts.append(scan_table(p))
    c_all = pl.concat(creators, how="diagonal_relaxed") if len(creators) > 1 else creators[0]
    p_all = (pl.concat(posts, how="diagonal_relaxed") if len(posts) > 1 else posts[0]) if posts else None
    return c_all, p_all, files


def chunk_count(creators: int, posts: int, chunk_creators: int, limit_memory_mb: float | None) -> int:
    """Chunks to split ``creators`` into: at most ``chunk_creators`` each, and small enough for the memory limit."""
    per_chunk = max(1, chunk_creators)
    if limit_memory_mb is not None:
        per_creator = _BYTES_PER_CREATOR + _BYTES_PER_POST * posts / max(creators, 1)
        usable = max(limit_memory_mb * 1e6 - _BASE_BYTES, 0.25 * limit_memory_mb * 1e6)
        per_chunk = max(1, min(per_chunk, int(usable / (2 * per_creator))))
    return max(1, -(-creators // per_chunk))


def row_ranges(sources: Sequence[Path], per_chunk: int) -> list[dict[str, Any]] | None:
    """Chunks as row ranges of the sources' own files, when their layout allows it; None when they must be staged.

    The layout: every table one Parquet file, creator ids text with no null, each creators file sorted by id and
    each posts file by creator id (as exports and the simulator write them), ids unique over every source, and no
    post under a creator of another source. A chunk is then a run of one source's creators and the run of its posts
    between their ids (a post of an unknown creator falls in one run and is rejected there, as when staged), so each
    chunk is read straight from the files and nothing is split or written. Checking this reads the id columns only.
    """
    tables = [(find_table(source, "creators"), find_table(source, "posts")) for source in sources]
    for c, p in tables:
        files = [table_files(t) for t in (c, p) if t is not None]
        if c is None or any(len(f) != 1 or f[0].suffix.lower() != ".parquet" for f in files):
            return None
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ie-ids") as pool:  # one column per file, read whole
        columns = list(pool.map(_id_column, [t for pair in tables for t in pair]))
    ids, posts_ids = [], []
    for cid, pid in zip(columns[0::2], columns[1::2], strict=True):
        if cid is None or pid is None or not cid.is_sorted() or not pid.is_sorted() or (cid.len() == 0 < pid.len()):
            return None
        ids.append(cid)
        posts_ids.append(pid)
    owners = pl.concat([pl.DataFrame({"creator_id": cid}).with_columns(pl.lit(i).alias("_in")) for i, cid in
                        enumerate(ids)])  # fmt: skip
    if owners["creator_id"].n_unique() != owners.height:
        return None
    under = pl.concat([pl.DataFrame({"creator_id": pid.rle().struct.field("value") if pid.len() else pid})
                       .with_columns(pl.lit(i).alias("_from")) for i, pid in enumerate(posts_ids)])  # fmt: skip
    if under.join(owners, on="creator_id", how="inner").filter(pl.col("_in") != pl.col("_from")).height:
        return None
    ranges = []
    for i, (cid, pid) in enumerate(zip(ids, posts_ids, strict=True)):
        pieces = -(-cid.len() // max(1, per_chunk))
        cuts = [round(j * cid.len() / pieces) for j in range(pieces + 1)]
        post_cuts = [0] + [int(pid.search_sorted(cid[b], side="left")) for b in cuts[1:-1]] + [pid.len()]
        for j in range(pieces):
            ranges.append({"source": i, "creators": [cuts[j], cuts[j + 1] - cuts[j]],
                           "posts": [post_cuts[j], post_cuts[j + 1] - post_cuts[j]]})  # fmt: skip
    return ranges


def _id_column(table: Path | None) -> pl.Series | None:
    """The creator_id column of a one-file Parquet table, when it is text with no null (an empty one for no table)."""
    if table is None:
        return pl.Series("creator_id", [], dtype=pl.String)
    try:
        col = pl.read_parquet(table_files(table)[0], columns=["creator_id"])["creator_id"]
    except (pl.exceptions.PolarsError, OSError):
        return None  # no such column, or not readable so: the staging pass says what is wrong
    return col if col.dtype == pl.String and col.null_count() == 0 else None


@dataclass(frozen=True)
class Layout:
    """A scoring run's sources, counted and split: ``chunks`` chunks, as row ranges of the files (``ranges``) or
    staged (None)."""

    sources: tuple[Path, ...]
    chunk_creators: int
    limit_memory_mb: float | None
    files: list[Path]
    n_creators: int
    n_posts: int
    chunks: int
    ranges: list[dict[str, Any]] | None

    def fits(self, sources: Sequence[Path], chunk_creators: int, limit_memory_mb: float | None) -> bool:
        """Whether this layout was planned for these arguments."""
        return (self.sources, self.chunk_creators, self.limit_memory_mb) == (
            tuple(sources), chunk_creators, limit_memory_mb)  # fmt: skip


def plan_layout(sources: Sequence[Path], chunk_creators: int, limit_memory_mb: float | None) -> Layout:
    """Read and check every source (``candidate_sources(check=True)``), count its rows and split them into chunks."""
    creators, posts, files = candidate_sources(sources, check=True)
    n_creators = int(collect_table(creators.select(pl.len()), files[0]).item())
    n_posts = int(collect_table(posts.select(pl.len()), files[-1]).item()) if posts is not None else 0
    chunks = chunk_count(n_creators, n_posts, chunk_creators, limit_memory_mb)
    ranges = row_ranges(sources, -(-n_creators // chunks)) if chunks > 1 else None
    if ranges is not None:
        chunks = len(ranges)
    return Layout(tuple(sources), chunk_creators, limit_memory_mb, files, n_creators, n_posts, chunks, ranges)
