"""sha256 and ms/frame of the engine's frames for a few chains: compare two trees bit for bit.

Why: a change to how the chain is built (the processor registry, issue 27) must leave every frame as
it was. Run it from each tree's root with that tree first on the path, then compare the digests:

    PYTHONPATH=$PWD python scripts/chain_sha.py ~/.local/share/dhf        # in each tree
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from avatars.library import AvatarLibrary
from config import load_settings
from driver_synth.track import MotionTrack
from fusion.engine import FusionEngine, RenderOptions
from pipeline import stages


def main(home: Path, frames: int = 10) -> None:
    base = load_settings(home=home)
    avatar = AvatarLibrary.from_settings(base.paths).get("sample")
    t = np.linspace(0, 1, frames)
    channels = {"jaw_open": 0.5 + 0.5 * np.sin(6 * t), "head_yaw": 8 * np.sin(3 * t),
                "lip_width": 0.3 * np.cos(5 * t), "blink": (t > 0.5).astype(float)}  # fmt: skip
    track = MotionTrack.from_channels(25, channels)
    cases = {
        "default": base.for_scene(None),
        "web": base.for_scene("web"),
        "social": base.for_scene("social"),
        "short": base.for_scene(None).with_section("fusion", processors=("reenactor", "upscaler", "compositor")),
    }
    for name, settings in cases.items():
        analysis = stages.avatar_stage(avatar, settings)
        engine = FusionEngine.for_avatar(stages.avatar_look(avatar, analysis), settings, RenderOptions(0x1234ABCD))
        digest = hashlib.sha256(engine.still.tobytes())
        started = time.perf_counter()
        for frame in engine.frames(track):
            digest.update(frame.tobytes())
        ms = (time.perf_counter() - started) * 1000 / frames
        print(f"{name:8s} {digest.hexdigest()[:16]} {ms:6.1f} ms/frame  {' → '.join(engine.processor_names)}")
        engine.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10)
