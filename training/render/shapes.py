"""Families of procedural design outcomes, built as watertight meshes.

Each family is a builder ``build(rng) -> (trimesh.Trimesh, params)`` that draws its parameters from the
generator (millimetres, z up, the part in its natural resting pose) and builds the solid with manifold3d
(constructive solid geometry whose results are guaranteed manifold) or, for the spring, an explicit swept
tube. Parameters are rounded *before* the solid is built, so the ``params`` written to ``meta.json``
describe the rendered design exactly.

The families are chosen to look different from most viewpoints (flat vs. tall vs. elongated, solid vs.
see-through, round vs. boxy), because the autoencoder trained on them must group designs by family from
images alone. Within a family, dimensions, counts and options vary.

Normalised scale: a design is centred on its bounding-box centre and divided by its family's
``reference_radius`` (an upper bound of the family's bounding-sphere radius over its parameter ranges).
Every design therefore fits in the unit sphere (the camera frames the unit sphere), and size differences
*within* a family stay visible: a short tube renders shorter than a long one. Sizes are not comparable
*across* families. Should a design ever exceed its reference radius, it is scaled down to the unit sphere
instead (so nothing leaves the frame); the tests check that this does not happen over many seeds.

Parameter ranges keep every family's designs between about 0.75 and 1.0 of its reference radius. Wider
ranges were tried and looked fine to a person, but then a small design of one boxy family sat closer, pixel
for pixel, to a small design of another than to a large one of its own, and the autoencoder trained on
these renders has to group them by family.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import manifold3d
import numpy as np
import trimesh

from training.render import part_families
from training.render.solids import CIRCLE_SEGMENTS
from training.render.solids import box as _box
from training.render.solids import circle as _circle
from training.render.solids import cylinder as _cylinder
from training.render.solids import draw as _draw
from training.render.solids import draw_int as _draw_int
from training.render.solids import subtract as _subtract
from training.render.solids import to_trimesh as _to_trimesh
from training.render.solids import union as _union

Params = dict[str, Any]
Builder = Callable[[np.random.Generator], tuple[trimesh.Trimesh, Params]]

LATTICE_YAW_DEGREES = 45.0


class DesignBuildError(ValueError):
    """A family builder produced a mesh that cannot be rendered (empty, not watertight, inside out)."""


@dataclasses.dataclass(frozen=True)
class Family:
    """A family of designs: how to build one and how large its designs can get."""

    name: str
    build: Builder
    reference_radius: float
    description: str


@dataclasses.dataclass(frozen=True)
class Design:
    """One design outcome, normalised into the unit sphere and ready to render."""

    family: str
    seed: int
    params: Params
    mesh: trimesh.Trimesh
    # Bounding-sphere radius after normalisation (<= 1): how large the design is within its family.
    relative_size: float


# --------------------------------------------------------------------------------------------------
# Families


def build_bracket(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """An L-shaped angle bracket: base and upright flanges, bolt holes in both, optional gussets."""
    width = _draw(rng, 62.0, 80.0)
    base_length = _draw(rng, 54.0, 70.0)
    wall_height = _draw(rng, 54.0, 70.0)
    thickness = _draw(rng, 4.0, 9.0)
    gussets = int(rng.choice([0, 2]))
    gusset_inset = thickness if gussets else 0.0
    base_holes = _draw_int(rng, 1, 3)
    wall_holes = _draw_int(rng, 1, 3)
    free_width = width - 2.0 * gusset_inset
    largest_hole = min(
        14.0,
        0.55 * (base_length - thickness),
        0.55 * (wall_height - thickness),
        0.6 * free_width / max(base_holes, wall_holes),
    )
    hole_diameter = _draw(rng, 5.0, largest_hole)

    base = _box(0.0, base_length, 0.0, width, 0.0, thickness)
    wall = _box(0.0, thickness, 0.0, width, 0.0, wall_height)
    parts = [base, wall]
    if gussets:
        leg = 0.55 * min(base_length - thickness, wall_height - thickness)
        triangle = manifold3d.CrossSection(
            [[(thickness, thickness), (thickness + leg, thickness), (thickness, thickness + leg)]]
        )
        # Extrude along z, then turn the extrusion axis into -y (rotate +90 about x: (x, y, z) -> (x, -z, y)).
        gusset = triangle.extrude(thickness).rotate((90.0, 0.0, 0.0))
        parts.append(gusset.translate((0.0, thickness, 0.0)))
        parts.append(gusset.translate((0.0, width, 0.0)))
    cutters = []
    for index in range(base_holes):
        y = gusset_inset + (index + 0.5) * free_width / base_holes
        x = thickness + 0.5 * (base_length - thickness)
        cutters.append(_cylinder(hole_diameter / 2.0, 3.0 * thickness, (x, y, thickness / 2.0), "z"))
    for index in range(wall_holes):
        y = gusset_inset + (index + 0.5) * free_width / wall_holes
        z = thickness + 0.5 * (wall_height - thickness)
        cutters.append(_cylinder(hole_diameter / 2.0, 3.0 * thickness, (thickness / 2.0, y, z), "x"))
    solid = _subtract(_union(parts), cutters)
    params: Params = {
        "width": width,
        "base_length": base_length,
        "wall_height": wall_height,
        "thickness": thickness,
        "gussets": gussets,
        "base_holes": base_holes,
        "wall_holes": wall_holes,
        "hole_diameter": hole_diameter,
    }
    return _to_trimesh(solid), params


def build_tube(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A straight pipe lying along x, optionally with bolted flanges at both ends."""
    length = _draw(rng, 110.0, 130.0)
    outer_radius = _draw(rng, 8.0, 18.0)
    wall = _draw(rng, 1.5, 0.35 * outer_radius)
    flanged = bool(rng.random() < 0.5)
    inner_radius = outer_radius - wall
    bore = manifold3d.CrossSection.circle(inner_radius, CIRCLE_SEGMENTS)
    annulus = manifold3d.CrossSection.circle(outer_radius, CIRCLE_SEGMENTS) - bore
    parts = [annulus.extrude(length)]
    params: Params = {"length": length, "outer_radius": outer_radius, "wall": wall, "flanged": flanged}
    if flanged:
        flange_radius = round(outer_radius + _draw(rng, 6.0, 12.0), 1)
        flange_thickness = _draw(rng, 3.0, 6.0)
        flange_bolts = int(rng.choice([0, 4, 6]))
        flange = manifold3d.CrossSection.circle(flange_radius, CIRCLE_SEGMENTS) - bore
        bolt_circle = 0.5 * (outer_radius + flange_radius)
        bolt_radius = min(2.5, 0.3 * (flange_radius - outer_radius))
        for index in range(flange_bolts):
            angle = 2.0 * math.pi * index / flange_bolts
            hole_center = (bolt_circle * math.cos(angle), bolt_circle * math.sin(angle))
            flange = flange - _circle(bolt_radius, *hole_center)
        plate = flange.extrude(flange_thickness)
        parts.append(plate)
        parts.append(plate.translate((0.0, 0.0, length - flange_thickness)))
        params.update(
            {
                "flange_radius": flange_radius,
                "flange_thickness": flange_thickness,
                "flange_bolts": flange_bolts,
            }
        )
    solid = _union(parts).rotate((0.0, 90.0, 0.0))
    return _to_trimesh(solid), params


