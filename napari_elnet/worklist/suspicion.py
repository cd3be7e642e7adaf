"""The suspicion score that orders the worklist.

Definition (per study, over the tasks that ran on it)::

    q_t = p_t / (2 * theta_t)                            if p_t <  theta_t
    q_t = 0.5 + (p_t - theta_t) / (2 * (1 - theta_t))    if p_t >= theta_t
    suspicion = max_t  w_t * q_t

where ``p_t`` is the model's probability, ``theta_t`` its decision threshold, and the weight ``w_t`` is
1 for tear tasks (``acl``, ``meniscus``) and for any task not named here, and 0.5 for ``abnormal``.

Properties (each is tested):

- ``q_t`` maps each model's threshold to 0.5, so models with different thresholds are comparable, and
  ``q_t >= 0.5`` exactly when the model's decision is positive.
- ``q_t`` is increasing in ``p_t``: with a single task the ordering is the model's own ranking, so the
  worklist inherits the model's ROC-AUC.
- A study with a positive tear decision scores >= 0.5; a study whose only positive is ``abnormal``
  scores <= 0.5: torn ligaments and menisci rank above "abnormal only".
- The score lies in [0, 1]. Studies that could not be triaged have no score and are listed last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from napari_elnet.common.errors import ConfigurationError

DEFAULT_WEIGHTS: Mapping[str, float] = {"acl": 1.0, "meniscus": 1.0, "abnormal": 0.5}
"""Task weights; a task that is not listed has weight 1."""


@dataclass(frozen=True)
class SuspicionConfig:
    """Weights of the suspicion score.

    Attributes:
        weights: Task -> weight in (0, 1]; tasks not listed get ``default_weight``.
        default_weight: Weight of unlisted tasks.
    """

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    default_weight: float = 1.0

    def __post_init__(self) -> None:
        for task, weight in {**self.weights, "(default)": self.default_weight}.items():
            if not 0.0 < weight <= 1.0:
                raise ConfigurationError(
                    f"suspicion weight of {task!r} must be in (0, 1], got {weight}"
                )

    def weight(self, task: str) -> float:
        """The weight of ``task``."""
        return float(self.weights.get(task, self.default_weight))


def calibrated(probability: float, threshold: float) -> float:
    """Piecewise-linear map of a probability in [0, 1] that sends the threshold to 0.5."""
    if not 0.0 < threshold < 1.0:
        raise ConfigurationError(f"threshold must be in (0, 1), got {threshold}")
    p = min(max(float(probability), 0.0), 1.0)
    if p < threshold:
        return p / (2.0 * threshold)
    return 0.5 + (p - threshold) / (2.0 * (1.0 - threshold))


def suspicion_score(
    results: Iterable[tuple[str, float, float]], config: SuspicionConfig | None = None
) -> float | None:
    """The study's suspicion from its (task, probability, threshold) triples; None when there are none."""
    config = config or SuspicionConfig()
    scores = [config.weight(task) * calibrated(p, theta) for task, p, theta in results]
    return max(scores) if scores else None


class Scored(Protocol):
    """A task's result as the suspicion score reads it (``TaskResult``, ``TaskRow``)."""

    @property
    def task(self) -> str: ...
    @property
    def probability(self) -> float | None: ...
    @property
    def threshold(self) -> float: ...


def most_suspicious(results: Sequence[Scored], config: SuspicionConfig | None = None) -> int | None:
    """Index of the result that sets the study's suspicion score (the first on ties).

    The one rule for "the most suspicious result" (the worklist ranks studies by its score, the
    widgets open a study at it). Results without a probability (not assessed) never count; None
    when no result has one.
    """
    config = config or SuspicionConfig()
    scores = {
        i: config.weight(r.task) * calibrated(r.probability, r.threshold)
        for i, r in enumerate(results)
        if r.probability is not None
    }
    return max(scores, key=lambda i: (scores[i], -i)) if scores else None
