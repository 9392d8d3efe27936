"""TTS engines. One interface (`TTSEngine`), one default implementation on espeak-ng via pyttsx3.

The espeak-ng engine records phoneme and word events with their audio positions while it renders,
so phoneme timings come from the synthesizer itself and match the audio exactly.
"""

from __future__ import annotations

import ctypes
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from config import VoiceTemplate
from phoneme.errors import SpeechError
from phoneme.espeak_runtime import espeak_binding, espeak_data_dir

EVENT_WORD = 1
EVENT_END = 5
EVENT_MSG_TERMINATED = 6
EVENT_PHONEME = 7
PHONEME_EVENTS_OPTION = 1


@dataclass(frozen=True)
class RawEvent:
    """An espeak-ng event: kind, audio time in seconds, text span (character offsets) and name."""

    kind: int
    time: float
    text_position: int
    length: int
    name: str


@dataclass(frozen=True)
class SynthesisResult:
    samples: np.ndarray  # int16 mono
    sample_rate: int
    events: list[RawEvent]

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


class TTSEngine(Protocol):
    """Anything that can say text with a voice template and report when each phone happened."""

    name: str

    def synthesize(self, text: str, voice: VoiceTemplate) -> SynthesisResult: ...


class EspeakEngine:
    """pyttsx3's espeak-ng binding in synchronous mode with phoneme events enabled."""

    name = "espeak-ng"

    def __init__(self) -> None:
        self._espeak = espeak_binding()
        self._lock = threading.Lock()
        data_parent = str(Path(espeak_data_dir()).parent).encode()
        rate = self._espeak.Initialize(self._espeak.AUDIO_OUTPUT_SYNCHRONOUS, 200, data_parent, PHONEME_EVENTS_OPTION)
        if rate <= 0:
            raise SpeechError("espeak-ng failed to initialize; reinstall with scripts/setup")
        self.sample_rate = int(rate)

    def version(self) -> str:
        info = self._espeak.Info(None)
        return info.decode() if isinstance(info, bytes) else str(info)

    def synthesize(self, text: str, voice: VoiceTemplate) -> SynthesisResult:
        espeak = self._espeak
        chunks: list[np.ndarray] = []
        events: list[RawEvent] = []

        def on_audio(wav, count, event_ptr) -> int:
            if count > 0 and wav:
                chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            index = 0
            while True:
                event = event_ptr[index]
                if event.type == 0:
                    break
                name = ""
                if event.type == EVENT_PHONEME:
                    raw = ctypes.string_at(ctypes.addressof(event.id), 8)
                    name = raw.split(b"\0", 1)[0].decode("ascii", "replace")
                events.append(
                    RawEvent(
                        kind=int(event.type),
                        time=event.audio_position / 1000.0,
                        text_position=int(event.text_position),
                        length=int(event.length),
                        name=name,
                    )
                )
                index += 1
            return 0

        with self._lock:
            if espeak.SetVoiceByName(voice.espeak_voice.encode()) != 0:
                raise SpeechError(
                    f"espeak-ng has no voice '{voice.espeak_voice}' (template {voice.name}); fix config/voices.yaml"
                )
            espeak.SetParameter(espeak.RATE, int(voice.rate), 0)
            espeak.SetParameter(espeak.PITCH, int(voice.pitch), 0)
            espeak.SetSynthCallback(on_audio)
            status = espeak.Synth(text, flags=espeak.CHARS_UTF8)
            espeak.Synchronize()
        if status != 0:
            raise SpeechError(f"espeak-ng failed to synthesize (status {status}); try shorter or plainer text")
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return SynthesisResult(samples=samples.astype(np.int16), sample_rate=self.sample_rate, events=events)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as handle:
        rate = handle.getframerate()
        data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    return data, rate
