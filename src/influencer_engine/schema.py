"""Table contracts (creators, posts, campaigns, outcomes, briefs) and validation.

Validation splits a table into valid rows and rejected rows, each reject with a machine-readable reason such
as ``missing_value:followers`` or ``duplicate:post_id``. File-level problems (a missing required column, a column
whose values cannot be read as its type at all) raise one ``ContractError`` naming the file, the column and the
fix. Rows are conserved: ``rows_in == rows_out + rows_rejected``, always.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import polars as pl

from influencer_engine.config import TierConfig
from influencer_engine.errors import ContractError
from influencer_engine.registry import FORMATS, GOAL_NAMES, KPIS, PLATFORMS, TIERS

__all__ = [
    "AGE_BANDS",
    "AUDIENCE_COUNTRIES",
    "AVERAGE_METRICS",
    "CATEGORIES",
    "CONTRACTS",
    "GENDERS",
    "REJECT_SCHEMA",
    "Col",
    "TableContract",
    "ValidationResult",
    "audience_columns",
    "check_references",
    "derive_tier",
    "strictly_increasing",
    "validate",
]

AGE_BANDS = ("13_17", "18_24", "25_34", "35_44", "45_plus")
GENDERS = ("female", "male")
AUDIENCE_COUNTRIES = ("US", "GB", "CA", "AU", "DE", "FR", "ES", "IT", "BR", "MX", "IN", "ID", "OTHER")
CATEGORIES = (
    "fashion", "beauty", "fitness", "food", "travel", "gaming",
    "tech", "parenting", "finance", "home", "entertainment", "sports",
)  # fmt: skip
LIST_SEPARATOR = "|"
SHARE_TOLERANCE = 0.02
# Counts above this are not plausible for one post or campaign (more than the world's population).
MAX_COUNT = 10**10

Kind = Literal["id", "str", "enum", "enum_list", "count", "float", "share", "bool", "datetime", "date"]

_DTYPES: dict[str, pl.DataType] = {
    "id": pl.String(),
    "str": pl.String(),
    "enum": pl.String(),
    "enum_list": pl.String(),
    "count": pl.Int64(),
    "float": pl.Float64(),
    "share": pl.Float64(),
    "bool": pl.Boolean(),
    "datetime": pl.Datetime("us", "UTC"),
    "date": pl.Date(),
}

REJECT_SCHEMA = {
    "table": pl.String,
    "row": pl.Int64,
    "key": pl.String,
    "reason": pl.String,
    "source": pl.String,
}


@dataclass(frozen=True)
class Col:
    """One column of a contract."""

    name: str
    kind: Kind
    meaning: str
    required: bool = True
    nullable: bool = False
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None

    @property
    def dtype(self) -> pl.DataType:
        return _DTYPES[self.kind]


@dataclass(frozen=True)
class TableContract:
    """A table's columns, key, share groups (must sum to 1) and extra row rules."""

    name: str
    columns: tuple[Col, ...]
    key: tuple[str, ...]
    share_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (reason, expression that is True on a bad row), evaluated on the cast columns.
    # (reason, expression that is True on a bad row, or a function building it when validation runs, for rules that
    # read the clock)
    rules: tuple[tuple[str, pl.Expr | Callable[[], pl.Expr]], ...] = ()
    # Column groups of which at least one must be present on each row.
    any_of: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def col(self, name: str) -> Col:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}


@dataclass(frozen=True)
class ValidationResult:
    """Valid rows (in contract column order and types) and rejected rows with reasons."""

    valid: pl.DataFrame
    rejects: pl.DataFrame
    rows_in: int
    ignored_columns: tuple[str, ...] = ()
    # source row number of each valid row, so later checks can still name the row
    valid_rows: pl.Series | None = None

    @property
    def rows_out(self) -> int:
        return self.valid.height

    @property
    def rows_rejected(self) -> int:
        return self.rejects.height

    def reason_counts(self) -> dict[str, int]:
        if self.rejects.is_empty():
            return {}
        reasons = self.rejects.select(pl.col("reason").str.split(";").explode()).to_series()
        counts = reasons.value_counts(sort=True)
        return dict(zip(counts[reasons.name].to_list(), counts["count"].to_list(), strict=True))


