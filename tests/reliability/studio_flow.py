"""What an editor and a reviewer do in the studio, as steps a headless Chromium performs on the real pages:
shared by the browser test (tests/reliability/test_studio_browser.py, which asserts on what it measures) and
the timed walkthrough (scripts/studio_walkthrough.py, which writes the screenshots to docs/gallery/).

Why one module for both: the README's timings and screenshots must come from the same clicks the test
proves work, not from a second script that drifts from the pages.

Why axe-core is injected over the DevTools protocol (Runtime.evaluate) rather than served: the studio's
Content-Security-Policy allows only its own scripts, and a test-only library has no business in the product's
pages; DevTools evaluation is not subject to the page's CSP, so the page is checked exactly as it is served.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlparse

from chromium import Chromium

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "api" / "static" / "vendor" / "axe.min.js"
PINS = REPO / "api" / "static" / "VENDORED"
SAMPLE = REPO / "avatars" / "sample"
REVIEWED_AVATAR = "reviewed"  # a copy of the sample person whose licence says `review: required`
# the two checks the issue names; every other axe rule's violations are reported, not failed on
REQUIRED_RULES = ("label", "color-contrast")
KEYS = MappingProxyType({"Tab": ("Tab", 9), "Enter": ("Enter", 13)})  # key → (code, Windows key code)
MAX_SHOT_PX = 2400  # the tallest screenshot (px): a long page is cut there


def axe_source() -> str:
    """The vendored axe-core, checked against its pin (a test must not run an unknown script)."""
    pins = {line.split()[4]: line.split()[3] for line in PINS.read_text().splitlines()
            if line.strip() and not line.startswith("#")}  # fmt: skip
    if not AXE.is_file():
        raise RuntimeError(f"axe-core is not vendored at {AXE}: run scripts/vendor_js")
    data = AXE.read_bytes()
    if hashlib.sha256(data).hexdigest() != pins["axe.min.js"]:
        raise RuntimeError(f"{AXE} does not match its sha256 in {PINS}: run scripts/vendor_js")
    return data.decode("utf-8")


@dataclass(frozen=True)
class Keys:
    """The secrets of the keys the flow signs in with."""

    editor: str  # render, read: writes and downloads videos
    reviewer: str  # review, read: decides the held ones (a different key: separation of duties)
    viewer: str  # read only: may not render or review


def make_keys(home: Path) -> Keys:
    from api.keys import KeyStore

    store = KeyStore(home / "api" / "keys.sqlite")
    return Keys(
        editor=store.create("anna-editor", ["render", "read"])[1],
        reviewer=store.create("rita-reviewer", ["review", "read"])[1],
        viewer=store.create("victor-viewer", ["read"])[1],
    )


def enroll_reviewed_avatar(home: Path, folder: Path) -> None:
    """Enroll the sample person again under REVIEWED_AVATAR with a licence that requires a human review of
    every video (`review: required`), through `dhf avatar add` (the audit log's enrollment record comes with
    it). The photo is enlarged 3x: enrollment wants a face at least 256 px across, the sample's is 93 px."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    photo = folder / "portrait.png"
    with Image.open(SAMPLE / "portrait.png") as image:
        image.resize((image.width * 3, image.height * 3), Image.Resampling.LANCZOS).save(photo)
    shutil.copyfile(SAMPLE / "consent.md", folder / "consent.md")
    licence = (SAMPLE / "license.yaml").read_text(encoding="utf-8")
    licence = licence.replace("avatar_id: sample", f"avatar_id: {REVIEWED_AVATAR}")
    licence = licence.replace("license_id: sample-demo-0001", "license_id: reviewed-demo-0001")
    (folder / "license.yaml").write_text(licence + "review: required\n", encoding="utf-8")
    command = [sys.executable, "-m", "cli.main", "avatar", "add", str(photo), "--id", REVIEWED_AVATAR,
               "--license", str(folder / "license.yaml"), "--name", "Sample (review required)"]  # fmt: skip
    env = {**os.environ, "DHF_HOME": str(home), "PYTHONPATH": str(REPO)}
    env.pop("PREFECT_API_URL", None)
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"dhf avatar add {REVIEWED_AVATAR} failed: {result.stderr.strip()[-500:]}")


