"""GUI benchmark: Run to heatmaps, event-loop stalls, Cancel and Stop latencies, in a real napari.

Opens a real napari viewer (run under ``xvfb-run``), the phantom sample study and the "ELNet triage"
widget with the shipped default models, clicks Run ``--runs`` times and prints, per run, the time from
the click to the heatmap layers being in the viewer and the longest gap between two turns of the Qt
event loop (a 5 ms probe timer). Then ``--cancels`` times: Run, Cancel at the first progress, and
the time from the Cancel click to the widget being back at "Run" (the run stops at its next
stage). Then the "ELNet training" widget on a small generated phantom MRNet set: Start, Stop after
the first validated epoch, and the time from the Stop click to the widget being back at "Start"
(``--stops`` times; 0 skips it). These figures were assertions in the GUI tests once; a test never
times, so they live here. Usage:
``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_gui.py [--runs 5]``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import napari
from qtpy.QtCore import Qt, QTimer
from qtpy.QtTest import QTest

from napari_elnet.plugin.demo import wait_for


def _click(button) -> None:
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def idle_stall(seconds: float) -> float:
    """The longest event-loop gap (s) over ``seconds`` with nothing running: the machine's share."""
    ticks: list[float] = []
    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
    probe.start()
    wait_for(lambda: False, seconds, poll=0.001)
    probe.stop()
    return max(b - a for a, b in itertools.pairwise(ticks))


def triage_runs(widget, runs: int) -> list[float]:
    """Run -> heatmaps and the longest event-loop stall, ``runs`` times; returns stage durations."""
    ticks: list[float] = []
    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
    stages: list[float] = []
    widget.progress.valueChanged.connect(lambda _v: stages.append(time.perf_counter()))
    idle = idle_stall(5.0)
    print(f"idle event loop, 5 s: longest gap {idle * 1e3:.0f} ms (the machine's load alone)")
    totals, stalls, steps = [], [], []
    for run in range(runs):
        stages.clear()
        done: list[float] = []
        widget.triageFinished.connect(lambda _r, d=done: d.append(time.perf_counter()))
        ticks.clear()
        probe.start()
        start = time.perf_counter()
        _click(widget.run_button)
        wait_for(lambda d=done: bool(d), 300, poll=0.001)
        wait_for(lambda: widget.worker is None, 10, poll=0.001)
        probe.stop()
        widget.triageFinished.disconnect()
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        totals.append(done[0] - start)
        stalls.append(max(gaps))
        steps += [b - a for a, b in itertools.pairwise(stages)]
        print(
            f"run {run + 1}: Run -> heatmaps {totals[-1]:.2f} s, longest stall {stalls[-1] * 1e3:.0f} ms"
        )
    print(
        f"median Run -> heatmaps {statistics.median(totals):.2f} s; longest stall over all runs "
        f"{max(stalls) * 1e3:.0f} ms (median {statistics.median(stalls) * 1e3:.0f} ms; target < 100 ms; "
        f"idle {idle * 1e3:.0f} ms)"
    )
    widget.progress.valueChanged.disconnect()
    return steps


def triage_cancels(widget, cancels: int, steps: list[float]) -> None:
    """Cancel clicked at the first progress -> the widget back at "Run", ``cancels`` times.

    Compared with the median time of one triage stage (``steps``): a run that stops at its next
    stage answers a Cancel within about one stage.
    """
    latencies = []
    for run in range(cancels):
        _click(widget.run_button)
        wait_for(lambda: widget.progress.format() != "starting...", 60, poll=0.001)
        start = time.perf_counter()
        _click(widget.run_button)
        wait_for(lambda: widget.run_button.text() == "Run", 60, poll=0.001)
        latencies.append(time.perf_counter() - start)
        print(
            f"cancel {run + 1}: Cancel -> Run {latencies[-1] * 1e3:.0f} ms "
            f"(progress: {widget.progress.format()})"
        )
    print(
        f"Cancel -> Run median {statistics.median(latencies) * 1e3:.0f} ms, "
        f"longest {max(latencies) * 1e3:.0f} ms (target < 1 s); one triage stage takes "
        f"{statistics.median(steps) * 1e3:.0f} ms (median), longest {max(steps) * 1e3:.0f} ms"
    )


def _both_classes(root: Path) -> str:
    """A task whose train and valid labels both hold both classes."""
    for task in ("acl", "meniscus", "abnormal"):
        splits = []
        for split in ("train", "valid"):
            with (root / f"{split}-{task}.csv").open() as handle:
                splits.append({int(label) for _case, label in csv.reader(handle)})
        if all(labels == {0, 1} for labels in splits):
            return task
    raise SystemExit(f"{root}: no task with both classes in both splits; try another --seed")


def training_stops(viewer, stops: int, seed: int) -> None:
    """Stop clicked after the first validated epoch -> the widget back at "Start"."""
    from napari_elnet.phantom import PhantomConfig, write_mrnet

    data = Path(tempfile.mkdtemp(prefix="elnet-bench-gui-")) / "phantom"
    config = PhantomConfig(slices=(8, 10), matrix=(128, 128))
    write_mrnet(data, 12, seed=seed, config=config, valid_fraction=0.4)
    _, widget = viewer.window.add_plugin_dock_widget("napari-elnet", "ELNet training")
    widget.set_data_folder(str(data))
    widget.task_combo.setCurrentText(_both_classes(data))
    widget.k_spin.setValue(1)
    widget.epochs_spin.setValue(100)
    widget.device_combo.setCurrentText("cpu")
    latencies = []
    for run in range(stops):
        _click(widget.start_button)
        wait_for(lambda: len(widget.curve.auc_points) >= 1 or not widget.running, 600)
        start = time.perf_counter()
        _click(widget.start_button)
        wait_for(lambda: widget.start_button.text() == "Start", 60, poll=0.001)
        latencies.append(time.perf_counter() - start)
        print(
            f"stop {run + 1}: Stop -> Start {latencies[-1] * 1e3:.0f} ms "
            f"(best epoch {widget.outcome.best_epoch if widget.outcome else None})"
        )
    print(
        f"training Stop -> Start median {statistics.median(latencies) * 1e3:.0f} ms, "
        f"longest {max(latencies) * 1e3:.0f} ms (target < 2 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cancels", type=int, default=5)
    parser.add_argument("--stops", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5, help="seed of the training phantoms")
    args = parser.parse_args()
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    viewer.open_sample("napari-elnet", "knee_phantom")
    _, widget = viewer.window.add_plugin_dock_widget("napari-elnet", "ELNet triage")
    wait_for(lambda: "loading" not in widget.model_status.text(), 300)
    shapes = [layer.data.shape for layer in viewer.layers]
    print(f"phantom sample: series {shapes}; models: {[m.identity for m in widget.models]}")
    steps = triage_runs(widget, args.runs)
    if args.cancels:
        triage_cancels(widget, args.cancels, steps)
    if args.stops:
        training_stops(viewer, args.stops, args.seed)
    viewer.close()


if __name__ == "__main__":
    main()
