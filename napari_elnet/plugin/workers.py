"""The one wiring of a core computation to a napari thread worker.

Every long computation of the widgets is a core generator (or a function) that never touches Qt.
:func:`start_worker` runs it in a napari thread worker and connects the worker's signals, whose
slots napari calls on the GUI thread. Stopping is the computation's business: the generators take a
``threading.Event`` (see :func:`napari_elnet.common.runs.relay`) and return how they ended.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any


def start_worker(
    function: Callable[..., Any],
    *args: Any,
    yielded: Callable[[Any], None] | None = None,
    returned: Callable[[Any], None] | None = None,
    errored: Callable[[Exception], None] | None = None,
    finished: Callable[[], None] | None = None,
    tagged: bool = False,
) -> Any:
    """Run ``function(*args)`` in a napari thread worker; the slots run on the GUI thread.

    Args:
        function: A generator function (progress goes to ``yielded``) or a plain function.
        args: Its arguments.
        yielded: Called with each progress of a generator.
        returned: Called with the return value.
        errored: Called with an unexpected exception (napari also shows it with its traceback).
        finished: Called last, however the run ended.
        tagged: Call every slot with the worker as its first argument (so that a slot can tell
            the current run from one it has superseded).

    Returns:
        The started worker (a ``GeneratorWorker`` or ``FunctionWorker``).
    """
    from napari.qt.threading import create_worker

    worker = create_worker(function, *args, _start_thread=False)
    slots = {"yielded": yielded, "returned": returned, "errored": errored, "finished": finished}
    for name, slot in slots.items():
        if slot is not None:
            getattr(worker, name).connect(partial(slot, worker) if tagged else slot)
    worker.start()
    return worker
