"""Streaming training data: prepared volumes cached once on disk, read back memory-mapped.

Training keeps every prepared volume in RAM by default (:func:`napari_elnet.training.loop.prepare_cases`;
MRNet-size: about 11 GB float32). With a cache the volumes are prepared once
(:func:`~napari_elnet.transforms.preprocess.prepare_volume`: resize to 256 x 256, clip, standardize
with the run's landmarks), written to one data file per set with their scale, and read back by a
``torch.utils.data.DataLoader`` whose workers map one volume at a time, copy it and unmap it. The
resident memory is then a few volumes per worker, whatever the size of the data set.

Layout of a cache entry, ``<folder>/<key>/``: ``volumes.bin`` (the volumes one after another,
(S, 256, 256) each, ``float16`` or ``uint8``) and ``index.json`` (format, dtype, plane, landmarks,
and per volume its case id, byte offset, slice count and, for ``uint8``, ``low`` and ``scale``:
value = low + scale * stored). The key is a SHA-256 of the format, dtype, plane, landmarks and
each case's source (path, size and modification time of its files), so a changed file or other
landmarks give a new entry and an unchanged data set is prepared only once. An entry is written in
a ``.partial`` folder and renamed when complete: an interrupted run leaves no half entry behind.

``float16`` volumes equal the in-memory path's ``cache_half`` volumes bit for bit, so a run with a
``float16`` cache gives the same weights as an in-memory ``cache_half`` run with the same seed.
``uint8`` halves the disk again at a rounding of (max - min) / 510 per volume.

The cache never lies in a data folder: :func:`open_cache_folder` refuses one inside a case's folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from napari_elnet.common.errors import ConfigurationError, ElnetError
from napari_elnet.common.outputs import ensure_outside_inputs
from napari_elnet.datasets import Case
from napari_elnet.nn.elnet import INPUT_SIZE
from napari_elnet.transforms.intensity import Landmarks, fit_landmarks
from napari_elnet.transforms.preprocess import clip_bright, prepare_volume, resize_slices

CACHE_FORMAT = 1
CacheDtype = Literal["float16", "uint8"]
CACHE_DTYPES: tuple[CacheDtype, ...] = ("float16", "uint8")
Progress = tuple[int, int]
"""(steps done, steps in all) of the preparation: the landmark pass (when needed) + every set."""


@dataclass(frozen=True)
class CacheConfig:
    """Where and how prepared volumes are cached, and how they are read back.

    Attributes:
        folder: Cache folder; None for the user cache folder (:func:`default_cache_folder`).
        dtype: ``float16`` (2 bytes per voxel, same values as ``cache_half``) or ``uint8``
            (1 byte per voxel, per-volume scale).
        workers: DataLoader worker processes reading volumes ahead (0: read in the training process).
        prefetch: Volumes each worker reads ahead (DataLoader ``prefetch_factor``).
    """

    folder: Path | None = None
    dtype: CacheDtype = "float16"
    workers: int = 2
    prefetch: int = 2

    def __post_init__(self) -> None:
        if self.dtype not in CACHE_DTYPES:
            raise ConfigurationError(
                f"cache dtype must be one of {CACHE_DTYPES}, got {self.dtype!r}"
            )
        if self.workers < 0 or self.prefetch < 1:
            raise ConfigurationError(
                f"cache workers must be >= 0 and prefetch >= 1, got {self.workers}, {self.prefetch}"
            )


def default_cache_folder() -> Path:
    """The user cache folder of napari-elnet's training volumes (``~/.cache/napari-elnet/training``
    on Linux, ``~/Library/Caches/napari-elnet/training`` on macOS, ``%LOCALAPPDATA%`` on Windows)."""
    import platformdirs

    return platformdirs.user_cache_path("napari-elnet") / "training"


def open_cache_folder(
    config: CacheConfig, cases: Sequence[Case], inputs: Sequence[str | os.PathLike[str]] = ()
) -> Path:
    """The configured cache folder, created.

    Raises:
        ConfigurationError: it lies inside one of ``inputs`` (data folders) or a case's folder.
    """
    folder = config.folder if config.folder is not None else default_cache_folder()
    folder = ensure_outside_inputs(folder, [*inputs, *{case.source for case in cases}])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _source_stamp(source: Path) -> list[Any]:
    """What identifies a case's content: its file's (size, mtime) or those of a folder's files."""
    try:
        if source.is_dir():
            files = sorted(p for p in source.rglob("*") if p.is_file())
            return [[str(p.relative_to(source)), *_stat(p)] for p in files]
        return [_stat(source)]
    except OSError as exc:
        raise ElnetError(f"{source}: cannot read ({exc.strerror or exc})") from exc


