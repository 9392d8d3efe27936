"""Studio sessions over HTTP against a real `dhf api` server: sign-in with an API key, the session
cookie's flags, CSRF refusals (form without token, wrong token), scope refusals (403 page, nav items
hidden), sign-out deleting the session server-side, a revoked key ending its sessions, and the
studio's CSP (no inline scripts or styles allowed)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time

import httpx
import pytest
from conftest import ApiServer

from api.keys import KeyStore
from api.studio.library_pages import avatar_row
from api.studio.session import SessionPolicy, SessionStore
from avatars.library import AvatarLibrary, Revocation

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# Every video of this server waits for a reviewer (as a `review: required` licence makes it); small frames: quick
SERVER_CONFIG = "video: {width: 640, height: 360}\ngovernance: {review: required}\n"


@pytest.fixture(scope="module")
def studio(dhf_home, tmp_path_factory):
    server = ApiServer(dhf_home, tmp_path_factory.mktemp("studio-session"), SERVER_CONFIG).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(dhf_home) -> dict[str, str]:
    store = KeyStore(dhf_home / "api" / "keys.sqlite")  # what `dhf api-key create` writes
    made = {name: store.create(name, scopes)[1] for name, scopes in
            [("editor", ["render", "read"]), ("checker", ["review"]), ("gone", ["read"]),
             ("desk", ["render", "read", "review"])]}  # fmt: skip
    return made


def _alert(html: str) -> str:
    """The page's one-line message (for failure messages)."""
    match = re.search(r'role="alert"[^>]*>([^<]*)<', html)
    return match.group(1) if match else html[-1500:]


def _csrf(html: str) -> str:
    match = CSRF.search(html)
    assert match, html[:2000]
    return match.group(1)


def sign_in(studio: ApiServer, token: str) -> httpx.Client:
    client = httpx.Client(base_url=studio.url, timeout=20)
    form = client.get("/studio/sign-in")
    assert form.status_code == 200, form.text[:500]
    response = client.post("/studio/sign-in", data={"api_key": token, "csrf": _csrf(form.text)})
    assert response.status_code == 303 and response.headers["location"] == "/studio", response.text[:500]
    return client


def test_root_redirects_and_pages_need_a_session(studio):
    root = httpx.get(f"{studio.url}/", timeout=10)
    assert root.status_code == 303 and root.headers["location"] == "/studio"
    home = httpx.get(f"{studio.url}/studio", timeout=10)
    assert home.status_code == 303 and home.headers["location"] == "/studio/sign-in"
    page = httpx.get(f"{studio.url}/studio/sign-in", timeout=10)
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert '<label for="api-key">' in html and 'id="api-key"' in html  # every input has a label
    assert 'href="#main"' in html and '<main id="main"' in html and "AI-generated content is labeled" in html
    assert "<script>" not in html and "style=" not in html  # nothing inline: the CSP would block it
    css = httpx.get(f"{studio.url}/studio/static/studio.css", timeout=10)
    assert css.status_code == 200 and ":focus-visible" in css.text


def test_sign_in_sets_a_strict_cookie_and_shows_the_key(studio, tokens):
    client = httpx.Client(base_url=studio.url, timeout=20)
    form = client.get("/studio/sign-in")
    refused = client.post("/studio/sign-in", data={"api_key": tokens["editor"]})  # no CSRF token
    assert refused.status_code == 403 and "reload the page" in refused.text
    wrong = client.post("/studio/sign-in", data={"api_key": "dhf_nope_nope", "csrf": _csrf(form.text)})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text and "dhf_studio=" not in str(wrong.headers)
    response = client.post("/studio/sign-in", data={"api_key": tokens["editor"], "csrf": _csrf(wrong.text)})
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("dhf_studio="))
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/studio" in flags
    assert "secure" not in flags  # plain http here; see the https test
    assert tokens["editor"] not in cookie  # the key never goes to the browser
    home = client.get("/studio")
    assert home.status_code == 200
    assert "editor" in home.text and "render, read" in home.text
    assert 'href="/studio/videos/new"' in home.text and 'href="/studio/reviews"' not in home.text  # no review scope


