"""The fuzz parent: hands input numbers to long-lived workers, watches them, and sums the outcomes.

A worker whose current input runs longer than ``timeout`` seconds is killed and replaced: the input
counts as a hang. A worker that dies (a signal, a native crash, the kernel refusing memory) counts as
a crash. In both cases the input's files are copied to ``out/repro/<index>-<what>/`` with a note of
how to rerun it. Worker start-up (imports, seeds) never counts against an input's time.
"""

from __future__ import annotations

import collections
import json
import os
import selectors
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 600.0


@dataclass(frozen=True)
class FuzzConfig:
    """How a fuzz run is done.

    Attributes:
        inputs: Number of inputs.
        seed: Run seed; (seed, input number) determines every input.
        workers: Worker processes run at the same time.
        timeout: Seconds one input may take before its worker is killed (a hang).
        memory_bytes: RLIMIT_AS of each worker (0: none).
        cli_every: Every n-th study input is also run through the CLI ``info`` (0: never).
        predict_every: Every n-th study input is also run through the CLI ``predict`` (0: never).
        shared: Use ../shared/data scanner files as seeds when present.
        out: Folder for logs, the summary and reproduction copies.
        nice: Niceness added to the workers.
    """

    inputs: int = 1000
    seed: int = 0
    workers: int = 1
    timeout: float = 20.0
    memory_bytes: int = 4 * 2**30
    cli_every: int = 500
    predict_every: int = 0
    shared: bool = True
    out: Path = Path("/tmp/napari-elnet-fuzz")
    nice: int = 0


@dataclass
class Totals:
    """Counts of a run."""

    inputs: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    by_kind: collections.Counter[str] = field(default_factory=collections.Counter)
    classes: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: collections.Counter[str] = field(default_factory=collections.Counter)
    labels: collections.Counter[str] = field(default_factory=collections.Counter)
    cli: collections.Counter[str] = field(default_factory=collections.Counter)
    violations: list[dict[str, Any]] = field(default_factory=list)
    hangs: list[dict[str, Any]] = field(default_factory=list)
    crashes: list[dict[str, Any]] = field(default_factory=list)
    generator_errors: list[dict[str, Any]] = field(default_factory=list)
    peak_mib: int = 0
    slowest: float = 0.0
    worker_starts: int = 0
    cpu_by_worker: dict[int, float] = field(default_factory=dict)
    cpu_closed: float = 0.0

    def summary(self, seconds: float, config: FuzzConfig) -> dict[str, Any]:
        """Plain JSON-able summary."""
        return {
            "inputs": self.inputs,
            "seconds": round(seconds, 1),
            "inputs_per_second": round(self.inputs / seconds, 1) if seconds else None,
            "uncaught_or_contract_violations": len(self.violations),
            "hangs_over_timeout": len(self.hangs),
            "crashes": len(self.crashes),
            "memory_errors": sum(1 for v in self.violations if "MemoryError" in v["class"]),
            "generator_errors": len(self.generator_errors),
            "worker_peak_rss_mib": self.peak_mib,
            "worker_cpu_seconds": round(self.cpu_closed + sum(self.cpu_by_worker.values()), 1),
            "cpu_ms_per_input": round(
                1000 * (self.cpu_closed + sum(self.cpu_by_worker.values())) / max(1, self.inputs), 2
            ),
            "slowest_input_seconds": round(self.slowest, 3),
            "worker_starts": self.worker_starts,
            "outcomes": dict(self.outcomes),
            "by_kind": dict(sorted(self.by_kind.items())),
            "refusal_classes": dict(self.classes.most_common(60)),
            "file_problem_classes": dict(self.problems.most_common(60)),
            "mutation_labels": dict(self.labels.most_common(80)),
            "cli": dict(self.cli),
            "violation_samples": self.violations[:50],
            "hang_samples": self.hangs[:50],
            "crash_samples": self.crashes[:50],
            "generator_error_samples": self.generator_errors[:10],
            "config": {
                "inputs": config.inputs,
                "seed": config.seed,
                "workers": config.workers,
                "timeout": config.timeout,
                "memory_bytes": config.memory_bytes,
                "cli_every": config.cli_every,
                "predict_every": config.predict_every,
                "shared": config.shared,
            },
        }


