"""Re-mouthing from the speech in the Wav2Lip ONNX format (FaceFusion's lip_syncer, wav2lip type).

The format: the face box (brows to chin, cheek to cheek, as Wav2Lip's detector crop) resized to
96×96, BGR in [0, 1]; `target` holds that crop with its lower half blacked out, stacked on the
whole crop (6 channels, NCHW float32); `source` holds the 80×16 mel window of the frame
(fusion/processors/mel.py). The model paints the lower half with a mouth for that sound; only the
lower half is pasted back, feathered, so eyes and brows stay the reenactor's.

What it is for: idle-loop avatars and recorded drivers, whose mouths move with their own clip; the
lip syncer makes the mouth follow the speech audio of this render instead.
"""

from __future__ import annotations

import numpy as np

from config.settings import Fraction, Section
from fusion.errors import FusionError
from fusion.processors import mel
from fusion.processors.base import FrameContext, ProcessorSetup, ProcessorSpec
from fusion.processors.face_geometry import OutputBuffer, box_alignment, feather_mask, paste, warp_crop
from vision import topology as topo
from vision.models import FACEFUSION_ASSETS, ModelFormat, TensorSpec

SIZE = 96
_IN = (TensorSpec("source", (None, 1, 80, 16)), TensorSpec("target", (None, 6, SIZE, SIZE)))
_OUT = (TensorSpec(None, (None, 3, SIZE, SIZE)),)
_LICENCE = "Non-commercial (Wav2Lip, Rudrabha; research use only)"

MODELS = {
    fmt.name: fmt
    for fmt in (
        ModelFormat("wav2lip_96", "wav2lip_96.onnx", _LICENCE, False, FACEFUSION_ASSETS + "wav2lip_96.onnx",
                    _IN, _OUT),
        ModelFormat("wav2lip_gan_96", "wav2lip_gan_96.onnx", _LICENCE, False,
                    FACEFUSION_ASSETS + "wav2lip_gan_96.onnx", _IN, _OUT),
    )
}  # fmt: skip
CHIN_PAD = 0.06  # Wav2Lip's crop reaches a little below the chin (its detector box padded downwards)
_BROWS = topo.RIGHT_BROW + topo.LEFT_BROW


class LipSyncerOptions(Section):
    """`fusion.lip_syncer`: Wav2Lip-format re-mouthing from the speech audio."""

    model: str = "wav2lip_gan_96"
    blend: Fraction = 1.0


def face_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """Wav2Lip's crop of a face: cheek to cheek, brows to a little below the chin."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    oval = lm[list(topo.FACE_OVAL)]
    top = lm[list(_BROWS), 1].min()
    bottom = lm[topo.CHIN, 1]
    return (oval[:, 0].min(), top, oval[:, 0].max(), bottom + CHIN_PAD * (bottom - top))


def to_model(crop_bgr: np.ndarray) -> np.ndarray:
    """(1, 6, 96, 96): the crop with its lower half black, then the whole crop; BGR in [0, 1]."""
    whole = crop_bgr.astype(np.float32) / 255.0
    masked = whole.copy()
    masked[SIZE // 2 :] = 0.0
    return np.concatenate([masked, whole], axis=2).transpose(2, 0, 1)[None]


def from_model(output: np.ndarray) -> np.ndarray:
    return np.round(np.clip(output[0], 0.0, 1.0).transpose(1, 2, 0) * 255.0).astype(np.uint8)


def lower_half_mask() -> np.ndarray:
    """Where the generated mouth is pasted: the crop's lower half, eased in below the nose and feathered
    at the crop's edges."""
    rows = np.arange(SIZE, dtype=np.float32) + 0.5
    t = np.clip((rows - 0.5 * SIZE) / (0.12 * SIZE), 0.0, 1.0)
    return (t * t * (3 - 2 * t))[:, None] * feather_mask((SIZE, SIZE), 0.1)


class LipSyncer:
    """`Processor`: the mouth of every frame repainted for the speech around that frame."""

    name = "lip_syncer"
    needs_landmarks = True
    audio_span = (0.05, 0.25)  # seconds of speech before and after the frame it needs (mel window + STFT)

    def __init__(self, options: LipSyncerOptions) -> None:
        if options.model not in MODELS:
            raise FusionError(f"unknown lip_syncer model '{options.model}'; known: {', '.join(MODELS)}")
        self.options = options
        self.session = None
        self.filters = mel.mel_filters()
        self.mask = lower_half_mask()
        self.output = OutputBuffer()

    def requirements(self) -> list[str]:
        return [self.options.model]

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        if setup is None or setup.audio is None:
            raise FusionError("lip_syncer needs the speech audio (a ProcessorSetup with audio)")
        if setup.audio.rate != mel.RATE:
            raise FusionError(f"lip_syncer needs {mel.RATE} Hz audio, got {setup.audio.rate} Hz")
        self.session = setup.session(self.options.model)
        return base  # the still keeps the avatar's own closed mouth

    def mel_for(self, context: FrameContext) -> np.ndarray:
        """The frame's (80, 16) mel window from its audio window."""
        if context.audio is None:
            raise FusionError("lip_syncer got a frame without its audio window")
        start, stop = mel.samples_needed(mel.first_mel_frame(context.time_s))
        return mel.mel_window(context.audio.between(start, stop), self.filters)

    def sync(self, frame: np.ndarray, out: np.ndarray, landmarks: np.ndarray, spectrum: np.ndarray):
        matrix = box_alignment(face_box(landmarks), (SIZE, SIZE))
        crop = warp_crop(frame, matrix, (SIZE, SIZE))
        feed = {"source": spectrum[None, None], "target": to_model(crop)}
        mouth = from_model(self.session.run(None, feed)[0])
        return paste(frame, out, mouth, self.mask, matrix, self.options.blend)

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        if context.landmarks is None:
            return frame
        spectrum = self.mel_for(context)
        refreshed = self.output.refresh(frame, context.dirty)
        pasted = self.sync(frame, self.output.array, context.landmarks, spectrum)
        context.stats["lip_syncer_level"] = float(spectrum.mean())
        context.dirty = self.output.done(pasted, refreshed)
        return self.output.array

    def close(self) -> None:
        self.session = None
        self.output = OutputBuffer()


PROCESSOR = ProcessorSpec(
    "lip_syncer",
    create=lambda setup, options: LipSyncer(options),
    options=LipSyncerOptions,
    models=MODELS,
    requires=lambda options: [options.model],
    speech_rate=mel.RATE,
)
