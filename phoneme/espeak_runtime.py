"""Make pyttsx3 use the espeak-ng build shipped in the `espeakng-loader` wheel.

Why: Debian's espeak-ng 1.51 reads Mandarin as English letters; the wheel's 1.52 build with full data
speaks it correctly. Loading the wheel's library with RTLD_GLOBAL before pyttsx3 imports its binding
makes pyttsx3's `cdll.LoadLibrary("libespeak-ng.so.1")` resolve to the already loaded copy.
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path
from types import ModuleType

from phoneme.errors import SpeechError


@functools.cache
def espeak_binding() -> ModuleType:
    """pyttsx3's espeak-ng binding, bound to the wheel's library (loaded once per process)."""
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover - packaging error
        raise SpeechError("espeakng-loader is not installed; run scripts/setup") from exc
    library = Path(espeakng_loader.get_library_path())
    soname = library.with_name("libespeak-ng.so.1")
    ctypes.CDLL(str(soname if soname.exists() else library), mode=ctypes.RTLD_GLOBAL)
    os.environ["ESPEAK_DATA_PATH"] = espeakng_loader.get_data_path()
    from pyttsx3.drivers import _espeak

    return _espeak


def espeak_data_dir() -> str:
    import espeakng_loader

    return espeakng_loader.get_data_path()
