"""glibc's mmap threshold fixed by limit_heap_growth: a freed large block leaves resident memory."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = """
import sys
from pathlib import Path
import numpy as np
from napari_elnet.worklist.allocator import limit_heap_growth

def rss_kb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

if sys.argv[1] == "limit":
    assert limit_heap_growth()
first = np.ones(1 << 21, np.float32)  # 8 MiB; freeing it raises glibc's dynamic threshold
del first
base = rss_kb()
second = np.ones(1 << 21, np.float32)
del second
print(rss_kb() - base)
"""

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc malloc settings apply on Linux only"
)


def _kept_kb(mode: str) -> int:
    """Resident kB left after allocating and freeing a second 8 MiB block, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def test_freed_blocks_leave_resident_memory() -> None:
    assert _kept_kb("default") > 6 * 1024  # glibc's default: the block stays in the heap
    assert _kept_kb("limit") < 1024  # fixed threshold: it is unmapped when freed
