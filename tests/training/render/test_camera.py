"""Viewpoint geometry, framing, shading conventions and the ray-casting engine of the renderer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh
from trimesh.ray import ray_pyembree

from training.render import camera


def test_viewpoint_position_and_axes_follow_the_documented_convention() -> None:
    # GIVEN a camera on the +x axis, and one at azimuth 90, elevation 30
    on_x = camera.Viewpoint(azimuth_degrees=0.0, elevation_degrees=0.0, distance=3.0)
    raised = camera.Viewpoint(azimuth_degrees=90.0, elevation_degrees=30.0, distance=2.0)

    # THEN positions are on the view sphere where documented
    np.testing.assert_allclose(on_x.position, [3.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(raised.position, [0.0, 2.0 * math.cos(math.pi / 6), 1.0], atol=1e-12)
    # ... and the camera on +x looks down -x with +y to its right and +z up
    right, up, forward = on_x.axes()
    np.testing.assert_allclose(forward, [-1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(right, [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(up, [0.0, 0.0, 1.0], atol=1e-12)


@pytest.mark.parametrize("viewpoint", camera.default_viewpoints(12))
def test_camera_axes_are_orthonormal_look_at_the_origin_and_keep_z_up(viewpoint: camera.Viewpoint) -> None:
    right, up, forward = viewpoint.axes()
    basis = np.stack([right, up, forward])
    np.testing.assert_allclose(basis @ basis.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(forward, -viewpoint.position / np.linalg.norm(viewpoint.position), atol=1e-12)
    assert up[2] > 0
    assert abs(right[2]) < 1e-12


def test_default_twelve_views_are_three_staggered_rings_of_four() -> None:
    views = camera.default_viewpoints(12)

    assert [view.elevation_degrees for view in views] == [60.0] * 4 + [30.0] * 4 + [-15.0] * 4
    for ring, offset in enumerate((15.0, 75.0, 45.0)):
        azimuths = [view.azimuth_degrees for view in views[4 * ring : 4 * ring + 4]]
        np.testing.assert_allclose(azimuths, [offset + 90.0 * index for index in range(4)])
    # No view looks straight along a part's x or y axis (boxy parts would collapse to their outline).
    for view in views:
        off_axis = min(view.azimuth_degrees % 90.0, 90.0 - view.azimuth_degrees % 90.0)
        assert off_axis >= 15.0


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 8, 9, 12, 13, 24, 100])
def test_any_number_of_views_gives_that_many_distinct_viewpoints(count: int) -> None:
    views = camera.default_viewpoints(count)
    assert len(views) == count
    assert len({(view.azimuth_degrees, view.elevation_degrees) for view in views}) == count


@pytest.mark.parametrize("count", [0, -1, 101])
def test_out_of_range_view_counts_are_rejected(count: int) -> None:
    with pytest.raises(ValueError, match="number of views"):
        camera.default_viewpoints(count)


def test_degenerate_viewpoints_are_rejected() -> None:
    with pytest.raises(ValueError, match="elevation"):
        camera.Viewpoint(0.0, 90.0)
    with pytest.raises(ValueError, match="outside the unit sphere"):
        camera.Viewpoint(0.0, 0.0, distance=1.0)


@pytest.mark.parametrize("viewpoint", camera.default_viewpoints(12))
def test_every_border_ray_misses_the_unit_sphere(viewpoint: camera.Viewpoint) -> None:
    # GIVEN the rays of a 64x64 image
    origins, directions = camera.camera_rays(viewpoint, 64, supersample=2)
    border = np.concatenate(
        [directions[0], directions[-1], directions[:, 0], directions[:, -1]],
    )

    # THEN each passes the origin farther than 1 (where every normalised design lives): nothing on the border
    distances = np.linalg.norm(np.cross(origins[0, 0], border), axis=1)
    assert distances.min() > 1.0
    # ... while the central ray goes straight through the origin
    centre = directions[64, 64]
    assert np.linalg.norm(np.cross(origins[0, 0], centre)) < 0.05


def test_a_sphere_renders_centred_filling_the_frame_and_lit_from_the_upper_left() -> None:
    # GIVEN a unit sphere WHEN it is rendered without anti-aliasing
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    viewpoint = camera.Viewpoint(azimuth_degrees=30.0, elevation_degrees=20.0)
    (image,) = camera.render_views(sphere, [viewpoint], 64, supersample=1)

    # THEN it touches no border pixel, is centred, and its disc has the radius the field of view implies
    assert image.dtype == np.uint8
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    assert not border.any()
    rows, columns = np.nonzero(image)
    assert rows.mean() == pytest.approx(31.5, abs=0.5)
    assert columns.mean() == pytest.approx(31.5, abs=0.5)
    expected_radius = 32.0 / (1.0 + camera.FRAME_MARGIN)
    assert math.sqrt(len(rows) / math.pi) == pytest.approx(expected_radius, abs=1.0)
    # ... every surface pixel is brighter than ambient light at the far end of the depth cue
    assert image[image > 0].min() >= math.floor(255 * camera.AMBIENT * (1 - camera.DEPTH_CUE))
    # ... and the highlight is up and to the left (the key light's side)
    brightest_row, brightest_column = np.unravel_index(np.argmax(image), image.shape)
    assert brightest_row < 32
    assert brightest_column < 32


def test_renderer_casts_rays_with_embree() -> None:
    mesh = trimesh.creation.box()
    assert isinstance(camera.make_intersector(mesh), ray_pyembree.RayMeshIntersector)
    # trimesh itself picks embree when embreex is installed, as the environment pins it
    assert isinstance(mesh.ray, ray_pyembree.RayMeshIntersector)


def test_embree_and_numpy_intersectors_render_the_same_picture() -> None:
    """The benchmark's baseline must render what the generator renders; rtree is needed for the baseline."""
    pytest.importorskip("rtree", reason="trimesh's numpy intersector needs rtree (requirements-dev.txt)")
    mesh = trimesh.creation.annulus(r_min=0.3, r_max=0.8, height=0.5)
    views = camera.default_viewpoints(3)

    embree = camera.render_views(mesh, views, 24, supersample=1, engine="embree")
    baseline = camera.render_views(mesh, views, 24, supersample=1, engine="numpy")

    np.testing.assert_array_equal(embree > 0, baseline > 0)
    assert np.abs(embree.astype(int) - baseline.astype(int)).max() <= 1


def test_unknown_engine_is_rejected() -> None:
    with pytest.raises(ValueError, match="engine"):
        camera.make_intersector(trimesh.creation.box(), "opengl")  # type: ignore[arg-type]