def audience_columns() -> dict[str, tuple[str, ...]]:
    """Audience share column groups: name -> columns (each group sums to 1 when known)."""
    return {
        "audience_age": tuple(f"aud_age__{b}" for b in AGE_BANDS),
        "audience_gender": tuple(f"aud_gender__{g}" for g in GENDERS),
        "audience_country": tuple(f"aud_country__{c}" for c in AUDIENCE_COUNTRIES),
        "audience_interest": tuple(f"aud_interest__{c}" for c in CATEGORIES),
    }


def _share_cols() -> tuple[Col, ...]:
    meanings = {
        "audience_age": "share of the audience in age band {}",
        "audience_gender": "share of the audience that is {}",
        "audience_country": "share of the audience in country {}",
        "audience_interest": "share of the audience whose main interest is {}",
    }
    cols = []
    for group, names in audience_columns().items():
        for name in names:
            label = name.split("__", 1)[1]
            cols.append(Col(name, "share", meanings[group].format(label), required=False, nullable=True))
    return tuple(cols)


def _price_cols() -> tuple[Col, ...]:
    return tuple(
        Col(
            f"price_{f}",
            "float",
            f"list price of one sponsored {f} (USD)",
            required=False,
            nullable=True,
            min=0,
        )
        for f in FORMATS
    )


# What exports report instead of posts (ranking sites, creator databases): averages per recent post. A creator with no
# posts is read from them (features.averages); a creator with posts is read from its posts.
AVERAGE_METRICS = ("views", "likes", "comments", "shares", "engagement")


def _average_cols() -> tuple[Col, ...]:
    meaning = {"engagement": "likes + comments per recent post, where the export does not split them"}
    return tuple(
        Col(
            f"avg_{m}",
            "float",
            meaning.get(m, f"{m} per recent post, as the export reports it (used when the creator has no posts)"),
            required=False,
            nullable=True,
            min=0,
            max=MAX_COUNT,
        )
        for m in AVERAGE_METRICS
    )


_COUNT_MEANING = "{} of the post (null when unknown)"
_TARGET_COLS = (
    Col("target_age", "enum_list", "target age bands, '|'-separated (null: all)", required=False, nullable=True,
        values=AGE_BANDS),
    Col("target_gender", "enum_list", "target genders, '|'-separated (null: all)", required=False, nullable=True,
        values=GENDERS),
    Col("target_countries", "enum_list", "target countries, '|'-separated (null: all)", required=False,
        nullable=True, values=AUDIENCE_COUNTRIES),
)  # fmt: skip

CREATORS = TableContract(
    name="creators",
    columns=(
        Col("creator_id", "id", "unique creator id"),
        Col("platform", "enum", "platform of the account", values=PLATFORMS),
        Col("handle", "str", "account handle"),
        Col("followers", "count", "followers (subscribers) now", min=0, max=MAX_COUNT),
        Col(
            "following",
            "count",
            "accounts the creator follows",
            required=False,
            nullable=True,
            min=0,
            max=MAX_COUNT,
        ),
        Col("country", "str", "creator's country (ISO-2 where known)", required=False, nullable=True),
        Col("language", "str", "main language (ISO 639-1)", required=False, nullable=True),
        Col(
            "categories",
            "str",
            "the creator's niches, '|'-separated, main first",
            required=False,
            nullable=True,
        ),
        Col(
            "tier",
            "enum",
            "size tier; derived from followers when absent",
            required=False,
            nullable=True,
            values=TIERS,
        ),
        *_price_cols(),
        *_average_cols(),
        Col(
            "audience_credibility",
            "share",
            "share of followers that are real people",
            required=False,
            nullable=True,
        ),
        *_share_cols(),
    ),
    key=("creator_id",),
    share_groups=audience_columns(),
)

