"""Head and body motion as one smooth backward map: where each output pixel samples the photo.

Why a map defined backwards (output → photo) and analytically: a warp with per-rectangle fields
tears where the rectangles meet, and a forward field needs inverting, which fails for large
rotations. Here the head is a 3D surface (the face mesh's depth, an ellipsoid behind the hair) that
rotates rigidly about a pivot in the neck; its exact inverse is used inside the head, blended
smoothly into the identity (the static background) outside it, and the body (head and shoulders)
follows the head's translation with its own feathered weight. Every weight reaches exactly zero at
its support's edge, so nothing outside `support` moves, and a dirty rectangle that covers it gives
the same frame as a full recompute.

The map is smooth (rigid motion and slowly varying weights), so it is computed on a coarse grid
(every `GRID` pixels) and interpolated bilinearly; that costs a fraction of a millisecond per frame.
The head is the person mask's part above the neck (`vision.segmentation`), or, without a mask, an
ellipse around the face.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fusion.motion_basis import FaceFrame
from vision import topology as topo

GRID = 4  # coarse grid step of the map, in work pixels
REST = 1e-4  # a pose channel this close to 0 is exactly 0 (degrees, interoculars, relative size)
HEAD_RADII = (1.5, 1.55, 1.12)  # head ellipse around the face oval: half-width, up, down (× face half-size)
HEAD_FEATHER = 0.45  # the head blends into the backdrop over at least this (× face half-width)
BODY_FEATHER = 0.6  # and the body over this
NECK_START, NECK_END = 0.15, 1.1  # below the chin (× face half-height): the neck stops following the head
PIVOT_BELOW_CHIN = 0.55  # the neck pivot, in interocular distances below the chin
PIVOT_DEPTH = 1.1  # and behind the face plane
HAIR_DEPTH = 0.9  # depth of the head's outline (hair) behind the face plane, in interoculars
STRAY = (0.3, 0.5)  # × face half-width: a sampled head point this far from where the head took it is a stray
STRAY_REACH = 2 * GRID  # px outside the head's mask that still count as the head (its soft edge)
MIN_STRETCH = 0.4  # the head's surface is shown compressed at most 1/0.4 × (its relief flattened beyond)


@dataclass(frozen=True)
class HeadPose:
    yaw: float = 0.0  # degrees
    pitch: float = 0.0
    roll: float = 0.0
    x: float = 0.0  # interocular distances
    y: float = 0.0
    scale: float = 0.0  # relative size change

    # Why one threshold, applied everywhere: the map, the landmarks and the dirty rectangle must agree
    # on which channels move pixels this frame, or a channel passing through ~0 would be dropped from
    # the rectangle while still (barely) moving pixels, or the reverse.
    @property
    def turns(self) -> bool:
        """The head rotates or changes size (the head's weight applies)."""
        return any(abs(v) > REST for v in (self.yaw, self.pitch, self.roll, self.scale))

    @property
    def shifts(self) -> bool:
        """The body (and the head with it) is translated."""
        return abs(self.x) > REST or abs(self.y) > REST

    @property
    def is_rest(self) -> bool:
        return not (self.turns or self.shifts)


def _smoothstep(edge0: float, edge1: float, value: np.ndarray) -> np.ndarray:
    t = np.clip((value - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation of head coordinates (x right, y down, z towards the camera), angles in degrees."""
    a, b, c = np.radians([yaw, pitch, roll])
    yaw_m = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    pitch_m = np.array([[1, 0, 0], [0, np.cos(b), np.sin(b)], [0, -np.sin(b), np.cos(b)]])
    roll_m = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return roll_m @ pitch_m @ yaw_m


class HeadMotion:
    """Precomputed geometry of one avatar (prepare once); `backward_map(pose, rect)` per frame.

    `person` is the avatar's person mask (`vision.segmentation`); without one the head is an ellipse
    around the face (hair may then be cut)."""

    def __init__(
        self, landmarks: np.ndarray, frame: FaceFrame, shape: tuple[int, int], person: np.ndarray | None = None
    ) -> None:
        height, width = shape
        self.shape = shape
        lm = np.asarray(landmarks, np.float64)
        oval = lm[list(topo.FACE_OVAL), :2]
        self.centre = oval.mean(0)
        self.half = (oval.max(0) - oval.min(0)) / 2
        self.frame = frame
        io = frame.interocular
        self.pivot = lm[topo.CHIN, :2] + frame.ey * io * PIVOT_BELOW_CHIN
        # Depth towards the camera, 0 at the pivot's depth: the face mesh's own z (MediaPipe: smaller
        # is nearer) in front, the hair outline HAIR_DEPTH behind the face plane.
        face_z = -lm[:, 2]
        self.face_front = float(np.median(face_z))
        self.pivot_z = self.face_front - PIVOT_DEPTH * io
        self.coarse = ((height + GRID - 1) // GRID + 1, (width + GRID - 1) // GRID + 1)
        ys, xs = np.mgrid[0 : self.coarse[0], 0 : self.coarse[1]].astype(np.float64) * GRID
        self.grid_x, self.grid_y = xs, ys
        self.min_feather = HEAD_FEATHER * float(self.half[0])
        self.max_feather = 3.0 * self.min_feather
        self._region_maps(lm, person)
        self.depth = self._depth_map(lm, face_z)
        self._relief_slopes()
        self.head_box = self._bbox(self.head_distance <= 0.5)
        self.support = self._bbox(self.head_distance < 2 * self.max_feather)
        self.body_support = self._bbox(self.body_distance < BODY_FEATHER * float(self.half[0]))

    # --- geometry ---------------------------------------------------------------------------------
    def _region_maps(self, lm: np.ndarray, person: np.ndarray | None) -> None:
        """Coarse maps: distance (px) outside the head and outside the person, and how much the neck
        follows the head (1 above the chin, fading to 0 at the shoulders)."""
        height, width = self.shape
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        down = self._down(xs, ys)
        chin_down = float(self._down(np.float32(lm[topo.CHIN, 0]), np.float32(lm[topo.CHIN, 1])))
        if person is None:  # no segmentation: an ellipse around the face, and everything below it
            person = ((self._ellipse_distance(xs, ys, HEAD_RADII) <= 1.0) | (down > chin_down)).astype(np.uint8) * 255
        head = ((person > 0) & (down <= chin_down + NECK_START * self.half[1])).astype(np.uint8)
        head_distance = cv2.distanceTransform(1 - head, cv2.DIST_L2, 5)
        body_distance = cv2.distanceTransform((person == 0).astype(np.uint8), cv2.DIST_L2, 5)
        neck = 1.0 - _smoothstep(chin_down + NECK_START * self.half[1], chin_down + NECK_END * self.half[1], down)
        self.head_distance = self._to_coarse(head_distance)
        self.body_distance = self._to_coarse(body_distance)
        self.neck = self._to_coarse(neck.astype(np.float32))

    def _to_coarse(self, image: np.ndarray) -> np.ndarray:
        """Samples at the coarse nodes (node k sits at pixel k * GRID; edges replicated)."""
        map_x = self.grid_x.astype(np.float32)
        map_y = self.grid_y.astype(np.float32)
        return cv2.remap(image.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def _sample(self, coarse: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        shape = np.shape(x)
        mx = (np.asarray(x, np.float32) / GRID).reshape(1, -1) if np.ndim(x) < 2 else (x / GRID).astype(np.float32)
        my = (np.asarray(y, np.float32) / GRID).reshape(1, -1) if np.ndim(y) < 2 else (y / GRID).astype(np.float32)
        return cv2.remap(coarse, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(shape)

    def _down(self, x, y):
        frame = self.frame
        return (x - self.centre[0]) * frame.ey[0] + (y - self.centre[1]) * frame.ey[1]

    def _depth_map(self, lm: np.ndarray, face_z: np.ndarray) -> np.ndarray:
        """Coarse depth of the head surface (towards the camera, relative to the pivot)."""
        io = self.frame.interocular
        hair = self.face_front - HAIR_DEPTH * io
        mask = np.zeros(self.coarse, np.float32)
        values = np.zeros(self.coarse, np.float32)
        points = np.round(lm[:, :2] / GRID).astype(int)
        inside = (points[:, 0] >= 0) & (points[:, 1] >= 0)
        inside &= (points[:, 0] < self.coarse[1]) & (points[:, 1] < self.coarse[0])
        np.add.at(values, (points[inside, 1], points[inside, 0]), face_z[inside].astype(np.float32))
        np.add.at(mask, (points[inside, 1], points[inside, 0]), 1.0)
        sigma = max(1.0, 0.12 * io / GRID)
        blurred_v = cv2.GaussianBlur(values, (0, 0), sigma)
        blurred_m = cv2.GaussianBlur(mask, (0, 0), sigma)
        face = np.where(blurred_m > 1e-3, blurred_v / np.maximum(blurred_m, 1e-6), hair)
        # Blend from the face surface to the hair depth towards the face's outline and beyond.
        outline = self._ellipse_distance(self.grid_x, self.grid_y, (1.0, 1.0, 1.0))
        towards_edge = _smoothstep(0.55, 1.05, outline)
        depth = face * (1 - towards_edge) + hair * towards_edge
        return (depth - self.pivot_z).astype(np.float32)

    def _relief_slopes(self) -> None:
        """The depth map's slopes (per pixel) on the head, and the depth its relief is flattened
        towards (the hair outline's) when a pose would fold it (`relief`)."""
        gy, gx = np.gradient(self.depth, GRID)
        on_head = self.head_distance <= self.max_feather
        steep = on_head & (np.hypot(gx, gy) > 0.05)  # flat parts (the backdrop, the hair's back) never fold
        self.slopes = np.stack([gx[steep], gy[steep]]).astype(np.float64)
        self._relief_of: tuple[HeadPose, float] | None = None
        self.hair_depth = float(self.face_front - HAIR_DEPTH * self.frame.interocular - self.pivot_z)

    def relief(self, pose: HeadPose) -> float:
        """How much of the head's depth relief this pose keeps (1: all of it).

        Why: a surface point moves by R·(x, y, depth(x, y)); where the depth falls steeply (the
        hairline, the crown) a strong nod makes the projection fold, its inverse has no solution, and
        the fixed-point inversion smears the hair in streaks. The projection's Jacobian is
        A·(1 + ∇depth · A⁻¹c) (A: the rotation's 2 × 2 part, c: its depth column), so scaling the
        relief keeps its determinant above MIN_STRETCH × det A everywhere on the head: the hair is
        compressed, as a real head's top would be, but never folded. Small turns keep all of it."""
        if not pose.turns or not self.slopes.size:
            return 1.0
        if self._relief_of is not None and self._relief_of[0] == pose:
            return self._relief_of[1]
        kept = self._relief(pose)
        self._relief_of = (pose, kept)  # asked several times per frame (map, landmarks, rectangle)
        return kept

    def _relief(self, pose: HeadPose) -> float:
        # The nod alone decides: flattening for a turn too showed a ±20° yaw as about 10° (the mouth
        # bank then turned its units for 7-10°, and a recorded driver's turn was halved); a turn folds
        # only along the far cheek's outline (faint streaks there, as before), the hair folds under a nod.
        rotation = _rotation(0.0, pose.pitch, pose.roll)
        towards = np.linalg.solve(rotation[:2, :2], rotation[:2, 2])
        worst = float(np.min(towards @ self.slopes))
        if 1.0 + worst >= MIN_STRETCH:
            return 1.0
        return (1.0 - MIN_STRETCH) / -worst

    def _depth_at(self, x: np.ndarray, y: np.ndarray, relief: float) -> np.ndarray:
        depth = self._sample(self.depth, x, y)
        return depth if relief >= 1.0 else self.hair_depth + relief * (depth - self.hair_depth)

    def _ellipse_distance(self, x: np.ndarray, y: np.ndarray, radii: tuple[float, float, float]) -> np.ndarray:
        """Normalised distance from the face centre in the face's own axes (1 = on the ellipse)."""
        frame = self.frame
        dx, dy = x - self.centre[0], y - self.centre[1]
        across = dx * frame.ex[0] + dy * frame.ex[1]
        down = dx * frame.ey[0] + dy * frame.ey[1]
        rx = radii[0] * self.half[0]
        ry = np.where(down < 0, radii[1] * self.half[1], radii[2] * self.half[1])
        return np.sqrt((across / rx) ** 2 + (down / ry) ** 2)

    def head_weight(self, x: np.ndarray, y: np.ndarray, feather: float | None = None) -> np.ndarray:
        """1 on the head (hair included), down the neck to the shoulders, falling smoothly to exactly 0
        within `feather` pixels around it."""
        feather = self.min_feather if feather is None else feather
        distance = self._sample(self.head_distance, x, y)
        return (1.0 - _smoothstep(0.0, feather, distance)) * self._sample(self.neck, x, y)

    def body_weight(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """1 on the person (head and shoulders), 0 on the backdrop beyond a feather."""
        distance = self._sample(self.body_distance, x, y)
        return 1.0 - _smoothstep(0.0, BODY_FEATHER * float(self.half[0]), distance)

    def _bbox(self, mask: np.ndarray) -> tuple[int, int, int, int]:
        height, width = self.shape
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if not rows.size:
            return (0, 0, 0, 0)
        # Two coarse cells of margin: bilinear upsampling of the map reaches one cell out.
        x0, x1 = max((cols[0] - 2) * GRID, 0), min((cols[-1] + 3) * GRID, width)
        y0, y1 = max((rows[0] - 2) * GRID, 0), min((rows[-1] + 3) * GRID, height)
        return (int(x0), int(y0), int(x1), int(y1))

    # --- per frame --------------------------------------------------------------------------------
    def _rigid(self, points: np.ndarray, pose: HeadPose) -> np.ndarray:
        """Rest-pose points moved rigidly with the head (no weights, no shift)."""
        pts = np.asarray(points, np.float64)[:, :2]
        depth = self._depth_at(pts[:, 0], pts[:, 1], self.relief(pose)).astype(np.float64)
        rotation = _rotation(pose.yaw, pose.pitch, pose.roll)
        rel = np.column_stack([pts - self.pivot, depth])
        return (rel @ rotation.T)[:, :2] * (1.0 + pose.scale) + self.pivot

    def _travel(self, pose: HeadPose) -> float:
        """How far the head's outline moves in this pose (pixels)."""
        x0, y0, x1, y1 = self.head_box
        corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1], [(x0 + x1) / 2, y0]], np.float64)
        return float(np.max(np.linalg.norm(self._rigid(corners, pose) - corners, axis=1)))

    def _feather_for(self, travel: float) -> float:
        return float(np.clip(1.4 * travel, self.min_feather, self.max_feather))

    def feather(self, pose: HeadPose) -> float:
        """Width of the head's blend into the backdrop this frame: wider for larger motions, so the
        backdrop beside the hair is stretched gently instead of folded."""
        return self._feather_for(self._travel(pose))

    def forward_points(self, points: np.ndarray, pose: HeadPose) -> np.ndarray:
        """Where rest-pose points (N, 2) land in the output."""
        pts = np.asarray(points, np.float64)[:, :2]
        moved = pts.copy()
        if pose.turns:
            weight = self.head_weight(pts[:, 0], pts[:, 1], self.feather(pose))[:, None]
            moved += weight * (self._rigid(pts, pose) - pts)
        if pose.shifts:
            moved += self.body_weight(pts[:, 0], pts[:, 1])[:, None] * self.shift(pose)
        return moved

    def shift(self, pose: HeadPose) -> np.ndarray:
        """The body's translation in pixels (exactly 0 when the pose does not shift)."""
        if not pose.shifts:
            return np.zeros(2)
        io = self.frame.interocular
        return np.array([pose.x * io, pose.y * io])

    def backward_map(self, pose: HeadPose, rect: tuple[int, int, int, int]) -> np.ndarray:
        """Sampling map (h, w, 2) over `rect` of the output: where each output pixel is in the rest pose."""
        x0, y0, x1, y1 = rect
        # Only the coarse nodes around `rect` (the inversion costs per node; the head is a third of
        # the frame): nodes gx0..gx1 by gy0..gy1, one node of margin for the interpolation.
        gx0, gy0 = max(x0 // GRID - 1, 0), max(y0 // GRID - 1, 0)
        gx1, gy1 = min(-(-x1 // GRID) + 2, self.coarse[1]), min(-(-y1 // GRID) + 2, self.coarse[0])
        coarse = self._coarse_backward(pose, (slice(gy0, gy1), slice(gx0, gx1)))
        # Upsample (coarse node k sits at pixel (gx0 + k) * GRID): one affine resample of the map.
        affine = np.array([[1 / GRID, 0, x0 / GRID - gx0], [0, 1 / GRID, y0 / GRID - gy0]], np.float64)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        return cv2.warpAffine(coarse, affine, (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_REPLICATE)

    def stray(self, pose: HeadPose, rect: tuple[int, int, int, int], sample: np.ndarray) -> np.ndarray | None:
        """How much each output pixel of `rect` is a stray (0..1): it samples (`sample`, this frame's
        map over `rect`) a rest point that the motion carries somewhere else, far from it.

        Why: the map blends the head's inverse into the identity by the head's weight at the source,
        so where the head shrinks or turns away faster than the feather can follow, the output beside
        it samples the rest pose's hair again: a floating copy of a lock of hair next to the head.
        Such a pixel shows something the head no longer covers; the caller puts the backdrop there.
        None: nothing can stray (the head does not turn or scale). Computed on the coarse grid (nodes
        at multiples of GRID, as the map: a dirty rectangle gives the full frame's values), then
        interpolated."""
        if not pose.turns:
            return None
        x0, y0, x1, y1 = rect
        ox, oy = (-x0) % GRID, (-y0) % GRID
        nodes = sample[oy::GRID, ox::GRID]
        if not nodes.size:
            return None
        # Only samples on the head (its hair's soft edge included) can be strays: the backdrop beside
        # it is stretched by design, and the body follows its own (translation) map.
        points = nodes.reshape(-1, 2)
        on_head = self._sample(self.head_distance, points[:, 0], points[:, 1]) <= STRAY_REACH
        away = np.zeros(len(points))
        if on_head.any():
            ys, xs = np.mgrid[y0 + oy : y1 : GRID, x0 + ox : x1 : GRID]
            moved = self.forward_points(points[on_head], pose)
            away[on_head] = np.hypot(moved[:, 0] - xs.ravel()[on_head], moved[:, 1] - ys.ravel()[on_head])
        away = away.reshape(nodes.shape[:2])
        lo, hi = (share * float(self.half[0]) for share in STRAY)
        coarse = _smoothstep(lo, hi, away).astype(np.float32)
        affine = np.array([[1 / GRID, 0, -ox / GRID], [0, 1 / GRID, -oy / GRID]], np.float64)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        return cv2.warpAffine(coarse, affine, (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_REPLICATE)

    def support_for(self, pose: HeadPose) -> tuple[int, int, int, int]:
        """The output rectangle the head's rotation and scaling change this frame (its feather depends
        on the pose), before the body's shift."""
        if not pose.turns:
            return (0, 0, 0, 0)
        travel = self._travel(pose)
        return self._bbox(self.head_distance < self._feather_for(travel) + travel)

    def changed(self, pose: HeadPose) -> tuple[int, int, int, int] | None:
        """The output rectangle where the map differs from the identity this frame (None: nowhere).

        The body's shift carries the head with it: an output pixel samples its rest pose at
        `out - w · shift` (w: the body's weight there, 0..1), so each support reaches from where it
        is to where the shift takes it."""
        shift = self.shift(pose)
        parts = []
        if pose.turns:
            parts.append(self._reach(self.support_for(pose), shift))
        if pose.shifts:
            parts.append(self._reach(self.body_support, shift))
        parts = [p for p in parts if p[2] > p[0] and p[3] > p[1]]
        if not parts:
            return None
        return (min(p[0] for p in parts), min(p[1] for p in parts), max(p[2] for p in parts), max(p[3] for p in parts))

    def _reach(self, rect: tuple[int, int, int, int], shift: np.ndarray) -> tuple[int, int, int, int]:
        """`rect` together with `rect` moved by `shift` (rounded outwards), inside the image."""
        x0, y0, x1, y1 = rect
        if x1 <= x0 or y1 <= y0:
            return rect
        height, width = self.shape
        dx0, dy0 = np.floor(np.minimum(shift, 0.0)).astype(int)
        dx1, dy1 = np.ceil(np.maximum(shift, 0.0)).astype(int)
        return (max(x0 + dx0, 0), max(y0 + dy0, 0), min(x1 + dx1, width), min(y1 + dy1, height))

    def _coarse_backward(self, pose: HeadPose, nodes: tuple[slice, slice]) -> np.ndarray:
        out_x, out_y = self.grid_x[nodes], self.grid_y[nodes]
        base_x, base_y = out_x, out_y
        if pose.shifts:  # the body (and the head with it) moved by `shift`: undo it where the body is
            shift = self.shift(pose)
            body = self.body_weight(out_x - shift[0], out_y - shift[1])
            base_x, base_y = out_x - body * shift[0], out_y - body * shift[1]
        if not pose.turns:
            return np.dstack([base_x, base_y]).astype(np.float32)
        # Inside the head: invert the rigid motion. Given the depth at the source, the projection of
        # R·(x − pivot, depth) is linear in the source's x, y: solve it, then refine the depth there.
        scale = 1.0 + pose.scale
        rotation = _rotation(pose.yaw, pose.pitch, pose.roll)
        a, b = rotation[0], rotation[1]
        det = a[0] * b[1] - a[1] * b[0]
        px, py = self.pivot
        ux, uy = (base_x - px) / scale, (base_y - py) / scale
        sx, sy = base_x, base_y
        relief = self.relief(pose)
        for _ in range(3):
            depth = self._depth_at(sx, sy, relief)
            rhs_x, rhs_y = ux - a[2] * depth, uy - b[2] * depth
            sx = px + (rhs_x * b[1] - rhs_y * a[1]) / det
            sy = py + (a[0] * rhs_y - b[0] * rhs_x) / det
        weight = self.head_weight(sx, sy, self.feather(pose))
        return np.dstack([base_x + weight * (sx - base_x), base_y + weight * (sy - base_y)]).astype(np.float32)
