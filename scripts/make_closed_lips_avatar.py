"""Make the bundled closed-lips test avatar (avatars/sample-closed) from the sample portrait.

Most corporate portraits show closed lips; the bundled sample smiles with its teeth showing. This
derives a closed-lips portrait from it with the engine's own closure (lips meeting, jaw closed, the
smile softened a little), at the work resolution (the face becomes ~210 px wide). Run it again only
if the bundled sample changes:
    .venv/bin/python scripts/make_closed_lips_avatar.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2

from avatars.library import BUNDLED, AvatarLibrary
from config import load_settings
from driver_synth.track import MotionFrame
from fusion.processors.base import FrameContext
from fusion.processors.reenactor import Reenactor
from pipeline.stages import avatar_stage

TARGET = BUNDLED / "sample-closed" / "portrait.png"


def main() -> int:
    settings = load_settings()
    avatar = AvatarLibrary.from_settings(settings.paths).get("sample")
    analysis = avatar_stage(avatar, settings)
    work, landmarks = analysis.work_image_and_landmarks(avatar)
    reenactor = Reenactor(landmarks, person=analysis.person_mask())
    reenactor.prepare(work)
    closed = MotionFrame(lip_closure=1.0, lip_round=0.25)
    frame = reenactor.process_frame(work, FrameContext(index=0, motion=closed))
    Path(TARGET).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(TARGET), frame, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
