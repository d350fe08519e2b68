"""Batch scoring of a candidate database against a brief: streamed in creator chunks, resumable, nothing lost.

Creators are split into chunks by a hash of their id (every row of one creator lands in the same chunk, and the
split is the same on every run). A first pass validates each chunk and builds its history group (the only step
that reads posts), keeping both beside the stage, and reads the whole base's peers from them; then each chunk is
featurized from what was kept, forecast and written as its own Parquet part, atomically; then the run's state file
records it. An input that fits in one chunk is read from its files once: nothing is staged or kept. A run killed at any
point and started again skips the chunks the state records and redoes the rest, overwriting any part written
after the last record, so no row is written twice or lost. The manifest accounts for every creator row and every
post row: rows_in = rows_out + rows_rejected for each table (posts of rejected or unknown creators are rejected
with a reason). The posts table is optional. Every file is read and checked against its contract before any work
starts, and a run that fails before any chunk is done leaves the output folder as it found it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict

from influencer_engine.brief import Brief
from influencer_engine.config import TierConfig
from influencer_engine.dataset import find_table
from influencer_engine.errors import InputError
from influencer_engine.features.build import rates_from_history, request_history
from influencer_engine.features.creator import blend_peers
from influencer_engine.features.requests import brief_requests
from influencer_engine.forecast import (
    NO_POSTS,
    CandidateBase,
    Featurized,
    OwnPeers,
    candidate_base,
    featurize,
    forecast_features,
)
from influencer_engine.io import (
    collect_table,
    read_table,
    scan_table,
    table_files,
    write_json,
    write_parquet,
)
from influencer_engine.modeling.predictor import Predictor
from influencer_engine.schema import REJECT_SCHEMA
from influencer_engine.sources import Layout, candidate_sources, plan_layout

__all__ = [
    "ChunkJob",
    "Progress",
    "ScoreManifest",
    "ScoreResult",
    "read_scores",
    "score_candidates",
    "stage",
]

STATE = "_state.json"
STAGE = "_stage"
FIRST_PASS = "first_pass"  # under the stage: each chunk's valid creators, history group, rejects and counts
CHUNK_KEY = "_chunk"
STAGE_BATCH_BYTES = 200e6  # in-memory size of a batch read while staging


@dataclass(frozen=True)
class ScoreResult:
    out: Path
    rows_in: int
    scored: int
    rejected: int
    chunks: int
    resumed_chunks: int
    seconds: float
    peak_rss_mb: float | None = None  # of this process (the client, with the Dask engine)
    manifest: ScoreManifest | None = None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TableCounts(_Frozen):
    """One table's accounting: rows_in = rows_out + rows_rejected."""

    rows_in: int
    rows_out: int
    rows_rejected: int
    reasons: dict[str, int]  # reject reason -> rows


class MemoryReport(_Frozen):
    limit_mb: float | None
    peak_rss_mb: float | None  # of this process (the client, with the Dask engine)
    creators_per_chunk: int


class ScoreManifest(_Frozen):
    """``manifest.json`` of a scoring run: every creator row accounted for (rows_in = rows_out + rows_rejected)."""

    command: str = "score"
    brief: dict[str, Any]
    model: str  # the model's training data fingerprint
    sources: list[str]
    chunks: int
    creators: TableCounts  # rows_out: creators scored
    posts: TableCounts
    compiled_trees: list[dict[str, Any]]
    outputs: dict[str, str]
    memory: MemoryReport


def _fingerprint(files: list[Path], brief: Brief, predictor: Predictor, chunks: int) -> str:
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(brief.model_dump_json().encode())
    # the model: its manifest's checksum covers every KPI's model text (their sha256) and everything else the forecasts
    # read from the bundle: corrections, bands, completion, a prior's corrections (the same trees under other
    # settings, such as bands per history bucket, give other scores)
    h.update(predictor.manifest.checksum.encode())
    h.update(f"{chunks}|{pl.__version__}".encode())
    return h.hexdigest()


def _flags() -> pl.Expr:
    """Quality flags a planner should see before booking a creator ('' when none)."""
    checks = [
        (pl.col("posts_before") < 10, "thin_history"),
        (pl.col("audience_credibility") < 0.7, "low_credibility"),
        (pl.col("er_vs_peers") > 3.0, "engagement_anomaly"),
        (pl.col("price").is_null(), "no_price"),
    ]
    parts = [pl.when(cond.fill_null(False)).then(pl.lit(name)) for cond, name in checks]
    return pl.concat_str(parts, separator=";", ignore_nulls=True).fill_null("").alias("flags")


