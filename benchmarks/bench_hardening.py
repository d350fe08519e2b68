"""The fuzz table: every family of bad input, through the CLI and the API, and how many cases were handled well.

    python benchmarks/bench_hardening.py

Runs tests/test_hardening.py (the generated corpus of tests/corpus.py: unreadable and mis-laid-out files, bad
rows, optional tables, formula injection, text quirks, bad briefs, tampered bundles) and counts, per family and
interface, the cases whose answer was what a person needs: a clean result that accounts for every row, or one
line (or one JSON error) naming the problem and the fix, with no internal error, no 500 and no temporary file left
behind. Writes benchmarks/results/hardening.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from corpus import BRIEF_CASES, BUNDLE_CASES, DATA_CASES  # noqa: E402

TESTS = {
    "test_bad_data_files_through_the_cli": ("CLI (ie validate + ie score)", {c.name: c.family for c in DATA_CASES}),
    "test_bad_data_files_through_the_api": ("API (POST /api/score)", {c.name: c.family for c in DATA_CASES}),
    "test_bad_briefs_through_the_cli": ("CLI (ie plan + ie validate briefs)",
                                        {c.name: f"brief: {c.family}" for c in BRIEF_CASES}),
    "test_bad_briefs_through_the_api": ("API (POST /api/plan)", {c.name: f"brief: {c.family}" for c in BRIEF_CASES}),
    "test_tampered_bundles_are_refused_in_one_line": ("CLI (ie plan --model)",
                                                      {c.name: "tampered bundle" for c in BUNDLE_CASES}),
}  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" /
                        "test_hardening.py"), f"--junitxml={report}"], cwd=ROOT, check=False,
                       capture_output=True)  # fmt: skip
        tree = ET.parse(report)
    table: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    others: list[tuple[str, bool]] = []
    for case in tree.iter("testcase"):
        name = case.get("name", "")
        ok = not any(child.tag in ("failure", "error") for child in case)
        func, _, param = name.partition("[")
        param = param.rstrip("]")
        if func in TESTS:
            interface, families = TESTS[func]
            key = (families.get(param, param), interface)
            table[key][0] += 1
            table[key][1] += ok
        else:
            others.append((name, ok))
    rows = sorted(table.items())
    print(f"{'family':34} {'interface':36} {'cases':>5} {'handled':>7} {'share':>6}")
    for (family, interface), (n, good) in rows:
        print(f"{family:34} {interface:36} {n:>5} {good:>7} {good / n:>6.0%}")
    for name, ok in others:
        print(f"{name:71} {'pass' if ok else 'FAIL':>20}")
    total = sum(n for n, _ in table.values())
    good = sum(g for _, g in table.values())
    print(f"all cases: {good}/{total} handled well; other checks: {sum(ok for _, ok in others)}/{len(others)} pass")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    body = {"rows": [{"family": f, "interface": i, "cases": n, "handled": g} for (f, i), (n, g) in rows],
            "other_checks": [{"test": n, "passed": ok} for n, ok in others]}  # fmt: skip
    (out / "hardening.json").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
