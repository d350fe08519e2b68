"""Bad inputs of every family through the CLI and the API: a clean result or one line with the fix, nothing lost.

The corpus (tests/corpus.py) is generated from the trained test world; ``benchmarks/bench_hardening.py`` runs the
same corpus and prints the table of families, cases and cases handled well.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from corpus import BRIEF_CASES, BUNDLE_CASES, DATA_CASES, JARGON, BriefCase, BundleCase, DataCase, data_case_files
from influencer_engine.cli import main
from influencer_engine.io import spreadsheet_safe, write_csv

BRIEF = Path(__file__).resolve().parents[1] / "configs" / "briefs" / "fitness_january.toml"
KEY = "hardening-key-0123456789"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def _one_clean_line(code: int, err: str) -> bool:
    """The CLI's answer to an unusable input: exit 2, one line, a fix, no jargon or traceback."""
    lines = [x for x in err.splitlines() if x.strip()]
    return code == 2 and len(lines) == 1 and "Fix:" in lines[0] and not any(j in err for j in JARGON)


def _leftovers(out: Path, *, failed: bool) -> list[str]:
    """Temporary files and the stage; after a failed run with nothing done, also the run's state file."""
    names = ("_stage", "_state.json") if failed else ("_stage",)
    found = [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name in names] if out.exists() else []
    return [str(p.relative_to(out)) for p in found]


@pytest.fixture(scope="module")
def world_tables(trained: dict[str, Path]) -> tuple[pl.DataFrame, pl.DataFrame]:
    return pl.read_parquet(trained["world"] / "creators.parquet"), pl.read_parquet(trained["world"] / "posts.parquet")


