"""Append-only, hash-chained audit log of render attempts, stored in SQLite.

Every render attempt (success, refusal or failure) appends one entry, so that afterwards anyone can
answer "who rendered which avatar, under which license, with which models, and what came out" and can
tell whether that record was altered. Tamper evidence comes from three layers:

* each entry's hash covers the previous entry's hash plus its own canonical JSON payload, and the
  payload contains the entry's id and time, so editing, inserting or reordering rows breaks the chain;
* a one-row ``head`` table (entry count and last hash) is updated in the same transaction as each
  append, so deleting the *last* entries, which a chain alone cannot reveal, is detected too;
* SQLite triggers refuse UPDATE and DELETE of entries, so honest tools cannot change history by
  accident. A deliberate tamperer can drop the triggers, but the chain still exposes the change.

What the database alone cannot detect is someone who rewrites or empties the whole file consistently
(`: > audit.sqlite` reads as a new, empty log). So every append also writes the new head to append-only
*witness* files outside the database (`audit.witness` beside it, plus any `governance.audit_witnesses`,
e.g. WORM storage), and `verify_with_witnesses` fails when the log is shorter than a witness or an entry
a witness names has another hash. governance.trust adds the other anchors (review records, the library).

Several processes may append at the same time (parallel renders), so each operation opens its own
connection (safe across fork and spawn), the database runs in WAL mode with a generous busy timeout,
and each append reads the head and inserts inside one ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any, TextIO

from config.errors import DhfError
from governance.free_text import REFUSED_CATEGORIES

if TYPE_CHECKING:
    from config import Settings

OUTCOMES = ("success", "refused", "failed")
GENESIS_HASH = "0" * 64
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # fixed width, so SQL string comparison orders by time

# Separate statements, not executescript(): in Python 3.11 executescript() commits first, which would
# break the BEGIN IMMEDIATE that keeps concurrent first opens from racing each other.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS entries (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        payload TEXT NOT NULL,
        previous_hash TEXT NOT NULL,
        entry_hash TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS entries_time ON entries (time)",
    """CREATE TABLE IF NOT EXISTS head (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        count INTEGER NOT NULL,
        last_hash TEXT NOT NULL
    )""",
    f"INSERT OR IGNORE INTO head (singleton, count, last_hash) VALUES (1, 0, '{GENESIS_HASH}')",
    """CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'audit entries are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'audit entries are append-only: DELETE refused'); END""",
    # Out-of-band inserts must still extend the chain at the head; anything else is refused.
    """CREATE TRIGGER IF NOT EXISTS entries_insert_at_head BEFORE INSERT ON entries
    WHEN NEW.id IS NOT (SELECT count + 1 FROM head) OR NEW.previous_hash IS NOT (SELECT last_hash FROM head)
    BEGIN SELECT RAISE(ABORT, 'audit entries may only be appended after the head'); END""",
    """CREATE TRIGGER IF NOT EXISTS head_no_delete BEFORE DELETE ON head
    BEGIN SELECT RAISE(ABORT, 'the audit head cannot be deleted'); END""",
    """CREATE TRIGGER IF NOT EXISTS head_only_advances BEFORE UPDATE ON head
    WHEN NEW.count IS NOT OLD.count + 1
    BEGIN SELECT RAISE(ABORT, 'the audit head only advances one entry at a time'); END""",
)


class AuditError(DhfError):
    """A user-facing, one-line problem with the audit log (missing entry, unreadable database)."""

    http_status = 500  # in the API, a broken audit log is the server's problem
    code = "audit_log"


@dataclass(frozen=True)
class AuditRecord:
    """What the caller knows about one attempt (no ids, no hashes: those belong to the log)."""

    action: str  # e.g. "render"
    outcome: str  # "success" | "refused" | "failed"
    user: str  # OS user or API key id
    detail: str = ""  # one-line reason for a refusal or failure
    avatar_id: str | None = None
    avatar_version: int | None = None
    license_id: str | None = None
    license_sha256: str | None = None
    inputs_sha256: str | None = None  # hash of text, language, voice, settings
    models: dict[str, str] = field(default_factory=dict)  # model name -> sha256
    output: str | None = None
    output_sha256: str | None = None
    quality: dict[str, float] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)  # anything else JSON-serializable

    def __post_init__(self) -> None:
        # Validate here rather than inside append(): a bad record should fail at the caller, not
        # half-way through a write transaction that other processes are waiting on.
        if self.outcome not in OUTCOMES:
            raise ValueError(f"audit outcome must be one of {', '.join(OUTCOMES)}, not {self.outcome!r}")
        if not isinstance(self.action, str) or not self.action:
            raise ValueError("audit action must be a non-empty string, e.g. 'render'")
        if not isinstance(self.user, str):
            raise ValueError(f"audit user must be a string, not {type(self.user).__name__}")
        if any(unicodedata.category(char) in REFUSED_CATEGORIES for char in self.user):
            raise ValueError(f"audit user {self.user!r} contains a control character (it would forge log lines)")
        try:
            _canonical(record_fields(self))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"audit record is not JSON-serializable: {exc}") from exc


