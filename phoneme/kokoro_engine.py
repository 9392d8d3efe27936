"""The Kokoro-82M engine: a neural voice, timed phone by phone by the model's own durations.

How a text is spoken:
1. espeak-ng reads it (phoneme events named by IPA, ~1000× faster than real time): words with their
   text positions, each word's phones, clause ends;
2. each phone becomes Kokoro symbols (phoneme.kokoro_phonemes), the written punctuation between words
   becomes Kokoro's, and the sequence is cut into sentences (at . ! ?; a sentence over the model's 510
   tokens is cut again at , ; : and then between words);
3. each sentence is synthesized, or taken from the sentence cache (key: its symbols, the style, the
   speed and the model's sha256), so a re-run or another video that repeats a sentence synthesizes
   nothing it already has;
4. the model's duration output times every token; the silence the model puts before and after each
   sentence is trimmed at frame boundaries, so the times stay exact; the phones, words and clause ends
   are reported as espeak-ng-style events (IPA names) for phoneme.align.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from config import VoiceTemplate
from config.files import atomic_path, content_hash
from phoneme.errors import SpeechError
from phoneme.espeak_runtime import espeak_session
from phoneme.kokoro_model import (
    FRAME_SAMPLES,
    MAX_TOKENS,
    SAMPLE_RATE,
    STYLE_NAMES,
    KokoroFiles,
    KokoroModel,
    loaded_model,
    style_label,
)
from phoneme.kokoro_phonemes import STRESS, STRONG_PUNCTUATION, PhonemeMap, load_vocabulary
from phoneme.tts import (
    EVENT_END,
    EVENT_MSG_TERMINATED,
    EVENT_PHONEME,
    EVENT_WORD,
    EngineInfo,
    EngineSpec,
    RawEvent,
    SynthesisResult,
    VoiceResources,
)

KOKORO_MODEL = "kokoro_82m"
KOKORO_STYLES = "kokoro_styles"
KOKORO_VOCABULARY = "kokoro_vocab"
KOKORO_LICENSE = "Apache-2.0 (Kokoro-82M weights and voices, hexgrad); MIT (int8 ONNX export, kokoro-onnx)"
SENTENCE_CACHE_VERSION = 1
LEAD_KEEP_FRAMES = 2  # of the model's leading silence (~0.5 s), keep 50 ms
TAIL_KEEP_FRAMES = 6  # of its trailing silence, keep 150 ms (the punctuation token adds its own pause)
WEAK_PUNCTUATION = ",;:—…"
# The audio runs ahead of the durations' timeline: the loudness of vowels and the silence of closures
# come 45-55 ms before the frames the duration output gives them (measured by cross-correlating the
# vowel spans with the loudness on scripts/bench_render.py's ten sentences; espeak-ng: 0-10 ms), so
# every phone, word and clause time is moved two frames earlier.
AUDIO_LEAD_S = 0.05
# A space between two words is a token with its own frames, but not a silence: the voice glides through
# it. This share of its frames goes to the next word's first phone, the rest to the previous phone
# (a pause there closed the lips early: "Good morning." measured a 120 ms mouth lag; the driver's
# mouth/audio correlation on scripts/bench_render.py's sentences: 0.75 as pauses, 0.79 split).
SPACE_TO_NEXT = 0.5
WARM_UP_TEXT = "Hello, how can I help you today?"


@dataclass(frozen=True)
class Item:
    """One step of the spoken sequence: a word start (no tokens), a phone, a gap (space/punctuation)
    or a clause end (no tokens). `event` is the espeak-ng event it came from."""

    kind: str  # "word" | "phone" | "gap" | "end"
    symbols: str
    event: RawEvent
    ipa: str = ""


def spoken_items(text: str, events: list[RawEvent], phonemes: PhonemeMap) -> list[Item]:
    """espeak-ng's events of `text` as the sequence Kokoro speaks."""
    items: list[Item] = []
    word_end = 0  # character offset where the last word ended
    words_seen = 0
    for event in events:
        if event.kind == EVENT_WORD:
            first = max(event.text_position - 1, 0)
            if words_seen:
                gap = phonemes.gap(text[word_end:first])
                if gap:
                    items.append(Item("gap", gap, event))
            items.append(Item("word", "", event))
            word_end = max(first + max(event.length, 1), first)
            words_seen += 1
        elif event.kind == EVENT_PHONEME and event.name:
            symbols = phonemes.phone(event.name)
            if symbols.strip(STRESS):
                items.append(Item("phone", symbols, event, event.name))
        elif event.kind == EVENT_END:
            items.append(Item("end", "", event))
    tail = phonemes.gap(text[word_end:]).strip()
    if tail and items:
        items.append(Item("gap", tail, items[-1].event))
    return items


