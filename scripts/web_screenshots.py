"""Take the screenshots of the chat page shown in the README and docs/web.md.

Run against a `convstore serve` on a fresh database (it registers a demo account and chats):

    .venv/bin/python scripts/web_screenshots.py http://127.0.0.1:8000 docs/images

Needs Playwright for Python (the dev extra) and Debian's chromium (scripts/install-chromium.sh).
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/lib/chromium/chromium"


def chat(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")
    page.locator("article.message.assistant").last.and_(page.locator(":not(.streaming)")).wait_for()


def main(base: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 760})
        page = context.new_page()
        page.goto("/")
        page.get_by_role("button", name="New here? Create an account").click()
        page.get_by_label("Name").fill("Ada")
        page.get_by_label("Email").fill(f"ada-{uuid.uuid4().hex[:6]}@example.com")
        page.get_by_label("Password").fill("a long passphrase for the demo")
        page.get_by_role("button", name="Create account").click()
        page.get_by_label("Message", exact=True).wait_for()
        for text in ("add buy milk tomorrow #home", "remind me to call mom on friday at 5pm"):
            chat(page, text)
        page.get_by_role("button", name="New chat").click()
        chat(page, "urgent: renew passport by 2026-12-20")
        chat(page, "what's left?")
        page.screenshot(path=out / "web-chat.png")

        dark = browser.new_context(
            base_url=base,
            viewport={"width": 375, "height": 740},
            color_scheme="dark",
            storage_state=context.storage_state(),
        )
        narrow = dark.new_page()
        narrow.goto(page.url.replace(base, ""))
        narrow.locator("article.message").last.wait_for()
        narrow.screenshot(path=out / "web-narrow-dark.png")
        narrow.get_by_role("button", name="Tasks (3)").click()
        narrow.screenshot(path=out / "web-narrow-tasks.png")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"), Path(sys.argv[2]))
