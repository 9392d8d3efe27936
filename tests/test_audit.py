"""The audit log on real SQLite files: round trips, tamper detection, triggers, concurrent appends, exports.

Tamper tests act like an attacker with the sqlite3 shell: drop the append-only triggers, change rows,
then expect verify() to name the first damaged entry, because that is what an auditor relies on.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import pytest

from governance.audit import GENESIS_HASH, AuditError, AuditLog, AuditRecord, entry_hash

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2025, 3, 1, 9, 30, 0, tzinfo=UTC)


def _record(n: int, outcome: str = "success") -> AuditRecord:
    return AuditRecord(
        action="render",
        outcome=outcome,
        user=f"user{n}",
        detail="" if outcome == "success" else f"reason {n}",
        avatar_id="anna",
        avatar_version=3,
        license_id="LIC-7",
        license_sha256="a" * 64,
        inputs_sha256=f"{n:064x}",
        models={"face_landmark": "b" * 64, "lipsync": "c" * 64},
        output=f"/out/video-{n}.mp4" if outcome == "success" else None,
        output_sha256=f"{n + 1000:064x}" if outcome == "success" else None,
        quality={"sync": 0.5 + n / 100, "sharpness": 12.25},
        extra={"n": n, "note": "héllo ✓", "tags": ["a", "b"]},
    )


def _filled(tmp_path: Path, count: int = 5) -> AuditLog:
    log = AuditLog(tmp_path / "audit" / "audit.db")
    for n in range(1, count + 1):
        log.append(_record(n, "refused" if n % 2 == 0 else "success"), now=T0 + timedelta(hours=n))
    return log


def _tamper(log: AuditLog, *steps: str | tuple[str, tuple]) -> None:
    """What someone with the sqlite3 shell can do: drop the guards, then change rows (SQL or (SQL, params))."""
    db = sqlite3.connect(log.path)
    try:
        db.execute("DROP TRIGGER IF EXISTS entries_no_update")
        db.execute("DROP TRIGGER IF EXISTS entries_no_delete")
        for step in steps:
            statement, params = (step, ()) if isinstance(step, str) else step
            db.execute(statement, params)
        db.commit()
    finally:
        db.close()


def _row(log: AuditLog, entry_id: int) -> tuple:
    db = sqlite3.connect(log.path)
    try:
        return db.execute(
            "SELECT payload, previous_hash, entry_hash, time FROM entries WHERE id = ?", (entry_id,)
        ).fetchone()
    finally:
        db.close()


# --- round trip ------------------------------------------------------------------------------------


def test_append_get_entries_round_trip(tmp_path: Path) -> None:
    log = _filled(tmp_path, 3)
    assert (tmp_path / "audit" / "audit.db").is_file()

    entries = log.entries()
    assert [e.id for e in entries] == [1, 2, 3]
    assert [e.time for e in entries] == ["2025-03-01T10:30:00Z", "2025-03-01T11:30:00Z", "2025-03-01T12:30:00Z"]
    assert entries[0].record == _record(1, "success")
    assert entries[1].record == _record(2, "refused")
    assert entries[1].record.detail == "reason 2" and entries[1].record.output is None
    assert entries[2].record.extra == {"n": 3, "note": "héllo ✓", "tags": ["a", "b"]}
    assert log.get(2) == entries[1]

    # The chain: genesis, then each entry points at its predecessor, and each hash is recomputable.
    assert entries[0].previous_hash == GENESIS_HASH
    for before, after in pairwise(entries):
        assert after.previous_hash == before.entry_hash
    for entry in entries:
        payload = _row(log, entry.id)[0]
        assert entry.entry_hash == entry_hash(entry.previous_hash, payload)
        content = json.loads(payload)
        assert content["id"] == entry.id and content["time"] == entry.time
        assert payload == json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert len({e.entry_hash for e in entries}) == 3
    assert log.head() == (3, entries[-1].entry_hash)

    result = log.verify()
    assert (result.ok, result.checked, result.first_bad) == (True, 3, None)


def test_append_returns_stored_entry_and_defaults_time_to_now_utc(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    before = datetime.now(UTC).replace(microsecond=0)
    entry = log.append(AuditRecord(action="render", outcome="failed", user="ci", detail="face not found"))
    after = datetime.now(UTC)
    stamp = datetime.strptime(entry.time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= stamp <= after
    assert log.get(1) == entry
    assert entry.record.models == {} and entry.record.avatar_id is None

    # A naive datetime is UTC; an aware one is converted to UTC.
    assert log.append(_record(2), now=datetime(2025, 1, 2, 3, 4, 5)).time == "2025-01-02T03:04:05Z"
    paris = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC).astimezone(timezone(timedelta(hours=1)))
    assert paris.hour == 4
    assert log.append(_record(3), now=paris).time == "2025-01-02T03:04:05Z"


def test_since_and_until_filter_by_time(tmp_path: Path) -> None:
    log = _filled(tmp_path, 5)  # times 10:30, 11:30, ..., 14:30 on 2025-03-01
    assert [e.id for e in log.entries(since=T0 + timedelta(hours=3))] == [3, 4, 5]  # inclusive
    assert [e.id for e in log.entries(until=T0 + timedelta(hours=3))] == [1, 2]  # exclusive
    assert [e.id for e in log.entries(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=4))] == [2, 3]
    # A fraction of a second past an entry's time excludes it from `since` and includes it before `until`.
    assert [e.id for e in log.entries(since=T0 + timedelta(hours=3, microseconds=1))] == [4, 5]
    assert [e.id for e in log.entries(until=T0 + timedelta(hours=3, microseconds=1))] == [1, 2, 3]
    # Naive datetimes are UTC; dates mean midnight UTC.
    assert [e.id for e in log.entries(since=datetime(2025, 3, 1, 12, 0))] == [3, 4, 5]
    assert [e.id for e in log.entries(since=date(2025, 3, 1))] == [1, 2, 3, 4, 5]
    assert log.entries(since=date(2025, 3, 2)) == []
    assert log.entries(until=date(2025, 3, 1)) == []


def test_get_missing_entry_is_a_one_line_user_error(tmp_path: Path) -> None:
    log = _filled(tmp_path, 2)
    with pytest.raises(AuditError, match=r"^audit entry 12 not found; see `dhf audit list`$"):
        log.get(12)


def test_empty_log_verifies(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "new" / "deeper" / "audit.db")
    result = log.verify()
    assert (result.ok, result.checked, result.first_bad) == (True, 0, None)
    assert log.entries() == []
    assert log.head() == (0, GENESIS_HASH)


def test_reopening_keeps_the_chain(tmp_path: Path) -> None:
    _filled(tmp_path, 2)
    again = AuditLog(tmp_path / "audit" / "audit.db")
    third = again.append(_record(3))
    assert third.id == 3 and third.previous_hash == again.get(2).entry_hash
    assert again.verify().ok


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["ok", "SUCCESS", "", "refuse"])
def test_outcome_must_be_known(outcome: str) -> None:
    with pytest.raises(ValueError, match="outcome must be one of success, refused, failed"):
        AuditRecord(action="render", outcome=outcome, user="me")


@pytest.mark.parametrize("outcome", ["success", "refused", "failed"])
def test_known_outcomes_are_accepted(outcome: str) -> None:
    assert AuditRecord(action="render", outcome=outcome, user="me").outcome == outcome


def test_extra_must_be_json_serializable() -> None:
    with pytest.raises(ValueError, match="not JSON-serializable"):
        AuditRecord(action="render", outcome="success", user="me", extra={"path": Path("/x")})


# --- tampering -------------------------------------------------------------------------------------


def test_edited_payload_is_detected(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    payload = _row(log, 2)[0]
    forged = payload.replace('"outcome":"refused"', '"outcome":"success"')
    assert forged != payload
    _tamper(log, ("UPDATE entries SET payload = ? WHERE id = 2", (forged,)))

    result = log.verify()
    assert not result.ok
    assert result.first_bad == 2
    assert result.checked == 1
    assert "entry 2: content does not match its hash (edited)" in result.reason


def test_deleted_middle_entry_is_detected(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    _tamper(log, "DELETE FROM entries WHERE id = 3")

    result = log.verify()
    assert not result.ok
    assert result.first_bad == 3
    assert "entry 3 is missing (deleted)" in result.reason


def test_reordered_entries_are_detected(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    two, four = _row(log, 2), _row(log, 4)
    swap = "UPDATE entries SET payload = ?, previous_hash = ?, entry_hash = ? WHERE id = ?"
    _tamper(log, (swap, (*four[:3], 2)), (swap, (*two[:3], 4)))
    assert _row(log, 2)[:3] == four[:3] and _row(log, 4)[:3] == two[:3]

    result = log.verify()
    assert not result.ok
    assert result.first_bad == 2
    assert "entry 2: chain broken (reordered or inserted)" in result.reason


def test_swapped_content_keeping_links_is_detected(tmp_path: Path) -> None:
    """A subtler reorder: swap payload and hash but leave previous_hash; the id in the payload betrays it."""
    log = _filled(tmp_path)
    two, four = _row(log, 2), _row(log, 4)
    swap = "UPDATE entries SET payload = ?, entry_hash = ? WHERE id = ?"
    _tamper(log, (swap, (four[0], four[2], 2)), (swap, (two[0], two[2], 4)))

    result = log.verify()
    assert not result.ok
    assert result.first_bad == 2
    assert "entry 2:" in result.reason


def test_deleted_last_entry_is_detected_by_the_head(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    _tamper(log, "DELETE FROM entries WHERE id = 5")

    result = log.verify()
    assert not result.ok
    assert result.first_bad == 5
    assert result.checked == 4
    assert "the last entry is missing (deleted after entry 4)" in result.reason

    # Appending afterwards continues from the head, so the hole stays visible instead of being papered over.
    assert log.append(_record(6)).id == 6
    result = log.verify()
    assert not result.ok and result.first_bad == 5
    assert "entry 5 is missing (deleted)" in result.reason


def test_deleted_last_entries_are_counted(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    _tamper(log, "DELETE FROM entries WHERE id >= 3")
    result = log.verify()
    assert not result.ok and result.first_bad == 3
    assert "the last 3 entries are missing (deleted after entry 2)" in result.reason


def test_edited_time_column_is_detected(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    _tamper(log, "UPDATE entries SET time = '2020-01-01T00:00:00Z' WHERE id = 3")
    assert _row(log, 3)[3] == "2020-01-01T00:00:00Z"

    result = log.verify()
    assert not result.ok
    assert result.first_bad == 3
    assert "entry 3: stored time does not match its hashed content" in result.reason


def test_rewritten_last_entry_with_fresh_hash_is_detected_by_the_head(tmp_path: Path) -> None:
    """Re-hashing an edited last entry keeps the chain valid; only the head can show it."""
    log = _filled(tmp_path)
    payload, previous, _, _ = _row(log, 5)
    forged = payload.replace('"user":"user5"', '"user":"someone-else"')
    assert forged != payload
    _tamper(
        log, ("UPDATE entries SET payload = ?, entry_hash = ? WHERE id = 5", (forged, entry_hash(previous, forged)))
    )
    result = log.verify()
    assert not result.ok
    assert result.first_bad == 5
    assert "head" in result.reason


def test_triggers_refuse_update_and_delete(tmp_path: Path) -> None:
    log = _filled(tmp_path, 2)
    db = sqlite3.connect(log.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only: UPDATE refused"):
            db.execute("UPDATE entries SET payload = '{}' WHERE id = 1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only: DELETE refused"):
            db.execute("DELETE FROM entries WHERE id = 2")
        with pytest.raises(sqlite3.DatabaseError, match="only be appended after the head"):
            db.execute("INSERT INTO entries VALUES (7, 'x', '{}', 'y', 'z')")
        with pytest.raises(sqlite3.DatabaseError, match="head cannot be deleted"):
            db.execute("DELETE FROM head")
        with pytest.raises(sqlite3.DatabaseError, match="head only advances"):
            db.execute("UPDATE head SET count = 1")
        db.rollback()
    finally:
        db.close()
    assert [e.id for e in log.entries()] == [1, 2]
    assert log.verify().ok


# --- concurrency -----------------------------------------------------------------------------------

_WORKER = """
import sys, time
from pathlib import Path
from governance.audit import AuditLog, AuditRecord
path, start_at, proc = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
time.sleep(max(0.0, start_at - time.time()))  # line the processes up so the appends really overlap
log = AuditLog(path)
for i in range(25):
    log.append(AuditRecord(action="render", outcome="success", user=f"proc{proc}", extra={"proc": proc, "i": i}))
