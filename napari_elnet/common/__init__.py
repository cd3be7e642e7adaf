"""Shared building blocks: errors, the Series type, devices, generator runs, output paths."""
