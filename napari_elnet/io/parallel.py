"""Decoding DICOM files in worker processes when it pays, and loading off the compute thread's GIL.

Compressed transfer syntaxes are decoder-bound. JPEG 2000 decodes on several threads in this
process (:mod:`napari_elnet.io.jpeg2000`); the other codecs decode on one core holding the GIL, where
threads do not help (measured 0.95x with two; so did JPEG 2000 with pylibjpeg-openjpeg) and worker
processes do (1.97x with two; then each worker decodes JPEG 2000 on one thread). Starting a worker
costs a few hundred milliseconds (spawn, imports; seconds on a busy machine), so
:func:`read_dicom_files` uses processes only for many files of a compressed syntax on a machine
with at least two usable CPUs, and reads in this process otherwise. :class:`LoaderProcess` runs a whole loader (e.g. the worklist's study
loader) in one long-lived worker process, so pydicom's pure-Python parsing never holds the GIL of
the thread that runs the models.

Worker processes are started with ``spawn`` (never ``fork``: the parent may hold torch or Qt
threads).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from napari_elnet.common.cpus import usable_cpus
from napari_elnet.common.errors import ConfigurationError, ElnetError
from napari_elnet.io import jpeg2000
from napari_elnet.io.dicom_headers import DicomImage, read_dicom_file
from napari_elnet.io.scan import FileProblem

V = TypeVar("V")

_LOG = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
MAX_WORKERS = 4
"""Most decoding processes one read starts (each holds its own decoder and copy of the pixels)."""


@dataclass(frozen=True)
class DecodePolicy:
    """When and how :func:`read_dicom_files` decodes in worker processes.

    Attributes:
        min_files: fewest files for which worker processes pay. Starting a worker (spawn, imports)
            costs ~0.4 s on a quiet machine and several seconds on a busy one, while a 512x512
            slice of a single-core codec decodes in ~50 ms: on two cores the workers win clearly
            only from about 64 such files (measured with JPEG 2000 on one core: 20 files were 4x
            slower in workers under load). JPEG 2000, now decoded on threads in this process,
            never goes to workers (real knee, quiet machine, 2 workers against this process:
            64 files 2.05 s vs 1.55 s, 160 files 4.5 s vs 4.3 s).
        workers: number of worker processes; None: the usable CPUs, at most MAX_WORKERS.
            1 always reads in this process.
    """

    min_files: int = 64
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.min_files < 1:
            raise ConfigurationError(f"min_files must be >= 1, got {self.min_files}")
        if self.workers is not None and self.workers < 1:
            raise ConfigurationError(f"workers must be >= 1 or None, got {self.workers}")

    def worker_count(self) -> int:
        """Worker processes to use (1: read in this process)."""
        return self.workers or min(usable_cpus(), MAX_WORKERS)


def is_compressed(path: Path) -> bool:
    """True when the file's transfer syntax is compressed (read from its File Meta only).

    False for files without a readable File Meta (they are read in this process, which reports
    why when they are bad).
    """
    from pydicom.filereader import read_file_meta_info
    from pydicom.uid import UID

    try:
        syntax = read_file_meta_info(path).get("TransferSyntaxUID")
    except Exception:  # any unreadable header: let the reader say why
        return False
    return syntax is not None and UID(str(syntax)).is_compressed


def decodes_on_one_core(path: Path) -> bool:
    """True when the file's transfer syntax is compressed and its decoder runs on one core: every
    compressed syntax but those :mod:`napari_elnet.io.jpeg2000` decodes on threads.

    False for files without a readable File Meta, as :func:`is_compressed`.
    """
    from pydicom.filereader import read_file_meta_info
    from pydicom.uid import UID

    try:
        syntax = read_file_meta_info(path).get("TransferSyntaxUID")
    except Exception:  # any unreadable header: let the reader say why
        return False
    if syntax is None:
        return False
    uid = UID(str(syntax))
    return uid.is_compressed and not jpeg2000.plugin_for(uid)


def decoding_pays(paths: Sequence[Path], policy: DecodePolicy) -> bool:
    """Whether worker processes pay for ``paths``: many files of a compressed syntax decoded on
    one core (:func:`decodes_on_one_core`), >= 2 CPUs.

    The transfer syntax is read from the first and the middle file.
    """
    if len(paths) < policy.min_files or policy.worker_count() < 2:
        return False
    return decodes_on_one_core(paths[0]) or decodes_on_one_core(paths[len(paths) // 2])


def read_dicom_files(
    paths: Sequence[Path], policy: DecodePolicy | None = None
) -> list[DicomImage | FileProblem | None]:
    """:func:`~napari_elnet.io.dicom_headers.read_dicom_file` of every path, in order.

    In worker processes when :func:`decoding_pays`, else in this process (same results). When a
    worker process dies (a decoder crash), the files it had not returned become problems that say
    so; they are never decoded in this process, which the crash would take down too.

    Args:
        paths: DICOM files.
        policy: when to use worker processes (default: DecodePolicy()).

    Returns:
        One entry per path: the decoded image, a problem, or None (a file to skip silently).
    """
    policy = policy or DecodePolicy()
    paths = list(paths)
    if not decoding_pays(paths, policy):
        return [read_dicom_file(path) for path in paths]
    workers = min(policy.worker_count(), len(paths))
    chunk = max(1, len(paths) // (4 * workers))
    results: list[DicomImage | FileProblem | None] = []
    with _pool(workers, _decoding_worker) as pool:
        try:
            for result in pool.map(read_dicom_file, paths, chunksize=chunk):
                results.append(result)
        except BrokenProcessPool:
            # Most often a script without the ``if __name__ == "__main__":`` guard that spawned
            # processes need: read the rest here, as without worker processes.
            _LOG.warning(
                "decoding processes ended abnormally after %d of %d files; reading the rest in "
                "this process (a script that loads studies needs the __main__ guard)",
                len(results),
                len(paths),
            )
            results.extend(read_dicom_file(path) for path in paths[len(results) :])
    return results


def _end_with_parent() -> None:
    """Worker initializer: on Linux, have the kernel end this worker when its parent ends.

    Without it a worker whose parent was killed waits on its queue forever.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _decoding_worker() -> None:
    """Initializer of :func:`read_dicom_files`' workers: end with the parent, and decode JPEG 2000
    on one thread (the workers already share the CPUs between them)."""
    _end_with_parent()
    jpeg2000.set_threads(1)


