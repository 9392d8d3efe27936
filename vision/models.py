"""Model registry: every model file is pinned by sha256.

Why pin: models are provisioned offline from registry packages or placed by hand; a truncated copy or
a different conversion would silently change results, so loading refuses any file whose hash differs.
A pin covers one file, so an ONNX file that keeps tensors outside itself (external data, read by
onnxruntime from a side file) is refused too, at `dhf models add`, `dhf models verify` and at load.

Two lock files: `config/models.lock.yaml` (the face-analysis models `scripts/setup` provisions from
registry packages) and `<model dir>/placed.lock.yaml` (neural-processor models the user placed with
`dhf models add FILE --as NAME`; the factory never downloads them). A placed model is accepted only
if its inputs and outputs match the format its processor runs (`ModelFormat`), and its licence is
recorded with it: a non-commercial one is refused for commercial purposes (governance/model_licences.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import mmap
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from config import CONFIG_DIR
from config.files import atomic_path, directory_lock, file_sha256, load_yaml, write_text_atomic
from vision.errors import ModelError
from vision.onnx_external import ExternalTensor, ProtobufError, external_tensors

LOCK_FILE = CONFIG_DIR / "models.lock.yaml"
PLACED_LOCK = "placed.lock.yaml"
SETUP_HINT = "run scripts/setup (or `dhf models provision`) to provision it"
INLINE_HINT = "save it with all weights inside the .onnx (onnx.save(model, path, save_as_external_data=False))"


@dataclass(frozen=True)
class ModelSpec:
    """One pinned model: the file name in the model directory and its expected sha256."""

    name: str
    filename: str
    sha256: str
    source: str
    license: str
    commercial: bool = True  # may be used for a purpose or channel the config marks commercial
    placed: bool = False  # placed by the user (`dhf models add`), not provisioned by scripts/setup
    optional: bool = False  # provisioned only when asked for by name (`dhf models provision NAME`): large

    @property
    def fix(self) -> str:
        if self.placed:
            return f"place the file again with `dhf models add FILE --as {self.name}`"
        if self.optional:
            return f"run `dhf models provision {self.name}` to provision it (opt-in: a large download)"
        return SETUP_HINT


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model format. `name` None: any name (matched by position);
    a `None` dimension: any size; a model's own dynamic dimension matches any size."""

    name: str | None
    shape: tuple[int | None, ...]
    dtypes: tuple[str, ...] = ("float32",)


@dataclass(frozen=True)
class ModelFormat:
    """A model a processor can run: what `dhf models add FILE --as NAME` checks the file against."""

    name: str  # the registry name, e.g. "gfpgan_1.4"
    filename: str
    license: str
    commercial: bool
    source: str  # where the user fetches the file by hand (the factory never downloads)
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    sha256: str = ""  # the published file's sha256 when known: any other file is refused
    extra: tuple[tuple[str, object], ...] = ()  # format facts the processor reads (template, size, scale)

    def fact(self, key: str, default: object = None) -> object:
        return dict(self.extra).get(key, default)


FACEFUSION_ASSETS = "https://github.com/facefusion/facefusion-assets/releases/download/models-3.0.0/"


def _spec(name: str, data: dict, placed: bool) -> ModelSpec:
    source = data.get("source") or ""
    return ModelSpec(
        name=name,
        filename=data["file"],
        sha256=data["sha256"],
        source=str(source.get("package", "")) if isinstance(source, dict) else str(source),
        license=data.get("license", ""),
        commercial=bool(data.get("commercial", True)),
        placed=placed,
        optional=bool(data.get("optional", False)),
    )


def load_lock(lock_file: Path = LOCK_FILE, placed: bool = False) -> dict[str, ModelSpec]:
    if not lock_file.is_file():
        return {}
    try:
        data = load_yaml(lock_file.read_text(encoding="utf-8")) or {}
        return {name: _spec(name, spec, placed) for name, spec in (data.get("models") or {}).items()}
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(
            f"{lock_file} is not a valid model lock file ({exc}); restore it or re-add the models"
        ) from exc


