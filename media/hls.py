"""HLS with fragmented-MP4 segments, written while frames are produced (streamed answers).

Why one ffmpeg per encoder run, fed through two pipes:
- video frames (BGR, converted here to yuv420p like `media.video.VideoWriter`) go to ffmpeg's stdin
  from a writer thread; audio (mono int16 PCM) goes through a FIFO from its own thread, and
  `write_audio` never blocks. ffmpeg reads whichever input is behind, so each pipe has its own thread.
  ffmpeg's input probing is off (it would read seconds of one pipe at start-up while the caller
  feeds the other: a deadlock, seen before it was off); it still starts only once it has 1024
  samples of audio. So: write each part's audio before its frames. A caller that does not gets a
  one-line MediaError after `stall_timeout_s`, and an ffmpeg that failed is noticed while frames
  wait (it logs, then waits for its input threads): never a hung stream.
- x264 runs with `-tune zerolatency` (no lookahead, no B-frames) and a keyframe forced at every
  segment start (scene cuts off, GOP = one segment), so ffmpeg's HLS muxer cuts exactly every
  `segment_frames` frames and every segment starts with an IDR frame: decodable on its own,
  releasable on its own, and joinable by stream copy (`join_segments`).
- ffmpeg only knows a segment is complete when the next segment's first frame reaches its muxer, and
  the muxer interleaves by time, holding video back until audio of the same time was encoded. So
  segment k appears in `segments()` once (a) the first frame of segment k+1 was written and (b) the
  audio written reaches about 0.12 s past segment k's end (1024-sample PCM reads, resampling, AAC's
  lookahead; measured: 0.10 s of lead was not enough, 0.12 s was), or at `close()`, which lists the
  rest. The segment that ends a part therefore closes when the next part's audio and first frame
  are written. Measured on the shared 2-core machine (load average 3-7): at the stream canvas
  (540x960, ultrafast, zerolatency, 12-frame segments) with frames arriving at 25 fps, a median of
  11 ms and at most 18 ms after that frame (18 segments in 3 runs); frames pushed as fast as
  possible, 36-46 ms (the encoder's backlog); the first segment of a run is listed 0.18-0.29 s after
  the encoder is created when its 13 frames are written at once (ffmpeg's start-up included).
- Every run puts frame f at media time TIMELINE_OFFSET_S + f / fps exactly, in the fragments' own
  decode times (tfdt, `frag_discont`): runs that restart the encoder at a later frame continue the
  same clock, AAC's priming stays at positive times, and one X-TIMESTAMP-MAP
  (MPEGTS:MPEGTS_OFFSET,LOCAL:00:00:00.000) maps the answer's cue times onto the video in every
  WebVTT segment. hls.js in Chromium shows each cue within 1 ms of its frame on both sides of a
  discontinuity (tests/test_hls.py). ffmpeg's default puts the offset in an edit list instead,
  which MSE players ignore.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from config.files import atomic_path
from media.errors import MediaError
from media.video import ffmpeg_binary

TIMELINE_OFFSET_S = 10  # media time of frame 0 in every run (whole seconds: exact in every timescale)
MPEGTS_OFFSET = TIMELINE_OFFSET_S * 90000  # the same instant in HLS's 90 kHz clock (WebVTT X-TIMESTAMP-MAP)


@dataclass(frozen=True)
class HlsOptions:
    """How a stream is encoded. `segment_frames` is the segment length in whole frames (a segment
    boundary between frames would make ffmpeg cut at the next keyframe: a longer, later segment)."""

    fps: int = 25
    width: int = 540
    height: int = 960
    segment_frames: int = 12
    crf: int = 23
    preset: str = "ultrafast"
    tune: str = "zerolatency"
    audio_rate: int = 24000  # of the PCM written with write_audio (mono int16); the AAC is at 48 kHz
    audio_bitrate: str = "96k"
    threads: int = 0  # x264 threads (0: x264 decides)
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def segment_seconds(self) -> float:
        return self.segment_frames / self.fps

    @staticmethod
    def frames_for(seconds: float, fps: int) -> int:
        """Whole frames closest to `seconds` (at least one): settings give seconds, the encoder frames."""
        return max(1, round(seconds * fps))


@dataclass(frozen=True)
class EncodedSegment:
    """A closed segment of one encoder run: file `name` (in the encoder's folder) holds frames
    start_frame .. start_frame + frames - 1 of the answer, `duration` seconds as the playlist says."""

    name: str
    start_frame: int
    frames: int
    duration: float

    @property
    def end_frame(self) -> int:
        """One past the segment's last frame."""
        return self.start_frame + self.frames


def _encoder_command(folder: Path, options: HlsOptions, prefix: str, first_frame: int, fifo: Path) -> list[str]:
    seg = options.segment_frames
    command = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    # -nostdin only stops ffmpeg's keyboard interaction; "-i -" below still reads the frames.
    command += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{options.width}x{options.height}"]
    # Minimal probing: both inputs are raw with their format given here. ffmpeg's default probing
    # reads seconds of each input at startup, and the caller feeding the other pipe meanwhile would
    # wait forever (a deadlock). Even so ffmpeg starts only once it has read 1024 samples of audio
    # (or its end): hence "audio first" (write_audio) and the stall check in write().
    probe = ["-probesize", "32", "-analyzeduration", "0", "-thread_queue_size", "64"]
    command += [*probe, "-r", str(options.fps), "-i", "-"]
    command += [*probe, "-f", "s16le", "-ar", str(options.audio_rate), "-ac", "1", "-i", str(fifo)]
    command += ["-map", "0:v:0", "-map", "1:a:0"]
    command += ["-c:v", "libx264", "-preset", options.preset, "-crf", str(options.crf), "-pix_fmt", "yuv420p"]
    if options.tune:
        command += ["-tune", options.tune]
    command += ["-threads", str(options.threads), "-g", str(seg), "-keyint_min", str(seg), "-sc_threshold", "0"]
    command += ["-force_key_frames", f"expr:gte(n,n_forced*{seg})"]
    command += ["-c:a", "aac", "-b:a", options.audio_bitrate, "-ar", "48000", "-ac", "1"]
    for key, value in options.metadata:
        command += ["-metadata", f"{key}={value}"]
    offset = TIMELINE_OFFSET_S + first_frame / options.fps
    command += ["-output_ts_offset", f"{offset:.6f}"]
    # ffmpeg cuts at the first keyframe at or after hls_time: rounded up, 5 frames at 30 fps
    # (0.1666667 s) written as 0.166667 would miss the keyframe and cut a segment later. Rounded down.
    hls_time = math.floor(seg * 1_000_000 / options.fps) / 1_000_000
    command += ["-f", "hls", "-hls_time", f"{hls_time:.6f}", "-hls_list_size", "0"]
    command += ["-hls_playlist_type", "event", "-hls_segment_type", "fmp4"]
    command += ["-hls_fmp4_init_filename", f"{prefix}_init.mp4"]
    command += ["-hls_segment_filename", str(folder / f"{prefix}_%05d.m4s")]
    # frag_discont: each fragment's tfdt carries the real timestamp (frame f at OFFSET + f/fps).
    # Without it ffmpeg writes tfdt 0 and hides the offset in an edit list, which ffmpeg honours but
    # MSE players (hls.js) ignore: browsers would see every run start at 0 and captions 10 s off.
    command += ["-hls_segment_options", "movflags=+frag_discont"]
    command += ["-hls_flags", "independent_segments+temp_file", str(folder / f"{prefix}.m3u8")]
    return command


def parse_private_playlist(text: str) -> list[tuple[str, float]]:
    """(segment file name, duration) for each complete entry of an ffmpeg media playlist.

    ffmpeg writes a segment's entry only after the segment is closed and renamed from its temporary
    name, so every entry names a complete file; an entry cut off by a concurrent rewrite (no URI line
    yet) is left out rather than guessed."""
    entries: list[tuple[str, float]] = []
    duration: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXTINF:"):
            try:
                duration = float(line[len("#EXTINF:") :].split(",", 1)[0])
            except ValueError:
                duration = None
        elif line and not line.startswith("#") and duration is not None:
            entries.append((line, duration))
            duration = None
    return entries


class HlsEncoder:
    """One encoder run: BGR frames and mono PCM in, `<prefix>_init.mp4` + `<prefix>_NNNNN.m4s` +
    the private playlist `<prefix>.m3u8` out, in `folder`. A stream that restarts its encoder (the
    fallback after a failed segment) starts a new run with a new prefix at the frame it restarts from.

    Use as a context manager: leaving the block normally closes (flushes every segment), leaving it
    with an exception aborts (kills ffmpeg)."""

    def __init__(
        self,
        folder: Path,
        options: HlsOptions,
        prefix: str = "run0",
        first_frame: int = 0,
        queue_frames: int = 3,
        stall_timeout_s: float = 20.0,
    ) -> None:
        if options.width % 2 or options.height % 2:
            raise MediaError(f"video size {options.width}x{options.height} must be even for yuv420p")
        if options.segment_frames < 1 or options.fps < 1:
            raise MediaError(f"segment_frames ({options.segment_frames}) and fps ({options.fps}) must be positive")
        if not prefix or "/" in prefix or "%" in prefix:
            raise MediaError(f"encoder prefix {prefix!r} must be a plain file-name stem, e.g. run0")
        self.folder, self.options, self.prefix, self.first_frame = Path(folder), options, prefix, first_frame
        self.stall_timeout_s = stall_timeout_s
        self.folder.mkdir(parents=True, exist_ok=True)
        self.init_name = f"{prefix}_init.mp4"
        self.playlist = self.folder / f"{prefix}.m3u8"
        self.playlist.unlink(missing_ok=True)  # a stale one of an earlier run would list its segments
        self.frames = 0  # written so far
        self._cache: tuple[tuple[int, int, int] | None, list[EncodedSegment]] = (None, [])
        self.audio_samples = 0  # written so far
        self._fifo = self.folder / f".{prefix}.audio.fifo"
        self._fifo.unlink(missing_ok=True)
        os.mkfifo(self._fifo, 0o600)
        # ffmpeg's messages go to a file, not a pipe, so a chatty ffmpeg cannot block on it; it lives as
        # long as the run and is closed by close()/abort().
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115
        command = _encoder_command(self.folder, options, prefix, first_frame, self._fifo)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._errors)
        self._failure: BaseException | None = None
        self._closed = False
        self._video: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=max(1, queue_frames))
        self._ring = [
            np.empty((options.height * 3 // 2, options.width), np.uint8) for _ in range(max(1, queue_frames) + 2)
        ]
        self._audio: queue.Queue[bytes | None] = queue.Queue()  # unbounded: a minute of PCM is 2.9 MB
        self._audio_opened = threading.Event()
        self._video_thread = threading.Thread(target=self._feed_video, name=f"hls-video-{prefix}", daemon=True)
        self._audio_thread = threading.Thread(target=self._feed_audio, name=f"hls-audio-{prefix}", daemon=True)
        self._video_thread.start()
        self._audio_thread.start()

    # --- feeding threads -------------------------------------------------------------------------

    def _feed_video(self) -> None:
        """Pipe queued frames to ffmpeg's stdin until the end marker; after a failure keep draining
        so the producer never blocks on a dead pipe."""
        while (item := self._video.get()) is not None:
            if self._failure is not None:
                continue
            try:
                self.process.stdin.write(item.data)
                self.process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError) as exc:
                self._failure = exc
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            self.process.stdin.close()

    def _feed_audio(self) -> None:
        """Open the FIFO (blocks until ffmpeg opens its end) and write queued PCM; closing it is the
        audio's end of stream."""
        try:
            handle = os.open(self._fifo, os.O_WRONLY)
        except OSError as exc:
            self._failure = self._failure or exc
            handle = None
        self._audio_opened.set()
        try:
            while (chunk := self._audio.get()) is not None:
                if handle is None or self._failure is not None:
                    continue
                view = memoryview(chunk)
                while view:
                    view = view[os.write(handle, view) :]
        except (BrokenPipeError, OSError) as exc:
            self._failure = self._failure or exc
            while self._audio.get() is not None:  # drain: write_audio never blocks anyway
                pass
        finally:
            if handle is not None:
                os.close(handle)

    # --- the caller's side -----------------------------------------------------------------------

    def write(self, frame: np.ndarray) -> None:
        """Queue one BGR frame (height × width × 3, uint8); the caller may reuse `frame` at once."""
        height, width = self.options.height, self.options.width
        if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
            raise MediaError(f"frame {frame.shape} {frame.dtype} is not the stream's {width}x{height} BGR uint8")
        self._check_running()
        converted = self._ring[self.frames % len(self._ring)]
        cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420, dst=converted)
        if not self._put_video(converted):
            # ffmpeg reads no frames: it waits for audio (at startup it needs the first 1024
            # samples) or it hangs. An error the caller can act on, not a hung stream.
            raise MediaError(
                f"encoder {self.prefix} took no frame for {self.stall_timeout_s:g} s (audio written: "
                f"{self.audio_samples / self.options.audio_rate:.2f} s); write each part's audio before its frames"
            )
        self.frames += 1

    def write_audio(self, samples: np.ndarray) -> None:
        """Queue mono PCM at `options.audio_rate` (int16, or float in -1..1); never blocks. Write a
        part's audio before its frames: the muxer holds video until audio of the same time is in.
        Audio past the run's last frame ends up in its last segment (pad parts to whole frames)."""
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise MediaError(f"audio must be mono (one dimension), got shape {samples.shape}")
        if samples.dtype.kind == "f":
            samples = (np.clip(samples, -1.0, 1.0) * 32767.0).round()
        pcm = samples.astype("<i2", copy=False).tobytes()
        self._check_running()
        if pcm:
            self._audio.put(pcm)
            self.audio_samples += samples.size

    def segments(self) -> list[EncodedSegment]:
        """The segments closed so far, in order, from ffmpeg's own playlist (each file complete).
        Cheap enough to call after every frame: the playlist is parsed again only when it changed."""
        try:
            stat = self.playlist.stat()
            key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            cached_key, cached = self._cache  # one tuple: a reader on another thread sees a matching pair
            if key == cached_key:
                return list(cached)
            text = self.playlist.read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            return []
        parsed = self._parse(text)
        self._cache = (key, parsed)
        return list(parsed)

    def _parse(self, text: str) -> list[EncodedSegment]:
        closed: list[EncodedSegment] = []
        start = self.first_frame
        for name, duration in parse_private_playlist(text):
            frames = max(1, round(duration * self.options.fps))
            closed.append(EncodedSegment(name=name, start_frame=start, frames=frames, duration=duration))
            start += frames
        return closed

    def init_path(self) -> Path:
        return self.folder / self.init_name

    def segment_paths(self, segments: Iterable[EncodedSegment] | None = None) -> list[Path]:
        return [self.folder / segment.name for segment in (self.segments() if segments is None else segments)]

    def codecs(self) -> str:
        """The RFC 6381 CODECS value of this run (for the master playlist), once the init segment exists."""
        return codecs_of(self.init_path())

    def _check_running(self) -> None:
        if self._closed:
            raise MediaError(f"encoder {self.prefix} is already closed; start a new run to write more")
        if self._failure is not None or self.process.poll() is not None:
            raise MediaError(f"ffmpeg stopped while streaming {self.prefix}: {self._last_error()}")

    def _last_error(self) -> str:
        if self._errors.closed:
            return "no message"
        self._errors.seek(0)
        lines = self._errors.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1].strip() if lines else "no message (killed?)"

    def _put_video(self, item: np.ndarray | None) -> bool:
        """Queue `item` for the video thread; False after stall_timeout_s without room. A full queue
        is normal back-pressure while ffmpeg works; it is a failure when ffmpeg has exited or has
        logged an error (at -loglevel error every message is one: ffmpeg failing to open its
        encoder, for one, logs and then waits for its input threads, which wait on our pipes)."""
        waited = 0.0
        while True:
            try:
                self._video.put(item, timeout=0.2)
                return True
            except queue.Full:
                waited += 0.2
            if self.process.poll() is not None or self._errors_logged():
                self._kill()  # the video thread's write fails now, and it drains the queue
                raise MediaError(f"ffmpeg failed streaming {self.folder / self.prefix}: {self._last_error()}")
            if waited >= self.stall_timeout_s:
                return False

    def _errors_logged(self) -> bool:
        return not self._errors.closed and os.fstat(self._errors.fileno()).st_size > 0

    def _kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._failure = self._failure or MediaError("killed")

    def _stop_threads(self) -> None:
        self._audio.put(None)  # first: the audio's end lets an ffmpeg still starting up go on
        try:
            if not self._put_video(None):
                self._kill()
                self._video.put(None)
        except MediaError:
            self._video.put(None)  # killed: the thread drains, so there is room
        if not self._audio_opened.wait(0.5 if self.process.poll() is not None else 5.0):
            # ffmpeg died (or never opened the FIFO): open the reading end ourselves so the audio
            # thread's open returns, then its writes fail and it drains; nothing stays blocked.
            with contextlib.suppress(OSError):
                reader = os.open(self._fifo, os.O_RDONLY | os.O_NONBLOCK)
                self._audio_opened.wait(1.0)
                os.close(reader)
        self._video_thread.join(timeout=10)
        self._audio_thread.join(timeout=10)

    def close(self) -> list[EncodedSegment]:
        """End both streams, let ffmpeg flush the last segment and finish; every segment of the run.
        MediaError (ffmpeg's last error line) when ffmpeg failed or lost frames."""
        if self._closed:
            return self.segments()
        self._closed = True
        self._stop_threads()
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = -9
        self._fifo.unlink(missing_ok=True)
        message = self._last_error()
        self._errors.close()
        if code != 0 or self._failure is not None:
            hint = " (disk full? free some space)" if "No space" in message else ""
            raise MediaError(f"ffmpeg failed streaming {self.folder / self.prefix}: {message}{hint}")
        if self.frames == 0:
            return []  # ffmpeg may still have written an audio-only segment: no frame to show
        closed = self.segments()
        encoded = sum(segment.frames for segment in closed)
        if encoded != self.frames:
            raise MediaError(
                f"encoder {self.prefix} wrote {self.frames} frames but its segments hold {encoded}; report this bug"
            )
        return closed

    def abort(self) -> None:
        """Kill ffmpeg and stop the threads; segments already closed stay on disk (released ones may
        be in a playlist), the FIFO goes."""
        if self._closed:
            return
        self._closed = True
        self._kill()
        self._stop_threads()
        self._fifo.unlink(missing_ok=True)
        self._errors.close()

    @property
    def running(self) -> bool:
        return not self._closed and self.process.poll() is None

    def __enter__(self) -> HlsEncoder:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # last resort: never leave an ffmpeg behind an abandoned encoder
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            process.kill()


