"""The only disk I/O: CSV/Parquet in, atomic Parquet/CSV/JSON out, manifests beside every output."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from influencer_engine import __version__
from influencer_engine.errors import InputError
from influencer_engine.schema import REJECT_SCHEMA, ValidationResult

__all__ = [
    "Manifest",
    "TableCount",
    "atomic_path",
    "collect_table",
    "read_table",
    "scan_table",
    "spreadsheet_safe",
    "table_files",
    "write_csv",
    "write_json",
    "write_parquet",
]

_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv")


def table_files(path: Path) -> list[Path]:
    """The data files behind ``path``: the file itself, or the Parquet/CSV files of a directory, sorted."""
    if not path.exists():
        raise InputError(f"{path} does not exist.", fix="check the path (a Parquet/CSV file or a folder of them)")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES and p.is_file())
        if not files:
            raise InputError(f"{path} holds no .parquet or .csv file.", fix="point at the table's file or folder")
        return files
    if path.suffix.lower() not in _SUFFIXES:
        raise InputError(
            f"{path} is neither Parquet nor CSV (suffix '{path.suffix}').",
            fix="give a .parquet or .csv file (convert other formats first)",
        )
    return [path]


def scan_table(path: Path) -> pl.LazyFrame:
    """Lazily scan one table (file or folder of same-format files). CSV is read as text: casting is the
    contract's job, so that a bad cell becomes a row-level reject and not a crash."""
    files = table_files(path)
    kinds = {f.suffix.lower() in (".parquet", ".pq") for f in files}
    if len(kinds) > 1:
        raise InputError(f"{path} mixes Parquet and CSV files.", fix="keep one format per table folder")
    try:
        if kinds == {True}:
            return pl.scan_parquet([str(f) for f in files])
        sep = "\t" if files[0].suffix.lower() == ".tsv" else ","
        return pl.scan_csv([str(f) for f in files], infer_schema=False, separator=sep)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path} cannot be read: {exc}.", fix="check that the file is valid Parquet/CSV") from exc


def read_table(path: Path) -> pl.DataFrame:
    """Read a whole table into memory, with a clear error when the file is unreadable or empty."""
    return collect_table(scan_table(path), path)


def collect_table(frame: pl.LazyFrame, path: Path) -> pl.DataFrame:
    """Collect a scan of ``path`` (``scan_table``), turning an unreadable file into one error that names it."""
    try:
        return frame.collect()
    except pl.exceptions.NoDataError as exc:
        raise InputError(f"{path} is empty (no header row).", fix="write a header row with the column names") from exc
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: Exception) -> InputError:
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    if "utf-8" in text.lower() or "utf8" in text.lower():
        return InputError(f"{path} is not UTF-8 text ({first}).", fix="save the file as UTF-8 (CSV) or Parquet")
    if "parquet" in text.lower() or path.suffix.lower() in (".parquet", ".pq"):
        return InputError(f"{path} is not a readable Parquet file ({first}).",
                          fix="write the file again (it may be truncated), or export it as CSV")  # fmt: skip
    return InputError(f"{path} cannot be read: {first}.", fix="check that it is valid Parquet/CSV")


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _write(target: Path, writer: Callable[[Path], None]) -> Path:
    with atomic_path(target) as tmp:
        writer(tmp)
    return target


def write_parquet(frame: pl.DataFrame, target: Path) -> Path:
    """Write Parquet atomically (zstd, statistics on)."""
    return _write(target, lambda p: frame.write_parquet(p, compression="zstd", statistics=True))


# A cell a spreadsheet would run as a formula (OWASP, CSV injection): these first characters make it one.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells that start like a formula get a leading ' so a spreadsheet shows them instead of running them."""
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]

    def safe(name: str) -> pl.Expr:
        col = pl.col(name)
        risky = pl.any_horizontal(col.str.starts_with(prefix) for prefix in FORMULA_PREFIXES)
        return pl.when(risky).then(pl.lit("'") + col).otherwise(col).alias(name)

    return frame.with_columns(safe(n) for n in texts) if texts else frame


def write_csv(frame: pl.DataFrame, target: Path, *, for_spreadsheets: bool = True) -> Path:
    """Write CSV atomically. CSVs are for people and their spreadsheets: formula-like text is neutralised
    (``spreadsheet_safe``) unless ``for_spreadsheets`` is off (a data file read back by programs)."""
    safe = spreadsheet_safe(frame) if for_spreadsheets else frame
    return _write(target, safe.write_csv)


def _json_safe(obj: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers, and readers other than Python refuse them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def write_json(obj: Mapping[str, Any], target: Path) -> Path:
    """Write pretty, valid JSON atomically (NaN and infinities as null)."""

    def _dump(p: Path) -> None:
        text = json.dumps(_json_safe(obj), indent=2, sort_keys=False, default=str, allow_nan=False)
        p.write_text(text + "\n", encoding="utf-8")

    return _write(target, _dump)


@dataclass
class TableCount:
    """Row accounting of one table: rows_in = rows_out + rows_rejected."""

    rows_in: int
    rows_out: int
    rows_rejected: int
    sources: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rows_in != self.rows_out + self.rows_rejected:
            raise AssertionError(
                f"row accounting broken: {self.rows_in} in != {self.rows_out} out + {self.rows_rejected} rejected"
            )


@dataclass
class Manifest:
    """What a command read and wrote, written as manifest.json beside its output."""

    command: str
    out_dir: Path
    tables: dict[str, TableCount] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)
    _rejects: list[pl.DataFrame] = field(default_factory=list)

    def add_result(self, name: str, result: ValidationResult, sources: list[str], **extra: Any) -> None:
        self.tables[name] = TableCount(
            rows_in=result.rows_in,
            rows_out=result.rows_out,
            rows_rejected=result.rows_rejected,
            sources=sources,
            reasons=result.reason_counts(),
            ignored_columns=list(result.ignored_columns),
            **extra,
        )
        if result.rows_rejected:
            self._rejects.append(result.rejects)

    def add_rejects(self, rejects: pl.DataFrame) -> None:
        if rejects.height:
            self._rejects.append(rejects.select(list(REJECT_SCHEMA)).cast(REJECT_SCHEMA))  # type: ignore[arg-type]

    def write_table(self, name: str, frame: pl.DataFrame, *, fmt: str = "parquet") -> Path:
        target = self.out_dir / f"{name}.{fmt}"
        if fmt == "parquet":
            write_parquet(frame, target)
        else:  # valid rows written back as data: exactly as read
            write_csv(frame, target, for_spreadsheets=False)
        self.outputs[name] = target.name
        return target

    def write(self) -> Path:
        """Write rejects.parquet (always, possibly empty) and manifest.json, atomically, manifest last."""
        rejects = pl.concat(self._rejects, how="vertical") if self._rejects else pl.DataFrame(schema=REJECT_SCHEMA)
        write_parquet(rejects, self.out_dir / "rejects.parquet")
        body = {
            "command": self.command,
            "engine_version": __version__,
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "params": self.params,
            "tables": {name: vars(tc) for name, tc in self.tables.items()},
            "derived": self.derived,
            "outputs": {**self.outputs, "rejects": "rejects.parquet"},
            "rows_rejected_total": rejects.height,
        }
        return write_json(body, self.out_dir / "manifest.json")
