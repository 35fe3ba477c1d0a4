"""Render batch archive -> stacked grayscale views per design: the pure transform core.

Plain bytes in, plain data out: no AWS, no environment, no files. The Lambda adapter and the local CLI
both call :func:`transform_archive`, so what is tested here is exactly what runs in both places.

Why each rule exists:

* One bad design is rejected alone, with a reason; the rest of its batch goes on. A batch-level problem
  (not an archive, corrupt, too big, unsafe) rejects the whole batch, because nothing in it can be trusted.
* Safe by construction against hostile archives: the compressed size, the decompressed size, the member
  count and each member's size are bounded while reading (gzip is inflated in chunks against a budget, so
  a bomb costs at most the bound before it is rejected); member names that could escape a
  folder (``..``, absolute, drive letters, backslashes) and anything that is not a regular file or a folder
  (symlinks, hard links, devices, FIFOs, sparse files) reject the batch. Nothing is ever extracted to disk.
* Decompression bombs: each image's header is read first and its declared pixel count is checked against
  our own bound *before* any pixel is decoded. Only the PNG and JPEG decoders are ever tried.
"""

from __future__ import annotations

import dataclasses
import enum
import gzip
import io
import json
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from typing import Literal

import numpy
import numpy.typing
from PIL import Image, UnidentifiedImageError

KIB = 1024
MIB = 1024 * KIB

DESIGN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
VIEW_NAME_PATTERN = re.compile(r"view_(\d{2})\.(?:png|jpg|jpeg)", re.IGNORECASE)
META_NAME = "meta.json"
MAX_FAMILY_LENGTH = 256
ArchiveKind = Literal["tar", "tar.gz", "zip"]
# Suffix -> archive kind; ".tar.gz" is tried before ".tar". Each suffix is accepted in exactly two
# spellings, all lower case and all upper case, because S3 event notification filters match suffixes
# case-sensitively: the deployed bucket notifies one filter per accepted spelling, so every key this code
# accepts is also a key S3 delivers (``Batch.Tar.Gz`` would never be notified, so it is refused everywhere).
ARCHIVE_SUFFIXES: tuple[tuple[str, ArchiveKind], ...] = (
    (".tar.gz", "tar.gz"),
    (".tgz", "tar.gz"),
    (".tar", "tar"),
    (".zip", "zip"),
)
ACCEPTED_SUFFIXES: tuple[str, ...] = tuple(
    spelling for suffix, _ in ARCHIVE_SUFFIXES for spelling in (suffix, suffix.upper())
)

ViewArray = numpy.typing.NDArray[numpy.uint8]

# Pillow warns (and at 2x raises) above this; our own bound must stay below so Pillow never has to step in.
_PILLOW_PIXEL_LIMIT = 89_478_485
_DECODERS = ("PNG", "JPEG")
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "RGBa", "La"})
_DIRECT_TO_GRAY_MODES = frozenset({"1", "L", "RGB", "RGBX", "CMYK", "YCbCr"})
_RESAMPLING = Image.Resampling.BILINEAR
# Pillow first shrinks by an integer factor with a box filter when the image is at least this many times
# bigger than the target, then resamples: much faster on large renders, visually indistinguishable.
_REDUCING_GAP = 3.0


