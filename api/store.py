"""A small SQLite helper shared by the API's key and job stores: one connection per operation (safe
across threads and uvicorn workers), WAL, a busy timeout, and explicit transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from config.errors import DhfError

BUSY_TIMEOUT_S = 30.0


class StoreError(DhfError):
    """The API's database cannot be opened or used; the message names the file."""

    http_status = 500
    code = "job_store"


@contextmanager
def connect(path: Path, schema: tuple[str, ...]) -> Iterator[sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}; check the path and its permissions") from exc
    try:
        db.row_factory = sqlite3.Row
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        for statement in schema:
            db.execute(statement)
        yield db
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"database problem in {path}: {exc}") from exc
    finally:
        db.close()
