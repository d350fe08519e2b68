"""Compiled trees for fast inference: each KPI model compiled to native code, used only where exactly equal.

LightGBM's own predict stays the reference. Two compilers sit behind one interface:

- **lleaves** (the default; LLVM through llvmlite, which must be < 0.45: lleaves 1.3 calls the legacy pass manager
  that llvmlite 0.45 removed). It compiles a 300-tree model in about 3-4 s with inlining off, and on the demo bundle
  its raw scores equal LightGBM's within 1e-14 while it predicts about 4x faster on one thread.
  **Inlined builds** (every tree inlined into one function) predict about 1.4x faster again (0.204 -> 0.141 s for
  50,000 rows of the demo's reach model, one thread) but take 15 s or more per model to build: too long to pay back
  within one scoring run of a million rows, so they are built only when asked, ahead of time (``ie compile``,
  ``build_inlined``), and used from the cache whenever present.
- **tl2cgen** (treelite's C code generator, through gcc): kept for where lleaves does not install. Its generated C
  stores each input as ``union Entry { int missing; double fvalue; }`` and reads ``missing == -1`` as absent, so a
  double whose low 32 bits are all ones is sent down the default branch: it is refused wherever that happens.

A compiled model is used only where, on a sample of the rows being scored, its raw scores equal LightGBM's (within
``tolerance``); otherwise, or when no compiler is present, the model keeps LightGBM's predict and the report says why.
Compiled code is cached by the sha256 of the model file, the compiler's version and the CPU it was compiled for, so a
bundle is compiled once per machine; the cache file is written under a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from influencer_engine.io import write_json
from influencer_engine.modeling.completion import Completion
from influencer_engine.modeling.estimator import lightgbm_threads, split_threads
from influencer_engine.modeling.forecaster import KPIForecaster
from influencer_engine.modeling.matrix import to_matrix

__all__ = [
    "BACKENDS",
    "CompileReport",
    "build_inlined",
    "cache_file",
    "compile_completion",
    "compile_model",
    "default_cache_dir",
    "enabled",
    "threshold_rows",
    "use_compiled",
]

F64 = npt.NDArray[np.float64]
BACKENDS = ("lleaves", "tl2cgen")
_SMALL_BATCH = 20_000  # rows below which one thread predicts (a thread pool costs more than it saves)
THRESHOLD_ROWS = 4_000  # synthetic rows at every split threshold checked besides the data's sample


def enabled() -> bool:
    """Whether commands predict with compiled trees: yes unless ``$IE_COMPILED`` is 0."""
    return os.environ.get("IE_COMPILED", "1").strip() != "0"


def default_cache_dir() -> Path:
    """Where compiled models are cached: ``$IE_COMPILED_CACHE``, else ~/.cache/influencer-engine/compiled."""
    env = os.environ.get("IE_COMPILED_CACHE", "").strip()
    return Path(env) if env else Path.home() / ".cache" / "influencer-engine" / "compiled"


def _splits(node: dict[str, Any], out: dict[int, list[float]], cats: dict[int, set[int]]) -> None:
    if "split_feature" not in node:
        return
    f = int(node["split_feature"])
    if node.get("decision_type") == "==":
        cats.setdefault(f, set()).update(int(c) for c in str(node["threshold"]).split("||"))
    else:
        out.setdefault(f, []).append(float(node["threshold"]))
    _splits(node["left_child"], out, cats)
    _splits(node["right_child"], out, cats)


def threshold_rows(booster: Any, n: int = THRESHOLD_ROWS, seed: int = 0) -> F64:
    """Rows that sit on the model's own decision boundaries: every feature at a split threshold, one ulp either
    side of one, missing, or between the extreme thresholds; categories among those the splits test and a few
    unseen. Where compiled code rounds, compares or reads a missing value differently from LightGBM, some row
    here goes the other way (a data sample alone may never touch a boundary)."""
    rng = np.random.default_rng(seed)
    dump = booster.dump_model()
    thresholds: dict[int, list[float]] = {}
    cats: dict[int, set[int]] = {}
    for tree in dump["tree_info"]:
        _splits(tree["tree_structure"], thresholds, cats)
    x = np.full((n, int(dump["max_feature_idx"]) + 1), np.nan)
    for f in range(x.shape[1]):
        if f in cats:
            pool = np.array(sorted(cats[f] | {0, max(cats[f]) + 1, max(cats[f]) + 2}), dtype=np.float64)
            x[:, f] = rng.choice(pool, n)
        elif f in thresholds:
            t = np.asarray(thresholds[f])
            at = rng.choice(t, n)
            kind = rng.integers(0, 5, n)
            x[:, f] = np.select(
                [kind == 0, kind == 1, kind == 2, kind == 3],
                [at, np.nextafter(at, np.inf), np.nextafter(at, -np.inf), rng.uniform(t.min(), t.max(), n)],
                np.nan,
            )
            # LightGBM writes a split at zero as a threshold of +-1e-35 (its kZeroThreshold) and reads every value
            # within it as zero: values that small are not data, so rows at such a split get an exact zero
            x[:, f] = np.where((np.abs(at) < 1e-30) & (kind < 3), 0.0, x[:, f])
        else:
            x[:, f] = rng.normal(size=n)
    return x


@dataclass(frozen=True)
class CompileReport:
    kpi: str
    used: bool
    reason: str  # "equal (lleaves)", "differs by ...", "compiler unavailable: ..."
    backend: str = ""
    lightgbm_s: float | None = None
    compiled_s: float | None = None
    max_abs_diff: float | None = None
    compile_s: float | None = None  # seconds spent compiling (0 when the cache had it)
    inlined: bool = False  # the inlined build (``ie compile``) was used


def _host_key() -> str:
    """The CPU the code is compiled for: compiled code from another CPU must not be loaded from a shared cache."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    features = llvm.get_host_cpu_features().flatten()
    return hashlib.sha256(f"{llvm.get_host_cpu_name()}|{features}".encode()).hexdigest()[:12]


