from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from influencer_engine.cli import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["demo", "--out", str(tmp_path / "w"), "--creators", "1500", "--seed", "3", "--model-out",
                           str(tmp_path / "m"), "--no-track"], capsys)  # fmt: skip
    assert code == 0, err
    assert "1/6 simulated 1,500 creators" in out and "0 rejected" in out and "campaigns:" in out
    assert "4/6 trained 6 KPI models" in out and "5/6 forecast 1,500 creators" in out
    assert "6/6 planned brief fitness-jan" in out and "certified gap" in out
    assert pl.read_csv(tmp_path / "w" / "plan" / "roster.csv").height >= 5
    assert (tmp_path / "m" / "manifest.json").is_file() and (tmp_path / "w" / "forecasts" / "fitness-jan.csv").is_file()
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


def test_train_writes_bundle_report_and_mlflow(trained: dict[str, Path]) -> None:
    bundle = trained["bundle"]
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["kpis"]) == {"reach", "impressions", "engagements", "clicks", "conversions", "revenue"}
    assert len(manifest["training_data_fingerprint"]) == 64
    # simulated data carry their expected values: the backtest measured the forecasts' error about them
    errors = {k: v["state"]["expected_error"] for k, v in manifest["kpis"].items()}
    assert all(e["rows"] >= 200 and 0.0 < e["share"] <= 1.0 and 0.0 <= e["common"] <= 1.0 for e in errors.values())
    # and what creators share of it on the scale of sums, where the later campaigns held enough pairs of each kind
    measured = [e[kind] for e in errors.values() for kind in ("segment", "context") if e[kind] is not None]
    assert measured and all(v >= 0.0 for v in measured)
    # the market's creators no model trained on carried each mean correction over to the final model
    from influencer_engine.modeling.balance import TRANSFER_LIMIT

    carried = [v["state"]["balance"]["transfer"] for v in manifest["kpis"].values()]
    assert all(abs(t) <= TRANSFER_LIMIT for t in carried) and any(t != 0.0 for t in carried)
    # by_history = "auto": every KPI's bands say what the pooled ones held per history bucket, and the ones that got
    # bands per bucket are those whose pooled bands missed a bucket by more than the tolerance
    from influencer_engine.cli.models import history_bands_summary
    from influencer_engine.training.bundle import load_bundle

    for v in manifest["kpis"].values():
        bands = v["state"]["bands"]
        held = [c for c in bands["history_coverage"] if c is not None]
        assert len(bands["history_coverage"]) == 4 and held
        assert bool(bands["history"]) == any(abs(c - 0.8) > 0.05 for c in held)
    assert history_bands_summary(load_bundle(bundle)).count("pooled held") == 6
    from influencer_engine.cli.models import expected_error_summary

    assert "sd " in expected_error_summary(load_bundle(bundle))
    assert (bundle / "report" / "evaluation.md").is_file() and (
        bundle / "report" / "calibration_backtest.png"
    ).is_file()
    assert (trained["training"] / "mlflow.db").is_file()
    import mlflow

    from influencer_engine.training.tracking import load_model

    b = load_model("models:/influencer-engine-kpi@champion", training_root=trained["training"])
    assert b.fingerprint == manifest["training_data_fingerprint"]
    runs = mlflow.search_runs(experiment_names=["kpi-models"])
    assert len(runs) == 1 and "metrics.backtest.conversions.model.mae_log1p" in runs.columns


