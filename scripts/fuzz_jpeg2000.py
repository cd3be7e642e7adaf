"""Fuzz the JPEG 2000 decoding path: damaged codestreams inside DICOM files, through ``load_study``.

Each input is a JPEG 2000 DICOM file (the real one of ``../shared/data/encodings`` when present,
and pydicom's ``MR_small.dcm`` re-encoded lossless) with 1-8 byte mutations after the codestream's
start (bit flips, random bytes, JPEG 2000 marker bytes, random 32-bit words), written to its own
folder and loaded with ``napari_elnet.io.load_study`` in a child process (``RLIMIT_AS`` 4 GB, 20 s
per input). A file may load or be refused with an exception; the child dying (a signal from the C
decoder) or hanging is a failure, and the folders of those inputs are kept for reproduction (the
rest of that batch is counted as not run).

Usage: ``python scripts/fuzz_jpeg2000.py --inputs 10000 --seed 2 [--out DIR]``; prints the counts
as JSON and exits 1 when any input crashed or hung the child.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED_J2K = Path(__file__).resolve().parents[2] / "shared" / "data" / "encodings" / "jpeg_2000.dcm"
BATCH = 50
SECONDS_PER_INPUT = 20
SOC_SIZ = b"\xff\x4f\xff\x51"
MARKERS = (b"\xff\xff", b"\x00\x00", b"\x7f\xff", b"\xff\x90", b"\xff\x93", b"\xff\xd9")


def child(folders: list[str]) -> None:
    """Load each folder, printing one JSON line ``[folder, outcome]`` per input."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    import warnings

    from napari_elnet.io import load_study

    warnings.simplefilter("ignore")
    for folder in folders:
        try:
            load_study(folder)
            outcome = "loaded"
        except Exception as exc:  # a refusal is the contract; only a dead child is a failure
            outcome = type(exc).__name__
        print(json.dumps([folder, outcome]), flush=True)


def seeds() -> list[bytes]:
    """JPEG 2000 DICOM files to mutate."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import JPEG2000Lossless

    found = [SHARED_J2K.read_bytes()] if SHARED_J2K.is_file() else []
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return [*found, buffer.getvalue()]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """1-8 mutations after the codestream's start."""
    out = bytearray(data)
    start = max(0, out.find(SOC_SIZ))
    for _ in range(rng.randint(1, 8)):
        kind, at = rng.randrange(4), rng.randrange(start, len(out))
        if kind == 0:
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            out[at] = rng.randrange(256)
        elif kind == 2:
            out[at : at + 2] = rng.choice(MARKERS)
        else:
            out[at : at + 4] = rng.randrange(1 << 32).to_bytes(4, "little")
    return bytes(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, help="folder for the inputs (default: a new temp folder)"
    )
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child)
        return 0
    rng = random.Random(args.seed)
    sources = seeds()
    work = args.out or Path(tempfile.mkdtemp(prefix="napari-elnet-fuzz-j2k-"))
    work.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    failures: list[dict[str, object]] = []
    for start in range(0, args.inputs, BATCH):
        folders = []
        for index in range(start, min(args.inputs, start + BATCH)):
            folder = work / f"input-{index:06d}"
            folder.mkdir(exist_ok=True)
            (folder / "image.dcm").write_bytes(mutate(rng, rng.choice(sources)))
            folders.append(str(folder))
        command = [sys.executable, __file__, "--child", *folders]
        try:
            run = subprocess.run(
                command, capture_output=True, text=True, timeout=SECONDS_PER_INPUT * len(folders)
            )
            done = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("[")]
            if run.returncode != 0:
                failures.append(
                    {"input": folders[len(done)], "returncode": run.returncode,
                     "stderr": run.stderr[-400:]}
                )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            done = [json.loads(line) for line in out.splitlines() if line.startswith("[")]
            failures.append({"input": folders[len(done)], "returncode": "timeout"})
        for _, outcome in done:
            counts[outcome] = counts.get(outcome, 0) + 1
        unrun = len(folders) - len(done) - 1  # after the input that killed or hung the child
        if unrun > 0:
            counts["not run (the batch's child had died)"] = (
                counts.get("not run (the batch's child had died)", 0) + unrun
            )
        kept = {str(f["input"]) for f in failures}
        for folder in folders:
            if folder not in kept:
                for path in Path(folder).iterdir():
                    path.unlink()
                Path(folder).rmdir()
    print(json.dumps({"inputs": args.inputs, "outcomes": counts, "failures": failures}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
