"""Streamed answers over HTTP (`/v1/streams`, api/routers/streams.py) against real uvicorn servers.

Two kinds of server:
- the API app in this process on a real uvicorn server, with a stand-in producer that writes the
  stream folder contract (streaming/state.py) from real ffmpeg fMP4 segments, releasing them one by one
  while the test holds or lets it go: serving rules (only released files, blocking first playlist
  request, content types, signed paths), auth, admission under load, cancel, refusals; seconds each;
- `dhf api` (a subprocess, the real renderer `streaming.render.run_stream` with its warm pool): a
  one-sentence answer played from its HTTP playlist by ffmpeg while it still renders (slow-marked; the
  browser test, tests/reliability/test_stream_browser.py, plays a real stream in the default suite).
Admission control's model is also checked alone (streaming/admission.py), with a simulated clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import ApiServer, own_home, run_dhf

from api.app import create_app
from api.context import ApiContext
from api.keys import KeyStore
from api.playback import playback_secret, sign
from api.streams import OWNER_FILE, StreamService
from config import load_settings
from config.settings import StreamAdmissionSettings
from governance.audit import AuditLog
from streaming.admission import Admission, estimated_seconds
from streaming.state import StreamState, read_state, write_state

DEMO = {"avatar_id": "sample", "language": "en", "channel": "demo", "purpose": "demo"}
SEGMENT_FRAMES = 12  # 0.48 s at 25 fps: whole frames per segment
SEGMENTS = 6


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- a stand-in producer: the folder contract from real ffmpeg segments ---------------------------------------
def _encode(folder: Path, segments: int) -> list[str]:
    """fMP4 HLS segments of a test pattern with a tone, a keyframe at every segment start (as the
    stream encoder makes them); returns the segment names in order."""
    enc = folder / "enc"
    enc.mkdir(parents=True, exist_ok=True)
    seconds = segments * SEGMENT_FRAMES / 25
    command = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
               "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
               "-c:v", "libx264", "-preset", "ultrafast", "-g", str(SEGMENT_FRAMES), "-keyint_min", str(SEGMENT_FRAMES),
               "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "hls", "-hls_time", "0.48",
               "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "run0_init.mp4",
               "-hls_segment_filename", str(enc / "run0_%05d.m4s"), str(enc / "run0.m3u8")]  # fmt: skip
    subprocess.run(command, check=True, timeout=60)
    return [line for line in (enc / "run0.m3u8").read_text().splitlines() if line.endswith(".m4s")]


def _playlist(names: list[str], ended: bool) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0",
             f"#EXT-X-PLAYLIST-TYPE:{'VOD' if ended else 'EVENT'}", "#EXT-X-INDEPENDENT-SEGMENTS",
             '#EXT-X-MAP:URI="enc/run0_init.mp4"']  # fmt: skip
    for name in names:
        lines += ["#EXTINF:0.480000,", f"enc/{name}"]
    return "\n".join(lines + (["#EXT-X-ENDLIST"] if ended else [])) + "\n"


MASTER = (
    "#EXTM3U\n#EXT-X-VERSION:7\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=320x240,CODECS="avc1.42c00d,mp4a.40.2"\nvideo.m3u8\n'
)


class FakeProducer:
    """Writes the folder contract: every segment encoded at once (so unreleased ones exist on disk), then
    released one by one every `gap_s`, after `hold` is set (when given)."""

    def __init__(self, gap_s: float = 0.15, segments: int = SEGMENTS) -> None:
        self.gap_s, self.segments = gap_s, segments
        self.hold: threading.Event | None = None
        self.started = threading.Event()

    def reset(self, held: bool) -> threading.Event | None:
        """For the next stream: released at once, or held until the returned event is set."""
        self.started = threading.Event()
        self.hold = threading.Event() if held else None
        return self.hold

    def __call__(self, folder: Path, validated, on_progress) -> StreamState:
        from config.files import write_text_atomic

        names = _encode(folder, self.segments)
        state = read_state(folder) or StreamState(folder.name)
        state = state.but(total_frames=SEGMENT_FRAMES * len(names))
        self.started.set()
        write_text_atomic(folder / "master.m3u8", MASTER)
        for index in range(len(names)):
            while self.hold is not None and not self.hold.wait(0.05):
                on_progress(state)  # a cancel raises here
            time.sleep(self.gap_s)
            write_text_atomic(folder / "video.m3u8", _playlist(names[: index + 1], ended=False))
            first = state.first_release_s if state.first_release_s is not None else time.time() - state.created
            released = index + 1
            state = state.but(status="streaming", released_segments=released, rendered_frames=SEGMENT_FRAMES * released,
                              released_seconds=0.48 * released, first_release_s=first)  # fmt: skip
            write_state(folder, state)
            on_progress(state)
        write_text_atomic(folder / "video.m3u8", _playlist(names, ended=True))
        state = state.but(status="finished", ended_at=time.time())
        write_state(folder, state)
        on_progress(state)
        return state


class InProcessServer:
    """The API app on a real uvicorn server in a thread of this process (so a test can hand it a producer)."""

    def __init__(self, settings, producer) -> None:
        from flows.local_cluster import free_port

        self.context = ApiContext.create(settings, producer=producer)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings, self.context), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> InProcessServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return own_home(tmp_path_factory.mktemp("streams-home"))


@pytest.fixture(scope="module")
def keys(home) -> dict[str, tuple[str, str]]:
    store = KeyStore(home / "api" / "keys.sqlite")
    made = {}
    for name, scopes in (("app", ["render", "read"]), ("other", ["render", "read"]), ("reader", ["read"])):
        key, token = store.create(name, scopes)
        made[name] = (key.id, token)
    return made


@pytest.fixture(scope="module")
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture(scope="module")
def api(home, producer):
    settings = load_settings(home=home).with_section("api", rate_per_minute=100000)
    with InProcessServer(settings, producer) as server:
        yield server


def _start(api, keys, text: str = "Your card is on its way.", name: str = "app") -> httpx.Response:
    return httpx.post(f"{api.url}/v1/streams", json={**DEMO, "text": text}, headers=_auth(keys[name][1]), timeout=30)


def _wait_ended(api, stream_id: str, token: str, timeout: float = 30) -> dict:
    """The stream's status once it ended (`api`: anything with the server's `url`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{api.url}/v1/streams/{stream_id}", headers=_auth(token), timeout=10).json()
        if status["ended"]:
            return status
        time.sleep(0.1)
    raise AssertionError(f"stream {stream_id} did not end in {timeout} s: {status}")


