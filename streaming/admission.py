"""Admission control of streamed answers: a stream starts only if the server can keep it, and every
stream already running, ahead of playback; otherwise it is refused up front with a retry time.

Why up front and from measurements: a stream that starts and then renders slower than it plays
stalls in the viewer's face, which is worse than a clear "busy, retry in 4 s". The renderer is
CPU-bound, so the streams running at once share the server's rendering throughput; how much there is
depends on the machine, the canvas and what else runs, so it is measured from the running streams'
own progress (`progress`: frames rendered so far, as the renderer reports them) rather than
configured. A server that has not measured anything yet assumes `cold_throughput_fps` (conservative:
by default it admits one stream at a time until a stream has been measured).

The model (a first-order one, deliberately simple and on the safe side):
- capacity C (frames/s the server renders in all): the sum of the running streams' measured rates,
  smoothed; a new stream among n running gets C / (n + 1), which must be >= fps x realtime_margin;
- the first segment of a new stream: the measured time to first release of a stream started alone
  (observed times divided by the number of streams that were running then), times n + 1, must be
  <= start_budget_s;
- at most max_streams at once, whatever the measurements say;
- a server with no stream running always admits one: measuring needs a stream, and refusing every
  request because of one bad measurement would never recover.
When refused, Retry-After is the time until enough running streams are expected to end (their
remaining frames at their measured rates), at least min_retry_after_s.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from config.settings import StreamAdmissionSettings

SMOOTHING = 0.3  # weight of a new measurement in the running averages
MIN_WINDOW_S = 0.5  # a stream's rate is measured over at least this long (frames arrive in bursts)
WORDS_PER_S = 2.5  # speaking rate for estimating an answer's length before it is spoken
CJK_CHARS_PER_S = 4.5
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def estimated_seconds(text: str) -> float:
    """How long an answer will roughly play, before its speech exists (for Retry-After estimates)."""
    cjk = len(_CJK.findall(text))
    words = len(_CJK.sub(" ", text).split())
    return max(1.0, words / WORDS_PER_S + cjk / CJK_CHARS_PER_S)


@dataclass(frozen=True)
class Decision:
    admitted: bool
    reason: str = ""  # one line, when refused
    retry_after_s: int = 0  # when refused
    capacity_fps: float = 0.0  # the estimate the decision was made with
    running: int = 0  # streams running before this one


@dataclass
class _Stream:
    started: float
    load: int  # streams running when it started, itself included
    expected_frames: float
    frames: int = 0
    rate: float | None = None  # measured frames/s, smoothed
    mark: tuple[float, int] | None = None  # (time, frames) where the current measuring window began
    done_rendering: bool = False
    first_recorded: bool = False


class Admission:
    """Thread-safe: the API's request threads call `admit`, the streams' threads `progress`/`finish`."""

    def __init__(
        self,
        settings: StreamAdmissionSettings,
        fps: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.fps = fps
        self.clock = clock
        self.lock = threading.Lock()
        self.streams: dict[str, _Stream] = {}
        self.capacity: float | None = None  # measured frames/s of the whole server; None: cold
        self.first_release_alone: float | None = None  # measured seconds to first release, one stream alone

    # --- what the decision uses -------------------------------------------------------------------
    def capacity_fps(self) -> float:
        return self.capacity if self.capacity is not None else self.settings.cold_throughput_fps

    def _first_release_alone(self) -> float:
        known = self.first_release_alone
        return known if known is not None else self.settings.cold_first_release_s

    def _fits(self, running: int) -> str:
        """'' when one more stream fits beside `running` ones, else the one-line reason it does not."""
        share = self.capacity_fps() / (running + 1)
        needed = self.fps * self.settings.realtime_margin
        if running + 1 > self.settings.max_streams:
            return f"the server renders {self.settings.max_streams} streams at most and all are in use"
        if running and share < needed:
            return (
                f"the server renders {self.capacity_fps():.0f} frames/s in all; {running + 1} streams would get "
                f"{share:.0f} each, below the {needed:.0f} a stream needs to stay ahead of playback"
            )
        first = self._first_release_alone() * (running + 1)
        if running and first > self.settings.start_budget_s:
            return (
                f"with {running} streams running the first segment would take about {first:.1f} s, over the "
                f"{self.settings.start_budget_s:g} s budget"
            )
        return ""

    def _retry_after(self, now: float) -> int:
        """Seconds until enough running streams end that one more fits."""
        ends = sorted(self._remaining_s(stream) for stream in self.streams.values())
        running = len(ends)
        wait = ends[-1] if ends else 0.0
        for ended, seconds in enumerate(ends, start=1):
            if not self._fits(running - ended):
                wait = seconds
                break
        return max(self.settings.min_retry_after_s, math.ceil(wait))

    def _remaining_s(self, stream: _Stream) -> float:
        if stream.done_rendering:
            return 1.0  # publishing the answer: about a second
        rate = stream.rate or self.capacity_fps() / max(1, len(self.streams))
        return max(0.0, stream.expected_frames - stream.frames) / max(rate, 1e-3)

    # --- the API's side -----------------------------------------------------------------------------
    def admit(self, stream_id: str, expected_s: float) -> Decision:
        """Admit `stream_id` (an answer of about `expected_s` seconds) and count it as running, or
        refuse it with a reason and a retry time. Checked and reserved under one lock, so parallel
        requests each see the streams admitted before them."""
        with self.lock:
            now = self.clock()
            running = len(self.streams)
            reason = self._fits(running)
            if reason:
                return Decision(False, reason, self._retry_after(now), self.capacity_fps(), running)
            self.streams[stream_id] = _Stream(now, running + 1, expected_s * self.fps)
            return Decision(True, "", 0, self.capacity_fps(), running)

    def finish(self, stream_id: str) -> None:
        """The stream ended (finished, failed, cancelled): its share is free again."""
        with self.lock:
            self.streams.pop(stream_id, None)

    # --- the streams' side ----------------------------------------------------------------------------
    def progress(
        self,
        stream_id: str,
        frames: int,
        total_frames: int | None = None,
        first_release_s: float | None = None,
    ) -> None:
        """A running stream's report: `frames` rendered so far, its `total_frames` once known, and its
        time to first release once it released one."""
        with self.lock:
            stream = self.streams.get(stream_id)
            if stream is None:
                return
            now = self.clock()
            if total_frames:
                stream.expected_frames = float(total_frames)
            if first_release_s is not None and not stream.first_recorded:
                stream.first_recorded = True
                alone = first_release_s / stream.load
                previous = self.first_release_alone
                self.first_release_alone = alone if previous is None else _smooth(previous, alone)
            if stream.mark is None:
                stream.mark = (now, frames)
            elif frames > stream.mark[1] and now - stream.mark[0] >= MIN_WINDOW_S:
                rate = (frames - stream.mark[1]) / (now - stream.mark[0])
                stream.rate = rate if stream.rate is None else _smooth(stream.rate, rate)
                stream.mark = (now, frames)
                self._measure_capacity()
            stream.frames = frames
            if total_frames and frames >= total_frames:
                stream.done_rendering = True

    def _measure_capacity(self) -> None:
        """The server's throughput: the sum of the rendering streams' rates, once each has one."""
        rendering = [s for s in self.streams.values() if not s.done_rendering]
        if not rendering or any(s.rate is None for s in rendering):
            return
        total = sum(s.rate or 0.0 for s in rendering)
        self.capacity = total if self.capacity is None else _smooth(self.capacity, total)

    def snapshot(self) -> dict[str, float | int | None]:
        """For metrics and the health page: streams running and the estimates in use."""
        with self.lock:
            return {
                "running": len(self.streams),
                "capacity_fps": round(self.capacity_fps(), 1),
                "measured": self.capacity is not None,
                "first_release_alone_s": self.first_release_alone,
            }


def _smooth(previous: float, new: float) -> float:
    return (1 - SMOOTHING) * previous + SMOOTHING * new
