"""The training table: past hires joined with point-in-time features (as of each campaign's start).

One row per valid outcome. Outcomes rejected by validation (or whose creator or campaign is unknown) are
counted with their reasons; ``rows_in = rows + rejected`` always holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from influencer_engine.config import TierConfig
from influencer_engine.dataset import validate_dataset
from influencer_engine.errors import InputError
from influencer_engine.features.build import build_features
from influencer_engine.features.requests import outcome_request_id, training_requests
from influencer_engine.registry import KPI_NAMES
from influencer_engine.schema import CONTRACTS

__all__ = ["TrainingTable", "fingerprint", "load_training_table", "market_rows", "training_table"]


@dataclass(frozen=True)
class TrainingTable:
    """Features + targets per past hire, with the validation counts behind it."""

    frame: pl.DataFrame  # request_id, creator_id, as_of, campaign_id, cost, <targets>, <features>
    source: str
    rows_in: int  # outcome rows read
    rejects: pl.DataFrame
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    # the valid inputs the frame was built from (creators, posts, requests), for fits that rebuild features
    inputs: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    def fingerprint(self) -> str:
        return fingerprint(self.frame)


def fingerprint(frame: pl.DataFrame) -> str:
    """sha256 of a table's content in a fixed row and column order (same data, same fingerprint)."""
    cols = sorted(frame.columns)
    ordered = frame.select(cols).sort(cols[:1] + (["request_id"] if "request_id" in cols else []))
    h = hashlib.sha256()
    h.update(",".join(f"{c}:{ordered.schema[c]}" for c in cols).encode())
    for c in cols:
        s = ordered[c]
        if s.dtype.is_numeric():
            h.update(np.ascontiguousarray(s.cast(pl.Float64).fill_null(np.nan).to_numpy()).tobytes())
        else:
            h.update("\x1f".join("" if v is None else str(v) for v in s.cast(pl.String).to_list()).encode())
    return h.hexdigest()


def training_table(
    creators: pl.DataFrame,
    posts: pl.DataFrame,
    campaigns: pl.DataFrame,
    outcomes: pl.DataFrame,
    tiers: TierConfig,
    *,
    requests: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Features for every (valid) hire, joined with its observed KPIs and cost, sorted by campaign start."""
    if requests is None:
        requests = training_requests(campaigns.lazy(), outcomes.lazy()).collect()
    feats = build_features(creators.lazy(), posts.lazy(), requests.lazy(), tiers).collect()
    labels = outcomes.select(
        outcome_request_id(),
        "campaign_id",
        pl.col("cost").cast(pl.Float64),
        *(pl.col(k).cast(pl.Float64) for k in KPI_NAMES),
    )
    keys = ["request_id", "creator_id", "as_of"]
    frame = feats.join(labels, on="request_id", how="inner").select(
        *keys, "campaign_id", "cost", *KPI_NAMES, *(c for c in feats.columns if c not in keys)
    )
    return frame.sort("as_of", "request_id")


def load_training_table(folder: Path, tiers: TierConfig) -> TrainingTable:
    """Validate a dataset folder and build its training table."""
    ds = validate_dataset(folder)
    missing = [t for t in ("campaigns", "outcomes") if t not in ds.results]
    if missing:
        raise InputError(
            f"{folder} has no {' or '.join(missing)} table, so there is nothing to learn from.",
            fix="train on a folder with past campaign outcomes (`ie simulate --out DIR` writes one)",
        )
    r = ds.results
    empty_posts = pl.DataFrame(schema=CONTRACTS["posts"].schema)
    creators, posts = r["creators"].valid, r["posts"].valid if "posts" in r else empty_posts
    requests = training_requests(r["campaigns"].valid.lazy(), r["outcomes"].valid.lazy()).collect()
    frame = training_table(creators, posts, r["campaigns"].valid, r["outcomes"].valid, tiers, requests=requests)
    outcomes = r["outcomes"]
    if frame.height != outcomes.rows_out:
        raise AssertionError(f"training rows {frame.height} != valid outcomes {outcomes.rows_out}")
    tables: dict[str, dict[str, Any]] = {
        name: {"rows_in": res.rows_in, "rows_out": res.rows_out, "rows_rejected": res.rows_rejected}
        for name, res in r.items()
    }
    rejects = pl.concat([res.rejects for res in r.values()], how="vertical_relaxed")
    if frame.height == 0:
        raise InputError(
            f"{folder}: no valid campaign outcomes to train on.", fix="check the rejects with `ie validate`"
        )
    return TrainingTable(frame=frame, source=str(folder), rows_in=outcomes.rows_in, rejects=rejects, tables=tables,
                         inputs={"creators": creators, "posts": posts, "requests": requests})  # fmt: skip


# assumption: a brief starts one week to three months after the data end (the market rows' starts are spread over it)
MARKET_LEAD_DAYS = (7, 90)


def market_rows(table: TrainingTable, tiers: TierConfig, *, seed: int = 0, contexts: int = 8,
                per_context: int = 2_500) -> pl.DataFrame | None:  # fmt: skip
    """Feature rows with no outcome, as a plan scores them: up to ``per_context`` of the table's creators (drawn with
    ``seed``), each in its base format, under the brand category and target of ``contexts`` past campaigns spread
    over time, each starting ``MARKET_LEAD_DAYS`` after the data end (the latest post or campaign start; features as
    of then read every post). No model trains on them; ``KPIForecaster.fit`` reads the final funnel's level against
    its fold funnels' on them. None when the table was not built from a dataset folder."""
    requests, creators = table.inputs.get("requests"), table.inputs.get("creators")
    posts = table.inputs.get("posts")
    if requests is None or creators is None or posts is None or requests.height == 0 or creators.height == 0:
        return None
    ctx_cols = ["brand_category", "target_age", "target_gender", "target_countries"]
    camp = (requests.with_columns(pl.col("request_id").str.split(":").list.first().alias("_campaign"))
            .group_by("_campaign").agg(pl.col(c).first() for c in ["as_of", *ctx_cols])
            .sort("as_of", "_campaign"))  # fmt: skip
    pick = np.unique(np.linspace(0, camp.height - 1, min(contexts, camp.height)).round().astype(int))
    last = requests["as_of"].max()
    if posts.height:
        last = max(last, posts["posted_at"].max())  # type: ignore[type-var]
    end = pl.select(pl.lit(last).cast(requests.schema["as_of"]).dt.truncate("1d")).item()
    leads = np.linspace(*MARKET_LEAD_DAYS, len(pick)).round().astype(int)
    ids = creators["creator_id"].unique().sort()
    rng = np.random.default_rng(seed)
    parts = []
    for i, lead in zip(pick, leads, strict=True):
        row = camp.row(int(i), named=True)
        chosen = ids if ids.len() <= per_context else ids.gather(np.sort(rng.choice(ids.len(), per_context, False)))
        parts.append(pl.DataFrame({"creator_id": chosen}).select(
            (pl.lit(f"market:{row['_campaign']}:") + pl.col("creator_id")).alias("request_id"),
            pl.col("creator_id"),
            (pl.lit(end, dtype=requests.schema["as_of"]) + pl.duration(days=int(lead))).alias("as_of"),
            pl.lit(None, dtype=pl.String).alias("format"),
            *(pl.lit(row[c], dtype=pl.String).alias(c) for c in ctx_cols),
        ))  # fmt: skip
    return build_features(creators.lazy(), posts.lazy(), pl.concat(parts).lazy(), tiers).collect()