def test_cookie_is_secure_over_https(studio, tokens):
    client = httpx.Client(base_url=studio.url, timeout=20, headers={"X-Forwarded-Proto": "https"})
    form = client.get("/studio/sign-in")
    assert "secure" in form.headers["set-cookie"].lower()
    csrf = re.search(r"dhf_studio_signin=([^;]+)", form.headers["set-cookie"]).group(1)
    client.cookies.set("dhf_studio_signin", csrf)  # httpx keeps no Secure cookie over http: the browser's part
    response = client.post("/studio/sign-in", data={"api_key": tokens["editor"], "csrf": csrf})
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("dhf_studio="))
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


def test_scope_refusals_are_one_line_pages(studio, tokens):
    checker = sign_in(studio, tokens["checker"])
    home = checker.get("/studio")
    assert 'href="/studio/reviews"' in home.text and 'href="/studio/videos/new"' not in home.text
    queue = checker.get("/studio/reviews")
    assert queue.status_code == 200 and "Waiting for a decision" in queue.text
    library = checker.get("/studio/library")  # needs read
    assert library.status_code == 403
    assert "lacks the &#39;read&#39; scope" in library.text or "lacks the 'read' scope" in library.text
    editor = sign_in(studio, tokens["editor"])
    reviews = editor.get("/studio/reviews")
    assert reviews.status_code == 403 and "review" in reviews.text
    library = editor.get("/studio/library")
    assert library.status_code == 200 and "<code>sample</code>" in library.text and "Consent" in library.text
    assert "No Prefect server is configured" in library.text
    missing = editor.get("/studio/no-such-page")
    assert missing.status_code == 404 and "no such page" in missing.text
    api = httpx.get(f"{studio.url}/v1/jobs-nope", timeout=10)  # the REST API's errors stay JSON
    assert api.headers["content-type"].startswith("application/json")


