"""Distributed data-parallel training with PyTorch's own launcher (``torchrun``).

``torchrun --nproc-per-node N -m napari_elnet.cli train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in their environment;
:func:`init_from_env` joins them into one process group (``gloo`` on the CPU, ``nccl`` on CUDA,
one GPU per process). ``napari-elnet train --nproc N`` is the same command started for you
(:func:`launch`).

What each process does (:mod:`napari_elnet.training.loop` with a :class:`Distributed`):

- every rank draws the epoch's oversampled order from the same seed, so all hold the same order,
  and takes every N-th series of it (:meth:`Distributed.split`: rank r gets positions r, r + N, ...);
- ``DistributedDataParallel`` all-reduces (averages) the gradients after every backward pass, so
  one optimizer step of N ranks equals one step of one process accumulating N series
  (``accumulate`` N) over the same order;
- augmentation and dropout draw from a generator of each rank's own (seeded from the seed, the
  rank and the epoch), so the N series of a step get independent transforms and a resumed run
  draws the same ones again;
- validation is split the same way and the per-series results are gathered on every rank, so
  every rank computes the same metrics and takes the same best-epoch decision;
- only rank 0 writes the model file, the resume sidecar and progress.

Learning rate and batch: a step's gradient is the *mean* over its ``N x accumulate`` series (the
effective batch), so the learning rate is not scaled automatically: with N ranks the run takes the
optimizer steps of a one-process run with ``accumulate`` N (N times fewer steps per epoch, each on
an N times larger batch). Adam's steps hardly depend on the gradient's size, so at a fixed number of
epochs a larger effective batch means fewer, not larger, updates: keep the epochs, or raise ``lr``
(by up to sqrt(N) for Adam; linear scaling is the rule for SGD) and check the validation curve.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from napari_elnet.common.errors import ConfigurationError

T = TypeVar("T")

GROUP_TIMEOUT = timedelta(hours=2)
"""Collective timeout: rank 0 prepares the data (and the cache) while the others wait for it."""

_SAMPLE_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel run (the defaults: one process, no group).

    Attributes:
        rank: Global rank (0 writes files and progress).
        world: Number of processes.
        local_rank: Rank on this machine (its GPU index on CUDA).
        backend: ``gloo`` or ``nccl``; None for one process.
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one that writes files and progress."""
        return self.rank == 0

    def split(self, order: np.ndarray) -> np.ndarray:
        """This rank's part of an epoch order: positions rank, rank + world, ...

        The order is first padded by repeating its start to a multiple of ``world`` so that every
        rank takes the same number of steps (as ``DistributedSampler`` does).
        """
        if self.world == 1:
            return order
        total = -(-order.size // self.world) * self.world
        padded = np.concatenate([order, order[: total - order.size]])
        return padded[self.rank :: self.world]

    def shard(self, count: int) -> np.ndarray:
        """Positions ``rank, rank + world, ...`` below ``count`` (validation: no padding)."""
        return np.arange(self.rank, count, self.world)

    def sample_generator(self, generator: torch.Generator) -> torch.Generator:
        """The generator of augmentation and dropout: ``generator`` itself for one process (the
        single-process run is unchanged), a new one per rank otherwise (see :meth:`reseed`)."""
        return generator if self.world == 1 else torch.Generator()

    def reseed(self, generator: torch.Generator, seed: int, epoch: int) -> None:
        """Seed a rank's sample generator for ``epoch`` (no-op for one process)."""
        if self.world > 1:
            generator.manual_seed((seed * _SAMPLE_SEED_STRIDE + epoch) * 4099 + self.rank)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``DistributedDataParallel(model)`` in a group, else ``model``."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [device.index or 0] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def no_sync(self, net: nn.Module, skip: bool) -> contextlib.AbstractContextManager[Any]:
        """Within an accumulation (``skip``): DDP's ``no_sync`` (gradients all-reduced later)."""
        if skip and self.world > 1 and hasattr(net, "no_sync"):
            return net.no_sync()  # type: ignore[operator]  # DDP's method, not a submodule
        return contextlib.nullcontext()

    def mean(self, value: float, count: int) -> float:
        """The mean over all ranks of a per-rank mean ``value`` of ``count`` items."""
        if self.world == 1:
            return value
        totals = torch.tensor([value * count, float(count)], dtype=torch.float64)
        dist.all_reduce(totals)
        return float(totals[0] / totals[1])

    def gather(self, items: Sequence[T]) -> list[T]:
        """Every rank's ``items``, concatenated in rank order, on every rank."""
        if self.world == 1:
            return list(items)
        parts: list[Any] = [None] * self.world
        dist.all_gather_object(parts, list(items))
        return [item for part in parts for item in part]

    def share(self, value: T | None) -> T:
        """Rank 0's ``value`` on every rank (the others pass None)."""
        if self.world == 1:
            return value  # type: ignore[return-value]
        box: list[Any] = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[no-any-return]

    def barrier(self) -> None:
        """Wait for every rank (no-op for one process)."""
        if self.world > 1:
            dist.barrier()


SINGLE = Distributed()
"""One process, no process group."""


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise ConfigurationError(f"environment variable {name}={text!r} is not an integer") from exc


def launched_world() -> int:
    """``WORLD_SIZE`` set by torchrun (1 when not launched by it)."""
    return _env_int("WORLD_SIZE", 1)


def init_from_env(device: str = "auto") -> Distributed:
    """Join the process group torchrun set up (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ...).

    Args:
        device: The run's device name; ``nccl`` is used when it resolves to CUDA (each process
            then takes GPU ``LOCAL_RANK``), ``gloo`` otherwise.

    Returns:
        :data:`SINGLE` when ``WORLD_SIZE`` is absent or 1, else this process's place.

    Raises:
        ConfigurationError: inconsistent variables, or more local ranks than GPUs.
    """
    world = launched_world()
    if world <= 1:
        return SINGLE
    rank, local_rank = _env_int("RANK", -1), _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world:
        raise ConfigurationError(f"RANK={rank} is not in [0, WORLD_SIZE={world})")
    from napari_elnet.common.device import resolve_device

    cuda = resolve_device(device).type == "cuda"
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigurationError(
                f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} GPU(s): "
                "start at most one process per GPU"
            )
        torch.cuda.set_device(local_rank)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=GROUP_TIMEOUT)
    return Distributed(rank=rank, world=world, local_rank=local_rank, backend=backend)


def shutdown(context: Distributed) -> None:
    """Leave the process group (after a barrier, so no rank exits while another still writes)."""
    if context.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def process_group(device: str = "auto") -> Iterator[Distributed]:
    """:func:`init_from_env` ... :func:`shutdown` (the group is destroyed on errors too)."""
    context = init_from_env(device)
    try:
        yield context
    except BaseException:
        if context.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
        raise
    shutdown(context)


def torchrun_command(nproc: int, argv: Sequence[str]) -> list[str]:
    """The ``torchrun`` command (as ``python -m torch.distributed.run``, the same program) that
    runs ``napari-elnet`` with ``argv`` in ``nproc`` processes on this machine."""
    if nproc < 1:
        raise ConfigurationError(f"--nproc must be >= 1, got {nproc}")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "napari_elnet.cli",
        *argv,
    ]


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``napari-elnet argv`` under torchrun with ``nproc`` processes; its exit status."""
    return subprocess.run(torchrun_command(nproc, argv), check=False).returncode


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` when ``bf16`` (mixed precision; meant for CUDA), else nothing."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
