"""From a series' pixels to ELNet's input: intensity standardization, preprocessing, augmentation."""