"""


def test_concurrent_processes_append_without_losing_or_forking_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "audit.db"  # not created beforehand: the processes race to create it too
    start_at = time.time() + 1.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), str(start_at), str(n)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err

    log = AuditLog(path)
    entries = log.entries()
    assert [e.id for e in entries] == list(range(1, 101))
    result = log.verify()
    assert (result.ok, result.checked) == (True, 100), result.reason
    seen = {(e.record.extra["proc"], e.record.extra["i"]) for e in entries}
    assert seen == {(p, i) for p in range(4) for i in range(25)}
    # Each process's own entries stay in its order (each append commits before the next starts).
    for p in range(4):
        assert [e.record.extra["i"] for e in entries if e.record.extra["proc"] == p] == list(range(25))


# --- exports -------------------------------------------------------------------------------------


def test_export_csv_round_trips(tmp_path: Path) -> None:
    log = _filled(tmp_path, 4)
    out = io.StringIO()
    assert log.export_csv(out) == 4

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == 4
    assert list(rows[0]) == [
        "id",
        "time",
        "action",
        "outcome",
        "user",
        "detail",
        "avatar_id",
        "avatar_version",
        "license_id",
        "license_sha256",
        "inputs_sha256",
        "models",
        "output",
        "output_sha256",
        "quality",
        "extra",
        "previous_hash",
        "entry_hash",
    ]
    for row, entry in zip(rows, log.entries(), strict=True):
        record = entry.record
        assert int(row["id"]) == entry.id and row["time"] == entry.time
        assert (row["action"], row["outcome"], row["user"], row["detail"]) == (
            record.action,
            record.outcome,
            record.user,
            record.detail,
        )
        assert int(row["avatar_version"]) == record.avatar_version
        assert row["output"] == (record.output or "")
        assert json.loads(row["models"]) == record.models
        assert json.loads(row["quality"]) == record.quality
        assert json.loads(row["extra"]) == record.extra
        assert (row["previous_hash"], row["entry_hash"]) == (entry.previous_hash, entry.entry_hash)
    assert rows[1]["outcome"] == "refused" and rows[1]["output"] == ""

    since = io.StringIO()
    assert log.export_csv(since, since=T0 + timedelta(hours=3)) == 2
    assert [r["id"] for r in csv.DictReader(io.StringIO(since.getvalue()))] == ["3", "4"]


def test_export_json_round_trips(tmp_path: Path) -> None:
    log = _filled(tmp_path, 3)
    out = io.StringIO()
    assert log.export_json(out) == 3

    items = json.loads(out.getvalue())
    assert isinstance(items, list) and len(items) == 3
    for item, entry in zip(items, log.entries(), strict=True):
        assert item["id"] == entry.id and item["time"] == entry.time
        assert item["previous_hash"] == entry.previous_hash and item["entry_hash"] == entry.entry_hash
        fields = {k: v for k, v in item.items() if k not in ("id", "time", "previous_hash", "entry_hash")}
        assert AuditRecord(**fields) == entry.record
    assert items[1]["output"] is None and items[2]["extra"]["note"] == "héllo ✓"

    empty = io.StringIO()
    assert AuditLog(tmp_path / "empty.db").export_json(empty) == 0
    assert json.loads(empty.getvalue()) == []


# --- bad files -----------------------------------------------------------------------------------


def test_corrupt_file_is_a_one_line_audit_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    path.write_bytes(b"this is not an sqlite database, just some text that is long enough\n" * 20)
    with pytest.raises(AuditError) as caught:
        AuditLog(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert "not a readable SQLite database" in message and "move it aside" in message
