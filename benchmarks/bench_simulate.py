"""What the simulator's CPU-independent math costs. One command:

    python benchmarks/bench_simulate.py [--creators 20000 100000] [--seed 7] [--repeats 3]

Times ``simulate_market`` with the functions of ``simulate/libm.py`` as they are (NumPy's where they equal the C
library's on this machine, the C library's through ``math`` otherwise) and with NumPy's swapped in (what the simulator
did before; on an AVX-512 machine that draws another world), interleaved, best of ``--repeats``, in one process. It
also reports whether the two worlds are equal: on a machine where libm keeps NumPy's functions they are the same code.
Figures land in benchmarks/results/simulate.json and on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from influencer_engine.config import load_simulator_config, load_tier_config  # noqa: E402
from influencer_engine.simulate import libm  # noqa: E402
from influencer_engine.simulate.generate import SimulatedMarket, simulate_market  # noqa: E402


def _draw(n: int, seed: int, numpy: bool) -> tuple[float, SimulatedMarket]:
    kept = {name: getattr(libm, name) for name in libm.NUMPY}
    if numpy:
        for name, fn in libm.NUMPY.items():
            setattr(libm, name, fn)
    try:
        t0 = time.perf_counter()
        market = simulate_market(load_simulator_config(), load_tier_config(), n, seed)
        return time.perf_counter() - t0, market
    finally:
        for name, fn in kept.items():
            setattr(libm, name, fn)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creators", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "simulate.json")
    a = ap.parse_args()
    out: dict[str, Any] = {"numpy_equals_c_library": libm.EXACT_BY_NUMPY, "runs": {}}
    print("NumPy equals the C library here:", libm.EXACT_BY_NUMPY)
    for n in a.creators:
        times: dict[str, list[float]] = {"libm": [], "numpy": []}
        worlds: dict[str, SimulatedMarket] = {}
        for _ in range(a.repeats):
            for way in ("libm", "numpy"):
                seconds, worlds[way] = _draw(n, a.seed, way == "numpy")
                times[way].append(seconds)
        same = all(f.equals(worlds["numpy"].tables()[k]) for k, f in worlds["libm"].tables().items())
        same = same and worlds["libm"].truth.equals(worlds["numpy"].truth)
        best = {k: min(v) for k, v in times.items()}
        out["runs"][str(n)] = {"seconds": times, "best": best, "same_world": same}
        print(f"{n:>7,} creators, {worlds['libm'].posts.height:,} posts: libm {best['libm']:.2f} s, "
              f"NumPy's functions {best['numpy']:.2f} s (+{best['libm'] - best['numpy']:.2f} s); "
              f"the same world: {same}", flush=True)  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"written: {a.out}")


if __name__ == "__main__":
    main()