class _Worker:
    """One worker process and the input it is running."""

    def __init__(self, number: int, config: FuzzConfig, log: IO[str]) -> None:
        self.workdir = config.out / f"worker{number}"
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)
        command = [sys.executable, "-m", "fuzz.worker", str(self.workdir), str(config.seed),
                   str(config.memory_bytes)] + ([] if config.shared else ["--no-shared"])  # fmt: skip
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
        )
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        nice = config.nice
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=REPO,
            env=env,
            text=True,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
        self.index: int | None = None
        self.label = ""
        self.deadline = time.monotonic() + STARTUP_SECONDS
        self.ready = False
        self.buffer = ""

    def send(self, index: int, cli: str | None, timeout: float) -> None:
        assert self.proc.stdin is not None
        self.index, self.label = index, ""
        self.deadline = time.monotonic() + timeout
        self.proc.stdin.write(json.dumps({"index": index, "cli": cli}) + "\n")
        self.proc.stdin.flush()

    def kill(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            return None


def _keep_input(worker: _Worker, config: FuzzConfig, what: str) -> str:
    """Copy the worker's current input to out/repro/ and return where it went."""
    target = config.out / "repro" / f"{worker.index}-{what}"
    shutil.rmtree(target, ignore_errors=True)
    source = worker.workdir / "current"
    if source.exists():
        shutil.copytree(source, target, symlinks=True, ignore_dangling_symlinks=True,
                        copy_function=_copy_regular)  # fmt: skip
    target.mkdir(parents=True, exist_ok=True)
    (target / "README.txt").write_text(
        f"input {worker.index} ({worker.label}) of seed {config.seed}: {what}\n"
        f"rerun: python scripts/fuzz.py --seed {config.seed} --only {worker.index}\n"
    )
    return str(target)


def _copy_regular(src: str, dst: str) -> None:
    """Copy regular files only (a FIFO input is recreated by rerunning, never opened here)."""
    if Path(src).is_file():
        shutil.copy2(src, dst)


def _record(totals: Totals, result: dict[str, Any], worker: int) -> None:
    totals.inputs += 1
    totals.cpu_by_worker[worker] = float(result.get("cpu_seconds", 0.0))
    outcome = result["outcome"]
    totals.outcomes[outcome] += 1
    totals.by_kind[f"{result.get('kind')}:{outcome}"] += 1
    totals.labels[str(result.get("label"))] += 1
    totals.peak_mib = max(totals.peak_mib, int(result.get("peak_mib", 0)))
    totals.slowest = max(totals.slowest, float(result.get("seconds", 0.0)))
    if outcome == "violation":
        totals.violations.append(result)
    elif outcome == "refused":
        totals.classes[f"{result.get('target')}: {result['class']}"] += 1
    for problem in result.get("problems", ()):
        totals.problems[problem] += 1
    if "cli" in result:
        totals.cli[result["cli"]] += 1


def run(
    config: FuzzConfig, only: list[int] | None = None, progress: IO[str] | None = None
) -> dict[str, Any]:
    """Run the fuzz inputs (all of them, or only the numbers in ``only``) and return the summary."""
    config.out.mkdir(parents=True, exist_ok=True)
    indices = list(only) if only is not None else list(range(config.inputs))
    pending = collections.deque(indices)
    totals = Totals()
    began = time.monotonic()
    with (config.out / "workers.log").open("a") as log:
        workers = [_Worker(n, config, log) for n in range(min(config.workers, len(indices)))]
        totals.worker_starts = len(workers)
        selector = selectors.DefaultSelector()
        for worker in workers:
            assert worker.proc.stdout is not None
            selector.register(worker.proc.stdout, selectors.EVENT_READ, worker)
        study_count = 0

        def dispatch(worker: _Worker) -> None:
            nonlocal study_count
            if not pending:
                worker.index = None
                return
            index = pending.popleft()
            study_count += 1
            cli = None
            if config.predict_every and study_count % config.predict_every == 0:
                cli = "predict"
            elif config.cli_every and study_count % config.cli_every == 0:
                cli = "info"
            worker.send(index, cli, config.timeout * (6 if cli == "predict" else 1))

        def replace(worker: _Worker, number: int) -> _Worker:
            totals.cpu_closed += totals.cpu_by_worker.pop(id(worker), 0.0)
            selector.unregister(worker.proc.stdout)
            fresh = _Worker(number, config, log)
            totals.worker_starts += 1
            selector.register(fresh.proc.stdout, selectors.EVENT_READ, fresh)
            return fresh

        last_report = time.monotonic()
        while any(w.index is not None or not w.ready for w in workers):
            now = time.monotonic()
            wait = max(
                0.05, min(w.deadline for w in workers if w.index is not None or not w.ready) - now
            )
            for key, _ in selector.select(timeout=min(wait, 5.0)):
                worker = key.data
                n = workers.index(worker)
                chunk = os.read(worker.proc.stdout.fileno(), 1 << 16)
                if not chunk:  # the worker died
                    code = worker.kill()
                    if worker.index is not None:
                        where = _keep_input(worker, config, f"crash{code}")
                        totals.crashes.append({"index": worker.index, "label": worker.label,
                                               "returncode": code, "input": where})  # fmt: skip
                        totals.inputs += 1
                        totals.outcomes["crash"] += 1
                    elif not worker.ready:
                        raise RuntimeError(
                            f"fuzz worker failed to start (exit {code}); see {log.name}"
                        )
                    workers[n] = replace(worker, n)
                    continue
                worker.buffer += chunk.decode()
                *lines, worker.buffer = worker.buffer.split("\n")
                for line in lines:
                    message = json.loads(line)
                    if message.get("ready"):
                        worker.ready = True
                        dispatch(worker)
                    elif "started" in message:
                        worker.label = message["started"]
                    elif message.get("outcome") == "generator-error":
                        totals.generator_errors.append(message)
                        dispatch(worker)
                    else:
                        _record(totals, message, id(worker))
                        dispatch(worker)
            now = time.monotonic()
            for n, worker in enumerate(workers):
                if now > worker.deadline and (worker.index is not None or not worker.ready):
                    if not worker.ready:
                        raise RuntimeError(f"fuzz worker did not start in {STARTUP_SECONDS} s")
                    worker.kill()
                    where = _keep_input(worker, config, "hang")
                    totals.hangs.append(
                        {"index": worker.index, "label": worker.label, "input": where}
                    )
                    totals.inputs += 1
                    totals.outcomes["hang"] += 1
                    workers[n] = replace(worker, n)
            if progress is not None and time.monotonic() - last_report > 60:
                last_report = time.monotonic()
                elapsed = last_report - began
                progress.write(
                    f"{time.strftime('%H:%M:%S')} {totals.inputs}/{len(indices)} inputs, "
                    f"{totals.inputs / elapsed:.1f}/s, violations {len(totals.violations)}, "
                    f"hangs {len(totals.hangs)}, crashes {len(totals.crashes)}\n"
                )
                progress.flush()
        for worker in workers:
            if worker.proc.stdin is not None:
                worker.proc.stdin.close()
            worker.kill()
    summary = totals.summary(time.monotonic() - began, config)
    (config.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
