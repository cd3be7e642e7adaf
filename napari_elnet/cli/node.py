"""``serve`` and ``pull``: the DICOM node (receive, triage, send back) and query/retrieve from a PACS."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from napari_elnet.cli.options import add_device_option, add_model_option, chosen_models
from napari_elnet.cli.output import EXIT_OK, table
from napari_elnet.common.errors import ElnetError

REPORT_NAME = "worklist.csv"


def _pipeline(args: argparse.Namespace) -> Any:
    from napari_elnet.node.config import Peer
    from napari_elnet.node.pipeline import PipelineConfig

    return PipelineConfig(
        report=Path(args.report) if args.report else Path(args.store) / REPORT_NAME,
        device=args.device,
        include_phi=args.include_phi,
        dicom_results=not args.no_dicom_results,
        send_to=Peer.parse(args.send_to) if args.send_to else None,
        calling_ae=args.ae_title,
    )


def _check_outputs(args: argparse.Namespace, pipeline: Any) -> None:
    """Refuse a store folder or report the node could not write, before it listens or fetches."""
    from napari_elnet.common.outputs import ensure_writable

    ensure_writable(args.store, folder=True)
    ensure_writable(pipeline.report, folder=False)


def _log_event(event: Any) -> None:
    """One line per event on stderr (``receiving`` only for the first instance and every 50th)."""
    if event.kind == "receiving" and event.instances not in (1,) and event.instances % 50:
        return
    name = event.result.study if event.result is not None else event.study_id
    detail = event.message
    if event.kind == "receiving":
        detail = f"{event.instances} instance(s) {detail}".strip()
    elif event.kind == "complete":
        detail = f"{event.instances} instance(s), queued for triage"
    elif event.kind == "triaged" and event.result is not None:
        result = event.result
        score = "-" if result.suspicion is None else f"{result.suspicion:.3f}"
        detail = f"suspicion {score}" if result.status == "ok" else f"error: {result.reason}"
        detail = f"{detail} ({event.message})" if event.message else detail
    sys.stderr.write(f"{event.kind:<9} {name} {detail}\n".rstrip() + "\n")
    sys.stderr.flush()


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the DICOM node until SIGINT or SIGTERM."""
    from napari_elnet.node.config import NodeConfig
    from napari_elnet.node.service import Node

    config = NodeConfig(
        store=Path(args.store),
        ae_title=args.ae_title,
        host=args.host,
        port=args.port,
        allow=tuple(args.allow or ()),
        max_pdu=args.max_pdu,
        max_associations=args.max_associations,
        max_study_bytes=int(args.max_study_mb * 1024 * 1024),
        stable_seconds=args.stable_seconds,
    )
    pipeline = _pipeline(args)
    _check_outputs(args, pipeline)
    node = Node(config, pipeline, chosen_models(args), _log_event)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        resumed = node.start()
    except OSError as exc:
        raise ElnetError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from exc
    allowed = ", ".join(config.allow) if config.allow else "any calling AE title"
    sys.stderr.write(
        f"DICOM node {config.ae_title} listening on {config.host}:{node.port} ({allowed}); "
        f"store {node.store.root}; report {pipeline.report}"
        + (f"; results to {pipeline.send_to}" if pipeline.send_to else "")
        + (f"; {len(resumed)} unfinished studies resumed" if resumed else "")
        + "\n"
    )
    sys.stderr.flush()
    stop.wait()
    sys.stderr.write("stopping: finishing the study being triaged\n")
    node.stop()
    return EXIT_OK


