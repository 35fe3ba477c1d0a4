"""The pure transform core: formats, image modes, fit-and-pad, view counts and every rejection reason."""

from __future__ import annotations

import gzip
import io
import json
import stat
import tarfile
import zipfile

import numpy
import pytest
from PIL import Image

from lambdas.transform_renders import layout, transform
from lambdas.transform_renders.transform import Reason, TransformConfig
from tests.lambdas.transform_renders import archives

SMALL = TransformConfig(image_size=16, num_views=3)


def only_design(result: transform.BatchResult) -> transform.Design:
    assert result.rejections == ()
    assert len(result.designs) == 1
    return result.designs[0]


def only_rejection(result: transform.BatchResult) -> transform.Rejection:
    assert len(result.rejections) == 1, result.rejections
    return result.rejections[0]


def uniform_view(data: bytes, config: TransformConfig = SMALL) -> numpy.typing.NDArray[numpy.uint8]:
    return transform.render_view(data, config=config)


# ------------------------------------------------------------------------------------------ formats


@pytest.mark.parametrize("kind", archives.KINDS)
def test_every_archive_kind_yields_the_same_design(kind: str) -> None:
    # GIVEN one design (12 views + meta.json) packed as tar, tar.gz, tgz and zip
    files = archives.design_files("bracket-001", size=(20, 10))
    reference = archives.transform_files(files, kind="tar")
    # WHEN each archive is transformed
    design = only_design(archives.transform_files(files, kind=kind))
    # THEN every kind gives identical uint8 views and the family from meta.json
    assert design.design_id == "bracket-001"
    assert design.family == "bracket"
    assert design.views.dtype == numpy.uint8
    assert design.views.shape == (12, 64, 64)
    numpy.testing.assert_array_equal(design.views, reference.designs[0].views)


def test_archive_suffix_is_case_insensitive_and_dot_slash_prefixes_are_accepted() -> None:
    # GIVEN a tar written like `tar -C dir -czf BATCH.TAR.GZ .` (a "./" root entry, "./" prefixes)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        root = tarfile.TarInfo("./")
        root.type = tarfile.DIRTYPE
        archive.addfile(root)
        folder = tarfile.TarInfo("./d1")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        for name, data in archives.design_files("d1", views=3).items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    # WHEN it is transformed under an upper-case name
    result = transform.transform_archive(buffer.getvalue(), archive_name="renders/BATCH.TAR.GZ", config=SMALL)
    # THEN the design is found
    assert only_design(result).design_id == "d1"


def test_jpeg_views_are_accepted_with_jpg_and_jpeg_extensions() -> None:
    # GIVEN a design whose views are JPEGs named .jpg and .JPEG
    files = {
        "j1/view_00.jpg": archives.image_bytes(30, 30, image_format="JPEG", color=(90, 90, 90)),
        "j1/view_01.JPEG": archives.image_bytes(30, 30, image_format="JPEG", color=(90, 90, 90)),
        "j1/view_02.png": archives.image_bytes(30, 30, color=(90, 90, 90)),
    }
    # WHEN transformed
    design = only_design(archives.transform_files(files, config=SMALL))
    # THEN all three views decode to the same gray level (JPEG is lossy: within 2 levels)
    assert numpy.abs(design.views.astype(int) - 90).max() <= 2


# ------------------------------------------------------------------------------------- image modes

# (mode, color, expected gray) for uniform images; PNG unless the mode needs JPEG.
MODE_CASES = [
    ("1", 1, 255),
    ("L", 77, 77),
    ("LA", (200, 255), 200),
    ("P", 5, None),  # palette index 5 of the default palette: checked against Pillow's own conversion
    ("RGB", (200, 100, 50), 124),  # ITU-R 601-2: 0.299*200 + 0.587*100 + 0.114*50 = 124.2
    ("RGBA", (200, 100, 50, 255), 124),
    ("I;16", 32896, 128),  # 16-bit scaled by 255/65535
]