def _frames(url: str) -> int:
    """Frames ffmpeg decodes from an HLS URL (it follows an EVENT playlist until its ENDLIST)."""
    command = ["ffprobe", "-v", "error", "-live_start_index", "0", "-select_streams", "v:0", "-count_frames",
               "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", url]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-1000:]
    return int(result.stdout.split()[0].split(",")[0])  # one line per program: the first


# --- serving ------------------------------------------------------------------------------------------------
def test_a_stream_plays_over_http_while_it_is_released_and_only_released_files_are_served(api, keys, producer):
    producer.reset(held=True)
    accepted = _start(api, keys)
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    stream_id, master = body["stream_id"], body["playback"]["master"]
    assert master.startswith(f"/v1/streams/{stream_id}/") and master.endswith("/master.m3u8")
    assert body["playback"]["player"] == master.replace("master.m3u8", "player")
    assert body["status"] == "starting" and body["links"]["self"] == f"/v1/streams/{stream_id}"
    base = api.url + master.rsplit("/", 1)[0]

    # The first playlist request blocks until the first release: released two segments' time later.
    assert producer.started.wait(20)
    threading.Timer(0.6, producer.hold.set).start()
    asked = time.monotonic()
    first = httpx.get(f"{base}/video.m3u8", timeout=30)
    waited = time.monotonic() - asked
    assert first.status_code == 200 and waited >= 0.6, (first.status_code, waited)
    assert first.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert first.headers["cache-control"] == "no-cache" and first.headers["x-content-type-options"] == "nosniff"
    named = [line for line in first.text.splitlines() if line.startswith("enc/")]
    assert named and "#EXT-X-PLAYLIST-TYPE:EVENT" in first.text and "#EXT-X-ENDLIST" not in first.text

    # ffmpeg plays the live playlist from the URL (no key: the signed path) while segments are released.
    status = httpx.get(f"{api.url}/v1/streams/{stream_id}", headers=_auth(keys["app"][1])).json()
    assert status["status"] == "streaming" and not status["ended"], status
    assert _frames(f"{base}/master.m3u8") == SEGMENT_FRAMES * SEGMENTS

    segment = httpx.get(f"{base}/{named[0]}")
    assert segment.status_code == 200 and segment.headers["content-type"] == "video/mp4"
    assert segment.content == (api.context.streams.folder(stream_id) / named[0]).read_bytes()
    assert "immutable" in segment.headers["cache-control"]
    init = httpx.get(f"{base}/enc/run0_init.mp4")
    assert init.status_code == 200 and init.content[4:8] == b"ftyp"
    status = _wait_ended(api, stream_id, keys["app"][1])
    assert status["status"] == "finished" and status["released_segments"] == SEGMENTS
    assert status["first_release_s"] is not None and status["first_release_s"] >= 0.6
    final = httpx.get(f"{base}/video.m3u8").text
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in final and final.rstrip().endswith("#EXT-X-ENDLIST")
    # Files the encoder wrote but no playlist names, and anything outside the folder: 404.
    (api.context.streams.folder(stream_id) / "enc" / "run0_00099.m4s").write_bytes(b"unreleased")
    # (state.json: the player's route answers it with the viewer's fields, api/player.py)
    for name in ("enc/run0_00099.m4s", "enc/run0.m3u8", OWNER_FILE, "enc/..%2Fowner.json",
                 "..%2F..%2Fapi%2Fkeys.sqlite", "answer.mp4"):  # fmt: skip
        assert httpx.get(f"{base}/{name}").status_code in (404, 422), name


