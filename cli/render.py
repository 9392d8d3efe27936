"""`dhf render`: one video, validated up front, rendered with progress bars.

Where it runs is `flows.executors.executor_for`'s decision: in this process (the stages of
`pipeline.run`, exactly as `render_video` runs them) unless a Prefect server is configured
(PREFECT_API_URL), in which case it is a `render-video` flow run on that server, with its tasks and
summary artifact in the UI. Why not always Prefect: without a
server Prefect starts a temporary one (~5 s of a 2 s video's render) whose records vanish with the
process. Either way: the same validation, report, audit entry and outputs.

`--dry-run` runs every check of a render (text, voice, avatar, licence, models, scene, output path)
and stops: nothing is written (a missing output folder, created to prove it writable, is removed again),
not even an audit entry (nothing was attempted). `--json` prints the
outcome as one JSON document (README: Machine-readable output).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from cli.output import add_json_flag, is_terminal, print_json
from config import Settings
from config.errors import EXIT_REVIEW_REJECTED, ConfigError
from flows.executors import executor_for
from phoneme.errors import SpeechError
from pipeline.auditing import RenderAttempt, audited_render, log_rendered
from pipeline.request import RenderRequest, ValidatedRequest, output_paths, validate_request
from pipeline.run import RenderResult, stage_names


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    render = sub.add_parser(
        "render", parents=[common], help="render one video (a Prefect flow run when PREFECT_API_URL is set)"
    )
    render.set_defaults(handler=run_render)
    render.add_argument(
        "text",
        nargs="?",
        default="",
        help="what the avatar says (use @file.txt to read a file); optional with --driver-video",
    )
    render.add_argument("--avatar", required=True, help="avatar id (see `dhf avatar list`)")
    render.add_argument("--lang", required=True, help="language code, e.g. en, zh, es")
    render.add_argument("--voice", help="voice template from config/voices.yaml (default: the language's)")
    render.add_argument("--channel", default="demo", help="publication channel, checked against the license")
    render.add_argument("--purpose", default="demo", help="purpose, checked against the license")
    render.add_argument("-o", "--output", type=Path, required=True, help="output .mp4 (captions and report beside it)")
    render.add_argument(
        "--driver-video",
        type=Path,
        help="drive the avatar with a recorded face clip instead of speech synthesis (its audio is used)",
    )
    render.add_argument(
        "--scene",
        help="scene template (config scenes:, e.g. web, app, social; 'none': classic); default: the channel's",
    )
    render.add_argument(
        "--quiet", action="store_true", help="no progress (bars on a terminal, one line per stage otherwise)"
    )
    render.add_argument(
        "--dry-run",
        action="store_true",
        help="check everything a render checks (text, voice, avatar, licence, models, scene, output) and stop: "
        "exit 0 when it would render, 2 when not; nothing is written",
    )
    add_json_flag(render, "the outcome (or, with --dry-run, what would be rendered)")
    render.add_argument(
        "--wait-review",
        action="store_true",
        help="with review required and a Prefect server: keep the flow run paused with a review form in the UI "
        "and wait here until it is decided (there, by `dhf review` or the API) or times out",
    )


def read_text(argument: str) -> str:
    """The text itself, or the contents of a UTF-8 file given as `@path` (a BOM is dropped)."""
    if argument.startswith("@"):
        path = Path(argument[1:])
        if not path.is_file():
            raise SpeechError(f"text file not found: {path}")
        try:
            return path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SpeechError(
                f"text file {path} is not UTF-8 (byte {exc.start}: 0x{exc.object[exc.start]:02x}); "
                "save it as UTF-8, e.g. iconv -f GB18030 -t UTF-8"
            ) from exc
    return argument


def run_render(args: argparse.Namespace, settings: Settings) -> int:
    request = RenderRequest(
        text=read_text(args.text),
        avatar_id=args.avatar,
        language=args.lang,
        output=args.output.resolve(),
        voice=args.voice,
        channel=args.channel,
        purpose=args.purpose,
        driver_video=args.driver_video.resolve() if args.driver_video else None,
        scene=args.scene,
    )
    if args.dry_run:
        return _dry_run(request, settings, args.json)
    if args.wait_review and not executor_for(settings).waits_for_review:
        raise ConfigError(
            "--wait-review pauses a Prefect flow run: set PREFECT_API_URL to your Prefect server, "
            "or drop --wait-review and decide with `dhf review`"
        )
    with audited_render(request, settings) as attempt:  # every attempt, refused or not, is audited
        attempt.validated = validate_request(
            request, settings, actor=attempt.user
        )  # fails fast, before Prefect or any model
        result = _run(
            attempt.validated, settings, args.quiet, args.wait_review, lambda review: _held(attempt, settings, review)
        )
        attempt.report_path = result.report
    video_seconds = result.frames / settings.video.fps
    made = f"{result.frames} frames = {video_seconds:.1f} s of video, rendered in {result.seconds:.1f} s"
    decided = _decided(settings, result.review)
    if args.json:
        print_json(outcome_document(result, video_seconds, decided))
        return EXIT_REVIEW_REJECTED if decided is not None and decided.state != "approved" else 0
    if decided is not None:  # --wait-review: the report moved with the video; a rejection is not a success
        if decided.state == "approved":
            print(f"{result.video}  ({made})  approved by {decided.decided_by} in review {decided.id} after "
                  f"{result.waited:.0f} s; report: {output_paths(result.video)['report']}")  # fmt: skip
            return 0
        print(f"rejected in review {decided.id} by {decided.decided_by}" + (f" ({decided.reason})" if decided.reason
              else "") + f": nothing published at {result.video}")  # fmt: skip
        return EXIT_REVIEW_REJECTED
    if result.review:
        print(
            f"held for review {result.review} ({made}); nothing is published at {result.video} until "
            f"`dhf review approve {result.review}` (or reject); report: {result.report}"
        )
        return 0
    captions = f"captions: {result.srt}  " if result.srt else ""
    print(f"{result.video}  ({made})  {captions}report: {result.report}")
    return 0


def _dry_run(request: RenderRequest, settings: Settings, as_json: bool) -> int:
    """Validate and stop. Not audited: an audit entry records an attempt to render, and this is not one
    (a refused dry run is one error line and exit 2, like a refused render)."""
    folder = Path(request.output).parent
    created = [path for path in (folder, *folder.parents) if not path.exists()]  # deepest first
    try:
        validated = validate_request(request, settings, actor=getpass.getuser())
    finally:  # the output check creates the folder to prove it writable; a dry run leaves no trace
        for path in created:
            try:
                path.rmdir()
            except OSError:  # not empty (something else wrote there meanwhile) or already gone
                break
    document = dry_run_document(validated)
    if as_json:
        print_json(document)
        return 0
    scene = f", scene {document['scene']}" if document["scene"] else ""
    print(
        f"would render {document['video']}: {document['avatar']} v{document['avatar_version']} speaking "
        f"{document['characters']} characters in {document['language']} (voice {document['voice']}{scene}), "
        f"licence {document['license_id']} allows channel {document['channel']}, purpose {document['purpose']}; "
        "nothing written (--dry-run)"
    )
    return 0


def dry_run_document(validated: ValidatedRequest) -> dict:
    """`dhf render --dry-run --json` (README: Machine-readable output)."""
    request = validated.request
    return {
        "valid": True,
        "video": str(request.output),
        "outputs": {kind: str(path) for kind, path in output_paths(request.output).items()},
        "avatar": validated.avatar.avatar_id,
        "avatar_version": validated.avatar.version,
        "license_id": validated.license.license_id,
        "language": request.language,
        "voice": None if request.driver_video else validated.voice.name,
        "driver_video": str(request.driver_video) if request.driver_video else None,
        "characters": len(validated.spoken_text),
        "scene": validated.scene,
        "channel": request.channel,
        "purpose": request.purpose,
    }


def outcome_document(result: _Outcome, video_seconds: float, decided) -> dict:
    """`dhf render --json` (README: Machine-readable output). `status`: published (the video is at
    `video`), held (waiting for `dhf review`), or rejected in review (nothing at `video`)."""
    if decided is not None:
        status = "published" if decided.state == "approved" else "rejected"
    else:
        status = "held" if result.review else "published"
    review = None
    if result.review:
        review = {"id": result.review, "state": decided.state if decided else "pending",
                  "decided_by": decided.decided_by if decided else None,
                  "reason": (decided.reason or None) if decided else None}  # fmt: skip
    return {
        "status": status,
        "video": str(result.video),
        "report": str(result.report),
        "captions": str(result.srt) if result.srt else None,
        "frames": result.frames,
        "duration_s": round(video_seconds, 3),
        "render_seconds": round(result.seconds, 3),
        "review": review,
    }


@dataclass(frozen=True)
class _Outcome:
    video: Path
    report: Path
    srt: Path | None
    frames: int
    seconds: float  # rendering only: a --wait-review render's wait for the review is `waited`
    review: str | None = None
    waited: float = 0.0


class _Progress:
    """On a terminal, two progress bars: stages, and frames of the stage that is counting frames.
    Elsewhere (a log file, a pipe, CI) one plain line per stage: bars there are kilobytes of escape
    codes per render and nobody watches them move."""

    def __init__(
        self, names: list[str], quiet: bool, on_held: Callable[[str], None] = lambda review: None, stream=None
    ) -> None:
        self.names, self.on_held, self.stream = names, on_held, stream or sys.stderr
        self.lines = not quiet and not is_terminal(self.stream)  # plain lines instead of bars
        bars = {"disable": quiet or self.lines, "file": self.stream, "leave": True}
        self.stages = tqdm(total=len(names), desc="stages", unit="stage", position=0, **bars)
        self.frames = tqdm(total=0, desc="frames", unit="frame", position=1, **bars)
        self.current, self.counting, self.shown, self.number = names[0], "", "", 1
        self.waiting_since: float | None = None
        self.closed = False

    def on_stage(self, name: str) -> None:
        if name.startswith("waiting for review"):  # --wait-review: rendered; where to decide, even with --quiet
            self.waiting_since = time.perf_counter()  # from here on it is the reviewer's time, not the render's
            self.close()  # the bars end above the line rather than being redrawn around it
            self.on_held(name.split()[3].rstrip(":"))  # "waiting for review <id>: <url>"
            print(f"{name} (or `dhf review approve|reject` in another terminal)", file=sys.stderr, flush=True)
            return
        if self.stages.n < self.stages.total and name != self.names[0]:
            self.stages.update(1)
        self.stages.set_postfix_str(name)
        self.current = name
        if self.lines and name != self.shown:
            # a stage outside the plan (the quality gate's "fallback") keeps the number of the one it is part of
            self.shown, self.number = name, self.names.index(name) + 1 if name in self.names else self.number
            print(f"stage {self.number}/{len(self.names)}: {name}", file=self.stream, flush=True)

    def on_frame(self, done: int, total: int) -> None:
        if self.lines:  # frame counts are for the bars only
            return
        if self.counting != self.current or self.frames.total != total:
            self.counting = self.current
            self.frames.set_description(f"frames ({self.current})")
            self.frames.reset(total=total)
        self.frames.update(done - self.frames.n)

    def close(self) -> None:
        if self.closed:  # already, before a --wait-review render's wait
            return
        self.closed = True
        self.stages.update(self.stages.total - self.stages.n)
        self.stages.close()
        self.frames.close()


def _held(attempt: RenderAttempt, settings: Settings, review_id: str) -> None:
    """--wait-review, rendered and held: the render's audit entry now, as the review is decided from it."""
    from pipeline.review_store import ReviewStore

    attempt.report_path = Path(ReviewStore(settings).get(review_id).staged["report"])
    log_rendered(attempt, settings)