@pytest.mark.parametrize(("mode", "color", "expected"), MODE_CASES, ids=[case[0] for case in MODE_CASES])
def test_png_modes_convert_to_luma(mode: str, color: object, expected: int | None) -> None:
    # GIVEN a uniform square PNG in the given mode
    data = archives.image_bytes(16, 16, mode=mode, color=color)
    if expected is None:
        expected = int(numpy.asarray(Image.open(io.BytesIO(data)).convert("L"))[0, 0])
    # WHEN it is rendered
    view = uniform_view(data)
    # THEN every pixel has the expected gray level
    assert view.min() == view.max() == expected


@pytest.mark.parametrize(
    ("mode", "color", "expected"), [("L", 60, 60), ("RGB", (200, 100, 50), 124), ("CMYK", (0, 0, 0, 0), 255)]
)
def test_jpeg_modes_convert_to_luma(mode: str, color: object, expected: int) -> None:
    # GIVEN a uniform JPEG (grayscale, RGB, and Adobe CMYK)
    data = archives.image_bytes(24, 24, mode=mode, image_format="JPEG", color=color)
    # WHEN it is rendered
    view = uniform_view(data)
    # THEN it is within JPEG's rounding of the expected gray level
    assert numpy.abs(view.astype(int) - expected).max() <= 2


def test_sixteen_bit_png_keeps_its_full_range() -> None:
    # GIVEN a 16-bit grayscale ramp from 0 to 65535
    ramp = numpy.linspace(0, 65535, 16, dtype=numpy.uint16)
    image = Image.fromarray(numpy.tile(ramp, (16, 1)))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    # WHEN rendered at its own size (no resampling)
    view = uniform_view(buffer.getvalue())
    # THEN black stays 0, white becomes 255 and the ramp is increasing
    assert view[:, 0].max() == 0
    assert view[:, -1].min() == 255
    assert numpy.all(numpy.diff(view[0].astype(int)) >= 0)


def test_alpha_is_composited_over_the_pad_value() -> None:
    # GIVEN an RGBA image: left half opaque white, right half fully transparent white; pad value 40
    pixels = numpy.zeros((16, 16, 4), numpy.uint8)
    pixels[..., :3] = 255
    pixels[:, :8, 3] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    config = TransformConfig(image_size=16, num_views=3, pad_value=40)
    # WHEN rendered
    view = uniform_view(buffer.getvalue(), config)
    # THEN opaque pixels are white and transparent ones take the pad value (the background)
    assert view[:, :8].min() == 255
    assert view[:, 8:].max() == 40


def test_palette_transparency_is_composited_too() -> None:
    # GIVEN a palette PNG whose index 0 is declared transparent
    image = Image.new("P", (16, 16), 0)
    image.putpalette([255, 255, 255] * 256)
    image.paste(1, (0, 0, 8, 16))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)
    # WHEN rendered with pad value 0
    view = uniform_view(buffer.getvalue())
    # THEN index 1 (opaque white) stays white, index 0 (transparent) becomes the background
    assert view[:, :8].min() == 255
    assert view[:, 8:].max() == 0


def test_a_mode_outside_png_and_jpeg_is_rejected_by_the_converter() -> None:
    # GIVEN a 32-bit float image (no PNG or JPEG decodes to it; the converter still refuses it explicitly)
    image = Image.new("F", (4, 4))
    # WHEN / THEN converting it raises the unsupported-mode rejection
    with pytest.raises(transform.DesignRejected) as raised:
        transform.to_grayscale(image, 0)
    assert raised.value.reason == Reason.UNSUPPORTED_IMAGE_MODE


# ------------------------------------------------------------------------------------ fit and pad


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(64, 64, (64, 64)), (32, 16, (64, 32)), (16, 32, (32, 64)), (1000, 1, (64, 1)), (1, 1, (64, 64))],
)
def test_fitted_size_keeps_the_aspect_ratio(width: int, height: int, expected: tuple[int, int]) -> None:
    assert transform.fitted_size(width, height, 64) == expected


def test_wide_view_is_centered_with_padding_above_and_below() -> None:
    # GIVEN a 40x20 white image, S = 16, pad value 9
    config = TransformConfig(image_size=16, num_views=3, pad_value=9)
    data = archives.image_bytes(40, 20, mode="L", color=255)
    # WHEN rendered
    view = uniform_view(data, config)
    # THEN it fills 16x8 in the middle rows and rows above/below hold the pad value
    assert view[4:12].min() == 255
    assert view[:4].max() == 9
    assert view[12:].max() == 9


