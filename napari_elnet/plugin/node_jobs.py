"""Worker side of the "DICOM node" panel: search a PACS, retrieve studies, find a study's files.

Plain functions run by napari thread workers or by the node's own threads; they never touch a Qt
widget (the panel connects their results on the GUI thread).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from napari_elnet.models.model_file import LoadedModel
    from napari_elnet.node.config import NodeConfig, Peer
    from napari_elnet.node.events import NodeEvent
    from napari_elnet.node.pipeline import PipelineConfig
    from napari_elnet.node.pull import FoundStudy, StudyQuery
    from napari_elnet.node.service import Node
    from napari_elnet.node.store import Store
    from napari_elnet.worklist import StudyRef


def search_run(peer_text: str, query: StudyQuery, calling_ae: str) -> list[FoundStudy]:
    """C-FIND on the PACS written as ``AET@HOST:PORT`` (runs on a worker thread)."""
    from napari_elnet.node.config import Peer
    from napari_elnet.node.pull import find_studies

    return find_studies(Peer.parse(peer_text), query, calling_ae)


def retrieve_run(
    peer: Peer,
    study_uids: Sequence[str],
    config: NodeConfig,
    store: Store,
    node: Node | None,
    models: Sequence[LoadedModel],
    pipeline: PipelineConfig,
) -> Generator[NodeEvent, None, int]:
    """C-GET each study into the store, then triage it: on the running node's worker when there
    is one, else right here (this worker thread). Yields the node events; returns studies fetched.
    """
    from napari_elnet.node.events import NodeEvent
    from napari_elnet.node.pipeline import triage_study
    from napari_elnet.node.pull import retrieve_study
    from napari_elnet.node.stability import study_id_of

    fetched = 0
    for study_uid in study_uids:
        study_id = study_id_of(study_uid)
        yield NodeEvent("receiving", study_uid, study_id, message=f"retrieving from {peer}")
        got = retrieve_study(peer, study_uid, config, store)
        fetched += 1
        yield NodeEvent("complete", study_uid, study_id, got.completed)
        if node is not None and node.running:
            node.worker.submit(study_uid)  # its events arrive through the node's listener
            continue
        events: list[NodeEvent] = []
        outcome = triage_study(store, study_uid, models, pipeline, events.append)
        yield from events
        if outcome.result is None:
            yield NodeEvent("error", study_uid, study_id, message="already in the report")
        elif outcome.error:
            yield NodeEvent("error", study_uid, study_id, message=outcome.error)
    return fetched


def study_ref(store: Store, study_uid: str) -> StudyRef | None:
    """The worklist's StudyRef of a stored study (header reads only), None if it has no files."""
    from napari_elnet.worklist import discover_studies

    studies = discover_studies(store.study_dir(study_uid)).studies
    return studies[0] if studies else None


def reported_studies(store: Store, report: Path) -> list[tuple[NodeEvent, StudyRef | None]]:
    """The stored studies the report already holds, as ``triaged`` events with their StudyRefs.

    Lets the panel show, when the node starts again, what it triaged before (header reads only;
    runs on a background thread).
    """
    from napari_elnet.node.events import NodeEvent
    from napari_elnet.node.stability import study_id_of
    from napari_elnet.worklist.report import read_report

    by_id = {r.study_id: r for r in read_report(report)}
    found = []
    for study_uid in store.studies():
        result = by_id.get(study_id_of(study_uid))
        if result is not None:
            event = NodeEvent(
                "triaged", study_uid, result.study_id, len(store.instances(study_uid)), result
            )
            found.append((event, study_ref(store, study_uid)))
    return found