_INLINED = ".inline.o"  # how an inlined lleaves build's cache file ends


def cache_file(backend: str, cache_dir: Path, digest: str, *, inlined: bool = False) -> Path:
    """Where ``backend`` caches the compiled model of sha256 ``digest``: keyed by the compiler's version and the CPU
    (``inlined``: lleaves' inlined build, see ``build_inlined``)."""
    if backend == "lleaves":
        from importlib.metadata import version

        tail = _INLINED if inlined else ".o"
        return cache_dir / f"{digest}.lleaves-{version('lleaves')}.llvmlite-{version('llvmlite')}.{_host_key()}{tail}"
    if backend == "tl2cgen":
        return cache_dir / f"{digest}.so"
    raise ValueError(f"unknown compiler {backend!r}: one of {', '.join(BACKENDS)}")


def _lleaves_build(text: str, cache: Path, inline: bool) -> Any:
    """lleaves' model of ``text`` loaded from ``cache``, or compiled into it first (into a temporary file renamed into
    place: no half-written cache is ever read)."""
    import lleaves

    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.parent, prefix=".build-") as tmp:
        path = Path(tmp) / "model.txt"
        path.write_text(text, encoding="utf-8")
        model = lleaves.Model(model_file=str(path))
        if cache.is_file():
            model.compile(cache=str(cache), raw_score=True, finline=inline)
        else:
            part = Path(tmp) / "model.o"
            model.compile(cache=str(part), raw_score=True, finline=inline)
            os.replace(part, cache)
    return model


def _lleaves(booster: Any, cache_dir: Path, digest: str) -> tuple[Callable[[F64, int], F64], float, Path]:
    inlined = cache_file("lleaves", cache_dir, digest, inlined=True)
    use_inlined = inlined.is_file()  # built ahead of time by `ie compile`: faster predictions, same trees
    cache = inlined if use_inlined else cache_file("lleaves", cache_dir, digest)
    t0 = time.perf_counter()
    model = _lleaves_build(booster.model_to_string(), cache, use_inlined)
    seconds = time.perf_counter() - t0

    def predict(matrix: F64, threads: int) -> F64:
        data = np.ascontiguousarray(matrix, dtype=np.float64)
        n_jobs = 1 if len(data) < _SMALL_BATCH else max(1, threads)
        return np.asarray(model.predict(data, n_jobs=n_jobs), dtype=np.float64)

    return predict, seconds, cache


def _build_inlined_file(text: str, cache: str) -> float:
    """Seconds to build lleaves' inlined model of ``text`` into ``cache`` (0 when it is there): one process each."""
    if Path(cache).is_file():
        return 0.0
    t0 = time.perf_counter()
    _lleaves_build(text, Path(cache), True)
    return time.perf_counter() - t0


