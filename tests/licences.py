"""A licence record with its consent document, as a compliance officer would write it for a test person."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import yaml


def write_license(folder: Path, avatar_id: str, languages: tuple[str, ...] = ("en", "zh"), **overrides) -> Path:
    """`folder/license.yaml` (+ `consent.md`) allowing web customer-service videos in `languages` from 30
    days ago for a year; `overrides` replace any field (an expired date, a revoked flag, a bad scope)."""
    folder.mkdir(parents=True, exist_ok=True)
    consent = folder / "consent.md"
    consent.write_text(f"{avatar_id} consents to web customer-service videos.\n")
    today = dt.date.today()
    record = {
        "license_id": f"{avatar_id}-lic",
        "avatar_id": avatar_id,
        "holder": "Test Person",
        "granted_by": "Compliance",
        "consent_document": "consent.md",
        "consent_sha256": hashlib.sha256(consent.read_bytes()).hexdigest(),
        "scope": {"languages": list(languages), "channels": ["web"], "purposes": ["customer-service"]},
        "valid_from": str(today - dt.timedelta(days=30)),
        "valid_until": str(today + dt.timedelta(days=365)),
        "revoked": False,
        **overrides,
    }
    path = folder / "license.yaml"
    path.write_text(yaml.safe_dump(record))
    return path
