"""Lesions with ground-truth masks: ACL tear, meniscal tear, and other abnormalities.

Each lesion is painted over the normal knee (only over the tissues it can replace) and keeps the
grid voxels it took as its mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from napari_elnet.phantom.anatomy import KneeParts
from napari_elnet.phantom.canvas import Box, Canvas, paint
from napari_elnet.phantom.shapes import Capsule, Ellipsoid, MeniscusWedge, Solid
from napari_elnet.phantom.tissues import Tissue

LESION_TASK = {
    "acl_tear": "acl",
    "meniscal_tear": "meniscus",
    "effusion": "abnormal",
    "bone_marrow_edema": "abnormal",
    "cartilage_defect": "abnormal",
}
"""The MRNet label each lesion kind makes positive (every lesion also makes ``abnormal`` positive)."""
OTHER_ABNORMALITIES = ("effusion", "bone_marrow_edema", "cartilage_defect")
SOFT = (Tissue.FAT, Tissue.MUSCLE, Tissue.FLUID, Tissue.SYNOVIUM, Tissue.LIGAMENT)


@dataclass(frozen=True)
class Lesion:
    """One lesion: its kind, a grid box and its voxels in that box (bool)."""

    kind: str
    box: Box
    mask: np.ndarray

    def mirrored(self, nx: int) -> Lesion:
        """The same lesion after the volume is flipped along x (a left knee)."""
        sx = self.box[0]
        box = (slice(nx - sx.stop, nx - sx.start), self.box[1], self.box[2])
        return Lesion(self.kind, box, self.mask[::-1])


def _merge(kind: str, painted: list[tuple[Box, np.ndarray]]) -> Lesion:
    """One lesion from the (box, voxels) of several paint calls."""
    painted = [(b, m) for b, m in painted if m.size and m.any()]
    if not painted:
        return Lesion(kind, (slice(0, 0),) * 3, np.zeros((0, 0, 0), bool))
    lo = [min(b[i].start for b, _ in painted) for i in range(3)]
    hi = [max(b[i].stop for b, _ in painted) for i in range(3)]
    mask = np.zeros([h - low for low, h in zip(lo, hi, strict=True)], bool)
    for b, m in painted:
        mask[tuple(slice(b[i].start - lo[i], b[i].stop - lo[i]) for i in range(3))] |= m
    return Lesion(kind, tuple(slice(a, b) for a, b in zip(lo, hi, strict=True)), mask)


def acl_tear(canvas: Canvas, parts: KneeParts, rng: np.random.Generator) -> Lesion:
    """Complete mid-substance tear: a gap in the ligament filled with fluid, edema around it."""
    acl = parts.acl
    start = float(rng.uniform(0.3, 0.45))
    span = (start, start + float(rng.uniform(0.25, 0.35)))
    pose = parts.femur_pose
    middle = np.asarray(acl.a) + (np.asarray(acl.b) - np.asarray(acl.a)) * (sum(span) / 2)
    size = acl.half_width * float(rng.uniform(1.4, 1.8))
    cloud = Ellipsoid(tuple(middle), (size * 0.9, size * 1.2, size))
    edema = paint(canvas, cloud, Tissue.EDEMA, pose, SOFT)
    core = Capsule(acl.a, acl.b, acl.half_width * 1.05, span)
    fluid = paint(canvas, core, Tissue.FLUID, pose, (*SOFT, Tissue.EDEMA))
    return _merge("acl_tear", [edema, fluid])


def meniscal_tear(canvas: Canvas, parts: KneeParts, rng: np.random.Generator) -> Lesion:
    """Linear fluid signal in the body and posterior horn of a meniscus reaching its surface.

    Horizontal tears split the wedge at mid height out to its free edge; vertical (longitudinal)
    tears cut it from its upper to its lower surface at a fixed radius. Some tears come with a
    parameniscal cyst at the rim.
    """
    side = "medial" if rng.random() < 0.7 else "lateral"
    wedge = parts.menisci[side]
    body = 0.0 if side == "medial" else np.pi  # the rim away from the notch
    centre = body + (np.pi / 2 - body) * float(rng.uniform(0.3, 0.7))  # towards the back horn
    half_arc = np.deg2rad(float(rng.uniform(40.0, 60.0)))
    vertical = rng.random() < 0.4
    level = wedge.z_base + wedge.height * float(rng.uniform(0.3, 0.45))
    reach = float(rng.uniform(0.55, 0.75) if vertical else rng.uniform(0.8, 0.9))
    radius = wedge.r_in + (wedge.r_out - wedge.r_in) * reach
    width = 2.8 if vertical else 2.6
    tear = _Cleft(wedge, centre, half_arc, vertical, level, radius, width)
    painted = [paint(canvas, tear, Tissue.FLUID, parts.tibia_pose, (Tissue.MENISCUS,))]
    if rng.random() < 0.6:
        rim = wedge.r_out + 3.0
        size = float(rng.uniform(4.5, 7.0))
        cx, cy = wedge.center
        cyst = Ellipsoid(
            (cx + rim * np.cos(centre), cy + rim * np.sin(centre), wedge.z_base + 3.0),
            (size, size * 0.9, size * 0.7),
        )
        painted.append(paint(canvas, cyst, Tissue.FLUID, parts.tibia_pose, SOFT))
    return _merge("meniscal_tear", painted)


@dataclass(frozen=True)
class _Cleft(Solid):
    """A thin sheet cutting a meniscus over an arc: horizontal (at ``level``) or vertical (at
    ``radius``), reaching the free edge (horizontal) or both surfaces (vertical)."""

    wedge: MeniscusWedge
    direction: float
    half_arc: float
    vertical: bool
    level: float
    radius: float
    width: float

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.wedge.bounds()

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        r, angle = self.wedge.polar(x, y)
        arc = (self.wedge.turn(angle, self.direction) - self.half_arc) * np.maximum(r, 1.0)
        if self.vertical:
            sheet = np.abs(r - self.radius) - self.width / 2
        else:
            sheet = np.maximum(np.abs(z - self.level) - self.width / 2, r - self.radius)
        return np.maximum(sheet, arc)


def effusion(canvas: Canvas, parts: KneeParts, rng: np.random.Generator) -> Lesion:
    """Joint effusion: a distended suprapatellar recess and fluid in the posterior recesses."""
    grow = float(rng.uniform(5.0, 9.0))
    r = parts.recess
    recess = Ellipsoid(
        (r.center[0], r.center[1] + grow / 3, r.center[2] + 4),
        (r.radii[0] + 6, r.radii[1] + grow, r.radii[2] + 8),
    )
    painted = [paint(canvas, recess, Tissue.FLUID, parts.femur_pose, SOFT)]
    for condyle in parts.condyles.values():
        cx, cy, cz = condyle.center
        pouch = Ellipsoid((cx, cy + condyle.radii[1] * 0.9, cz + 4), (9, 4 + grow / 3, 12))
        painted.append(paint(canvas, pouch, Tissue.FLUID, parts.femur_pose, SOFT))
    return _merge("effusion", painted)


def bone_marrow_edema(canvas: Canvas, parts: KneeParts, rng: np.random.Generator) -> Lesion:
    """A bright, ill-defined region in the marrow of a femoral condyle or a tibial plateau."""
    radii = tuple(float(v) for v in rng.uniform(7.0, 11.0, 3))
    if rng.random() < 0.5:
        condyle = parts.condyles["lateral" if rng.random() < 0.6 else "medial"]
        cx, cy, cz = condyle.center
        center, pose = (cx, cy - 4.0, cz - 8.0), parts.femur_pose
    else:
        cx, cy = parts.plateaus["medial" if rng.random() < 0.5 else "lateral"]
        center, pose = (cx, cy, parts.tibia_top - 9.0), parts.tibia_pose
    painted = paint(canvas, Ellipsoid(center, radii), Tissue.EDEMA, pose, (Tissue.MARROW,))
    return _merge("bone_marrow_edema", [painted])


def cartilage_defect(canvas: Canvas, parts: KneeParts, rng: np.random.Generator) -> Lesion:
    """A full-thickness cartilage defect filled with fluid, on a weight-bearing condyle or on the
    trochlea."""
    size = float(rng.uniform(5.0, 8.0))
    if rng.random() < 0.5:
        condyle = parts.condyles["medial" if rng.random() < 0.7 else "lateral"]
        cx, cy, cz = condyle.center
        center = (cx, cy + float(rng.uniform(-6, 6)), cz - condyle.radii[2] - 1.2)
        radii = (size, size, 3.5)
    else:
        center = (float(rng.uniform(-12, 12)), -20.0, float(rng.uniform(18, 30)))
        radii = (size, 3.5, size)
    painted = paint(
        canvas, Ellipsoid(center, radii), Tissue.FLUID, parts.femur_pose, (Tissue.CARTILAGE,)
    )
    return _merge("cartilage_defect", [painted])


MAKERS: dict[str, Callable[[Canvas, KneeParts, np.random.Generator], Lesion]] = {
    "acl_tear": acl_tear,
    "meniscal_tear": meniscal_tear,
    "effusion": effusion,
    "bone_marrow_edema": bone_marrow_edema,
    "cartilage_defect": cartilage_defect,
}


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
        kinds += [str(k) for k in rng.choice(OTHER_ABNORMALITIES, size=count, replace=False)]
    return kinds


def add_lesions(
    canvas: Canvas, parts: KneeParts, kinds: list[str], rng: np.random.Generator
) -> list[Lesion]:
    """Apply lesions in place; a lesion that found no tissue to replace is dropped."""
    lesions = [MAKERS[kind](canvas, parts, rng) for kind in kinds]
    return [lesion for lesion in lesions if lesion.mask.any()]
