"""`dhf pool setup|worker`: scale renders out to Prefect workers (README: Scale-out)."""

from __future__ import annotations

import argparse
import os
import sys

from config import Settings


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    pool = sub.add_parser(
        "pool", parents=[common], help="scale out: set up the Prefect work pool, start a render worker"
    )
    pool.set_defaults(handler=run_pool)
    actions = pool.add_subparsers(dest="action", required=True)
    setup = actions.add_parser("setup", help="create/update the work pool, render deployment and crash automation")
    setup.add_argument("--pool", help="work pool name (default: factory.pool)")
    worker = actions.add_parser("worker", help="run a worker that renders this pool's videos (blocks)")
    worker.add_argument("--pool", help="work pool name (default: factory.pool)")
    worker.add_argument("--limit", type=int, help="renders at once (default: factory.renders_per_worker)")
    worker.add_argument("--name", help="worker name shown in the Prefect UI")


def run_pool(args: argparse.Namespace, settings: Settings) -> int:
    from flows.prefect_env import apply_client_bounds, configured_api_url, require_reachable

    configured = configured_api_url()
    if configured is not None and args.action == "setup":
        apply_client_bounds()  # before Prefect is imported: a dead or hung server is one line in seconds
        require_reachable(configured)
    from flows.chunk_flow import deploy_chunk_flow  # imports Prefect: only here
    from flows.pool import flow_run_env, require_server, setup_pool, worker_command
    from flows.stream_flow import deploy_stream_flow

    factory = settings.factory.with_changes(pool=args.pool) if args.pool else settings.factory
    url = require_server()
    if args.action == "setup":
        done = setup_pool(factory)
        deploy_chunk_flow(factory)  # long renders' chunks (chunking.executor: pool) run on the same workers
        deploy_stream_flow(factory)  # streamed answers (api.executor: pool) too
        print(
            f"work pool '{done.pool}' ready on {url}: deployments render-variant/{done.pool} ({done.deployment_id}) "
            f"render-chunk/{done.pool} and render-stream/{done.pool}, "
            f"automation '{done.automation}' (renders silent for {factory.crashed_after_seconds} s are resubmitted). "
            f"Next: `dhf pool worker --pool {done.pool}` on each render machine."
        )
        return 0
    command = worker_command(factory, args.limit, args.name)
    print(f"worker for pool '{factory.pool}' on {url}: {' '.join(command[1:])}", flush=True)
    os.environ.update(flow_run_env(factory))
    os.environ["PREFECT_WORKER_QUERY_SECONDS"] = str(factory.worker_query_seconds)
    os.execv(sys.executable, command)  # the worker replaces this process: signals reach Prefect directly
    return 0  # not reached
