"""Lesson 05 in the system's Chromium (headless, through Playwright), driven as a teacher drives it.

The rate slider is moved through the page: a click in its read-out, the
value typed, Enter; the widget sends the new value to the kernel as a
click on the slider would. The chart's frames are counted as they arrive
in the page: a MutationObserver notes the time of every change of the
chart image's ``src`` (the Image widget sets a new one per frame).

Playwright's sync API: every call comes from the thread that launched it.
"""

from __future__ import annotations

import asyncio
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import ClassroomError

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: no browser is downloaded
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1100}
RUN_ATTEMPTS = 3  # Shift+Enter in the first cell, again while its prompt shows it never started
RUN_STARTS_S = 15.0

# every change of the chart image's src, by time; on the whole document, so a
# re-rendered panel (JupyterLab may detach and re-attach an output) is still counted
COUNT_FRAMES = """() => {
  if (window.__orderlabFrames) return;
  window.__orderlabFrames = [];
  new MutationObserver(records => {
    for (const record of records) {
      if (record.target.classList && record.target.classList.contains('orderlab-chart')) {
        window.__orderlabFrames.push(performance.now());
      }
    }
  }).observe(document.body, {attributes: true, attributeFilter: ['src'], subtree: true});
}"""
PAGE_CLOCK = "() => performance.now()"
FRAMES_SINCE = "since => (window.__orderlabFrames || []).filter(at => at >= since)"


@contextmanager
def _own_session() -> Iterator[None]:
    """Playwright's driver (and the browser it launches) started in a session of its own.

    Ctrl-C in a terminal signals the whole foreground process group: the
    driver would die of it at once, and this process would only learn that
    its browser connection closed. In its own session the driver stays up,
    this process gets the KeyboardInterrupt, and the run's clean-up closes
    the browser in order. Should this process die outright, the driver
    still ends: it exits when its stdin (a pipe from here) closes.
    Playwright has no option for this; it starts the driver with
    :func:`asyncio.create_subprocess_exec`, which is wrapped only while it starts.
    """
    original = asyncio.create_subprocess_exec

    async def in_own_session(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("start_new_session", True)
        return await original(*args, **kwargs)

    asyncio.create_subprocess_exec = in_own_session  # type: ignore[assignment]
    try:
        yield
    finally:
        asyncio.create_subprocess_exec = original  # type: ignore[assignment]


def wait_for(what: str, condition: Callable[[], Any], timeout_s: float, poll_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ClassroomError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


class LessonPage:
    """The browser, its one page, and what a teacher does in it."""

    def __init__(self, chromium: Path = CHROMIUM) -> None:
        if not chromium.exists():
            raise ClassroomError(f"{chromium} is missing: install Debian's chromium (apt-get install -y chromium)")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise ClassroomError("Playwright is not installed: run `make setup` (it installs orderlab[dev])") from None
        with _own_session():
            self._playwright = sync_playwright().start()
        try:
            self.browser = self._playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
            self.page = self.browser.new_page(viewport=VIEWPORT)
            self.page.set_default_timeout(30_000)
        except Exception:
            self._playwright.stop()
            raise

    def open(self, url: str) -> None:
        """The notebook open, its kernel idle, the file browser folded away (the table fits beside the charts)."""
        page = self.page
        page.goto(url)
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").first.click()
        page.wait_for_selector("#jp-left-stack", state="hidden")

    def run_first_cell(self, timeout_s: float = 180.0) -> None:
        """Shift+Enter in the first code cell; returns once the panel says the lab runs."""
        cell = self.page.locator(".jp-CodeCell").first
        prompt = cell.locator(".jp-InputPrompt").first
        for _attempt in range(RUN_ATTEMPTS):
            cell.locator(".jp-InputArea-editor").click()
            self.page.keyboard.press("Shift+Enter")
            try:  # "[*]:" or "[1]:"; a kernel still connecting drops the request, and the prompt stays "[ ]:"
                wait_for("the first cell to run", lambda: re.search(r"\[(\*|\d+)\]", prompt.inner_text()), RUN_STARTS_S)
                break
            except ClassroomError:
                continue
        else:
            raise ClassroomError(f"lesson 05's first cell did not start running after {RUN_ATTEMPTS} Shift+Enter: "
                                 "is the kernel starting?")
        try:
            wait_for("the control room", lambda: self.page.locator(".orderlab-control-room").count(), timeout_s, poll_s=0.5)
        except ClassroomError:
            output = cell.locator(".jp-OutputArea").first.inner_text().strip().splitlines()
            raise ClassroomError(f"lesson 05's first cell showed no control room within {timeout_s:.0f} s"
                                 + (f": {output[-1]}" if output else " (and no output)")) from None
        status = wait_for("the control room to say it runs",
                          lambda: (text := self.text(".orderlab-status")).startswith(("running", "could not")) and text,
                          timeout_s)
        if not str(status).startswith("running"):
            raise ClassroomError(f"lesson 05's first cell: {status}")
        self.page.evaluate(COUNT_FRAMES)
        self.show_panel()

    def show_panel(self) -> None:
        self.page.locator(".orderlab-control-room").first.scroll_into_view_if_needed()

    def text(self, css: str) -> str:
        return self.page.locator(css).first.inner_text().strip()

    def set_rate(self, rate: int) -> None:
        """Type ``rate`` into the rate slider's read-out, as a person can (click, select, type, Enter)."""
        readout = self.page.locator(".orderlab-rate .widget-readout").first
        readout.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.type(str(rate))
        self.page.keyboard.press("Enter")
        wait_for(f"the rate slider to show {rate}", lambda: re.sub(r"[^\d]", "", readout.inner_text()) == str(rate), 10)

    def clock(self) -> float:
        """The page's clock, in seconds."""
        return float(self.page.evaluate(PAGE_CLOCK)) / 1000.0

    def frames_since(self, since_s: float) -> list[float]:
        """When each chart frame arrived in the page since ``since_s`` (the page's clock, seconds)."""
        return [at / 1000.0 for at in self.page.evaluate(FRAMES_SINCE, since_s * 1000.0)]

    def screenshot(self, path: Path, *, panel: bool = True) -> Path:
        """The page as it is (with ``panel``, scrolled to the control room first)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if panel:
            self.show_panel()
        self.page.screenshot(path=str(path))
        return path

    def press_stop(self, timeout_s: float = 60.0) -> None:
        """The panel's Stop button; waits until it says the roles stopped."""
        self.page.locator(".orderlab-stop").first.click()
        wait_for("the control room to stop", lambda: self.text(".orderlab-status").startswith(("stopped", "error")), timeout_s)

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._playwright.stop()
