"""The mouth bank of a personal avatar: the person's own lower faces, one unit per recorded frame.

Why a bank of real frames (Video Rewrite, Bregler et al. 1997; Ezzat, Geiger & Poggio 2002): the
viewer sees the person's own lips, teeth and tongue, not painted ones, and on a CPU a resample of
a small stored crop costs far less than any generative model.

A unit is the lower face (lips, teeth, tongue, chin) normalised to a canonical frame by stable
points (eye corners and the nose bridge, which speech does not move): a similarity transform puts
the eye midpoint at the origin, the eye line horizontal and the interocular distance at `IO_PX`.
The crop is `CROP` of that frame, stored as JPEG (quality `JPEG_QUALITY`), with:
- `lips`: the 40 lip-contour points in crop pixels (the warp fits them onto the target's lips);
- `features`: the mouth motion channels read from the recording (`driver_synth.driver_video`'s mapping,
  the same units as a motion track), so a target frame of any track is compared in one space;
- `labels`: a viseme class per unit (`VISEME_CLASSES`, from the lip shape) for coverage checks;
- `frames`: the recording frame each unit came from (consecutive frames make runs);
- `template`: the canonical stable points (the warp's pose anchor);
- `pose`: the head's (yaw, pitch) in degrees when the unit was recorded (issue 26: selection
  prefers units recorded at the pose being rendered, a turned cheek cannot be invented);
- `mesh`: the face mesh's lower face and rigid points (`mesh_points`) in crop pixels, with depth
  (z, same scale): the warp turns the unit to the rendered pose in 3D instead of placing it flat.

Size: a 168×132 crop is ~5-7 kB as JPEG, so 25 units a second cost ~9-11 MB a minute
(measured in docs/benchmarks.md); the numeric arrays add ~0.3 MB a minute.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fusion.errors import FusionError
from vision import topology as topo

BANK_VERSION = 2  # 2: per-unit pose and mesh (version 1 banks still load: flat placement)
IO_PX = 96.0  # interocular distance in the canonical frame (≈ the work image's, so crops are not upsampled)
CROP = (-0.875, 0.45, 0.875, 1.825)  # x0, y0, x1, y1 of the crop in interocular units from the eye midpoint
JPEG_QUALITY = 92
STABLE_POINTS = (33, 133, 362, 263, 168, 6, 197, 195)  # eye corners and the nose bridge
LIP_POINTS = topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER[1:-1] + topo.LIPS_INNER_UPPER + topo.LIPS_INNER_LOWER[1:-1]
OUTER_LIP_COUNT = len(topo.LIPS_OUTER_UPPER) + len(topo.LIPS_OUTER_LOWER) - 2
FEATURES = ("jaw_open", "lip_width", "lip_round", "lip_closure", "teeth")
VISEME_CLASSES = ("closed", "mid", "open", "wide", "round")
# Points that speech does not move (eye corners, nose bridge and tip, forehead, the face's sides at
# the ears): the warp's camera is fitted on these, so the jaw's own motion never tilts the head.
RIGID_POINTS = (33, 133, 362, 263, 168, 6, 197, 195, 1, 4, 10, 151, 9, 234, 454, 127, 356, 93, 323)
SCALED = (0, 1, 2, 4)  # channels whose full scale (1.0 in a track) is the person's own fullest articulation


def crop_size() -> tuple[int, int]:
    """(width, height) of a unit's crop in pixels."""
    x0, y0, x1, y1 = CROP
    return round((x1 - x0) * IO_PX), round((y1 - y0) * IO_PX)


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2×3 similarity (rotation, uniform scale, shift) taking `source` points closest to `target`
    (Umeyama's least squares, no reflection)."""
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(s) @ d) / max((a**2).sum() / len(src), 1e-12))
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_d - matrix[:, :2] @ mu_s
    return matrix


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64)[:, :2] @ matrix[:, :2].T + matrix[:, 2]