# ------------------------------------------------------------------------------------------------ data files
@pytest.mark.parametrize("case", DATA_CASES, ids=lambda c: c.name)
def test_bad_data_files_through_the_cli(case: DataCase, world_tables: tuple[pl.DataFrame, pl.DataFrame],
                                        trained: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    folder = tmp_path / "cands"
    files = data_case_files(case, *world_tables, folder)
    # ie validate: every table of the case
    for table, path in files.items():
        code, out, err = _run(["validate", table, str(path)], capsys)
        if case.clean_error and table == "creators":
            assert _one_clean_line(code, err), (case.name, code, err)
        else:
            assert code in (0, 1) and "internal error" not in err, (case.name, table, code, err)
            assert f"{table:10} in" in out
    # ie score: scores and rejects that account for every row, or one clean line and nothing left behind
    out_dir = tmp_path / "scored"
    code, out, err = _run(["score", "--candidates", str(folder), "--brief", str(BRIEF), "--model",
                           str(trained["bundle"]), "--out", str(out_dir)], capsys)  # fmt: skip
    if case.clean_error:
        assert _one_clean_line(code, "\n".join(x for x in err.splitlines() if not x.startswith("chunk "))), (
            case.name, err)  # fmt: skip
    else:
        assert code == 0, (case.name, err)
        m = json.loads((out_dir / "manifest.json").read_text())
        for table in ("creators", "posts"):
            t = m[table]
            assert t["rows_in"] == t["rows_out"] + t["rows_rejected"], (case.name, table, t)
        src = files["creators"]
        n_in = pl.read_csv(src, infer_schema=False).height if src.suffix == ".csv" else pl.read_parquet(src).height
        assert m["creators"]["rows_in"] == n_in, case.name
        if m["creators"]["rows_rejected"] + m["posts"]["rows_rejected"]:
            rejects = pl.read_parquet(out_dir / "rejects")
            assert rejects["reason"].str.len_chars().min() > 0  # type: ignore[operator]
    assert _leftovers(out_dir, failed=code != 0) == [], (case.name, _leftovers(out_dir, failed=code != 0))


@pytest.fixture(scope="module")
def api(trained: dict[str, Path]) -> Any:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from influencer_engine.serve import create_app, load_server
    from influencer_engine.training.bundle import load_bundle

    server = load_server(load_bundle(trained["bundle"]), trained["world"], model_ref="test", api_key=KEY)
    with TestClient(create_app(server), raise_server_exceptions=False) as client:
        yield client


def _brief_json() -> dict[str, Any]:
    from influencer_engine.brief import load_brief

    data: dict[str, Any] = load_brief(BRIEF).model_dump(mode="json")
    data["scenarios"] = []
    return data


@pytest.mark.parametrize("case", DATA_CASES, ids=lambda c: c.name)
def test_bad_data_files_through_the_api(case: DataCase, world_tables: tuple[pl.DataFrame, pl.DataFrame], api: Any,
                                        tmp_path: Path) -> None:  # fmt: skip
    files = data_case_files(case, *world_tables, tmp_path / "cands")
    upload = {name: (path.name, path.read_bytes(), "application/octet-stream") for name, path in files.items()}
    r = api.post("/api/score", headers={"X-API-Key": KEY}, data={"brief": json.dumps(_brief_json())}, files=upload)
    body = r.json()
    if case.clean_error:
        assert 400 <= r.status_code < 500 and body["error"] and body["fix"], (case.name, r.status_code, body)
        assert "/tmp" not in body["error"] + body["fix"], "server paths leak into the answer"
    else:
        assert r.status_code == 200, (case.name, r.status_code, body)
        assert body["rows_in"] == body["scored"] + body["rejected"]
        p = body["posts"]
        assert p["rows_in"] == p["rows_out"] + p["rows_rejected"]
        assert len(body["rejects"]) == body["rejected"] + p["rows_rejected"]


# ------------------------------------------------------------------------------------------------ briefs
def _write_brief(case: BriefCase, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    changed = case.change(_brief_json())
    if isinstance(changed, str):
        path = folder / "brief.toml"
        path.write_text(changed, encoding="utf-8")
    else:
        path = folder / "brief.json"
        path.write_text(json.dumps(changed), encoding="utf-8")  # NaN and Infinity as Python's json writes them
    return path


@pytest.mark.parametrize("case", BRIEF_CASES, ids=lambda c: c.name)
def test_bad_briefs_through_the_cli(case: BriefCase, trained: dict[str, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    path = _write_brief(case, tmp_path)
    code, _, err = _run(["plan", "--brief", str(path), "--data", str(trained["world"]), "--model",
                           str(trained["bundle"]), "--out", str(tmp_path / "plan")], capsys)  # fmt: skip
    if not case.words:
        assert code == 0, (case.name, err)
        return
    assert _one_clean_line(code, err) and case.words in err, (case.name, err)
    if path.suffix == ".json" or path.read_text():
        code, _, err = _run(["validate", "briefs", str(path)], capsys)
        assert (code == 2 and case.words in err) or case.family == "infeasible", (case.name, err)


@pytest.mark.parametrize("case", BRIEF_CASES, ids=lambda c: c.name)
def test_bad_briefs_through_the_api(case: BriefCase, api: Any) -> None:
    changed = case.change(_brief_json())
    headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
    if isinstance(changed, str):  # not JSON at all
        r = api.post("/api/plan", headers=headers, content=changed.encode())
    else:
        r = api.post("/api/plan", headers=headers, content=json.dumps({"brief": changed}).encode())
    body = r.json()
    if not case.words:
        assert r.status_code == 200, (case.name, body)
        return
    assert r.status_code == 422 and body["error"] and body["fix"], (case.name, r.status_code, body)
    assert not any(j in body["error"] for j in JARGON), body["error"]
    if not isinstance(changed, str):
        assert case.words in body["error"] + " ".join(body.get("reasons", [])), (case.name, body)


# ------------------------------------------------------------------------------------------------ bundles
@pytest.mark.parametrize("case", BUNDLE_CASES, ids=lambda c: c.name)
def test_tampered_bundles_are_refused_in_one_line(case: BundleCase, trained: dict[str, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    copy = tmp_path / "bundle"
    shutil.copytree(trained["bundle"], copy)
    case.tamper(copy)
    code, _, err = _run(["plan", "--brief", str(BRIEF), "--data", str(trained["world"]), "--model", str(copy),
                         "--out", str(tmp_path / "plan")], capsys)  # fmt: skip
    assert _one_clean_line(code, err) and case.words in err, (case.name, err)


def test_a_bundle_made_before_a_setting_existed_still_loads_and_is_still_checked(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    """A bundle written by an engine whose model settings lacked a field added since (``intervals.history_tolerance``
    here) was hashed without it; read now, the field takes its default. It loads, keeps its checksum, and an edit to
    it is still refused."""
    import hashlib

    import pydantic_core

    from influencer_engine.training.bundle import BundleError, load_bundle

    def rewrite(folder: Path, change: Any) -> None:
        m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        change(m)
        (folder / "manifest.json").write_text(json.dumps(m), encoding="utf-8")

    def as_an_older_engine_wrote_it(m: dict[str, Any]) -> None:
        del m["config"]["intervals"]["history_tolerance"]
        content = {k: v for k, v in m.items() if k != "checksum" and not (k == "prior" and v is None)}
        m["checksum"] = hashlib.sha256(pydantic_core.to_json(content)).hexdigest()  # that engine's JSON form

    older = tmp_path / "older"
    shutil.copytree(trained["bundle"], older)
    rewrite(older, as_an_older_engine_wrote_it)
    loaded = load_bundle(older)
    assert loaded.manifest.config.intervals.history_tolerance == 0.05  # the default, not in the file
    edited = tmp_path / "edited"
    shutil.copytree(older, edited)

    def intercept_plus_5(m: dict[str, Any]) -> None:
        m["kpis"]["reach"]["state"]["intercept"] += 5

    rewrite(edited, intercept_plus_5)
    with pytest.raises(BundleError, match="its own checksum"):
        load_bundle(edited)


# ------------------------------------------------------------------------------------------------ exports, API
def test_csv_exports_neutralise_formulas(tmp_path: Path) -> None:
    evil = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "\tx", "\rx", "fine"]
    path = write_csv(pl.DataFrame({"creator_id": evil, "price": list(range(7))}), tmp_path / "roster.csv")
    back = pl.read_csv(path)["creator_id"].to_list()
    assert all(v.startswith("'") for v in back[:6]) and back[6] == "fine"
    assert spreadsheet_safe(pl.DataFrame({"n": [-1.5]}))["n"][0] == -1.5  # numbers stay numbers
    js = (Path(__file__).resolve().parents[1] / "src" / "influencer_engine" / "serve" / "static" / "app.js").read_text()
    assert "/^[=+\\-@\\t\\r]/" in js  # the page's CSV export does the same


def test_api_answers_every_4xx_in_its_own_format_with_safe_headers(api: Any) -> None:
    for method, path, status in (("get", "/nope", 404), ("put", "/api/plan", 405), ("get", "/api/plan", 405)):
        r = api.request(method, path, headers={"X-API-Key": KEY})
        assert r.status_code == status and set(r.json()) >= {"error", "fix"}, (path, r.text)
    r = api.post("/api/plan", headers={"X-API-Key": KEY, "Content-Type": "application/json"}, content=b"{not json")
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]
    for path in ("/", "/health", "/docs", "/api/model"):
        h = api.get(path, headers={"X-API-Key": KEY}).headers
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY", path
        assert "default-src 'self'" in h["content-security-policy"] and "frame-ancestors 'none'" in h[
            "content-security-policy"]  # fmt: skip
    docs = api.get("/docs").text
    assert "https://" not in docs and "/docs-assets/swagger-ui-bundle.js" in docs
    assert api.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_a_run_is_not_resumed_with_a_bundle_of_the_same_trees_and_other_corrections(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scores depend on the bundle's corrections and bands as well as its trees: an --out folder scored with one bundle
    is not resumed with another whose model texts are the same but whose manifest is not (retrained with other band
    settings, or corrected on more of the user's rows)."""
    from influencer_engine.modeling.predictor import BundleManifest

    other = tmp_path / "other"
    shutil.copytree(trained["bundle"], other)
    m = json.loads((other / "manifest.json").read_text(encoding="utf-8"))
    m["kpis"]["reach"]["state"]["intercept"] += 0.1  # a correction, not a tree
    m["checksum"] = BundleManifest.model_validate(m).content_sha256()
    (other / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    out = tmp_path / "scored"
    args = ["score", "--candidates", str(trained["world"]), "--brief", str(BRIEF), "--out", str(out),
            "--chunk-creators", "1000"]  # fmt: skip
    assert _run([*args, "--model", str(trained["bundle"])], capsys)[0] == 0
    code, _, err = _run([*args, "--model", str(other)], capsys)
    assert code != 0 and "holds a scoring run of other inputs" in err, err
    assert _run([*args, "--model", str(other), "--restart"], capsys)[0] == 0


def test_a_resumed_run_clears_killed_part_writes(trained: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "scored"
    args = ["score", "--candidates", str(trained["world"]), "--brief", str(BRIEF), "--model", str(trained["bundle"]),
            "--out", str(out), "--chunk-creators", "1000"]  # fmt: skip
    assert _run(args, capsys)[0] == 0
    state = json.loads((out / "_state.json").read_text())
    state["done"].pop("1")  # chunk 1 was being written when the run was killed: its part left as a temp file
    (out / "_state.json").write_text(json.dumps(state))
    for sub in ("scores", "rejects"):
        (out / sub / ".part-00001.parquet.x1y2.tmp").write_bytes(b"")
    code, text, err = _run(args, capsys)
    assert code == 0 and "resumed" in text, err
    assert _leftovers(out, failed=False) == []
    assert pl.read_parquet(out / "scores")["creator_id"].n_unique() == 2500


def test_serve_without_the_serve_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import importlib.util

    real = importlib.util.find_spec
    missing = ("python_multipart", "multipart")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a))
    code, _, err = _run(["serve", "--data", "nowhere", "--model", "nothing"], capsys)
    assert _one_clean_line(code, err) and "python-multipart" in err and ".[serve]" in err


def test_a_good_toml_brief_validates(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["validate", "briefs", str(BRIEF)], capsys)
    assert code == 0 and "is valid" in out, err
