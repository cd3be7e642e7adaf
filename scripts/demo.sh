#!/usr/bin/env bash
# Set up (scripts/setup.sh), then open napari with a phantom knee study loaded and triaged.
# --headless: run on a virtual display, write a screenshot (default demo.png) and quit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
for arg in "$@"; do
  if [ "$arg" = "--headless" ]; then
    exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m napari_elnet.plugin.demo "$@"
  fi
done
exec .venv/bin/python -m napari_elnet.plugin.demo "$@"