def compiled_reports(predictor: Predictor) -> list[Any]:
    """What ``--compiled`` decided per model: each KPI's, then each completion model's (empty when not asked)."""
    kpis = list(getattr(predictor.forecaster, "compiled_", None) or [])
    return kpis + list(getattr(predictor.completion, "compiled_", None) or [])


COMPILED_SAMPLE = 5_000  # rows of the first chunk on which compiled trees must equal LightGBM's


def _maybe_compile(predictor: Predictor, feats: pl.DataFrame, compiled_dir: str | None) -> None:
    if compiled_dir is None or getattr(predictor.forecaster, "compiled_", None) is not None:
        return  # not asked, or this forecaster was already checked
    # the data's sample: rows spread over the first chunk (the model's split thresholds are checked besides, by
    # synthetic rows at each one); checking 20,000 rows cost LightGBM's predict on them, 1.4 s of a 6 s run at 50k
    rows = feats.select(predictor.features)
    sample = rows.gather_every(max(1, rows.height // COMPILED_SAMPLE)).head(COMPILED_SAMPLE)
    predictor.compile(sample, Path(compiled_dir))


@dataclass(frozen=True)
class _Chunk:
    """A chunk read, validated and featurized, ready for the models."""

    k: int
    rows_in: int
    featurized: Featurized
    posts_in: int
    posts_out: int


@dataclass(frozen=True)
class ChunkJob:
    """Everything a worker needs to score one chunk (plain strings, so it travels to Dask workers)."""

    sources: tuple[str, ...]
    brief: str  # JSON
    tiers: str  # JSON
    out: str
    chunks: int
    compiled_dir: str | None = None  # compile the trees (lleaves, else tl2cgen) into this cache, used where equal
    peers: str | None = None  # JSON rows of the whole base's peers (``forecast.candidate_peers``), same for every chunk
    ranges: str | None = None  # JSON ``row_ranges``: chunks as row ranges of the sources' own files (no stage)

    def _staged(self, table: str, k: int, empty: pl.LazyFrame) -> pl.DataFrame:
        """Chunk ``k`` of a staged table (one pass split every table by chunk; see ``stage``)."""
        folder = Path(self.out) / STAGE / table / f"{CHUNK_KEY}={k}"
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if not files:
            return empty.head(0).collect()
        return pl.read_parquet([str(f) for f in files], hive_partitioning=False)

    def read(self, k: int) -> tuple[int, CandidateBase]:
        """Chunk ``k``, validated: (creator rows read, the chunk's candidate base). A run of one chunk reads the
        sources themselves (nothing is staged); otherwise chunk ``k`` of the stage."""
        creators, posts, files = candidate_sources([Path(p) for p in self.sources])
        if self.chunks == 1:
            rows = collect_table(creators, files[0])
            whole = collect_table(posts, files[-1]) if posts is not None else None
            return rows.height, candidate_base(rows, whole, source="candidates")
        source = f"candidates chunk {k + 1}/{self.chunks}"
        if self.ranges:
            r = json.loads(self.ranges)[k]
            folder = Path(self.sources[r["source"]])
            rows = _rows(find_table(folder, "creators"), r["creators"])
            table = find_table(folder, "posts")  # a folder may have none while another has some
            return rows.height, candidate_base(rows, _rows(table, r["posts"]) if table else None, source=source)
        rows = self._staged("creators", k, creators)
        staged_posts = self._staged("posts", k, posts) if posts is not None else None
        return rows.height, candidate_base(rows, staged_posts, source=source)

    def first_pass(self, k: int) -> pl.DataFrame:
        """Chunk ``k`` read and validated, its history group built: its engagement rates for the whole base's peers.

        The scoring pass needs no post again: the chunk's valid creators, history group, rejects and counts are
        kept under the stage (Arrow files, written under a temporary name and renamed when complete), so it reads
        them instead of reading, validating and ranking the posts a second time. A kept chunk is not redone.
        """
        folder = Path(self.out) / STAGE / FIRST_PASS / str(k)
        if (folder / _RATES).is_file():
            return pl.read_ipc(folder / _RATES)
        brief = Brief.model_validate_json(self.brief)
        tiers = TierConfig.model_validate_json(self.tiers)
        rows_in, base = self.read(k)
        requests = brief_requests(brief, base.creators.lazy())
        history = request_history(base.creators.lazy(), base.posts.lazy(), requests)
        rates = rates_from_history(base.creators.lazy(), requests, history, tiers)
        tmp = folder.with_name(f".{k}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        base.creators.write_ipc(tmp / "creators.arrow")
        history.write_ipc(tmp / "history.arrow")
        base.rejects.write_ipc(tmp / "rejects.arrow")
        base.post_rejects.write_ipc(tmp / "post_rejects.arrow")
        counts = {"rows_in": rows_in, "posts_in": base.posts_in, "posts_out": base.posts.height}
        write_json({**counts, "source": base.source}, tmp / "counts.json")
        rates.write_ipc(tmp / _RATES)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        return rates

    def _kept(self, k: int) -> tuple[dict[str, Any], CandidateBase, pl.DataFrame] | None:
        """What ``first_pass`` kept of chunk ``k`` (counts, the base without its posts, the history), if it ran."""
        folder = Path(self.out) / STAGE / FIRST_PASS / str(k)
        if not (folder / _RATES).is_file():
            return None
        counts = json.loads((folder / "counts.json").read_text(encoding="utf-8"))
        base = CandidateBase(str(counts["source"]), pl.read_ipc(folder / "creators.arrow"), NO_POSTS,
                             pl.read_ipc(folder / "rejects.arrow"), pl.read_ipc(folder / "post_rejects.arrow"),
                             int(counts["posts_in"]))  # fmt: skip
        return counts, base, pl.read_ipc(folder / "history.arrow")

    def prepare(self, k: int, predictor: Predictor) -> _Chunk:
        """Read chunk ``k``, validate it and build its features (no model work yet); from what the first pass kept
        when it ran."""
        brief = Brief.model_validate_json(self.brief)
        tiers = TierConfig.model_validate_json(self.tiers)
        peers: pl.DataFrame | OwnPeers | None
        if self.peers:
            peers = pl.DataFrame(json.loads(self.peers), schema=PEER_SCHEMA)
        elif self.chunks == 1:  # the chunk is the whole base: its peers come from the rows just read
            peers = OwnPeers(predictor.peers)
        else:
            peers = predictor.peers
        kept = self._kept(k) if self.chunks > 1 else None
        if kept is not None:
            counts, base, history = kept
            featurized = featurize(base, brief, tiers, peers=peers, completion=predictor.completion, history=history)
            return _Chunk(k, int(counts["rows_in"]), featurized, int(counts["posts_in"]), int(counts["posts_out"]))
        rows_in, base = self.read(k)
        featurized = featurize(base, brief, tiers, peers=peers, completion=predictor.completion)
        return _Chunk(k, rows_in, featurized, base.posts_in, base.posts.height)

    def finish(self, chunk: _Chunk, predictor: Predictor) -> dict[str, int]:
        """Forecast a prepared chunk and write its parts atomically; the counts go to the run's state.

        The rejects part holds the chunk's rejected creators and rejected posts (its ``table`` column says which).
        """
        _maybe_compile(predictor, chunk.featurized.features, self.compiled_dir)
        fc = forecast_features(predictor, chunk.featurized)
        base = chunk.featurized.base
        table = pl.concat([fc.table, fc.features.select(_flags())], how="horizontal")
        rejects = pl.concat([r.select(list(REJECT_SCHEMA)).cast(REJECT_SCHEMA)  # type: ignore[arg-type]
                             for r in (fc.rejects, base.post_rejects)])  # fmt: skip
        out = Path(self.out)
        write_parquet(table, out / "scores" / f"part-{chunk.k:05d}.parquet")
        write_parquet(rejects, out / "rejects" / f"part-{chunk.k:05d}.parquet")
        return {"rows_in": chunk.rows_in, "scored": table.height, "rejected": fc.rejects.height,
                "posts_in": chunk.posts_in, "posts_out": chunk.posts_out,
                "posts_rejected": base.post_rejects.height}  # fmt: skip

    def run(self, k: int, predictor: Predictor) -> dict[str, int]:
        return self.finish(self.prepare(k, predictor), predictor)

    def run_on_worker(self, k: int, load_model: Callable[[], Predictor]) -> dict[str, int]:
        return self.run(k, _worker_model(load_model))


_WORKER_MODELS: dict[str, Predictor] = {}
_WORKER_LOCK = threading.Lock()


def _worker_model(load_model: Callable[[], Predictor]) -> Predictor:
    """A worker loads (and verifies) the model once per loader, then reuses it for every chunk."""
    key = repr(load_model)  # a partial of a module function and its paths: the same on every task
    with _WORKER_LOCK:
        if key not in _WORKER_MODELS:
            if len(_WORKER_MODELS) >= 4:
                _WORKER_MODELS.pop(next(iter(_WORKER_MODELS)))
            _WORKER_MODELS[key] = load_model()
        return _WORKER_MODELS[key]


def _rows(table: Path | None, span: list[int]) -> pl.DataFrame:
    """Rows ``[offset, offset + length)`` of a one-file Parquet table (``row_ranges``)."""
    assert table is not None
    offset, length = span
    return collect_table(scan_table(table).slice(offset, length), table)


def stage(sources: Sequence[Path], chunks: int, out: Path, *, batch_bytes: float = STAGE_BATCH_BYTES) -> Path:
    """Split every creator and post row of ``sources`` by chunk in one streaming pass, into ``out/_stage``.

    Without it each chunk would scan the whole posts table for its creators (chunks x posts work). Each table is
    read in batches of about ``batch_bytes``; a batch is split by chunk and written as one file per chunk, so memory
    is bounded by the batch, whatever the input's size or the number of chunks. The stage is written under a
    temporary name and renamed when complete, so a killed pass leaves nothing half-staged, and a resumed run
    reuses a finished stage. It is removed when the run completes.
    """
    target = out / STAGE
    if target.is_dir():
        return target
    tmp = out / f"{STAGE}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    key = (pl.col("creator_id").hash(0) % chunks).alias(CHUNK_KEY)
    batch_no = 0
    for source in sources:
        for name in ("creators", "posts"):
            path = find_table(source, name)
            if path is None:
                continue
            for batch in _batches(path, batch_bytes):
                for (k,), part in batch.with_columns(key).partition_by(CHUNK_KEY, as_dict=True).items():
                    folder = tmp / name / f"{CHUNK_KEY}={k}"
                    folder.mkdir(parents=True, exist_ok=True)
                    part.drop(CHUNK_KEY).write_parquet(folder / f"{batch_no:07d}.parquet", compression="lz4")
                batch_no += 1
    tmp.mkdir(parents=True, exist_ok=True)
    tmp.rename(target)
    return target


def _batches(path: Path, batch_bytes: float) -> Iterator[pl.DataFrame]:
    """A table in batches of about ``batch_bytes`` in memory (Parquet by row ranges; CSV streamed)."""
    frame = scan_table(path)
    sample = frame.head(1000).collect()
    rows = max(10_000, int(batch_bytes / max(sample.estimated_size() / max(sample.height, 1), 1.0)))
    if all(f.suffix.lower() in (".parquet", ".pq") for f in table_files(path)):
        total = int(frame.select(pl.len()).collect().item())
        for offset in range(0, total, rows):
            yield frame.slice(offset, rows).collect()
    else:
        yield from frame.collect_batches(chunk_size=rows)


@dataclass(frozen=True)
class Progress:
    """Where a scoring run stands, after each chunk."""

    chunks_done: int
    chunks: int
    rows_done: int
    rows: int
    rows_per_s: float

    @property
    def eta_s(self) -> float:
        return (self.rows - self.rows_done) / max(self.rows_per_s, 1e-9)


def score_candidates(
    predictor: Predictor,
    sources: Sequence[Path],
    brief: Brief,
    tiers: TierConfig,
    out: Path,
    *,
    chunk_creators: int = 50_000,
    limit_memory_mb: float | None = None,
    restart: bool = False,
    progress: Callable[[Progress], None] | None = None,
    after_chunk: Callable[[int], None] | None = None,
    client: Any = None,
    worker_model: Callable[[], Predictor] | None = None,
    compiled_dir: Path | None = None,
    layout: Layout | None = None,
) -> ScoreResult:
    """Score every creator of ``sources`` for ``brief`` into ``out`` (see the module doc). ``layout``: the sources
    planned already (``sources.plan_layout`` with the same arguments), else they are planned here.

    With a ``distributed.Client``, the chunks run as tasks on its workers (the Dask engine): each worker reads its
    chunk from the sources, loads the model once with ``worker_model`` (a picklable loader of the same model, such
    as ``functools.partial(training.bundle.load_bundle, path)``), and writes its part into ``out``, so sources, the
    model and ``out`` must be paths every worker can reach. The client records finished chunks as with the local engine,
    so a Dask run resumes the same way and gives the same rows.

    The local engine prepares the next chunk (read, validate, features) in a thread while the models score the
    current one, so two chunks are in memory at a time.
    """
    if client is not None and worker_model is None:
        raise InputError("the Dask engine needs a way for its workers to load the model.",
                         fix="pass worker_model, a picklable function that loads the same model")  # fmt: skip
    t0 = time.perf_counter()
    if layout is None or not layout.fits(sources, chunk_creators, limit_memory_mb):
        layout = plan_layout(sources, chunk_creators, limit_memory_mb)
    files, n_creators, n_posts = layout.files, layout.n_creators, layout.n_posts
    chunks, ranges = layout.chunks, layout.ranges
    fp = _fingerprint(files, brief, predictor, chunks)
    state_path = out / STATE
    state: dict[str, Any] = {"fingerprint": fp, "chunks": chunks, "done": {}, "ranges": ranges}
    if state_path.is_file() and not restart:
        old = json.loads(state_path.read_text(encoding="utf-8"))
        if old.get("fingerprint") != fp:
            raise InputError(f"{out} holds a scoring run of other inputs (candidates, brief, model or chunking).",
                             fix="score into a new --out folder, or pass --restart to start this one over")  # fmt: skip
        state = old
    else:
        shutil.rmtree(out / STAGE, ignore_errors=True)  # a stage of another run is never reused
    for sub in ("scores", "rejects"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for tmp in (out / sub).glob(".*.tmp"):  # a part whose write was killed: its chunk is redone below
            tmp.unlink()
    write_json(state, state_path)
    resumed = len(state["done"])
    try:
        _score_chunks(predictor, sources, brief, tiers, out, state, n_creators=n_creators,
                      limit_memory_mb=limit_memory_mb, progress=progress, after_chunk=after_chunk, client=client,
                      worker_model=worker_model, compiled_dir=compiled_dir)  # fmt: skip
    except BaseException:
        if not state["done"]:  # nothing to resume: leave the folder as it was, not half a run
            for leftover in (state_path, out / STAGE, out / f"{STAGE}.tmp"):
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
        raise
    done = state["done"].values()
    totals = {key: sum(int(d.get(key, 0)) for d in done) for key in _COUNTS}
    if (
        totals["rows_in"] != n_creators
        or totals["rows_in"] != totals["scored"] + totals["rejected"]
        or (totals["posts_in"] != n_posts or totals["posts_in"] != totals["posts_out"] + totals["posts_rejected"])
    ):
        raise InputError(f"{out}: the chunks account for {totals} of {n_creators} creator and {n_posts} post rows.",
                         fix="rerun with --restart")  # fmt: skip
    reasons = _reasons(out) if totals["rejected"] + totals["posts_rejected"] else {}
    peak = _peak_rss_mb()
    manifest = ScoreManifest(
        brief=json.loads(brief.model_dump_json()),
        model=predictor.fingerprint,
        sources=[str(f) for f in files],
        chunks=chunks,
        creators=TableCounts(rows_in=n_creators, rows_out=totals["scored"], rows_rejected=totals["rejected"],
                             reasons=reasons.get("creators", {}) | reasons.get("features", {})),
        posts=TableCounts(rows_in=n_posts, rows_out=totals["posts_out"], rows_rejected=totals["posts_rejected"],
                          reasons=reasons.get("posts", {})),
        compiled_trees=[dict(r.__dict__) for r in compiled_reports(predictor)],
        outputs={"scores": "scores/part-*.parquet", "rejects": "rejects/part-*.parquet"},
        memory=MemoryReport(limit_mb=limit_memory_mb, peak_rss_mb=peak, creators_per_chunk=-(-n_creators // chunks)),
    )  # fmt: skip
    write_json(manifest.model_dump(mode="json"), out / "manifest.json")
    shutil.rmtree(out / STAGE, ignore_errors=True)  # every chunk is written: the stage is no longer needed
    return ScoreResult(out, n_creators, totals["scored"], totals["rejected"], chunks, resumed,
                       time.perf_counter() - t0, peak, manifest)  # fmt: skip


_RATES = "rates.arrow"  # written last by the first pass: a chunk whose rates exist was kept whole
PEER_SCHEMA = {"platform": pl.String, "tier": pl.String, "peer_er": pl.Float64, "peer_log_er": pl.Float64}
_COUNTS = ("rows_in", "scored", "rejected", "posts_in", "posts_out", "posts_rejected")


def _reasons(out: Path) -> dict[str, dict[str, int]]:
    """table -> reject reason -> rows, over every rejects part of a run."""
    counted = (
        pl.scan_parquet(str(out / "rejects" / "*.parquet"))
        .select("table", pl.col("reason").str.split(";"))
        .explode("reason")
        .group_by("table", "reason")
        .len()
        .sort("table", "reason")
        .collect()
    )
    result: dict[str, dict[str, int]] = {}
    for table, reason, n in counted.iter_rows():
        result.setdefault(str(table), {})[str(reason)] = int(n)
    return result


def _score_chunks(
    predictor: Predictor,
    sources: Sequence[Path],
    brief: Brief,
    tiers: TierConfig,
    out: Path,
    state: dict[str, Any],
    *,
    n_creators: int,
    limit_memory_mb: float | None,
    progress: Callable[[Progress], None] | None,
    after_chunk: Callable[[int], None] | None,
    client: Any,
    worker_model: Callable[[], Predictor] | None,
    compiled_dir: Path | None,
) -> None:
    """Stage the sources by chunk and score every chunk ``state`` does not record as done, recording each."""
    chunks = int(state["chunks"])
    state_path = out / STATE
    started, done_rows = time.perf_counter(), 0
    pending = [k for k in range(chunks) if str(k) not in state["done"]]
    ranges = state.get("ranges")
    # one chunk is read from the sources as they are, and chunks of row ranges from the sources' files: nothing to
    # split in either case
    if pending and chunks > 1 and ranges is None:
        # staging reads in batches: smaller ones under a tight memory limit
        batch = (
            STAGE_BATCH_BYTES
            if limit_memory_mb is None
            else min(STAGE_BATCH_BYTES, max(20e6, limit_memory_mb * 1e6 / 8))
        )
        stage(sources, chunks, out, batch_bytes=batch)

    def record(k: int, counts: dict[str, int]) -> None:
        nonlocal done_rows
        state["done"][str(k)] = counts
        write_json(state, state_path)  # the chunk counts as done only from here
        done_rows += counts["rows_in"]
        if progress is not None:
            finished = sum(d["rows_in"] for d in state["done"].values())
            rate = done_rows / max(time.perf_counter() - started, 1e-9)
            progress(Progress(len(state["done"]), chunks, finished, n_creators, rate))
        if after_chunk is not None:
            after_chunk(k)

    job = ChunkJob(sources=tuple(str(p) for p in sources), brief=brief.model_dump_json(),
                   tiers=tiers.model_dump_json(), out=str(out), chunks=chunks,
                   compiled_dir=str(compiled_dir) if compiled_dir is not None else None,
                   ranges=json.dumps(ranges) if ranges is not None else None)  # fmt: skip
    if pending and chunks > 1:
        # the whole base's peers, read once before any chunk is featurized: no row depends on its chunk (a run of
        # one chunk takes them from the chunk as it prepares it, so it reads and validates its rows once). This
        # first pass keeps what the scoring pass needs of each chunk, so the posts are read and ranked once.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ie-first-pass") as pool:
            rates = list(pool.map(job.first_pass, range(chunks)))
        peers = blend_peers(predictor.peers, pl.concat(rates, how="vertical_relaxed"))
        job = dataclasses.replace(job, peers=json.dumps(peers.to_dicts()))
    if client is None:
        # one chunk ahead: chunk k+1 is read and featurized while the models score chunk k
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ie-prepare") as pool:
            ahead = pool.submit(job.prepare, pending[0], predictor) if pending else None
            for i, k in enumerate(pending):
                assert ahead is not None
                chunk = ahead.result()
                ahead = pool.submit(job.prepare, pending[i + 1], predictor) if i + 1 < len(pending) else None
                record(k, job.finish(chunk, predictor))
    else:
        import distributed

        as_completed: Any = distributed.as_completed
        futures = {client.submit(job.run_on_worker, k, worker_model, pure=False): k for k in pending}
        for fut in as_completed(futures):
            record(futures[fut], fut.result())


def _peak_rss_mb() -> float | None:
    """The largest resident memory this process has had, in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # not on this OS
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return float(kb) / 1024.0


def read_scores(out: Path) -> pl.DataFrame:
    """Every scored row of a finished run."""
    return read_table(out / "scores")
