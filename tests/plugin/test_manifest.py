"""The npe2 manifest ships in the package and is found through the napari.manifest entry point."""

from __future__ import annotations

from importlib import metadata, resources

import pytest


def test_manifest_is_valid_and_registered() -> None:
    npe2 = pytest.importorskip("npe2")
    text = (resources.files("napari_elnet") / "napari.yaml").read_text()
    manifest = npe2.PluginManifest.from_file(str(resources.files("napari_elnet") / "napari.yaml"))
    assert manifest.name == "napari-elnet"
    assert manifest.display_name == "ELNet triage"
    assert "napari-elnet" in text
    points = [
        ep for ep in metadata.entry_points(group="napari.manifest") if ep.name == "napari-elnet"
    ]
    assert [ep.value for ep in points] == ["napari_elnet:napari.yaml"]


def test_the_packaged_manifest_is_the_top_level_one() -> None:
    """One source: napari.yaml at the repository root; the package's copy is a link to it."""
    from pathlib import Path

    top = Path(__file__).resolve().parents[2] / "napari.yaml"
    packaged = resources.files("napari_elnet") / "napari.yaml"
    assert top.is_file(), "napari.yaml missing at the repository root"
    assert packaged.read_text() == top.read_text()


def test_core_does_not_import_qt_or_napari() -> None:
    import subprocess
    import sys

    code = (
        "import sys, napari_elnet.cli, napari_elnet.inference.triage, napari_elnet.inference.fullgrad, napari_elnet.io; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'napari', 'qtpy', 'PyQt6', 'PyQt5', 'PySide6'}); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_entry_modules_import_neither_torch_nor_pydicom() -> None:
    """napari imports these when it starts or opens a menu: heavy libraries come later, lazily."""
    import subprocess
    import sys

    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(str(resources.files("napari_elnet") / "napari.yaml"))
    modules = sorted({c.python_name.split(":")[0] for c in manifest.contributions.commands or ()})
    assert (
        "napari_elnet.plugin.reader" in modules and "napari_elnet.plugin.triage_widget" in modules
    )
    heavy = {"torch", "pydicom", "highdicom", "pynetdicom", "dask", "scipy"}
    code = (
        f"import sys, importlib; [importlib.import_module(m) for m in {modules!r}]; "
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
