"""The normal knee: bones, cartilage, menisci, ligaments, fluid, fat, muscle and skin.

Patient coordinates (LPS, mm) of a right knee in extension: +x towards the patient's left (the
medial side of a right knee), +y posterior, +z superior; the joint line is near z = 0. A left knee
is the mirror image (the study flips the volume along x). Sizes below are for scale 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_elnet.phantom.canvas import Canvas, Grid, Pose, paint
from napari_elnet.phantom.shapes import (
    Band,
    Box,
    Capsule,
    Difference,
    Ellipsoid,
    EllipticCylinder,
    Intersection,
    MeniscusWedge,
    Offset,
    Shell,
    Solid,
    Union,
)
from napari_elnet.phantom.tissues import Tissue

GRID_STEP = 1.0
"""Voxel size (mm) of the phantom's internal volume."""
CORTEX_MM = 1.8
FEMORAL_CARTILAGE_MM = 2.4
TIBIAL_CARTILAGE_MM = 2.2
PATELLAR_CARTILAGE_MM = 3.0
N_JITTER = 8


@dataclass(frozen=True)
class Anatomy:
    """Variation of one knee.

    Attributes:
        scale: Overall size factor.
        flexion_deg: Flexion of the femur and patella about the joint (degrees).
        left: A left knee (mirror image of a right one).
        jitter: ``N_JITTER`` values in [-1, 1] that perturb individual shapes by a few percent.
    """

    scale: float = 1.0
    flexion_deg: float = 0.0
    left: bool = False
    jitter: tuple[float, ...] = (0.0,) * N_JITTER

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        scale: tuple[float, float],
        flexion_deg: tuple[float, float],
    ) -> Anatomy:
        """A random knee within the given ranges."""
        return cls(
            scale=float(rng.uniform(*scale)),
            flexion_deg=float(rng.uniform(*flexion_deg)),
            left=bool(rng.random() < 0.5),
            jitter=tuple(float(v) for v in rng.uniform(-1.0, 1.0, N_JITTER)),
        )


@dataclass(frozen=True)
class KneeParts:
    """The structures lesions are placed on (local, unscaled frames) and their poses."""

    femur: Solid
    tibia: Solid
    patella: Solid
    acl: Band
    menisci: dict[str, MeniscusWedge]
    condyles: dict[str, Ellipsoid]
    plateaus: dict[str, tuple[float, float]]
    recess: Ellipsoid
    tibia_top: float
    femur_pose: Pose
    tibia_pose: Pose
    scale: float


def knee_grid(scale: float = 1.0, step: float = GRID_STEP) -> Grid:
    """A grid covering the knee of this size, symmetric about x = 0."""
    half = np.array([72.0, 70.0, 100.0]) * max(scale, 1.0)
    shape = tuple(int(n) for n in np.ceil(2 * half / step) + 1)
    start = tuple(float(-(n - 1) * step / 2) for n in shape)
    return Grid(start, shape, step)  # type: ignore[arg-type]


def _paint_limb(canvas: Canvas, scale: float) -> None:
    """Skin, subcutaneous fat and a muscle core: one elliptic cross-section along the whole z."""
    grid = canvas.grid
    x = grid.axis(0)[:, None] / scale
    y = grid.axis(1)[None, :] / scale
    labels = np.zeros(grid.shape[:2], np.uint8)
    signal = np.zeros(grid.shape[:2], np.float32)
    step = grid.step / scale
    for (rx, ry), tissue in (
        ((62, 58), Tissue.SKIN),
        ((60, 56), Tissue.FAT),
        ((53, 49), Tissue.MUSCLE),
    ):
        k = np.sqrt((x / rx) ** 2 + ((y - 4) / ry) ** 2)
        alpha = np.clip(0.5 - (k - 1) * min(rx, ry) / step, 0.0, 1.0)
        labels[alpha >= 0.5] = tissue
        signal += alpha * (canvas.table[tissue] - signal)
    canvas.labels[...] = labels[:, :, None]
    canvas.signal[...] = signal[:, :, None]


def _bone(canvas: Canvas, solid: Solid, pose: Pose) -> None:
    """A bone: cortex over its outer ``CORTEX_MM``, fatty marrow inside."""
    paint(canvas, solid, Tissue.CORTEX, pose)
    paint(canvas, Offset(solid, -CORTEX_MM), Tissue.MARROW, pose)