def _stat(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def cache_key(cases: Sequence[Case], plane: str, landmarks: Landmarks, dtype: CacheDtype) -> str:
    """SHA-256 (hex, 24 digits) of everything the cached values depend on."""
    payload = {
        "format": CACHE_FORMAT,
        "dtype": dtype,
        "plane": plane,
        "landmarks": landmarks.to_dict(),
        "cases": [[str(c.source.resolve()), c.case_id, _source_stamp(c.source)] for c in cases],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


class CachedVolumes(Dataset[torch.Tensor]):
    """The prepared volumes of one cache entry, read one at a time from disk.

    ``volumes[i]`` maps volume ``i`` of ``volumes.bin``, copies it and unmaps it: the object holds
    no volume in memory, so it can be handed to DataLoader workers and to other ranks (it pickles
    as its folder and index).

    Shape:
        ``volumes[i]``: (S, 1, 256, 256), ``float16`` for a float16 cache (as the in-memory
        ``cache_half`` volumes), ``float32`` for a uint8 cache (low + scale * stored).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        index_path = self.folder / "index.json"
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError) as exc:
            raise ElnetError(f"{index_path}: not a readable volume cache index ({exc})") from exc
        if index.get("format") != CACHE_FORMAT or index.get("dtype") not in CACHE_DTYPES:
            raise ElnetError(f"{index_path}: unsupported cache format {index.get('format')!r}")
        self.dtype: CacheDtype = index["dtype"]
        self.landmarks = Landmarks.from_dict(index["landmarks"])
        self.entries: list[dict[str, Any]] = index["volumes"]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> torch.Tensor:
        entry = self.entries[index]
        shape = (int(entry["slices"]), INPUT_SIZE, INPUT_SIZE)
        mapped = np.memmap(
            self.folder / "volumes.bin",
            dtype=np.dtype(self.dtype),
            mode="r",
            offset=int(entry["offset"]),
            shape=shape,
        )
        try:
            values = np.array(mapped)  # copy, so the mapping (and its resident pages) goes away
        finally:
            del mapped
        tensor = torch.from_numpy(values)
        if self.dtype == "uint8":
            tensor = tensor.float() * float(entry["scale"]) + float(entry["low"])
        return tensor[:, None]

    @property
    def case_ids(self) -> list[str]:
        """Case ids in volume order."""
        return [str(entry["case_id"]) for entry in self.entries]


def _quantized(volume: torch.Tensor, dtype: CacheDtype) -> tuple[np.ndarray, dict[str, float]]:
    """(S, 256, 256) stored values and their scale for one prepared (S, 1, 256, 256) volume."""
    values = volume[:, 0]
    if dtype == "float16":
        return values.half().numpy(), {}
    low, high = float(values.min()), float(values.max())
    scale = (high - low) / 255.0 if high > low else 1.0
    stored = torch.round((values - low) / scale).clamp(0, 255).to(torch.uint8)
    return stored.numpy(), {"low": low, "scale": scale}


def _write_entry(
    target: Path,
    cases: Sequence[Case],
    landmarks: Landmarks,
    plane: str,
    dtype: CacheDtype,
) -> Generator[int, None, CachedVolumes]:
    """Prepare every case into the entry ``target`` (written as ``.partial``, then renamed)."""
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    entries = []
    offset = 0
    try:
        with (partial / "volumes.bin").open("wb") as data:
            for i, case in enumerate(cases):
                stored, scale = _quantized(prepare_volume(case.volume(), landmarks), dtype)
                data.write(stored.tobytes())
                entries.append(
                    {"case_id": case.case_id, "offset": offset, "slices": stored.shape[0]} | scale
                )
                offset += stored.nbytes
                yield i + 1
        index = {
            "format": CACHE_FORMAT,
            "dtype": dtype,
            "plane": plane,
            "landmarks": landmarks.to_dict(),
            "volumes": entries,
        }
        (partial / "index.json").write_text(json.dumps(index))
        try:
            partial.rename(target)
        except OSError:  # another process completed the same entry first
            if not (target / "index.json").is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return CachedVolumes(target)


_END = object()


def fit_landmarks_streaming(cases: Sequence[Case]) -> Generator[int, None, Landmarks]:
    """:func:`~napari_elnet.transforms.intensity.fit_landmarks` over the clipped 256 x 256
    volumes of ``cases``, loaded one at a time (yields the count loaded).

    The fit consumes the volumes on a helper thread through a queue of one, so at most two
    volumes are in memory and the caller can report progress between them.
    """
    handoff: queue.Queue[object] = queue.Queue(maxsize=1)
    outcome: dict[str, object] = {}

    def drain() -> Iterator[np.ndarray]:
        while (item := handoff.get()) is not _END:
            yield item  # type: ignore[misc]

    def consume() -> None:
        try:
            outcome["landmarks"] = fit_landmarks(drain())
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    def put(item: object) -> None:
        while thread.is_alive():
            try:
                handoff.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=consume, name="landmark-fit", daemon=True)
    thread.start()
    try:
        for i, case in enumerate(cases):
            put(clip_bright(resize_slices(case.volume()).numpy()))
            yield i + 1
    finally:
        put(_END)
        thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["landmarks"]  # type: ignore[return-value]


def cache_steps(
    sets: Sequence[Sequence[Case]],
    landmarks: Landmarks | None,
    plane: str,
    config: CacheConfig,
    inputs: Sequence[str | os.PathLike[str]] = (),
) -> Generator[Progress, None, tuple[list[CachedVolumes], Landmarks]]:
    """Prepare ``sets`` (e.g. training and validation cases) into the cache, reusing entries.

    Args:
        sets: Case lists; with ``landmarks`` None they are fit on ``sets[0]`` first.
        landmarks: The run's intensity landmarks, or None to fit them.
        plane: The plane of the cases' volumes (part of the key).
        config: Cache folder and dtype.
        inputs: Data folders the cache must not lie in (besides the cases' own folders).

    Yields:
        (done, total) after every volume read.

    Returns:
        One :class:`CachedVolumes` per set, and the landmarks.
    """
    folder = open_cache_folder(config, [case for cases in sets for case in cases], inputs)
    total = sum(len(cases) for cases in sets) + (len(sets[0]) if landmarks is None else 0)
    done = 0
    if landmarks is None:
        fitting = fit_landmarks_streaming(sets[0])
        while True:
            try:
                done = next(fitting)
            except StopIteration as stop:
                landmarks = stop.value
                break
            yield done, total
    out = []
    for cases in sets:
        target = folder / cache_key(cases, plane, landmarks, config.dtype)
        if (target / "index.json").is_file():
            out.append(CachedVolumes(target))
            done += len(cases)
            yield done, total
            continue
        base = done
        writing = _write_entry(target, cases, landmarks, plane, config.dtype)
        while True:
            try:
                done = base + next(writing)
            except StopIteration as stop:
                out.append(stop.value)
                break
            yield done, total
    return out, landmarks


def in_order(
    volumes: Sequence[torch.Tensor] | CachedVolumes,
    order: Sequence[int] | np.ndarray,
    config: CacheConfig | None = None,
) -> Iterator[torch.Tensor]:
    """The volumes at ``order``, one by one: from memory, or read ahead by DataLoader workers.

    A list (the in-memory path) is indexed directly; a :class:`CachedVolumes` is read by a
    ``DataLoader`` with ``config.workers`` workers in exactly this order (no batching, no
    shuffling: the order, and so the results, do not depend on the number of workers).
    """
    indices = [int(i) for i in order]
    if not isinstance(volumes, CachedVolumes):
        return (volumes[i] for i in indices)
    config = config or CacheConfig()
    loader = DataLoader(
        volumes,
        batch_size=None,
        sampler=indices,
        num_workers=config.workers,
        prefetch_factor=config.prefetch if config.workers else None,
    )
    return iter(loader)
