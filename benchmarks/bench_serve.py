"""API benchmark (issue 7), one command: python benchmarks/bench_serve.py [--creators 10000] [--requests 500]

A 10k-creator candidate base (simulated, seed 21) served by `ie serve` (a subprocess on loopback, models/demo).
Measured in one run, with an httpx client in this process:
1. the first plan of a brief (forecasts all candidates for it, then solves): its latency;
2. the example brief at 25 budgets from $8k to $32k, one plan at a time: p50, p95 (a planner alone);
3. N plan requests, C at a time, of the example brief at those budgets (so the solves differ; the forecasts are
   cached after request 1): p50, p95, max latency, errors, requests/s, and the certified gaps of the answers;
4. the same load asking each plan for the full proof (`prove: true`: the gap proven to mip_rel_gap by a MILP where
   the LP bounds do not prove it), the baseline of the bounds-only default;
5. the same load with the goal rotating over conversions, clicks, engagement and unique reach;
6. one what-if of 12 budgets;
7. with --busy N: load 3 again beside N processes that each spin a core (the machines are shared).
Writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from influencer_engine.brief import load_brief

ROOT = Path(__file__).resolve().parents[1]
BRIEF = ROOT / "configs" / "briefs" / "fitness_january.toml"
KEY = "bench-key-0123456789abcdef"


def brief_json(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = load_brief(BRIEF).model_dump(mode="json")
    data["scenarios"] = []
    data.update(changes)
    return data


async def load(base: str, bodies: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors: list[str] = []
    gaps: list[float] = []
    not_proven = 0
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": KEY}, timeout=120) as http:

        async def one(body: dict[str, Any]) -> None:
            nonlocal not_proven
            async with sem:
                t0 = time.perf_counter()
                r = await http.post("/api/plan", json=body)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                    return
                solver = r.json()["totals"]["solver"]
                gaps.append(solver["certified_gap"])
                not_proven += solver["status"] != "optimal"

        t0 = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100)
    return {"requests": len(bodies), "concurrency": concurrency, "errors": len(errors), "first_errors": errors[:3],
            "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "max_ms": max(latencies) * 1000,
            "requests_per_s": len(bodies) / wall, "wall_s": wall,
            # certified gaps of the answers: the largest, and how many were not proven within mip_rel_gap
            "max_certified_gap": max(gaps, default=float("nan")), "not_within_mip_rel_gap": not_proven}  # fmt: skip


def show(what: str, r: dict[str, Any]) -> None:
    print(
        f"{what}: p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, max {r['max_ms']:.0f} ms, "
        f"{r['errors']} errors, {r['requests_per_s']:.1f} req/s; largest certified gap "
        f"{100 * r['max_certified_gap']:.2f}%, {r['not_within_mip_rel_gap']} not within mip_rel_gap",
        flush=True,
    )


def start_serve(options: list[str]) -> tuple[subprocess.Popen[bytes], str, float]:
    """`ie serve` with ``options`` on a free loopback port, up and healthy: (process, address, seconds to start).
    The caller terminates the process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "influencer_engine.cli", "serve", *options, "--port", str(port)],
                            env={**os.environ, "IE_API_KEY": KEY}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    t0 = time.perf_counter()
    while True:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return proc, base, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"ie serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creators", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--busy", type=int, default=0, help="CPU-spinning processes beside a last run of load 3")
    args = ap.parse_args()
    model = ROOT / "models" / "demo"
    if not (model / "manifest.json").is_file():
        raise SystemExit("models/demo is missing: run `ie demo` first")
    world = ROOT / "runs" / "bench_serve" / f"world_{args.creators}"
    if not (world / "creators.parquet").is_file():
        subprocess.run([sys.executable, "-m", "influencer_engine.cli", "simulate", "--creators", str(args.creators),
                        "--seed", "21", "--out", str(world)], check=True, capture_output=True)  # fmt: skip
    proc, base, startup = start_serve(["--data", str(world), "--model", str(model), "--db", "none"])
    results: dict[str, Any] = {"creators": args.creators}
    try:
        results["startup_s"] = startup
        headers = {"X-API-Key": KEY}
        t0 = time.perf_counter()
        first = httpx.post(base + "/api/plan", json={"brief": brief_json()}, headers=headers, timeout=300)
        first.raise_for_status()
        results["first_plan_s"] = time.perf_counter() - t0
        results["eligible_candidates"] = first.json()["totals"]["candidates"]["eligible"]
        print(f"server up in {results['startup_s']:.1f} s; first plan (forecasts {args.creators:,} candidates) "
              f"{results['first_plan_s']:.2f} s, {results['eligible_candidates']:,} eligible", flush=True)  # fmt: skip
        budgets = [8_000 + 1_000 * (i % 25) for i in range(args.requests)]
        bodies = [{"brief": brief_json(budget=b)} for b in budgets]
        results["plan_alone"] = asyncio.run(load(base, bodies[:25], 1))
        show("the example brief at 25 budgets, one at a time", results["plan_alone"])
        results["plan_load"] = asyncio.run(load(base, bodies, args.concurrency))
        show(f"{len(bodies)} plans, {args.concurrency} at a time", results["plan_load"])
        results["plan_load_full_proof"] = asyncio.run(load(base, [{**b, "prove": True} for b in bodies],
                                                           args.concurrency))  # fmt: skip
        show("the same, each asking for the full proof", results["plan_load_full_proof"])
        goals = ["conversions", "clicks", "engagement", "reach"]
        mixed = [{"brief": brief_json(budget=b, goal=goals[i % 4])} for i, b in enumerate(budgets)]
        results["plan_load_mixed_goals"] = asyncio.run(load(base, mixed, args.concurrency))
        show("mixed goals (incl. unique reach)", results["plan_load_mixed_goals"])
        t0 = time.perf_counter()
        body = {"brief": brief_json(), "budgets": {"start": 5000, "stop": 120000, "steps": 12}}
        w = httpx.post(base + "/api/whatif", headers=headers, timeout=300, json=body)
        w.raise_for_status()
        results["whatif_12_budgets_s"] = time.perf_counter() - t0
        print(f"what-if, 12 budgets: {results['whatif_12_budgets_s']:.2f} s")
        results["server_cache"] = httpx.get(base + "/api/model", headers=headers).json()["cache"]
        if args.busy:
            spin = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
            try:
                results["plan_load_busy"] = {"busy_processes": args.busy,
                                             **asyncio.run(load(base, bodies, args.concurrency))}  # fmt: skip
            finally:
                for p in spin:
                    p.kill()
                    p.wait()
            show(f"the example brief's load beside {args.busy} CPU-spinning processes", results["plan_load_busy"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    path = ROOT / "benchmarks" / "results" / "serve.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