def sentences(items: list[Item], max_tokens: int = MAX_TOKENS) -> list[list[Item]]:
    """The items cut after each sentence-ending gap; a piece over `max_tokens` is cut again at the
    weak punctuation nearest its middle, then between words, then anywhere."""
    pieces: list[list[Item]] = []
    current: list[Item] = []
    for item in items:
        current.append(item)
        if item.kind == "gap" and any(mark in item.symbols for mark in STRONG_PUNCTUATION):
            pieces.append(current)
            current = []
    if current:
        if pieces and not any(i.symbols for i in current):
            pieces[-1].extend(current)  # trailing word-less events (a clause end) join the last sentence
        else:
            pieces.append(current)
    return [part for piece in pieces for part in _fit(piece, max_tokens)]


def _token_count(items: list[Item]) -> int:
    return sum(len(item.symbols) for item in items)


def _fit(piece: list[Item], max_tokens: int) -> list[list[Item]]:
    if _token_count(piece) <= max_tokens:
        return [piece]
    for wanted in (lambda i: i.kind == "gap" and any(m in i.symbols for m in WEAK_PUNCTUATION),
                   lambda i: i.kind == "gap", lambda i: i.kind == "phone"):  # fmt: skip
        cuts = [index + 1 for index, item in enumerate(piece[:-1]) if wanted(item)]
        if cuts:
            middle = _token_count(piece) / 2
            cut = min(cuts, key=lambda c: abs(_token_count(piece[:c]) - middle))
            return _fit(piece[:cut], max_tokens) + _fit(piece[cut:], max_tokens)
    return [piece]


class SentenceCache:
    """Synthesized sentences on disk (int16 audio at 24 kHz + the model's durations), written atomically."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path | None:
        return self.folder / f"{key}.npz" if self.folder else None

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as data:
                audio, frames = data["audio"], data["frames"]
        except (OSError, ValueError, KeyError):
            return None  # a damaged entry is synthesized again
        if int(frames.sum()) * FRAME_SAMPLES != len(audio):
            return None
        self.hits += 1
        return audio, frames

    def put(self, key: str, audio: np.ndarray, frames: np.ndarray) -> None:
        self.misses += 1
        path = self.path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, audio=audio, frames=frames)


class KokoroEngine:
    """Kokoro-82M speaking espeak-ng's phones, sentence by sentence, with a sentence cache."""

    name = "kokoro"

    def __init__(self, files: KokoroFiles, cache_folder: Path | None = None, threads: int = 0) -> None:
        self.files = files
        self.vocabulary = load_vocabulary(files.vocabulary)
        self.cache = SentenceCache(cache_folder)
        self._threads = threads
        self._model: KokoroModel | None = None
        self.phoneme_maps: dict[str, PhonemeMap] = {}

    @property
    def model(self) -> KokoroModel:
        """Loaded on the first sentence the cache does not have (~0.6 s, once per process)."""
        if self._model is None:
            self._model = loaded_model(self.files, self._threads)
        return self._model

    def warm_up(self, voice: VoiceTemplate) -> None:
        """Run the model once on a short phrase, past the sentence cache. Why: onnxruntime's first inference
        in a process is slow (a server's first neural stream measured 2.4 s to its first segment, the next
        ones 0.6-0.8 s), so a server that keeps voices warm pays it at start-up, not in an answer."""
        _, events = espeak_session(ipa=True).synthesize(
            WARM_UP_TEXT, voice.espeak_voice, voice.rate, voice.pitch, template=voice.name
        )
        items = spoken_items(WARM_UP_TEXT, events, self.phonemes(voice.language))
        symbols = "".join(item.symbols for piece in sentences(items) for item in piece)
        self.model.run(self.phonemes(voice.language).tokens(symbols), voice.style, voice.speed)

    def sentence_counts(self) -> tuple[int, int]:
        """(sentences the model ran, sentences taken from the cache) since this engine was made."""
        return self.cache.misses, self.cache.hits

    def phonemes(self, language: str) -> PhonemeMap:
        if language not in self.phoneme_maps:
            self.phoneme_maps[language] = PhonemeMap.for_language(language, self.vocabulary)
        return self.phoneme_maps[language]

    def synthesize(self, text: str, voice: VoiceTemplate) -> SynthesisResult:
        _, events = espeak_session(ipa=True).synthesize(
            text, voice.espeak_voice, voice.rate, voice.pitch, template=voice.name
        )
        items = spoken_items(text, events, self.phonemes(voice.language))
        audio: list[np.ndarray] = []
        timed: list[RawEvent] = []
        clock = 0  # samples written so far
        pieces = [piece for piece in sentences(items) if _token_count(piece)]
        for piece in pieces:
            symbols = "".join(item.symbols for item in piece)
            samples, frames = self._sentence(symbols, voice)
            lead = min(int(frames[0]), LEAD_KEEP_FRAMES)
            tail = min(int(frames[-1]), TAIL_KEEP_FRAMES)
            first = (int(frames[0]) - lead) * FRAME_SAMPLES
            last = len(samples) - (int(frames[-1]) - tail) * FRAME_SAMPLES
            audio.append(samples[first:last])
            timed.append(RawEvent(EVENT_PHONEME, clock / SAMPLE_RATE, piece[0].event.text_position, 0, "_"))
            cursor = clock + lead * FRAME_SAMPLES
            token = 1  # frames[0] is the leading pad
            early = 0  # samples of a space given to the next word
            for item in piece:
                span = int(frames[token : token + len(item.symbols)].sum()) * FRAME_SAMPLES
                at = (cursor - early) / SAMPLE_RATE
                if item.kind == "word":
                    timed.append(RawEvent(EVENT_WORD, at, item.event.text_position, item.event.length, ""))
                elif item.kind == "end":
                    timed.append(RawEvent(EVENT_END, at, item.event.text_position, 0, ""))
                elif item.kind == "phone":
                    timed.append(RawEvent(EVENT_PHONEME, at, item.event.text_position, 0, item.ipa))
                    early = 0
                elif item.symbols.strip() == "":
                    early = round(span * SPACE_TO_NEXT / FRAME_SAMPLES) * FRAME_SAMPLES
                elif span:
                    timed.append(RawEvent(EVENT_PHONEME, at, item.event.text_position, 0, "_"))
                cursor += span
                token += len(item.symbols)
            if tail:
                timed.append(RawEvent(EVENT_PHONEME, cursor / SAMPLE_RATE, piece[-1].event.text_position, 0, "_"))
            clock = cursor + tail * FRAME_SAMPLES
        timed = [replace(e, time=max(0.0, round(e.time - AUDIO_LEAD_S, 6))) for e in timed]
        ends = [e for e in events if e.kind in (EVENT_END, EVENT_MSG_TERMINATED)]
        last_position = ends[-1].text_position if ends else len(text) + 1
        timed.append(RawEvent(EVENT_MSG_TERMINATED, clock / SAMPLE_RATE, last_position, 0, ""))
        joined = np.concatenate(audio) if audio else np.zeros(0, np.int16)
        return SynthesisResult(samples=joined, sample_rate=SAMPLE_RATE, events=timed, phone_alphabet="ipa")

    def _sentence(self, symbols: str, voice: VoiceTemplate) -> tuple[np.ndarray, np.ndarray]:
        style = voice.style  # a kokoro template always has one (config.settings.VoiceTemplate)
        key = content_hash(
            {
                "v": SENTENCE_CACHE_VERSION,
                "symbols": symbols,
                "style": style,
                "speed": voice.speed,
                "model": self.files.model_sha256,
            }
        )
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        audio, frames = self.model.run(self.phonemes(voice.language).tokens(symbols), style, voice.speed)
        pcm = np.clip(np.rint(audio * 32767.0), -32768, 32767).astype(np.int16)
        self.cache.put(key, pcm, frames)
        return pcm, frames


