"""Lesions with ground-truth masks: ACL tear, meniscal tear, and other abnormalities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_elnet.phantom.anatomy import KneeParts
from napari_elnet.phantom.shapes import Capsule, Ellipsoid, Grid, Pose, paint
from napari_elnet.phantom.tissues import Tissue

LESION_TASK = {
    "acl_tear": "acl",
    "meniscal_tear": "meniscus",
    "effusion": "abnormal",
    "bone_marrow_edema": "abnormal",
    "cartilage_defect": "abnormal",
}
"""The MRNet label each lesion kind makes positive (every lesion also makes ``abnormal`` positive)."""


@dataclass(frozen=True)
class Lesion:
    """One lesion: its kind and its voxels on the phantom grid (bool, grid shape)."""

    kind: str
    mask: np.ndarray


def acl_tear(labels: np.ndarray, grid: Grid, parts: KneeParts, rng: np.random.Generator) -> Lesion:
    """Full-thickness mid-substance tear: a gap in the ligament filled with edema and fluid."""
    acl = parts.acl
    start = float(rng.uniform(0.2, 0.35))
    gap = Capsule(acl.a, acl.b, acl.radius * 2.6, (start, start + float(rng.uniform(0.4, 0.55))))
    mask = np.zeros(grid.shape, bool)
    allowed = (Tissue.LIGAMENT, Tissue.FAT, Tissue.FLUID)
    paint(labels, grid, gap, Tissue.EDEMA, parts.femur_pose, only=allowed, mask=mask)
    # Haemarthrosis-like fluid in the torn ligament's bed.
    core = Capsule(acl.a, acl.b, acl.radius * 1.6, gap.t_range)
    paint(labels, grid, core, Tissue.FLUID, parts.femur_pose, only=(Tissue.EDEMA,))
    return Lesion("acl_tear", mask)


def meniscal_tear(
    labels: np.ndarray, grid: Grid, parts: KneeParts, rng: np.random.Generator
) -> Lesion:
    """Linear fluid signal in a meniscus' horn that reaches an articular surface.

    Horizontal tears split the wedge at mid height out to its free edge; vertical tears cut it
    from top to bottom at a fixed radius.
    """
    side = "medial" if rng.random() < 0.7 else "lateral"
    wedge = parts.menisci[side]
    horn = np.pi / 2 if rng.random() < 0.75 else -np.pi / 2  # +y posterior horn, -y anterior
    half_arc = np.deg2rad(float(rng.uniform(45, 65)))
    width = 2.5 * parts.scale
    vertical = rng.random() < 0.5
    level = wedge.z_base + wedge.height * float(rng.uniform(0.35, 0.6))
    radius = wedge.r_in + (wedge.r_out - wedge.r_in) * float(rng.uniform(0.35, 0.6))
    low, high = wedge.local_bounds()
    box = grid.box(low, high)
    x, y, z = grid.points(box)
    r, angle = wedge.polar(x, y)
    turn = np.abs(np.mod(angle - horn + np.pi, 2 * np.pi) - np.pi)
    cleft = (np.abs(r - radius) <= width / 2) if vertical else (np.abs(z - level) <= width / 2)
    if not vertical:
        cleft = cleft & (r <= radius + (wedge.r_out - wedge.r_in) * 0.3)  # from the free edge
    inside = cleft & (turn <= half_arc) & (labels[box] == Tissue.MENISCUS)
    labels[box][inside] = Tissue.FLUID
    mask = np.zeros(grid.shape, bool)
    mask[box] = inside
    # A parameniscal cyst at the torn horn's periphery: the common secondary sign of a tear.
    cx, cy = wedge.center
    rim = wedge.r_out + 4.0 * parts.scale
    size = float(rng.uniform(6.0, 8.0)) * parts.scale
    cyst = Ellipsoid(
        (cx + rim * np.cos(horn), cy + rim * np.sin(horn), wedge.z_base + wedge.height * 0.6),
        (size, size * 0.9, size * 0.75),
    )
    soft = (Tissue.FAT, Tissue.MUSCLE, Tissue.LIGAMENT, Tissue.MENISCUS, Tissue.SKIN)
    paint(labels, grid, cyst, Tissue.FLUID, only=soft, mask=mask)
    return Lesion("meniscal_tear", mask)


def effusion(labels: np.ndarray, grid: Grid, parts: KneeParts, rng: np.random.Generator) -> Lesion:
    """Joint effusion: a distended suprapatellar recess and fluid around the condyles."""
    s = parts.scale
    grow = float(rng.uniform(5.0, 9.0)) * s
    r = parts.recess
    recess = Ellipsoid(r.center, (r.radii[0] + 4 * s, r.radii[1] + grow, r.radii[2] + 6 * s))
    mask = np.zeros(grid.shape, bool)
    soft = (Tissue.FAT, Tissue.MUSCLE, Tissue.FLUID)
    paint(labels, grid, recess, Tissue.FLUID, parts.femur_pose, only=soft, mask=mask)
    for condyle in parts.condyles.values():
        cx, cy, cz = condyle.center
        pouch = Ellipsoid((cx, cy + condyle.radii[1] * 0.8, cz), (10 * s, 6 * s, 12 * s))
        paint(labels, grid, pouch, Tissue.FLUID, parts.femur_pose, only=soft, mask=mask)
    return Lesion("effusion", mask)


def bone_marrow_edema(
    labels: np.ndarray, grid: Grid, parts: KneeParts, rng: np.random.Generator
) -> Lesion:
    """A bright, ill-defined region in the marrow of a femoral condyle or the tibial plateau."""
    s = parts.scale
    rx, ry, rz = (float(v) * s for v in rng.uniform(7.0, 11.0, 3))
    radii = (rx, ry, rz)
    if rng.random() < 0.5:
        condyle = parts.condyles["lateral" if rng.random() < 0.6 else "medial"]
        cx, cy, cz = condyle.center
        center, pose = (cx, cy - 4 * s, cz - 6 * s), parts.femur_pose
    else:
        x = 19 * s * (1 if rng.random() < 0.5 else -1)
        center, pose = (x, 4 * s, parts.tibia_top - 9 * s), Pose()
    mask = np.zeros(grid.shape, bool)
    paint(
        labels, grid, Ellipsoid(center, radii), Tissue.EDEMA, pose, only=(Tissue.MARROW,), mask=mask
    )
    return Lesion("bone_marrow_edema", mask)


def cartilage_defect(
    labels: np.ndarray, grid: Grid, parts: KneeParts, rng: np.random.Generator
) -> Lesion:
    """A full-thickness cartilage defect on a weight-bearing femoral condyle, filled with fluid."""
    s = parts.scale
    condyle = parts.condyles["medial" if rng.random() < 0.7 else "lateral"]
    cx, cy, cz = condyle.center
    center = (cx, cy + float(rng.uniform(-6, 6)) * s, cz - condyle.radii[2] - 1.0 * s)
    size = float(rng.uniform(5.0, 8.0)) * s
    mask = np.zeros(grid.shape, bool)
    paint(
        labels,
        grid,
        Ellipsoid(center, (size, size, 4.0 * s)),
        Tissue.FLUID,
        parts.femur_pose,
        only=(Tissue.CARTILAGE,),
        mask=mask,
    )
    return Lesion("cartilage_defect", mask)


MAKERS = {
    "acl_tear": acl_tear,
    "meniscal_tear": meniscal_tear,
    "effusion": effusion,
    "bone_marrow_edema": bone_marrow_edema,
    "cartilage_defect": cartilage_defect,
}
OTHER_ABNORMALITIES = ("effusion", "bone_marrow_edema", "cartilage_defect")


def plan_lesions(labels: dict[str, bool], rng: np.random.Generator) -> list[str]:
    """Lesion kinds that realize the given MRNet labels (a tear implies abnormal)."""
    kinds = []
    if labels["acl"]:
        kinds.append("acl_tear")
    if labels["meniscus"]:
        kinds.append("meniscal_tear")
    tears = bool(kinds)
    if labels["abnormal"] and (not tears or rng.random() < 0.6):
        count = 1 if rng.random() < 0.6 else 2
        kinds += list(rng.choice(OTHER_ABNORMALITIES, size=count, replace=False))
    return kinds


def add_lesions(
    labels: np.ndarray, grid: Grid, parts: KneeParts, kinds: list[str], rng: np.random.Generator
) -> list[Lesion]:
    """Apply lesions in place; empty masks (a lesion that found no tissue) are dropped."""
    lesions = [MAKERS[kind](labels, grid, parts, rng) for kind in kinds]
    return [lesion for lesion in lesions if lesion.mask.any()]