def canonical_template(landmarks: np.ndarray) -> np.ndarray:
    """The stable points of one face in the canonical frame (eye midpoint at 0, eyes level, IO_PX apart)."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    right = lm[[topo.RIGHT_EYE_OUTER, topo.RIGHT_EYE_INNER]].mean(0)
    left = lm[[topo.LEFT_EYE_OUTER, topo.LEFT_EYE_INNER]].mean(0)
    axis = left - right
    scale = IO_PX / max(float(np.linalg.norm(axis)), 1e-6)
    angle = np.arctan2(axis[1], axis[0])
    rotation = np.array([[np.cos(-angle), -np.sin(-angle)], [np.sin(-angle), np.cos(-angle)]])
    return ((lm[list(STABLE_POINTS)] - (left + right) / 2) @ rotation.T) * scale


def to_crop(landmarks: np.ndarray, template: np.ndarray) -> np.ndarray:
    """The 2×3 affine from a frame's pixels to its unit crop's pixels."""
    matrix = similarity(np.asarray(landmarks)[list(STABLE_POINTS), :2], template)
    matrix[:, 2] -= np.array([CROP[0], CROP[1]]) * IO_PX
    return matrix


def extract_unit(frame: np.ndarray, landmarks: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(crop, lip points in crop pixels) of one frame."""
    matrix = to_crop(landmarks, template)
    crop = cv2.warpAffine(frame, matrix, crop_size(), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return crop, apply(matrix, np.asarray(landmarks)[list(LIP_POINTS)])


def mesh_points(template_landmarks: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Mesh indices a unit stores: every point inside the crop (with a margin of a tenth of the crop)
    in the first frame, plus `RIGID_POINTS`. Chosen once per bank, so every unit has the same set."""
    matrix = to_crop(template_landmarks, template)
    points = apply(matrix, np.asarray(template_landmarks))
    width, height = crop_size()
    margin = 0.1 * np.array([width, height])
    inside = np.all((points >= -margin) & (points <= np.array([width, height]) + margin), axis=1)
    return np.union1d(np.flatnonzero(inside), RIGID_POINTS).astype(np.int16)


def unit_mesh(landmarks: np.ndarray, template: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """(len(indices), 3) mesh points of one frame in its crop's pixels; z scaled like x and y."""
    matrix = to_crop(landmarks, template)
    lm = np.asarray(landmarks, np.float64)[np.asarray(indices)]
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    return np.column_stack([apply(matrix, lm), lm[:, 2] * scale]).astype(np.float32)


def viseme_labels(features: np.ndarray) -> np.ndarray:
    """A viseme class per unit from its lip shape (the coverage check's classes): rounded and spread
    lips first (they are what a recording most often lacks), then the opening: closed, mid, open.
    Teeth have no class: the upper-lip raise that reads them is too weak a cue to count frames by.
    Thresholds are in the recorded-driver units of `driver_synth.driver_video` (rounding 0.15 ≈ an "oo")."""
    jaw, width, rounded, closure = (features[:, k] for k in range(4))
    gap = jaw * (1.0 - closure)
    labels = np.where(gap < 0.08, 0, np.where(gap < 0.3, 1, 2))
    labels = np.where(width > 0.12, 3, labels)
    labels = np.where(rounded > 0.15, 4, labels)
    return labels.astype(np.int8)


def articulation_scale(features: np.ndarray) -> np.ndarray:
    """Per channel: the person's fullest articulation in the bank (99th percentile, at least 0.05).

    A motion track's 1.0 means "fully open / spread / rounded"; a recording read through the driver
    mapping reaches its own maximum, which differs per person (and per channel). Targets are scaled
    by this so the track's range lands on the person's range, not outside it."""
    scale = np.ones(features.shape[1], np.float32)
    for k in SCALED:
        scale[k] = max(float(np.percentile(features[:, k], 99)), 0.05)
    return scale


def target_features(channels: dict[str, np.ndarray]) -> np.ndarray:
    """(frames, 5) mouth channels of a motion track, in `FEATURES` order."""
    return np.stack([np.asarray(channels[name], np.float32) for name in FEATURES], axis=1)


@dataclass(frozen=True)
class MouthBank:
    crops: list[bytes]  # JPEG per unit
    lips: np.ndarray  # (n, 40, 2) crop pixels
    features: np.ndarray  # (n, 5) FEATURES
    labels: np.ndarray  # (n,) index into VISEME_CLASSES
    frames: np.ndarray  # (n,) recording frame index
    template: np.ndarray  # (8, 2) canonical stable points
    fps: int
    pose: np.ndarray | None = None  # (n, 2) yaw, pitch in degrees (None: a version 1 bank)
    mesh: np.ndarray | None = None  # (n, len(mesh_index), 3) crop pixels
    mesh_index: np.ndarray | None = None  # mesh point indices of `mesh`

    def __len__(self) -> int:
        return len(self.crops)

    def crop(self, index: int) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(self.crops[index], np.uint8), cv2.IMREAD_COLOR)

    def coverage(self) -> dict[str, int]:
        """Units per viseme class."""
        return {name: int(np.sum(self.labels == k)) for k, name in enumerate(VISEME_CLASSES)}

    def subset(self, keep: np.ndarray) -> MouthBank:
        keep = np.flatnonzero(np.asarray(keep))
        return MouthBank(
            [self.crops[i] for i in keep], self.lips[keep], self.features[keep], self.labels[keep],
            self.frames[keep], self.template, self.fps,
            None if self.pose is None else self.pose[keep], None if self.mesh is None else self.mesh[keep],
            self.mesh_index,
        )  # fmt: skip

    def rigid_rows(self) -> np.ndarray:
        """Rows of `mesh` that are `RIGID_POINTS` (in that order)."""
        position = {int(v): i for i, v in enumerate(self.mesh_index)}
        return np.array([position[p] for p in RIGID_POINTS])

    def to_bytes(self) -> bytes:
        extra = {}
        if self.pose is not None and self.mesh is not None and self.mesh_index is not None:
            extra = {
                "pose": self.pose.astype(np.float16),
                "mesh": self.mesh.astype(np.float16),
                "mesh_index": self.mesh_index.astype(np.int16),
            }
        offsets = np.cumsum([0] + [len(c) for c in self.crops]).astype(np.int64)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            version=np.int32(BANK_VERSION),
            jpeg=np.frombuffer(b"".join(self.crops), np.uint8),
            offsets=offsets,
            lips=self.lips.astype(np.float16),
            features=self.features.astype(np.float16),
            labels=self.labels.astype(np.int8),
            frames=self.frames.astype(np.int32),
            template=self.template.astype(np.float32),
            fps=np.int32(self.fps),
            io_px=np.float32(IO_PX),
            crop=np.asarray(CROP, np.float32),
            **extra,
        )
        return buffer.getvalue()

    @classmethod
    def load(cls, path: Path) -> MouthBank:
        try:
            with np.load(path) as data:
                if int(data["version"]) not in (1, BANK_VERSION) or float(data["io_px"]) != IO_PX:
                    raise FusionError(f"mouth bank {path} has an older format; re-enroll the avatar from its recording")
                jpeg, offsets = data["jpeg"].tobytes(), data["offsets"]
                return cls(
                    crops=[jpeg[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)],
                    lips=data["lips"].astype(np.float32),
                    features=data["features"].astype(np.float32),
                    labels=data["labels"],
                    frames=data["frames"],
                    template=data["template"].astype(np.float64),
                    fps=int(data["fps"]),
                    pose=data["pose"].astype(np.float32) if "pose" in data.files else None,
                    mesh=data["mesh"].astype(np.float32) if "mesh" in data.files else None,
                    mesh_index=data["mesh_index"].astype(np.int64) if "mesh_index" in data.files else None,
                )
        except (OSError, KeyError, ValueError) as exc:
            raise FusionError(f"mouth bank {path} is unreadable ({exc}); re-enroll the avatar") from exc


def encode_crop(crop: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise FusionError("could not encode a mouth crop as JPEG")
    return data.tobytes()
