"""Per-landmark displacement bases for each motion channel, derived from the avatar's own geometry.

The reenactor moves the avatar's face mesh by a linear combination of these bases (one per mouth
channel, blink, and head pose per degree). Because the combination is linear, the dense
displacement field of each basis is computed and smoothed once, and a frame costs only a weighted
sum of precomputed fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusion import topology as topo

# Fractions of the mouth width W: how far each channel moves the lips at value 1.
JAW_TRAVEL = 0.55
WIDTH_TRAVEL = 0.26
ROUND_NARROW = 0.34
ROUND_PROTRUDE = 0.05
TEETH_RAISE = 0.09
CHIN_INDEX = topo.CHIN
NECK_SHARE = 0.35  # fraction of the jaw travel taken by the skin under the chin


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


def _lower_lip_line(local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inner = local[list(topo.LIPS_INNER_LOWER)]
    order = np.argsort(inner[:, 0])
    return inner[order, 0], inner[order, 1]


def mouth_bases(landmarks: np.ndarray, frame: FaceFrame) -> dict[str, np.ndarray]:
    """(468, 2) pixel displacements for jaw_open, lip_width, lip_round, lip_closure and teeth."""
    local = frame.local(landmarks)
    u, v = local[:, 0], local[:, 1]
    count = len(landmarks)
    line_u, line_v = _lower_lip_line(local)
    below = v - np.interp(u, line_u, line_v)

    lower_lip = np.zeros(count, bool)
    lower_lip[list(topo.LIPS_INNER_LOWER + topo.LIPS_OUTER_LOWER)] = True
    upper_lip = np.zeros(count, bool)
    upper_lip[list(topo.LIPS_INNER_UPPER + topo.LIPS_OUTER_UPPER)] = True
    corners = list(topo.MOUTH_CORNERS + topo.INNER_CORNERS)
    upper_lip[corners] = False
    lips = lower_lip | upper_lip
    lips[corners] = True
    taper = np.clip(1.0 - (2.0 * np.abs(u)) ** 2 * 0.6, 0.0, 1.0)

    # Jaw: everything under the lower inner-lip line drops with it, fading towards the jaw angles.
    # Weights must not decrease downwards from the lip, or the skin under the lip folds over it.
    lateral = np.exp(-(np.clip(np.abs(u) - 0.35, 0, None) ** 2) / 0.3)
    ramp = np.clip(0.5 + below / 0.12, 0.0, 1.0)
    chin_below = max(float(local[CHIN_INDEX, 1] - np.interp(0.0, line_u, line_v)), 0.1)
    toward_chin = 1.0 - 0.25 * np.clip(below / chin_below, 0.0, 1.0)  # the neck takes up the rest
    jaw_weight = np.where(below > -0.05, lateral * ramp * toward_chin, 0.0)
    jaw_weight[lower_lip] = taper[lower_lip]
    jaw_weight[corners] = 0.4
    jaw_weight[upper_lip] = -0.05 * taper[upper_lip]
    jaw = np.zeros((count, 2))
    jaw[:, 1] = JAW_TRAVEL * jaw_weight
    # The mouth narrows slightly as it opens (a box-shaped opening looks fake).
    jaw[lips, 0] = -0.08 * u[lips]

    width = np.zeros((count, 2))
    width[lips, 0] = WIDTH_TRAVEL * u[lips]

    round_ = np.zeros((count, 2))
    round_[lips, 0] = -ROUND_NARROW * u[lips]
    round_[upper_lip, 1] = -ROUND_PROTRUDE * taper[upper_lip]
    round_[lower_lip, 1] = ROUND_PROTRUDE * taper[lower_lip]

    # Closure: inner lower lip onto inner upper lip (closes any gap the photo itself has).
    closure = np.zeros((count, 2))
    gap = local[list(topo.LIPS_INNER_UPPER)] - local[list(topo.LIPS_INNER_LOWER)]
    closure[list(topo.LIPS_INNER_LOWER)] = gap
    outer_lower = list(topo.LIPS_OUTER_LOWER)
    closure[outer_lower, 1] = np.interp(
        u[outer_lower], line_u, np.interp(line_u, u[list(topo.LIPS_INNER_LOWER)], gap[:, 1])
    )

    teeth = np.zeros((count, 2))
    teeth[upper_lip, 1] = -TEETH_RAISE * taper[upper_lip]
    teeth[list(topo.LIPS_OUTER_UPPER), 1] *= 0.7

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


def head_bases(points: np.ndarray, depth: np.ndarray, frame: FaceFrame, pivot: np.ndarray) -> dict[str, np.ndarray]:
    """Displacement per degree of yaw, pitch and roll; nearer points (nose) move more (parallax)."""
    radians = np.pi / 180.0
    reach = 1.1 * frame.interocular - depth
    yaw = np.outer(reach * radians, frame.ex)
    pitch = np.outer(reach * radians, frame.ey)
    rel = points[:, :2] - pivot
    roll = np.stack([-rel[:, 1], rel[:, 0]], axis=1) * radians
    return {"head_yaw": yaw, "head_pitch": pitch, "head_roll": roll}
