"""Build render batch archives in memory for tests: real PNG/JPEG bytes, real tar/tar.gz/zip containers.

Deterministic (seeded pixels, fixed mtimes) so the same call always yields the same bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Mapping

import numpy
from PIL import Image

from lambdas.transform_renders import transform

KINDS = ("tar", "tar.gz", "tgz", "zip")


def image_bytes(
    width: int,
    height: int,
    *,
    mode: str = "RGB",
    image_format: str = "PNG",
    seed: int = 0,
    color: object | None = None,
) -> bytes:
    """A PNG or JPEG of random (seeded) pixels, or of one ``color`` when given."""
    if color is not None:
        image = Image.new(mode, (width, height), color)  # type: ignore[arg-type]
    else:
        rng = numpy.random.default_rng(seed)
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=numpy.uint8)
        image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming ``width`` x ``height`` (8-bit RGB) whose pixel stream is a few bytes, then ends.

    A decoder that trusted the header would allocate width*height*3 bytes before noticing the truncation;
    a safe reader rejects it from the header alone.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(64))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)


def design_files(
    design_id: str,
    *,
    views: int = 12,
    size: tuple[int, int] = (16, 12),
    family: str | None = "bracket",
    mode: str = "RGB",
    seed: int = 0,
    image_format: str = "PNG",
) -> dict[str, bytes]:
    """``<design_id>/view_NN.png`` x ``views`` (+ meta.json when ``family`` is not None)."""
    extension = "png" if image_format == "PNG" else "jpg"
    files = {
        f"{design_id}/view_{number:02d}.{extension}": image_bytes(
            *size, mode=mode, image_format=image_format, seed=seed * 1000 + number
        )
        for number in range(views)
    }
    if family is not None:
        files[f"{design_id}/meta.json"] = json.dumps({"family": family, "params": {"seed": seed}}).encode()
    return files


def tar_bytes(files: Mapping[str, bytes], *, compressed: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    # Level 1: PNG members are already compressed, and the load test builds thousands of archives.
    return gzip.compress(raw, compresslevel=1, mtime=0) if compressed else raw


def zip_bytes(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def archive_bytes(files: Mapping[str, bytes], kind: str) -> bytes:
    if kind == "zip":
        return zip_bytes(files)
    return tar_bytes(files, compressed=kind in ("tar.gz", "tgz"))


def transform_files(
    files: Mapping[str, bytes], *, kind: str = "tar", config: transform.TransformConfig | None = None
) -> transform.BatchResult:
    return transform.transform_archive(
        archive_bytes(files, kind), archive_name=f"batch.{kind}", config=config or transform.TransformConfig()
    )
