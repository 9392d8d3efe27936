"""The end of a stream: its released segments published as the usual answer (MP4, captions, report).

Why joined from the segments and not rendered again: what the viewer saw must be what is kept and
signed. `media.hls.join_segments` copies exactly the released segments (no re-encode), so the answer's
decoded frames equal theirs; the file is then sealed like any render (C2PA manifest, provenance tags
already written by the join) and passes `dhf verify` (label, watermark of the stream's content id,
metadata, C2PA, the audit entry of the stream's end)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from config.files import atomic_path, content_hash, file_sha256
from driver_synth.track import MotionTrack
from governance.provenance import seal
from media.hls import join_segments
from phoneme.captions import write_captions
from phoneme.tts import write_wav
from pipeline.report import (
    DriverPart,
    FallbackPart,
    RenderReport,
    ScenePart,
    SettingsPart,
    SpeechPart,
    StreamPart,
    SyncPart,
    VideoPart,
    VoicePart,
    request_parts,
)
from quality.measure import correlation_at_best_lag, rms_envelope
from streaming.parts import SpokenPart
from streaming.state import ANSWER_STEM


def _answer_track(parts: list[SpokenPart]) -> MotionTrack:
    names = parts[0].track.channels.keys()
    channels = {name: np.concatenate([p.track.channels[name] for p in parts]) for name in names}
    return MotionTrack.from_channels(parts[0].track.fps, channels)


def publish_answer(render: Any, parts: list[SpokenPart]) -> dict[str, str]:
    """Write answer.mp4 (sealed), answer.srt/.vtt and answer.report.json; their paths by kind.
    `render` is the `streaming.render.StreamRender` that released the segments (not imported: it
    imports this module)."""
    folder, enc, settings, validated = render.folder, render.enc, render.settings, render.validated
    mp4 = folder / f"{ANSWER_STEM}.mp4"
    runs = [(enc / init, [enc / s.name for s in segments]) for init, segments in render.released.runs]
    join_segments(runs, mp4, render.metadata)
    audio = np.concatenate([p.samples for p in parts])
    rate = parts[0].rate
    wav, track_path = enc / "answer.wav", enc / "answer.track.npz"
    with atomic_path(wav) as temporary:
        write_wav(temporary, audio, rate)
    track = _answer_track(parts)
    with atomic_path(track_path) as temporary:
        track.save(temporary)
    marks = seal(mp4, render.generation, settings, render.content_id, track_path, wav)
    frames = render.released.frames
    gate_seconds = sum(run.seconds_gate for run in render.runs)
    marks["watermark_ms_per_frame"] = 0.0
    words = [word for part in parts for word in part.words]
    srt, vtt = folder / f"{ANSWER_STEM}.srt", folder / f"{ANSWER_STEM}.vtt"
    with atomic_path(srt) as srt_temporary, atomic_path(vtt) as vtt_temporary:
        write_captions(words, validated.request.language, srt_temporary, vtt_temporary)
    envelope = rms_envelope(audio.astype(np.float32) / 32768.0, rate, track.fps, track.frame_count)
    sync = correlation_at_best_lag(track.mouth_gap(), envelope, track.fps)
    last, first = render.runs[-1], render.runs[0]
    fallback = None
    if len(render.runs) > 1:
        fallback = FallbackPart(kind=last.mode, quality=last.quality, published=True)
    timings = [p.speech.timings() for p in parts]
    state = render.state
    report = RenderReport(
        output=str(mp4),
        published=True,
        sha256=file_sha256(mp4),
        **request_parts(validated, render.base_settings),
        stage_seconds={"gate": round(gate_seconds, 3)},
        cache_hits={"speech": all(p.speech.cache_hit for p in parts)},
        settings=SettingsPart(video=settings.video, motion=settings.motion, post=settings.post),
        user=render.user,
        created=dt.datetime.now(dt.UTC).isoformat(),
        frames=frames,
        processors=[],
        process_ms_per_frame=0.0,
        metadata=render.metadata,
        provenance=marks,
        speech=SpeechPart(
            key=content_hash([p.speech.key for p in parts]),
            duration_s=round(len(audio) / rate, 3),
            wav=str(wav),
            audio_sha256=file_sha256(wav),
            words=sum(len(t.words) for t in timings),
            phones=sum(len(t.phones) for t in timings),
            voice=VoicePart(template=validated.voice.name, **validated.voice_info.as_dict())
            if validated.voice_info
            else None,
        ),
        driver=DriverPart(
            source="synthetic",
            key=content_hash([p.speech.key for p in parts] + ["stream", render.content_id]),
            track=str(track_path),
            track_sha256=file_sha256(track_path),
        ),
        quality=first.quality if first.quality is not None else last.quality,
        fallback=fallback,
        video=VideoPart(
            duration_s=round(frames / settings.video.fps, 3),
            width=settings.video.width,
            height=settings.video.height,
            fps=settings.video.fps,
        ),
        captions={"srt": str(srt), "vtt": str(vtt)},
        driver_audio_sync=SyncPart(**sync),
        scene=ScenePart.of(settings.scene.name, settings.scene_template),
        stream=StreamPart(
            stream_id=state.stream_id,
            first_release_s=state.first_release_s,
            segments=len(render.released.playlist),
            mode=last.mode,
            parts=len(parts),
            part_starts=[p.first_frame for p in parts],
            failure=state.failure,
        ),
    )
    path = report.save(folder / f"{ANSWER_STEM}.report.json")
    return {"mp4": str(mp4), "srt": str(srt), "vtt": str(vtt), "report": str(Path(path))}