class Reason(enum.StrEnum):
    """Reason codes of rejection records (docs/data-format.md lists what each means)."""

    # The whole batch.
    EMPTY_OBJECT = "empty_object"
    ARCHIVE_TOO_LARGE = "archive_too_large"
    UNSUPPORTED_ARCHIVE = "unsupported_archive"
    CORRUPT_ARCHIVE = "corrupt_archive"
    TOO_MANY_MEMBERS = "too_many_members"
    EXPANDED_TOO_LARGE = "expanded_too_large"
    UNSAFE_MEMBER = "unsafe_member"
    NO_DESIGNS = "no_designs"
    NO_VALID_DESIGNS = "no_valid_designs"
    # Decided by the adapter (no bytes to transform), same vocabulary.
    MALFORMED_MESSAGE = "malformed_message"
    # One member outside any design folder.
    STRAY_MEMBER = "stray_member"
    # One design.
    INVALID_DESIGN_ID = "invalid_design_id"
    UNEXPECTED_MEMBER = "unexpected_member"
    DUPLICATE_MEMBER = "duplicate_member"
    MEMBER_TOO_LARGE = "member_too_large"
    BAD_META = "bad_meta"
    WRONG_VIEW_COUNT = "wrong_view_count"
    BAD_VIEW_NUMBERING = "bad_view_numbering"
    UNDECODABLE_IMAGE = "undecodable_image"
    IMAGE_TOO_LARGE = "image_too_large"
    UNSUPPORTED_IMAGE_MODE = "unsupported_image_mode"


def _require_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


# The memory the default limits are sized for, and how each limit scales with memory (see Limits.for_memory).
REFERENCE_MEMORY_MB = 1024
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240


