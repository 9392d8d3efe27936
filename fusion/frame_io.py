"""Frame I/O through ffmpeg pipes: stream raw frames in and out, probe files.

Frames never accumulate in memory: the writer feeds ffmpeg's stdin one frame at a time and the
reader yields one decoded frame at a time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusion.errors import MediaError

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


class VideoWriter:
    """H.264/yuv420p (+AAC from a WAV when given) MP4 with faststart, fed BGR frames through a pipe."""

    def __init__(self, path: Path, width: int, height: int, options: EncodeOptions, audio: Path | None = None) -> None:
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
            "bgr24",
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
            "-movflags",
            "+faststart+use_metadata_tags",
        ]
        for key, value in options.metadata:
            command += ["-metadata", f"{key}={value}"]
        command += ["-f", "mp4", str(self.path)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3):
            raise MediaError(f"frame {frame.shape} does not match the video size {self.width}x{self.height}")
        try:
            self.process.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError as exc:
            raise MediaError(f"ffmpeg stopped while writing {self.path}: {self._stderr()}") from exc
        self.frames += 1

    def _stderr(self) -> str:
        error = (self.process.stderr.read() or b"").decode(errors="replace").strip()
        return error.splitlines()[-1] if error else "see ffmpeg output"

    def close(self) -> None:
        self.process.stdin.close()
        error = self.process.stderr.read().decode(errors="replace").strip()
        if self.process.wait() != 0:
            last = error.splitlines()[-1] if error else "unknown error"
            hint = " (disk full? free some space)" if "No space" in error else ""
            raise MediaError(f"ffmpeg failed writing {self.path}: {last}{hint}")

    def abort(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
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


def probe(path: Path) -> ProbeResult:
    """ffprobe a file (counting frames exactly); MediaError for missing or unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video not found: {path}")
    command = [
        ffmpeg_binary("ffprobe"),
        "-v",
        "error",
        "-count_frames",
        "-show_streams",
        "-show_format",
        "-of",
        "json",
        str(path),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise MediaError(
            f"{path} is not a readable video: {result.stderr.strip().splitlines()[-1:] or 'ffprobe failed'}"
        )
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


def read_frames(path: Path, width: int | None = None, height: int | None = None) -> Iterator[np.ndarray]:
    """Decode a video to BGR frames one at a time (optionally scaled)."""
    info = probe(path)
    out_w, out_h = width or info.width, height or info.height
    command = [ffmpeg_binary(), "-v", "error", "-i", str(path)]
    if (out_w, out_h) != (info.width, info.height):
        command += ["-vf", f"scale={out_w}:{out_h}"]
    command += ["-f", "rawvideo", "-pix_fmt", "bgr24", "-"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    size = out_w * out_h * 3
    try:
        while True:
            data = process.stdout.read(size)
            if len(data) < size:
                break
            yield np.frombuffer(data, np.uint8).reshape(out_h, out_w, 3)
    finally:
        process.stdout.close()
        process.kill()
        process.wait()


def read_audio_mono(path: Path, rate: int = 16000) -> np.ndarray:
    """Audio track as float32 mono samples at `rate` (empty when the file has no audio)."""
    command = [ffmpeg_binary(), "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"]
    result = subprocess.run(command, capture_output=True)
    return np.frombuffer(result.stdout, np.float32)
