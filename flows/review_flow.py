"""A held video's review inside its Prefect flow run: the run pauses with a typed input form.

Why the pause lives in the render's own flow run (and only with `dhf render --wait-review`): Prefect
resumes a paused run only in the process that paused it (`pause_flow_run`; `suspend_flow_run` needs a
deployment and a worker to start it again), so a paused run is a process waiting. `dhf render` must
not sit in a terminal for the review's 72 h by default, so without `--wait-review` the run completes
"held for review" (its summary artifact shows the thumbnail and scores) and the decision is made with
`dhf review` or `/v1/reviews`. With it, the run stays Paused, in a state named `Held`, in the UI
until a person decides there (the form has no default decision: choosing is the review), with
`dhf review approve|reject` or through the API (both resume the run with the decision they made),
or until the review's deadline (then rejected as timed out). An approved run ends Completed; a
rejected one ends Failed in a state named `Rejected` (nothing was published).

Whichever path decides, `pipeline.review.decide` publishes or removes the video and writes the audit
entry; the form only collects the decision.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Literal
from uuid import UUID

from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput, keyset_from_paused_state
from prefect.input.run_input import run_input_subclass_from_type
from prefect.runtime import flow_run
from prefect.states import Failed, Paused, State
from prefect.utilities.engine import propose_state_sync
from pydantic import Field

from config import Settings
from flows.batch_task import image_data_url
from flows.prefect_env import configured_api_url
from pipeline.review import Decider, attach_flow_run, decide, expire_overdue
from pipeline.review_store import ReviewError, ReviewRecord, ReviewStore, parse_time
from pipeline.run import RenderResult

PREFECT_UI_ACTOR = "prefect-ui"
HELD = "Held"  # the name of the Paused state of a run waiting for its review
REJECTED = "Rejected"  # the name of the Failed state of a run whose video a review rejected
POLL_S = 2  # how soon a decision made in the UI (or by `dhf review`) reaches the waiting run


class ReviewInput(RunInput):
    """The form the Prefect UI shows on the paused run ("Resume"): the same fields as
    `POST /v1/reviews/{id}` and `dhf review approve|reject`."""

    decision: Literal["approve", "reject"] = Field(description="approve: publish the video; reject: remove it")
    reviewer: str = Field(min_length=1, max_length=100, description="your name, as the audit log records it")
    comment: str = Field(default="", max_length=2000, description="why (recorded in the audit log)")


def review_markdown(record: ReviewRecord) -> str:
    """What the reviewer sees: the thumbnail (embedded, as the UI cannot load files), the quality
    scores, the text and where the video is."""
    thumbnail = Path(record.staged.get("thumbnail", ""))
    image = f"![thumbnail of {record.id}]({image_data_url(thumbnail)})\n\n" if thumbnail.is_file() else ""
    scores = "\n".join(f"| {name} | {value:g} |" for name, value in record.quality.items())
    return (
        f"### Review {record.id}: {record.avatar_id} [{record.language}], {record.duration_s:.1f} s\n\n{image}"
        f"> {record.text}\n\n"
        f"| quality ({'passed' if record.quality_passed else 'FAILED'}) | score |\n|---|---|\n{scores}\n\n"
        f"- video (held): `{record.staged.get('video', '-')}`, over the API: `GET /v1/reviews/{record.id}/video`\n"
        f"- publishes to: `{record.output}` on approval; decide by {record.deadline}\n"
        f"- or: `dhf review approve {record.id} --reviewer NAME` / `dhf review reject {record.id}`\n"
    )


def wait_for_review(settings: Settings, review_id: str, logger: logging.Logger | logging.LoggerAdapter) -> ReviewRecord:
    """Pause this flow run until the review is decided; returns the decided record."""
    record = attach_flow_run(settings, review_id, str(flow_run.get_id()))
    markdown = review_markdown(record)
    create_markdown_artifact(key="review", markdown=markdown, description=f"Review {review_id}")
    remaining = parse_time(record.deadline) - dt.datetime.now(dt.UTC)
    timeout = max(1, int(remaining.total_seconds()) + 1)
    logger.info(f"waiting for review {review_id}: resume this run with a decision, or `dhf review approve {review_id}`")
    # no initial decision: a default would be pre-selected and the field shown "(Optional)"
    form = ReviewInput.with_initial_data(description=markdown)
    try:
        answer = hold_for_input(form, timeout=timeout, poll_interval=POLL_S, key=f"review-{review_id}")
    except FlowPauseTimeout:
        expire_overdue(settings)
        return ReviewStore(settings).get(review_id)
    try:
        # Prefect's UI does not authenticate who fills in the form: the actor says where it came from.
        decided = decide(
            settings, review_id, answer.decision, Decider(PREFECT_UI_ACTOR, answer.reviewer), answer.comment
        )
    except ReviewError as exc:  # decided elsewhere (CLI or API), which resumed this run to say so
        decided = ReviewStore(settings).get(review_id)
        if decided.state == "pending":  # refused (the form's decision breaks a rule): the Logs tab says why
            logger.error(f"the decision from the form was refused: {exc}")
    logger.info(
        f"review {review_id} {decided.state} by {decided.decided_by}"
        + (f": {decided.comment}" if decided.comment else "")
    )
    return decided


def hold_for_input(form: type[RunInput], timeout: int, poll_interval: int, key: str) -> RunInput:
    """Prefect's `pause_flow_run(wait_for_input=form)`, but the Paused state is named `Held`, so the
    UI and the API say why the run waits. The same steps as Prefect's: propose the Paused state with
    its input keyset, save the form's schema, poll until a resume sets the run Running, load the
    input. Raises FlowPauseTimeout when `timeout` seconds pass first."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("only a flow run can be held for review")
    state = Paused(timeout_seconds=timeout, reschedule=False, pause_key=key, name=HELD)
    keyset = keyset_from_paused_state(state)
    state.state_details.run_input_keyset = keyset
    form = run_input_subclass_from_type(form)
    with get_client(sync_client=True) as client:
        proposed = propose_state_sync(client=client, state=state, flow_run_id=context.flow_run.id)
        if not proposed.is_running():  # Running: this hold was already resumed (a retried run)
            if not proposed.is_paused():
                raise RuntimeError(f"the flow run could not be held for review: {proposed.type.value}")
            form.save(keyset)
            deadline = time.monotonic() + timeout
            while not _resumed(client, context.flow_run.id):
                if time.monotonic() >= deadline:
                    raise FlowPauseTimeout(f"nobody decided within {timeout} s")
                time.sleep(poll_interval)
    return form.load(keyset)


