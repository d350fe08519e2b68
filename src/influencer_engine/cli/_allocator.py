"""Polars' allocator settings for the ``ie`` process, set before polars loads (imported first by ``cli``).

Polars allocates with jemalloc, which reads its settings once, from ``_RJEM_MALLOC_CONF``, at its first allocation.
Polars builds it to hand memory back to the system half a second after it is freed, and buffers of 8 MB and more
(a column of a million rows) at once. Batch scoring frees and allocates such columns chunk after chunk, so the
system zeroed and mapped the same memory again and again: at 1M candidates a fifth of the CPU time was the kernel's
(24 s of 110 s). Keeping large buffers in the ordinary arenas and freed memory for 5 s cut that to 12-14 s, for a
higher peak: at 200k candidates 2.4-3.1 GB in chunks of 50k instead of 2.1-2.5 GB.

A run given ``--limit-memory`` keeps polars' own settings: its chunks are sized from a memory model measured with
them (with memory kept for 5 s the same chunks peaked 5-16% above the limits). A value the user sets is left alone.
"""

from __future__ import annotations

import os
import sys

SETTINGS = "oversize_threshold:0,dirty_decay_ms:5000,muzzy_decay_ms:5000"


def wanted(argv: list[str]) -> bool:
    """Whether a command line gets the settings: not when it limits its memory."""
    return not any(a == "--limit-memory" or a.startswith("--limit-memory=") for a in argv)


if wanted(sys.argv):
    os.environ.setdefault("_RJEM_MALLOC_CONF", SETTINGS)