def test_unreleased_segments_are_404_while_streaming(api, keys, producer):
    producer.reset(held=True)
    stream_id = _start(api, keys).json()["stream_id"]
    token = sign(playback_secret(api.context.settings), stream_id, api.context.streams.owner(stream_id).expires)
    base = f"{api.url}/v1/streams/{stream_id}/{token}"
    folder = api.context.streams.folder(stream_id)
    deadline = time.monotonic() + 20
    while not (folder / "enc" / "run0_00005.m4s").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (folder / "enc" / "run0_00005.m4s").is_file()  # written by the encoder, not released
    assert httpx.get(f"{base}/enc/run0_00005.m4s").status_code == 404
    assert httpx.get(f"{base}/enc/run0_00000.m4s").json()["error"]["code"] == "not_released"
    producer.hold.set()
    _wait_ended(api, stream_id, keys["app"][1])
    assert httpx.get(f"{base}/enc/run0_00005.m4s").status_code == 200


def test_playback_needs_a_valid_unexpired_token_of_that_stream(api, keys, producer):
    producer.reset(held=False)
    first = _start(api, keys).json()
    second = _start(api, keys).json() if _wait_ended(api, first["stream_id"], keys["app"][1]) else None
    one, other = first["stream_id"], second["stream_id"]
    token = first["playback"]["master"].split("/")[4]
    secret = playback_secret(api.context.settings)
    expired = sign(secret, one, int(time.time()) - 1)
    for bad, code in (
        (token[:-1] + ("0" if token[-1] != "0" else "1"), "invalid_playback_token"),  # tampered
        (second["playback"]["master"].split("/")[4], "invalid_playback_token"),  # another stream's token
        (expired, "playback_expired"),
        (sign(b"x" * 32, one, int(time.time()) + 60), "invalid_playback_token"),  # another server's secret
    ):
        response = httpx.get(f"{api.url}/v1/streams/{one}/{bad}/master.m3u8")
        assert (response.status_code, response.json()["error"]["code"]) == (403, code), bad
        assert len(response.json()["error"]["message"].splitlines()) == 1
    assert httpx.get(f"{api.url}/v1/streams/{one}/{token}/master.m3u8").status_code == 200
    _wait_ended(api, other, keys["app"][1])


def test_keys_scopes_and_ownership(api, keys, producer):
    producer.reset(held=False)
    assert httpx.post(f"{api.url}/v1/streams", json={**DEMO, "text": "Hi."}).status_code == 401
    refused = _start(api, keys, name="reader")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "missing_scope")
    stream_id = _start(api, keys).json()["stream_id"]
    _wait_ended(api, stream_id, keys["app"][1])
    assert httpx.get(f"{api.url}/v1/streams/{stream_id}", headers=_auth(keys["other"][1])).status_code == 404
    assert httpx.get(f"{api.url}/v1/streams/{stream_id}").status_code == 401
    assert httpx.get(f"{api.url}/v1/streams/{'0' * 32}", headers=_auth(keys["app"][1])).status_code == 404
    # the published answer exists only once the renderer published it (this producer publishes nothing)
    video = httpx.get(f"{api.url}/v1/streams/{stream_id}/video", headers=_auth(keys["app"][1]))
    assert (video.status_code, video.json()["error"]["code"]) == (404, "not_ready")


