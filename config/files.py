"""Content hashes and atomic writes, shared by every stage.

Why here: every stage writes content-addressed artifacts and must never leave a half-written file
(a killed run, a full disk); this base package is the one all stages already depend on.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from config.errors import OutputPathError

# libyaml's parser when PyYAML was built with it (the wheels are): ~10x faster than the pure-Python
# one, which cost a render ~0.25 s of CPU for the settings, model lock, avatar and licence files.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load` with libyaml: the same safe subset (plain data only), same errors."""
    return yaml.load(text, Loader=_SAFE_LOADER)


def content_hash(value: Any, length: int = 16) -> str:
    """Stable short hash of a JSON-serializable value (dict keys sorted)."""
    encoded = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:length]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on a directory while a group of files in it is replaced.

    Why: a render publishes a video, its captions and its report as one unit; two renders to the
    same name must not interleave (one's report beside the other's video). The lock is on the
    directory itself (flock), so nothing is left behind, and it is released if the process dies."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def check_output_target(target: Path) -> None:
    """Refuse, before any work, an output that could not be published: one line naming the user's
    path. Creates the folder if missing (as publishing would) and proves it accepts new files."""
    target = Path(target)
    if target.is_dir():
        example = target / "video.mp4"
        raise OutputPathError(f"the output {target} is an existing folder; give a file name, e.g. {example}")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".probe", dir=parent)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        message = f"cannot write into {parent} ({reason}); choose a writable folder for {target.name}"
        raise OutputPathError(message) from exc
    if target.exists() or target.is_symlink():
        if not target.is_file():
            message = f"the output {target} exists and is not a regular file; remove it or choose another name"
            raise OutputPathError(message)
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_APPEND))
        except PermissionError as exc:
            if exc.errno == errno.EPERM:  # immutable or append-only (chattr): a rename over it fails too
                message = f"the output {target} cannot be replaced (immutable); `chattr -i` it or choose another name"
                raise OutputPathError(message) from exc
            # EACCES: a read-only file in a writable folder is still replaced by the rename
