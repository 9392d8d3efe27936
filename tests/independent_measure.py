"""A test-only reference measurement of lip-sync, through a path that shares nothing with the product's.

Why: the product's gate measures lip-sync with its own landmarks (vision/) and its own estimator
(`quality.measure.correlation_at_best_lag`); a test that judges a render with those same parts can only
find that the product agrees with itself. This module measures the same thing from the file alone with
other tools and other definitions, so a bug shared by the renderer and its monitor still shows:

- frames are decoded with OpenCV's own decoder (cv2.VideoCapture), not the product's ffmpeg pipe;
- the face is found by dlib's HOG frontal detector (no neural model, no landmarks);
- the mouth opening is the share of dark pixels (the open mouth's cavity) in a fixed part of that box:
  the dark threshold is a fraction of the crop's own median brightness, so it follows the lighting;
- the audio is decoded by ffmpeg to a WAV file and read with the standard `wave` module; its envelope is
  a plain RMS over each frame's own 40 ms (no window, no overlap);
- the offset is a plain argmax of Pearson's r over whole-frame lags (no tie rule).

Nothing here imports the product's packages.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# Where the mouth lies in dlib's face box (box-relative; the box spans the brows to the chin): the
# middle 40 % of its width, from 68 % to 100 % of its height. Generous on purpose: the head nods.
MOUTH_X = (0.30, 0.70)
MOUTH_Y = (0.68, 1.00)
DARK_FRACTION = 0.55  # a pixel darker than this share of the crop's median brightness is mouth cavity
# What the reference measures on renders in sync (default chain, sample avatar): 0.70 at -40 ms for the
# English sentence of tests/conftest.py, 0.76 at 0 ms for the Mandarin one of tests/test_slow_suites.py.
# The same renders with their audio 400 ms late measure 0.69 at -440 ms and 0.76 at -400 ms; with the
# mouth frozen (frame 0's mouth pasted on every frame) 0.07-0.21 and 0.20-0.24. The bar sits between.
EXPECTED_MIN_CORRELATION = 0.55
DETECT_WIDTH = 640  # frames are shrunk to this width to find the face (dlib's HOG finds faces ≥ 80 px)


@dataclass(frozen=True)
class MouthAndVoice:
    fps: float
    faces_found: np.ndarray  # bool per frame
    opening: np.ndarray  # dark share of the mouth crop per frame (nan where no face)
    envelope: np.ndarray  # audio RMS over each frame's 40 ms


@dataclass(frozen=True)
class Sync:
    correlation: float  # Pearson's r at the best lag
    lag_ms: float  # the mouth's delay behind the voice (positive: the mouth is late)
    at_zero: float  # Pearson's r with no shift


def measure(video: Path) -> MouthAndVoice:
    """The mouth opening per frame and the voice's envelope per frame, from the file alone."""
    import dlib  # only for these tests

    detector = dlib.get_frontal_face_detector()
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    openings, found = [], []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        scale = DETECT_WIDTH / grey.shape[1]
        small = cv2.resize(grey, (DETECT_WIDTH, round(grey.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        boxes = detector(small, 0)
        found.append(len(boxes) > 0)
        if not boxes:
            openings.append(np.nan)
            continue
        box = max(boxes, key=lambda b: b.width() * b.height())
        left, top, width, height = (v / scale for v in (box.left(), box.top(), box.width(), box.height()))
        x0, x1 = (round(left + f * width) for f in MOUTH_X)
        y0, y1 = (round(top + f * height) for f in MOUTH_Y)
        crop = grey[max(y0, 0) : y1, max(x0, 0) : x1].astype(np.float64)
        openings.append(float((crop < DARK_FRACTION * np.median(crop)).mean()))
    capture.release()
    envelope = audio_envelope(video, fps, len(found))
    return MouthAndVoice(fps, np.array(found), np.array(openings), envelope)


def audio_envelope(video: Path, fps: float, count: int, rate: int = 16000) -> np.ndarray:
    """RMS of the sound over each video frame's own span (frame i covers [i/fps, (i+1)/fps))."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "audio.wav"
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-vn", "-ac", "1", "-ar", str(rate),
                        "-c:a", "pcm_s16le", str(wav)], check=True)  # fmt: skip
        with wave.open(str(wav)) as handle:
            samples = np.frombuffer(handle.readframes(handle.getnframes()), np.int16) / 32768.0
    per_frame = rate / fps
    values = []
    for index in range(count):
        span = samples[round(index * per_frame) : round((index + 1) * per_frame)]
        values.append(float(np.sqrt(np.mean(span**2))) if len(span) else 0.0)
    return np.array(values)


def sync(measured: MouthAndVoice, max_lag_ms: float = 600) -> Sync:
    """Pearson's r between mouth opening and voice at every whole-frame lag within ±max_lag_ms; the best one."""
    mouth, voice = measured.opening, measured.envelope
    steps = int(max_lag_ms / 1000 * measured.fps)
    scores = {}
    for lag in range(-steps, steps + 1):
        # lag > 0: the mouth at frame i + lag goes with the voice at frame i (the mouth is late)
        a = mouth[max(lag, 0) : len(mouth) + min(lag, 0)]
        b = voice[max(-lag, 0) : len(voice) - max(lag, 0)]
        keep = ~np.isnan(a) & ~np.isnan(b)
        a, b = a[keep], b[keep]
        # a still mouth (or silence) correlates with nothing: r = 0, not numpy's nan
        steady = len(a) < 10 or a.std() == 0 or b.std() == 0
        scores[lag] = 0.0 if steady else float(np.corrcoef(a, b)[0, 1])
    best = max(scores, key=scores.get)
    return Sync(round(scores[best], 3), best * 1000 / measured.fps, round(scores[0], 3))
