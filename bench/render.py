"""Synthetic render generator: embree vs pure-numpy ray casting, and end-to-end designs per second.

Run: ``.venv/bin/python -m bench.render``

1. Ray casting: one design per family, the same 64x64 view's rays (one ray per pixel) cast with trimesh's
   embree intersector (embreex) and with trimesh's pure-numpy triangle intersector (needs rtree), timed in
   the same run; the ratio is the speed-up the generator gets from embree. Both must agree on which pixels
   hit the mesh (the speed-up is worthless if the pictures differ).
2. End to end: ``generate_dataset`` with 12 views at 64x64 (build mesh, validate, normalise, render,
   encode PNGs, write tar.gz archives), at the default anti-aliasing (2x2 rays per pixel) and without it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

from training.render import batches, camera, shapes

SIZE = 64
VIEWS = 12
SEED = 20240601
EMBREE_REPEATS = 20
NUMPY_REPEATS = 2
END_TO_END_DESIGNS = 48


def _time_call(function: Callable[[], object], repeats: int) -> float:
    """Best of `repeats` calls, in seconds: the least disturbed by other work on a shared machine."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def intersector_rows() -> tuple[list[str], float, float]:
    try:
        import rtree  # noqa: F401  # trimesh's numpy intersector needs it; fail with a clear message
    except ImportError as error:
        raise SystemExit(
            "bench.render needs rtree (pinned in requirements-dev.txt) for the numpy baseline"
        ) from error
    from trimesh.ray import ray_pyembree, ray_triangle

    viewpoint = camera.default_viewpoints(VIEWS)[1]
    origins, directions = camera.camera_rays(viewpoint, SIZE, supersample=1)
    origins = np.ascontiguousarray(origins.reshape(-1, 3))
    directions = np.ascontiguousarray(directions.reshape(-1, 3))
    rows = []
    embree_total = 0.0
    numpy_total = 0.0
    for family in shapes.family_names():
        mesh = shapes.build_design(family, SEED).mesh
        embree = camera.make_intersector(mesh, "embree")
        baseline = camera.make_intersector(mesh, "numpy")
        if not isinstance(embree, ray_pyembree.RayMeshIntersector):
            raise SystemExit(f"expected the embree intersector, got {type(embree).__name__}")
        if not isinstance(baseline, ray_triangle.RayMeshIntersector):
            raise SystemExit(f"expected the numpy intersector, got {type(baseline).__name__}")
        # Warm both (embree builds its BVH, the numpy intersector its r-tree) before timing.
        embree_hits = embree.intersects_first(origins, directions) >= 0
        numpy_hits = baseline.intersects_first(origins, directions) >= 0
        agreement = float(np.mean(embree_hits == numpy_hits))
        embree_seconds = _time_call(lambda e=embree: e.intersects_first(origins, directions), EMBREE_REPEATS)
        numpy_seconds = _time_call(lambda b=baseline: b.intersects_first(origins, directions), NUMPY_REPEATS)
        embree_total += embree_seconds
        numpy_total += numpy_seconds
        rows.append(
            f"| {family} | {len(mesh.faces)} | {embree_seconds * 1000:.2f} | {numpy_seconds * 1000:.0f} | "
            f"{numpy_seconds / embree_seconds:.0f}x | {agreement:.4f} |"
        )
    return rows, embree_total, numpy_total


def end_to_end(supersample: int, workers: int) -> tuple[float, float]:
    """(designs/s, ms per view) for a full generate_dataset run into a temporary folder."""
    with tempfile.TemporaryDirectory() as out_dir:
        manifest = batches.generate_dataset(
            out_dir,
            designs=END_TO_END_DESIGNS,
            designs_per_batch=16,
            views=VIEWS,
            size=SIZE,
            seed=SEED,
            workers=workers,
            supersample=supersample,
        )
    return manifest.designs / manifest.seconds, 1000 * manifest.seconds / (manifest.designs * VIEWS)


def main() -> str:
    load_before = os.getloadavg()[0]
    rows, embree_total, numpy_total = intersector_rows()
    families = len(rows)
    lines = [
        "## Synthetic renders: embree vs numpy ray casting, designs per second",
        "",
        "Command: `.venv/bin/python -m bench.render`",
        "",
        f"One {SIZE}x{SIZE} view ({SIZE * SIZE} rays, one per pixel) of one design per family,"
        " `intersects_first` with trimesh's embree intersector (`trimesh.ray.ray_pyembree`, embreex)"
        " vs its pure-numpy one"
        " (`trimesh.ray.ray_triangle`, rtree), same mesh and rays; best of"
        f" {EMBREE_REPEATS} (embree) and {NUMPY_REPEATS} (numpy) runs. Agreement: fraction of rays both"
        " call hit or miss alike.",
        "",
        "| family | triangles | embree ms/view | numpy ms/view | speed-up | agreement |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        f"| **mean** | | **{embree_total / families * 1000:.2f}** | "
        f"**{numpy_total / families * 1000:.0f}** | **{numpy_total / embree_total:.0f}x** | |",
        "",
        f"End to end: `generate_dataset` of {END_TO_END_DESIGNS} designs (all families in turn),"
        f" {VIEWS} views at {SIZE}x{SIZE}: build + validate + normalise + ray cast + shade + PNG + tar.gz.",
        "",
        "| anti-aliasing | workers | designs/s | ms per view |",
        "| --- | ---: | ---: | ---: |",
    ]
    for supersample, workers in ((2, 1), (1, 1), (2, 2)):
        designs_per_second, ms_per_view = end_to_end(supersample, workers)
        label = f"{supersample}x{supersample} rays/pixel" + (" (default)" if supersample == 2 else "")
        lines.append(f"| {label} | {workers} | {designs_per_second:.1f} | {ms_per_view:.2f} |")
    lines.extend(
        [
            "",
            f"1-minute load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after the run on"
            f" {os.cpu_count()} cores: other work on a shared machine slows every row, ratios less so.",
        ]
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(main())
