"""Issue 25: the audit log cannot silently vanish or be rewritten, and what reaches it is one honest line.

Hostile cases reproduced here (each failed before issue 25): a log emptied with `: > audit.sqlite`
read as "intact: 0 entries"; a log replaced by another consistent chain verified; a reviewer name
holding a newline forged a line in `dhf audit list`."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import own_home, run_dhf

from config import load_settings
from governance.audit import AuditError, AuditLog, AuditRecord, default_witness, read_witness
from governance.free_text import FreeTextError, check_free_text, printable
from pipeline.review import Decider


def _filled(path: Path, count: int, user: str = "alice") -> AuditLog:
    log = AuditLog(path)
    for number in range(count):
        log.append(AuditRecord(action="render", outcome="success", user=user, detail=f"#{number}"))
    return log


def test_every_append_is_witnessed_outside_the_database(tmp_path):
    extra = tmp_path / "worm" / "audit-heads.jsonl"
    log = _filled(tmp_path / "audit.sqlite", 0)
    log = AuditLog(tmp_path / "audit.sqlite", (extra,))
    entries = [log.append(AuditRecord(action="render", outcome="success", user="u")) for _ in range(3)]
    expected = [(entry.id, entry.entry_hash) for entry in entries]
    assert read_witness(default_witness(log.path)) == expected and read_witness(extra) == expected
    assert log.verify_with_witnesses().ok


def test_an_emptied_log_fails_against_its_witness(tmp_path):
    database = tmp_path / "audit.sqlite"
    _filled(database, 5)
    database.write_bytes(b"")  # `: > audit.sqlite`
    result = AuditLog(database).verify_with_witnesses()
    assert not result.ok and result.checked == 0
    assert f"the witness {default_witness(database)} records entry 5" in result.reason
    assert AuditLog(database).verify().ok  # the chain alone cannot tell: an empty chain is a valid chain


def test_a_log_replaced_by_another_consistent_chain_fails(tmp_path):
    database = tmp_path / "audit.sqlite"
    _filled(database, 3)
    other = tmp_path / "other" / "audit.sqlite"
    _filled(other, 3, user="mallory")  # same length, every hash consistent, other content
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(other, database)
    result = AuditLog(database).verify_with_witnesses()
    assert not result.ok and "differs from the hash the witness" in result.reason and result.first_bad == 3


def test_an_edited_witness_is_evidence_not_noise(tmp_path):
    database = tmp_path / "audit.sqlite"
    _filled(database, 2)
    with default_witness(database).open("a") as handle:
        handle.write("not json\n")
    with pytest.raises(Exception, match="line 3 is not a witness line"):
        AuditLog(database).verify_with_witnesses()


def test_wiped_log_fails_dhf_audit_verify_and_refuses_renders(dhf_home, tmp_path):
    """The hostile case through the CLI: `: > audit.sqlite; dhf audit verify` said "intact: 0 entries"."""
    home = own_home(tmp_path / "home")
    settings = load_settings(home=home)
    _filled(settings.paths.audit_db, 4)
    assert run_dhf(["audit", "verify"], home).returncode == 0
    settings.paths.audit_db.write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.paths.audit_db}{suffix}").unlink(missing_ok=True)
    verified = run_dhf(["audit", "verify"], home)
    assert verified.returncode == 3, verified.stdout
    assert "audit log tampered" in verified.stderr and "records entry 4" in verified.stderr
    output = tmp_path / "out.mp4"
    refused = run_dhf(["render", "Hello.", "--avatar", "sample", "--lang", "en", "-o", str(output)], home)
    assert refused.returncode == 2 and "fails verification" in refused.stderr and not output.exists()
    assert refused.stderr.count("\n") == 1, refused.stderr


def test_a_review_record_naming_a_missing_entry_fails_verification(dhf_home, tmp_path):
    """Another anchor: review records carry their decision's entry number."""
    home = tmp_path / "home"
    home.mkdir()
    settings = load_settings(home=home)
    _filled(settings.paths.audit_db, 2)
    (home / "reviews").mkdir()
    record = {"id": "abc123", "state": "approved", "created": "2026-01-01T00:00:00Z", "audit_entry": 9}
    (home / "reviews" / "abc123.json").write_text(json.dumps(record))
    verified = run_dhf(["audit", "verify"], home)
    assert verified.returncode == 3 and "names audit entry 9, which the log does not have" in verified.stderr


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("alice\n5\t2026-01-01\troot", "U\\+000A"),
        ("alice\u202ecilA", "U\\+202E RIGHT-TO-LEFT OVERRIDE"),
        ("a\x1b[2Jb", "U\\+001B"),
    ],
)
def test_names_and_comments_with_control_characters_are_refused(text, named):
    with pytest.raises(FreeTextError, match=named):
        check_free_text(text, "the reviewer name")
    with pytest.raises(FreeTextError, match=named):
        Decider("root", text)
    with pytest.raises(ValueError, match="control character"):
        AuditRecord(action="review", outcome="success", user=text)
    assert "\n" not in printable(text) and "\u202e" not in printable(text)


def test_a_reviewer_name_with_a_newline_is_refused_by_the_cli(dhf_home):
    result = run_dhf(["review", "approve", "abc123", "--reviewer", "alice\n7\tforged"], dhf_home)
    assert result.returncode == 2 and "contains a control character (U+000A" in result.stderr
    assert result.stderr.count("\n") == 1


def test_audit_list_prints_one_line_per_entry_whatever_an_old_entry_holds(dhf_home, tmp_path):
    """Entries written before the check (or a `detail` from an exception) cannot forge lines either."""
    home = tmp_path / "home"
    home.mkdir()
    log = _filled(load_settings(home=home).paths.audit_db, 2)
    log.append(AuditRecord(action="render", outcome="refused", user="bob", detail="bad\n99\tforged\tline"))
    with sqlite3.connect(log.path) as db:
        assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 3
    listed = run_dhf(["audit", "list"], home)
    assert listed.returncode == 0 and listed.stdout.count("\n") == 3, listed.stdout
    assert "bad\\n99\\tforged\\tline" in listed.stdout


def test_an_unwritable_witness_is_one_line_naming_it(tmp_path):
    """A configured witness that cannot be written (a folder, a read-only share) is an error naming the
    path and the setting; the entry itself is stored (the chain stays whole) and the default witness has it."""
    blocked = tmp_path / "worm"
    blocked.mkdir()
    log = AuditLog(tmp_path / "audit.sqlite", (blocked,))
    with pytest.raises(AuditError, match=f"its witness {blocked} could not be written .*governance.audit_witnesses"):
        log.append(AuditRecord(action="render", outcome="success", user="u"))
    assert log.head()[0] == 1 and read_witness(default_witness(log.path))[0][0] == 1
