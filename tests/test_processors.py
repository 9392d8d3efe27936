"""Neural processors (issue 17) on tiny ONNX models in the exact FaceFusion formats.

Each tiny model (tests/tiny_models.py) computes something known (identity, −x, a constant colour, a
blur then a resize, the mean of the mel window), so alignment, normalisation, channel order,
paste-back feathering, tiling and the audio window are checked numerically, not by looking.
Also: `dhf models add` (atomic; wrong I/O and hash mismatch refused), provider fallback, the chain
from config (labeler and watermarker always last), model licences in request validation, and one
real render with all four neural processors that still carries the AI label and watermark.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np
import pytest
import tiny_models as tiny
from conftest import provisioned_models, run_dhf
from tint_processor import TintOptions

import config.processors as processor_registry
from avatars.library import AvatarLibrary
from config import load_settings
from config.errors import ConfigError
from config.settings import FusionSettings
from driver_synth.track import MotionTrack
from fusion.engine import EngineOptions, EngineResources, FusionEngine
from fusion.errors import FusionError
from fusion.processors import face_enhancer, face_swapper, lip_syncer, mel
from fusion.processors.base import AudioTrack, FrameContext, ProcessorSetup
from fusion.processors.catalog import MODEL_FORMATS, check_placed, model_format, required_models
from fusion.processors.face_enhancer import FaceEnhancer, FaceEnhancerOptions
from fusion.processors.face_geometry import TEMPLATES, align, five_points, warp_crop
from fusion.processors.face_swapper import FaceSwapper, FaceSwapperOptions, embedding_input
from fusion.processors.frame_enhancer import FrameEnhancer, FrameEnhancerOptions, from_model, to_model
from fusion.processors.lip_syncer import LipSyncer, LipSyncerOptions, face_box
from governance.model_licences import ModelLicenceError
from governance.verify import verify_video
from pipeline import stages
from pipeline.request import RenderRequest, validate_request
from vision.errors import ModelError
from vision.models import PLACED_LOCK, ModelRegistry, add_model
from vision.providers import ProviderChoice, open_session

NEURAL_CHAIN = ["reenactor", "face_swapper", "lip_syncer", "face_enhancer", "color_matcher", "frame_enhancer",
                "compositor"]  # fmt: skip


@pytest.fixture(scope="module")
def face(settings) -> tuple[np.ndarray, np.ndarray]:
    """The sample avatar's 640×640 work image and its 468 landmarks (work pixels)."""
    avatar = AvatarLibrary.from_settings(settings.paths).get("sample")
    work, landmarks = stages.avatar_stage(avatar, settings).work_image_and_landmarks(avatar)
    return work, np.asarray(landmarks, np.float64)


def place(folder: Path, builds: dict[str, object]) -> ModelRegistry:
    """Build each tiny model and place it with `add_model` (the code `dhf models add` runs)."""
    models = folder / "models"
    for name, build in builds.items():
        fmt = MODEL_FORMATS[name]
        add_model(build(folder / "downloads" / fmt.filename), fmt, models)
    return ModelRegistry(models, lock_file=folder / "none.lock.yaml")


def setup_for(registry: ModelRegistry, face, audio: AudioTrack | None = None) -> ProcessorSetup:
    work, landmarks = face
    return ProcessorSetup(work, landmarks, 25, registry, ProviderChoice(requested=("cpu",)), audio)


def context(landmarks: np.ndarray, time_s: float = 0.0, dirty=None) -> FrameContext:
    return FrameContext(index=0, motion=None, dirty=dirty, landmarks=landmarks, time_s=time_s)


