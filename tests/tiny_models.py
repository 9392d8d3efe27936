"""Tiny ONNX models in the exact formats of FaceFusion's processors, with a known computation.

Why: the real weights are hundreds of megabytes under licences that forbid shipping them; a model
with the same input/output names, shapes and dtypes whose output is known (identity, a negation, a
constant colour, a blur then a resize) lets the tests check every pre- and post-processing step of
the processors numerically. Built with onnx.helper at test time (the `test` extra has onnx).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _save(path: Path, nodes, inputs, outputs, initializers=()) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _tensor(name: str, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, list(shape))


def _const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def face_enhancer(path: Path, kind: str = "identity", colour=(0.0, 0.0, 0.0), weight_input: bool = False) -> Path:
    """GFPGAN/GPEN/CodeFormer format: `input` (1,3,512,512) in [-1, 1] → `output`. kind: identity,
    negate (−x: the inverted colour), constant (`colour`, RGB in [-1, 1], whatever the input)."""
    inputs = [_tensor("input", (1, 3, 512, 512))]
    nodes, inits = [], []
    if kind == "identity":
        nodes.append(helper.make_node("Identity", ["input"], ["core"]))
    elif kind == "negate":
        nodes.append(helper.make_node("Neg", ["input"], ["core"]))
    else:
        inits += [_const("zero", 0.0), _const("colour", np.reshape(colour, (1, 3, 1, 1)))]
        nodes += [helper.make_node("Mul", ["input", "zero"], ["zeroed"]),
                  helper.make_node("Add", ["zeroed", "colour"], ["core"])]  # fmt: skip
    if weight_input:  # CodeFormer: a float64 fidelity input, used (times zero) so it cannot be pruned
        inputs.append(_tensor("weight", (1,), TensorProto.DOUBLE))
        inits.append(_const("nothing", 0.0))
        nodes += [helper.make_node("Cast", ["weight"], ["weight32"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", ["weight32", "nothing"], ["unused"]),
                  helper.make_node("Add", ["core", "unused"], ["output"])]  # fmt: skip
    else:
        nodes.append(helper.make_node("Identity", ["core"], ["output"]))
    return _save(path, nodes, inputs, [_tensor("output", (1, 3, 512, 512))], inits)


def frame_enhancer(path: Path, scale: int = 2, blur: bool = True) -> Path:
    """Real-ESRGAN format: `input` (1,3,H,W) in [0, 1] → (1,3,sH,sW): a 3×3 box blur with zero padding
    (so a tile's edge differs from its inside unless the overlap hides it), then nearest ×`scale`."""
    kernel = np.full((3, 1, 3, 3), 1.0 / 9.0) if blur else _centre()
    inits = [_const("scales", [1.0, 1.0, float(scale), float(scale)]), _const("box", kernel)]
    nodes = [
        helper.make_node("Conv", ["input", "box"], ["blurred"], group=3, pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Resize", ["blurred", "", "scales"], ["output"], mode="nearest"),
    ]
    return _save(path, nodes, [_tensor("input", (1, 3, "h", "w"))], [_tensor("output", (1, 3, "sh", "sw"))], inits)


def _centre() -> np.ndarray:
    kernel = np.zeros((3, 1, 3, 3))
    kernel[:, :, 1, 1] = 1.0
    return kernel


def lip_syncer(path: Path, kind: str = "identity") -> Path:
    """Wav2Lip format: `source` (1,1,80,16) mel, `target` (1,6,96,96) → (1,3,96,96) in [0, 1].
    kind identity: the unmasked crop (channels 3-5) comes back; audio_level: every pixel is
    mean(mel)/8 + 0.5 (silence at −4 → black, loud → bright): shows which audio reached the frame."""
    inits = [
        numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (("starts", [3]), ("ends", [6]), ("axes", [1]))
    ]
    inits += [_const("zero", 0.0), _const("eighth", 1.0 / 8.0), _const("half", 0.5)]
    nodes = [
        helper.make_node("Slice", ["target", "starts", "ends", "axes"], ["whole"]),
        helper.make_node("ReduceMean", ["source"], ["level"], axes=[1, 2, 3], keepdims=1),  # (1,1,1,1)
    ]
    if kind == "identity":
        nodes += [helper.make_node("Mul", ["level", "zero"], ["nothing"]),
                  helper.make_node("Add", ["whole", "nothing"], ["output"])]  # fmt: skip
    else:
        nodes += [helper.make_node("Mul", ["whole", "zero"], ["black"]),
                  helper.make_node("Mul", ["level", "eighth"], ["scaled"]),
                  helper.make_node("Add", ["scaled", "half"], ["grey"]),
                  helper.make_node("Add", ["black", "grey"], ["output"])]  # fmt: skip
    inputs = [_tensor("source", (1, 1, 80, 16)), _tensor("target", (1, 6, 96, 96))]
    return _save(path, nodes, inputs, [_tensor("output", (1, 3, 96, 96))], inits)


EMBED_WEIGHTS = np.random.default_rng(17).normal(size=(3, 512)).astype(np.float32)


def arcface(path: Path) -> Path:
    """ArcFace w600k format: `input` (1,3,112,112) in [-1, 1] → (1,512) = mean RGB of the crop @ EMBED_WEIGHTS."""
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["mean", "weights"], ["embedding"]),
    ]
    inits = [_const("weights", EMBED_WEIGHTS)]
    return _save(path, nodes, [_tensor("input", (1, 3, 112, 112))], [_tensor("embedding", (1, 512))], inits)


def inswapper(path: Path, kind: str = "identity", emap: np.ndarray | None = None) -> Path:
    """inswapper-128 format: `target` (1,3,128,128) in [0, 1], `source` (1,512) → (1,3,128,128);
    the emap (512×512) is the graph's last initializer. kind identity or invert (1 − x)."""
    emap = np.eye(512, dtype=np.float32) * 2.0 if emap is None else emap
    inits = [_const("zero", 0.0), _const("one", 1.0), _const("emap", emap)]
    nodes = [
        helper.make_node("ReduceMean", ["source"], ["level"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["level", "zero"], ["nothing"]),
    ]
    if kind == "identity":
        nodes.append(helper.make_node("Add", ["target", "nothing"], ["output"]))
    else:
        nodes += [helper.make_node("Sub", ["one", "target"], ["inverted"]),
                  helper.make_node("Add", ["inverted", "nothing"], ["output"])]  # fmt: skip
    inputs = [_tensor("target", (1, 3, 128, 128)), _tensor("source", (1, 512))]
    return _save(path, nodes, inputs, [_tensor("output", (1, 3, 128, 128))], inits)