def build_knee(grid: Grid, anatomy: Anatomy, table: np.ndarray) -> tuple[Canvas, KneeParts]:
    """The normal knee on ``grid`` (a right knee; the caller mirrors a left one).

    Args:
        grid: Where to build it.
        anatomy: Its size, flexion and shape jitter.
        table: Signal of each tissue label (see ``tissues.signal_table``).

    Returns:
        The canvas (labels and signal) and the parts lesions attach to.
    """
    s, j = anatomy.scale, anatomy.jitter
    canvas = Canvas.empty(grid, table)
    femur_pose = Pose(s, anatomy.flexion_deg, (0.0, 8.0 * s, 20.0 * s))
    tibia_pose = Pose(s)
    _paint_limb(canvas, s)
    muscle_only = (Tissue.MUSCLE,)
    # Around the joint the core is fat (prepatellar, periarticular); muscles come back above
    # (quadriceps, hamstrings) and below (calf), and as the gastrocnemius heads posteriorly.
    paint(canvas, Ellipsoid((0, -30, 0), (60, 30, 46)), Tissue.FAT, tibia_pose, muscle_only)
    paint(canvas, Ellipsoid((0, 0, -4), (60, 32, 24)), Tissue.FAT, tibia_pose, muscle_only)
    for solid in (
        Ellipsoid((21, 34, -10), (14, 13, 44)),  # medial gastrocnemius head
        Ellipsoid((-19, 34, -12), (12, 13, 42)),  # lateral gastrocnemius head
        Ellipsoid((34, 24, 36), (13, 17, 42)),  # semimembranosus / sartorius
        Ellipsoid((-34, 24, 36), (12, 17, 42)),  # biceps femoris
        Band((-6, 28, 2), (10, 20, -38), (1, 0, 0), 15, 4, 3),  # popliteus
    ):
        paint(canvas, solid, Tissue.MUSCLE, tibia_pose)
    paint(canvas, Ellipsoid((0, 36, 12), (9, 11, 34)), Tissue.FAT, tibia_pose)  # popliteal fossa
    paint(canvas, Ellipsoid((0, -24, -8), (20, 9, 13)), Tissue.FAT, tibia_pose)  # Hoffa's fat pad
    paint(canvas, Ellipsoid((0, -24, 58), (20, 5, 22)), Tissue.FAT, femur_pose)  # prefemoral fat
    recess = Ellipsoid((0, -26.5, 46), (20, 1.6, 13))
    paint(canvas, recess, Tissue.FLUID, femur_pose)  # suprapatellar recess, a thin film
    # Femur: shaft, metaphysis and condyles with an intercondylar notch and a trochlear groove.
    condyles = {
        "medial": Ellipsoid((20, 8, 20), (16 + 1.0 * j[0], 27, 20)),
        "lateral": Ellipsoid((-20, 7, 20), (15 + 1.0 * j[1], 26, 20 + 0.8 * j[2])),
    }
    notch = Ellipsoid((0, 20, 4), (8.5 + 0.8 * j[3], 22, 20))
    femur = Difference(
        Difference(
            Union(
                (
                    Capsule((0, -2, 40), (0, -6, 240), 13.5),
                    Ellipsoid((0, 2, 33), (34, 22, 24)),
                    *condyles.values(),
                ),
                k=8.0,
            ),
            notch,
        ),
        Capsule((0, -27, 6), (0, -30, 48), 8.5),  # trochlear groove
    )
    paint(
        canvas, Intersection((notch, Box((-9, -2, -6), (9, 27, 30)))), Tissue.SYNOVIUM, femur_pose
    )
    # Ligaments and tendons (painted before the bones, which then cover their insertions).
    acl = Band((-9, 20, 15), (-2, -6, -5), (1, 0.3, 0), 5.0, 3.0, 2.0)
    for solid, pose in (
        (acl, femur_pose),
        (Band((8, 3, 15), (1, 26, -13), (1, 0, 0), 6.0, 3.5, 2.5), femur_pose),  # PCL
        (Band((39.5, 6, 32), (38, 2, -42), (0, 1, 0), 7.0, 1.6, 1.0), tibia_pose),  # MCL
        (Capsule((-40, 12, 26), (-34, 22, -27), 2.4), tibia_pose),  # LCL
        (Band((0, -41, 16), (0, -26, -31), (1, 0, 0), 12.0, 3.0, 2.0), tibia_pose),  # patellar t.
        (Band((0, -38, 44), (0, -30, 110), (1, 0, 0), 16.0, 3.5, 2.0), femur_pose),  # quadriceps t.
    ):
        paint(canvas, solid, Tissue.LIGAMENT, pose)
    _bone(canvas, femur, femur_pose)
    # Patella over the trochlea.
    patella = Ellipsoid((0, -34, 30 + 2.0 * j[4]), (21, 8.5, 17))
    _bone(canvas, patella, femur_pose)
    patellar_cartilage = Intersection(
        (Shell(patella, 0.0, PATELLAR_CARTILAGE_MM), Box((-25, -33, 10), (25, -20, 50)))
    )
    paint(canvas, patellar_cartilage, Tissue.CARTILAGE, femur_pose)
    # Tibia (plateau, metaphysis, tuberosity, spines) and fibula.
    tibia_top = -5.5
    tibia = Union(
        (
            Offset(EllipticCylinder((0, 5), (35, 23), -16, tibia_top - 3), 3.0),
            Offset(EllipticCylinder((0, 7), (18, 16), -48, -16, (35, 23)), 3.0),
            Capsule((0, 9, -45), (0, 11, -240), 13.0),
            Ellipsoid((0, -16, -30), (11, 8, 13)),
            Ellipsoid((-5, 4, tibia_top), (4, 7, 5)),
            Ellipsoid((5, 6, tibia_top), (4, 7, 5)),
        ),
        k=5.0,
    )
    _bone(canvas, tibia, tibia_pose)
    fibula = Union(
        (Ellipsoid((-33, 22, -31), (9, 9, 8)), Capsule((-33, 22, -31), (-36, 24, -240), 7.0)),
        k=5.0,
    )
    _bone(canvas, fibula, tibia_pose)
    # Articular cartilage: femoral (condyles and trochlea, not the notch), tibial plateaus.
    articular = Union(
        (
            EllipticCylinder((20, 7), (12.5, 45), -10, 40),  # medial condyle, not its side
            EllipticCylinder((-20, 7), (12, 45), -10, 40),  # lateral condyle
            Box((-24, -40, -10), (24, -4, 40)),  # trochlea
        )
    )
    femoral_cartilage = Difference(
        Intersection((Shell(femur, 0.0, FEMORAL_CARTILAGE_MM), articular)),
        Union((Offset(notch, 2.5), Box((-40, -10, 28), (40, 40, 50)))),
    )
    paint(canvas, femoral_cartilage, Tissue.CARTILAGE, femur_pose)
    plateaus = {"medial": (21.0, 6.0), "lateral": (-21.0, 5.0)}
    for cx, cy in plateaus.values():
        coat = Intersection(
            (
                Shell(tibia, 0.0, TIBIAL_CARTILAGE_MM),
                EllipticCylinder((cx, cy), (14, 19), tibia_top - 4, tibia_top + 4),
            )
        )
        paint(canvas, coat, Tissue.CARTILAGE, tibia_pose)
    # Menisci: C-shaped wedges on the plateaus, open towards the notch; the femoral condyle with
    # its cartilage sits in the wedge's concave upper surface.
    base = tibia_top + TIBIAL_CARTILAGE_MM
    menisci = {
        "medial": MeniscusWedge(
            (21, 7), 8.5, 17.5 + 0.8 * j[5], base, 6.5 + 0.6 * j[6], np.pi, 80.0
        ),
        "lateral": MeniscusWedge((-21, 6), 8.0, 16.0 + 0.8 * j[7], base, 6.5, 0.0, 50.0),
    }
    femur_in_tibia_frame = _FemurInTibiaFrame(femur, femur_pose, tibia_pose)
    for wedge in menisci.values():
        seated = Difference(wedge, Offset(femur_in_tibia_frame, FEMORAL_CARTILAGE_MM))
        paint(canvas, seated, Tissue.MENISCUS, tibia_pose)
    parts = KneeParts(
        femur=femur,
        tibia=tibia,
        patella=patella,
        acl=acl,
        menisci=menisci,
        condyles=condyles,
        plateaus=plateaus,
        recess=recess,
        tibia_top=tibia_top,
        femur_pose=femur_pose,
        tibia_pose=tibia_pose,
        scale=s,
    )
    return canvas, parts


@dataclass(frozen=True)
class _FemurInTibiaFrame(Solid):
    """The femur's distance evaluated at points given in the tibia's local frame."""

    femur: Solid
    femur_pose: Pose
    tibia_pose: Pose

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.femur.bounds()

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        s = self.tibia_pose.scale
        local = self.femur_pose.to_local(x * s, y * s, z * s)
        return self.femur.sdf(*local) * self.femur_pose.scale / s
