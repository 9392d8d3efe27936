"""What a client of the REST API expects beyond its routes (issue 28): the CLI's defaults, every
validation error with its location, readable JSON-syntax errors, error codes that name the problem,
an access log with request and key ids (never the secret), `--log-level`, and docs pages that load
nothing from a CDN.

In-process (Starlette's TestClient on `create_app`, its own home) where the subject is the HTTP
answer: accepted jobs are recorded, not rendered (`test_api.py` renders them). The access log and
`--log-level` are also checked on a real `dhf api` process, as an operator runs it.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import pkgutil
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from conftest import REPO, own_home, run_dhf
from fastapi.testclient import TestClient

from api.access_log import ACCESS_LOGGER
from api.app import create_app
from api.keys import KeyStore
from api.schemas import GenerateDigitalHuman, VideoCreate
from api.server import server_config
from cli.main import build_parser
from config import load_settings
from config.errors import DhfError

MINIMAL = {"text": "Hello.", "language": "en", "avatar_id": "sample"}  # what `dhf render` needs, no more


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = own_home(tmp_path_factory.mktemp("api-conventions") / "home")
    app = create_app(load_settings(home=home))
    queued: list = []
    app.state.context.runner.submit = queued.append  # accepted jobs are recorded, not rendered
    key, token = KeyStore(home / "api" / "keys.sqlite").create("conventions", ["render", "read"])
    return SimpleNamespace(
        client=TestClient(app),
        auth={"Authorization": f"Bearer {token}"},
        key=key,
        token=token,
        queued=queued,
        home=home,
    )


@pytest.fixture
def access_lines():
    """The access log's lines, whatever logging configuration an earlier test left."""
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger(ACCESS_LOGGER)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def _render_defaults(tmp_path: Path) -> tuple[str, str]:
    args = build_parser().parse_args(
        ["render", "Hi.", "--avatar", "sample", "--lang", "en", "-o", str(tmp_path / "x.mp4")]
    )
    return args.channel, args.purpose


def test_a_minimal_call_has_the_cli_defaults_and_is_accepted(served, tmp_path):
    """The sample avatar is licensed for channel and purpose `demo`, the CLI's defaults; with the API's
    old defaults (web / customer-service) this call was refused with 403."""
    cli = _render_defaults(tmp_path)
    for model in (VideoCreate, GenerateDigitalHuman):
        assert (model.model_fields["channel"].default, model.model_fields["purpose"].default) == cli, model
    answer = served.client.post("/v1/videos", json=MINIMAL, headers=served.auth)
    assert answer.status_code == 202, answer.text
    job = served.queued[-1]
    assert job.id == answer.json()["job_id"]
    assert (job.request["channel"], job.request["purpose"]) == cli == ("demo", "demo")


def test_every_validation_error_is_listed_with_its_location(served):
    body = {"text": "", "language": "english", "avatar_id": "../sample", "surprise": 1}
    answer = served.client.post("/v1/videos", json=body, headers=served.auth)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    places = {tuple(detail["loc"]): detail["type"] for detail in error["details"]}
    assert places == {
        ("body", "text"): "string_too_short",
        ("body", "language"): "string_pattern_mismatch",
        ("body", "avatar_id"): "string_pattern_mismatch",
        ("body", "surprise"): "extra_forbidden",
    }, places
    for field in ("text:", "language:", "avatar_id:", "surprise:"):
        assert field in error["message"], error["message"]
    path = served.client.get("/v1/videos/NOT-A-JOB", headers=served.auth).json()["error"]
    assert [detail["loc"] for detail in path["details"]] == [["path", "job_id"]], path
    missing = served.client.post("/v1/videos", json={"text": "Hi."}, headers=served.auth).json()["error"]
    assert sorted(tuple(d["loc"]) for d in missing["details"]) == [("body", "avatar_id"), ("body", "language")]
    assert all(d["type"] == "missing" for d in missing["details"])


