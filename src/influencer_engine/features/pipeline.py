"""`ie features build`: validated tables in, one feature table out, with a manifest; partitioned for memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from influencer_engine.brief import Brief
from influencer_engine.config import TierConfig
from influencer_engine.dataset import find_table
from influencer_engine.errors import InputError
from influencer_engine.features.build import build_features
from influencer_engine.features.requests import brief_requests, snapshot_requests, training_requests
from influencer_engine.io import Manifest, TableCount, scan_table, write_parquet
from influencer_engine.schema import CONTRACTS, check_references, validate

__all__ = ["build_feature_table"]


def _empty(table: str) -> pl.LazyFrame:
    return pl.LazyFrame(schema=CONTRACTS[table].schema)


def build_feature_table(
    data: Path,
    out: Path,
    tiers: TierConfig,
    *,
    brief: Brief | None = None,
    as_of: datetime | None = None,
    partitions: int = 1,
) -> Manifest:
    """Validate the dataset in ``data`` and write features for its requests to ``out`` (a folder).

    Requests: one per creator for ``brief`` if given; else one per past hire if the folder has campaigns and
    outcomes (training); else one per creator as of ``as_of`` (default: the day after the latest post).
    With ``partitions > 1`` the work runs one creator-hash partition at a time (bounded memory). Features land
    in ``out/features/part-NNNN.parquet`` (one file per partition), beside ``manifest.json`` and ``rejects.parquet``.
    """
    paths = {t: find_table(data, t) for t in ("creators", "posts", "campaigns", "outcomes")}
    if paths["creators"] is None:
        raise InputError(f"{data} has no creators table.", fix="point at a folder from `ie simulate` or `ie import`")
    scans = {t: scan_table(p) if p is not None else _empty(t) for t, p in paths.items()}
    if brief is not None:
        mode = f"brief {brief.brief_id}"
    elif paths["campaigns"] is not None and paths["outcomes"] is not None:
        mode = "training (past hires, as of each campaign's start)"
    else:
        if as_of is None:
            last = scans["posts"].select(pl.col("posted_at").max()).collect().item()
            as_of = (
                (last + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
                if last is not None
                else datetime.now(UTC)
            )
        mode = f"snapshot as of {as_of:%Y-%m-%d}"

    manifest = Manifest(
        command="features build", out_dir=out, params={"data": str(data), "mode": mode, "partitions": partitions}
    )
    counts = {t: [0, 0, 0] for t in ("creators", "posts", "requests")}
    reasons: dict[str, dict[str, int]] = {t: {} for t in counts}
    parts: list[str] = []
    campaigns = outcomes = None
    if brief is None and paths["campaigns"] is not None and paths["outcomes"] is not None:
        campaigns = validate(scans["campaigns"], "campaigns", source=str(paths["campaigns"]))
        outcomes = validate(scans["outcomes"], "outcomes", source=str(paths["outcomes"]))

    for i in range(partitions):
        in_part = (pl.col("creator_id").hash(0) % partitions == i) if partitions > 1 else pl.lit(True)
        creators = validate(scans["creators"].filter(in_part), "creators", source=str(paths["creators"]))
        posts = validate(scans["posts"].filter(in_part), "posts", source=str(paths["posts"] or "<none>"))
        posts = check_references(
            posts, "creator_id", creators.valid["creator_id"], table="posts", source=str(paths["posts"]),
            key=("post_id",),
        )  # fmt: skip
        if brief is not None:
            requests = brief_requests(brief, creators.valid.lazy(), as_of=as_of).collect()
        elif campaigns is not None and outcomes is not None:
            requests = training_requests(campaigns.valid.lazy(), outcomes.valid.lazy().filter(in_part)).collect()
        else:
            assert as_of is not None
            requests = snapshot_requests(creators.valid.lazy(), as_of).collect()
        known = requests["creator_id"].is_in(creators.valid["creator_id"].implode())
        orphans = requests.filter(~known)
        feats = build_features(creators.valid.lazy(), posts.valid.lazy(), requests.filter(known).lazy(), tiers)
        frame = feats.collect()
        name = f"features/part-{i:04d}.parquet"
        write_parquet(frame, out / name)
        parts.append(name)
        for t, r in (("creators", creators), ("posts", posts)):
            counts[t][0] += r.rows_in
            counts[t][1] += r.rows_out
            counts[t][2] += r.rows_rejected
            for k, v in r.reason_counts().items():
                reasons[t][k] = reasons[t].get(k, 0) + v
            manifest.add_rejects(r.rejects)
        counts["requests"][0] += requests.height
        counts["requests"][1] += frame.height
        counts["requests"][2] += orphans.height
        if orphans.height:
            reasons["requests"]["unknown:creator_id"] = (
                reasons["requests"].get("unknown:creator_id", 0) + orphans.height
            )
            manifest.add_rejects(
                orphans.select(
                    pl.lit("requests").alias("table"),
                    pl.lit(-1, dtype=pl.Int64).alias("row"),
                    pl.col("request_id").alias("key"),
                    pl.lit("unknown:creator_id").alias("reason"),
                    pl.lit(mode).alias("source"),
                )
            )
    for t, (rin, rout, rrej) in counts.items():
        manifest.tables[t] = TableCount(rows_in=rin, rows_out=rout, rows_rejected=rrej, reasons=reasons[t])
    if campaigns is not None and outcomes is not None:
        manifest.add_result("campaigns", campaigns, [str(paths["campaigns"])])
        manifest.add_result("outcomes", outcomes, [str(paths["outcomes"])])
    manifest.outputs["features"] = f"features/ ({len(parts)} part file(s))"
    manifest.write()
    return manifest