# --- admission, cancel --------------------------------------------------------------------------------------
def test_under_load_streams_are_admitted_or_refused_at_once_with_retry_after(home, keys, producer):
    """A cold server (nothing measured yet) keeps one stream at a time: of 4 parallel requests one starts,
    three get 503 + Retry-After at once, each refusal audited; once it ended, a new one starts."""
    producer.reset(held=True)
    settings = load_settings(home=home).with_section("api", rate_per_minute=100000)
    with InProcessServer(settings, producer) as api, ThreadPoolExecutor(max_workers=4) as pool:
        started = time.monotonic()
        answers = list(pool.map(lambda n: _start(api, keys, f"Question number {n}."), range(4)))
        elapsed = time.monotonic() - started
        codes = sorted(a.status_code for a in answers)
        assert codes == [202, 503, 503, 503], [a.text for a in answers]
        assert elapsed < 10, elapsed  # refused up front, not after waiting
        for busy in (a for a in answers if a.status_code == 503):
            assert int(busy.headers["retry-after"]) >= 1
            error = busy.json()["error"]
            assert error["code"] == "streams_busy" and "retry in" in error["message"] and "\n" not in error["message"]
        entries = AuditLog(settings.paths.audit_db).entries()
        busy_refusals = [e for e in entries if e.record.outcome == "refused" and "StreamsBusyError" in e.record.detail]
        assert len(busy_refusals) >= 3 and busy_refusals[-1].record.user == f"api-key:{keys['app'][0]}"
        running = next(a for a in answers if a.status_code == 202).json()["stream_id"]
        producer.hold.set()
        _wait_ended(api, running, keys["app"][1])
        deadline = time.monotonic() + 10
        while api.context.streams.is_running(running) and time.monotonic() < deadline:
            time.sleep(0.05)
        again = _start(api, keys)
        assert again.status_code == 202, again.text
        _wait_ended(api, again.json()["stream_id"], keys["app"][1])


