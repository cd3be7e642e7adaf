"""Model files, the shipped default models and which model each task uses."""
