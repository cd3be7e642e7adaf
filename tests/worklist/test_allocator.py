"""release_free_memory: a freed large block glibc kept in its heap leaves resident memory;
MemoryKeeper: trims first, then only when resident memory grew by its margin."""

from __future__ import annotations

import mmap
import subprocess
import sys

import numpy as np
import pytest

from napari_elnet.worklist.allocator import MemoryKeeper, resident_bytes

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

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc_trim exists on Linux only"
)


def _kept_kb(mode: str) -> int:
    """Resident kB left after allocating and freeing a second 8 MiB block, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@linux_only
def test_freed_blocks_leave_resident_memory() -> None:
    assert _kept_kb("default") > 6 * 1024  # glibc's default: the block stays in the heap
    assert _kept_kb("release") < 1024  # malloc_trim gives it back


class FakeProcess:
    """Resident memory in MiB that a test sets; a release gives back what is marked free."""

    def __init__(self) -> None:
        self.resident_mb = 500
        self.free_mb = 0
        self.releases = 0

    def resident(self) -> int:
        return self.resident_mb * 2**20

    def release(self) -> bool:
        self.releases += 1
        self.resident_mb -= self.free_mb
        released, self.free_mb = self.free_mb > 0, 0
        return released


def test_keeper_trims_first_then_only_past_its_margin() -> None:
    process = FakeProcess()
    keeper = MemoryKeeper(100.0, process.resident, process.release)
    assert keeper.after_item()  # the first item sets the level
    assert keeper.level == 500 * 2**20
    process.resident_mb, process.free_mb = 590, 90
    assert not keeper.after_item()  # 90 MiB above the level: within the margin
    process.resident_mb, process.free_mb = 610, 110
    assert keeper.after_item()
    assert process.resident_mb == 500 and keeper.trims == 2 and process.releases == 2


def test_memory_kept_by_live_objects_raises_the_level() -> None:
    process = FakeProcess()
    keeper = MemoryKeeper(100.0, process.resident, process.release)
    keeper.after_item()
    process.resident_mb, process.free_mb = 800, 50  # 250 MiB held, 50 MiB free
    assert keeper.after_item()
    assert keeper.level == 750 * 2**20
    process.resident_mb = 760
    assert not keeper.after_item()  # no trim on every item for memory that stays in use


def test_keeper_with_no_margin_trims_every_item_and_without_a_reading_too() -> None:
    process = FakeProcess()
    keeper = MemoryKeeper(0.0, process.resident, process.release)
    process.resident_mb = 500
    assert keeper.after_item() and not keeper.after_item()  # nothing grew: no trim
    process.resident_mb += 1
    assert keeper.after_item()
    blind = MemoryKeeper(100.0, lambda: None, process.release)
    assert blind.after_item() and blind.after_item()  # unknown memory: always trim


@linux_only
def test_resident_bytes_follows_a_large_allocation() -> None:
    # Fresh anonymous pages (malloc could reuse heap memory that is already resident).
    with mmap.mmap(-1, 1 << 24) as block:  # 16 MiB
        before = resident_bytes()
        np.frombuffer(block, np.uint8)[::4096] = 1  # touch every page
        after = resident_bytes()
    assert before is not None and after is not None
    assert after - before > 12 * 2**20
