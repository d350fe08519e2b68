"""`ie import table --map MAPPING.toml SRC --out DIR`: any export to the contracts, described by a mapping file.

A mapping names, per source file (or glob), which contract tables its rows become and where each contract column
comes from: a source column, a constant, a value map, a regex extract, a prefix; how to read it (``parse``: counts
such as "353.1K", money such as "$1,200", percentages, unix seconds, dates in a given format); and which cells mean
"missing" ("Share", "N/A", "#VALOR!", ...). ``configs/mappings/`` holds examples and ``ie import table --help``
points at them.

Every source row is accounted for: a cell that cannot be read rejects its row (``unparseable:<column>``), the
contracts reject what they reject, a creator repeated across rows is merged (``merged:creator_id``, the kept row
named in the mapping's ``keep``), posts whose creator is not imported are rejected. ``rows_in = rows_out +
rows_rejected`` for every table, in ``manifest.json``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from influencer_engine.config import describe_problems
from influencer_engine.errors import ConfigError, InputError
from influencer_engine.importers._text import SPREADSHEET_ERRORS, parse_number
from influencer_engine.io import Manifest
from influencer_engine.schema import CONTRACTS, REJECT_SCHEMA, ValidationResult, check_references, validate

__all__ = ["ColumnSpec", "Mapping", "SourceSpec", "import_table", "load_mapping"]

Parse = Literal["text", "count", "number", "money", "percent", "share", "unix", "unix_ms", "iso", "date", "bool"]
_TABLES = ("creators", "posts", "campaigns", "outcomes")
# which tables a table's rows refer to: a row whose parent was not imported (or was rejected) is rejected
_PARENTS = {"posts": (("creator_id", "creators"),),
            "outcomes": (("creator_id", "creators"), ("campaign_id", "campaigns"))}  # fmt: skip
_TRUE = ("true", "yes", "y", "1", "t")
_FALSE = ("false", "no", "n", "0", "f")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """Where one contract column comes from."""

    source: str | None = Field(default=None, alias="from")  # the source column (first of duplicated headers)
    value: str | float | int | bool | None = None  # a constant, when there is no source column
    parse: Parse = "text"
    format: str | None = None  # strftime format for parse = "date" (e.g. "%d/%m/%Y", "%Y-%m-%d %H:%M")
    map: dict[str, str] = {}  # source value -> contract value (case-sensitive; unmapped values pass unchanged)
    extract: str | None = None  # regex whose first group is the value (no match: the whole cell)
    prefix: str = ""  # put before the value (ids from several platforms: "tiktok:")
    lower: bool = False
    optional: bool = False  # a file without the source column gives nulls (exports differ in what they hold)

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnSpec:
        if (self.source is None) == (self.value is None):
            raise ValueError("give exactly one of `from` (a source column) and `value` (a constant)")
        if self.parse == "date" and not self.format:
            raise ValueError('parse = "date" needs `format` (strftime, e.g. "%d/%m/%Y")')
        return self


class TableSpec(_Strict):
    columns: dict[str, ColumnSpec]
    keep: Literal["first", "last"] | None = None  # rows repeating the table's key: merge them, keeping this one

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("columns"), dict):
            cols = {k: ({"from": v} if isinstance(v, str) else v) for k, v in data["columns"].items()}
            data = {**data, "columns": cols}
        return data


class SourceSpec(_Strict):
    files: str  # a file name or glob, relative to SRC (or SRC itself when it is a file)
    separator: str = ","
    skip_rows: int = 0
    missing: tuple[str, ...] = ()  # cells (after trimming) that mean "no value", on top of spreadsheet errors
    required: bool = True  # false: an export without such a file is fine (e.g. no post histories)
    tables: dict[str, TableSpec]

    @model_validator(mode="after")
    def _known_tables(self) -> SourceSpec:
        unknown = sorted(set(self.tables) - set(_TABLES))
        if unknown:
            raise ValueError(f"tables {unknown}: a mapping writes {', '.join(_TABLES)}")
        for name, spec in self.tables.items():
            contract = CONTRACTS[name]
            extra = sorted(set(spec.columns) - set(contract.names))
            if extra:
                raise ValueError(f"{name}: {extra} are not columns of the {name} contract (`ie contracts {name}`)")
            required = [c.name for c in contract.columns if c.required and c.name not in spec.columns]
            if required:
                raise ValueError(f"{name}: no mapping for required column(s) {required}")
        return self


class Mapping(_Strict):
    """A mapping file: a description and its sources."""

    description: str = ""
    sources: list[SourceSpec]


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping TOML; a problem names the file, the key and the fix."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"mapping {path} not found.", fix="see configs/mappings/ for examples") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}).", fix="fix the line named") from exc
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        problem = describe_problems(exc, Mapping)[0]
        raise ConfigError(f"{path}: {problem}.", fix="see configs/mappings/ for examples") from exc


def _files(src: Path, pattern: str, required: bool = True) -> list[Path]:
    if src.is_file():
        return [src] if required or src.match(pattern) else []
    found = sorted(src.glob(pattern))
    if not found and required:
        raise InputError(f"{src} has no file matching {pattern!r}.", fix="point SRC at the export's folder or file")
    return found


def _read(path: Path, spec: SourceSpec) -> pl.DataFrame:
    if path.suffix.lower() == ".parquet":
        frame = pl.read_parquet(path)
        return frame.select(pl.all().cast(pl.String))
    try:
        return pl.read_csv(path, separator=spec.separator, skip_rows=spec.skip_rows, infer_schema=False,
                           truncate_ragged_lines=True)  # fmt: skip
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        first = str(exc).splitlines()[0]
        raise InputError(
            f"{path} cannot be read as CSV ({first}).",
            fix="check the mapping's `separator` and `skip_rows`, and that the file is CSV",
        ) from exc


def _cell(spec: ColumnSpec, frame: pl.DataFrame, missing: tuple[str, ...], path: Path, name: str) -> pl.Expr:
    """The raw text of a column after extract/map/missing handling (null: missing)."""
    if spec.source is None:
        return pl.lit(None if spec.value is None else str(spec.value), dtype=pl.String)
    if spec.source not in frame.columns and spec.optional:
        return pl.lit(None, dtype=pl.String)
    if spec.source not in frame.columns:
        raise InputError(
            f"{path} has no column {spec.source!r} (mapped to {name}).",
            fix=f"check the mapping, or the header; the file has {', '.join(frame.columns[:12])}",
        )
    text = pl.col(spec.source).cast(pl.String).str.strip_chars()
    gone = {m.strip().upper() for m in (*SPREADSHEET_ERRORS, *missing)}
    text = pl.when(text.str.to_uppercase().is_in(list(gone))).then(None).otherwise(text)
    if spec.extract:
        text = pl.coalesce(text.str.extract(spec.extract, 1), text)
    if spec.map:
        text = text.replace(spec.map)
    if spec.lower:
        text = text.str.to_lowercase()
    return text


def _parsed(spec: ColumnSpec, text: pl.Expr) -> pl.Expr:
    """The typed value of the text (null where it cannot be read)."""
    match spec.parse:
        case "text":
            return pl.concat_str(pl.lit(spec.prefix), text) if spec.prefix else text
        case "count":  # "13.8M" is 13,800,000 people, not 13,800,000.000000002
            return parse_number(text).round(0)
        case "number":
            return parse_number(text)
        case "money":
            return parse_number(text.str.replace_all(r"^[$€£]|\s*(USD|EUR|GBP)$", ""))
        case "percent" | "share":
            number = parse_number(text.str.replace(r"%$", ""))
            # "45%" and 45 are 0.45 for percent; share takes 0.45 as given
            if spec.parse == "percent":
                return number / 100.0
            return pl.when(text.str.ends_with("%")).then(number / 100.0).otherwise(number)
        case "unix" | "unix_ms":
            seconds = text.cast(pl.Float64, strict=False) / (1000.0 if spec.parse == "unix_ms" else 1.0)
            return (seconds * 1e6).cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        case "iso":
            return text.str.to_datetime(strict=False, time_zone="UTC", time_unit="us")
        case "date":
            assert spec.format is not None
            return text.str.to_datetime(spec.format, strict=False, time_unit="us").dt.replace_time_zone("UTC")
        case "bool":
            low = text.str.to_lowercase()
            return pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False).otherwise(None)
    raise AssertionError(spec.parse)


def _table_rows(frame: pl.DataFrame, table: str, spec: TableSpec, source: SourceSpec, path: Path
                ) -> tuple[pl.DataFrame, pl.DataFrame]:  # fmt: skip
    """(mapped rows, rejects) of one table from one file; a row with an unreadable cell is a reject."""
    texts = {n: _cell(c, frame, source.missing, path, n) for n, c in spec.columns.items()}
    raw = frame.with_row_index("__row").select("__row", *(t.alias(f"__t_{n}") for n, t in texts.items()))
    values = raw.select("__row", *(pl.col(f"__t_{n}").alias(f"__t_{n}") for n in texts),
                        *(_parsed(c, pl.col(f"__t_{n}")).alias(n) for n, c in spec.columns.items()))  # fmt: skip
    bad = [pl.when(pl.col(f"__t_{n}").is_not_null() & pl.col(n).is_null()).then(pl.lit(f"unparseable:{n}"))
           for n, c in spec.columns.items() if c.parse != "text"]  # fmt: skip
    reason = pl.concat_str(bad, separator=";", ignore_nulls=True) if bad else pl.lit(None, dtype=pl.String)
    tagged = values.with_columns(reason.alias("__reason")).with_columns(
        pl.when(pl.col("__reason") == "").then(None).otherwise(pl.col("__reason")).alias("__reason"))  # fmt: skip
    key = CONTRACTS[table].key[0]
    rejects = tagged.filter(pl.col("__reason").is_not_null()).select(
        pl.lit(table).alias("table"), (pl.col("__row") + 1).cast(pl.Int64).alias("row"),
        pl.col(key).cast(pl.String).alias("key"), pl.col("__reason").alias("reason"), pl.lit(str(path)).alias("source"),
    )  # fmt: skip
    rows = tagged.filter(pl.col("__reason").is_null()).select("__row", *spec.columns)
    return rows, rejects


def _merged(rows: pl.DataFrame, table: str, keep: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows repeating the table's key merged into the ``keep`` one; the others as rejects (``merged:<key>``)."""
    key = list(CONTRACTS[table].key)
    indexed = rows.with_row_index("__i")
    kept = indexed.unique(key, keep="last" if keep == "last" else "first", maintain_order=True).sort("__i")
    dropped = indexed.join(kept.select("__i"), on="__i", how="anti")
    rejects = dropped.select(pl.lit(table).alias("table"), pl.col("__line").alias("row"),
                             pl.concat_str(key, separator=":").alias("key"),
                             pl.lit(f"merged:{'+'.join(key)} (kept the {keep} row)").alias("reason"),
                             pl.col("__file").alias("source"))  # fmt: skip
    return kept.drop("__i"), rejects


