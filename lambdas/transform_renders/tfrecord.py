"""TFRecord files of ``tf.train.Example`` written without TensorFlow.

Why by hand: the Lambda asset must stay small and start fast, and TensorFlow is neither. The two formats
involved are small and stable:

* TFRecord framing (tensorflow/core/lib/io/record_writer.cc), per record::

      uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)

  with ``masked_crc(c) = ((c >> 15) | (c << 17)) + 0xa282ead8`` (mod 2**32) and CRC-32C (Castagnoli,
  reflected polynomial 0x82F63B78).
* ``tf.train.Example`` (tensorflow/core/example/{example,feature}.proto) encoded as protobuf wire format:
  ``Example{features=1: Features{feature=1: map<string, Feature>}}``, ``Feature{bytes_list=1 | float_list=2 |
  int64_list=3}``, ``BytesList{repeated bytes value=1}``, ``Int64List{repeated int64 value=1 [packed]}``.

CRC-32C comes from google-crc32c (Google's C implementation, hardware CRC instructions where the CPU has
them; ~20 GB/s here): a byte-table loop in pure Python runs at ~10 MB/s and numpy lanes at ~80 MB/s, either
of which costs as much per view as decoding a small image (bench/transform.py). Its pure-Python fallback is
never used silently: importing this module fails when the C extension is missing (a broken asset), and the
bundled-asset test checks the C extension loads from the asset under the Lambda's Python.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence

import google_crc32c

_MASK_DELTA = 0xA282EAD8
_UINT32 = 0xFFFFFFFF

if google_crc32c.implementation != "c":  # pragma: no cover - only in a broken install
    raise ImportError(
        "google-crc32c's C extension did not load (its pure-Python fallback is ~1000x slower); "
        "reinstall google-crc32c for this platform"
    )


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, as used by TFRecord, iSCSI and ext4."""
    return int(google_crc32c.value(data))


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _UINT32


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotating and offsetting keeps CRCs of CRC-bearing data well distributed."""
    return _mask(crc32c(data))


def frame_records(records: Sequence[bytes]) -> bytes:
    """A TFRecord stream: per record its length, the length's masked CRC, the data, the data's masked CRC."""
    parts: list[bytes] = []
    for data in records:
        length = struct.pack("<Q", len(data))
        length_crc = struct.pack("<I", masked_crc32c(length))
        parts += (length, length_crc, data, struct.pack("<I", masked_crc32c(data)))
    return b"".join(parts)


def frame_record(data: bytes) -> bytes:
    """One TFRecord record (see :func:`frame_records`)."""
    return frame_records([data])


class TFRecordError(ValueError):
    """A TFRecord stream is truncated or a CRC does not match."""


def iter_records(stream: bytes) -> Iterator[bytes]:
    """Yield each record's data, verifying both CRCs (the reader counterpart of ``frame_record``)."""
    offset = 0
    view = memoryview(stream)
    while offset < len(stream):
        if offset + 12 > len(stream):
            raise TFRecordError(f"truncated record header at offset {offset}")
        length_bytes = bytes(view[offset : offset + 8])
        (length,) = struct.unpack("<Q", length_bytes)
        (length_crc,) = struct.unpack("<I", view[offset + 8 : offset + 12])
        if length_crc != masked_crc32c(length_bytes):
            raise TFRecordError(f"length CRC mismatch at offset {offset}")
        start = offset + 12
        end = start + length
        if end + 4 > len(stream):
            raise TFRecordError(f"truncated record data at offset {offset}")
        data = bytes(view[start:end])
        (data_crc,) = struct.unpack("<I", view[end : end + 4])
        if data_crc != masked_crc32c(data):
            raise TFRecordError(f"data CRC mismatch at offset {offset}")
        yield data
        offset = end + 4


# --- protobuf wire format -------------------------------------------------------------------------------
_WIRE_VARINT = 0
_WIRE_LENGTH_DELIMITED = 2


def _varint(value: int) -> bytes:
    if value < 0:
        value &= (1 << 64) - 1  # int64 negatives are ten-byte two's complement varints
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    return _varint(field_number << 3 | _WIRE_LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _bytes_feature(values: Sequence[bytes]) -> bytes:
    bytes_list = b"".join(_length_delimited(1, value) for value in values)
    return _length_delimited(1, bytes_list)  # Feature.bytes_list = 1


def _int64_feature(values: Sequence[int]) -> bytes:
    packed = b"".join(_varint(value) for value in values)
    return _length_delimited(3, _length_delimited(1, packed))  # Feature.int64_list = 3


FeatureValue = bytes | int | Sequence[bytes] | Sequence[int]


def _feature(name: str, value: FeatureValue) -> bytes:
    if isinstance(value, bytes):
        return _bytes_feature([value])
    if isinstance(value, bool):
        raise TypeError(f"feature {name!r}: booleans are not a tf.train.Feature kind")
    if isinstance(value, int):
        return _int64_feature([value])
    items = list(value)
    if not items:
        raise TypeError(
            f"feature {name!r}: an empty list has no kind (bytes or int64); leave the feature out"
        )
    if all(isinstance(item, bytes) for item in items):
        return _bytes_feature([item for item in items if isinstance(item, bytes)])
    if all(isinstance(item, int) and not isinstance(item, bool) for item in items):
        return _int64_feature([item for item in items if isinstance(item, int)])
    raise TypeError(f"feature {name!r}: expected bytes or int values, got {type(value).__name__}")


def encode_example(features: Mapping[str, FeatureValue]) -> bytes:
    """Serialize a ``tf.train.Example``; map entries are sorted by name so output is byte-deterministic."""
    entries = []
    for name in sorted(features):
        entry = _length_delimited(1, name.encode("utf-8")) + _length_delimited(
            2, _feature(name, features[name])
        )
        entries.append(_length_delimited(1, entry))  # Features.feature (map entry) = 1
    return _length_delimited(1, b"".join(entries))  # Example.features = 1