def test_sign_out_needs_csrf_and_deletes_the_session(studio, tokens):
    client = sign_in(studio, tokens["editor"])
    session = client.cookies.get("dhf_studio")
    page = client.get("/studio")
    assert client.post("/studio/sign-out", data={}).status_code == 403  # no token: refused, still signed in
    assert client.post("/studio/sign-out", data={"csrf": "x" * 43}).status_code == 403
    assert client.get("/studio").status_code == 200
    out = client.post("/studio/sign-out", data={"csrf": _csrf(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/studio/sign-in"
    replay = httpx.get(f"{studio.url}/studio", cookies={"dhf_studio": session}, timeout=10)
    assert replay.status_code == 303 and replay.headers["location"] == "/studio/sign-in"  # gone server-side


def test_fetch_posts_carry_the_token_in_a_header(studio, tokens):
    client = sign_in(studio, tokens["editor"])
    token = _csrf(client.get("/studio").text)
    assert client.post("/studio/sign-out", headers={"X-CSRF-Token": token[::-1]}).status_code == 403
    assert client.post("/studio/sign-out", headers={"X-CSRF-Token": token}).status_code == 303


def test_sessions_expire_and_only_their_hash_is_stored(tmp_path):
    store = SessionStore(tmp_path / "studio.sqlite", SessionPolicy(ttl_s=60))
    session_id, session = store.create("k1", now=1000.0)
    assert store.get(session_id, now=1059.0) == session
    assert store.get(session_id, now=1061.0) is None  # expired: signed out, whatever the cookie says
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("studio.sqlite*"))  # the WAL too
    assert session.csrf.encode() in stored and session_id.encode() not in stored
    assert store.get(session_id[:-1] + "x", now=1000.0) is None


def test_the_library_says_why_an_avatar_cannot_be_used(settings):
    library = AvatarLibrary.from_settings(settings.paths)
    sample = library.get("sample")
    lic = sample.license()
    usable = avatar_row(library, sample, lic.valid_from)
    assert (usable.state, usable.problem, usable.review_required) == ("usable", "", False)
    assert usable.consent.startswith(lic.consent_document.name) and usable.channels == lic.channels
    expired = avatar_row(library, sample, lic.valid_until + dt.timedelta(days=1))
    assert expired.state == "expired" and f"expired on {lic.valid_until.isoformat()}" in expired.problem
    early = avatar_row(library, sample, lic.valid_from - dt.timedelta(days=1))
    assert early.state == "not yet valid"
    gone = dataclasses.replace(
        sample, revocation=Revocation(sample.version, "2026-01-02T03:04:05Z", "ops", "consent withdrawn")
    )
    revoked = avatar_row(library, gone, lic.valid_from)
    assert revoked.state == "revoked" and "consent withdrawn" in revoked.problem and "by ops" in revoked.problem


def test_revoking_the_key_ends_its_sessions(studio, tokens, dhf_home):
    client = sign_in(studio, tokens["gone"])
    assert client.get("/studio").status_code == 200
    store = KeyStore(dhf_home / "api" / "keys.sqlite")
    store.revoke(tokens["gone"].split("_")[1])
    assert client.get("/studio").status_code == 303


def _held_review(studio: ApiServer, token: str) -> str:
    """A one-word video ordered through the REST API by `token`'s key, held for review; its review id."""
    auth = {"Authorization": f"Bearer {token}"}
    body = {"text": "Hello.", "language": "en", "avatar_id": "sample", "channel": "demo", "purpose": "demo"}
    job = httpx.post(f"{studio.url}/v1/videos", json=body, headers=auth, timeout=30).json()["job_id"]
    deadline = time.monotonic() + 180
    while (status := httpx.get(f"{studio.url}/v1/videos/{job}", headers=auth, timeout=10).json())["status"] in (
        "queued", "running"
    ) and time.monotonic() < deadline:  # fmt: skip
        time.sleep(0.3)
    assert status["status"] == "succeeded", status
    return status["result"]["review"]["id"]


@pytest.mark.slow  # a real render (16-35 s on two busy cores); the default suite's browser test also decides reviews
def test_review_decisions_go_through_the_gate(studio, tokens):
    review_id = _held_review(studio, tokens["desk"])
    desk = sign_in(studio, tokens["desk"])
    page = desk.get(f"/studio/reviews/{review_id}")
    assert page.status_code == 200 and "you cannot also approve it" in page.text
    assert re.search(r'id="decision-approve"[^>]*disabled', page.text)  # separation of duties shown up front
    assert not re.search(r'type="radio"[^>]*checked', page.text)  # no decision chosen for the reviewer
    assert "Lip-sync correlation" in page.text and "≥" in page.text  # scores beside their thresholds
    video = re.search(r'<video[^>]* src="([^"]+)"', page.text).group(1)
    assert re.fullmatch(rf"/studio/reviews/{review_id}/[0-9]+-[0-9a-f]{{32}}/video\.mp4", video), video
    held = httpx.get(f"{studio.url}{video}", timeout=10)  # the signed path alone opens it (a <video> sends no form)
    assert held.status_code == 200 and held.content[4:8] == b"ftyp"
    forged = video.replace(video.split("/")[-2], video.split("/")[-2][:-1] + ("0" if video[-12] != "0" else "1"))
    assert httpx.get(f"{studio.url}{forged}", timeout=10).status_code == 403
    csrf = _csrf(page.text)
    unchosen = desk.post(f"/studio/reviews/{review_id}", data={"csrf": csrf, "reviewer": "dana"})
    assert unchosen.status_code == 422 and "choose Approve or Reject" in unchosen.text, _alert(unchosen.text)
    own = desk.post(f"/studio/reviews/{review_id}", data={"csrf": csrf, "decision": "approve", "reviewer": "dana"})
    assert own.status_code == 403 and "separation of duties" in own.text  # decide() itself refuses it
    no_token = desk.post(f"/studio/reviews/{review_id}", data={"decision": "reject", "reviewer": "dana"})
    assert no_token.status_code == 403 and "security token" in no_token.text
    checker = sign_in(studio, tokens["checker"])
    form = checker.get(f"/studio/reviews/{review_id}")
    decision = {"csrf": _csrf(form.text), "decision": "reject", "reviewer": "Rita", "comment": "wrong greeting"}
    done = checker.post(f"/studio/reviews/{review_id}", data=decision)
    assert done.status_code == 303
    after = checker.get(f"/studio/reviews/{review_id}")
    assert "rejected" in after.text and "Rita" in after.text and "wrong greeting" in after.text
    assert httpx.get(f"{studio.url}{video}", timeout=10).status_code == 404  # removed with the rejection
    queue = checker.get("/studio/reviews")
    decided = queue.text.split('id="decided-heading"')[1]
    assert f"Review {review_id}" in decided and "Rita" in decided