def test_tall_view_is_centered_with_padding_left_and_right() -> None:
    config = TransformConfig(image_size=16, num_views=3)
    view = uniform_view(archives.image_bytes(10, 40, mode="L", color=200), config)
    assert view[:, 6:10].min() == 200
    assert view[:, :6].max() == 0
    assert view[:, 10:].max() == 0


def test_a_view_already_at_the_target_size_is_copied_exactly() -> None:
    # GIVEN random grayscale pixels at exactly S x S
    pixels = numpy.random.default_rng(3).integers(0, 256, (16, 16), dtype=numpy.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    # WHEN rendered, THEN the stacked view is bit-identical (no resampling, no gray conversion loss)
    numpy.testing.assert_array_equal(uniform_view(buffer.getvalue()), pixels)


def test_render_view_draws_into_a_given_canvas_exactly_as_the_shard_stores_it() -> None:
    # GIVEN a design of 3 wide views, and a canvas prefilled with the pad value
    config = TransformConfig(image_size=16, num_views=3, pad_value=5)
    files = archives.design_files("d", views=3, size=(30, 12))
    design = only_design(archives.transform_files(files, config=config))
    canvas = numpy.full((16, 16), 5, numpy.uint8)
    # WHEN one view is rendered on its own, into the canvas and without one
    drawn = transform.render_view(files["d/view_01.png"], config=config, canvas=canvas)
    fresh = transform.render_view(files["d/view_01.png"], config=config)
    # THEN both equal that view in the design's stack (and the canvas itself was written)
    assert drawn is canvas
    numpy.testing.assert_array_equal(drawn, design.views[1])
    numpy.testing.assert_array_equal(fresh, design.views[1])


def test_large_view_is_downscaled_and_small_view_upscaled() -> None:
    # GIVEN a 1000x500 image with a white left half, and a 2x2 white image
    left_white = numpy.zeros((500, 1000), numpy.uint8)
    left_white[:, :500] = 255
    buffer = io.BytesIO()
    Image.fromarray(left_white).save(buffer, "PNG")
    # WHEN both are rendered at S = 16
    large = uniform_view(buffer.getvalue())
    small = uniform_view(archives.image_bytes(2, 2, mode="L", color=255))
    # THEN the large one keeps its left/right structure inside an 16x8 band, the small one fills 16x16
    assert large[4:12, :7].min() == 255
    assert large[4:12, 9:].max() == 0
    assert small.min() == 255


# -------------------------------------------------------------------------------------- view counts


def test_views_are_stacked_in_view_number_order_not_archive_order() -> None:
    # GIVEN 3 views with gray levels 10, 20, 30 stored in the archive in reverse order
    files = {
        f"d/view_{number:02d}.png": archives.image_bytes(8, 8, mode="L", color=10 * (number + 1))
        for number in (2, 1, 0)
    }
    # WHEN transformed
    design = only_design(archives.transform_files(files, config=SMALL))
    # THEN view k holds level 10*(k+1)
    assert [int(design.views[k, 0, 0]) for k in range(3)] == [10, 20, 30]
    assert design.family == ""  # no meta.json


@pytest.mark.parametrize("num_views", [1, 4, 12])
def test_configured_view_count_is_honoured(num_views: int) -> None:
    config = TransformConfig(image_size=8, num_views=num_views)
    files = archives.design_files("d", views=num_views, size=(8, 8))
    assert only_design(archives.transform_files(files, config=config)).views.shape == (num_views, 8, 8)


@pytest.mark.parametrize("views", [2, 4, 0])
def test_a_design_with_another_view_count_is_rejected(views: int) -> None:
    files = archives.design_files("d", views=views, size=(8, 8))
    result = archives.transform_files(files, config=SMALL)
    assert result.designs == ()
    rejection = result.rejections[0]
    assert (rejection.design_id, rejection.reason) == ("d", Reason.WRONG_VIEW_COUNT)
    assert result.rejections[-1].reason == Reason.NO_VALID_DESIGNS


def test_one_bad_design_is_rejected_alone() -> None:
    # GIVEN a batch with two good designs and one with a missing view
    files = {
        **archives.design_files("good-1", views=3),
        **archives.design_files("bad", views=2),
        **archives.design_files("good-2", views=3),
    }
    # WHEN transformed
    result = archives.transform_files(files, kind="zip", config=SMALL)
    # THEN the good designs go on, sorted by id, and only "bad" is rejected (no batch-level rejection)
    assert [design.design_id for design in result.designs] == ["good-1", "good-2"]
    assert [(r.design_id, r.reason) for r in result.rejections] == [("bad", Reason.WRONG_VIEW_COUNT)]
    assert result.batch_rejection is None


# ------------------------------------------------------------------------------ rejection reasons

GOOD = archives.design_files("ok", views=3, size=(8, 8))


def _files_with(extra: dict[str, bytes], drop: tuple[str, ...] = ()) -> dict[str, bytes]:
    files = {
        name: data
        for name, data in archives.design_files("d", views=3, size=(8, 8)).items()
        if name not in drop
    }
    return {**GOOD, **files, **extra}


DESIGN_REJECTIONS = [
    (Reason.INVALID_DESIGN_ID, {"-bad id/view_00.png": b"x"}, (), "-bad id"),
    (Reason.UNEXPECTED_MEMBER, {"d/notes.txt": b"hello"}, (), "d"),
    (Reason.UNEXPECTED_MEMBER, {"d/sub/view_00.png": b"x"}, (), "d"),
    (Reason.BAD_META, {"d/meta.json": b"not json"}, (), "d"),
    (Reason.BAD_META, {"d/meta.json": b"[1, 2]"}, (), "d"),
    (Reason.BAD_META, {"d/meta.json": json.dumps({"family": 7}).encode()}, (), "d"),
    (Reason.BAD_VIEW_NUMBERING, {"d/view_05.png": archives.image_bytes(8, 8)}, ("d/view_02.png",), "d"),
    (Reason.BAD_VIEW_NUMBERING, {"d/view_01.jpg": archives.image_bytes(8, 8, image_format="JPEG")}, (), "d"),
    (Reason.UNDECODABLE_IMAGE, {"d/view_01.png": b"\x89PNG\r\n\x1a\n garbage"}, (), "d"),
    (Reason.UNDECODABLE_IMAGE, {"d/view_01.png": archives.image_bytes(8, 8)[:-30]}, (), "d"),
    (Reason.UNDECODABLE_IMAGE, {"d/view_01.png": archives.image_bytes(8, 8, image_format="GIF")}, (), "d"),
    (Reason.UNDECODABLE_IMAGE, {"d/view_01.png": b""}, (), "d"),
    (Reason.IMAGE_TOO_LARGE, {"d/view_01.png": archives.png_header_only(100_000, 100_000)}, (), "d"),
    (Reason.STRAY_MEMBER, {"README.txt": b"top-level file"}, (), None),
]


@pytest.mark.parametrize(
    ("reason", "extra", "drop", "design_id"),
    DESIGN_REJECTIONS,
    ids=[f"{case[0]}-{index}" for index, case in enumerate(DESIGN_REJECTIONS)],
)
@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_each_design_level_reason(
    kind: str, reason: Reason, extra: dict[str, bytes], drop: tuple[str, ...], design_id: str | None
) -> None:
    # GIVEN a batch holding a good design "ok" and a design (or member) with one specific problem
    files = _files_with(extra, drop)
    # WHEN transformed
    result = archives.transform_files(files, kind=kind, config=SMALL)
    # THEN the other designs are kept and exactly one rejection, with that reason and design id, is reported
    assert [design.design_id for design in result.designs] == (["ok"] if design_id == "d" else ["d", "ok"])
    rejection = only_rejection(result)
    assert (rejection.reason, rejection.design_id) == (reason, design_id)
    assert rejection.message


def test_a_duplicated_member_rejects_its_design() -> None:
    # GIVEN a tar holding d/view_00.png twice (tar allows it; the later copy would silently win on extract)
    buffer = io.BytesIO(archives.tar_bytes(GOOD))
    files = archives.design_files("d", views=3, size=(8, 8))
    with tarfile.open(fileobj=buffer, mode="a") as archive:
        for name, data in [*files.items(), ("d/view_00.png", files["d/view_00.png"])]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    # WHEN transformed
    result = transform.transform_archive(buffer.getvalue(), archive_name="b.tar", config=SMALL)
    # THEN d is rejected as a duplicate and ok survives
    assert [design.design_id for design in result.designs] == ["ok"]
    assert only_rejection(result).reason == Reason.DUPLICATE_MEMBER


def test_a_member_over_the_size_bound_rejects_its_design_without_being_read() -> None:
    # GIVEN a per-member bound of 2 KB and one view of ~3 KB (incompressible pixels)
    limits = transform.Limits(max_member_bytes=2048)
    config = TransformConfig(image_size=16, num_views=3, limits=limits)
    big_view = archives.image_bytes(40, 30, seed=9)
    assert len(big_view) > 2048
    files = _files_with({"d/view_01.png": big_view})
    # WHEN transformed (tar.gz and zip)
    for kind in ("tar.gz", "zip"):
        result = archives.transform_files(files, kind=kind, config=config)
        # THEN only d is rejected, naming the member
        rejection = only_rejection(result)
        assert (rejection.reason, rejection.member) == (Reason.MEMBER_TOO_LARGE, "d/view_01.png")


def test_oversized_meta_json_is_rejected() -> None:
    config = TransformConfig(image_size=16, num_views=3, limits=transform.Limits(max_meta_bytes=100))
    files = _files_with({"d/meta.json": json.dumps({"family": "x", "params": {"p": "y" * 200}}).encode()})
    assert only_rejection(archives.transform_files(files, config=config)).reason == Reason.BAD_META


# ------------------------------------------------------------------------- whole-batch rejections


def batch_reason(data: bytes, name: str = "b.tar", config: TransformConfig = SMALL) -> Reason:
    result = transform.transform_archive(data, archive_name=name, config=config)
    assert result.designs == ()
    rejection = only_rejection(result)
    assert rejection.is_batch_level
    assert result.batch_rejection == rejection
    return rejection.reason


def test_empty_object() -> None:
    assert batch_reason(b"") == Reason.EMPTY_OBJECT


def test_archive_over_the_size_bound() -> None:
    config = TransformConfig(image_size=16, num_views=3, limits=transform.Limits(max_archive_bytes=1000))
    assert batch_reason(archives.tar_bytes(GOOD), config=config) == Reason.ARCHIVE_TOO_LARGE


@pytest.mark.parametrize("name", ["b.rar", "b.png", "b.gz", "renders/noext", "b.Tar", "b.tar.GZ", "b.Zip"])
def test_unsupported_archive_suffix(name: str) -> None:
    # Mixed-case suffixes too: S3 notification filters are case-sensitive, and only the all-lower and
    # all-upper spellings are notified, so only those are accepted anywhere.
    assert batch_reason(archives.tar_bytes(GOOD), name=name) == Reason.UNSUPPORTED_ARCHIVE


def test_accepted_suffixes_are_each_suffix_in_lower_and_upper_case() -> None:
    assert transform.ACCEPTED_SUFFIXES == (
        ".tar.gz",
        ".TAR.GZ",
        ".tgz",
        ".TGZ",
        ".tar",
        ".TAR",
        ".zip",
        ".ZIP",
    )
    assert [transform.archive_kind(f"renders/b{suffix}") for suffix in transform.ACCEPTED_SUFFIXES] == [
        "tar.gz",
        "tar.gz",
        "tar.gz",
        "tar.gz",
        "tar",
        "tar",
        "zip",
        "zip",
    ]
    assert transform.strip_archive_suffix("renders/B.TAR.GZ") == "renders/B"


def test_limits_are_derived_from_memory_in_proportion() -> None:
    # GIVEN Lambda's smallest, the reference and its largest memory sizes
    small, reference, large = (transform.Limits.for_memory(mb) for mb in (128, 1024, 10_240))
    # THEN 1024 MB gives the defaults, each byte bound scales with memory, pixels stop at Pillow's bound
    assert reference == transform.Limits()
    assert small.max_archive_bytes * 8 == reference.max_archive_bytes
    assert small.max_expanded_bytes * 8 == reference.max_expanded_bytes
    assert small.max_member_bytes * 8 == reference.max_member_bytes
    assert (small.max_members, large.max_members) == (1_250, 100_000)
    assert large.max_archive_bytes == 10 * reference.max_archive_bytes
    assert large.max_image_pixels == 89_478_485
    # AND what one archive may hold at its peak stays under half of the memory
    for memory_mb, limits in ((128, small), (1024, reference), (10_240, large)):
        peak = limits.max_archive_bytes + limits.max_expanded_bytes + limits.max_member_bytes
        assert peak + 4 * limits.max_image_pixels <= memory_mb * transform.MIB // 2


@pytest.mark.parametrize("memory_mb", [0, 127, 10_241, True])
def test_memory_outside_lambdas_range_is_refused(memory_mb: int) -> None:
    with pytest.raises(ValueError, match="memory_mb"):
        transform.Limits.for_memory(memory_mb)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"this is not an archive at all" * 30, "b.tar"),
        (b"this is not an archive at all", "b.zip"),
        (b"\x1f\x8b\x08\x00 truncated gzip", "b.tar.gz"),
        (archives.tar_bytes(GOOD, compressed=True)[:200], "b.tgz"),
        (archives.zip_bytes(GOOD)[:-40], "b.zip"),
        (archives.tar_bytes(GOOD), "b.zip"),  # a tar named .zip
        (archives.tar_bytes(GOOD), "b.tar.gz"),  # an uncompressed tar named .tar.gz
    ],
    ids=[
        "garbage-tar",
        "garbage-zip",
        "bad-gzip",
        "truncated-tgz",
        "truncated-zip",
        "tar-as-zip",
        "tar-as-tgz",
    ],
)
def test_corrupt_archives(data: bytes, name: str) -> None:
    assert batch_reason(data, name=name) == Reason.CORRUPT_ARCHIVE


