#!/usr/bin/env bash
# Set up (scripts/setup.sh), lint, check the layering and the types, and run the whole test suite
# on a virtual display.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports  # import-linter contracts in pyproject.toml: layers, headless core
.venv/bin/mypy  # the core (napari_elnet minus plugin), configured in pyproject.toml
exec xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest "$@"
