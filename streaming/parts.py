"""An answer spoken part by part: the first clause first, then sentence by sentence.

Why parts: the first segment of a stream needs only the first part's speech, so the viewer sees the
avatar start talking after one short synthesis instead of the whole answer's. Each part is spoken by
the render's own speech stage (`pipeline.stages.speak`, cached per text), padded to whole frames, and
placed on the answer's timeline after the parts before it (its audio samples, captions and motion).

Motion across parts: each part's motion track is synthesized from its own visemes, but the idle
channels that are not tied to speech (blinks, head sway, turn and tilt) are cut from ONE idle motion
of the whole stream at the part's frame offset, so a blink or a head turn continues across the
boundary; the channels that mix speech and idle motion (head pitch, brows, eye widening) are eased
from where the previous part left them over `EASE_S`, so nothing jumps at a boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from config import Settings, VoiceTemplate
from config.files import content_hash
from driver_synth.driver import build_driver
from driver_synth.synthesize import MOUTH, _blinks, _idle
from driver_synth.track import MotionTrack
from phoneme.artifacts import TimedWord
from phoneme.speech import SpeechArtifact
from phoneme.tts import read_wav
from pipeline import stages

EASE_S = 0.4  # continuity easing of the mixed channels at a part boundary
IDLE_HORIZON_S = 600.0  # the stream's idle motion is drawn this far ahead (an answer is shorter)
IDLE_CHANNELS = ("blink", "head_yaw", "head_roll", "head_x", "head_y")  # not tied to speech: one curve per stream
SENTENCE_END = re.compile(r"(?<=[.!?。！？…])[\"'”’)\]]*\s+|(?<=[。！？])")
CLAUSE_END = re.compile(r"[,;:，、；：—–]$")
TAG = re.compile(r"<[^>]*>")


def split_parts(text: str, first_max_words: int) -> list[str]:
    """The answer as the parts it is spoken in: its first clause (at most `first_max_words` words),
    the rest of the first sentence, then one part per sentence. Markup tags (`<break …/>`) stay whole;
    a text without spaces (Chinese, Japanese) is cut at its clause punctuation only."""
    sentences = [s.strip() for s in SENTENCE_END.split(text.strip()) if s and s.strip()]
    if not sentences:
        return []
    first, rest = _first_clause(sentences[0], first_max_words)
    return [part for part in (first, rest, *sentences[1:]) if part]


def _tokens(sentence: str) -> list[str]:
    """Words, with a markup tag kept as one token (its attributes contain spaces)."""
    tokens: list[str] = []
    position = 0
    for match in TAG.finditer(sentence):
        tokens += sentence[position : match.start()].split()
        tokens.append(match.group(0))
        position = match.end()
    return tokens + sentence[position:].split()


def _first_clause(sentence: str, max_words: int) -> tuple[str, str]:
    tokens = _tokens(sentence)
    words = [i for i, token in enumerate(tokens) if not TAG.fullmatch(token)]
    if len(tokens) == 1 and " " not in sentence:  # no spaces: cut after the first clause mark, if any
        match = re.search(r"[，、；：,;:]", sentence)
        if match is None or match.end() >= len(sentence):
            return sentence, ""
        return sentence[: match.end()], sentence[match.end() :]
    limit = words[min(max_words, len(words)) - 1]  # the last token the first part may hold
    clause_ends = [i for i in range(limit + 1) if CLAUSE_END.search(tokens[i]) and i < len(tokens) - 1]
    if clause_ends:  # the first clause (a longer first sentence: its last clause within the limit)
        cut = clause_ends[0] if len(words) <= max_words else clause_ends[-1]
    elif len(words) <= max_words:
        return sentence, ""
    else:
        cut = limit
    return " ".join(tokens[: cut + 1]), " ".join(tokens[cut + 1 :])


@dataclass(frozen=True)
class SpokenPart:
    """One part on the answer's timeline: its audio padded (or cut) to whole frames, its captions and
    motion shifted to where it starts."""

    index: int
    text: str
    speech: SpeechArtifact
    samples: np.ndarray  # int16 mono, exactly `frames` frames long
    rate: int
    first_frame: int
    frames: int
    words: list[TimedWord]  # times on the answer's timeline
    track: MotionTrack  # `frames` frames, continuing the previous part's motion
    bilabial_spans: list[tuple[float, float]]  # on the answer's timeline

    @property
    def start_s(self) -> float:
        return self.first_frame / self.track.fps

    @property
    def end_frame(self) -> int:
        return self.first_frame + self.frames


def samples_per_frame(rate: int, fps: int) -> int:
    if rate % fps:
        raise ValueError(f"speech at {rate} Hz does not divide into {fps} fps frames")
    return rate // fps


class StreamMotion:
    """The idle motion of one stream (drawn once, seeded by the stream) and where the last part left
    the mixed channels, so each next part continues it."""

    def __init__(self, settings: Settings, seed_text: str) -> None:
        motion, fps = settings.motion, settings.video.fps
        self.fps = fps
        self.motion = motion
        count = int(IDLE_HORIZON_S * fps)
        rng = np.random.default_rng(int(content_hash({"seed": motion.seed, "stream": seed_text}, 8), 16))
        self.idle = {
            "blink": _blinks(count, fps, motion, rng),
            "head_yaw": _idle(count, fps, motion.head_yaw_deg, rng),
            "head_roll": _idle(count, fps, motion.head_roll_deg, rng),
            "head_x": _idle(count, fps, 0.015, rng),
            "head_y": _idle(count, fps, 0.008, rng),
        }
        self.last: dict[str, float] | None = None  # the previous part's last frame, per channel

    def continue_with(self, track: MotionTrack, first_frame: int) -> MotionTrack:
        """`track` (a part's own motion) placed at `first_frame` of the stream."""
        count = track.frame_count
        channels = {name: np.array(values, np.float32, copy=True) for name, values in track.channels.items()}
        for name in IDLE_CHANNELS:
            if first_frame + count > len(self.idle[name]):
                raise ValueError(f"the answer is longer than {IDLE_HORIZON_S:.0f} s; split it into several answers")
            channels[name] = self.idle[name][first_frame : first_frame + count].copy()
        if self.last is not None:
            ease = max(1, int(EASE_S * self.fps))
            weight = 0.5 + 0.5 * np.cos(np.pi * np.clip(np.arange(count) / ease, 0.0, 1.0))  # 1 → 0
            for name, values in channels.items():
                if name in MOUTH or name in IDLE_CHANNELS or name not in self.last:
                    continue
                channels[name] = (values + (self.last[name] - values[0]) * weight).astype(np.float32)
        self.last = {name: float(values[-1]) for name, values in channels.items()}
        return MotionTrack.from_channels(track.fps, channels, track.source)


def speak_part(
    index: int,
    text: str,
    voice: VoiceTemplate,
    settings: Settings,
    first_frame: int,
    motion: StreamMotion,
) -> SpokenPart:
    """Speak one part (the speech stage, cached per text), and place it at `first_frame`."""
    fps = settings.video.fps
    speech = stages.speak(text, voice, settings)
    visemes = stages.viseme_stage(speech, settings)
    driver = build_driver(visemes, fps, settings.motion, speech.key, settings.paths.cache)
    own = driver.track()
    frames = own.frame_count
    samples, rate = read_wav(speech.wav_path)
    per_frame = samples_per_frame(rate, fps)
    padded = np.zeros(frames * per_frame, np.int16)
    kept = min(len(samples), len(padded))
    padded[:kept] = np.asarray(samples[:kept], np.int16)
    offset = first_frame / fps
    timings = speech.timings()
    words = [replace(w, start=w.start + offset, end=w.end + offset) for w in timings.words]
    spans = [(start + offset, end + offset) for start, end in visemes.closures]
    track = motion.continue_with(own, first_frame)
    return SpokenPart(index, text, speech, padded, rate, first_frame, frames, words, track, spans)