def _decided(settings: Settings, review_id: str | None):
    """The review's record once decided (a `--wait-review` render waited for it), else None."""
    if review_id is None:
        return None
    from pipeline.review_store import ReviewStore

    record = ReviewStore(settings).get(review_id)
    return None if record.state == "pending" else record


def _run(
    validated: ValidatedRequest,
    settings: Settings,
    quiet: bool,
    wait_review: bool = False,
    on_held: Callable[[str], None] = lambda review: None,
) -> _Outcome:
    progress = _Progress(stage_names(validated), quiet, on_held)
    started = time.perf_counter()
    try:
        result = _execute(validated, settings, progress, wait_review)
    finally:
        progress.close()
    ended = time.perf_counter()
    rendered = (progress.waiting_since or ended) - started
    return _Outcome(result.video, result.report, result.srt, result.frames, rendered, result.review,
                    ended - (progress.waiting_since or ended))  # fmt: skip


def _execute(
    validated: ValidatedRequest, settings: Settings, progress: _Progress, wait_review: bool = False
) -> RenderResult:
    """Where the render runs is `flows.executors.executor_for`'s to say (in this process, or a flow
    run on the Prefect server of PREFECT_API_URL); this process shows its progress either way."""
    executor = executor_for(settings)
    return executor.render(validated, settings, progress.on_stage, progress.on_frame, wait_review)
