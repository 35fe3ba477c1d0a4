"""Solid-modelling helpers shared by the design families: parameter draws, CSG primitives, meshes.

Parameters are drawn rounded (``draw``) so that the value written to ``meta.json`` is the value built.
Solids are manifold3d objects (constructive solid geometry whose results are guaranteed manifold);
``to_trimesh`` turns one into the mesh the renderer casts rays against.
"""

from __future__ import annotations

from typing import Any

import manifold3d
import numpy as np
import trimesh

# Segments used for circles: fine enough that curved surfaces shade smoothly at 64x64 and above.
CIRCLE_SEGMENTS = 48
HOLE_SEGMENTS = 24


# --------------------------------------------------------------------------------------------------
# Drawing parameters


def draw(rng: np.random.Generator, low: float, high: float, decimals: int = 1) -> float:
    """A uniform draw rounded to `decimals`, so the value in meta.json is the value built."""
    if high < low:
        raise ValueError(f"empty parameter range [{low}, {high}]")
    return round(float(rng.uniform(low, high)), decimals)


def draw_int(rng: np.random.Generator, low: int, high: int) -> int:
    """A uniform integer in [low, high], both inclusive."""
    return int(rng.integers(low, high + 1))


# --------------------------------------------------------------------------------------------------
# Solid helpers (manifold3d)


def box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> manifold3d.Manifold:
    return manifold3d.Manifold.cube((x1 - x0, y1 - y0, z1 - z0)).translate((x0, y0, z0))


def cylinder(
    radius: float,
    length: float,
    center: tuple[float, float, float],
    axis: str,
    segments: int = HOLE_SEGMENTS,
) -> manifold3d.Manifold:
    """A cylinder centred on `center` whose axis is the world `axis` ('x', 'y' or 'z')."""
    solid = manifold3d.Manifold.cylinder(length, radius, circular_segments=segments, center=True)
    if axis == "x":
        solid = solid.rotate((0.0, 90.0, 0.0))
    elif axis == "y":
        solid = solid.rotate((90.0, 0.0, 0.0))
    elif axis != "z":
        raise ValueError(f"axis must be 'x', 'y' or 'z', not {axis!r}")
    return solid.translate(center)


def union(solids: list[manifold3d.Manifold]) -> manifold3d.Manifold:
    return manifold3d.Manifold.batch_boolean(solids, manifold3d.OpType.Add)


def subtract(body: manifold3d.Manifold, cutters: list[manifold3d.Manifold]) -> manifold3d.Manifold:
    if not cutters:
        return body
    return manifold3d.Manifold.batch_boolean([body, *cutters], manifold3d.OpType.Subtract)


def circle(radius: float, x: float = 0.0, y: float = 0.0, segments: int = HOLE_SEGMENTS) -> Any:
    return manifold3d.CrossSection.circle(radius, segments).translate((x, y))


def to_trimesh(solid: manifold3d.Manifold) -> trimesh.Trimesh:
    mesh = solid.to_mesh()
    vertices = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
