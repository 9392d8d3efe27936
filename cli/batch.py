"""`dhf batch` (a script: every item in every language) and `dhf serve` (batches on a cron schedule).

`dhf batch --dry-run` checks the script as a batch does before its first render (every text, voice,
licence and the scene) and lists the videos it would make, without starting Prefect. `--json` prints
the outcome as one JSON document on stdout and the per-video lines on stderr (README: Machine-readable
output). The bar over the videos is drawn only on a terminal; elsewhere the per-video lines say it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from cli.output import add_json_flag, human_stream, is_terminal, print_json
from config import Settings
from flows.prefect_env import (
    apply_client_bounds,
    configured_api_url,
    require_local_room,
    require_reachable,
    temporary_records,
)
from pipeline.batch_jobs import JobResult
from pipeline.batch_script import BatchScript, override_scene, validate_script


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    batch = sub.add_parser(
        "batch", parents=[common], help="render a script: every item in every language, as one Prefect flow"
    )
    batch.set_defaults(handler=run_batch)
    batch.add_argument("script", type=Path, help="script .yaml (or .csv with id,text[_<lang>] columns)")
    batch.add_argument("--out", type=Path, default=Path("out"), help="output root (default: ./out)")
    batch.add_argument("--avatar", help="CSV scripts: the avatar")
    batch.add_argument("--languages", help="CSV scripts: comma-separated languages, e.g. zh,en")
    batch.add_argument("--channel", help="CSV scripts: publication channel")
    batch.add_argument("--purpose", help="CSV scripts: purpose")
    batch.add_argument(
        "--scene", help="scene template for every video (wins over the script's `scene:`; 'none': classic)"
    )
    batch.add_argument(
        "--pool",
        nargs="?",
        const="",
        help="render on this Prefect work pool's workers (default pool: factory.pool); needs PREFECT_API_URL",
    )
    batch.add_argument(
        "--quiet", action="store_true", help="no progress bar (drawn on a terminal only; the per-video lines stay)"
    )
    batch.add_argument(
        "--dry-run",
        action="store_true",
        help="check the whole script (texts, voices, licence, scene) and list its videos; render nothing: "
        "exit 0 when valid, 2 when not",
    )
    add_json_flag(batch, "the outcome (or, with --dry-run, the videos it would render)")
    serve = sub.add_parser(
        "serve", parents=[common], help="run batch scripts on a schedule (Prefect deployments, served here)"
    )
    serve.set_defaults(handler=run_serve)
    serve.add_argument("scripts", type=Path, nargs="+", help="script files; each is re-read at every run")
    serve.add_argument("--cron", required=True, help='schedule, e.g. "0 6 * * *" (06:00 every day)')
    serve.add_argument("--out", type=Path, default=Path("out"), help="output root (default: ./out)")
    serve.add_argument("--dry-run", action="store_true", help="validate and list the deployments, do not serve")


def run_batch(args: argparse.Namespace, settings: Settings) -> int:
    defaults = {k: getattr(args, k) for k in ("avatar", "languages", "channel", "purpose") if getattr(args, k)}
    script = validate_script(args.script, settings, defaults)  # every check before the first render
    if args.scene:
        script = override_scene(script, args.scene, settings)
    if args.dry_run:
        return _dry_run(script, args.out.resolve(), args.json)
    # A batch stays a Prefect flow even without a server (docs/decisions.md: per-video retries and
    # progress artifacts; the temporary server's ~5 s is small against many videos).
    url = configured_api_url()
    if url is not None:
        apply_client_bounds()  # before Prefect is imported: a server that stops answering fails in seconds
        require_reachable(url)  # a dead or hung server: one line now, not a traceback minutes later
    else:
        require_local_room()  # the temporary server's database: a full disk is one line, not a traceback
    from flows.batch_flow import batch_flow  # imports Prefect: only once the script is valid
    from flows.executors import executor_for
    from flows.pool import require_server

    started = time.perf_counter()
    pool = None if args.pool is None else (args.pool or settings.factory.pool)
    if pool is not None:
        require_server()  # before the flow starts, so the error is immediate
    executor = executor_for(settings, entry="batch", pool=pool)
    with BatchPrinter(url, quiet=args.quiet, lines=human_stream(args.json)) as printer:
        results = batch_flow(script, settings, args.out.resolve(), executor=executor, on_progress=printer)
    counts = {status: sum(r.status == status for r in results) for status in ("rendered", "cached", "in review")}
    seconds, manifest = time.perf_counter() - started, args.out / script.name / "manifest.json"
    if args.json:
        print_json({"script": script.name, "videos": [r.model_dump(mode="json") for r in results],
                    "counts": {k: sum(r.status == k for r in results) for k in sorted({r.status for r in results})},
                    "seconds": round(seconds, 3), "manifest": str(manifest)})  # fmt: skip
        return 0
    held = f", {counts['in review']} held for review (`dhf review list`)" if counts["in review"] else ""
    print(
        f"{script.name}: {len(results)} videos ({counts['rendered']} rendered, {counts['cached']} unchanged{held}) "
        f"in {seconds:.1f} s; manifest: {manifest}"
    )
    return 0


def _dry_run(script: BatchScript, out: Path, as_json: bool) -> int:
    """The script is valid (validate_script raised otherwise): list what it would render, where."""
    folder = out / script.name
    videos = [{"item": job.item_id, "language": job.language, "voice": job.voice, "characters": len(job.text)}
              for job in script.jobs]  # fmt: skip
    if as_json:
        print_json({"valid": True, "script": script.name, "avatar": script.avatar, "languages": list(script.languages),
                    "channel": script.channel, "purpose": script.purpose, "scene": script.scene,
                    "review": script.review, "output": str(folder), "videos": videos})  # fmt: skip
        return 0
    for video in videos:
        print(f"{video['item']} [{video['language']}]: voice {video['voice']}, {video['characters']} characters")
    print(f"{script.name}: {len(videos)} videos would be rendered into {folder}; nothing rendered (--dry-run)")
    return 0


class BatchPrinter:
    """`dhf batch`'s progress: where the run is in the Prefect UI (with a server), a bar over the
    videos, and one line per finished video with its status, length and lip-sync score."""

    def __init__(self, url: str | None, quiet: bool = False, lines=None) -> None:
        self.url, self.lines = url, lines or sys.stdout
        self.quiet = quiet or not is_terminal(sys.stderr)  # a bar in a log file is escape codes, not progress
        self.bar: tqdm | None = None

    def __enter__(self) -> BatchPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def started(self, flow_run_id: str, total: int) -> None:
        if self.url is not None and flow_run_id:
            where = f"batch run in the Prefect UI: {ui_url(self.url)}/runs/flow-run/{flow_run_id}"
            print(where, file=self.lines, flush=True)
        elif flow_run_id:  # Prefect's temporary server: say where its records go (they outlive this process)
            where = f"recorded by Prefect's temporary server in {temporary_records()}"
            print(f"batch run {flow_run_id} {where} (a Prefect server on this PREFECT_HOME shows it)", file=sys.stderr)
        if not self.quiet:
            self.bar = tqdm(total=total, unit="video", desc="batch", file=sys.stderr)

    def finished(self, result: JobResult) -> None:
        length = f", {result.duration_s:.1f} s of video" if result.duration_s else ""
        sync = f", lip-sync {result.lipsync:.2f}" if result.lipsync is not None else ""
        error = f": {result.error}" if result.error else ""
        line = f"{result.item} [{result.language}]: {result.status}{length}{sync}{error}"
        if self.bar is None:
            print(line, file=self.lines, flush=True)
            return
        self.bar.write(line, file=self.lines)
        self.bar.update(1)


def ui_url(api_url: str) -> str:
    """The Prefect UI's address for an API URL (`http://host:4200/api` → `http://host:4200`)."""
    return api_url.rstrip("/").removesuffix("/api")


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    for script in args.scripts:  # refuse a broken script now, not at 06:00
        validate_script(script, settings)
    from flows.schedule import deployments, serve_deployments  # imports Prefect

    served = deployments(args.scripts, args.cron, args.out, args.config)
    for deployment in served:
        print(f"{deployment.name}: cron '{args.cron}' -> scheduled-batch({deployment.parameters['script_path']})")
    if not args.dry_run:
        serve_deployments(served)  # blocks; Ctrl-C stops serving
    return 0
