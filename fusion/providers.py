"""Choose onnxruntime execution providers from what this installation offers."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def available_providers(preference: tuple[str, ...] = PREFERENCE) -> list[str]:
    """Providers in preference order, filtered to the ones this onnxruntime build has."""
    available = set(ort.get_available_providers())
    chosen = [name for name in preference if name in available]
    return chosen or ["CPUExecutionProvider"]


def create_session(model_path: Path, threads: int = 1) -> ort.InferenceSession:
    """An inference session with few threads: frames are processed in a stream, not in big batches."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(model_path), sess_options=options, providers=available_providers())
