"""`dhf api` (serve the REST API) and `dhf api-key create|list|revoke` (README: REST API)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys

from config import Settings

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")  # uvicorn's (api.server.LOG_LEVELS)


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    api = sub.add_parser("api", parents=[common], help="serve the REST API (FastAPI on uvicorn)")
    api.set_defaults(handler=run_api)
    api.add_argument("--host", help="address to bind (default: api.host, 127.0.0.1: this machine only)")
    api.add_argument("--port", type=int, help="port to listen on (default: api.port, 8000; or DHF_API__PORT)")
    with contextlib.suppress(argparse.ArgumentError):  # a global --log-level in `common` serves `dhf api` too
        api.add_argument(
            "--log-level",
            type=str.lower,
            choices=LOG_LEVELS,
            default="info",
            help="server log level (default info: one access line per request, with request and key ids)",
        )
    keys = sub.add_parser("api-key", parents=[common], help="create, list or revoke REST API keys")
    keys.set_defaults(handler=run_api_key)
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key; the secret is printed once")
    create.add_argument("--name", required=True, help="who uses it, e.g. cms")
    create.add_argument(
        "--scopes",
        default="render,read",
        help="comma list of render, read, review, admin (default render,read); review is never implied",
    )
    listing = actions.add_parser("list", help="list keys (never the secrets)")
    listing.add_argument(
        "--json", action="store_true", help="a JSON array of {id, name, scopes, created, revoked (null or a time)}"
    )
    revoke = actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id", help="the key id (`dhf api-key list`; the part after dhf_ in the secret)")


def run_api(args: argparse.Namespace, settings: Settings) -> int:
    from api.server import serve  # imports FastAPI, uvicorn and Prefect: only for this command

    host = args.host if args.host is not None else settings.api.host  # the flags win over the config
    port = args.port if args.port is not None else settings.api.port
    print(f"dhf API on http://{host}:{port} (OpenAPI: /docs); keys: `dhf api-key create`", flush=True)
    serve(settings, host, port, _log_level(args))
    return 0


def _log_level(args: argparse.Namespace) -> str:
    """The level for `dhf api`: `--log-level` (any case; a number from a global option is mapped)."""
    level = getattr(args, "log_level", None) or "info"
    if isinstance(level, int):
        return logging.getLevelName(level).lower()
    return str(level).lower() if str(level).lower() in LOG_LEVELS else "info"


def key_record(key) -> dict:
    """`dhf api-key list --json`: one key, never its secret (only its hash is stored anyway)."""
    return {"id": key.id, "name": key.name, "scopes": list(key.scopes), "created": key.created, "revoked": key.revoked}


def run_api_key(args: argparse.Namespace, settings: Settings) -> int:
    from api.keys import KeyStore

    store = KeyStore(settings.paths.home / "api" / "keys.sqlite")
    if args.action == "create":
        key, token = store.create(args.name, [s.strip() for s in args.scopes.split(",") if s.strip()])
        # stdout is the secret alone (KEY=$(dhf api-key create ...) works); the rest goes to stderr
        print(
            f"key {key.id} ({key.name}; scopes {','.join(key.scopes)}); the secret below is shown once", file=sys.stderr
        )
        print(token)
    elif args.action == "list" and args.json:
        print(json.dumps([key_record(key) for key in store.list()], indent=2))
    elif args.action == "list":
        for key in store.list():
            state = f"revoked {key.revoked}" if key.revoked else "active"
            print(f"{key.id}\t{key.name}\t{','.join(key.scopes)}\tcreated {key.created}\t{state}")
    else:
        key = store.revoke(args.key_id)
        print(f"key {key.id} ({key.name}) revoked at {key.revoked}")
    return 0
