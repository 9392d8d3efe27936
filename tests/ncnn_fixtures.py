"""A tiny ncnn model written byte by byte, its numpy reference, and real ncnn as a second reference.

Why a hand-written model: the converter (vision/ncnn_onnx.py) must read every storage form of an
ncnn `.bin` (fp16 with 4-byte alignment, raw fp32, a 256-entry codebook, untagged biases) and
every layer Real-ESRGAN's graph uses; a model small enough to check against a direct numpy
implementation of ncnn's layer semantics covers that in milliseconds. The numpy reference is
itself checked against real ncnn (the `ncnn` wheel from PyPI, CPU) in the slow suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from config.files import file_sha256
from vision.ncnn_onnx import TAG_FP16

TINY_PARAM = """7767517
11 14
Input            in    0 1 data
Convolution      c1    1 1 data a 0=3 1=3 4=1 5=1 6=81 9=2 -23310=1,2.000000e-01
Split            s1    1 4 a a0 a1 a2 a3
Convolution      c2    1 1 a0 b 0=3 1=3 4=1 5=1 6=81
Concat           cat   2 1 a1 b ab
Convolution      c3    1 1 ab c 0=3 1=1 5=0 6=18 9=1
Eltwise          e     2 1 c a2 d 0=1 -23301=2,2.000000e-01,1.000000e+00
BinaryOp         rsub  2 1 d a3 e 0=7
Interp           up    1 1 e u 0=1 1=2.000000e+00 2=2.000000e+00
Convolution      c4    1 1 u v 0=3 1=3 11=1 4=1 14=0 5=1 6=27
BinaryOp         half  1 1 v out 0=2 1=1 2=5.000000e-01
"""


def tiny_weights(seed: int = 3) -> dict[str, np.ndarray]:
    """The tiny model's weights: c1 and c4 as fp16 (odd byte counts, so the 4-byte padding is
    exercised), c2 as raw fp32, c3 from a 256-value codebook."""
    rng = np.random.default_rng(seed)
    table = np.linspace(-1.0, 1.0, 256, dtype=np.float32)
    return {
        "c1.w": rng.normal(0, 0.4, (3, 3, 3, 3)).astype(np.float16),
        "c1.b": rng.normal(0, 0.1, 3).astype(np.float32),
        "c2.w": rng.normal(0, 0.4, (3, 3, 3, 3)).astype(np.float32),
        "c2.b": rng.normal(0, 0.1, 3).astype(np.float32),
        "c3.table": table,
        "c3.index": rng.integers(0, 256, 18).astype(np.uint8),
        "c4.w": rng.normal(0, 0.4, (3, 3, 1, 3)).astype(np.float16),
        "c4.b": rng.normal(0, 0.1, 3).astype(np.float32),
    }


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def tiny_bin(w: dict[str, np.ndarray]) -> bytes:
    fp16 = TAG_FP16.to_bytes(4, "little")
    return b"".join([
        fp16, _pad4(w["c1.w"].astype("<f2").tobytes()), w["c1.b"].astype("<f4").tobytes(),
        b"\0\0\0\0", w["c2.w"].astype("<f4").tobytes(), w["c2.b"].astype("<f4").tobytes(),
        bytes([7, 0, 0, 0]), w["c3.table"].astype("<f4").tobytes(), _pad4(w["c3.index"].tobytes()),
        fp16, _pad4(w["c4.w"].astype("<f2").tobytes()), w["c4.b"].astype("<f4").tobytes(),
    ])  # fmt: skip


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad_h: int, pad_w: int) -> np.ndarray:
    """ncnn's Convolution (stride 1): zero padding, weights [out, in, kh, kw], + bias."""
    padded = np.pad(x, ((0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    windows = sliding_window_view(padded, w.shape[2:], axis=(1, 2))  # c, H, W, kh, kw
    out = np.einsum("chwij,ocij->ohw", windows, w.astype(np.float64))
    return out + (b[:, None, None] if b is not None else 0.0)


def tiny_reference(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """The tiny model computed layer by layer with ncnn's semantics, in float64 (x: C, H, W)."""
    x = x.astype(np.float64)
    a = _conv(x, w["c1.w"], w["c1.b"], 1, 1)
    a = np.where(a > 0, a, 0.2 * a)  # LeakyReLU fused into the convolution (activation 2)
    b = _conv(a, w["c2.w"], w["c2.b"], 1, 1)
    ab = np.concatenate([a, b])  # Concat axis 0 = channels
    c3 = w["c3.table"][w["c3.index"]].reshape(3, 6, 1, 1)
    c = np.maximum(_conv(ab, c3, None, 0, 0), 0.0)
    d = 0.2 * c + 1.0 * a  # Eltwise SUM with coefficients
    e = a - d  # BinaryOp RSUB: b − a
    u = e.repeat(2, axis=1).repeat(2, axis=2)  # nearest ×2
    v = _conv(u, w["c4.w"], w["c4.b"], 0, 1)  # kernel 3 wide, 1 high; pad left/right only
    return v * 0.5


def write_tiny(folder: Path, stem: str = "tiny") -> tuple[Path, Path, dict[str, np.ndarray]]:
    """The tiny model as `<stem>.param` and `<stem>.bin` (the stem names the ONNX graph)."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = tiny_weights()
    param, bin_ = folder / f"{stem}.param", folder / f"{stem}.bin"
    param.write_text(TINY_PARAM)
    bin_.write_bytes(tiny_bin(weights))
    return param, bin_, weights


# --- real ncnn (slow suite): the `ncnn` wheel from PyPI, CPU inference ----------------------------------------

NCNN_WHEEL = "ncnn==1.0.20261020"
NCNN_WHEEL_SHA256 = "8107eeaa269e7b725afdd5c4492109c2682de5bf2a76670ab5f8f5fbfe9c152d"

_RUNNER = """
import json, sys
import numpy as np
import ncnn
param, weights, inputs, outputs, input_blob, output_blob = sys.argv[1:7]
net = ncnn.Net()
net.opt.use_vulkan_compute = False
# fp32 throughout: ncnn's CPU default may keep activations in fp16/bf16 on some CPUs
for option in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage"):
    setattr(net.opt, option, False)
net.opt.num_threads = 2
assert net.load_param(param) == 0 and net.load_model(weights) == 0
batch = np.load(inputs)
results = []
for x in batch:
    extractor = net.create_extractor()
    extractor.input(input_blob, ncnn.Mat(np.ascontiguousarray(x, np.float32)))
    status, out = extractor.extract(output_blob)
    assert status == 0, status
    results.append(np.array(out))
np.save(outputs, np.stack(results))
"""


def ncnn_site(cache: Path) -> Path:
    """The `ncnn` wheel unpacked under `cache` (downloaded once with pip, pinned by sha256)."""
    site = cache / "ncnn-site"
    if (site / "ncnn").is_dir():
        return site
    cache.mkdir(parents=True, exist_ok=True)
    platform = ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--only-binary=:all:"]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *platform, "-d", str(cache), NCNN_WHEEL]
    subprocess.run(command, check=True, capture_output=True)
    wheel = next(cache.glob("ncnn-1.0.20261020-*.whl"))
    assert file_sha256(wheel) == NCNN_WHEEL_SHA256, f"{wheel} does not match its pin"
    with zipfile.ZipFile(wheel) as opened:
        opened.extractall(site)
    return site


def ncnn_run(site: Path, param: Path, weights: Path, batch: np.ndarray, work: Path,
             input_blob: str = "data", output_blob: str = "out") -> np.ndarray:  # fmt: skip
    """Run real ncnn on `batch` (N, C, H, W) in its own process (the wheel is not installed)."""
    inputs, outputs = work / "ncnn-in.npy", work / "ncnn-out.npy"
    np.save(inputs, batch.astype(np.float32))
    env = {**os.environ, "PYTHONPATH": str(site)}
    args = [str(param), str(weights), str(inputs), str(outputs), input_blob, output_blob]
    result = subprocess.run([sys.executable, "-c", _RUNNER, *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return np.load(outputs)


def errors_255(reference: np.ndarray, ours: np.ndarray) -> dict[str, float]:
    """Max and mean absolute error in 0-255 units (both clipped to [0, 1] as the processor does) and
    the PSNR of the 8-bit images the processor would hand on."""
    a, b = np.clip(reference, 0, 1) * 255.0, np.clip(ours, 0, 1) * 255.0
    diff = np.abs(a - b)
    mse = float(np.mean((np.round(a) - np.round(b)) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    return {"max": float(diff.max()), "mean": float(diff.mean()), "psnr": psnr}


def dumps(stats: dict[str, float]) -> str:
    return json.dumps({k: round(v, 4) for k, v in stats.items()})
