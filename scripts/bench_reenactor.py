"""Reenactor alone on one core: milliseconds per frame for random motion on the sample avatar.

Issue 3's target is <= 15 ms per frame at the 640 px work size. Usage:
    .venv/bin/python scripts/bench_reenactor.py [--frames 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import cv2
import numpy as np

from avatars.library import AvatarLibrary
from config import load_settings
from driver_synth.track import CHANNELS, MotionFrame
from fusion.processors.base import FrameContext
from fusion.processors.reenactor import Reenactor, ReenactorOptions
from pipeline.stages import avatar_stage

RANGES = {
    "jaw_open": (0, 1),
    "lip_width": (-0.5, 0.3),
    "lip_round": (0, 1),
    "lip_closure": (0, 1),
    "teeth": (0, 1),
    "tongue": (0, 1),
    "blink": (0, 1),
    "eye_wide": (0, 0.5),
    "brow": (0, 0.5),
    "head_yaw": (-3, 3),
    "head_pitch": (-2, 2),
    "head_roll": (-1, 1),
    "head_x": (0, 0),
    "head_y": (0, 0),
    "head_scale": (0, 0),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    settings = load_settings()
    avatar = AvatarLibrary.from_settings(settings.paths).get("sample")
    work, landmarks = avatar_stage(avatar, settings).work_image_and_landmarks(avatar)
    reenactor = Reenactor(landmarks, ReenactorOptions(), avatar_stage(avatar, settings).person_mask())
    reenactor.prepare(work)
    rng = np.random.default_rng(0)
    times = []
    for index in range(args.frames):
        motion = MotionFrame(**{name: float(rng.uniform(*RANGES[name])) for name in CHANNELS})
        start = time.perf_counter()
        reenactor.process_frame(work, FrameContext(index=index, motion=motion))
        times.append(1000 * (time.perf_counter() - start))
    result = {"frames": args.frames, "median_ms": round(float(np.median(times)), 2)}
    result["p90_ms"] = round(float(np.percentile(times, 90)), 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
