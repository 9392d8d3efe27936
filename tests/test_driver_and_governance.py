"""Driver synthesis, model pinning and license refusals (no orchestrator needed)."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest

from avatars.errors import LicenseError
from avatars.library import BUNDLED
from avatars.license import check_license, load_license
from config import MotionSettings
from driver_synth.driver import build_driver
from driver_synth.synthesize import synthesize_track
from phoneme.artifacts import VisemeKeyframe, VisemeTrack
from vision.errors import ModelError
from vision.models import ModelRegistry


def _visemes(duration=4.0):
    frames = [
        VisemeKeyframe(0.0, "X", 0.03, 0, 0, 0.4, 0),
        VisemeKeyframe(1.0, "D", 0.9, 0, 0, 0, 0.3),
        VisemeKeyframe(2.0, "A", 0, 0, 0, 1, 0),
        VisemeKeyframe(duration, "X", 0.03, 0, 0, 0.4, 0),
    ]
    return VisemeTrack(duration, frames, closures=[(1.9, 2.2)])


def test_track_has_one_frame_per_output_frame_and_honours_closures():
    track = synthesize_track(_visemes(), 25, MotionSettings(), seed=3)
    assert track.frame_count == 100
    inside = np.arange(100) / 25
    closed = (inside >= 1.9) & (inside <= 2.2)
    assert np.all(track.mouth_gap()[closed] == 0)
    assert track.mouth_gap()[25] > 0.5  # the wide-open keyframe at 1.0 s


def test_blinks_and_head_motion_are_seeded_and_natural():
    a = synthesize_track(_visemes(20.0), 25, MotionSettings(), seed=11)
    b = synthesize_track(_visemes(20.0), 25, MotionSettings(), seed=11)
    c = synthesize_track(_visemes(20.0), 25, MotionSettings(), seed=12)
    assert all(np.array_equal(a.channels[k], b.channels[k]) for k in a.channels)
    assert not np.array_equal(a.channels["blink"], c.channels["blink"])
    starts = np.flatnonzero(np.diff((a.channels["blink"] > 0.5).astype(int)) == 1) / 25
    assert 3 <= len(starts) <= 9 and np.all(np.diff(starts) >= 2.0)
    assert np.abs(a.channels["head_yaw"]).max() <= MotionSettings().head_yaw_deg + 1e-6


def test_driver_is_cached_by_its_inputs(tmp_path):
    first = build_driver(_visemes(), 25, MotionSettings(), "speech-key", tmp_path)
    second = build_driver(_visemes(), 25, MotionSettings(), "speech-key", tmp_path)
    other = build_driver(_visemes(), 30, MotionSettings(), "speech-key", tmp_path)
    assert not first.cache_hit and second.cache_hit and other.key != first.key
    assert second.track().frame_count == 100


def test_model_with_wrong_hash_is_refused_naming_file_and_fix(tmp_path, settings):
    registry = ModelRegistry(tmp_path)
    with pytest.raises(ModelError, match=r"model file missing: .*face_landmark.onnx; run scripts/setup"):
        registry.path("face_landmarker")
    shutil.copy(settings.paths.models / "face_landmark.onnx", tmp_path / "face_landmark.onnx")
    with open(tmp_path / "face_landmark.onnx", "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(ModelError, match=r"has sha256 .* expected .*corrupt or replaced"):
        registry.path("face_landmarker")


@pytest.fixture
def license_copy(tmp_path):
    folder = tmp_path / "sample"
    shutil.copytree(BUNDLED / "sample", folder)
    return folder


def _edit(folder, **changes):
    text = (folder / "license.yaml").read_text()
    for key, value in changes.items():
        lines = [f"{key}: {value}" if line.startswith(f"{key}:") else line for line in text.splitlines()]
        text = "\n".join(lines)
    (folder / "license.yaml").write_text(text)
    return load_license(folder / "license.yaml")


@pytest.mark.parametrize(
    ("changes", "use", "message"),
    [
        ({}, ("en", "web", "demo"), "channel 'web' is out of scope"),
        ({}, ("en", "demo", "marketing"), "purpose 'marketing' is out of scope"),
        ({"revoked": "true"}, ("en", "demo", "demo"), "revoked"),
        ({"valid_until": "2025-01-01"}, ("en", "demo", "demo"), "expired on 2025-01-01"),
        ({"valid_from": "2099-01-01"}, ("en", "demo", "demo"), "not valid until 2099-01-01"),
    ],
)
def test_license_refusals(license_copy, changes, use, message):
    lic = _edit(license_copy, **changes)
    with pytest.raises(LicenseError, match=message):
        check_license(lic, "sample", *use, today=dt.date(2026, 11, 24))


def test_altered_consent_document_is_refused(license_copy):
    (license_copy / "consent.md").write_text("I never agreed.")
    with pytest.raises(LicenseError, match="consent document hash mismatch"):
        check_license(load_license(license_copy / "license.yaml"), "sample", "en", "demo", "demo")
