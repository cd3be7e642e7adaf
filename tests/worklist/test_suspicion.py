"""The one "most suspicious result" rule: the result that sets the study's suspicion score."""

from __future__ import annotations

from dataclasses import dataclass

from napari_elnet.worklist.suspicion import SuspicionConfig, most_suspicious, suspicion_score


@dataclass(frozen=True)
class Result:
    task: str
    probability: float | None
    threshold: float = 0.5


def _score(results: list[Result]) -> float | None:
    return suspicion_score(
        (r.task, r.probability, r.threshold) for r in results if r.probability is not None
    )


def test_a_tear_outranks_a_more_probable_abnormal() -> None:
    results = [Result("abnormal", 0.9), Result("acl", 0.6)]
    assert most_suspicious(results) == 1  # the highest probability would pick abnormal


def test_thresholds_are_taken_into_account() -> None:
    results = [Result("acl", 0.45, 0.5), Result("meniscus", 0.40, 0.3)]
    assert most_suspicious(results) == 1


def test_the_pick_is_the_result_that_sets_the_study_score() -> None:
    results = [Result("acl", 0.2), Result("meniscus", 0.7, 0.6), Result("abnormal", 0.99)]
    best = most_suspicious(results)
    assert best is not None
    assert _score([results[best]]) == _score(results)


def test_ties_go_to_the_first_and_weights_come_from_the_config() -> None:
    results = [Result("acl", 0.7), Result("meniscus", 0.7)]
    assert most_suspicious(results) == 0
    assert most_suspicious(results, SuspicionConfig(weights={"acl": 0.5})) == 1


def test_results_without_a_probability_never_count() -> None:
    assert most_suspicious([Result("acl", None), Result("meniscus", 0.1)]) == 1
    assert most_suspicious([Result("acl", None)]) is None
    assert most_suspicious([]) is None
