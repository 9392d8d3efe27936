"""Hair at the frame's edge (issue 26): where the head shrinks or moves down, the strip it uncovers
at the top of the photo shows the backdrop, not a mirrored copy of the hair; no lock of hair floats
beside a head that leans back and rolls; a strong nod compresses the hair without folding it into
streaks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from recorded_motion import phone_track

from avatars.library import AvatarLibrary
from devtools.preview import preview_engine
from driver_synth.track import MotionTrack
from fusion.head_motion import HeadMotion, HeadPose
from fusion.motion_basis import face_frame
from pipeline.stages import avatar_stage
from vision import topology as topo

TOP_ROWS = 12  # work pixels: the sample photo's backdrop above the hair (the hair starts ~15 rows down)
HAIR_STEP = 40  # grey levels: a backdrop pixel turned into hair (light grey backdrop vs brown hair)


def _top_band(engine, frame: np.ndarray) -> np.ndarray:
    """The output pixels of the photo's top TOP_ROWS rows over the head's width."""
    names = [processor.name for processor in engine.chain]
    upscaler, compositor = engine.chain[names.index("upscaler")], engine.chain[names.index("compositor")]
    oval = engine.reenactor.landmarks[list(topo.FACE_OVAL), :2]
    centre, half = oval.mean(0)[0], (oval[:, 0].max() - oval[:, 0].min()) / 2
    x0 = round((centre - 1.6 * half) * upscaler.scale) + compositor.left
    x1 = round((centre + 1.6 * half) * upscaler.scale) + compositor.left
    y0, y1 = compositor.top, compositor.top + round(TOP_ROWS * upscaler.scale)
    return frame[y0:y1, x0:x1].astype(np.int16)


def test_a_shrinking_or_lowered_head_leaves_backdrop_not_hair_at_the_top_edge(settings):
    engine = preview_engine("sample", settings)
    # Rest, then the head shrinking (leaning back) and moving down: both pull the hair off the top edge.
    ramp = np.linspace(0.0, 1.0, 5)
    track = MotionTrack.from_channels(
        25,
        {
            "head_scale": np.concatenate([[0.0], -0.3 * ramp, np.zeros(5)]),
            "head_y": np.concatenate([[0.0], np.zeros(5), 0.4 * ramp]),
        },
    )
    frames = [frame.copy() for frame in engine.frames(track)]
    rest = _top_band(engine, frames[0])
    assert rest.mean() > 150, "the sample photo's top rows are its light backdrop"
    shares = []
    for frame in frames[1:]:
        band = _top_band(engine, frame)
        shares.append(float((np.abs(band - rest).max(axis=2) > HAIR_STEP).mean()))
    # The head really moved away from the edge (the hair's top is further down than at rest).
    assert np.abs(frames[5].astype(np.int16) - frames[0]).max() > 100
    worst = int(np.argmax(shares)) + 1
    assert max(shares) < 0.01, f"hair at the top edge in frame {worst}: {max(shares):.1%} of the band ({shares})"


def _detached_area(frame: np.ndarray, backdrop: np.ndarray) -> int:
    """Pixels (≥ 20 px pieces) that differ from the scene's solid backdrop but are not part of the
    largest piece (the person), between the logo/label band and the name tag."""
    band = frame[100:1400].astype(np.int16)
    mask = (np.abs(band - backdrop).max(axis=2) > HAIR_STEP).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = sorted(stats[1:, cv2.CC_STAT_AREA], reverse=True)
    return int(sum(area for area in areas[1:] if area >= 20))


def test_no_hair_floats_free_of_a_head_that_leans_back_and_rolls(settings):
    """On a solid scene every piece of the person that is not attached to it is visible as its own
    blob: the hair mirrored past the photo's top edge, and a lock left behind where the head
    shrank and rolled faster than its blend into the backdrop could follow."""
    app = settings.model_copy(update={"scene": settings.scene.model_copy(update={"name": "app"})})
    engine = preview_engine("sample", app)
    leaning_back = phone_track(25, 2.0, lean_in=-0.25)
    picked = [leaning_back.frame(index) for index in (24, 28)]  # scale −0.25, roll −11°: the lock
    channels = ("head_x", "head_y", "head_roll", "head_pitch", "head_scale")
    track = MotionTrack.from_channels(
        25, {name: np.array([0.0] + [getattr(motion, name) for motion in picked] + [0.0]) for name in channels}
    )
    frames = [frame.copy() for frame in engine.frames(track)]
    backdrop = frames[0][120, frames[0].shape[1] // 2].astype(np.int16)  # the app scene's solid colour
    rest = _detached_area(frames[0], backdrop)  # the logo's and label's pieces, the suit's buckles
    floating = [_detached_area(frame, backdrop) - rest for frame in frames[1:3]]
    assert max(floating) <= 200, f"pieces of hair floating free of the head: {floating} px"


def _jacobian_determinant(sample: np.ndarray) -> np.ndarray:
    dxx, dxy = np.gradient(sample[..., 0], axis=1), np.gradient(sample[..., 0], axis=0)
    dyx, dyy = np.gradient(sample[..., 1], axis=1), np.gradient(sample[..., 1], axis=0)
    return dxx * dyy - dxy * dyx


@pytest.mark.parametrize(
    "pose", [HeadPose(pitch=25, roll=-12, scale=0.1), HeadPose(pitch=-25), HeadPose(pitch=30, roll=12)]
)
def test_a_strong_nod_compresses_the_hair_without_folding_it(settings, pose):
    """Where the map's determinant is ≤ 0 it folds (two places of the photo meet, the inversion
    smears the hair in horizontal streaks); near 0 it stretches a row of hair over many rows."""
    avatar = AvatarLibrary.from_settings(settings.paths).get("sample")
    analysis = avatar_stage(avatar, settings)
    work, landmarks = analysis.work_image_and_landmarks(avatar)
    person = analysis.person_mask()
    height, width = work.shape[:2]
    head = HeadMotion(landmarks, face_frame(landmarks), (height, width), person)
    sample = head.backward_map(pose, (0, 0, width, height))
    on_person = cv2.remap(person.astype(np.float32), sample[..., 0], sample[..., 1], cv2.INTER_LINEAR) > 128
    determinant = _jacobian_determinant(sample)[on_person]
    assert determinant.min() > 0.15, f"{pose}: the head's map folds (min determinant {determinant.min():.3f})"
    # The nod still shows: the forehead moves.
    forehead = landmarks[topo.FOREHEAD, :2]
    assert np.linalg.norm(head.forward_points(forehead[None], pose)[0] - forehead) > 10
