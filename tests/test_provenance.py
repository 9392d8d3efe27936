"""Provenance marks on a real render, read back by `dhf verify` and by the readers directly: the
visible label, MP4 metadata, the invisible watermark (after re-encoding at CRF 32, scaling to 720p
and cropping 5 %), the C2PA manifest (validated against the test chain; invalid once tampered),
and the audit entry the watermark leads to."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import own_home, render, run_dhf

from config import load_settings
from fusion.watermark import WatermarkDecoder, payload_of
from governance.audit import AuditLog, AuditRecord
from governance.c2pa_signing import (
    TRAINED_ALGORITHMIC_MEDIA,
    ProvenanceError,
    ensure_test_chain,
    read_manifest,
    signing_identity,
)
from media.video import ffmpeg_binary, probe, read_frames

ATTACKS = {
    "crf32": "null",
    "720p": "scale=1280:720",
    "crop5": "crop=iw*0.95:ih*0.95",
    "crop5-720p-crf32": "crop=iw*0.95:ih*0.95,scale=1280:720",
}


def _ffmpeg(source: Path, target: Path, video_filter: str, crf: int = 32) -> Path:
    command = [ffmpeg_binary(), "-v", "error", "-y", "-i", str(source), "-vf", video_filter]
    subprocess.run([*command, "-c:v", "libx264", "-crf", str(crf), "-c:a", "copy", str(target)], check=True)
    return target


def _verify(video: Path, home: Path) -> tuple[int, dict]:
    result = run_dhf(["verify", str(video), "--json"], home)
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    return result.returncode, {check["mark"]: check for check in report["checks"]} | {"_": report}


@pytest.fixture(scope="module")
def content_id(rendered) -> str:
    return rendered.report["provenance"]["content_id"]


def test_a_fresh_render_carries_every_mark(rendered, dhf_home, content_id):
    code, checks = _verify(rendered.video, dhf_home)
    assert code == 0, checks
    assert all(checks[m]["status"] == "valid" for m in ("visible_label", "metadata", "watermark", "c2pa"))
    assert checks["_"]["content_id"] == content_id
    assert f"payload {payload_of(content_id):08x}" in checks["watermark"]["detail"]
    assert "TEST certificate" in checks["c2pa"]["detail"]  # no organization chain configured here
    # The watermark leads to this render's audit entry.
    entry = AuditLog(load_settings(home=dhf_home).paths.audit_db).get(checks["_"]["audit_entry"])
    assert entry.record.extra["content_id"] == content_id and entry.record.output_sha256 == rendered.report["sha256"]
    tags = {key.lower(): value for key, value in probe(rendered.video).tags.items()}
    aigc = json.loads(tags["aigc"])
    assert tags["ai_generated"] == "true" and aigc["Label"] == "1" and aigc["ProduceID"] == content_id
    assert rendered.report["processors"][-1] == "watermarker"


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_the_watermark_survives_reencoding_scaling_and_cropping(rendered, content_id, tmp_path, attack):
    copy = _ffmpeg(rendered.video, tmp_path / f"{attack}.mp4", ATTACKS[attack])
    reading = WatermarkDecoder().add_all(read_frames(copy, fps=5)).read()
    assert reading.matches(content_id), reading
    assert reading.sync_agreement == 16 and reading.snr > 2.5, reading


def test_a_republished_copy_is_traced_by_its_watermark_alone(rendered, dhf_home, content_id, tmp_path):
    copy = _ffmpeg(rendered.video, tmp_path / "copy.mp4", ATTACKS["crop5-720p-crf32"])
    code, checks = _verify(copy, dhf_home)
    assert code == 3
    assert checks["c2pa"]["status"] == "absent" and checks["metadata"]["status"] == "absent"
    assert checks["watermark"]["status"] == "valid" and checks["visible_label"]["status"] == "valid"
    assert checks["_"]["audit_entry"] is not None and checks["_"]["content_id"] is None


def test_every_signed_video_anchors_the_audit_log_it_was_authorized_under(rendered, dhf_home, settings, tmp_path):
    """Issue 25: a log replaced by another consistent chain (witness included) passes `dhf audit verify`
    on that machine, but not `dhf verify` of any video signed before: its manifest names an entry and hash."""
    assert AuditLog.from_settings(settings).head()[0] >= 1  # the session's render at least: a head to anchor
    video = render(dhf_home, tmp_path / "anchored.mp4", "Hello.")
    anchor = read_manifest(video.video, settings).generation["audit_anchor"]
    assert video.report["provenance"]["audit_anchor"] == anchor
    log = AuditLog.from_settings(settings)
    assert log.get(anchor["entry"]).entry_hash == anchor["hash"]  # the head when the licence was checked
    forged = own_home(tmp_path / "forged")  # the same machine, only its audit log (and witness) replaced
    shutil.copytree(dhf_home / "provenance", forged / "provenance")  # the signing chain the manifest trusts
    other = AuditLog.from_settings(load_settings(home=forged))
    for _ in range(anchor["entry"] + 2):  # longer than the anchor, consistent, with its own witness
        other.append(AuditRecord(action="render", outcome="success", user="mallory"))
    assert run_dhf(["audit", "verify"], forged).returncode == 0  # nothing on that machine can tell
    code, checks = _verify(video.video, forged)
    assert code == 5 and checks["_"]["verdict"] == "tampered", checks["_"]["audit"]
    assert f"anchors audit entry {anchor['entry']}" in checks["_"]["audit"]["detail"]


def test_the_c2pa_manifest_validates_and_any_changed_byte_invalidates_it(rendered, settings, content_id, tmp_path):
    manifest = read_manifest(rendered.video, settings)
    assert (manifest.status, manifest.state, manifest.problems) == ("valid", "Trusted", ())
    assert manifest.digital_source_type == TRAINED_ALGORITHMIC_MEDIA and manifest.test_signer
    generation = manifest.generation
    assert generation["content_id"] == content_id and generation["ai_generated"] is True
    assert generation["avatar_photo_sha256"] == rendered.report["avatar"]["photo_sha256"]
    assert generation["driver_sha256"] == rendered.report["driver"]["track_sha256"]
    tampered = tmp_path / "tampered.mp4"
    data = bytearray(rendered.video.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte in the video data, after signing
    tampered.write_bytes(bytes(data))
    reading = read_manifest(tampered, settings)
    assert reading.status == "invalid" and any("mismatch" in p for p in reading.problems), reading


def test_a_video_without_marks_has_none(dhf_home, tmp_path):
    plain = tmp_path / "plain.mp4"
    command = [ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-t", "4"]
    subprocess.run([*command, "-pix_fmt", "yuv420p", str(plain)], check=True)
    code, checks = _verify(plain, dhf_home)
    assert code == 3
    assert [checks[m]["status"] for m in ("visible_label", "metadata", "watermark", "c2pa")] == ["absent"] * 4


def test_an_organization_chain_replaces_the_test_chain_and_bad_ones_are_refused(tmp_path, dhf_home):
    settings = load_settings(home=dhf_home)
    org = ensure_test_chain(tmp_path / "org")  # stands in for a CA-issued chain
    configured = settings.with_section(
        "provenance", signing_certificate=org / "chain.pem", signing_key=org / "signer-key.pem"
    )
    identity = signing_identity(configured)
    assert identity.chain_pem == (org / "chain.pem").read_bytes() and not identity.is_test
    (tmp_path / "broken.pem").write_text("not a certificate")
    broken = configured.with_section("provenance", signing_certificate=tmp_path / "broken.pem")
    with pytest.raises(ProvenanceError, match="is not a PEM certificate chain"):
        signing_identity(broken)
    missing = configured.with_section("provenance", signing_key=tmp_path / "nope.pem")
    with pytest.raises(ProvenanceError, match="cannot read the C2PA signing certificate or key"):
        signing_identity(missing)


def test_verify_of_a_missing_file_is_one_line(dhf_home, tmp_path):
    result = run_dhf(["verify", str(tmp_path / "missing.mp4")], dhf_home)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "not found" in result.stderr
