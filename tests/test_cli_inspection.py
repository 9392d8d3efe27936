"""The read-only commands a person uses to inspect the factory, through the real CLI: `dhf avatar show`,
`dhf avatar cutout`, `dhf audit list`, `dhf audit show` and `dhf review show`. Each is checked against
what it describes, measured from the files themselves (hashes, frame counts, pixels), and a bad id is
one line and exit code 2."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import SENTENCE, run_dhf

from avatars.library import BUNDLED
from media.video import probe

SAMPLE = BUNDLED / "sample"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_one_error_line(result, pattern: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dhf: error: ") and pattern in lines[0], result.stderr


def fields(text: str, separator: str) -> dict[str, str]:
    """`key<separator>value` lines as a dict (the first separator splits)."""
    pairs = (line.strip().split(separator, 1) for line in text.splitlines() if separator in line)
    return {key.strip(): value.strip() for key, value in pairs}


def test_avatar_show_names_the_version_license_and_the_files_real_hashes(dhf_home):
    result = run_dhf(["avatar", "show", "sample"], dhf_home)
    assert result.returncode == 0, result.stderr
    shown = fields(result.stdout, ": ")
    license_ = yaml.safe_load((SAMPLE / "license.yaml").read_text(encoding="utf-8"))
    assert shown["id"] == "sample" and shown["version"] == "1 (bundled)"
    assert shown["photo"] == f"{SAMPLE / 'portrait.png'} (sha256 {sha256(SAMPLE / 'portrait.png')[:16]}…)"
    assert shown["consent document"] == f"consent.md (sha256 {sha256(SAMPLE / 'consent.md')[:16]}…)"
    assert shown["license"].startswith(f"{license_['license_id']}, holder ")
    assert shown["valid"] == f"{license_['valid_from']} .. {license_['valid_until']}"
    assert shown["status"] == f"authorized until {license_['valid_until']}"
    scope = "; ".join(f"{key} {', '.join(license_['scope'][key])}" for key in ("languages", "channels", "purposes"))
    assert shown["scope"] == scope  # words, not Python lists
    assert_one_error_line(run_dhf(["avatar", "show", "nobody"], dhf_home), "unknown avatar 'nobody'")
    assert_one_error_line(run_dhf(["avatar", "show", "sample", "--version", "7"], dhf_home), "unknown avatar")


def test_avatar_cutout_draws_the_photo_the_mask_and_the_person_on_grey(dhf_home, tmp_path):
    output = tmp_path / "cutout.png"
    result = run_dhf(["avatar", "cutout", "sample", "-o", str(output)], dhf_home)
    assert result.returncode == 0, result.stderr
    assert str(output) in result.stdout
    sheet = cv2.imread(str(output))
    assert sheet.shape == (480, 1440, 3)
    photo, mask, person = (sheet[:, i * 480 : (i + 1) * 480].astype(int) for i in range(3))
    corner, face = (slice(0, 40), slice(0, 40)), (slice(140, 200), slice(200, 280))  # backdrop; cheeks and nose
    # the backdrop: grey behind the cut-out person, tinted red in the mask panel, the photo's own in the first
    assert np.abs(person[corner] - 128).max() <= 2
    b, g, r = (mask[corner][..., c].mean() for c in range(3))
    assert r > b + 60 and r > g + 60, (b, g, r)
    assert np.abs(photo[corner] - 128).mean() > 20
    # the person: the same pixels in all three panels
    assert np.abs(mask[face] - photo[face]).mean() < 1 and np.abs(person[face] - photo[face]).mean() < 3
    missing = tmp_path / "never.png"
    assert_one_error_line(run_dhf(["avatar", "cutout", "nobody", "-o", str(missing)], dhf_home), "unknown avatar")
    assert not missing.exists()


def test_audit_list_and_show_describe_the_render_that_happened(rendered, dhf_home):
    listed = run_dhf(["audit", "list"], dhf_home)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.strip().splitlines()]
    assert all(len(row) == 6 for row in rows), rows
    (row,) = [row for row in rows if row[5] == str(rendered.video)]
    entry_id, _, _, outcome, avatar, _ = row
    assert (outcome, avatar) == ("success", "sample@v1")
    shown = run_dhf(["audit", "show", entry_id], dhf_home)
    assert shown.returncode == 0, shown.stderr
    entry = json.loads(shown.stdout)
    assert entry["id"] == int(entry_id) and entry["action"] == "render" and entry["avatar_version"] == 1
    assert entry["output_sha256"] == sha256(rendered.video) == rendered.report["sha256"]
    assert entry["license_sha256"] == sha256(SAMPLE / "license.yaml")
    assert entry["extra"]["frames"] == probe(rendered.video).frames
    assert entry["quality"]["lipsync_correlation"] == rendered.report["quality"]["lipsync"]["correlation"]
    if int(entry_id) > 1:  # the hash chain: this entry names the one before it
        before = json.loads(run_dhf(["audit", "show", str(int(entry_id) - 1)], dhf_home).stdout)
        assert entry["previous_hash"] == before["entry_hash"] != entry["entry_hash"]
    assert_one_error_line(run_dhf(["audit", "show", "999999"], dhf_home), "audit entry 999999 not found")


@pytest.fixture(scope="module")
def held(dhf_home, tmp_path_factory) -> tuple[str, Path]:
    """A render held for review (640×360; its speech and driver come from the session render's cache)."""
    folder = tmp_path_factory.mktemp("held")
    config = folder / "review.yaml"
    config.write_text("video: {width: 640, height: 360}\ngovernance: {review: required}\n", encoding="utf-8")
    output = folder / "answer.mp4"
    args = ["render", SENTENCE, "--avatar", "sample", "--lang", "en", "-o", str(output), "--quiet"]
    result = run_dhf([*args, "--config", str(config)], dhf_home)
    assert result.returncode == 0 and "held for review " in result.stdout, result.stderr[-2000:]
    return result.stdout.split("held for review ")[1].split()[0], output


def test_review_show_describes_the_held_video(held, dhf_home):
    review_id, output = held
    result = run_dhf(["review", "show", review_id], dhf_home)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"review {review_id}: pending"
    shown = {line.split()[0]: line.strip().split(None, 1)[1] for line in lines[1:]}
    video, thumbnail = Path(shown["video"]), Path(shown["thumbnail"])
    assert shown["publishes"] == str(output) and not output.exists()
    assert video.parent == thumbnail.parent == output.parent and review_id in video.name
    info = probe(video)
    assert (info.width, info.height) == (640, 360)
    assert shown["avatar"] == f"sample [en], {info.frames} frames = {info.frames / 25:.1f} s"
    assert shown["text"] == SENTENCE
    height, width, _ = cv2.imread(str(thumbnail)).shape
    assert width <= 640 and height * 640 == width * 360, (width, height)  # a still of the video, 16:9
    # --json: the same record, with the held video's hash and the gate's figures from its report
    record = json.loads(run_dhf(["review", "show", review_id, "--json"], dhf_home).stdout)
    assert (record["id"], record["state"], record["output"]) == (review_id, "pending", str(output))
    assert record["sha256"] == sha256(video) and record["frames"] == info.frames
    report = json.loads(Path(record["staged"]["report"]).read_text())
    correlation = report["quality"]["lipsync"]["correlation"]
    assert record["quality"]["lipsync_correlation"] == correlation and record["quality_passed"] is True
    assert shown["quality"].startswith(f"passed: lipsync_correlation {correlation:g},"), shown["quality"]
    assert_one_error_line(run_dhf(["review", "show", "nope"], dhf_home), "no review 'nope'")
