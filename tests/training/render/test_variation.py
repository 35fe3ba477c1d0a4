"""The hard dataset: family splits, random pose / scale / lighting per design, recorded in meta.json."""

from __future__ import annotations

import json
import pathlib
import tarfile

import numpy as np
import pytest

from training.render import batches, camera, shapes, variation

VIEWS = 4
SIZE = 24


def _metas(directory: pathlib.Path) -> list[dict[str, object]]:
    metas = []
    for path in sorted(directory.glob("*.tar.gz")):
        with tarfile.open(path) as archive:
            for member in archive.getmembers():
                if member.name.endswith("meta.json"):
                    metas.append(json.loads(archive.extractfile(member).read()))  # type: ignore[union-attr]
    return metas


def test_family_split_is_disjoint_covers_every_family_and_keeps_six_families_unseen() -> None:
    trained, held_out = set(variation.TRAINED_FAMILIES), set(variation.HELD_OUT_FAMILIES)

    assert not trained & held_out
    assert trained | held_out == set(shapes.all_family_names())
    assert len(trained | held_out) >= 12
    assert len(held_out) == 6
    assert len(trained) >= 10
    # Both sides mix default and part families.
    for side in (trained, held_out):
        assert side & set(shapes.DEFAULT_FAMILIES)
        assert side - set(shapes.DEFAULT_FAMILIES)
    assert variation.family_split("gear") == "held_out"
    assert variation.family_split("bracket") == "train"


def test_default_families_follow_difficulty_and_split() -> None:
    assert variation.default_families("standard") == shapes.family_names()
    assert variation.default_families("hard") == shapes.all_family_names()
    assert variation.default_families("hard", "train") == variation.TRAINED_FAMILIES
    assert variation.default_families("hard", "held_out") == variation.HELD_OUT_FAMILIES
    with pytest.raises(ValueError, match="family splits belong to the hard dataset"):
        variation.default_families("standard", "train")
    with pytest.raises(ValueError, match="difficulty must be one of standard, hard"):
        variation.default_families("easy")


