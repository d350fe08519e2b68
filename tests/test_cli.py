from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from influencer_engine.cli import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["demo", "--out", str(tmp_path / "w"), "--creators", "800", "--seed", "3"], capsys)
    assert code == 0, out
    assert "1/3 simulated 800 creators" in out and "0 rejected" in out and "campaigns:" in out
    m = json.loads((tmp_path / "w" / "validation" / "manifest.json").read_text())
    assert all(t["rows_rejected"] == 0 for t in m["tables"].values())


def test_simulate_twice_identical_and_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for d in ("a", "b"):
        code, _, err = _run(["simulate", "--creators", "600", "--seed", "9", "--out", str(tmp_path / d)], capsys)
        assert code == 0, err
    for t in ("creators", "posts", "campaigns", "outcomes"):
        assert pl.read_parquet(tmp_path / "a" / f"{t}.parquet").equals(pl.read_parquet(tmp_path / "b" / f"{t}.parquet"))
    m = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert m["tables"]["creators"]["rows_out"] == 600
    assert (tmp_path / "a" / "truth" / "world.json").is_file()
    assert not list((tmp_path / "a").glob(".*.tmp"))


def test_validate_reports_rejects_and_writes_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "posts.csv"
    p.write_text("post_id,creator_id,posted_at,format,likes\np1,c1,2025-01-01,image,10\np2,c1,2025-01-01,gif,-3\n")
    code, out, _ = _run(["validate", "posts", str(p), "--out", str(tmp_path / "v")], capsys)
    assert code == 1
    assert "rejected        1" in out
    m = json.loads((tmp_path / "v" / "manifest.json").read_text())
    assert {k: m["tables"]["posts"][k] for k in ("rows_in", "rows_out", "rows_rejected")} == {
        "rows_in": 2,
        "rows_out": 1,
        "rows_rejected": 1,
    }
    rejects = pl.read_parquet(tmp_path / "v" / "rejects.parquet")
    assert rejects["reason"].to_list() == ["unknown:format;negative:likes"]


def test_errors_are_one_line_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "posts.csv"
    p.write_text("post_id,creator_id,format\np1,c1,image\n")
    code, _, err = _run(["validate", "posts", str(p)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "posts.csv" in err and "'posted_at'" in err and "Fix:" in err


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "influencer_engine.cli", "--debug", "validate", "posts", str(tmp_path / "none.csv")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_contracts_lists_columns(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["contracts", "posts"], capsys)
    assert code == 0 and "posted_at" in out and "required" in out


def test_features_list_and_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["features", "list", "--group", "audience_fit"], capsys)
    assert code == 0 and out.count("\n") == 4 and "audience_fit" in out
    world = tmp_path / "w"
    assert _run(["simulate", "--creators", "500", "--seed", "2", "--out", str(world)], capsys)[0] == 0
    code, out, err = _run(["features", "build", "--data", str(world), "--out", str(tmp_path / "f")], capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert m["tables"]["requests"]["rows_out"] == m["tables"]["requests"]["rows_in"] > 0
    brief = Path(__file__).resolve().parents[1] / "configs" / "briefs" / "fitness_january.toml"
    code, _, err = _run(
        ["features", "build", "--data", str(world), "--out", str(tmp_path / "g"), "--brief", str(brief),
         "--partitions", "3"], capsys,
    )  # fmt: skip
    assert code == 0, err
    assert pl.read_parquet(tmp_path / "g" / "features").height == 500
    code, _, err = _run(
        ["features", "build", "--data", str(world), "--out", str(tmp_path / "h"), "--as-of", "May 1"], capsys
    )
    assert code == 2 and "YYYY-MM-DD" in err
