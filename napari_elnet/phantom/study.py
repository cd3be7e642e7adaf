"""One synthetic knee study: anatomy, lesions, and its three stacks with ground truth."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.series import Series, StudyInfo
from napari_elnet.models.tasks import MRNET_LABELS as TASKS
from napari_elnet.phantom.acquisition import bias_field, resample, rician, stack_geometry
from napari_elnet.phantom.anatomy import Anatomy, build_knee, knee_grid
from napari_elnet.phantom.interpolation import upsample_trilinear
from napari_elnet.phantom.lesions import Lesion, add_lesions, plan_lesions
from napari_elnet.phantom.tissues import CONTRASTS, signal_table

PLANE_ORDER = ("sagittal", "coronal", "axial")
DESCRIPTIONS = {"pd_fs": "PD FS", "t1": "T1", "t2": "T2"}
SHORT = {"sagittal": "SAG", "coronal": "COR", "axial": "AX"}


@dataclass(frozen=True)
class PhantomConfig:
    """How studies vary.

    Attributes:
        prevalence: Probability of each label; ``abnormal`` is the share of the cases without a
            tear that still have another abnormality (every tear is abnormal).
        contrast: ``pd_fs`` (default), ``t1`` or ``t2``.
        slices: Inclusive range of slices per stack.
        matrix: Inclusive range of the in-plane matrix (pixels, square).
        fov_mm: Range of the field of view (mm).
        thickness_mm: Range of the slice thickness (mm).
        noise: Range of the Rician noise sigma, relative to fluid signal.
        scale: Range of the anatomical size factor.
        flexion_deg: Range of knee flexion (degrees).
    """

    prevalence: dict[str, float] = field(
        default_factory=lambda: {"acl": 0.35, "meniscus": 0.4, "abnormal": 0.3}
    )
    contrast: str = "pd_fs"
    slices: tuple[int, int] = (17, 61)
    matrix: tuple[int, int] = (256, 512)
    fov_mm: tuple[float, float] = (140.0, 180.0)
    thickness_mm: tuple[float, float] = (3.0, 4.0)
    noise: tuple[float, float] = (0.015, 0.04)
    scale: tuple[float, float] = (0.85, 1.15)
    flexion_deg: tuple[float, float] = (0.0, 8.0)

    def __post_init__(self) -> None:
        if self.contrast not in CONTRASTS:
            raise ConfigurationError(
                f"unknown contrast {self.contrast!r}; expected {sorted(CONTRASTS)}"
            )
        if not 1 <= self.slices[0] <= self.slices[1]:
            raise ConfigurationError(f"slices must be a range of counts >= 1, got {self.slices}")
        if not 16 <= self.matrix[0] <= self.matrix[1]:
            raise ConfigurationError(f"matrix must be a range of sizes >= 16, got {self.matrix}")
        for task, p in self.prevalence.items():
            if task not in TASKS or not 0.0 <= p <= 1.0:
                raise ConfigurationError(
                    f"prevalence of {task!r} must be a task with p in [0, 1]: {p}"
                )


@dataclass(frozen=True, eq=False)
class LesionTruth:
    """Where one lesion is in one stack (voxel indices, inclusive bounds)."""

    kind: str
    slices: tuple[int, int]
    box: tuple[int, int, int, int, int, int]
    mask: np.ndarray

    def to_dict(self) -> dict[str, object]:
        """JSON-able form (without the mask)."""
        return {"kind": self.kind, "slices": list(self.slices), "box": list(self.box)}

    def near_slice(self, index: int, margin: int = 1) -> bool:
        """Whether slice ``index`` lies within the lesion's slices, give or take ``margin``."""
        return self.slices[0] - margin <= index <= self.slices[1] + margin

    def distance(self, point: tuple[int, int, int], spacing: tuple[float, float, float]) -> float:
        """Distance (mm) from a voxel (slice, row, column) to the lesion's box; 0 inside it."""
        gaps = [
            max(self.box[2 * a] - point[a], point[a] - self.box[2 * a + 1], 0) * spacing[a]
            for a in range(3)
        ]
        return float(np.hypot.reduce(gaps))


@dataclass(frozen=True, eq=False)
class PhantomStudy:
    """A synthetic study: labels, the three stacks, and per-stack lesion truth."""

    seed: int
    labels: dict[str, int]
    series: dict[str, Series]
    truth: dict[str, list[LesionTruth]]
    lesions: tuple[str, ...]

    def to_json(self) -> str:
        """Ground truth as JSON: labels, lesion kinds, and per plane the lesion slices and boxes."""
        return json.dumps(
            {
                "seed": self.seed,
                "labels": self.labels,
                "lesions": list(self.lesions),
                "planes": {
                    plane: {
                        "shape": list(self.series[plane].shape),
                        "lesions": [t.to_dict() for t in items],
                    }
                    for plane, items in self.truth.items()
                },
            },
            indent=2,
        )


def draw_labels(rng: np.random.Generator, prevalence: dict[str, float]) -> dict[str, bool]:
    """Random MRNet labels: tears first, abnormal if torn or by its own prevalence."""
    acl = bool(rng.random() < prevalence.get("acl", 0.0))
    meniscus = bool(rng.random() < prevalence.get("meniscus", 0.0))
    other = bool(rng.random() < prevalence.get("abnormal", 0.0))
    return {"acl": acl, "meniscus": meniscus, "abnormal": acl or meniscus or other}


