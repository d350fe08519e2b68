"""Polars' allocator settings for the ``ie`` process, set before polars loads (imported first by ``cli``).

Polars allocates with jemalloc, which reads its settings once, from ``_RJEM_MALLOC_CONF``, at its first allocation.
Polars builds it to hand memory back to the system half a second after it is freed, and buffers of 8 MB and more
(a column of a million rows) at once. Batch scoring frees and allocates such columns chunk after chunk, so the
system zeroed and mapped the same memory again and again: at 1M candidates a fifth of the CPU time was the kernel's
(24 s of 110 s). Keeping large buffers in the ordinary arenas and freed memory for 5 s cut that to 12-14 s, for a
higher peak: at 200k candidates 2.4-3.1 GB in chunks of 50k instead of 2.1-2.5 GB.

``ie score`` also keeps one arena for every thread (``narenas:1``; jemalloc's default is four per core), so a chunk's
threads reuse what another thread freed instead of each arena growing and being purged on its own: at 1M candidates
in chunks of 50k (2 cores, runs alternated in one session) system CPU 6.3-6.8 s -> 2.9-3.4 s, wall 30.2-30.5 s ->
28.7-28.9 s, peak memory 2.8-3.1 GB -> 2.3 GB, user CPU the same (46.4-47.4 s). The server is left with its arenas:
there one arena made 16 concurrent plans slower (``bench_serve.py --creators 20000 --requests 200``, three runs each
in turns: p50 755-768 -> 789-818 ms, p95 917-939 -> 966-1,034 ms), its request threads contending for it.

NumPy's large arrays come from glibc's malloc, which maps anything above 128 kB-32 MB afresh and unmaps it when
freed, so the kernel zeroed those pages again for every chunk too (the history tables of a 50k chunk are 8 MB
each). ``ie score`` therefore sets glibc's mmap threshold to 64 MB and its trim threshold to 1 GB (``mallopt``, where
the C library is glibc): such arrays reuse freed heap memory. At 400k candidates in chunks of 50k, two runs each
(2 cores): 15.8 / 15.7 s -> 15.1 / 14.4 s, system CPU 6.4 / 5.5 s -> 5.1 / 3.6 s, peak memory about the same.

A run given ``--limit-memory`` keeps polars' own settings: its chunks are sized from a memory model measured with
them (with memory kept for 5 s the same chunks peaked 5-16% above the limits). A value the user sets is left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

SETTINGS = "oversize_threshold:0,dirty_decay_ms:5000,muzzy_decay_ms:5000"
SCORING = ",narenas:1"  # added for a scoring run


def wanted(argv: list[str]) -> bool:
    """Whether a command line gets the settings: not when it limits its memory."""
    return not any(a == "--limit-memory" or a.startswith("--limit-memory=") for a in argv)


def scoring(argv: list[str]) -> bool:
    """Whether a command line is a scoring run that gets the settings for one (``ie score`` without a memory limit)."""
    return "score" in argv[1:] and wanted(argv)


def settings(argv: list[str]) -> str | None:
    """The jemalloc settings a command line gets (None: polars' own): ``SETTINGS``, with one arena for a scoring
    run."""
    if not wanted(argv):
        return None
    return SETTINGS + (SCORING if scoring(argv) else "")


if (_conf := settings(sys.argv)) is not None:
    os.environ.setdefault("_RJEM_MALLOC_CONF", _conf)

# glibc's mallopt parameters (malloc.h) and the values ``ie score`` sets
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
GLIBC = {_M_MMAP_THRESHOLD: 64 << 20, _M_TRIM_THRESHOLD: 1 << 30}


def glibc_settings(argv: list[str]) -> bool:
    """Set glibc's mmap and trim thresholds for a scoring run (see the module doc); whether they were set. Left
    alone: other commands (a long-running server should hand memory back), a run with ``--limit-memory``, values
    the user set (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``) and C libraries other than glibc."""
    if not scoring(argv):
        return False
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (glibc only)
    except (OSError, AttributeError):
        return False
    return all(libc.mallopt(ctypes.c_int(k), ctypes.c_int(v)) == 1 for k, v in GLIBC.items())


glibc_settings(sys.argv)