def crop_to_frame(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    inverse = cv2.invertAffineTransform(matrix)
    return np.c_[points, np.ones(len(points))] @ inverse.T


# --- alignment ---------------------------------------------------------------------------------------


def test_alignment_follows_the_face_and_puts_its_points_on_the_template(face):
    landmarks = face[1][:, :2]
    angle, scale, shift = math.radians(15), 1.2, np.array([30.0, -20.0])
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = landmarks @ rotation.T + shift
    original, transformed = align(landmarks, "ffhq_512", 512), align(moved, "ffhq_512", 512)
    probe = landmarks[::25]
    before = np.c_[probe, np.ones(len(probe))] @ original.T
    after = np.c_[probe @ rotation.T + shift, np.ones(len(probe))] @ transformed.T
    assert np.abs(before - after).max() < 1e-6  # a turned, scaled, shifted face gives the same crop
    placed = np.c_[five_points(landmarks), np.ones(5)] @ original.T
    template = TEMPLATES["ffhq_512"] * 512
    assert np.abs(placed - template).max() < 0.06 * 512, placed  # eyes, nose, mouth corners in order
    assert placed[0, 0] < placed[1, 0] and placed[3, 0] < placed[4, 0] and placed[2, 1] < placed[3, 1]


# --- face_enhancer: normalisation, channel order, paste-back, feathering --------------------------------


def test_face_enhancer_pastes_the_models_output_exactly_where_the_face_is(face, tmp_path):
    work, landmarks = face
    registry = place(tmp_path, {"gfpgan_1.4": lambda p: tiny.face_enhancer(p, "negate")})
    enhancer = FaceEnhancer(FaceEnhancerOptions(model="gfpgan_1.4", blend=1.0))
    enhancer.prepare(work, setup_for(registry, face))
    out = enhancer.process_frame(work, context(landmarks)).copy()
    points = five_points(landmarks)
    x0, y0 = np.floor(points.min(0)).astype(int)
    x1, y1 = np.ceil(points.max(0)).astype(int)
    inverted = 255 - work[y0:y1, x0:x1].astype(np.int16)
    error = np.abs(out[y0:y1, x0:x1].astype(np.int16) - inverted)
    assert np.median(error) <= 2 and error.mean() < 4, (np.median(error), error.mean())  # −x in [-1, 1] = 255 − x
    changed = np.argwhere(np.any(out != work, axis=2))
    matrix = align(landmarks, "ffhq_512", 512)
    corners = crop_to_frame(matrix, np.array([[0, 0], [512, 0], [0, 512], [512, 512]], np.float64))
    assert (changed[:, ::-1] >= corners.min(0) - 1).all() and (changed[:, ::-1] <= corners.max(0) + 1).all()
    enhancer.close()


def test_each_format_gets_its_channel_order_and_value_range():
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 2] = 255  # BGR
    assert face_enhancer.to_model(red)[0, :, 0, 0].tolist() == [1.0, -1.0, -1.0]  # RGB in [-1, 1]
    assert embedding_input(red)[0, :, 0, 0].tolist() == [1.0, -1.0, -1.0]  # ArcFace: RGB in [-1, 1]
    assert face_swapper.to_model(red)[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0]  # inswapper: RGB in [0, 1]
    assert to_model(red)[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0]  # Real-ESRGAN: RGB in [0, 1]
    wav2lip = lip_syncer.to_model(cv2.resize(red, (96, 96)))[0, :, 10, 10].tolist()
    assert wav2lip == [0.0, 0.0, 1.0, 0.0, 0.0, 1.0]  # Wav2Lip: BGR in [0, 1], masked crop then whole
    assert lip_syncer.to_model(cv2.resize(red, (96, 96)))[0, 2, 60, 10] == 0.0  # lower half blacked out


