"""Signed-distance solids, evaluated with numpy only inside their bounding boxes.

Every solid gives an approximate signed distance (mm) in its own frame: negative inside, zero on the
surface, positive outside. Distances only need to be accurate near the surface: painting uses them
for a one-voxel partial-volume ramp and for shells (cortex, cartilage) a few mm thick.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Points = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Broadcastable x, y, z coordinate arrays (mm)."""


def _bounds(center: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) corners of a box."""
    return center - half, center + half


class Solid:
    """A solid: an axis-aligned bounding box and an approximate signed distance, both local."""

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) corners (mm) of a box that holds the solid."""
        raise NotImplementedError

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Approximate signed distance (mm) at the points, negative inside."""
        raise NotImplementedError


@dataclass(frozen=True)
class Ellipsoid(Solid):
    """Axis-aligned ellipsoid (first-order distance estimate, exact on the surface)."""

    center: tuple[float, float, float]
    radii: tuple[float, float, float]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return _bounds(np.asarray(self.center), np.asarray(self.radii))

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy, cz), (rx, ry, rz) = self.center, self.radii
        u, v, w = (x - cx) / rx, (y - cy) / ry, (z - cz) / rz
        k0 = np.sqrt(u * u + v * v + w * w)
        k1 = np.sqrt((u / rx) ** 2 + (v / ry) ** 2 + (w / rz) ** 2)
        # Deep inside the gradient estimate fails (0 at the centre): (k0 - 1) * min radius bounds it.
        return np.minimum(k0 * (k0 - 1.0) / np.maximum(k1, 1e-6), (k0 - 1.0) * min(rx, ry, rz))


@dataclass(frozen=True)
class EllipticCylinder(Solid):
    """Cylinder along z between ``z0`` and ``z1``; the elliptic cross-section's radii change
    linearly from ``radii0`` (at z0) to ``radii1`` (at z1, default: the same)."""

    center: tuple[float, float]
    radii0: tuple[float, float]
    z0: float
    z1: float
    radii1: tuple[float, float] | None = None

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        r = np.maximum(self.radii0, self.radii1 or self.radii0)
        (cx, cy) = self.center
        return np.array([cx - r[0], cy - r[1], self.z0]), np.array([cx + r[0], cy + r[1], self.z1])

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy), (a0, b0) = self.center, self.radii0
        a1, b1 = self.radii1 or self.radii0
        t = np.clip((z - self.z0) / (self.z1 - self.z0), 0.0, 1.0)
        a, b = a0 + (a1 - a0) * t, b0 + (b1 - b0) * t
        u, v = (x - cx) / a, (y - cy) / b
        k0 = np.sqrt(u * u + v * v)
        k1 = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        radial = np.minimum(k0 * (k0 - 1.0) / np.maximum(k1, 1e-6), (k0 - 1.0) * np.minimum(a, b))
        return np.maximum(radial, np.maximum(self.z0 - z, z - self.z1))


@dataclass(frozen=True)
class Capsule(Solid):
    """Points within ``radius`` of the segment a-b; ``t_range`` keeps the part between those
    fractions of the segment (flat cut ends), e.g. the gap of a torn ligament."""

    a: tuple[float, float, float]
    b: tuple[float, float, float]
    radius: float
    t_range: tuple[float, float] = (0.0, 1.0)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = np.asarray(self.a), np.asarray(self.b)
        return np.minimum(a, b) - self.radius, np.maximum(a, b) + self.radius

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        a, d = np.asarray(self.a, float), np.asarray(self.b, float) - np.asarray(self.a, float)
        length = float(np.linalg.norm(d))
        e = d / length
        px, py, pz = x - a[0], y - a[1], z - a[2]
        s = px * e[0] + py * e[1] + pz * e[2]
        sc = np.clip(s, 0.0, length)
        dist = np.sqrt((px - sc * e[0]) ** 2 + (py - sc * e[1]) ** 2 + (pz - sc * e[2]) ** 2)
        out = dist - self.radius
        if self.t_range != (0.0, 1.0):
            lo, hi = self.t_range[0] * length, self.t_range[1] * length
            out = np.maximum(out, np.maximum(lo - s, s - hi))
        return out


@dataclass(frozen=True)
class Band(Solid):
    """A flat rounded bar along the segment a-b: ligaments and tendons.

    ``across`` gives the direction of the band's width (made perpendicular to the axis); the
    thickness is perpendicular to both.
    """

    a: tuple[float, float, float]
    b: tuple[float, float, float]
    across: tuple[float, float, float]
    half_width: float
    half_thickness: float
    rounding: float = 1.0

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = np.asarray(self.a), np.asarray(self.b)
        r = max(self.half_width, self.half_thickness) + self.rounding
        return np.minimum(a, b) - r, np.maximum(a, b) + r

    def frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Unit axis, width and thickness directions, and the length (mm)."""
        a, b = np.asarray(self.a, float), np.asarray(self.b, float)
        length = float(np.linalg.norm(b - a))
        axis = (b - a) / length
        width = np.asarray(self.across, float) - np.dot(self.across, axis) * axis
        width /= np.linalg.norm(width)
        return axis, width, np.cross(axis, width), length

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        axis, width, thick, length = self.frame()
        px, py, pz = x - self.a[0], y - self.a[1], z - self.a[2]
        r = self.rounding
        half = (length / 2, self.half_width - r, self.half_thickness - r)
        q = [
            np.abs(px * d[0] + py * d[1] + pz * d[2] - c) - h
            for d, c, h in (
                (axis, length / 2, half[0]),
                (width, 0.0, half[1]),
                (thick, 0.0, half[2]),
            )
        ]
        outside = np.sqrt(sum(np.maximum(v, 0.0) ** 2 for v in q))
        inside = np.minimum(np.maximum(q[0], np.maximum(q[1], q[2])), 0.0)
        return outside + inside - r


