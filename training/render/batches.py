"""Designs -> rendered views -> render batch archives (the format in docs/data-format.md).

A dataset of N designs is planned up front: design ``i`` belongs to family ``families[i % F]`` (classes stay
balanced) and is built from its own seed, derived from the dataset seed and ``i`` with numpy's
``SeedSequence``. Each design is therefore independent of every other, of the batch size and of the number
of worker processes, which is what makes the output byte-identical for a given seed.

Archive layout (one archive per batch of K consecutive designs, members in this order)::

    <design_id>/meta.json       {"family": ..., "params": {...}, "seed": ...}
    <design_id>/view_00.png     8-bit grayscale, size x size
    ...
    <design_id>/view_<V-1>.png

A hard dataset (``difficulty="hard"``) also gets ``families.json`` in the output folder: each rendered
family's side of the family split (``{"difficulty": "hard", "families": {"gear": "held_out", ...}}``),
which ``autostop evaluate --groups`` reads, since shards keep a design's family but not its split.

Byte-for-byte determinism: PNGs carry no metadata or timestamps and use a fixed zlib level; tar members
have mtime 0, uid/gid 0, empty owner names and mode 0644; the gzip header has mtime 0 and no file name;
zip entries carry 1980-01-01 00:00:00 and fixed attributes.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import multiprocessing
import os
import pathlib
import re
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from training.render import camera, shapes, variation

ARCHIVE_FORMATS = ("tar.gz", "tar", "zip")
DESIGN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
PNG_COMPRESS_LEVEL = 6
GZIP_COMPRESS_LEVEL = 6
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# The hard dataset's family split, written next to its batches (read by training.analysis.groups).
FAMILIES_FILE = "families.json"


@dataclasses.dataclass(frozen=True)
class DesignSpec:
    """Which design to make: its position in the dataset, id, family and seed."""

    index: int
    design_id: str
    family: str
    seed: int
    difficulty: str = variation.STANDARD


@dataclasses.dataclass(frozen=True)
class RenderedDesign:
    """A design's views as pixels and as PNG files, with what meta.json says about it."""

    spec: DesignSpec
    params: dict[str, Any]
    views: camera.ImageArray  # (V, size, size)
    pngs: tuple[bytes, ...]
    appearance: variation.Appearance | None = None

    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"family": self.spec.family, "params": self.params, "seed": self.spec.seed}
        if self.spec.difficulty != variation.STANDARD:
            meta["difficulty"] = self.spec.difficulty
            meta["split"] = variation.family_split(self.spec.family)
            if self.appearance is not None:
                meta["appearance"] = self.appearance.to_json_dict()
        return meta


@dataclasses.dataclass(frozen=True)
class BatchRecord:
    """One archive written by `generate_dataset`."""

    path: str
    design_ids: tuple[str, ...]
    size_bytes: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class RenderManifest:
    """What `generate_dataset` wrote, and how long it took."""

    out_dir: str
    archive_format: str
    seed: int
    views: int
    size: int
    batches: tuple[BatchRecord, ...]
    family_counts: dict[str, int]
    seconds: float
    difficulty: str = variation.STANDARD

    @property
    def designs(self) -> int:
        return sum(len(batch.design_ids) for batch in self.batches)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def design_seed(dataset_seed: int, index: int) -> int:
    """The seed of design `index` in the dataset with `dataset_seed` (independent streams per design)."""
    return int(np.random.SeedSequence([dataset_seed, index]).generate_state(1, dtype=np.uint32)[0])


def design_id(dataset_seed: int, index: int, family: str) -> str:
    """Ids carry the dataset seed, so datasets made with different seeds can share a bucket."""
    identifier = f"s{dataset_seed}-d{index:06d}-{family}"
    if not DESIGN_ID_PATTERN.fullmatch(identifier):
        raise ValueError(f"design id {identifier!r} does not match {DESIGN_ID_PATTERN.pattern}")
    return identifier


def plan_designs(
    designs: int, families: Sequence[str], seed: int, difficulty: str = variation.STANDARD
) -> list[DesignSpec]:
    """The designs of a dataset: families in turn, one seed per design."""
    if designs < 1:
        raise ValueError(f"the number of designs must be positive, got {designs}")
    if seed < 0:
        raise ValueError(f"the seed must be non-negative, got {seed}")
    family_list = validate_families(families)
    variation.validate_difficulty(difficulty)
    return [
        DesignSpec(
            index=index,
            design_id=design_id(seed, index, family_list[index % len(family_list)]),
            family=family_list[index % len(family_list)],
            seed=design_seed(seed, index),
            difficulty=difficulty,
        )
        for index in range(designs)
    ]


