"""The REST API against a real uvicorn server on 127.0.0.1 (`dhf api`), with keys made by
`dhf api-key create`: submit → poll → download (ffprobe, HTTP ranges), the synchronous endpoint,
batches, auth (missing/invalid/revoked key, wrong scope, another key's job, traversal in ids),
limits (body size, text length, rate), license refusals audited under the key, metrics, a bounded
load test, a server killed mid-job and restarted, and schemathesis fuzzing of the OpenAPI schema."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import ApiServer, run_dhf

from api.jobs import JobStore
from config import load_settings
from governance.audit import AuditLog
from media.video import probe
from pipeline.report import RenderReport

DEMO = {"avatar_id": "sample", "language": "en", "channel": "demo", "purpose": "demo"}


def _key(home: Path, name: str, scopes: str) -> tuple[str, str]:
    result = run_dhf(["api-key", "create", "--name", name, "--scopes", scopes], home)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count("\n") == 0, result.stdout  # the secret alone on stdout
    return token.split("_")[1], token


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _wait(api: ApiServer, job_id: str, token: str, timeout: float = 300, kind: str = "videos") -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{api.url}/v1/{kind}/{job_id}", headers=_auth(token), timeout=10).json()
        if status["status"] in ("succeeded", "failed"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not done in {timeout} s: {status}")


@pytest.fixture(scope="module")
def keys(dhf_home):
    made = {name: _key(dhf_home, name, scopes) for name, scopes in
            [("cms", "render,read"), ("other", "render,read"), ("reader", "read"), ("ops", "admin"),
             ("gone", "render,read")] + [(f"load{i}", "read") for i in range(5)]}  # fmt: skip
    assert run_dhf(["api-key", "revoke", made["gone"][0]], dhf_home).returncode == 0
    return made


@pytest.fixture(scope="module")
def api(dhf_home, keys, tmp_path_factory):
    # A high rate limit here, so that fuzzing and the load test reach the handlers (the limit itself is
    # tested on its own server below).
    server = ApiServer(dhf_home, tmp_path_factory.mktemp("api"), "api:\n  rate_per_minute: 100000\n").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def finished_job(api, keys):
    token = keys["cms"][1]
    body = {**DEMO, "text": "Thank you for calling. Your card is on its way."}
    accepted = httpx.post(f"{api.url}/v1/videos", json=body, headers=_auth(token), timeout=30)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    return job_id, _wait(api, job_id, token)


def test_submit_poll_download_with_ranges_captions_and_report(api, keys, finished_job, tmp_path):
    job_id, status = finished_job
    token = keys["cms"][1]
    assert status["status"] == "succeeded" and status["progress"] == 1.0, status
    assert status["result"]["quality"]["passed"] is True and status["result"]["license_id"] == "sample-demo-0001"
    video = httpx.get(f"{api.url}/v1/videos/{job_id}/video", headers=_auth(token), timeout=30)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    path = tmp_path / "video.mp4"
    path.write_bytes(video.content)
    info = probe(path)
    assert (info.width, info.height, info.video_codec, info.audio_codec) == (1920, 1080, "h264", "aac")
    assert abs(info.duration - status["result"]["duration_s"]) < 0.1 and info.frames == status["result"]["frames"]
    part = httpx.get(f"{api.url}/v1/videos/{job_id}/video", headers={**_auth(token), "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == video.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(video.content)}"
    # Bad ranges are JSON errors like every other (Starlette alone answers them in text/plain).
    url, size = f"{api.url}/v1/videos/{job_id}/video", len(video.content)
    for header, status_code, code in (
        ("bytes=abc", 400, "bad_range"),
        (f"bytes={size + 10}-", 416, "range_not_satisfiable"),
    ):
        bad = httpx.get(url, headers={**_auth(token), "Range": header})
        assert bad.status_code == status_code and bad.json()["error"]["code"] == code, bad.text
    assert bad.headers["content-range"] == f"bytes */{size}"
    srt = httpx.get(f"{api.url}/v1/videos/{job_id}/captions", headers=_auth(token)).text
    vtt = httpx.get(f"{api.url}/v1/videos/{job_id}/captions?format=vtt", headers=_auth(token)).text
    assert "Thank" in srt and "-->" in srt and vtt.startswith("WEBVTT")
    report = httpx.get(f"{api.url}/v1/videos/{job_id}/report", headers=_auth(token)).json()
    assert report["quality"]["passed"] is True and str(api.home) not in json.dumps(report)
    assert RenderReport.model_validate(report).frames == status["result"]["frames"]  # the typed report, served
    schema = httpx.get(f"{api.url}/openapi.json").json()
    served = schema["paths"]["/v1/videos/{job_id}/report"]["get"]["responses"]["200"]["content"]["application/json"]
    assert served["schema"] == {"$ref": "#/components/schemas/RenderReport"}
    assert "lipsync" in json.dumps(schema["components"]["schemas"]["QualityReport"])


def test_the_render_is_audited_under_the_key(finished_job, keys, dhf_home):
    _, status = finished_job
    entries = AuditLog(load_settings(home=dhf_home).paths.audit_db).entries()
    mine = [e for e in entries if e.record.output_sha256 == status["result"]["sha256"]]
    assert [e.record.user for e in mine] == [f"api-key:{keys['cms'][0]}"]


def test_auth_is_required_scoped_and_jobs_are_private(api, keys, finished_job):
    job_id, _ = finished_job
    url = f"{api.url}/v1/videos/{job_id}"

    def code(response) -> tuple[int, str]:
        return response.status_code, response.json()["error"]["code"]

    assert code(httpx.get(url)) == (401, "missing_key")
    assert code(httpx.get(url, headers=_auth("dhf_000000000000_forged"))) == (401, "invalid_key")
    assert code(httpx.get(url, headers=_auth(keys["cms"][1] + "x"))) == (401, "invalid_key")
    assert code(httpx.get(url, headers=_auth(keys["gone"][1]))) == (401, "invalid_key")  # revoked
    assert code(httpx.post(f"{api.url}/v1/videos", json={**DEMO, "text": "Hi."}, headers=_auth(keys["reader"][1]))) == (
        403,
        "missing_scope",
    )
    assert code(httpx.get(url, headers=_auth(keys["other"][1]))) == (404, "not_found")  # another key's job
    assert httpx.get(f"{url}/video", headers=_auth(keys["other"][1])).status_code == 404
    assert httpx.get(url, headers={"X-API-Key": keys["ops"][1]}).status_code == 200  # admin sees every job
    for bad in ("..%2F..%2Fetc%2Fpasswd", "../../etc/passwd", "%2e%2e", "a" * 32, job_id.upper()):
        response = httpx.get(f"{api.url}/v1/videos/{bad}/video", headers=_auth(keys["cms"][1]))
        assert response.status_code in (404, 422), (bad, response.status_code)
    traversal = httpx.post(
        f"{api.url}/v1/videos", json={**DEMO, "avatar_id": "../sample", "text": "Hi."}, headers=_auth(keys["cms"][1])
    )
    assert code(traversal) == (422, "invalid_request")


def test_refusals_are_4xx_json_and_license_refusals_are_audited(api, keys, dhf_home):
    headers = _auth(keys["cms"][1])
    post = lambda body: httpx.post(f"{api.url}/v1/videos", json=body, headers=headers, timeout=30)  # noqa: E731
    out_of_scope = post({**DEMO, "channel": "tv", "text": "Hello."})
    assert out_of_scope.status_code == 403 and "channel 'tv'" in out_of_scope.json()["error"]["message"]
    last = AuditLog(load_settings(home=dhf_home).paths.audit_db).entries()[-1].record
    assert (last.outcome, last.user) == ("refused", f"api-key:{keys['cms'][0]}")
    assert post({**DEMO, "language": "xx", "text": "Hello."}).status_code == 422
    assert post({**DEMO, "avatar_id": "nobody", "text": "Hello."}).status_code == 422
    assert post({**DEMO, "text": "x" * 10_001}).status_code == 422
    assert post({**DEMO, "text": ""}).status_code == 422
    assert post({**DEMO, "text": "Hi.", "surprise": 1}).status_code == 422
    huge = httpx.post(f"{api.url}/v1/videos", content=b"{" + b" " * 70000 + b"}", headers=headers)
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "body_too_large"
    bad_script = httpx.post(f"{api.url}/v1/batches", json={"script": "name: x\navatar: sample\nlanguages: [en\n"},
                            headers=headers)  # fmt: skip
    assert bad_script.status_code == 422 and "script:" in bad_script.json()["error"]["message"]


def test_avatars_show_license_scope_but_never_consent(api, keys):
    avatars = httpx.get(f"{api.url}/v1/avatars", headers=_auth(keys["reader"][1])).json()
    sample = next(a for a in avatars if a["avatar_id"] == "sample")
    assert sample["license"]["channels"] == ["demo"] and sample["license"]["valid_now"] is True
    assert "consent" not in json.dumps(avatars).lower()


def test_generate_digital_human_returns_the_mp4(api, keys, tmp_path):
    body = {**DEMO, "text": "Hello from the compatible endpoint."}
    response = httpx.post(f"{api.url}/generate_digital_human", json=body, headers=_auth(keys["cms"][1]), timeout=300)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    (tmp_path / "sync.mp4").write_bytes(response.content)
    assert probe(tmp_path / "sync.mp4").duration > 1.0
    too_long = {**DEMO, "text": "word " * 100}
    assert (
        httpx.post(f"{api.url}/generate_digital_human", json=too_long, headers=_auth(keys["cms"][1])).status_code == 422
    )


def test_a_batch_runs_through_the_api(api, keys):
    script = "name: api-batch\navatar: sample\nlanguages: [en]\nchannel: demo\npurpose: demo\nitems:\n"
    script += "  - id: q1\n    text: Goodbye and thank you.\n"
    accepted = httpx.post(f"{api.url}/v1/batches", json={"script": script}, headers=_auth(keys["cms"][1]), timeout=30)
    assert accepted.status_code == 202, accepted.text
    status = _wait(api, accepted.json()["job_id"], keys["cms"][1], kind="batches")
    assert status["status"] == "succeeded", status
    assert [(v["item"], v["language"], v["status"]) for v in status["result"]["videos"]] == [("q1", "en", "rendered")]


@pytest.mark.slow  # five renders under 50 polls; the default run keeps one submit/poll/download and the batch
def test_load_50_polls_and_5_renders_lose_nothing_and_metrics_count_them(api, keys, finished_job):
    job_id, _ = finished_job
    headers = _auth(keys["cms"][1])
    texts = [f"Load test number {n}. Please wait." for n in range(5)]
    with ThreadPoolExecutor(max_workers=55) as pool:
        submits = [
            pool.submit(httpx.post, f"{api.url}/v1/videos", json={**DEMO, "text": t}, headers=headers, timeout=60)
            for t in texts
        ]
        polls = [
            pool.submit(httpx.get, f"{api.url}/v1/videos/{job_id}", headers=_key_header(keys, i), timeout=60)
            for i in range(50)
        ]
        accepted = [f.result() for f in submits]
        polled = [f.result() for f in polls]
    assert [r.status_code for r in accepted] == [202] * 5
    assert [r.status_code for r in polled] == [404] * 50  # other keys' job: private, and no error under load
    jobs = [r.json()["job_id"] for r in accepted]
    done = [_wait(api, j, keys["cms"][1], timeout=600) for j in jobs]
    assert [d["status"] for d in done] == ["succeeded"] * 5
    metrics = httpx.get(f"{api.url}/metrics").text
    succeeded = next(
        line for line in metrics.splitlines() if line.startswith('dhf_jobs{kind="video",status="succeeded"}')
    )
    assert int(succeeded.split()[-1]) >= 7 and 'dhf_http_responses_total{code="202"}' in metrics


def _key_header(keys, index: int) -> dict[str, str]:
    return {"X-API-Key": keys[f"load{index % 5}"][1]}


def test_a_job_survives_a_killed_server(dhf_home, keys, tmp_path):
    server = ApiServer(dhf_home, tmp_path).start()
    token = keys["other"][1]
    body = {**DEMO, "text": "This answer is long enough to be interrupted while it renders, and then resumed."}
    job_id = httpx.post(f"{server.url}/v1/videos", json=body, headers=_auth(token), timeout=30).json()["job_id"]
    deadline = time.monotonic() + 120
    while httpx.get(f"{server.url}/v1/videos/{job_id}", headers=_auth(token)).json()["progress"] <= 0.05:
        assert time.monotonic() < deadline, "the render never started"
        time.sleep(0.2)
    server.kill()  # SIGKILL mid-render
    restarted = ApiServer(dhf_home, tmp_path)
    restarted.port, restarted.url = server.port, server.url
    restarted.start()
    try:
        status = _wait(restarted, job_id, token)
        assert status["status"] == "succeeded" and status["note"] == "resumed after a server restart", status
    finally:
        restarted.stop()


def test_rate_limit_answers_429_with_retry_after(dhf_home, keys, tmp_path):
    server = ApiServer(dhf_home, tmp_path, "api:\n  rate_per_minute: 5\n").start()
    try:
        codes = [httpx.get(f"{server.url}/v1/avatars", headers=_auth(keys["reader"][1])) for _ in range(8)]
        assert [r.status_code for r in codes[:5]] == [200] * 5 and codes[-1].status_code == 429
        assert int(codes[-1].headers["retry-after"]) >= 1
    finally:
        server.stop()


def test_fuzzing_every_endpoint_finds_no_5xx_and_no_schema_violation(api, keys):
    """schemathesis generates requests from the OpenAPI schema for every operation (with an admin key,
    so requests reach the handlers); every response must be a documented status with a body that
    matches its schema, and never a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11
    failures: list[str] = []
    calls = [0]
    statuses: dict[int, int] = {}

    def fuzz(operation) -> None:
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=operation.as_strategy())
        def exercise(case):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {keys['ops'][1]}"}
            response = case.call(base_url=api.url, timeout=120)
            calls[0] += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            try:
                case.validate_response(response, checks=checks)
            except Exception as exc:  # collect every kind of check failure
                failures.append(f"{operation.method.upper()} {operation.path}: {str(exc).splitlines()[0][:200]}")

        exercise()

    for operation in operations:
        fuzz(operation)
    print(f"fuzzing: {calls[0]} requests over {len(operations)} operations, statuses {sorted(statuses.items())}")
    assert calls[0] >= 100 and not failures, failures[:10]
    assert not any(status >= 500 for status in statuses)


