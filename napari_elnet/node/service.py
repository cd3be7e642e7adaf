"""The DICOM node: receiver, stability watcher and triage worker wired together.

Instances arrive on pynetdicom's association threads and are stored; the watcher hands each study to
the single triage worker once it has been quiet for ``stable_seconds``; the worker triages, appends
to the report, writes the DICOM results and sends them on. The network threads never wait for a
model. On start, studies in the store that the report does not hold yet (a crash, ``kill -9``, a
stop while receiving) are watched again, so they are completed and triaged once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from napari_elnet.models.model_file import LoadedModel
from napari_elnet.node.config import NodeConfig
from napari_elnet.node.events import EventCallback, NodeEvent
from napari_elnet.node.pipeline import PipelineConfig, TriageWorker, studies_to_resume
from napari_elnet.node.receiver import Received, Receiver, Refused
from napari_elnet.node.stability import (
    StabilityWatcher,
    StudyActivity,
    study_id_of,
)
from napari_elnet.node.store import Store

LOGGER = logging.getLogger(__name__)


class Node:
    """A running DICOM node (see the module docstring).

    Args:
        config: Network identity, limits and store folder.
        pipeline: Report, device, DICOM results and destination.
        models: Loaded models, one per task.
        on_event: Receives every :class:`NodeEvent`, on network, watcher or worker threads (a GUI
            must hand them over to its own thread).
    """

    def __init__(
        self,
        config: NodeConfig,
        pipeline: PipelineConfig,
        models: Sequence[LoadedModel],
        on_event: EventCallback | None = None,
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.store = Store(config.store)
        self._on_event = on_event
        self.worker = TriageWorker(self.store, models, pipeline, self._emit)
        self.watcher = StabilityWatcher(config.stable_seconds, self._complete)
        self.receiver = Receiver(config, self.store, self._received, self._refused)

    @property
    def port(self) -> int:
        """The port listened on."""
        return self.receiver.port

    @property
    def running(self) -> bool:
        """True while the receiver listens."""
        return self.receiver.running

    def start(self) -> list[str]:
        """Start the worker, the watcher and the receiver; returns the studies resumed from the store.

        Raises:
            OSError: The port cannot be bound (nothing is left running then).
            ConfigurationError: The report exists but is not a worklist report.
        """
        resumed = studies_to_resume(self.store, self.pipeline.report)
        self.worker.start()
        self.watcher.start()
        try:
            self.receiver.start()
        except BaseException:
            self.watcher.stop()
            self.worker.stop()
            raise
        for study_uid in resumed:
            count = len(self.store.instances(study_uid))
            activity = self.watcher.seen(study_uid, count=count)
            self._emit(
                NodeEvent(
                    "receiving",
                    study_uid,
                    study_id_of(study_uid),
                    activity.instances,
                    message="resumed from the store",
                )
            )
        return resumed

    def stop(self, wait: bool = True) -> None:
        """Stop receiving; the study being triaged finishes, queued ones wait for a restart.

        Args:
            wait: Return only when the study being triaged is done (False: it finishes on its
                thread, e.g. when a GUI closes).
        """
        self.receiver.stop()
        self.watcher.stop()
        self.worker.stop(timeout=60.0 if wait else 0.0)

    def __enter__(self) -> Node:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _emit(self, event: NodeEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a listener's bug must not break the network threads
                LOGGER.exception("node event listener failed on %s", event.kind)

    def _received(self, received: Received) -> None:
        activity = self.watcher.seen(received.study_uid, received.size)
        self._emit(
            NodeEvent(
                "receiving", received.study_uid, study_id_of(received.study_uid), activity.instances
            )
        )

    def _refused(self, refused: Refused) -> None:
        self._emit(
            NodeEvent(
                "refused", message=f"{refused.calling_ae}: 0x{refused.status:04X} {refused.reason}"
            )
        )

    def _complete(self, activity: StudyActivity) -> None:
        self._emit(
            NodeEvent(
                "complete", activity.study_uid, study_id_of(activity.study_uid), activity.instances
            )
        )
        self.worker.submit(activity.study_uid)
