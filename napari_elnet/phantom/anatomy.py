"""The normal knee: bones, cartilage, menisci, ligaments, fluid, fat, muscle and skin.

Patient coordinates (LPS, mm) of a right knee in extension: +x towards the patient's left (the
medial side of a right knee), +y posterior, +z superior; the joint line is near z = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np
from scipy import ndimage

from napari_elnet.phantom.shapes import (
    Capsule,
    Ellipsoid,
    EllipticCylinder,
    Grid,
    MeniscusWedge,
    Pose,
    Solid,
    paint,
)
from napari_elnet.phantom.tissues import Tissue

GRID_STEP = 1.25
"""Voxel size (mm) of the phantom's internal tissue volume."""


@dataclass(frozen=True)
class Anatomy:
    """Variation of one knee: overall size, flexion (degrees) and side."""

    scale: float = 1.0
    flexion_deg: float = 0.0
    left: bool = False


@dataclass(frozen=True)
class KneeParts:
    """The structures lesions are placed on, in the local frames used to build the knee."""

    acl: Capsule
    femur_pose: Pose
    menisci: dict[str, MeniscusWedge]
    condyles: dict[str, Ellipsoid]
    tibia_top: float
    recess: Ellipsoid
    scale: float


def knee_grid(scale: float = 1.0, step: float = GRID_STEP) -> Grid:
    """A grid covering the knee of this size, symmetric about x = 0."""
    half = np.array([72.0, 70.0, 100.0]) * max(scale, 1.0)
    shape = tuple(int(n) for n in np.ceil(2 * half / step) + 1)
    start = tuple(float(-(n - 1) * step / 2) for n in shape)
    return Grid(start, shape, step)  # type: ignore[arg-type]


def _bone_with_cortex(labels: np.ndarray, bone: np.ndarray, thickness_voxels: int = 1) -> None:
    """Paint marrow inside ``bone`` and a cortex on its outer layer."""
    inner = ndimage.binary_erosion(bone, iterations=thickness_voxels)
    labels[bone] = Tissue.CORTEX
    labels[inner] = Tissue.MARROW


