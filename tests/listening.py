"""Listening without ears: an offline recogniser's word errors and DNSMOS, for tests and benchmarks.

Why two measures: a recogniser's word error rate says whether the words can be understood (an
intelligibility proxy), DNSMOS whether the voice sounds natural and clean; neither alone judges a voice
(a clear robot scores well on the first, a fluent mumble on the second). Compare voices on the same
text only. PocketSphinx's en-us model and dictionary ship in its wheel; DNSMOS's ONNX models in the
`speechmos` wheel (the `bench` extra; it needs librosa). Nothing is downloaded.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

RATE = 16000
_WORD = re.compile(r"[a-z']+")
# Spellings the recogniser's dictionary uses for what the text normalizer writes out (not errors).
SAME_WORD = {"mrs": "missus", "mr": "mister", "ms": "miz", "dr": "doctor", "okay": "ok"}


def audio_16k(path: Path) -> np.ndarray:
    """Mono 16 kHz int16 samples of any audio or video file (ffmpeg)."""
    command = ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"]
    return np.frombuffer(subprocess.run(command, capture_output=True, check=True).stdout, np.int16)


def recognise(samples: np.ndarray) -> str:
    """PocketSphinx's transcript (lower case) of 16 kHz int16 speech."""
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=RATE, loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(np.ascontiguousarray(samples, np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr.lower() if hypothesis else ""


def words(text: str) -> list[str]:
    """Lower-case words, hyphens split ("one-year"), "per cent" and "percent" one word, abbreviations
    the recogniser writes ("mrs") read as the words the voice said ("missus")."""
    found = [SAME_WORD.get(w, w) for w in _WORD.findall(text.lower().replace("-", " "))]
    joined: list[str] = []
    for word in found:
        if word == "cent" and joined and joined[-1] == "per":
            joined[-1] = "percent"
        else:
            joined.append(word)
    return joined


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by word-level edit distance."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, heard in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != heard))
        previous = current
    return previous[-1] / max(len(ref), 1)


def dnsmos(samples: np.ndarray) -> dict[str, float]:
    """DNSMOS P.835 (SIG, BAK, OVRL) and P.808 of 16 kHz int16 speech."""
    from speechmos import dnsmos as model

    scores = model.run(samples.astype(np.float32) / 32768.0, sr=RATE)
    return {
        "ovrl": round(float(scores["ovrl_mos"]), 3),
        "sig": round(float(scores["sig_mos"]), 3),
        "bak": round(float(scores["bak_mos"]), 3),
        "p808": round(float(scores["p808_mos"]), 3),
    }
