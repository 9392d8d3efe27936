"""Human review before publishing (issue 18): a passing render with `governance.review: required`
waits in review; only approval publishes it, rejection and the timeout leave nothing at the output,
and every decision is an audit entry naming the reviewer. Driven through the CLI, the REST API and a
batch, on real renders (640×360 to keep them short)."""

from __future__ import annotations

import getpass
import json
import shutil
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from conftest import ApiServer, run_dhf

from config import load_settings
from governance.audit import AuditLog

SMALL = "video: {width: 640, height: 360}\n"
REVIEW = SMALL + "governance: {review: required}\n"
# The same OS user renders and approves in these tests: separation of duties lets it only as break-glass.
BREAK_GLASS = SMALL + f"governance: {{review: required, break_glass: [{getpass.getuser()}]}}\n"
ME = getpass.getuser()
TEXT = "The rate is 3.5% for one year."


@pytest.fixture(scope="module")
def home(dhf_home) -> Path:
    return dhf_home


def _config(folder: Path, text: str, name: str = "review.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _render(home: Path, output: Path, config: Path, text: str = TEXT) -> str:
    """Render with review required: the command succeeds, names the review, and publishes nothing."""
    result = run_dhf(
        ["render", text, "--avatar", "sample", "--lang", "en", "-o", str(output), "--quiet", "--config", str(config)],
        home,
    )  # fmt: skip  (--config after the subcommand, as README shows)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "held for review" in result.stdout, result.stdout
    review_id = result.stdout.split("held for review ")[1].split()[0]
    assert not output.exists() and not output.with_suffix(".srt").exists()
    assert not output.with_suffix("").with_name(output.stem + ".report.json").exists()
    return review_id


def _review_entries(home: Path, review_id: str) -> list:
    log = AuditLog(load_settings(home=home).paths.audit_db)
    return [e for e in log.entries() if e.record.action == "review" and e.record.extra.get("review") == review_id]


def test_cli_reject_then_approve_and_verify_names_the_approver(home, tmp_path):
    config = _config(tmp_path, BREAK_GLASS)
    output = tmp_path / "out" / "answer.mp4"

    rejected = _render(home, output, config)
    listed = run_dhf(["review", "list", "--json"], home)
    assert rejected in [row["id"] for row in json.loads(listed.stdout)]
    held = [p.name for p in output.parent.iterdir()]
    assert any(name.endswith(".review.mp4") for name in held) and any(name.endswith(".review.jpg") for name in held)
    result = run_dhf(["review", "reject", rejected, "--reviewer", "carol", "-m", "wrong rate"], home)
    assert result.returncode == 0, result.stderr
    assert list(output.parent.iterdir()) == []  # nothing published, nothing left held
    (entry,) = _review_entries(home, rejected)
    record = entry.record
    assert (record.user, record.extra["reviewer"], record.outcome) == (ME, "carol", "refused")
    assert record.extra["comment"] == "wrong rate"

    approved = _render(home, output, config)  # the stages come from the cache: a second review
    assert approved != rejected
    result = run_dhf(
        ["review", "approve", approved, "--reviewer", "alice", "--comment", "figures checked", "--config", str(config)],
        home,
    )
    assert result.returncode == 0, result.stderr
    assert output.is_file() and output.with_suffix(".srt").is_file() and output.with_suffix(".jpg").is_file()
    report = json.loads(output.with_name("answer.report.json").read_text())
    assert report["published"] and report["review"]["state"] == "approved"
    assert report["review"]["reviewer"] == f"alice ({ME})"
    assert report["captions"]["srt"] == str(output.with_suffix(".srt"))
    (entry,) = _review_entries(home, approved)
    assert (entry.record.user, entry.record.extra["reviewer"], entry.record.outcome) == (ME, "alice", "success")
    assert entry.record.extra["break_glass"] is True  # the requester approved its own video: audited as such
    assert entry.record.output_sha256 == report["sha256"] and report["review"]["audit_entry"] == entry.id
    again = run_dhf(["review", "reject", approved, "--reviewer", "mallory"], home)
    assert again.returncode == 2 and "already approved by alice" in again.stderr

    verified = run_dhf(["verify", str(output), "--json"], home)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    expected = f"approved by alice ({ME}) at {entry.time} (audit entry #{entry.id})"
    verdict = json.loads(verified.stdout)
    assert verdict["review"].startswith(expected) and verdict["verdict"] == "publishable"
    assert verdict["review_state"] == "approved" and verdict["audit"]["status"] == "valid"


def _held(output: Path, review_id: str) -> Path:
    return output.with_name(f".{output.stem}.{review_id}.review.mp4")


def test_hostile_review_cases_are_refused_and_verify_is_a_publication_gate(home, tmp_path):
    """Issue 25, each of which passed before: approving one's own video; a held video swapped before
    approval (the other file was published under the reviewed hash); a rejected review approved after
    its record file was restored; `dhf verify` exiting 0 for a held and for a rejected video, and
    naming an approver from an edited audit entry."""
    strict, glass = _config(tmp_path, REVIEW, "strict.yaml"), _config(tmp_path, BREAK_GLASS, "glass.yaml")
    output = tmp_path / "out" / "rate.mp4"
    first = _render(home, output, strict)
    own = run_dhf(["review", "approve", first, "--reviewer", "me", "--config", str(strict)], home)
    assert own.returncode == 2 and f"{ME} requested this video" in own.stderr and "separation of duties" in own.stderr

    held = _held(output, first)
    pending_copy = tmp_path / "pending-copy.mp4"
    shutil.copyfile(held, pending_copy)
    pending = run_dhf(["verify", str(pending_copy)], home)
    assert pending.returncode == 6 and "NOT APPROVED" in pending.stdout, pending.stdout + pending.stderr

    original = held.read_bytes()
    held.write_bytes(original[:-4096] + bytes(4096))  # "another video" at the held path
    swapped = run_dhf(["review", "approve", first, "--reviewer", "x", "--config", str(glass)], home)
    assert swapped.returncode == 2 and f"the held video {held} is not the file that was rendered" in swapped.stderr
    assert not output.exists()
    held.write_bytes(original)
    approved = run_dhf(["review", "approve", first, "--reviewer", "x", "--config", str(glass)], home)
    assert approved.returncode == 0 and output.is_file(), approved.stderr
    assert run_dhf(["verify", str(output)], home).returncode == 0

    second = _render(home, tmp_path / "out" / "second.mp4", strict)
    rejected_copy = tmp_path / "rejected-copy.mp4"
    shutil.copyfile(_held(tmp_path / "out" / "second.mp4", second), rejected_copy)
    record_file = home / "reviews" / f"{second}.json"
    saved = record_file.read_bytes()
    assert run_dhf(["review", "reject", second, "-m", "no"], home).returncode == 0
    rejected = run_dhf(["verify", str(rejected_copy), "--json"], home)
    assert rejected.returncode == 7 and json.loads(rejected.stdout)["verdict"] == "rejected", rejected.stdout
    record_file.write_bytes(saved)  # the record says "pending" again
    shown = json.loads(run_dhf(["review", "show", second, "--json"], home).stdout)
    assert (shown["state"], shown["reason"]) == ("rejected", "") and shown["audit_entry"], shown  # as the log says
    assert second not in [row["id"] for row in json.loads(run_dhf(["review", "list", "--json"], home).stdout)]
    restored = run_dhf(["review", "approve", second, "--config", str(glass)], home)
    assert restored.returncode == 2 and "was already rejected by" in restored.stderr
    assert "(audit entry" in restored.stderr and "it was restored or edited" in restored.stderr

    # an audit log whose approval entry was edited: verify neither passes nor repeats what the entry says
    forged = tmp_path / "forged-home"
    (forged / "audit").mkdir(parents=True)
    source = load_settings(home=home).paths.audit_db
    with sqlite3.connect(source) as original_db, sqlite3.connect(forged / "audit" / "audit.sqlite") as copy:
        original_db.backup(copy)
    shutil.copyfile(source.with_suffix(".witness"), forged / "audit" / "audit.witness")
    (forged / "models").symlink_to(home / "models", target_is_directory=True)
    (entry,) = _review_entries(home, first)
    with sqlite3.connect(forged / "audit" / "audit.sqlite") as db:
        db.execute("DROP TRIGGER entries_no_update")
        db.execute("UPDATE entries SET payload = replace(payload, '\"reviewer\":\"x\"', '\"reviewer\":\"alice\"') "
                   f"WHERE id = {entry.id}")  # fmt: skip
    tampered = run_dhf(["verify", str(output), "--json"], forged)
    verdict = json.loads(tampered.stdout)
    assert tampered.returncode == 5 and verdict["verdict"] == "tampered", tampered.stdout
    assert verdict["review"] is None and "alice" not in tampered.stdout and f"entry {entry.id}" in tampered.stdout


def test_an_edited_deadline_does_not_reopen_a_timed_out_review(home, tmp_path):
    config = _config(tmp_path, BREAK_GLASS.replace("review: required", "review: required, review_timeout_seconds: 1"))
    output = tmp_path / "late.mp4"
    review_id = _render(home, output, config)
    record_file = home / "reviews" / f"{review_id}.json"
    record = json.loads(record_file.read_text())
    time.sleep(1.2)
    record_file.write_text(json.dumps({**record, "deadline": "2099-01-01T00:00:00Z"}))
    late = run_dhf(["review", "approve", review_id, "--config", str(config)], home)
    assert late.returncode == 2 and f"review {review_id} timed out at {record['deadline']}" in late.stderr, late.stderr
    assert not output.exists()


def test_undecided_review_times_out_as_rejected(home, tmp_path):
    config = _config(tmp_path, SMALL + "governance: {review: required, review_timeout_seconds: 1}\n")
    output = tmp_path / "late.mp4"
    review_id = _render(home, output, config)
    time.sleep(1.2)
    late = run_dhf(["review", "approve", review_id, "--reviewer", "alice", "--config", str(config)], home)
    assert late.returncode == 2 and f"review {review_id} timed out" in late.stderr, late.stderr
    assert list(tmp_path.glob("*late*")) == [] and list(tmp_path.glob(".late*")) == []
    (entry,) = _review_entries(home, review_id)
    assert entry.record.user == "system:review-timeout" and entry.record.extra["reason"] == "timed out"


def test_api_review_scope_gates_publication(home, tmp_path):
    server = ApiServer(home, tmp_path, REVIEW).start()
    try:
        tokens = {}
        keys = (("cms", "render,read"), ("boss", "admin"), ("compliance", "review"), ("desk", "render,read,review"))
        for name, scopes in keys:
            created = run_dhf(["api-key", "create", "--name", name, "--scopes", scopes], home)
            assert created.returncode == 0 and created.stdout.count("\n") == 1, created.stdout  # the secret alone
            tokens[name] = {"Authorization": f"Bearer {created.stdout.strip()}"}
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for who in ("cms", "boss"):  # neither render nor admin may review
                assert client.get("/v1/reviews", headers=tokens[who]).status_code == 403
            body = {"text": TEXT, "language": "en", "avatar_id": "sample", "channel": "demo", "purpose": "demo"}
            job_id = client.post("/v1/videos", json=body, headers=tokens["desk"]).json()["job_id"]
            deadline = time.monotonic() + 240
            while (status := client.get(f"/v1/videos/{job_id}", headers=tokens["desk"]).json())["status"] in (
                "queued", "running"
            ) and time.monotonic() < deadline:  # fmt: skip
                time.sleep(0.5)
            assert status["status"] == "succeeded", status
            review = status["result"]["review"]
            assert review["state"] == "pending"
            held = client.get(f"/v1/videos/{job_id}/video", headers=tokens["desk"])
            assert held.status_code == 404 and held.json()["error"]["code"] == "not_published"
            pending = client.get("/v1/reviews", headers=tokens["compliance"]).json()
            assert [row["id"] for row in pending if row["id"] == review["id"]] and "staged" not in pending[0]
            thumb = client.get(f"/v1/reviews/{review['id']}/thumbnail", headers=tokens["compliance"])
            assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"  # a JPEG the reviewer can see
            decision = {"decision": "approve", "reviewer": "dana", "comment": "ok to publish"}
            assert client.post(f"/v1/reviews/{review['id']}", json=decision, headers=tokens["cms"]).status_code == 403
            own = client.post(f"/v1/reviews/{review['id']}", json=decision, headers=tokens["desk"])  # its own order
            assert own.status_code == 403 and own.json()["error"]["code"] == "separation_of_duties", own.text
            forged = {**decision, "reviewer": "dana\n7\tforged"}
            bad = client.post(f"/v1/reviews/{review['id']}", json=forged, headers=tokens["compliance"])
            assert bad.status_code == 422 and "control character" in bad.text, bad.text
            decided = client.post(f"/v1/reviews/{review['id']}", json=decision, headers=tokens["compliance"])
            assert decided.status_code == 200 and decided.json()["state"] == "approved", decided.text
            video = client.get(f"/v1/videos/{job_id}/video", headers=tokens["desk"])
            assert video.status_code == 200 and video.content[4:8] == b"ftyp"
            status = client.get(f"/v1/videos/{job_id}", headers=tokens["desk"]).json()
            assert status["result"]["review"]["state"] == "approved"
            again = client.post(f"/v1/reviews/{review['id']}", json=decision, headers=tokens["compliance"])
            assert again.status_code == 409
    finally:
        server.stop()
    (entry,) = _review_entries(home, review["id"])
    assert entry.record.user.startswith("api-key:") and entry.record.extra["reviewer"] == "dana"
    assert entry.record.extra["requested_by"] != entry.record.user and entry.record.extra["comment"] == "ok to publish"


@pytest.mark.slow  # three batch runs, each on Prefect's temporary server: ~60 s
def test_batch_manifest_shows_review_state(home, tmp_path):
    script = tmp_path / "held.yaml"
    script.write_text(
        "name: held\navatar: sample\nlanguages: [en]\nchannel: demo\npurpose: demo\nreview: required\n"
        f'items:\n  - id: q1\n    text: "{TEXT}"\n',
        encoding="utf-8",
    )
    config = _config(tmp_path, SMALL)
    glass = _config(tmp_path, BREAK_GLASS, "glass.yaml")
    out = tmp_path / "out"
    first = run_dhf(["batch", str(script), "--out", str(out), "--config", str(config)], home)
    assert first.returncode == 0 and "1 held for review" in first.stdout, first.stdout + first.stderr[-2000:]
    manifest = out / "held" / "manifest.json"
    (row,) = json.loads(manifest.read_text())
    assert (row["status"], row["review"]) == ("in review", "pending") and not Path(row["output"]).exists()
    again = run_dhf(["batch", str(script), "--out", str(out), "--config", str(config)], home)
    assert "0 rendered" in again.stdout and "1 held for review" in again.stdout, again.stdout  # not rendered twice
    decided = run_dhf(["review", "approve", row["review_id"], "--reviewer", "erin", "--config", str(glass)], home)
    assert decided.returncode == 0, decided.stderr
    (row,) = json.loads(manifest.read_text())
    assert (row["status"], row["review"]) == ("rendered", "approved") and Path(row["output"]).is_file()
    assert "approved" in (out / "held" / "manifest.csv").read_text()
    cached = run_dhf(["batch", str(script), "--out", str(out), "--config", str(config)], home)
    assert "1 unchanged" in cached.stdout, cached.stdout  # the approved video is recognised by its batch key
