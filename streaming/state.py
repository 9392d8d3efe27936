"""The stream folder: what a rendering stream writes and what the API serves from it.

Why a folder and a state file rather than in-memory objects: a stream renders in the API process or on a
work-pool worker (which shares the storage, like chunked renders do), and the API relays it the same way
in both cases: it reads `state.json` and serves only the files the released playlists name. A segment
the quality gate has not passed is never named, so it cannot be fetched, even by guessing its name.

Layout of `<streams root>/<stream id>/`:
    state.json        StreamState, rewritten atomically at every change
    master.m3u8       the HLS multivariant playlist (one video rendition + the subtitles rendition)
    video.m3u8        the released media playlist (EVENT while rendering, VOD with ENDLIST once ended)
    subs.m3u8         the released WebVTT subtitle playlist, one .vtt per released video segment
    captions.vtt      every released cue so far in one WebVTT file (players without HLS subtitles)
    enc/              the encoder's own files: init segments, .m4s segments, its private playlist;
                      served only when a released playlist names them
    answer.mp4, answer.srt, answer.vtt, answer.report.json   the published answer, once finished
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from config.files import write_text_atomic

StreamStatus = Literal["starting", "streaming", "finished", "fallback", "failed"]
ENDED: frozenset[str] = frozenset({"finished", "fallback", "failed"})
STATE_FILE = "state.json"
MASTER_PLAYLIST = "master.m3u8"
VIDEO_PLAYLIST = "video.m3u8"
SUBTITLE_PLAYLIST = "subs.m3u8"
CAPTIONS_FILE = "captions.vtt"
ENCODER_FOLDER = "enc"
ANSWER_STEM = "answer"


@dataclass(frozen=True)
class StreamState:
    """Where a stream stands. `status`:
    - starting: accepted, nothing released yet;
    - streaming: segments are being released;
    - finished: every segment released in the normal mode, the answer published;
    - fallback: a segment failed the gate; from it on the answer was rendered in `mode`
      (reduced_motion, else still), released after a discontinuity, and published;
    - failed: the stream stopped (`message` says why and what to do); the playlist ended at the last
      released segment, nothing after it was released.
    `message` is one line whenever the status is fallback or failed."""

    stream_id: str
    status: StreamStatus = "starting"
    message: str = ""
    created: float = field(default_factory=time.time)  # unix time the request arrived
    first_release_s: float | None = None  # seconds from `created` to the first released segment
    released_segments: int = 0
    released_seconds: float = 0.0
    rendered_frames: int = 0
    total_frames: int | None = None  # known once the last part is spoken
    mode: str = "normal"  # normal | reduced_motion | still: the mode of the segments being released now
    content_id: str = ""
    failure: dict[str, Any] | None = None  # the gate's finding: segment, frames, monitors and scores
    outputs: dict[str, str] = field(default_factory=dict)  # mp4, srt, vtt, report: paths once published
    ended_at: float | None = None

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def but(self, **changes: Any) -> StreamState:
        return replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """The state as the API shows it (paths stay on the server)."""
        data = asdict(self)
        data["outputs"] = sorted(self.outputs)
        data["ended"] = self.ended
        return data


def write_state(folder: Path, state: StreamState) -> None:
    write_text_atomic(Path(folder) / STATE_FILE, json.dumps(asdict(state), indent=1, sort_keys=True))


def read_state(folder: Path) -> StreamState | None:
    """The stream's state, or None when the folder holds no (readable) state yet."""
    try:
        data = json.loads((Path(folder) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return StreamState(**data)