def test_delete_cancels_a_running_stream_and_ends_its_playlist(api, keys, producer):
    producer.reset(held=True)
    stream_id = _start(api, keys).json()["stream_id"]
    assert producer.started.wait(20)
    assert httpx.delete(f"{api.url}/v1/streams/{stream_id}", headers=_auth(keys["other"][1])).status_code == 404
    cancelled = httpx.delete(f"{api.url}/v1/streams/{stream_id}", headers=_auth(keys["app"][1]), timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert (body["status"], body["ended"]) == ("failed", True) and "cancelled" in body["message"], body
    assert not api.context.streams.is_running(stream_id)
    assert _start(api, keys).status_code == 202  # its admission share is free again


def test_review_required_configuration_cannot_stream(home, keys, producer):
    settings = load_settings(home=home).with_section("governance", review="required")
    with InProcessServer(settings, producer) as server:
        refused = _start(server, keys)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "stream_refused" and "review" in error["message"] and "POST /v1/videos" in error["message"]
    last = AuditLog(settings.paths.audit_db).entries()[-1].record
    assert (last.outcome, last.user) == ("refused", f"api-key:{keys['app'][0]}") and "StreamRefusedError" in last.detail


def test_restart_ends_streams_of_a_dead_process_and_old_folders_are_deleted(tmp_path):
    settings = load_settings(home=own_home(tmp_path / "home"))
    service = StreamService(settings, producer=lambda *args: None)
    dead = subprocess.Popen(["true"])
    dead.wait()
    for stream_id, pid, ended_at in (("a" * 32, dead.pid, None), ("b" * 32, os.getpid(), None),
                                     ("c" * 32, dead.pid, time.time() - 7200)):  # fmt: skip
        folder = service.folder(stream_id)
        folder.mkdir(parents=True)
        owner = {"stream_id": stream_id, "key_id": "k", "created": time.time(), "expires": 0, "host": service.host,
                 "pid": pid}  # fmt: skip
        (folder / OWNER_FILE).write_text(json.dumps(owner))
        status = "finished" if ended_at else "streaming"
        write_state(folder, StreamState(stream_id, status=status, ended_at=ended_at, created=time.time() - 7300))
    settings_short = settings.with_section("streaming", keep_finished_s=3600)
    service.settings = settings_short
    assert service.recover() == ["a" * 32]
    assert read_state(service.folder("a" * 32)).status == "failed"
    assert "server stopped" in read_state(service.folder("a" * 32)).message
    assert read_state(service.folder("b" * 32)).status == "streaming"  # this process: not touched
    assert not service.folder("c" * 32).exists()  # ended two hours ago, kept one


# --- admission control's model ------------------------------------------------------------------------------
def test_admission_measures_capacity_and_predicts_retry_after():
    now = [0.0]
    settings = StreamAdmissionSettings(max_streams=3, cold_throughput_fps=40.0)
    admission = Admission(settings, fps=25, clock=lambda: now[0])
    assert admission.admit("a", 4.0).admitted  # cold: one at a time
    refused = admission.admit("b", 4.0)
    assert not refused.admitted and "40 frames/s" in refused.reason
    assert refused.retry_after_s == 3  # 100 frames left at the cold 40 frames/s: 2.5 s
    for step in range(1, 9):  # "a" renders 80 frames/s: the server can keep two streams
        now[0] = step * 0.5
        admission.progress("a", step * 40, total_frames=400, first_release_s=0.5 if step == 1 else None)
    assert admission.capacity_fps() == pytest.approx(80.0)
    assert admission.admit("b", 4.0).admitted
    third = admission.admit("c", 4.0)  # 80 / 3 = 27 < 25 x 1.15
    assert not third.admitted and third.retry_after_s == 1  # "a" has 80 frames left: 1 s at 80 frames/s
    admission.finish("a")
    assert admission.admit("c", 4.0).admitted
    assert not admission.admit("d", 1.0).admitted  # max_streams... and the share
    slow = Admission(StreamAdmissionSettings(start_budget_s=1.0, cold_throughput_fps=500.0), fps=25)
    assert slow.admit("a", 2.0).admitted
    slow.progress("a", 0, first_release_s=0.8)
    first = slow.admit("b", 2.0)  # 2 x 0.8 s > the 1 s budget
    assert not first.admitted and "budget" in first.reason


def test_answer_length_estimate():
    assert estimated_seconds("Hi.") == 1.0
    assert estimated_seconds(" ".join(["word"] * 25)) == pytest.approx(10.0)
    assert estimated_seconds("你好" * 9) == pytest.approx(4.0)


# --- the real renderer (`dhf api`) --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_api(tmp_path_factory):
    home = own_home(tmp_path_factory.mktemp("real-streams-home"))
    made = run_dhf(["api-key", "create", "--name", "app", "--scopes", "render,read"], home)
    assert made.returncode == 0, made.stderr
    server = ApiServer(home, tmp_path_factory.mktemp("real-api")).start()
    yield server, made.stdout.strip()
    server.stop()


@pytest.mark.slow  # a server start, a warm-up stream on a fresh home and the stream itself: ~30 s on 2 shared cores
def test_a_real_stream_plays_from_http_while_it_renders_and_publishes_the_same_frames(real_api, tmp_path):
    """The fake producer's serving test with the real renderer: after one warm-up stream (a fresh home
    analyses the avatar first), ffmpeg plays the stream from its HTTP playlist while it still renders,
    and the frames it decoded are the stream's frames and the published MP4's."""
    server, token = real_api
    warm_up = httpx.post(f"{server.url}/v1/streams", json={**DEMO, "text": "Hello."}, headers=_auth(token), timeout=60)
    assert warm_up.status_code == 202, warm_up.text
    assert _wait_ended(server, warm_up.json()["stream_id"], token, timeout=180)["status"] == "finished"
    accepted = httpx.post(f"{server.url}/v1/streams", json={**DEMO, "text": "Your new card is on its way."},
                          headers=_auth(token), timeout=60)  # fmt: skip
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    stream_id, master = body["stream_id"], server.url + body["playback"]["master"]
    played = {}

    def play() -> None:
        played["frames"] = _frames(master)

    player = threading.Thread(target=play)
    player.start()
    states = []
    while player.is_alive():
        states.append(httpx.get(f"{server.url}/v1/streams/{stream_id}", headers=_auth(token), timeout=10).json())
        time.sleep(0.1)
    player.join()
    assert any(s["status"] == "streaming" and s["released_segments"] > 0 for s in states), states[-3:]
    final = _wait_ended(server, stream_id, token, timeout=120)
    assert final["status"] == "finished", final
    assert played["frames"] == final["total_frames"] == final["rendered_frames"], (played, final)
    video = httpx.get(f"{server.url}/v1/streams/{stream_id}/video", headers=_auth(token), timeout=60)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    (tmp_path / "answer.mp4").write_bytes(video.content)
    from media.video import probe

    assert probe(tmp_path / "answer.mp4").frames == final["total_frames"]
    report = httpx.get(f"{server.url}/v1/streams/{stream_id}/report", headers=_auth(token)).json()
    assert report["frames"] == final["total_frames"] and str(server.home) not in json.dumps(report)
    vtt = httpx.get(f"{server.url}/v1/streams/{stream_id}/captions?format=vtt", headers=_auth(token)).text
    assert vtt.startswith("WEBVTT") and "card" in vtt
    print(f"first release {final['first_release_s']:.2f} s after the request")


# --- streams on the work pool (api.executor: pool): the submitter's side, against a stand-in server -------
class FakePool:
    """A `PoolClient` whose one 'worker' writes a stream's states into the shared folder over ~0.5 s."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.cancelled, self.done = folder, [], threading.Event()
        self.stop = threading.Event()

    def api_url(self) -> str:
        return "http://127.0.0.1:9/api"

    def has_deployment(self, name: str) -> bool:
        self.deployment = name
        return True

    def submit(self, deployment, parameters, name, tags):
        import uuid

        self.parameters, self.name = parameters, name

        def work() -> None:
            state = StreamState(self.folder.name)
            for released in range(1, 6):
                if self.stop.wait(0.1):
                    return
                state = state.but(status="streaming", released_segments=released, rendered_frames=12 * released)
                write_state(self.folder, state)
            write_state(self.folder, state.but(status="finished", ended_at=time.time()))
            self.done.set()

        threading.Thread(target=work, daemon=True).start()
        self.run_id = uuid.uuid4()
        return self.run_id

    def states(self, ids):
        from prefect.states import Completed, Running

        return {self.run_id: Completed() if self.done.is_set() else Running()}

    def mark_crashed(self, flow_run_id, message) -> None:
        raise AssertionError("nothing crashed")

    def cancel(self, flow_run_id, message) -> None:
        self.cancelled.append(message)
        self.stop.set()

    def online_workers(self, pool: str) -> int:
        return 1


def test_a_pool_stream_is_followed_through_its_folder_and_a_cancel_cancels_its_flow_run(tmp_path, home):
    from types import SimpleNamespace

    from api.streams import StreamCancelledError
    from flows.stream_flow import PoolStreamProducer
    from pipeline.request import RenderRequest

    settings = load_settings(home=home).with_section("factory", pool="streams-test")
    folder = tmp_path / ("d" * 32)
    folder.mkdir()
    request = RenderRequest("Hello.", "sample", "en", folder / "answer.mp4", channel="demo", purpose="demo")
    validated = SimpleNamespace(request=request, actor="api-key:abc")
    heard: list[StreamState] = []
    client = FakePool(folder)
    final = PoolStreamProducer(settings, client)(folder, validated, heard.append)
    assert final.status == "finished" and client.deployment == "render-stream/streams-test"
    assert client.parameters["folder"] == str(folder) and client.parameters["user"] == "api-key:abc"
    assert client.parameters["request"]["output"] == str(folder / "answer.mp4")  # JSON-able parameters
    released = [s.released_segments for s in heard if s.status == "streaming"]
    assert released == sorted(released) and len(released) >= 3 and heard[-1].status == "finished", released

    folder = tmp_path / ("e" * 32)
    folder.mkdir()
    client = FakePool(folder)

    def cancel(state: StreamState) -> None:
        if state.released_segments >= 2:
            raise StreamCancelledError("cancelled by the client")

    with pytest.raises(StreamCancelledError):
        PoolStreamProducer(settings, client)(folder, validated, cancel)
    assert client.cancelled == ["the submitter stopped"] and not client.done.is_set()


def test_a_renderer_that_crashes_ends_the_stream_failed_and_frees_its_share(home, keys):
    def crash(folder, validated, on_progress):
        raise RuntimeError("encoder died\nsecond line")

    settings = load_settings(home=home).with_section("api", rate_per_minute=100000)
    with InProcessServer(settings, crash) as api:
        body = _start(api, keys).json()
        status = _wait_ended(api, body["stream_id"], keys["app"][1], timeout=10)
        assert (status["status"], status["message"]) == ("failed", "RuntimeError: encoder died"), status
        master = httpx.get(api.url + body["playback"]["master"], timeout=30)
        assert (master.status_code, master.json()["error"]["code"]) == (404, "stream_failed")
        assert "encoder died" in master.json()["error"]["message"]
        deadline = time.monotonic() + 5
        while api.context.streams.is_running(body["stream_id"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _start(api, keys).status_code == 202  # the crashed stream holds no admission share
