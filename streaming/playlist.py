"""The public playlists and WebVTT files of a stream, as text (pure functions: no files, no clock).

Why these are written by us and not by ffmpeg: the encoder's own playlist names every segment it has
closed, but the viewer may only see segments the quality gate passed, and a stream that falls back
restarts its encoder (a new init segment, a new timeline): the released playlist is the gate's list,
with EXT-X-MAP per encoder run and EXT-X-DISCONTINUITY where a new run begins.

Timing: every encoder run puts frame f at media time `media.hls.TIMELINE_OFFSET_S + f / fps`, so one
X-TIMESTAMP-MAP (MPEGTS = `media.hls.MPEGTS_OFFSET`, LOCAL = 0) maps the answer's cue times (seconds
from its first frame) onto the video in every WebVTT segment, before and after a discontinuity.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from media.hls import MPEGTS_OFFSET

Cue = tuple[float, float, str]  # (start_s, end_s, text), seconds from the answer's first frame


@dataclass(frozen=True)
class ReleasedSegment:
    """One released segment as a playlist names it: `uri` relative to the playlist, its `duration`,
    the init segment of its encoder run (`init_uri`; None in subtitle playlists) and whether a new
    encoder run (a discontinuity in timestamps and codec state) starts with it."""

    uri: str
    duration: float
    init_uri: str | None = None
    discontinuity: bool = False


def target_duration_for(durations: Iterable[float], at_least: float = 1.0) -> int:
    """EXT-X-TARGETDURATION: whole seconds ≥ every segment's duration rounded to the nearest
    integer (RFC 8216 4.3.3.1); `at_least` the configured segment length, so it never shrinks."""
    longest = max([at_least, *durations])
    return max(1, math.ceil(longest - 1e-9))


def _format_duration(seconds: float) -> str:
    return f"{seconds:.6f}"


def media_playlist(
    segments: Sequence[ReleasedSegment], target_duration: float, ended: bool, *, start_at_beginning: bool = True
) -> str:
    """A media playlist of the released segments: EVENT while the stream renders (players poll it
    and append), VOD with EXT-X-ENDLIST once it ended (a complete, seekable playlist). EXT-X-MAP is
    repeated whenever the init segment changes (each encoder run), after the run's discontinuity.

    `start_at_beginning` writes EXT-X-START:TIME-OFFSET=0: a player opening a playlist without
    ENDLIST treats it as live and joins near its end (hls.js three target durations back; AVPlayer
    and ExoPlayer likewise), which would cut the first words of an answer; with the tag they start
    at its first frame without any setting in the app (hls.js: tests/test_hls.py)."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(target_duration - 1e-9))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-DISCONTINUITY-SEQUENCE:0",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if ended else 'EVENT'}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    if start_at_beginning:
        lines.append("#EXT-X-START:TIME-OFFSET=0,PRECISE=YES")
    current_init: str | None = None
    for index, segment in enumerate(segments):
        if segment.duration <= 0:
            raise ValueError(f"segment {segment.uri} has duration {segment.duration}; it must be positive")
        if segment.discontinuity and index > 0:
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.init_uri is not None and segment.init_uri != current_init:
            lines.append(f'#EXT-X-MAP:URI="{_quoted(segment.init_uri)}"')
            current_init = segment.init_uri
        lines.append(f"#EXTINF:{_format_duration(segment.duration)},")
        lines.append(segment.uri)
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def subtitle_playlist(segments: Sequence[ReleasedSegment], target_duration: float, ended: bool) -> str:
    """The WebVTT rendition's playlist: one .vtt per released video segment, same durations and
    discontinuities (RFC 8216 requires them aligned with the video's), no init segments."""
    plain = [ReleasedSegment(s.uri, s.duration, None, s.discontinuity) for s in segments]
    return media_playlist(plain, target_duration, ended)


def master_playlist(
    bandwidth: int,
    resolution: tuple[int, int] | str,
    codecs: str,
    subtitles: bool,
    *,
    video_uri: str = "video.m3u8",
    subtitles_uri: str = "subs.m3u8",
    language: str = "en",
    subtitles_name: str = "Captions",
    frame_rate: float | None = None,
) -> str:
    """The multivariant playlist: one video rendition and, with `subtitles`, the WebVTT rendition
    (DEFAULT and AUTOSELECT, so players show captions without the app choosing them).
    `resolution` is (width, height) or "WxH"; `codecs` an RFC 6381 list (media.hls.codecs_of)."""
    if isinstance(resolution, tuple):
        resolution = f"{resolution[0]}x{resolution[1]}"
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    attributes = [f"BANDWIDTH={max(1, int(bandwidth))}", f"RESOLUTION={resolution}", f'CODECS="{_quoted(codecs)}"']
    if frame_rate:
        attributes.append(f"FRAME-RATE={frame_rate:.3f}")
    if subtitles:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="{_quoted(subtitles_name)}",'
            f'LANGUAGE="{_quoted(language)}",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="{_quoted(subtitles_uri)}"'
        )
        attributes.append('SUBTITLES="subs"')
    lines.append("#EXT-X-STREAM-INF:" + ",".join(attributes))
    lines.append(video_uri)
    return "\n".join(lines) + "\n"


def _quoted(value: str) -> str:
    """A quoted-string attribute may not hold a double quote or a line break (RFC 8216 4.2)."""
    if any(bad in value for bad in ('"', "\n", "\r")):
        raise ValueError(f"{value!r} cannot be a playlist attribute (quote or line break)")
    return value


def vtt_timestamp(seconds: float) -> str:
    """WebVTT's hh:mm:ss.ttt (hours always written: cue times of long answers stay valid)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _cue_text(text: str) -> str:
    """Cue payload: & < > escaped (so "-->" cannot start a cue either), no blank lines (they end one)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "\n".join(line for line in text.splitlines() if line.strip()) or " "


def _cue_blocks(cues: Iterable[Cue]) -> list[str]:
    blocks = []
    for start, end, text in cues:
        if end <= start:
            continue
        blocks.append(f"{vtt_timestamp(start)} --> {vtt_timestamp(end)}\n{_cue_text(text)}")
    return blocks


def segment_vtt(cues: Iterable[Cue], start: float, end: float, mpegts: int = MPEGTS_OFFSET) -> str:
    """The WebVTT file of the video segment covering [start, end) of the answer: every cue that
    overlaps it, unclipped (a cue spanning segments is repeated in each, and players drop the
    duplicates), with X-TIMESTAMP-MAP mapping cue time 0 to the video's media time of frame 0."""
    overlapping = [cue for cue in cues if cue[0] < end and cue[1] > start]
    header = f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{int(mpegts)},LOCAL:00:00:00.000\n"
    return "\n".join([header, *(block + "\n" for block in _cue_blocks(overlapping))])


def captions_vtt(cues: Iterable[Cue]) -> str:
    """Every cue so far as one plain WebVTT file (players that poll captions instead of the HLS
    subtitle rendition; the published answer's .vtt). Times are from the answer's first frame."""
    return "\n".join(["WEBVTT\n", *(block + "\n" for block in _cue_blocks(cues))])
