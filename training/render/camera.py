"""Fixed viewpoints on a view sphere and an off-screen grayscale ray-cast renderer.

Geometry (right-handed world, z up, every camera looking at the origin):

- A viewpoint is an azimuth (degrees, counter-clockwise from +x about +z) and an elevation (degrees above
  the xy plane) at `distance` from the origin. The camera sits at
  ``distance * (cos(el) cos(az), cos(el) sin(az), sin(el))``; its ``forward`` axis points at the origin,
  ``right = normalize(forward x z)`` and ``up = right x forward``, so world z always appears upwards.
- A pinhole camera with a square image whose half field of view is chosen so that the unit sphere (where
  every normalised design lives) projects inside the image with `FRAME_MARGIN` to spare: no part of a
  design can touch the border. Pixel (row, column) = (0, 0) is the top-left corner.
- The default views are rings of constant elevation, high to low, azimuths spread evenly within a ring
  and staggered between rings: 12 views are 3 rings x 4 azimuths at elevations 60, 30 and -15 degrees
  (views from slightly below show undersides, where holes and ribs differ) and azimuths 15+90k, 75+90k
  and 45+90k, so no view looks straight along a part's x or y axis (see `VIEW_RINGS`). View NN of every
  design is taken from the same viewpoint.

Shading: one directional key light fixed to the camera (above, to the left of and behind the viewer) plus
ambient, Lambertian on flat face normals; a mild depth cue darkens far surfaces. Background is 0; a pixel
wholly covered by the part is at least ``255 * AMBIENT * (1 - DEPTH_CUE)``, so the part always stands out.
Each pixel averages ``supersample ** 2`` rays (anti-aliasing); all rays of a design are cast in one call.

Ray casting uses trimesh's embree intersector (embreex); trimesh's pure-numpy intersector is kept as an
explicit alternative for the benchmark (it needs rtree and is orders of magnitude slower).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import trimesh

CAMERA_DISTANCE = 3.0
# The unit sphere's silhouette fills 1 / (1 + FRAME_MARGIN) of the half image: a few pixels to spare at 64x64.
FRAME_MARGIN = 0.08
AMBIENT = 0.22
DEPTH_CUE = 0.3
# Direction towards the light in camera axes (right, up, backwards towards the viewer).
LIGHT_IN_CAMERA = (-0.45, 0.55, 1.0)
# Rings of views by number of rings: elevations (degrees) and each ring's azimuth offset as a fraction of
# its azimuth step. With 4 views a ring the offsets give azimuths 15+90k, 75+90k and 45+90k: no view looks
# straight along a part's x or y axis, where boxy parts collapse to their outline.
VIEW_RINGS: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {
    1: ((30.0,), (1.0 / 6.0,)),
    2: ((45.0, 5.0), (1.0 / 6.0, 2.0 / 3.0)),
    3: ((60.0, 30.0, -15.0), (1.0 / 6.0, 5.0 / 6.0, 1.0 / 2.0)),
}
DEFAULT_VIEWS = 12
DEFAULT_SIZE = 64
DEFAULT_SUPERSAMPLE = 2

Engine = Literal["embree", "numpy"]
FloatArray = npt.NDArray[np.float64]
ImageArray = npt.NDArray[np.uint8]


@dataclasses.dataclass(frozen=True)
class Lighting:
    """How a design is lit: the key light (in camera axes, it turns with the camera), ambient, depth cue.

    ``albedo`` scales the whole shading (a darker or lighter material). The module constants are the
    standard lighting; the hard dataset draws one per design (training.render.variation).
    """

    ambient: float = AMBIENT
    light_in_camera: tuple[float, float, float] = LIGHT_IN_CAMERA
    depth_cue: float = DEPTH_CUE
    albedo: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.ambient < 1.0:
            raise ValueError(f"ambient must be within [0, 1), got {self.ambient}")
        if not 0.0 <= self.depth_cue < 1.0:
            raise ValueError(f"depth cue must be within [0, 1), got {self.depth_cue}")
        if not 0.0 < self.albedo <= 1.0:
            raise ValueError(f"albedo must be within (0, 1], got {self.albedo}")
        if not np.linalg.norm(self.light_in_camera) > 0.0:
            raise ValueError("the light direction must not be the zero vector")


@dataclasses.dataclass(frozen=True)
class Viewpoint:
    """A camera on the view sphere looking at the origin."""

    azimuth_degrees: float
    elevation_degrees: float
    distance: float = CAMERA_DISTANCE

    def __post_init__(self) -> None:
        if not -89.0 <= self.elevation_degrees <= 89.0:
            # At the poles `forward` is parallel to world z and the camera's up axis is undefined.
            raise ValueError(f"elevation must be within [-89, 89] degrees, got {self.elevation_degrees}")
        if not self.distance > 1.0:
            raise ValueError(f"the camera must be outside the unit sphere, got distance {self.distance}")

    @property
    def position(self) -> FloatArray:
        azimuth = math.radians(self.azimuth_degrees)
        elevation = math.radians(self.elevation_degrees)
        return self.distance * np.array(
            [
                math.cos(elevation) * math.cos(azimuth),
                math.cos(elevation) * math.sin(azimuth),
                math.sin(elevation),
            ]
        )

    def axes(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Orthonormal (right, up, forward) camera axes in world coordinates."""
        forward = -self.position / np.linalg.norm(self.position)
        right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        return right, up, forward

    def half_field_of_view_tangent(self) -> float:
        """tan(half field of view): the unit sphere's silhouette plus FRAME_MARGIN."""
        return math.tan(math.asin(1.0 / self.distance)) * (1.0 + FRAME_MARGIN)


