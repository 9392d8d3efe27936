"""Viseme keyframes → per-frame motion track: eased interpolation, smoothing, closures, blinks, idle head."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from config import MotionSettings
from driver_synth.track import CHANNELS, MotionTrack
from phoneme.artifacts import VisemeTrack

MOUTH = ("jaw_open", "lip_width", "lip_round", "lip_closure", "teeth")


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
    curve = np.zeros(count, dtype=np.float32)
    low, high = motion.blink_interval_s
    t = rng.uniform(0.6, high)
    frames = max(3, round(motion.blink_duration_s * fps))
    closing = max(1, int(frames * 0.4))
    shape = np.concatenate([np.linspace(0, 1, closing + 1)[1:], np.linspace(1, 0, frames - closing + 1)[1:]])
    while t * fps < count - 1:
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


def synthesize_track(visemes: VisemeTrack, fps: int, motion: MotionSettings, seed: int) -> MotionTrack:
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
        channels["jaw_open"] = ((1 - weight) * channels["jaw_open"] + weight * loudness).astype(np.float32)
    for start, end in visemes.closures:
        inside = (times >= start - 0.5 / fps) & (times <= end)
        channels["lip_closure"][inside] = 1.0
    rng = np.random.default_rng(seed)
    channels["blink"] = _blinks(count, fps, motion, rng)
    speech_energy = gaussian_filter1d(channels["jaw_open"] * (1 - channels["lip_closure"]), fps * 0.25)
    channels["head_yaw"] = _idle(count, fps, motion.head_yaw_deg, rng)
    channels["head_pitch"] = (
        _idle(count, fps, motion.head_pitch_deg * 0.7, rng) + motion.head_pitch_deg * 0.6 * speech_energy
    )
    channels["head_roll"] = _idle(count, fps, motion.head_roll_deg, rng)
    return MotionTrack(fps=fps, channels={name: channels[name].astype(np.float32) for name in CHANNELS})