def codecs_of(init: Path) -> str:
    """RFC 6381 codec string of an fMP4 init segment: "avc1.PPCCLL" from its avcC box (profile,
    constraint flags, level) plus "mp4a.40.2" (AAC-LC) when it has an esds box."""
    data = Path(init).read_bytes()
    at = data.find(b"avcC")
    if at < 0 or len(data) < at + 8:
        raise MediaError(f"{init} has no H.264 configuration (avcC); is it an init segment of an HlsEncoder run?")
    profile, constraints, level = data[at + 5], data[at + 6], data[at + 7]
    codecs = [f"avc1.{profile:02x}{constraints:02x}{level:02x}"]
    if b"mp4a" in data:
        codecs.append("mp4a.40.2")
    return ",".join(codecs)


def bandwidth_of(paths: Iterable[Path], durations: Iterable[float]) -> int:
    """Peak bits per second over the given segments (the master playlist's BANDWIDTH)."""
    peak = 0.0
    for path, duration in zip(paths, durations, strict=True):
        if duration > 0:
            peak = max(peak, Path(path).stat().st_size * 8 / duration)
    return max(1, math.ceil(peak))


def _metadata_pairs(metadata: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if metadata is None:
        return []
    return list(metadata.items()) if isinstance(metadata, Mapping) else list(metadata)


def _video_span(path: Path) -> float:
    """Seconds from the first video frame's start to the last one's end, from the packets."""
    command = [ffmpeg_binary("ffprobe"), "-v", "error", "-select_streams", "v:0"]
    command += ["-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", str(path)]
    result = subprocess.run(command, capture_output=True, text=True)
    rows = [line.split(",") for line in result.stdout.split() if line.strip()]
    try:
        starts = [float(row[0]) for row in rows]
        return max(starts) + float(rows[starts.index(max(starts))][1]) - min(starts)
    except (ValueError, IndexError):
        last = (result.stderr.strip().splitlines() or ["no video packets"])[-1]
        raise MediaError(f"the stream's segments in {path.name} cannot be read: {last}") from None


def join_segments(
    runs: list[tuple[Path, list[Path]]],
    target: Path,
    metadata: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
) -> None:
    """The answer as one regular MP4 (+faststart) from encoder runs, each (init segment, its media
    segments in order), by stream copy: the decoded frames are the segments' frames, bit for bit.

    Each run's init + segments, byte-concatenated, is a valid fragmented MP4; ffmpeg's concat
    demuxer plays those runs one after the other (each run's timeline starts where the previous
    ended) and the mp4 muxer rewrites them as one unfragmented file with `metadata` as tags.
    Written to a temporary file and renamed: `target` is never half-written."""
    if not runs or not any(segments for _, segments in runs):
        raise MediaError("nothing to join: no released segments")
    target = Path(target)
    with tempfile.TemporaryDirectory(prefix=".join-", dir=target.parent) as scratch:
        listing_lines = []
        for index, (init, segments) in enumerate(runs):
            if not segments:
                continue
            joined = Path(scratch) / f"run{index}.mp4"
            with open(joined, "wb") as out:
                for part in (init, *segments):
                    try:
                        out.write(Path(part).read_bytes())
                    except OSError as exc:
                        raise MediaError(f"segment {part} cannot be read ({exc.strerror}); was it deleted?") from exc
            # The concat demuxer starts each run where the previous one ended, by its duration; a
            # fragmented file's own duration counts from media time 0 (it would add the timeline
            # offset), so each run's duration is measured from its video packets and given here.
            listing_lines += [f"file '{joined.name}'", f"duration {_video_span(joined):.6f}"]
        listing = Path(scratch) / "runs.txt"
        listing.write_text("\n".join(listing_lines) + "\n", encoding="utf-8")
        command = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y"]
        command += ["-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0", "-c", "copy"]
        command += ["-movflags", "+faststart+use_metadata_tags"]
        for key, value in _metadata_pairs(metadata):
            command += ["-metadata", f"{key}={value}"]
        with atomic_path(target) as temporary:
            result = subprocess.run([*command, "-f", "mp4", str(temporary)], capture_output=True, text=True)
            if result.returncode != 0:
                last = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
                raise MediaError(f"could not join the stream's segments into {target}: {last}")