def test_parallel_submissions_of_one_key_stop_at_its_active_job_limit(tmp_path):
    """50 POST /v1/videos at once with one key: exactly `max_active_jobs_per_key` (20) are queued and the
    other 30 get 429 naming the limit (the count and the insert were two steps, and all 50 got 202). Its
    own home, so that the queued jobs are never resumed by another test's server; the server is killed
    right after (it renders at most the first job, for the seconds the burst takes: a long text keeps
    that job running meanwhile, so no slot frees up)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(load_settings().paths.models, target_is_directory=True)
    key_id, token = _key(home, "burst", "render,read")
    server = ApiServer(home, tmp_path, "api:\n  rate_per_minute: 100000\n").start()
    body = {**DEMO, "text": " ".join(["Your deposit earns interest every month until the end of its term."] * 12)}
    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(lambda _: httpx.post(f"{server.url}/v1/videos", json=body, headers=_auth(token),
                                                         timeout=120), range(50)))  # fmt: skip
    finally:
        server.kill()
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [202] * 20 + [429] * 30, codes
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert refused.json()["error"]["code"] == "too_many_jobs", refused.text
    assert "20 active jobs" in refused.json()["error"]["message"] and refused.headers["retry-after"] == "30"
    assert JobStore(home / "api" / "jobs.sqlite").active_count(key_id) == 20
