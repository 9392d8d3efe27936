"""Viseme keyframes → per-frame motion track.

Mouth: eased interpolation between keyframes, smoothing, P/B/M closures enforced, and the jaw mostly
following the speech amplitude. Life outside the mouth, all seeded (same text, same motion): blinks
every 2-6 s lasting 120-300 ms, a slow idle drift of the head, a small nod and a brief widening of
the eyes on stressed words, brow raises on some of them and on every question, and a slight lift of
the brows that follows the voice in between.
"""

from __future__ import annotations

import numpy as np

from config import MotionSettings
from driver_synth.track import MotionTrack
from phoneme.artifacts import Accent, VisemeTrack

MOUTH = ("jaw_open", "lip_width", "lip_round", "lip_closure", "teeth", "tongue")
OPEN_VOWEL_JAW = 0.5  # a viseme opening the jaw this much (an open vowel) takes the full amplitude
CLOSE_SHAPE_GAIN = 0.6  # a closed-jaw shape (EE, OO, consonants) takes this share of it


def frame_count(duration: float, fps: int) -> int:
    return max(1, round(duration * fps))


def _eased(times: np.ndarray, key_times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Cosine-eased interpolation between keyframes (no overshoot, zero slope at each target)."""
    index = np.clip(np.searchsorted(key_times, times, side="right") - 1, 0, len(key_times) - 2)
    span = np.maximum(key_times[index + 1] - key_times[index], 1e-6)
    u = np.clip((times - key_times[index]) / span, 0.0, 1.0)
    ease = (1.0 - np.cos(np.pi * u)) / 2.0
    return values[index] + (values[index + 1] - values[index]) * ease


def _blinks(count: int, fps: int, motion: MotionSettings, rng: np.random.Generator) -> np.ndarray:
    """Blinks at seeded intervals; each closes fast (40 %) and opens slower, lasting 120-300 ms."""
    curve = np.zeros(count, dtype=np.float32)
    low, high = motion.blink_interval_s
    shortest, longest = motion.blink_duration_s
    t = rng.uniform(0.6, high)
    while t * fps < count - 1:
        frames = max(3, round(rng.uniform(shortest, longest) * fps))
        closing = max(1, int(frames * 0.4))
        shape = np.concatenate([np.linspace(0, 1, closing + 1)[1:], np.linspace(1, 0, frames - closing + 1)[1:]])
        start = int(t * fps)
        stop = min(count, start + len(shape))
        curve[start:stop] = np.maximum(curve[start:stop], shape[: stop - start])
        t += rng.uniform(low, high)
    return curve


def _idle(count: int, fps: int, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(count) / fps
    curve = np.zeros(count)
    for weight in (0.65, 0.35):
        frequency = rng.uniform(0.08, 0.35)
        curve += weight * np.sin(2 * np.pi * frequency * t + rng.uniform(0, 2 * np.pi))
    return (amplitude * curve).astype(np.float32)


def _bump(times: np.ndarray, centre: float, rise: float, hold: float, fall: float) -> np.ndarray:
    """0 → 1 over `rise` s ending at `centre`, held for `hold` s, back to 0 over `fall` s (eased)."""
    up = np.clip((times - (centre - rise)) / rise, 0.0, 1.0)
    down = np.clip(1.0 - (times - (centre + hold)) / fall, 0.0, 1.0)
    shape = np.minimum(up, down)
    return (1.0 - np.cos(np.pi * shape)) / 2.0


def _accent_motion(
    accents: list[Accent], times: np.ndarray, motion: MotionSettings, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Brows, eye widening and nods on stressed words: brows on a seeded share of the accents and on
    every question (held longer), a nod of `nod_deg` on each accent."""
    brow = np.zeros(len(times))
    nod = np.zeros(len(times))
    wide = np.zeros(len(times))
    for accent in accents:
        strength = accent.strength
        if accent.question or rng.uniform() < motion.brow_raise_share:
            hold = 0.45 if accent.question else rng.uniform(0.12, 0.3)
            brow = np.maximum(brow, motion.brow_raise * strength * _bump(times, accent.time, 0.14, hold, 0.3))
            wide = np.maximum(wide, 0.5 * strength * _bump(times, accent.time, 0.12, hold * 0.6, 0.25))
        nod += motion.nod_deg * strength * _bump(times, accent.time + 0.04, 0.12, 0.05, 0.35)
    return {"brow": brow, "eye_wide": wide, "nod": nod}


def synthesize_track(visemes: VisemeTrack, fps: int, motion: MotionSettings, seed: int) -> MotionTrack:
    from scipy.ndimage import gaussian_filter1d  # here, not at the top: 0.2 s of every `dhf` start otherwise

    count = frame_count(visemes.duration, fps)
    times = np.arange(count) / fps
    key_times = np.array([k.time for k in visemes.keyframes], dtype=np.float64)
    channels: dict[str, np.ndarray] = {}
    for name in MOUTH:
        values = np.array([getattr(k, name) for k in visemes.keyframes], dtype=np.float64)
        curve = _eased(times, key_times, values)
        if motion.smoothing_frames > 0:
            curve = gaussian_filter1d(curve, motion.smoothing_frames, mode="nearest")
        channels[name] = curve.astype(np.float32)
    if visemes.envelope and motion.loudness_weight > 0:
        env_times = np.arange(len(visemes.envelope)) / visemes.envelope_rate
        # Sampled at the frame centre, leading the sound a little less than the visemes do: the jaw
        # starts to open just before the voice gets loud.
        centre = times + 0.5 / fps + 0.5 * motion.anticipation_s
        loudness = np.interp(centre, env_times, np.asarray(visemes.envelope))
        loudness = gaussian_filter1d(loudness, max(motion.smoothing_frames, 0.5), mode="nearest")
        weight = motion.loudness_weight
        # Additive: the viseme keeps its own share of the opening (an AA is wider than an IY at the same
        # loudness), the rest follows the amplitude, which is what makes the jaw move with the voice.
        # The amplitude's share is itself tempered on close vowels and consonants (an EE or an OO is
        # said with a nearly closed jaw however loud it is), so rounded and spread lips can show.
        openness = np.clip(channels["jaw_open"] / OPEN_VOWEL_JAW, 0.0, 1.0)
        gain = CLOSE_SHAPE_GAIN + (1.0 - CLOSE_SHAPE_GAIN) * openness
        channels["jaw_open"] = ((1 - weight) * channels["jaw_open"] + weight * loudness * gain).astype(np.float32)
    for start, end in visemes.closures:
        inside = (times >= start - 0.5 / fps) & (times <= end)
        channels["lip_closure"][inside] = 1.0
    rng = np.random.default_rng(seed)
    channels["blink"] = _blinks(count, fps, motion, rng)
    speech_energy = gaussian_filter1d(channels["jaw_open"] * (1 - channels["lip_closure"]), fps * 0.25)
    channels["head_yaw"] = _idle(count, fps, motion.head_yaw_deg, rng)
    accents = _accent_motion(visemes.accents, times, motion, rng)
    channels["head_pitch"] = (
        _idle(count, fps, motion.head_pitch_deg * 0.7, rng)
        + motion.head_pitch_deg * 0.6 * speech_energy
        + accents["nod"]
    )
    channels["head_roll"] = _idle(count, fps, motion.head_roll_deg, rng)
    channels["brow"] = accents["brow"]
    channels["eye_wide"] = accents["eye_wide"]
    channels["head_x"] = _idle(count, fps, 0.015, rng)  # a little sway of the whole person, in interoculars
    channels["head_y"] = _idle(count, fps, 0.008, rng)
    channels["brow"] = np.maximum(channels["brow"], _brow_tone(speech_energy, count, fps, motion, rng))
    return MotionTrack.from_channels(fps, channels)


def _brow_tone(
    speech_energy: np.ndarray, count: int, fps: int, motion: MotionSettings, rng: np.random.Generator
) -> np.ndarray:
    """The brows are never quite still while someone talks: they lift a little with the voice (more on
    its louder stretches) and drift slowly, `brow_tone` at most; accents still raise them clearly.
    Without this the upper face froze between accents and read as a still photo with a moving mouth.
    Drawn after every other channel, so a seed still gives the same blinks and head motion."""
    drift = 0.5 + 0.5 * _idle(count, fps, 1.0, rng)
    voice = speech_energy / max(float(speech_energy.max()), 1e-6)
    return (motion.brow_tone * np.clip(0.7 * voice + 0.3 * drift, 0.0, 1.0)).astype(np.float32)
