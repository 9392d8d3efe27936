"""`dhf`: the command-line interface.

Every user-facing failure ends as one line `dhf: error: <problem>; <fix>` and exit code 2; no
partial output is left behind (stages write to temp files and rename on success).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from avatars.errors import AvatarError, LicenseError
from config.loader import ConfigError, load_settings
from flows.api.keys import ApiKeyError
from flows.api.store import StoreError
from flows.audit import AuditError
from flows.batch_script import BatchJobsFailedError, BatchScriptError, PoolError
from flows.c2pa_signing import ProvenanceError
from flows.cli_api import add_api_parsers, run_api, run_api_key
from flows.cli_evaluate import add_evaluate_parser, run_evaluate
from flows.cli_library import add_audit_parser, add_avatar_parser, run_audit, run_avatar
from flows.cli_pool import add_pool_parser, run_pool
from flows.cli_verify import add_verify_parser, run_verify
from flows.quality_stage import QualityGateError
from fusion.errors import FusionError
from phoneme.errors import SpeechError

BATCH_FAILURES = (BatchJobsFailedError,)
USER_ERRORS = (
    BatchScriptError,
    PoolError,
    SpeechError,
    FusionError,
    AvatarError,
    LicenseError,
    ConfigError,
    AuditError,
    ProvenanceError,
    ApiKeyError,
    StoreError,
)
EXIT_USER_ERROR = 2
EXIT_QUALITY_FAILED = 4  # rendered, but the quality gate refused to publish it (see the report)
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dhf", description="Digital Human Factory: text → labeled talking-head MP4")
    parser.add_argument("--config", type=Path, help="YAML file overriding config/default.yaml")
    sub = parser.add_subparsers(dest="command", required=True)

    render = sub.add_parser("render", help="render one video through the Prefect flow")
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
    render.add_argument("--quiet", action="store_true", help="no progress bars")

    models = sub.add_parser("models", help="provision or verify the pinned models")
    models.add_argument("action", choices=["provision", "verify"])

    add_avatar_parser(sub)
    add_audit_parser(sub)
    add_evaluate_parser(sub)
    add_verify_parser(sub)
    add_api_parsers(sub)
    batch = sub.add_parser("batch", help="render a script: every item in every language, as one Prefect flow")
    batch.add_argument("script", type=Path, help="script .yaml (or .csv with id,text[_<lang>] columns)")
    batch.add_argument("--out", type=Path, default=Path("out"), help="output root (default: ./out)")
    batch.add_argument("--avatar", help="CSV scripts: the avatar")
    batch.add_argument("--languages", help="CSV scripts: comma-separated languages, e.g. zh,en")
    batch.add_argument("--channel", help="CSV scripts: publication channel")
    batch.add_argument("--purpose", help="CSV scripts: purpose")
    batch.add_argument(
        "--pool",
        nargs="?",
        const="",
        help="render on this Prefect work pool's workers (default pool: factory.pool); needs PREFECT_API_URL",
    )
    add_pool_parser(sub)
    serve = sub.add_parser("serve", help="run batch scripts on a schedule (Prefect deployments, served here)")
    serve.add_argument("scripts", type=Path, nargs="+", help="script files; each is re-read at every run")
    serve.add_argument("--cron", required=True, help='schedule, e.g. "0 6 * * *" (06:00 every day)')
    serve.add_argument("--out", type=Path, default=Path("out"), help="output root (default: ./out)")
    serve.add_argument("--dry-run", action="store_true", help="validate and list the deployments, do not serve")
    return parser


def _serve(args: argparse.Namespace, settings) -> int:
    from flows.batch_script import validate_script

    for script in args.scripts:  # refuse a broken script now, not at 06:00
        validate_script(script, settings)
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=args.cron)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"--cron '{args.cron}' is not a cron expression; e.g. \"0 6 * * *\" for 06:00 daily") from exc
    from flows.schedule import deployments

    served = deployments(args.scripts, args.cron, args.out, args.config)
    for deployment in served:
        print(f"{deployment.name}: cron '{args.cron}' -> scheduled-batch({deployment.parameters['script_path']})")
    if args.dry_run:
        return 0
    from prefect import serve

    serve(*served)  # blocks; Ctrl-C stops serving
    return 0


def _read_text(argument: str) -> str:
    if argument.startswith("@"):
        path = Path(argument[1:])
        if not path.is_file():
            raise SpeechError(f"text file not found: {path}")
        return path.read_text(encoding="utf-8")
    return argument


def _render(args: argparse.Namespace, settings) -> int:
    from flows.stages import RenderRequest, validate_request

    request = RenderRequest(
        text=_read_text(args.text),
        avatar_id=args.avatar,
        language=args.lang,
        output=args.output.resolve(),
        voice=args.voice,
        channel=args.channel,
        purpose=args.purpose,
        driver_video=args.driver_video.resolve() if args.driver_video else None,
    )
    from flows.auditing import audited_render

    with audited_render(request, settings) as attempt:  # every attempt, refused or not, is audited
        attempt.validated = validate_request(request, settings)  # fails fast, before Prefect or any model
        result = _run_flow(attempt.validated, settings, args.quiet)
        attempt.report_path = result.report
    captions = f"captions: {result.srt}  " if result.srt else ""
    print(f"{result.video}  ({result.frames} frames, {result.seconds:.1f} s)  {captions}report: {result.report}")
    return 0


@dataclass(frozen=True)
class _FlowOutcome:
    video: Path
    report: Path
    srt: Path | None
    frames: int
    seconds: float


def _run_flow(validated, settings, quiet: bool) -> _FlowOutcome:
    """The Prefect flow with two progress bars (stages; frames of the current stage)."""
    from tqdm import tqdm

    from flows.pipeline import stage_names
    from flows.render_flow import render_flow

    names = stage_names(validated)
    stages_bar = tqdm(total=len(names), desc="stages", unit="stage", disable=quiet, position=0, leave=True)
    frames_bar = tqdm(total=0, desc="frames", unit="frame", disable=quiet, position=1, leave=True)

    def on_stage(name: str) -> None:
        if stages_bar.n < stages_bar.total and name != names[0]:
            stages_bar.update(1)
        stages_bar.set_postfix_str(name)
        current[0] = name

    current = [names[0], ""]  # the running stage, and the one the frames bar counts for

    def on_frame(done: int, total: int) -> None:
        if current[1] != current[0] or frames_bar.total != total:
            current[1] = current[0]
            frames_bar.set_description(f"frames ({current[0]})")
            frames_bar.reset(total=total)
        frames_bar.update(done - frames_bar.n)

    started = time.perf_counter()
    try:
        result = render_flow(validated, settings, on_frame=on_frame, on_stage=on_stage)
    finally:
        stages_bar.update(stages_bar.total - stages_bar.n)
        stages_bar.close()
        frames_bar.close()
    return _FlowOutcome(result.video, result.report, result.srt, result.frames, time.perf_counter() - started)


def _batch(args: argparse.Namespace, settings) -> int:
    from flows.batch_script import validate_script

    defaults = {k: getattr(args, k) for k in ("avatar", "languages", "channel", "purpose") if getattr(args, k)}
    script = validate_script(args.script, settings, defaults)  # every check before the first render
    from flows.batch_flow import batch_flow

    started = time.perf_counter()
    pool = None if args.pool is None else (args.pool or settings.factory.pool)
    if pool is not None:
        from flows.pool import require_server

        require_server()  # before the flow starts, so the error is immediate
    results = batch_flow(script, settings, args.out.resolve(), pool=pool)
    counts = {status: sum(r.status == status for r in results) for status in ("rendered", "cached")}
    print(
        f"{script.name}: {len(results)} videos ({counts['rendered']} rendered, {counts['cached']} unchanged) in "
        f"{time.perf_counter() - started:.1f} s; manifest: {args.out / script.name / 'manifest.json'}"
    )
    return 0


def _models(args: argparse.Namespace, settings) -> int:
    if args.action == "provision":
        from fusion.provision import provision

        provision(settings.paths.models)
        return 0
    from fusion.models import ModelRegistry

    registry = ModelRegistry(settings.paths.models)
    for name in registry.specs:
        print(f"{name}: ok {registry.path(name)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        handler = {
            "render": _render,
            "models": _models,
            "avatar": run_avatar,
            "audit": run_audit,
            "evaluate": run_evaluate,
            "batch": _batch,
            "serve": _serve,
            "pool": run_pool,
            "verify": run_verify,
            "api": run_api,
            "api-key": run_api_key,
        }[args.command]
        return handler(args, settings)
    except BATCH_FAILURES as exc:
        print(f"dhf: error: {exc}", file=sys.stderr)
        return EXIT_QUALITY_FAILED
    except QualityGateError as exc:
        print(f"dhf: error: {exc}", file=sys.stderr)
        return EXIT_QUALITY_FAILED
    except USER_ERRORS as exc:
        print(f"dhf: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("dhf: interrupted; nothing was published (re-run to resume from the cached stages)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        hint = "free disk space and re-run" if getattr(exc, "errno", None) == 28 else "check the path and permissions"
        print(f"dhf: error: {exc.strerror or exc} ({getattr(exc, 'filename', '') or ''}); {hint}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
