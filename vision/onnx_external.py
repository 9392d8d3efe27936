"""Find the tensors of an ONNX file whose data lives outside it ("external data").

Why: a model's sha256 pin covers the `.onnx` file only. A tensor stored as external data
(`onnx.save(..., save_as_external_data=True)`) is read by onnxruntime from a side file next to the
model, which no pin covers: a different side file would pass `dhf models verify` and change every
render. So a model file is accepted only if none of its tensors is external; then onnxruntime reads
nothing but the pinned bytes.

Why a reader of its own: `onnx` is not a runtime dependency, and parsing the whole graph into
Python objects would cost a render the time of a 90 MB protobuf decode. This walks the protobuf
wire format, descending only into the messages that can hold a tensor (graphs, subgraphs of
control-flow nodes, constant attributes, sparse tensors, functions, training graphs), and skips
the weights' bytes without copying them.
"""

from __future__ import annotations

from dataclasses import dataclass

# ModelProto, TrainingInfoProto, FunctionProto, GraphProto, NodeProto, AttributeProto and
# SparseTensorProto: field number → the message type it holds (onnx/onnx.proto). Every other field
# is skipped.
_CHILDREN: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class ProtobufError(ValueError):
    """The bytes are not a well-formed protobuf message (truncated or not an ONNX file)."""


@dataclass(frozen=True)
class ExternalTensor:
    """A tensor whose data onnxruntime would read from `location`, a file beside the model."""

    name: str
    location: str


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint longer than 10 bytes")


def _fields(data: bytes, start: int, end: int):
    """(field number, wire type, value, value end) of one message: a varint's value, or a
    length-delimited field's start offset (and end); fixed-size fields are skipped."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos, end)
            yield number, wire, value, pos
        elif wire == _LENGTH:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise ProtobufError("a field runs past the end of its message")
            yield number, wire, pos, pos + length
            pos += length
        elif wire in (_FIXED64, _FIXED32):
            pos += 8 if wire == _FIXED64 else 4
            if pos > end:
                raise ProtobufError("truncated fixed-size field")
        else:
            raise ProtobufError(f"wire type {wire} (groups are not used by ONNX)")


def _tensor(data: bytes, start: int, end: int) -> ExternalTensor | None:
    name, location, data_location = "", "", 0
    for number, wire, value, value_end in _fields(data, start, end):
        if number == _TENSOR_DATA_LOCATION and wire == _VARINT:
            data_location = value  # a scalar field: the last occurrence wins, as in protobuf
        elif number == _TENSOR_NAME and wire == _LENGTH:
            name = bytes(data[value:value_end]).decode("utf-8", "replace")
        elif number == _TENSOR_EXTERNAL_DATA and wire == _LENGTH:
            entry = {k: bytes(data[v:e]) for k, w, v, e in _fields(data, value, value_end) if w == _LENGTH}
            if entry.get(1) == b"location":
                location = entry.get(2, b"").decode("utf-8", "replace")
    return ExternalTensor(name, location) if data_location == _EXTERNAL else None


def external_tensors(data: bytes) -> list[ExternalTensor]:
    """Every tensor of the ONNX model `data` (bytes, or an mmap of the file) stored as external data.

    Raises ProtobufError when the bytes are not a well-formed protobuf message."""
    found: list[ExternalTensor] = []
    stack = [("model", 0, len(data))]  # an explicit stack: nested subgraphs cannot exhaust recursion
    while stack:
        kind, start, end = stack.pop()
        if kind == "tensor":
            tensor = _tensor(data, start, end)
            if tensor is not None:
                found.append(tensor)
            continue
        children = _CHILDREN[kind]
        for number, wire, value, value_end in _fields(data, start, end):
            child = children.get(number)
            if child is not None and wire == _LENGTH:
                stack.append((child, value, value_end))
    return found
