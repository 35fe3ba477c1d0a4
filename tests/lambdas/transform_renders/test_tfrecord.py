"""TFRecord framing (CRC-32C, masking) and the hand-encoded tf.train.Example, checked independently."""

from __future__ import annotations

import random
import struct

import numpy
import pytest

from lambdas.transform_renders import layout, tfrecord, transform
from tests.lambdas.transform_renders import example_proto


def reference_crc32c(data: bytes) -> int:
    """Bit-at-a-time CRC-32C straight from the definition (slow, obviously right)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"123456789", 0xE3069283),  # the CRC catalogue's check value
        (bytes(32), 0x8A9136AA),  # RFC 3720 B.4 test vectors
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
        (b"", 0x00000000),
    ],
)
def test_crc32c_known_vectors(data: bytes, expected: int) -> None:
    assert tfrecord.crc32c(data) == expected


def test_crc32c_matches_the_reference_at_every_kind_of_length() -> None:
    # GIVEN random data from 1 byte to a design record's size, word-aligned and not
    rng = random.Random(7)
    lengths = [1, 3, 4, 7, 8, 9, 15, 16, 17, 511, 512, 513, 1000, 4096, 4097, 12_345, 49_152 + 38]
    for length in lengths:
        data = rng.randbytes(length)
        # WHEN / THEN the shipped CRC agrees with the definition
        assert tfrecord.crc32c(data) == reference_crc32c(data), length


def test_masked_crc_follows_tensorflows_formula() -> None:
    crc = tfrecord.crc32c(b"autostop")
    assert (
        tfrecord.masked_crc32c(b"autostop")
        == ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) % 2**32
    )


def test_frame_record_layout() -> None:
    # GIVEN a payload
    payload = b"hello tfrecord"
    # WHEN framed
    framed = tfrecord.frame_record(payload)
    # THEN it is length | masked crc(length) | payload | masked crc(payload)
    length_bytes = struct.pack("<Q", len(payload))
    assert framed[:8] == length_bytes
    assert struct.unpack("<I", framed[8:12])[0] == tfrecord.masked_crc32c(length_bytes)
    assert framed[12:-4] == payload
    assert struct.unpack("<I", framed[-4:])[0] == tfrecord.masked_crc32c(payload)


def test_records_round_trip_and_corruption_is_detected() -> None:
    records = [b"", b"a", bytes(range(256)) * 40]
    stream = b"".join(tfrecord.frame_record(record) for record in records)
    assert list(tfrecord.iter_records(stream)) == records
    for position in (3, 10, 20, len(stream) - 2):
        corrupted = bytearray(stream)
        corrupted[position] ^= 0x40
        with pytest.raises(tfrecord.TFRecordError):
            list(tfrecord.iter_records(bytes(corrupted)))
    with pytest.raises(tfrecord.TFRecordError, match="truncated"):
        list(tfrecord.iter_records(stream[:-1]))


def test_example_decodes_with_the_protobuf_runtime() -> None:
    # GIVEN features of every kind the encoder supports, including edge values
    features = {
        "design_id": b"bracket-001",
        "empty": b"",
        "many_bytes": [b"a", b"", b"\x00\xff"],
        "big": 2**62,
        "negative": -5,
        "ints": [0, 1, 127, 128, 300, -1],
        "unicode_name_é": b"x",
    }
    # WHEN encoded by hand and parsed by protobuf's own decoder
    parsed = example_proto.parse_example(tfrecord.encode_example(features)).features.feature
    # THEN every value survives
    assert parsed["design_id"].bytes_list.value == [b"bracket-001"]
    assert parsed["empty"].bytes_list.value == [b""]
    assert parsed["many_bytes"].bytes_list.value == [b"a", b"", b"\x00\xff"]
    assert parsed["big"].int64_list.value == [2**62]
    assert parsed["negative"].int64_list.value == [-5]
    assert parsed["ints"].int64_list.value == [0, 1, 127, 128, 300, -1]
    assert parsed["unicode_name_é"].bytes_list.value == [b"x"]


def test_example_encoding_is_canonical() -> None:
    # GIVEN the same features in two insertion orders
    first = tfrecord.encode_example({"a": 1, "b": b"x"})
    second = tfrecord.encode_example({"b": b"x", "a": 1})
    # THEN the bytes are identical and equal protobuf's own deterministic serialization
    assert first == second
    assert example_proto.parse_example(first).SerializeToString(deterministic=True) == first


@pytest.mark.parametrize("bad", [True, [1, b"x"], [], 1.5, "text"])
def test_unsupported_feature_values_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        tfrecord.encode_example({"bad": bad})  # type: ignore[dict-item]


def test_a_shard_holds_every_contract_field() -> None:
    # GIVEN two designs
    rng = numpy.random.default_rng(0)
    designs = [
        transform.Design("d1", "bracket", rng.integers(0, 256, (12, 64, 64), dtype=numpy.uint8)),
        transform.Design("d2", "", rng.integers(0, 256, (12, 64, 64), dtype=numpy.uint8)),
    ]
    # WHEN written as a shard and read back through the framing and protobuf
    read_back = example_proto.designs_in_shard(layout.encode_shard(designs))
    # THEN design_id, family, views, num_views, height and width are all there and exact
    assert [(design["design_id"], design["family"]) for design in read_back] == [
        ("d1", "bracket"),
        ("d2", ""),
    ]
    for original, decoded in zip(designs, read_back, strict=True):
        numpy.testing.assert_array_equal(decoded["views"], original.views)
