"""Polars' allocator settings for the ``ie`` process, set before polars loads (imported first by ``cli``).

Polars allocates with jemalloc, which reads its settings once, from ``_RJEM_MALLOC_CONF``, at its first allocation.
Polars builds it to hand memory back to the system half a second after it is freed, and buffers of 8 MB and more
(a column of a million rows) at once. Batch scoring frees and allocates such columns chunk after chunk, so the
system zeroed and mapped the same memory again and again: at 1M candidates a fifth of the CPU time was the kernel's
(24 s of 110 s). Keeping large buffers in the ordinary arenas and freed memory for 5 s cut that to 12-14 s and the
wall time by about a sixth, for a higher peak (about 0.5 GB more at 50,000 creators a chunk; ``--limit-memory``'s
model is measured with these settings). A value the user sets is left alone.
"""

from __future__ import annotations

import os

SETTINGS = "oversize_threshold:0,dirty_decay_ms:5000,muzzy_decay_ms:5000"

os.environ.setdefault("_RJEM_MALLOC_CONF", SETTINGS)
