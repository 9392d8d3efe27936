"""Shared fixtures: an isolated DHF home (models linked from the provisioned one) and one real render.

The render fixture runs the real CLI, i.e. espeak-ng, g2p-en, onnxruntime, ffmpeg and a Prefect flow
on Prefect's temporary local server, once per session; several tests measure its output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from config import load_settings
from quality.measure import measure_video
from vision.analysis import FaceAnalyser
from vision.models import ModelRegistry

REPO = Path(__file__).resolve().parents[1]
DHF = [sys.executable, "-m", "cli.main"]
SENTENCE = "Please bring my bank papers. What is the rate on a 1-year deposit? It is 3.5%."


def espeak_template(language: str):
    """The language's default voice template if espeak-ng speaks it, else its first espeak-ng template:
    for tests of text, captions and timings that need many fast syntheses (the neural voice has its own
    tests in tests/test_kokoro.py)."""
    from config import load_voices

    voices, defaults = load_voices()
    default = voices[defaults[language]]
    if default.engine == "espeak":
        return default
    return next(v for v in voices.values() if v.language == language and v.engine == "espeak")


def provisioned_models() -> Path:
    models = load_settings().paths.models
    if not (models / "face_landmark.onnx").is_file():
        pytest.exit(f"models are not provisioned in {models}; run scripts/setup first", returncode=1)
    return models


def own_home(folder: Path, models: Path | None = None) -> Path:
    """A DHF home of its own at `folder` (empty library, audit log and caches) sharing the provisioned
    models: for tests that tamper with a home or need to count its entries from zero."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models").symlink_to(models or provisioned_models(), target_is_directory=True)
    return folder


@pytest.fixture(scope="session")
def dhf_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("dhf-home")
    (home / "models").symlink_to(provisioned_models(), target_is_directory=True)
    return home


@pytest.fixture(scope="session")
def settings(dhf_home):
    return load_settings(home=dhf_home)


def run_dhf(args: list[str], home: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "DHF_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(DHF + args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@dataclass(frozen=True)
class Rendered:
    video: Path
    report: dict
    srt: Path
    stdout: str
    stderr: str


def render(
    home: Path, out: Path, text: str = SENTENCE, extra: list[str] | None = None, language: str = "en"
) -> Rendered:
    result = run_dhf(
        ["render", text, "--avatar", "sample", "--lang", language, "-o", str(out), "--quiet", *(extra or [])], home
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.with_suffix("").with_name(out.stem + ".report.json").read_text())
    return Rendered(out, report, out.with_suffix(".srt"), result.stdout, result.stderr)


@pytest.fixture(scope="session")
def rendered(dhf_home, tmp_path_factory) -> Rendered:
    return render(dhf_home, tmp_path_factory.mktemp("render") / "answer.mp4")


@pytest.fixture(scope="session")
def analyser(settings) -> FaceAnalyser:
    return FaceAnalyser(ModelRegistry(settings.paths.models))


@pytest.fixture(scope="session")
def measured(rendered, analyser):
    """Landmarks re-detected on every frame of the session's render, and its audio envelope."""
    return measure_video(rendered.video, analyser)


@pytest.fixture(scope="session")
def independent(rendered):
    """The session's render measured by the test-only reference (tests/independent_measure.py)."""
    from independent_measure import measure as measure_independently

    return measure_independently(rendered.video)


def label_rect(settings, width: int = 1920, height: int = 1080) -> tuple[int, int, int, int]:
    """Where the labeler puts the AI label plate (x0, y0, x1, y1) in a frame of this size."""
    import numpy as np

    from fusion.processors.post import Labeler, LabelOptions, find_font

    label = settings.label
    options = LabelOptions(label.text, find_font(label.fonts), label.height_ratio, label.margin_ratio, label.opacity)
    labeler = Labeler(options)
    labeler.prepare(np.zeros((height, width, 3), np.uint8))
    return labeler.rect


def needs_root(what: str) -> pytest.MarkDecorator:
    """Skip a test that needs root unless it runs as root, saying why: pyproject's `-ra` lists each
    skip with its test and this reason in the summary, so a run as another user shows which checks it
    did not make instead of passing quietly (decided at collection: before any fixture runs)."""
    uid = os.geteuid()
    return pytest.mark.skipif(uid != 0, reason=f"needs root to {what}; running as uid {uid}")


def assert_refused(result: subprocess.CompletedProcess, pattern: str, output: Path) -> None:
    """A refused request: exit 2, one line naming the problem, and no output (not even a temp file)."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dhf: error: "), result.stderr
    assert pattern in lines[0], lines[0]
    assert not output.exists() and not list(output.parent.glob("*.part*"))


class ApiServer:
    """`dhf api` on a free localhost port, in its own process group (killable like a crashed server)."""

    def __init__(self, home: Path, folder: Path, config: str = "", env: dict[str, str] | None = None) -> None:
        from flows.local_cluster import free_port

        self.home, self.folder, self.extra_env = home, folder, env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / f"api-{self.port}.yaml"
        self.config.write_text(config or "api: {}\n", encoding="utf-8")
        self.process: subprocess.Popen | None = None

    def start(self) -> ApiServer:
        env = {**os.environ, "DHF_HOME": str(self.home), "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "0"}
        env.pop("PREFECT_API_URL", None)
        env.update(self.extra_env)
        command = [sys.executable, "-m", "cli.main", "--config", str(self.config), "api", "--port", str(self.port)]
        log = (self.folder / f"api-{self.port}.log").open("a")
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.3)
        raise AssertionError(f"dhf api did not start: {(self.folder / f'api-{self.port}.log').read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


# --- Offline guard (issue 15): no test may reach anything but this machine. --------------------------------
# The product promises to work without a network, so the suite must not lean on one by accident. For the whole
# session, every socket.connect()/connect_ex() made in the pytest process (httpx, urllib, asyncio, Prefect's
# in-process client and test server all end there) to an address outside loopback raises NetworkAccessError,
# which is not an OSError, so no retry loop or "connection failed" handler swallows it. Unix sockets and
# loopback (127.0.0.0/8, ::1, and 0.0.0.0/:: which mean this host) pass. Not covered: DNS look-ups done inside
# libc, and subprocesses (the CLI, `dhf api`, Prefect servers): tests/reliability/test_offline.py runs those in
# a network namespace that has nothing but loopback.
class NetworkAccessError(RuntimeError):
    """A test tried to connect outside this machine."""


def _is_local(family: int, address) -> bool:
    import ipaddress
    import socket

    if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return True  # AF_UNIX paths, netlink, ...
    host = str(address[0]).lower()
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:  # a host name: only localhost is local (no DNS look-up to decide)
        return host == "localhost" or host.endswith(".localhost")
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return ip.is_loopback or ip.is_unspecified


@pytest.fixture(scope="session", autouse=True)
def block_non_loopback_sockets():
    import socket

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address) -> None:
        if not _is_local(sock.family, address):
            raise NetworkAccessError(f"blocked a connection to {address!r}: tests run offline (tests/conftest.py)")

    def connect(self, address):
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(self, address)
        return real_connect_ex(self, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        yield
