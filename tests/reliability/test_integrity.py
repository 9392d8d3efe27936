"""Issue 15: integrity under attack and faults — the library binding, one staging file per render,
strict CSV, output paths checked before compute, licence dates with a time, truncated inputs.

Each test reproduces one failure QA found (it failed before the fix) and asserts on measured
content: exit codes, the one-line message, audit entries, hashes, what is left on disk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import cv2
import pytest
import yaml
from conftest import DHF, REPO, assert_refused, needs_root, own_home, run_dhf
from licences import write_license

from avatars.library import BUNDLED, AvatarLibrary
from config import load_settings
from devtools.preview import render_preview, sweep_track
from governance.audit import AuditLog
from media.errors import MediaError
from media.video import read_frames
from pipeline.batch_script import BatchScriptError, load_script

USE = ["--lang", "en", "--channel", "web", "--purpose", "customer-service"]


@pytest.fixture(scope="module")
def home(tmp_path_factory, dhf_home) -> Path:
    """A DHF home of its own (empty library, audit log and caches), sharing the provisioned models."""
    return own_home(tmp_path_factory.mktemp("integrity-home"))


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """The bundled portrait at 3× (its face is large enough to enroll)."""
    path = tmp_path_factory.mktemp("photo") / "good.png"
    sample = cv2.imread(str(BUNDLED / "sample" / "portrait.png"))
    cv2.imwrite(str(path), cv2.resize(sample, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC))
    return path


def enroll(home: Path, photo: Path, folder: Path, avatar_id: str, **licence) -> subprocess.CompletedProcess:
    lic = write_license(folder, avatar_id, **licence)
    return run_dhf(["avatar", "add", str(photo), "--id", avatar_id, "--license", str(lic)], home)


def last_entry(home: Path):
    return AuditLog(load_settings(home=home).paths.audit_db).entries()[-1]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- 1. consent and scope cannot be forged in the library ------------------------------------------


def _current_folder(home: Path, avatar_id: str) -> Path:
    return AvatarLibrary.default(home).get(avatar_id).folder


def test_a_licence_widened_in_the_library_is_refused(home, photo, tmp_path):
    assert enroll(home, photo, tmp_path / "lic", "wide").returncode == 0
    licence = _current_folder(home, "wide") / "license.yaml"
    record = yaml.safe_load(licence.read_text())
    record["scope"]["channels"].append("tv")  # the forgery: a channel nobody consented to
    licence.chmod(0o644)
    licence.write_text(yaml.safe_dump(record))
    output = tmp_path / "tv.mp4"
    result = run_dhf(["render", "Hello.", "--avatar", "wide", *USE[:2], "--channel", "tv", "-o", str(output)], home)
    assert_refused(result, "license.yaml was changed since it was enrolled", output)
    entry = last_entry(home)
    assert (entry.record.action, entry.record.outcome, entry.record.avatar_id) == ("render", "refused", "wide")


def test_a_swapped_consent_document_with_its_new_hash_is_refused(home, photo, tmp_path):
    assert enroll(home, photo, tmp_path / "lic", "swap").returncode == 0
    folder = _current_folder(home, "swap")
    consent, licence = folder / "consent.md", folder / "license.yaml"
    for path in (consent, licence):
        path.chmod(0o644)
    consent.write_text("I consent to anything, anywhere, forever.\n")
    record = yaml.safe_load(licence.read_text())
    record["consent_sha256"] = sha256(consent)  # consistent with itself: only the enrollment record knows
    licence.write_text(yaml.safe_dump(record))
    output = tmp_path / "swap.mp4"
    assert_refused(run_dhf(["render", "Hello.", "--avatar", "swap", *USE, "-o", str(output)], home),
                   "consent.md was changed since it was enrolled", output)  # fmt: skip


def test_enrollment_and_its_refusals_are_audited_with_the_file_hashes(home, photo, tmp_path):
    assert enroll(home, photo, tmp_path / "ok", "kept").returncode == 0
    entry = last_entry(home)
    folder = _current_folder(home, "kept")
    assert (entry.record.action, entry.record.outcome, entry.record.avatar_version) == ("avatar.add", "success", 1)
    assert entry.record.extra["files"]["license.yaml"] == sha256(folder / "license.yaml")
    assert entry.record.extra["files"]["consent.md"] == sha256(folder / "consent.md")
    faceless = tmp_path / "wall.png"
    cv2.imwrite(str(faceless), cv2.resize(cv2.imread(str(photo))[:40, :40], (600, 600)))
    refused = enroll(home, faceless, tmp_path / "no", "wall")
    assert refused.returncode == 2 and "face" in refused.stderr
    entry = last_entry(home)
    assert (entry.record.action, entry.record.outcome, entry.record.avatar_id) == ("avatar.add", "refused", "wall")
    assert "face" in entry.record.detail


# --- 2. one render, one staging file ---------------------------------------------------------------


def test_four_parallel_renders_to_one_path_publish_one_consistent_set(dhf_home, tmp_path):
    output = tmp_path / "same.mp4"
    env = {**os.environ, "DHF_HOME": str(dhf_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    texts = [f"Answer number {word}." for word in ("one", "two", "three", "four")]
    processes = [
        subprocess.Popen([*DHF, "render", text, "--avatar", "sample", "--lang", "en", "-o", str(output), "--quiet"],
                         cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for text in texts
    ]  # fmt: skip
    results = [(p.wait(timeout=600), p.stderr.read()) for p in processes]
    assert all(code == 0 for code, _ in results), results
    report = json.loads(output.with_name("same.report.json").read_text())
    # The survivor's video, report and captions come from one and the same render.
    assert report["sha256"] == sha256(output)
    spoken = report["request"]["text"]
    assert spoken in texts and spoken.split()[-1].rstrip(".") in output.with_suffix(".srt").read_text()
    verified = run_dhf(["verify", str(output)], dhf_home)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    log = AuditLog(load_settings(home=dhf_home).paths.audit_db)
    ours = [e for e in log.entries() if e.record.output == str(output) and e.record.outcome == "success"]
    assert len(ours) == 4 and sha256(output) in {e.record.output_sha256 for e in ours}
    assert not [p.name for p in tmp_path.iterdir() if "pending" in p.name or ".part" in p.name]


# --- 4. strict batch parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        ('id,text\nq1,"Hello there\nq2,Second question\nq3,"Third"\n', r"merged.csv:2: CSV syntax error"),
        ('id,text\nq1,"Hello there\nq2,Second question"\nq3,Third\n', r"merged.csv:2: a quoted field runs"),
        ("id,text\nq1,Hello,there\n", r"merged.csv:2: 3 columns, the header has 2"),
        ("id,txt\nq1,Hello\n", r"merged.csv:1: unknown column 'txt'"),
    ],
)
def test_a_malformed_csv_names_file_and_line_and_loses_nothing_silently(tmp_path, content, message):
    script = tmp_path / "merged.csv"
    script.write_text(content)
    with pytest.raises(BatchScriptError, match=message):
        load_script(script, {"avatar": "sample", "languages": "en"})


def test_a_csv_with_a_utf8_bom_is_accepted_through_the_cli(dhf_home, tmp_path):
    script = tmp_path / "excel.csv"
    script.write_bytes("\ufeffid,text\nq1,Hello there.\nq2,Good morning.\n".encode())
    data, lines = load_script(script, {"avatar": "sample", "languages": "en"})
    assert [item["id"] for item in data["items"]] == ["q1", "q2"] and lines["items[1]"] == 3
    broken = tmp_path / "broken.csv"
    broken.write_text('id,text\nq1,"Hello\nq2,Bye\n')
    args = ["batch", str(broken), "--avatar", "sample", "--languages", "en", "--out", str(tmp_path)]
    result = run_dhf(args, dhf_home)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(f"dhf: error: {broken}:2:")


# --- 6. output path checked before compute ---------------------------------------------------------


def _chattr(flag: str, path: Path) -> None:
    if subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode != 0:
        pytest.skip(f"chattr {flag} failed as root: the file system does not support it")


IMMUTABLE = needs_root("make a file immutable (chattr +i)")


@pytest.mark.parametrize(
    "case",
    [
        "folder named like the output",
        pytest.param("immutable folder", marks=IMMUTABLE),
        pytest.param("immutable file", marks=IMMUTABLE),
    ],
)
def test_an_unwritable_output_is_refused_before_any_compute(home, tmp_path, case):
    fresh = tmp_path / "home"  # its own caches: the refusal must come before any stage writes one
    (fresh / "models").mkdir(parents=True)
    for model in (home / "models").iterdir():
        (fresh / "models" / model.name).symlink_to(model.resolve())
    folder = tmp_path / "out"
    folder.mkdir()
    output = folder / "x.mp4"
    if case == "folder named like the output":
        output.mkdir()
    elif case == "immutable file":
        output.write_bytes(b"an older video")
        _chattr("+i", output)
    else:
        _chattr("+i", folder)
    try:
        start = time.monotonic()
        result = run_dhf(["render", "Hello there.", "--avatar", "sample", "--lang", "en", "-o", str(output)], fresh)
        elapsed = time.monotonic() - start
    finally:
        subprocess.run(["chattr", "-i", str(output if case == "immutable file" else folder)], capture_output=True)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert str(folder) in line and "pending" not in line and ".part" not in line, line
    assert not (fresh / "cache").exists() or not any((fresh / "cache").rglob("*.wav")), "speech was synthesized"
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert elapsed < 20  # the whole render of this sentence takes longer on a loaded 2-core machine


# --- 7. licence dates with a time part --------------------------------------------------------------


def test_licence_dates_with_a_time_part_are_read_as_days(home, photo, tmp_path):
    until = (dt.date.today() + dt.timedelta(days=200)).isoformat()
    timed = enroll(home, photo, tmp_path / "a", "timed", valid_until=f"{until}T23:59:59+08:00")
    assert timed.returncode == 0, timed.stderr
    listed = run_dhf(["avatar", "list"], home).stdout
    assert f"authorized until {until}" in listed or "authorized until" in listed.split("timed")[1]
    expired = enroll(home, photo, tmp_path / "b", "stale", valid_until=dt.datetime(2020, 1, 1, 10, 0))
    assert expired.returncode == 2 and "expired on 2020-01-01" in expired.stderr.strip().splitlines()[-1]
    assert "Traceback" not in timed.stderr + expired.stderr


# --- 9. a truncated input is an error, never a shorter video --------------------------------------


def test_a_truncated_driver_video_is_refused_not_rendered_shorter(dhf_home, tmp_path):
    settings = load_settings(home=dhf_home)
    clip = render_preview("sample", sweep_track(25, 3.0), tmp_path / "clip.mp4", settings)
    data = clip.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(MediaError, match="corrupt or truncated after"):
        sum(1 for _ in read_frames(truncated, 320, 180))
    assert sum(1 for _ in read_frames(clip, 320, 180)) == 75  # the whole clip still reads
    output = tmp_path / "driven.mp4"
    result = run_dhf(["render", "--driver-video", str(truncated), "--avatar", "sample", "--lang", "en", "-o",
                      str(output), "--quiet"], dhf_home)  # fmt: skip
    assert_refused(result, "corrupt or truncated", output)


# --- 6b. a full disk under the output, and a text file that is not UTF-8 ----------------------------


@needs_root("mount a 256 KiB tmpfs")
def test_a_full_disk_under_the_output_is_one_line_naming_the_folder(dhf_home, tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs even as root (a container?): {mounted.stderr.decode().strip()}")
    try:
        output = folder / "answer.mp4"
        result = run_dhf(["render", "Hello there, welcome.", "--avatar", "sample", "--lang", "en", "-o", str(output),
                          "--quiet"], dhf_home)  # fmt: skip
        line = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 2 and f"the disk is full under {folder}" in line and "pending" not in line, line
        assert os.listdir(folder) == []  # nothing half-written, no staging file
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_a_text_file_that_is_not_utf8_is_one_line(dhf_home, tmp_path):
    text = tmp_path / "latin1.txt"
    text.write_bytes("Café au lait.".encode("latin-1"))
    output = tmp_path / "out.mp4"
    result = run_dhf(["render", f"@{text}", "--avatar", "sample", "--lang", "en", "-o", str(output)], dhf_home)
    assert_refused(result, "is not UTF-8 (byte 3: 0xe9)", output)
