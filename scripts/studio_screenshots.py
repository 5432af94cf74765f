"""Screenshots of the studio for README: docs/studio-campaign.png, studio-run.png, studio-click-map.png.

    PYTHONPATH=. python scripts/studio_screenshots.py

Seeds a throwaway copy of the sample workspace (SQLite) with contacts and a tracked run whose
clicks go through the real tracking server (the test suite's helpers), serves the studio and
photographs its pages in Debian's Chromium, offline.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Route, sync_playwright

from pipeline.feedback.server import create_app
from pipeline.storage.engines import make_engine, upgrade
from pipeline.workspace.folders import Workspace
from pipeline.workspace.init import init_workspace
from pipeline.workspace.settings import load_settings
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.feedback.conftest import SECRET, ServerThread
from tests.reports.conftest import build_run
from tests.studio.conftest import serve_studio

DOCS = Path(__file__).resolve().parent.parent / "docs"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
DEPARTMENTS = ["sales"] * 18 + ["finance"] * 12 + ["production"] * 10
# Who clicks which link (index in the message's order): a lively first link, a quieter second.
CLICKS = {0: range(0, 9), 1: range(5, 13), 2: range(20, 23), 3: range(30, 31)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        init_workspace(root)
        env = {"COMMS_DATABASE_URL": f"sqlite:///{tmp}/comms.db", "COMMS_SECRET": SECRET}
        os.environ.update(env)
        settings = load_settings(root, env)
        upgrade(settings.database.url)
        engine = make_engine(settings.database.url)
        tracking = create_app(settings, engine, workspace=Workspace.with_settings(root, settings))
        with ServerThread(tracking, settings) as tracking_url:
            settings.tracking.base_url = tracking_url
            people = [
                {"email": f"person{i}@example.com", "attributes": {"department": d}}
                for i, d in enumerate(DEPARTMENTS)
            ]
            run_id, messages = build_run(settings, engine, people, campaign="spring-launch")
            for index, who in CLICKS.items():
                for i in who:
                    message = messages[f"person{i}@example.com"]
                    httpx.get(message.pixel, headers={"User-Agent": FIREFOX})
                    httpx.get(message.clicks[index], headers={"User-Agent": FIREFOX})
        with serve_studio(root) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            context = browser.new_context(viewport={"width": 1440, "height": 1150})

            def offline(route: Route) -> None:
                (route.continue_ if route.request.url.startswith(url + "/") else route.abort)()

            context.route("**/*", offline)
            page = context.new_page()
            page.goto(f"{url}/campaigns/spring-launch")
            page.frame_locator("#desktop").locator("body").get_by_text("Hi Alex").wait_for()
            page.locator("body[data-live=on]").wait_for()
            page.screenshot(path=DOCS / "studio-campaign.png")
            page.goto(f"{url}/runs/{run_id}")
            page.screenshot(path=DOCS / "studio-run.png", full_page=True)
            page.goto(f"{url}/runs/{run_id}/click-map")
            page.frame_locator("#click-map").locator(".comms-badge").first.wait_for()
            page.screenshot(
                path=DOCS / "studio-click-map.png", clip={"x": 0, "y": 0, "width": 1440, "height": 700}
            )
            browser.close()
        engine.dispose()


if __name__ == "__main__":
    main()