@dataclass(frozen=True)
class MeniscusWedge(Solid):
    """A C-shaped meniscus: a triangular cross-section rising from ``r_in`` (free edge, height 0)
    to ``r_out`` (rim, ``height``) around a compartment centre, open over ``gap_deg`` degrees
    towards ``gap_dir`` (radians in the x-y plane, 0 = +x)."""

    center: tuple[float, float]
    r_in: float
    r_out: float
    z_base: float
    height: float
    gap_dir: float
    gap_deg: float = 70.0

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        cx, cy = self.center
        r = self.r_out
        return np.array([cx - r, cy - r, self.z_base]), np.array(
            [cx + r, cy + r, self.z_base + self.height]
        )

    def polar(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Radius (mm) and angle (rad) around the compartment centre."""
        dx, dy = x - self.center[0], y - self.center[1]
        return np.sqrt(dx * dx + dy * dy), np.arctan2(dy, dx)

    def turn(self, angle: np.ndarray, direction: float) -> np.ndarray:
        """Absolute angle (rad, 0..pi) between ``angle`` and ``direction``."""
        return np.abs(np.mod(angle - direction + np.pi, 2 * np.pi) - np.pi)

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        r, angle = self.polar(x, y)
        width = self.r_out - self.r_in
        slope = self.height / width
        top = ((z - self.z_base) - slope * (r - self.r_in)) / np.sqrt(1.0 + slope * slope)
        d = np.maximum(np.maximum(self.z_base - z, r - self.r_out), top)
        gap = (np.deg2rad(self.gap_deg / 2) - self.turn(angle, self.gap_dir)) * np.maximum(r, 1.0)
        return np.maximum(d, gap)


@dataclass(frozen=True)
class Union(Solid):
    """Smooth union of solids (polynomial smooth minimum with blend radius ``k`` mm)."""

    parts: tuple[Solid, ...]
    k: float = 0.0

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lows, highs = zip(*(p.bounds() for p in self.parts), strict=True)
        return np.min(lows, axis=0) - self.k, np.max(highs, axis=0) + self.k

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        d = self.parts[0].sdf(x, y, z)
        for part in self.parts[1:]:
            e = part.sdf(x, y, z)
            if self.k > 0:
                h = np.maximum(self.k - np.abs(d - e), 0.0) / self.k
                d = np.minimum(d, e) - h * h * self.k / 4
            else:
                d = np.minimum(d, e)
        return d


@dataclass(frozen=True)
class Difference(Solid):
    """``base`` minus ``cut``."""

    base: Solid
    cut: Solid

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.base.bounds()

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.maximum(self.base.sdf(x, y, z), -self.cut.sdf(x, y, z))


@dataclass(frozen=True)
class Intersection(Solid):
    """Points inside every part."""

    parts: tuple[Solid, ...]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lows, highs = zip(*(p.bounds() for p in self.parts), strict=True)
        return np.max(lows, axis=0), np.min(highs, axis=0)

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        d = self.parts[0].sdf(x, y, z)
        for part in self.parts[1:]:
            d = np.maximum(d, part.sdf(x, y, z))
        return d


@dataclass(frozen=True)
class Shell(Solid):
    """The layer of ``solid`` between signed distances ``inner`` and ``outer`` (mm): e.g. a cortex
    (-2, 0) or a cartilage coat (0, 2.5)."""

    solid: Solid
    inner: float
    outer: float

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low, high = self.solid.bounds()
        return low - max(self.outer, 0.0), high + max(self.outer, 0.0)

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        d = self.solid.sdf(x, y, z)
        return np.maximum(d - self.outer, self.inner - d)


@dataclass(frozen=True)
class Offset(Solid):
    """``solid`` grown (positive ``by``) or shrunk (negative) by ``by`` mm."""

    solid: Solid
    by: float

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low, high = self.solid.bounds()
        return low - max(self.by, 0.0), high + max(self.by, 0.0)

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self.solid.sdf(x, y, z) - self.by


@dataclass(frozen=True)
class Box(Solid):
    """Axis-aligned box [low, high] (mm)."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.low, float), np.asarray(self.high, float)

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (x0, y0, z0), (x1, y1, z1) = self.low, self.high
        d = np.maximum(x0 - x, x - x1)
        d = np.maximum(d, np.maximum(y0 - y, y - y1))
        return np.maximum(d, np.maximum(z0 - z, z - z1))