class ModelRegistry:
    """Resolves model names to verified paths in one model directory."""

    def __init__(self, model_dir: Path, lock_file: Path = LOCK_FILE) -> None:
        self.model_dir = Path(model_dir)
        provisioned = load_lock(lock_file)
        placed = load_lock(self.model_dir / PLACED_LOCK, placed=True)
        self.specs = {**placed, **provisioned}  # a placed file can never shadow a provisioned model

    def spec(self, name: str) -> ModelSpec:
        if name not in self.specs:
            raise ModelError(
                f"model '{name}' is not placed in {self.model_dir}; get the file and run "
                f"`dhf models add FILE --as {name}` (known: {sorted(self.specs)})"
            )
        return self.specs[name]

    def path(self, name: str) -> Path:
        """Path of a verified model file; raises ModelError naming the file and the fix otherwise.

        Verified: its sha256 is the pinned one and, for an ONNX file, none of its tensors is external
        data (a side file the pin does not cover: onnxruntime then reads nothing but the pinned bytes)."""
        spec = self.spec(name)
        path = self.model_dir / spec.filename
        if not path.is_file():
            raise ModelError(f"model file missing: {path}; {spec.fix}")
        facts = inspect_model_file(path)
        if facts.sha256 != spec.sha256:
            raise ModelError(
                f"model file {path} has sha256 {facts.sha256[:12]}…, expected {spec.sha256[:12]}… "
                f"(corrupt or replaced); {spec.fix}"
            )
        facts.check_self_contained(path, f"{INLINE_HINT} and {spec.fix}" if spec.placed else spec.fix)
        return path

    def hashes(self) -> dict[str, str]:
        """name → pinned sha256, for reports and the audit log."""
        return {name: spec.sha256 for name, spec in self.specs.items()}


@dataclass(frozen=True)
class ModelFileFacts:
    """What one read of a model file tells: its sha256, and for an ONNX file the tensors it keeps
    outside itself (external data) or why its graph could not be read."""

    sha256: str
    external: tuple[ExternalTensor, ...] = ()
    unreadable: str = ""

    def check_self_contained(self, path: Path, fix: str) -> None:
        """Refuse a file onnxruntime would complete from side files (one line naming them and `fix`)."""
        if self.unreadable:
            raise ModelError(f"{path} is not a loadable ONNX model ({self.unreadable}); check the file")
        if self.external:
            locations = sorted({tensor.location or "?" for tensor in self.external})
            shown = ", ".join(f"'{location}'" for location in locations[:3]) + (" …" if len(locations) > 3 else "")
            raise ModelError(
                f"{path} keeps {len(self.external)} tensor(s) outside the .onnx as external data ({shown}), "
                f"which its sha256 pin does not cover; {fix}"
            )


def inspect_model_file(path: Path) -> ModelFileFacts:
    """Hash a model file and, if it is an `.onnx`, find its external-data tensors, from one read of
    it (mapped, not copied: the neural voice's model is 90 MB).

    Why memoised by the file's identity (device, inode, size, modification and change times): a server
    validates every request, and hashing the pinned models each time was ~90 % of a POST's 0.15 s
    (cProfile). Replacing a file (a rename) or writing into it changes the identity and hashes it again."""
    status = os.stat(path)
    identity = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
    return _inspected(str(Path(path).resolve()), identity)


@functools.lru_cache(maxsize=256)
def _inspected(path: str, identity: tuple[int, ...]) -> ModelFileFacts:
    """`inspect_model_file`'s read, once per file identity (a pure function of the file's bytes)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return ModelFileFacts(hashlib.sha256(b"").hexdigest())
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            sha256 = hashlib.sha256(data).hexdigest()
            if Path(path).suffix.lower() != ".onnx":
                return ModelFileFacts(sha256)
            try:
                return ModelFileFacts(sha256, tuple(external_tensors(data)))
            except ProtobufError as exc:
                return ModelFileFacts(sha256, unreadable=str(exc))


def model_io(path: Path) -> tuple[list[tuple[str, list, str]], list[tuple[str, list, str]]]:
    """(name, shape, dtype) of a model file's inputs and outputs, read with onnxruntime on the CPU
    without optimizing the graph (a large model opens in a fraction of a second)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path} is not a loadable ONNX model ({first}); check the file") from exc

    def describe(values) -> list[tuple[str, list, str]]:
        return [(v.name, list(v.shape), v.type.removeprefix("tensor(").removesuffix(")")) for v in values]

    return describe(session.get_inputs()), describe(session.get_outputs())


DTYPE_NAMES = {"float": "float32", "double": "float64", "float16": "float16", "int64": "int64"}


def _shape_text(shape: list | tuple) -> str:
    return "[" + ",".join("?" if not isinstance(d, int) else str(d) for d in shape) + "]"


