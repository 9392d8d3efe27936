"""Turn a recorded mouth unit to the rendered head pose with the face mesh (issue 26).

Why not a 2D similarity: a similarity scales the whole crop by one factor, so on a ±20° turn the
frontal lower face keeps its full width while the rendered face beside it is foreshortened: the
chin and the near cheek look swollen. The mesh gives every unit point a depth (z), so:
1. an affine camera (2×4, orthographic rotation, scale and shift; least squares) is fitted from the
   unit's rigid points in 3D (`fusion.mouth_bank.RIGID_POINTS`: eye corners, nose, forehead, the
   face's sides: speech does not move them) to the same points in the rendered frame;
2. every stored unit point goes through that camera: the unit's own lips, chin and cheeks as they
   would look at the rendered pose (the shape stays the unit's; only the view changes);
3. the crop is warped piecewise-affinely over a fixed triangulation of those points (each triangle
   by its own affine), and by the least-squares affine of all points outside the triangulation.
The triangulation is Delaunay over the bank's mean points in crop pixels plus a frame of fixed
points around the crop (moved by the least-squares 2D affine of all points), made once per bank:
the warp covers the whole crop and fades into one affine at its edges, never a hard line. Triangles
are drawn far to near along the camera's viewing direction, so where the turned cheek folds over
near the silhouette the near surface is the one seen (a painter's z-buffer).
"""

from __future__ import annotations

import cv2
import numpy as np


def affine_camera(points_3d: np.ndarray, points_2d: np.ndarray) -> np.ndarray:
    """The 2×4 matrix P with `points_2d ≈ P · [x, y, z, 1]`: a scaled orthographic camera (the
    least-squares affine's 2×3 part made two orthogonal rows of equal length, the nearest scaled
    rotation). Why not the free affine: its 8 parameters also fit the mesh's depth noise and shear
    the lips sideways."""
    source, target = np.asarray(points_3d, np.float64), np.asarray(points_2d, np.float64)
    design = np.column_stack([source, np.ones(len(source))])
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    u, s, vt = np.linalg.svd(solution[:3].T, full_matrices=False)
    linear = float(s.mean()) * (u @ vt)
    shift = target.mean(0) - linear @ source.mean(0)
    return np.column_stack([linear, shift])


def project(camera: np.ndarray, points_3d: np.ndarray) -> np.ndarray:
    return np.asarray(points_3d, np.float64) @ camera[:, :3].T + camera[:, 3]


def out_of_plane_degrees(camera: np.ndarray) -> float:
    """How far the camera's view turns out of the source's image plane (yaw and pitch together,
    roll excluded), in degrees: the angle between its viewing direction and the source's z axis."""
    direction = np.linalg.svd(camera[:, :3])[2][-1]
    return float(np.degrees(np.arccos(min(abs(direction[2]) / np.linalg.norm(direction), 1.0))))


def turn_weight(camera: np.ndarray, degrees: tuple[float, float]) -> float:
    """0 below `degrees[0]` of out-of-plane turn, 1 from `degrees[1]`, linear between."""
    low, high = degrees
    return float(np.clip((out_of_plane_degrees(camera) - low) / max(high - low, 1e-6), 0.0, 1.0))


def view_depth(camera: np.ndarray, points_3d: np.ndarray, near_index: int, far_index: int) -> np.ndarray:
    """Depth of each point along the camera's viewing direction (the null space of its 3×2 part),
    signed so that `near_index` (the nose tip) is nearer than `far_index` (a cheek's side)."""
    direction = np.linalg.svd(camera[:, :3])[2][-1]
    depth = np.asarray(points_3d, np.float64) @ direction
    return depth if depth[near_index] >= depth[far_index] else -depth


def frame_points(width: int, height: int, reach: float = 0.5, per_side: int = 4) -> np.ndarray:
    """Fixed points on a rectangle around a `width`×`height` crop, `reach` of its size outside it."""
    x0, y0, x1, y1 = -reach * width, -reach * height, (1 + reach) * width, (1 + reach) * height
    steps = np.linspace(0.0, 1.0, per_side + 1)[:-1]
    top = np.column_stack([x0 + steps * (x1 - x0), np.full_like(steps, y0)])
    right = np.column_stack([np.full_like(steps, x1), y0 + steps * (y1 - y0)])
    bottom = np.column_stack([x1 - steps * (x1 - x0), np.full_like(steps, y1)])
    left = np.column_stack([np.full_like(steps, x0), y1 - steps * (y1 - y0)])
    return np.concatenate([top, right, bottom, left])


