"""Neural processor benchmark: ms/frame of each processor on the CPU with the tiny test models
(tests/tiny_models.py: the exact I/O of each format, almost no compute), so what is measured is
the processors' own work: alignment, normalisation, paste-back, tiling, the mel window. With real
weights add the model's own time (scripts/device_check measures that on a GPU).

Also: alignment + paste-back alone (no model), and the whole engine per frame with the default
chain and with all four neural processors. Usage:
    .venv/bin/python scripts/bench_processors.py [--frames 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tiny_models as tiny  # noqa: E402

from avatars.library import AvatarLibrary  # noqa: E402
from config import load_settings  # noqa: E402
from driver_synth.track import MotionTrack  # noqa: E402
from fusion.engine import FusionEngine, RenderOptions  # noqa: E402
from fusion.processors import mel  # noqa: E402
from fusion.processors.base import AudioTrack, FrameContext, ProcessorSetup  # noqa: E402
from fusion.processors.catalog import MODEL_FORMATS  # noqa: E402
from fusion.processors.face_enhancer import FaceEnhancer, FaceEnhancerOptions  # noqa: E402
from fusion.processors.face_geometry import OutputBuffer, align, feather_mask, paste, warp_crop  # noqa: E402
from fusion.processors.face_swapper import FaceSwapper, FaceSwapperOptions  # noqa: E402
from fusion.processors.frame_enhancer import FrameEnhancer, FrameEnhancerOptions  # noqa: E402
from fusion.processors.lip_syncer import LipSyncer, LipSyncerOptions  # noqa: E402
from pipeline import stages  # noqa: E402
from vision.models import ModelRegistry, add_model  # noqa: E402
from vision.providers import ProviderChoice  # noqa: E402

MODELS = {
    "inswapper_128": tiny.inswapper,
    "arcface_w600k_r50": tiny.arcface,
    "wav2lip_gan_96": tiny.lip_syncer,
    "gfpgan_1.4": tiny.face_enhancer,
    "real_esrgan_x2": lambda p: tiny.frame_enhancer(p, 2),
}
CHAIN = ("reenactor", "face_swapper", "lip_syncer", "face_enhancer", "color_matcher", "frame_enhancer", "compositor")


def timed(step, frames: int) -> float:
    step(0)  # warm-up (first session run allocates)
    start = time.perf_counter()
    for index in range(frames):
        step(index)
    return 1000 * (time.perf_counter() - start) / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    frames = parser.parse_args().frames
    home = Path(tempfile.mkdtemp(prefix="dhf-bench-proc-"))
    (home / "models").mkdir()
    for model in load_settings().paths.models.iterdir():
        (home / "models" / model.name).symlink_to(model)
    for name, build in MODELS.items():
        add_model(build(home / "downloads" / MODEL_FORMATS[name].filename), MODEL_FORMATS[name], home / "models")
    settings = load_settings(home=home)
    avatar = AvatarLibrary.from_settings(settings.paths).get("sample")
    analysis = stages.avatar_stage(avatar, settings)
    work, landmarks = analysis.work_image_and_landmarks(avatar)
    lm = np.asarray(landmarks, np.float64)[:, :2]
    audio = AudioTrack(np.random.default_rng(1).uniform(-0.5, 0.5, 4 * mel.RATE).astype(np.float32), mel.RATE)
    setup = ProcessorSetup(work, lm, 25, ModelRegistry(home / "models"), ProviderChoice(requested=("cpu",)), audio)
    mouth = (200, 330, 440, 470)  # a typical dirty rectangle of the reenactor (mouth and jaw), work pixels
    rows: list[tuple[str, float]] = []

    def context(index: int, dirty=mouth) -> FrameContext:
        t = index / 25
        return FrameContext(index, None, dirty=dirty, landmarks=lm, audio=audio.window(t - 0.05, t + 0.25), time_s=t)

    for label, processor in (
        ("face_swapper (inswapper 128 + ArcFace)", FaceSwapper(FaceSwapperOptions())),
        ("lip_syncer (Wav2Lip 96, mel window)", LipSyncer(LipSyncerOptions())),
        ("face_enhancer (GFPGAN 512)", FaceEnhancer(FaceEnhancerOptions())),
    ):
        processor.prepare(work, setup)
        rows.append((label, timed(lambda i, p=processor: p.process_frame(work, context(i)), frames)))
        processor.close()
    enhancer = FrameEnhancer(FrameEnhancerOptions(model="real_esrgan_x2"), 1080)
    enhancer.prepare(work, setup)
    rows.append(
        (
            "frame_enhancer ×2, mouth dirty (tiles 256/16)",
            timed(lambda i: enhancer.process_frame(work, context(i)), frames),
        )
    )
    full = (0, 0, 640, 640)
    rows.append(
        (
            "frame_enhancer ×2, whole frame (idle loop)",
            timed(lambda i: enhancer.process_frame(work, context(i, full)), max(frames // 4, 2)),
        )
    )

    matrix = align(lm, "ffhq_512", 512)
    mask = feather_mask((512, 512), 0.15)
    buffer = OutputBuffer()

    def align_paste(index: int) -> None:
        refreshed = buffer.refresh(work, mouth)
        crop = warp_crop(work, align(lm, "ffhq_512", 512), (512, 512))
        buffer.done(paste(work, buffer.array, crop, mask, matrix, 0.8), refreshed)

    rows.append(("alignment + paste-back alone (512 crop, no model)", timed(align_paste, frames)))
    crop96 = np.zeros((96, 96, 3), np.uint8)
    rows.append(
        ("mel window alone (80×16)", timed(lambda i: mel.mel_window(np.zeros(3800), mel.mel_filters()), frames))
    )
    del crop96

    track = MotionTrack.from_channels(25, {"jaw_open": 0.5 + 0.5 * np.sin(np.arange(frames) / 3)})
    speech = home / "speech.wav"
    with wave.open(str(speech), "wb") as handle:
        handle.setnchannels(1), handle.setsampwidth(2), handle.setframerate(mel.RATE)
        handle.writeframes((audio.samples * 32767).astype("<i2").tobytes())
    neural = settings.with_section("fusion", processors=CHAIN, frame_enhancer={"model": "real_esrgan_x2"})
    for label, chosen in (("engine, default chain", settings), ("engine, all four neural processors", neural)):
        engine = FusionEngine.for_avatar(stages.avatar_look(avatar, analysis), chosen, RenderOptions(1, audio=speech))
        start = time.perf_counter()
        for _ in engine.frames(track):
            pass
        rows.append((f"{label} (1080p, {frames} frames)", 1000 * (time.perf_counter() - start) / frames))
        engine.close()
    print("| step (CPU, tiny models) | ms/frame |\n|---|---:|")
    for label, ms in rows:
        print(f"| {label} | {ms:.1f} |")


if __name__ == "__main__":
    main()
