"""Settings of one training run, importable without torch (the training widget builds them)."""

from __future__ import annotations

from dataclasses import dataclass

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.series import PLANES, Plane
from napari_elnet.models.tasks import paper_choice
from napari_elnet.nn.norm_kinds import NORM_KINDS, NormKind


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        task, plane: Label and plane to train on.
        k, norm, blur, dropout: ELNet architecture (paper: k=4, blur 5).
        lr: Adam learning rate; the paper used 1e-5..3e-5 (default 2e-5, the middle). The
            phantom demonstration models use 1e-4 (at 1e-3 they collapsed to a constant output).
        weight_decay: Adam L2 penalty (0: the paper mentions none).
        epochs: Total number of epochs (paper: 200), also when resuming.
        seed: Seed of the weight initialization and of every random choice of the run.
        val_fraction: Share of each class held out for validation when no validation set is given.
        folds: 1 for one run; N >= 2 for stratified N-fold cross-validation
            (:func:`napari_elnet.training.crossval.cross_validate_steps`, one model per fold).
        device: ``auto``, ``cuda``, ``mps`` or ``cpu``.
        augment: Random augmentation of every training series (paper: on).
        quarter_turns: Augmentation also turns axial and coronal series by a random multiple of
            90 degrees (paper: on, for MRNet's stacks of mixed orientation; DICOM series come in
            scanner orientation, where the turns only multiply what the network has to learn).
        oversample: Repeat minority-class series each epoch until classes are equal (paper: on).
        patience: Stop after this many epochs without a better validation ROC-AUC (None: never).
        accumulate: Series per optimizer step (gradient accumulation; 1 = the paper's batch of one).
        threshold: Probability at which validation predictions count as positive.
        cache_half: Keep prepared volumes as float16 (halves memory, ~1e-3 rounding).
        bf16: Mixed precision: forward passes under bf16 autocast (meant for CUDA GPUs with bf16,
            e.g. Ampere and later; the loss and the weights stay float32).
    """

    task: str = "acl"
    plane: Plane = "axial"
    k: int = 4
    norm: NormKind = "layer"
    blur: int = 5
    dropout: float = 0.2
    lr: float = 2e-5
    weight_decay: float = 0.0
    epochs: int = 200
    seed: int = 0
    val_fraction: float = 0.2
    folds: int = 1
    device: str = "auto"
    augment: bool = True
    quarter_turns: bool = True
    oversample: bool = True
    patience: int | None = None
    accumulate: int = 1
    threshold: float = 0.5
    cache_half: bool = False
    bf16: bool = False

    def __post_init__(self) -> None:
        if self.plane not in PLANES:
            raise ConfigurationError(f"plane must be one of {PLANES}, got {self.plane!r}")
        if self.norm not in NORM_KINDS:
            raise ConfigurationError(f"norm must be one of {NORM_KINDS}, got {self.norm!r}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigurationError(
                f"lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}"
            )
        if self.epochs < 1 or self.accumulate < 1:
            raise ConfigurationError(
                f"epochs and accumulate must be >= 1, got {self.epochs}, {self.accumulate}"
            )
        if self.folds < 1:
            raise ConfigurationError(f"folds must be >= 1, got {self.folds}")
        if self.patience is not None and self.patience < 1:
            raise ConfigurationError(f"patience must be >= 1 or None, got {self.patience}")

    @classmethod
    def for_task(cls, task: str, **changes: object) -> TrainConfig:
        """The paper's plane and normalization for an MRNet task, with ``changes`` applied."""
        plane, norm = paper_choice(task)
        return cls(**({"task": task, "plane": plane, "norm": norm} | changes))  # type: ignore[arg-type]
