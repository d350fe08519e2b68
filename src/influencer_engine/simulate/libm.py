"""The simulator's transcendental functions, giving the same bits on every x86-64 CPU.

NumPy computes ``exp``, ``log``, ``log1p``, ``log10``, ``expm1`` and ``power`` of float64 arrays with its own SIMD
code on CPUs with AVX-512 and with the C library's functions elsewhere. The two differ in the last bit of 0.2-19% of
values. The simulator feeds such values to random draws (a binomial's probability), so the same seed drew another
world on an AVX-512 machine: 1.3% of the demo world's posts had a reach a few people apart, and the demo plan's
expected conversions moved by 7% (1,413 against 1,510).

Each function here is NumPy's where NumPy agrees with the C library on this machine (checked once, on probe values
spanning the domain) and the C library's, through :mod:`math`, otherwise. The C library's are what NumPy without
AVX-512 computes, so a world drawn on either kind of machine is the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
_Ufunc = Callable[..., Any]


def _probe() -> F64:
    """Values over the ranges the simulator uses (and a few beyond), every sign and scale."""
    rng = np.random.default_rng(20261203)
    return np.concatenate([rng.normal(0.0, 3.0, 2048), rng.uniform(-30.0, 30.0, 1024), rng.lognormal(0.0, 6.0, 1024)])


def _exact(fast: _Ufunc, exact: Callable[..., float], *args: Any) -> F64:
    """``fast(*args)``, with every finite, non-zero result recomputed by ``exact`` (the C library). Where NumPy's
    result is infinite, zero or NaN, the C library would raise or agree, so NumPy's stands."""
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in args))
    with np.errstate(all="ignore"):
        out = np.array(fast(*arrays), dtype=np.float64)
    ok = np.isfinite(out) & (out != 0.0)
    if ok.any():
        picked = [a[ok] for a in arrays]
        out[ok] = np.frompyfunc(exact, len(args), 1)(*picked).astype(np.float64)
    return out


def _pick(fast: _Ufunc, exact: Callable[..., float], probe: tuple[F64, ...]) -> Callable[..., Any]:
    """``fast`` where it gives the C library's bits on every probe value, a wrapper that recomputes otherwise."""
    with np.errstate(all="ignore"):
        if np.array_equal(fast(*probe), _exact(fast, exact, *probe), equal_nan=True):
            return fast

    def exactly(*args: Any) -> F64:
        return _exact(fast, exact, *args)

    exactly.__name__ = getattr(fast, "__name__", "exact")
    return exactly


_P = _probe()
_POS = np.abs(_P) + 1e-3

NUMPY: dict[str, _Ufunc] = {"exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "log10": np.log10,
                            "power": np.power}  # fmt: skip
"""NumPy's own functions, by the name each has here."""

exp = _pick(np.exp, math.exp, (_P,))
expm1 = _pick(np.expm1, math.expm1, (_P,))
log = _pick(np.log, math.log, (_POS,))
log1p = _pick(np.log1p, math.log1p, (_POS,))
log10 = _pick(np.log10, math.log10, (_POS,))
power = _pick(np.power, math.pow, (_POS, _P / 4.0))

EXACT_BY_NUMPY = {name: globals()[name] is fn for name, fn in NUMPY.items()}
"""Which functions NumPy computes as the C library does on this machine (the others go through :mod:`math`)."""
