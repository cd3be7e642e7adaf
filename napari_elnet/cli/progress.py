"""Terminal status lines: one ``\\r``-rewritten line for training epochs and worklist runs."""

from __future__ import annotations

import math
import time
from typing import Any, TextIO

from napari_elnet.common.clock import clock


class StatusLine:
    """One ``\\r``-rewritten status line on a stream, redrawn at most every ``interval`` seconds."""

    WIDTH = 24

    def __init__(self, stream: TextIO, interval: float = 0.2) -> None:
        self.stream = stream
        self.interval = interval
        self.last_write = 0.0
        self.length = 0

    def due(self, force: bool = False) -> bool:
        """Whether to redraw now (always when ``force``)."""
        now = time.monotonic()
        if now - self.last_write < self.interval and not force:
            return False
        self.last_write = now
        return True

    def bar(self, done: int, total: int) -> str:
        """``[###.....]`` for ``done`` of ``total``."""
        filled = round(self.WIDTH * done / max(total, 1))
        return "[" + "#" * filled + "." * (self.WIDTH - filled) + "]"

    def show(self, parts: list[str]) -> None:
        """Replace the line with ``parts`` joined by ``|``."""
        line = " | ".join(parts)
        self.stream.write("\r" + line.ljust(self.length))
        self.length = len(line)
        self.stream.flush()

    def newline(self) -> None:
        """Keep the current line and start a new one."""
        if self.length:
            self.stream.write("\n")
            self.stream.flush()
        self.length = 0

    def finish(self) -> None:
        """End the current line."""
        self.newline()


class ProgressBar(StatusLine):
    """Training progress: one line per epoch (and fold), kept when the epoch ends."""

    def __init__(self, stream: TextIO, interval: float = 0.2) -> None:
        super().__init__(stream, interval)
        self.line_key: tuple[object, ...] | None = None

    def update(self, progress: Any) -> None:
        """Show one :class:`~napari_elnet.training.loop.TrainProgress`."""
        key = (progress.fold, progress.epoch)
        if self.line_key is not None and key != self.line_key:
            self.newline()  # keep the finished epoch's line
        self.line_key = key
        if not self.due(force=progress.step == progress.steps):
            return
        fold = f"fold {progress.fold + 1} " if progress.fold is not None else ""
        epoch = (
            "prepare"
            if progress.phase == "prepare"
            else f"epoch {progress.epoch}/{progress.epochs}"
        )
        bar = self.bar(progress.step, progress.steps)
        parts = [f"{fold}{epoch} {progress.phase:8s} {bar} {progress.step}/{progress.steps}"]
        if not math.isnan(progress.loss):
            parts.append(f"loss {progress.loss:.4f}")
        if progress.metrics:
            parts.append(f"last val auc {progress.metrics.get('roc_auc', math.nan):.3f}")
        parts.append(f"{progress.volumes_per_s:.1f} vol/s")
        parts.append(clock(progress.elapsed))
        self.show(parts)


class WorklistBar(StatusLine):
    """Progress of a worklist run: studies done, rate and ETA."""

    def update(self, progress: Any) -> None:
        """Show one :class:`~napari_elnet.worklist.WorklistProgress`."""
        if not self.due(force=progress.stage in ("study", "done")):
            return
        run = progress.done - progress.skipped
        rate = 60.0 * run / progress.elapsed if progress.elapsed > 0 and run else 0.0
        current = f"{progress.study} {progress.task}".strip() if progress.stage == "task" else ""
        parts = [
            f"{self.bar(progress.done, progress.total)} {progress.done}/{progress.total} studies"
        ]
        if current:
            parts.append(current)
        parts.append(f"{progress.errors} error(s)")
        parts.append(f"{rate:.1f} studies/min")
        parts.append(f"elapsed {clock(progress.elapsed)}")
        parts.append(f"ETA {clock(progress.eta)}")
        self.show(parts)
