"""Headless Chromium driven over the DevTools protocol, for the tests that look at pages as a user would
(the Prefect UI, /docs, /redoc).

Why not Playwright or Selenium: both download a browser or a driver of their own; Debian's `chromium`
(installed by `scripts/setup --test`) speaks the DevTools protocol itself, and `websockets` is already
installed with Prefect. Only what the tests need: open a page, evaluate JavaScript until a condition
holds (a JS app renders after load), take a screenshot.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

from flows.local_cluster import free_port


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Chromium:
    """One headless browser with one page; `with Chromium() as page: page.open(url)`."""

    def __init__(self, width: int = 1280, height: int = 900) -> None:
        binary = chromium_binary()
        if binary is None:
            raise RuntimeError("chromium is not installed: run scripts/setup --test (apt package chromium)")
        self.profile = tempfile.TemporaryDirectory(prefix="dhf-chromium-")
        self.port = free_port()
        command = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--disable-component-update",
            f"--window-size={width},{height}", f"--remote-debugging-port={self.port}",
            f"--user-data-dir={self.profile.name}", "about:blank",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)  # fmt: skip
        self.ids = itertools.count(1)
        self.socket = connect(self._page_socket(), max_size=64 * 1024 * 1024, open_timeout=20)
        self.events: list[dict] = []
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Network.enable")

    def _page_socket(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                targets = httpx.get(f"http://127.0.0.1:{self.port}/json/list", timeout=2).json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"chromium did not open its DevTools port {self.port} within {timeout:.0f} s")

    def send(self, method: str, **params) -> dict:
        """One DevTools command; the events that arrive before its answer are kept in `events`."""
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if "method" in message:
                self.events.append(message)
            elif message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def open(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30):
        """Evaluate until the value is truthy (the page's script renders after load); returns it."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError:
                value = None  # the page is navigating
            if value:
                return value
            time.sleep(0.25)
        return value

    def settle(self, seconds: float = 1.0) -> None:
        """Let the page finish what it does after rendering (late images), and read the events so far."""
        time.sleep(seconds)
        self.evaluate("1")

    def requested(self) -> list[str]:
        """URLs the page asked the network for since the last `open`, answered or not (so an offline
        machine cannot hide a CDN link); requests the page's Content-Security-Policy blocked never left
        the browser and are not listed."""
        blocked = {e["params"]["requestId"] for e in self.events
                   if e["method"] == "Network.loadingFailed" and e["params"].get("blockedReason")}  # fmt: skip
        return [e["params"]["request"]["url"] for e in self.events
                if e["method"] == "Network.requestWillBeSent" and e["params"]["requestId"] not in blocked]  # fmt: skip

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        """Stop the browser and every process it started (renderer, GPU, crashpad share its session),
        then remove the profile. Terminating only the main process left helpers still writing into
        the profile, so removing it failed now and then ("Directory not empty: 'Default'")."""
        try:
            self.socket.close()
        finally:
            self._stop_process_group()
            self._remove_profile()

    def _stop_process_group(self) -> None:
        group = self.process.pid  # start_new_session=True: the browser leads its own group
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            if self.process.poll() is None:
                try:
                    self.process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    continue
            while time.monotonic() < deadline and _group_alive(group):
                time.sleep(0.05)
            if not _group_alive(group):
                break

    def _remove_profile(self, attempts: int = 20) -> None:
        for _ in range(attempts - 1):
            try:
                shutil.rmtree(self.profile.name)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)  # a late write from an exiting helper; the next pass removes it
        else:
            shutil.rmtree(self.profile.name, ignore_errors=True)
        self.profile.cleanup()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