def default_viewpoints(num_views: int = DEFAULT_VIEWS, distance: float = CAMERA_DISTANCE) -> list[Viewpoint]:
    """`num_views` fixed viewpoints in rings of constant elevation (see the module docstring).

    One ring below 4 views, two below 9, three from 9 on; views are dealt to rings as evenly as possible,
    the upper rings taking the remainder.
    """
    if not 1 <= num_views <= 100:
        raise ValueError(
            f"the number of views must be within [1, 100] (two-digit view names), got {num_views}"
        )
    rings = 1 if num_views < 4 else 2 if num_views < 9 else 3
    elevations, staggers = VIEW_RINGS[rings]
    viewpoints = []
    for ring, (elevation, stagger) in enumerate(zip(elevations, staggers, strict=True)):
        count = num_views // rings + (1 if ring < num_views % rings else 0)
        step = 360.0 / count
        for index in range(count):
            viewpoints.append(Viewpoint((stagger + index) * step % 360.0, elevation, distance))
    return viewpoints


def make_intersector(mesh: trimesh.Trimesh, engine: Engine = "embree") -> Any:
    """The ray-mesh intersector for `engine`: 'embree' (embreex, fast) or 'numpy' (trimesh's, needs rtree)."""
    if engine == "embree":
        from trimesh.ray import ray_pyembree  # fails clearly when embreex is missing

        return ray_pyembree.RayMeshIntersector(mesh)
    if engine == "numpy":
        from trimesh.ray import ray_triangle

        return ray_triangle.RayMeshIntersector(mesh)
    raise ValueError(f"engine must be 'embree' or 'numpy', not {engine!r}")


def camera_rays(
    viewpoint: Viewpoint, size: int, supersample: int = DEFAULT_SUPERSAMPLE
) -> tuple[FloatArray, FloatArray]:
    """Ray origins and unit directions, shape (size * s, size * s, 3) in row-major image order."""
    if size < 1 or supersample < 1:
        raise ValueError(f"size and supersample must be positive, got {size} and {supersample}")
    samples = size * supersample
    right, up, forward = viewpoint.axes()
    tangent = viewpoint.half_field_of_view_tangent()
    # Sample centres in normalised device coordinates [-1, 1]; rows go downwards.
    offsets = (np.arange(samples) + 0.5) / samples * 2.0 - 1.0
    horizontal = offsets[None, :, None] * tangent * right
    vertical = -offsets[:, None, None] * tangent * up
    directions = forward + horizontal + vertical
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    origins = np.broadcast_to(viewpoint.position, directions.shape)
    return origins, directions


@dataclasses.dataclass(frozen=True)
class RayBundle:
    """Every ray of a set of views, concatenated view after view (row-major within a view)."""

    origins: FloatArray
    directions: FloatArray
    # Unit vector towards the key light for each ray (the light turns with the camera).
    lights: FloatArray
    # Distance from each ray's camera to the near side of the unit sphere (start of the depth cue).
    nearest: FloatArray


