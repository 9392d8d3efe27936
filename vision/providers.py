"""Choose onnxruntime execution providers: TensorRT (FP16, engines cached) → CUDA → CPU.

Why an explicit fallback: `pip install .[gpu]` brings onnxruntime-gpu, which lists the CUDA and
TensorRT providers even on a machine whose driver, CUDA or TensorRT libraries are missing or too old;
the session then fails to start (or onnxruntime silently drops to the CPU). Each provider is tried in
order, and the provider the session really runs on is what the render report names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import onnxruntime as ort

from vision.errors import ModelError

PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
NAMES = {"tensorrt": PREFERENCE[0], "cuda": PREFERENCE[1], "cpu": PREFERENCE[2]}


def available_providers(preference: tuple[str, ...] = PREFERENCE) -> list[str]:
    """Providers in preference order, filtered to the ones this onnxruntime build has."""
    available = set(ort.get_available_providers())
    chosen = [name for name in preference if name in available]
    return chosen or ["CPUExecutionProvider"]


@dataclass(frozen=True)
class ProviderChoice:
    """What the configuration asks for: `requested` short names in order ("tensorrt", "cuda", "cpu");
    empty means every one this installation has, best first. `cache_dir`: TensorRT engine cache."""

    requested: tuple[str, ...] = ()
    tensorrt_fp16: bool = True
    cache_dir: Path | None = None
    threads: int = 1
    available: tuple[str, ...] | None = field(default=None, compare=False)  # None: ask onnxruntime

    def candidates(self) -> list[tuple[str, dict[str, object]]]:
        """(provider, options) in the order to try; always ends with the CPU (it cannot be missing)."""
        available = set(self.available if self.available is not None else ort.get_available_providers())
        wanted = [NAMES[name] for name in self.requested] if self.requested else list(PREFERENCE)
        chosen = [name for name in wanted if name in available and name != "CPUExecutionProvider"]
        chosen.append("CPUExecutionProvider")
        return [(name, self.options(name)) for name in chosen]

    def options(self, provider: str) -> dict[str, object]:
        if provider == "TensorrtExecutionProvider":
            options: dict[str, object] = {"trt_fp16_enable": self.tensorrt_fp16}
            if self.cache_dir is not None:
                # Building an engine takes minutes; cached, the next render starts in seconds.
                options.update(
                    trt_engine_cache_enable=True,
                    trt_engine_cache_path=str(self.cache_dir),
                    trt_timing_cache_enable=True,
                    trt_timing_cache_path=str(self.cache_dir),
                )
            return options
        return {}


SessionFactory = Callable[[str, ort.SessionOptions, list], ort.InferenceSession]


def _ort_session(path: str, options: ort.SessionOptions, providers: list) -> ort.InferenceSession:
    return ort.InferenceSession(path, sess_options=options, providers=providers)


def session_options(threads: int = 1) -> ort.SessionOptions:
    """Few threads: frames are processed in a stream, not in big batches."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def open_session(
    model_path: Path, choice: ProviderChoice, factory: SessionFactory = _ort_session
) -> tuple[ort.InferenceSession, str]:
    """A session on the first provider that starts, and the provider it really runs on.

    Each candidate is tried with the remaining ones behind it (so TensorRT can hand unsupported nodes
    to CUDA); a provider whose session fails to start is dropped and the next one tried."""
    candidates = choice.candidates()
    errors: list[str] = []
    if choice.cache_dir is not None and any(name == PREFERENCE[0] for name, _ in candidates):
        Path(choice.cache_dir).mkdir(parents=True, exist_ok=True)
    for start in range(len(candidates)):
        providers = [(name, options) for name, options in candidates[start:]]
        try:
            session = factory(str(model_path), session_options(choice.threads), providers)
        except Exception as exc:  # onnxruntime raises its own types (Fail, RuntimeException, ...)
            errors.append(f"{candidates[start][0]}: {str(exc).strip().splitlines()[0][:160] if str(exc) else exc!r}")
            continue
        used = session.get_providers()
        return session, used[0] if used else candidates[start][0]
    raise ModelError(f"no execution provider could open {model_path} ({'; '.join(errors)}); check the file")


def create_session(model_path: Path, threads: int = 1) -> ort.InferenceSession:
    """An inference session on the best available provider (the face-analysis models use this)."""
    return ort.InferenceSession(str(model_path), sess_options=session_options(threads), providers=available_providers())


def describe(choices: Iterable[str]) -> str:
    return " → ".join(name.removesuffix("ExecutionProvider") for name in choices)