def build_inlined(models: list[tuple[str, Any, str]], cache_dir: Path, jobs: int) -> dict[str, float]:
    """Build lleaves' inlined model of every ``(label, booster, sha256)`` into ``cache_dir``, ``jobs`` at a time in
    their own processes (lleaves builds its LLVM code in Python, so threads would take turns); seconds per label,
    0 for those already built. ``compile_model`` loads them from then on. Raises when lleaves is not installed."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import lleaves  # noqa: F401  (fail here, with lleaves' own message, rather than in every process)

    todo = {label: (booster.model_to_string(), str(cache_file("lleaves", cache_dir, digest, inlined=True)))
            for label, booster, digest in models}  # fmt: skip
    # spawned, not forked: a fork copies polars' thread pools in whatever state they are
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(todo))), mp_context=context) as pool:
        futures = {label: pool.submit(_build_inlined_file, text, cache) for label, (text, cache) in todo.items()}
        return {label: fut.result() for label, fut in futures.items()}


def _tl2cgen(booster: Any, cache_dir: Path, digest: str) -> tuple[Callable[[F64, int], F64], float, Path]:
    import tl2cgen
    import treelite

    libpath = cache_file("tl2cgen", cache_dir, digest)
    t0 = time.perf_counter()
    if not libpath.is_file():
        libpath.parent.mkdir(parents=True, exist_ok=True)
        tmp = libpath.with_name(f".{libpath.name}.{os.getpid()}.tmp.so")
        model = treelite.frontend.from_lightgbm(booster)
        tl2cgen.export_lib(model, toolchain="gcc", libpath=str(tmp), params={"parallel_comp": 2}, verbose=False)
        tmp.replace(libpath)
    predictor = tl2cgen.Predictor(str(libpath), verbose=False)  # threads: the OpenMP setting of the process
    seconds = time.perf_counter() - t0

    def predict(matrix: F64, threads: int) -> F64:
        dmat = tl2cgen.DMatrix(np.ascontiguousarray(matrix, dtype=np.float64), dtype="float64")
        return np.asarray(predictor.predict(dmat, pred_margin=True), dtype=np.float64).ravel()

    return predict, seconds, libpath


def compile_model(
    booster: Any, cache_dir: Path, digest: str, backend: str = "lleaves"
) -> tuple[Callable[[F64, int], F64], float, Path]:
    """A compiled raw-score predictor of ``booster`` (``predict(matrix, threads)``), the seconds compiling (or
    loading) took and the cached file it runs; raises when the backend is not installed or fails. lleaves runs the
    inlined build where ``build_inlined`` made one."""
    build = {"lleaves": _lleaves, "tl2cgen": _tl2cgen}.get(backend)
    if build is None:
        raise ValueError(f"unknown compiler {backend!r}: one of {', '.join(BACKENDS)}")
    return build(booster, cache_dir, digest)


def _verdict(built: Path) -> Path:
    """The file beside a cached build that says it passed its threshold rows."""
    return built.with_suffix(".thresholds.json")


def _checked_on_thresholds(built: Path, tolerance: float) -> float | None:
    """The largest difference the cached build showed on its threshold rows, when it was within ``tolerance``."""
    try:
        diff = float(json.loads(_verdict(built).read_text(encoding="utf-8"))["max_abs_diff"])
    except (OSError, ValueError, KeyError):
        return None
    return diff if diff <= tolerance else None


_Compiled = Callable[[F64, int], F64]


def _checked(label: str, booster: Any, data: F64 | None, width: int, cache_dir: Path, digest: str,
             tolerance: float, backends: tuple[str, ...]) -> tuple[_Compiled | None, CompileReport]:  # fmt: skip
    """``booster`` compiled by the first backend that installs and whose raw scores equal LightGBM's within
    ``tolerance`` on ``data`` (rows of its features; None: none) and on rows at its own split thresholds, and the
    report of that decision; (None, why not) when none does."""
    failures: list[str] = []
    report: CompileReport | None = None  # the one kept: equal, else the last that compiled and differed
    for backend in backends:
        try:
            predict, compile_s, built = compile_model(booster, cache_dir, digest, backend)
        except Exception as exc:  # the compiler is missing or failed: try the next, then keep LightGBM
            failures.append(f"{backend} unavailable: {type(exc).__name__}: {exc}"[:160])
            continue
        known = _checked_on_thresholds(built, tolerance)
        inlined = built.name.endswith(_INLINED)
        parts = ([] if data is None else [data]) + ([] if known is not None else [threshold_rows(booster)])
        matrix = np.vstack(parts) if parts else np.zeros((0, width))
        t0 = time.perf_counter()
        # on the cores free at that moment: the check sits on the path to a run's first forecast
        ref = np.asarray(
            booster.predict(matrix, raw_score=True, num_threads=lightgbm_threads(2, looks=1)), dtype=np.float64
        )
        lgb_s = time.perf_counter() - t0
        got = predict(matrix, 1) if matrix.size else ref
        comp_s = time.perf_counter() - t0 - lgb_s
        diff = max(float(np.max(np.abs(got - ref))) if ref.size else 0.0, known or 0.0)
        if diff > tolerance:
            failures.append(f"{backend} differs by {diff:.3g}")
            report = CompileReport(label, False, "", backend, lgb_s, comp_s, diff, compile_s, inlined)
            continue
        if known is None:  # the threshold rows passed: say so beside the cached model
            write_json({"max_abs_diff": diff}, _verdict(built))
        why = "; ".join([f"equal ({backend}{', inlined' if inlined else ''})", *failures])
        return predict, CompileReport(label, True, why, backend, lgb_s, comp_s, diff, compile_s, inlined)
    why = "; ".join(failures)
    return None, (CompileReport(label, False, "compiler unavailable: " + why) if report is None
                  else replace(report, reason=why))  # fmt: skip


def compile_completion(
    completion: Completion,
    sample: object | None,
    cache_dir: Path,
    *,
    hashes: dict[str, str],
    tolerance: float = 1e-9,
    backends: tuple[str, ...] = BACKENDS,
) -> list[CompileReport]:
    """The completion models (rate card, credibility) compiled and checked like the KPI models (``use_compiled``):
    ``Estimator.predict`` uses the compiled trees where they are equal. ``hashes``: each model's sha256 by name;
    ``sample`` is used where it has the model's features."""
    reports = []
    for est in (completion.price, completion.credibility):
        if est is None or est.name not in hashes:
            continue
        est.use_compiled(None)
        names = list(est.features)
        has = sample is not None and all(n in sample.columns for n in names)  # type: ignore[attr-defined]
        data = to_matrix(sample, names) if has else None  # type: ignore[arg-type]
        predict, report = _checked(f"completion {est.name}", est.booster, data, len(names), cache_dir,
                                   hashes[est.name], tolerance, backends)  # fmt: skip
        est.use_compiled(predict)
        reports.append(report)
    object.__setattr__(completion, "compiled_", reports)  # the decisions travel with the models, as for the KPIs
    return reports


