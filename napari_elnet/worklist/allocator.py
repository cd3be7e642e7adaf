"""Keeping a long worklist run's resident memory flat: glibc malloc's mmap threshold.

glibc serves an allocation of at least ``M_MMAP_THRESHOLD`` bytes with its own ``mmap`` and gives
it back to the system when it is freed. By default that threshold is dynamic: each time a large
block is freed it rises to that block's size (up to 32 MiB on 64-bit), so after the first study
the per-study volumes, heatmaps and activations (1-32 MiB each, their sizes changing with every
series) come from the heap arenas instead, where freed blocks stay resident and fragment: the
worklist's resident memory grew with every study. Fixing the threshold at 1 MiB (which turns the
dynamic adjustment off) and capping the arenas at two returns those blocks to the system as soon
as they are freed (measured in ``docs/performance.md``).

Only the calling process is affected, and only on glibc; elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 1 << 20
"""Allocations of at least this size are mapped and unmapped on their own (1 MiB)."""
ARENA_MAX = 2
"""Most malloc arenas (the main thread's, and one shared by the loader and torch's threads)."""


def limit_heap_growth() -> bool:
    """Set glibc's mmap threshold to MMAP_THRESHOLD_BYTES (fixed) and its arenas to ARENA_MAX.

    Returns:
        True when glibc accepted the settings; False on other C libraries and platforms.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
        and mallopt(M_ARENA_MAX, ARENA_MAX) == 1
    )