def _create(resources: VoiceResources) -> KokoroEngine:
    try:
        files = KokoroFiles(
            model=resources.models[KOKORO_MODEL],
            voices=resources.models[KOKORO_STYLES],
            vocabulary=resources.models[KOKORO_VOCABULARY],
            model_sha256=resources.model_sha256[KOKORO_MODEL],
        )
    except KeyError as exc:
        raise SpeechError(f"the Kokoro model file {exc.args[0]} was not resolved; run scripts/setup") from exc
    return KokoroEngine(files, resources.sentence_cache, resources.threads)


def _check(voice: VoiceTemplate) -> None:
    names = [voice.style] if isinstance(voice.style, str) else list(voice.style or {})
    unknown = [name for name in names if name not in STYLE_NAMES]
    if unknown:
        raise SpeechError(
            f"voice '{voice.name}': unknown Kokoro style '{unknown[0]}'; available: {', '.join(STYLE_NAMES)}"
        )


def _describe(voice: VoiceTemplate, model_sha256: dict[str, str]) -> EngineInfo:
    return EngineInfo(
        engine="kokoro",
        version="Kokoro-82M v1.0 (int8 ONNX)",
        model_sha256=model_sha256.get(KOKORO_MODEL),
        license=KOKORO_LICENSE,
        style=style_label(voice.style or ""),
    )


ENGINE = EngineSpec(
    name="kokoro",
    fields=("espeak_voice", "style", "speed"),
    models=(KOKORO_MODEL, KOKORO_STYLES, KOKORO_VOCABULARY),
    create=_create,
    describe=_describe,
    check=_check,
)
