"""The README's screenshots, retaken in JupyterLab in headless Chromium
(``make screenshots``). The file's name does not match ``test_*.py``, so
``make test`` does not collect it; pytest runs it when it is named.

- ``docs/control_room.png``: lesson 05 with its first cell run, and only that
  one, so the sliders show the values of the code above them; taken after
  40 s of running, so the charts show a steady state, not the first seconds.
- ``docs/partition_table.png``: the same panel's charts and partition table
  once the payment latency is 50 ms at 300 orders/s, so transactions falls
  behind on every partition while e-mail and analytics keep up.
- ``docs/emails.png``: lesson 03 run to the end (its stored outputs cleared
  first), scrolled to its message view.

The server fixture switches off JupyterLab's news prompt, the pop-up that
covered the old ``emails.png``; each shot here also checks that no
notification is on the page. The pictures go to ``artifacts/browser/docs/``
and are copied to ``docs/``: look at them before committing.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from test_control_room import CHROMIUM_ARGS, all_cells_ran, errors_shown, set_slider, wait_for

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
STEADY_S = 40  # the control room runs this long before its picture
TOASTS = ".jp-toast-container .Toastify__toast, .jp-Notification-Toast"

pytestmark = pytest.mark.integration


@pytest.fixture()
def page(jupyter_server, chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def open_notebook(page, jupyter_server, name: str) -> None:
    # a fresh workspace: no tab of an earlier shot comes back (with a kernel dialog over this one)
    page.goto(jupyter_server.notebook_url(name) + "&reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    # the file browser closed: the notebook gets the width to show the table beside the charts
    # (clicking the left side bar's open tab folds its panel away)
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").first.click()
    page.wait_for_selector("#jp-left-stack", state="hidden")
    page.wait_for_timeout(500)


def scroll_to_top_of(page, locator) -> None:
    locator.evaluate("element => element.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)


def keep(page, artifacts: Path, name: str, *, element=None) -> Path:
    """The page (or one element) as artifacts/browser/docs/NAME.png, copied to docs/."""
    assert page.locator(TOASTS).count() == 0, "a notification covers the page"
    folder = artifacts / "docs"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.png"
    (element or page).screenshot(path=str(path))
    shutil.copyfile(path, DOCS / path.name)
    print(f"screenshot: {path} -> docs/{path.name}")
    return path


def test_control_room_and_partition_table(page, jupyter_server, artifacts):
    open_notebook(page, jupyter_server, "05_control_room.ipynb")
    first_code = page.locator(".jp-CodeCell").first
    first_code.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    try:
        page.wait_for_selector(".orderlab-control-room", timeout=120_000)
    except Exception:
        page.screenshot(path=str(artifacts / "docs-no-control-room.png"))
        raise
    status = page.locator(".orderlab-status").first
    wait_for("the lab to run", lambda: status.inner_text().startswith("running"), 90)
    table = page.locator(".orderlab-partitions table").first
    wait_for("the table to name both workers", lambda: "transactions-1" in table.inner_text(), 60)
    time.sleep(STEADY_S)
    assert not errors_shown(page)
    # the sliders as the code sets them: 100 orders/s, decline 0.1, no payment latency, 2 workers
    for css, value in ((".orderlab-rate", "100"), (".orderlab-decline", "0.10"), (".orderlab-latency", "0"),
                       (".orderlab-workers", "2")):
        assert page.locator(f"{css} .widget-readout").first.inner_text().strip() == value, css
    scroll_to_top_of(page, first_code)
    keep(page, artifacts, "control_room")

    set_slider(page, ".orderlab-latency", 50)
    set_slider(page, ".orderlab-rate", 300)
    time.sleep(15)
    row = page.locator(".orderlab-partitions").first.locator("xpath=..")
    row.scroll_into_view_if_needed()
    keep(page, artifacts, "partition_table", element=row)
    page.locator(".orderlab-stop").first.click()
    wait_for("the lab to stop", lambda: status.inner_text().startswith("stopped"), 60)


def test_emails(page, jupyter_server, artifacts):
    open_notebook(page, jupyter_server, "03_email_notifications.ipynb")
    # the stored outputs go first, so that "every cell ran" means this run's outputs
    page.get_by_role("menuitem", name="Edit", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Clear Outputs of All Cells")).click()
    wait_for("the stored outputs to go", lambda: page.locator(".jp-OutputArea-output").count() == 0, 30)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    wait_for("every cell to run", lambda: all_cells_ran(page), 240, poll=1.0)
    assert not errors_shown(page)
    heading = page.locator(".jp-MarkdownCell h2", has_text="One message").first
    scroll_to_top_of(page, heading)
    keep(page, artifacts, "emails")