# Posts exist from the first creator platforms (YouTube, 2005) to now; a day of slack for clocks and time zones.
EARLIEST_POST = datetime(2005, 1, 1, tzinfo=UTC)


def _outside_posting_era(posted_at: pl.Expr) -> pl.Expr:
    latest = datetime.now(UTC) + timedelta(days=1)
    return (posted_at < pl.lit(EARLIEST_POST)) | (posted_at > pl.lit(latest))


POSTS = TableContract(
    name="posts",
    columns=(
        Col("post_id", "id", "unique post id"),
        Col("creator_id", "id", "creator who posted"),
        Col("posted_at", "datetime", "when it was posted (UTC)"),
        Col("format", "enum", "post format", values=FORMATS),
        Col("sponsored", "bool", "paid partnership (null when unknown)", required=False, nullable=True),
        *(
            Col(n, "count", _COUNT_MEANING.format(n), required=False, nullable=True, min=0, max=MAX_COUNT)
            for n in ("impressions", "views", "reach", "likes", "comments", "shares", "saves")
        ),
        Col("caption", "str", "the post's caption text (null when unknown)", required=False, nullable=True),
    ),
    key=("post_id",),
    any_of={"counts": ("impressions", "views", "reach", "likes", "comments", "shares", "saves")},
    rules=(
        ("inconsistent:reach>impressions", pl.col("reach") > pl.col("impressions")),
        ("out_of_range:posted_at", lambda: _outside_posting_era(pl.col("posted_at"))),
    ),
)

CAMPAIGNS = TableContract(
    name="campaigns",
    columns=(
        Col("campaign_id", "id", "unique campaign id"),
        Col("brand_id", "id", "brand that ran it"),
        Col("brand_category", "enum", "brand's category", values=CATEGORIES),
        *_TARGET_COLS,
        Col("start_date", "date", "first day of the campaign"),
        Col("end_date", "date", "last day of the campaign"),
        Col("budget", "float", "total budget (USD)", required=False, nullable=True, min=0),
        Col("goal", "enum", "what the campaign optimized", required=False, nullable=True, values=GOAL_NAMES),
    ),
    key=("campaign_id",),
    rules=(("inconsistent:end_date<start_date", pl.col("end_date") < pl.col("start_date")),),
)

OUTCOMES = TableContract(
    name="outcomes",
    columns=(
        Col("campaign_id", "id", "campaign"),
        Col("creator_id", "id", "creator hired"),
        Col("format", "enum", "format of the sponsored post", values=FORMATS),
        Col("posted_at", "datetime", "when the sponsored post went live", required=False, nullable=True),
        Col("cost", "float", "amount paid (USD)", min=0),
        *(
            Col(
                k.name,
                k.kind,
                k.meaning or f"observed {k.name}",
                required=False,
                nullable=True,
                min=0,
                max=MAX_COUNT if k.kind == "count" else None,
            )
            for k in KPIS.values()
        ),
    ),
    key=("campaign_id", "creator_id", "format"),
    rules=(("inconsistent:reach>impressions", pl.col("reach") > pl.col("impressions")),),
)