@pytest.mark.parametrize("compressed", [False, True])
def test_a_damaged_header_in_the_middle_rejects_the_batch_instead_of_ending_it_early(
    compressed: bool,
) -> None:
    # GIVEN a tar whose second design follows a garbage 512-byte block (tarfile would just stop there)
    first = archives.tar_bytes(GOOD)
    end_of_members = first.rstrip(b"\x00")
    end_of_members += bytes(-len(end_of_members) % 512)
    second = archives.tar_bytes(archives.design_files("later", views=3, size=(8, 8)))
    damaged = end_of_members + b"\xff" * 512 + second
    data = gzip.compress(damaged, mtime=0) if compressed else damaged
    # WHEN / THEN the batch is rejected as corrupt: designs after the damage are never dropped silently
    assert batch_reason(data, name="b.tgz" if compressed else "b.tar") == Reason.CORRUPT_ARCHIVE


def test_empty_archive_has_no_designs() -> None:
    assert batch_reason(archives.tar_bytes({})) == Reason.NO_DESIGNS
    assert batch_reason(archives.zip_bytes({}), name="b.zip") == Reason.NO_DESIGNS


def test_every_design_bad_rejects_the_batch_too() -> None:
    files = {**archives.design_files("a", views=1), **archives.design_files("b", views=5)}
    result = archives.transform_files(files, config=SMALL)
    assert [(r.design_id, r.reason) for r in result.rejections] == [
        ("a", Reason.WRONG_VIEW_COUNT),
        ("b", Reason.WRONG_VIEW_COUNT),
        (None, Reason.NO_VALID_DESIGNS),
    ]


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_member_count_bound(kind: str) -> None:
    # GIVEN a bound of 4 members and a design with 3 views + meta.json + one more design's file
    config = TransformConfig(image_size=16, num_views=3, limits=transform.Limits(max_members=4))
    files = {**archives.design_files("d", views=3), "e/view_00.png": b"x"}
    assert batch_reason(archives.archive_bytes(files, kind), name=f"b.{kind}", config=config) == (
        Reason.TOO_MANY_MEMBERS
    )
    # AND exactly at the bound it passes the count check
    at_bound = archives.transform_files(archives.design_files("d", views=3), kind=kind, config=config)
    assert only_design(at_bound).design_id == "d"


