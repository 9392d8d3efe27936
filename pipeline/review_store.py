"""Videos held for human review: where their files wait and the record of each review.

Why the files wait beside the output (hidden, `.<name>.<id>.review.mp4`): approval must publish
atomically, and a rename is atomic only on one file system; the requested output folder is the one
place certain to be on the output's file system. The records (one JSON file per review, under
`<home>/reviews/`) are what `dhf review`, `/v1/reviews` and the paused Prefect flow run read; the
decisions themselves are audit-log entries (pipeline.review), the records only cache their state.

This module only holds videos (pipeline.run calls `hold_for_review` instead of publishing);
deciding is pipeline.review, which may import the batch code that imports pipeline.run.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from config import Settings
from config.errors import DhfError, OutputPathError
from config.files import directory_lock, file_sha256, write_text_atomic
from media.video import extract_frame
from pipeline.report import RenderReport, ReviewPart
from pipeline.request import ValidatedRequest

ReviewState = Literal["pending", "approved", "rejected"]
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class ReviewError(DhfError):
    """A review cannot be found or decided (unknown id, already decided, timed out)."""

    http_status = 409
    code = "review"


class ReviewForbiddenError(ReviewError):
    """The actor may not make this decision (separation of duties)."""

    http_status = 403
    code = "separation_of_duties"


class ReviewNotFoundError(ReviewError):
    http_status = 404
    code = "review_not_found"


class ReviewRecord(BaseModel):
    """One video waiting for (or decided by) a person. Paths are server paths; the API strips them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    state: ReviewState
    created: str
    deadline: str
    output: str  # where approval publishes the video
    staged: dict[str, str]  # video, srt, vtt, report, thumbnail → hidden files beside the output
    requested_by: str
    avatar_id: str
    language: str
    text: str  # the first 300 characters, for the reviewer
    content_id: str
    sha256: str
    frames: int
    duration_s: float
    quality: dict[str, float]
    quality_passed: bool
    batch: str | None = None  # "<script name>/<item> [<lang>]" for a batch video
    flow_run_id: str | None = None  # the paused Prefect flow run waiting for this decision, if any
    decided_by: str | None = None
    comment: str = ""
    decided: str | None = None
    reason: str = ""  # "timed out" for a review nobody decided in time
    audit_entry: int | None = None

    def public(self) -> dict:
        """What the REST API shows: no server paths."""
        return self.model_dump(exclude={"staged", "output"}) | {"output": Path(self.output).name}


def now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.UTC)


def reviews_folder(settings: Settings) -> Path:
    return settings.paths.home / "reviews"


def staged_paths(output: Path, review_id: str) -> dict[str, str]:
    """The hidden files of a held video, beside its output (same file system: approval is a rename)."""
    output = Path(output)
    base = output.with_name(f".{output.stem}.{review_id}.review")
    return {
        "video": f"{base}.mp4",
        "srt": f"{base}.srt",
        "vtt": f"{base}.vtt",
        "report": f"{base}.report.json",
        "thumbnail": f"{base}.jpg",
    }


class ReviewStore:
    """The review records under `<home>/reviews/<id>.json`; changes under one folder lock."""

    def __init__(self, settings: Settings) -> None:
        self.folder = reviews_folder(settings)

    def path(self, review_id: str) -> Path:
        if not review_id.isalnum() or len(review_id) > 32:
            raise ReviewNotFoundError(f"no review {review_id!r}; `dhf review list` shows the pending ones")
        return self.folder / f"{review_id}.json"

    def get(self, review_id: str) -> ReviewRecord:
        path = self.path(review_id)
        if not path.is_file():
            raise ReviewNotFoundError(f"no review {review_id!r}; `dhf review list` shows the pending ones")
        return ReviewRecord.model_validate_json(path.read_text(encoding="utf-8"))

    def save(self, record: ReviewRecord) -> ReviewRecord:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path(record.id), record.model_dump_json(indent=2))
        return record

    def all(self) -> list[ReviewRecord]:
        if not self.folder.is_dir():
            return []
        records = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                records.append(ReviewRecord.model_validate_json(path.read_text(encoding="utf-8")))
            except (OSError, ValidationError):
                continue  # a half-copied or foreign file: not a review
        return sorted(records, key=lambda record: (record.created, record.id))

    def pending_for(self, output: Path) -> list[ReviewRecord]:
        target = str(Path(output))
        return [record for record in self.all() if record.state == "pending" and record.output == target]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One decision at a time: two reviewers approving at once must not both publish."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with directory_lock(self.folder):
            yield


def review_required(validated: ValidatedRequest, settings: Settings) -> bool:
    """The settings (`governance.review`, which a batch script's `review: required` sets) or the
    avatar's licence require a person to approve this video."""
    return settings.governance.review == "required" or validated.license.review_required


def hold_for_review(
    validated: ValidatedRequest,
    settings: Settings,
    moves: tuple[tuple[Path, Path], ...],
    captions: dict[str, Path],
    build: Callable[[dict[str, Path]], RenderReport],
    quality: dict[str, float],
) -> tuple[Path, RenderReport]:
    """Instead of publishing: move the judged video and its captions to hidden review names beside
    the output, write a pending report and a thumbnail, and record the review. Nothing appears under
    the requested name until a person approves it."""
    output = Path(validated.request.output)
    review_id = secrets.token_hex(6)
    staged = staged_paths(output, review_id)
    final_captions = {name: Path(staged[name]) for name in captions}
    with directory_lock(output.parent):
        try:
            for source, target in moves:
                os.replace(source, staged["video"] if target == output else target)
            for name, source in captions.items():
                os.replace(source, final_captions[name])
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise OutputPathError(f"could not stage {output} for review ({reason}); check the folder") from exc
    video = Path(staged["video"])
    sha = file_sha256(video)
    created = dt.datetime.now(dt.UTC)
    deadline = created + dt.timedelta(seconds=settings.governance.review_timeout_seconds)
    part = ReviewPart(id=review_id, state="pending", deadline=deadline.strftime(TIME_FORMAT))
    report = build({name: Path(staged[name]) for name in captions})
    # The report of a held video: not published yet, but its hash is the one approval will publish.
    report = report.model_copy(update={"output": str(output), "published": False, "sha256": sha, "review": part})
    report.save(Path(staged["report"]))
    made = extract_frame(video, report.video.duration_s / 2, Path(staged["thumbnail"]))
    if not made:
        staged.pop("thumbnail")
    record = ReviewRecord(
        id=review_id,
        state="pending",
        created=created.strftime(TIME_FORMAT),
        deadline=part.deadline,
        output=str(output),
        staged={name: path for name, path in staged.items() if name in ("video", "report", "thumbnail", *captions)},
        requested_by=report.user,
        avatar_id=validated.avatar.avatar_id,
        language=validated.request.language,
        text=validated.request.text[:300],
        content_id=report.provenance.content_id,
        sha256=sha,
        frames=report.frames,
        duration_s=report.video.duration_s,
        quality=quality,
        quality_passed=report.quality.passed,
    )
    ReviewStore(settings).save(record)
    return Path(staged["report"]), report