def with_frame(source: np.ndarray, target: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source and target points extended by `frame` (source pixels) and where the least-squares
    affine of the given points takes them."""
    design = np.column_stack([source, np.ones(len(source))])
    overall, *_ = np.linalg.lstsq(design, target, rcond=None)
    moved = np.column_stack([frame, np.ones(len(frame))]) @ overall
    return np.concatenate([source, frame]), np.concatenate([target, moved])


def triangulate(points: np.ndarray) -> np.ndarray:
    """(T, 3) vertex indices of the Delaunay triangulation of 2D `points`."""
    points = np.asarray(points, np.float64)
    low, high = points.min(0) - 1.0, points.max(0) + 1.0
    subdiv = cv2.Subdiv2D((int(np.floor(low[0])), int(np.floor(low[1])),
                           int(np.ceil(high[0] - low[0])) + 2, int(np.ceil(high[1] - low[1])) + 2))  # fmt: skip
    for x, y in points:
        subdiv.insert((float(x), float(y)))
    triangles = []
    for tri in subdiv.getTriangleList().reshape(-1, 3, 2):
        nearest = [int(np.argmin(((points - vertex) ** 2).sum(1))) for vertex in tri]
        if len(set(nearest)) == 3 and np.all(((points[nearest] - tri) ** 2).sum(1) < 1e-3):
            triangles.append(nearest)
    return np.array(triangles, np.int64).reshape(-1, 3)


def _affines(source: np.ndarray, target: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle: the 2×3 affine from target to source pixels, and whether it is well defined."""
    tgt = np.concatenate([target[triangles], np.ones((len(triangles), 3, 1))], axis=2)  # (T, 3, 3)
    src = source[triangles]  # (T, 3, 2)
    det = np.linalg.det(tgt)
    ok = np.abs(det) > 1e-3
    solved = np.zeros((len(triangles), 3, 2))
    solved[ok] = np.linalg.solve(tgt[ok], src[ok])
    return solved.transpose(0, 2, 1), ok


def warp_maps(
    source: np.ndarray,
    target: np.ndarray,
    triangles: np.ndarray,
    origin: tuple[int, int],
    size: tuple[int, int],
    order: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`cv2.remap` maps (x, y) over the output rect `origin`+`size`: for every output pixel, where
    to read it in the source image, given matching point sets and their triangulation. Triangles
    are drawn in `order` (later ones cover earlier ones where they overlap)."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    affines, ok = _affines(source, target, triangles)
    width, height = size
    ids = np.zeros((height, width), np.float32)
    corners = np.round((target - np.asarray(origin, np.float64)) * 4).astype(np.int32)[triangles]  # (T, 3, 2)
    low, high = corners.min(1), corners.max(1)
    visible = ok & (high[:, 0] >= 0) & (high[:, 1] >= 0) & (low[:, 0] < width * 4) & (low[:, 1] < height * 4)
    for k in np.arange(len(triangles)) if order is None else order:
        if visible[k]:
            cv2.fillConvexPoly(ids, corners[k], float(k + 1), shift=2)
    design = np.column_stack([target, np.ones(len(target))])
    overall, *_ = np.linalg.lstsq(design, source, rcond=None)  # outside the triangles: one affine
    every = np.concatenate([overall.T[None], affines], axis=0).reshape(-1, 6).astype(np.float32)
    chosen = every[ids.astype(np.int32)]  # (h, w, 6): the affine of each output pixel, index 0 the overall one
    xs = np.arange(width, dtype=np.float32)[None, :] + np.float32(origin[0])
    ys = np.arange(height, dtype=np.float32)[:, None] + np.float32(origin[1])
    map_x = chosen[..., 0] * xs + chosen[..., 1] * ys + chosen[..., 2]
    map_y = chosen[..., 3] * xs + chosen[..., 4] * ys + chosen[..., 5]
    return map_x, map_y
