"""Issue 4 end to end: enrollment checks on generated photos, licenses refused at render time (with an
audit entry each), versions, rollback and revocation with renders in between, and the audit log's
tamper evidence and concurrency through the real CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import DHF, REPO, assert_refused, label_rect, own_home, run_dhf
from licences import write_license

from avatars.enrollment import head_pose
from avatars.library import BUNDLED, AvatarLibrary
from config import load_settings
from governance.audit import AuditLog
from governance.library_record import record_library_change
from media.video import EncodeOptions, VideoWriter, probe, read_frames
from pipeline.request import RenderRequest
from pipeline.run import render_video
from vision import topology as topo

TODAY = dt.date.today()


@pytest.fixture(scope="module")
def home(tmp_path_factory, dhf_home) -> Path:
    """A DHF home of its own (empty library and audit log), sharing the provisioned models."""
    return own_home(tmp_path_factory.mktemp("library-home"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory, analyser) -> dict[str, Path]:
    """Generated photos from the bundled public-domain portrait (its face is 93 px; ×3 passes)."""
    folder = tmp_path_factory.mktemp("photos")
    sample = cv2.imread(str(BUNDLED / "sample" / "portrait.png"))
    good = cv2.resize(sample, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    face = analyser.single_face(good).landmarks
    closed = good.copy()  # eyes painted over with lid skin and a lash line
    eyes = ((topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER, 105), (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER, 334))
    for upper, lower, brow in eyes:
        outline = face[list(upper) + list(lower[::-1]), :2]
        centre = outline.mean(0)
        lid = good[int(face[brow, 1] + 6) : int(face[brow, 1] + 14), int(centre[0]) - 10 : int(centre[0]) + 10]
        colour = np.median(lid.reshape(-1, 3), axis=0)
        grown = centre + (outline - centre) * [1.25, 1.8]
        cv2.fillPoly(closed, [np.round(grown).astype(np.int32)], colour.tolist(), cv2.LINE_AA)
        corners = np.round(face[[upper[0], upper[-1]], :2]).astype(int)
        cv2.line(closed, tuple(corners[0]), tuple(corners[1]), (60, 60, 80), 2)
    rotation = cv2.getRotationMatrix2D((good.shape[1] / 2, good.shape[0] / 2), 40, 1.0)
    images = {
        "good": good,
        "tiny": sample,
        "blurred": cv2.GaussianBlur(good, (0, 0), 4),
        "rotated": cv2.warpAffine(good, rotation, good.shape[1::-1], borderMode=cv2.BORDER_REPLICATE),
        "dark": (good * 0.18).astype(np.uint8),
        "bright": np.clip(good.astype(np.float32) * 2.4, 0, 255).astype(np.uint8),
        "closed_eyes": closed,
        "two_faces": np.hstack([sample[40:260, 115:335], cv2.flip(sample[40:260, 115:335], 1)]),
        "no_face": np.full((600, 600, 3), (90, 140, 200), np.uint8),
    }
    paths = {}
    for name, image in images.items():
        paths[name] = folder / f"{name}.png"
        cv2.imwrite(str(paths[name]), image)
    paths["corrupt"] = folder / "corrupt.jpg"
    paths["corrupt"].write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return paths


def snapshot(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def add(home: Path, photo: Path | None, avatar_id: str, license_path: Path) -> subprocess.CompletedProcess:
    return run_dhf(
        ["avatar", "add", *([str(photo)] if photo else []), "--id", avatar_id, "--license", str(license_path)], home
    )


@pytest.mark.parametrize(
    ("photo", "message"),
    [
        ("corrupt", "is corrupt or not a supported format"),
        ("no_face", "no face found"),
        ("two_faces", "2 faces found"),
        ("tiny", "below the 256 px minimum"),
        ("rotated", "tilted sideways (roll) by 3"),  # rotated 40°, the photo itself leans 3°
        ("blurred", "the face is blurred"),
        ("dark", "under-exposed"),
        ("bright", "over-exposed"),
        ("closed_eyes", "the eyes look closed"),
    ],
)
def test_enrollment_refuses_bad_photos_and_leaves_the_library_unchanged(photo, message, home, photos, tmp_path):
    before = snapshot(home / "avatars")
    result = add(home, photos[photo], "refused", write_license(tmp_path, "refused"))
    assert_refused(result, message, tmp_path / "never.mp4")
    assert snapshot(home / "avatars") == before


def test_turned_head_is_measured_and_refused(home, photos, tmp_path, analyser):
    landmarks = analyser.single_face(cv2.imread(str(photos["good"]))).landmarks
    yaw, _pitch, roll = head_pose(landmarks)
    assert abs(yaw) < 5 and abs(roll) < 5
    angle = np.radians(35)  # turn the measured mesh 35° about the vertical axis through its centre
    centre = landmarks.mean(0)
    x, z = landmarks[:, 0] - centre[0], landmarks[:, 2] - centre[2]
    turned = landmarks.copy()
    turned[:, 0], turned[:, 2] = (
        centre[0] + x * np.cos(angle) + z * np.sin(angle),
        centre[2] - x * np.sin(angle) + z * np.cos(angle),
    )
    assert abs(abs(head_pose(turned)[0] - yaw) - 35) < 3
    (tmp_path / "strict.yaml").write_text("enrollment:\n  max_yaw_deg: 0.1\n")
    result = run_dhf(
        [
            "--config",
            str(tmp_path / "strict.yaml"),
            "avatar",
            "add",
            str(photos["good"]),
            "--id",
            "turned",
            "--license",
            str(write_license(tmp_path, "turned")),
        ],
        home,
    )
    assert_refused(result, "turned sideways (yaw)", tmp_path / "never.mp4")


def test_enrollment_refuses_a_license_for_someone_else_or_with_a_bad_document(home, photos, tmp_path):
    assert_refused(
        add(home, photos["good"], "anna", write_license(tmp_path / "a", "bob")),
        "the license is for avatar 'bob'",
        tmp_path / "x.mp4",
    )
    lic = write_license(tmp_path / "b", "anna")
    (tmp_path / "b" / "consent.md").write_text("edited after signing\n")
    assert_refused(add(home, photos["good"], "anna", lic), "consent document hash mismatch", tmp_path / "x.mp4")
    assert "anna" not in AvatarLibrary.default(home).ids()


def test_enrollment_stores_analysis_and_warns_about_the_same_person(home, photos, tmp_path):
    first = add(home, photos["good"], "chen", write_license(tmp_path / "chen", "chen"))
    assert first.returncode == 0, first.stderr
    avatar = AvatarLibrary.default(home).get("chen")
    assert avatar.version == 1 and avatar.photo.read_bytes() == photos["good"].read_bytes()
    with np.load(avatar.folder / "enrollment.npz") as data:
        assert data["landmarks"].shape == (468, 3) and data["embedding"].shape == (128,)
        assert 0.5 < np.linalg.norm(data["embedding"]) < 3.0 and np.isfinite(data["embedding"]).all()
    stored = yaml.safe_load((avatar.folder / "license.yaml").read_text())
    assert stored["consent_document"] == "consent.md" and (avatar.folder / "consent.md").is_file()
    checks = json.loads((avatar.folder / "checks.json").read_text())
    assert checks["face_px"] > 256 and checks["warnings"] == []
    assert cv2.imread(str(avatar.folder / "thumbnail.jpg")).shape == (256, 256, 3)
    twin = add(home, photos["good"], "twin", write_license(tmp_path / "twin", "twin"))
    assert twin.returncode == 0, twin.stderr
    assert "matches avatar 'chen'" in twin.stderr and "same person" in twin.stderr


def render(home: Path, avatar_id: str, out: Path, **use):
    settings = load_settings(home=home)
    request = RenderRequest(
        text="Hello.", avatar_id=avatar_id, language="en", output=out, channel="web", purpose="customer-service", **use
    )
    return render_video(request, settings)


def last_entry(home: Path):
    return AuditLog(load_settings(home=home).paths.audit_db).entries()[-1]


def test_versions_rollback_and_revoke_with_renders_in_between(home, photos, tmp_path):
    lib = AvatarLibrary.default(home)
    assert add(home, photos["good"], "mei", write_license(tmp_path / "v1", "mei")).returncode == 0
    render(home, "mei", tmp_path / "one.mp4")
    assert (last_entry(home).record.outcome, last_entry(home).record.avatar_version) == ("success", 1)
    renewed = write_license(
        tmp_path / "v2", "mei", license_id="mei-renewed", valid_until=str(TODAY + dt.timedelta(days=700))
    )
    assert add(home, None, "mei", renewed).returncode == 0  # license renewal: same photo, version 2
    assert [a.version for a in lib.versions("mei")] == [1, 2] and lib.get("mei").version == 2
    render(home, "mei", tmp_path / "two.mp4")
    assert (last_entry(home).record.avatar_version, last_entry(home).record.license_id) == (2, "mei-renewed")
    assert run_dhf(["avatar", "rollback", "mei", "--to", "1"], home).returncode == 0
    render(home, "mei", tmp_path / "three.mp4")
    assert (last_entry(home).record.avatar_version, last_entry(home).record.license_id) == (1, "mei-lic")
    versions = run_dhf(["avatar", "versions", "mei"], home).stdout
    assert "* v1" in versions and "  v2" in versions
    assert run_dhf(["avatar", "revoke", "mei", "--reason", "consent withdrawn"], home).returncode == 0
    refused = run_dhf(
        [
            "render",
            "Hello.",
            "--avatar",
            "mei",
            "--lang",
            "en",
            "--channel",
            "web",
            "--purpose",
            "customer-service",
            "-o",
            str(tmp_path / "four.mp4"),
        ],
        home,
    )
    assert_refused(refused, "revoked", tmp_path / "four.mp4")
    assert (last_entry(home).record.outcome, last_entry(home).record.avatar_id) == ("refused", "mei")
    assert_refused(
        run_dhf(["avatar", "rollback", "mei", "--to", "1"], home), "cannot be made current again", tmp_path / "x.mp4"
    )
    assert "REVOKED" in run_dhf(["avatar", "list"], home).stdout
    entries = AuditLog(load_settings(home=home).paths.audit_db).entries()
    outputs = [e.record.output_sha256 for e in entries if e.record.outcome == "success" and e.record.action == "render"]
    assert all(outputs) and len(set(outputs)) == len(outputs) >= 3
    # Every library change is in the log too, with the hashes of the version it made current.
    library = [
        (e.record.action, e.record.outcome, e.record.avatar_version)
        for e in entries
        if e.record.avatar_id == "mei" and e.record.action.startswith("avatar.")
    ]
    assert library == [
        ("avatar.add", "success", 1),
        ("avatar.add", "success", 2),
        ("avatar.rollback", "success", 1),
        ("avatar.revoke", "success", 3),
        ("avatar.rollback", "refused", None),
    ], library


def _render_refused(home: Path, avatar_id: str, output: Path) -> subprocess.CompletedProcess:
    args = ["render", "Hello.", "--avatar", avatar_id, "--lang", "en", "--channel", "web", "--purpose"]
    return run_dhf([*args, "customer-service", "-o", str(output)], home)


def test_revocation_and_current_version_come_from_the_audit_log_not_the_files(home, photos, tmp_path):
    """Issue 25: `rm revocation.yaml; echo 1 > current` rendered a revoked person; an edited `current`
    made a version current that no `dhf avatar` command did. The log decides; each refusal names its entry."""
    folder = home / "avatars" / "carl"
    assert add(home, photos["good"], "carl", write_license(tmp_path / "carl", "carl")).returncode == 0
    assert run_dhf(["avatar", "revoke", "carl", "--reason", "consent withdrawn"], home).returncode == 0
    (revoke,) = [
        e
        for e in AuditLog(load_settings(home=home).paths.audit_db).entries()
        if e.record.action == "avatar.revoke" and e.record.avatar_id == "carl"
    ]
    (folder / "revocation.yaml").unlink()
    (folder / "current").write_text("1\n")
    assert AvatarLibrary.default(home).get("carl").revocation is None  # the files alone now say: not revoked
    output = tmp_path / "carl.mp4"
    assert_refused(_render_refused(home, "carl", output), f"was revoked by {revoke.record.user}", output)
    assert f"(audit entry {revoke.id})" in last_entry(home).record.detail

    assert add(home, photos["good"], "dora", write_license(tmp_path / "dora1", "dora")).returncode == 0
    assert add(home, None, "dora", write_license(tmp_path / "dora2", "dora", license_id="dora-2")).returncode == 0
    (home / "avatars" / "dora" / "current").write_text("1\n")  # a rollback nobody ran
    refused = _render_refused(home, "dora", tmp_path / "dora.mp4")
    assert_refused(refused, "the audit log made v2 current (avatar.add, audit entry", tmp_path / "dora.mp4")
    assert "names v1" in refused.stderr


@pytest.mark.parametrize(
    ("change", "use", "message"),
    [
        ({"valid_until": str(TODAY - dt.timedelta(days=1))}, {}, "expired on"),
        ({"valid_from": str(TODAY + dt.timedelta(days=5))}, {}, "not valid until"),
        ({"revoked": True}, {}, "the license was revoked"),
        ({}, {"--lang": "fr"}, "language 'fr' is out of scope"),
        ({}, {"--channel": "tv"}, "channel 'tv' is out of scope"),
        ({}, {"--purpose": "ads"}, "purpose 'ads' is out of scope"),
        ("tamper", {}, "consent document hash mismatch"),
        ({"scope": "web"}, {}, "'scope' must map"),
        ("no-license", {}, "no license record"),
    ],
)
def test_every_license_refusal_leaves_no_output_and_an_audit_entry(change, use, message, home, photos, tmp_path):
    """Licenses that went bad after enrollment (written straight into a version folder)."""
    avatar_id = f"lic-{abs(hash((str(change), str(use)))) % 10**6}"
    license_path = write_license(tmp_path / "lic", avatar_id, **(change if isinstance(change, dict) else {}))
    files = {"photo.png": photos["good"], "consent.md": tmp_path / "lic" / "consent.md"}
    if change != "no-license":
        files["license.yaml"] = license_path
    if change == "tamper":
        files["consent.md"] = b"a different document\n"
    avatar = AvatarLibrary.default(home).write_version(avatar_id, files, {"name": "t", "photo": "photo.png"}, "t", "t")
    # Recorded as enrolled (the library binding holds), so the licence check itself speaks.
    record_library_change(AuditLog(load_settings(home=home).paths.audit_db), "avatar.add", "test", avatar)
    args = {"--lang": "en", "--channel": "web", "--purpose": "customer-service", **use}
    output = tmp_path / "out.mp4"
    result = run_dhf(["render", "Hello.", "--avatar", avatar_id, *sum(args.items(), ()), "-o", str(output)], home)
    assert_refused(result, message, output)
    entry = last_entry(home)
    assert (entry.record.outcome, entry.record.avatar_id) == ("refused", avatar_id) and message in entry.record.detail


def test_concurrent_renders_append_to_the_audit_log_without_loss(home, tmp_path):
    log = AuditLog(load_settings(home=home).paths.audit_db)
    before = len(log.entries())
    env = {**os.environ, "DHF_HOME": str(home)}
    processes = [
        subprocess.Popen(
            [
                *DHF,
                "render",
                f"Hello {i}.",
                "--avatar",
                "sample",
                "--lang",
                "en",
                "--channel",
                "tv",
                "-o",
                str(tmp_path / f"{i}.mp4"),
            ],
            cwd=REPO,
            env=env,
            stderr=subprocess.PIPE,
        )
        for i in range(6)
    ]
    assert all(p.wait(timeout=120) == 2 for p in processes)
    entries = log.entries()
    assert len(entries) == before + 6 and [e.id for e in entries] == list(range(1, len(entries) + 1))
    assert log.verify().ok


def test_audit_verify_export_and_tamper_through_the_cli(home, tmp_path):
    ok = run_dhf(["audit", "verify"], home)
    assert ok.returncode == 0 and "intact" in ok.stdout
    exported = tmp_path / "audit.csv"
    assert run_dhf(["audit", "export", "--csv", "-o", str(exported)], home).returncode == 0
    rows = exported.read_text().strip().splitlines()
    assert len(rows) == len(AuditLog(load_settings(home=home).paths.audit_db).entries()) + 1
    copy = tmp_path / "tampered-home"
    (copy / "audit").mkdir(parents=True)
    database = copy / "audit" / "audit.sqlite"
    with sqlite3.connect(load_settings(home=home).paths.audit_db) as source, sqlite3.connect(database) as target:
        source.backup(target)
    with sqlite3.connect(database) as db:
        db.execute("DROP TRIGGER entries_no_update")
        db.execute("""UPDATE entries SET payload = replace(payload, '"user":"', '"user":"forged-') WHERE id = 2""")
    (copy / "models").symlink_to(home / "models", target_is_directory=True)
    bad = run_dhf(["audit", "verify"], copy)
    assert bad.returncode == 3 and "entry 2" in bad.stderr


def test_library_root_is_configurable(home, photos, tmp_path):
    root = tmp_path / "compliance-share" / "avatars"
    (tmp_path / "paths.yaml").write_text(f"paths:\n  library: {root}\n")
    config = ["--config", str(tmp_path / "paths.yaml")]
    lic = write_license(tmp_path / "lic", "lin")
    result = run_dhf([*config, "avatar", "add", str(photos["good"]), "--id", "lin", "--license", str(lic)], home)
    assert result.returncode == 0, result.stderr
    assert (root / "lin" / "current").read_text().strip() == "1"
    assert "lin" in run_dhf([*config, "avatar", "list"], home).stdout
    assert "lin" not in run_dhf(["avatar", "list"], home).stdout  # the default library does not have it


def idle_clip(path: Path, photo: Path, amplitude_px: float, seconds: float = 2.0) -> Path:
    """A generated idle loop: the portrait drifting by `amplitude_px` and 'breathing' 2 % in brightness."""
    image = cv2.imread(str(photo))[0:900, 300:1200]
    frames = round(seconds * 25)
    with VideoWriter(path, 900, 900, EncodeOptions(crf=18)) as writer:
        for i in range(frames):
            dx, dy = amplitude_px * np.sin(2 * np.pi * i / frames), 0.5 * amplitude_px * np.sin(4 * np.pi * i / frames)
            moved = cv2.warpAffine(
                image, np.float32([[1, 0, dx], [0, 1, dy]]), (900, 900), borderMode=cv2.BORDER_REPLICATE
            )
            writer.write(np.clip(moved * (1 + 0.02 * np.sin(2 * np.pi * i / frames)), 0, 255).astype(np.uint8))
    return path


def test_idle_loop_video_avatar_is_enrolled_checked_and_rendered(home, photos, tmp_path, analyser):
    lic = write_license(tmp_path / "lic", "loop")
    shaky = idle_clip(tmp_path / "shaky.mp4", photos["good"], amplitude_px=40)
    assert_refused(add(home, shaky, "loop", lic), "the face moves", tmp_path / "x.mp4")
    long = idle_clip(tmp_path / "long.mp4", photos["good"], amplitude_px=1, seconds=11)
    assert_refused(add(home, long, "loop", lic), "over 10 s", tmp_path / "x.mp4")
    steady = idle_clip(tmp_path / "steady.mp4", photos["good"], amplitude_px=2)
    result = add(home, steady, "loop", lic)
    assert result.returncode == 0, result.stderr
    avatar = AvatarLibrary.default(home).get("loop")
    assert avatar.idle_video is not None and avatar.idle_video.read_bytes() == steady.read_bytes()
    assert cv2.imread(str(avatar.photo)).shape == (900, 900, 3)  # the checked middle frame is the reference

    out = tmp_path / "loop.mp4"
    render(home, "loop", out)
    frames = [f.copy() for f in read_frames(out)]
    assert len(frames) == probe(out).frames and len(frames) > 10
    # The portrait moves with the loop (a photo avatar is static away from the face)...
    shoulder = np.stack([f[900:1060, 450:700].astype(float) for f in frames])
    assert np.abs(np.diff(shoulder, axis=0)).mean() > 0.3
    # ...the label is blended once per frame, never over itself (its plate keeps its brightness)...
    x0, y0, x1, y1 = label_rect(load_settings())
    plates = [f[y0:y1, x0:x1].mean() for f in frames]
    assert max(plates) - min(plates) < 1.0, (min(plates), max(plates))
    # ...and the face is found in every frame.
    assert all(analyser.largest_face(cv2.resize(f, (960, 540))) is not None for f in frames[::3])
