"""Regenerate docs/explorer.png: the explorer on SmolLM2 in Debian's chromium, every panel filled.

    python docs/screenshot_explorer.py [docs/explorer.png]
"""

import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests/browser.py

import uvicorn
from playwright.sync_api import sync_playwright

from analyses.explore_command import builtin_registry
from interp.explore import create_app
from tests.browser import CHROMIUM, CHROMIUM_ARGS


def main(out: Path) -> None:
    registry = builtin_registry()
    registry.get("smollm2", allow_slow=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(registry), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#model option", state="attached")
        page.select_option("#model", "smollm2")
        page.click("#run")
        page.wait_for_selector("#lens .iv-cell")
        page.select_option("#attention .iv-layer", "5")
        page.click("#neurons-run")
        page.wait_for_selector("#neurons tr td")
        page.click("#patch-run")
        page.wait_for_selector("#patch .iv-cell")
        page.click("#trace-run")
        page.wait_for_selector("#trace .iv-cell", timeout=120_000)
        page.locator("#lens .iv-cell[data-row='24'][data-col='7']").hover()
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    server.should_exit = True
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("explorer.png")))
