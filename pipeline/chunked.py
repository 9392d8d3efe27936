"""A long render in parallel chunks: same frames, one audio track, one set of AI marks.

How it stays identical to a single pass (tests/test_chunked.py compares the two):
- the text is spoken once and moved once (speech, visemes and the motion track are the stages
  before this one, unchanged), so head pose, blink phase and every other channel are continuous
  across a cut by construction: chunk k renders frames [start, stop) of the one track, and an
  idle-loop avatar's base frames continue at the same loop position;
- each chunk is a separate process (local: `pipeline.chunk_runners.LocalRunner`; across machines:
  flows/chunk_flow.py) that
  encodes its frames as a video-only segment with the render's x264 settings, so the segment begins
  with a keyframe; the segments are joined without re-encoding (media/concat.py), with the whole
  WAV encoded once, exactly as a single pass encodes it;
- the content id is drawn once here: every chunk hides the same watermark payload, and the joined
  file gets the metadata tags and is sealed (C2PA) once. The quality gate, the captions, the report
  and the audit entry are the pipeline's, for the one joined video; the gate's monitor runs in each
  chunk on that chunk's frames, and the render's monitor takes the observations over in order.

Memory stays flat with length: a chunk holds one engine and streams its frames into ffmpeg; this
process holds only the plan and waits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from avatars.library import Avatar, AvatarLibrary
from config import Settings
from config.files import atomic_path
from driver_synth.driver import DriverArtifact
from driver_synth.track import MotionTrack
from fusion.engine import RenderOptions
from fusion.watermark import payload_of
from governance.provenance import new_content_id, provenance_tags, seal
from media.concat import join_segments
from media.errors import MediaError
from media.video import EncodeOptions, VideoWriter, probe
from phoneme.speech import SpeechArtifact
from pipeline import stages
from pipeline.chunk_runners import ChunkJob, ChunkResult, ChunkRunner, LocalRunner
from pipeline.chunks import ChunkingError, ChunkPlan, plan_chunks, worker_count
from pipeline.report import ChunksPart
from pipeline.request import staging_path
from quality.inline import KEYFRAME_EVERY, EncodeMonitor, monitor_setup
from vision.avatar_analysis import AvatarAnalysis

PROGRESS_EVERY = 25  # frames between progress messages from a chunk (1 s of video at 25 fps)

FrameProgress = Callable[[int, int], None]


# --- one chunk, in its own process ------------------------------------------------------------------------


def segment_options(settings: Settings) -> EncodeOptions:
    """x264 settings of every segment: the render's own, no audio and no tags (the join adds both)."""
    video = settings.video
    threads, every = video.encoder_thread_count(), KEYFRAME_EVERY
    return EncodeOptions(video.fps, video.crf, video.preset, video.audio_bitrate, threads, keyframe_every=every)


def render_chunk(job: ChunkJob, progress: Callable[[int, int], None] | None = None) -> ChunkResult:
    """Render frames [start, stop) of the track into `job.segment` (atomically), with the frame loop
    of a single pass (`stages.render_span`).

    Runs in a process of its own (a chunk process or a work-pool flow run), beside other chunks that
    keep every core busy: OpenCV's own thread pool would only oversubscribe the cores, so it is off."""
    cv2.setNumThreads(1)
    started = time.perf_counter()
    settings = job.settings
    avatar = AvatarLibrary.from_settings(settings.paths).get(job.avatar_id, job.avatar_version)
    analysis = stages.avatar_stage(avatar, settings)  # cached on disk: computed by the submitter already
    track = MotionTrack.load(job.track)
    if job.stop > track.frame_count or job.start < 0 or job.start >= job.stop:
        raise ChunkingError(
            f"chunk {job.index} asks for frames {job.start}-{job.stop} of a {track.frame_count}-frame track"
        )
    captions = stages.scene_captions(settings, job.timings)
    render = RenderOptions(job.watermark_payload, job.mode, track.source == "recorded", job.audio, captions)
    video = settings.video
    frames = job.stop - job.start

    def done(count: int) -> None:
        if progress is not None and (count % PROGRESS_EVERY == 0 or count == frames):
            progress(job.index, count)

    monitor = chunk_monitor(avatar, settings, job.start, analysis) if job.observe else None
    try:
        with (
            atomic_path(job.segment) as temporary,
            VideoWriter(temporary, video.width, video.height, segment_options(settings)) as writer,
        ):
            span = stages.render_span(avatar, analysis, settings, track, (job.start, job.stop), render, writer,
                                      monitor, done)  # fmt: skip
        if monitor is not None:
            with atomic_path(observed_path(job.segment)) as temporary, open(temporary, "wb") as handle:
                np.savez(handle, **monitor.export())
    finally:
        if monitor is not None:
            monitor.abort()  # a no-op once exported; stops its thread if the chunk failed
    return ChunkResult(
        index=job.index,
        frames=span.frames,
        processors=span.processors,
        reenact_seconds=round(span.reenact_seconds, 3),
        watermark_seconds=round(span.watermark_seconds, 3),
        seconds=round(time.perf_counter() - started, 3),
        peak_rss_mb=round(peak_rss_mb(), 1),
        providers=span.providers,
    )


