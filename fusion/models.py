"""Model registry: every model file is pinned by sha256 in `config/models.lock.yaml`.

Why pin: models are provisioned offline from registry packages or placed by hand; a truncated copy or
a different conversion would silently change results, so loading refuses any file whose hash differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from config import CONFIG_DIR
from config.files import file_sha256
from fusion.errors import ModelError

LOCK_FILE = CONFIG_DIR / "models.lock.yaml"
SETUP_HINT = "run scripts/setup (or `dhf models provision`) to provision it"


@dataclass(frozen=True)
class ModelSpec:
    """One pinned model: the file name in the model directory and its expected sha256."""

    name: str
    filename: str
    sha256: str
    source: str
    license: str


def load_lock(lock_file: Path = LOCK_FILE) -> dict[str, ModelSpec]:
    data = yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}
    return {
        name: ModelSpec(
            name=name,
            filename=spec["file"],
            sha256=spec["sha256"],
            source=str((spec.get("source") or {}).get("package", "")),
            license=spec.get("license", ""),
        )
        for name, spec in (data.get("models") or {}).items()
    }


class ModelRegistry:
    """Resolves model names to verified paths in one model directory."""

    def __init__(self, model_dir: Path, lock_file: Path = LOCK_FILE) -> None:
        self.model_dir = Path(model_dir)
        self.specs = load_lock(lock_file)

    def spec(self, name: str) -> ModelSpec:
        if name not in self.specs:
            raise ModelError(f"model '{name}' is not in {LOCK_FILE.name}; known: {sorted(self.specs)}")
        return self.specs[name]

    def path(self, name: str) -> Path:
        """Path of a verified model file; raises ModelError naming the file and the fix otherwise."""
        spec = self.spec(name)
        path = self.model_dir / spec.filename
        if not path.is_file():
            raise ModelError(f"model file missing: {path}; {SETUP_HINT}")
        actual = file_sha256(path)
        if actual != spec.sha256:
            raise ModelError(
                f"model file {path} has sha256 {actual[:12]}…, expected {spec.sha256[:12]}… "
                f"(corrupt or replaced); delete it and {SETUP_HINT}"
            )
        return path

    def hashes(self) -> dict[str, str]:
        """name → pinned sha256, for reports and the audit log."""
        return {name: spec.sha256 for name, spec in self.specs.items()}
