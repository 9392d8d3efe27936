"""The API's docs pages as a newcomer's browser shows them (issue 18): headless Chromium opens `/docs`
and `/redoc` of a running `dhf api` and finds the operations rendered, with every resource the page
loaded served by the API itself (nothing from a CDN: offline, and nothing leaves the machine).
The Prefect UI's paused review run, thumbnail included, is looked at in test_review_prefect.py."""

from __future__ import annotations

from urllib.parse import urlparse

from chromium import Chromium
from conftest import ApiServer


def _hosts(urls: list[str]) -> set[str]:
    return {urlparse(url).netloc for url in urls if not url.startswith(("data:", "blob:"))}


def test_docs_and_redoc_render_their_operations_offline(dhf_home, tmp_path):
    server = ApiServer(dhf_home, tmp_path).start()
    local = urlparse(server.url).netloc
    try:
        with Chromium() as page:
            page.open(f"{server.url}/docs")
            summaries = page.wait_for(
                "Array.from(document.querySelectorAll('.opblock-summary-path')).map(e => e.textContent.trim())"
            )
            assert summaries and "/v1/videos" in summaries and "/v1/reviews" in summaries, summaries
            page.settle()
            assert _hosts(page.requested()) == {local}, page.requested()
            page.screenshot(tmp_path / "docs.png")

            page.open(f"{server.url}/redoc")
            operations = page.wait_for(
                "Array.from(document.querySelectorAll('[data-section-id^=\"operation/\"] h2'))"
                ".map(e => e.textContent.trim())"
            )
            assert operations and len(operations) >= 10, operations
            page.settle()
            assert _hosts(page.requested()) == {local}, page.requested()
            page.screenshot(tmp_path / "redoc.png")
    finally:
        server.stop()
