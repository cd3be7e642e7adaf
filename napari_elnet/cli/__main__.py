"""``python -m napari_elnet.cli`` (and ``torchrun -m napari_elnet.cli``): the console script."""

import sys

from napari_elnet.cli import main

if __name__ == "__main__":
    sys.exit(main())
