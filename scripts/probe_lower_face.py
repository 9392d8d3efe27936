"""Can a photometric lower-face descriptor tell the swollen chin from a correct render? (issue 26)

The swollen case is a frontal mouth unit placed by a 2D similarity (`mesh_warp: false`) on a head
turned ±20°: a second jaw line and cheek shading pasted inside the face. This probe renders, for one
enrolled personal avatar, the reenactor's frame without a paste (`base`), the flat paste (`flat`)
and the mesh-warped paste (`mesh`) at yaw -20..20 for six units (as
tests/test_personal_avatars.py does), scales them to the gate's analysis height and scores three
descriptors along the normals of the jaw line (face-mesh points, the mouth cut out):
- `parallel`: the strongest edge parallel to the jaw, 0.12-0.45 IOD inside it, averaged along
  0.5 IOD of the jaw (reference-free: what the gate could compute from a video alone);
- `texture`: the 98th percentile of the gradient below the nose, outside the mouth (reference-free);
- `added`: the edges the paste added, parallel to the jaw (|gradient| of the pasted frame minus the
  unpasted one's, averaged along 0.5 IOD of the jaw): the best case, with the ideal reference that
  the gate never has.
A descriptor could serve the gate only if every `flat` frame at ±20° scored above every correct
frame (`base` at any yaw, `mesh` at any yaw). It prints each descriptor's ranges and that margin.
Usage:
    DHF_HOME=... .venv/bin/python scripts/probe_lower_face.py AVATAR_ID [--config C.yaml] [--height 360]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avatars.library import AvatarLibrary
from config import load_settings
from fusion.mouth_bank import MouthBank, articulation_scale
from fusion.processors.base import FrameContext
from fusion.processors.mouth_bank import MouthBankOptions, MouthBankProcessor
from fusion.processors.reenactor import Reenactor
from pipeline.held_out import held_out_track
from pipeline.stages import avatar_stage
from vision import topology as topo
from vision.analysis import FaceAnalyser
from vision.models import ModelRegistry

JAW = (132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361)
OFFSETS = np.arange(-0.15, 0.5 + 1e-9, 0.02)  # along the inward normal, in IOD
STEP = 0.04  # IOD between jaw samples
RUN = 0.5  # IOD of jaw a line must follow
YAWS = (-20.0, -10.0, 0.0, 10.0, 20.0)


def interocular(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[topo.LEFT_EYE_OUTER, :2] - landmarks[topo.RIGHT_EYE_OUTER, :2]))


def jaw_profiles(grey: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(jaw samples, OFFSETS) grey-level derivative along the jaw's inward normals; nan once a ray
    comes within 0.12 IOD of the lips (the mouth is judged elsewhere)."""
    io = interocular(landmarks)
    jaw = landmarks[list(JAW), :2].astype(np.float64)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(jaw, axis=0), axis=1))])
    at = np.arange(0.0, arc[-1], STEP * io)
    jaw = np.column_stack([np.interp(at, arc, jaw[:, 0]), np.interp(at, arc, jaw[:, 1])])
    tangent = np.gradient(jaw, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    normal[((landmarks[topo.NOSE_TIP, :2] - jaw) * normal).sum(1) < 0] *= -1
    points = (jaw[:, None, :] + (OFFSETS * io)[None, :, None] * normal[:, None, :]).astype(np.float32)
    smooth = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), max(0.02 * io, 0.6))
    values = cv2.remap(smooth, points[..., 0], points[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    lips = np.concatenate([landmarks[list(topo.LIPS_OUTER_UPPER), :2], landmarks[list(topo.LIPS_OUTER_LOWER), :2]])
    hull = cv2.convexHull(lips.astype(np.float32))
    inside = np.array([[cv2.pointPolygonTest(hull, (float(x), float(y)), True) for x, y in row] for row in points])
    valid = np.minimum.accumulate(inside < -0.12 * io, axis=1)
    derivative = np.gradient(values, axis=1)
    derivative[~valid] = np.nan
    return derivative


def along_jaw(values: np.ndarray) -> np.ndarray:
    """Each offset's values averaged over RUN of the jaw (a line parallel to the jaw adds up, texture
    does not); nan where under 80 % of the run is measured."""
    n = max(3, round(RUN / STEP))
    kernel = np.ones(n) / n
    measured = np.isfinite(values).astype(float)
    cover = np.apply_along_axis(np.convolve, 0, measured, kernel, "valid")
    total = np.apply_along_axis(np.convolve, 0, np.nan_to_num(values), kernel, "valid")
    mean = total / np.maximum(cover, 1e-6)
    mean[cover < 0.8] = np.nan
    return mean


def parallel_edge(grey: np.ndarray, landmarks: np.ndarray) -> float:
    inner = (OFFSETS >= 0.12) & (OFFSETS <= 0.45)
    return float(np.nanmax(np.abs(along_jaw(jaw_profiles(grey, landmarks))[:, inner]), initial=0.0))


def lower_texture(grey: np.ndarray, landmarks: np.ndarray) -> float:
    io = interocular(landmarks)
    face = np.zeros(grey.shape, np.uint8)
    oval = landmarks[list(topo.FACE_OVAL), :2].astype(np.float32)
    cv2.fillConvexPoly(face, np.round(cv2.convexHull(oval)).astype(np.int32), 1)
    face = cv2.erode(face, np.ones((max(3, round(0.1 * io) | 1),) * 2, np.uint8))
    mouth = np.zeros(grey.shape, np.uint8)
    lips = np.concatenate([landmarks[list(topo.LIPS_OUTER_UPPER), :2], landmarks[list(topo.LIPS_OUTER_LOWER), :2]])
    cv2.fillConvexPoly(mouth, np.round(cv2.convexHull(lips.astype(np.float32))).astype(np.int32), 1)
    mouth = cv2.dilate(mouth, np.ones((max(3, round(0.25 * io) | 1),) * 2, np.uint8))
    below_nose = np.arange(grey.shape[0])[:, None] > landmarks[topo.NOSE_TIP, 1]
    region = (face > 0) & (mouth == 0) & below_nose
    smooth = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), max(0.015 * io, 0.5))
    gradient = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)) / 8
    return float(np.percentile(gradient[region], 98))


