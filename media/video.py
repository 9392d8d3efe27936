"""Frame I/O through ffmpeg pipes: stream raw frames in and out, probe files.

Frames never accumulate in memory: the writer feeds ffmpeg's stdin one frame at a time (at most a
couple are queued) and the reader yields one decoded frame at a time.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from media.errors import MediaError

FFMPEG_HINT = "install ffmpeg (scripts/setup does it with apt)"


def ffmpeg_binary(name: str = "ffmpeg") -> str:
    path = shutil.which(name)
    if path is None:
        raise MediaError(f"{name} not found on PATH; {FFMPEG_HINT}")
    return path


@dataclass(frozen=True)
class EncodeOptions:
    fps: int = 25
    crf: int = 20
    preset: str = "veryfast"
    audio_bitrate: str = "128k"
    threads: int = 0
    metadata: tuple[tuple[str, str], ...] = ()
    keyframe_every: int = 0  # > 0: a keyframe at least every this many frames (checkable, cuttable)


def _keyframe_args(every: int) -> list[str]:
    return ["-force_key_frames", f"expr:gte(n,n_forced*{every})"] if every > 0 else []


class VideoWriter:
    """H.264/yuv420p (+AAC from a WAV when given) MP4 with faststart, fed BGR frames through a pipe.

    Why it is built this way (the encoder shares two cores with frame production):
    - frames are converted to yuv420p here (OpenCV, ~0.5 ms at 1080p) and piped as yuv420p: half the
      bytes of bgr24, and ffmpeg's single-threaded colour conversion drops out of its critical path;
    - a writer thread feeds the pipe, so producing frame n+1 overlaps with ffmpeg consuming frame n.
      The queue holds at most `queue_frames` frames, so memory stays flat with video length.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        options: EncodeOptions,
        audio: Path | None = None,
        queue_frames: int = 3,
    ) -> None:
        if width % 2 or height % 2:
            raise MediaError(f"video size {width}x{height} must be even for yuv420p")
        self.path, self.width, self.height = Path(path), width, height
        command = [
            ffmpeg_binary(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-s",
            f"{width}x{height}",
            "-r",
            str(options.fps),
            "-i",
            "-",
        ]
        if audio is not None:
            command += ["-i", str(audio)]
        command += ["-map", "0:v:0"]
        if audio is not None:
            command += ["-map", "1:a:0", "-c:a", "aac", "-b:a", options.audio_bitrate, "-ar", "48000"]
        command += [
            "-c:v",
            "libx264",
            "-preset",
            options.preset,
            "-crf",
            str(options.crf),
            "-pix_fmt",
            "yuv420p",
            "-threads",
            str(options.threads),
            *_keyframe_args(options.keyframe_every),
            "-movflags",
            "+faststart+use_metadata_tags",
        ]
        for key, value in options.metadata:
            command += ["-metadata", f"{key}={value}"]
        command += ["-f", "mp4", str(self.path)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.frames = 0
        self._pending: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=max(1, queue_frames))
        # Converted frames go into a ring of buffers, not a fresh 3 MB array each (page faults and
        # system time): at most `queue_frames` wait and one is being written, so a ring two longer
        # than the queue never overwrites a frame the writer thread still needs.
        self._ring = [np.empty((height * 3 // 2, width), np.uint8) for _ in range(max(1, queue_frames) + 2)]
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._feed, name="ffmpeg-writer", daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        """Writer thread: pipe queued frames to ffmpeg until the end marker (None)."""
        while True:
            item = self._pending.get()
            if item is None:
                return
            if self._failure is not None:
                continue  # drain so the producer never blocks on a dead pipe
            try:
                self.process.stdin.write(item.data)
            except (BrokenPipeError, OSError) as exc:
                self._failure = exc

    def write(self, frame: np.ndarray) -> None:
        """Queue one BGR frame; the caller may reuse `frame` as soon as this returns."""
        if frame.shape != (self.height, self.width, 3):
            raise MediaError(f"frame {frame.shape} does not match the video size {self.width}x{self.height}")
        if self._failure is not None:
            raise MediaError(f"ffmpeg stopped while writing {self.path}: {self._stderr()}") from self._failure
        converted = self._ring[self.frames % len(self._ring)]
        cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420, dst=converted)
        self._pending.put(converted)
        self.frames += 1

    def _finish_feeding(self) -> None:
        if self._thread.is_alive():
            self._pending.put(None)
            self._thread.join()

    def _stderr(self) -> str:
        error = (self.process.stderr.read() or b"").decode(errors="replace").strip()
        return error.splitlines()[-1] if error else "see ffmpeg output"

    def close(self) -> None:
        self._finish_feeding()
        if self._failure is not None:
            self.abort()
            raise MediaError(f"ffmpeg stopped while writing {self.path}: {self._stderr()}") from self._failure
        self.process.stdin.close()
        error = self.process.stderr.read().decode(errors="replace").strip()
        if self.process.wait() != 0:
            last = error.splitlines()[-1] if error else "unknown error"
            hint = " (disk full? free some space)" if "No space" in error else ""
            raise MediaError(f"ffmpeg failed writing {self.path}: {last}{hint}")

    def abort(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self._failure = self._failure or MediaError("aborted")
        self._finish_feeding()
        self.process.wait()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


@dataclass(frozen=True)
class ProbeResult:
    width: int
    height: int
    fps: float
    frames: int
    duration: float
    video_codec: str
    pix_fmt: str
    audio_codec: str | None
    tags: dict[str, str]


def probe(path: Path, count_frames: bool = True) -> ProbeResult:
    """ffprobe a file; MediaError for missing or unreadable files. Counting frames exactly decodes the
    whole video (about 0.45 s for 10 s of 1080p), so callers that need only the geometry, the rate or
    a progress estimate pass `count_frames=False` and get the container's own count (0 if it has none)."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video not found: {path}")
    command = [
        ffmpeg_binary("ffprobe"),
        "-v",
        "error",
        *(["-count_frames"] if count_frames else []),
        "-show_streams",
        "-show_format",
        "-of",
        "json",
        str(path),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        reason = _ffprobe_reason(result.stderr, path)
        raise MediaError(f"{path} is not a readable video ({reason}); give a video file ffmpeg can read, e.g. an MP4")
    data = json.loads(result.stdout)
    video = next((s for s in data.get("streams", []) if s.get("codec_type") == "video"), None)
    if video is None:
        raise MediaError(f"{path} has no video stream")
    audio = next((s for s in data["streams"] if s.get("codec_type") == "audio"), None)
    num, den = (int(v) for v in video.get("avg_frame_rate", "0/1").split("/"))
    fps = num / den if den else 0.0
    return ProbeResult(
        width=int(video["width"]),
        height=int(video["height"]),
        fps=fps,
        frames=int(video.get("nb_read_frames") or video.get("nb_frames") or 0),
        duration=float(data.get("format", {}).get("duration") or video.get("duration") or 0.0),
        video_codec=video.get("codec_name", ""),
        pix_fmt=video.get("pix_fmt", ""),
        audio_codec=audio.get("codec_name") if audio else None,
        tags={k.lower(): v for k, v in (data.get("format", {}).get("tags") or {}).items()},
    )


def read_frames(
    path: Path, width: int | None = None, height: int | None = None, fps: float | None = None
) -> Iterator[np.ndarray]:
    """Decode a video to BGR frames one at a time (optionally scaled, optionally resampled to `fps`).

    A corrupt or truncated file raises MediaError once its readable frames are used up (ffmpeg's
    exit status, its error output, or fewer frames than the container declares): never a silently
    shorter video. A consumer that stops early just stops the decoder."""
    info = probe(path, count_frames=False)
    out_w, out_h = width or info.width, height or info.height
    command = [ffmpeg_binary(), "-v", "error", "-i", str(path), "-an"]
    filters = [f"fps={fps}"] if fps else []
    if (out_w, out_h) != (info.width, info.height):
        filters.append(f"scale={out_w}:{out_h}")
    if filters:
        command += ["-vf", ",".join(filters)]
    command += ["-f", "rawvideo", "-pix_fmt", "bgr24", "-"]
    size = out_w * out_h * 3
    count = 0
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty decoder cannot block on it
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        try:
            while True:
                data = process.stdout.read(size)
                if len(data) < size:
                    break
                count += 1
                yield np.frombuffer(data, np.uint8).reshape(out_h, out_w, 3)
            process.wait()
            errors.seek(0)
            complaint = errors.read().decode("utf-8", "replace").strip().splitlines()
        finally:
            process.stdout.close()
            process.kill()
            process.wait()
    declared = info.frames if fps is None else 0
    if process.returncode != 0 or complaint or count < declared - 1:
        reason = complaint[-1] if complaint else f"{count} of {declared} frames decoded"
        raise MediaError(f"{path} is corrupt or truncated after {count} frames ({reason}); re-export or replace it")


def _ffprobe_reason(stderr: str, path: Path) -> str:
    """ffprobe's last line without the path it repeats ("x.mp4: Invalid data found ..." → "Invalid data
    found ..."): one readable clause for an error line."""
    lines = stderr.strip().splitlines()
    return lines[-1].removeprefix(f"{path}: ").strip() if lines else "ffprobe failed"


def read_keyframes(path: Path, width: int, height: int) -> list[tuple[int, np.ndarray]]:
    """(frame index, grey frame at width×height) for every keyframe: only those are decoded, so this
    costs a few decodes per ten seconds of video (a render checks its encode with them)."""
    info = probe(path, count_frames=False)
    times = subprocess.run(
        [ffmpeg_binary("ffprobe"), "-v", "error", "-skip_frame", "nokey", "-select_streams", "v:0",
         "-show_entries", "frame=best_effort_timestamp_time", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    decoded = subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-skip_frame", "nokey", "-i", str(path), "-an", "-vf",
         f"scale={width}:{height}", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True,
    )  # fmt: skip
    if times.returncode != 0 or decoded.returncode != 0:
        raise MediaError(f"{path} is not a readable video: {(times.stderr or decoded.stderr.decode())[-200:]}")
    stamps = [float(cell) for line in times.stdout.splitlines() for cell in line.split(",") if cell.strip()]
    size = width * height
    frames = [np.frombuffer(decoded.stdout[i * size : (i + 1) * size], np.uint8).reshape(height, width)
              for i in range(len(decoded.stdout) // size)]  # fmt: skip
    return [(round(stamp * info.fps), frame) for stamp, frame in zip(stamps, frames, strict=False)]


def extract_audio_wav(path: Path, target: Path, duration: float, rate: int = 24000) -> bool:
    """Write the video's audio as a mono 16-bit WAV at `target`; silence of `duration` seconds when it
    has none (the output MP4 always carries an AAC track). Returns whether the video had audio."""
    has_audio = probe(path, count_frames=False).audio_codec is not None
    source = ["-i", str(path), "-vn"] if has_audio else ["-f", "lavfi", "-i", f"anullsrc=r={rate}:cl=mono"]
    command = [ffmpeg_binary(), "-v", "error", "-y", *source, "-t", f"{duration:.3f}", "-ac", "1", "-ar", str(rate)]
    command += ["-c:a", "pcm_s16le", "-f", "wav", str(target)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]
        raise MediaError(f"could not read the audio of {path}: {last}")
    return has_audio


def read_audio_mono(path: Path, rate: int = 16000) -> np.ndarray:
    """Audio track as float32 mono samples at `rate` (empty when the file has no audio)."""
    command = [ffmpeg_binary(), "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"]
    result = subprocess.run(command, capture_output=True)
    return np.frombuffer(result.stdout, np.float32)


def extract_frame(video: Path, at_seconds: float, target: Path, width: int = 480) -> bool:
    """One frame as a JPEG (a thumbnail). ffmpeg seeks to it rather than decoding everything before it."""
    command = [ffmpeg_binary(), "-v", "error", "-y", "-ss", f"{max(at_seconds, 0.0):.3f}", "-i", str(video)]
    command += ["-frames:v", "1", "-vf", f"scale={width}:-2", "-q:v", "4", str(target)]
    return subprocess.run(command, capture_output=True).returncode == 0 and Path(target).is_file()
