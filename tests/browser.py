"""Debian's chromium driven by Playwright, as every browser test and docs/screenshot_explorer.py launch it.

Without the background-networking flags chromium keeps trying hosts this machine's closed network
refuses. A missing browser skips the test, except under ``INTERP_REQUIRE_BROWSER`` (CI installs it),
where it fails.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def skip_or_fail(reason: str) -> None:
    if os.environ.get("INTERP_REQUIRE_BROWSER"):  # CI installs the browser: a missing one is a failure there
        pytest.fail(reason)
    pytest.skip(reason)


def launched_chromium() -> Iterator[Any]:
    """A fixture body: yields a Playwright ``Browser`` on Debian's chromium, closed afterwards."""
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
