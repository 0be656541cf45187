"""What the browser tests share: a real `lightml gui` process, headless Chromium (Debian's
chromium, driven by playwright) and screenshots into tests/artifacts/ (which CI keeps).

A test module calls ``require_browser()`` first: it is skipped, with the reason, where Chromium
or the playwright package is missing (.ci/run installs both). The ``browser`` fixture is in
this folder's conftest.py.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def require_browser():
    """The playwright module, or the calling test module skipped with the reason."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (dev extra)")


ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # tests/artifacts/, ignored by git
XSS = '<img src=x onerror=alert(1)>'
# As root in a container, and on a machine whose network is closed: no sandbox, no background traffic.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(registry: Path):
    """A real `lightml gui` process on a free port; yields its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lightml", "gui", "--db", str(registry), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/api/runs", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"the dashboard did not start: {proc.stderr.read().decode()}")
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def open_page(browser, url: str):
    """The dashboard at url, interactive; fails on any page error or dialog."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    yield page
    context.close()
    assert not problems, problems


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