def validate_families(families: Sequence[str]) -> list[str]:
    family_list = list(families)
    if not family_list:
        raise ValueError("at least one design family is needed")
    duplicates = sorted({name for name in family_list if family_list.count(name) > 1})
    if duplicates:
        raise ValueError(f"design families listed more than once: {', '.join(duplicates)}")
    for name in family_list:
        shapes.get_family(name)
    return family_list


def encode_png(image: camera.ImageArray) -> bytes:
    """An 8-bit grayscale PNG with no metadata: the same pixels always give the same bytes."""
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"expected a 2-D uint8 image, got {image.dtype} with shape {image.shape}")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def render_design(spec: DesignSpec, views: int, size: int, supersample: int) -> RenderedDesign:
    """Build, validate, normalise and render one design (posed and lit per its difficulty)."""
    design = shapes.build_design(spec.family, spec.seed)
    viewpoints = camera.default_viewpoints(views)
    appearance = None
    if spec.difficulty == variation.STANDARD:
        images = camera.render_views(design.mesh, viewpoints, size, supersample=supersample, engine="embree")
    else:
        appearance = variation.draw_appearance(spec.seed)
        images = camera.render_views(
            variation.posed_mesh(design, appearance),
            viewpoints,
            size,
            supersample=supersample,
            engine="embree",
            lighting=appearance.lighting,
        )
    return RenderedDesign(
        spec=spec,
        params=design.params,
        views=images,
        pngs=tuple(encode_png(image) for image in images),
        appearance=appearance,
    )


def design_members(rendered: RenderedDesign) -> list[tuple[str, bytes]]:
    """The archive members of one design, in archive order: meta.json, then the views."""
    meta = json.dumps(rendered.meta(), sort_keys=True, indent=2).encode() + b"\n"
    members = [(f"{rendered.spec.design_id}/meta.json", meta)]
    members.extend(
        (f"{rendered.spec.design_id}/view_{number:02d}.png", png) for number, png in enumerate(rendered.pngs)
    )
    return members


def archive_bytes(members: Sequence[tuple[str, bytes]], archive_format: str) -> bytes:
    """Pack `members` (name, content) in the given order into a reproducible archive."""
    if archive_format not in ARCHIVE_FORMATS:
        raise ValueError(
            f"archive format must be one of {', '.join(ARCHIVE_FORMATS)}, not {archive_format!r}"
        )
    buffer = io.BytesIO()
    if archive_format == "zip":
        with zipfile.ZipFile(buffer, mode="w") as archive:
            for name, content in members:
                info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
                info.create_system = 3  # unix, whatever the host, so external_attr means the same everywhere
                info.external_attr = 0o100644 << 16
                # PNGs are already deflated: store them; deflate the small JSON.
                info.compress_type = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
                archive.writestr(info, content)
        return buffer.getvalue()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in members:
            member = tarfile.TarInfo(name)
            member.size = len(content)
            member.mtime = 0
            member.mode = 0o644
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            archive.addfile(member, io.BytesIO(content))
    tar = buffer.getvalue()
    if archive_format == "tar":
        return tar
    compressed = io.BytesIO()
    with gzip.GzipFile(
        filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=GZIP_COMPRESS_LEVEL
    ) as gz:
        gz.write(tar)
    return compressed.getvalue()


def batch_file_name(seed: int, batch: int, archive_format: str) -> str:
    return f"renders-s{seed}-b{batch:05d}.{archive_format}"


def _render_task(task: tuple[DesignSpec, int, int, int]) -> RenderedDesign:
    spec, views, size, supersample = task
    return render_design(spec, views, size, supersample)


def render_designs(
    specs: Sequence[DesignSpec], *, views: int, size: int, supersample: int, workers: int
) -> Iterator[RenderedDesign]:
    """Render designs in plan order, in this process or in `workers` processes (same results either way)."""
    tasks = [(spec, views, size, supersample) for spec in specs]
    if workers == 1 or len(tasks) <= 1:
        yield from map(_render_task, tasks)
        return
    # spawn, not fork: embree and manifold3d keep thread pools that a forked child must not inherit.
    with multiprocessing.get_context("spawn").Pool(processes=min(workers, len(tasks))) as pool:
        yield from pool.imap(_render_task, tasks, chunksize=2)


def _write_atomically(path: pathlib.Path, content: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content)
    os.replace(partial, path)


def family_groups_document(family_counts: dict[str, int], difficulty: str) -> bytes:
    """``families.json``: each rendered family's side of the hard dataset's family split.

    Shards keep a design's family but not its split (docs/data-format.md), so this file, next to the
    batches, is what ``autostop evaluate --groups <render folder>`` reads to report trained and held-out
    families apart. Sorted keys, no timings: the same arguments write the same bytes.
    """
    document = {
        "difficulty": difficulty,
        "families": {family: variation.family_split(family) for family in family_counts},
    }
    return json.dumps(document, sort_keys=True, indent=2).encode() + b"\n"


