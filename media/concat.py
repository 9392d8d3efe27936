"""Join separately encoded video segments into one MP4 without re-encoding the video.

Why this works without a visible seam: every segment was written by its own x264 process with the
same settings, so it starts with an IDR frame and its GOPs are closed (x264's default); the concat
demuxer copies the packets one after the other and shifts each segment's timestamps by the
durations before it. The audio is not cut at all: the whole WAV is encoded once here, with exactly
the arguments `VideoWriter` uses, so it is the same AAC stream a single-pass render carries (no
click at a boundary, sample-exact after decoding).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from media.errors import MediaError
from media.video import EncodeOptions, ffmpeg_binary


def _concat_list(segments: list[Path], listing: Path) -> None:
    lines = []
    for segment in segments:
        path = str(Path(segment).resolve())
        if "\n" in path:
            raise MediaError(f"segment path {path!r} contains a newline; render into another folder")
        lines.append("file '" + path.replace("'", "'\\''") + "'")
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")


def join_segments(
    segments: list[Path], target: Path, options: EncodeOptions, audio: Path | None = None, listing: Path | None = None
) -> None:
    """Concatenate video-only MP4 `segments` (same size, rate and codec settings) into `target`, muxing
    `audio` (a WAV, encoded once to AAC as `VideoWriter` does) and `options.metadata` as tags.

    `target` is written in place: callers pass a temporary path (config.files.atomic_path)."""
    if not segments:
        raise MediaError("nothing to join: no video segments")
    target = Path(target)
    listing = Path(listing or target.with_name(f".{target.name}.concat.txt"))
    _concat_list(segments, listing)
    command = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-f", "concat", "-safe", "0", "-i", str(listing)]
    if audio is not None:
        command += ["-i", str(audio)]
    command += ["-map", "0:v:0"]
    if audio is not None:
        command += ["-map", "1:a:0", "-c:a", "aac", "-b:a", options.audio_bitrate, "-ar", "48000"]
    command += ["-c:v", "copy", "-movflags", "+faststart+use_metadata_tags"]
    for key, value in options.metadata:
        command += ["-metadata", f"{key}={value}"]
    command += ["-f", "mp4", str(target)]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    finally:
        listing.unlink(missing_ok=True)
    if result.returncode != 0:
        error = result.stderr.strip()
        last = error.splitlines()[-1] if error else "unknown error"
        hint = " (disk full? free some space)" if "No space" in error else ""
        raise MediaError(f"ffmpeg could not join {len(segments)} segments into {target}: {last}{hint}")
