"""Where a long render is cut into chunks: at pauses of the speech, preferably after a sentence.

Why cut in a pause although the motion is continuous anyway: the speech and the motion track are
made once for the whole text, so every chunk renders exactly the frames a single pass would; the
only thing that changes at a cut is the encoder (a chunk starts with a keyframe). In a pause the
mouth is at rest and the head moves slowly, so even that difference lands where nothing happens.
Why a multiple of the worker count: equal chunks finish together, so no worker idles at the end.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass

from config.errors import DhfError
from config.settings import ChunkingSettings
from phoneme.artifacts import TimedWord

SENTENCE_ENDS = tuple(".?!;:。？！；：")
MIN_CHUNK_S = 2.0  # shorter chunks cost more in process start and encoder warm-up than they save


class ChunkingError(DhfError):
    """A chunked render cannot run as configured (e.g. work-pool chunks without a Prefect server)."""

    code = "chunking"


@dataclass(frozen=True)
class Pause:
    """A silence between two caption words: its middle, in seconds, and whether a sentence ends there."""

    time: float
    sentence_end: bool


@dataclass(frozen=True)
class ChunkPlan:
    """Frame ranges [start, stop) covering 0 … frame_count, in order, without gaps or overlaps."""

    frame_count: int
    spans: tuple[tuple[int, int], ...]

    @property
    def chunked(self) -> bool:
        return len(self.spans) > 1

    @property
    def cuts(self) -> tuple[int, ...]:
        """First frame of every chunk after the first: where the joined video has a keyframe."""
        return tuple(start for start, _ in self.spans[1:])


CORES_PER_RENDER = 2  # a single-pass render keeps ~1.7 cores busy (engine, monitor thread, x264)


def worker_count(chunking: ChunkingSettings, cores: int | None = None) -> int:
    """`chunking.workers`, or with 0: one chunk process per `CORES_PER_RENDER` cores, at least 2 (one on a
    single core).

    Why: a single pass already keeps ~1.7 cores busy, so more processes than cores / 2 only share the
    same cores; but 2 chunk processes on 2 cores still win on long texts (single-threaded OpenCV in
    each, no idle core at the ends of sentences): 0.77× the single pass's wall time for 317 s of
    video, 0.96× for 65 s (docs/benchmarks.md), hence `min_seconds`."""
    if chunking.workers:
        return chunking.workers
    available = cores or os.cpu_count() or 1
    return 1 if available < 2 else max(2, available // CORES_PER_RENDER)


def chunk_count(duration: float, chunking: ChunkingSettings, cores: int | None = None) -> int:
    """1 below `min_seconds` or with a single worker (chunks one after the other would only add process
    start-ups: memory is flat with length anyway); otherwise enough chunks of at most `chunk_seconds`,
    a multiple of the workers (so equal chunks keep every worker busy to the end)."""
    workers = worker_count(chunking, cores)
    if duration < chunking.min_seconds or workers == 1:
        return 1
    rounds = math.ceil(duration / (workers * chunking.chunk_seconds))
    count = workers * rounds
    return max(1, min(count, math.floor(duration / MIN_CHUNK_S)))


def pauses(words: list[TimedWord], min_pause_s: float) -> list[Pause]:
    """Silences of at least `min_pause_s` between consecutive caption words."""
    found = []
    for word, following in itertools.pairwise(words):
        if following.start - word.end >= min_pause_s:
            ends_sentence = word.break_after or word.text.rstrip("\"'”’)»」").endswith(SENTENCE_ENDS)
            found.append(Pause((word.end + following.start) / 2, ends_sentence))
    return found


def plan_chunks(words: list[TimedWord], frame_count: int, fps: int, chunking: ChunkingSettings) -> ChunkPlan:
    """Cut `frame_count` frames into `chunk_count` chunks near equal lengths, each cut in the pause
    nearest its target (a sentence end counts `sentence_preference_s` nearer); without a usable pause
    (a text that never stops) the cut goes at the target frame: the motion is continuous there too."""
    duration = frame_count / fps
    count = chunk_count(duration, chunking)
    if count == 1:
        return ChunkPlan(frame_count, ((0, frame_count),))
    candidates = pauses(words, chunking.min_pause_s)
    shortest = max(1, round(MIN_CHUNK_S * fps))
    cuts: list[int] = []
    for k in range(1, count):
        target = k * duration / count
        low = (cuts[-1] if cuts else 0) + shortest
        high = frame_count - shortest * (count - k)
        usable = [p for p in candidates if low <= round(p.time * fps) <= high]
        if usable:
            penalty = chunking.sentence_preference_s
            best = min(usable, key=lambda p: abs(p.time - target) + (0.0 if p.sentence_end else penalty))
            cut = round(best.time * fps)
        else:
            cut = min(max(round(target * fps), low), high)
        cuts.append(cut)
    bounds = [0, *cuts, frame_count]
    return ChunkPlan(frame_count, tuple(itertools.pairwise(bounds)))
