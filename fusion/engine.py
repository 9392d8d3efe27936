"""The fusion engine: an avatar's work image + a motion track → a stream of finished output frames.

The chain comes from the configuration (`fusion.processors`, default: reenactor → color_matcher →
upscaler → compositor), with neural processors (face_swapper, lip_syncer, face_enhancer,
frame_enhancer) wherever the user lists them. Two stages are not configurable:
- the smoother runs first for recorded drivers only: a synthetic track is already smooth, and
  filtering it again would blunt closure releases and peaks (the lips would lag the sound);
- the labeler (visible AI label) and the watermarker are always appended last. `FusionSettings`
  refuses a chain that lists them, and nothing here can leave them out or move them.

Per frame the engine fills the `FrameContext`: the motion, the frame's time (a chunk of a long render
starts later than 0), the face landmarks and box (moved by the reenactor, then mapped by every stage
that declares a `geometry`: resizing and placing), and the audio window of processors that need one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from config import LabelSettings, PostSettings, Settings
from config.settings import FusionSettings, ImageSettings, SceneTemplate
from driver_synth.track import MotionTrack
from fusion.errors import FusionError
from fusion.mouth_bank import MouthBank
from fusion.processors import registry
from fusion.processors.base import AudioTrack, ChainSetup, FrameContext, Processor, ProcessorSetup, map_points
from fusion.processors.post import Labeler, LabelOptions, MotionSmoother, Watermarker, find_font
from fusion.processors.reenactor import Reenactor, ReenactorOptions
from fusion.processors.scene import SceneOverlay, SceneOverlayOptions
from fusion.processors.scene_layout import (
    SceneLayout,
    background_canvas,
    blurred_canvas,
    cut_out,
    layout_scene,
    square_background,
)
from media.video import read_audio_mono
from vision.matte import Decontaminator, clean_plate, person_alpha
from vision.models import ModelRegistry
from vision.providers import ProviderChoice

# The "reduced_motion" quality fallback: smaller mouth and head motion.
REDUCED_MOTION = ReenactorOptions(motion_scale=0.6, head_scale=0.4)
CUTOUT_FEATHER = 2.5  # work pixels: the soft edge of the person cut out of the photo's backdrop


@dataclass(frozen=True)
class EngineOptions:
    width: int
    height: int
    fps: int
    post: PostSettings
    label: LabelSettings
    reenactor: ReenactorOptions = field(default_factory=ReenactorOptions)
    smooth_motion: bool = False  # one-euro filter on the motion (for recorded, jittery drivers)
    watermark_payload: int = 0  # 32 bits of the content id, hidden in every frame (fusion/watermark.py)
    watermark_strength: float = 2.0
    full_frame: bool = False  # every processor recomputes the whole frame (reference for the dirty-rect path)
    fusion: FusionSettings = field(default_factory=FusionSettings)  # the chain and the neural processors
    scene: SceneTemplate | None = None  # a branded scene (README: Scenes); None: the classic layout
    scene_name: str = ""
    images: ImageSettings = field(default_factory=ImageSettings)  # bounds on the scene's logo and background


@dataclass(frozen=True)
class EngineResources:
    """What neural processors run on: the model registry, the execution providers, the speech."""

    registry: ModelRegistry | None = None
    providers: ProviderChoice = field(default_factory=ProviderChoice)
    audio: AudioTrack | None = None
    avatar_name: str = ""  # the scene's name tag (the avatar record's name)
    captions: tuple = ()  # the scene's burnt-in cues (fusion.burned_captions.BurnedCue)
    mouth_bank: object | None = None  # a personal avatar's MouthBank (the mouth_bank processor's units)


@dataclass(frozen=True)
class AvatarLook:
    """What the engine needs of an avatar: its framed work image and landmarks, the person separated
    from the photo's backdrop (None: not separable), the name its scene shows and its mouth bank.
    Plain data, so fusion/ needs no avatar record or analysis type (those live above it)."""

    work_image: np.ndarray
    landmarks: np.ndarray
    person: np.ndarray | None = None
    name: str = ""
    mouth_bank: Path | None = None  # a personal avatar's recorded mouths (fusion.mouth_bank)


@dataclass(frozen=True)
class RenderOptions:
    """How one render (or one chunk of it, or a preview) drives the engine.

    `mode`: "normal", or a quality fallback ("reduced_motion"; "still" uses `FusionEngine.still`).
    `audio`: the speech (or the recorded clip's audio), read only when a processor of the chain
    hears it. `captions`: the scene's burnt-in cues (fusion.burned_captions.BurnedCue)."""

    payload: int
    mode: str = "normal"
    recorded: bool = False  # a recorded driver: its jittery motion is smoothed first
    audio: Path | None = None
    captions: tuple = ()
    full_frame: bool = False


@dataclass(frozen=True)
class SceneParts:
    """What a scene adds to the chain: its layout, its painted background (None for `blur`) and the
    person mask at work size (None: no cut-out)."""

    name: str
    template: SceneTemplate
    layout: SceneLayout
    background: np.ndarray | None
    person: np.ndarray | None


class FusionEngine:
    def __init__(
        self,
        work_image: np.ndarray,
        work_landmarks: np.ndarray,
        options: EngineOptions,
        person: np.ndarray | None = None,
        resources: EngineResources | None = None,
    ) -> None:
        font = find_font(options.label.fonts)
        if font is None:
            raise FusionError(
                f"no CJK font for the AI label (looked for {', '.join(options.label.fonts)}); "
                "run scripts/setup to install fonts-wqy-zenhei"
            )
        resources = resources or EngineResources()
        self.options = options
        self.scene = self._scene(options, person)
        self.cutout: tuple[np.ndarray, np.ndarray] | None = None
        self.decontaminate: Decontaminator | None = None
        if self.scene is not None and person is not None:
            # The photo's backdrop becomes the scene's (once per video): the head then moves over it.
            # Edge colours are the person's own (no fringe of the old backdrop); `blur` is painted from
            # the photo with the person removed, so no lighter or darker square shows around it.
            alpha = person_alpha(person, CUTOUT_FEATHER)
            if self.scene.background is None:
                layout, template = self.scene.layout, self.scene.template
                plate = clean_plate(work_image, alpha)
                canvas = blurred_canvas(template.background, layout.width, layout.height, plate)
                self.scene = replace(self.scene, background=canvas, person=person)
            behind = square_background(self.scene.background, self.scene.layout.square, work_image.shape[0])
            self.decontaminate = Decontaminator(work_image, alpha)
            self.cutout = (alpha, behind)
            work_image = cut_out(self.decontaminate(work_image), alpha, behind)
        self.full_frame = options.full_frame
        smoother: list[Processor] = (
            [MotionSmoother(options.fps, options.post.smoother_min_cutoff_hz, options.post.smoother_beta)]
            if options.smooth_motion
            else []
        )
        listed = self._listed(options, work_image, work_landmarks, person)
        self.reenactor = next((p for p in listed if isinstance(p, Reenactor)), None)
        if self.reenactor is None:
            raise FusionError("the chain must start with 'reenactor' (it animates the avatar)")
        label = options.label
        if self.scene is not None:  # logo, name tag, captions: under the label, which always wins
            overlay = SceneOverlayOptions(
                self.scene.template,
                self.scene.layout,
                label,
                options.images.max_pixels,
                resources.avatar_name,
                tuple(resources.captions),
            )
            listed.append(SceneOverlay(overlay))
        always_last: list[Processor] = [
            Labeler(LabelOptions(label.text, Path(font), label.height_ratio, label.margin_ratio, label.opacity)),
            Watermarker(options.watermark_payload, options.watermark_strength),
        ]
        self.chain: list[Processor] = [*smoother, *listed, *always_last]
        self.track_face = any(getattr(p, "needs_landmarks", False) for p in self.chain)
        spans = [p.audio_span for p in self.chain if getattr(p, "audio_span", None)]
        self.audio_span = (max(s[0] for s in spans), max(s[1] for s in spans)) if spans else None
        self.setup = ProcessorSetup(
            avatar_image=work_image,
            avatar_landmarks=np.asarray(work_landmarks, np.float64)[:, :2],
            fps=options.fps,
            registry=resources.registry,
            providers=resources.providers,
            audio=resources.audio,
            mouth_bank=resources.mouth_bank,
        )
        base = work_image
        self._unmarked = base  # the still before the watermark (`rewatermark` marks it again)
        try:
            for processor in self.chain:
                if isinstance(processor, Watermarker):
                    self._unmarked = base
                base = processor.prepare(base, self.setup)
                if processor is self.reenactor:
                    self.setup.base_landmarks = self.reenactor.landmarks[:, :2].copy()
                geometry = getattr(processor, "geometry", None)
                if geometry is not None and self.setup.base_landmarks is not None:
                    self.setup.base_landmarks = map_points(self.setup.base_landmarks, *geometry)
        except BaseException:
            self.close()
            raise
        self.work_image = work_image
        self.still = base  # the finished frame with no motion applied (thumbnail, fallback)

    def _listed(
        self, options: EngineOptions, work_image: np.ndarray, work_landmarks: np.ndarray, person: np.ndarray | None
    ) -> list[Processor]:
        """The configured chain, each processor built by the registry from its settings section."""
        post, scene, names = options.post, self.scene, options.fusion.processors
        covered = registry.replaces_mouth(names)
        setup = ChainSetup(
            width=options.width,
            height=options.height,
            portrait=scene.layout.side if scene is not None else round(options.height * post.portrait_height_ratio),
            post=post,
            label=options.label,
            work_image=work_image,
            work_landmarks=work_landmarks,
            scene=scene,
            reenactor=replace(options.reenactor, full_frame=options.full_frame, paint_interior=not covered),
            person=person,
            backdrop=self.cutout[1] if self.cutout is not None else None,
        )
        return [registry.create(name, setup, options.fusion) for name in names]

    @classmethod
    def for_avatar(cls, look: AvatarLook, settings: Settings, render: RenderOptions) -> FusionEngine:
        """The one way a render, a chunk of a long render and a preview build the engine, so all three
        run the same chain with the same options (a chunk's pixels equal the single pass's)."""
        video = settings.video
        track, rate = None, registry.speech_rate(settings.fusion)  # read only when a processor hears it
        if render.audio is not None and rate is not None:
            track = AudioTrack(read_audio_mono(Path(render.audio), rate), rate)
        bank = MouthBank.load(look.mouth_bank) if look.mouth_bank is not None else None
        options = EngineOptions(
            video.width,
            video.height,
            video.fps,
            settings.post,
            settings.label,
            reenactor=REDUCED_MOTION if render.mode == "reduced_motion" else ReenactorOptions(),
            smooth_motion=render.recorded,
            watermark_payload=render.payload,
            watermark_strength=settings.provenance.watermark_strength,
            full_frame=render.full_frame,
            fusion=with_mouth_bank(settings.fusion, bank is not None),
            scene=settings.scene_template,
            scene_name=settings.scene.name or "",
            images=settings.images,
        )
        resources = EngineResources(
            ModelRegistry(settings.paths.models),
            provider_choice(settings),
            track,
            avatar_name=look.name,
            captions=tuple(render.captions),
            mouth_bank=bank,
        )
        return cls(look.work_image, look.landmarks, options, person=look.person, resources=resources)

    def rewatermark(self, payload: int) -> None:
        """Mark the following frames (and `still`) with another content id's payload: a warm engine
        serves one stream after another (streaming.warm) without the ~1 s build, each stream with its
        own watermark. Costs one watermark embedder (~10 ms at 540x960)."""
        marker = next(p for p in self.chain if isinstance(p, Watermarker))
        marker.payload = payload
        marker.seconds = 0.0
        self.still = marker.prepare(self._unmarked, self.setup)

    @staticmethod
    def _scene(options: EngineOptions, person: np.ndarray | None) -> SceneParts | None:
        template = options.scene
        if template is None:
            return None
        max_pixels = options.images.max_pixels
        layout = layout_scene(options.scene_name, template, options.label, max_pixels)
        kind = template.background.kind
        background = (
            background_canvas(template.background, layout.width, layout.height, max_pixels=max_pixels)
            if kind != "blur"
            else None
        )
        # `blur` with a cut-out: its canvas is painted in __init__ (it needs the work image and matte).
        return SceneParts(options.scene_name, template, layout, background, person if kind != "blur" else None)

    @property
    def watermark_seconds(self) -> float:
        return sum(getattr(p, "seconds", 0.0) for p in self.chain if p.name == "watermarker")

    @property
    def processor_names(self) -> list[str]:
        return [p.name for p in self.chain]

    @property
    def models(self) -> list[str]:
        """Registry names of the models this chain runs (the report lists them with their hashes)."""
        return [name for p in self.chain for name in p.requirements()]

    @property
    def providers_used(self) -> dict[str, str]:
        """Model name → the execution provider its session really runs on."""
        return dict(self.setup.providers_used)

    def frames(
        self, track: MotionTrack, bases: Iterator[np.ndarray] | None = None, first_frame: int = 0
    ) -> Iterator[np.ndarray]:
        """Yield finished frames; the yielded array is reused, so consume (write) it before the next.

        `bases` (an idle-loop avatar) gives each frame its own work-size base image, framed like the
        reference photo the engine was built on; without it every frame starts from the photo.
        `first_frame`: the index of the track's first frame in the whole render (a chunk's start),
        so a frame's time, and the speech it hears, are those of a single pass."""
        audio = self.setup.audio if self.audio_span is not None else None
        for processor in self.chain:
            plan = getattr(processor, "plan", None)
            if plan is not None:
                plan(track, first_frame)
        for index in range(track.frame_count):
            time_s = (first_frame + index) / self.options.fps
            context = FrameContext(index=index, motion=track.frame(index), time_s=time_s)
            if audio is not None:
                context.audio = audio.window(time_s - self.audio_span[0], time_s + self.audio_span[1])
            frame = next(bases) if bases is not None else self.work_image
            # what changed since the last base (a loop playback knows; any other iterator: unknown)
            context.base_changed = getattr(bases, "changed", None)
            if bases is not None and self.cutout is not None:
                assert self.decontaminate is not None
                frame = cut_out(self.decontaminate(frame), *self.cutout)  # an idle loop's frame: backdrop replaced too
                context.base_changed = None
            for processor in self.chain:
                frame = processor.process_frame(frame, context)
                if processor is self.reenactor:
                    if self.full_frame:
                        context.dirty = (0, 0, frame.shape[1], frame.shape[0])
                    if self.track_face:
                        context.landmarks = self.reenactor.frame_landmarks(context.motion)
                        context.box = _box(context.landmarks)
                geometry = getattr(processor, "geometry", None)
                if geometry is not None:
                    context.map_geometry(*geometry)
            yield frame

    def close(self) -> None:
        """Release every processor's sessions and buffers (idempotent)."""
        for processor in self.chain if hasattr(self, "chain") else []:
            close = getattr(processor, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> FusionEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def provider_choice(settings: Settings) -> ProviderChoice:
    """The execution providers the configuration asks for; TensorRT engines cached under the DHF home."""
    fusion = settings.fusion
    return ProviderChoice(
        requested=fusion.providers,
        tensorrt_fp16=fusion.tensorrt_fp16,
        cache_dir=settings.paths.cache / "tensorrt",
        threads=fusion.threads,
    )


def with_mouth_bank(fusion: FusionSettings, has_bank: bool) -> FusionSettings:
    """A personal avatar (one with a mouth bank) shows its own mouths: `mouth_bank` goes right after
    the reenactor when the chain does not list it and `fusion.mouth_bank.auto` is on."""
    names = list(fusion.processors)
    if not has_bank or not fusion.mouth_bank.auto or "mouth_bank" in names:
        return fusion
    return fusion.model_copy(update={"processors": (names[0], "mouth_bank", *names[1:])})


def _box(landmarks: np.ndarray) -> tuple[int, int, int, int]:
    lo, hi = np.floor(landmarks.min(0)).astype(int), np.ceil(landmarks.max(0)).astype(int)
    return (int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1]))
