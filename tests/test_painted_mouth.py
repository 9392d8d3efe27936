"""The painted mouth of a photo avatar, measured on the reenactor's frames (issue 26, item 6): the
teeth meet the upper lip (no painted dark band between them), teeth with individual shading.

Frames come from the real reenactor on the bundled avatars at their work size, with the head still,
so output pixels and rest-pose landmarks share coordinates. Each measure names the region it reads.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from avatars.library import AvatarLibrary
from config import load_visemes_table
from driver_synth.track import CHANNELS, MotionFrame
from fusion.processors.base import FrameContext
from fusion.processors.reenactor import Reenactor
from phoneme.visemes import VisemeTable
from pipeline.stages import avatar_stage
from vision import topology as topo


@pytest.fixture(scope="module")
def reenactors(settings):
    made = {}
    for avatar_id in ("sample", "sample-closed"):
        avatar = AvatarLibrary.from_settings(settings.paths).get(avatar_id)
        stage = avatar_stage(avatar, settings)
        work, landmarks = stage.work_image_and_landmarks(avatar)
        reenactor = Reenactor(landmarks, person=stage.person_mask())
        reenactor.prepare(work)
        made[avatar_id] = (reenactor, work)
    return made


def viseme(key: str) -> MotionFrame:
    shape = VisemeTable(load_visemes_table()).shapes[key]
    return MotionFrame(**{name: float(getattr(shape, name)) for name in CHANNELS if hasattr(shape, name)})


def frame(reenactor: Reenactor, work: np.ndarray, motion: MotionFrame) -> np.ndarray:
    return reenactor.process_frame(work, FrameContext(index=0, motion=motion)).copy()


def polygon_mask(shape: tuple[int, int], *contours: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(np.concatenate(contours)).astype(np.int32)], 1)
    return mask > 0


def upper_lip(reenactor: Reenactor, motion: MotionFrame, shape: tuple[int, int]) -> np.ndarray:
    """The upper lip in the frame: between its outer contour and its moved inner contour, the
    middle half of the mouth (its corners are mostly skin)."""
    outer = reenactor.moved_landmarks(motion, topo.LIPS_OUTER_UPPER)
    inner = reenactor.moved_landmarks(motion, topo.LIPS_INNER_UPPER)
    mask = polygon_mask(shape, outer, inner[::-1])
    xs = np.concatenate([outer, inner])[:, 0]
    centre, half = (xs.min() + xs.max()) / 2, (xs.max() - xs.min()) / 4
    mask[:, : int(centre - half)] = False
    mask[:, int(centre + half) :] = False
    return mask


def opening(reenactor: Reenactor, motion: MotionFrame, shape: tuple[int, int]) -> np.ndarray:
    upper = reenactor.moved_landmarks(motion, topo.LIPS_INNER_UPPER)
    lower = reenactor.moved_landmarks(motion, topo.LIPS_INNER_LOWER)
    mask = polygon_mask(shape, upper, lower[::-1])
    return cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)


def under_the_upper_lip(reenactor: Reenactor, motion: MotionFrame, shape: tuple[int, int], depth: float) -> np.ndarray:
    """The strip of the opening right under the moved upper lip, `depth` × mouth width tall, over the
    middle half of the mouth."""
    upper = reenactor.moved_landmarks(motion, topo.LIPS_INNER_UPPER)
    lower = reenactor.moved_landmarks(motion, topo.LIPS_INNER_LOWER)
    width = reenactor.face.mouth_width
    strip = polygon_mask(shape, upper, (upper + np.array([0.0, depth * width]))[::-1]) & polygon_mask(
        shape, upper, lower[::-1]
    )
    centre, half = float(upper[:, 0].mean()), float(np.ptp(upper[:, 0])) / 4
    strip[:, : int(centre - half)] = False
    strip[:, int(centre + half) :] = False
    return strip


@pytest.mark.parametrize("avatar_id, key", [("sample", "B"), ("sample", "C"), ("sample", "H"), ("sample", "I"),
                                             ("sample-closed", "C"), ("sample-closed", "D")])  # fmt: skip
def test_the_teeth_meet_the_upper_lip_without_a_dark_band(reenactors, avatar_id, key):
    """Speaking, the upper teeth show right under the upper lip (the sample's own teeth, as its
    smiling photo shows them; the closed-lips avatar's synthesized ones), not a flat dark band of
    painted mouth between lip and teeth."""
    reenactor, work = reenactors[avatar_id]
    motion = viseme(key)
    strip = lab(frame(reenactor, work, motion))[under_the_upper_lip(reenactor, motion, work.shape[:2], 0.05)]
    dark = float(np.mean(strip[:, 0] < 110))
    assert dark < 0.25, f"{avatar_id} {key}: {dark:.0%} of the strip under the upper lip is dark (a painted band)"


def test_synthesized_teeth_are_individual_teeth(reenactors):
    """The closed-lips avatar's synthesized upper teeth: along a row through them, darker gaps
    between teeth and a slightly different brightness per tooth, darker towards the corners."""
    reenactor, work = reenactors["sample-closed"]
    motion = viseme("C")
    out = lab(frame(reenactor, work, motion))[..., 0]
    upper = reenactor.moved_landmarks(motion, topo.LIPS_INNER_UPPER)
    rest_upper = reenactor.landmarks[list(topo.LIPS_INNER_UPPER), :2]
    width = reenactor.face.mouth_width
    xs = np.arange(int(rest_upper[:, 0].min() + 0.2 * width), int(rest_upper[:, 0].max() - 0.2 * width))
    # A row through the teeth: 5 % of the mouth width under the resting upper lip.
    ys = np.interp(xs, rest_upper[:, 0], rest_upper[:, 1]) + 0.05 * width
    assert np.all(ys > np.interp(xs, upper[:, 0], upper[:, 1]) + 1)
    rows = [round(float(y)) for y in ys]
    line = np.array([out[row - 1 : row + 2, x].mean() for x, row in zip(xs, rows, strict=True)])
    detail = line - cv2.GaussianBlur(line.reshape(1, -1), (0, 0), 0.08 * width).ravel()
    gaps = int(np.sum((detail[1:-1] < detail[:-2]) & (detail[1:-1] <= detail[2:]) & (detail[1:-1] < -3)))
    assert gaps >= 3, f"{gaps} gaps deeper than 3 L* between the synthesized teeth (a uniform strip)"
    tenth = max(len(line) // 10, 1)
    sides = float(np.concatenate([line[:tenth], line[-tenth:]]).mean())
    middle = float(np.median(line[4 * tenth : -4 * tenth]))
    assert sides < middle - 5, f"the teeth towards the corners ({sides:.0f} L*) are not darker than the middle"


def test_the_brows_live_with_the_voice_between_accents(reenactors, settings):
    """A statement without a single accent: the brows still lift slightly while the mouth talks
    (following the voice), so the upper face is not a still photo; measured where the brow points
    land on the sample, at work size."""
    from driver_synth.synthesize import synthesize_track
    from phoneme.artifacts import VisemeKeyframe, VisemeTrack

    keys = [VisemeKeyframe(0.0, "X", 0.03, 0, 0, 1, 0)]
    for index, time in enumerate(np.arange(0.3, 3.6, 0.18)):
        keys.append(VisemeKeyframe(float(time), "C" if index % 2 else "B", 0.5 if index % 2 else 0.18, 0, 0, 0, 0.5))
    keys.append(VisemeKeyframe(4.0, "X", 0.03, 0, 0, 1, 0))
    track = synthesize_track(VisemeTrack(4.0, keys, closures=[]), 25, settings.motion, seed=5)
    brow = track.channels["brow"]
    talking = slice(10, 90)
    assert float(np.mean(brow[talking] > 0.05)) > 0.8, "the brows are still between accents"
    reenactor, _work = reenactors["sample"]
    brows = topo.RIGHT_BROW + topo.LEFT_BROW
    rest = reenactor.moved_landmarks(MotionFrame(), brows)
    lifted = reenactor.moved_landmarks(track.frame(int(np.argmax(brow))), brows)
    travel = float(np.median(rest[:, 1] - lifted[:, 1]))
    assert travel > 1.0, f"the brows lift {travel:.2f} px at work size (not visible)"


@pytest.mark.parametrize("avatar_id", ["sample", "sample-closed"])
def test_a_wide_open_mouth_is_dark_behind_the_teeth_with_the_tongue_low(reenactors, avatar_id):
    """Wide open (D), a column through the middle of the opening, from under the upper teeth down to
    the lower teeth: a dark cavity first, then the tongue, lit towards the front (lowest in the
    picture). A tongue filling the opening and lit along its top read as a flat maroon lower lip."""
    reenactor, work = reenactors[avatar_id]
    motion = viseme("D")
    out = lab(frame(reenactor, work, motion))[..., 0]
    width = reenactor.face.mouth_width
    upper = reenactor.moved_landmarks(motion, topo.LIPS_INNER_UPPER)
    lower = reenactor.moved_landmarks(motion, topo.LIPS_INNER_LOWER)
    centre = float(upper[:, 0].mean())
    column = out[:, int(centre - 0.1 * width) : int(centre + 0.1 * width) + 1].mean(axis=1)
    top, bottom = (float(np.interp(centre, *zip(*sorted(c.tolist()), strict=True))) for c in (upper, lower))
    rows = np.arange(int(top + 0.03 * width), int(bottom))
    inside = rows[column[rows] < 100]  # neither upper nor lower teeth
    profile = column[inside.min() : inside.max() + 1]
    back = float(profile[: len(profile) // 2].mean())
    assert back < 45, f"{avatar_id}: under the teeth the interior is L {back:.0f}/255 (no dark cavity)"
    brightest = int(np.argmax(profile))
    assert brightest >= 2 * len(profile) // 3, f"{avatar_id}: the interior is brightest at {brightest}/{len(profile)}"


def test_no_vertical_brackets_beside_a_puckered_mouth(reenactors):
    """Puckered (F), the closed-lips avatar: beside the narrowed mouth, out to where the photo's
    corners were, the skin and the corner crease keep their scale. The lips' line torn open there
    used to sample a few source rows over 10 output rows: vertical streaks ("brackets"), whose
    texture changes much more across the columns than down them."""
    reenactor, work = reenactors["sample-closed"]
    motion = viseme("F")
    out = lab(frame(reenactor, work, motion))[..., 0]
    width = reenactor.face.mouth_width
    photo = reenactor.landmarks[list(topo.MOUTH_CORNERS), :2]
    moved = reenactor.moved_landmarks(motion, topo.MOUTH_CORNERS)
    photo, moved = photo[np.argsort(photo[:, 0])], moved[np.argsort(moved[:, 0])]
    for side, sign in ((0, -1.0), (1, 1.0)):
        xa, xb = sorted([moved[side, 0] + sign * 0.02 * width, photo[side, 0] + sign * 0.04 * width])
        y0, y1 = int(moved[side, 1] - 0.05 * width), int(moved[side, 1] + 0.15 * width)
        box = out[y0:y1, int(xa) : int(xb)]
        across = float(np.abs(np.diff(box, axis=1)).mean())
        down = float(np.abs(np.diff(box, axis=0)).mean())
        assert across < 2.4 * down, f"corner {side}: {across / down:.2f} × more change across columns than down them"


def test_synthesized_teeth_differ_in_width(reenactors):
    """The closed-lips avatar's synthesized upper teeth (viseme C): the gaps between them, found to
    a fraction of a pixel along a row through the teeth, are not evenly spaced (an even row of equal
    teeth read as a denture)."""
    reenactor, work = reenactors["sample-closed"]
    out = lab(frame(reenactor, work, viseme("C")))[..., 0]
    rest_upper = reenactor.landmarks[list(topo.LIPS_INNER_UPPER), :2]
    width = reenactor.face.mouth_width
    xs = np.arange(int(rest_upper[:, 0].min() + 0.2 * width), int(rest_upper[:, 0].max() - 0.2 * width))
    rows = np.interp(xs, rest_upper[:, 0], rest_upper[:, 1]) + 0.05 * width
    line = np.array([out[round(row) - 1 : round(row) + 2, x].mean() for x, row in zip(xs, rows, strict=True)])
    detail = line - cv2.GaussianBlur(line.reshape(1, -1), (0, 0), 0.08 * width).ravel()
    gaps = []
    for i in range(1, len(detail) - 1):
        before, here, after = detail[i - 1 : i + 2]
        if here < before and here <= after and here < -2:
            curvature = before - 2 * here + after
            gaps.append(xs[i] + (0.5 * (before - after) / curvature if curvature > 1e-6 else 0.0))
    widths = np.diff(gaps)
    assert len(widths) >= 3, f"only {len(gaps)} gaps between the synthesized teeth"
    spread = float(widths.std() / widths.mean())
    assert spread > 0.09, f"tooth widths {np.round(widths, 1).tolist()} px vary by {spread:.3f} (an even row)"
