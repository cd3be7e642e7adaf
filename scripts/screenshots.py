"""Take the user guide's screenshots in real napari windows (run under xvfb-run).

Usage: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py
[KNEE_DIR] [--only NAME ...]``

Writes ``docs/images/triage-phantom.png``, ``triage-real-knee.png`` (when the real knee folder
exists), ``three-docks.png`` and ``training-mid-run.png`` (``--only`` takes some of them, by file
name without ``.png``).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import napari

from napari_elnet.phantom import PhantomConfig, write_mrnet
from napari_elnet.plugin.demo import wait_for

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
KNEE = ROOT.parent / "shared" / "data" / "knee_dess_sagittal"


def viewer_with(widget_name: str) -> tuple[napari.Viewer, object]:
    """A 1600 x 1000 viewer with one of our dock widgets."""
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    _, widget = viewer.window.add_plugin_dock_widget("napari-elnet", widget_name)
    return viewer, widget


def triage_shot(
    open_study: Callable[[napari.Viewer], object], path: Path, docks: bool = False
) -> None:
    """Open a study, triage it with the default models, screenshot the window.

    With ``docks`` the worklist and training widgets are docked below the triage widget.
    """
    viewer, widget = viewer_with("ELNet triage")
    for name in ("ELNet worklist", "ELNet training") if docks else ():
        viewer.window.add_plugin_dock_widget("napari-elnet", name)
    open_study(viewer)
    wait_for(lambda: "loading" not in widget.model_status.text(), 120)
    widget.run()
    wait_for(lambda: widget.worker is None and bool(widget.results), 120)
    wait_for(lambda: False, 0.5)
    viewer.screenshot(str(path), canvas_only=False)
    print(f"wrote {path}: " + ", ".join(f"{r.task} {r.probability:.2f}" for r in widget.results))
    viewer.close()


def training_shot(path: Path) -> None:
    """The training widget mid-run on a small phantom data set."""
    data = Path(tempfile.mkdtemp(prefix="elnet-shot-")) / "phantom"
    write_mrnet(data, 40, seed=77, config=PhantomConfig(matrix=(256, 256), slices=(17, 24)))
    viewer, widget = viewer_with("ELNet training")
    viewer.open_sample("napari-elnet", "knee_phantom")
    widget.set_data_folder(str(data))
    widget.k_spin.setValue(2)
    widget.epochs_spin.setValue(6)
    widget.lr_spin.setValue(1e-3)
    widget.start()
    wait_for(lambda: widget.outcome is not None or len(widget.curve.auc_points) >= 3, 600)
    wait_for(lambda: False, 0.3)
    viewer.screenshot(str(path), canvas_only=False)
    print(f"wrote {path}")
    widget.stop()
    wait_for(lambda: not widget.running, 60)
    viewer.close()


def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    args = sys.argv[1:]
    only = set(args[args.index("--only") + 1 :]) if "--only" in args else None
    args = args[: args.index("--only")] if "--only" in args else args
    knee = Path(args[0]) if args else KNEE

    def wanted(name: str) -> bool:
        return only is None or name in only

    def sample(viewer: napari.Viewer) -> object:
        return viewer.open_sample("napari-elnet", "knee_phantom")

    if wanted("triage-phantom"):
        triage_shot(sample, IMAGES / "triage-phantom.png")
    if wanted("three-docks"):
        triage_shot(sample, IMAGES / "three-docks.png", docks=True)
    if knee.is_dir() and wanted("triage-real-knee"):
        triage_shot(
            lambda v: v.open(str(knee), plugin="napari-elnet"), IMAGES / "triage-real-knee.png"
        )
    if wanted("training-mid-run"):
        training_shot(IMAGES / "training-mid-run.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