def added_edge(grey: np.ndarray, reference: np.ndarray, landmarks: np.ndarray) -> float:
    band = (OFFSETS > -0.1) & (OFFSETS < 0.45)
    added = np.abs(jaw_profiles(grey, landmarks)) - np.abs(jaw_profiles(reference, landmarks))
    return float(np.nanmax(along_jaw(added)[:, band], initial=0.0))


def probe_setup(avatar_id: str, settings):
    """The avatar's work image and landmarks, its mouth bank, a prepared reenactor, the bank's
    articulation scale and six units from the widest opening to a narrow one (shared with probe_chin)."""
    avatar = AvatarLibrary.from_settings(settings.paths).get(avatar_id)
    work, landmarks = avatar_stage(avatar, settings).work_image_and_landmarks(avatar)
    bank = MouthBank.load(avatar.mouth_bank)
    reenactor = Reenactor(landmarks)
    reenactor.prepare(work)
    scale = articulation_scale(bank.features)
    units = np.argsort(bank.features[:, 0])[[-1, -5, -12, len(bank) // 2, len(bank) // 4, 3]]
    return work, landmarks, bank, reenactor, scale, units


def frames(avatar_id: str, settings):
    """(yaw, unit, {'base', 'flat', 'mesh'} -> BGR frame) for six units at every yaw."""
    work, _landmarks, bank, reenactor, scale, units = probe_setup(avatar_id, settings)
    processors = {}
    for kind in ("flat", "mesh"):
        processors[kind] = MouthBankProcessor(MouthBankOptions(mesh_warp=kind == "mesh"), bank)
        processors[kind].prepare(work)
    for yaw in YAWS:
        for unit in units:
            motion = replace(held_out_track(bank, scale, 0, 1, bank.fps).frame(0), head_yaw=yaw,
                             jaw_open=float(bank.features[unit, 0] / scale[0]), lip_closure=0.0)  # fmt: skip
            base = reenactor.process_frame(work, FrameContext(index=0, motion=motion)).copy()
            rendered = {"base": base}
            for kind, processor in processors.items():
                rendered[kind] = base.copy()
                processor.paste(rendered[kind], int(unit), reenactor.frame_landmarks(motion))
            yield yaw, int(unit), rendered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("avatar_id")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--height", type=int, default=360, help="the gate's analysis height")
    args = parser.parse_args()
    settings = load_settings(args.config)
    analyser = FaceAnalyser(ModelRegistry(settings.paths.models))
    scores: dict[str, dict[tuple[str, float], list[float]]] = {"parallel": {}, "texture": {}, "added": {}}
    for yaw, _unit, rendered in frames(args.avatar_id, settings):
        small = {k: cv2.resize(v, None, fx=args.height / v.shape[0], fy=args.height / v.shape[0],
                               interpolation=cv2.INTER_AREA) for k, v in rendered.items()}  # fmt: skip
        grey = {k: cv2.cvtColor(v, cv2.COLOR_BGR2GRAY) for k, v in small.items()}
        base_face = analyser.largest_face(small["base"])
        for kind in ("base", "flat", "mesh"):
            face = analyser.largest_face(small[kind])
            if face is None or base_face is None:
                continue
            scores["parallel"].setdefault((kind, yaw), []).append(parallel_edge(grey[kind], face.landmarks))
            scores["texture"].setdefault((kind, yaw), []).append(lower_texture(grey[kind], face.landmarks))
            if kind != "base":
                added = added_edge(grey[kind], grey["base"], base_face.landmarks)
                scores["added"].setdefault((kind, yaw), []).append(added)
    for name, table in scores.items():
        print(f"## {name}")
        for (kind, yaw), values in sorted(table.items()):
            print(f"{kind:5s} {yaw:+5.0f}  " + " ".join(f"{v:6.2f}" for v in values))
        swollen = [v for (kind, yaw), vs in table.items() if kind == "flat" and abs(yaw) == 20 for v in vs]
        correct = [v for (kind, _), vs in table.items() if kind in ("base", "mesh") for v in vs]
        print(f"swollen (flat ±20): {min(swollen):.2f}-{max(swollen):.2f}; correct (base, mesh, every yaw): "
              f"{min(correct):.2f}-{max(correct):.2f}; margin min(swollen)/max(correct) = "
              f"{min(swollen) / max(correct):.2f} (a gate needs > 1)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