def build_knee(grid: Grid, anatomy: Anatomy) -> tuple[np.ndarray, KneeParts]:
    """The tissue label volume of a normal knee on ``grid`` (before any mirroring for side).

    Returns:
        labels (uint8, grid.shape) and the parts lesions attach to.
    """
    s = anatomy.scale

    @overload
    def v(a: float, b: float, /) -> tuple[float, float]: ...
    @overload
    def v(a: float, b: float, c: float, /) -> tuple[float, float, float]: ...
    def v(*values: float) -> tuple[float, ...]:
        """Millimetres of a standard knee scaled to this one."""
        return tuple(s * value for value in values)

    femur_pose = Pose(anatomy.flexion_deg, v(0.0, 6.0, 6.0))
    labels = np.zeros(grid.shape, np.uint8)
    # Soft tissue envelope: skin, subcutaneous fat, muscle (thigh above, calf and posterior).
    paint(labels, grid, EllipticCylinder(v(0, 4), v(64, 60), -200, 200), Tissue.SKIN)
    paint(labels, grid, EllipticCylinder(v(0, 4), v(62, 58), -200, 200), Tissue.FAT)
    muscle: list[Solid] = [
        Ellipsoid(v(0, 8, 130), v(55, 50, 85)),  # quadriceps and hamstrings
        Ellipsoid(v(0, 14, -125), v(52, 44, 85)),  # calf
        Ellipsoid(v(22, 36, 8), v(14, 14, 40)),  # medial gastrocnemius head
        Ellipsoid(v(-22, 36, 8), v(13, 14, 38)),  # lateral gastrocnemius head
        Ellipsoid(v(-30, 20, 28), v(12, 20, 30)),  # biceps femoris
        Ellipsoid(v(32, 18, 28), v(12, 22, 30)),  # semimembranosus / sartorius
    ]
    for solid in muscle:
        paint(labels, grid, solid, Tissue.MUSCLE)
    paint(labels, grid, Ellipsoid(v(0, 34, 4), v(10, 8, 22)), Tissue.FAT)  # popliteal fat
    paint(labels, grid, Ellipsoid(v(0, -26, -4), v(17, 9, 12)), Tissue.FAT)  # Hoffa's fat pad
    recess = Ellipsoid(v(0, -17, 40), v(22, 2.5, 14))
    paint(labels, grid, recess, Tissue.FLUID, femur_pose)  # suprapatellar recess
    # Femur: shaft, metaphysis, condyles; intercondylar notch filled with fat.
    femur = np.zeros(grid.shape, bool)
    condyles = {
        "medial": Ellipsoid(v(18, 8, 16), v(15, 23, 17.5)),
        "lateral": Ellipsoid(v(-18, 8, 16), v(15, 22, 17.5)),
    }
    femur_parts = [
        EllipticCylinder(v(0, 4), v(13, 13), s * 36, 200),
        Ellipsoid(v(0, 6, 34), v(30, 22, 22)),
        *condyles.values(),
    ]
    bone_labels = np.zeros(grid.shape, np.uint8)
    for solid in femur_parts:
        paint(bone_labels, grid, solid, 1, femur_pose, mask=femur)
    notch = np.zeros(grid.shape, bool)
    paint(bone_labels, grid, Ellipsoid(v(0, 14, 6), v(7, 14, 12)), 0, femur_pose, mask=notch)
    femur &= ~notch
    # Femoral cartilage: a 2.5 mm layer over the condyles' articular (lower) half.
    cartilage = np.zeros(grid.shape, bool)
    for name, condyle in condyles.items():
        rx, ry, rz = condyle.radii
        shell = Ellipsoid(condyle.center, (rx + 2.5 * s, ry + 2.5 * s, rz + 2.5 * s))
        paint(bone_labels, grid, shell, 2, femur_pose, mask=cartilage)
        del name
    cut = np.zeros(grid.shape, bool)
    paint(
        bone_labels,
        grid,
        EllipticCylinder(v(0, 6), v(60, 60), s * 20, 200),
        0,
        femur_pose,
        mask=cut,
    )
    cartilage &= ~femur & ~cut & ~notch
    labels[cartilage] = Tissue.CARTILAGE
    _bone_with_cortex(labels, femur)
    # Patella with its cartilage, tendons.
    patella = np.zeros(grid.shape, bool)
    paint(bone_labels, grid, Ellipsoid(v(0, -36, 24), v(20, 8, 18)), 3, femur_pose, mask=patella)
    patellar_cart = np.zeros(grid.shape, bool)
    paint(
        bone_labels, grid, Ellipsoid(v(0, -34, 24), v(18, 8, 16)), 4, femur_pose, mask=patellar_cart
    )
    tendons = [
        Capsule(v(0, -38, 8), v(0, -30, -34), 3.5 * s),  # patellar tendon
        Capsule(v(6, -38, 8), v(6, -30, -34), 3.5 * s),
        Capsule(v(-6, -38, 8), v(-6, -30, -34), 3.5 * s),
        Capsule(v(0, -36, 40), v(0, -26, 80), 4.0 * s),  # quadriceps tendon
    ]
    for tendon in tendons:
        paint(labels, grid, tendon, Tissue.LIGAMENT)
    labels[patellar_cart & ~patella] = Tissue.CARTILAGE
    _bone_with_cortex(labels, patella)
    # Tibia (plateau and shaft) with its cartilage, fibula.
    tibia_top = -4.0 * s
    tibia = np.zeros(grid.shape, bool)
    for solid in (
        EllipticCylinder(v(0, 6), v(36, 27), -s * 40, tibia_top),
        EllipticCylinder(v(0, 8), v(15, 15), -200, -s * 30),
        Ellipsoid(v(0, 6, -34), v(30, 22, 14)),
    ):
        paint(bone_labels, grid, solid, 5, mask=tibia)
    tibial_cart = np.zeros(grid.shape, bool)
    for side in (1, -1):
        paint(
            bone_labels,
            grid,
            EllipticCylinder(v(side * 19, 6), v(15, 20), tibia_top, tibia_top + 2.0 * s),
            6,
            mask=tibial_cart,
        )
    labels[tibial_cart] = Tissue.CARTILAGE
    _bone_with_cortex(labels, tibia)
    fibula = np.zeros(grid.shape, bool)
    paint(bone_labels, grid, EllipticCylinder(v(-28, 20), v(7, 7), -200, -s * 32), 7, mask=fibula)
    paint(bone_labels, grid, Ellipsoid(v(-28, 20, -33), v(9, 9, 7)), 7, mask=fibula)
    _bone_with_cortex(labels, fibula)
    # Menisci: C-shaped wedges on the tibial plateau, open towards the notch.
    menisci = {
        "medial": MeniscusWedge(v(19, 6), 8.5 * s, 16.5 * s, tibia_top, 6.0 * s, np.pi),
        "lateral": MeniscusWedge(v(-19, 6), 8.0 * s, 15.5 * s, tibia_top, 6.0 * s, 0.0),
    }
    for wedge in menisci.values():
        paint(labels, grid, wedge, Tissue.MENISCUS)
    # Ligaments: cruciates in the notch, collaterals on the sides.
    acl = Capsule(v(-8, 17, 14), v(3, -6, -3), 3.5 * s)
    ligaments = [
        (acl, femur_pose),
        (Capsule(v(8, 4, 14), v(0, 24, -12), 4.5 * s), femur_pose),  # PCL
        (Capsule(v(41, 8, 28), v(37, 4, -34), 2.2 * s), Pose()),  # MCL
        (Capsule(v(-41, 12, 26), v(-30, 20, -30), 2.2 * s), Pose()),  # LCL
    ]
    for ligament, pose in ligaments:
        paint(labels, grid, ligament, Tissue.LIGAMENT, pose)
    parts = KneeParts(acl, femur_pose, menisci, condyles, tibia_top, recess, s)
    return labels, parts
