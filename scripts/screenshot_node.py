"""The user guide's screenshot of the worklist receiving studies through its DICOM node.

Starts the node from the worklist widget (default models), a real Orthanc as the remote PACS
(child process on free loopback ports, holding the same studies), sends three phantom knees with
dcmtk's ``storescu``, opens the most suspicious one, searches the PACS, and takes the screenshot
while a fourth study is still arriving. The node sends each study's DICOM results to the
same Orthanc ("Results to").

Usage: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_node.py``
(writes ``docs/images/worklist-dicom-node.png``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import napari

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.dicom_peers import dcmtk_env, free_port, require_tool, start_orthanc  # noqa: E402

from napari_elnet.phantom import PhantomConfig  # noqa: E402
from napari_elnet.phantom.writers import studies, write_dicom_study  # noqa: E402
from napari_elnet.plugin.demo import wait_for  # noqa: E402

IMAGE = ROOT / "docs" / "images" / "worklist-dicom-node.png"


def main() -> int:
    storescu = require_tool("storescu")
    work = Path(tempfile.mkdtemp(prefix="elnet-node-shot-"))
    config = PhantomConfig(matrix=(160, 160), slices=(16, 16))
    folders = []
    for index, study in enumerate(studies(4, 21, config)):
        folder = work / "src" / f"study{index}"
        write_dicom_study(study, folder)
        (folder / "truth.json").unlink()
        folders.append(folder)
    port = free_port()
    orthanc = start_orthanc(work / "orthanc", {"elnet": ("ELNET", port)})
    for folder in folders:
        orthanc.upload(sorted(folder.rglob("*.dcm")))
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    _, widget = viewer.window.add_plugin_dock_widget("napari-elnet", "ELNet worklist")
    wait_for(lambda: "loading" not in widget.model_status.text(), 180)
    widget.device_combo.setCurrentText("cpu")
    panel = widget.node_panel
    panel.port_spin.setValue(port)
    panel.store_edit.setText(str(work / "store"))
    panel.stable_spin.setValue(3.0)
    panel.send_edit.setText(f"ORTHANC@127.0.0.1:{orthanc.dicom_port}")
    panel.start_node()
    try:
        for folder in folders[:3]:
            subprocess.run(
                [storescu, "-aec", "ELNET", "+sd", "+r", "127.0.0.1", str(port), str(folder)],
                check=True, capture_output=True, env=dcmtk_env(),
            )  # fmt: skip
        wait_for(lambda: len(widget.results) == 3, 300)
        opened: list[object] = []
        widget.studyOpened.connect(opened.append)
        widget.open_row(0)
        wait_for(lambda: bool(opened), 120)
        panel.remote_edit.setText(f"ORTHANC@127.0.0.1:{orthanc.dicom_port}")
        panel.search()
        wait_for(lambda: panel.found_table.rowCount() == 4, 60)
        panel.found_table.selectRow(3)
        subprocess.run(
            [storescu, "-aec", "ELNET", "+sd", "+r", "127.0.0.1", str(port), str(folders[3])],
            check=True, capture_output=True, env=dcmtk_env(),
        )  # fmt: skip
        wait_for(lambda: False, 0.5)
        IMAGE.parent.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(str(IMAGE), canvas_only=False)
        print(
            f"wrote {IMAGE}: " + ", ".join(f"{r.study} {r.suspicion:.2f}" for r in widget.results)
        )
    finally:
        panel.stop_node()
        orthanc.stop()
        viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