@dataclasses.dataclass(frozen=True)
class Limits:
    """Bounds that keep one archive from exhausting the function (defaults: ``for_memory(1024)``)."""

    max_archive_bytes: int = 128 * MIB
    max_expanded_bytes: int = 256 * MIB
    max_members: int = 10_000
    max_member_bytes: int = 16 * MIB
    max_image_pixels: int = 4096 * 4096
    max_meta_bytes: int = 64 * KIB

    @classmethod
    def for_memory(cls, memory_mb: int) -> Limits:
        """The bounds for a function with ``memory_mb`` MB of memory, every one in proportion to it.

        What one archive holds in memory at its peak: the archive's bytes (1/8 of memory), the inflated
        tar of a .tar.gz (1/4), and while a design is transformed its members and one decoded view of at
        most 4 bytes per pixel (1/64 of memory per member, 1/16 for the decoded view). Together under half
        of the memory, which leaves the rest to the runtime, the shard being built and the S3 client. At
        1024 MB these are exactly the defaults; the pixel bound never exceeds Pillow's own bomb threshold.
        """
        if isinstance(memory_mb, bool) or not isinstance(memory_mb, int):
            raise ValueError(f"memory_mb must be an integer, got {memory_mb!r}")
        if not MIN_MEMORY_MB <= memory_mb <= MAX_MEMORY_MB:
            raise ValueError(
                f"memory_mb must be {MIN_MEMORY_MB}..{MAX_MEMORY_MB} (Lambda's range), got {memory_mb}"
            )
        memory_bytes = memory_mb * MIB
        return cls(
            max_archive_bytes=memory_bytes // 8,
            max_expanded_bytes=memory_bytes // 4,
            max_members=10_000 * memory_mb // REFERENCE_MEMORY_MB,
            max_member_bytes=memory_bytes // 64,
            max_image_pixels=min(_PILLOW_PIXEL_LIMIT, memory_bytes // 16 // 4),
        )

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _require_positive(field.name, getattr(self, field.name))
        if self.max_image_pixels > _PILLOW_PIXEL_LIMIT:
            raise ValueError(
                f"max_image_pixels must be at most {_PILLOW_PIXEL_LIMIT} (Pillow's own bomb threshold), "
                f"got {self.max_image_pixels}"
            )


@dataclasses.dataclass(frozen=True)
class TransformConfig:
    """What a design becomes: ``num_views`` views of ``image_size`` x ``image_size`` uint8 pixels."""

    image_size: int = 64
    num_views: int = 12
    pad_value: int = 0
    limits: Limits = dataclasses.field(default_factory=Limits)

    def __post_init__(self) -> None:
        _require_positive("image_size", self.image_size)
        _require_positive("num_views", self.num_views)
        if self.image_size > 4096:
            raise ValueError(f"image_size must be at most 4096, got {self.image_size}")
        if self.num_views > 100:
            raise ValueError(
                f"num_views must be at most 100 (views are numbered 00..99), got {self.num_views}"
            )
        if isinstance(self.pad_value, bool) or not 0 <= self.pad_value <= 255:
            raise ValueError(f"pad_value must be in 0..255, got {self.pad_value!r}")
        if not isinstance(self.limits, Limits):
            raise TypeError(f"limits must be a Limits, got {type(self.limits).__name__}")


@dataclasses.dataclass(frozen=True)
class Rejection:
    """Why something was not turned into training data.

    ``design_id`` and ``member`` are both None for a whole-batch rejection; ``member`` alone names a stray
    file outside any design folder.
    """

    reason: Reason
    message: str
    design_id: str | None = None
    member: str | None = None

    @property
    def is_batch_level(self) -> bool:
        return self.design_id is None and self.member is None


@dataclasses.dataclass(frozen=True, eq=False)
class Design:
    """One design outcome ready for a shard: ``views`` has shape (num_views, image_size, image_size)."""

    design_id: str
    family: str
    views: ViewArray


@dataclasses.dataclass(frozen=True)
class BatchResult:
    designs: tuple[Design, ...]
    rejections: tuple[Rejection, ...]

    @property
    def batch_rejection(self) -> Rejection | None:
        return next((rejection for rejection in self.rejections if rejection.is_batch_level), None)


class _BatchRejected(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.rejection = Rejection(reason=reason, message=message)


class DesignRejected(Exception):
    """One design (or one view of it) cannot be used; ``reason`` says why."""

    def __init__(self, reason: Reason, message: str, member: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.member = member


@dataclasses.dataclass(frozen=True)
class _Member:
    path: str
    size: int
    data: bytes | None  # None when the member is over the per-member bound (never read)


def archive_kind(name: str) -> ArchiveKind | None:
    """The archive kind a key or file name announces by its suffix (all lower or all upper case), or None."""
    for suffix, kind in ARCHIVE_SUFFIXES:
        if name.endswith((suffix, suffix.upper())):
            return kind
    return None


def strip_archive_suffix(name: str) -> str:
    for suffix, _ in ARCHIVE_SUFFIXES:
        if name.endswith((suffix, suffix.upper())):
            return name[: -len(suffix)]
    return name


def safe_member_path(name: str) -> str:
    """Normalize an archive member name, refusing any name that could point outside the archive root.

    ``./a//b`` becomes ``a/b``; ``..`` components, absolute paths, drive letters, backslashes and NUL bytes
    are refused (a backslash is a separator on Windows, so ``..\\x`` would escape there).
    """
    if "\x00" in name or "\\" in name:
        raise _BatchRejected(Reason.UNSAFE_MEMBER, f"member name {name!r} contains a NUL byte or a backslash")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise _BatchRejected(Reason.UNSAFE_MEMBER, f"member name {name!r} is an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _BatchRejected(Reason.UNSAFE_MEMBER, f"member name {name!r} climbs out with '..'")
    return "/".join(parts)


_GUNZIP_CHUNK = 1 << 20


def _gunzip(data: bytes, limit: int) -> bytearray:
    """Decompress a gzip stream, refusing to produce more than ``limit`` bytes.

    Each read asks the decompressor for at most what is left of the budget (+1 to detect overflow), so a
    bomb costs at most ``limit`` bytes of memory before it is rejected.
    """
    output = bytearray()
    with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as stream:
        while chunk := stream.read(min(_GUNZIP_CHUNK, limit + 1 - len(output))):
            output += chunk
            if len(output) > limit:
                raise _BatchRejected(
                    Reason.EXPANDED_TOO_LARGE, f"archive expands beyond {limit} bytes when decompressed"
                )
    return output


class _MemberBudget:
    """Counts members and declared bytes as they are read, rejecting the batch past the bounds."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self.members = 0
        self.expanded_bytes = 0

    def add_member(self) -> None:
        self.members += 1
        if self.members > self._limits.max_members:
            raise _BatchRejected(
                Reason.TOO_MANY_MEMBERS, f"archive has more than {self._limits.max_members} members"
            )

    def add_bytes(self, size: int) -> None:
        self.expanded_bytes += size
        if self.expanded_bytes > self._limits.max_expanded_bytes:
            raise _BatchRejected(
                Reason.EXPANDED_TOO_LARGE,
                f"archive members add up to more than {self._limits.max_expanded_bytes} bytes",
            )


def _read_tar(data: bytes | bytearray, *, limits: Limits) -> tuple[list[_Member], list[str]]:
    """Members of an uncompressed tar held in memory: headers parsed in place, data sliced out of ``data``."""
    budget = _MemberBudget(limits)
    members: list[_Member] = []
    folders: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for info in archive:
            budget.add_member()
            path = safe_member_path(info.name)
            if info.isdir():
                folders.append(path)
                continue
            if not info.isreg() or info.issparse():
                kind = _tar_type_name(info)
                raise _BatchRejected(Reason.UNSAFE_MEMBER, f"member {info.name!r} is a {kind}, not a file")
            if not path:
                raise _BatchRejected(Reason.UNSAFE_MEMBER, f"member {info.name!r} is a file without a name")
            budget.add_bytes(info.size)
            if info.size > limits.max_member_bytes:
                members.append(_Member(path=path, size=info.size, data=None))
                continue
            content = bytes(data[info.offset_data : info.offset_data + info.size])
            if len(content) != info.size:
                raise _BatchRejected(Reason.CORRUPT_ARCHIVE, f"member {info.name!r} is truncated")
            members.append(_Member(path=path, size=info.size, data=content))
        # tarfile ends quietly at the first header it cannot parse; only zero blocks may follow the last
        # member, or members after a damaged header would be dropped without a word.
        if data[archive.offset :].strip(b"\x00"):
            raise _BatchRejected(
                Reason.CORRUPT_ARCHIVE, f"unreadable tar header or trailing data at offset {archive.offset}"
            )
    return members, folders


def _tar_type_name(info: tarfile.TarInfo) -> str:
    if info.issym():
        return "symbolic link"
    if info.islnk():
        return "hard link"
    if info.ischr() or info.isblk():
        return "device"
    if info.isfifo():
        return "FIFO"
    if info.issparse():
        return "sparse file"
    return f"tar entry of type {info.type!r}"


def _read_zip(data: bytes, *, limits: Limits) -> tuple[list[_Member], list[str]]:
    budget = _MemberBudget(limits)
    members: list[_Member] = []
    folders: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        for info in infos:
            budget.add_member()
            path = safe_member_path(info.filename)
            # Unix creators keep st_mode in the high 16 bits; many tools set permission bits only (type 0).
            file_type = stat.S_IFMT(info.external_attr >> 16)
            if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
                kind = "symbolic link" if file_type == stat.S_IFLNK else "special file"
                raise _BatchRejected(
                    Reason.UNSAFE_MEMBER, f"member {info.filename!r} is a {kind}, not a file"
                )
            if info.is_dir():
                folders.append(path)
                continue
            if not path:
                raise _BatchRejected(
                    Reason.UNSAFE_MEMBER, f"member {info.filename!r} is a file without a name"
                )
            if info.flag_bits & 0x1:
                raise _BatchRejected(Reason.UNSUPPORTED_ARCHIVE, f"member {info.filename!r} is encrypted")
            budget.add_bytes(info.file_size)
            if info.file_size > limits.max_member_bytes:
                members.append(_Member(path=path, size=info.file_size, data=None))
                continue
            # ZipExtFile stops at the declared size and checks the CRC, so a lying header cannot inflate more.
            with archive.open(info) as extracted:
                content = extracted.read()
            members.append(_Member(path=path, size=info.file_size, data=content))
    return members, folders


def _read_archive(data: bytes, kind: ArchiveKind, limits: Limits) -> tuple[list[_Member], list[str]]:
    try:
        if kind == "zip":
            return _read_zip(data, limits=limits)
        if kind == "tar.gz":
            return _read_tar(_gunzip(data, limits.max_expanded_bytes), limits=limits)
        return _read_tar(data, limits=limits)
    except _BatchRejected:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise _BatchRejected(Reason.CORRUPT_ARCHIVE, f"cannot read {kind} archive: {error}") from error
    except (NotImplementedError, RuntimeError) as error:  # zipfile: unknown compression method, password
        raise _BatchRejected(Reason.UNSUPPORTED_ARCHIVE, f"cannot read {kind} archive: {error}") from error


def fitted_size(width: int, height: int, size: int) -> tuple[int, int]:
    """Largest (width, height) with the same aspect ratio that fits in size x size (each side >= 1)."""
    if width >= height:
        return size, max(1, min(size, round(height * size / width)))
    return max(1, min(size, round(width * size / height))), size


def to_grayscale(image: Image.Image, background: int) -> Image.Image:
    """Mode "L" version of ``image``: ITU-R 601-2 luma, 16-bit scaled to 8-bit, alpha over ``background``."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        values = numpy.clip(numpy.asarray(image), 0, 65535).astype(numpy.uint32)
        return Image.fromarray(((values * 255 + 32767) // 65535).astype(numpy.uint8))
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        mode = image.mode
    if mode in _ALPHA_MODES:
        alpha = image.getchannel("A")
        gray = image.convert("L")
        if alpha.getextrema() == (255, 255):
            return gray
        return Image.composite(gray, Image.new("L", image.size, background), alpha)
    if mode == "L":
        return image
    if mode in _DIRECT_TO_GRAY_MODES:
        return image.convert("L")
    raise DesignRejected(Reason.UNSUPPORTED_IMAGE_MODE, f"image mode {mode!r} is not supported")


def fit_view(data: bytes, *, config: TransformConfig) -> Image.Image:
    """Decode one view into a mode "L" image fitted into image_size x image_size (aspect kept, not padded)."""
    limits = config.limits
    try:
        image = Image.open(io.BytesIO(data), formats=_DECODERS)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DesignRejected(Reason.UNDECODABLE_IMAGE, f"not a PNG or JPEG image: {error}") from error
    except Image.DecompressionBombError as error:  # Pillow's own limit (above ours) refused it while opening
        raise DesignRejected(Reason.IMAGE_TOO_LARGE, str(error)) from error
    with image:
        width, height = image.size
        # The header has been read, no pixel has been decoded yet: check the declared size now.
        if width <= 0 or height <= 0:
            raise DesignRejected(Reason.UNDECODABLE_IMAGE, f"image declares an empty size {width}x{height}")
        if width * height > limits.max_image_pixels:
            raise DesignRejected(
                Reason.IMAGE_TOO_LARGE,
                f"image declares {width}x{height} = {width * height} pixels "
                f"(limit {limits.max_image_pixels})",
            )
        target = fitted_size(width, height, config.image_size)
        if image.format == "JPEG":
            # libjpeg decodes luma only, at the smallest DCT scale still >= the target: less work.
            image.draft("L", target)
        try:
            image.load()
            gray = to_grayscale(image, config.pad_value)
            return (
                gray if gray.size == target else gray.resize(target, _RESAMPLING, reducing_gap=_REDUCING_GAP)
            )
        except DesignRejected:
            raise
        except (OSError, ValueError, SyntaxError, EOFError, zlib.error) as error:
            raise DesignRejected(Reason.UNDECODABLE_IMAGE, f"cannot decode image: {error}") from error


def _paste_centered(view: Image.Image, stack: Image.Image, *, index: int, size: int) -> None:
    """Paste a fitted view centered into square ``index`` of a (size) x (size * views) stack image."""
    width, height = view.size
    stack.paste(view, ((size - width) // 2, index * size + (size - height) // 2))


def render_view(data: bytes, *, config: TransformConfig, canvas: ViewArray | None = None) -> ViewArray:
    """One view as a shard stores it: image_size x image_size uint8, fitted, centered, padded.

    With ``canvas`` (image_size x image_size uint8, already holding ``config.pad_value``), the view is drawn
    into it and it is returned; only the fitted rectangle is written. Same pixels as in a shard.
    """
    fitted = fit_view(data, config=config)
    size = config.image_size
    if canvas is None:
        canvas = numpy.full((size, size), config.pad_value, dtype=numpy.uint8)
    width, height = fitted.size
    top, left = (size - height) // 2, (size - width) // 2
    canvas[top : top + height, left : left + width] = numpy.asarray(fitted, dtype=numpy.uint8)
    return canvas


def _parse_meta(data: bytes | None, limits: Limits) -> str:
    if data is None or len(data) > limits.max_meta_bytes:
        raise DesignRejected(
            Reason.BAD_META, f"meta.json is larger than {limits.max_meta_bytes} bytes", member=META_NAME
        )
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DesignRejected(
            Reason.BAD_META, f"meta.json is not UTF-8 JSON: {error}", member=META_NAME
        ) from error
    if not isinstance(meta, dict):
        raise DesignRejected(Reason.BAD_META, "meta.json is not a JSON object", member=META_NAME)
    family = meta.get("family", "")
    if not isinstance(family, str) or len(family) > MAX_FAMILY_LENGTH:
        raise DesignRejected(
            Reason.BAD_META,
            f"meta.json 'family' must be a string of at most {MAX_FAMILY_LENGTH} characters",
            member=META_NAME,
        )
    return family


def _transform_design(design_id: str, entries: list[tuple[str, _Member]], config: TransformConfig) -> Design:
    """Validate one design folder's members and build its view stack; raise DesignRejected if bad."""
    if not DESIGN_ID_PATTERN.fullmatch(design_id):
        raise DesignRejected(
            Reason.INVALID_DESIGN_ID, f"design id {design_id!r} does not match {DESIGN_ID_PATTERN.pattern}"
        )
    seen: set[str] = set()
    views: dict[int, _Member] = {}
    meta: _Member | None = None
    for name, member in entries:
        if name in seen:
            raise DesignRejected(
                Reason.DUPLICATE_MEMBER, f"{member.path!r} appears twice", member=member.path
            )
        seen.add(name)
        view_match = VIEW_NAME_PATTERN.fullmatch(name)
        if name == META_NAME:
            meta = member
        elif view_match:
            number = int(view_match.group(1))
            if number in views:
                raise DesignRejected(
                    Reason.BAD_VIEW_NUMBERING,
                    f"view {number:02d} appears twice ({member.path!r})",
                    member.path,
                )
            views[number] = member
        else:
            raise DesignRejected(
                Reason.UNEXPECTED_MEMBER,
                f"{member.path!r} is neither view_NN.png/.jpg nor meta.json directly in the design folder",
                member=member.path,
            )
    for member in [*views.values(), *([meta] if meta else [])]:
        if member.data is None:
            raise DesignRejected(
                Reason.MEMBER_TOO_LARGE,
                f"{member.path!r} is {member.size} bytes (limit {config.limits.max_member_bytes})",
                member=member.path,
            )
    family = _parse_meta(meta.data, config.limits) if meta else ""
    if len(views) != config.num_views:
        raise DesignRejected(
            Reason.WRONG_VIEW_COUNT, f"design has {len(views)} views, expected {config.num_views}"
        )
    if sorted(views) != list(range(config.num_views)):
        numbers = ", ".join(f"{number:02d}" for number in sorted(views))
        raise DesignRejected(
            Reason.BAD_VIEW_NUMBERING, f"views must be numbered 00..{config.num_views - 1:02d}, got {numbers}"
        )
    # All views are pasted into one tall image, converted to numpy once: per-view array conversion costs
    # more than decoding a small view.
    size = config.image_size
    stack = Image.new("L", (size, size * config.num_views), config.pad_value)
    for number in range(config.num_views):
        member = views[number]
        try:
            _paste_centered(fit_view(member.data or b"", config=config), stack, index=number, size=size)
        except DesignRejected as error:
            raise DesignRejected(error.reason, f"{member.path!r}: {error}", member=member.path) from error
    array = numpy.frombuffer(stack.tobytes(), dtype=numpy.uint8).reshape(config.num_views, size, size)
    return Design(design_id=design_id, family=family, views=array)


def _group_by_design(
    members: Iterable[_Member], folders: Iterable[str]
) -> tuple[dict[str, list[tuple[str, _Member]]], list[Rejection]]:
    designs: dict[str, list[tuple[str, _Member]]] = {}
    strays: list[Rejection] = []
    for folder in folders:
        if not folder:  # the archive root itself ("./"), as `tar -C dir -cf batch.tar .` writes it
            continue
        design_id, _, rest = folder.partition("/")
        entries = designs.setdefault(design_id, [])
        if rest:  # a sub-folder inside a design folder is not part of the format
            entries.append((rest + "/", _Member(path=folder + "/", size=0, data=b"")))
    for member in members:
        design_id, separator, rest = member.path.partition("/")
        if not separator:
            strays.append(
                Rejection(
                    reason=Reason.STRAY_MEMBER,
                    message=f"{member.path!r} is outside any design folder (expected <design_id>/<file>)",
                    member=member.path,
                )
            )
            continue
        designs.setdefault(design_id, []).append((rest, member))
    return designs, strays


def _batch_rejection(reason: Reason, message: str) -> BatchResult:
    return BatchResult(designs=(), rejections=(Rejection(reason=reason, message=message),))


class OutOfTime(Exception):
    """The caller's ``out_of_time`` said stop: the archive was abandoned half-way, nothing was decided."""


def transform_archive(
    data: bytes,
    *,
    archive_name: str,
    config: TransformConfig,
    out_of_time: Callable[[], bool] = lambda: False,
) -> BatchResult:
    """Turn one render batch archive into designs and rejections (designs sorted by id).

    ``archive_name`` (an S3 key or file name) selects the archive kind by its suffix. ``out_of_time`` is
    asked before each design; when it answers True, :class:`OutOfTime` is raised, so a caller with a
    deadline (the Lambda) can give the archive back for a retry instead of being killed mid-way.
    """
    limits = config.limits
    if not data:
        return _batch_rejection(Reason.EMPTY_OBJECT, "the object is empty (0 bytes)")
    if len(data) > limits.max_archive_bytes:
        return _batch_rejection(
            Reason.ARCHIVE_TOO_LARGE, f"archive is {len(data)} bytes (limit {limits.max_archive_bytes})"
        )
    kind = archive_kind(archive_name)
    if kind is None:
        suffixes = ", ".join(suffix for suffix, _ in ARCHIVE_SUFFIXES)
        return _batch_rejection(
            Reason.UNSUPPORTED_ARCHIVE, f"{archive_name!r} does not end with an archive suffix ({suffixes})"
        )
    try:
        members, folders = _read_archive(data, kind, limits)
    except _BatchRejected as rejected:
        return BatchResult(designs=(), rejections=(rejected.rejection,))
    grouped, rejections = _group_by_design(members, folders)
    if not grouped and not rejections:
        return _batch_rejection(Reason.NO_DESIGNS, "the archive holds no design folder")
    designs: list[Design] = []
    for design_id in sorted(grouped):
        if out_of_time():
            raise OutOfTime(f"{archive_name}: out of time before design {design_id!r}")
        try:
            designs.append(_transform_design(design_id, grouped[design_id], config))
        except DesignRejected as error:
            rejections.append(
                Rejection(reason=error.reason, message=str(error), design_id=design_id, member=error.member)
            )
    if not designs:
        rejections.append(
            Rejection(
                reason=Reason.NO_VALID_DESIGNS,
                message=f"none of the archive's {len(grouped)} design folder(s) could be used",
            )
        )
    return BatchResult(designs=tuple(designs), rejections=tuple(rejections))
