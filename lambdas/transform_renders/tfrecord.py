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

CRC-32C without a C extension: a byte-at-a-time table loop in pure Python runs at ~10 MB/s, which would
cost as much as decoding the images. Instead the data is cut into K lanes of ``_LANE_BYTES`` bytes whose
CRCs numpy advances together (one vectorized table step per byte column), then the lane CRCs are combined
pairwise with precomputed "append n zero bytes" operators (CRC is linear over GF(2), the same identity as
zlib's ``crc32_combine``). All records of a shard go through one such pass, so numpy's per-call overhead
is shared by every design of a batch. bench/transform.py measures it; tests check it against a bit-by-bit
reference.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from functools import cache

import numpy
import numpy.typing

_CRC32C_POLYNOMIAL = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8
_UINT32 = 0xFFFFFFFF
# Lane length for the vectorized CRC: shorter lanes mean fewer Python-level steps but more combine levels.
# 16 measured best over 4 KB-2 MB records here (~0.2 ms for 4 KB, ~0.45 ms for a 49 KB design record).
_LANE_BYTES = 16
# Below this size the plain table loop beats numpy's per-call overhead.
_VECTORIZE_FROM_BYTES = 512

Uint32Array = numpy.typing.NDArray[numpy.uint32]


def _byte_table() -> tuple[int, ...]:
    table = []
    for index in range(256):
        value = index
        for _ in range(8):
            value = (value >> 1) ^ (_CRC32C_POLYNOMIAL if value & 1 else 0)
        table.append(value)
    return tuple(table)


_TABLE: tuple[int, ...] = _byte_table()
_TABLE_ARRAY: Uint32Array = numpy.array(_TABLE, dtype=numpy.uint32)


def _crc_update_python(crc: int, data: bytes) -> int:
    """Advance a raw (unconditioned) CRC register over ``data``, one table step per byte."""
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


# A GF(2)-linear map on 32-bit CRC registers is stored as the images of the 32 unit vectors (columns).
def _apply_columns(columns: Sequence[int], value: int) -> int:
    result = 0
    bit = 0
    while value:
        if value & 1:
            result ^= columns[bit]
        value >>= 1
        bit += 1
    return result


def _compose(outer: Sequence[int], inner: Sequence[int]) -> tuple[int, ...]:
    return tuple(_apply_columns(outer, column) for column in inner)


def _one_zero_byte_columns() -> tuple[int, ...]:
    return tuple(_crc_update_python(1 << bit, b"\x00") for bit in range(32))


@cache
def _zeros_operator(length: int) -> tuple[int, ...]:
    """Columns of the map "advance the register over ``length`` zero bytes" (square-and-multiply)."""
    result = tuple(1 << bit for bit in range(32))  # identity
    power = _one_zero_byte_columns()
    remaining = length
    while remaining:
        if remaining & 1:
            result = _compose(power, result)
        remaining >>= 1
        if remaining:
            power = _compose(power, power)
    return result


@cache
def _zeros_tables(length: int) -> Uint32Array:
    """The same map as 4 x 256 lookup tables, one per register byte, for vectorized application."""
    columns = _zeros_operator(length)
    tables = numpy.zeros((4, 256), dtype=numpy.uint32)
    for byte_index in range(4):
        for value in range(1, 256):
            lowest = value & -value
            tables[byte_index, value] = (
                tables[byte_index, value ^ lowest] ^ columns[8 * byte_index + lowest.bit_length() - 1]
            )
    return tables


def _apply_zeros(tables: Uint32Array, registers: Uint32Array) -> Uint32Array:
    return (  # type: ignore[no-any-return]
        tables[0][registers & 0xFF]
        ^ tables[1][(registers >> 8) & 0xFF]
        ^ tables[2][(registers >> 16) & 0xFF]
        ^ tables[3][registers >> 24]
    )


def _crcs_vectorized(chunks: Sequence[bytes]) -> list[int]:
    """CRC-32C of several chunks (each >= 4 bytes) at once (see the module docstring).

    Every chunk is front-padded with zeros to the longest one's lane count (leading zero bytes leave a zero
    register unchanged), so one pass of numpy steps serves all of them: the per-step overhead is shared.
    The initial register 0xFFFFFFFF is applied by inverting each chunk's first 4 bytes, which for a
    reflected 32-bit CRC is the same as starting from it, so no per-length correction is needed.
    """
    lane_count = -(-max(len(chunk) for chunk in chunks) // _LANE_BYTES)
    width = lane_count * _LANE_BYTES
    buffer = numpy.zeros((len(chunks), width), dtype=numpy.uint8)
    for row, chunk in enumerate(chunks):
        start = width - len(chunk)
        buffer[row, start:] = numpy.frombuffer(chunk, dtype=numpy.uint8)
        buffer[row, start : start + 4] ^= 0xFF
    lanes = buffer.reshape(len(chunks), lane_count, _LANE_BYTES)
    registers = numpy.zeros((len(chunks), lane_count), dtype=numpy.uint32)
    table = _TABLE_ARRAY
    for column in range(_LANE_BYTES):
        registers = table[(registers ^ lanes[:, :, column]) & 0xFF] ^ (registers >> 8)
    lane_length = _LANE_BYTES
    while registers.shape[1] > 1:
        if registers.shape[1] % 2:
            registers = numpy.concatenate(
                (numpy.zeros((len(chunks), 1), dtype=numpy.uint32), registers), axis=1
            )
        # left lane, then right lane: crc(left || right) = zeros_shift(crc(left), len(right)) ^ crc(right)
        registers = _apply_zeros(_zeros_tables(lane_length), registers[:, 0::2]) ^ registers[:, 1::2]
        lane_length *= 2
    return [int(value) ^ _UINT32 for value in registers[:, 0]]


def crc32c_many(chunks: Sequence[bytes]) -> list[int]:
    """CRC-32C (Castagnoli) of each chunk; long chunks are computed together in one vectorized pass."""
    results = [0] * len(chunks)
    long_chunks: list[tuple[int, bytes]] = []
    for index, chunk in enumerate(chunks):
        if len(chunk) < _VECTORIZE_FROM_BYTES:
            results[index] = _crc_update_python(_UINT32, chunk) ^ _UINT32
        else:
            long_chunks.append((index, chunk))
    if long_chunks:
        crcs = _crcs_vectorized([chunk for _, chunk in long_chunks])
        for (index, _), crc in zip(long_chunks, crcs, strict=True):
            results[index] = crc
    return results


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, as used by TFRecord, iSCSI and ext4."""
    return crc32c_many([data])[0]


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _UINT32


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotating and offsetting keeps CRCs of CRC-bearing data well distributed."""
    return _mask(crc32c(data))


def frame_records(records: Sequence[bytes]) -> bytes:
    """A TFRecord stream: per record its length, the length's masked CRC, the data, the data's masked CRC.

    The data CRCs of all records are computed in one vectorized pass.
    """
    data_crcs = crc32c_many(records)
    parts: list[bytes] = []
    for data, data_crc in zip(records, data_crcs, strict=True):
        length = struct.pack("<Q", len(data))
        parts += (length, struct.pack("<I", masked_crc32c(length)), data, struct.pack("<I", _mask(data_crc)))
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