# ------------------------------------------------------------------------------------------ bombs


def test_png_header_claiming_large_dimensions_is_rejected_by_our_bound_before_decoding() -> None:
    # GIVEN a ~60-byte PNG that claims 5000 x 5000 pixels (75 MB decoded) with a truncated pixel stream:
    # were it decoded first, the failure would be "undecodable" (truncated), not "too large". 25 Mpixels is
    # under Pillow's own 89 Mpixel threshold, so only our bound (16.7 Mpixels by default) can stop it.
    bomb = archives.png_header_only(5000, 5000)
    # WHEN rendered
    with pytest.raises(transform.DesignRejected) as raised:
        uniform_view(bomb)
    # THEN the declared size alone rejects it, and the message says what was declared
    assert raised.value.reason == Reason.IMAGE_TOO_LARGE
    assert "5000x5000" in str(raised.value)


def test_png_header_claiming_gigapixels_is_rejected_too() -> None:
    # GIVEN a PNG claiming 100000 x 100000 pixels (30 GB decoded): Pillow refuses it while opening,
    # before our check runs; it must still come out as "too large", not as an undecodable image
    bomb = archives.png_header_only(100_000, 100_000)
    with pytest.raises(transform.DesignRejected) as raised:
        uniform_view(bomb)
    assert raised.value.reason == Reason.IMAGE_TOO_LARGE


