"""Compiled trees for fast inference: each KPI model compiled to native code with treelite + tl2cgen (gcc).

LightGBM's own predict stays the reference. A compiled model is used only where, on a sample of the rows being
scored, its raw scores equal LightGBM's (within ``tolerance``) and it is faster; otherwise, or when the compiler
is absent, the model keeps LightGBM's predict. Compiled libraries are cached by the sha256 of the model file, so a
bundle is compiled once per machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from influencer_engine.modeling.forecaster import KPIForecaster
from influencer_engine.modeling.matrix import to_matrix

__all__ = ["CompileReport", "use_compiled"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CompileReport:
    kpi: str
    used: bool
    reason: str  # "faster and equal", "slower", "differs by ...", "compiler unavailable: ..."
    lightgbm_s: float | None = None
    compiled_s: float | None = None
    max_abs_diff: float | None = None


def _compile(booster: object, libpath: Path) -> Callable[[F64], F64]:
    import tl2cgen
    import treelite

    if not libpath.is_file():
        libpath.parent.mkdir(parents=True, exist_ok=True)
        tmp = libpath.with_name(f".{libpath.name}.{os.getpid()}.tmp.so")
        model = treelite.frontend.from_lightgbm(booster)
        tl2cgen.export_lib(model, toolchain="gcc", libpath=str(tmp), params={"parallel_comp": 2}, verbose=False)
        tmp.replace(libpath)
    predictor = tl2cgen.Predictor(str(libpath), verbose=False)  # threads: the OpenMP setting of the process

    def predict(matrix: F64) -> F64:
        dmat = tl2cgen.DMatrix(np.ascontiguousarray(matrix, dtype=np.float64), dtype="float64")
        return np.asarray(predictor.predict(dmat, pred_margin=True), dtype=np.float64).ravel()

    return predict


def use_compiled(forecaster: KPIForecaster, sample: object, cache_dir: Path, *, hashes: dict[str, str],
                 tolerance: float = 1e-9) -> list[CompileReport]:  # fmt: skip
    """Compile every KPI model, check it on ``sample`` (a feature frame) and keep it where it is equal and faster."""
    reports = []
    for kpi, model in forecaster.models_.items():
        model.fast_ = None
        names = [str(n) for n in model.feature_names_in_]
        matrix = to_matrix(sample, names)  # type: ignore[arg-type]
        try:
            fast = _compile(model.booster_, cache_dir / f"{hashes[kpi]}.so")
        except Exception as exc:  # the compiler or toolchain is missing or failed: keep LightGBM
            reports.append(CompileReport(kpi, False, f"compiler unavailable: {type(exc).__name__}: {exc}"[:200]))
            continue
        t0 = time.perf_counter()
        ref = np.asarray(model.booster_.predict(matrix, raw_score=True), dtype=np.float64)
        t1 = time.perf_counter()
        got = fast(matrix)
        t2 = time.perf_counter()
        diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        lgb_s, comp_s = t1 - t0, t2 - t1
        if diff > tolerance:
            reports.append(CompileReport(kpi, False, f"differs by {diff:.3g}", lgb_s, comp_s, diff))
        elif comp_s >= lgb_s:
            reports.append(CompileReport(kpi, False, "slower", lgb_s, comp_s, diff))
        else:
            model.fast_ = fast
            reports.append(CompileReport(kpi, True, "faster and equal", lgb_s, comp_s, diff))
    forecaster.compiled_ = reports  # the decisions travel with the forecaster they were made for
    return reports