def test_appearance_is_deterministic_by_seed_and_varies_between_designs() -> None:
    # GIVEN the appearances of many design seeds
    appearances = [variation.draw_appearance(seed) for seed in range(200)]

    # THEN the same seed draws the same appearance, and every one is valid and different
    assert variation.draw_appearance(7) == appearances[7]
    assert len({appearance.rotation for appearance in appearances}) == 200
    for appearance in appearances:
        matrix = appearance.rotation_matrix()
        np.testing.assert_allclose(matrix @ matrix.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(matrix) == pytest.approx(1.0)
        assert variation.SCALE_RANGE[0] <= appearance.scale <= variation.SCALE_RANGE[1]
        assert np.linalg.norm(appearance.lighting.light_in_camera) == pytest.approx(1.0)
        assert appearance.lighting.light_in_camera[2] >= variation.LIGHT_FACING_MINIMUM
    # ... and the draws spread over their ranges (poses over the whole sphere, lights of every strength)
    scales = [appearance.scale for appearance in appearances]
    assert max(scales) - min(scales) > 0.3
    upward_axes = np.array([appearance.rotation_matrix()[:, 2] for appearance in appearances])
    assert (upward_axes[:, 2] < -0.5).any()
    assert (upward_axes[:, 2] > 0.5).any()
    ambients = [appearance.lighting.ambient for appearance in appearances]
    assert max(ambients) - min(ambients) > 0.25


def test_posed_mesh_is_rotated_and_scaled_into_the_unit_sphere_and_stays_a_solid() -> None:
    # GIVEN a design and an appearance
    design = shapes.build_design("hex_bolt", 3)
    appearance = variation.draw_appearance(3)

    # WHEN it is posed
    posed = variation.posed_mesh(design, appearance)

    # THEN its bounding sphere has exactly the drawn scale, and it is the same solid, turned
    radius = float(np.linalg.norm(posed.vertices, axis=1).max())
    assert radius == pytest.approx(appearance.scale)
    assert posed.is_watertight
    assert posed.volume > 0
    ratio = appearance.scale / float(np.linalg.norm(design.mesh.vertices, axis=1).max())
    assert posed.volume == pytest.approx(design.mesh.volume * ratio**3)
    assert not np.allclose(posed.vertices, design.mesh.vertices * ratio)


def test_default_lighting_renders_exactly_the_standard_pictures() -> None:
    # GIVEN a design and the standard viewpoints
    mesh = shapes.build_design("gear", 1).mesh
    viewpoints = camera.default_viewpoints(3)

    # WHEN it is rendered without a lighting and with the default Lighting
    standard = camera.render_views(mesh, viewpoints, SIZE, supersample=1)
    explicit = camera.render_views(mesh, viewpoints, SIZE, supersample=1, lighting=camera.Lighting())
    darker = camera.render_views(
        mesh, viewpoints, SIZE, supersample=1, lighting=camera.Lighting(ambient=0.1, albedo=0.6)
    )

    # THEN the default Lighting is the standard lighting, and another lighting changes the pixels
    np.testing.assert_array_equal(standard, explicit)
    assert darker.sum() < standard.sum()
    assert ((darker > 0) == (standard > 0)).all()  # the silhouette does not depend on the light


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ambient": 1.0}, "ambient"),
        ({"depth_cue": -0.1}, "depth cue"),
        ({"albedo": 0.0}, "albedo"),
        ({"light_in_camera": (0.0, 0.0, 0.0)}, "zero vector"),
    ],
)
def test_invalid_lighting_is_rejected(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        camera.Lighting(**overrides)  # type: ignore[arg-type]


def test_hard_dataset_records_split_and_appearance_and_is_reproducible(tmp_path: pathlib.Path) -> None:
    # GIVEN a hard dataset of the held-out families, rendered twice with the same seed
    arguments = {"designs": 6, "designs_per_batch": 4, "views": VIEWS, "size": SIZE, "seed": 9}
    first = batches.generate_dataset(tmp_path / "one", difficulty="hard", split="held_out", **arguments)
    again = batches.generate_dataset(tmp_path / "two", difficulty="hard", split="held_out", **arguments)

    # THEN both are identical byte for byte and hold only held-out families, each design saying so
    assert [batch.sha256 for batch in first.batches] == [batch.sha256 for batch in again.batches]
    assert first.difficulty == "hard"
    assert list(first.family_counts) == list(variation.HELD_OUT_FAMILIES)
    metas = _metas(tmp_path / "one")
    assert len(metas) == 6
    for meta in metas:
        assert meta["difficulty"] == "hard"
        assert meta["split"] == "held_out"
        appearance = variation.draw_appearance(int(meta["seed"]))  # type: ignore[call-overload]
        assert meta["appearance"] == appearance.to_json_dict()
        # the shape parameters are those of the design's own seed, as in the standard dataset
        assert meta["params"] == shapes.build_design(str(meta["family"]), int(meta["seed"])).params  # type: ignore[call-overload]
    # AND the folder's families.json gives each rendered family's split, the same bytes both times
    families_file = (tmp_path / "one" / batches.FAMILIES_FILE).read_bytes()
    assert families_file == (tmp_path / "two" / batches.FAMILIES_FILE).read_bytes()
    assert json.loads(families_file) == {
        "difficulty": "hard",
        "families": dict.fromkeys(variation.HELD_OUT_FAMILIES, "held_out"),
    }


def test_the_same_design_looks_different_in_the_hard_dataset(tmp_path: pathlib.Path) -> None:
    # GIVEN one plan rendered standard and hard
    spec = batches.plan_designs(1, ["channel"], seed=4)[0]
    hard_spec = batches.plan_designs(1, ["channel"], seed=4, difficulty="hard")[0]

    # WHEN both are rendered
    standard = batches.render_design(spec, VIEWS, SIZE, supersample=1)
    hard = batches.render_design(hard_spec, VIEWS, SIZE, supersample=1)

    # THEN the shape is the same, the pictures are not; only the hard design records an appearance
    assert standard.params == hard.params
    assert not np.array_equal(standard.views, hard.views)
    assert "appearance" not in standard.meta()
    assert "split" not in standard.meta()
    assert hard.meta()["split"] == "train"


def test_split_with_named_families_or_with_the_standard_dataset_is_rejected(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="name families or a split, not both"):
        batches.generate_dataset(
            tmp_path, designs=1, designs_per_batch=1, families=["gear"], difficulty="hard", split="train"
        )
    with pytest.raises(ValueError, match="family splits belong to the hard dataset"):
        batches.generate_dataset(tmp_path, designs=1, designs_per_batch=1, split="train")
    assert not any(tmp_path.iterdir())
