"""DICOM node benchmark: three scanners send 20 studies each; how fast does the node keep up?

Starts, on free loopback ports, a real Orthanc (child process with a temporary configuration, the
PACS the results go back to) and the node (in this process, ``Node`` with ``send_to`` = Orthanc),
then runs three sender threads, each sending its studies one after the other with dcmtk's
``storescu`` (one association per study, as a scanner does). Studies are clones (new UIDs) of one
small phantom knee (3 planes x 8 slices of 64 x 64; ``tests/support/dicom_peers.py``).

Prints, measured on this machine:

- received studies/min: studies over the time from the first instance to the last one received;
- triaged studies/min: studies over the time from the first instance to the last results stored
  in Orthanc (report row, SR, parametric maps and key images, all C-STOREd and acknowledged);
- latency: per study, from its last instance received to its results stored in Orthanc (median,
  90th percentile, max) in the burst, split into its stages (quiet time, queue, triage, DICOM
  results written and sent); and the same for single studies sent to an idle node (target:
  stable seconds + 3 s);
- a check that Orthanc holds, for every study, its images and exactly one structured report.

Models: the shipped default models (``--tiny`` for randomly initialised K=1 models).

Usage: ``nice -n 10 python benchmarks/bench_node.py [--senders 3] [--studies 20] [--stable 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.dicom_peers import (  # test helpers: Orthanc child process, phantom clones
    clone_study,
    dcmtk_env,
    free_port,
    phantom_template,
    require_tool,
    start_orthanc,
)

from napari_elnet.node.config import NodeConfig, Peer
from napari_elnet.node.events import NodeEvent
from napari_elnet.node.pipeline import PipelineConfig
from napari_elnet.node.service import Node

SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."


@dataclass
class Times:
    """Event times (perf_counter seconds) of one study."""

    first: float | None = None
    last: float | None = None
    instances: int = 0
    complete: float | None = None
    triaged: float | None = None
    sent: float | None = None
    triage_start: float | None = None
    errors: list[str] = field(default_factory=list)


class Recorder:
    """Node listener: the time of every event, per study."""

    def __init__(self) -> None:
        self.studies: dict[str, Times] = {}
        self.lock = threading.Lock()

    def __call__(self, event: NodeEvent) -> None:
        now = time.perf_counter()
        with self.lock:
            times = self.studies.setdefault(event.study_uid, Times())
            if event.kind == "receiving":
                times.first = times.first or now
                times.last = now
                times.instances = event.instances
            elif event.kind == "complete":
                times.complete = now
            elif event.kind == "triaged":
                times.triaged = now
            elif event.kind == "sent":
                times.sent = now
            elif event.kind == "error":
                times.errors.append(event.message)


def models(tiny: bool, folder: Path) -> list:
    if tiny:
        from support.worklist_factory import make_models

        return make_models(
            folder, [("acl", "axial"), ("meniscus", "coronal"), ("abnormal", "axial")]
        )
    from napari_elnet.models.defaults import load_default_models

    return load_default_models()


def send(storescu: str, port: int, folders: list[Path]) -> None:
    for folder in folders:
        subprocess.run(
            [storescu, "-aec", "ELNET", "+sd", "+r", "127.0.0.1", str(port), str(folder)],
            check=True, capture_output=True, env=dcmtk_env(), timeout=120,
        )  # fmt: skip


def wait_sent(recorder: Recorder, uids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with recorder.lock:
            done = [recorder.studies.get(u) for u in uids]
        if all(t is not None and (t.sent or t.errors) for t in done):
            return
        time.sleep(0.05)
    raise RuntimeError(f"not all studies came back within {timeout} s")


def stages(times: list[Times]) -> dict[str, list[float]]:
    """Per-study seconds of each stage (quiet time, queue + triage, results written and sent)."""
    out: dict[str, list[float]] = {"total": [], "quiet": [], "queue+triage": [], "results+send": []}
    for t in times:
        if t.last is None or t.sent is None or t.complete is None or t.triaged is None:
            continue
        out["total"].append(t.sent - t.last)
        out["quiet"].append(t.complete - t.last)
        out["queue+triage"].append(t.triaged - t.complete)
        out["results+send"].append(t.sent - t.triaged)
    return out


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.2f} s, p90 {p90:.2f} s, max {ordered[-1]:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--studies", type=int, default=20, help="studies per sender")
    parser.add_argument("--stable", type=float, default=1.0, help="stable seconds")
    parser.add_argument("--idle", type=int, default=3, help="single studies sent to an idle node")
    parser.add_argument(
        "--tiny", action="store_true", help="tiny random models instead of defaults"
    )
    args = parser.parse_args()
    storescu = require_tool("storescu")
    work = Path(tempfile.mkdtemp(prefix="bench-node-"))
    template = phantom_template(work / "cache")
    total = args.senders * args.studies
    plan: list[list[Path]] = [[] for _ in range(args.senders)]
    uids: list[str] = []
    for index in range(total + args.idle):
        folder = work / "src" / f"s{index:03d}"
        uid, _ = clone_study(template, folder, f"BENCH{index:03d}")
        uids.append(uid)
        if index < total:
            plan[index % args.senders].append(folder)
    node_port = free_port()
    orthanc = start_orthanc(work / "orthanc", {"elnet": ("ELNET", node_port)})
    recorder = Recorder()
    loaded = models(args.tiny, work / "models")
    node = Node(
        NodeConfig(store=work / "store", port=node_port, stable_seconds=args.stable),
        PipelineConfig(
            report=work / "store" / "worklist.csv",
            device="cpu",
            send_to=Peer("ORTHANC", "127.0.0.1", orthanc.dicom_port),
        ),
        loaded,
        recorder,
    )
    try:
        node.start()
        print(
            f"{args.senders} senders x {args.studies} studies of {len(template)} instances "
            f"(3 planes x 8 slices, 64x64); models: {', '.join(m.identity for m in loaded)}; "
            f"stable seconds {args.stable}"
        )
        threads = [
            threading.Thread(target=send, args=(storescu, node_port, folders)) for folders in plan
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        burst = uids[:total]
        wait_sent(recorder, burst, 60 * total)
        times = [recorder.studies[u] for u in burst]
        start = min(t.first for t in times if t.first is not None)
        received = max(t.last for t in times if t.last is not None) - start
        finished = max(t.sent or 0.0 for t in times) - start
        print(
            f"received: {total} studies in {received:.1f} s = {60 * total / received:.1f} studies/min"
        )
        print(
            f"triaged and results stored in Orthanc: {total} studies in {finished:.1f} s = "
            f"{60 * total / finished:.1f} studies/min"
        )
        for name, values in stages(times).items():
            print(f"  burst latency {name:<13} {summary(values)}")
        idle_times = []
        for uid, folder in zip(
            uids[total:],
            [work / "src" / f"s{i:03d}" for i in range(total, total + args.idle)],
            strict=True,
        ):
            send(storescu, node_port, [folder])
            wait_sent(recorder, [uid], 120)
            idle_times.append(recorder.studies[uid])
        for name, values in stages(idle_times).items():
            print(
                f"  idle latency  {name:<13} {summary(values)}  (target total <= {args.stable + 3:.1f} s)"
            )
        errors = [e for t in recorder.studies.values() for e in t.errors]
        print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
        missing = 0
        for uid in uids:
            study = orthanc.study_id(uid)
            instances = orthanc.request("GET", f"/studies/{study}/instances") if study else []
            classes = [
                orthanc.request("GET", f"/instances/{i['ID']}/simplified-tags")["SOPClassUID"]
                for i in instances
            ]
            if sum(c.startswith(SR_PREFIX) for c in classes) != 1:
                missing += 1
        print(f"Orthanc: {len(uids) - missing} of {len(uids)} studies hold exactly one SR")
    finally:
        node.stop()
        orthanc.stop()


if __name__ == "__main__":
    main()
