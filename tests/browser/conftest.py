"""The page in real headless Chromium: Debian's `chromium`, driven by Playwright, one browser per
test module, one browser context (a separate person: own storage, own camera) per user.

Each test starts its own pairline server and saves a screenshot of every state it passes through
under artifacts/browser/<test>/. The page ships a strict Content-Security-Policy, so the tests
wait on what the page shows (`data-view`, text) with Playwright's `expect`, which needs no
`eval` in the page; a direct read of a property (a video's width) goes through `evaluate`.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright, expect

from tests.conftest import RunningServer, launch_server

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"

# Real-browser timings: pings every 3 s (a page busy decoding video still answers well within
# three of them) and the default 10 s resume window, which a reload needs.
BROWSER_SETTINGS = {
    "PAIRLINE_PING_INTERVAL_MS": "3000",
    "PAIRLINE_PING_MISSES": "3",
    "PAIRLINE_RESUME_WINDOW_MS": "10000",
    "PAIRLINE_ACK_TIMEOUT_MS": "5000",
    "PAIRLINE_HEALTH_TIMEOUT_MS": "2000",
    "PAIRLINE_SWEEP_INTERVAL_MS": "500",
}
DESKTOP = {"width": 1280, "height": 800}
# Room for a loaded two-core machine running the whole suite in parallel.
expect.set_options(timeout=10_000)
PHONE = {"width": 390, "height": 844}


def chromium_or_fail() -> str:
    """The browser must be there: a missing one fails the run (CI must not skip these)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`; "
            "`make check-tests` does it). Never a downloaded browser build.",
            pytrace=False,
        )
    return CHROMIUM


async def launch(playwright: Playwright, flags: Sequence[str] = FLAGS) -> Browser:
    return await playwright.chromium.launch(executable_path=chromium_or_fail(), args=list(flags))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as p:
        yield p


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    browser = await launch(playwright)
    yield browser
    await browser.close()


@dataclass
class User:
    """One person: a browser context of its own with the page open."""

    name: str
    context: BrowserContext
    page: Page
    console: list[str] = field(default_factory=list)

    @property
    def body(self) -> Any:
        return self.page.locator("body")

    async def view(self, pattern: str, timeout: float = 10_000) -> None:
        """Wait until the page shows this state (a regex over `data-view`)."""
        await expect(self.body).to_have_attribute(
            "data-view", re.compile(f"^(?:{pattern})$"), timeout=timeout
        )

    async def overlay(self, text: str | re.Pattern[str], timeout: float = 10_000) -> None:
        await expect(self.page.locator("#overlay")).to_contain_text(text, timeout=timeout)

    async def press(self, button: str) -> None:
        await self.page.locator(f"#{button}").click()

    async def js(self, expression: str) -> Any:
        return await self.page.evaluate(expression)

    async def remote_video_width(self) -> int:
        width = await self.js("document.getElementById('remote-video').videoWidth")
        assert isinstance(width, int)
        return width

    async def sees_partner_video(self, timeout: float = 10_000) -> int:
        """Wait for the partner's picture to play; return its width (checked > 0)."""
        await self.view("call", timeout)
        width = await self.remote_video_width()
        assert width > 0, f"{self.name}: the call view shows, but the video has no frames"
        return width

    async def user_id(self) -> str:
        value = await self.js("window.pairline.client.userId")
        assert isinstance(value, str)
        return value

    async def partner_id(self) -> str | None:
        value = await self.js("window.pairline.client.partner?.user_id ?? null")
        return value if isinstance(value, str) else None

    async def match_id(self) -> str | None:
        value = await self.js("window.pairline.client.matchId")
        return value if isinstance(value, str) else None

    async def chat(self, text: str) -> None:
        await self.page.locator("#chat-input").fill(text)
        await self.page.locator("#chat-input").press("Enter")

    async def has_chat_line(self, text: str, timeout: float = 5_000) -> None:
        await expect(self.page.locator("#chat-log")).to_contain_text(text, timeout=timeout)


async def in_call(first: User, second: User) -> None:
    """Both press Start (the first waits in the queue) and see each other's video."""
    await first.press("start")
    await first.view("queued")
    await second.press("start")
    await first.sees_partner_video()
    await second.sees_partner_video()


class Web:
    """A test's servers, users and screenshots; everything is closed after the test."""

    def __init__(self, playwright: Playwright, browser: Browser, test_name: str) -> None:
        self.playwright = playwright
        self.browser = browser
        self.browsers: list[Browser] = []  # launched with other flags, for one test
        self.servers: list[RunningServer] = []
        self.users: list[User] = []
        self.shots = ARTIFACTS / re.sub(r"[^\w.-]+", "_", test_name)
        shutil.rmtree(self.shots, ignore_errors=True)
        self.shots.mkdir(parents=True, exist_ok=True)
        self._count = 0

    @property
    def url(self) -> str:
        return self.servers[0].url

    async def server(self, **settings: Any) -> RunningServer:
        env = {**BROWSER_SETTINGS, **{k: str(v) for k, v in settings.items()}}
        server = await launch_server(env)
        self.servers.append(server)
        return server

    async def launch(self, flags: Sequence[str]) -> Browser:
        """Another browser, for users whose devices differ (a denied camera, none at all)."""
        browser = await launch(self.playwright, flags)
        self.browsers.append(browser)
        return browser

    async def user(
        self,
        name: str,
        *,
        browser: Browser | None = None,
        viewport: dict[str, int] = DESKTOP,
        url: str | None = None,
        **options: Any,
    ) -> User:
        context = await (browser or self.browser).new_context(viewport=viewport, **options)
        page = await context.new_page()
        user = User(name, context, page)
        page.on("console", lambda m: user.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: user.console.append(f"pageerror: {e}"))
        self.users.append(user)
        await page.goto(url or self.url)
        await user.view("idle")
        return user

    async def shot(self, user: User, state: str) -> Path:
        """Save what this user sees now as NN-<user>-<state>.png."""
        self._count += 1
        path = self.shots / f"{self._count:02d}-{user.name}-{state}.png"
        await user.page.screenshot(path=str(path))
        return path

    def page_errors(self) -> list[str]:
        return [f"{u.name} {line}" for u in self.users for line in u.console if "pageerror" in line]

    async def close(self, failed: bool) -> None:
        for user in self.users:
            if failed:
                with contextlib.suppress(Exception):  # a page that is gone has nothing to show
                    await self.shot(user, "at-failure")
            await user.context.close()
        for browser in self.browsers:
            await browser.close()
        for server in self.servers:
            await server.stop()
        if failed:
            for user in self.users:
                sys.stderr.write(f"--- console of {user.name}\n" + "\n".join(user.console) + "\n")
            for server in self.servers:
                sys.stderr.write(f"--- server log {server.url}\n{server.log_text()[-6000:]}\n")
        for server in self.servers:
            shutil.rmtree(server.workdir, ignore_errors=True)


@pytest_asyncio.fixture(loop_scope="module")
async def web(
    playwright: Playwright, browser: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[Web]:
    web = Web(playwright, browser, request.node.name)
    try:
        yield web
        assert not web.page_errors(), web.page_errors()
    finally:
        report = getattr(request.node, "rep_call", None)
        await web.close(failed=report is not None and report.failed)
