"""The demo: napari with a phantom knee study loaded and triaged by the default models.

``python -m napari_elnet.plugin.demo`` opens a window; ``--headless`` writes a screenshot of the
whole window (``--screenshot PATH``, default ``demo.png``) and quits instead of leaving the window
open (run it under ``xvfb-run`` or with ``QT_QPA_PLATFORM=offscreen``: the window is laid out
as shown, so the docks take their real sizes); ``--docks``
also docks the worklist and training widgets below the triage widget.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import napari

    from napari_elnet.plugin.triage_widget import TriageWidget


def build_viewer(
    show: bool, study: str | None = None, docks: bool = False
) -> tuple[napari.Viewer, TriageWidget]:
    """A 1600 x 1000 viewer with the study (or the phantom sample) open and the triage widget
    docked (with ``docks``, the worklist and training widgets below it)."""
    import napari

    viewer = napari.Viewer(title="napari-elnet demo", show=show)
    viewer.window._qt_window.resize(1600, 1000)
    if study:
        viewer.open(study, plugin="napari-elnet")
    else:
        viewer.open_sample("napari-elnet", "knee_phantom")
    _, widget = viewer.window.add_plugin_dock_widget("napari-elnet", "ELNet triage")
    for name in ("ELNet worklist", "ELNet training") if docks else ():
        viewer.window.add_plugin_dock_widget("napari-elnet", name)
    return viewer, widget


def wait_for(condition: Callable[[], bool], timeout: float, poll: float = 0.01) -> bool:
    """Process Qt events until ``condition()`` is true or ``timeout`` seconds pass.

    Returns whether the condition came true; ``poll`` is the pause (s) between checks.
    """
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        app.processEvents()
        time.sleep(poll)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; exit status 0 when the study was triaged (or no models ship yet)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headless", action="store_true", help="write a screenshot and quit")
    parser.add_argument("--screenshot", default="demo.png", help="PNG path (with --headless)")
    parser.add_argument("--study", help="a DICOM folder to triage instead of the phantom sample")
    parser.add_argument("--docks", action="store_true", help="dock the worklist and training too")
    args = parser.parse_args(argv)

    import napari

    viewer, widget = build_viewer(show=True, study=args.study, docks=args.docks)
    wait_for(lambda: "loading" not in widget.model_status.text(), 60)
    triaged = False
    if not widget.models:
        sys.stderr.write("napari-elnet demo: no default models yet (see docs/model-card.md)\n")
    else:
        widget.run()
        triaged = wait_for(lambda: widget.worker is None, 300) and bool(widget.results)
        for result in widget.results:
            if result.probability is None:
                reasons = "; ".join(result.applicability.reasons)
                sys.stdout.write(f"{result.task:9s} n/a ({reasons})\n")
                continue
            sys.stdout.write(
                f"{result.task:9s} p={result.probability:.3f} top slice {result.top_slice} "
                f"({result.series_name})\n"
            )
    if args.headless:
        wait_for(lambda: False, 0.5)  # let the canvas draw
        viewer.screenshot(str(Path(args.screenshot)), canvas_only=False)
        sys.stdout.write(f"screenshot written to {args.screenshot}\n")
        viewer.close()
        return 0 if (triaged or not widget.models) else 1
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
