"""Property tests: validation either raises the clear file-level error or conserves every row."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from influencer_engine.errors import ContractError, InputError
from influencer_engine.io import read_table
from influencer_engine.schema import CONTRACTS, validate

_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["image", "VIDEO", "instagram", "tiktok", "2025-01-01", "1e3", "-4", "nan", "inf", "", " 12 ",
                     "fitness", "18_24|25_34", "US|xx", "true", "ünïcødé_✨", "c1", "p1"]),
)  # fmt: skip
_VALUES = {
    "int": (pl.Int64, st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 1, -1, 10**12]))),
    "float": (
        pl.Float64,
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.5, 1.0, -0.0])),
    ),
    "str": (pl.String, _TEXT),
    "bool": (pl.Boolean, st.booleans()),
}


@st.composite
def frames(draw: st.DrawFn, table: str) -> pl.DataFrame:
    contract = CONTRACTS[table]
    n = draw(st.integers(0, 12))
    names = [c.name for c in contract.columns]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    # usually keep the required columns, so that row-level paths are exercised too
    if draw(st.booleans()):
        chosen = list(dict.fromkeys([*[c.name for c in contract.columns if c.required], *chosen]))
    if draw(st.booleans()):
        chosen.append("unexpected_extra")
    cols = {}
    for name in chosen:
        kind = draw(st.sampled_from(list(_VALUES)))
        dtype, strategy = _VALUES[kind]
        values = draw(st.lists(st.one_of(st.none(), strategy), min_size=n, max_size=n))
        if name in contract.key and n > 1 and draw(st.booleans()):
            values[-1] = values[0]  # a duplicate key
        cols[name] = pl.Series(name, values, dtype=dtype)
    return pl.DataFrame(cols) if cols else pl.DataFrame()


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("table", list(CONTRACTS))
@_SETTINGS
@given(data=st.data())
def test_rows_are_conserved_or_the_file_is_refused(table: str, data: st.DataObject) -> None:
    frame = data.draw(frames(table))
    try:
        result = validate(frame, table, source="gen.parquet")
    except ContractError as exc:
        assert "gen.parquet" in str(exc) and "Fix:" in str(exc)
        return
    assert result.rows_in == frame.height == result.rows_out + result.rows_rejected
    assert result.valid.columns == CONTRACTS[table].names
    assert (result.rejects["reason"].str.len_chars() > 0).all()
    assert result.rejects["row"].n_unique() == result.rows_rejected
    # every valid row satisfies the contract: validating the valid rows again rejects nothing
    again = validate(result.valid, table)
    assert again.rows_rejected == 0


@pytest.mark.parametrize("table", ["creators", "posts"])
@_SETTINGS
@given(data=st.data())
def test_csv_files_are_conserved_or_refused(
    table: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    frame = data.draw(frames(table))
    path = tmp_path_factory.mktemp("csv") / f"{table}.csv"
    frame.write_csv(path)
    try:
        loaded = read_table(path)
        result = validate(loaded, table, source=str(path))
    except (ContractError, InputError) as exc:
        assert str(path) in str(exc) and "Fix:" in str(exc)
        return
    assert result.rows_in == loaded.height == frame.height
    assert result.rows_in == result.rows_out + result.rows_rejected


def test_empty_file_is_a_clear_input_error(tmp_path: Path) -> None:
    p = tmp_path / "posts.csv"
    p.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_table(p)
