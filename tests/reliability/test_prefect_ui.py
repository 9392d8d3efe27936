"""What the Prefect UI shows for a render (issue 18): a readable run name, task names without random
suffixes, and INFO logs in the run's Logs tab (stage timings, the verdict, the review id), read back
from a real `prefect server start` over its REST API."""

from __future__ import annotations

import pytest

from flows.local_cluster import LocalCluster


@pytest.mark.slow  # a Prefect server start plus a render: ~40-60 s on 2 cores
def test_render_run_is_named_and_logs_its_stages_and_verdict(dhf_home, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("video: {width: 640, height: 360}\ngovernance: {review: required}\n", encoding="utf-8")
    with LocalCluster(tmp_path / "cluster", dhf_home, config) as cluster:
        cluster.start(workers=0)
        output = tmp_path / "answer.mp4"
        result = cluster.run("render", "It is 3.5% today.", "--avatar", "sample", "--lang", "en", "-o", str(output),
                             "--quiet")  # fmt: skip
        assert result.returncode == 0 and "held for review" in result.stdout, result.stderr[-2000:]
        review_id = result.stdout.split("held for review ")[1].split()[0]
        (run,) = [r for r in cluster.api("flow_runs/filter") if r["name"].startswith("render answer")]
        assert run["name"] == "render answer [en]" and run["state_type"] == "COMPLETED"
        tasks = cluster.api("task_runs/filter", {"flow_runs": {"id": {"any_": [run["id"]]}}})
        assert {t["name"] for t in tasks} >= {"speech [en]", "render [en]", "quality [en]", "captions [en]"}
        logs = cluster.api("logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}})
        messages = "\n".join(entry["message"] for entry in logs)
        assert all(entry["level"] >= 20 for entry in logs) and "speech: " in messages, messages
        assert f"held for review {review_id}" in messages, messages
    assert not output.exists()
