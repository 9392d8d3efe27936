"""A streamed answer as a viewer's browser plays it (issue 30): headless Chromium opens the API's demo page,
types a key and a one-sentence question, and the page's own script posts it (POST /v1/streams) and plays the
answer with the vendored hls.js. Measured in the page: the time from the POST to the first frame the video
element presented (requestVideoFrameCallback) — at most 2.0 s on a warm server. A longer answer then plays
from its signed player page (no key): its `currentTime` advances while the server still says `streaming`.
Every request the browser made went to the API itself (no CDN, nothing leaves 127.0.0.1), no key appears in
any URL, and the captions track holds the answer's words.

Why the server is warmed by one stream first: the figure the issue asks for is a warm server's (models,
TTS session and engines loaded, as `settings.streaming.prewarm_avatars` keeps them in production); the
first stream after start-up also pays Python's imports of the stream code.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from chromium import Chromium
from conftest import ApiServer, run_dhf

from api.errors import ApiError
from api.player import VENDOR, Asset, asset_bytes, vendored_pins

ONE_SENTENCE = "Your deposit rate is three point five percent."
LONGER = "Thank you for asking. The one year rate is three point five percent. You can open one in the app today."
FIRST_FRAME_LIMIT_MS = 2000  # the issue's bound for a one-sentence answer on this machine


def _key(home: Path) -> str:
    result = run_dhf(["api-key", "create", "--name", "viewer", "--scopes", "render,read"], home)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _hosts(urls: list[str]) -> set[str]:
    return {urlparse(url).netloc for url in urls if not url.startswith(("data:", "blob:"))}


def _stream(server: ApiServer, key: str, text: str, voice: str = "en-us-female") -> dict:
    body = {"text": text, "language": "en", "avatar_id": "sample", "voice": voice, "channel": "demo", "purpose": "demo"}
    answer = httpx.post(f"{server.url}/v1/streams", json=body, headers={"X-API-Key": key}, timeout=30)
    assert answer.status_code in (201, 202), answer.text
    return answer.json()


def _state(server: ApiServer, key: str, stream_id: str) -> dict:
    return httpx.get(f"{server.url}/v1/streams/{stream_id}", headers={"X-API-Key": key}, timeout=10).json()


def _until_ended(server: ApiServer, key: str, stream_id: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(server, key, stream_id)
        if state["ended"]:
            return state
        time.sleep(0.2)
    raise AssertionError(f"stream {stream_id} did not end in {timeout:.0f} s: {state}")


PLAYER = "window.dhfPlayer ? JSON.stringify(window.dhfPlayer) : ''"
CUES = (
    "JSON.stringify(Array.from(document.getElementById('video').textTracks)"
    ".flatMap(t => Array.from(t.cues || []).map(c => c.text)))"
)


def _ask(page: Chromium, key: str, text: str) -> dict:
    """Type the key and the text into the demo page and click Ask (as a person: a user gesture, so the page
    may play with sound); the page's measurements once its first frame played or the request failed."""
    fill = {"key": key, "text": text, "voice": "en-us-female", "channel": "demo", "purpose": "demo"}
    page.evaluate(
        f"(function(){{var f=document.getElementById('ask'), v={json.dumps(fill)};"
        "for (var k in v) { f.elements[k].value = v[k]; } })()"
    )
    page.send("Runtime.evaluate", expression="document.getElementById('send').click()", userGesture=True)
    played = page.wait_for(f"(function(){{var m = window.dhfPlayer; return m && m.streamId && m.firstFrameMs !== null "
                           f"? {PLAYER} : (m && m.requestError ? {PLAYER} : '')}})()", timeout=30)  # fmt: skip
    return json.loads(played or "{}")


def test_the_vendored_player_is_the_pinned_one_and_a_missing_one_says_run_setup(tmp_path):
    pinned = vendored_pins()["hls.min.js"]
    served = VENDOR / "hls.min.js"
    assert served.is_file(), "hls.js is not vendored: run scripts/setup (scripts/vendor_js)"
    assert hashlib.sha256(served.read_bytes()).hexdigest() == pinned
    assert asset_bytes(Asset(served, "application/javascript", "", pinned)) == served.read_bytes()
    missing, altered = tmp_path / "hls.min.js", tmp_path / "altered" / "hls.min.js"
    altered.parent.mkdir()
    altered.write_bytes(served.read_bytes() + b"\n// changed")
    for path, problem in ((missing, "is not installed"), (altered, "does not match its pinned sha256")):
        with pytest.raises(ApiError) as refused:
            asset_bytes(Asset(path, "application/javascript", "", pinned))
        assert refused.value.status == 503 and problem in refused.value.message, refused.value.message
        assert refused.value.message.endswith("run scripts/setup") and "\n" not in refused.value.message


