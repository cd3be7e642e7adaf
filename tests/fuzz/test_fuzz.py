"""The fast, seeded fuzz variant (issue 10): a few hundred mutated inputs through the real harness.

Every input runs in a long-lived worker child process with RLIMIT_AS 4 GB and a 20 s watchdog; the
contract (``load_study`` -> NoUsableSeriesError only, ``load_model`` -> ModelFileError only, the
unpickler -> ArrayPickleError only, the CLI -> exit 0/2 with one stderr line on 2 and valid JSON) must
hold for every one. ``scripts/fuzz.py`` runs the same harness with 100,000 inputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fuzz.cases import WEIGHTS  # noqa: E402
from fuzz.runner import FuzzConfig, run  # noqa: E402


def test_seeded_fuzz_inputs_keep_the_contract(tmp_path: Path) -> None:
    config = FuzzConfig(
        inputs=300, seed=20261201, workers=1, timeout=20.0, cli_every=60, predict_every=150,
        out=tmp_path,
    )  # fmt: skip

    summary = run(config)

    assert summary["inputs"] == 300
    assert summary["violation_samples"] == []
    assert summary["hang_samples"] == []
    assert summary["crash_samples"] == []
    assert summary["generator_errors"] == 0
    # the run really exercised each kind, both outcomes, and the CLI (info and predict)
    kinds = {key.split(":")[0] for key in summary["by_kind"]}
    assert kinds == set(WEIGHTS)
    assert summary["outcomes"]["loaded"] > 0
    assert summary["outcomes"]["refused"] > 0
    # CLI runs are asked for on every 60th input (predict on every 150th) and done when it is a study
    assert {key.split()[0] for key in summary["cli"]} == {"info", "predict"}