def chunk_monitor(
    avatar: Avatar, settings: Settings, start: int, analysis: AvatarAnalysis | None = None
) -> EncodeMonitor:
    """The gate's monitor for a chunk's frames: observed here, in parallel with the other chunks, and
    handed to the render's monitor (`EncodeMonitor.absorb`) instead of decoding the joined file again."""
    video = settings.video
    setup = monitor_setup(avatar, settings, analysis)
    return EncodeMonitor(setup, video.width, video.height, video.fps, settings.quality.analysis_height, start)


def observed_path(segment: Path) -> Path:
    """Where a chunk saves what its monitor observed: beside its segment."""
    return Path(segment).with_suffix(".observed.npz")


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    Linux: VmHWM of /proc/self/status, the high-water mark of this process's own memory. Not
    `ru_maxrss`: Linux carries it across fork + exec, so a chunk started by a 900 MB parent would
    report at least 900 MB whatever it used itself. Elsewhere `ru_maxrss` (kB on Linux, bytes on macOS)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# --- the render's work folder -----------------------------------------------------------------------------


def work_folder(target: Path) -> Path:
    """Where a chunked render keeps its track, speech and segments: beside its staging file (pool
    workers share that storage), named after it, so one per render."""
    return target.with_name(f".{target.name}.chunks")