def cmd_pull(args: argparse.Namespace) -> int:
    """Find studies with C-FIND, fetch them with C-GET, triage them like received ones."""
    from napari_elnet.node.config import NodeConfig, Peer
    from napari_elnet.node.pipeline import triage_study
    from napari_elnet.node.pull import StudyQuery, find_studies, retrieve_study
    from napari_elnet.node.store import Store

    peer = Peer.parse(args.source)
    if not args.list:
        _check_outputs(args, _pipeline(args))
    query = StudyQuery(
        patient_id=args.patient_id or "",
        study_date=args.study_date or "",
        accession=args.accession or "",
    )
    found = find_studies(peer, query, args.ae_title)
    sys.stderr.write(f"{len(found)} stud{'y' if len(found) == 1 else 'ies'} found on {peer}\n")
    if args.list or not found:
        rows = [
            [
                s.accession or "-",
                s.study_date or "-",
                s.modalities or "-",
                s.instances or "-",
                s.study_uid,
            ]
            for s in found
        ]
        print(table(rows, ["accession", "date", "modalities", "instances", "study UID"]))
        return EXIT_OK
    config = NodeConfig(store=Path(args.store), ae_title=args.ae_title)
    store = Store(config.store)
    pipeline = _pipeline(args)
    models = chosen_models(args)
    rows = []
    for study in found:
        got = retrieve_study(peer, study.study_uid, config, store)
        outcome = triage_study(store, study.study_uid, models, pipeline, _log_event)
        result = outcome.result
        state = (
            "already in the report"
            if result is None
            else ("ok" if result.status == "ok" else f"error: {result.reason}")
        )
        if outcome.error:
            state += f"; DICOM results: {outcome.error}"
        score = "-" if result is None or result.suspicion is None else f"{result.suspicion:.3f}"
        rows.append([study.accession or "-", got.completed, got.failed, score, state])
    print(table(rows, ["accession", "retrieved", "failed", "suspicion", "status"]))
    print(f"report: {pipeline.report}")
    return EXIT_OK


def _common(parser: Any) -> None:
    """Options shared by ``serve`` and ``pull``: store, identity, models, report and results."""
    parser.add_argument("--store", required=True, metavar="DIR", help="folder of received studies")
    parser.add_argument("--ae-title", default="ELNET", help="our AE title (default ELNET)")
    parser.add_argument(
        "--report", metavar="FILE", help=f"worklist report .csv/.json (default STORE/{REPORT_NAME})"
    )
    add_model_option(parser)
    add_device_option(parser)
    parser.add_argument("--include-phi", action="store_true", help="patient data in the report")
    parser.add_argument(
        "--send-to",
        metavar="AET@HOST:PORT",
        help="C-STORE the DICOM results to this AE (e.g. the PACS)",
    )
    parser.add_argument(
        "--no-dicom-results", action="store_true", help="do not write DICOM results (report only)"
    )


def add_commands(sub: Any) -> None:
    """The ``serve`` and ``pull`` sub-commands."""
    from napari_elnet.node import config as defaults

    serve = sub.add_parser(
        "serve", help="DICOM node: receive studies, triage them, send results back"
    )
    _common(serve)
    serve.add_argument(
        "--host", default=defaults.DEFAULT_HOST, help="interface (default loopback only)"
    )
    serve.add_argument(
        "--port", type=int, default=defaults.DEFAULT_PORT, help="TCP port (default 11112)"
    )
    serve.add_argument(
        "--allow", nargs="+", metavar="AET", help="calling AE titles admitted (default: any)"
    )
    serve.add_argument(
        "--stable-seconds", type=float, default=defaults.DEFAULT_STABLE_SECONDS, metavar="S",
        help="a study is complete S seconds after its last instance (default 5)",
    )  # fmt: skip
    serve.add_argument(
        "--max-pdu", type=int, default=defaults.DEFAULT_MAX_PDU, metavar="BYTES",
        help=f"largest PDU accepted (default {defaults.DEFAULT_MAX_PDU}); a longer one aborts "
        "its association",
    )  # fmt: skip
    serve.add_argument(
        "--max-associations", type=int, default=defaults.DEFAULT_MAX_ASSOCIATIONS, metavar="N",
        help=f"associations served at once (default {defaults.DEFAULT_MAX_ASSOCIATIONS}); more "
        "are rejected",
    )  # fmt: skip
    serve.add_argument(
        "--max-study-mb", type=float, default=defaults.DEFAULT_MAX_STUDY_BYTES / 1024**2, metavar="MB",
        help="bytes stored per study (default 2048 MB)",
    )  # fmt: skip
    serve.set_defaults(handler=cmd_serve)

    pull = sub.add_parser(
        "pull", help="find studies on a PACS (C-FIND), fetch (C-GET) and triage them"
    )
    pull.add_argument(
        "--from", dest="source", required=True, metavar="AET@HOST:PORT", help="the PACS"
    )
    pull.add_argument("--patient-id", help="PatientID to match")
    pull.add_argument("--study-date", help="StudyDate YYYYMMDD or range YYYYMMDD-YYYYMMDD")
    pull.add_argument("--accession", help="AccessionNumber to match")
    pull.add_argument("--list", action="store_true", help="only list the studies found")
    _common(pull)
    pull.set_defaults(handler=cmd_pull)
