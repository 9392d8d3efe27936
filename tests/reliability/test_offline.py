"""Proof of offline (issue 15): the product works on a machine with no network at all.

A render (`dhf render`), a batch (`dhf batch`) and the REST API (`dhf api`: a video job, `/docs` with every
asset it loads, `/openapi.json`) run inside a network namespace that has no interface but loopback
(`unshare -n`, then `lo` brought up), so anything that needed the network (a model hub, a CDN, telemetry,
a DNS look-up) fails there. The steps run in a driver, this module run as a script inside the namespace;
the test then measures what the driver left on disk. The in-process half of the proof is the suite's socket
guard (tests/conftest.py), checked here too.

Skipped, with the reason in the summary, when not run as root (`unshare -n` needs it) or where the kernel
refuses a network namespace even to root (an unprivileged container).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# conftest's `needs_root`, written out: this module also runs as a script in the namespace, without conftest
NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0, reason=f"needs root to make a network namespace (unshare -n); running as uid {os.geteuid()}"
)
SCRIPT = """\
name: offline
avatar: sample
languages: [en]
channel: demo
purpose: demo
items:
  - id: q1
    text: "Thank you for waiting."
  - id: q2
    text: "Goodbye."
"""
RENDER_TEXT = "Hello from a machine without a network."
API_TEXT = "Your card is on its way."
WAITING = ("queued", "running")


def test_the_suite_blocks_connections_outside_this_machine():
    """The conftest guard: a connect() outside loopback raises before any packet is sent; loopback works."""
    from conftest import NetworkAccessError

    with socket.socket() as listener, socket.socket() as local, socket.socket() as outside:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        local.connect(("localhost", listener.getsockname()[1]))
        # Bound to loopback first: even without the guard the kernel will not route this off the machine.
        outside.bind(("127.0.0.1", 0))
        with pytest.raises(NetworkAccessError, match=r"8\.8\.8\.8"):
            outside.connect(("8.8.8.8", 53))
        with pytest.raises(NetworkAccessError, match=r"example\.com"):
            outside.connect_ex(("example.com", 443))


def _namespace_refusal() -> str | None:
    """Why this machine cannot make a network namespace, or None when it can."""
    done = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, timeout=30)
    if done.returncode == 0:
        return None
    if "Operation not permitted" in done.stderr:
        return done.stderr.strip()
    raise AssertionError(f"unshare -n failed: {done.stderr.strip()}")


@pytest.fixture(scope="module")
def offline_run(dhf_home, tmp_path_factory) -> tuple[Path, dict]:
    refusal = _namespace_refusal()
    if refusal:
        pytest.skip(f"the kernel refuses a network namespace even to root ({refusal}); run on a VM or host")
    folder = tmp_path_factory.mktemp("offline")
    command = ["unshare", "-n", sys.executable, __file__, str(dhf_home), str(folder)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return folder, json.loads((folder / "offline.json").read_text())


@pytest.mark.slow  # 2-3 minutes: a render, a batch and the API in a namespace; the socket guard runs always
@NEEDS_ROOT
def test_the_namespace_has_no_network(offline_run):
    _, found = offline_run
    assert found["interfaces"] == ["lo"]
    assert found["outside"] == "ENETUNREACH"  # what anything reaching for the network gets there


@pytest.mark.slow  # 2-3 minutes: a render, a batch and the API in a namespace; the socket guard runs always
@NEEDS_ROOT
def test_a_render_works_offline(offline_run):
    from media.video import probe

    folder, _ = offline_run
    report = json.loads((folder / "render.report.json").read_text())
    video = probe(folder / "render.mp4")
    assert (video.width, video.height, video.audio_codec) == (1920, 1080, "aac")
    assert abs(video.frames / 25 - report["speech"]["duration_s"]) <= 1 / 25 + 1e-6
    assert report["speech"]["words"] == len(RENDER_TEXT.split())
    assert "machine without" in (folder / "render.srt").read_text(encoding="utf-8")
    # the default English voice is the neural one: its model ran inside the namespace (nothing cached before)
    assert report["speech"]["voice"]["engine"] == "kokoro" and report["speech"]["sentences_synthesized"] == 1


@pytest.mark.slow  # 2-3 minutes: a render, a batch and the API in a namespace; the socket guard runs always
@NEEDS_ROOT
def test_a_batch_works_offline(offline_run):
    from media.video import probe

    folder, _ = offline_run
    manifest = json.loads((folder / "out" / "offline" / "manifest.json").read_text())
    assert [(row["item"], row["status"], row["quality_passed"]) for row in manifest] == [
        ("q1", "rendered", True),
        ("q2", "rendered", True),
    ]
    for row in manifest:
        video = probe(Path(row["output"]))
        assert abs(video.duration - row["duration_s"]) < 0.1 and video.frames >= 10, row


@pytest.mark.slow  # 2-3 minutes: a render, a batch and the API in a namespace; the socket guard runs always
@NEEDS_ROOT
def test_the_api_and_its_docs_work_offline(offline_run):
    from media.video import probe

    folder, found = offline_run
    api = found["api"]
    assert api["job"]["status"] == "succeeded", api["job"]
    video = probe(folder / "api.mp4")
    assert video.frames >= 25 and video.audio_codec == "aac"
    assert "/v1/videos" in api["openapi_paths"]
    # /docs loads Swagger UI from this server: every script, stylesheet and icon is a local path that answers.
    for page in ("/docs", "/redoc"):
        assert api[page]["status"] == 200 and api[page]["assets"], api[page]
        for url, (status, size) in api[page]["assets"].items():
            assert url.startswith("/") and not url.startswith("//"), f"{page} loads {url} from another host"
            assert status == 200 and size > 1000, (page, url, status, size)


# ---- The driver: runs as `unshare -n python tests/reliability/test_offline.py HOME FOLDER` ------------------


def _bring_loopback_up() -> None:
    """`ip link set lo up` without needing iproute2: SIOCGIFFLAGS/SIOCSIFFLAGS on `lo`."""
    import fcntl
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, siocgifflags, struct.pack("16sH22x", b"lo", 0)))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))


def _outside() -> str:
    """What a connection off this machine gets (in the namespace: no route at all, nothing is sent)."""
    import errno

    with socket.socket() as s:
        s.settimeout(5)
        try:
            s.connect(("192.0.2.1", 80))  # TEST-NET-1: a documentation address, never a real host
        except OSError as exc:
            return errno.errorcode.get(exc.errno or 0, str(exc))
    return "connected"


def _drive(home: Path, folder: Path) -> dict:
    import httpx
    from conftest import ApiServer, render, run_dhf

    timings: dict[str, float] = {}
    started = time.monotonic()
    render(home, folder / "render.mp4", RENDER_TEXT)
    timings["render"] = time.monotonic() - started

    (folder / "script.yaml").write_text(SCRIPT, encoding="utf-8")
    started = time.monotonic()
    batch = run_dhf(["batch", str(folder / "script.yaml"), "--out", str(folder / "out")], home)
    assert batch.returncode == 0, batch.stderr[-2000:]
    timings["batch"] = time.monotonic() - started

    started = time.monotonic()
    created = run_dhf(["api-key", "create", "--name", "offline", "--scopes", "render,read"], home)
    assert created.returncode == 0, created.stderr
    headers = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    server = ApiServer(home, folder).start()
    api: dict = {}
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for page in ("/docs", "/redoc"):
                html = client.get(page)
                assets = {}
                for url in re.findall(r'(?:src|href)=["\']([^"\']+)["\']', html.text):
                    try:
                        asset = client.get(url)
                        assets[url] = (asset.status_code, len(asset.content))
                    except httpx.HTTPError as exc:  # another host: no route here
                        assets[url] = (0, 0)
                        print(f"{page}: {url}: {exc!r}", file=sys.stderr)
                api[page] = {"status": html.status_code, "assets": assets}
            api["openapi_paths"] = sorted(client.get("/openapi.json").json()["paths"])
            body = {"text": API_TEXT, "language": "en", "avatar_id": "sample", "channel": "demo", "purpose": "demo"}
            job_id = client.post("/v1/videos", json=body, headers=headers).json()["job_id"]
            deadline = time.monotonic() + 240
            while (job := client.get(f"/v1/videos/{job_id}", headers=headers).json())["status"] in WAITING:
                assert time.monotonic() < deadline, job
                time.sleep(0.5)
            api["job"] = job
            if job["status"] == "succeeded":
                (folder / "api.mp4").write_bytes(client.get(f"/v1/videos/{job_id}/video", headers=headers).content)
    finally:
        server.stop()
    timings["api"] = time.monotonic() - started
    return {"timings": timings, "api": api}


if __name__ == "__main__":
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    _bring_loopback_up()
    home, folder = Path(sys.argv[1]), Path(sys.argv[2])
    interfaces = [name for _, name in socket.if_nameindex()]
    if interfaces != ["lo"]:
        sys.exit(f"not in an isolated network namespace (interfaces: {interfaces}); run it under `unshare -n`")
    found = {"interfaces": interfaces, "outside": _outside()}
    found.update(_drive(home, folder))
    (folder / "offline.json").write_text(json.dumps(found, indent=1), encoding="utf-8")
    print(json.dumps(found["timings"]))
