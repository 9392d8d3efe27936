"""espeak-ng from the `espeakng-loader` wheel, through our own ctypes binding
(phoneme/espeak_library.py): one session whose phoneme events are named by espeak-ng's mnemonics
(the espeak-ng voice's visemes), one whose events are named by IPA (the phonemes Kokoro speaks).

Why the wheel: Debian's espeak-ng 1.51 reads Mandarin as English letters; the wheel's 1.52 build with
full data speaks it correctly, and no apt package is needed for speech.

Why sessions: the library keeps its state in globals, so calls to one loaded copy are serialized by
a lock, and whether its phoneme events are named by mnemonics or by IPA is fixed when it is
initialized. Each kind has its own session on its own copy of the library (phoneme/espeak_library.py
says why), initialized once.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from phoneme.errors import SpeechError
from phoneme.espeak_library import EspeakLibrary
from phoneme.tts import EVENT_PHONEME, RawEvent

PHONEME_EVENTS_OPTION = 1  # espeakINITIALIZE_PHONEME_EVENTS
PHONEME_IPA_OPTION = 2  # espeakINITIALIZE_PHONEME_IPA: phoneme events carry IPA names (UTF-8, ≤ 8 bytes)


@functools.cache
def espeak_binding() -> EspeakLibrary:
    """The wheel's `libespeak-ng.so.1` (loaded once per process), for the mnemonic session."""
    library = _wheel_library()
    soname = library.with_name("libespeak-ng.so.1")
    os.environ["ESPEAK_DATA_PATH"] = espeak_data_dir()
    return EspeakLibrary(soname if soname.exists() else library)


def _wheel_library() -> Path:
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover - packaging error
        raise SpeechError("espeakng-loader is not installed; run scripts/setup") from exc
    return Path(espeakng_loader.get_library_path())


def espeak_data_dir() -> str:
    import espeakng_loader

    return espeakng_loader.get_data_path()


@functools.cache
def espeak_session(ipa: bool = False) -> EspeakSession:
    """The process's espeak-ng session whose phoneme events are named by IPA (`ipa`) or by mnemonics."""
    if not ipa:
        return EspeakSession(espeak_binding(), PHONEME_EVENTS_OPTION)
    espeak_binding()  # ESPEAK_DATA_PATH, and the mnemonic copy loaded first under its own name
    library = _wheel_library()
    # A file of its own (another inode) is what makes the dynamic loader map a second instance; the copy
    # can go once it is mapped.
    with tempfile.TemporaryDirectory(prefix="dhf-espeak-") as folder:
        private = Path(folder) / "libespeak-ng-ipa.so"
        shutil.copyfile(library, private)
        loaded = EspeakLibrary(private)
    return EspeakSession(loaded, PHONEME_EVENTS_OPTION | PHONEME_IPA_OPTION)


class EspeakSession:
    """Synthesizes with one copy of espeak-ng and records its word, clause and phoneme events."""

    def __init__(self, espeak: EspeakLibrary, options: int) -> None:
        self._espeak = espeak
        self._lock = threading.Lock()
        self.ipa = bool(options & PHONEME_IPA_OPTION)
        data_parent = str(Path(espeak_data_dir()).parent).encode()
        rate = espeak.Initialize(espeak.AUDIO_OUTPUT_SYNCHRONOUS, 200, data_parent, options)
        if rate <= 0:
            raise SpeechError("espeak-ng failed to initialize; reinstall with scripts/setup")
        self.sample_rate = int(rate)

    def version(self) -> str:
        info = self._espeak.Info(None)
        return info.decode() if isinstance(info, bytes) else str(info)

    def synthesize(
        self, text: str, espeak_voice: str, rate: int, pitch: int, template: str = ""
    ) -> tuple[np.ndarray, list[RawEvent]]:
        """(int16 samples, events) of `text` said by `espeak_voice`; phoneme events are named by IPA
        in an IPA session, else by espeak-ng's mnemonics."""
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
                    name = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
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
            if espeak.SetVoiceByName(espeak_voice.encode()) != 0:
                raise SpeechError(
                    f"espeak-ng has no voice '{espeak_voice}' (template {template}); fix config/voices.yaml"
                )
            espeak.SetParameter(espeak.RATE, int(rate), 0)
            espeak.SetParameter(espeak.PITCH, int(pitch), 0)
            espeak.SetSynthCallback(on_audio)
            status = espeak.Synth(text, flags=espeak.CHARS_UTF8)
            espeak.Synchronize()
        if status != 0:
            raise SpeechError(f"espeak-ng failed to synthesize (status {status}); try shorter or plainer text")
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return samples.astype(np.int16), events
