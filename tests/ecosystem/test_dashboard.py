"""The presenter view: ``make dashboard`` serves the control-room notebook
with Voila as a page of sliders and live charts, without code.

The test starts Voila from the virtual environment on a free port, against
the test broker, and loads the page in headless Chromium (Debian's
``/usr/bin/chromium``, never a downloaded browser). Voila executes the
notebook on the server and the browser draws the widgets from their models,
so both are checked: the served HTML carries widget views and no source, and
the rendered page shows sliders and a chart. Voila and every kernel it
started are stopped at the end, even when the notebook leaves a refresher
thread running.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "dashboards" / "control_room.ipynb"
VOILA = Path(sys.executable).parent / "voila"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
EXECUTION_ERROR = "There was an error when executing cell"  # Voila's page when a cell raised
PAGE_TIMEOUT_S = 180  # Voila sends the page once every cell ran: the lab starts its roles first

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log_path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise AssertionError(f"voila exited ({process.returncode}) before listening:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"voila not listening on {port} within {timeout_s:.0f} s:\n{log_path.read_text()}") from None
            time.sleep(0.2)


def stop_process_tree(process: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """SIGTERM Voila's process group, then make sure no kernel it started outlives it.

    jupyter_client starts kernels in sessions of their own, so the group
    signal does not reach them: they are found (as Voila's descendants)
    before Voila goes, and killed if Voila's own shutdown left them running.
    """
    import psutil

    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        except ProcessLookupError:
            pass
    _gone, alive = psutil.wait_procs(descendants, timeout=10)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)


@pytest.fixture()
def dashboard_url(kafka_bootstrap: str, tmp_path: Path) -> Iterator[str]:
    """Voila serving the control-room notebook as ``make dashboard`` does, on a free port."""
    assert NOTEBOOK.exists(), f"{NOTEBOOK.relative_to(ROOT)} is missing"
    assert VOILA.exists(), f"{VOILA} is missing: install orderlab[dev]"
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ORDERLAB_TOPIC_SUFFIX": f"-dash-{uuid.uuid4().hex[:8]}",
        "ORDERLAB_DB_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        # the lesson's scripted pauses, shortened as under nbval (the panel is the same)
        "ORDERLAB_TEST_MODE": "1",
    }
    log_path = tmp_path / "voila.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [str(VOILA), str(NOTEBOOK), f"--port={port}", "--Voila.ip=127.0.0.1", "--no-browser"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, log_path)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_process_tree(process)
        print(log_path.read_text(errors="replace")[-4000:])  # shown by pytest when the test failed


def code_lines(notebook: Path) -> list[str]:
    """Distinctive lines of the notebook's code cells (what must not be shown).

    Lines that the prose quotes (a markdown cell may show ``room.rate.value = 0``
    to the reader) are left out: the page shows those on purpose.
    """
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]

    def text(cell: dict) -> str:
        return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]

    prose = "\n".join(text(cell) for cell in cells if cell["cell_type"] == "markdown")
    lines = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        for line in (line.strip() for line in text(cell).splitlines()):
            if len(line) >= 20 and not line.startswith("#") and line not in prose:
                lines.append(line)
    return lines


def test_dashboard_serves_the_control_room_as_live_widgets_without_code(dashboard_url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            response = page.goto(dashboard_url, timeout=PAGE_TIMEOUT_S * 1000, wait_until="domcontentloaded")
            assert response is not None and response.ok, f"GET {dashboard_url}: {response and response.status}"
            served = response.text()

            # what the server sent: widget views, every cell ran, no source
            assert WIDGET_VIEW in served
            assert EXECUTION_ERROR not in served, "a control-room cell raised; run voila with --show_tracebacks=True"
            assert "Traceback (most recent call last)" not in served
            shown = [line for line in code_lines(NOTEBOOK) if line in served or html.escape(line) in served]
            assert not shown, f"the page shows source code: {shown[:3]}"

            # what the browser drew from the widget models: the panel's four sliders and its chart
            page.wait_for_selector(".orderlab-control-room .widget-slider", timeout=90_000)
            for knob in ("rate", "decline", "latency", "workers"):
                assert page.locator(f".orderlab-{knob}.widget-slider").count() == 1, f"no {knob} slider"
            # markdown cells render inside .jp-InputArea too; code cells must show no input at all
            assert page.locator(".jp-CodeCell .jp-InputArea, .jp-InputPrompt, .jp-CodeMirrorEditor, .cm-editor").count() == 0
            chart = page.locator("img.orderlab-chart, .orderlab-chart img").first
            chart.wait_for(state="visible", timeout=60_000)

            # the panel drives the lab: Start, move the rate slider, and the orders flow and the chart moves
            status = page.locator(".orderlab-status")
            page.locator(".orderlab-start").click()
            page.wait_for_function(
                "el => el.innerText.startsWith('running')", arg=status.element_handle(), timeout=90_000
            )
            readout = page.locator(".orderlab-rate .widget-readout")
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("300")
            page.keyboard.press("Enter")
            measured = page.locator(".orderlab-measured-rate")
            page.wait_for_function(
                "el => /measured: [1-9][0-9,]* orders/.test(el.innerText)", arg=measured.element_handle(), timeout=90_000
            )
            before = chart.get_attribute("src")
            page.wait_for_function(
                "([el, before]) => el.getAttribute('src') !== before", arg=[chart.element_handle(), before], timeout=30_000
            )

            # Stop: the roles drain and stop before Voila goes
            page.locator(".orderlab-stop").click()
            page.wait_for_function("el => el.innerText.startsWith('stopped')", arg=status.element_handle(), timeout=60_000)
        finally:
            browser.close()