def test_malformed_json_says_what_and_where(served):
    answer = served.client.post(
        "/v1/videos",
        content=b'{"text": "Hi.",\n "language": }',
        headers={**served.auth, "content-type": "application/json"},
    )
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_json", error
    assert error["message"] == "the request body is not valid JSON: Expecting value: line 2 column 14 (char 29)"


def test_error_codes_name_the_problem_not_the_layer(served):
    unknown_scene = served.client.post("/v1/videos", json={**MINIMAL, "scene": "nowhere"}, headers=served.auth)
    assert unknown_scene.status_code == 422
    assert unknown_scene.json()["error"]["code"] == "scene", unknown_scene.text
    assert "unknown scene 'nowhere'" in unknown_scene.json()["error"]["message"]
    no_route = served.client.get("/v1/nothing-here", headers=served.auth)
    assert (no_route.status_code, no_route.json()["error"]["code"]) == (404, "not_found")
    wrong_method = served.client.delete("/v1/avatars", headers=served.auth)
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")
    assert "GET" in wrong_method.headers["allow"]


def _error_classes() -> list[type[DhfError]]:
    packages = ("config", "media", "phoneme", "vision", "driver_synth", "fusion", "avatars", "quality")
    packages += ("governance", "pipeline", "flows", "api", "cli")
    for package in packages:
        for module in pkgutil.walk_packages([str(REPO / package)], f"{package}."):
            if not module.name.endswith("__main__"):  # `python -m cli` runs the CLI on import
                importlib.import_module(module.name)
    found: set[type[DhfError]] = set()
    todo: list[type[DhfError]] = [DhfError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.split(".")[0] in packages:
                found.add(sub)
            todo.append(sub)
    return sorted(found, key=lambda cls: (cls.__module__, cls.__qualname__))


def test_every_error_class_declares_a_code_of_its_own():
    """A subclass names a narrower problem than its base, so it answers with its own code: an unknown
    scene answered `fusion`, the code of the engine it was raised in, and so did a too small face."""
    classes = _error_classes()
    assert len(classes) >= 30, classes
    inherited = [cls.__qualname__ for cls in classes if "code" not in vars(cls)]
    assert not inherited, f"declare `code` on {inherited}"
    codes: dict[str, list[str]] = {}
    for cls in classes:
        codes.setdefault(cls.code, []).append(cls.__qualname__)
    assert {code: names for code, names in codes.items() if len(names) > 1} == {}


def test_access_log_names_the_request_and_the_key_never_the_secret(served, access_lines):
    given = served.client.get("/v1/avatars", headers={**served.auth, "X-Request-ID": "trace-42"})
    assert given.status_code == 200 and given.headers["x-request-id"] == "trace-42"
    fresh = served.client.get("/v1/avatars", headers=served.auth)
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    injected = served.client.get("/healthz", headers={"X-Request-ID": "a b\tc"})  # not a plain token: replaced
    assert re.fullmatch(r"[0-9a-f]{32}", injected.headers["x-request-id"])
    forged = served.client.get("/v1/avatars", headers={"Authorization": f"Bearer {served.token}x"})
    assert forged.status_code == 401
    huge = served.client.post("/v1/videos", content=b"{" + b" " * 70000 + b"}", headers=served.auth)
    assert huge.status_code == 413 and "x-request-id" in huge.headers
    assert len(access_lines) == 5, access_lines
    first, second, _, refused, too_large = access_lines
    assert first.startswith(f"request_id=trace-42 key_id={served.key.id} method=GET path=/v1/avatars status=200 ")
    assert f"request_id={fresh.headers['x-request-id']} key_id={served.key.id} " in second
    assert "key_id=- " in refused and "status=401" in refused
    assert "status=413" in too_large and f"request_id={huge.headers['x-request-id']}" in too_large
    secret = served.token.split("_", 2)[2]
    assert not any(secret in line or "Bearer" in line for line in access_lines)


def test_log_level_sets_uvicorn_and_the_access_log(served):
    parser = build_parser()
    assert parser.parse_args(["api"]).log_level == "info"
    assert parser.parse_args(["api", "--log-level", "WARNING"]).log_level == "warning"
    with pytest.raises(SystemExit):
        parser.parse_args(["api", "--log-level", "loud"])
    access = logging.getLogger(ACCESS_LOGGER)
    try:
        for level, expected in (("warning", logging.WARNING), ("debug", logging.DEBUG), ("info", logging.INFO)):
            config = server_config(load_settings(home=served.home), "127.0.0.1", 0, level)
            assert config.log_level == level and config.access_log is False
            assert access.getEffectiveLevel() == expected, level
            assert logging.getLogger("uvicorn.error").getEffectiveLevel() == expected, level
    finally:  # the next tests log as before
        parent = logging.getLogger(ACCESS_LOGGER.rsplit(".", 1)[0])
        parent.handlers.clear()
        parent.propagate = True
        parent.setLevel(logging.NOTSET)


def _dhf_api(home: Path, port: int, log: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "DHF_HOME": str(home), "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "0"}
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "cli.main", "api", "--port", str(port), *extra]
    with log.open("w") as out:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _until_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError(f"dhf api did not start: {log.read_text()[-2000:]}")


def test_dhf_api_logs_each_request_at_info_and_none_at_warning(tmp_path):
    """`dhf api --log-level` as an operator runs it: one access line per request on stderr at the
    default level, none at warning (a home of its own: no queued job is resumed and rendered)."""
    from flows.local_cluster import free_port

    home = own_home(tmp_path / "home")
    key, token = KeyStore(home / "api" / "keys.sqlite").create("operator", ["read"])
    lines, ids = {}, {}
    for level in ("info", "warning"):
        port, log = free_port(), tmp_path / f"api-{level}.log"
        process = _dhf_api(home, port, log, "--log-level", level)
        try:
            _until_healthy(f"http://127.0.0.1:{port}", process, log)
            answer = httpx.get(f"http://127.0.0.1:{port}/v1/avatars", headers={"X-API-Key": token}, timeout=30)
            assert answer.status_code == 200, answer.text
            ids[level] = answer.headers["x-request-id"]
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        lines[level] = [line for line in log.read_text().splitlines() if "request_id=" in line]
    logged = [line for line in lines["info"] if "path=/v1/avatars" in line]
    assert len(logged) == 1, lines
    assert logged[0].startswith("INFO:") and f"request_id={ids['info']} key_id={key.id} " in logged[0], logged
    assert lines["warning"] == [], lines
    assert token.split("_", 2)[2] not in "\n".join(lines["info"])


def test_redoc_and_swagger_load_nothing_from_a_cdn(served):
    page = served.client.get("/redoc")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert "https://" not in page.text and "http://" not in page.text, page.text
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert scripts == ["/docs-static/redoc.standalone.js"], scripts
    bundle = served.client.get(scripts[0])
    assert bundle.status_code == 200 and bundle.headers["content-type"].startswith("application/javascript")
    assert len(bundle.content) > 500_000  # the real ReDoc bundle, not a stub
    assert b"cdn.redoc.ly" not in bundle.content and b'src:"docs-static/redoc-logo.svg"' in bundle.content
    logo = served.client.get("/docs-static/redoc-logo.svg")  # where the relative src resolves from /redoc
    assert logo.status_code == 200 and logo.headers["content-type"].startswith("image/svg+xml")
    assert ElementTree.fromstring(logo.content).tag == "{http://www.w3.org/2000/svg}svg"
    swagger = served.client.get("/docs")
    assert swagger.status_code == 200 and "content-security-policy" in swagger.headers
    assert not re.findall(r'(?:src|href)="https?://', swagger.text), swagger.text
    assert "/docs-static/redoc.standalone.js" not in json.dumps(served.client.get("/openapi.json").json())


def test_api_key_list_json(served):
    result = run_dhf(["api-key", "list", "--json"], served.home)
    assert result.returncode == 0, result.stderr
    keys = json.loads(result.stdout)
    mine = next(key for key in keys if key["id"] == served.key.id)
    assert mine == {
        "id": served.key.id,
        "name": "conventions",
        "scopes": ["render", "read"],
        "created": served.key.created,
        "revoked": None,
    }
    assert served.token not in result.stdout
