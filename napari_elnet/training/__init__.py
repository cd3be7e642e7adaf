"""Training and evaluating ELNet: configuration, loop, resume, sampling, metrics, cross-validation."""