def test_face_enhancer_keeps_rgb_order_and_feathers_the_crop_edge(face, tmp_path):
    _, landmarks = face
    registry = place(tmp_path, {"gfpgan_1.4": lambda p: tiny.face_enhancer(p, "constant", colour=(1.0, -1.0, -1.0))})
    grey = np.full((640, 640, 3), 100, np.uint8)
    for blend in (1.0, 0.5):
        enhancer = FaceEnhancer(FaceEnhancerOptions(model="gfpgan_1.4", blend=blend, mask_feather=0.15))
        enhancer.prepare(grey, setup_for(registry, face))
        out = enhancer.process_frame(grey, context(landmarks)).astype(np.float64)
        weight = (out[..., 2] - 100) / 155  # red rises to 255 under the pasted (pure red) crop
        assert np.abs(out[..., 0] - 100 * (1 - weight)).max() <= 1  # blue falls to 0: RGB→BGR kept
        matrix = align(landmarks, "ffhq_512", 512)
        along = np.linspace(2, 510, 128)  # the crop's horizontal midline, in crop pixels
        where = crop_to_frame(matrix, np.c_[along, np.full_like(along, 256)]).astype(np.float32)
        measured = cv2.remap(weight.astype(np.float32), where[:, 0][None], where[:, 1][None], cv2.INTER_LINEAR)[0]
        t = np.clip((np.minimum(along, 512 - along)) / (0.15 * 512), 0, 1)
        expected = blend * t * t * (3 - 2 * t)
        assert np.abs(measured - expected).max() < 0.04, np.abs(measured - expected).max()
        assert 0.1 < measured[5] < 0.9 * blend  # a soft edge, not a cut
        assert weight[0, 0] == 0 and weight[-1, -1] == 0


# --- frame_enhancer: tiles without seams -------------------------------------------------------------------


def whole_frame_reference(session, frame: np.ndarray, overlap: int, scale: int) -> np.ndarray:
    padded = cv2.copyMakeBorder(frame, overlap, overlap, overlap, overlap, cv2.BORDER_REFLECT_101)
    out = from_model(session.run(None, {"input": to_model(padded)})[0])
    height, width = frame.shape[:2]
    return out[overlap * scale : (overlap + height) * scale, overlap * scale : (overlap + width) * scale]


def test_frame_enhancer_tiles_join_without_seams_and_update_only_the_dirty_tiles(face, tmp_path):
    registry = place(tmp_path, {"real_esrgan_x2": lambda p: tiny.frame_enhancer(p, 2)})
    rng = np.random.default_rng(3)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (200, 210, 3), dtype=np.uint8), (0, 0), 1.0)
    setup = setup_for(registry, face)
    session = setup.session("real_esrgan_x2")
    reference = whole_frame_reference(session, frame, 4, 2)

    def enhanced(overlap: int, image: np.ndarray) -> FrameEnhancer:
        # model_construct: overlap 0 (seams expected) is below what the settings allow
        options = FrameEnhancerOptions.model_construct(model="real_esrgan_x2", tile=64, overlap=overlap)
        enhancer = FrameEnhancer(options, 300)
        enhancer.prepare(image, setup)
        return enhancer

    tiled = enhanced(4, frame)
    assert np.abs(tiled.enhanced[:400, :420].astype(int) - reference).max() <= 1  # no seam anywhere
    assert np.abs(tiled.base.astype(int) - cv2.resize(reference, (300, 300), interpolation=cv2.INTER_AREA)).max() <= 1
    seams = np.abs(enhanced(0, frame).enhanced[:400, :420].astype(int) - reference)
    assert seams[:, 127:129].max() > 20, "without overlap the tile edges show (the check can see seams)"
    changed = frame.copy()
    changed[90:120, 100:140] = 255 - changed[90:120, 100:140]
    out = tiled.process_frame(changed, context(None, dirty=(100, 90, 140, 120)))
    assert np.abs(out.astype(int) - enhanced(4, changed).base).max() <= 1  # = enhancing the whole new frame
    assert tiled.geometry[0] == pytest.approx(300 / 210)


# --- lip_syncer: the frame's own audio window, the lower half only ----------------------------------------


