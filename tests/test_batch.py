"""The factory's batch flow: a 2-item × 2-language script through Prefect (artifacts checked via the
Prefect client), re-runs that render nothing or exactly the changed item, and bad scripts refused
with file:line before any render."""

from __future__ import annotations

import asyncio
import base64
import csv
import json
from pathlib import Path

import pytest
from conftest import assert_refused, run_dhf

from config import load_settings

SCRIPT = """\
name: faq-test
avatar: sample
languages: [en, zh]
channel: demo
purpose: demo
items:
  - id: q1
    text: {en: "What is the rate on a one-year deposit? It is 3.5%.", zh: "一年期定期存款的利率是百分之三点五。"}
  - id: q2
    text: "Thank you."
"""


@pytest.fixture(scope="module")
def first_run(dhf_home, tmp_path_factory):
    """The first batch, in-process on Prefect's test server so its artifacts can be read back."""
    from prefect.client.orchestration import get_client
    from prefect.testing.utilities import prefect_test_harness

    from flows.batch_flow import batch_flow
    from pipeline.batch_script import validate_script

    folder = tmp_path_factory.mktemp("batch")
    script_path = folder / "faq.yaml"
    script_path.write_text(SCRIPT, encoding="utf-8")
    settings = load_settings(home=dhf_home)
    script = validate_script(script_path, settings)
    with prefect_test_harness():
        results = batch_flow(script, settings, folder / "out")

        async def artifacts():
            async with get_client() as client:
                return await client.read_artifacts()

        found = asyncio.run(artifacts())
    return folder, script_path, results, found


def test_every_item_and_language_is_rendered_with_a_manifest(first_run):
    folder, _, results, _ = first_run
    assert [(r.item, r.language, r.status) for r in results] == [
        ("q1", "en", "rendered"),
        ("q1", "zh", "rendered"),
        ("q2", "en", "rendered"),
        ("q2", "zh", "rendered"),
    ]
    manifest = json.loads((folder / "out" / "faq-test" / "manifest.json").read_text())
    rows = list(csv.DictReader((folder / "out" / "faq-test" / "manifest.csv").open()))
    assert len(manifest) == len(rows) == 4
    for row in manifest:
        video = Path(row["output"])
        assert video.is_file() and video.with_suffix(".srt").is_file() and video.with_suffix(".jpg").is_file()
        assert row["quality_passed"] is True and row["license_id"] == "sample-demo-0001"
        assert row["sha256"] and row["duration_s"] > 0.5
    # Mandarin and English variants of the same item each pass lip-sync.
    q1 = {row["language"]: row for row in manifest if row["item"] == "q1"}
    assert q1["en"]["lipsync"] >= 0.4 and q1["zh"]["lipsync"] >= 0.4
    assert [row["shared_text"] for row in manifest] == [False, False, True, True]


def test_prefect_shows_progress_table_summary_and_thumbnails(first_run):
    *_, artifacts = first_run
    kinds = [a.type for a in artifacts]
    assert kinds.count("image") == 4 and "table" in kinds and "markdown" in kinds and "progress" in kinds
    progress = next(a for a in artifacts if a.type == "progress")
    assert float(progress.data) == 100.0
    # thumbnails embedded (a browser refuses file:// images on the UI's http page)
    images = [base64.b64decode(a.data.split(",", 1)[1]) for a in artifacts if a.type == "image"]
    assert all(image[:3] == b"\xff\xd8\xff" and len(image) > 2000 for image in images)


@pytest.mark.slow  # a third batch run on a temporary Prefect server; runs before the edit below (-m "slow or not slow")
def test_an_unchanged_rerun_with_json_prints_the_document_alone(first_run, dhf_home):
    folder, script_path, first, _ = first_run
    as_json = run_dhf(["batch", str(script_path), "--out", str(folder / "out"), "--json"], dhf_home)
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    document = json.loads(as_json.stdout)  # stdout is the document alone; the per-video lines went to stderr
    assert document["script"] == "faq-test" and document["counts"] == {"cached": 4}
    assert [(v["item"], v["language"], v["status"]) for v in document["videos"]] == [
        (r.item, r.language, "cached") for r in first
    ]
    assert document["manifest"] == str(folder / "out" / "faq-test" / "manifest.json")
    assert sum(": cached, " in line for line in as_json.stderr.splitlines()) == 4


