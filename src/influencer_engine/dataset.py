"""A dataset folder (creators, posts, campaigns, outcomes): validate it as a whole, summarize it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from influencer_engine.errors import InputError
from influencer_engine.io import Manifest, read_table, table_files
from influencer_engine.registry import TIERS
from influencer_engine.schema import CONTRACTS, ValidationResult, check_references, validate

__all__ = ["DatasetValidation", "find_table", "summarize", "validate_dataset", "validate_file"]

TABLES = ("creators", "posts", "campaigns", "outcomes")
# child table -> [(column, parent table, parent key)]
REFERENCES = {
    "posts": [("creator_id", "creators", "creator_id")],
    "outcomes": [("creator_id", "creators", "creator_id"), ("campaign_id", "campaigns", "campaign_id")],
}


def find_table(folder: Path, name: str) -> Path | None:
    """The file or sub-folder holding table ``name`` in a dataset folder, if any."""
    for candidate in (folder / f"{name}.parquet", folder / f"{name}.csv", folder / name):
        if candidate.exists():
            return candidate
    return None


def validate_file(kind: str, path: Path) -> ValidationResult:
    """Validate one table file against its contract."""
    if kind not in CONTRACTS:
        raise InputError(f"unknown table kind '{kind}'.", fix=f"use one of {', '.join(CONTRACTS)} (or world)")
    return validate(read_table(path), CONTRACTS[kind], source=str(path))


@dataclass(frozen=True)
class DatasetValidation:
    results: dict[str, ValidationResult]
    sources: dict[str, Path]

    @property
    def ok(self) -> bool:
        return all(r.rows_rejected == 0 for r in self.results.values())

    def to_manifest(self, manifest: Manifest) -> Manifest:
        for name, result in self.results.items():
            manifest.add_result(name, result, [str(p) for p in table_files(self.sources[name])])
        return manifest


def validate_dataset(folder: Path) -> DatasetValidation:
    """Validate every table present in ``folder`` and the references between them.

    Rows whose creator or campaign is unknown (or was itself rejected) are rejected with ``unknown:<column>``.
    """
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder.", fix="point at a dataset folder (as written by `ie simulate`)")
    sources = {name: p for name in TABLES if (p := find_table(folder, name)) is not None}
    if "creators" not in sources:
        raise InputError(
            f"{folder} has no creators table.",
            fix="add creators.parquet or creators.csv (every other table refers to it)",
        )
    results = {name: validate_file(name, path) for name, path in sources.items()}
    for child, refs in REFERENCES.items():
        if child not in results:
            continue
        for column, parent, parent_key in refs:
            if parent not in results:
                continue
            results[child] = check_references(
                results[child],
                column,
                results[parent].valid[parent_key],
                table=child,
                source=str(sources[child]),
                key=CONTRACTS[child].key,
            )
    return DatasetValidation(results=results, sources=sources)


def summarize(tables: dict[str, pl.DataFrame]) -> str:
    """A short plain-text portrait of a dataset: who is in it and what they deliver."""
    lines: list[str] = []
    creators = tables.get("creators")
    if creators is not None and creators.height:
        lines.append(f"creators: {creators.height:,}")
        by = (
            creators.group_by("platform", "tier")
            .agg(pl.len().alias("n"), pl.col("followers").median().alias("median_followers"))
            .sort("platform", "median_followers")
        )
        for r in by.iter_rows(named=True):
            lines.append(
                f"  {r['platform']:10} {r['tier'] or '?':6} {r['n']:>8,} creators, "
                f"median {r['median_followers']:>12,.0f} followers"
            )
    posts = tables.get("posts")
    if posts is not None and posts.height:
        per = float(posts.group_by("creator_id").len().select(pl.col("len").median()).item())
        first, last = (
            str(v)[:10]
            for v in posts.select(pl.col("posted_at").min().alias("a"), pl.col("posted_at").max().alias("b")).row(0)
        )
        sponsored = float(posts.select(pl.col("sponsored").cast(pl.Float64).mean().fill_null(0.0)).item())
        lines.append(
            f"posts: {posts.height:,} ({per:.0f} per creator, median), {first} to {last}, {sponsored:.1%} sponsored"
        )
        if creators is not None:
            er = (
                posts.filter(~pl.col("sponsored").fill_null(False))
                .join(creators.select("creator_id", "platform", "tier", "followers"), on="creator_id")
                .group_by("creator_id", "platform", "tier")
                .agg(((pl.col("likes") + pl.col("comments").fill_null(0)) / pl.col("followers")).median().alias("er"))
                .group_by("platform", "tier")
                .agg(pl.col("er").median())
                .sort("platform", pl.col("tier").replace_strict(list(TIERS), list(range(len(TIERS))), default=9))
            )
            for r in er.iter_rows(named=True):
                if r["er"] is not None:
                    lines.append(f"  organic engagement rate {r['platform']:10} {r['tier'] or '?':6} {r['er']:.2%}")
    campaigns, outcomes = tables.get("campaigns"), tables.get("outcomes")
    if campaigns is not None and outcomes is not None and outcomes.height:
        tot = outcomes.select(
            pl.col("cost").sum(),
            pl.col("impressions").sum(),
            pl.col("conversions").sum(),
            pl.col("revenue").sum(),
        ).row(0, named=True)
        lines.append(
            f"campaigns: {campaigns.height:,} with {outcomes.height:,} hires; spend ${tot['cost']:,.0f}, "
            f"CPM ${tot['cost'] / max(tot['impressions'], 1) * 1000:,.2f}, "
            f"CPA ${tot['cost'] / max(tot['conversions'], 1):,.2f}, ROAS {tot['revenue'] / max(tot['cost'], 1e-9):.2f}"
        )
    return "\n".join(lines) if lines else "(no rows)"