def test_mel_window_is_wav2lips_scale():
    t = np.arange(mel.RATE) / mel.RATE
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    start, stop = mel.samples_needed(20)
    spectrum = mel.mel_window(tone[start:stop], mel.mel_filters())
    assert spectrum.shape == (80, 16)
    centres = mel.mel_to_hz(np.linspace(mel.hz_to_mel(mel.FMIN), mel.hz_to_mel(mel.FMAX), 82))[1:-1]
    assert abs(centres[spectrum.mean(1).argmax()] - 1000) < 60
    assert (mel.mel_window(np.zeros(stop - start), mel.mel_filters()) == -4).all()


def test_lip_syncer_hears_the_frames_own_speech_and_repaints_only_the_lower_face(face, tmp_path):
    work, landmarks = face
    registry = place(tmp_path, {"wav2lip_gan_96": lambda p: tiny.lip_syncer(p, "audio_level")})
    t = np.arange(2 * mel.RATE) / mel.RATE
    noise = np.random.default_rng(5).uniform(-0.8, 0.8, len(t))  # loud in every mel band
    samples = np.where(t >= 1.0, noise, 0.0).astype(np.float32)
    track = AudioTrack(samples, mel.RATE)
    syncer = LipSyncer(LipSyncerOptions(model="wav2lip_gan_96"))
    syncer.prepare(work, setup_for(registry, face, track))
    x0, y0, x1, y1 = face_box(landmarks)
    mouth = (int((x0 + x1) / 2), int(y0 + 0.8 * (y1 - y0)))
    brow_row = int(y0 + 0.3 * (y1 - y0))
    levels = {}
    for time_s in (0.3, 1.5):
        window = track.window(time_s - syncer.audio_span[0], time_s + syncer.audio_span[1])
        out = syncer.process_frame(work, FrameContext(0, None, landmarks=landmarks, audio=window, time_s=time_s))
        levels[time_s] = int(out[mouth[1], mouth[0]].mean())
        start, stop = mel.samples_needed(mel.first_mel_frame(time_s))
        expected = mel.mel_window(samples[start:stop], mel.mel_filters()).mean() / 8 + 0.5
        assert abs(levels[time_s] - 255 * expected) <= 2
        assert (out[: brow_row + 1] == work[: brow_row + 1]).all()  # eyes and brows stay the reenactor's
    assert levels[0.3] <= 2 and levels[1.5] > 60, levels  # silence → the black mouth, the noise → bright


# --- face_swapper: the avatar's identity, emap, paste -------------------------------------------------------


def test_face_swapper_embeds_the_avatar_and_feeds_inswapper_its_latent(face, tmp_path):
    work, landmarks = face
    registry = place(
        tmp_path,
        {"inswapper_128": lambda p: tiny.inswapper(p, "invert"), "arcface_w600k_r50": tiny.arcface},
    )
    swapper = FaceSwapper(FaceSwapperOptions())
    swapper.prepare(work, setup_for(registry, face))
    crop = warp_crop(work, align(landmarks, "arcface_112", 112), (112, 112))
    expected = embedding_input(crop).mean(axis=(2, 3))[0] @ tiny.EMBED_WEIGHTS
    assert np.allclose(swapper.embedding, expected, atol=1e-4)
    assert np.allclose(swapper.latent[0], 2 * expected / np.linalg.norm(expected), atol=1e-4)  # emap = 2·I
    out = swapper.process_frame(work, context(landmarks))
    points = five_points(landmarks)
    x0, y0 = np.floor(points.min(0)).astype(int)
    x1, y1 = np.ceil(points.max(0)).astype(int)
    error = np.abs(out[y0:y1, x0:x1].astype(int) - (255 - work[y0:y1, x0:x1].astype(int)))
    assert np.median(error) <= 3, np.median(error)


# --- models: placed by the user, checked -------------------------------------------------------------


