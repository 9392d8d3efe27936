"""Per-landmark displacement bases of the face's own motion (mouth, eyes, brows), from its geometry.

The reenactor deforms the avatar's face mesh by a linear combination of these bases; because the
combination is linear, each basis's dense field is interpolated and smoothed once, and a frame costs
a weighted sum of precomputed fields. Head motion is not here: it is a rigid 3D motion applied
after these deformations (`fusion.head_motion`).

Amplitudes follow what real speech looks like (DESIGN.md): the aperture at a fully open jaw is about
0.4 of the mouth width (conversational speech mostly stays under half of it); rounding narrows the
mouth by about a fifth and pushes the lips forward (fuller lips, a rounder opening, corners no longer
smiling); spreading widens it and lifts the cheeks a little; the jaw drags the chin, the lower cheeks
and the nasolabial folds with it; closing lips meet halfway (tissue on tissue), whatever the photo
showed between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driver_synth.track import ROUND_NARROW, WIDTH_TRAVEL
from vision import topology as topo

# Fractions of the mouth width W: how far each channel moves the lips at value 1.
JAW_TRAVEL = 0.42
ROUND_PROTRUDE = 0.045
ROUND_OPEN = 0.05  # a rounded opening is taller at its centre
TEETH_RAISE = 0.075
CHEEK_JAW = 0.18  # lower cheeks follow the jaw by this share
CORNER_JAW = 0.22  # the mouth corners follow the jaw by this share
CHEEK_LIFT = 0.05  # spreading lifts the cheeks by this (× W)
CHIN_INDEX = topo.CHIN
NECK_SHARE = 0.35  # fraction of the jaw travel taken by the skin under the chin
BROW_TRAVEL = 0.11  # brow raise, in interocular distances
EYE_WIDEN = 0.22  # eye widening: upper lids up by this share of the eye opening
CLOSE_LOWER_SHARE = 0.8  # of a photo's lip gap closed by the lower lip and the jaw (the upper lip: the rest)
CLOSE_OVERSHOOT = 1.08  # closing lips press a little into each other (no hairline of teeth between)


@dataclass(frozen=True)
class FaceFrame:
    """A face-aligned coordinate frame: origin at the mouth centre, x along the eyes, unit = W."""

    origin: np.ndarray
    ex: np.ndarray
    ey: np.ndarray
    mouth_width: float
    interocular: float

    def local(self, points: np.ndarray) -> np.ndarray:
        rel = points[:, :2] - self.origin
        return np.stack([rel @ self.ex, rel @ self.ey], axis=1) / self.mouth_width

    def to_image(self, local_vectors: np.ndarray) -> np.ndarray:
        """Convert displacement vectors from local units to image pixels."""
        return (local_vectors[:, :1] * self.ex + local_vectors[:, 1:2] * self.ey) * self.mouth_width


def face_frame(landmarks: np.ndarray) -> FaceFrame:
    right = landmarks[[topo.RIGHT_EYE_OUTER, topo.RIGHT_EYE_INNER], :2].mean(0)
    left = landmarks[[topo.LEFT_EYE_OUTER, topo.LEFT_EYE_INNER], :2].mean(0)
    ex = (left - right) / np.linalg.norm(left - right)
    ey = np.array([-ex[1], ex[0]])
    origin = landmarks[list(topo.LIPS_INNER_UPPER + topo.LIPS_INNER_LOWER), :2].mean(0)
    width = float(np.linalg.norm(landmarks[topo.MOUTH_CORNERS[0], :2] - landmarks[topo.MOUTH_CORNERS[1], :2]))
    return FaceFrame(origin, ex, ey, width, float(np.linalg.norm(left - right)))


def _sorted(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(points[:, 0])
    return points[order, 0], points[order, 1]


def _lower_lip_line(local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _sorted(local[list(topo.LIPS_INNER_LOWER)])


def _curve(points: np.ndarray, us: np.ndarray) -> np.ndarray:
    return np.interp(us, *_sorted(points))


def lip_bands(local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every landmark: which lip it belongs to (+1 upper, -1 lower, 0 neither) and where across
    it (0 at the outer edge, 1 at the inner edge). The mesh has several rows of points across each
    lip; all of them must move with their lip, or the lip folds."""
    u, v = local[:, 0], local[:, 1]
    corners_u = local[list(topo.MOUTH_CORNERS), 0]
    within = (u > corners_u.min()) & (u < corners_u.max())
    outer_up, inner_up = _curve(local[list(topo.LIPS_OUTER_UPPER)], u), _curve(local[list(topo.LIPS_INNER_UPPER)], u)
    inner_lo, outer_lo = _curve(local[list(topo.LIPS_INNER_LOWER)], u), _curve(local[list(topo.LIPS_OUTER_LOWER)], u)
    tolerance = 0.004
    band = np.zeros(len(local), int)
    across = np.zeros(len(local))
    upper = within & (v >= outer_up - tolerance) & (v <= inner_up + tolerance)
    lower = within & (v >= inner_lo - tolerance) & (v <= outer_lo + tolerance) & ~upper
    band[upper], band[lower] = 1, -1
    across[upper] = np.clip((v - outer_up) / np.maximum(inner_up - outer_up, 1e-4), 0, 1)[upper]
    across[lower] = np.clip((outer_lo - v) / np.maximum(outer_lo - inner_lo, 1e-4), 0, 1)[lower]
    # The contours themselves belong to their lip whatever the geometry (closed lips share a line).
    for ids, side, where in ((topo.LIPS_OUTER_UPPER, 1, 0.0), (topo.LIPS_INNER_UPPER, 1, 1.0),
                             (topo.LIPS_OUTER_LOWER, -1, 0.0), (topo.LIPS_INNER_LOWER, -1, 1.0)):  # fmt: skip
        band[list(ids)], across[list(ids)] = side, where
    band[list(topo.MOUTH_CORNERS + topo.INNER_CORNERS)] = 0
    return band, across


