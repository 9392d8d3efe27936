"""Render one streamed answer into its stream folder (streaming/state.py), releasing gated segments.

The order of events, and why:
1. the answer is cut into parts (streaming/parts.py); a thread speaks them one after the other, so the
   frames of part 1 are rendered and encoded while part 2 is synthesized;
2. ONE frame loop (like `pipeline.stages.render_span`): a warm engine (streaming/warm.py: label and
   watermark always in its chain, the stream's own watermark payload) makes each frame; it goes to the
   HLS encoder (media/hls.py) and to the segment gate (streaming/gate.py);
3. a segment the encoder has closed is released (named in video.m3u8 and subs.m3u8, its cues in
   captions.vtt) only once the gate scored its frames and passed them. A failing segment is never
   released: the encoder stops, and a new encoder run re-renders from that segment's first frame in
   the file render's fallback modes (reduced_motion, then still), released after a discontinuity;
   when even the still fails, the stream ends `failed` at the last released segment;
4. at the end the released segments, exactly, are joined into the answer MP4 (stream copy: the same
   frames), sealed (C2PA, tags), captioned and reported; the audit log has the stream's start and end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from config import Settings
from config.errors import DhfError
from config.files import write_text_atomic
from fusion.watermark import payload_of
from governance.audit import AuditLog, AuditRecord
from governance.provenance import new_content_id, provenance_tags, seal_init
from media.hls import EncodedSegment, HlsEncoder, HlsOptions, bandwidth_of
from phoneme.captions import build_cues
from pipeline.request import ValidatedRequest
from pipeline.review_store import review_required
from pipeline.stages import track_slice
from streaming import playlist
from streaming.canvas import stream_settings
from streaming.errors import StreamRefusedError
from streaming.gate import SegmentGate
from streaming.parts import SpokenPart, StreamMotion, speak_part, split_parts
from streaming.publish import publish_answer
from streaming.state import (
    CAPTIONS_FILE,
    ENCODER_FOLDER,
    MASTER_PLAYLIST,
    SUBTITLE_PLAYLIST,
    VIDEO_PLAYLIST,
    StreamState,
    read_state,
    write_state,
)
from streaming.warm import WarmPool

PROGRESS_EVERY = 25  # frames between progress reports (state.json, on_progress): one second of video
MODES = ("normal", "reduced_motion", "still")  # a failing segment moves the stream to the next one
FrameHook = Callable[[int, str, np.ndarray], np.ndarray]  # tests: (frame index, mode, frame) -> frame
Progress = Callable[[StreamState], None]


class Speaker:
    """Speaks the parts in order on a thread of its own; `part(i)` waits for part i (None: no more)."""

    def __init__(self, texts: list[str], validated: ValidatedRequest, settings: Settings, seed: str) -> None:
        self.texts, self.validated, self.settings = texts, validated, settings
        self.motion = StreamMotion(settings, seed)
        self.parts: list[SpokenPart] = []
        self.failure: BaseException | None = None
        self.stopped = threading.Event()  # the stream ended early: speak no further part
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._speak, name="stream-speech", daemon=True)
        self._thread.start()

    def _speak(self) -> None:
        first = 0
        for index, text in enumerate(self.texts):
            if self.stopped.is_set():
                break
            try:
                part = speak_part(index, text, self.validated.voice, self.settings, first, self.motion)
            except BaseException as exc:
                with self._changed:
                    self.failure = exc
                    self._changed.notify_all()
                return
            first = part.end_frame
            with self._changed:
                self.parts.append(part)
                self._changed.notify_all()

    def part(self, index: int) -> SpokenPart | None:
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    len(self.parts) > index
                    or self.failure is not None
                    or len(self.parts) == len(self.texts)
                    or self.stopped.is_set()
                )
            )
            if len(self.parts) > index:
                return self.parts[index]
            if self.failure is not None:
                raise self.failure
            return None

    def all(self) -> list[SpokenPart]:
        self._thread.join()
        if self.failure is not None:
            raise self.failure
        return list(self.parts)


@dataclass
class Released:
    """What the viewer can fetch: the released segments of each encoder run, and the cues."""

    runs: list[tuple[str, list[EncodedSegment]]] = field(default_factory=list)  # (init name, segments)
    playlist: list[playlist.ReleasedSegment] = field(default_factory=list)
    seconds: float = 0.0
    frames: int = 0


@dataclass(frozen=True)
class RunResult:
    """How an encoder run ended: every frame released (`failed_at` None), or the first frame of the
    segment the gate failed, with the gate's finding."""

    mode: str
    start: int
    failed_at: int | None = None
    finding: dict | None = None
    quality: object | None = None  # the run's whole QualityReport (released frames)
    seconds_gate: float = 0.0


