"""A long-lived fuzz worker: imports everything once, then runs case after case and checks the contract.

Protocol (JSON lines): the parent writes ``{"index": i, "cli": null | "info" | "predict"}`` to stdin;
the worker writes back one result object per request on its original stdout (the process's fd 1 is
redirected to /dev/null, so nothing the code under test prints can corrupt the protocol). The first
line it writes is ``{"ready": true, ...}`` once imports and seeds are done.

Run as ``python -m fuzz.worker WORKDIR SEED MEMORY_BYTES [--no-shared]``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import resource
import shutil
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

BOMB_SIZES = (64 * 2**20, 2**30)
_BOMB_CACHE = Path("/tmp/napari-elnet-fuzz-bombs")


def reason_class(message: str) -> str:
    """A message reduced to its kind: paths, numbers, quoted values and hex removed, first words kept."""
    text = re.sub(r"(/[^\s:;,()]+)+", "<path>", message)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "<v>", text)
    text = re.sub(r"0x[0-9a-fA-F]+|[-+]?\d[\d.e+-]*", "#", text)
    text = re.sub(r"\([^()]*\)", "(..)", text)
    return " ".join(text.replace("<path>: ", "").split()[:8])[:90]


def _bombs() -> tuple[bytes, ...]:
    """Raw deflate streams of zeros of ``BOMB_SIZES`` (built once, cached under /tmp)."""
    from fuzz.mutate import zero_bomb

    _BOMB_CACHE.mkdir(exist_ok=True)
    out = []
    for size in BOMB_SIZES:
        path = _BOMB_CACHE / f"zeros-{size}.deflate"
        if not path.is_file():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(zero_bomb(size))
            os.replace(tmp, path)
        out.append(path.read_bytes())
    return tuple(out)


def _violation(kind: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"outcome": "violation", "class": kind, "detail": detail[-800:], **extra}


def _check_series(series: list[Any]) -> dict[str, Any] | None:
    import numpy as np

    for s in series:
        if not np.all(np.isfinite(s.array)):
            return _violation("non-finite array", s.name)
        if not all(math.isfinite(v) and v > 0 for v in s.spacing):
            return _violation("invalid spacing", f"{s.name}: {s.spacing}")
    return None


def run_study(path: str) -> dict[str, Any]:
    """load_study: series, or NoUsableSeriesError; every warning names a file."""
    from napari_elnet.common.errors import ElnetWarning, NoUsableSeriesError
    from napari_elnet.io import load_study

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            series = load_study(path)
        except NoUsableSeriesError as error:
            result: dict[str, Any] = {"outcome": "refused", "class": reason_class(str(error))}
        except MemoryError:
            return _violation("MemoryError", traceback.format_exc(limit=-4))
        except Exception as error:  # the contract: nothing else escapes
            return _violation(f"uncaught {type(error).__name__}", traceback.format_exc(limit=-6))
        else:
            bad = _check_series(series)
            if bad is not None:
                return bad
            result = {"outcome": "loaded", "class": f"{len(series)} series"}
    if path and Path(path).is_dir():  # the worklist's header-only discovery of the same folder
        bad = _check_discovery(path)
        if bad is not None:
            return bad
    problems = []
    for warning in caught:
        if not issubclass(warning.category, ElnetWarning):
            continue
        text = str(warning.message)
        file_part, _, reason = text.partition(": ")
        if not file_part or not reason or not (path and file_part.startswith(path[:1])):
            return _violation("warning without file", text)
        problems.append(reason_class(reason))
    result["problems"] = problems
    return result


def _check_discovery(path: str) -> dict[str, Any] | None:
    """discover_studies: studies and per-file problems; NoUsableSeriesError is the only exception."""
    from napari_elnet.common.errors import NoUsableSeriesError
    from napari_elnet.worklist.discovery import discover_studies

    try:
        discover_studies(path)
    except NoUsableSeriesError:
        return None
    except MemoryError:
        return _violation("discovery MemoryError", traceback.format_exc(limit=-4))
    except Exception as error:  # the contract: nothing else escapes
        return _violation(
            f"discovery uncaught {type(error).__name__}", traceback.format_exc(limit=-6)
        )
    return None


def _loader_contract(
    load: Any, path: str, refusal: type[Exception]
) -> tuple[Any, dict[str, Any] | None]:
    """Call ``load(path)``: its value, or the verdict when it raised (``refusal`` naming the file
    is the only allowed exception)."""
    try:
        return load(path), None
    except refusal as error:
        if not str(error).startswith(path):
            return None, _violation("error without file", str(error))
        return None, {"outcome": "refused", "class": reason_class(str(error))}
    except MemoryError:
        return None, _violation("MemoryError", traceback.format_exc(limit=-4))
    except Exception as error:  # the contract: nothing else escapes
        return None, _violation(f"uncaught {type(error).__name__}", traceback.format_exc(limit=-6))


def run_model(path: str) -> dict[str, Any]:
    """load_model: a model, or ModelFileError naming the file."""
    from napari_elnet.common.errors import ModelFileError
    from napari_elnet.models.model_file import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, verdict = _loader_contract(load_model, path, ModelFileError)
    return verdict or {"outcome": "loaded", "class": "model"}


def run_pickle(path: str) -> dict[str, Any]:
    """load_array_pickle: an array, or ArrayPickleError naming the file."""
    from napari_elnet.datasets.safe_pickle import ArrayPickleError, load_array_pickle

    array, verdict = _loader_contract(
        lambda name: load_array_pickle(Path(name)), path, ArrayPickleError
    )
    if verdict is not None:
        return verdict
    if array.dtype.kind not in "biufc":
        return _violation("non-numeric array", str(array.dtype))
    return {"outcome": "loaded", "class": f"array {array.ndim}-D"}


def run_cli(command: str, path: str, out: Path) -> dict[str, Any]:
    """The CLI in-process: exit 0 or 2, and exactly one line on stderr when it exits 2; JSON valid."""
    from napari_elnet.cli import main

    argv = [command, path]
    if command == "predict":
        argv += ["--json", str(out / "result.json"), "--device", "cpu"]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
        except MemoryError:
            return _violation("cli MemoryError", traceback.format_exc(limit=-4))
        except Exception as error:  # the contract: nothing else escapes
            return _violation(
                f"cli uncaught {type(error).__name__}", traceback.format_exc(limit=-6)
            )
    lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
    if code not in (0, 2):
        return _violation("cli exit code", f"{command} exit {code}: {stderr.getvalue()[:300]}")
    if code == 2 and len(lines) != 1:
        return _violation("cli stderr lines", f"{command}: {len(lines)} lines: {lines[:4]}")
    if command == "predict" and code == 0:
        try:
            json.loads(
                (out / "result.json").read_text(),
                parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)),
            )
        except (OSError, ValueError) as error:
            return _violation("cli invalid JSON", str(error))
    return {"outcome": f"cli-{code}", "class": f"{command} exit {code}"}


def main(argv: list[str]) -> None:
    """Worker loop (see the module docstring)."""
    workdir, seed, memory = Path(argv[0]), int(argv[1]), int(argv[2])
    shared = "--no-shared" not in argv
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    logging.disable(logging.CRITICAL)  # pydicom logs every damaged element
    began = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    import napari_elnet.cli
    import napari_elnet.datasets.safe_pickle
    import napari_elnet.io.study
    import napari_elnet.models.model_file  # noqa: F401
    from fuzz.cases import make_case
    from fuzz.seeds import build_seeds

    seeds = build_seeds(shared=shared)
    bombs = _bombs()
    startup = resource.getrusage(resource.RUSAGE_SELF)
    startup_cpu = startup.ru_utime + startup.ru_stime
    current = workdir / "current"
    protocol.write(json.dumps({"ready": True, "seconds": time.perf_counter() - began}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        index = request["index"]
        shutil.rmtree(current, ignore_errors=True)
        current.mkdir(parents=True)
        started = time.perf_counter()
        try:
            case = make_case(index, seed, seeds, current, bombs)
        except Exception as error:  # a generator bug: reported, never counted as an input
            result = {"outcome": "generator-error", "class": type(error).__name__,
                      "detail": traceback.format_exc(limit=-4)}  # fmt: skip
            protocol.write(json.dumps({"index": index, **result}) + "\n")
            continue
        protocol.write(json.dumps({"index": index, "started": case.label}) + "\n")
        run = {"study": run_study, "model": run_model, "pickle": run_pickle}[case.target]
        result = run(case.path)
        cli = request.get("cli")
        if cli and case.target == "study" and result["outcome"] != "violation":
            cli_result = run_cli(cli, case.path or "", workdir)
            if cli_result["outcome"] == "violation":
                result = cli_result
            result["cli"] = cli_result["class"]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        peak_kib = usage.ru_maxrss
        protocol.write(
            json.dumps(
                {
                    "index": index,
                    "kind": case.kind,
                    "target": case.target,
                    "label": case.label,
                    "seconds": round(time.perf_counter() - started, 4),
                    "peak_mib": peak_kib // 1024,
                    "cpu_seconds": round(usage.ru_utime + usage.ru_stime - startup_cpu, 3),
                    **result,
                }
            )
            + "\n"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
