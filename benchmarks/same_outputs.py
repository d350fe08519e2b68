"""Do two builds of the engine give the same outputs? Run the main jobs with each, then compare the files.

    python benchmarks/same_outputs.py run --ie OLD/.venv/bin/ie --out /tmp/outputs-old
    python benchmarks/same_outputs.py run --ie .venv/bin/ie --out /tmp/outputs-new
    python benchmarks/same_outputs.py compare /tmp/outputs-old /tmp/outputs-new

``run`` drives the ``ie`` executable it is given (so the old build can live in another checkout and venv): the
demo (simulate, train with its backtest, forecast and plan the example brief), a plan and a what-if of the example
brief, one creator's forecast, the backtest report of ``ie evaluate``, and ``ie score`` of the demo world.
``compare`` reads every table and JSON file both runs wrote and reports the ones that differ. Fields that measure
time (``seconds``, ``created_at``, ...) and paths are left out; everything else must be equal to the bit.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
BRIEF = ROOT / "configs" / "briefs" / "fitness_january.toml"
# fields that hold clock times, durations, run ids or machine readings: not part of the result (paths are compared
# with each run's own folder written as <run>)
VOLATILE = {"seconds", "created_at", "written_at", "run_id", "model_uri", "registered_uri", "version",
            "tracking_uri", "peak_rss_mb", "engine_version"}  # fmt: skip


def _run(cmd: list[str], cwd: Path, log: Path) -> float:
    t0 = time.perf_counter()
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        done = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - t0


def run(ie: str, out: Path, creators: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    log = out / "log.txt"
    log.write_text("", encoding="utf-8")
    world, model = out / "demo", out / "models" / "demo"
    common = ["--data", str(world), "--model", str(model)]
    steps = {
        "demo": [ie, "demo", "--out", str(world), "--model-out", str(model), "--creators", str(creators),
                 "--training-root", str(out / "training")],
        "plan": [ie, "plan", "--brief", str(BRIEF), "--out", str(out / "plan"), *common],
        "whatif": [ie, "whatif", "--brief", str(BRIEF), "--budgets", "10000:60000:6", "--out", str(out / "whatif"),
                   *common],
        "evaluate": [ie, "evaluate", "--model", str(model), "--data", str(world), "--out", str(out / "evaluation"),
                     "--training-root", str(out / "training")],
        "score": [ie, "score", "--candidates", str(world), "--brief", str(BRIEF), "--model", str(model), "--out",
                  str(out / "score"), "--chunk-creators", "7000"],
    }  # fmt: skip
    timings = {name: _run(cmd, out, log) for name, cmd in steps.items()}
    first = pl.read_csv(out / "plan" / "roster.csv")["creator_id"][0]
    with (out / "forecast.json").open("w", encoding="utf-8") as fh:
        subprocess.run([ie, "forecast", "--creator", first, "--brief", str(BRIEF), "--json", *common], cwd=out,
                       stdout=fh, check=True)  # fmt: skip
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(timings, indent=2))


def _clean(obj: Any, root: str) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v, root) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_clean(v, root) for v in obj]
    if isinstance(obj, str):
        return obj.replace(root, "<run>")
    return obj


_KPIS = ("reach", "impressions", "engagements", "clicks", "conversions", "revenue")


def _canonical(rel: str, obj: Any) -> Any:
    """One form for JSON documents whose layout changed while their numbers must not (checked: values only).

    - plan totals: the KPI totals moved under "kpis", the solver's own counts under "solver.details", the goal got a
      label and the roster's cost figures were added (the one cost figure of before, "cpa", is compared with them);
    - ``ie forecast --json``: the API's form (reasons as a list beside goal_kpi, instead of keyed by the KPI).
    """
    if isinstance(obj, float) and math.isnan(obj):
        return None  # NaN in the old JSON is null in the new (valid JSON)
    if isinstance(obj, dict):
        obj = {k: _canonical(rel, v) for k, v in obj.items()}
    if rel.endswith("totals.json") and isinstance(obj, dict) and "totals" in obj:
        t = dict(obj["totals"])
        kpis = t.pop("kpis", None) or {k: t.pop(k) for k in _KPIS if k in t}
        figures = t.pop("cost_figures", None)
        cpa = t.pop("cpa", None)
        if figures is not None and cpa is None and figures.get("cpa") is not None:
            cpa = {"expected": figures["cpa"]}
        solver = dict(t.pop("solver"))
        solver.update(solver.pop("details", {}))
        t["goal"] = {k: v for k, v in t["goal"].items() if k != "label"}
        obj = {**obj, "totals": {**t, "kpis": kpis, "cpa": cpa, "solver": solver}}
    if rel.endswith("world.json") and isinstance(obj, dict) and "simulator" in obj:
        cal = dict(obj["simulator"]["calibration"])
        for key in ("er", "price"):  # per-platform ranges moved from er_<platform> keys to [calibration.<key>]
            cal.setdefault(key, {})
            for old in [k for k in cal if k.startswith(f"{key}_")]:
                cal[key][old.removeprefix(f"{key}_")] = cal.pop(old)
        obj = {**obj, "simulator": {**obj["simulator"], "calibration": cal}}
    if rel == "forecast.json" and isinstance(obj, dict) and isinstance(obj.get("reasons"), dict):
        ((kpi, reasons),) = obj["reasons"].items()
        obj = {"creator": obj["creator"], "goal_kpi": kpi, "reasons": reasons, "notes": obj["notes"]}
    if rel == "forecast.json" and isinstance(obj, dict) and "goal_base" in obj:
        obj = {k: v for k, v in obj.items() if k != "goal_base"}
    return obj


def _files(root: Path) -> dict[str, Path]:
    # the scoring run's state file holds a fingerprint of file paths and times: not a result
    skip = ("training/", "log.txt", "timings.json", "_state.json", ".png", ".html")
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and p.suffix in (".csv", ".parquet", ".json", ".txt") and not any(s in rel for s in skip):
            out[rel] = p
    return out


def _table(path: Path) -> pl.DataFrame:
    frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema_length=None)
    return frame.drop([c for c in frame.columns if c in VOLATILE])


def _same_table(a: Path, b: Path, rel: str) -> str | None:
    if rel.startswith("score/") and "part-" in rel:
        return None  # compared as one table below (the part a row lands in does not matter)
    x, y = _table(a), _table(b)
    if x.columns != y.columns:
        return f"columns differ: {sorted(set(x.columns) ^ set(y.columns)) or 'order'}"
    if x.height != y.height:
        return f"{x.height} rows against {y.height}"
    if not x.equals(y, null_equal=True):
        bad = [c for c in x.columns if not x[c].equals(y[c], check_names=False, null_equal=True)]
        return f"values differ in {bad[:8]}"
    return None


def compare(a: Path, b: Path) -> int:
    fa, fb = _files(a), _files(b)
    problems = [f"only in {a}: {k}" for k in sorted(set(fa) - set(fb))]
    problems += [f"only in {b}: {k}" for k in sorted(set(fb) - set(fa))]
    checked = 0
    for rel in sorted(set(fa) & set(fb)):
        if rel.endswith(".json"):
            x, y = (_canonical(rel, _clean(json.loads(f[rel].read_text(encoding="utf-8")), str(r)))
                    for f, r in ((fa, a), (fb, b)))  # fmt: skip
            why = None if x == y else "JSON differs"
        elif rel.endswith(".txt"):  # LightGBM model text
            why = None if fa[rel].read_bytes() == fb[rel].read_bytes() else "model text differs"
        else:
            why = _same_table(fa[rel], fb[rel], rel)
        checked += 1
        if why:
            problems.append(f"{rel}: {why}")
    for sub in ("scores", "rejects"):
        pa, pb = a / "score" / sub, b / "score" / sub
        if pa.is_dir() and pb.is_dir():
            x = pl.read_parquet(pa).sort(pl.all())
            y = pl.read_parquet(pb).sort(pl.all())
            checked += 1
            if not x.equals(y, null_equal=True):
                problems.append(f"score/{sub}: rows differ ({x.height} against {y.height})")
    print(f"compared {checked} outputs of {a} and {b}")
    for p in problems:
        print("  DIFFERS", p)
    if not problems:
        print("  all identical (time fields and paths left out)")
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--ie", default=str(ROOT / ".venv" / "bin" / "ie"))
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--creators", type=int, default=20_000)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.cmd == "run":
        run(str(Path(args.ie).resolve()), args.out.resolve(), args.creators)
    else:
        sys.exit(compare(args.a, args.b))


if __name__ == "__main__":
    main()
