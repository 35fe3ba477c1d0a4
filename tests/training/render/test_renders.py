"""Rendered families: non-blank, framed, different per view, and different between families.

The autoencoder trained on these renders must group designs by family from pixels alone, so families have
to be told apart by their *coarse* appearance, not only by details a person would notice.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from training.render import camera, shapes

SIZE = 32
SEEDS = (0, 1, 2)
# Fewest distinct views of 12 (3 rings x 4 azimuths): parts that are round about z repeat within a ring;
# parts symmetric under a half turn about z (a pipe, a plate, ...) repeat views 180 degrees apart.
DISTINCT_VIEWS = {"gear": 3, "spring": 3, "bracket": 12}
HALF_TURN_SYMMETRIC_MINIMUM = 6


@pytest.fixture(scope="module")
def renders() -> dict[str, list[np.ndarray]]:
    views = camera.default_viewpoints(12)
    return {
        family: [camera.render_views(shapes.build_design(family, seed).mesh, views, SIZE) for seed in SEEDS]
        for family in shapes.family_names()
    }


@pytest.mark.parametrize("family", shapes.family_names())
def test_renders_are_non_blank_in_range_and_inside_the_frame(
    renders: dict[str, list[np.ndarray]], family: str
) -> None:
    for images in renders[family]:
        assert images.shape == (12, SIZE, SIZE)
        assert images.dtype == np.uint8
        for image in images:
            foreground = image > 0
            # a real object, not a speck, not the whole frame
            assert 0.02 < foreground.mean() < 0.8
            # shaded, not a flat silhouette
            assert len(np.unique(image[foreground])) > 10
            # no foreground pixel on the border: the design is wholly in the frame
            border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
            assert not border.any()


@pytest.mark.parametrize("family", shapes.family_names())
def test_views_of_a_design_differ(renders: dict[str, list[np.ndarray]], family: str) -> None:
    for images in renders[family]:
        distinct = {image.tobytes() for image in images}
        assert len(distinct) >= DISTINCT_VIEWS.get(family, HALF_TURN_SYMMETRIC_MINIMUM)
        # different rings differ substantially, not by a pixel or two
        top, low = images[0].astype(float), images[-1].astype(float)
        assert np.abs(top - low).mean() > 5.0


def _coarse(images: np.ndarray) -> np.ndarray:
    """Views averaged over 4x4 pixel blocks: the coarse appearance a small bottleneck keeps."""
    views, height, width = images.shape
    return images.reshape(views, height // 4, 4, width // 4, 4).mean(axis=(2, 4)) / 255.0


def _distance(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.abs(first - second).mean())


def test_designs_are_closer_to_their_own_family_than_to_any_other(
    renders: dict[str, list[np.ndarray]],
) -> None:
    coarse = {family: [_coarse(images) for images in renders[family]] for family in renders}
    for family, own in coarse.items():
        within = np.mean([_distance(a, b) for a, b in itertools.combinations(own, 2)])
        for other, theirs in coarse.items():
            if other == family:
                continue
            between = np.mean([_distance(a, b) for a in own for b in theirs])
            assert between > 1.2 * within, f"{family} vs {other}: between {between:.4f}, within {within:.4f}"


def test_every_design_is_nearest_to_a_design_of_its_own_family(renders: dict[str, list[np.ndarray]]) -> None:
    samples = [(family, _coarse(images)) for family in renders for images in renders[family]]
    for index, (family, image) in enumerate(samples):
        nearest = min(
            (_distance(image, other), other_family)
            for other_index, (other_family, other) in enumerate(samples)
            if other_index != index
        )
        assert nearest[1] == family
