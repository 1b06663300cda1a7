"""The control room in a real browser: JupyterLab in headless Chromium (Debian's
/usr/bin/chromium, driven by Playwright; no browser download).

It opens ``05_control_room.ipynb``, runs every cell, and checks what a
teacher would see: the sliders render, no cell shows an error (but the
exercises' hints, which a blank answer gets), the chart image changes while
orders flow, the partition table names the workers, and moving the rate
slider changes the measured order rate. Screenshots go to
``artifacts/browser/``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable

import pytest

from orderlab.polling import poll_until

pytestmark = pytest.mark.integration

NOTEBOOK = "05_control_room.ipynb"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ERROR_OUTPUTS = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
HINT = "NotYet: not answered yet"  # what an exercise's check shows while its answer is blank


def errors_shown(page) -> list[str]:
    """Every error or stderr output on the page, but the exercises' hints."""
    return [text for text in page.locator(ERROR_OUTPUTS).all_text_contents() if HINT not in text]


def wait_for(what: str, condition: Callable[[], object], timeout: float, poll: float = 0.25) -> object:
    """Poll ``condition`` until it returns something true, up to ``timeout`` seconds."""
    return poll_until(condition, timeout, what, poll_s=poll, error=AssertionError)


def measured_rate(page) -> float:
    text = page.locator(".orderlab-measured-rate").first.inner_text()
    match = re.search(r"measured:\s*([\d,]+)", text)
    return float(match.group(1).replace(",", "")) if match else -1.0


def set_slider(page, css: str, value: int) -> None:
    """Type a value into the slider's read-out, as a person can (click, select, type, Enter)."""
    readout = page.locator(f"{css} .widget-readout").first
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(value))
    page.keyboard.press("Enter")


def chart_source(page) -> str:
    return page.locator("img.orderlab-chart").first.get_attribute("src") or ""


def all_cells_ran(page) -> bool:
    """Every code cell shows an execution count and none is still running ([*])."""
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()  # also of cells scrolled out of view
    return bool(prompts) and all(re.search(r"\[\d+\]", prompt) for prompt in prompts)


def shoot(page, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def test_control_room_runs_and_responds_to_the_rate_slider(jupyter_server, chromium, artifacts):
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(30_000)
            page.goto(jupyter_server.notebook_url(NOTEBOOK))

            # the notebook is open and its kernel is ready
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)

            # the lesson's Mermaid diagram is drawn (JupyterLab 4 renders ```mermaid blocks as an SVG image)
            page.wait_for_selector(".jp-RenderedMermaid img", timeout=30_000)
            shoot(page, artifacts, "00-opened")

            # Run > Run All Cells
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()

            page.wait_for_selector(".orderlab-control-room", timeout=60_000)
            sliders = wait_for("three sliders", lambda: page.locator(".orderlab-control-room .widget-slider").count() >= 3, 60)
            assert sliders
            wait_for("every cell to run", lambda: all_cells_ran(page), 150, poll=1.0)
            page.locator(".orderlab-control-room").first.scroll_into_view_if_needed()
            shoot(page, artifacts, "01-after-run-all")

            assert page.locator(ERROR_OUTPUTS).count() >= 2  # the two exercises' hints
            errors = errors_shown(page)
            assert not errors, "a cell shows an error:\n" + "\n".join(errors)[:2000]
            assert page.locator(".orderlab-control-room .widget-slider").count() >= 3

            # the last cell stopped everything: start it again from the panel
            page.locator(".orderlab-start").first.click()
            wait_for("the lab to run again", lambda: page.locator(".orderlab-status").first.inner_text().startswith("running"), 60)

            set_slider(page, ".orderlab-rate", 100)
            low = wait_for("orders to flow at about 100/s", lambda: (rate := measured_rate(page)) >= 50 and rate, 45)

            first = chart_source(page)
            second = wait_for("the chart to change", lambda: (src := chart_source(page)) != first and src, 15)
            assert first and second and first != second
            table = page.locator(".orderlab-partitions table").first
            wait_for("the partition table to name the workers", lambda: "transactions-0" in table.inner_text(), 30)
            assert "transactions · order_details" in table.inner_text() and "analytics" in table.inner_text()
            shoot(page, artifacts, "02-orders-flowing")

            set_slider(page, ".orderlab-rate", 600)
            high = wait_for(
                "the measured rate to follow the slider",
                lambda: (rate := measured_rate(page)) >= max(2 * low, 250) and rate,
                45,
            )
            page.locator(".orderlab-control-room").first.scroll_into_view_if_needed()
            shoot(page, artifacts, "03-rate-raised")
            print(f"measured rate: {low:.0f}/s at slider 100, {high:.0f}/s at slider 600")

            page.locator(".orderlab-stop").first.click()
            wait_for("the lab to stop", lambda: page.locator(".orderlab-status").first.inner_text().startswith("stopped"), 60)
            assert not errors_shown(page)
            shoot(page, artifacts, "04-stopped")
        finally:
            browser.close()
    print(f"browser test took {time.monotonic() - started:.0f} s")