@dataclass(frozen=True)
class AuditEntry:
    """One stored attempt: the caller's record plus the log's id, time and chain hashes."""

    id: int
    time: str  # ISO-8601 UTC, e.g. 2025-01-31T12:00:00Z, set by append()
    record: AuditRecord
    previous_hash: str  # GENESIS_HASH for the first entry
    entry_hash: str

    def as_dict(self) -> dict[str, Any]:
        """Flat view (id, time, every record field, hashes), the shape of exports."""
        return {"id": self.id, "time": self.time, **record_fields(self.record)} | {
            "previous_hash": self.previous_hash,
            "entry_hash": self.entry_hash,
        }


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of walking the chain; `reason` names the first problem found, in one line."""

    ok: bool
    checked: int
    first_bad: int | None  # id of the first bad (or first missing) entry
    reason: str


RECORD_FIELDS = tuple(f.name for f in fields(AuditRecord))
EXPORT_COLUMNS = ("id", "time", *RECORD_FIELDS, "previous_hash", "entry_hash")


def record_fields(record: AuditRecord) -> dict[str, Any]:
    """The record's fields as a plain dict (dicts copied, so callers cannot mutate the record)."""
    return {name: _copy(getattr(record, name)) for name in RECORD_FIELDS}


def entry_hash(previous_hash: str, payload: str) -> str:
    """sha256 of the previous hash followed by this entry's canonical payload."""
    return hashlib.sha256((previous_hash + payload).encode("utf-8")).hexdigest()


def entries_text(count: int) -> str:
    """'1 entry', '2 entries': how counts of entries read in messages."""
    return f"{count} {'entry' if count == 1 else 'entries'}"


def format_time(moment: datetime) -> str:
    """UTC, whole seconds, 'Z' suffix; naive datetimes are taken as UTC (the log never uses local time)."""
    return _as_utc(moment).strftime(TIME_FORMAT)


_SELECT = "SELECT id, time, payload, previous_hash, entry_hash FROM entries"
WITNESS_SUFFIX = ".witness"
SEARCHABLE = ("action", "outcome", "avatar_id")  # payload keys with an expression index (fast lookups)


def default_witness(path: Path) -> Path:
    """The witness every log has: `audit.witness` beside `audit.sqlite` (it cannot be switched off)."""
    return Path(path).with_suffix(WITNESS_SUFFIX)


class AuditLog:
    """The audit log in one SQLite file. Holds only paths: every operation opens its own connection.

    `witnesses` are extra append-only head files (config `governance.audit_witnesses`); the default
    witness beside the database is always written."""

    def __init__(self, path: Path, witnesses: tuple[Path, ...] = ()) -> None:
        self.path = Path(path)
        self.witnesses = (default_witness(self.path), *(Path(w) for w in witnesses if Path(w) != default_witness(path)))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AuditError(f"cannot create the audit log folder {self.path.parent}: {exc.strerror}") from exc
        with self._connect() as db:
            _ensure_wal(db)
            db.execute("BEGIN IMMEDIATE")
            try:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise AuditError(
                        f"the audit log {self.path} has schema version {version}, newer than this dhf "
                        f"understands ({SCHEMA_VERSION}); upgrade dhf"
                    )
                for statement in _SCHEMA:
                    db.execute(statement)
                for key in SEARCHABLE:
                    db.execute(
                        f"CREATE INDEX IF NOT EXISTS entries_{key} ON entries (json_extract(payload, '$.{key}'))"
                    )
                if version < SCHEMA_VERSION:
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                db.rollback()
                raise
            db.commit()

    # --- writing -------------------------------------------------------------------------------

    def append(self, record: AuditRecord, now: datetime | None = None) -> AuditEntry:
        """Store one attempt at the end of the chain and return it with its id, time and hashes."""
        stamp = format_time(now if now is not None else datetime.now(UTC))
        with self._connect() as db:
            # IMMEDIATE takes the write lock before reading the head, so two processes can never both
            # chain onto the same previous hash; the busy timeout makes the loser wait, not fail.
            db.execute("BEGIN IMMEDIATE")
            try:
                count, previous = _read_head(db)
                entry_id = count + 1
                payload = _payload(entry_id, stamp, record)
                digest = entry_hash(previous, payload)
                db.execute(
                    "INSERT INTO entries (id, time, payload, previous_hash, entry_hash) VALUES (?, ?, ?, ?, ?)",
                    (entry_id, stamp, payload, previous, digest),
                )
                db.execute("UPDATE head SET count = ?, last_hash = ? WHERE singleton = 1", (entry_id, digest))
            except BaseException:
                db.rollback()
                raise
            db.commit()
        # After the commit, so a witness never names an entry the log does not have (readers read the
        # witnesses first, then the log). Lines may land out of order between processes; readers take them all.
        _witness(self.witnesses, entry_id, digest, stamp)
        return AuditEntry(id=entry_id, time=stamp, record=record, previous_hash=previous, entry_hash=digest)

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditLog:
        """The configured log (`<home>/audit/audit.sqlite`) with its configured witnesses."""
        return cls(settings.paths.audit_db, tuple(settings.governance.audit_witnesses))

    # --- reading -------------------------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        """(entry count, last entry hash): worth copying elsewhere, since it pins the whole history."""
        with self._connect() as db:
            return _read_head(db)

    def entries(self, since: datetime | date | None = None, until: datetime | date | None = None) -> list[AuditEntry]:
        """Entries in id order, optionally those with since <= time < until (dates mean 00:00 UTC)."""
        query, params = "SELECT id, time, payload, previous_hash, entry_hash FROM entries", []
        conditions = []
        if since is not None:
            conditions.append("time >= ?")
            params.append(_bound(since))
        if until is not None:
            conditions.append("time < ?")
            params.append(_bound(until))
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY id", params).fetchall()
        return [_entry(row) for row in rows]

    def get(self, entry_id: int) -> AuditEntry:
        """One entry by id; a missing id is a user error, not an exception trace."""
        with self._connect() as db:
            row = db.execute(
                "SELECT id, time, payload, previous_hash, entry_hash FROM entries WHERE id = ?", (entry_id,)
            ).fetchone()
        if row is None:
            raise AuditError(f"audit entry {entry_id} not found; see `dhf audit list`")
        return _entry(row)

    def find(self, action: str, **extra: object) -> list[AuditEntry]:
        """Entries of one action whose `extra` has these values (e.g. review="ab12"), oldest first,
        each one's own hash re-checked (an edited payload is an AuditError, never a trusted record).
        Callers that act on the answer verify the whole chain first (governance.trust)."""
        query = f"{_SELECT} WHERE json_extract(payload, '$.action') = ?"
        params: list[object] = [action]
        for key, value in extra.items():
            query += f" AND json_extract(payload, '$.extra.{key}') = ?"
            params.append(value)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY id", params).fetchall()
        return [_checked_entry(row) for row in rows]

    def library_changes(self, avatar_id: str) -> list[AuditEntry]:
        """Every successful library change (`avatar.*`) of one avatar, oldest first, hashes re-checked:
        the avatar's current version and revocation are what these say, whatever the files say."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, time, payload, previous_hash, entry_hash FROM entries "
                "WHERE json_extract(payload, '$.avatar_id') = ? AND json_extract(payload, '$.action') LIKE 'avatar.%' "
                "AND json_extract(payload, '$.outcome') = 'success' ORDER BY id",
                (avatar_id,),
            ).fetchall()
        return [_checked_entry(row) for row in rows]

    def verify_with_witnesses(self) -> VerifyResult:
        """`verify`, then every witness line checked against the log: a log shorter than a witness
        (emptied, replaced, truncated together with its head) or an entry with another hash fails."""
        lines = []
        for path in self.witnesses:  # read before the log: every line names an entry already committed
            lines.extend((path, entry, digest) for entry, digest in read_witness(path))
        rows, head = self._snapshot()
        result = _verify_rows(rows, head)
        if not result.ok or not lines:
            return result
        hashes = {row[0]: row[4] for row in rows or ()}
        for path, entry, digest in sorted(lines, key=lambda line: -line[1]):
            if entry > result.checked:
                return _bad(
                    result.checked,
                    result.checked + 1,
                    f"the log has {result.checked} entries but the witness {path} records entry {entry}: entries were "
                    "removed or the log was replaced; restore it from a backup and keep this file as evidence",
                )
            if hashes.get(entry) != digest:
                return _bad(
                    result.checked,
                    entry,
                    f"entry {entry} differs from the hash the witness {path} recorded (the log was rewritten); restore "
                    "it from a backup and keep this file as evidence",
                )
        return result

    def require_intact(self) -> VerifyResult:
        """AuditError unless the chain and its witnesses verify: decisions read from a log that was
        tampered with would be decisions an attacker made."""
        result = self.verify_with_witnesses()
        if not result.ok:
            raise AuditError(
                f"the audit log {self.path} fails verification ({result.reason}); nothing that depends on it is "
                "allowed until it is restored (`dhf audit verify`)"
            )
        return result

    def verify(self) -> VerifyResult:
        """Walk the whole chain and compare it with the head; report the first problem found."""
        rows, head = self._snapshot()
        return _verify_rows(rows, head)

    def _snapshot(self) -> tuple[list[tuple] | None, tuple[int, str] | None]:
        """Every entry row and the head, read in one transaction: consistent while others append."""
        with self._connect() as db:
            db.execute("BEGIN")
            try:
                head = _query_or_none(db, "SELECT count, last_hash FROM head WHERE singleton = 1")
                rows = _query_or_none(db, f"{_SELECT} ORDER BY id")
            finally:
                db.rollback()
        return rows, (head[0] if head else None)

    # --- exporting -----------------------------------------------------------------------------

    def export_csv(
        self, out: TextIO, *, since: datetime | date | None = None, until: datetime | date | None = None
    ) -> int:
        """Write a header row and one row per entry; dicts become canonical JSON, None an empty cell."""
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        rows = 0
        for entry in self.entries(since, until):
            flat = entry.as_dict()
            writer.writerow({key: _csv_cell(value) for key, value in flat.items()})
            rows += 1
        return rows

    def export_json(
        self, out: TextIO, *, since: datetime | date | None = None, until: datetime | date | None = None
    ) -> int:
        """Write a JSON array of flat entries (the same keys as the CSV header); returns the count."""
        items = [entry.as_dict() for entry in self.entries(since, until)]
        json.dump(items, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return len(items)

    # --- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh autocommit connection (transactions are explicit) whose SQLite errors become AuditError."""
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise AuditError(
                f"cannot open the audit log {self.path}: {exc}; check the path and its permissions"
            ) from exc
        try:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            yield db
        except sqlite3.DatabaseError as exc:
            raise AuditError(_database_problem(self.path, exc)) from exc
        finally:
            db.close()


# --- helpers -------------------------------------------------------------------------------------


def _verify_rows(rows: list[tuple] | None, head: tuple[int, str] | None) -> VerifyResult:
    """The checks behind AuditLog.verify, in the order that names the most specific cause first."""
    if rows is None:
        return _bad(0, 1, "the audit entries table is missing (dropped)")
    previous = GENESIS_HASH
    checked = 0
    for expected, (row_id, row_time, payload, previous_hash, stored_hash) in enumerate(rows, start=1):
        if row_id != expected:
            if isinstance(row_id, int) and row_id > expected:
                gap = row_id - expected
                what = f"entry {expected} is" if gap == 1 else f"entries {expected}-{row_id - 1} are"
                return _bad(checked, expected, f"{what} missing (deleted)")
            return _bad(checked, row_id, f"entry {row_id}: unexpected id (expected {expected}; inserted)")
        if previous_hash != previous:
            return _bad(checked, row_id, f"entry {row_id}: chain broken (reordered or inserted)")
        if not isinstance(payload, str) or entry_hash(previous_hash, payload) != stored_hash:
            return _bad(checked, row_id, f"entry {row_id}: content does not match its hash (edited)")
        try:
            content = json.loads(payload)
        except ValueError:
            return _bad(checked, row_id, f"entry {row_id}: hashed content is not valid JSON (forged)")
        if not isinstance(content, dict) or content.get("id") != row_id:
            return _bad(checked, row_id, f"entry {row_id}: stored id does not match its hashed content (moved)")
        if content.get("time") != row_time:
            return _bad(checked, row_id, f"entry {row_id}: stored time does not match its hashed content (edited)")
        previous = stored_hash
        checked += 1
    if head is None:
        return _bad(checked, None, "the audit head record is missing (deleted); the log cannot show truncation")
    head_count, head_hash = head
    if head_count > checked:
        missing = head_count - checked
        what = "the last entry is" if missing == 1 else f"the last {missing} entries are"
        return _bad(checked, checked + 1, f"{what} missing (deleted after entry {checked})")
    if head_count < checked:
        return _bad(
            checked,
            head_count + 1,
            f"entry {head_count + 1}: not recorded in the head (added outside the audit log)",
        )
    if head_hash != previous:
        return _bad(checked, checked or None, f"the head hash does not match entry {checked} (rewritten)")
    return VerifyResult(ok=True, checked=checked, first_bad=None, reason=f"{entries_text(checked)} verified")


def _ensure_wal(db: sqlite3.Connection) -> None:
    """Switch the file to WAL, which lets readers (verify, list) run while renders append.

    The mode is stored in the file, so it is checked first to avoid the exclusive lock a switch needs.
    SQLite does not apply the busy timeout to that switch (it fails at once with "database is locked"
    while another process is creating the same new log), hence the explicit retry.
    """
    deadline = monotonic() + BUSY_TIMEOUT_S
    while True:
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            return
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or monotonic() > deadline:
                raise
            sleep(0.02)


def _query_or_none(db: sqlite3.Connection, query: str) -> list[tuple] | None:
    """Rows, or None when the table itself is gone: a dropped table is evidence for verify, not a crash."""
    try:
        return db.execute(query).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise


def _bad(checked: int, first_bad: int | None, reason: str) -> VerifyResult:
    return VerifyResult(ok=False, checked=checked, first_bad=first_bad, reason=reason)


def _read_head(db: sqlite3.Connection) -> tuple[int, str]:
    row = db.execute("SELECT count, last_hash FROM head WHERE singleton = 1").fetchone()
    if row is None:
        raise AuditError("the audit head record is missing (tampered); run `dhf audit verify` and keep the file")
    return int(row[0]), str(row[1])


def _payload(entry_id: int, stamp: str, record: AuditRecord) -> str:
    return _canonical({"id": entry_id, "time": stamp, **record_fields(record)})


def _canonical(value: Any) -> str:
    # One byte-exact serialisation, so the same content always hashes the same way.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _checked_entry(row: tuple) -> AuditEntry:
    if entry_hash(row[3], row[2]) != row[4]:
        raise AuditError(f"audit entry {row[0]} was altered (its hash does not match); run `dhf audit verify`")
    return _entry(row)


def read_witness(path: Path) -> list[tuple[int, str]]:
    """(entry, hash) of every line of a witness file; a missing file has none. A line that is not
    ours is an AuditError: a witness is evidence, and unreadable evidence is not silently skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise AuditError(
            f"cannot read the audit witness {path}: {exc.strerror}; check the path and permissions"
        ) from exc
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            lines.append((int(item["entry"]), str(item["hash"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(
                f"the audit witness {path} line {number} is not a witness line ({exc}); it was edited: keep it as "
                "evidence and restore it from a backup"
            ) from exc
    return lines


def _witness(paths: tuple[Path, ...], entry_id: int, digest: str, stamp: str) -> None:
    """One line per entry, appended (O_APPEND: whole lines, also on WORM-like append-only storage)."""
    line = (_canonical({"entry": entry_id, "hash": digest, "time": stamp}) + "\n").encode("utf-8")
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(descriptor, line)
            finally:
                os.close(descriptor)
        except OSError as exc:
            raise AuditError(
                f"audit entry {entry_id} was stored but its witness {path} could not be written ({exc.strerror}); "
                "fix the path (governance.audit_witnesses) and its permissions"
            ) from exc


def _entry(row: tuple) -> AuditEntry:
    row_id, row_time, payload, previous_hash, stored_hash = row
    try:
        content = json.loads(payload)
        # Unknown keys are ignored and missing ones take defaults, so older and newer logs stay readable.
        record = AuditRecord(**{name: content[name] for name in RECORD_FIELDS if name in content})
    except (TypeError, ValueError) as exc:
        raise AuditError(f"audit entry {row_id} is unreadable ({exc}); run `dhf audit verify`") from exc
    return AuditEntry(id=row_id, time=row_time, record=record, previous_hash=previous_hash, entry_hash=stored_hash)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _bound(moment: datetime | date) -> str:
    """A filter bound in the stored time format. Entry times are whole seconds, so a bound with a
    fraction is rounded up: then `time >= since` and `time < until` keep their exact meaning."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    moment = _as_utc(moment)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime(TIME_FORMAT)


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict):
        return _canonical(value)
    return value


def _database_problem(path: Path, exc: sqlite3.DatabaseError) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "not a database" in text or "malformed" in text or "encrypted" in text:
        return (
            f"the audit log {path} is not a readable SQLite database ({text}); "
            "move it aside (keep it as evidence) and a new log will be started"
        )
    if "disk is full" in text or "disk I/O error" in text:
        return f"the disk holding the audit log {path} is full or failing ({text}); free space (df -h) and re-run"
    if "locked" in text or "busy" in text:
        return (
            f"the audit log {path} stayed locked for {BUSY_TIMEOUT_S:.0f} s ({text}); retry when other renders finish"
        )
    return f"the audit log {path} failed: {text}; run `dhf audit verify`"
