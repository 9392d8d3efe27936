"""`dhf api` (serve the REST API) and `dhf api-key create|list|revoke` (README: REST API)."""

from __future__ import annotations

import argparse


def add_api_parsers(sub) -> None:
    api = sub.add_parser("api", help="serve the REST API (FastAPI on uvicorn)")
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    api.add_argument("--port", type=int, default=8000)
    keys = sub.add_parser("api-key", help="create, list or revoke REST API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key; the secret is printed once")
    create.add_argument("--name", required=True, help="who uses it, e.g. cms")
    create.add_argument(
        "--scopes", default="render,read", help="comma list of render, read, admin (default render,read)"
    )
    actions.add_parser("list", help="list keys (never the secrets)")
    revoke = actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")


def run_api(args: argparse.Namespace, settings) -> int:
    import uvicorn

    from flows.api.app import create_app

    print(f"dhf API on http://{args.host}:{args.port} (OpenAPI: /docs); keys: `dhf api-key create`", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


def run_api_key(args: argparse.Namespace, settings) -> int:
    from flows.api.keys import KeyStore

    store = KeyStore(settings.paths.home / "api" / "keys.sqlite")
    if args.action == "create":
        key, token = store.create(args.name, [s.strip() for s in args.scopes.split(",") if s.strip()])
        print(f"key {key.id} ({key.name}; scopes {','.join(key.scopes)}). Secret, shown once:\n{token}")
    elif args.action == "list":
        for key in store.list():
            state = f"revoked {key.revoked}" if key.revoked else "active"
            print(f"{key.id}\t{key.name}\t{','.join(key.scopes)}\tcreated {key.created}\t{state}")
    else:
        key = store.revoke(args.key_id)
        print(f"key {key.id} ({key.name}) revoked at {key.revoked}")
    return 0