@dataclass
class Studio:
    """One browser page in the studio at `url`; every request it made, across pages, in `requested`."""

    page: Chromium
    url: str
    shots: Path | None = None  # screenshots go here (None: none taken)
    requested: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # job states the jobs page showed while it was open

    # -- navigation ---------------------------------------------------------------------------------
    def _collect(self) -> None:
        self.page.evaluate("1")  # read the events that arrived since the last command
        for url in self.page.requested():
            if url not in self.requested:
                self.requested.append(url)
        self.page.events.clear()

    def loaded(self, timeout: float = 20) -> None:
        """Wait until the page (after a navigation) has loaded and rendered its main landmark."""
        ready = self.page.wait_for(
            "!window.__studioLeaving && document.readyState === 'complete' && !!document.querySelector('main')",
            timeout=timeout,
        )
        if not ready:
            raise AssertionError(f"the page did not load in {timeout:.0f} s: {self.location()}")

    def go(self, path: str) -> None:
        self._collect()
        self.page.open(self.url + path)
        self.loaded()

    def location(self) -> str:
        return str(self.page.evaluate("location.pathname + location.search"))

    def status_line(self) -> str:
        """The page's title line (h1), e.g. 'Forbidden' on an error page."""
        return str(self.page.evaluate("(document.querySelector('main h1') || {}).textContent || ''")).strip()

    def text(self, selector: str = "main") -> str:
        return str(self.page.evaluate(f"(document.querySelector({json.dumps(selector)}) || {{}}).innerText || ''"))

    def exists(self, selector: str) -> bool:
        return bool(self.page.evaluate(f"!!document.querySelector({json.dumps(selector)})"))

    def fill(self, values: dict[str, str]) -> None:
        """Set inputs (by CSS selector) as typing would, firing input and change events."""
        script = (
            "(function(values){for (const [sel, value] of Object.entries(values)) {"
            " const el = document.querySelector(sel); if (!el) throw new Error('no element ' + sel);"
            " if (el.type === 'checkbox' || el.type === 'radio') { el.checked = !!value; }"
            " else { el.value = value; }"
            " el.dispatchEvent(new Event('input', {bubbles: true}));"
            " el.dispatchEvent(new Event('change', {bubbles: true})); } })"
        )
        self.page.evaluate(f"{script}({json.dumps(values)})")

    def click(self, selector: str, navigates: bool = True, timeout: float = 30) -> None:
        """Click as a person (a user gesture); when it navigates, wait for the next page."""
        self._collect()
        if navigates:
            self.page.evaluate("window.__studioLeaving = true")
        clicked = self.page.send(
            "Runtime.evaluate",
            expression=f"(function(){{const el = document.querySelector({json.dumps(selector)});"
            "if (!el) return false; el.click(); return true;})()",
            userGesture=True,
            returnByValue=True,
        )
        if not clicked.get("result", {}).get("value"):
            raise AssertionError(f"nothing to click at {selector!r} on {self.location()}")
        if navigates:
            self.loaded(timeout)

    # -- evidence -----------------------------------------------------------------------------------
    def shot(self, name: str) -> Path | None:
        if self.shots is None:
            return None
        self.shots.mkdir(parents=True, exist_ok=True)
        # the whole page, not only the window (scores and downloads sit below the fold), up to MAX_SHOT_PX
        size = "JSON.stringify([document.documentElement.clientWidth, document.documentElement.scrollHeight])"
        width, height = json.loads(self.page.evaluate(size))
        clip = {"x": 0, "y": 0, "width": width, "height": min(height, MAX_SHOT_PX), "scale": 1}
        data = self.page.send("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)["data"]
        path = self.shots / f"studio-{name}.png"
        path.write_bytes(base64.b64decode(data))
        return path

    def axe(self) -> list[dict]:
        """axe-core's violations on the page as it is now: [{id, impact, help, nodes: [selector, ...]}]."""
        if not self.page.evaluate("typeof window.axe === 'object'"):
            self.page.send("Runtime.evaluate", expression=axe_source(), returnByValue=True)
        found = self.page.evaluate(
            "axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations.map(v => "
            "({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))))"
        )
        return json.loads(found)

    def hosts(self) -> set[str]:
        self._collect()
        return {urlparse(url).netloc for url in self.requested if not url.startswith(("data:", "blob:"))}

    def timed(self, name: str, started: float) -> float:
        self.timings[name] = round(time.monotonic() - started, 2)
        return self.timings[name]

    # -- the editor's and the reviewer's steps --------------------------------------------------------
    def sign_in(self, key: str) -> None:
        self.go("/studio/sign-in")
        self.fill({"#api-key": key})
        self.click("form[action='/studio/sign-in'] button[type=submit]")

    def sign_out(self) -> None:
        self.click("form[action='/studio/sign-out'] button[type=submit]")

    def fill_form(self, form: str, values: dict[str, str | list[str]]) -> None:
        """Fill a form by field name, as a person would: radios and checkboxes are ticked by value (a list
        ticks several), the rest typed; input and change events fire so the page's script sees it."""
        script = (
            "(function(form, values){const f = document.querySelector(form);"
            " if (!f) throw new Error('no form ' + form);"
            " for (const [name, value] of Object.entries(values)) {"
            "  const els = Array.from(f.querySelectorAll('[name=\"' + name + '\"]'));"
            "  if (!els.length) throw new Error('no field ' + name);"
            "  for (const el of els) {"
            "   if (el.type === 'checkbox' || el.type === 'radio') {"
            "    el.checked = Array.isArray(value) ? value.includes(el.value) : el.value === value; }"
            "   else { el.value = value; }"
            "   el.dispatchEvent(new Event('input', {bubbles: true}));"
            "   el.dispatchEvent(new Event('change', {bubbles: true})); } } })"
        )
        self.page.evaluate(f"{script}({json.dumps(form)}, {json.dumps(values)})")

    def post_without_csrf(self, action: str, fields: dict[str, str]) -> tuple[int, str]:
        """POST a form to `action` from the signed-in page (its session cookie goes along) with every field
        but the CSRF token: what a forged form on another site could send at best. (status, page h1 + text)"""
        answer = self.page.evaluate(
            f"fetch({json.dumps(action)}, {{method: 'POST', body: new URLSearchParams({json.dumps(fields)}),"
            " redirect: 'manual', credentials: 'same-origin'})"
            ".then(async r => JSON.stringify([r.status, await r.text()]))"
        )
        status, body = json.loads(answer)
        return int(status), str(body)

    def document_status(self) -> int | None:
        """The HTTP status of the page now shown (the last document response the browser received)."""
        self.page.evaluate("1")
        statuses = [e["params"]["response"]["status"] for e in self.page.events
                    if e["method"] == "Network.responseReceived" and e["params"].get("type") == "Document"]  # fmt: skip
        return statuses[-1] if statuses else None

    def new_video(self, text: str, avatar: str, languages: tuple[str, ...] = ("en",)) -> list[str]:
        """Write a video on the New video page and render it: the ids of its jobs (one per language), from
        the jobs page the form leads to."""
        self.go("/studio/videos/new")
        self.fill_form("#new-video", {"avatar_id": avatar, "language": list(languages)})
        self.fill_form("#new-video", {"text": text})
        self.click("#submit-video")
        location = self.location()
        if not location.startswith("/studio/jobs?new="):
            raise AssertionError(f"the New video form led to {location}: {self.text()[:500]}")
        return location.split("new=", 1)[1].split(",")

    JOB_STATES = (
        "JSON.stringify(Object.fromEntries(Array.from(document.querySelectorAll('tr[data-job-id]')).map(r =>"
        " [r.dataset.jobId, r.querySelector('[data-field=status]').textContent.trim()])))"
    )

    def job_states(self) -> dict[str, str]:
        return json.loads(self.page.evaluate(self.JOB_STATES) or "{}")

    def wait_for_jobs(self, ids: list[str], timeout: float = 120) -> dict[str, str]:
        """Watch the jobs page (updated live by the server's events, no reload) until the jobs ended; every
        state the page showed on the way is kept in `seen`."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {job: state for job, state in self.job_states().items() if job in ids}
            self.seen.update(states.values())
            if len(states) == len(ids) and all(s in ("succeeded", "failed", "cancelled") for s in states.values()):
                return states
            time.sleep(0.3)
        raise AssertionError(f"the jobs did not end in {timeout:.0f} s: {states}")

    def pending_reviews(self) -> list[str]:
        """The review queue's pending review ids (the reviews page's first table)."""
        self.go("/studio/reviews")
        found = self.page.evaluate(
            "JSON.stringify(Array.from(document.querySelectorAll('section[aria-labelledby=pending-heading] a'))"
            ".map(a => a.getAttribute('href').split('/').pop()))"
        )
        return json.loads(found or "[]")

    def decide(self, review_id: str, decision: str, comment: str) -> str:
        """On the review page: choose the decision (no default is chosen), comment, send; the page's state."""
        self.go(f"/studio/reviews/{review_id}")
        form = f"form[action='/studio/reviews/{review_id}']"
        chosen = self.page.evaluate(f'!!document.querySelector("{form} input[name=decision]:checked")')
        if chosen:
            raise AssertionError(f"review {review_id}: a decision is chosen before the reviewer chose one")
        self.fill_form(form, {"decision": decision, "comment": comment})
        self.click(f"{form} button[type=submit]")
        if self.location() != f"/studio/reviews/{review_id}" or not self.exists("dl.facts"):
            raise AssertionError(f"review {review_id}: the decision led to {self.location()}: {self.text()[:500]}")
        return self.text("dl.facts")

    PLAYER = (
        "(function(){const v = document.querySelector('main video'); if (!v) return '';"
        " const cues = Array.from(v.textTracks).flatMap(t => Array.from(t.cues || []).map(c => c.text));"
        " return JSON.stringify({ready: v.readyState, duration: v.duration, currentTime: v.currentTime,"
        " cues: cues, tracks: Array.from(v.textTracks).map(t => t.kind + ':' + t.mode)});})()"
    )

    def play(self, timeout: float = 20, captions: bool = True) -> dict:
        """Play the page's video (muted, as autoplay rules allow) until it has data (readyState >= 2) and,
        with `captions`, its captions track has cues; what the element reports then."""
        self.page.evaluate("(function(){const v = document.querySelector('main video');"
                           " if (v) { v.muted = true; v.play().catch(() => null); }})()")  # fmt: skip
        need = "p.ready >= 2 && p.cues.length > 0" if captions else "p.ready >= 2"
        found = self.page.wait_for(
            f"(function(){{const s = {self.PLAYER}; if (!s) return ''; const p = JSON.parse(s);"
            f" return {need} ? s : '';}})()",
            timeout=timeout,
        )
        return json.loads(found or self.page.evaluate(self.PLAYER) or "{}")

    def download(self, label: str) -> dict:
        """Follow the page's download link whose text starts with `label`, in the page (its cookie goes
        along), reading the whole body: {status, type, bytes, head (first 12 bytes, hex)}."""
        answer = self.page.evaluate(
            "(function(label){const a = Array.from(document.querySelectorAll('main a[download]'))"
            ".find(a => a.textContent.trim().startsWith(label)); if (!a) return JSON.stringify({status: 0});"
            " return fetch(a.href, {credentials: 'same-origin', cache: 'no-store'})"
            ".then(async r => { const b = new Uint8Array("
            "await r.arrayBuffer()); return JSON.stringify({status: r.status, type: r.headers.get('content-type'),"
            " bytes: b.length, head: Array.from(b.slice(0, 12)).map(x => x.toString(16).padStart(2, '0')).join('')});"
            f" }}); }})({json.dumps(label)})"
        )
        return json.loads(answer)

    # -- the keyboard -----------------------------------------------------------------------------------
    def press(self, key: str) -> None:
        """One key press (Tab or Enter) as the keyboard sends it, to the focused element."""
        code, number = KEYS[key]
        text = {"text": "\r"} if key == "Enter" else {}
        for kind in ("keyDown", "keyUp"):
            self.page.send("Input.dispatchKeyEvent", type=kind, key=key, code=code, windowsVirtualKeyCode=number,
                           **(text if kind == "keyDown" else {}))  # fmt: skip

    def focused(self) -> dict:
        """The focused element: {tag, id, cls, text, outline} (outline: its computed outline style, to see
        that focus is visible)."""
        return json.loads(self.page.evaluate(
            "(function(){const e = document.activeElement || document.body; const s = getComputedStyle(e);"
            " return JSON.stringify({tag: e.tagName.toLowerCase(), id: e.id, cls: e.className,"
            " text: (e.textContent || '').trim().slice(0, 60), outline: s.outlineStyle + ' ' + s.outlineWidth});})()"
        ))  # fmt: skip

    def tab_to(self, selector: str, most: int = 15) -> list[dict]:
        """Press Tab until `selector` has the focus; the elements focused on the way (it included)."""
        path = []
        for _ in range(most):
            self.press("Tab")
            path.append(self.focused())
            if self.page.evaluate(f"document.activeElement === document.querySelector({json.dumps(selector)})"):
                return path
        raise AssertionError(f"{most} Tabs did not reach {selector}: {path}")

    def type_text(self, text: str) -> None:
        self.page.send("Input.insertText", text=text)
