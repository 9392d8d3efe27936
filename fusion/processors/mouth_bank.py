"""`mouth_bank`: the personal avatar's own recorded mouths, chosen and blended frame by frame.

Runs right after the reenactor (which moves the face and gives the target lips in the frame):
1. `plan(track)`, before any frame streams: unit selection over the whole track
   (`fusion.unit_selection`: shape distance plus continuity, Viterbi over a candidate lattice);
2. per frame: the chosen unit's crop is turned to the rendered head pose with the face mesh
   (`fusion.mesh_warp`: an affine camera fitted on rigid points, then piecewise-affine over the
   lower face's triangles), so a ±20° turn foreshortens the unit's chin and cheeks as the rendered
   face's are (a 2D similarity makes them look swollen). Banks without a
   mesh (version 1) are placed by one affine: the head pose by the stable points, optionally
   pulled onto the target's lips (`shape_strength`);
3. colour-matched: per-channel gains that make the skin ring just outside the lips equal the base's
   (light in the recording drifts; the base may be another take);
4. blended with a feathered mask: the lips' hull widened by `margin_ratio` of the mouth width and
   blurred by `feather_ratio`, times the crop's own soft border, so no edge is ever visible; the
   mask stops above both chins, the unit's and the rendered frame's (`chin_stop`): a wide-open unit
   was filmed with its jaw dropped by another amount than the reenactor dropped the frame's, and its
   own chin edge, blended in above the rendered one, would read as a second chin line.
Everything is weight-free; a frame costs a JPEG decode of a small crop and two small warps.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from config.processors import ChainRule
from config.settings import Fraction, Section
from driver_synth.track import MotionTrack
from fusion.errors import FusionError
from fusion.mesh_warp import (
    affine_camera,
    frame_points,
    project,
    triangulate,
    turn_weight,
    view_depth,
    warp_maps,
    with_frame,
)
from fusion.mouth_bank import (
    CROP,
    IO_PX,
    LIP_POINTS,
    OUTER_LIP_COUNT,
    RIGID_POINTS,
    STABLE_POINTS,
    MouthBank,
    apply,
    articulation_scale,
    crop_size,
    similarity,
    target_features,
)
from fusion.processors.base import FrameContext, ProcessorSetup, ProcessorSpec, union_rect
from fusion.unit_selection import SelectionOptions, select_units
from vision import topology as topo

STABLE_WEIGHT = 0.35  # weight of a stable point against a lip point in the warp's fit
CROP_BORDER = 6  # px of the crop's edge faded out (the warped crop never ends in a hard line)
GAIN_LIMITS = (0.75, 1.33)
UPWARD_REACH = 0.8  # vertical margin above the lips, × margin_ratio (below them: 1.6, for the chin)
JOIN_BLEND = 0.5  # at a join between two takes, the new unit's opacity over the old run's next frame
FACE_INSET = 1.05  # the paste stays inside the face outline scaled by this about its centre (then feathered)
JAW_LINE = (132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361)  # ear to ear, chin
FOLLOW_FROM = 0.5  # chin_follow keeps the unit's skin below the lower lip as filmed down to this share of the
# span to the jaw and stretches only the rest (held-out SSIM on the test person: 0.833 from 0, 0.838 from 0.5)
CHIN_INSET = 2.0  # the mask's edge lies this many feather sigmas above a chin line (weight there: ~2 %)


class MouthBankOptions(Section):
    """`fusion.mouth_bank`: a personal avatar's recorded mouths, unit selection and blending."""

    auto: bool = True  # a personal avatar gets mouth_bank after the reenactor even when the chain omits it
    candidates: int = Field(12, ge=1, le=200)  # units per frame in the selection lattice
    join_cost: float = Field(0.08, ge=0.0)  # cost of a jump between non-consecutive recorded frames
    repeat_cost: float = Field(0.03, ge=0.0)  # cost of holding one unit for another frame
    margin_ratio: Fraction = 0.45  # the mask reaches this share of the mouth width beyond the lips' hull
    feather_ratio: Fraction = 0.07  # Gaussian sigma of the mask's edge, × mouth width
    colour_match: bool = True
    shape_strength: Fraction = 0.0  # 0: the unit placed by head pose only (best held-out); 1: fitted to target lips
    mesh_warp: bool = True  # turn units with the face mesh (False: flat 2D placement by one affine)
    pose_weight: float = Field(0.03, ge=0.0)  # selection cost per degree of recorded vs rendered head pose
    turn_degrees: tuple[float, float] = (5.0, 15.0)  # out-of-plane turn where the mesh warp starts, is full
    chin_stop: bool = True  # the mask ends above the unit's chin and the frame's (no second chin line)
    chin_follow: bool = True  # the unit's jaw stretched onto the rendered one (the two chins coincide)


