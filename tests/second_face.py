"""A second test face that is not the sample portrait (issue 26): Grace Hopper's 1984 US Navy portrait
(public domain, a work of the US federal government), shipped inside the matplotlib wheel as
`mpl-data/sample_data/grace_hopper.jpg` (512×600 colour).

Why this one: the sample avatar *is* scikit-image's `astronaut.png` (Eileen Collins), so that file
is no second face. matplotlib is only downloaded (`pip download --no-deps`, never installed), the
member is pinned by sha256 and cached under the model directory's `test-data/`, as the face models
are provisioned (vision/provision.py); a changed file is refused.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from config.files import file_sha256
from vision.provision import _download, _member

PACKAGE = "matplotlib==3.9.2"
MEMBER = "matplotlib/mpl-data/sample_data/grace_hopper.jpg"
SHA256 = "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"


def second_face(model_dir: Path) -> Path:
    """The portrait's path, provisioned once (offline afterwards) and checked against its sha256."""
    target = Path(model_dir) / "test-data" / "grace_hopper.jpg"
    if target.is_file() and file_sha256(target) == SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    archive = _download(PACKAGE, Path(model_dir) / "wheels")
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".jpg", delete=False) as scratch:
        scratch.write(_member(archive, MEMBER))
    if file_sha256(Path(scratch.name)) != SHA256:
        Path(scratch.name).unlink()
        raise RuntimeError(f"{MEMBER} in {archive.name} does not match its pinned sha256; refusing it")
    Path(scratch.name).replace(target)  # atomic: a half-written portrait is never picked up
    return target
