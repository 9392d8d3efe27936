"""Scale-out for real: `prefect server start` on localhost, `dhf pool setup`, two `dhf pool worker`
processes, and a 3-item × 2-language batch submitted with `dhf batch --pool`. One worker (and the
render it is running) is SIGKILLed mid-run, like a machine losing power; the crash automation marks
that render Crashed, the batch resubmits it and the surviving worker completes the batch. Everything
is then read back through the server's REST API: flow runs, task runs, artifacts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from flows.local_cluster import LocalCluster
from media.video import probe

# 2-3 minutes (a server, two workers, a killed one): the slow suite; `scripts/test -m slow` runs it.
pytestmark = pytest.mark.slow

SCRIPT = """\
name: pool-it
avatar: sample
languages: [en, zh]
channel: demo
purpose: demo
items:
  - id: q1
    text: {en: "What is the rate on a one-year deposit?", zh: "一年期定期存款的利率是多少？"}
  - id: q2
    text: {en: "Please bring your bank card.", zh: "请带上您的银行卡。"}
  - id: q3
    text: {en: "Thank you, goodbye.", zh: "谢谢，再见。"}
"""
# Prefect's minimum heartbeat is 30 s; a silent render is declared Crashed after 60 s.
CONFIG = "factory:\n  pool: it-pool\n  heartbeat_seconds: 30\n  crashed_after_seconds: 60\n  poll_seconds: 1\n"


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        chain.append(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return chain


@pytest.fixture(scope="module")
def pool_batch(tmp_path_factory, dhf_home):
    folder = tmp_path_factory.mktemp("pool")
    config = folder / "pool.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with LocalCluster(folder, dhf_home, config).start(workers=2) as cluster:
        script = folder / "script.yaml"
        script.write_text(SCRIPT, encoding="utf-8")
        batch_args = ("batch", str(script), "--out", str(folder / "out"), "--pool")
        batch = cluster.spawn(cluster.dhf(*batch_args), "batch.log")
        killed = _kill_a_worker_mid_render(cluster)
        batch.wait(timeout=480)
        log = (folder / "batch.log").read_text()
        assert batch.returncode == 0, log[-3000:]
        manifest = json.loads((folder / "out" / "pool-it" / "manifest.json").read_text())
        started = time.monotonic()
        rerun = cluster.run(*batch_args, timeout=120)
        yield cluster, killed, manifest, rerun, time.monotonic() - started


def _kill_a_worker_mid_render(cluster: LocalCluster) -> dict:
    """SIGKILL the worker running the first render to start, and that render's process."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        running = cluster.api("flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}})
        for run in running:
            if not run["name"].startswith("render ") or not run.get("infrastructure_pid"):
                continue
            pid = int(str(run["infrastructure_pid"]).split(":")[-1])
            owner = next((w for w in cluster.workers if w.pid in _ancestors(pid)), None)
            if owner is None:
                continue
            time.sleep(2)  # well into the render
            os.killpg(owner.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return {"flow_run_id": run["id"], "name": run["name"], "worker_pid": owner.pid}
        time.sleep(0.5)
    raise AssertionError("no render started on the pool within 240 s")


def test_batch_completes_on_the_pool_after_a_worker_is_killed(pool_batch):
    cluster, killed, manifest, _, _ = pool_batch
    assert [(r["item"], r["language"], r["status"]) for r in manifest] == [
        (item, language, "rendered") for item in ("q1", "q2", "q3") for language in ("en", "zh")
    ]
    for row in manifest:
        video = probe(Path(row["output"]))
        assert abs(video.duration - row["duration_s"]) < 0.1 and video.frames >= 25, row
        assert row["quality_passed"] is True and row["lipsync"] >= 0.4
    state = cluster.get(f"flow_runs/{killed['flow_run_id']}")["state"]
    assert state["type"] == "CRASHED" and "heartbeat" in state["message"], state


def test_the_prefect_api_shows_flow_runs_task_runs_and_artifacts(pool_batch):
    cluster, killed, *_ = pool_batch
    runs = cluster.api("flow_runs/filter")
    renders = [r for r in runs if r["name"].startswith("render ")]
    by_state: dict[str, list[str]] = {}
    for run in renders:
        by_state.setdefault(run["state_type"], []).append(run["name"])
    assert sorted(by_state["COMPLETED"]) == sorted(
        f"render {item} [{language}]" + (" (attempt 2)" if f"render {item} [{language}]" == killed["name"] else "")
        for item in ("q1", "q2", "q3")
        for language in ("en", "zh")
    )
    assert by_state["CRASHED"] == [killed["name"]]
    parents = [r for r in runs if r["name"] == "batch pool-it"]
    assert [p["state_type"] for p in parents] == ["COMPLETED", "COMPLETED"]  # the run and the cached re-run
    # Renders are subflows of the batch, so the UI nests them under it.
    assert all(r["parent_task_run_id"] for r in renders)
    tasks = cluster.api("task_runs/filter", {"task_runs": {"name": {"like_": "render q"}}})
    assert sum(t["state_type"] == "COMPLETED" for t in tasks) >= 6
    artifacts = cluster.api("artifacts/filter")
    kinds = [a["type"] for a in artifacts]
    assert kinds.count("image") >= 6 and "table" in kinds and "markdown" in kinds
    assert max(float(a["data"]) for a in artifacts if a["type"] == "progress") == 100.0


def test_an_unchanged_rerun_on_the_pool_renders_nothing(pool_batch):
    *_, rerun, seconds = pool_batch
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "(0 rendered, 6 unchanged)" in rerun.stdout
    assert seconds < 30


def test_api_jobs_render_on_the_pool_under_the_api_key(pool_batch, dhf_home, tmp_path):
    """`api.executor: pool`: a POST /v1/videos becomes a render flow run on the work pool, done by
    the surviving worker, audited under the API key."""
    from conftest import ApiServer, run_dhf

    from config import load_settings
    from governance.audit import AuditLog

    cluster, *_ = pool_batch
    created = run_dhf(["api-key", "create", "--name", "pool-cms", "--scopes", "render,read"], dhf_home)
    token = created.stdout.strip()
    key_id = token.split("_")[1]
    config = CONFIG + "api:\n  executor: pool\n"
    server = ApiServer(dhf_home, tmp_path, config, env={"PREFECT_API_URL": cluster.url}).start()
    try:
        body = {"text": "Rendered by a pool worker.", "language": "en", "avatar_id": "sample", "channel": "demo",
                "purpose": "demo"}  # fmt: skip
        headers = {"Authorization": f"Bearer {token}"}
        job_id = httpx.post(f"{server.url}/v1/videos", json=body, headers=headers, timeout=30).json()["job_id"]
        deadline = time.monotonic() + 240
        while (status := httpx.get(f"{server.url}/v1/videos/{job_id}", headers=headers).json())["status"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline, status
            time.sleep(1)
        assert status["status"] == "succeeded", status
        video = httpx.get(f"{server.url}/v1/videos/{job_id}/video", headers=headers)
        assert video.status_code == 200 and len(video.content) > 10000
    finally:
        server.stop()
    runs = cluster.api("flow_runs/filter", {"flow_runs": {"name": {"any_": ["render video [en]"]}}})
    assert [r["state_type"] for r in runs] == ["COMPLETED"]
    entries = AuditLog(load_settings(home=dhf_home).paths.audit_db).entries()
    assert any(e.record.user == f"api-key:{key_id}" and e.record.output_sha256 == status["result"]["sha256"]
               for e in entries)  # fmt: skip