def _resumed(client, flow_run_id: UUID) -> bool:
    state = client.read_flow_run(flow_run_id).state
    return state is not None and state.is_running()


def final_state(result: RenderResult, decided: ReviewRecord) -> State | RenderResult:
    """A rejected (or timed-out) review ends the run in a Failed state named `Rejected`: nothing was
    published, so the run must not show the green Completed of a published video. An approved one
    ends Completed with the result."""
    if decided.state != "rejected":
        return result
    reason = f" ({decided.reason})" if decided.reason else ""
    return Failed(
        name=REJECTED,
        data=result,
        message=f"review {decided.id} rejected by {decided.decided_by}{reason}: nothing published",
    )


def resume_waiting_run(record: ReviewRecord) -> str | None:
    """After a decision made outside the UI (`dhf review`, the API): resume the paused flow run that
    waits for it, with that decision as its input, so the run ends now rather than at its timeout.
    Returns a warning line if the run could not be resumed (the decision itself stands either way)."""
    if not record.flow_run_id or record.state == "pending" or configured_api_url() is None:
        return None
    from prefect.flow_runs import resume_flow_run

    decision = "approve" if record.state == "approved" else "reject"
    answer = {"decision": decision, "reviewer": (record.decided_by or "-")[:100], "comment": record.comment}
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(record.flow_run_id)).state
        if state is None or not state.is_paused():
            return None
        resume_flow_run(UUID(record.flow_run_id), run_input=answer)
    except Exception as exc:  # the decision is made and audited; the run then times out
        return f"warning: could not resume flow run {record.flow_run_id} ({type(exc).__name__}); it ends at its timeout"
    return None
