"""Parsing helpers for scraped spreadsheets: abbreviated numbers, spreadsheet error cells, country names."""

from __future__ import annotations

import re

import polars as pl

__all__ = ["COUNTRY_CODES", "SPREADSHEET_ERRORS", "country_code", "is_junk", "parse_number"]

# Cells that spreadsheets write when a formula fails, in several locales, and placeholders for "no value".
SPREADSHEET_ERRORS = (
    "#VALOR!", "#VALUE!", "#NAME?", "#NOMBRE?", "#N/A", "#DIV/0!", "#REF!", "#NUM!", "#NULL!",
    "N/A", "N/A'", "NA", "-", "--", "", "NAN", "NULL", "NONE",
)  # fmt: skip
_MULTIPLIER = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9}


def is_junk(text: pl.Expr) -> pl.Expr:
    """True where a cell holds a spreadsheet error or a placeholder rather than a value."""
    return text.str.strip_chars().str.to_uppercase().is_in(SPREADSHEET_ERRORS)


def parse_number(text: pl.Expr) -> pl.Expr:
    """'48.5M' -> 48_500_000.0, '1,234' -> 1234.0, '477900000.00' -> 477_900_000.0; anything else -> null."""
    s = text.str.strip_chars().str.replace_all(",", "").str.to_uppercase()
    groups = s.str.extract_groups(r"^([0-9]*\.?[0-9]+)\s*([KMB]?)$")
    value = groups.struct.field("1").cast(pl.Float64, strict=False)
    mult = groups.struct.field("2").replace_strict(_MULTIPLIER, default=None, return_dtype=pl.Float64)
    return value * mult


COUNTRY_CODES = {
    "united states": "US", "usa": "US", "united kingdom": "GB", "uk": "GB", "canada": "CA", "australia": "AU",
    "germany": "DE", "france": "FR", "spain": "ES", "italy": "IT", "brazil": "BR", "mexico": "MX", "india": "IN",
    "indonesia": "ID", "argentina": "AR", "colombia": "CO", "russia": "RU", "turkey": "TR", "japan": "JP",
    "south korea": "KR", "korea": "KR", "philippines": "PH", "thailand": "TH", "egypt": "EG", "iraq": "IQ",
    "pakistan": "PK", "bangladesh": "BD", "nigeria": "NG", "morocco": "MA", "saudi arabia": "SA", "chile": "CL",
    "peru": "PE", "vietnam": "VN", "malaysia": "MY", "ukraine": "UA", "poland": "PL", "netherlands": "NL",
    "algeria": "DZ", "iran": "IR", "kazakhstan": "KZ", "united arab emirates": "AE", "ecuador": "EC",
    "venezuela": "VE", "portugal": "PT", "south africa": "ZA", "china": "CN", "taiwan": "TW", "syria": "SY",
    "jordan": "JO", "kuwait": "KW", "belarus": "BY", "dominican republic": "DO", "puerto rico": "PR",
    "somalia": "SO", "afghanistan": "AF", "uzbekistan": "UZ", "kenya": "KE", "greece": "GR", "sweden": "SE",
}  # fmt: skip


def country_code(name: pl.Expr) -> pl.Expr:
    """Country names to ISO-2 codes where known; unknown names are kept as written, junk becomes null."""
    clean = name.str.strip_chars()
    key = clean.str.to_lowercase()
    code = key.replace_strict(COUNTRY_CODES, default=None, return_dtype=pl.String)
    return pl.when(is_junk(clean) | clean.is_null()).then(None).otherwise(pl.coalesce(code, clean))


def normalize_header(header: str | None) -> str:
    """'Authentic engagement\\n' -> 'authentic engagement'; None -> ''."""
    return re.sub(r"\s+", " ", header or "").strip().lower()
