"""Our ctypes binding of libespeak-ng: the few `espeak_*` calls of its documented API (speak_lib.h)
that both espeak sessions make, on one loaded copy of the library.

Why our own: pyttsx3's binding is a private module (`pyttsx3.drivers._espeak`) that loads whichever
`libespeak-ng.so.1` the system resolves, at import, into the process's global namespace; its public API
(say, save to a file) exposes neither the samples nor the phoneme events the visemes are made from.
Seven calls and one struct are less to carry than a private module's changes.

Why one copy per session: espeak-ng keeps its state in globals, one set per loaded library, and whether
its phoneme events carry mnemonics or IPA is fixed when it is initialized. Switching one library between
the two by initializing it again corrupted its phoneme tables after a few dozen switches (a segmentation
fault in a benchmark alternating es voices). Each copy is a file of its own, loaded privately
(RTLD_LOCAL | RTLD_DEEPBIND): an independent instance, initialized once.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path


class _EventId(ctypes.Union):
    _fields_ = (("number", ctypes.c_int), ("name", ctypes.c_char_p))


class EspeakEvent(ctypes.Structure):
    """`espeak_EVENT` of speak_lib.h."""

    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


EventCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(EspeakEvent)
)


class EspeakLibrary:
    """`espeak_*` calls of one loaded copy of the library (synchronous output, events via callback)."""

    AUDIO_OUTPUT_SYNCHRONOUS = 2
    CHARS_UTF8 = 1
    RATE = 1
    PITCH = 3

    def __init__(self, path: Path) -> None:
        # DEEPBIND: its own references resolve to its own globals, not to those of another loaded copy
        dll = ctypes.CDLL(str(path), mode=os.RTLD_LOCAL | os.RTLD_NOW | os.RTLD_DEEPBIND)
        self._dll = dll
        dll.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        dll.espeak_Initialize.restype = ctypes.c_int
        dll.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        dll.espeak_SetVoiceByName.restype = ctypes.c_int
        dll.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        dll.espeak_SetParameter.restype = ctypes.c_int
        dll.espeak_SetSynthCallback.argtypes = [EventCallback]
        dll.espeak_SetSynthCallback.restype = None
        dll.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p]  # fmt: skip
        dll.espeak_Synth.restype = ctypes.c_int
        dll.espeak_Synchronize.argtypes = []
        dll.espeak_Synchronize.restype = ctypes.c_int
        dll.espeak_Info.argtypes = [ctypes.c_void_p]
        dll.espeak_Info.restype = ctypes.c_char_p
        self._callback: EventCallback | None = None  # kept referenced while the library may call it

    def Initialize(self, output: int, buffer_ms: int, path: bytes, options: int) -> int:  # noqa: N802
        return int(self._dll.espeak_Initialize(output, buffer_ms, path, options))

    def SetVoiceByName(self, name: bytes) -> int:  # noqa: N802
        return int(self._dll.espeak_SetVoiceByName(name))

    def SetParameter(self, parameter: int, value: int, relative: int) -> int:  # noqa: N802
        return int(self._dll.espeak_SetParameter(parameter, value, relative))

    def SetSynthCallback(self, callback) -> None:  # noqa: N802
        self._callback = EventCallback(callback)
        self._dll.espeak_SetSynthCallback(self._callback)

    def Synth(self, text: str, flags: int = CHARS_UTF8) -> int:  # noqa: N802
        data = text.encode("utf-8") + b"\0"
        return int(self._dll.espeak_Synth(data, len(data), 0, 1, 0, flags, None, None))

    def Synchronize(self) -> int:  # noqa: N802
        return int(self._dll.espeak_Synchronize())

    def Info(self, _unused=None) -> bytes:  # noqa: N802
        return self._dll.espeak_Info(None)