def test_models_add_pins_the_hash_and_refuses_wrong_io_and_wrong_hashes(tmp_path):
    models = tmp_path / "models"
    good = tiny.face_enhancer(tmp_path / "dl" / "gfpgan.onnx")
    wrong = tiny.arcface(tmp_path / "dl" / "arcface.onnx")
    with pytest.raises(ModelError, match=r"input 'input' has shape \[1,3,112,112\].*not a gfpgan_1.4 model"):
        add_model(wrong, MODEL_FORMATS["gfpgan_1.4"], models)
    with pytest.raises(ModelError, match=r"has no input 'input' \(it has source, target\)"):
        add_model(tiny.lip_syncer(tmp_path / "dl" / "w.onnx"), MODEL_FORMATS["gfpgan_1.4"], models)
    with pytest.raises(ModelError, match=r"expected 000000000000.*download it again"):
        add_model(good, MODEL_FORMATS["gfpgan_1.4"], models, expected_sha256="0" * 64)
    assert not models.exists() or not any(models.iterdir())  # nothing written by a refused file
    with pytest.raises(ModelError, match="has 1 inputs, a codeformer model has 2"):
        add_model(good, MODEL_FORMATS["codeformer"], models)
    target, sha256, replaced = add_model(good, MODEL_FORMATS["gfpgan_1.4"], models)
    registry = ModelRegistry(models, lock_file=tmp_path / "none.yaml")
    assert registry.path("gfpgan_1.4") == target and registry.spec("gfpgan_1.4").sha256 == sha256 and not replaced
    assert registry.spec("gfpgan_1.4").license.startswith("Apache-2.0")
    assert not list(models.glob(".*tmp*")) and (models / PLACED_LOCK).is_file()
    with target.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match=r"gfpgan_1.4.onnx has sha256 .*dhf models add FILE --as gfpgan_1.4"):
        registry.path("gfpgan_1.4")