def test_unchanged_rerun_renders_nothing_and_an_edit_rerenders_exactly_its_variants(first_run, dhf_home):
    folder, script_path, first, _ = first_run
    again = run_dhf(["batch", str(script_path), "--out", str(folder / "out")], dhf_home)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "(0 rendered, 4 unchanged)" in again.stdout
    lines = again.stdout.splitlines()  # one line per video as it finishes, then the summary
    assert sorted(line.split(":")[0] for line in lines[:4]) == ["q1 [en]", "q1 [zh]", "q2 [en]", "q2 [zh]"], lines
    assert all(": cached, " in line and " s of video" in line for line in lines[:4]), lines
    # stderr is a pipe here, not a terminal: no bar (its escape codes and redraws would fill a log file)
    assert "4/4" not in again.stderr and "\r" not in again.stderr, again.stderr[-2000:]
    script_path.write_text(SCRIPT.replace('"Thank you."', '"Thank you for watching."'), encoding="utf-8")
    edited = run_dhf(["batch", str(script_path), "--out", str(folder / "out")], dhf_home)
    assert edited.returncode == 0, edited.stderr[-2000:]
    assert sum(": rendered, " in line for line in edited.stdout.splitlines()) == 2, edited.stdout
    manifest = json.loads((folder / "out" / "faq-test" / "manifest.json").read_text())
    assert {(r["item"], r["language"]): r["status"] for r in manifest} == {
        ("q1", "en"): "cached",
        ("q1", "zh"): "cached",
        ("q2", "en"): "rendered",
        ("q2", "zh"): "rendered",
    }
    before = {(r.item, r.language): r.sha256 for r in first}
    assert all(r["sha256"] == before[(r["item"], r["language"])] for r in manifest if r["item"] == "q1")


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("name: x\navatar: sample\nlanguages: [en\nitems: []\n", ":4: YAML syntax error"),
        (
            "name: x\navatar: sample\nlanguages: [en]\nitems:\n  - id: q1\n    text: hi\n  - id: q2\n",
            ":7: items[1].text: missing",
        ),
        (
            "name: x\navatar: sample\nlanguages: [en, xx]\nitems:\n  - id: q1\n    text: hi\n",
            ":3: languages: unknown language 'xx'",
        ),
        (
            "name: x\navatar: nobody\nlanguages: [en]\nitems:\n  - id: q1\n    text: hi\n",
            ":2: avatar: unknown avatar 'nobody'",
        ),
        (
            "name: x\navatar: sample\nlanguages: [en]\nchannel: tv\nitems:\n  - id: q1\n    text: hi\n",
            "channel 'tv' is out of scope",
        ),
        (
            "name: x\navatar: sample\nlanguages: [en]\nitems:\n  - id: q1\n    text: {en: hi, fr: salut}\n",
            "has a text for 'fr'",
        ),
    ],
)
def test_bad_scripts_are_refused_before_any_render(script, message, dhf_home, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(script)
    result = run_dhf(["batch", str(path), "--out", str(tmp_path / "out")], dhf_home)
    assert_refused(result, message, tmp_path / "out" / "x" / "en" / "q1.mp4")
    assert str(path) in result.stderr and not (tmp_path / "out").exists()


def test_csv_scripts_take_the_batch_fields_from_the_command_line(dhf_home, tmp_path):
    from pipeline.batch_script import validate_script

    path = tmp_path / "questions.csv"
    path.write_text("id,text_en,text_zh\nq1,Hello.,你好。\nq2,Goodbye.,\n", encoding="utf-8")
    settings = load_settings(home=dhf_home)
    defaults = {"avatar": "sample", "languages": "en,zh"}
    from pipeline.batch_script import BatchScriptError

    with pytest.raises(BatchScriptError, match=r"questions.csv:3: items\[1\].text: no text for language 'zh'"):
        validate_script(path, settings, defaults)
    path.write_text("id,text\nq1,Hello.\nq2,Goodbye.\n", encoding="utf-8")
    script = validate_script(path, settings, defaults)
    assert [(j.item_id, j.language, j.shared_text) for j in script.jobs][:2] == [("q1", "en", True), ("q1", "zh", True)]


@pytest.mark.slow  # ~30 s: two scheduled runs through a served deployment
def test_serve_validates_scripts_and_cron_and_each_run_rereads_its_script(dhf_home, tmp_path, monkeypatch):
    from prefect.testing.utilities import prefect_test_harness

    from flows.schedule import scheduled_batch

    script = tmp_path / "daily.yaml"
    script.write_text("name: daily\navatar: sample\nlanguages: [en]\nitems:\n  - id: hi\n    text: Hello.\n")
    listed = run_dhf(
        ["serve", str(script), "--cron", "0 6 * * *", "--out", str(tmp_path / "out"), "--dry-run"], dhf_home
    )
    assert listed.returncode == 0 and "batch-daily: cron '0 6 * * *'" in listed.stdout, listed.stderr
    assert_refused(
        run_dhf(["serve", str(script), "--cron", "every day"], dhf_home), "is not a cron expression", tmp_path / "x"
    )
    monkeypatch.setenv("DHF_HOME", str(dhf_home))  # what the served process would have
    with prefect_test_harness():
        assert scheduled_batch(str(script), str(tmp_path / "out")) == 1
        script.write_text(script.read_text() + "  - id: bye\n    text: Goodbye.\n")  # edited between two runs
        assert scheduled_batch(str(script), str(tmp_path / "out")) == 2
    statuses = {r["item"]: r["status"] for r in json.loads((tmp_path / "out" / "daily" / "manifest.json").read_text())}
    assert statuses == {"hi": "cached", "bye": "rendered"}


def test_transient_failures_are_retried_and_refusals_are_not(dhf_home, tmp_path, monkeypatch):
    """An I/O hiccup on the first attempt is retried and the video completes; a refusal (here a speech
    error) is attempted once, listed in the manifest, and fails the batch without stopping the rest."""
    from prefect.testing.utilities import prefect_test_harness

    import pipeline.executor
    from flows.batch_flow import batch_flow
    from phoneme.errors import SpeechError
    from pipeline.batch_script import BatchJobsFailedError, validate_script

    real_render = pipeline.executor.render_validated  # a batch's video: validated once, then rendered
    attempts: dict[str, int] = {}

    def flaky_render(validated, settings, *args, **kwargs):
        item = validated.request.output.stem
        attempts[item] = attempts.get(item, 0) + 1
        if item == "flaky" and attempts[item] == 1:
            raise OSError(5, "Input/output error (injected)", str(validated.request.output))
        if item == "refused":
            raise SpeechError("injected refusal")
        return real_render(validated, settings, *args, **kwargs)

    monkeypatch.setattr(pipeline.executor, "render_validated", flaky_render)
    path = tmp_path / "flaky.yaml"
    path.write_text("name: flaky\navatar: sample\nlanguages: [en]\nitems:\n"
                    "  - id: flaky\n    text: Thank you.\n  - id: refused\n    text: Goodbye.\n")  # fmt: skip
    settings = load_settings(home=dhf_home)
    with prefect_test_harness(), pytest.raises(BatchJobsFailedError, match=r"1 of 2 videos failed: refused \[en\]"):
        batch_flow(validate_script(path, settings), settings, tmp_path / "out")
    assert attempts == {"flaky": 2, "refused": 1}
    rows = {r["item"]: r for r in json.loads((tmp_path / "out" / "flaky" / "manifest.json").read_text())}
    assert rows["flaky"]["status"] == "rendered" and rows["flaky"]["quality_passed"] is True
    assert rows["refused"]["status"] == "failed" and "injected refusal" in rows["refused"]["error"]
    assert not Path(rows["refused"]["output"]).exists()


def test_pool_without_a_server_or_setup_says_what_to_run(dhf_home, tmp_path):
    script = tmp_path / "s.yaml"
    script.write_text("name: s\navatar: sample\nlanguages: [en]\nitems:\n  - id: a\n    text: Hello.\n")
    result = run_dhf(["batch", str(script), "--out", str(tmp_path / "out"), "--pool"], dhf_home)
    assert_refused(result, "needs a Prefect server", tmp_path / "out" / "s" / "en" / "a.mp4")
    assert "PREFECT_API_URL" in result.stderr
    assert_refused(run_dhf(["pool", "worker"], dhf_home), "needs a Prefect server", tmp_path / "x")
