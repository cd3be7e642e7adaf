#!/usr/bin/env bash
# Set up everything napari-elnet needs on a fresh Debian machine: system libraries for a virtual
# display and OpenGL (apt-get, only when missing), a virtual environment in .venv with the CPU build
# of torch, and the package with its test extras. Safe to run again; it does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libxcb-icccm4
  libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0
  libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1
  # real DICOM peers for the DICOM tests: a PACS, network clients, an IOD validator
  orthanc dcmtk dicom3tools)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.napari-elnet-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing torch (CPU) and napari-elnet[test] into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  # The CPU wheel of torch: a plain requirement would pull several GB of CUDA wheels.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi
