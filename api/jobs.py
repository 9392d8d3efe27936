"""Generation jobs of the API, persisted in SQLite so that a restarted server loses none.

A job is queued, running, succeeded or failed. Progress is written as frames render. When the
server starts, jobs a previous process left queued or running are queued again ("resumed": the
render's finished stages are cached, and outputs are only renamed into place when complete); a job
that was already resumed once and interrupted again is marked failed with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.store import connect

MAX_ATTEMPTS = 2
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        key_id TEXT NOT NULL,
        status TEXT NOT NULL,
        progress REAL NOT NULL DEFAULT 0,
        request TEXT NOT NULL,
        result TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        note TEXT,
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status)",
)


@dataclass(frozen=True)
class ActiveLimits:
    """The most active (queued + running) jobs one API key, and the whole server, may have."""

    per_key: int
    total: int


class JobLimitError(Exception):
    """A new job would exceed an active-job limit; `scope` is 'key' or 'server'."""

    def __init__(self, scope: str, limit: int) -> None:
        super().__init__(f"{scope} limit of {limit} active jobs reached")
        self.scope, self.limit = scope, limit


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Job:
    id: str
    kind: str  # video | batch
    key_id: str
    status: str  # queued | running | succeeded | failed
    progress: float
    request: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    note: str | None
    created: str
    updated: str

    def public(self) -> dict[str, Any]:
        """What the API returns: no internal paths."""
        result = dict(self.result or {})
        result.pop("paths", None)
        return {
            "job_id": self.id,
            "kind": self.kind,
            "status": self.status,
            "progress": round(self.progress, 3),
            "result": result or None,
            "error": self.error,
            "note": self.note,
            "created": self.created,
            "updated": self.updated,
        }


class JobStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def create(self, kind: str, key_id: str, request: dict[str, Any], limits: ActiveLimits | None = None) -> Job:
        """Store a queued job; with `limits`, only if the key and the server are below them (else
        `JobLimitError`). Why one transaction: a count read before the insert lets 50 parallel requests
        all see 0 active jobs and all be queued; BEGIN IMMEDIATE takes SQLite's write lock first, so
        each request counts the jobs of every request before it (across threads and processes)."""
        job_id = secrets.token_hex(16)
        now = _now()
        with connect(self.path, _SCHEMA) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                if limits is not None:
                    _check_room(db, key_id, limits)
                db.execute(
                    "INSERT INTO jobs (id, kind, key_id, status, request, created, updated) "
                    "VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                    (job_id, kind, key_id, json.dumps(request, ensure_ascii=False), now, now),
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        with connect(self.path, _SCHEMA) as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def recent(self, key_id: str | None, kinds: tuple[str, ...] = ("video", "batch"), limit: int = 50) -> list[Job]:
        """The newest jobs of one key (or of every key with `None`, for admin views), newest first."""
        marks = ",".join("?" * len(kinds))
        where, params = f"kind IN ({marks})", [*kinds]
        if key_id is not None:
            where, params = f"{where} AND key_id = ?", [*params, key_id]
        with connect(self.path, _SCHEMA) as db:
            rows = db.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY created DESC LIMIT ?", (*params, limit))
            return [_job(row) for row in rows]

    def start(self, job_id: str) -> None:
        with connect(self.path, _SCHEMA) as db:
            db.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, updated = ? WHERE id = ?",
                (_now(), job_id),
            )

    def progress(self, job_id: str, value: float) -> None:
        with connect(self.path, _SCHEMA) as db:
            db.execute("UPDATE jobs SET progress = ?, updated = ? WHERE id = ?", (value, _now(), job_id))

    def finish(self, job_id: str, result: dict[str, Any]) -> None:
        with connect(self.path, _SCHEMA) as db:
            db.execute(
                "UPDATE jobs SET status = 'succeeded', progress = 1, result = ?, error = NULL, updated = ? "
                "WHERE id = ?",
                (json.dumps(result, ensure_ascii=False, default=str), _now(), job_id),
            )

    def fail(self, job_id: str, error: str, result: dict[str, Any] | None = None) -> None:
        with connect(self.path, _SCHEMA) as db:
            db.execute(
                "UPDATE jobs SET status = 'failed', error = ?, result = COALESCE(?, result), updated = ? WHERE id = ?",
                (error[:500], json.dumps(result, default=str) if result else None, _now(), job_id),
            )

    def active_count(self, key_id: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
        with connect(self.path, _SCHEMA) as db:
            if key_id is None:
                return db.execute(query).fetchone()[0]
            return db.execute(query + " AND key_id = ?", (key_id,)).fetchone()[0]

    def counts(self) -> dict[tuple[str, str], int]:
        with connect(self.path, _SCHEMA) as db:
            rows = db.execute("SELECT kind, status, COUNT(*) AS n FROM jobs GROUP BY kind, status").fetchall()
        return {(row["kind"], row["status"]): row["n"] for row in rows}

    def recover(self) -> list[Job]:
        """After a restart: queue again what a previous process left unfinished (or fail it)."""
        resumed = []
        with connect(self.path, _SCHEMA) as db:
            rows = db.execute("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created").fetchall()
            for row in rows:
                if row["attempts"] >= MAX_ATTEMPTS:
                    db.execute(
                        "UPDATE jobs SET status = 'failed', error = ?, updated = ? WHERE id = ?",
                        ("the server stopped during this job twice; submit it again", _now(), row["id"]),
                    )
                    continue
                note = "resumed after a server restart" if row["status"] == "running" else row["note"]
                db.execute(
                    "UPDATE jobs SET status = 'queued', note = ?, updated = ? WHERE id = ?", (note, _now(), row["id"])
                )
                resumed.append(row["id"])
        return [self.get(job_id) for job_id in resumed]


def _check_room(db, key_id: str, limits: ActiveLimits) -> None:
    """Inside the caller's write transaction: refuse when the key or the server is at its limit."""
    active = "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
    if db.execute(active + " AND key_id = ?", (key_id,)).fetchone()[0] >= limits.per_key:
        raise JobLimitError("key", limits.per_key)
    if db.execute(active).fetchone()[0] >= limits.total:
        raise JobLimitError("server", limits.total)


def _job(row) -> Job:
    return Job(
        row["id"],
        row["kind"],
        row["key_id"],
        row["status"],
        float(row["progress"]),
        json.loads(row["request"]),
        json.loads(row["result"]) if row["result"] else None,
        row["error"],
        int(row["attempts"]),
        row["note"],
        row["created"],
        row["updated"],
    )