def _border_mask() -> np.ndarray:
    width, height = crop_size()
    mask = np.zeros((height, width), np.float32)
    mask[CROP_BORDER:-CROP_BORDER, CROP_BORDER:-CROP_BORDER] = 1.0
    return cv2.GaussianBlur(mask, (0, 0), CROP_BORDER / 2)


def _inside_face(landmarks: np.ndarray, origin: tuple[int, int], size: tuple[int, int], sigma: float) -> np.ndarray:
    """1 inside the face outline (scaled by FACE_INSET, feathered by `sigma`), 0 outside. Why: when
    the head turns, the near cheek narrows in the frame, and the mouth region (widened beyond the
    lips for a soft blend) would paste the recording's cheek over the backdrop beside the face."""
    oval = landmarks[list(topo.FACE_OVAL), :2]
    centre = oval.mean(0)
    inside = centre + (oval - centre) * FACE_INSET - np.asarray(origin, np.float64)
    face = np.zeros((size[1], size[0]), np.float32)
    outline = np.round(cv2.convexHull(inside.astype(np.float32)) * 4).astype(np.int32)
    cv2.fillConvexPoly(face, outline, 1.0, lineType=cv2.LINE_AA, shift=2)
    return cv2.GaussianBlur(face, (0, 0), sigma)


def _face_up(landmarks: np.ndarray) -> np.ndarray:
    """The face's up direction in the frame (chin to eyes), a unit vector."""
    points = np.asarray(landmarks, np.float64)[:, :2]
    up = points[[topo.LEFT_EYE_OUTER, topo.RIGHT_EYE_OUTER]].mean(0) - points[topo.CHIN]
    return up / max(float(np.linalg.norm(up)), 1e-6)


