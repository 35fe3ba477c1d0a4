"""Render batches: exact layout and meta.json, byte-for-byte determinism, accepted by the transformer."""

from __future__ import annotations

import gzip
import io
import json
import pathlib
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from lambdas.transform_renders import transform
from training.render import batches, shapes

VIEWS = 4
SIZE = 24


def _generate(out_dir: pathlib.Path, **overrides: object) -> batches.RenderManifest:
    arguments: dict[str, object] = {
        "designs": 3,
        "designs_per_batch": 2,
        "families": ["bracket", "torus", "gear"],
        "views": VIEWS,
        "size": SIZE,
        "seed": 5,
        "workers": 1,
        "archive_format": "tar.gz",
    }
    arguments.update(overrides)
    return batches.generate_dataset(out_dir, **arguments)  # type: ignore[arg-type]


def _members(path: pathlib.Path) -> list[tuple[str, bytes]]:
    """(name, content) of every member in archive order, for any of the three formats."""
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            return [(info.filename, archive.read(info)) for info in archive.infolist()]
    with tarfile.open(path) as archive:
        return [(info.name, archive.extractfile(info).read()) for info in archive.getmembers()]  # type: ignore[union-attr]


def _read_all(directory: pathlib.Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_plan_cycles_through_families_with_unique_valid_ids_and_seeds() -> None:
    plan = batches.plan_designs(10, ["plate", "tube", "spring"], seed=3)

    assert [spec.family for spec in plan[:6]] == ["plate", "tube", "spring"] * 2
    assert [spec.index for spec in plan] == list(range(10))
    assert len({spec.design_id for spec in plan}) == 10
    assert len({spec.seed for spec in plan}) == 10
    assert plan[4].design_id == "s3-d000004-tube"
    for spec in plan:
        assert batches.DESIGN_ID_PATTERN.fullmatch(spec.design_id)
    # a design's seed depends on the dataset seed and its index only, not on the dataset's size
    assert batches.plan_designs(3, ["plate", "tube", "spring"], seed=3) == plan[:3]


def test_archives_have_the_documented_layout_and_meta(tmp_path: pathlib.Path) -> None:
    # GIVEN / WHEN 3 designs are generated 2 per batch
    manifest = _generate(tmp_path)

    # THEN there are two archives holding 2 and 1 designs
    assert [pathlib.Path(batch.path).name for batch in manifest.batches] == [
        "renders-s5-b00000.tar.gz",
        "renders-s5-b00001.tar.gz",
    ]
    assert [len(batch.design_ids) for batch in manifest.batches] == [2, 1]
    assert manifest.family_counts == {"bracket": 1, "torus": 1, "gear": 1}
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "renders-s5-b00000.tar.gz",
        "renders-s5-b00001.tar.gz",
    ]
    members = _members(pathlib.Path(manifest.batches[0].path))
    # ... members are exactly meta.json then view_00..view_03 per design, designs in order
    expected_names = []
    for design_id in ("s5-d000000-bracket", "s5-d000001-torus"):
        expected_names.append(f"{design_id}/meta.json")
        expected_names.extend(f"{design_id}/view_{number:02d}.png" for number in range(VIEWS))
    assert [name for name, _ in members] == expected_names
    content = dict(members)
    # ... every view is an 8-bit grayscale PNG of the requested size with an object in it
    for name, data in members:
        if name.endswith(".png"):
            image = Image.open(io.BytesIO(data))
            assert image.format == "PNG"
            assert image.mode == "L"
            assert image.size == (SIZE, SIZE)
            assert np.asarray(image).max() > 0
    # ... and meta.json says family, params and the seed that rebuilds exactly this design
    meta = json.loads(content["s5-d000001-torus/meta.json"])
    assert set(meta) == {"family", "params", "seed"}
    assert meta["family"] == "torus"
    assert shapes.build_design("torus", meta["seed"]).params == meta["params"]


def test_tar_members_and_gzip_header_carry_no_time_or_owner(tmp_path: pathlib.Path) -> None:
    manifest = _generate(tmp_path, designs=1)
    data = pathlib.Path(manifest.batches[0].path).read_bytes()

    assert data[:2] == b"\x1f\x8b"
    assert data[4:8] == b"\x00\x00\x00\x00"  # gzip MTIME
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as archive:
        for info in archive.getmembers():
            assert info.isfile()
            assert (info.mtime, info.uid, info.gid, info.mode) == (0, 0, 0, 0o644)
            assert (info.uname, info.gname) == ("", "")


