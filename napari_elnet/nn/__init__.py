"""ELNet and its layers (BlurPool, multi-slice normalization)."""