def _above_jaw(
    jaw: np.ndarray, up: np.ndarray, origin: tuple[int, int], size: tuple[int, int], sigma: float
) -> np.ndarray:
    """1 above the jaw line `jaw` (frame pixels, ear to ear via the chin) moved CHIN_INSET·`sigma`
    towards the face, 0 below, feathered by `sigma`: the blend weight on the line itself is ~2 %.
    Why: a chin edge that is blended in at any weight stays visible as a line; `up` is the face's
    up direction (the region is closed far beyond the crop along it)."""
    jaw = np.asarray(jaw, np.float64) - np.asarray(origin, np.float64)
    tangent = np.gradient(jaw, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    normal[(normal @ up) < 0] *= -1  # towards the face
    inset = jaw + CHIN_INSET * sigma * normal
    far = 4.0 * float(max(size))
    polygon = np.concatenate([inset, [inset[-1] + far * up, inset[0] + far * up]])
    above = np.zeros((size[1], size[0]), np.float32)
    cv2.fillPoly(above, [np.round(polygon * 4).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=2)
    return cv2.GaussianBlur(above, (0, 0), sigma)


def fit_affine(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The 2×3 affine taking `source` to `target` in weighted least squares."""
    design = np.column_stack([source, np.ones(len(source))]) * weights[:, None]
    solution, *_ = np.linalg.lstsq(design, target * weights[:, None], rcond=None)
    return solution.T


class MouthBankProcessor:
    name = "mouth_bank"
    needs_landmarks = True

    def __init__(self, options: MouthBankOptions | None = None, bank: MouthBank | None = None) -> None:
        self.options = options or MouthBankOptions()
        self.bank = bank
        self.path: np.ndarray | None = None
        self.buffer: np.ndarray | None = None
        self.previous: tuple[int, int, int, int] | None = None
        self.chosen: list[int] = []  # unit per processed frame (for tests and the evaluation)
        self.last_unit: int | None = None  # the unit of the last processed frame, and its index
        self.last_index = -1
        self._border = _border_mask()
        self._crop_stable: np.ndarray | None = None
        self._triangles: np.ndarray | None = None
        self._frame = np.zeros((0, 2))
        self._rigid_rows: np.ndarray | None = None
        self._lip_rows: np.ndarray | None = None
        self._jaw_rows: np.ndarray | None = None
        self._jaw_points = np.array(JAW_LINE)  # the jaw line's mesh points that the bank's units have
        self.last_turn = 0.0  # the mesh warp's share in the last paste (0: flat, 1: fully turned)
        self.base_pose = np.zeros(2)  # (yaw, pitch) of the base face: the rendered pose is this plus the track's
        self.last_mask: tuple[int, int, np.ndarray] | None = None

    def requirements(self) -> list[str]:
        return []

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        if self.bank is None and setup is not None:
            self.bank = setup.mouth_bank
        if self.bank is None or len(self.bank) == 0:
            raise FusionError(
                "the chain lists 'mouth_bank' but this avatar has no mouth bank; enroll it from a speaking "
                "recording (dhf avatar add REC.mp4 --speaking ...) or remove mouth_bank from fusion.processors"
            )
        self._crop_stable = self.bank.template - np.array([CROP[0], CROP[1]]) * IO_PX
        if self.bank.mesh is not None and self.bank.mesh_index is not None:
            self._frame = frame_points(*crop_size())
            self._triangles = triangulate(np.concatenate([self.bank.mesh[:, :, :2].mean(0), self._frame]))
            self._rigid_rows = self.bank.rigid_rows()
            position = {int(v): i for i, v in enumerate(self.bank.mesh_index)}
            self._lip_rows = np.array([position[p] for p in LIP_POINTS])
            jaw = [p for p in JAW_LINE if p in position]  # a crop may end short of the jaw's ends at the ears
            if topo.CHIN in position and len(jaw) >= len(JAW_LINE) // 2:
                self._jaw_points = np.array(jaw)
                self._jaw_rows = np.array([position[p] for p in jaw])
        if setup is not None:  # the pose needs the mesh's depth: the first landmarks that have it
            for landmarks in (setup.base_landmarks, setup.avatar_landmarks):
                if landmarks is not None and np.asarray(landmarks).shape[1] >= 3:
                    self.set_base_pose(landmarks)
                    break
        return base

    def set_base_pose(self, landmarks: np.ndarray) -> None:
        """The base face's pose, measured like the units' (`face_features`, from 3D landmarks), so
        unit and target poses are compared in one frame of reference."""
        from vision.face_features import face_features

        features = face_features(np.asarray(landmarks, np.float64))
        self.base_pose = np.array([features.yaw, features.pitch])

    def uses_mesh(self) -> bool:
        return self.options.mesh_warp and self._triangles is not None

    def plan(self, track: MotionTrack, first_frame: int = 0) -> None:
        """Choose every frame's unit before the frames stream (the lattice needs the whole track)."""
        targets = target_features(track.channels) * articulation_scale(self.bank.features)
        options = SelectionOptions(self.options.candidates, self.options.join_cost, self.options.repeat_cost,
                                   self.options.pose_weight)  # fmt: skip
        poses = None
        if self.bank.pose is not None:
            zero = np.zeros(track.frame_count, np.float32)
            turn = np.stack([track.channels.get("head_yaw", zero), track.channels.get("head_pitch", zero)], axis=1)
            poses = (self.bank.pose, self.base_pose[None, :] + turn)
        self.path = select_units(self.bank.features, self.bank.frames, targets, options, poses)

    def _unit_for(self, context: FrameContext) -> int:
        if self.path is not None and context.index < len(self.path):
            return int(self.path[context.index])
        motion = context.motion  # no plan (a caller streaming frames by hand): the nearest shape
        target = target_features({name: np.array([getattr(motion, name)]) for name in
                                  ("jaw_open", "lip_width", "lip_round", "lip_closure", "teeth")})  # fmt: skip
        target = target * articulation_scale(self.bank.features)
        return int(select_units(self.bank.features, self.bank.frames, target)[0])

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        if context.landmarks is None:
            return frame
        unit = self._unit_for(context)
        self.chosen.append(unit)
        if self.buffer is None or self.buffer.shape != frame.shape:
            self.buffer = frame.copy()
            self.previous = None
        elif context.dirty is None:
            np.copyto(self.buffer, frame)
        else:  # the buffer equals the input except where it changed upstream and where the last mouth went
            x0, y0, x1, y1 = union_rect(context.dirty, self.previous)
            self.buffer[y0:y1, x0:x1] = frame[y0:y1, x0:x1]
        follows = self.last_unit is not None and context.index == self.last_index + 1
        previous = self.last_unit if follows else None  # only a frame right after another cross-fades
        rect = self.paste_after(self.buffer, unit, previous, np.asarray(context.landmarks, np.float64))
        self.last_unit, self.last_index = unit, context.index
        context.dirty = union_rect(context.dirty, rect, self.previous)
        self.previous = rect
        return self.buffer

    def continuation(self, previous: int | None, unit: int) -> int | None:
        """The recording's next frame after `previous` when `unit` starts another take (a join), else None."""
        if previous is None or unit in (previous, previous + 1) or previous + 1 >= len(self.bank):
            return None
        frames = self.bank.frames
        return previous + 1 if frames[previous + 1] == frames[previous] + 1 else None

    def paste_after(self, image: np.ndarray, unit: int, previous: int | None, landmarks: np.ndarray):
        """Paste `unit` for the frame after one that showed `previous`. At a join between two takes
        the old take's next frame goes down first and the new unit over it at half opacity: the
        switch spreads over two frames instead of jumping in one (a one-frame cross-fade, as Video
        Rewrite smoothed its boundaries). Without it a switch between takes whose cheeks differ read
        as a tear to the seam monitor (0.40 > 0.38 on a 67 s render)."""
        carry = self.continuation(previous, unit)
        if carry is None:
            return self.paste(image, unit, landmarks)
        under = self.paste(image, carry, landmarks)
        return union_rect(under, self.paste(image, unit, landmarks, JOIN_BLEND))

    def paste(
        self, image: np.ndarray, unit: int, landmarks: np.ndarray, opacity: float = 1.0
    ) -> tuple[int, int, int, int] | None:
        """Blend unit `unit` into `image` (in place) at the face given by `landmarks`; the changed rect."""
        bank = self.bank
        target_lips = landmarks[list(LIP_POINTS), :2]
        turned = self.uses_mesh()
        self.last_turn = 0.0
        if turned:
            points, depth = self._turned_points(unit, landmarks)
            turned = self.last_turn > 0.0  # not turned at all: the flat placement's one affine is exact and cheaper
        follow = self.options.chin_follow and self._jaw_rows is not None
        if not turned:
            matrix = self._flat_matrix(unit, landmarks)
            if follow:  # the flat placement as mesh points, for the piecewise warp that moves the jaw
                points, depth = apply(matrix, bank.mesh[unit][:, :2]), None
        if follow:
            points = self._follow_jaw(points, landmarks)
        if turned or follow:
            placed = points[self._lip_rows[:OUTER_LIP_COUNT]]
        else:
            placed = apply(matrix, bank.lips[unit][:OUTER_LIP_COUNT])
        unit_jaw = None
        if self._jaw_rows is not None:
            placed_jaw = bank.mesh[unit][self._jaw_rows, :2]
            unit_jaw = points[self._jaw_rows] if turned or follow else apply(matrix, placed_jaw)
        outer = np.concatenate([target_lips[:OUTER_LIP_COUNT], placed])
        centre = outer.mean(0)
        mouth_w = float(np.ptp(outer[:, 0]))
        sigma = max(self.options.feather_ratio * mouth_w, 1.0)
        offset = outer - centre
        stretch = 1.0 + 2.0 * self.options.margin_ratio * np.array([1.0, 1.6])
        up = 1.0 + 2.0 * self.options.margin_ratio * UPWARD_REACH  # above the lips: stop short of the cheeks
        hull = centre + offset * np.where(offset[:, 1:] < 0, [stretch[0], up], stretch)
        reach = 3.0 * sigma
        height, width = image.shape[:2]
        x0, y0 = np.floor(hull.min(0) - reach).astype(int)
        x1, y1 = np.ceil(hull.max(0) + reach).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        size = (x1 - x0, y1 - y0)
        if turned or follow:
            source, target = with_frame(bank.mesh[unit][:, :2], points, self._frame)
            order = None  # flat: no triangle folds over another
            if depth is not None:
                depth = np.concatenate([depth, np.full(len(self._frame), depth.min())])  # the frame is farthest
                order = np.argsort(depth[self._triangles].mean(1), kind="stable")
            map_x, map_y = warp_maps(source, target, self._triangles, (x0, y0), size, order)
            warped = cv2.remap(bank.crop(unit), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            valid = cv2.remap(self._border, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
        else:
            shifted = matrix.copy()
            shifted[:, 2] -= (x0, y0)
            warped = cv2.warpAffine(bank.crop(unit), shifted, size, flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
            valid = cv2.warpAffine(self._border, shifted, size, flags=cv2.INTER_LINEAR, borderValue=0)
        mask = np.zeros((size[1], size[0]), np.float32)
        cv2.fillConvexPoly(mask, np.round((cv2.convexHull(hull.astype(np.float32)) - (x0, y0)) * 4).astype(np.int32),
                           1.0, lineType=cv2.LINE_AA, shift=2)  # fmt: skip
        mask = cv2.GaussianBlur(mask, (0, 0), sigma) * valid * _inside_face(landmarks, (x0, y0), size, sigma)
        if self.options.chin_stop:
            mask *= self._above_chins(landmarks, unit_jaw, (x0, y0), size, sigma)
        base = image[y0:y1, x0:x1].astype(np.float32)
        warped = warped.astype(np.float32)
        if self.options.colour_match:
            ring = (mask > 0.05) & (mask < 0.6)
            if ring.sum() >= 16:
                gains = base[ring].mean(0) / np.maximum(warped[ring].mean(0), 1.0)
                warped *= np.clip(gains, *GAIN_LIMITS)
        mask *= opacity  # the colour ring above is the full mask's, whatever the opacity
        self.last_mask = (x0, y0, mask)  # the blend weights of the last paste (seam checks)
        alpha = mask[..., None]
        image[y0:y1, x0:x1] = np.clip(base + (warped - base) * alpha + 0.5, 0, 255).astype(np.uint8)
        return (int(x0), int(y0), int(x1), int(y1))

    def _above_chins(
        self,
        landmarks: np.ndarray,
        unit_jaw: np.ndarray | None,
        origin: tuple[int, int],
        size: tuple[int, int],
        sigma: float,
    ) -> np.ndarray:
        """The mask's limit below the mouth: above the rendered jaw line and, where the bank has a
        mesh, above the unit's own jaw line as placed (the same line once `chin_follow` moved it).
        Why: a chin edge blended in at any weight stays visible as a line."""
        up = _face_up(landmarks)
        limit = _above_jaw(np.asarray(landmarks, np.float64)[self._jaw_points, :2], up, origin, size, sigma)
        if unit_jaw is not None:
            limit *= _above_jaw(unit_jaw, up, origin, size, sigma)
        return limit

    def _follow_jaw(self, points: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The unit's placed mesh points with its jaw moved onto the rendered jaw line: the jaw
        points exactly; a point between the lower lip and the jaw not at all down to FOLLOW_FROM
        of that span, then by a share rising to 1 at the jaw (and below it); the lips and rigid
        points never. Why: the reenactor drops the frame's jaw for the opening it renders and the
        unit was filmed with the person's own drop (a wide unit's chin sat 0.14-0.25 interocular
        distances above the rendered one on the test recording's person); stretched this way the
        unit's skin fills the span and its chin lands on the rendered chin: one chin line. The
        skin right under the lip stays as filmed (the mouth's look, scored on held-out frames)."""
        frame = np.asarray(landmarks, np.float64)[:, :2]
        up = _face_up(frame)
        across = np.array([-up[1], up[0]])
        jaw, rendered = points[self._jaw_rows], frame[self._jaw_points]
        lower = points[self._lip_rows[len(topo.LIPS_OUTER_UPPER) - 1 : OUTER_LIP_COUNT]]
        lower = np.concatenate([points[self._lip_rows[[0, len(topo.LIPS_OUTER_UPPER) - 1]]], lower])
        u, v = points @ across, -(points @ up)  # across the face, down the face
        ju, jv = jaw @ across, -(jaw @ up)
        lu, lv = lower @ across, -(lower @ up)
        by_jaw, by_lip = np.argsort(ju), np.argsort(lu)
        jaw_v = np.interp(u, ju[by_jaw], jv[by_jaw])
        lip_v = np.interp(u, lu[by_lip], lv[by_lip])
        span = np.clip((v - lip_v) / np.maximum(jaw_v - lip_v, 1.0), 0.0, 1.0)
        share = np.clip((span - FOLLOW_FROM) / (1.0 - FOLLOW_FROM), 0.0, 1.0)
        shift = rendered - jaw
        moved = points + share[:, None] * np.column_stack(
            [np.interp(u, ju[by_jaw], shift[by_jaw, 0]), np.interp(u, ju[by_jaw], shift[by_jaw, 1])]
        )
        moved[self._rigid_rows] = points[self._rigid_rows]
        moved[self._lip_rows] = points[self._lip_rows]
        moved[self._jaw_rows] = rendered
        return moved

    def _flat_matrix(self, unit: int, landmarks: np.ndarray) -> np.ndarray:
        """The one 2×3 affine of a bank without a mesh: the head pose by the stable points, pulled
        towards the target lips by `shape_strength`."""
        target_lips = landmarks[list(LIP_POINTS), :2]
        target_stable = landmarks[list(STABLE_POINTS), :2]
        source = np.concatenate([self.bank.lips[unit], self._crop_stable])
        target = np.concatenate([target_lips, target_stable])
        weights = np.concatenate([np.ones(len(target_lips)), np.full(len(target_stable), STABLE_WEIGHT)])
        pose = similarity(self._crop_stable, target_stable)
        return pose + self.options.shape_strength * (fit_affine(source, target, weights) - pose)

    def _turned_points(self, unit: int, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The unit's mesh points (crop pixels, with depth) as seen at the rendered pose, in frame
        pixels, and their depth along the view.

        Two placements are blended by how far the view turns out of the image plane between the
        unit and the frame (`turn_weight` of the fitted camera's tilt): the flat one (the 2D
        similarity on stable points, exact when the unit was filmed at the rendered pose) and the
        one through the affine camera fitted on the rigid points (needed when it was not: a
        frontal unit on a 20° turn). Why not the camera always: where poses match, it only adds
        the mesh's depth noise (held-out SSIM at 20°: 0.296 with it always on, 0.383 flat on
        pose-matched units). `shape_strength` pulls the flat placement towards the target lips."""
        mesh = self.bank.mesh[unit].astype(np.float64)
        camera = affine_camera(mesh[self._rigid_rows], landmarks[list(RIGID_POINTS), :2])
        flat = apply(self._flat_matrix(unit, landmarks), mesh[:, :2])
        weight = turn_weight(camera, self.options.turn_degrees)
        points = flat + weight * (project(camera, mesh) - flat)
        rigid = list(RIGID_POINTS)
        depth = view_depth(camera, mesh, self._rigid_rows[rigid.index(topo.NOSE_TIP)],
                           self._rigid_rows[rigid.index(topo.RIGHT_CHEEK)])  # fmt: skip
        self.last_turn = weight
        return points, depth

    def close(self) -> None:
        self.buffer = None
        self.last_unit = None


PROCESSOR = ProcessorSpec(
    "mouth_bank",
    create=lambda setup, options: MouthBankProcessor(options),
    options=MouthBankOptions,
    rule=ChainRule(right_after="reenactor", why="it blends into the moved face"),
    replaces_mouth=True,
)
