"""The napari layer: reader, sample data and widgets that arrange core calls, threads and layers."""
