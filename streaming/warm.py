"""What a server process keeps warm for streams: avatar analyses, monitor models, TTS models, engines.

Why: a streamed answer's first segment should cost one short synthesis and half a second of frames,
not model loading. Building a `FusionEngine` runs every processor's `prepare` (~1.1 s unloaded, more on
a busy machine), the Kokoro session loads in ~1.5 s and the monitors' face models in ~0.1 s. An engine
depends on the avatar version, the stream canvas and the mode only; the one thing a stream changes is
the watermark payload, which `FusionEngine.rewatermark` replaces in ~10 ms. So finished streams hand
their engine back, and the next stream of that avatar takes it.

Thread-safe: streams run on threads of their own; each holds its engine exclusively while it renders
(a second concurrent stream of the same avatar builds, then keeps, a second engine).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from avatars.library import Avatar, AvatarLibrary
from config import Settings, VoiceTemplate
from config.files import content_hash
from config.loader import load_voices
from fusion.engine import FusionEngine, RenderOptions
from phoneme.engines import VoiceResources, make_engine, models_for
from phoneme.g2p import shared_g2p
from pipeline import stages
from pipeline.request import model_hashes
from quality.inline import MonitorSetup, monitor_setup
from streaming.canvas import at_work_size, stream_settings
from vision.avatar_analysis import AvatarAnalysis
from vision.models import ModelRegistry

MAX_IDLE_ENGINES = 4  # per key: more streams of one avatar at once than this build (and drop) their own


@dataclass(frozen=True)
class Warmed:
    """What a stream takes from the pool for its avatar."""

    analysis: AvatarAnalysis
    monitors: MonitorSetup


def engine_key(avatar: Avatar, settings: Settings, mode: str) -> str:
    """Everything an engine's pixels depend on besides the motion and the watermark payload."""
    return content_hash(
        {
            "avatar": avatar.avatar_id,
            "version": avatar.version,
            "mode": mode,
            "settings": settings.hashable(),
            "scene_template": settings.scene_template.model_dump() if settings.scene_template else None,
        }
    )


class WarmPool:
    """Per server process: analyses and monitor setups per avatar version, warmed TTS voices, and idle
    engines per (avatar version, stream canvas, mode)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._warmed: dict[tuple[str, int, str], Warmed] = {}
        self._engines: dict[str, list[FusionEngine]] = {}
        self._voices: set[str] = set()
        self.engines_built = 0  # how many engines were built (a warm stream builds none)

    def avatar(self, avatar: Avatar, settings: Settings) -> Warmed:
        """The avatar's analysis and its monitors' models (computed once per version and canvas)."""
        key = (avatar.avatar_id, avatar.version, content_hash(settings.video.model_dump()))
        with self._lock:
            found = self._warmed.get(key)
        if found is not None:
            return found
        analysis = stages.avatar_stage(avatar, settings)
        warmed = Warmed(analysis, monitor_setup(avatar, settings, analysis))
        with self._lock:
            return self._warmed.setdefault(key, warmed)

    @contextmanager
    def engine(self, avatar: Avatar, settings: Settings, mode: str, payload: int) -> Iterator[FusionEngine]:
        """An engine for this avatar, canvas and mode, watermarking `payload`, held by the caller until
        the block ends; then kept for the next stream (or closed when enough are idle)."""
        key = engine_key(avatar, settings, mode)
        with self._lock:
            idle = self._engines.setdefault(key, [])
            engine = idle.pop() if idle else None
        if engine is None:
            engine = self._build(avatar, settings, mode, payload)
        else:
            engine.rewatermark(payload)
        healthy = False
        try:
            yield engine
            healthy = True
        finally:
            with self._lock:
                idle = self._engines.setdefault(key, [])
                if healthy and len(idle) < MAX_IDLE_ENGINES:
                    idle.append(engine)
                    engine = None
            if engine is not None:
                engine.close()

    def _build(self, avatar: Avatar, settings: Settings, mode: str, payload: int) -> FusionEngine:
        warmed = self.avatar(avatar, settings)
        render = RenderOptions(payload, "reduced_motion" if mode == "reduced_motion" else "normal")
        look = at_work_size(stages.avatar_look(avatar, warmed.analysis), settings.streaming.work_px)
        engine = FusionEngine.for_avatar(look, settings, render)
        with self._lock:
            self.engines_built += 1
        return engine

    def voice(self, voice: VoiceTemplate, settings: Settings) -> None:
        """Load the voice's TTS model now (the neural voice's session is shared by the process), so a
        stream's first synthesis does not pay for it."""
        if voice.name in self._voices:
            return
        names = models_for(voice)
        hashes = model_hashes(settings, names) if names else {}
        registry = ModelRegistry(settings.paths.models)
        models = {name: registry.path(name) for name in names}
        resources = VoiceResources(models, hashes, settings.paths.cache / "sentences", settings.tts.threads)
        engine = make_engine(voice, resources)
        warm_up = getattr(engine, "warm_up", None)  # Kokoro: loads its session and runs it once; espeak-ng: none
        if warm_up is not None:
            warm_up(voice)
        if voice.g2p == "arpabet":  # the CMUdict timings refine the phones (~1 s to load, once per process)
            shared_g2p(settings.paths.nltk_data)
        with self._lock:
            self._voices.add(voice.name)

    def prepare(self, avatar_ids: list[str], voices: list[str] = (), engines: int = 1) -> None:
        """Warm up front (`dhf api` start): each avatar's analysis, monitors and `engines` normal-mode
        engines on the stream canvas (one per stream of that avatar expected at once: a stream that
        finds none idle builds its own, ~1-5 s on this machine), and the voices' models (names in
        config/voices.yaml; none given: the English default voice)."""
        settings = stream_settings(self.settings)
        templates, defaults = load_voices(self.settings)
        for name in voices or [defaults[lang] for lang in ("en",) if lang in defaults]:
            self.voice(templates[name], settings)
        library = AvatarLibrary.from_settings(self.settings.paths)
        for avatar_id in avatar_ids:
            avatar = library.get(avatar_id)
            self.avatar(avatar, settings)
            with contextlib.ExitStack() as held:  # held at once, so each is a separate engine
                for _ in range(max(1, min(engines, MAX_IDLE_ENGINES))):
                    held.enter_context(self.engine(avatar, settings, "normal", 0))

    def close(self) -> None:
        with self._lock:
            engines = [engine for idle in self._engines.values() for engine in idle]
            self._engines.clear()
        for engine in engines:
            engine.close()