def check_format(path: Path, fmt: ModelFormat) -> None:
    """Refuse a file whose inputs/outputs are not those of `fmt` (one line naming the tensor)."""
    inputs, outputs = model_io(path)
    for kind, expected, actual in (("input", fmt.inputs, inputs), ("output", fmt.outputs, outputs)):
        if len(actual) < len(expected):
            raise ModelError(
                f"{path.name} has {len(actual)} {kind}s, a {fmt.name} model has {len(expected)}; "
                f"this is not a {fmt.name} model"
            )
        by_name = {name: (shape, dtype) for name, shape, dtype in actual}
        for position, spec in enumerate(expected):
            if spec.name is not None:
                if spec.name not in by_name:
                    raise ModelError(
                        f"{path.name} has no {kind} '{spec.name}' (it has {', '.join(by_name)}); "
                        f"this is not a {fmt.name} model"
                    )
                shape, dtype = by_name[spec.name]
            else:
                _, shape, dtype = actual[position]
            label = spec.name or f"#{position}"
            dtype = DTYPE_NAMES.get(dtype, dtype)
            if dtype not in spec.dtypes:
                raise ModelError(
                    f"{path.name}: {kind} '{label}' is {dtype}, a {fmt.name} model takes {'/'.join(spec.dtypes)}; "
                    f"this is not a {fmt.name} model"
                )
            fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
            matches = len(fixed) == len(spec.shape) and all(
                want is None or have is None or want == have for want, have in zip(spec.shape, fixed, strict=True)
            )
            if not matches:
                raise ModelError(
                    f"{path.name}: {kind} '{label}' has shape {_shape_text(shape)}, a {fmt.name} model has "
                    f"{_shape_text(spec.shape)}; this is not a {fmt.name} model"
                )


def add_model(
    source: Path, fmt: ModelFormat, model_dir: Path, expected_sha256: str | None = None
) -> tuple[Path, str, bool]:
    """Copy a user's model file into the model directory under its format's file name, pin its
    sha256 and record its licence; returns (path, sha256, replaced). Checked before anything is
    written: the file must hold all its weights (no external data: the pin covers one file), its I/O
    must match the format, and the hash the user expects (`--sha256`, from where they downloaded it)
    or the format's published one must match. The copy is made under a temporary name beside the
    working model and opened with onnxruntime before it is renamed over it: until then the model
    that was there stays in place, whole."""
    source = Path(source)
    if not source.is_file():
        raise ModelError(f"no model file at {source}; give the path of the downloaded .onnx file")
    facts = inspect_model_file(source)
    facts.check_self_contained(source, f"{INLINE_HINT} and add it again")
    check_format(source, fmt)
    sha256 = facts.sha256
    expected = (expected_sha256 or fmt.sha256).strip().lower()
    if expected and sha256 != expected:
        raise ModelError(
            f"{source.name} has sha256 {sha256[:12]}…, expected {expected[:12]}… (a truncated or different "
            f"download); download it again from {fmt.source}"
        )
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    if fmt.name in load_lock(LOCK_FILE):
        raise ModelError(f"'{fmt.name}' is a provisioned model; run `dhf models provision {fmt.name}` instead")
    target = model_dir / fmt.filename
    lock_path = model_dir / PLACED_LOCK
    with directory_lock(model_dir):  # two `dhf models add` at once must not drop each other's entry
        if not (target.is_file() and file_sha256(target) == sha256):
            # Copied beside the target and renamed: a crash never leaves a half-copied model under its name.
            with atomic_path(target) as temporary:
                shutil.copyfile(source, temporary)
                if inspect_model_file(temporary) != facts:
                    raise ModelError(f"copying {source} changed its content (disk error?); try again")
                check_format(temporary, fmt)  # the copy itself opens, before it replaces the working model
        placed = load_yaml(lock_path.read_text(encoding="utf-8")) if lock_path.is_file() else None
        models = dict((placed or {}).get("models") or {})
        replaced = fmt.name in models and models[fmt.name].get("sha256") != sha256
        models[fmt.name] = {
            "file": fmt.filename,
            "sha256": sha256,
            "license": fmt.license,
            "commercial": fmt.commercial,
            "source": fmt.source,
            "added": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "from": str(source.resolve()),
        }
        header = "# Models placed with `dhf models add FILE --as NAME`: pinned by sha256, licence recorded.\n"
        write_text_atomic(lock_path, header + yaml.safe_dump({"models": models}, sort_keys=True, allow_unicode=True))
    return target, sha256, replaced
