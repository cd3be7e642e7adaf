"""How a failure beside the results is worded."""

from __future__ import annotations

from napari_elnet.common.errors import one_line


def test_one_line_names_the_type_and_the_first_line() -> None:
    assert one_line(ValueError("bad time '09:11:56'\nmore detail")) == (
        "ValueError: bad time '09:11:56'"
    )
    assert one_line(OSError()) == "OSError"
