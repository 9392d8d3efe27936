"""Does a pasted mouth unit add a second chin line? The `added` edge score, before and after (issue 26).

For one enrolled personal avatar, renders the reenactor's frame without a paste and with the
default mouth-bank paste at yaw -20..20 for six units from the widest opening to a closed one (the
units and frames of scripts/probe_lower_face.py), as the code before the fix did it (`main`), with
the blend mask stopping above the chins only (`stop`) and with the defaults (`both`: the unit's jaw
also stretched onto the rendered one), and prints the `added` score of each: the edges the paste
added parallel to the jaw, at the gate's analysis height (scripts/probe_lower_face.py `added_edge`).
With `--sheet DIR` it also writes 1:1 chin crops (photo | base | main | stop | both, one row per
unit) per yaw.
Usage:
    DHF_HOME=... .venv/bin/python scripts/probe_chin.py AVATAR_ID [--config C.yaml] [--sheet DIR]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from probe_lower_face import YAWS, added_edge, probe_setup

from config import load_settings
from fusion.processors.base import FrameContext
from fusion.processors.mouth_bank import MouthBankOptions, MouthBankProcessor
from pipeline.held_out import held_out_track
from vision import topology as topo
from vision.analysis import FaceAnalyser
from vision.models import ModelRegistry

VARIANTS = {  # `main`: the code before the fix; `stop`: the mask stop only; `both`: the defaults
    "main": {"chin_stop": False, "chin_follow": False},
    "stop": {"chin_stop": True, "chin_follow": False},
    "both": {},
}


def chin_crop(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A 1:1 crop of the lower face: mouth corners to below the chin."""
    chin = landmarks[topo.CHIN, :2]
    io = float(np.linalg.norm(landmarks[topo.LEFT_EYE_OUTER, :2] - landmarks[topo.RIGHT_EYE_OUTER, :2]))
    x0, y0 = int(chin[0] - 0.75 * io), int(chin[1] - 0.75 * io)
    return image[max(y0, 0) : y0 + int(1.0 * io), max(x0, 0) : x0 + int(1.5 * io)].copy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("avatar_id")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--height", type=int, default=360, help="the gate's analysis height")
    parser.add_argument("--sheet", type=Path, help="write 1:1 chin crops here")
    args = parser.parse_args()
    settings = load_settings(args.config)
    analyser = FaceAnalyser(ModelRegistry(settings.paths.models))
    work, landmarks, bank, reenactor, scale, units = probe_setup(args.avatar_id, settings)
    photo = chin_crop(work, np.asarray(landmarks, np.float64))
    processors = {}
    for name in VARIANTS:
        processors[name] = MouthBankProcessor(MouthBankOptions(**VARIANTS[name]), bank)
        processors[name].prepare(work)
    print(f"{'yaw':>4s} {'unit':>5s} {'jaw_open':>8s}  " + "  ".join(f"{v:>6s}" for v in VARIANTS))
    table: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for yaw in YAWS:
        rows = []
        for unit in units:
            motion = replace(held_out_track(bank, scale, 0, 1, bank.fps).frame(0), head_yaw=yaw,
                             jaw_open=float(bank.features[unit, 0] / scale[0]), lip_closure=0.0)  # fmt: skip
            base = reenactor.process_frame(work, FrameContext(index=0, motion=motion)).copy()
            points = reenactor.frame_landmarks(motion)
            rendered = {"base": base}
            for name, processor in processors.items():
                rendered[name] = base.copy()
                processor.paste(rendered[name], int(unit), points)
            factor = args.height / base.shape[0]
            grey = {k: cv2.cvtColor(cv2.resize(v, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA),
                                    cv2.COLOR_BGR2GRAY) for k, v in rendered.items()}  # fmt: skip
            face = analyser.largest_face(cv2.cvtColor(grey["base"], cv2.COLOR_GRAY2BGR))
            scores = [added_edge(grey[name], grey["base"], face.landmarks) for name in VARIANTS]
            for name, score in zip(VARIANTS, scores, strict=True):
                table[name].append(score)
            print(
                f"{yaw:+4.0f} {int(unit):5d} {bank.features[unit, 0]:8.2f}  " + "  ".join(f"{v:6.2f}" for v in scores)
            )
            crops = [chin_crop(rendered[k], points) for k in ("base", *VARIANTS)]
            height = min(c.shape[0] for c in [photo, *crops])
            rows.append(np.hstack([c[:height] for c in [photo, *crops]]))
        if args.sheet:
            args.sheet.mkdir(parents=True, exist_ok=True)
            width = min(r.shape[1] for r in rows)
            cv2.imwrite(str(args.sheet / f"chin_yaw{int(yaw):+d}.png"), np.vstack([r[:, :width] for r in rows]))
    for name in VARIANTS:
        values = np.array(table[name]).reshape(len(YAWS), len(units))
        print(f"{name}: widest unit max {values[:, 0].max():.2f}, wide three max {values[:, :3].max():.2f}, "
              f"narrow three max {values[:, 3:].max():.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
