"""The quality gate of a stream: every segment scored before it may be released.

Why a sliding window: the monitors (quality/monitor.py: identity, pose, stability, seams, artifacts,
lip-sync, colour) are written for whole videos. A segment is half a second; scored alone, a
correlation over 12 frames is noise. So segment k is judged on the frames of its encoder run up to its
end, at most `WINDOW_S` of them: what the viewer has just seen, in the same way the file render judges
a whole video. Lip-sync (and the chin-follows-mouth check, which needs as many frames) is judged once
the window holds `SHORTEST_JUDGED_FRAMES`; before that the other monitors still judge every frame.

Frames are observed on a thread of their own (the engine makes the next frame meanwhile), at the
analysis size, by one `FrameObserver` per encoder run; after every frame the length of each series is
noted, so any window of frames maps to the slice of each series it produced (identity is sampled only
every few frames, so its series is shorter than the frame count).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np
from scipy.signal import resample_poly

from config.settings import QualitySettings
from media.video import ProbeResult
from quality.evaluate import AUDIO_RATE, score_observations
from quality.inline import MonitorSetup, downscale
from quality.monitor import SHORTEST_JUDGED_FRAMES
from quality.observe import FrameObserver, Observations
from quality.scores import QualityReport

WINDOW_S = 4.0
QUEUE_FRAMES = 8

FrameCheck = Callable[[int, np.ndarray], None]  # a test's hook: (frame index, analysis-size frame)


class SegmentGate:
    """Observes the frames of one encoder run (starting at `start`) and judges windows of them."""

    def __init__(
        self,
        setup: MonitorSetup,
        width: int,
        height: int,
        fps: int,
        limits: QualitySettings,
        start: int = 0,
        still: bool = False,
    ) -> None:
        short = min(width, height)
        scale = min(limits.analysis_height, short) / short
        self.size = (round(width * scale / 2) * 2, round(height * scale / 2) * 2)
        self.fps, self.limits, self.start, self.still = fps, limits, start, still
        self.reference_lab = setup.reference_lab
        self.observer = FrameObserver(setup.analyser, fps, setup.identity, start, limits)
        self.lengths: list[tuple[int, dict[str, int]]] = []  # after each frame: (shared, per-series lengths)
        self.added = 0
        self.seconds = 0.0
        self._observed = 0
        self._failure: BaseException | None = None
        self._changed = threading.Condition()
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._observe, name="stream-gate", daemon=True)
        self._thread.start()

    def _observe(self) -> None:
        import time

        while (frame := self._queue.get()) is not None:
            began = time.perf_counter()
            try:
                if self._failure is None:
                    self.observer.add(frame)
                    self.lengths.append(
                        (
                            self.observer.count,
                            {
                                f"{name}.{series}": len(values)
                                for name, observer in self.observer.observers.items()
                                for series, values in observer.values.items()
                            },
                        )
                    )
            except BaseException as exc:  # re-raised in the stream's thread by `wait`
                self._failure = exc
            self.seconds += time.perf_counter() - began
            with self._changed:
                self._observed += 1
                self._changed.notify_all()

    def add(self, frame: np.ndarray) -> None:
        """Hand one full-size BGR frame to the monitors (copied: the engine reuses its buffer)."""
        self.added += 1
        self._queue.put(downscale(frame, self.size))

    def wait(self, frames: int) -> None:
        """Block until the first `frames` frames of this run are observed."""
        with self._changed:
            self._changed.wait_for(lambda: self._observed >= frames or self._failure is not None)
        if self._failure is not None:
            raise self._failure

    def observed(self) -> int:
        return self._observed

    def judge(self, stop: int, audio: np.ndarray, rate: int, spans: list[tuple[float, float]]) -> QualityReport:
        """Scores of the window ending at frame `stop` (in the whole answer), with the answer's audio so
        far (`audio`, mono int16 at `rate`, from frame 0) and its lip closures."""
        end = stop - self.start
        self.wait(end)
        window = min(end, int(WINDOW_S * self.fps))
        begin = end - window
        return score_observations(
            self._window(begin, end),
            _audio_window(audio, rate, (self.start + begin) / self.fps, (self.start + end) / self.fps),
            self.limits,
            self.reference_lab,
            None if self.still else _shifted(spans, (self.start + begin) / self.fps),
            measure_lipsync=not self.still and window >= SHORTEST_JUDGED_FRAMES,
        )

    def _window(self, begin: int, end: int) -> Observations:
        before = self.lengths[begin - 1][1] if begin > 0 else {}
        after = self.lengths[end - 1][1]
        series: dict[str, dict[str, np.ndarray]] = {}
        for name, observer in self.observer.observers.items():
            exported = observer.export()
            series[name] = {}
            for key, values in exported.items():
                full = f"{name}.{key}"
                series[name][key] = values[before.get(full, 0) : after.get(full, len(values))]
        count = end - begin
        info = ProbeResult(*self.size, float(self.fps), count, count / self.fps, "h264", "yuv420p", "aac", {})
        return Observations(
            info=info,
            count=end - begin,
            lip_gap=np.asarray(self.observer.gaps[begin:end], float),
            pose=np.asarray(self.observer.poses[begin:end], float).reshape(-1, 3),
            series=series,
        )

    def whole(self, stop: int, audio: np.ndarray, rate: int, spans: list[tuple[float, float]]) -> QualityReport:
        """Scores of every frame of this run up to `stop` (the report's figures)."""
        end = stop - self.start
        self.wait(end)
        return score_observations(
            self._window(0, end),
            _audio_window(audio, rate, self.start / self.fps, stop / self.fps),
            self.limits,
            self.reference_lab,
            None if self.still else _shifted(spans, self.start / self.fps),
            measure_lipsync=not self.still and end >= SHORTEST_JUDGED_FRAMES,
        )

    def close(self) -> None:
        """Stop the thread (after the frames queued so far are observed)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


def _audio_window(audio: np.ndarray, rate: int, start_s: float, end_s: float) -> np.ndarray:
    """The answer's audio between two times, as the monitors read it (float mono at AUDIO_RATE)."""
    piece = np.asarray(audio[round(start_s * rate) : round(end_s * rate)], np.float32) / 32768.0
    if rate == AUDIO_RATE or piece.size == 0:
        return piece
    return resample_poly(piece, AUDIO_RATE, rate).astype(np.float32)


def _shifted(spans: list[tuple[float, float]], offset: float) -> list[tuple[float, float]]:
    return [(start - offset, end - offset) for start, end in spans if end > offset]
