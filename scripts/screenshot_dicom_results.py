"""The user guide's screenshot of a study re-opened with its DICOM results (run under xvfb-run).

Writes a phantom knee study, triages it with the default models and writes its DICOM results with
``napari-elnet predict --dicom-out``, copies them into the study folder (as a PACS export puts them
together), opens that folder in napari with the triage widget docked and takes the screenshot: the
heatmap layers come from the parametric maps, the table from the structured report; nothing is run.

Usage: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_dicom_results.py``
(writes ``docs/images/dicom-results-reopened.png``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import napari

from napari_elnet.cli import main as cli
from napari_elnet.phantom import PhantomConfig, generate_study
from napari_elnet.phantom.writers import write_dicom_study
from napari_elnet.plugin.demo import wait_for

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "docs" / "images" / "dicom-results-reopened.png"


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="elnet-dicom-shot-"))
    study = write_dicom_study(
        generate_study(7, PhantomConfig(matrix=(320, 320)), {"acl": True, "meniscus": True}),
        work / "knee",
    )
    (study / "truth.json").unlink()
    if cli(["predict", str(study), "--device", "cpu", "--dicom-out", str(work / "results")]) != 0:
        return 1
    shutil.copytree(work / "results", study / "elnet-results")
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    _, widget = viewer.window.add_plugin_dock_widget("napari-elnet", "ELNet triage")
    viewer.open(str(study), plugin="napari-elnet")
    wait_for(lambda: widget.result_table.rowCount() > 0, 60)
    wait_for(lambda: False, 0.5)
    viewer.screenshot(str(IMAGE), canvas_only=False)
    print(f"wrote {IMAGE}: " + ", ".join(f"{r.task} {r.probability:.3f}" for r in widget.results))
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
