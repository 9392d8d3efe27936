"""Held-out quality of a personal avatar by head-pose bucket, flat placement vs pose-aware (issue 26).

Works on any enrolled personal avatar, whatever recording it came from (the user's own, or the
generated ones of tests/speaking_recording.py): the last fifth of its recording is held out and
re-rendered at the poses it was filmed at (`pipeline.held_out`), once per variant:
- `before`: the issue-19 placement (a 2D similarity, `mesh_warp: false`) and no pose term in
  unit selection (`pose_weight: 0`);
- `warp`: the mesh warp only; `pose`: the pose term only (flat placement);
- `always`: pose term and the mesh warp at full strength on every unit (`turn_degrees` ~0);
- `after`: the defaults: pose term, mesh warp blended in by the unit-to-frame turn (5° → 15°).
Prints one Markdown table (SSIM, PSNR, lip distance per bucket; frames per bucket) for
docs/benchmarks.md and, with `--json`, the full evaluations. Usage:
    DHF_HOME=... .venv/bin/python scripts/bench_pose_buckets.py AVATAR_ID [--config C.yaml] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avatars.library import AvatarLibrary
from config import load_settings
from pipeline.avatar_evaluation import evaluate_avatar

VARIANTS = {
    "before": {"mesh_warp": False, "pose_weight": 0.0},
    "warp": {"mesh_warp": True, "pose_weight": 0.0},
    "pose": {"mesh_warp": False, "pose_weight": 0.03},
    "always": {"mesh_warp": True, "pose_weight": 0.03, "turn_degrees": (0.0, 1e-3)},
    "after": {"mesh_warp": True, "pose_weight": 0.03},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("avatar_id")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = load_settings(args.config)
    avatar = AvatarLibrary.from_settings(settings.paths).get(args.avatar_id)
    results = {}
    for name, change in VARIANTS.items():
        bank = settings.fusion.mouth_bank.model_copy(update=change)
        varied = settings.model_copy(update={"fusion": settings.fusion.model_copy(update={"mouth_bank": bank})})
        results[name] = evaluate_avatar(avatar, varied).as_dict()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"| {args.avatar_id} | bucket | frames | " + " | ".join(f"{v} SSIM / PSNR / lip" for v in VARIANTS) + " |")
    print("|---|---|---|" + "---|" * len(VARIANTS))
    for bucket in results["after"]["by_pose"]:
        cells = []
        for name in VARIANTS:
            row = results[name]["by_pose"][bucket]["mouth_bank"]
            cells.append(f"{row['ssim']:.3f} / {row['psnr']:.2f} / {row['lip_distance']:.4f}")
        frames = results["after"]["by_pose"][bucket]["frames"]
        print(f"| | {bucket} | {frames} | " + " | ".join(cells) + " |")
    painted = results["after"]["painted_mouth"]
    print(f"painted mouth (all frames): SSIM {painted['ssim']:.3f} PSNR {painted['psnr']:.2f} "
          f"lip {painted['lip_distance']:.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
