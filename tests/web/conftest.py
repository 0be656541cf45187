"""The browser tests' shared fixture: one headless Chromium per test module."""

from __future__ import annotations

import pytest

from browsing import CHROMIUM, CHROMIUM_ARGS, require_browser  # tests/web/browsing.py


@pytest.fixture(scope="module")
def browser():
    sync_api = require_browser()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