def use_compiled(forecaster: KPIForecaster, sample: object | None, cache_dir: Path, *, hashes: dict[str, str],
                 tolerance: float = 1e-9, backends: tuple[str, ...] = BACKENDS) -> list[CompileReport]:  # fmt: skip
    """Compile every KPI model (the first backend that installs and is equal wins), check it on ``sample`` (a feature
    frame; None: none) and on rows at the model's own split thresholds (``threshold_rows``), and keep it where its
    raw scores equal LightGBM's on all of them; the decisions travel with the forecaster.

    The threshold rows depend only on the model, the compiler and the CPU, which key the cache: a cached model that
    passed them once (a small verdict file beside it) is checked on ``sample`` alone after that, so loading a bundle
    does not rebuild and predict them every time (2.7 s for the six demo models, against 0.3 s to load them).
    """
    reports = []
    for kpi, model in forecaster.models_.items():
        model.fast_ = None
        names = [str(n) for n in model.feature_names_in_]
        data = None if sample is None else to_matrix(sample, names)  # type: ignore[arg-type]
        predict, report = _checked(kpi, model.booster_, data, len(names), cache_dir, hashes[kpi], tolerance, backends)
        if predict is not None:

            def fast(m: F64, predict: Callable[[F64, int], F64] = predict, jobs: int = model.n_jobs) -> F64:
                return predict(m, split_threads(jobs))

            model.fast_ = fast
        reports.append(report)
    forecaster.compiled_ = reports  # the decisions travel with the forecaster they were made for
    return reports