def _located(rejects: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """Rejects whose ``row`` is a position in ``rows``, named by their file and line instead."""
    where = rows.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), pl.col("__line"), pl.col("__file"))
    return (
        rejects.join(where, on="row", how="left", maintain_order="left")
        .with_columns(pl.coalesce("__line", "row").alias("row"), pl.coalesce("__file", "source").alias("source"))
        .select(list(REJECT_SCHEMA))
    )


def _history_note(results: dict[str, ValidationResult]) -> str:
    """How many outcomes come from creators without a post before their campaign: they are kept (the models
    forecast from followers, category and price alone, and learn from them), and said so."""
    outcomes = results["outcomes"].valid
    starts = results["campaigns"].valid.select("campaign_id", "start_date") if "campaigns" in results else None
    if starts is None or outcomes.height == 0:
        return "outcomes: no campaign dates, so no post history could be checked"
    hires = outcomes.join(starts, on="campaign_id", how="left").select("creator_id", "start_date").unique()
    posts = results["posts"].valid.select("creator_id", "posted_at") if "posts" in results else None
    if posts is None or posts.height == 0:
        with_history = 0
    else:
        start = pl.col("start_date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        before = hires.join(posts, on="creator_id").filter(pl.col("posted_at") < start)
        with_history = before.select("creator_id", "start_date").unique().height
    lacking = hires.height - with_history
    return (
        f"outcomes: {lacking:,} of {hires.height:,} hires (creator x campaign start) have no post before the "
        "campaign; they are kept, and their forecasts rest on followers, category and price alone"
    )


def import_table(mapping_path: Path, src: Path, out: Path) -> Manifest:
    """Map the export ``src`` (a file or folder) with ``mapping_path`` to the contracts in ``out``."""
    mapping = load_mapping(mapping_path)
    if not src.exists():
        raise InputError(f"{src} does not exist.", fix="point SRC at the export's file or folder")
    manifest = Manifest(command="import table", out_dir=out, params={"mapping": str(mapping_path), "src": str(src)})
    parsed: dict[str, list[pl.DataFrame]] = {t: [] for t in _TABLES}
    rejects: dict[str, list[pl.DataFrame]] = {t: [] for t in _TABLES}
    rows_in: dict[str, int] = dict.fromkeys(_TABLES, 0)
    files: dict[str, list[str]] = {t: [] for t in _TABLES}
    keep: dict[str, str | None] = dict.fromkeys(_TABLES)
    for source in mapping.sources:
        for path in _files(src, source.files, source.required):
            frame = _read(path, source)
            for table, spec in source.tables.items():
                rows, bad = _table_rows(frame, table, spec, source, path)
                parsed[table].append(rows.with_columns((pl.col("__row") + 1).cast(pl.Int64).alias("__line"),
                                                       pl.lit(str(path)).alias("__file")).drop("__row"))  # fmt: skip
                rejects[table].append(bad)
                rows_in[table] += frame.height
                files[table].append(str(path))
                keep[table] = keep[table] or spec.keep
    if not files["creators"]:
        raise InputError(f"{mapping_path} maps no source to the creators table.",
                         fix="add a [sources.tables.creators] section: every base needs its creators")  # fmt: skip
    results: dict[str, ValidationResult] = {}
    for table in _TABLES:
        if not files[table]:
            continue
        rows = pl.concat(parsed[table], how="diagonal_relaxed")
        if keep[table] is not None:
            rows, merged = _merged(rows, table, str(keep[table]))
            rejects[table].append(merged)
        checked = validate(rows.drop("__line", "__file"), CONTRACTS[table], source=",".join(files[table]))
        for column, parent in _PARENTS.get(table, ()):
            known = results[parent].valid[column] if parent in results else pl.Series(column, [], pl.String)
            checked = check_references(checked, column, known, table=table, source=str(src),
                                       key=CONTRACTS[table].key)  # fmt: skip
        bad = pl.concat([r.select(list(REJECT_SCHEMA)).cast(pl.Schema(REJECT_SCHEMA))
                         for r in (*rejects[table], _located(checked.rejects, rows))])  # fmt: skip
        results[table] = ValidationResult(valid=checked.valid, rejects=bad, rows_in=rows_in[table])
    notes = {t: [mapping.description] if mapping.description else [] for t in results}
    if "outcomes" in results:
        notes["outcomes"].append(_history_note(results))
    for table, result in results.items():
        assert result.rows_in == result.rows_out + result.rows_rejected, table
        manifest.write_table(table, result.valid)
        manifest.add_result(table, result, files[table], notes=notes[table])
    manifest.write()
    return manifest
