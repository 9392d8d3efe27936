"""The studio's New video, jobs and video pages over HTTP against a real `dhf api` server: the inline
checks say what `validate_request` says, the scene preview is the engine's labelled still, the voice
sample is real speech, a submit makes one API job per language that renders for real (progress pushed
by Server-Sent Events with frame counts), a queued job is cancelled, and the video page plays and
downloads exactly the published files with their provenance; scopes and CSRF are enforced."""

from __future__ import annotations

import hashlib
import html as htmllib
import io
import json
import re
import time
import wave
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from conftest import ApiServer, espeak_template

from api.jobs import JobStore
from api.keys import KeyStore
from avatars.library import AvatarLibrary
from config.errors import DhfError
from governance.label_detect import LabelDetector
from pipeline.request import RenderRequest, validate_request

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
WORD = "Hello."


@pytest.fixture(scope="module")
def studio(dhf_home, tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio-pages")
    server = ApiServer(
        dhf_home, folder, config="api:\n  concurrent_renders: 1\nvideo:\n  width: 640\n  height: 360\n"
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(dhf_home) -> dict[str, str]:
    store = KeyStore(dhf_home / "api" / "keys.sqlite")
    return {name: store.create(f"pages-{name}", scopes)[1] for name, scopes in
            [("editor", ["render", "read"]), ("reader", ["read"]), ("checker", ["review"])]}  # fmt: skip


def sign_in(studio: ApiServer, token: str) -> tuple[httpx.Client, str]:
    """A signed-in client and its session's CSRF token."""
    client = httpx.Client(base_url=studio.url, timeout=60)
    form = client.get("/studio/sign-in")
    response = client.post("/studio/sign-in", data={"api_key": token, "csrf": CSRF.search(form.text).group(1)})
    assert response.status_code == 303, response.text[:500]
    home = client.get("/studio")
    return client, CSRF.search(home.text).group(1)


@pytest.fixture(scope="module")
def editor(studio, tokens):
    client, csrf = sign_in(studio, tokens["editor"])
    yield client, csrf
    client.close()


def test_new_video_page_labels_every_input_and_scopes_choices_by_licence(editor, settings):
    client, _ = editor
    page = client.get("/studio/videos/new")
    assert page.status_code == 200, page.text[:500]
    html = page.text
    ids = re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html)
    assert {"text", "script", "voice", "scene", "channel", "purpose", "avatar-sample"} <= set(ids)
    for control in ids:
        assert f'<label for="{control}"' in html, f"input #{control} has no label"
    assert "<script>" not in html and "style=" not in html
    lic = AvatarLibrary.from_settings(settings.paths).get("sample").license()
    channels = re.search(r'<select id="channel" name="channel">(.*?)</select>', html, re.S).group(1)
    assert re.findall(r'value="([^"]+)"', channels) == list(lic.channels)
    assert lic.license_id in html and lic.valid_until.isoformat() in html
    thumb = client.get("/studio/avatars/sample/thumbnail.png")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    image = cv2.imdecode(np.frombuffer(thumb.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[0] == 160 and image.std() > 20  # a photo, not a blank
    script = client.get("/studio/static/studio.js")
    assert script.status_code == 200 and "X-CSRF-Token" in script.text and "EventSource" in script.text


def test_inline_check_says_what_the_render_would_say(editor, settings, dhf_home):
    client, csrf = editor
    body = {"text": "Hello <b>there</b>", "avatar_id": "sample", "languages": ["en", "xx"], "channel": "demo",
            "purpose": "demo"}  # fmt: skip
    refused = client.post("/studio/videos/check", json=body)  # no CSRF header
    assert refused.status_code == 403 and "security token" in refused.text
    result = client.post("/studio/videos/check", json=body, headers={"X-CSRF-Token": csrf}).json()
    assert result["valid"] is False and result["characters"] == len(body["text"])
    for language, line in zip(("en", "xx"), result["languages"], strict=True):
        probe = RenderRequest(body["text"], "sample", language, dhf_home / "api" / "probe.mp4")
        with pytest.raises(DhfError) as expected:
            validate_request(probe, settings)
        assert line["language"] == language and line["error"] == str(expected.value).splitlines()[0]
    good = {**body, "text": "The rate is 3.5%.", "languages": ["en"]}
    ok = client.post("/studio/videos/check", json=good, headers={"X-CSRF-Token": csrf}).json()
    assert ok["valid"] is True and ok["languages"][0]["spoken_characters"] > len(good["text"])  # "three point five"
    wrong_voice = {**good, "voice": "es-female"}
    mismatch = client.post("/studio/videos/check", json=wrong_voice, headers={"X-CSRF-Token": csrf}).json()
    assert mismatch["valid"] is False and "speaks 'es'" in mismatch["problems"][0]
    script = {"script": ("script.txt", "Caf\xe9".encode("latin-1"), "text/plain")}
    form = {"csrf": csrf, "avatar_id": "sample", "language": "en", "channel": "demo", "purpose": "demo"}
    latin = client.post("/studio/videos", data=form, files=script)  # a script file, as without JavaScript
    assert latin.status_code == 422 and "is not UTF-8 (byte 3)" in latin.text


def test_scene_preview_is_the_labelled_still_and_the_voice_sample_speaks(editor, settings):
    client, _ = editor
    scene = sorted(settings.scenes)[0]
    started = time.perf_counter()
    preview = client.get("/studio/scene-preview.png", params={"avatar": "sample", "scene": scene})
    cold = time.perf_counter() - started
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png", preview.text[:300]
    still = cv2.imdecode(np.frombuffer(preview.content, np.uint8), cv2.IMREAD_COLOR)
    template = settings.scenes[scene]
    assert still.shape[1] == 480 and abs(still.shape[0] / 480 - template.height / template.width) < 0.01
    label = LabelDetector(settings.label, still.shape[0], still.shape[1]).score(still)
    assert label > 0.6, f"no AI label in the preview (score {label:.2f})"
    started = time.perf_counter()
    again = client.get("/studio/scene-preview.png", params={"avatar": "sample", "scene": scene})
    assert again.content == preview.content and time.perf_counter() - started < min(0.5, cold / 2)  # cached
    voice = espeak_template("en").name
    sample = client.get(f"/studio/voices/{voice}/sample.wav")
    assert sample.status_code == 200, sample.text[:300]
    with wave.open(io.BytesIO(sample.content)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    assert 0.5 < seconds < 5 and np.abs(samples).max() > 1000  # speech, not silence
    unknown = client.get("/studio/voices/nobody/sample.wav")
    assert unknown.status_code == 422 and "unknown voice 'nobody'" in htmllib.unescape(unknown.text)


def _events(client: httpx.Client, ids: list[str], timeout: float = 120) -> list[dict]:
    """Every `job` event until the `end` event, reconnecting as an EventSource does when a stream
    reaches its time limit (video_pages.EVENT_MAX_S) first."""
    events, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        kind = ""
        with client.stream("GET", "/studio/jobs-events", params={"ids": ",".join(ids)}, timeout=timeout) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "job":
                    events.append(json.loads(line[6:]))
                elif line.startswith("data: ") and kind == "end":
                    return events
    raise AssertionError(f"no end event within {timeout:.0f} s after {len(events)} events")


@pytest.fixture(scope="module")
def shared() -> dict[str, str]:
    """What one test hands the next: the module renders one video, for the submit and the video page."""
    return {}


def test_submit_renders_one_job_per_language_with_live_progress_and_cancel(editor, studio, tokens, dhf_home, shared):
    client, csrf = editor
    form = {"csrf": csrf, "avatar_id": "sample", "language": ["en", "es"], "text": WORD,
            "voice": espeak_template("en").name, "channel": "demo", "purpose": "demo", "scene": "none"}  # fmt: skip
    reader, reader_csrf = sign_in(studio, tokens["reader"])
    assert reader.post("/studio/videos", data={**form, "csrf": reader_csrf}).status_code == 403  # no render scope
    assert client.post("/studio/videos", data={k: v for k, v in form.items() if k != "csrf"}).status_code == 403
    response = client.post("/studio/videos", data=form)
    assert response.status_code == 303 and response.headers["location"].startswith("/studio/jobs?new="), response.text
    ids = response.headers["location"].split("new=")[1].split(",")
    assert len(ids) == 2
    cancelled = client.post(f"/studio/jobs/{ids[1]}/cancel", data={"csrf": csrf})  # queued behind the first
    assert cancelled.status_code == 303
    events = _events(client, ids)
    first = [event for event in events if event["id"] == ids[0]]
    second = [event for event in events if event["id"] == ids[1]]
    assert second[-1]["status"] == "failed" and second[-1]["error"].startswith("cancelled by pages-editor")
    assert first[-1]["status"] == "succeeded" and first[-1]["stage"] == "published", first[-1]
    framed = [event for event in first if event["frames_total"]]
    assert framed and all(0 < e["frames_done"] <= e["frames_total"] for e in framed)
    assert any(event["stage"] == "rendering frames" for event in first)
    jobs = client.get("/studio/jobs").text
    assert ids[0] in jobs and "published" in jobs and "cancelled by pages-editor" in jobs
    store = JobStore(dhf_home / "api" / "jobs.sqlite")
    assert [store.get(job_id).request["language"] for job_id in ids] == ["en", "es"]
    shared["video"] = ids[0]


def test_video_page_plays_and_downloads_the_published_files(editor, studio, tokens, dhf_home, shared):
    client, _ = editor
    job_id = shared.get("video")
    if job_id is None:
        pytest.fail("the render of the submit test did not finish; see that test")
    page = client.get(f"/studio/videos/{job_id}")
    assert page.status_code == 200, page.text[:800]
    html = page.text
    assert re.search(rf'<video[^>]+controls[^>]*src="/studio/videos/{job_id}/video.mp4"', html, re.S)
    assert re.search(rf'<track kind="captions" src="/studio/videos/{job_id}/captions.vtt"[^>]*default>', html)
    folder = dhf_home / "api" / "jobs" / job_id
    report = json.loads((folder / "video.report.json").read_text(encoding="utf-8"))
    assert report["provenance"]["content_id"] in html and "Quality gate" in html
    assert f"≥ {0.0}" not in html and "Lip-sync correlation" in html
    assert "visible_label" not in html and "Visible AI label" in html
    video = client.get(f"/studio/videos/{job_id}/video.mp4")
    assert hashlib.sha256(video.content).hexdigest() == report["sha256"]
    ranged = client.get(f"/studio/videos/{job_id}/video.mp4", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100
    vtt = client.get(f"/studio/videos/{job_id}/captions.vtt")
    assert vtt.text.startswith("WEBVTT") and vtt.text == Path(folder / "video.vtt").read_text(encoding="utf-8")
    srt = client.get(f"/studio/videos/{job_id}/captions.srt")
    assert "-->" in srt.text and "Hello" in srt.text
    served = client.get(f"/studio/videos/{job_id}/report.json").json()
    assert served["sha256"] == report["sha256"] and "/" not in str(served.get("output") or "")
    other, _ = sign_in(studio, tokens["checker"])  # review scope only: no jobs to read
    assert other.get(f"/studio/videos/{job_id}").status_code == 403
    assert "New video" not in other.get("/studio").text
