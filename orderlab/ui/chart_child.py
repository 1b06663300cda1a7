"""The child of :class:`~orderlab.ui.chart_process.ChartProcess`
(``python -m orderlab.ui.chart_child WIDTH HEIGHT DPI``).

Kept apart because it is a program of its own: it reads one
:class:`~orderlab.ui.chartdata.DashboardData` per frame on stdin, draws it
with a :class:`~orderlab.ui.charts.DashboardChart` of its own and answers with
the PNG bytes, or with the error's text. It ends when its input closes, which
is also what happens when the kernel that started it dies.
"""

from __future__ import annotations

import sys

from ..childproc import child_streams, read_frame, write_frame
from .charts import DashboardChart


def _chart_main(argv: list[str]) -> int:
    width, height, dpi = float(argv[0]), float(argv[1]), int(argv[2])
    frames, out = child_streams()
    chart = DashboardChart((width, height), dpi)
    write_frame(out, "ready", None)
    try:
        while True:
            try:
                _, data = read_frame(frames)
            except EOFError:
                return 0
            try:
                png = chart.render(data)
            except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
                write_frame(out, "error", f"{type(exc).__name__}: {exc}")
            else:
                write_frame(out, "png", png)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(_chart_main(sys.argv[1:]))
