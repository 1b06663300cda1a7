"""Reading the lesson's kernel from outside, through the kernel's own protocol.

Why this way, and not a file the lesson writes: the lesson runs exactly as
a class runs it (no line of it, no setting of the Lab, changes for the
bench), and every figure is the one the control room itself shows. The
bench connects a second client to the kernel's connection file (the
Jupyter server keeps it in its runtime folder) and sends *silent* execute
requests whose one user expression calls :func:`.probe.reading`: a silent
request publishes no output and moves no execution count, so the notebook
in the browser shows nothing of it. The kernel evaluates it on its main
thread between the widget messages the page sends, which is idle while the
pipeline runs in the Lab's threads.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path
from typing import Any

from .errors import ClassroomError

PROBE = "__import__('orderlab.bench.classroom.probe', fromlist=['reading']).reading"


class KernelProbe:
    """A client of one running kernel that evaluates expressions in its namespace."""

    def __init__(self, connection_file: Path, *, timeout_s: float = 30.0) -> None:
        from jupyter_client import BlockingKernelClient

        self.timeout_s = timeout_s
        self._client = BlockingKernelClient(connection_file=str(connection_file))
        self._client.load_connection_file()
        # the shell channel alone: replies to our requests; iopub would bring every output of the lesson too
        self._client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the notebook's namespace (its repr read back as a Python literal)."""
        msg_id = self._client.execute("", silent=True, store_history=False, user_expressions={"value": expression})
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClassroomError(f"the lesson's kernel did not answer within {self.timeout_s:.0f} s: is it busy or dead?")
            try:
                reply = self._client.get_shell_msg(timeout=left)
            except Exception:  # noqa: BLE001 - queue.Empty: the deadline check above says it
                continue
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                break
        result = reply["content"].get("user_expressions", {}).get("value", {})
        if result.get("status") != "ok":
            raise ClassroomError(f"the lesson's kernel could not evaluate {expression[:60]!r}: "
                                 f"{result.get('ename', 'error')}: {result.get('evalue', reply['content'].get('status'))}")
        return ast.literal_eval(result["data"]["text/plain"])

    def reading(self, latencies_after: float, growth_since: float | None = None, *, room: str = "room") -> dict[str, Any]:
        """:func:`.probe.reading` of the lesson's control room (the variable ``room`` of lesson 05's first cell)."""
        growth = "None" if growth_since is None else repr(float(growth_since))
        return json.loads(self.evaluate(f"{PROBE}({room}, {float(latencies_after)!r}, {growth})"))

    def close(self) -> None:
        self._client.stop_channels()