def _pool(workers: int, initializer: Callable[[], None] = _end_with_parent) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes that end with this process (after ``initializer``)."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=initializer)


class LoaderProcess(Generic[V]):
    """Call ``load(*args)`` in one long-lived worker process (started on first use).

    The calling thread only waits and unpickles the result, so the parsing never holds its GIL.
    An exception of ``load`` is raised again in the caller; when the worker dies, the call raises
    :class:`~napari_elnet.common.errors.ElnetError` and the next call starts a fresh worker. A
    worker that dies before its first result (it could not start) is not retried: every load then
    runs in the calling thread, with a logged warning.

    Args:
        load: a picklable function (module level) of picklable arguments. Its module, and the
            arguments' types, are imported in the worker: keep them light (no torch).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, load: Callable[..., V]) -> None:
        self._load = load
        self._pool: ProcessPoolExecutor | None = None
        self._loaded = False
        self._in_process = False

    def __enter__(self) -> LoaderProcess[V]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, *args: object) -> V:
        if self._in_process:
            return self._load(*args)
        if self._pool is None:
            self._pool = _pool(1)
        try:
            value = self._pool.submit(self._load, *args).result()
        except BrokenProcessPool as exc:
            self.close()
            if self._loaded:
                raise ElnetError("the loading process ended abnormally (a decoder crash?)") from exc
            # The worker never worked (e.g. a script without the __main__ guard): load here.
            _LOG.warning("the loading process could not start; loading in this process")
            self._in_process = True
            return self._load(*args)
        self._loaded = True
        return value

    def close(self) -> None:
        """Stop the worker process (waits for a load in progress)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