def test_forecast_prints_bands_costs_and_reasons(trained: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    creator = pl.read_parquet(trained["world"] / "creators.parquet")["creator_id"][0]
    brief = Path(__file__).resolve().parents[1] / "configs" / "briefs" / "fitness_january.toml"
    code, out, err = _run(["forecast", "--creator", creator, "--brief", str(brief), "--data", str(trained["world"]),
                           "--model", str(trained["bundle"])], capsys)  # fmt: skip
    assert code == 0, err
    assert "conversions" in out and "P10" in out and "CPA" in out and "why (conversions" in out
    code, out, err = _run(["forecast", "--creator", "nobody", "--brief", str(brief), "--data",
                           str(trained["world"]), "--model", str(trained["bundle"])], capsys)  # fmt: skip
    assert code == 2 and "nobody" in err and "Traceback" not in err


def test_evaluate_writes_reports(trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["evaluate", "--model", str(trained["bundle"]), "--data", str(trained["world"]),
                           "--out", str(tmp_path / "e")], capsys)  # fmt: skip
    assert code == 0, err
    body = json.loads((tmp_path / "e" / "evaluation.json").read_text(encoding="utf-8"))
    section = body["sections"]["world w"]
    assert set(section["metrics"]["conversions"]) == {"model", "media_kit", "trailing_median", "tier_platform"}
    assert "| conversions | model |" in (tmp_path / "e" / "evaluation.md").read_text(encoding="utf-8")


def test_tampered_bundle_is_refused(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(trained["bundle"], copy)
    with (copy / "kpi_clicks.txt").open("a", encoding="utf-8") as fh:
        fh.write("\n")
    code, _, err = _run(["evaluate", "--model", str(copy), "--data", str(trained["world"])], capsys)
    assert code == 2 and "checksum" in err and "Traceback" not in err


def test_tune_resumes_its_study(trained: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    args = ["tune", "--kpi", "conversions", "--trials", "3", "--data", str(trained["world"]), "--config",
            str(trained["config"]), "--training-root", str(trained["training"]), "--no-track"]  # fmt: skip
    code, out, err = _run(args, capsys)
    assert code == 0, err
    assert "3 trials in the study" in out
    code, out, err = _run(args, capsys)
    assert code == 0, err
    assert "6 trials in the study" in out
    tuned = json.loads((trained["training"] / "tuned" / "conversions.json").read_text(encoding="utf-8"))
    assert tuned["trials"] == 6 and tuned["study"] == "kpi-conversions-relative"
    # the study tried the configured settings first (the same fit, so the same score), and the tuned file never
    # holds settings that scored worse than them
    import optuna

    study = optuna.load_study(study_name=tuned["study"], storage=tuned["storage"])
    assert study.trials[0].value == pytest.approx(tuned["default_value"], rel=1e-9)
    assert tuned["value"] <= tuned["default_value"]
    if tuned["kept_configured"]:
        assert tuned["params"] == {} and "no trial beat the configured settings" in out
    else:
        assert "learning_rate" in tuned["params"] and tuned["value"] == pytest.approx(study.best_value)


BRIEF = Path(__file__).resolve().parents[1] / "configs" / "briefs" / "fitness_january.toml"


def test_plan_writes_roster_totals_and_certified_gap(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan"
    code, text, err = _run(["plan", "--brief", str(BRIEF), "--data", str(trained["world"]), "--model",
                            str(trained["bundle"]), "--out", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    assert "certified gap" in text and "unique reach" in text
    roster = pl.read_parquet(out / "roster.parquet")
    assert pl.read_csv(out / "roster.csv").height == roster.height
    assert 5 <= roster.height <= 40  # roster_min, roster_max of the brief
    for kpi in ("reach", "impressions", "engagements", "clicks", "conversions", "revenue"):
        assert {kpi, f"{kpi}_p10", f"{kpi}_p50", f"{kpi}_p90"} <= set(roster.columns)
    assert {"cpa", "cpm", "roas", "emv", "audience_fit", "reasons"} <= set(roster.columns)
    assert roster["reasons"].str.len_chars().min() > 0  # type: ignore[operator]
    # roster.csv is for people: identity first, units in the names, counts whole, money in cents, shares in percent
    csv = pl.read_csv(out / "roster.csv", infer_schema=False)
    assert csv.columns[:4] == ["creator_id", "handle", "profile_url", "platform"]
    assert {"price_usd", "reach_people", "revenue_usd", "cpa_usd", "cpa_usd_if_p90", "roas", "emv_usd",
            "audience_fit_pct", "real_followers_pct", "reasons"} <= set(csv.columns)  # fmt: skip
    assert not {"cpa_good", "cpa_bad", "goal_value", "price", "audience_fit"} & set(csv.columns)
    assert csv["profile_url"].str.starts_with("https://").all()
    numbers = csv.drop("creator_id", "handle", "profile_url", "platform", "tier", "format", "price_source",
                       "audience_source", "credibility_source", "reasons")  # fmt: skip
    decimals = [len(v.split(".")[1]) for c in numbers.columns for v in numbers[c].drop_nulls() if "." in v]
    assert max(decimals) <= 2
    assert "." not in "".join(csv["reach_people"].drop_nulls())
    # the CLI names the creators by handle and says the goal's figure once
    assert f"@{csv['handle'][0]}" in text and text.count("unique reach") == 1
    doc = json.loads((out / "totals.json").read_text())
    t = doc["totals"]
    assert t["spend"] <= 50_000 and t["solver"]["certified_gap"] <= 0.005
    c = t["candidates"]
    assert c["rows_in"] == c["eligible"] + c["filtered"] + c["rejected"] == 2500
    conv = t["kpis"]["conversions"]
    assert conv["p10"] <= conv["expected"] <= conv["p90"] and t["goal"]["expected"] == conv["expected"]
    # a plan that leaves a tenth of its budget or more says why (the tiny world runs out of eligible creators)
    left = t["budget_left"]
    assert (left is None) == (t["spend"] >= 0.95 * 50_000)
    if left is not None:
        assert left["reason"] in text and left["unspent"] == pytest.approx(50_000 - t["spend"])
    assert t["unique_reach"]["expected"] <= t["kpis"]["reach"]["expected"] + 1e-6
    assert t["cost_figures"]["cpa"] == pytest.approx(t["spend"] / conv["expected"])
    assert roster.filter(pl.col("tier") == "macro").height <= 3 and roster["price"].max() <= 10_000  # type: ignore[operator]
    assert (roster["audience_fit"] >= 0.05).all()


def test_plan_infeasible_brief_names_the_constraint(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = BRIEF.read_text().replace("budget = 50000", "budget = 100").replace("roster_min = 5", "roster_min = 30")
    bad = tmp_path / "tight.toml"
    bad.write_text(text)
    code, _, err = _run(["plan", "--brief", str(bad), "--data", str(trained["world"]), "--model",
                         str(trained["bundle"]), "--out", str(tmp_path / "p")], capsys)  # fmt: skip
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert "budget $100 is short by at least $" in err and "Fix:" in err


def test_whatif_frontier_table_and_charts(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "wi"
    code, _, err = _run(["whatif", "--brief", str(BRIEF), "--budgets", "2000:40000:4", "--data",
                            str(trained["world"]), "--model", str(trained["bundle"]), "--out", str(out),
                            "--scenario", "tiktok=platforms:tiktok"], capsys)  # fmt: skip
    assert code == 0, err
    t = pl.read_parquet(out / "frontier.parquet")
    assert set(t["scenario"]) == {"as briefed", "nano and micro only", "instagram only", "tiktok"}
    for name in ("as briefed", "nano and micro only"):
        s = t.filter(pl.col("scenario") == name).sort("budget")
        assert s.height == 4 and (s["expected"].diff().drop_nulls() >= -1e-9).all()
        assert (s["p10"] <= s["expected"]).all() and (s["expected"] <= s["p90"]).all()
        assert (s["spend"] <= s["budget"] + 1e-6).all()
    assert t.filter(pl.col("scenario") == "nano and micro only")["n_macro"].sum() == 0
    assert (out / "frontier.png").stat().st_size > 10_000
    assert "plotly" in (out / "frontier.html").read_text()[:500_000].lower()
    code, _, err = _run(["whatif", "--brief", str(BRIEF), "--budgets", "a:b"], capsys)
    assert code == 2 and "--budgets" in err
    # past what 40 creators can spend the goal stops rising: the frontier says where and which constraint
    w2 = tmp_path / "w2"
    code, out_text, err = _run(["whatif", "--brief", str(BRIEF), "--budgets", "20000,2000000", "--data",
                                str(trained["world"]), "--model", str(trained["bundle"]), "--out", str(w2)],
                               capsys)  # fmt: skip
    assert code == 0, err
    t = pl.read_parquet(w2 / "frontier.parquet").filter(pl.col("scenario") == "as briefed")
    top = t.filter(pl.col("budget") == 2_000_000).row(0, named=True)
    assert top["spend_share"] < 0.95 and top["limited_by"]
    assert "as briefed: the goal stops rising at $" in out_text


def test_evaluate_planner_scores_against_the_oracle(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text, err = _run(["evaluate", "--planner", "--briefs-per-goal", "1", "--data", str(trained["world"]),
                            "--model", str(trained["bundle"]), "--out", str(tmp_path / "ev")], capsys)  # fmt: skip
    assert code == 0, err
    body = json.loads((tmp_path / "ev" / "planner_evaluation.json").read_text())
    summary = body["world w"]["summary"]
    assert set(summary) == {"reach", "engagement", "clicks", "conversions", "revenue", "roas", "emv"}
    for goal, e in summary.items():
        if e["briefs"]:
            assert e["planner"]["mean_share"] <= 1.0 + 1e-6, goal  # the oracle is the best roster on the truth
            # the references planned on the truth with a known error are scored against the same oracle
            assert e["truth_noise10"]["mean_share"] <= 1.0 + 1e-6 and e["truth_noise30"]["mean_share"] > 0, goal
    assert "top_followers" in text and "truth, log sd 0.1" in text
    # the bundle measured its error about expected values (simulated data): rosters get a band of their expected
    # total beside the plan's band of deliveries, and the level of the candidates they were picked from
    assert "expected band holds" in text
    for goal, e in summary.items():
        if e["briefs"]:
            picked = e["picked"]
            assert 0.0 <= picked["expected_band_holds_truth"] <= 1.0, goal
            assert picked["base_forecast_over_true"]["median"] > 0 and picked["roster_kpi_forecast_over_true"]["n"] >= 1
    # the same briefs planned on each creator's P10: both rosters' true value and delivered downside
    if summary["conversions"]["briefs"]:
        r = summary["conversions"]["risk_averse"]
        assert r["briefs"] == 1 and r["true_value_p10_over_expected"] > 0 and "risk p10 vs expected" in text


def test_score_streams_chunks_and_accounts_for_every_row(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    world = tmp_path / "cands"
    shutil.copytree(trained["world"], world)
    creators = pl.read_parquet(world / "creators.parquet")
    bad = creators.head(3).with_columns(pl.lit(-5, dtype=creators.schema["followers"]).alias("followers"))  # rejected
    pl.concat([creators.slice(3), bad]).write_parquet(world / "creators.parquet")
    out = tmp_path / "scored"
    junk = out / "_stage.tmp" / "posts" / "_chunk=0"  # what a pass killed while staging leaves: never read
    junk.mkdir(parents=True)
    creators.head(50).write_parquet(junk / "00000000.parquet")
    code, _, err = _run(["score", "--candidates", str(world), "--brief", str(BRIEF), "--model",
                         str(trained["bundle"]), "--out", str(out), "--chunk-creators", "600"], capsys)  # fmt: skip
    assert code == 0, err
    assert not (out / "_stage").exists() and not (out / "_stage.tmp").exists()  # the stage goes when all is done
    assert "chunk 5/5" in err and "rows/s" in err and "ETA" in err
    scores = pl.read_parquet(out / "scores")
    rejects = pl.read_parquet(out / "rejects")
    manifest = json.loads((out / "manifest.json").read_text())
    m, mp = manifest["creators"], manifest["posts"]
    creator_rejects = rejects.filter(pl.col("table") == "creators")
    assert m["rows_in"] == 2500 == m["rows_out"] + m["rows_rejected"] == scores.height + creator_rejects.height
    assert creator_rejects.height == 3 and scores["creator_id"].n_unique() == scores.height
    # posts are accounted for too: the rejected creators' posts are rejected with a reason, none dropped silently
    n_posts = pl.read_parquet(world / "posts.parquet").height
    post_rejects = rejects.filter(pl.col("table") == "posts")
    assert (
        mp["rows_in"] == n_posts == mp["rows_out"] + mp["rows_rejected"] and mp["rows_rejected"] == post_rejects.height
    )
    assert post_rejects.height > 0 and set(post_rejects["reason"]) == {"unknown:creator_id"}
    assert {"conversions_p10", "conversions_p90", "cpa", "emv", "audience_fit", "flags"} <= set(scores.columns)
    # the same folder with other inputs is refused, not mixed
    code, _, err = _run(["score", "--candidates", str(world), "--brief", str(BRIEF), "--model",
                         str(trained["bundle"]), "--out", str(out), "--chunk-creators", "700"], capsys)  # fmt: skip
    assert code == 2 and "--restart" in err


def test_score_killed_with_sigkill_resumes_without_duplicates(trained: dict[str, Path], tmp_path: Path) -> None:
    import os
    import signal
    import time

    out = tmp_path / "scored"
    args = [sys.executable, "-m", "influencer_engine.cli", "score", "--candidates", str(trained["world"]), "--brief",
            str(BRIEF), "--model", str(trained["bundle"]), "--out", str(out), "--chunk-creators", "100"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "_state.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until a few chunks are recorded, then kill mid-run
        if state.is_file() and len(json.loads(state.read_text() or "{}").get("done", {})) >= 3:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(json.loads(state.read_text())["done"])
    assert 3 <= done_before < 25, "the run finished before it could be killed"
    res = subprocess.run(args, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert f"{done_before} chunk(s) resumed" in res.stdout or "resumed" in res.stdout
    scores = pl.read_parquet(out / "scores")
    expected = pl.read_parquet(trained["world"] / "creators.parquet")["creator_id"]
    assert scores.height == scores["creator_id"].n_unique() == expected.len()  # no duplicate, none missing
    assert set(scores["creator_id"]) == set(expected)
    assert not list(out.rglob(".*.tmp"))


def test_score_killed_in_its_first_pass_reuses_the_chunks_it_kept(trained: dict[str, Path], tmp_path: Path) -> None:
    """A run killed while its first pass reads the chunks resumes from the chunks that pass kept whole (a half-written
    one is redone) and gives the rows of a run never killed."""
    import os
    import signal
    import time

    from influencer_engine.scoring import FIRST_PASS, STAGE

    out = tmp_path / "scored"
    args = [sys.executable, "-m", "influencer_engine.cli", "score", "--candidates", str(trained["world"]), "--brief",
            str(BRIEF), "--model", str(trained["bundle"]), "--chunk-creators", "100"]  # fmt: skip
    proc = subprocess.Popen([*args, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kept = out / STAGE / FIRST_PASS
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once a few chunks are kept, before any is scored
        if kept.is_dir() and len([d for d in kept.iterdir() if not d.name.startswith(".")]) >= 3:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = json.loads((out / "_state.json").read_text())["done"]
    left = [d.name for d in kept.iterdir() if not d.name.startswith(".")]
    assert not done and 3 <= len(left) < 25, "the first pass finished before it could be killed"
    (kept / ".7.tmp").mkdir(exist_ok=True)  # as a kill mid-write leaves it
    res = subprocess.run([*args, "--out", str(out)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    fresh = subprocess.run([*args, "--out", str(tmp_path / "fresh")], capture_output=True, text=True, check=False)
    assert fresh.returncode == 0, fresh.stderr
    got, want = (pl.read_parquet(o / "scores").sort("creator_id") for o in (out, tmp_path / "fresh"))
    assert got.height == got["creator_id"].n_unique() == 2500 and got.equals(want)
    assert not (out / STAGE).exists()


def test_scores_do_not_depend_on_chunking(trained: dict[str, Path], tmp_path: Path) -> None:
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.forecast import forecast_brief
    from influencer_engine.scoring import STAGE, read_scores, score_candidates
    from influencer_engine.training.bundle import load_bundle

    bundle, brief, tiers = load_bundle(trained["bundle"]), load_brief(BRIEF), load_tier_config()
    assert bundle.peers is not None and bundle.peers.height >= 10  # the training table's peer reference
    shuffled = tmp_path / "shuffled"  # the same rows in another order: chunks must be staged
    shuffled.mkdir()
    for table in ("creators", "posts"):
        frame = pl.read_parquet(trained["world"] / f"{table}.parquet")
        frame.sample(fraction=1.0, shuffle=True, seed=1).write_parquet(shuffled / f"{table}.parquet")
    runs, staged = [], {}
    for name, world, chunk in (("ranges", trained["world"], 250), ("one", trained["world"], 2500),
                               ("staged", shuffled, 250)):  # fmt: skip
        out = tmp_path / name
        seen = functools.partial(_note_stage, staged, name, out / STAGE / "creators")
        score_candidates(bundle, [world], brief, tiers, out, chunk_creators=chunk, after_chunk=seen)
        runs.append(read_scores(out).sort("creator_id"))
    # one chunk is read from the sources as they are, chunks of a sorted export as row ranges of its files: nothing
    # is split and written but for the shuffled copy
    assert staged == {"ranges": False, "one": False, "staged": True}
    one_shot = forecast_brief(bundle, trained["world"], brief, tiers).table.sort("creator_id")
    for run in runs[1:]:
        assert runs[0].drop("flags").equals(run.drop("flags")) and runs[0]["flags"].equals(run["flags"])
    assert runs[0].drop("flags").equals(one_shot)


def _note_stage(staged: dict[str, bool], name: str, stage: Path, _k: int) -> None:
    staged.setdefault(name, stage.is_dir())


def test_dask_engine_gives_the_local_engines_rows(trained: dict[str, Path], tmp_path: Path) -> None:
    import functools

    distributed = pytest.importorskip("distributed")
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.scoring import read_scores, score_candidates
    from influencer_engine.training.bundle import load_bundle

    bundle, brief, tiers = load_bundle(trained["bundle"]), load_brief(BRIEF), load_tier_config()
    local = score_candidates(bundle, [trained["world"]], brief, tiers, tmp_path / "local", chunk_creators=700)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        loader = functools.partial(load_bundle, trained["bundle"])  # each worker loads the same model once
        remote = score_candidates(bundle, [trained["world"]], brief, tiers, tmp_path / "dask", chunk_creators=700,
                                  client=client, worker_model=loader)  # fmt: skip
    assert (remote.scored, remote.rejected, remote.chunks) == (local.scored, local.rejected, local.chunks)
    a, b = read_scores(tmp_path / "local").sort("creator_id"), read_scores(tmp_path / "dask").sort("creator_id")
    assert a.height == 2500 and a.equals(b)


def test_train_on_dask_gives_a_bundle_as_good_as_local(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ie train --engine dask`: every KPI trained by lightgbm.dask on a local cluster of 2 worker processes."""
    pytest.importorskip("distributed")
    from influencer_engine.training.bundle import load_bundle

    out = tmp_path / "dask_bundle"
    code, _, err = _run(["train", "--data", str(trained["world"]), "--out", str(out), "--config",
                         str(trained["config"]), "--no-track", "--engine", "dask"], capsys)  # fmt: skip
    assert code == 0, err
    dask_b, local_b = load_bundle(out), load_bundle(trained["bundle"])
    assert dask_b.manifest.training.engine == "dask"
    assert "machines" not in (out / "kpi_reach.txt").read_text()  # no run-specific network settings saved
    for kpi, m in local_b.manifest.metrics["metrics"].items():
        got = dask_b.manifest.metrics["metrics"][kpi]["model"]
        # data-parallel trees differ from single-process ones, but forecast as well (same backtest)
        assert got["mae_log1p"] <= m["model"]["mae_log1p"] * 1.1 + 0.02, kpi
        assert got["spearman"] >= m["model"]["spearman"] - 0.03, kpi


def test_candidates_take_several_paths_after_one_flag() -> None:
    from influencer_engine.cli import _expand_multi

    assert _expand_multi(["score", "--candidates", "a", "b", "--brief", "x.toml", "--candidates", "c"]) == [
        "score", "--candidates", "a", "--candidates", "b", "--brief", "x.toml", "--candidates", "c"]  # fmt: skip


def test_compiled_trees_give_the_same_rows(trained: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("lleaves")
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.scoring import compiled_reports, read_scores, score_candidates
    from influencer_engine.training.bundle import load_bundle

    brief, tiers = load_brief(BRIEF), load_tier_config()
    score_candidates(load_bundle(trained["bundle"]), [trained["world"]], brief, tiers, tmp_path / "plain")
    fast = load_bundle(trained["bundle"])
    score_candidates(fast, [trained["world"]], brief, tiers, tmp_path / "fast", compiled_dir=tmp_path / "cache")
    reports = compiled_reports(fast)
    assert all(r.used and r.backend == "lleaves" for r in reports), [r.reason for r in reports]
    # the six KPI models, then the completion models the bundle has (the rate card, credibility)
    assert [r.kpi for r in reports[:6]] == list(fast.kpis)
    assert [r.kpi for r in reports[6:]] == [f"completion {e.name}" for e in (fast.completion.price,
                                            fast.completion.credibility) if e is not None]  # fmt: skip
    assert len(reports) > 6
    assert all(r.max_abs_diff is not None and r.max_abs_diff <= 1e-9 for r in reports)
    # one cached object per model, nothing half-written
    assert len(list((tmp_path / "cache").glob("*.o"))) == len(reports)
    assert not list((tmp_path / "cache").glob(".build-*"))
    a, b = read_scores(tmp_path / "plain").sort("creator_id"), read_scores(tmp_path / "fast").sort("creator_id")
    _same_scores(a, b)  # compiled trees add the same leaves in another order: equal to the last bits of a double
    again = load_bundle(trained["bundle"])  # a second load compiles nothing: the cache has every model
    score_candidates(again, [trained["world"]], brief, tiers, tmp_path / "again", compiled_dir=tmp_path / "cache")
    assert all(r.used for r in compiled_reports(again))
    _same_scores(read_scores(tmp_path / "again").sort("creator_id"), a)


def test_ie_compile_builds_inlined_trees_that_scoring_then_uses(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ie compile`: every model of the bundle built inlined ahead of time, checked equal to LightGBM; scoring then
    runs them (and says so), with the rows of LightGBM's predict; a second `ie compile` builds nothing."""
    pytest.importorskip("lleaves")
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.scoring import compiled_reports, read_scores, score_candidates
    from influencer_engine.training.bundle import load_bundle

    cache = tmp_path / "cache"
    monkeypatch.setenv("IE_COMPILED_CACHE", str(cache))
    predictor = load_bundle(trained["bundle"])
    labels = [label for label, _, _ in predictor.boosters()]
    assert labels[:6] == list(predictor.kpis) and len(labels) == len(set(labels)) > 6
    code, _, err = _run(["compile", "--model", str(trained["bundle"])], capsys)
    assert code == 0, err
    n = len(labels)
    assert f"built {n} inlined model(s), 0 already cached" in err
    assert f"for {n} of {n} models, {n} of them inlined" in err
    built = [f.name for f in cache.glob("*.o")]
    assert len(built) == n and all(name.endswith(".inline.o") for name in built)  # no quick build was made
    assert not list(cache.glob(".build-*"))
    code, _, err = _run(["compile", "--model", str(trained["bundle"])], capsys)
    assert code == 0 and f"built 0 inlined model(s), {n} already cached" in err, err

    brief, tiers = load_brief(BRIEF), load_tier_config()
    score_candidates(load_bundle(trained["bundle"]), [trained["world"]], brief, tiers, tmp_path / "plain")
    fast = load_bundle(trained["bundle"])
    score_candidates(fast, [trained["world"]], brief, tiers, tmp_path / "fast", compiled_dir=cache)
    reports = compiled_reports(fast)
    assert [r.kpi for r in reports] == labels
    assert all(r.used and r.inlined and r.reason == "equal (lleaves, inlined)" for r in reports)
    assert all(r.max_abs_diff is not None and r.max_abs_diff <= 1e-9 for r in reports)
    _same_scores(read_scores(tmp_path / "plain").sort("creator_id"), read_scores(tmp_path / "fast").sort("creator_id"))


def _same_scores(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.columns == b.columns and a.height == b.height
    for c in a.columns:
        if a[c].dtype.is_float():
            np.testing.assert_allclose(b[c].to_numpy(), a[c].to_numpy(), rtol=1e-9, atol=1e-9, err_msg=c)
        else:
            assert a[c].equals(b[c]), c


def test_compiled_trees_fall_back_to_lightgbm_and_say_why(trained: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("lleaves")
    from influencer_engine.config import load_tier_config
    from influencer_engine.modeling.compiled import use_compiled
    from influencer_engine.training.bundle import load_bundle
    from influencer_engine.training.data import load_training_table

    predictor = load_bundle(trained["bundle"])
    sample = load_training_table(trained["world"], load_tier_config()).frame.select(predictor.features).head(500)
    missing = use_compiled(predictor.forecaster, sample, tmp_path / "c", hashes=predictor.kpi_hashes,
                           backends=("no-such-compiler",))  # fmt: skip
    assert all(not r.used and r.reason.startswith("compiler unavailable") for r in missing)
    assert all(getattr(m, "fast_", None) is None for m in predictor.forecaster.models_.values())
    strict = use_compiled(
        predictor.forecaster, sample, tmp_path / "c", hashes=predictor.kpi_hashes, tolerance=-1.0, backends=("lleaves",)
    )  # nothing can be that equal: every model is refused
    assert all(not r.used and "differs by" in r.reason for r in strict)
    assert all(getattr(m, "fast_", None) is None for m in predictor.forecaster.models_.values())


def test_memory_limit_sizes_chunks_by_the_measured_model() -> None:
    """--limit-memory: the chunks of the measured memory model (200k creators, 48 posts each: a 1,000 MB limit gave
    14 chunks and a 936 MB peak); a lower limit never gives larger chunks, the chunk size caps them, and a limit
    below the process itself still scores (in chunks of at least one creator)."""
    from influencer_engine.sources import chunk_count

    creators, posts = 200_000, 200_000 * 48
    assert chunk_count(creators, posts, 50_000, None) == 4
    assert chunk_count(creators, posts, 50_000, 1_000) == 14
    counts = [chunk_count(creators, posts, 50_000, mb) for mb in (300, 800, 1_000, 1_500, 2_000, 3_000, 10_000)]
    assert counts == sorted(counts, reverse=True) and counts[-1] == 4
    assert chunk_count(10, 0, 50_000, 1) >= 1


def test_row_ranges_only_where_the_layout_allows(tmp_path: Path) -> None:
    """Chunks become row ranges of the files only for sorted, one-file Parquet tables whose creator ids are unique
    over every source and whose posts sit in their creator's source; each range's posts are its creators' (and the
    unknown ones around them), every row in exactly one range."""
    from influencer_engine.sources import row_ranges

    def world(name: str, creators: list[str], posts: list[str]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        pl.DataFrame({"creator_id": creators, "followers": list(range(len(creators)))}).write_parquet(
            folder / "creators.parquet"
        )
        pl.DataFrame({"creator_id": posts, "likes": list(range(len(posts)))}).write_parquet(folder / "posts.parquet")
        return folder

    a = world("a", ["a1", "a2", "a3", "a4", "a5"], ["a0", "a1", "a1", "a2", "a4", "a4", "a4", "a5", "a9"])
    b = world("b", ["b1", "b2"], ["b1", "b2", "b2"])
    ranges = row_ranges([a, b], 2)
    assert ranges is not None and len(ranges) == 3 + 1
    spans = [(r["source"], *r["creators"], *r["posts"]) for r in ranges]
    # a: creators a1-a2 | a3 | a4-a5, their posts with the unknown a0 before and a9 after; b whole
    assert spans == [(0, 0, 2, 0, 4), (0, 2, 1, 4, 0), (0, 3, 2, 4, 5), (1, 0, 2, 0, 3)]
    assert row_ranges([world("unsorted", ["a2", "a1"], ["a1"])], 1) is None
    assert row_ranges([world("unsorted_posts", ["a1", "a2"], ["a2", "a1"])], 1) is None
    assert row_ranges([a, world("dup", ["a3"], ["a3"])], 1) is None  # an id in two sources: staged together
    assert row_ranges([a, world("cross", ["c1"], ["a2", "c1"])], 1) is None  # a post under another source's creator
    csv = tmp_path / "csv"
    csv.mkdir()
    pl.DataFrame({"creator_id": ["x"]}).write_csv(csv / "creators.csv")
    assert row_ranges([csv], 1) is None


def test_row_ranges_with_a_folder_without_posts(trained: dict[str, Path], tmp_path: Path) -> None:
    """Two sorted exports, one with no posts table: both are read as row ranges, every creator is accounted for, and
    the first export's rows are those it gets alone (creators without posts add no engagement rate to the peers)."""
    from influencer_engine.brief import load_brief
    from influencer_engine.config import load_tier_config
    from influencer_engine.scoring import STAGE, read_scores, score_candidates
    from influencer_engine.sources import plan_layout
    from influencer_engine.training.bundle import load_bundle

    bundle, brief, tiers = load_bundle(trained["bundle"]), load_brief(BRIEF), load_tier_config()
    bare = tmp_path / "bare"
    bare.mkdir()
    creators = pl.read_parquet(trained["world"] / "creators.parquet").head(300)
    creators.with_columns(pl.concat_str([pl.lit("z"), pl.col("creator_id")]).alias("creator_id")).write_parquet(
        bare / "creators.parquet"
    )
    staged: dict[str, bool] = {}
    seen = functools.partial(_note_stage, staged, "both", tmp_path / "both" / STAGE / "creators")
    both = score_candidates(bundle, [trained["world"], bare], brief, tiers, tmp_path / "both", chunk_creators=700,
                            after_chunk=seen)  # fmt: skip
    # a layout planned ahead (as `ie score` does while the model loads) is used only for the arguments it was made for
    other = plan_layout([trained["world"]], 500, None)
    assert other.fits([trained["world"]], 500, None) and not other.fits([trained["world"]], 700, None)
    alone = score_candidates(bundle, [trained["world"]], brief, tiers, tmp_path / "alone", chunk_creators=700,
                             layout=other)  # fmt: skip
    assert alone.chunks == plan_layout([trained["world"]], 700, None).chunks < other.chunks
    assert staged == {"both": False} and both.chunks == alone.chunks + 1
    assert both.rows_in == alone.rows_in + 300 == both.scored + both.rejected
    rows = read_scores(tmp_path / "both").sort("creator_id")
    first = rows.filter(~pl.col("creator_id").str.starts_with("z"))
    assert first.equals(read_scores(tmp_path / "alone").sort("creator_id"))
    assert rows.height - first.height == 300


def test_allocator_settings_only_where_they_help(monkeypatch: pytest.MonkeyPatch) -> None:
    """glibc's thresholds and jemalloc's single arena are for a scoring run only: not for a server, a memory-limited
    run or a user's own values (and where the C library is not glibc, nothing is set there)."""
    import platform

    from influencer_engine.cli import _allocator

    assert _allocator.settings(["ie", "score", "--candidates", "x"]) == _allocator.SETTINGS + ",narenas:1"
    assert _allocator.settings(["ie", "serve"]) == _allocator.SETTINGS  # request threads keep their arenas
    assert _allocator.settings(["ie", "score", "--limit-memory=800"]) is None
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert not _allocator.glibc_settings(["ie", "serve"])
    assert not _allocator.glibc_settings(["ie", "score", "--limit-memory", "800"])
    glibc = platform.libc_ver()[0] == "glibc"
    assert _allocator.glibc_settings(["ie", "score", "--candidates", "x"]) is glibc
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    assert not _allocator.glibc_settings(["ie", "score"])
