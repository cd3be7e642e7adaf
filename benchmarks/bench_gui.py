"""GUI benchmark: end-to-end time from Run to heatmaps, and the longest event-loop stall meanwhile.

Opens a real napari viewer (run under ``xvfb-run``), the phantom sample study and the "ELNet triage"
widget with the shipped default models, clicks Run ``--runs`` times and prints, per run, the time from
the click to the heatmap layers being in the viewer and the longest gap between two turns of the Qt
event loop (a 5 ms probe timer). Usage:
``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_gui.py [--runs 5]``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import napari
from qtpy.QtCore import QTimer

from napari_elnet.plugin.demo import wait_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    viewer = napari.Viewer(show=True)
    viewer.open_sample("napari-elnet", "knee_phantom")
    _, widget = viewer.window.add_plugin_dock_widget("napari-elnet", "ELNet triage")
    wait_for(lambda: "loading" not in widget.model_status.text(), 300)
    shapes = [layer.data.shape for layer in viewer.layers]
    print(f"phantom sample: series {shapes}; models: {[m.identity for m in widget.models]}")
    ticks: list[float] = []
    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
    totals, stalls = [], []
    for run in range(args.runs):
        done: list[float] = []
        widget.triageFinished.connect(lambda _r, d=done: d.append(time.perf_counter()))
        ticks.clear()
        probe.start()
        start = time.perf_counter()
        widget.run_button.click()
        wait_for(lambda d=done: bool(d), 300, poll=0.001)
        wait_for(lambda: widget.worker is None, 10, poll=0.001)
        probe.stop()
        widget.triageFinished.disconnect()
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        totals.append(done[0] - start)
        stalls.append(max(gaps))
        print(
            f"run {run + 1}: Run -> heatmaps {totals[-1]:.2f} s, longest stall {stalls[-1] * 1e3:.0f} ms"
        )
    print(
        f"median Run -> heatmaps {statistics.median(totals):.2f} s; longest stall over all runs "
        f"{max(stalls) * 1e3:.0f} ms (median {statistics.median(stalls) * 1e3:.0f} ms; target < 100 ms)"
    )
    viewer.close()


if __name__ == "__main__":
    main()
