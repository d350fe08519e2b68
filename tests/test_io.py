from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from influencer_engine.errors import InputError
from influencer_engine.io import TableCount, atomic_path, read_table, write_parquet


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "t.parquet"
    write_parquet(pl.DataFrame({"a": [1]}), target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("crash mid-write")
    assert pl.read_parquet(target)["a"].to_list() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_read_table_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_table(tmp_path / "missing.parquet")
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="neither Parquet nor CSV"):
        read_table(bad)
    broken = tmp_path / "b.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"b\.parquet"):
        read_table(broken)


def test_folder_of_files_is_one_table(tmp_path: Path) -> None:
    for i in range(3):
        write_parquet(pl.DataFrame({"a": [i]}), tmp_path / f"part{i}.parquet")
    assert read_table(tmp_path)["a"].to_list() == [0, 1, 2]


def test_table_count_refuses_broken_accounting() -> None:
    with pytest.raises(AssertionError, match="row accounting"):
        TableCount(rows_in=3, rows_out=1, rows_rejected=1)
