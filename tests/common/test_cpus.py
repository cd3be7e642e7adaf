"""usable_cpus: the CPUs this process may run on."""

from __future__ import annotations

import os

import pytest

from napari_elnet.common.cpus import usable_cpus


def test_usable_cpus_follow_the_affinity_mask() -> None:
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity mask on this system")
    assert usable_cpus() == len(os.sched_getaffinity(0))
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)
