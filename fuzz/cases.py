"""Input number -> one fuzz case on disk, deterministic from (seed, number).

Kinds and their share of the inputs (``WEIGHTS``): byte-mutated DICOM, structurally mutated DICOM
(single files and 3-slice series with a mutated slice), deflate bombs, ``.npy`` files, model files,
array pickles and special files (FIFOs, device symlinks, folders named like files, loops).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from fuzz import mutate
from fuzz.seeds import Seeds

#: kind -> weight (relative share of the inputs)
WEIGHTS: dict[str, int] = {
    "dicom-bytes": 30,
    "dicom-struct": 26,
    "dicom-series": 8,
    "deflate": 2,
    "npy": 10,
    "model": 10,
    "pickle": 11,
    "special": 3,
}
_KINDS = tuple(WEIGHTS)
_CUMULATIVE = tuple(sum(WEIGHTS[k] for k in _KINDS[: i + 1]) for i in range(len(_KINDS)))


@dataclass(frozen=True)
class Case:
    """One input: what to call (``target``: study, model or pickle) on which path."""

    index: int
    kind: str
    target: str
    path: str
    label: str


def _kind(rng: random.Random) -> str:
    pick = rng.randrange(_CUMULATIVE[-1])
    return next(k for k, top in zip(_KINDS, _CUMULATIVE, strict=True) if pick < top)


def _dicom_seed(rng: random.Random, seeds: Seeds) -> tuple[str, bytes]:
    """Generated seeds most of the time, real files (small ones preferred) otherwise."""
    generated = [s for s in seeds.dicom if not s[0].startswith("shared_")]
    shared = [s for s in seeds.dicom if s[0].startswith("shared_")]
    if shared and rng.random() < 0.2:
        small = [s for s in shared if len(s[1]) < 300_000]
        return rng.choice(small if small and rng.random() < 0.95 else shared)
    return rng.choice(generated)


def make_case(index: int, seed: int, seeds: Seeds, folder: Path, bombs: tuple[bytes, ...]) -> Case:
    """Write case ``index`` into the empty ``folder`` and say how to run it.

    Args:
        index: Input number.
        seed: Run seed; (seed, index) determines the case.
        seeds: Seed inputs.
        folder: An empty folder for this case's files.
        bombs: Raw deflate streams of zeros to append in deflate-bomb cases.
    """
    rng = random.Random(f"{seed}:{index}")
    kind = _kind(rng)
    if kind == "dicom-bytes":
        name, data = _dicom_seed(rng, seeds)
        if rng.random() < 0.4:
            mutated, label = mutate.mutate_header_bytes(rng, data, 1024)
        else:
            mutated, label = mutate.mutate_bytes(rng, data)
        (folder / _dcm_name(name)).write_bytes(mutated)
        return Case(index, kind, "study", str(folder), label)
    if kind == "dicom-struct":
        name, data = _dicom_seed(rng, seeds)
        mutated, label = mutate.mutate_dicom(rng, data)
        path = folder / _dcm_name(name)
        path.write_bytes(mutated)
        return Case(index, kind, "study", str(path if rng.random() < 0.5 else folder), label)
    if kind == "dicom-series":
        stack = rng.choice(seeds.stacks)
        victim = rng.randrange(len(stack))
        label = "series"
        for i, (name, data) in enumerate(stack):
            if i == victim:
                data, label = mutate.mutate_dicom(rng, data)
            (folder / name).write_bytes(data)
        return Case(index, kind, "study", str(folder), f"series:{label}")
    if kind == "deflate":
        name, data = rng.choice([s for s in seeds.dicom if not s[0].startswith("shared_")][:1])
        mutated, label = mutate.deflate_bomb(rng, data, rng.choice(bombs))
        (folder / "bomb.dcm").write_bytes(mutated)
        return Case(index, kind, "study", str(folder), label)
    if kind == "npy":
        name, data = rng.choice(seeds.npy)
        mutated, label = mutate.mutate_npy(rng, data)
        plane = folder / rng.choice(("sagittal", "coronal", "axial", "other"))
        plane.mkdir()
        stem = rng.choice((name[:-4], name[:-4], "case²", "x" * 30, "0" * 25))
        path = plane / f"{stem}.npy"
        path.write_bytes(mutated)
        return Case(index, kind, "study", str(path if rng.random() < 0.5 else folder), label)
    if kind == "model":
        name, data = rng.choice(seeds.model)
        mutated, label = mutate.mutate_model(rng, data)
        path = folder / "model.pt"
        path.write_bytes(mutated)
        return Case(index, kind, "model", str(path), label)
    if kind == "pickle":
        name, data = rng.choice(seeds.pickle)
        mutated, label = mutate.mutate_pickle(rng, data)
        path = folder / "volume.pck"
        path.write_bytes(mutated)
        return Case(index, kind, "pickle", str(path), label)
    return _special(index, rng, seeds, folder)


def _dcm_name(name: str) -> str:
    return name if name.endswith(".dcm") else f"{name}.dcm"


def _special(index: int, rng: random.Random, seeds: Seeds, folder: Path) -> Case:
    """FIFOs, device symlinks, loops, folders named like files, empty files, the empty path."""
    choice = rng.randrange(9)
    _, slice_bytes = seeds.stacks[0][0]
    (folder / "ok.dcm").write_bytes(slice_bytes)
    target = rng.choice(("study", "study", "model", "pickle"))
    suffix = {"study": rng.choice((".dcm", ".npy", "")), "model": ".pt", "pickle": ".pck"}[target]
    entry = folder / f"special{suffix}"
    if choice == 0:
        os.mkfifo(entry)
        label = "special:fifo"
    elif choice == 1:
        entry.symlink_to("/dev/zero")
        label = "special:dev-zero"
    elif choice == 2:
        entry.symlink_to("/dev/null")
        label = "special:dev-null"
    elif choice == 3:
        fifo = folder / "hidden-fifo"
        os.mkfifo(fifo)
        entry.symlink_to(fifo)
        label = "special:symlink-fifo"
    elif choice == 4:
        entry.symlink_to(folder / "nowhere")
        label = "special:dangling"
    elif choice == 5:
        (folder / "loop_b").symlink_to(entry)
        entry.symlink_to(folder / "loop_b")
        label = "special:loop"
    elif choice == 6:
        entry.mkdir()
        (entry / "inner.dcm").write_bytes(slice_bytes)
        label = "special:folder"
    elif choice == 7:
        entry.write_bytes(b"")
        label = "special:empty"
    else:
        return Case(index, "special", "study", "", "special:empty-path")
    path = str(entry if target != "study" or rng.random() < 0.5 else folder)
    return Case(index, "special", target, path, label)
