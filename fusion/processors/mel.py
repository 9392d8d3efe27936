"""Wav2Lip's mel spectrogram: what its audio encoder was trained on, reproduced exactly.

16 kHz mono, pre-emphasis 0.97, a centred STFT (800-sample Hann window, hop 200: 80 frames per
second), magnitudes through 80 Slaney-normalized mel filters from 55 to 7600 Hz, decibels relative to
20 dB, then scaled to [-4, 4] over a 100 dB range. A frame at time t sees the 16 mel frames (0.2 s)
starting at mel frame int(80·t). A different scale or filter bank gives a model input it never saw,
and the mouth moves wrongly while looking plausible, so every constant here is the format's.
"""

from __future__ import annotations

import numpy as np

RATE = 16000
N_FFT = 800
HOP = 200
N_MELS = 80
FMIN, FMAX = 55.0, 7600.0
PREEMPHASIS = 0.97
REF_DB, MIN_DB, MAX_ABS = 20.0, -100.0, 4.0
STEPS = 16  # mel frames per video frame window (0.2 s)
MEL_PER_SECOND = RATE / HOP


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    hz = np.asarray(hz, np.float64)
    linear = hz / (200.0 / 3)
    log_step = np.log(6.4) / 27.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / log_step, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(log_step * (mel - 15.0)), mel * (200.0 / 3))


def mel_filters() -> np.ndarray:
    """(80, 401) triangular filters on the Slaney scale, each scaled to unit area (Slaney norm)."""
    edges = mel_to_hz(np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), N_MELS + 2))
    bins = np.linspace(0.0, RATE / 2, N_FFT // 2 + 1)
    widths = np.diff(edges)
    rising = (bins[None, :] - edges[:-2, None]) / widths[:-1, None]
    falling = (edges[2:, None] - bins[None, :]) / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[:, None]


WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float64)  # periodic Hann


def normalized_db(magnitudes: np.ndarray) -> np.ndarray:
    """Linear mel magnitudes → the format's [-4, 4] scale."""
    db = 20.0 * np.log10(np.maximum(magnitudes, 1e-5)) - REF_DB
    return np.clip(2 * MAX_ABS * (db - MIN_DB) / -MIN_DB - MAX_ABS, -MAX_ABS, MAX_ABS)


def first_mel_frame(time_s: float) -> int:
    return int(MEL_PER_SECOND * time_s)


def samples_needed(first_mel: int) -> tuple[int, int]:
    """Track samples [start, stop) that mel frames [first_mel, first_mel + 16) are computed from
    (one more at the start, for the pre-emphasis)."""
    start = first_mel * HOP - N_FFT // 2
    return start - 1, start + (STEPS - 1) * HOP + N_FFT


def mel_window(samples: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """(80, 16) normalized mel window from `samples_needed`'s samples."""
    signal = np.asarray(samples, np.float64)
    emphasized = signal[1:] - PREEMPHASIS * signal[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(emphasized, N_FFT)[::HOP][:STEPS]
    spectrum = np.abs(np.fft.rfft(frames * WINDOW, axis=1))  # (16, 401)
    return normalized_db(filters @ spectrum.T).astype(np.float32)