def test_chromium_plays_a_streamed_answer_while_it_renders(dhf_home, tmp_path):
    key = _key(dhf_home)
    # the test polls the stream's state a few times a second: above a production key's rate limit
    server = ApiServer(dhf_home, tmp_path, config="api:\n  rate_per_minute: 6000\n").start()
    local = urlparse(server.url).netloc
    try:
        # warm: the pool's models and engines, the stream code's imports and first-run paths (not measured)
        warm = _stream(server, key, "Hello.")
        assert _until_ended(server, key, warm["stream_id"])["status"] == "finished"
        policy = httpx.get(f"{server.url}/player", timeout=10).headers["content-security-policy"]
        assert "form-action 'none'" in policy and "frame-ancestors 'none'" in policy, policy  # a typed key stays
        wrong = warm["playback"]["player"].replace(warm["stream_id"], "0" * 32)
        refused = httpx.get(f"{server.url}{wrong}", timeout=10)
        assert refused.status_code == 403 and "not valid" in refused.json()["error"]["message"], refused.text
        with Chromium() as page:
            page.open(f"{server.url}/player")
            assert page.wait_for("document.getElementById('send') && !document.getElementById('send').disabled")
            # a customer's first question in this page, not measured: a browser that just started competes
            # with the render for this machine's 2 cores for seconds (the bench's first stream after opening
            # the browser: 1.9 s to the first frame, the next ones 1.1-1.3 s)
            first = _ask(page, key, "Thank you for waiting.")
            assert first.get("firstFrameMs") is not None, first
            _until_ended(server, key, first["streamId"])
            metrics = _ask(page, key, ONE_SENTENCE)
            assert metrics.get("firstFrameMs") is not None, metrics
            stream_id = metrics["streamId"]
            assert metrics["engine"] == "hls.js" and not metrics["mutedAutoplay"], metrics
            assert metrics["firstFrameMs"] <= FIRST_FRAME_LIMIT_MS, (
                f"first frame {metrics['firstFrameMs']:.0f} ms after the POST (limit {FIRST_FRAME_LIMIT_MS} ms): "
                f"{metrics}"
            )
            marks = {name: round(ms) for name, ms in metrics["marks"].items()}
            print(f"first frame {metrics['firstFrameMs']:.0f} ms after the POST; steps (ms): {marks}")
            ended = _until_ended(server, key, stream_id)
            assert ended["status"] == "finished", ended
            assert page.wait_for("document.getElementById('video').ended", timeout=20), page.evaluate(PLAYER)
            cues = json.loads(page.evaluate(CUES))
            spoken = " ".join(cues).lower()
            assert cues and all(word in spoken for word in ("deposit", "rate", "percent")), cues
            page.settle(0.5)
            requested = page.requested()
            assert _hosts(requested) == {local}, requested
            assert not any(key in url or key.split("_")[-1] in url for url in requested), "an API key in a URL"

            # a longer answer from its own player page (signed path, no key): it plays while it renders
            longer = _stream(server, key, LONGER)
            page.open(f"{server.url}{longer['playback']['player']}")
            together = []  # (currentTime, the server's status right after reading it)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                current = page.evaluate("(document.getElementById('video') || {}).currentTime || 0")
                status = _state(server, key, longer["stream_id"])["status"]
                together.append((current, status))
                if status != "streaming" and status != "starting":
                    break
                time.sleep(0.3)
            # the video played on (two different positions past 0) while the server still rendered
            while_streaming = [current for current, status in together if status == "streaming" and current > 0]
            assert len(while_streaming) >= 2 and while_streaming[-1] > while_streaming[0], together
            assert _until_ended(server, key, longer["stream_id"])["status"] == "finished"
            # the page showed the stream's states as the server went through them
            assert page.wait_for("window.dhfPlayer.states.slice(-1)[0] === 'finished'", timeout=10), page.evaluate(
                PLAYER
            )
            assert "streaming" in json.loads(page.evaluate(PLAYER))["states"]
            assert page.evaluate("document.getElementById('status').textContent").startswith("finished")
            page.settle(0.5)
            assert _hosts(page.requested()) == {local}, page.requested()
    finally:
        server.stop()
