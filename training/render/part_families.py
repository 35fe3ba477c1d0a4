"""A second set of design families: wheels, fasteners, profiles, turned parts, frames and fittings.

They exist for the hard dataset (``training.render.variation``): together with the first eight families
(``training.render.shapes``) they give sixteen, enough to keep several families out of training
altogether and still train on ten. Each family varies its *topology* as well as its dimensions (spokes or
a solid web, a tee or a cross, three or four legs, with or without holes, lips, grooves or a keyway) and
its proportions (a bolt can be stubby or long, a beam wide or narrow), because real design outcomes of one
kind are far from identical.

Builders follow the conventions of ``training.render.shapes``: millimetres, z up, parameters rounded
before the solid is built (so ``meta.json`` describes the rendered design exactly), watertight results.
``reference_radius`` values are upper bounds of each family's bounding-sphere radius, checked over many
seeds by the tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import manifold3d
import numpy as np
import trimesh

from training.render.solids import (
    CIRCLE_SEGMENTS,
    box,
    circle,
    cylinder,
    draw,
    draw_int,
    subtract,
    to_trimesh,
    union,
)

Params = dict[str, Any]
Builder = Callable[[np.random.Generator], tuple[trimesh.Trimesh, Params]]


def build_wheel(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A flat wheel: rim and hub joined by 3-8 spokes, or by a solid web with lightening holes."""
    outer_radius = draw(rng, 36.0, 45.0)
    rim_width = draw(rng, 3.0, 8.0)
    width = draw(rng, 8.0, 22.0)
    hub_radius = draw(rng, 7.0, 13.0)
    bore_radius = draw(rng, 2.0, 0.6 * hub_radius)
    web = bool(rng.random() < 0.35)
    rim = (
        circle(outer_radius, segments=CIRCLE_SEGMENTS) - circle(outer_radius - rim_width, segments=48)
    ).extrude(width)
    hub = (circle(hub_radius, segments=32) - circle(bore_radius, segments=24)).extrude(width)
    parts = [rim, hub]
    params: Params = {
        "outer_radius": outer_radius,
        "rim_width": rim_width,
        "width": width,
        "hub_radius": hub_radius,
        "bore_radius": bore_radius,
        "web": web,
    }
    inner = outer_radius - rim_width
    if web:
        web_thickness = draw(rng, 2.0, 0.4 * width)
        holes = int(rng.choice([0, 3, 4, 6]))
        plate = circle(inner + 0.5, segments=CIRCLE_SEGMENTS) - circle(hub_radius - 0.5, segments=32)
        ring = 0.5 * (hub_radius + inner)
        hole_radius = round(
            min(0.35 * (inner - hub_radius), 0.8 * ring * math.sin(math.pi / max(holes, 2))), 1
        )
        for index in range(holes):
            angle = 2.0 * math.pi * index / holes
            plate = plate - circle(hole_radius, ring * math.cos(angle), ring * math.sin(angle))
        parts.append(plate.extrude(web_thickness).translate((0.0, 0.0, 0.5 * (width - web_thickness))))
        params.update({"web_thickness": web_thickness, "web_holes": holes})
    else:
        spokes = draw_int(rng, 3, 8)
        spoke_width = draw(rng, 2.5, 6.0)
        span = inner - hub_radius + 1.0
        for index in range(spokes):
            spoke = box(0.0, span, -spoke_width / 2.0, spoke_width / 2.0, 0.0, width * 0.6)
            spoke = spoke.translate((hub_radius - 0.5, 0.0, 0.2 * width))
            parts.append(spoke.rotate((0.0, 0.0, 360.0 * index / spokes)))
        params.update({"spokes": spokes, "spoke_width": spoke_width})
    return to_trimesh(union(parts)), params