def test_dhf_models_add_on_the_command_line(tmp_path):
    home = tmp_path / "home"
    good = tiny.face_enhancer(tmp_path / "gfpgan_1.4.onnx")
    result = run_dhf(["models", "add", str(good), "--as", "gfpgan_1.4"], home, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "added gfpgan_1.4" in result.stdout and (home / "models" / "gfpgan_1.4.onnx").is_file()
    wrong = tiny.lip_syncer(tmp_path / "w.onnx")
    result = run_dhf(["models", "add", str(wrong), "--as", "real_esrgan_x4"], home, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "not a real_esrgan_x4 model" in result.stderr and not (home / "models" / "real_esrgan_x4.onnx").exists()


# --- providers -------------------------------------------------------------------------------------------


def test_a_provider_that_fails_to_start_falls_back_to_the_next(tmp_path):
    model = tiny.face_enhancer(tmp_path / "m.onnx")
    tried = []

    def factory(path, options, providers):
        tried.append(providers)
        if providers[0][0] != "CPUExecutionProvider":
            raise RuntimeError(f"{providers[0][0]}: libcudart.so.12: cannot open shared object file")
        return open_session.__globals__["_ort_session"](path, options, providers)

    everything = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    choice = ProviderChoice(cache_dir=tmp_path / "trt", available=everything)
    session, used = open_session(model, choice, factory)
    assert used == "CPUExecutionProvider" and session.run(None, {"input": np.zeros((1, 3, 512, 512), np.float32)})
    assert [p[0][0] for p in tried] == list(everything)  # TensorRT, then CUDA, then the CPU
    assert tried[0][0][1]["trt_fp16_enable"] is True and tried[0][0][1]["trt_engine_cache_path"] == str(
        tmp_path / "trt"
    )
    tried.clear()
    open_session(model, ProviderChoice(requested=("cuda", "cpu"), available=everything), factory)
    assert [p[0][0] for p in tried] == ["CUDAExecutionProvider", "CPUExecutionProvider"]


# --- the chain from config ----------------------------------------------------------------------------------


def engine_with(face, settings, processors, registry=None) -> FusionEngine:
    work, landmarks = face
    video = settings.video
    options = EngineOptions(
        video.width, video.height, video.fps, settings.post, settings.label,
        fusion=processors if isinstance(processors, FusionSettings) else FusionSettings(processors=tuple(processors)),
    )  # fmt: skip
    return FusionEngine(work, landmarks, options, resources=EngineResources(registry))


def test_the_chain_comes_from_config_and_always_ends_labeled_and_watermarked(face, settings, tmp_path):
    default = engine_with(face, settings, FusionSettings().processors)
    assert default.processor_names == ["reenactor", "color_matcher", "upscaler", "compositor", "labeler", "watermarker"]
    shorter = engine_with(face, settings, ["reenactor", "upscaler", "compositor"])
    assert shorter.processor_names == ["reenactor", "upscaler", "compositor", "labeler", "watermarker"]
    assert not np.array_equal(default.still, np.zeros_like(default.still))
    for listed in (["reenactor", "upscaler", "compositor", "labeler"], ["reenactor", "upscaler", "watermarker",
                   "compositor"], ["upscaler", "reenactor", "compositor"], ["reenactor", "compositor"]):  # fmt: skip
        with pytest.raises(ValueError):
            FusionSettings(processors=tuple(listed))
    config = tmp_path / "drop.yaml"
    config.write_text("fusion:\n  processors: [reenactor, upscaler, compositor, watermarker]\n")
    with pytest.raises(ConfigError, match="'watermarker' cannot be listed"):
        load_settings(config)
    with pytest.raises(FusionError, match="unknown processor 'labeler'"):  # even bypassing validation
        engine_with(face, settings, FusionSettings.model_construct(processors=("reenactor", "labeler")))


def test_a_new_processor_is_picked_up_from_its_one_registry_line(face, settings, monkeypatch, tmp_path):
    """tests/tint_processor.py is a processor module as README's "Adding a processor" describes; one
    registry line makes its name listable, its Options the `fusion.tint` section, its ChainRule a
    refusal, its model table known to request validation, and the engine runs it."""
    line = {"tint": "tint_processor:PROCESSOR"}
    monkeypatch.setattr(processor_registry, "REGISTRY", MappingProxyType({**processor_registry.REGISTRY, **line}))
    config_file = tmp_path / "tint.yaml"
    config_file.write_text("fusion:\n  processors: [reenactor, tint, upscaler, compositor]\n  tint:\n    gain: 0.5\n")
    tinted = load_settings(config_file).fusion
    assert isinstance(tinted.tint, TintOptions) and tinted.tint.gain == 0.5
    assert FusionSettings().tint == TintOptions()  # its defaults when the YAML has no section
    assert required_models(tinted) == ["tint_lut"] and model_format("tint_lut").filename == "tint_lut.onnx"
    with pytest.raises(ModelError, match=r"'tint_lut' \(tint_lut.onnx\) is not placed.*--as tint_lut"):
        check_placed(ModelRegistry(tmp_path / "models", lock_file=tmp_path / "none.lock.yaml"), ["tint_lut"])
    config_file.write_text("fusion:\n  tint:\n    gain: 9\n")
    with pytest.raises(ConfigError, match=r"tint.yaml: fusion.tint.gain: Input should be less than or equal to 4"):
        load_settings(config_file)
    config_file.write_text("fusion:\n  processors: [reenactor, upscaler, tint, compositor]\n")
    with pytest.raises(ConfigError, match=r"'tint' must come right after 'reenactor' \(it tints the moved face\)$"):
        load_settings(config_file)

    engine = engine_with(face, settings, tinted)
    plain = engine_with(face, settings, ["reenactor", "upscaler", "compositor"])
    assert engine.processor_names == ["reenactor", "tint", "upscaler", "compositor", "labeler", "watermarker"]
    assert engine.models == ["tint_lut"]
    track = MotionTrack.from_channels(25, {"jaw_open": np.array([0.0, 0.8])})
    for ours, theirs in zip(engine.frames(track), plain.frames(track), strict=True):
        ours, theirs = ours.astype(np.float64), theirs.astype(np.float64)  # (copies: the arrays are reused)
        assert 0.45 < ours[..., 0].mean() / theirs[..., 0].mean() < 0.55  # blue halved, through upscaler and all
        assert abs(ours[..., 1].mean() - theirs[..., 1].mean()) < 1.0  # green untouched
    engine.close()
    plain.close()

    monkeypatch.undo()  # without its registry line the name is unknown again, in the one line it always got
    config_file.write_text("fusion:\n  processors: [reenactor, tint, upscaler, compositor]\n")
    with pytest.raises(ConfigError, match=r"fusion: unknown processor 'tint'; known: reenactor, color_matcher"):
        load_settings(config_file)


# --- requirements in request validation ------------------------------------------------------------------


def neural_home(folder: Path, builds: dict[str, object]) -> Path:
    """A DHF home whose model directory holds the provisioned face models (linked) and tiny models."""
    home = folder / "home"
    (home / "models").mkdir(parents=True)
    for model in provisioned_models().iterdir():
        (home / "models" / model.name).symlink_to(model)
    place(home, builds)
    return home


IDENTITY_MODELS = {
    "inswapper_128": tiny.inswapper,
    "arcface_w600k_r50": tiny.arcface,
    "wav2lip_gan_96": tiny.lip_syncer,
    "gfpgan_1.4": tiny.face_enhancer,
    "real_esrgan_x2": lambda p: tiny.frame_enhancer(p, 2, blur=False),
}


def test_request_validation_checks_the_chains_models_and_licences(tmp_path):
    home = neural_home(tmp_path, {"gfpgan_1.4": tiny.face_enhancer, "inswapper_128": tiny.inswapper})
    base = load_settings(home=home)
    request = RenderRequest("Hello.", "sample", "en", tmp_path / "out.mp4")
    chain = ("reenactor", "face_enhancer", "upscaler", "compositor")
    validate_request(request, base.with_section("fusion", processors=chain))
    with pytest.raises(
        ModelError, match=r"'arcface_w600k_r50' \(arcface_w600k_r50.onnx\) is not placed.*dhf models add"
    ):
        validate_request(request, base.with_section("fusion", processors=("reenactor", "face_swapper", *chain[2:])))
    gpen = base.with_section("fusion", processors=chain, face_enhancer={"model": "gpen_bfr_512"})
    with pytest.raises(ModelError, match=r"gpen_bfr_512\.onnx"):
        validate_request(request, gpen)
    place(home, {"gpen_bfr_512": tiny.face_enhancer})
    validate_request(request, gpen)  # non-commercial, but demo is not a commercial purpose
    commercial = gpen.with_section("fusion", commercial_purposes=("demo",))
    with pytest.raises(ModelLicenceError, match=r"'gpen_bfr_512' .*non-commercial.*purpose 'demo'"):
        validate_request(request, commercial)
    (home / "models" / "gfpgan_1.4.onnx").write_bytes(b"truncated")
    with pytest.raises(ModelError, match=r"gfpgan_1\.4\.onnx has sha256"):
        validate_request(request, base.with_section("fusion", processors=chain))


# --- all four, in a real render -------------------------------------------------------------------------------


def test_a_render_runs_all_four_neural_processors_and_stays_labeled_and_watermarked(tmp_path):
    home = neural_home(tmp_path, IDENTITY_MODELS)
    config = tmp_path / "neural.yaml"
    config.write_text(
        "video:\n  width: 640\n  height: 360\n"
        f"fusion:\n  processors: [{', '.join(NEURAL_CHAIN)}]\n  frame_enhancer:\n    model: real_esrgan_x2\n"
    )
    output = tmp_path / "neural.mp4"
    args = ["--config", str(config), "render", "Hello there.", "--avatar", "sample", "--lang", "en", "-o", str(output)]
    result = run_dhf([*args, "--quiet"], home)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(output.with_name("neural.report.json").read_text())
    assert report["processors"] == [*NEURAL_CHAIN, "labeler", "watermarker"]
    placed = ModelRegistry(home / "models").hashes()
    for name in IDENTITY_MODELS:
        assert report["models"][name] == placed[name]
        assert report["providers"][name] == "CPUExecutionProvider"
    settings = load_settings(home=home)
    checks = {check.mark: check.status for check in verify_video(output, settings).checks}
    assert checks["watermark"] == "valid" and checks["visible_label"] == "valid", checks
    from governance.audit import AuditLog

    entry = AuditLog(settings.paths.audit_db).entries()[-1].record
    assert entry.models["gfpgan_1.4"] == placed["gfpgan_1.4"] and entry.extra["providers"] == report["providers"]


def test_face_landmarks_follow_the_frame_through_resizing_stages(face, settings, tmp_path):
    """A face processor after the upscaler aligns on the landmarks in the upscaled frame's pixels: its
    constant red crop is centred on the face in the finished frame, wherever the compositor put it."""
    registry = place(tmp_path, {"gfpgan_1.4": lambda p: tiny.face_enhancer(p, "constant", colour=(1.0, -1.0, -1.0))})
    fusion = FusionSettings(processors=("reenactor", "upscaler", "face_enhancer", "compositor"))
    fusion = fusion.model_copy(update={"face_enhancer": fusion.face_enhancer.model_copy(update={"blend": 1.0})})
    engine = engine_with(face, settings, fusion, registry)
    track = MotionTrack.from_channels(25, {"head_yaw": np.array([0.0, 12.0])})
    upscaler, compositor = engine.chain[1], engine.chain[3]
    for frame, index in zip(engine.frames(track), range(2), strict=True):
        red = (frame[..., 2] > 240) & (frame[..., 1] < 15) & (frame[..., 0] < 15)
        xs = np.nonzero(red)[1]
        moved = engine.reenactor.frame_landmarks(track.frame(index))
        points = five_points(moved) * upscaler.scale + (upscaler.scale - 1) / 2 + [compositor.left, compositor.top]
        assert all(red[round(y), round(x)] for x, y in points), (index, points)  # under the crop
        assert abs(xs.mean() - points[:, 0].mean()) < 0.02 * frame.shape[1]  # centred on the face
    engine.close()


@pytest.mark.parametrize("avatar", ["sample", "sample-closed"])
def test_the_classic_backdrop_continues_the_portrait_instead_of_framing_a_square(avatar):
    """The default (no scene) layout puts the square portrait on a soft backdrop. That backdrop was
    the whole photo stretched, blurred and darkened by 45 %, so beside a light photo it was far
    darker than the portrait's edge: a pasted square (before: 37-91 grey levels at the left/right
    border of the real portraits, brightened as a light studio photo would be). It is now the photo's
    own edges mirrored outward and blurred, darkening only with distance from the portrait."""
    from fusion.processors.post import Compositor, CompositorOptions

    photo = cv2.imread(str(Path(__file__).resolve().parent.parent / "avatars" / avatar / "portrait.png"))
    for image in (photo, cv2.convertScaleAbs(photo, alpha=0.8, beta=60)):
        base = cv2.resize(image, (1080, 1080), interpolation=cv2.INTER_CUBIC)
        compositor = Compositor(CompositorOptions(1920, 1080))
        lum = compositor.prepare(base).astype(np.float32).mean(axis=2)
        left, right, band = compositor.left, compositor.left + 1080, compositor.feather
        step_left = lum[:, left - 16 : left].mean() - lum[:, left + band : left + band + 16].mean()
        step_right = lum[:, right : right + 16].mean() - lum[:, right - band - 16 : right - band].mean()
        assert abs(step_left) < 14 and abs(step_right) < 14, (avatar, step_left, step_right)
        sharpness = np.abs(cv2.Laplacian(lum, cv2.CV_32F))
        assert sharpness[:, : left - 16].mean() < 0.5 * sharpness[:, left + band : right - band].mean()