def _truth(kind: str, mask: np.ndarray) -> LesionTruth | None:
    """Slice range and bounding box of a resampled lesion mask, None if it misses the stack."""
    if not mask.any():
        return None
    s, r, c = (np.flatnonzero(mask.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1)))
    box = (int(s[0]), int(s[-1]), int(r[0]), int(r[-1]), int(c[0]), int(c[-1]))
    return LesionTruth(kind, (box[0], box[1]), box, mask)


def _uid(seed: int, *parts: object) -> str:
    """A deterministic DICOM UID under the 2.25 (UUID-derived) root."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).hexdigest()
    return "2.25." + str(int(digest[:30], 16))


def generate_study(
    seed: int, config: PhantomConfig | None = None, labels: dict[str, bool] | None = None
) -> PhantomStudy:
    """One three-plane synthetic knee study.

    Args:
        seed: Seed of every random choice (anatomy, lesions, acquisition, noise).
        config: How studies vary (defaults: PhantomConfig()).
        labels: Force these labels (``acl``, ``meniscus``, ``abnormal``); a tear forces abnormal.

    Returns:
        Stacks as :class:`~napari_elnet.common.series.Series` (float32 (S, H, W), geometry in LPS mm).
    """
    config = config or PhantomConfig()
    rng = np.random.default_rng(seed)
    wanted = draw_labels(rng, config.prevalence)
    if labels is not None:
        wanted |= {k: bool(v) for k, v in labels.items()}
        wanted["abnormal"] = wanted["abnormal"] or wanted["acl"] or wanted["meniscus"]
    anatomy = Anatomy(
        scale=float(rng.uniform(*config.scale)),
        flexion_deg=float(rng.uniform(*config.flexion_deg)),
        left=bool(rng.random() < 0.5),
    )
    grid = knee_grid(anatomy.scale)
    tissue, parts = build_knee(grid, anatomy)
    lesions = add_lesions(tissue, grid, parts, plan_lesions(wanted, rng), rng)
    signal = _tissue_signal(tissue, config.contrast, rng)
    if anatomy.left:
        signal = np.ascontiguousarray(signal[::-1])
        lesions = [Lesion(les.kind, les.mask[::-1]) for les in lesions]
    study_uid = _uid(seed, "study")
    info = StudyInfo(
        study_uid=study_uid,
        accession_number=f"PH{seed:08d}",
        study_date="20260101",
        study_description="MR KNEE PHANTOM",
        patient_id=f"PHANTOM-{seed:06d}",
        patient_name=f"PHANTOM^KNEE-{seed:06d}",
    )
    series, truth = {}, {}
    center = np.array([0.0, 4.0, 2.0]) + rng.uniform(-5, 5, 3)
    scanner_scale = float(rng.uniform(800.0, 2500.0))
    for number, plane in enumerate(PLANE_ORDER, start=1):
        series[plane], truth[plane] = _acquire(
            plane, number, signal, lesions, grid, center, scanner_scale, config, rng, info, seed
        )
    final_labels = {task: int(wanted[task]) for task in TASKS}
    return PhantomStudy(seed, final_labels, series, truth, tuple(les.kind for les in lesions))


def _tissue_signal(tissue: np.ndarray, contrast: str, rng: np.random.Generator) -> np.ndarray:
    """MR signal of the tissue volume with a gentle low-frequency texture, (X, Y, Z) float32."""
    signal = signal_table(contrast)[tissue]
    coarse = rng.normal(1.0, 0.06, (6, 6, 6)).astype(np.float32)
    return signal * upsample_trilinear(coarse, tissue.shape)


def _acquire(
    plane: str,
    number: int,
    signal: np.ndarray,
    lesions: list[Lesion],
    grid,
    center: np.ndarray,
    scanner_scale: float,
    config: PhantomConfig,
    rng: np.random.Generator,
    info: StudyInfo,
    seed: int,
) -> tuple[Series, list[LesionTruth]]:
    """One stack of the study with its lesion truth."""
    thickness = float(rng.uniform(*config.thickness_mm))
    gap = float(rng.choice([0.0, 0.0, 0.3, 0.5]))
    spacing = thickness + gap
    extent = {"sagittal": 130.0, "coronal": 120.0, "axial": 125.0}[plane] * float(
        rng.uniform(0.9, 1.1)
    )
    slices = int(np.clip(round(extent / spacing), *config.slices))
    matrix = int(rng.integers(config.matrix[0] // 32, config.matrix[1] // 32 + 1) * 32)
    matrix = int(np.clip(matrix, *config.matrix))
    fov = float(rng.uniform(*config.fov_mm))
    geometry = stack_geometry(plane, center, fov, matrix, slices, thickness, gap)
    clean = resample(signal, grid, geometry)
    bias = bias_field(geometry.shape[1:], rng)
    noisy = rician(clean * bias, float(rng.uniform(*config.noise)), rng)
    array = noisy * np.float32(scanner_scale)
    truth = []
    for lesion in lesions:
        mask = resample(lesion.mask.astype(np.float32), grid, geometry) >= np.float32(0.3)
        item = _truth(lesion.kind, mask)
        if item is not None:
            truth.append(item)
    foreground = array[array > np.percentile(array, 60)]
    low, high = np.percentile(foreground, (1, 99.5))
    series = Series(
        array=array,
        spacing=geometry.spacing,
        plane=plane,  # type: ignore[arg-type]
        orientation=geometry.orientation,
        origin=tuple(float(v) for v in geometry.origin),  # type: ignore[arg-type]
        number=number,
        description=f"{DESCRIPTIONS[config.contrast]} {SHORT[plane]}",
        window=(float((low + high) / 2), float(high - low)),
        uid=_uid(seed, "series", plane),
        modality="MR",
        study=info,
    )
    return series, truth
