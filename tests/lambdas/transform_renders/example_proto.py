"""An independent ``tf.train.Example`` parser for tests, built from the .proto definition with protobuf.

Why not TensorFlow's generated classes: importing them imports TensorFlow (seconds). This builds the same
three messages (Example, Features, Feature + lists) from a FileDescriptorProto with the real protobuf
runtime, so the hand-written encoder is checked against Google's decoder, not against itself.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from lambdas.transform_renders import tfrecord

_LABEL_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_LABEL_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_TYPE_BYTES = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
_TYPE_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_TYPE_FLOAT = descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT
_TYPE_INT64 = descriptor_pb2.FieldDescriptorProto.TYPE_INT64
_TYPE_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE


def _field(message: Any, name: str, number: int, field_type: int, label: int, type_name: str = "") -> Any:
    field = message.field.add(name=name, number=number, type=field_type, label=label)
    if type_name:
        field.type_name = type_name
    return field


@functools.cache
def example_class() -> Any:
    """The ``tensorflow.Example`` message class (tensorflow/core/example/{example,feature}.proto)."""
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="test_example.proto", package="tensorflow", syntax="proto3"
    )
    bytes_list = file_proto.message_type.add(name="BytesList")
    _field(bytes_list, "value", 1, _TYPE_BYTES, _LABEL_REPEATED)
    float_list = file_proto.message_type.add(name="FloatList")
    _field(float_list, "value", 1, _TYPE_FLOAT, _LABEL_REPEATED).options.packed = True
    int64_list = file_proto.message_type.add(name="Int64List")
    _field(int64_list, "value", 1, _TYPE_INT64, _LABEL_REPEATED).options.packed = True
    feature = file_proto.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for name, number, type_name in [
        ("bytes_list", 1, ".tensorflow.BytesList"),
        ("float_list", 2, ".tensorflow.FloatList"),
        ("int64_list", 3, ".tensorflow.Int64List"),
    ]:
        _field(feature, name, number, _TYPE_MESSAGE, _LABEL_OPTIONAL, type_name).oneof_index = 0
    features = file_proto.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, _TYPE_STRING, _LABEL_OPTIONAL)
    _field(entry, "value", 2, _TYPE_MESSAGE, _LABEL_OPTIONAL, ".tensorflow.Feature")
    _field(features, "feature", 1, _TYPE_MESSAGE, _LABEL_REPEATED, ".tensorflow.Features.FeatureEntry")
    example = file_proto.message_type.add(name="Example")
    _field(example, "features", 1, _TYPE_MESSAGE, _LABEL_OPTIONAL, ".tensorflow.Features")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName("tensorflow.Example"))


def parse_example(data: bytes) -> Any:
    message = example_class()()
    message.ParseFromString(data)
    return message


def design_from_example(data: bytes) -> dict[str, Any]:
    """The contract fields of one shard record, views reshaped to (num_views, height, width)."""
    feature = parse_example(data).features.feature
    num_views = feature["num_views"].int64_list.value[0]
    height = feature["height"].int64_list.value[0]
    width = feature["width"].int64_list.value[0]
    views = numpy.frombuffer(feature["views"].bytes_list.value[0], numpy.uint8).reshape(
        num_views, height, width
    )
    return {
        "design_id": feature["design_id"].bytes_list.value[0].decode(),
        "family": feature["family"].bytes_list.value[0].decode(),
        "views": views,
    }


def designs_in_shard(shard: bytes) -> list[dict[str, Any]]:
    return [design_from_example(record) for record in tfrecord.iter_records(shard)]
