"""Design families build real, renderable solids whose parameters vary; normalisation keeps them framed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from training.render import shapes

FAMILIES = shapes.all_family_names()
SEEDS = (0, 1, 2, 3, 4)


def test_there_are_at_least_six_default_families_and_twelve_in_all() -> None:
    assert len(shapes.family_names()) >= 6
    assert len(FAMILIES) >= 12
    assert len(set(FAMILIES)) == len(FAMILIES)
    # The default families (what `autostop render` cycles through) come first, unchanged in order.
    assert FAMILIES[: len(shapes.family_names())] == shapes.family_names()


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_builds_watertight_non_empty_meshes_inside_the_unit_sphere(family: str) -> None:
    for seed in SEEDS:
        # GIVEN / WHEN a design of the family is built
        design = shapes.build_design(family, seed)

        # THEN it is a closed, consistently wound solid with positive volume ...
        mesh = design.mesh
        assert len(mesh.faces) > 0
        assert mesh.is_watertight
        assert mesh.is_winding_consistent
        assert mesh.volume > 0
        # ... centred, inside the unit sphere, and not tiny (its family's sizes span a useful range)
        lower, upper = mesh.bounds
        np.testing.assert_allclose((lower + upper) / 2.0, 0.0, atol=1e-9)
        radius = float(np.linalg.norm(mesh.vertices, axis=1).max())
        assert radius <= 1.0 + 1e-9
        assert radius == pytest.approx(design.relative_size)
        # Default families keep sizes within 0.7-1.0 of their reference; the part families vary their
        # proportions far more (a stubby bolt vs a long one), so only "not tiny" holds for them.
        smallest = 0.7 if family in shapes.DEFAULT_FAMILIES else 0.25
        assert smallest <= design.relative_size <= 1.0
        # ... and its parameters can go into meta.json
        assert json.loads(json.dumps(design.params)) == design.params


@pytest.mark.parametrize("family", FAMILIES)
def test_parameters_vary_within_a_family(family: str) -> None:
    # GIVEN several seeds WHEN their designs are built
    params = [shapes.build_design(family, seed).params for seed in range(8)]

    # THEN every design differs, and several parameters take more than one value
    assert len({json.dumps(entry, sort_keys=True) for entry in params}) == len(params)
    varying = [key for key in params[0] if len({json.dumps(entry.get(key)) for entry in params}) > 1]
    assert len(varying) >= 3, varying


@pytest.mark.parametrize("family", FAMILIES)
def test_reference_radius_bounds_the_family_so_sizes_stay_comparable(family: str) -> None:
    # GIVEN many seeds WHEN designs are built
    sizes = [shapes.build_design(family, seed).relative_size for seed in range(100, 125)]

    # THEN no design needed clamping to the unit sphere (relative size 1.0 would mean it exceeded the
    # reference radius), and sizes really differ within the family
    assert max(sizes) < 1.0
    assert max(sizes) - min(sizes) > 0.05


def test_same_seed_builds_the_same_design_and_another_seed_a_different_one() -> None:
    first = shapes.build_design("bracket", 7)
    again = shapes.build_design("bracket", 7)
    other = shapes.build_design("bracket", 8)

    np.testing.assert_array_equal(first.mesh.vertices, again.mesh.vertices)
    np.testing.assert_array_equal(first.mesh.faces, again.mesh.faces)
    assert first.params == again.params
    assert first.params != other.params


def test_unknown_family_is_rejected_with_the_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown design family 'blob'.*bracket"):
        shapes.build_design("blob", 0)


def test_validation_rejects_empty_open_and_inside_out_meshes() -> None:
    box = trimesh.creation.box()
    open_box = trimesh.Trimesh(vertices=box.vertices, faces=box.faces[1:], process=False)
    inside_out = box.copy()
    inside_out.invert()

    with pytest.raises(shapes.DesignBuildError, match="empty"):
        shapes.validate_mesh(trimesh.Trimesh(), "test")
    with pytest.raises(shapes.DesignBuildError, match="not watertight"):
        shapes.validate_mesh(open_box, "test")
    with pytest.raises(shapes.DesignBuildError, match="volume"):
        shapes.validate_mesh(inside_out, "test")
    shapes.validate_mesh(box, "test")
