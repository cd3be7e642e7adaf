"""napari-elnet: knee MRI triage with ELNet and FullGrad heatmaps.

The headless core (model, explanation, I/O, preprocessing, training, triage, CLI) imports neither Qt
nor napari; the napari layer lives in :mod:`napari_elnet.plugin`.
"""

__version__ = "0.1.0"
