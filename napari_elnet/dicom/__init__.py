"""Triage results as DICOM objects: structured report, heatmap parametric map, key image; read-back.

Headless (no Qt, no napari); highdicom builds and checks the objects.
"""
