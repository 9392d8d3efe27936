"""A generated speaking recording for the personal-avatar tests (and the mouth-bank benchmark).

The bundled sample portrait is driven by the project's own reenactor with the motion track of real
espeak-ng speech, so lips move like speech and the audio is speech. Its mouth interior is then
repainted with a pattern the reenactor never paints: stripes whose colour encodes the frame's true
shape (green = visible opening, red = lip width, blue = rounding). So a render that shows this
pattern shows a bank mouth, and the colour it shows says which shape was chosen.

It starts with `lead_s` of silence and closed lips: the quiet stretch enrollment turns into the
idle loop. Head motion is off (a steady camera) unless `head_yaw_deg` is given (issue 26: the head
then turns side to side while speaking, ±`head_yaw_deg`, with a smaller nod, so held-out frames
fall in every pose bucket); `light_drift` dims the whole frame linearly by that share over the
speech (a window's light fading). Blinks stay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from config import Settings, load_visemes_table
from config.loader import load_voices
from driver_synth.synthesize import synthesize_track
from driver_synth.track import MotionTrack
from fusion.mouth_bank import similarity
from fusion.processors.base import FrameContext
from fusion.processors.reenactor import Reenactor
from media.video import EncodeOptions, VideoWriter, read_frames
from phoneme.espeak_engine import EspeakEngine
from phoneme.speech import synthesize_speech
from phoneme.tts import read_wav, write_wav
from phoneme.visemes import VisemeTable, build_keyframes, loudness_envelope
from vision import topology as topo
from vision.analysis import FaceAnalyser, read_image
from vision.framing import apply_framing, choose_framing
from vision.models import ModelRegistry

SAMPLE = Path(__file__).resolve().parent.parent / "avatars" / "sample" / "portrait.png"
SCRIPT = (
    "Hello, my name is Bob. We knew who you were. Papa saw the big cheese on a boat. "
    "I thought about food, music and the moon, while you were away."
)
HEAD = ("head_yaw", "head_pitch", "head_roll", "head_x", "head_y", "head_scale")


@dataclass(frozen=True)
class Recording:
    path: Path
    track: MotionTrack  # the true motion of every frame
    size: int


def mouth_colour(gap: float, width: float, rounded: float) -> np.ndarray:
    """BGR of the pattern for one shape (the encoding the tests decode)."""
    return np.array([40 + 190 * rounded, 40 + 200 * min(gap / 0.6, 1.0), 40 + 190 * width], np.float32)


def paint_interior(frame: np.ndarray, landmarks: np.ndarray, colour: np.ndarray) -> None:
    inner = np.concatenate(
        [landmarks[list(topo.LIPS_INNER_UPPER), :2], landmarks[list(topo.LIPS_INNER_LOWER), :2][::-1]]
    )
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(inner * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    rows = np.arange(frame.shape[0])[:, None, None]
    stripes = np.where((rows // 3) % 2 == 0, 1.0, 0.55).astype(np.float32)  # a texture, not a flat fill
    pattern = colour[None, None, :] * stripes
    alpha = mask[..., None].astype(np.float32) / 255.0
    frame[:] = np.clip(frame * (1 - alpha) + pattern * alpha, 0, 255).astype(np.uint8)


def speech_track(settings: Settings, text: str, lead_s: float, folder: Path,
                 head_yaw_deg: float = 0.0) -> tuple[MotionTrack, Path]:  # fmt: skip
    voices, _ = load_voices()
    speech = synthesize_speech(text, voices["en-us-female"], settings, EspeakEngine)  # fast: not the voice under test
    samples, rate = read_wav(speech.wav_path)
    visemes = build_keyframes(speech.timings(), VisemeTable(load_visemes_table()), settings.motion,
                              loudness_envelope(samples, rate))  # fmt: skip
    fps = settings.video.fps
    spoken = synthesize_track(visemes, fps, settings.motion, seed=7)
    lead = round(lead_s * fps)
    channels = {}
    for name, values in spoken.channels.items():
        pad = np.zeros(lead, np.float32)
        if name == "lip_closure":
            pad[:] = values[0]
        channels[name] = np.concatenate([pad, values]) if name not in HEAD else np.zeros(lead + len(values), np.float32)
    if head_yaw_deg:  # still during the lead (the idle loop and reference frame are frontal), then turning
        t = np.maximum(np.arange(lead + len(spoken.channels["jaw_open"])) - lead, 0) / fps
        ramp = np.minimum(t / 0.5, 1.0)
        channels["head_yaw"] = (head_yaw_deg * ramp * np.sin(2 * np.pi * t / 3.2)).astype(np.float32)
        channels["head_pitch"] = (0.3 * head_yaw_deg * ramp * np.sin(2 * np.pi * t / 2.3)).astype(np.float32)
    track = MotionTrack.from_channels(fps, channels)
    audio = np.concatenate([np.zeros(round(lead * rate / fps), np.float32), np.asarray(samples, np.float32)])
    wav = folder / "speech.wav"
    write_wav(wav, audio, rate)
    return track, wav


def make_recording(settings: Settings, folder: Path, size: int = 448, text: str = SCRIPT,
                   lead_s: float = 2.0, repeats: int = 1, photo: Path = SAMPLE,
                   head_yaw_deg: float = 0.0, light_drift: float = 0.0) -> Recording:  # fmt: skip
    """Render the recording (MP4 with speech) of `photo` into `folder`; returns it with its true track."""
    folder.mkdir(parents=True, exist_ok=True)
    track, wav = speech_track(settings, " ".join([text] * repeats), lead_s, folder, head_yaw_deg)
    lead = round(lead_s * track.fps)
    image = read_image(photo, settings.images.max_pixels)
    face = FaceAnalyser(ModelRegistry(settings.paths.models)).single_face(image)
    work, landmarks = apply_framing(image, face.landmarks, choose_framing(face.landmarks, image.shape, size))
    reenactor = Reenactor(landmarks)
    reenactor.prepare(work)
    path = folder / "recording.mp4"
    with VideoWriter(path, size, size, EncodeOptions(fps=track.fps, crf=16), audio=wav) as writer:
        for index in range(track.frame_count):
            motion = track.frame(index)
            frame = reenactor.process_frame(work, FrameContext(index=index, motion=motion)).copy()
            moved = reenactor.frame_landmarks(motion)
            colour = mouth_colour(motion.mouth_gap, motion.lip_width, motion.lip_round)
            paint_interior(frame, moved, colour)
            if light_drift:
                gain = 1.0 - light_drift * max(index - lead, 0) / max(track.frame_count - lead, 1)
                frame = np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)
            writer.write(frame)
    return Recording(path, track, size)


def stranger_portrait(analyser: FaceAnalyser, index: int = 94) -> np.ndarray:
    """The sample portrait with another person's face over its own: LFW face `index` (scikit-image's
    bundled `lfw_subset`, 25×25 grey), placed by a similarity on the mesh, colour-matched and feathered
    inside the face oval. Same head, hair and background, so every other enrollment check sees the
    recording it expects; only the identity differs. Face 94 measures 0.67-0.71 from the sample in a
    generated recording (the hostile testers' 0.67); the sample itself degraded to that resolution
    stays at 0.39, so the distance is the person's, not the blur's."""
    from skimage.data import lfw_subset

    sample = cv2.imread(str(SAMPLE))  # the bundled portrait, well under any pixel limit
    own = analyser.single_face(sample).landmarks[:, :2]
    grey = cv2.resize((lfw_subset()[index] * 255).astype(np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)
    other = cv2.cvtColor(cv2.copyMakeBorder(grey, 128, 128, 128, 128, cv2.BORDER_REPLICATE), cv2.COLOR_GRAY2BGR)
    matrix = similarity(analyser.single_face(other).landmarks[:, :2], own)
    warped = cv2.warpAffine(other, matrix, sample.shape[1::-1], flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REPLICATE).astype(np.float32)  # fmt: skip
    mask = np.zeros(sample.shape[:2], np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(own[list(topo.FACE_OVAL)]).astype(np.int32)), 1.0)
    theirs, ours = warped[mask > 0], sample[mask > 0].astype(np.float32)
    warped = (warped - theirs.mean(0)) / theirs.std(0) * ours.std(0) + ours.mean(0)
    mask = cv2.GaussianBlur(cv2.erode(mask, np.ones((9, 9), np.uint8)), (0, 0), 4)[..., None]
    return np.clip(sample * (1 - mask) + warped * mask, 0, 255).astype(np.uint8)


def rewrite(recording: Recording, target: Path, edit: Callable[[int, np.ndarray], np.ndarray]) -> Path:
    """`recording` re-encoded with `edit(index, frame)` applied to every frame, its speech kept."""
    with VideoWriter(target, recording.size, recording.size, EncodeOptions(fps=recording.track.fps, crf=16),
                     audio=recording.path.parent / "speech.wav") as writer:  # fmt: skip
        for index, frame in enumerate(read_frames(recording.path, fps=recording.track.fps)):
            writer.write(edit(index, frame))
    return target
