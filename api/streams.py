"""The API's streamed answers: start each on its own thread, follow it, relay its released files, cancel
it, and delete its folder once it has been kept long enough.

Why a thread per stream and not the job runner's pool: a stream must start now or be refused now
(admission control, streaming/admission.py); queueing it behind file renders would stall it in the
viewer's face. Why the folder is the interface (streaming/state.py): the stream renders in this
process (`run_stream` with the server's warm pool) or, with `api.executor: pool`, as a flow run on a
work-pool worker (flows/stream_flow.py) writing into the same shared folder; either way this module
reads `state.json` and serves only what the released playlists name.

Ownership and playback live beside the stream: `owner.json` (the key that asked, the token's expiry)
makes `GET /v1/streams/<id>` work after a restart; streams a previous process of this server left
running are marked failed when the server starts (nothing renders them any more).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from api.errors import ApiError
from config import Settings
from config.errors import DhfError
from config.files import write_text_atomic
from pipeline.request import ValidatedRequest
from streaming.admission import Admission, Decision, estimated_seconds
from streaming.state import (
    CAPTIONS_FILE,
    MASTER_PLAYLIST,
    SUBTITLE_PLAYLIST,
    VIDEO_PLAYLIST,
    StreamState,
    read_state,
    write_state,
)

OWNER_FILE = "owner.json"
ANSWER_FILE = "answer.mp4"
PLAYLISTS = (MASTER_PLAYLIST, VIDEO_PLAYLIST, SUBTITLE_PLAYLIST)
FIXED_FILES = (*PLAYLISTS, CAPTIONS_FILE)  # always servable once they exist; everything else only when named
STREAM_ID = re.compile(r"^[0-9a-f]{32}$")
_MAP_URI = re.compile(r'#EXT-X-MAP:.*?URI="([^"]+)"')
ProgressHook = Callable[[StreamState], None]


class Producer(Protocol):
    """What renders a stream into its folder and returns its final state (streaming.render.run_stream
    in this process, or its flow run on the work pool). It calls `on_progress` with each new state;
    when `on_progress` raises (the stream was cancelled), it stops and lets the exception through."""

    def __call__(self, folder: Path, validated: ValidatedRequest, on_progress: ProgressHook) -> StreamState: ...


class StreamCancelledError(DhfError):
    """Raised (once) from a stream's progress hook after it was cancelled: stops the renderer where it is.
    Once only, so the renderer's own handler can still record the failed state and audit the stream's
    end through the same hook. A DhfError: its message is the state's one line as it stands."""

    code = "cancelled"


@dataclass(frozen=True)
class Owner:
    """Who asked for a stream and where it runs (owner.json)."""

    stream_id: str
    key_id: str
    created: float
    expires: int  # of the playback token
    host: str  # the server process that runs (or submitted) it: host and pid
    pid: int


def stream_root(settings: Settings) -> Path:
    return settings.paths.home / "api" / "streams"


def released_names(folder: Path) -> set[str]:
    """Every file the released playlists name (segments, init segments, subtitle segments), relative
    to the stream folder, plus the fixed names (playlists, captions). Nothing else may be served."""
    names = set(FIXED_FILES)
    for playlist in (VIDEO_PLAYLIST, SUBTITLE_PLAYLIST):
        try:
            text = (folder / playlist).read_text(encoding="utf-8")
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("#EXT-X-MAP"):
                names.update(_MAP_URI.findall(line))
            elif line and not line.startswith("#"):
                names.add(line)
    return {name for name in names if safe_name(name)}


