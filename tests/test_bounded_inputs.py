"""Models and images with bounded, pinned inputs (issue 25, item 6).

Models: a model file is accepted only if all its weights are inside it (no external data: the sha256
pin covers one file), at `dhf models add`, at `dhf models verify` and at load; a replaced model stays
in place until its copy has been opened by onnxruntime. Images (avatar photos, scene logos and
backgrounds): refused above `images.max_pixels` from the file's header, before anything is decoded.
The models are tiny ONNX files in a real processor format (tests/tiny_models.py), run by onnxruntime;
the images are real PNG/JPEG/WebP/BMP files from OpenCV's encoders, and hand-written PNGs whose
rows are real (zlib-compressed) so the old code decoded them in full.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import tiny_models as tiny
import yaml
from conftest import REPO, assert_refused, own_home, provisioned_models, run_dhf
from licences import write_license
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import _get_all_tensors, set_external_data, uses_external_data

from fusion.processors.catalog import MODEL_FORMATS
from media.images import read_header
from vision import models as model_files
from vision.errors import ModelError
from vision.models import PLACED_LOCK, ModelRegistry, add_model
from vision.onnx_external import ProtobufError, external_tensors

GFPGAN = MODEL_FORMATS["gfpgan_1.4"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def with_external_data(model: Path, target: Path, location: str = "weights.bin") -> Path:
    """`model` saved the way `onnx.save(..., save_as_external_data=True)` writes big models: the
    tensors in `location`, a file beside `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx.load(str(model)), str(target), save_as_external_data=True, location=location, size_threshold=0)
    return target


def run_model(path: Path) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": np.zeros((1, 3, 512, 512), np.float32)})[0]


# --- models: external data ------------------------------------------------------------------------------


def test_external_tensors_are_found_wherever_onnx_puts_them(tmp_path):
    """Initializers, a Constant node's tensor inside an If's branch, and a sparse initializer: the
    reader finds exactly the tensors onnx itself marks external, and none in the provisioned models."""
    dense = numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(8, 8), "dense")
    inner = numpy_helper.from_array(np.ones((16,), np.float32), "inner")
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["c"], value=inner)],
        "then",
        [],
        [helper.make_tensor_value_info("c", 1, [16])],
    )
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.ones((40,), np.float32), "sparse"),
        numpy_helper.from_array(np.arange(40, dtype=np.int64), "sparse_indices"),
        [1000],
    )
    graph = helper.make_graph(
        [
            helper.make_node("If", ["flag"], ["c"], then_branch=branch, else_branch=branch),
            helper.make_node("MatMul", ["x", "dense"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("flag", TensorProto.BOOL, []), helper.make_tensor_value_info("x", 1, [1, 8])],
        [helper.make_tensor_value_info("y", 1, [1, 8]), helper.make_tensor_value_info("c", 1, [16])],
        [dense],
        sparse_initializer=[sparse],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    inline = tmp_path / "inline.onnx"
    onnx.save(model, str(inline))
    assert external_tensors(inline.read_bytes()) == []
    outside = tmp_path / "outside.onnx"
    onnx.save(model, str(outside), save_as_external_data=True, location="side.bin", size_threshold=0)
    marked = {
        t.name for t in _get_all_tensors(onnx.load(str(outside), load_external_data=False)) if uses_external_data(t)
    }
    found = external_tensors(outside.read_bytes())
    assert marked == {"dense"} and [(t.name, t.location) for t in found] == [("dense", "side.bin")]
    # onnx.save leaves a subgraph's constant and a sparse tensor inside; a hand-made file need not.
    then_constant = model.graph.node[0].attribute[0].g.node[0].attribute[0].t
    for tensor, location in ((then_constant, "inner.bin"), (model.graph.sparse_initializer[0].values, "sparse.bin")):
        set_external_data(tensor, location)
        tensor.data_location = TensorProto.EXTERNAL
    found = external_tensors(model.SerializeToString())
    expected = {("dense", "side.bin"), ("inner", "inner.bin"), ("sparse", "sparse.bin")}  # onnx.save marked `model`
    assert {(t.name, t.location) for t in found} == expected
    for path in provisioned_models().glob("*.onnx"):
        assert external_tensors(path.read_bytes()) == [], path
    with pytest.raises(ProtobufError):
        external_tensors(outside.read_bytes()[:-3])


def test_models_add_refuses_external_data_and_keeps_the_working_model(tmp_path):
    home = tmp_path / "home"
    working = tiny.face_enhancer(tmp_path / "dl" / "gfpgan.onnx")
    result = run_dhf(["models", "add", str(working), "--as", "gfpgan_1.4"], home, timeout=120)
    assert result.returncode == 0, result.stderr
    models = home / "models"
    before = {p.name: sha256(p) for p in models.iterdir()}
    # A model whose weights onnx saved beside it: onnxruntime loads it (the side file is there) ...
    split = with_external_data(tiny.face_enhancer(tmp_path / "dl" / "c.onnx", "constant", (0.5, 0, 0)),
                               tmp_path / "split" / "gfpgan.onnx")  # fmt: skip
    assert np.allclose(run_model(split)[0, :, 0, 0], [0.5, 0, 0])
    # ... but `models add` would copy only the .onnx: refused, the working model left as it was.
    result = run_dhf(["models", "add", str(split), "--as", "gfpgan_1.4"], home, timeout=120)
    assert_refused(result, "outside the .onnx as external data ('weights.bin')", tmp_path / "never.mp4")
    assert "save_as_external_data=False" in result.stderr and str(split) in result.stderr
    assert {p.name: sha256(p) for p in models.iterdir()} == before
    registry = ModelRegistry(models, lock_file=tmp_path / "none.yaml")
    assert np.allclose(run_model(registry.path("gfpgan_1.4")), 0)  # still the identity model


def test_a_pinned_model_with_external_data_fails_verify_and_load(tmp_path):
    """What the old `models add` left behind: the .onnx pinned, its side file beside it and unpinned.
    A different side file changes what the model computes, so the model is refused, not run."""
    home = tmp_path / "home"
    models = home / "models"
    models.mkdir(parents=True)
    for provisioned in provisioned_models().iterdir():  # so that only the placed model can fail verify
        (models / provisioned.name).symlink_to(provisioned)
    model = with_external_data(tiny.face_enhancer(tmp_path / "dl" / "c.onnx", "constant", (0.5, 0, 0)),
                               models / GFPGAN.filename)  # fmt: skip
    entry = {"file": GFPGAN.filename, "sha256": sha256(model), "license": GFPGAN.license, "commercial": True}
    (models / PLACED_LOCK).write_text(yaml.safe_dump({"models": {"gfpgan_1.4": entry}}))
    other = with_external_data(tiny.face_enhancer(tmp_path / "dl" / "d.onnx", "constant", (-0.5, 0, 0)),
                               tmp_path / "other" / "gfpgan.onnx")  # fmt: skip
    shutil.copyfile(other.parent / "weights.bin", models / "weights.bin")  # the pinned .onnx is untouched
    assert sha256(model) == entry["sha256"]
    assert np.allclose(run_model(model)[0, :, 0, 0], [-0.5, 0, 0])  # what a render would have used
    result = run_dhf(["models", "verify"], home, timeout=120)
    assert_refused(result, f"{model} keeps 2 tensor(s) outside the .onnx as external data", tmp_path / "x.mp4")
    assert "dhf models add FILE --as gfpgan_1.4" in result.stderr
    with pytest.raises(ModelError, match=r"external data \('weights.bin'\).*save_as_external_data=False"):
        ModelRegistry(models, lock_file=tmp_path / "none.yaml").path("gfpgan_1.4")


def test_a_replaced_model_stays_until_its_copy_opens(tmp_path, monkeypatch):
    """`models add` opens the copy itself with onnxruntime while the working model is still the old
    one; only then is the copy renamed over it."""
    models = tmp_path / "models"
    old_target, old_sha, _ = add_model(tiny.face_enhancer(tmp_path / "dl" / "a.onnx"), GFPGAN, models)
    new = tiny.face_enhancer(tmp_path / "dl" / "b.onnx", "negate")
    opened: list[tuple[Path, str]] = []
    real = model_files.model_io

    def spy(path: Path):
        opened.append((Path(path), sha256(old_target)))
        return real(path)

    monkeypatch.setattr(model_files, "model_io", spy)
    target, new_sha, replaced = add_model(new, GFPGAN, models)
    copies = [(path, working) for path, working in opened if path.parent == models]
    assert len(copies) == 1 and copies[0][0] != target and copies[0][0].name.startswith(".")
    assert copies[0][1] == old_sha  # the old model was still in place when the copy was opened
    assert replaced and sha256(target) == new_sha != old_sha and not copies[0][0].exists()
    assert sorted(p.name for p in models.iterdir()) == sorted([GFPGAN.filename, PLACED_LOCK])


# --- images: bounded before decoding -------------------------------------------------------------------


def write_png(path: Path, width: int, height: int) -> Path:
    """A real greyscale PNG of `width` × `height` black pixels, written row by row (a few kB even for
    400 megapixels: what a hostile logo looks like)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(1)
    rows = b"\0" * (width + 1) * 100
    data = b"".join(compressor.compress(rows) for _ in range(height // 100)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def jpeg_with_metadata(image: np.ndarray) -> bytes:
    """A JPEG whose frame header comes after 70 kB of APP segments (EXIF, ICC profiles do this)."""
    data = cv2.imencode(".jpg", image)[1].tobytes()
    app = b"".join(b"\xff\xe2" + struct.pack(">H", 35002) + bytes(35000) for _ in range(2))
    return data[:2] + app + data[2:]


@pytest.mark.parametrize(
    ("ext", "params", "channels"),
    [
        (".png", [], 3),
        (".png", [], 4),
        (".png", [], 1),
        (".jpg", [], 3),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], 3),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80], 3),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101], 4),  # lossless (VP8L)
        (".bmp", [], 3),
    ],
)
def test_the_header_gives_the_size_opencv_decodes(ext, params, channels):
    rng = np.random.default_rng(3)
    for width, height in ((37, 23), (640, 1131)):
        image = rng.integers(0, 255, (height, width, channels), np.uint8).squeeze()
        data = cv2.imencode(ext, image, params)[1].tobytes()
        header = read_header(data)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert header is not None and (header.width, header.height) == (decoded.shape[1], decoded.shape[0])
    late = jpeg_with_metadata(np.zeros((90, 120, 3), np.uint8))
    assert read_header(late) is not None and (read_header(late).width, read_header(late).height) == (120, 90)
    assert cv2.imdecode(np.frombuffer(late, np.uint8), cv2.IMREAD_COLOR).shape == (90, 120, 3)
    tiff = cv2.imencode(".tiff", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    assert read_header(tiff) is None and read_header(b"\x89PNG\r\n\x1a\n garbage") is None  # not bounded: refused


def peak_memory_mb(code: str) -> tuple[float, str]:
    """Peak resident memory (MB) of a fresh interpreter running `code` in the repository, and its stderr.

    VmHWM (this process image's high-water mark), not ru_maxrss: Linux carries ru_maxrss across exec,
    so a child forked from a pytest process of 1.3 GB reported 1.3 GB whatever it did itself."""
    script = f"import sys\ntry:\n    {code}\nexcept Exception as exc:\n    print(exc, file=sys.stderr)\n"
    script += "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    script += "print(int(hwm.split()[1]) / 1024)\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return float(result.stdout.split()[-1]), result.stderr.strip()


def test_a_huge_logo_is_refused_from_its_header_before_any_compute(dhf_home, tmp_path):
    logo = write_png(tmp_path / "logo.png", 20000, 20000)
    assert logo.stat().st_size < 4_000_000  # a small file announcing 400 megapixels
    config = tmp_path / "huge.yaml"
    scene = {"width": 1920, "height": 1080, "logo": {"image": str(logo), "corner": "top-left", "height": 0.07}}
    config.write_text(yaml.safe_dump({"scenes": {"huge": scene}}))
    out = tmp_path / "huge.mp4"
    args = ["--config", str(config), "render", "Hi.", "--avatar", "sample", "--lang", "de", "-o", str(out)]
    result = run_dhf([*args, "--scene", "huge"], dhf_home)
    assert_refused(result, "20000×20000 (400.0 megapixels), above the limit of 40.0 megapixels", out)
    assert "images.max_pixels" in result.stderr and "e.g. to 6324×6324" in result.stderr and str(logo) in result.stderr
    # Measured: reading it stays at an interpreter's size (the old code decoded 1.6 GB of BGRA).
    code = f"from fusion.processors.scene_layout import read_asset; read_asset({str(logo)!r}, 'logo', 40_000_000)"
    peak, error = peak_memory_mb(code)
    assert "400.0 megapixels" in error and peak < 400, peak


def test_a_huge_background_is_refused_from_its_header(dhf_home, tmp_path):
    background = write_png(tmp_path / "background.png", 9000, 9000)
    config = tmp_path / "huge.yaml"
    scene = {"width": 1920, "height": 1080, "background": {"kind": "image", "image": str(background)}}
    config.write_text(yaml.safe_dump({"scenes": {"wide": scene}}))
    out = tmp_path / "wide.mp4"
    args = ["--config", str(config), "render", "Hi.", "--avatar", "sample", "--lang", "de", "-o", str(out)]
    result = run_dhf([*args, "--scene", "wide"], dhf_home)
    assert_refused(result, f"the scene's background image {background} is 9000×9000 (81.0 megapixels)", out)


def test_a_huge_photo_is_refused_at_enrollment_from_its_header(dhf_home, tmp_path):
    home = own_home(tmp_path / "home")
    photo = write_png(tmp_path / "photo.png", 9000, 9000)
    args = ["avatar", "add", str(photo), "--id", "huge", "--license", str(write_license(tmp_path, "huge"))]
    result = run_dhf(args, home)
    assert_refused(result, "9000×9000 (81.0 megapixels), above the limit of 40.0 megapixels", tmp_path / "x.mp4")
    assert not (home / "avatars" / "huge").exists()
    # The same photo under a limit it fits: decoded, then refused for what it shows (no face), not its size.
    config = tmp_path / "roomy.yaml"
    config.write_text(yaml.safe_dump({"images": {"max_pixels": 90_000_000}}))
    result = run_dhf(["--config", str(config), *args], home)
    assert_refused(result, "no face found", tmp_path / "x.mp4")