@functools.lru_cache(maxsize=8)
def ray_bundle(viewpoints: tuple[Viewpoint, ...], size: int, supersample: int) -> RayBundle:
    """The rays for `viewpoints` at `size` x `size` pixels; cached because every design reuses them."""
    origins = []
    directions = []
    lights = []
    nearest = []
    rays_per_view = (size * supersample) ** 2
    for viewpoint in viewpoints:
        view_origins, view_directions = camera_rays(viewpoint, size, supersample)
        origins.append(view_origins.reshape(-1, 3))
        directions.append(view_directions.reshape(-1, 3))
        right, up, forward = viewpoint.axes()
        light = LIGHT_IN_CAMERA[0] * right + LIGHT_IN_CAMERA[1] * up - LIGHT_IN_CAMERA[2] * forward
        lights.append(np.broadcast_to(light / np.linalg.norm(light), (rays_per_view, 3)))
        nearest.append(np.full(rays_per_view, viewpoint.distance - 1.0))
    bundle = RayBundle(
        origins=np.concatenate(origins),
        directions=np.concatenate(directions),
        lights=np.concatenate(lights),
        nearest=np.concatenate(nearest),
    )
    for array in (bundle.origins, bundle.directions, bundle.lights, bundle.nearest):
        array.flags.writeable = False
    return bundle


def _lights(viewpoints: Sequence[Viewpoint], size: int, supersample: int, lighting: Lighting) -> FloatArray:
    """Unit vectors towards `lighting`'s key light for every ray (same layout as RayBundle.lights)."""
    rays_per_view = (size * supersample) ** 2
    towards = np.asarray(lighting.light_in_camera, dtype=np.float64)
    lights = []
    for viewpoint in viewpoints:
        right, up, forward = viewpoint.axes()
        light = towards[0] * right + towards[1] * up - towards[2] * forward
        lights.append(np.broadcast_to(light / np.linalg.norm(light), (rays_per_view, 3)))
    return np.concatenate(lights)


def render_views(
    mesh: trimesh.Trimesh,
    viewpoints: Sequence[Viewpoint],
    size: int = DEFAULT_SIZE,
    *,
    supersample: int = DEFAULT_SUPERSAMPLE,
    engine: Engine = "embree",
    intersector: Any = None,
    lighting: Lighting | None = None,
) -> ImageArray:
    """Render `mesh` from each viewpoint: uint8 array (len(viewpoints), size, size), background 0.

    `lighting` None is the standard lighting (the module constants).
    """
    if not viewpoints:
        raise ValueError("at least one viewpoint is needed")
    bundle = ray_bundle(tuple(viewpoints), size, supersample)
    if intersector is None:
        intersector = make_intersector(mesh, engine)
    triangles = np.asarray(intersector.intersects_first(bundle.origins, bundle.directions))
    hit = triangles >= 0
    hit_triangles = triangles[hit]
    normals = mesh.face_normals[hit_triangles]
    hit_directions = bundle.directions[hit]
    # Two-sided: a normal facing away from the viewer (grazing hits, numerical edge cases) is flipped.
    facing = np.einsum("ij,ij->i", normals, hit_directions)
    normals = np.where((facing > 0)[:, None], -normals, normals)
    lights = bundle.lights if lighting is None else _lights(viewpoints, size, supersample, lighting)
    ambient = AMBIENT if lighting is None else lighting.ambient
    depth_cue = DEPTH_CUE if lighting is None else lighting.depth_cue
    diffuse = np.clip(np.einsum("ij,ij->i", normals, lights[hit]), 0.0, None)
    # Distance to the hit along the ray, from the hit triangle's plane (embree only reports the triangle).
    plane_points = mesh.vertices[mesh.faces[hit_triangles, 0]]
    distance = np.einsum("ij,ij->i", normals, plane_points - bundle.origins[hit]) / np.einsum(
        "ij,ij->i", normals, hit_directions
    )
    # The unit sphere spans distances [d - 1, d + 1] from a camera at distance d: near 1, far 1 - DEPTH_CUE.
    nearness = 1.0 - depth_cue * np.clip((distance - bundle.nearest[hit]) / 2.0, 0.0, 1.0)
    intensity = np.zeros(len(triangles))
    intensity[hit] = (ambient + (1.0 - ambient) * diffuse) * nearness
    if lighting is not None:
        intensity *= lighting.albedo

    images = intensity.reshape(len(viewpoints), size, supersample, size, supersample).mean(axis=(2, 4))
    pixels: ImageArray = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    return pixels