def _cheeks(u: np.ndarray, v: np.ndarray, lips: np.ndarray) -> np.ndarray:
    """Weight of the cheek skin beside the mouth (nasolabial area): 1 next to the corners, fading
    towards the cheekbones, the ears and the jaw line."""
    lateral = np.clip(1.0 - np.abs(np.abs(u) - 0.75) / 0.55, 0.0, 1.0)
    vertical = np.clip(1.0 - np.abs(v + 0.15) / 0.75, 0.0, 1.0)
    return np.where(lips, 0.0, lateral * vertical)


def _gap_profile(local: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The photo's lip gap along the mouth (u → gap, both in W) and at its centre."""
    upper = local[list(topo.LIPS_INNER_UPPER)]
    gap = np.maximum(_curve(local[list(topo.LIPS_INNER_LOWER)], upper[:, 0]) - upper[:, 1], 0.0)
    gap_u, gap_v = _sorted(np.column_stack([upper[:, 0], gap]))
    return gap_u, gap_v, float(np.interp(0.0, gap_u, gap_v))


def mouth_bases(landmarks: np.ndarray, frame: FaceFrame) -> dict[str, np.ndarray]:
    """(468, 2) pixel displacements for jaw_open, lip_width, lip_round, lip_closure and teeth."""
    local = frame.local(landmarks)
    u, v = local[:, 0], local[:, 1]
    count = len(landmarks)
    band, across = lip_bands(local)
    upper_lip, lower_lip = band == 1, band == -1
    corners = np.zeros(count, bool)
    corners[list(topo.MOUTH_CORNERS + topo.INNER_CORNERS)] = True
    lips = upper_lip | lower_lip | corners
    line_u, line_v = _lower_lip_line(local)
    below = v - np.interp(u, line_u, line_v)
    taper = np.clip(1.0 - (2.0 * np.abs(u)) ** 2 * 0.6, 0.0, 1.0)
    # The lower lip drops most at its middle and only as much as the corners at its ends: the
    # opening is a lens that narrows into the corners, not a box with straight sides.
    lens = CORNER_JAW + (1 - CORNER_JAW) * np.clip(1.0 - (2.0 * np.abs(u)) ** 2, 0.0, 1.0) ** 2.2
    cheeks = _cheeks(u, v, lips)

    # Jaw: the lower lip and everything under it drop, fading towards the jaw angles. Weights must not
    # decrease downwards from the lip, or the skin under the lip folds over it.
    lateral = np.exp(-(np.clip(np.abs(u) - 0.35, 0, None) ** 2) / 0.3)
    ramp = np.clip(0.5 + below / 0.12, 0.0, 1.0)
    chin_below = max(float(local[CHIN_INDEX, 1] - np.interp(0.0, line_u, line_v)), 0.1)
    toward_chin = 1.0 - 0.25 * np.clip(below / chin_below, 0.0, 1.0)  # the neck takes up the rest
    jaw_weight = np.where(below > -0.05, lateral * ramp * toward_chin, 0.0)
    # The nasolabial folds stretch with the jaw; across the line between the lips this fades in
    # gradually (beside the mouth the lips do not part, so nothing may jump there).
    jaw_weight = np.maximum(jaw_weight, CHEEK_JAW * cheeks * np.clip((below + 0.3) / 0.35, 0.0, 1.0))
    jaw_weight[lower_lip] = lens[lower_lip]
    jaw_weight[corners] = CORNER_JAW
    # The upper lip stays with the skull, except next to the corners, which it follows down a little
    # (else the opening's outline would kink at the corners).
    near_corner = np.clip((np.abs(u) - 0.25) / 0.25, 0.0, 1.0) ** 1.5
    jaw_weight[upper_lip] = (-0.04 * taper + CORNER_JAW * near_corner)[upper_lip]
    jaw = np.zeros((count, 2))
    jaw[:, 1] = JAW_TRAVEL * jaw_weight
    jaw[lips, 0] = -0.07 * u[lips]  # the mouth narrows slightly as it opens (a box opening looks fake)
    jaw[:, 0] -= 0.04 * np.sign(u) * cheeks  # and the cheeks follow inwards a little

    width = np.zeros((count, 2))
    width[lips, 0] = WIDTH_TRAVEL * u[lips]
    width[corners, 1] = -0.03  # spread corners rise a little
    spread_around = ~lips & (np.abs(v) < 0.6)
    beside_spread = np.exp(-(((np.abs(u) - 0.5) / 0.32) ** 2)) * np.clip(1 - np.abs(v) / 0.6, 0, 1)
    width[spread_around, 0] = (0.5 * WIDTH_TRAVEL * np.sign(u) * 0.8 * beside_spread)[spread_around]
    width[:, 1] -= CHEEK_LIFT * cheeks

    round_ = np.zeros((count, 2))
    round_[lips, 0] = -ROUND_NARROW * u[lips]
    # The skin around the corners goes with them (the smile's creases close up), fading over half a
    # mouth width: a rounded mouth is a narrower mouth, not lips sliding over a still face.
    around = ~lips & (np.abs(v) < 0.6)
    beside = np.exp(-(((np.abs(u) - 0.5) / 0.32) ** 2)) * np.clip(1 - np.abs(v) / 0.6, 0, 1)
    round_[around, 0] = (-0.5 * ROUND_NARROW * np.sign(u) * beside)[around]
    # Pushed forward, the lips look fuller: the outer edges move apart, the opening gets rounder
    # (taller at its centre), and the corners drop to the mouth's centre line (no smile in an "O").
    for side, sign in ((upper_lip, -1.0), (lower_lip, 1.0)):
        t = across[side]
        round_[side, 1] = sign * (ROUND_PROTRUDE * (1 - t) + ROUND_OPEN * t * taper[side] ** 2)
    # The smile's raised corners come down towards the mouth's centre line, and the lips next to
    # them with them (else the opening's outline would kink at the corners).
    centre_v = float(np.mean(v[list(topo.LIPS_INNER_UPPER + topo.LIPS_INNER_LOWER)]))
    corner_v = float(np.mean(v[list(topo.MOUTH_CORNERS)]))
    towards = np.clip((np.abs(u) - 0.2) / 0.3, 0.0, 1.0) ** 2
    drop = 0.7 * (centre_v - corner_v) * towards
    round_[lips, 1] += drop[lips]
    round_[corners, 1] = 0.7 * (centre_v - v[corners])

    # Closure: the lips meet, whatever the photo shows between them. A photo with parted lips has an
    # open jaw, so closing them is mostly the jaw closing: the lower lip and the chin rise by most of
    # the gap, the upper lip comes down by the rest (lips stretched over the teeth would look thin).
    gap_u, gap_v, centre_gap = _gap_profile(local)
    gap = np.interp(u, gap_u, gap_v) * CLOSE_OVERSHOOT
    closure = np.zeros((count, 2))
    closure[:, 1] = -CLOSE_LOWER_SHARE * centre_gap * np.where(below > -0.05, jaw_weight, 0.0)
    closure[lower_lip, 1] = -CLOSE_LOWER_SHARE * gap[lower_lip]
    closure[upper_lip, 1] = (1 - CLOSE_LOWER_SHARE) * gap[upper_lip] * (0.4 + 0.6 * across[upper_lip])
    closure[corners] = 0.0

    teeth = np.zeros((count, 2))
    teeth[upper_lip, 1] = -TEETH_RAISE * taper[upper_lip] * (0.7 + 0.3 * across[upper_lip])

    return {
        name: frame.to_image(vectors)
        for name, vectors in {
            "jaw_open": jaw,
            "lip_width": width,
            "lip_round": round_,
            "lip_closure": closure,
            "teeth": teeth,
        }.items()
    }


def closure_neck_share(landmarks: np.ndarray, frame: FaceFrame) -> float:
    """How much of the jaw's neck displacement the closure basis applies (negative: the jaw rises)."""
    return -CLOSE_LOWER_SHARE * _gap_profile(frame.local(landmarks))[2] / JAW_TRAVEL


def neck_jaw(points: np.ndarray, landmarks: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """Jaw displacement of helper points around the head: those under the chin stretch with it."""
    local = frame.local(np.column_stack([points, np.zeros(len(points))]))
    chin_v = frame.local(landmarks[[CHIN_INDEX]])[0, 1]
    weight = np.clip((local[:, 1] - 0.3 * chin_v) / (0.7 * chin_v), 0, 1) * np.exp(-((local[:, 0] / 1.2) ** 2))
    vectors = np.zeros((len(points), 2))
    vectors[:, 1] = JAW_TRAVEL * NECK_SHARE * weight
    return frame.to_image(vectors)


def blink_basis(landmarks: np.ndarray) -> np.ndarray:
    """Upper eyelids onto the lower ones (and the lower lids up a little)."""
    basis = np.zeros((len(landmarks), 2))
    for upper, lower in ((topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER), (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER)):
        delta = landmarks[list(lower), :2] - landmarks[list(upper), :2]
        basis[list(upper)] = 0.95 * delta
        basis[list(lower[1:-1])] = -0.12 * delta[1:-1]
    return basis


def eye_wide_basis(landmarks: np.ndarray) -> np.ndarray:
    """Upper lids lift (the eyes open wider), the brows a little with them."""
    basis = np.zeros((len(landmarks), 2))
    for upper, lower, brow in (
        (topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER, topo.RIGHT_BROW),
        (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER, topo.LEFT_BROW),
    ):
        delta = landmarks[list(lower), :2] - landmarks[list(upper), :2]
        basis[list(upper[1:-1])] = -EYE_WIDEN * delta[1:-1]
        basis[list(brow)] = -0.5 * EYE_WIDEN * delta.mean(0)
    return basis


def brow_basis(landmarks: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """Brows raised: the brows and the forehead above them move up (less towards the hairline), the
    upper lids follow a little."""
    basis = np.zeros((len(landmarks), 2))
    travel = -BROW_TRAVEL * frame.interocular * frame.ey
    brows = list(topo.RIGHT_BROW + topo.LEFT_BROW)
    brow_line = float(np.mean(frame.local(landmarks[brows])[:, 1]))
    forehead_top = float(frame.local(landmarks[[topo.FOREHEAD]])[0, 1])
    local_v = frame.local(landmarks)[:, 1]
    span = max(brow_line - forehead_top, 1e-3)
    above = np.clip((brow_line - local_v) / span, 0.0, 1.0)
    share = np.where(local_v <= brow_line, 1.0 - 0.8 * above, 0.0)
    basis += share[:, None] * travel
    basis[brows] = travel
    for upper in (topo.RIGHT_EYE_UPPER, topo.LEFT_EYE_UPPER):
        basis[list(upper[1:-1])] = 0.3 * travel
    return basis