def generate_dataset(
    out_dir: str | os.PathLike[str],
    *,
    designs: int,
    designs_per_batch: int,
    families: Sequence[str] | None = None,
    views: int = camera.DEFAULT_VIEWS,
    size: int = camera.DEFAULT_SIZE,
    seed: int = 0,
    workers: int = 1,
    archive_format: str = "tar.gz",
    supersample: int = camera.DEFAULT_SUPERSAMPLE,
    on_design: Callable[[RenderedDesign], None] | None = None,
    difficulty: str = variation.STANDARD,
    split: str = "all",
) -> RenderManifest:
    """Render `designs` designs into archives of `designs_per_batch` under `out_dir`; return what was written.

    `on_design` sees every rendered design in plan order (the CLI keeps a few for its contact sheet).
    `difficulty` is ``standard`` or ``hard`` (training.render.variation); without `families`, `split`
    picks the hard dataset's trained or held-out families.
    """
    started = time.perf_counter()
    if designs_per_batch < 1:
        raise ValueError(f"designs per batch must be positive, got {designs_per_batch}")
    if workers < 1:
        raise ValueError(f"workers must be positive, got {workers}")
    if not 8 <= size <= 1024:
        raise ValueError(f"image size must be within [8, 1024] pixels, got {size}")
    if not 1 <= supersample <= 8:
        raise ValueError(f"supersample must be within [1, 8], got {supersample}")
    if archive_format not in ARCHIVE_FORMATS:
        raise ValueError(
            f"archive format must be one of {', '.join(ARCHIVE_FORMATS)}, not {archive_format!r}"
        )
    camera.default_viewpoints(views)  # validates the number of views before any work
    if families is not None and split != "all":
        raise ValueError("name families or a split, not both")
    chosen = variation.default_families(difficulty, split) if families is None else families
    specs = plan_designs(designs, chosen, seed, difficulty)
    directory = pathlib.Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)

    batches: list[BatchRecord] = []
    family_counts: dict[str, int] = {}
    members: list[tuple[str, bytes]] = []
    batch_ids: list[str] = []

    def flush() -> None:
        content = archive_bytes(members, archive_format)
        path = directory / batch_file_name(seed, len(batches), archive_format)
        _write_atomically(path, content)
        batches.append(
            BatchRecord(
                path=str(path),
                design_ids=tuple(batch_ids),
                size_bytes=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
            )
        )
        members.clear()
        batch_ids.clear()

    for rendered in render_designs(specs, views=views, size=size, supersample=supersample, workers=workers):
        if on_design is not None:
            on_design(rendered)
        members.extend(design_members(rendered))
        batch_ids.append(rendered.spec.design_id)
        family_counts[rendered.spec.family] = family_counts.get(rendered.spec.family, 0) + 1
        if len(batch_ids) == designs_per_batch:
            flush()
    if batch_ids:
        flush()
    if difficulty != variation.STANDARD:
        _write_atomically(directory / FAMILIES_FILE, family_groups_document(family_counts, difficulty))
    return RenderManifest(
        out_dir=str(directory),
        archive_format=archive_format,
        seed=seed,
        views=views,
        size=size,
        batches=tuple(batches),
        family_counts=family_counts,
        seconds=time.perf_counter() - started,
        difficulty=difficulty,
    )


def contact_sheet(designs: Sequence[RenderedDesign], *, label_width: int = 150, gap: int = 2) -> Image.Image:
    """A grid a person can look at: one row per design (its views left to right), labelled with its id."""
    if not designs:
        raise ValueError("a contact sheet needs at least one design")
    view_count, height, width = designs[0].views.shape
    sheet_width = label_width + view_count * (width + gap) + gap
    sheet_height = len(designs) * (height + gap) + gap
    # Mid-gray gaps separate the tiles, whose background is black.
    sheet = Image.new("L", (sheet_width, sheet_height), color=96)
    draw = ImageDraw.Draw(sheet)
    for row, rendered in enumerate(designs):
        if rendered.views.shape != (view_count, height, width):
            raise ValueError("all designs on a contact sheet must have the same number and size of views")
        top = gap + row * (height + gap)
        draw.rectangle((0, top, label_width - 1, top + height - 1), fill=0)
        draw.text((4, top + 4), rendered.spec.family, fill=255)
        draw.text((4, top + 18), rendered.spec.design_id, fill=160)
        for column, image in enumerate(rendered.views):
            sheet.paste(Image.fromarray(image), (label_width + gap + column * (width + gap), top))
    return sheet