BRIEFS = TableContract(
    name="briefs",
    columns=(
        Col("brief_id", "id", "unique brief id"),
        Col("goal", "enum", "what to maximize", values=GOAL_NAMES),
        Col("budget", "float", "total budget (USD)", min=0),
        Col("brand_category", "enum", "brand's category", values=CATEGORIES),
        *_TARGET_COLS,
        Col("start_date", "date", "campaign start"),
        Col("end_date", "date", "campaign end"),
        Col(
            "platforms",
            "enum_list",
            "platforms allowed (null: all)",
            required=False,
            nullable=True,
            values=PLATFORMS,
        ),
        Col(
            "formats",
            "enum_list",
            "formats allowed (null: all)",
            required=False,
            nullable=True,
            values=FORMATS,
        ),
        Col("min_creators", "count", "roster size at least", required=False, nullable=True, min=0),
        Col("max_creators", "count", "roster size at most", required=False, nullable=True, min=0),
        Col("max_per_creator", "float", "spend cap per creator (USD)", required=False, nullable=True, min=0),
        Col("min_audience_fit", "share", "minimum audience fit to the target", required=False, nullable=True),
        Col("min_credibility", "share", "minimum audience credibility", required=False, nullable=True),
        Col(
            "include",
            "str",
            "creator ids that must be in the roster, '|'-separated",
            required=False,
            nullable=True,
        ),
        Col("exclude", "str", "creator ids never to pick, '|'-separated", required=False, nullable=True),
        Col(
            "risk_quantile",
            "share",
            "plan on this forecast quantile (null: expected value)",
            required=False,
            nullable=True,
        ),
    ),
    key=("brief_id",),
    rules=(
        ("out_of_range:budget", pl.col("budget") <= 0),
        ("inconsistent:end_date<start_date", pl.col("end_date") < pl.col("start_date")),
        ("inconsistent:min_creators>max_creators", pl.col("min_creators") > pl.col("max_creators")),
    ),
)

CONTRACTS: dict[str, TableContract] = {c.name: c for c in (CREATORS, POSTS, CAMPAIGNS, OUTCOMES, BRIEFS)}


# ---------------------------------------------------------------------------------------------- casting
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
)