def test_all_formats_hold_the_same_members(tmp_path: pathlib.Path) -> None:
    contents = {}
    for archive_format in batches.ARCHIVE_FORMATS:
        out_dir = tmp_path / archive_format.replace(".", "_")
        manifest = _generate(out_dir, archive_format=archive_format, designs=2)
        (batch,) = manifest.batches
        assert batch.path.endswith("." + archive_format)
        contents[archive_format] = _members(pathlib.Path(batch.path))
    assert contents["tar"] == contents["tar.gz"] == contents["zip"]


def test_same_seed_gives_identical_bytes_whatever_the_workers_and_another_seed_differs(
    tmp_path: pathlib.Path,
) -> None:
    # GIVEN the same dataset generated twice in one process, once with two worker processes
    _generate(tmp_path / "first", designs=4)
    _generate(tmp_path / "again", designs=4)
    _generate(tmp_path / "workers", designs=4, workers=2)
    _generate(tmp_path / "zip-first", designs=2, archive_format="zip")
    _generate(tmp_path / "zip-again", designs=2, archive_format="zip")
    _generate(tmp_path / "other", designs=4, seed=6)

    # THEN the archives are byte-identical ...
    first = _read_all(tmp_path / "first")
    assert first == _read_all(tmp_path / "again") == _read_all(tmp_path / "workers")
    assert _read_all(tmp_path / "zip-first") == _read_all(tmp_path / "zip-again")
    # ... and another seed gives other pictures (not just other names)
    other = _read_all(tmp_path / "other")
    first_views = {data for name, data in _members(tmp_path / "first" / "renders-s5-b00000.tar.gz")}
    other_views = {data for name, data in _members(tmp_path / "other" / "renders-s6-b00000.tar.gz")}
    assert list(other) != list(first)
    assert not first_views & other_views


@pytest.mark.parametrize("archive_format", batches.ARCHIVE_FORMATS)
def test_the_transformer_accepts_every_generated_design(tmp_path: pathlib.Path, archive_format: str) -> None:
    """Contract with the transformer core: our archives are training data, nothing rejected."""
    manifest = _generate(tmp_path, archive_format=archive_format, designs_per_batch=3)
    (batch,) = manifest.batches
    path = pathlib.Path(batch.path)
    pngs = dict(_members(path))

    result = transform.transform_archive(
        path.read_bytes(),
        archive_name=path.name,
        config=transform.TransformConfig(image_size=SIZE, num_views=VIEWS),
    )

    assert result.rejections == ()
    assert [design.design_id for design in result.designs] == list(batch.design_ids)
    assert [design.family for design in result.designs] == ["bracket", "torus", "gear"]
    for design in result.designs:
        for number in range(VIEWS):
            expected = np.asarray(Image.open(io.BytesIO(pngs[f"{design.design_id}/view_{number:02d}.png"])))
            np.testing.assert_array_equal(design.views[number], expected)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"designs": 0}, "number of designs"),
        ({"designs_per_batch": 0}, "designs per batch"),
        ({"families": ["bracket", "blob"]}, "unknown design family 'blob'"),
        ({"families": ["tube", "tube"]}, "more than once"),
        ({"families": []}, "at least one design family"),
        ({"views": 0}, "number of views"),
        ({"views": 101}, "number of views"),
        ({"size": 4}, "image size"),
        ({"seed": -1}, "seed"),
        ({"workers": 0}, "workers"),
        ({"archive_format": "rar"}, "archive format"),
        ({"supersample": 0}, "supersample"),
    ],
)
def test_bad_arguments_are_rejected_before_anything_is_written(
    tmp_path: pathlib.Path, overrides: dict[str, object], message: str
) -> None:
    out_dir = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        _generate(out_dir, **overrides)
    assert not out_dir.exists()


def test_contact_sheet_is_a_grid_of_designs_by_views() -> None:
    rendered = [batches.render_design(spec, VIEWS, SIZE, 1) for spec in batches.plan_designs(2, ["plate"], 0)]

    sheet = batches.contact_sheet(rendered, label_width=100, gap=2)

    assert sheet.mode == "L"
    assert sheet.size == (100 + VIEWS * (SIZE + 2) + 2, 2 * (SIZE + 2) + 2)
    # the second design's last view sits where the grid says it does
    tile = np.asarray(sheet)[2 + SIZE + 2 :][:SIZE, 100 + 2 + 3 * (SIZE + 2) :][:, :SIZE]
    np.testing.assert_array_equal(tile, rendered[1].views[3])