def test_a_real_compressed_bomb_is_stopped_by_our_own_pixel_bound() -> None:
    # GIVEN a valid 3000x3000 PNG of zeros (27 MB of pixels, a few KB compressed) and a 1 Mpixel bound
    buffer = io.BytesIO()
    Image.new("RGB", (3000, 3000)).save(buffer, "PNG")
    assert len(buffer.getvalue()) < 100_000
    config = TransformConfig(image_size=16, num_views=3, limits=transform.Limits(max_image_pixels=1_000_000))
    # WHEN / THEN it is rejected as too large, even though Pillow's own (89 Mpixel) limit would allow it
    with pytest.raises(transform.DesignRejected) as raised:
        uniform_view(buffer.getvalue(), config)
    assert raised.value.reason == Reason.IMAGE_TOO_LARGE


def test_jpeg_header_claiming_huge_dimensions_is_rejected() -> None:
    # GIVEN a real JPEG whose SOF0 frame header is patched to claim 60000 x 60000
    data = bytearray(archives.image_bytes(8, 8, image_format="JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2
    with pytest.raises(transform.DesignRejected) as raised:
        uniform_view(bytes(data))
    assert raised.value.reason == Reason.IMAGE_TOO_LARGE


def test_gzip_bomb_is_stopped_at_the_expanded_bound() -> None:
    # GIVEN a tar.gz whose single 64 MB member of zeros compresses to ~64 KB, and a 4 MB expansion bound
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("d/view_00.png")
        info.size = 64 * 1024 * 1024
        archive.addfile(info, io.BytesIO(bytes(info.size)))
    assert len(buffer.getvalue()) < 200_000
    config = TransformConfig(
        image_size=16, num_views=3, limits=transform.Limits(max_expanded_bytes=4 * 1024 * 1024)
    )
    # WHEN / THEN the batch is rejected as expanding too much
    assert batch_reason(buffer.getvalue(), name="b.tgz", config=config) == Reason.EXPANDED_TOO_LARGE


def test_a_lying_tar_header_cannot_make_the_reader_inflate_past_the_bound() -> None:
    # GIVEN a tar.gz made of a pax extended header claiming 10 GB of header data, then 8 MB of zeros
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = 10 * 1024**3
    raw = header.tobuf(format=tarfile.GNU_FORMAT) + bytes(8 * 1024 * 1024)
    data = gzip.compress(raw, mtime=0)
    config = TransformConfig(
        image_size=16, num_views=3, limits=transform.Limits(max_expanded_bytes=1024 * 1024)
    )
    # WHEN / THEN decompression stops at the 1 MB budget, long before any 10 GB allocation
    assert batch_reason(data, name="b.tar.gz", config=config) == Reason.EXPANDED_TOO_LARGE


def test_zip_members_declaring_too_much_are_stopped_at_the_expanded_bound() -> None:
    config = TransformConfig(image_size=16, num_views=3, limits=transform.Limits(max_expanded_bytes=10_000))
    files = {**archives.design_files("d", views=3, size=(40, 40)), "d/meta.json": bytes(20_000)}
    assert batch_reason(archives.zip_bytes(files), name="b.zip", config=config) == Reason.EXPANDED_TOO_LARGE


# --------------------------------------------------------------------------- escaping and links

ESCAPING_NAMES = [
    "../evil/view_00.png",
    "d/../../evil.png",
    "/etc/d/view_00.png",
    "C:/d/view_00.png",
    "d\\..\\x.png",
]


@pytest.mark.parametrize("name", ESCAPING_NAMES)
@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_member_names_that_could_escape_reject_the_batch(kind: str, name: str) -> None:
    # GIVEN an otherwise good archive with one member whose name climbs out or is absolute
    files = {**GOOD, name: archives.image_bytes(8, 8)}
    # WHEN / THEN the whole batch is rejected as unsafe (nothing in it is trusted)
    assert batch_reason(archives.archive_bytes(files, kind), name=f"b.{kind}") == Reason.UNSAFE_MEMBER


def _tar_with_special(info: tarfile.TarInfo) -> bytes:
    buffer = io.BytesIO(archives.tar_bytes(GOOD))
    with tarfile.open(fileobj=buffer, mode="a") as archive:
        archive.addfile(info)
    return buffer.getvalue()


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    "info",
    [
        _special("ok/view_09.png", tarfile.SYMTYPE, "/etc/passwd"),
        _special("ok/view_09.png", tarfile.LNKTYPE, "ok/view_00.png"),
        _special("ok/dev", tarfile.CHRTYPE),
        _special("ok/blk", tarfile.BLKTYPE),
        _special("ok/fifo", tarfile.FIFOTYPE),
    ],
    ids=["symlink", "hardlink", "char-device", "block-device", "fifo"],
)
def test_tar_links_and_devices_reject_the_batch(info: tarfile.TarInfo) -> None:
    assert batch_reason(_tar_with_special(info)) == Reason.UNSAFE_MEMBER


def test_zip_symlink_rejects_the_batch() -> None:
    # GIVEN a zip entry whose Unix mode (external attributes) says symbolic link
    buffer = io.BytesIO(archives.zip_bytes(GOOD))
    with zipfile.ZipFile(buffer, "a") as archive:
        info = zipfile.ZipInfo("ok/view_09.png")
        info.create_system = 3  # Unix
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    assert batch_reason(buffer.getvalue(), name="b.zip") == Reason.UNSAFE_MEMBER


def test_encrypted_zip_member_is_unsupported() -> None:
    data = bytearray(archives.zip_bytes(GOOD))
    # Set the "encrypted" general-purpose flag bit in every central directory entry.
    offset = data.find(b"PK\x01\x02")
    while offset != -1:
        data[offset + 8] |= 0x01
        offset = data.find(b"PK\x01\x02", offset + 4)
    assert batch_reason(bytes(data), name="b.zip") == Reason.UNSUPPORTED_ARCHIVE


# ------------------------------------------------------------------------------------ determinism


def test_output_is_deterministic_across_runs_and_archive_kinds() -> None:
    # GIVEN the same three designs packed in a tar and in a zip, members in different orders
    files = {**archives.design_files("b", seed=2), **archives.design_files("a", seed=1)}
    reordered = dict(reversed(list(files.items())))
    # WHEN both are transformed and encoded as shards, twice
    shards = [
        layout.encode_shard(archives.transform_files(candidate, kind=kind).designs)
        for candidate, kind in [(files, "tar"), (reordered, "zip"), (files, "tar")]
    ]
    # THEN the shard bytes are identical
    assert shards[0] == shards[1] == shards[2]


@pytest.mark.parametrize(
    "bad_config",
    [
        {"image_size": 0},
        {"image_size": 5000},
        {"num_views": 0},
        {"num_views": 101},
        {"pad_value": 256},
        {"limits": "not limits"},
    ],
)
def test_invalid_config_is_refused(bad_config: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        TransformConfig(**bad_config)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad_limits", [{"max_members": 0}, {"max_image_pixels": 100_000_000}, {"max_archive_bytes": -1}]
)
def test_invalid_limits_are_refused(bad_limits: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad_limits))):
        transform.Limits(**bad_limits)