def _parse_datetime(text: pl.Expr) -> pl.Expr:
    """ISO timestamps in any common spelling, or plain dates, to UTC (naive ones are taken as UTC)."""
    t = text.str.strip_chars()
    tries = [t.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC") for f in _DATETIME_FORMATS]
    tries.append(t.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
    return pl.coalesce(tries)


def _cast_expr(col: Col, src: pl.DataType) -> pl.Expr:
    """Expression casting the source column to the contract type; unreadable cells become null."""
    c = pl.col(col.name)
    target = col.dtype
    if col.kind in ("id", "str"):
        return c if src == target else c.cast(pl.String, strict=False)
    if col.kind in ("enum", "enum_list"):
        text = (c if src == target else c.cast(pl.String, strict=False)).str.strip_chars().str.replace_all(" ", "")
        # vocabularies are lower case except country codes
        return text.str.to_uppercase() if col.values == AUDIENCE_COUNTRIES else text.str.to_lowercase()
    if src == target:
        return c
    if col.kind == "bool":
        if src == pl.String:
            s = c.str.strip_chars().str.to_lowercase()
            return pl.when(s.is_in(_TRUE)).then(True).when(s.is_in(_FALSE)).then(False).otherwise(None)
        return c.cast(pl.Boolean, strict=False)
    if col.kind == "datetime":
        if src == pl.String:
            return _parse_datetime(c)
        if isinstance(src, pl.Datetime):
            dt = c.dt.replace_time_zone("UTC") if src.time_zone is None else c.dt.convert_time_zone("UTC")
            return dt.dt.cast_time_unit("us")
        if src == pl.Date:
            return c.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        # numbers are unix seconds
        secs = c.cast(pl.Float64, strict=False)
        micros = pl.when(secs.is_finite() & (secs.abs() < 1e11)).then((secs * 1_000_000).cast(pl.Int64, strict=False))
        return micros.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if col.kind == "date":
        if src == pl.String:
            return c.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
        return c.dt.date()
    # numeric kinds
    num = _numeric_source(col, src)
    if num is None:
        num = c.cast(pl.Float64, strict=False)
    if col.kind == "count":
        # only clean integers cast; non-finite and fractional values are flagged by the source-level checks
        integral = num.is_finite() & (num == num.round(0)) & (num.abs() < 9.2e18)
        return pl.when(integral).then(num.cast(pl.Int64, strict=False))
    return num


def _is_castable_source(col: Col, src: pl.DataType) -> bool:
    if src == pl.Null:
        return True
    if col.kind in ("id", "str", "enum", "enum_list"):
        return not isinstance(src, pl.List | pl.Struct | pl.Array | pl.Object)
    if col.kind in ("count", "float", "share"):
        return src.is_numeric() or src in (pl.String, pl.Boolean)
    if col.kind == "bool":
        return src == pl.Boolean or src.is_integer() or src == pl.String
    if col.kind == "datetime":
        return isinstance(src, pl.Datetime) or src in (pl.Date, pl.String) or src.is_numeric()
    if col.kind == "date":
        return isinstance(src, pl.Datetime) or src in (pl.Date, pl.String)
    return False


_FIX_BY_KIND = {
    "count": "write whole numbers (e.g. 1200), not text",
    "float": "write plain numbers (e.g. 12.5), not text",
    "share": "write shares as numbers between 0 and 1",
    "bool": "write true or false",
    "datetime": "write ISO timestamps (2025-03-01T12:00:00Z) or unix seconds",
    "date": "write ISO dates (2025-03-01)",
}


# ------------------------------------------------------------------------------------------- validation
def validate(
    data: pl.DataFrame | pl.LazyFrame,
    contract: TableContract | str,
    *,
    source: str = "<frame>",
) -> ValidationResult:
    """Split ``data`` into valid rows and rejected rows with reasons.

    Raises:
        ContractError: a required column is missing, or a column cannot be read as its type at all.
    """
    c = CONTRACTS[contract] if isinstance(contract, str) else contract
    df = data.collect() if isinstance(data, pl.LazyFrame) else data
    rows_in = df.height

    missing = [col.name for col in c.columns if col.required and col.name not in df.columns]
    if missing and df.width == 1:
        # one column whose name holds the others: the file is delimited by something other than commas
        sep = next((d for d in (";", "\t", "|") if d in df.columns[0]), None)
        if sep is not None:
            shown = {"\t": "tabs"}.get(sep, f"'{sep}'")
            raise ContractError(
                f"the header reads as one column ('{df.columns[0][:60]}'): it is separated by {shown}, not commas",
                file=source,
                fix="save it as comma-separated CSV (or as .tsv for tabs), or as Parquet",
            )
    if missing:
        raise ContractError(
            f"required column(s) missing ({', '.join(missing)}); the file has: {', '.join(df.columns) or 'none'}",
            file=source,
            column=missing[0],
            fix=f"add the column(s) {', '.join(missing)} to the {c.name} table (`ie contracts {c.name}` lists them)",
        )
    ignored = tuple(name for name in df.columns if name not in c.names)

    # 1. Source-level problems, evaluated on the raw values: unreadable, non-finite or non-integral cells.
    pre: list[tuple[str, str, pl.Expr]] = []  # (column, reason, True-on-bad)
    casts: list[pl.Expr] = []
    known_enums: set[str] = set()  # text enum columns whose every value is one of the contract's
    for col in c.columns:
        if col.name not in df.columns:
            casts.append(pl.lit(None, dtype=col.dtype).alias(col.name))
            continue
        src = df.schema[col.name]
        if not _is_castable_source(col, src):
            raise ContractError(
                f"holds {src} values where {col.kind} values are expected",
                file=source,
                column=col.name,
                fix=_FIX_BY_KIND.get(col.kind, "write plain text values"),
            )
        cast = _cast_expr(col, src)
        if col.kind == "enum" and src == pl.String:
            cast, every_known = _enum_by_value(df, col, cast)
            if every_known:
                known_enums.add(col.name)
        casts.append(cast.alias(col.name))
        if src in (col.dtype, pl.Null):
            continue
        present = pl.col(col.name).is_not_null()
        if src == pl.String and col.kind not in ("id", "str", "enum", "enum_list"):
            present = present & (pl.col(col.name).str.strip_chars() != "")
        num = _numeric_source(col, src)
        if num is not None:
            pre.append((col.name, f"bad_type:{col.name}", present & num.is_null()))
            pre.append((col.name, f"not_finite:{col.name}", num.is_not_null() & ~num.is_finite()))
            if col.kind == "count":
                pre.append((col.name, f"not_integer:{col.name}", num.is_finite() & (num != num.round(0))))
                pre.append((col.name, f"out_of_range:{col.name}", num.is_finite() & (num.abs() >= 9.2e18)))
        else:
            pre.append((col.name, f"bad_type:{col.name}", present & cast.is_null()))

    _raise_on_unreadable_columns(df, c, pre, source)

    # 2. Contract rules, evaluated on the cast values.
    pre_by_col: dict[str, list[str]] = {}
    for i, (name, _, _) in enumerate(pre):
        pre_by_col.setdefault(name, []).append(f"__p{i}")
    post: list[tuple[str, pl.Expr]] = []
    for col in c.columns:
        v = pl.col(col.name)
        flagged = pl.any_horizontal(pre_by_col[col.name]) if col.name in pre_by_col else pl.lit(False)
        if not col.nullable:
            post.append((f"missing_value:{col.name}", v.is_null() & ~flagged))
        if col.kind == "share":
            post.append((f"out_of_range:{col.name}", (v < 0) | (v > 1)))
        if col.kind in ("count", "float") and col.min is not None:
            label = "negative" if col.min == 0 else "out_of_range"
            post.append((f"{label}:{col.name}", v < col.min))
        if col.kind in ("count", "float") and col.max is not None:
            post.append((f"out_of_range:{col.name}", v > col.max))
        if col.kind == "enum" and col.name not in known_enums:
            post.append((f"unknown:{col.name}", v.is_not_null() & ~v.is_in(col.values)))
        if col.kind == "enum_list":
            tokens = v.str.split(LIST_SEPARATOR).list.eval(~pl.element().str.strip_chars().is_in(col.values))
            post.append((f"unknown:{col.name}", v.is_not_null() & tokens.list.any()))
    for group, cols in c.share_groups.items():
        known = pl.sum_horizontal(pl.col(n).is_not_null().cast(pl.Int32) for n in cols)
        total = pl.sum_horizontal(pl.col(n) for n in cols)
        post.append((f"share_partial:{group}", (known > 0) & (known < len(cols))))
        post.append((f"share_sum:{group}", (known == len(cols)) & ((total - 1.0).abs() > SHARE_TOLERANCE)))
    for group, cols in c.any_of.items():
        post.append((f"missing_value:{group}", pl.all_horizontal(pl.col(n).is_null() for n in cols)))
    post.extend((reason, rule() if callable(rule) else rule) for reason, rule in c.rules)
    dup = _duplicate_expr(df, c.key)
    if dup is not None:
        post.append((f"duplicate:{'+'.join(c.key)}", dup))

    reasons = [r for _, r, _ in pre] + [r for r, _ in post]
    flags = [f"__p{i}" for i in range(len(pre))] + [f"__q{i}" for i in range(len(post))]
    if not pre:  # values already of their types (Parquet, or frames built in memory): one pass says if any is bad
        typed = df.lazy().with_columns(*casts)
        if not flags or not typed.select(pl.any_horizontal(e.fill_null(False) for _, e in post).any()).collect().item():
            # the common case: every row is valid, and only the cast columns are built (no flag columns)
            valid = typed.select(c.names).collect()
            rows = pl.int_range(0, rows_in, dtype=pl.Int64, eager=True).alias("__row")
            return ValidationResult(valid=valid, rejects=pl.DataFrame(schema=REJECT_SCHEMA), rows_in=rows_in,
                                    ignored_columns=ignored, valid_rows=rows)  # fmt: skip
    out = (
        df.lazy()
        .with_row_index("__row")
        .with_columns(
            *(e.fill_null(False).alias(f"__p{i}") for i, (_, _, e) in enumerate(pre)),
            *casts,
        )
        .with_columns(*(e.fill_null(False).alias(f"__q{i}") for i, (_, e) in enumerate(post)))
        .with_columns(pl.any_horizontal(flags).alias("__bad") if flags else pl.lit(False).alias("__bad"))
        .collect()
    )
    if out["__bad"].any():
        valid = out.filter(~pl.col("__bad"))
        bad = out.filter(pl.col("__bad"))
    else:  # the common case: every row is valid, and no copy of them is made
        valid, bad = out, out.head(0)
    valid_rows = valid["__row"].cast(pl.Int64)
    valid = valid.select(c.names)
    key = pl.concat_str([pl.col(k).cast(pl.String).fill_null("<null>") for k in c.key], separator="+")
    rejects = bad.select(
        pl.lit(c.name).alias("table"),
        pl.col("__row").cast(pl.Int64).alias("row"),
        key.alias("key"),
        pl.concat_str(
            [pl.when(pl.col(f)).then(pl.lit(r)) for f, r in zip(flags, reasons, strict=True)],
            separator=";",
            ignore_nulls=True,
        ).alias("reason"),
        pl.lit(source).alias("source"),
    )
    assert valid.height + rejects.height == rows_in, "validation lost rows"
    return ValidationResult(
        valid=valid, rejects=rejects, rows_in=rows_in, ignored_columns=ignored, valid_rows=valid_rows
    )


_ENUM_BY_VALUE = 64  # distinct values up to which an enum column is normalized per value, not per row


def _enum_by_value(df: pl.DataFrame, col: Col, cast: pl.Expr) -> tuple[pl.Expr, bool]:
    """``cast`` (an enum's text normalization, a function of the value alone) worked out once per distinct value, and
    whether every normalized value is one of the contract's (then no row can be unknown and the per-row check is
    skipped). A few formats or platforms over millions of posts then cost one pass instead of three string
    operations and a lookup per row. The column itself where every value is already in its normal form (the usual
    case); the per-row expression where the column has many distinct values."""
    distinct = df.select(pl.col(col.name).unique().head(_ENUM_BY_VALUE + 1)).to_series()
    if distinct.len() > _ENUM_BY_VALUE:
        return cast, False
    normal = distinct.to_frame().select(cast).to_series()
    known = bool(normal.drop_nulls().is_in(list(col.values)).all())
    if (normal == distinct).fill_null(True).all():
        return pl.col(col.name), known
    mapping = {a: b for a, b in zip(distinct.to_list(), normal.to_list(), strict=True) if a is not None}
    return pl.col(col.name).replace_strict(mapping, default=None, return_dtype=pl.String), known


def _numeric_source(col: Col, src: pl.DataType) -> pl.Expr | None:
    """For numeric kinds read from text or floats: the value as Float64 (null where unreadable)."""
    if col.kind not in ("count", "float", "share"):
        return None
    c = pl.col(col.name)
    if src == pl.String:
        return c.str.strip_chars().str.replace_all(",", "").cast(pl.Float64, strict=False)
    if src.is_float():
        return c.cast(pl.Float64)
    return None


def _raise_on_unreadable_columns(
    df: pl.DataFrame, c: TableContract, pre: list[tuple[str, str, pl.Expr]], source: str
) -> None:
    """A column none of whose values can be read as its type is a file-level error, not a row-level one."""
    checks = [(name, e) for name, reason, e in pre if reason.startswith("bad_type:")]
    if not checks or df.height == 0:
        return
    row = df.select(
        *(e.fill_null(False).sum().alias(f"bad{i}") for i, (_, e) in enumerate(checks)),
        *(pl.col(name).is_not_null().sum().alias(f"nn{i}") for i, (name, _) in enumerate(checks)),
    ).row(0, named=True)
    for i, (name, _) in enumerate(checks):
        bad, present = row[f"bad{i}"], row[f"nn{i}"]
        # one unreadable cell in a tiny file is a row problem; a whole column of them is the file's
        if present >= min(5, df.height) and bad == present:
            col = c.col(name)
            example = df.filter(pl.col(name).is_not_null())[name][0]
            raise ContractError(
                f"no value could be read as {col.kind} (first value: {example!r})",
                file=source,
                column=name,
                fix=_FIX_BY_KIND.get(col.kind, "write plain text values"),
            )


def _duplicate_expr(df: pl.DataFrame, key: Sequence[str]) -> pl.Expr | None:
    """True on every repeat of a key after its first occurrence; None when the key is unique.

    The exact check runs only when a 64-bit hash of the key says there may be a repeat, which keeps the common
    case (no duplicates) at one hash and one count over the column.
    """
    if df.height < 2 or any(k not in df.columns for k in key):
        return None
    if len(key) == 1 and strictly_increasing(df[key[0]]):  # ids written in order (exports, the simulator)
        return None
    cols = [pl.col(k) for k in key]
    hashed = pl.struct(cols).hash(0) if len(cols) > 1 else cols[0].hash(0)
    if df.select(hashed.n_unique()).item() == df.height:
        return None
    target = pl.struct(cols) if len(cols) > 1 else cols[0]
    return ~target.is_first_distinct()


def strictly_increasing(s: pl.Series) -> bool:
    """Whether every value is greater than the one before (so none repeats) and none is null: a comparison of
    neighbours, half the cost of hashing every value and counting the distinct hashes. Its first rows are looked at
    first, so a column in no order costs next to nothing more."""
    if s.null_count():
        return False
    head = s.head(1_000)
    if not bool((head.slice(1) > head.slice(0, head.len() - 1)).all()):
        return False
    return bool((s.slice(1) > s.slice(0, s.len() - 1)).all())


# ------------------------------------------------------------------------------------------- references
def check_references(
    result: ValidationResult,
    column: str,
    allowed: pl.Series,
    *,
    table: str,
    source: str,
    key: Sequence[str],
) -> ValidationResult:
    """Move valid rows whose ``column`` is not among ``allowed`` (the parent's keys) to the rejects."""
    rows = result.valid_rows if result.valid_rows is not None else pl.Series(range(result.valid.height))
    known = result.valid.select(pl.col(column).is_in(allowed.implode()).fill_null(False)).to_series()
    if known.all():
        return result
    orphans = result.valid.with_columns(rows.alias("__row")).filter(~known)
    key_expr = pl.concat_str([pl.col(k).cast(pl.String).fill_null("<null>") for k in key], separator="+")
    orphan_rejects = orphans.select(
        pl.lit(table).alias("table"),
        pl.col("__row").cast(pl.Int64).alias("row"),
        key_expr.alias("key"),
        pl.lit(f"unknown:{column}").alias("reason"),
        pl.lit(source).alias("source"),
    )
    return ValidationResult(
        valid=result.valid.filter(known),
        rejects=pl.concat([result.rejects, orphan_rejects]).sort("row"),
        rows_in=result.rows_in,
        ignored_columns=result.ignored_columns,
        valid_rows=rows.filter(known),
    )


# ------------------------------------------------------------------------------------------------ tiers
def derive_tier(frame: pl.LazyFrame, tiers: TierConfig, *, followers: str = "followers") -> pl.LazyFrame:
    """Fill the ``tier`` column from followers where it is null (banding from configs/tiers.toml)."""
    f = pl.col(followers)
    banded = (
        pl.when(f >= tiers.mega).then(pl.lit("mega"))
        .when(f >= tiers.macro).then(pl.lit("macro"))
        .when(f >= tiers.mid).then(pl.lit("mid"))
        .when(f >= tiers.micro).then(pl.lit("micro"))
        .when(f.is_not_null()).then(pl.lit("nano"))
    )  # fmt: skip
    if "tier" in frame.collect_schema().names():
        return frame.with_columns(pl.coalesce(pl.col("tier"), banded).alias("tier"))
    return frame.with_columns(banded.alias("tier"))
