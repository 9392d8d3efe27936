"""The review gate through Prefect's pause/resume with input (issue 18), on a real `prefect server start`
with its UI: `dhf render --wait-review` holds the video, its flow run is `Held` (Paused) with the review form
(ReviewInput) and the thumbnail, scores and video link; headless Chromium finds the thumbnail loaded
in the UI; resuming with input (what the UI's form sends) publishes and names the reviewer in the
audit log; a decision made with `dhf review reject` while the run waits resumes it and removes the
video."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path

import httpx
import pytest
from chromium import Chromium

from config import load_settings
from flows.local_cluster import LocalCluster
from governance.audit import AuditLog
from pipeline.review_store import ReviewStore

REVIEW = "video: {width: 640, height: 360}\ngovernance: {review: required}\n"
TEXT = "The rate is 3.5% for one year."
THUMBNAIL = "Array.from(document.images).filter(i => i.src.startsWith('data:image/jpeg')).map(i => i.naturalWidth)"


def _paused(cluster: LocalCluster, process, name: str, home: Path, timeout: float = 300) -> tuple[dict, str]:
    """The flow run `name` once Paused, and the review it waits for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, (cluster.folder / f"{name}.log").read_text()[-3000:]
        runs = [r for r in cluster.api("flow_runs/filter") if r["name"] == name]
        if runs and runs[0]["state_type"] == "PAUSED" and runs[0]["state_name"] == "Held":
            (record,) = [r for r in ReviewStore(load_settings(home=home)).all() if r.flow_run_id == runs[0]["id"]]
            return runs[0], record.id
        time.sleep(1)
    raise AssertionError(f"{name} did not pause: {(cluster.folder / f'{name}.log').read_text()[-3000:]}")


def _spawn_render(cluster: LocalCluster, output: Path, name: str):
    command = cluster.dhf("render", TEXT, "--avatar", "sample", "--lang", "en", "-o", str(output), "--quiet",
                          "--wait-review")  # fmt: skip
    return cluster.spawn(command, f"{name}.log")


def _audit(home: Path, review_id: str):
    entries = AuditLog(load_settings(home=home).paths.audit_db).entries()
    (entry,) = [e for e in entries if e.record.action == "review" and e.record.extra.get("review") == review_id]
    return entry.record


@pytest.mark.slow  # a Prefect server with its UI, two renders, a browser: ~90 s on 2 cores
def test_paused_review_run_resumed_from_its_form_and_by_the_cli(dhf_home, tmp_path):
    config = tmp_path / "review.yaml"
    config.write_text(REVIEW, encoding="utf-8")
    with LocalCluster(tmp_path / "cluster", dhf_home, config) as cluster:
        cluster.server_env["PREFECT_UI_ENABLED"] = "true"
        cluster.start(workers=0)

        output = tmp_path / "approved.mp4"
        name = "render approved [en]"
        process = _spawn_render(cluster, output, name)
        run, review_id = _paused(cluster, process, name, dhf_home)
        assert not output.exists()
        # the form: the run input's schema is ReviewInput's, its description shows the review
        inputs = cluster.api(f"flow_runs/{run['id']}/input/filter", {"prefix": "held-", "limit": 10})
        keys = {item["key"].rsplit("-", 1)[-1]: json.loads(item["value"]) for item in inputs}
        assert set(keys["schema"]["properties"]) == {"decision", "reviewer", "comment"}, keys["schema"]
        assert "data:image/jpeg;base64," in keys["description"] and "lipsync" in keys["description"], keys

        (artifact,) = cluster.api("artifacts/filter", {"artifacts": {"key": {"any_": ["review"]}}})
        ui = cluster.url.removesuffix("/api")
        with Chromium() as page:
            page.open(f"{ui}/artifacts/artifact/{artifact['id']}")
            widths = page.wait_for(f"({THUMBNAIL}).filter(w => w > 0)", timeout=60)
            page.screenshot(tmp_path / "ui-artifact.png")
            assert widths and widths[0] > 0, widths
            page.open(f"{ui}/runs/flow-run/{run['id']}")
            assert page.wait_for("document.body.innerText.includes('Held')", timeout=60)  # the state's name
            page.screenshot(tmp_path / "ui-run.png")
            page.evaluate("Array.from(document.querySelectorAll('button')).find(b => b.innerText.trim() == 'Resume')"
                          ".click()")  # fmt: skip
            form = page.wait_for(f"({THUMBNAIL}).some(w => w > 0) && document.body.innerText.includes('Reviewer')",
                                 timeout=30)  # fmt: skip
            page.screenshot(tmp_path / "ui-resume-form.png")
            assert form, page.evaluate("document.body.innerText")[-2000:]
            assert not output.exists()

        # what the form's Submit sends (typing into the form from the DevTools protocol did not reach its model)
        answer = {"decision": "approve", "reviewer": "dana", "comment": "rate checked"}
        response = httpx.post(f"{cluster.url}/flow_runs/{run['id']}/resume", json={"run_input": answer}, timeout=30)
        assert response.status_code in (200, 201) and response.json()["status"] == "ACCEPT", response.text
        assert process.wait(timeout=120) == 0, (cluster.folder / f"{name}.log").read_text()[-3000:]
        assert "approved by dana" in (cluster.folder / f"{name}.log").read_text()
        assert output.is_file() and output.with_suffix(".srt").is_file()
        record = _audit(dhf_home, review_id)
        # Prefect's form is not authenticated: the actor says where the decision came from, the name who typed it
        assert (record.user, record.extra["reviewer"], record.outcome) == ("prefect-ui", "dana", "success")
        assert record.extra["comment"] == "rate checked"
        assert cluster.get(f"flow_runs/{run['id']}")["state_type"] == "COMPLETED"

        output = tmp_path / "rejected.mp4"
        name = "render rejected [en]"
        process = _spawn_render(cluster, output, name)
        run, review_id = _paused(cluster, process, name, dhf_home)
        result = cluster.run("review", "reject", review_id, "--reviewer", "erin", "-m", "wrong figure")
        assert result.returncode == 0 and "rejected by erin" in result.stdout, result.stderr[-2000:]
        assert process.wait(timeout=120) == 7, (cluster.folder / f"{name}.log").read_text()[-3000:]
        assert "rejected in review" in (cluster.folder / f"{name}.log").read_text()
        assert not output.exists() and not any(p.name.startswith(".rejected") for p in tmp_path.iterdir())
        decided = _audit(dhf_home, review_id)
        assert (decided.user, decided.extra["reviewer"], decided.outcome) == (getpass.getuser(), "erin", "refused")
        final = cluster.get(f"flow_runs/{run['id']}")
        assert (final["state_type"], final["state_name"]) == ("FAILED", "Rejected"), final["state"]