def safe_name(name: str) -> bool:
    """A relative path inside the folder: no scheme, no absolute path, no `..`, no hidden files."""
    parts = name.split("/")
    return (
        bool(name)
        and "://" not in name
        and not name.startswith("/")
        and all(part and part not in (".", "..") and not part.startswith(".") for part in parts)
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class _Running:
    thread: threading.Thread
    cancel: threading.Event


class StreamService:
    """The streams of this API server. Thread-safe: request threads start, read and cancel streams;
    each stream's thread reports its progress here."""

    def __init__(self, settings: Settings, producer: Producer, admission: Admission | None = None) -> None:
        self.settings = settings
        self.root = stream_root(settings)
        self.producer = producer
        self.admission = admission or Admission(settings.streaming.admission, settings.video.fps)
        self.running: dict[str, _Running] = {}
        self.lock = threading.Lock()
        self.host = socket.gethostname()

    # --- starting ---------------------------------------------------------------------------------------
    def new_id(self) -> str:
        return secrets.token_hex(16)

    def folder(self, stream_id: str) -> Path:
        if not STREAM_ID.match(stream_id):
            raise ApiError(404, "not_found", f"no stream {stream_id[:40]} for this key")
        return self.root / stream_id

    def admit(self, stream_id: str, validated: ValidatedRequest) -> Decision:
        return self.admission.admit(stream_id, estimated_seconds(validated.spoken_text))

    def start(
        self, stream_id: str, validated: ValidatedRequest, key_id: str, created: float, expires: int
    ) -> StreamState:
        """Write the stream's owner and first state, then render it on its own thread (admitted already)."""
        folder = self.folder(stream_id)
        folder.mkdir(parents=True, exist_ok=True)
        owner = Owner(stream_id, key_id, created, expires, self.host, os.getpid())
        write_text_atomic(folder / OWNER_FILE, json.dumps(asdict(owner)))
        state = StreamState(stream_id, created=created)
        write_state(folder, state)
        cancel = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(stream_id, folder, validated, cancel), name=f"dhf-stream-{stream_id[:8]}",
            daemon=True,
        )  # fmt: skip
        with self.lock:
            self.running[stream_id] = _Running(thread, cancel)
        thread.start()
        return state

    def _run(self, stream_id: str, folder: Path, validated: ValidatedRequest, cancel: threading.Event) -> None:
        stopped = []

        def on_progress(state: StreamState) -> None:
            self.admission.progress(stream_id, state.rendered_frames, state.total_frames, state.first_release_s)
            if cancel.is_set() and not stopped and not state.ended:
                stopped.append(True)
                raise StreamCancelledError("cancelled by the client (DELETE /v1/streams/<id>)")

        failure = ""
        try:
            self.producer(folder, validated, on_progress)
        except StreamCancelledError as exc:
            failure = str(exc)
        except Exception as exc:  # the stream fails, the server goes on
            text = str(exc).splitlines()[0] if str(exc) else ""
            failure = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        finally:
            self.admission.finish(stream_id)
            with self.lock:
                self.running.pop(stream_id, None)
            self._end_if_open(folder, failure or "the renderer stopped without a final state")
            self.cleanup()  # off the request path: as each stream ends, older ones past keep_finished_s go

    def _end_if_open(self, folder: Path, message: str) -> None:
        """A renderer that crashed or was cancelled may leave its state open: end it as failed, so no
        player waits for segments that will never come."""
        state = read_state(folder)
        if state is not None and not state.ended:
            write_state(folder, state.but(status="failed", message=message[:300], ended_at=time.time()))

    # --- reading ----------------------------------------------------------------------------------------
    def owner(self, stream_id: str) -> Owner | None:
        try:
            return Owner(**json.loads((self.folder(stream_id) / OWNER_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def state(self, stream_id: str) -> StreamState | None:
        return read_state(self.folder(stream_id))

    def is_running(self, stream_id: str) -> bool:
        with self.lock:
            return stream_id in self.running

    def released_file(self, stream_id: str, name: str) -> Path | None:
        """The file `name` of the stream if a released playlist names it (or it is a playlist or the
        captions) and it exists; None otherwise."""
        folder = self.folder(stream_id)
        if not safe_name(name) or name not in released_names(folder):
            return None
        path = folder / name
        try:
            if not path.resolve().is_relative_to(folder.resolve()) or not path.is_file():
                return None
        except OSError:
            return None
        return path

    # --- cancelling, cleaning up -----------------------------------------------------------------------
    def cancel(self, stream_id: str) -> bool:
        """Ask a running stream to stop; False when it is not running in this process."""
        with self.lock:
            running = self.running.get(stream_id)
        if running is None:
            return False
        running.cancel.set()
        return True

    def recover(self) -> list[str]:
        """At start-up: streams a dead process of this host left open are ended as failed (nothing
        renders them), and folders kept past `streaming.keep_finished_s` are deleted."""
        ended = []
        for folder in sorted(self.root.glob("*")) if self.root.is_dir() else []:
            owner = self.owner(folder.name) if STREAM_ID.match(folder.name) else None
            state = read_state(folder)
            if owner is None or state is None or state.ended:
                continue
            if owner.host == self.host and owner.pid != os.getpid() and not _alive(owner.pid):
                self._end_if_open(folder, "the server stopped during this stream; ask again")
                ended.append(folder.name)
        self.cleanup()
        return ended

    def cleanup(self, now: float | None = None) -> list[str]:
        """Delete the folders of streams that ended more than `keep_finished_s` ago (and stray folders
        without a state, as old), never a running one."""
        now = time.time() if now is None else now
        keep = self.settings.streaming.keep_finished_s
        removed = []
        for folder in sorted(self.root.glob("*")) if self.root.is_dir() else []:
            if not folder.is_dir() or self.is_running(folder.name):
                continue
            state = read_state(folder)
            if state is not None and not state.ended:
                continue
            since = (state.ended_at or state.created) if state is not None else folder.stat().st_mtime
            if now - since > keep:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        return removed

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every running stream and give their threads a moment to end their states."""
        with self.lock:
            running = list(self.running.values())
        for item in running:
            item.cancel.set()
        deadline = time.monotonic() + timeout
        for item in running:
            item.thread.join(max(0.0, deadline - time.monotonic()))

    def public(self, stream_id: str) -> dict[str, Any]:
        state = self.state(stream_id)
        if state is None:
            raise ApiError(404, "not_found", f"no stream {stream_id} for this key")
        return state.public()