def build_plate(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A flat plate with rounded corners and a rectangular grid of through holes."""
    length = _draw(rng, 90.0, 110.0)
    width = _draw(rng, 60.0, 80.0)
    thickness = _draw(rng, 3.0, 8.0)
    rows = _draw_int(rng, 1, 4)
    columns = _draw_int(rng, 2, 6)
    pitch = min(length / columns, width / rows)
    hole_diameter = _draw(rng, max(3.0, 0.3 * pitch), 0.6 * pitch)
    # Rounded corners stay clear of the corner holes (hole centres sit half a pitch in from the edges).
    corner_radius = _draw(rng, 1.0, min(0.15 * width, 0.5 * pitch))
    corners = [
        _circle(corner_radius, sx * (length / 2.0 - corner_radius), sy * (width / 2.0 - corner_radius), 16)
        for sx in (-1.0, 1.0)
        for sy in (-1.0, 1.0)
    ]
    outline = manifold3d.CrossSection.batch_hull(corners)
    for row in range(rows):
        for column in range(columns):
            x = -length / 2.0 + (column + 0.5) * length / columns
            y = -width / 2.0 + (row + 0.5) * width / rows
            outline = outline - _circle(hole_diameter / 2.0, x, y)
    solid = outline.extrude(thickness)
    params: Params = {
        "length": length,
        "width": width,
        "thickness": thickness,
        "rows": rows,
        "columns": columns,
        "hole_diameter": hole_diameter,
        "corner_radius": corner_radius,
    }
    return _to_trimesh(solid), params


def build_ribbed_block(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A base block carrying parallel fins, like a heat sink."""
    length = _draw(rng, 64.0, 80.0)
    width = _draw(rng, 52.0, 70.0)
    base_thickness = _draw(rng, 8.0, 14.0)
    ribs = _draw_int(rng, 3, 8)
    pitch = length / ribs
    rib_thickness = _draw(rng, 2.5, 0.5 * pitch)
    rib_height = _draw(rng, 20.0, 40.0)
    parts = [_box(0.0, length, 0.0, width, 0.0, base_thickness)]
    for index in range(ribs):
        center = (index + 0.5) * pitch
        parts.append(
            _box(
                center - rib_thickness / 2.0,
                center + rib_thickness / 2.0,
                0.0,
                width,
                base_thickness - 0.5,
                base_thickness + rib_height,
            )
        )
    params: Params = {
        "length": length,
        "width": width,
        "base_thickness": base_thickness,
        "ribs": ribs,
        "rib_thickness": rib_thickness,
        "rib_height": rib_height,
    }
    return _to_trimesh(_union(parts)), params


def build_lattice(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """An open lattice of struts (square or round), two or three cells along each side.

    Sides stay within 20% of each other and struts are thick enough to read at 64x64: a very
    elongated or spidery lattice would look like a tube or like nothing at all. The lattice is turned 45
    degrees about z (corner towards the default views), which keeps it apart from the other boxy family,
    the ribbed block, whose faces the views see nearly square-on.
    """
    longest = _draw(rng, 66.0, 75.0)
    sides = [longest, _draw(rng, 0.8 * longest, longest), _draw(rng, 0.8 * longest, longest)]
    order = rng.permutation(3)
    size_x, size_y, size_z = (sides[int(order[axis])] for axis in range(3))
    cells_x, cells_y, cells_z = (_draw_int(rng, 2, 3) for _ in range(3))
    strut = _draw(rng, 5.5, 8.0)
    round_struts = bool(rng.random() < 0.5)
    xs = np.linspace(0.0, size_x, cells_x + 1)
    ys = np.linspace(0.0, size_y, cells_y + 1)
    zs = np.linspace(0.0, size_z, cells_z + 1)
    half = strut / 2.0

    def strut_between(axis: str, center: tuple[float, float, float], length: float) -> manifold3d.Manifold:
        if round_struts:
            return _cylinder(half, length + strut, center, axis, segments=12)
        extent = {"x": (length + strut, strut, strut), "y": (strut, length + strut, strut)}.get(
            axis, (strut, strut, length + strut)
        )
        return manifold3d.Manifold.cube(extent, center=True).translate(center)

    parts: list[manifold3d.Manifold] = []
    for y in ys:
        for z in zs:
            parts.append(strut_between("x", (size_x / 2.0, float(y), float(z)), size_x))
    for x in xs:
        for z in zs:
            parts.append(strut_between("y", (float(x), size_y / 2.0, float(z)), size_y))
    for x in xs:
        for y in ys:
            parts.append(strut_between("z", (float(x), float(y), size_z / 2.0), size_z))
    if round_struts:
        # Round struts meet in spheres so the joints are closed, like a printed lattice's nodes.
        node = manifold3d.Manifold.sphere(half * 1.4, 12)
        parts.extend(node.translate((float(x), float(y), float(z))) for x in xs for y in ys for z in zs)
    params: Params = {
        "size_x": size_x,
        "size_y": size_y,
        "size_z": size_z,
        "cells_x": cells_x,
        "cells_y": cells_y,
        "cells_z": cells_z,
        "strut": strut,
        "round_struts": round_struts,
    }
    return _to_trimesh(_union(parts).rotate((0.0, 0.0, LATTICE_YAW_DEGREES))), params


def build_torus(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A ring (tyre, O-ring) with a round or elliptical section, standing on edge in the xz plane.

    Standing rather than lying flat keeps it apart from the other round family, the (flat) gear.
    """
    major_radius = _draw(rng, 34.0, 40.0)
    minor_radius = _draw(rng, 9.0, 14.0)
    section_aspect = _draw(rng, 0.6, 1.4, decimals=2)
    section = (
        manifold3d.CrossSection.circle(minor_radius, 32)
        .scale((1.0, section_aspect))
        .translate((major_radius, 0.0))
    )
    # revolve() turns about z; +90 degrees about x stands the ring up (axis along y).
    solid = section.revolve(72).rotate((90.0, 0.0, 0.0))
    params: Params = {
        "major_radius": major_radius,
        "minor_radius": minor_radius,
        "section_aspect": section_aspect,
    }
    return _to_trimesh(solid), params


def build_gear(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A spur gear lying flat: toothed rim, central bore, optional lightening holes."""
    teeth = _draw_int(rng, 10, 28)
    outer_radius = _draw(rng, 36.0, 45.0)
    thickness = _draw(rng, 6.0, 16.0)
    module = 2.0 * outer_radius / (teeth + 2)
    root_radius = outer_radius - 2.25 * module
    bore_radius = _draw(rng, 4.0, 0.3 * root_radius)
    lightening_holes = int(rng.choice([0, 4, 5, 6]))
    pitch_angle = 2.0 * math.pi / teeth
    outline: list[tuple[float, float]] = []
    for index in range(teeth):
        center = index * pitch_angle
        for radius, offset in (
            (root_radius, -0.5),
            (root_radius, -0.28),
            (outer_radius, -0.12),
            (outer_radius, 0.12),
            (root_radius, 0.28),
        ):
            angle = center + offset * pitch_angle
            outline.append((radius * math.cos(angle), radius * math.sin(angle)))
    profile = manifold3d.CrossSection([outline]) - _circle(bore_radius, segments=32)
    params: Params = {
        "teeth": teeth,
        "outer_radius": outer_radius,
        "thickness": thickness,
        "bore_radius": bore_radius,
        "lightening_holes": lightening_holes,
    }
    if lightening_holes:
        ring_radius = 0.5 * (bore_radius + root_radius)
        # Holes stay clear of the bore, the root circle and each other.
        spacing = 0.8 * ring_radius * math.sin(math.pi / lightening_holes)
        hole_radius = round(min(0.35 * (root_radius - bore_radius), spacing), 1)
        for index in range(lightening_holes):
            angle = 2.0 * math.pi * (index + 0.5) / lightening_holes
            hole_center = (ring_radius * math.cos(angle), ring_radius * math.sin(angle))
            profile = profile - _circle(hole_radius, *hole_center)
        params["lightening_hole_radius"] = hole_radius
    return _to_trimesh(profile.extrude(thickness)), params


def build_spring(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A helical compression spring standing upright: a round wire swept along a helix, ends capped."""
    height = _draw(rng, 70.0, 90.0)
    coil_radius = _draw(rng, 16.0, 22.0)
    wire_radius = _draw(rng, 1.8, 3.5)
    most_turns = max(3.0, min(9.0, height / (2.5 * 2.0 * wire_radius)))
    turns = round(float(rng.uniform(3.0, most_turns)) * 2.0) / 2.0
    params: Params = {
        "height": height,
        "coil_radius": coil_radius,
        "wire_radius": wire_radius,
        "turns": turns,
    }
    return _helix_tube(height, coil_radius, wire_radius, turns), params


def _helix_tube(height: float, coil_radius: float, wire_radius: float, turns: float) -> trimesh.Trimesh:
    """Sweep a circle along a helix (exact Frenet frame) and cap both ends: a closed, manifold tube."""
    along = max(2, math.ceil(turns * 40)) + 1
    around = 12
    theta = np.linspace(0.0, 2.0 * math.pi * turns, along)
    rise = height / (2.0 * math.pi * turns)
    centers = np.column_stack([coil_radius * np.cos(theta), coil_radius * np.sin(theta), rise * theta])
    tangents = np.column_stack(
        [-coil_radius * np.sin(theta), coil_radius * np.cos(theta), np.full_like(theta, rise)]
    )
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    normals = np.column_stack([-np.cos(theta), -np.sin(theta), np.zeros_like(theta)])
    binormals = np.cross(tangents, normals)
    phi = np.linspace(0.0, 2.0 * math.pi, around, endpoint=False)
    ring = (
        centers[:, None, :]
        + wire_radius * np.cos(phi)[None, :, None] * normals[:, None, :]
        + wire_radius * np.sin(phi)[None, :, None] * binormals[:, None, :]
    )
    vertices = np.vstack([ring.reshape(-1, 3), centers[0], centers[-1]])
    start_cap, end_cap = along * around, along * around + 1
    faces = []
    for i in range(along - 1):
        for j in range(around):
            a = i * around + j
            b = i * around + (j + 1) % around
            c = (i + 1) * around + j
            d = (i + 1) * around + (j + 1) % around
            faces.extend([(a, b, d), (a, d, c)])
    for j in range(around):
        faces.append((start_cap, (j + 1) % around, j))
        last = (along - 1) * around
        faces.append((end_cap, last + j, last + (j + 1) % around))
    mesh = trimesh.Trimesh(vertices=vertices, faces=np.asarray(faces, dtype=np.int64), process=False)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


# Reference radii: bounding-sphere radii at the largest parameters, from the ranges above, e.g. bracket
# |(70, 80, 70)| / 2 = 63.6; tube |(130 / 2, 30)| = 71.6 (flange radius <= 18 + 12); plate
# |(110, 80, 8)| / 2 = 68.1; ribbed block |(80, 70, 54)| / 2 = 59.7; lattice sqrt(3) (75 + 8) / 2 = 71.9
# (struts overhang the nodes by half their width); torus 40 + 14 = 54; gear |(45, 16 / 2)| = 45.7; spring
# |(90 / 2 + 3.5, 22 + 3.5)| = 54.8.
_FIRST_FAMILIES = (
    Family("bracket", build_bracket, 64.0, "L-shaped angle bracket with bolt holes, optional gussets"),
    Family("tube", build_tube, 72.0, "straight pipe lying along x, optional bolted flanges"),
    Family("plate", build_plate, 69.0, "flat plate with rounded corners and a grid of holes"),
    Family("ribbed_block", build_ribbed_block, 60.0, "block with parallel fins (heat sink)"),
    Family("lattice", build_lattice, 72.0, "open cubic lattice of square or round struts"),
    Family("torus", build_torus, 55.0, "ring standing on edge, round or elliptical section"),
    Family("gear", build_gear, 46.0, "spur gear with bore and optional lightening holes"),
    Family("spring", build_spring, 55.0, "upright helical compression spring"),
)
# The families `autostop render` cycles through unless told otherwise (the demo and the benchmarks are
# measured on these eight; the part families join them in the hard dataset, training.render.variation).
DEFAULT_FAMILIES: tuple[str, ...] = tuple(family.name for family in _FIRST_FAMILIES)
FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        *_FIRST_FAMILIES,
        *(Family(*entry) for entry in part_families.PART_FAMILIES),
    )
}


def family_names() -> tuple[str, ...]:
    """The default families, in registry order (the order designs cycle through)."""
    return DEFAULT_FAMILIES


def all_family_names() -> tuple[str, ...]:
    """Every registered family: the default eight, then the part families."""
    return tuple(FAMILIES)


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        known = ", ".join(FAMILIES)
        raise ValueError(f"unknown design family {name!r}; known families: {known}") from None


def validate_mesh(mesh: trimesh.Trimesh, family: str) -> None:
    """Reject meshes the renderer cannot shade correctly: empty, open, inconsistently wound or inside out."""
    if len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise DesignBuildError(f"{family}: the built mesh is empty")
    if not mesh.is_watertight:
        raise DesignBuildError(f"{family}: the built mesh is not watertight")
    if not mesh.is_winding_consistent:
        raise DesignBuildError(f"{family}: the built mesh has inconsistent winding")
    if not mesh.volume > 0:
        raise DesignBuildError(f"{family}: the built mesh has non-positive volume {mesh.volume:.3g}")


def build_design(family_name: str, seed: int) -> Design:
    """Build the design `seed` of a family, validate it and normalise it into the unit sphere."""
    family = get_family(family_name)
    mesh, params = family.build(np.random.default_rng(seed))
    validate_mesh(mesh, family.name)
    lower, upper = mesh.bounds
    centred = mesh.vertices - (lower + upper) / 2.0
    radius = float(np.linalg.norm(centred, axis=1).max())
    mesh.vertices = centred / max(family.reference_radius, radius)
    return Design(
        family=family.name,
        seed=seed,
        params=params,
        mesh=mesh,
        relative_size=radius / max(family.reference_radius, radius),
    )
