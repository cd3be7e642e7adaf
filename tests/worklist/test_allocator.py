"""release_free_memory: a freed large block glibc kept in its heap leaves resident memory."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = """
import sys
from pathlib import Path
import numpy as np
from napari_elnet.worklist.allocator import release_free_memory

def rss_kb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

first = np.ones(1 << 21, np.float32)  # 8 MiB; freeing it raises glibc's dynamic threshold
del first
base = rss_kb()
second = np.ones(1 << 21, np.float32)  # now from the heap
del second
if sys.argv[1] == "release":
    assert release_free_memory()
print(rss_kb() - base)
"""

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc_trim exists on Linux only"
)


def _kept_kb(mode: str) -> int:
    """Resident kB left after allocating and freeing a second 8 MiB block, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def test_freed_blocks_leave_resident_memory() -> None:
    assert _kept_kb("default") > 6 * 1024  # glibc's default: the block stays in the heap
    assert _kept_kb("release") < 1024  # malloc_trim gives it back