def build_hex_bolt(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A hexagon-head bolt standing on its head: stubby to long, optional washer face and thread grooves."""
    shaft_radius = draw(rng, 5.0, 10.0)
    head_across_flats = round(shaft_radius * draw(rng, 3.0, 3.8, decimals=2), 1)
    head_height = draw(rng, 0.55 * shaft_radius * 2.0, 0.9 * shaft_radius * 2.0)
    length = draw(rng, 3.0 * shaft_radius, 90.0 - head_height)
    washer = bool(rng.random() < 0.5)
    grooves = int(rng.choice([0, 0, 4, 6, 8, 10]))
    head_radius = head_across_flats / math.sqrt(3.0)  # circumradius of the hexagon
    head = manifold3d.Manifold.cylinder(head_height, head_radius, circular_segments=6)
    parts = [head]
    base = head_height
    params: Params = {
        "shaft_radius": shaft_radius,
        "head_across_flats": head_across_flats,
        "head_height": head_height,
        "length": length,
        "washer": washer,
        "thread_grooves": grooves,
    }
    if washer:
        washer_height = round(0.2 * head_height, 1)
        parts.append(
            manifold3d.Manifold.cylinder(
                washer_height, 0.95 * head_across_flats / 2.0, circular_segments=32
            ).translate((0.0, 0.0, base - 0.1))
        )
        base += washer_height - 0.1
    parts.append(
        manifold3d.Manifold.cylinder(length + 0.2, shaft_radius, circular_segments=32).translate(
            (0.0, 0.0, base - 0.2)
        )
    )
    solid = union(parts)
    if grooves:
        pitch = min(0.35 * length / grooves, 2.5 * shaft_radius / 2.0)
        cutters = []
        for index in range(grooves):
            z = base + length - (index + 0.7) * pitch
            ring = circle(shaft_radius + 2.0, segments=32) - circle(0.85 * shaft_radius, segments=32)
            cutters.append(ring.extrude(0.4 * pitch).translate((0.0, 0.0, z)))
        solid = subtract(solid, cutters)
    return to_trimesh(solid), params


def build_channel(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A U or C (lipped) channel profile extruded along x, with 0-4 holes through its web."""
    length = draw(rng, 80.0, 130.0)
    web_width = draw(rng, 25.0, 55.0)
    leg_height = draw(rng, 12.0, 40.0)
    thickness = draw(rng, 2.5, 6.0)
    lips = bool(rng.random() < 0.4)
    holes = draw_int(rng, 0, 4)
    half = web_width / 2.0
    profile = manifold3d.CrossSection.square((web_width, thickness)).translate((-half, 0.0))
    legs = [
        manifold3d.CrossSection.square((thickness, leg_height)).translate((-half, 0.0)),
        manifold3d.CrossSection.square((thickness, leg_height)).translate((half - thickness, 0.0)),
    ]
    shapes = [profile, *legs]
    params: Params = {
        "length": length,
        "web_width": web_width,
        "leg_height": leg_height,
        "thickness": thickness,
        "lips": lips,
        "web_holes": holes,
    }
    if lips:
        lip = draw(rng, 5.0, 0.35 * web_width)
        shapes.append(
            manifold3d.CrossSection.square((lip, thickness)).translate((-half, leg_height - thickness))
        )
        shapes.append(
            manifold3d.CrossSection.square((lip, thickness)).translate((half - lip, leg_height - thickness))
        )
        params["lip"] = lip
    section = manifold3d.CrossSection.batch_boolean(shapes, manifold3d.OpType.Add)
    # Extrude along z, then lay the extrusion along x.
    solid = section.extrude(length).rotate((0.0, 90.0, 0.0))
    if holes:
        hole_radius = draw(rng, 2.5, min(0.3 * web_width, 0.3 * length / holes))
        cutters = [
            cylinder(hole_radius, 4.0 * thickness, (-length + (index + 0.5) * length / holes, 0.0, 0.0), "z")
            for index in range(holes)
        ]
        # rotate((0, 90, 0)) maps the extrusion's z to -x, so the channel spans x in [-length, 0].
        solid = subtract(solid, [cutter.translate((0.0, 0.0, thickness / 2.0)) for cutter in cutters])
        params["hole_radius"] = hole_radius
    return to_trimesh(solid), params


def build_i_beam(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """An I (or H) beam along x: flange width from narrow to wide, optional round holes in the web."""
    length = draw(rng, 80.0, 130.0)
    depth = draw(rng, 25.0, 55.0)
    flange_width = draw(rng, 0.4 * depth, 1.1 * depth)
    flange_thickness = draw(rng, 2.5, 7.0)
    web_thickness = draw(rng, 2.0, 6.0)
    holes = int(rng.choice([0, 0, 2, 3, 4, 5]))
    half_width = flange_width / 2.0
    section = manifold3d.CrossSection.batch_boolean(
        [
            manifold3d.CrossSection.square((flange_width, flange_thickness)).translate((-half_width, 0.0)),
            manifold3d.CrossSection.square((flange_width, flange_thickness)).translate(
                (-half_width, depth - flange_thickness)
            ),
            manifold3d.CrossSection.square((web_thickness, depth)).translate((-web_thickness / 2.0, 0.0)),
        ],
        manifold3d.OpType.Add,
    )
    solid = section.extrude(length).rotate((0.0, 90.0, 0.0))
    params: Params = {
        "length": length,
        "depth": depth,
        "flange_width": flange_width,
        "flange_thickness": flange_thickness,
        "web_thickness": web_thickness,
        "web_holes": holes,
    }
    if holes:
        clear = depth - 2.0 * flange_thickness
        largest = min(0.4 * clear, 0.35 * length / holes)
        hole_radius = draw(rng, 0.5 * largest, largest)
        cutters = [
            cylinder(
                hole_radius,
                4.0 * web_thickness,
                (-length + (index + 0.5) * length / holes, 0.0, depth / 2.0),
                "y",
            )
            for index in range(holes)
        ]
        solid = subtract(solid, cutters)
        params["hole_radius"] = hole_radius
    return to_trimesh(solid), params


def build_stepped_shaft(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A turned shaft along x: 2-5 coaxial steps of different radius, optional keyway and centre bore."""
    steps = draw_int(rng, 2, 5)
    radii = [draw(rng, 5.0, 20.0) for _ in range(steps)]
    lengths = [draw(rng, 12.0, 120.0 / steps) for _ in range(steps)]
    keyway = bool(rng.random() < 0.5)
    bore = bool(rng.random() < 0.3)
    parts = []
    position = 0.0
    for radius, step_length in zip(radii, lengths, strict=True):
        parts.append(
            manifold3d.Manifold.cylinder(
                step_length + 0.2, radius, circular_segments=CIRCLE_SEGMENTS
            ).translate((0.0, 0.0, position - 0.1))
        )
        position += step_length
    solid = union(parts)
    params: Params = {"steps": steps, "radii": radii, "lengths": lengths, "keyway": keyway, "bore": bore}
    widest = int(np.argmax(radii))
    cutters = []
    if keyway:
        start = sum(lengths[:widest])
        radius = radii[widest]
        key_width = round(0.5 * radius, 1)
        cutters.append(
            box(
                -key_width / 2.0,
                key_width / 2.0,
                0.7 * radius,
                radius + 1.0,
                start + 0.2 * lengths[widest],
                start + 0.8 * lengths[widest],
            )
        )
    if bore:
        bore_radius = round(0.5 * min(radii), 1)
        cutters.append(cylinder(bore_radius, 2.0 * position, (0.0, 0.0, position / 2.0), "z"))
        params["bore_radius"] = bore_radius
    solid = subtract(solid, cutters).rotate((0.0, 90.0, 0.0))
    return to_trimesh(solid), params


def build_vase(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A turned vessel standing upright: a revolved profile of 3-6 radii, solid or hollowed from the top."""
    height = draw(rng, 50.0, 95.0)
    rings = draw_int(rng, 3, 6)
    radii = [draw(rng, 8.0, 32.0) for _ in range(rings)]
    hollow = bool(rng.random() < 0.5)
    heights = [height * index / (rings - 1) for index in range(rings)]
    outline = [(0.0, 0.0), *zip(radii, heights, strict=True), (0.0, height)]
    solid = manifold3d.CrossSection([outline]).revolve(CIRCLE_SEGMENTS)
    params: Params = {"height": height, "radii": radii, "hollow": hollow}
    if hollow:
        wall = draw(rng, 2.0, 0.4 * min(radii))
        cavity_radius = min(radii[1:]) - wall
        cavity_depth = round(0.8 * height, 1)
        solid = subtract(
            solid,
            [
                manifold3d.Manifold.cylinder(
                    cavity_depth + 1.0, cavity_radius, circular_segments=32
                ).translate((0.0, 0.0, height - cavity_depth))
            ],
        )
        params["wall"] = wall
    return to_trimesh(solid), params


def build_stool(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A stool or table frame: a round or square top on 3 or 4 legs, splayed or straight, optional rails."""
    top_size = draw(rng, 50.0, 90.0)
    top_thickness = draw(rng, 3.0, 9.0)
    height = draw(rng, 40.0, 90.0)
    legs = int(rng.choice([3, 4]))
    leg_radius = draw(rng, 2.5, 5.0)
    round_top = bool(rng.random() < 0.5)
    rails = bool(rng.random() < 0.5)
    half = top_size / 2.0
    if round_top:
        top = manifold3d.Manifold.cylinder(top_thickness, half, circular_segments=CIRCLE_SEGMENTS)
    else:
        top = box(-half, half, -half, half, 0.0, top_thickness)
    parts = [top.translate((0.0, 0.0, height - top_thickness))]
    foot = 0.75 * half if round_top else 0.85 * half
    points = []
    for index in range(legs):
        angle = 2.0 * math.pi * (index + 0.5) / legs
        x, y = foot * math.cos(angle), foot * math.sin(angle)
        points.append((x, y))
        parts.append(
            cylinder(
                leg_radius,
                height - 0.5 * top_thickness,
                (x, y, 0.5 * (height - 0.5 * top_thickness)),
                "z",
                16,
            )
        )
    params: Params = {
        "top_size": top_size,
        "top_thickness": top_thickness,
        "height": height,
        "legs": legs,
        "leg_radius": leg_radius,
        "round_top": round_top,
        "rails": rails,
    }
    if rails:
        rail_height = round(draw(rng, 0.2, 0.5, decimals=2) * height, 1)
        for index in range(legs):
            (x0, y0), (x1, y1) = points[index], points[(index + 1) % legs]
            span = math.hypot(x1 - x0, y1 - y0)
            rail = manifold3d.Manifold.cylinder(span, 0.7 * leg_radius, circular_segments=12, center=True)
            rail = rail.rotate((0.0, 90.0, 0.0)).rotate(
                (0.0, 0.0, math.degrees(math.atan2(y1 - y0, x1 - x0)))
            )
            parts.append(rail.translate((0.5 * (x0 + x1), 0.5 * (y0 + y1), rail_height)))
        params["rail_height"] = rail_height
    return to_trimesh(union(parts)), params


def build_pipe_fitting(rng: np.random.Generator) -> tuple[trimesh.Trimesh, Params]:
    """A pipe fitting: an elbow, a tee or a cross of bored arms meeting at a body, optional end collars."""
    kind = str(rng.choice(["elbow", "tee", "cross"]))
    arm_length = draw(rng, 25.0, 50.0)
    outer_radius = draw(rng, 8.0, 16.0)
    bore_radius = draw(rng, 0.4 * outer_radius, 0.75 * outer_radius)
    collars = bool(rng.random() < 0.5)
    directions = {
        "elbow": [(1, 0), (0, 1)],
        "tee": [(1, 0), (-1, 0), (0, 1)],
        "cross": [(1, 0), (-1, 0), (0, 1), (0, -1)],
    }[kind]
    arms = []
    bores = []
    for dx, dy in directions:
        axis = "x" if dx else "y"
        center = (dx * arm_length / 2.0, dy * arm_length / 2.0, 0.0)
        arms.append(cylinder(outer_radius, arm_length, center, axis, 32))
        bores.append(cylinder(bore_radius, arm_length + 2.0 * outer_radius, center, axis, 24))
        if collars:
            collar_center = (dx * (arm_length - 3.0), dy * (arm_length - 3.0), 0.0)
            arms.append(cylinder(outer_radius * 1.3, 6.0, collar_center, axis, 32))
    arms.append(manifold3d.Manifold.sphere(outer_radius * 1.05, 32))
    solid = subtract(union(arms), bores)
    params: Params = {
        "kind": kind,
        "arm_length": arm_length,
        "outer_radius": outer_radius,
        "bore_radius": bore_radius,
        "collars": collars,
    }
    return to_trimesh(solid), params


# Name, builder, reference radius (upper bound of the bounding-sphere radius, checked by the tests),
# description. Reference radii: the largest radius over seeds 0-999, rounded up with 2-4% to spare.
PART_FAMILIES: tuple[tuple[str, Builder, float, str], ...] = (
    ("wheel", build_wheel, 48.0, "flat wheel: rim and hub joined by spokes or a solid web"),
    ("hex_bolt", build_hex_bolt, 53.0, "hexagon-head bolt, stubby to long, optional washer face and grooves"),
    ("channel", build_channel, 75.0, "U or lipped C channel along x with holes in its web"),
    ("i_beam", build_i_beam, 78.0, "I or H beam along x, optional holes in its web"),
    ("stepped_shaft", build_stepped_shaft, 64.0, "turned shaft of 2-5 steps, optional keyway and bore"),
    ("vase", build_vase, 60.0, "turned vessel from a revolved profile, solid or hollow"),
    ("stool", build_stool, 80.0, "round or square top on 3-4 legs, optional rails"),
    ("pipe_fitting", build_pipe_fitting, 63.0, "elbow, tee or cross pipe fitting, optional collars"),
)