@contextlib.contextmanager
def owned_work_folder(target: Path) -> Iterator[Path]:
    """The render's work folder, locked (flock) by this process for as long as it renders, removed after.

    Why a lock: `kill -9` skips every cleanup, so a killed render's folder stays; the next render of
    the output removes such folders (`remove_stale_work`), but must tell them from the folder of a
    render still running. The kernel drops the lock with its process. The folder is made and locked
    under a temporary name, then renamed: it is never visible unlocked while its owner lives."""
    work = work_folder(target)
    shutil.rmtree(work, ignore_errors=True)  # a killed earlier attempt at this staging name
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".new", dir=target.parent))
    handle = os.open(fresh, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        os.rename(fresh, work)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(fresh, ignore_errors=True)
        os.close(handle)


def remove_stale_work(output: Path) -> list[Path]:
    """Remove the work folders of earlier renders of `output` that no process owns any more (killed
    renders: their lock died with them); a folder still locked belongs to a render of the same output
    running now and stays. Returns what was removed."""
    output = Path(output)
    token = "<token>"
    escaped = re.escape(work_folder(staging_path(output, token)).name)
    pattern = re.compile(escaped.replace(re.escape(token), r"[0-9a-f]+(?:-fallback)?"))
    removed = []
    for folder in sorted(output.parent.iterdir()):
        if not pattern.fullmatch(folder.name) or not folder.is_dir():
            continue
        try:
            handle = os.open(folder, os.O_RDONLY)
        except OSError:  # gone meanwhile
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except BlockingIOError:  # its render is running
            pass
        finally:
            os.close(handle)
    return removed


# --- the chunked render stage ----------------------------------------------------------------------------


def plan_for(driver: DriverArtifact, speech: SpeechArtifact | None, settings: Settings) -> ChunkPlan:
    """The chunk plan of a render: one span for a short text or a recorded driver (its motion is
    smoothed frame to frame, state a cut would reset), else cuts at pauses of the speech."""
    track = driver.track()
    if speech is None or track.source != "synthetic":
        return ChunkPlan(track.frame_count, ((0, track.frame_count),))
    return plan_chunks(speech.timings().words, track.frame_count, track.fps, settings.chunking)


def render_stage(job: stages.RenderJob, runner: ChunkRunner | None = None) -> stages.RenderedVideo:
    """`stages.render_stage`, in chunks when the speech is long enough (`chunking.min_seconds`).

    A render without `job.inputs.speech` (no pauses to cut at) or a still is one pass. `runner`
    (default: local processes; `chunking.executor: pool` needs the work-pool runner of
    flows/chunk_flow.py, which the Prefect flow passes). The gate's monitor gets what each chunk's
    own monitor observed; its keyframe check then runs on the joined file."""
    inputs = job.inputs
    plan = plan_for(inputs.driver, inputs.speech, job.settings) if job.mode != "still" else None
    if plan is None or not plan.chunked:
        return stages.render_stage(job)
    # No runner: local processes. A batch's or the API's videos are already spread over the pool's
    # workers, so their chunks run beside them whatever `chunking.executor` says.
    runner = runner or LocalRunner(worker_count(job.settings.chunking))
    try:
        return render_chunked(job, plan, runner)
    except BaseException:
        if job.monitor is not None:
            job.monitor.abort()
        raise


def render_chunked(job: stages.RenderJob, plan: ChunkPlan, runner: ChunkRunner) -> stages.RenderedVideo:
    """Render `plan`'s chunks with `runner`, join them into `job.target` and seal it once. With a
    monitor, every chunk observes its own frames and the monitor takes them over, in order. Each
    chunk loads the (cached) avatar analysis itself, wherever it runs."""
    validated, settings, monitor, on_frame, mode = job.validated, job.settings, job.monitor, job.on_frame, job.mode
    driver, audio = job.inputs.driver, job.inputs.wav
    started = time.perf_counter()
    target = Path(job.target)
    generation = validated.generation()
    content_id = new_content_id(generation)
    with owned_work_folder(target) as work:
        track = work / "track.npz"
        shutil.copyfile(driver.track_path, track)  # beside the output: pool workers share that storage
        speech = None
        if "lip_syncer" in settings.fusion.processors:
            speech = work / f"speech{Path(audio).suffix}"
            shutil.copyfile(audio, speech)
        timings = stages.speech_timings(Path(audio))
        if timings is not None and stages.scene_captions(settings, timings):
            timings = Path(shutil.copyfile(timings, work / "timings.json"))  # pool workers share this folder
        else:
            timings = None
        avatar = validated.avatar
        jobs = [
            ChunkJob(index, start, stop, avatar.avatar_id, avatar.version, settings, track,
                     work / f"chunk-{index:04d}.mp4", payload_of(content_id), mode, speech, monitor is not None,
                     timings)
            for index, (start, stop) in enumerate(plan.spans)
        ]  # fmt: skip
        done = dict.fromkeys(range(len(jobs)), 0)

        def progress(index: int, frames: int) -> None:
            done[index] = frames
            if on_frame is not None:
                on_frame(sum(done.values()), plan.frame_count)

        results = runner(jobs, progress)
        if monitor is not None:
            for job in jobs:
                with np.load(observed_path(job.segment)) as observed:
                    monitor.absorb(dict(observed))
        rendered_at = time.perf_counter()
        metadata = provenance_tags(generation, settings, content_id)
        options = EncodeOptions(**{**asdict(segment_options(settings)), "metadata": tuple(metadata.items())})
        with atomic_path(target) as temporary:
            join_segments([job.segment for job in jobs], temporary, options, audio, work / "concat.txt")
            joined = probe(temporary, count_frames=False).frames
            if joined != plan.frame_count:
                raise MediaError(f"joined {joined} frames instead of {plan.frame_count}; render again")
        joined_at = time.perf_counter()
    marks = seal(target, generation, settings, content_id, driver.track_path, Path(audio))
    frames = plan.frame_count
    marks["watermark_ms_per_frame"] = round(1000 * sum(r.watermark_seconds for r in results) / frames, 2)
    return stages.RenderedVideo(
        frames=frames,
        processors=results[0].processors,
        providers={name: provider for r in results for name, provider in r.providers.items()},
        process_ms_per_frame=round(1000 * sum(r.reenact_seconds for r in results) / frames, 2),
        metadata=metadata,
        provenance=marks,
        chunks=ChunksPart(
            count=len(jobs),
            cuts=list(plan.cuts),
            runner=type(runner).__name__,
            chunk_seconds=[r.seconds for r in results],
            chunk_peak_rss_mb=[r.peak_rss_mb for r in results],
            render_seconds=round(rendered_at - started, 3),
            join_seconds=round(joined_at - rendered_at, 3),
        ),
    )
