"""Workspace benchmark (issue 21), one command: python benchmarks/bench_workspace.py [--requests 500]

`ie serve` (a subprocess on loopback) over the demo world (runs/demo, 20,000 creators, models/demo) with a fresh
SQLite workspace. Measured in one run, with an httpx client in this process:
1. the first search for a brief (forecasts every candidate for it, joins them on the directory): its latency;
2. GET /api/creators with three filters (platforms, tiers, engagement rate at least) and a sort by the brief's goal
   forecast, N requests 16 at a time, the filters and the page varying between requests: p50, p95, max, errors;
3. the same searches without a brief (sorted by followers): the directory alone;
4. GET /api/creators/{id} with the brief (profile, post history, forecasts and reasons), 16 at a time;
5. PUT /api/shortlists/{id}/items/{creator}, 16 at a time (SQLite writes from many threads), and the count after.
Writes benchmarks/results/workspace.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench_serve import KEY, start_serve
from influencer_engine.brief import load_brief

ROOT = Path(__file__).resolve().parents[1]
BRIEF = ROOT / "configs" / "briefs" / "fitness_january.toml"
TIERS = [["micro", "mid"], ["nano", "micro"], ["mid", "macro"], ["micro"]]
PLATFORMS = [["instagram", "tiktok"], ["instagram"], ["tiktok", "youtube"]]


def brief_text() -> str:
    data: dict[str, Any] = load_brief(BRIEF).model_dump(mode="json")
    data["scenarios"] = []
    return json.dumps(data)


async def run(base: str, calls: list[tuple[str, str, dict[str, Any]]], concurrency: int) -> dict[str, Any]:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": KEY}, timeout=120) as http:

        async def one(method: str, path: str, kw: dict[str, Any]) -> None:
            async with sem:
                t0 = time.perf_counter()
                r = await http.request(method, path, **kw)
                latencies.append(time.perf_counter() - t0)
                if r.status_code >= 400:
                    errors.append(f"{r.status_code}: {r.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(one(*c) for c in calls))
        wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100)
    return {"requests": len(calls), "concurrency": concurrency, "errors": len(errors), "first_errors": errors[:3],
            "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "max_ms": max(latencies) * 1000,
            "requests_per_s": len(calls) / wall}  # fmt: skip


def show(name: str, r: dict[str, Any]) -> None:
    print(f"{name}: {r['requests']} requests, {r['concurrency']} at a time: p50 {r['p50_ms']:.0f} ms, "
          f"p95 {r['p95_ms']:.0f} ms, max {r['max_ms']:.0f} ms, {r['errors']} errors, "
          f"{r['requests_per_s']:.0f} req/s", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--data", type=Path, default=ROOT / "runs" / "demo")
    args = ap.parse_args()
    model = ROOT / "models" / "demo"
    if not (model / "manifest.json").is_file() or not (args.data / "creators.parquet").is_file():
        raise SystemExit("models/demo or runs/demo is missing: run `ie demo` first")
    tmp = tempfile.mkdtemp(prefix="ie-bench-ws-")
    proc, base, startup = start_serve(["--data", str(args.data), "--model", str(model), "--db",
                                       f"sqlite:///{tmp}/workspace.db"])  # fmt: skip
    data = args.data.relative_to(ROOT) if args.data.is_relative_to(ROOT) else args.data
    results: dict[str, Any] = {"data": str(data), "cpus": os.cpu_count(), "requests": args.requests,
                               "startup_s": startup}  # fmt: skip
    headers = {"X-API-Key": KEY}
    try:
        results["creators"] = httpx.get(base + "/health").json()["candidates"]
        brief = brief_text()
        goal = json.loads(brief)["goal"]
        t0 = time.perf_counter()
        r = httpx.get(base + "/api/creators", headers=headers, timeout=300,
                      params={"brief": brief, "sort": goal, "platform": ["instagram", "tiktok"]})  # fmt: skip
        r.raise_for_status()
        results["first_search_with_brief_s"] = time.perf_counter() - t0
        first = results["first_search_with_brief_s"]
        print(f"{results['creators']:,} creators; server up in {results['startup_s']:.1f} s; first search for the "
              f"brief (forecasts every candidate) {first:.2f} s", flush=True)  # fmt: skip

        def params(i: int, with_brief: bool) -> dict[str, Any]:
            p: dict[str, Any] = {"platform": PLATFORMS[i % 3], "tier": TIERS[i % 4], "er_min": 0.005 * (i % 5),
                                 "offset": 25 * (i % 3), "limit": 25}  # fmt: skip
            if with_brief:
                p.update(brief=brief, sort=[goal, "cpa", "reach"][i % 3], order=["desc", "asc", "desc"][i % 3])
            else:
                p.update(sort=["followers", "engagement_rate"][i % 2])
            return p

        n, c = args.requests, args.concurrency
        results["search_brief"] = asyncio.run(run(base, [("GET", "/api/creators", {"params": params(i, True)})
                                                         for i in range(n)], c))  # fmt: skip
        show("search, 3 filters + a sort by the brief's forecasts", results["search_brief"])
        results["search_directory"] = asyncio.run(run(base, [("GET", "/api/creators", {"params": params(i, False)})
                                                             for i in range(n)], c))  # fmt: skip
        show("search, 3 filters + a sort, no brief", results["search_directory"])
        top = httpx.get(base + "/api/creators", headers=headers, params={"limit": 200, "sort": "followers"})
        ids = [x["creator_id"] for x in top.json()["rows"]]
        profiles = [("GET", f"/api/creators/{ids[i % len(ids)]}", {"params": {"brief": brief}}) for i in range(n // 2)]
        results["profile_brief"] = asyncio.run(run(base, profiles, c))
        show("profile with the brief's forecasts and reasons", results["profile_brief"])
        sid = httpx.post(base + "/api/shortlists", headers=headers, json={"name": "bench"}).json()["id"]
        puts = [("PUT", f"/api/shortlists/{sid}/items/{ids[i % len(ids)]}",
                 {"json": {"state": ["shortlisted", "pinned", "excluded"][i % 3], "note": f"n{i}"}})
                for i in range(n // 2)]  # fmt: skip
        results["shortlist_writes"] = asyncio.run(run(base, puts, c))
        show("shortlist item writes", results["shortlist_writes"])
        got = httpx.get(base + f"/api/shortlists/{sid}", headers=headers).json()
        results["shortlist_items_after"] = len(got["items"])
        results["shortlist_items_expected"] = len({p[1] for p in puts})
        print(f"shortlist holds {results['shortlist_items_after']} creators "
              f"(expected {results['shortlist_items_expected']})")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    path = ROOT / "benchmarks" / "results" / "workspace.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
