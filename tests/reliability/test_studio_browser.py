"""The studio as its users' browser shows it (issue 29): headless Chromium signs in with an editor's key,
writes a one-word video on the New video page for an avatar whose licence requires a human review, follows
the job's live progress, and a reviewer (another key: separation of duties) rejects one and approves the
other in the review queue, watching the held video in the page; the editor then plays the approved video
(`readyState >= 2`, its captions track has cues) and downloads its files. A read-only key finds the New video
page refused and its nav item absent; a form POST without the CSRF token is refused. axe-core (vendored,
injected over DevTools) checks every main page: no "label" or "color-contrast" violation, others printed.
Every request the browser made went to the server itself.

Why one server, one browser and one text for everything: the suite's budget (this module < 1 minute); the
second job says the same word, so its stages come from the first one's cache.
Screenshots go to a temporary folder; `scripts/studio_walkthrough.py` writes docs/gallery/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
from chromium import Chromium
from conftest import ApiServer, own_home
from studio_flow import REQUIRED_RULES, REVIEWED_AVATAR, Keys, Studio, enroll_reviewed_avatar, make_keys

WORD = "Hello."
SMALL = "video: {width: 640, height: 360}\n"  # a short render: the browser checks need a video, not a large one


@dataclass
class Site:
    home: Path
    keys: Keys
    server: ApiServer
    studio: Studio
    axe_other: dict[str, list[str]]  # page → other axe rules it violates (reported, not failed)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    """The home (the review-required avatar enrolled, three keys), the server and the browser, started side by
    side (each is mostly waiting on imports and start-up: together ~8 s instead of ~15 s)."""
    folder = tmp_path_factory.mktemp("studio")
    home = own_home(folder / "home")
    server = ApiServer(home, folder, config=SMALL)
    with ThreadPoolExecutor(3) as pool:
        starting = [pool.submit(server.start), pool.submit(Chromium), pool.submit(prepare_home, home, folder)]
        wait(starting)
    page = starting[1].result() if starting[1].exception() is None else None
    try:
        for future in starting:
            future.result()  # raises the first failure, after everything started was kept for the cleanup
        made = Site(home, starting[2].result(), server, Studio(page, server.url, shots=folder / "shots"), {})
        yield made
        others = {name: rules for name, rules in sorted(made.axe_other.items()) if rules}
        print(f"axe-core, other rules violated (not failed on): {others or 'none'}")
    finally:
        with ThreadPoolExecutor(2) as pool:
            pool.submit(server.stop)
            if page is not None:
                pool.submit(page.close)


def prepare_home(home: Path, folder: Path) -> Keys:
    enroll_reviewed_avatar(home, folder / "reviewed")
    return make_keys(home)


def accessible(site: Site, name: str) -> None:
    """axe-core on the page as shown: no violation of REQUIRED_RULES; the others are kept for the report;
    and a screenshot."""
    violations = site.studio.axe()
    failing = [v for v in violations if v["id"] in REQUIRED_RULES]
    assert not failing, f"{name} ({site.studio.location()}): {json.dumps(failing, indent=1)[:3000]}"
    site.axe_other[name] = sorted({f"{v['id']} ({v['impact']}: {len(v['nodes'])})" for v in violations})
    site.studio.shot(name)


def test_sign_in_then_an_editor_renders_and_a_reviewer_decides(site):
    studio, keys = site.studio, site.keys
    studio.go("/")
    assert studio.location() == "/studio/sign-in", studio.location()  # / → /studio → sign in first
    accessible(site, "sign-in")
    studio.fill({"#api-key": "dhf_not-a-key"})
    studio.click("form[action='/studio/sign-in'] button[type=submit]")
    assert studio.document_status() == 401 and "unknown or revoked" in studio.text(), studio.text()

    # with the keyboard alone: the first Tab reaches the skip link (its focus drawn), then the key field
    studio.go("/studio/sign-in")
    path = studio.tab_to("#api-key")
    assert "skip-link" in path[0]["cls"] and not path[0]["outline"].startswith("none"), path
    started = time.monotonic()
    studio.type_text(keys.editor)
    studio.page.evaluate("window.__studioLeaving = true")
    studio.press("Enter")
    studio.loaded()
    assert studio.location() == "/studio" and "anna-editor" in studio.text("header"), studio.text("header")
    accessible(site, "home")
    first = studio.new_video(WORD, REVIEWED_AVATAR)
    second = studio.new_video(WORD, REVIEWED_AVATAR)  # the same word: its stages come from the cache
    assert len(first) == len(second) == 1 and first != second
    studio.go("/studio/videos/new")
    accessible(site, "new-video")
    studio.go(f"/studio/jobs?new={first[0]},{second[0]}")
    accessible(site, "jobs")
    states = studio.wait_for_jobs(first + second)
    assert set(states.values()) == {"succeeded"}, states
    assert "running" in studio.seen, studio.seen  # the page followed the render live, without a reload
    studio.timed("render two (held for review)", started)
    accessible(site, "jobs-done")
    studio.go(f"/studio/jobs/{first[0]}")
    accessible(site, "job")

    # a key without the render scope: the New video link is not shown, and the page is refused
    studio.sign_out()
    studio.sign_in(keys.viewer)
    assert "New video" not in studio.text("nav") and "Review" not in studio.text("nav"), studio.text("nav")
    studio.go("/studio/videos/new")
    assert studio.document_status() == 403 and "lacks the 'render' scope" in studio.text(), studio.text()
    accessible(site, "refused")
    studio.sign_out()

    # the reviewer (another key): the two held videos play in the page; reject one, approve the other
    studio.sign_in(keys.reviewer)
    pending = studio.pending_reviews()
    assert len(pending) == 2, pending
    accessible(site, "reviews")
    studio.go(f"/studio/reviews/{pending[0]}")
    held = studio.play(captions=False)
    assert held.get("ready", 0) >= 2 and held["duration"] > 0.5, held
    accessible(site, "review")
    rejected = studio.decide(pending[0], "reject", "Wrong greeting for this channel.")
    assert "rejected" in rejected and "rita-reviewer" in rejected, rejected
    approved = studio.decide(pending[1], "approve", "Checked.")
    assert "approved" in approved and "rita-reviewer" in approved, approved
    assert studio.pending_reviews() == []
    decided = studio.text("section[aria-labelledby=decided-heading]")
    assert "Wrong greeting" in decided and decided.count("rita-reviewer") == 2, decided
    accessible(site, "reviews-decided")
    studio.sign_out()

    # the editor plays the approved video with its captions and downloads it; the rejected one is gone
    studio.sign_in(keys.editor)
    outcomes = {}
    for job in first + second:
        studio.go(f"/studio/videos/{job}")
        outcomes[job] = studio.document_status()
    assert sorted(outcomes.values()) == [200, 404] or sorted(outcomes.values())[0] == 200, outcomes
    (published,) = [job for job, status in outcomes.items() if status == 200]
    studio.go(f"/studio/videos/{published}")
    played = studio.play()
    assert played["ready"] >= 2 and played["cues"] and played["tracks"][0].startswith("captions"), played
    assert "hello" in " ".join(played["cues"]).lower(), played
    accessible(site, "video")
    mp4 = studio.download("MP4")
    assert mp4["status"] == 200 and mp4["head"][8:16] == "66747970" and mp4["bytes"] > 10_000, mp4  # ftyp box
    for label in ("SRT", "WebVTT", "Render report"):
        got = studio.download(label)
        assert got["status"] == 200 and got["bytes"] > 20, (label, got)
    studio.timed("sign-in to downloaded video", started)
    studio.go("/studio/library")
    accessible(site, "library")
    print(f"studio timings (s): {studio.timings}")


def test_a_form_post_without_its_csrf_token_is_refused(site):
    studio = site.studio
    studio.go("/studio")
    if studio.location() != "/studio":
        studio.sign_in(site.keys.editor)
    status, body = studio.post_without_csrf("/studio/sign-out", {})
    assert status == 403 and "security token is missing or wrong" in body, (status, body[:500])
    studio.go("/studio")
    assert studio.location() == "/studio" and "anna-editor" in studio.text("header")  # still signed in
    status, body = studio.post_without_csrf("/studio/videos", {"text": WORD, "avatar_id": "sample", "language": "en"})
    assert status == 403, (status, body[:500])


def test_every_request_stayed_on_the_server(site):
    local = urlparse(site.server.url).netloc
    if not site.studio.requested:  # run alone (-k): at least the sign-in page
        site.studio.go("/studio/sign-in")
    hosts = site.studio.hosts()
    assert hosts == {local}, sorted(site.studio.requested)