class StreamRender:
    """One stream's render; `run()` returns its final state. Built by `run_stream`."""

    def __init__(
        self,
        folder: Path,
        validated: ValidatedRequest,
        settings: Settings,
        warm: WarmPool,
        on_progress: Progress | None,
        frame_hook: FrameHook | None,
    ) -> None:
        self.folder, self.validated, self.base_settings, self.warm = Path(folder), validated, settings, warm
        self.settings = stream_settings(settings, validated.request.scene)
        self.on_progress, self.frame_hook = on_progress, frame_hook
        self.enc = self.folder / ENCODER_FOLDER
        self.enc.mkdir(parents=True, exist_ok=True)
        previous = read_state(self.folder)
        self.state = previous or StreamState(stream_id=self.folder.name)
        self.state = self.state.but(stream_id=self.state.stream_id or self.folder.name)
        self.generation = validated.generation()
        self.content_id = new_content_id(self.generation)
        self.payload = payload_of(self.content_id)
        self.metadata = provenance_tags(self.generation, self.settings, self.content_id)
        video = self.settings.video
        self.fps = video.fps
        self.segment_frames = max(1, round(settings.streaming.segment_seconds * video.fps))
        self.released = Released()
        self.runs: list[RunResult] = []
        self.master_written = False
        self.speaker: Speaker | None = None
        self.user = validated.actor or getpass.getuser()

    # --- state, playlists ------------------------------------------------------------------------

    def _set(self, **changes) -> None:
        self.state = self.state.but(**changes)
        write_state(self.folder, self.state)
        if self.on_progress is not None:
            self.on_progress(self.state)

    def _cues(self, until: float | None = None) -> list[tuple[float, float, str]]:
        parts = self.speaker.parts if self.speaker is not None else []
        words = [word for part in list(parts) for word in part.words]
        cues = build_cues(words, self.validated.request.language) if words else []
        return [(c.start, c.end, c.text) for c in cues if until is None or c.start < until]

    def _write_playlists(self, ended: bool) -> None:
        """video.m3u8, subs.m3u8 (one .vtt per released segment) and captions.vtt, naming only what
        was released; EVENT while rendering, VOD once `ended`."""
        released = self.released
        target = playlist.target_duration_for([s.duration for s in released.playlist], self.segment_frames / self.fps)
        cues = self._cues(released.seconds)
        subtitles = []
        for item, (start, end) in zip(released.playlist, self._segment_times(), strict=True):
            vtt = self.enc / (Path(item.uri).stem + ".vtt")
            if not vtt.is_file():
                write_text_atomic(vtt, playlist.segment_vtt(cues, start, end))
            subtitles.append(
                playlist.ReleasedSegment(f"{ENCODER_FOLDER}/{vtt.name}", item.duration, None, item.discontinuity)
            )
        write_text_atomic(self.folder / CAPTIONS_FILE, playlist.captions_vtt(cues))
        write_text_atomic(self.folder / SUBTITLE_PLAYLIST, playlist.subtitle_playlist(subtitles, target, ended))
        write_text_atomic(self.folder / VIDEO_PLAYLIST, playlist.media_playlist(released.playlist, target, ended))

    def _segment_times(self) -> list[tuple[float, float]]:
        return [
            (segment.start_frame / self.fps, segment.end_frame / self.fps)
            for _, segments in self.released.runs
            for segment in segments
        ]

    def _write_master(self, encoder: HlsEncoder) -> None:
        segments = [s for _, run in self.released.runs for s in run]
        bandwidth = bandwidth_of([self.enc / s.name for s in segments], [s.duration for s in segments])
        video = self.settings.video
        text = playlist.master_playlist(
            max(bandwidth, 1) * 2,  # the first segments are small; leave players room for the rest
            (video.width, video.height),
            encoder.codecs(),
            subtitles=True,
            language=self.validated.request.language,
            frame_rate=float(video.fps),
        )
        write_text_atomic(self.folder / MASTER_PLAYLIST, text)
        self.master_written = True

    def _release(self, encoder: HlsEncoder, run: int, segment: EncodedSegment) -> None:
        released = self.released
        if len(released.runs) <= run:
            released.runs.append((encoder.init_name, []))
        first_of_run = not released.runs[run][1]
        if first_of_run:  # ffmpeg wrote the run's init segment with its first segment; sign it before naming it
            seal_init(encoder.init_path(), self.generation, self.settings, self.content_id)
        released.runs[run][1].append(segment)
        released.playlist.append(
            playlist.ReleasedSegment(
                uri=f"{ENCODER_FOLDER}/{segment.name}",
                duration=segment.duration,
                init_uri=f"{ENCODER_FOLDER}/{encoder.init_name}" if first_of_run else None,
                discontinuity=first_of_run and run > 0,
            )
        )
        released.seconds = segment.end_frame / self.fps
        released.frames = segment.end_frame
        if not self.master_written:
            self._write_master(encoder)
        self._write_playlists(ended=False)
        first = self.state.first_release_s
        if first is None:
            first = round(time.time() - self.state.created, 3)
        self._set(
            status="streaming" if self.state.status == "starting" else self.state.status,
            released_segments=len(released.playlist),
            released_seconds=round(released.seconds, 3),
            first_release_s=first,
        )

    # --- rendering ---------------------------------------------------------------------------------

    def _frames(self, engine, mode: str, start: int):
        """(part, frame) from frame `start` of the answer on, as the parts are spoken."""
        index = 0
        while (part := self.speaker.part(index)) is not None:
            index += 1
            if part.end_frame <= start:
                continue
            local = max(0, start - part.first_frame)
            yield part, local, None
            if mode == "still":
                for _ in range(local, part.frames):
                    yield part, None, engine.still
            else:
                track = track_slice(part.track, local, part.frames)
                for frame in engine.frames(track, None, first_frame=part.first_frame + local):
                    yield part, None, frame

    def _answer_audio(self) -> tuple[np.ndarray, int]:
        parts = list(self.speaker.parts)
        if not parts:
            return np.zeros(0, np.int16), 24000
        return np.concatenate([p.samples for p in parts]), parts[0].rate

    def _spans(self) -> list[tuple[float, float]]:
        return [span for part in list(self.speaker.parts) for span in part.bilabial_spans]

    def _judge(self, gate: SegmentGate, segment: EncodedSegment):
        audio, rate = self._answer_audio()
        return gate.judge(segment.end_frame, audio, rate, self._spans())

    def _run(self, run: int, mode: str, start: int) -> RunResult:
        settings = self.settings
        video = settings.video
        warmed = self.warm.avatar(self.validated.avatar, settings)
        first = self.speaker.part(0)
        options = HlsOptions(
            fps=video.fps,
            width=video.width,
            height=video.height,
            segment_frames=self.segment_frames,
            crf=video.crf,
            preset=settings.streaming.preset,
            tune=settings.streaming.tune,
            audio_rate=first.rate if first is not None else 24000,
            audio_bitrate=video.audio_bitrate,
            threads=video.encoder_thread_count(),
            metadata=tuple(self.metadata.items()),
        )
        still = mode == "still"
        gate = SegmentGate(warmed.monitors, video.width, video.height, video.fps, settings.quality, start, still)
        engine_mode = "reduced_motion" if mode == "reduced_motion" else "normal"
        judged: list[EncodedSegment] = []
        try:
            with (
                self.warm.engine(self.validated.avatar, settings, engine_mode, self.payload) as engine,
                HlsEncoder(self.enc, options, prefix=f"run{run}", first_frame=start) as encoder,
            ):
                position = start
                for part, local, frame in self._frames(engine, mode, start):
                    if frame is None:  # a part begins: its audio first (the muxer waits for it)
                        encoder.write_audio(part.samples[local * (part.rate // self.fps) :])
                        if self.state.total_frames is None and len(self.speaker.parts) == len(self.speaker.texts):
                            self._set(total_frames=self.speaker.parts[-1].end_frame)
                        continue
                    if self.frame_hook is not None:
                        frame = self.frame_hook(position, mode, frame)
                    encoder.write(frame)
                    gate.add(frame)
                    position += 1
                    failed = self._release_ready(encoder, gate, run, judged, final=False)
                    if failed is not None:
                        encoder.abort()
                        return failed_result(mode, start, failed)
                    if position % PROGRESS_EVERY == 0:  # the throughput admission control measures
                        self._set(rendered_frames=position)
                encoder.close()
                failed = self._release_ready(encoder, gate, run, judged, final=True)
                if failed is not None:
                    return failed_result(mode, start, failed)
                audio, rate = self._answer_audio()
                quality = gate.whole(position, audio, rate, self._spans())
                self.state = self.state.but(rendered_frames=position)
                return RunResult(mode, start, quality=quality, seconds_gate=gate.seconds)
        finally:
            gate.close()

    def _release_ready(self, encoder, gate, run, judged, final: bool):
        """Judge and release the closed segments whose frames the gate has seen; the failing one's
        (segment, report) if any."""
        closed = encoder.segments()
        for segment in closed[len(judged) :]:
            if not final and gate.observed() < segment.end_frame - gate.start:
                break
            report = self._judge(gate, segment)
            judged.append(segment)
            if not report.passed:
                return segment, report
            self._release(encoder, run, segment)
        return None

    def run(self) -> StreamState:
        request = self.validated.request
        texts = split_parts(request.text, self.settings.streaming.first_part_max_words)
        self._set(status="starting", content_id=self.content_id, mode="normal")
        audit_start(self)
        try:
            self.warm.voice(self.validated.voice, self.settings)
            self.speaker = Speaker(texts, self.validated, self.settings, self.content_id)
            start, run = 0, 0
            for mode in MODES:
                if mode != "normal":
                    self._set(mode=mode)
                result = self._run(run, mode, start)
                self.runs.append(result)
                if result.failed_at is None:
                    break
                start, run = result.failed_at, run + 1
                message = (
                    f"segment at {start / self.fps:.2f} s failed the quality gate "
                    f"({'; '.join(result.finding['failures'])[:300]}); "
                )
                following = MODES[MODES.index(mode) + 1] if mode != MODES[-1] else None
                if following is None:
                    raise StreamGateError(message + "even the still fallback failed; the answer ended there")
                failure = self.state.failure or result.finding
                self._set(
                    status="fallback",
                    failure=failure,
                    message=message + f"the rest is rendered as '{following}'",
                )
            parts = self.speaker.all()
            self._write_playlists(ended=True)
            outputs = publish_answer(self, parts)
            status = "fallback" if len(self.runs) > 1 else "finished"
            self._set(status=status, outputs=outputs, ended_at=time.time(), total_frames=parts[-1].end_frame)
            audit_end(self, outcome="success")
        except BaseException as exc:
            if self.speaker is not None:
                self.speaker.stopped.set()
            message = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
            if not isinstance(exc, DhfError):
                message = f"{type(exc).__name__}: {message}"
            with contextlib.suppress(Exception):  # the state below says what failed
                self._write_playlists(ended=True)
            self._set(status="failed", message=message, ended_at=time.time())
            audit_end(self, outcome="failed", detail=message)
            if not isinstance(exc, Exception):
                raise  # Ctrl-C, SystemExit: recorded, then passed on
        return self.state


class StreamGateError(DhfError):
    """Every fallback of a stream failed the gate."""

    http_status = 500
    code = "quality_failed"


def failed_result(mode: str, start: int, failed) -> RunResult:
    segment, report = failed
    finding = {
        "segment": segment.name,
        "frames": [segment.start_frame, segment.end_frame],
        "mode": mode,
        "failures": list(report.failures),
        "passed": False,
    }
    return RunResult(mode, start, failed_at=segment.start_frame, finding=finding, quality=report)


def audit_start(render: StreamRender) -> None:
    validated = render.validated
    AuditLog.from_settings(render.base_settings).append(
        AuditRecord(
            action="stream",
            outcome="success",
            user=render.user,
            detail="stream started",
            avatar_id=validated.avatar.avatar_id,
            avatar_version=validated.avatar.version,
            license_id=validated.license.license_id,
            extra={"stream_id": render.state.stream_id, "content_id": render.content_id, "event": "start"},
        )
    )


def audit_end(render: StreamRender, outcome: str, detail: str = "") -> None:
    """The stream's end as a `render` entry (what `dhf verify` finds a video's content id in)."""
    from pipeline.auditing import RenderAttempt, _record

    attempt = RenderAttempt(render.validated.request, render.user, render.validated)
    report = render.state.outputs.get("report")
    attempt.report_path = Path(report) if report else None
    record = _record(attempt, render.base_settings, outcome, detail, render.user)
    state = render.state
    record.extra["content_id"] = render.content_id
    record.extra["stream"] = {
        "stream_id": state.stream_id,
        "outcome": state.status,
        "segments": state.released_segments,
        "released_seconds": state.released_seconds,
        "first_release_s": state.first_release_s,
        "mode": state.mode,
        "failure": state.failure,
    }
    if "mp4" in state.outputs:
        record = dataclasses.replace(record, output=state.outputs["mp4"])
    AuditLog.from_settings(render.base_settings).append(record)


def run_stream(
    folder: Path,
    validated: ValidatedRequest,
    settings: Settings,
    warm: WarmPool | None = None,
    on_progress: Progress | None = None,
    frame_hook: FrameHook | None = None,
) -> StreamState:
    """Render `validated` as a stream into `folder` (blocking); returns the final state. Refuses (raises
    StreamRefusedError, before anything is written) an answer that needs a person's review or is
    driven by a recorded clip. `frame_hook` lets a test change a frame before the encoder and the gate
    see it (a corrupt frame the gate must catch)."""
    if review_required(validated, settings):
        raise StreamRefusedError(
            f"avatar '{validated.avatar.avatar_id}' or this configuration requires a person's review before "
            "publication, so it cannot stream; render it with POST /v1/videos instead"
        )
    if validated.request.driver_video is not None:
        raise StreamRefusedError("a stream speaks text; a recorded driver clip renders with POST /v1/videos")
    render = StreamRender(folder, validated, settings, warm or WarmPool(settings), on_progress, frame_hook)
    return render.run()
