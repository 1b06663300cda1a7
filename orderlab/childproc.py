"""A helper process of our own, spoken to in pickled frames over its stdin and stdout.

The pipeline runs in one Python process, where every thread shares one GIL:
a thread that makes a system call lets go of the GIL and, if the other
threads are busy, waits for it again for up to the switch interval (5 ms).
Work that is one small system call after another (an SMTP conversation,
serving SMTP) therefore runs far slower there than its CPU cost says. Such
work goes to a child process (``python -m <module>``), and the frames carry
a whole batch each way.

Only our own modules are started this way, so the frames are pickles.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import IO, Any

_FRAME = struct.Struct(">I")  # each frame: its length, then a pickled (kind, payload)


def start_child(module: str, *args: str) -> subprocess.Popen[bytes]:
    """``python -m module args...`` with pipes to its stdin and stdout.

    Its stderr is dropped: in a notebook kernel it would land in a cell
    (kernels forward file descriptor 2). A child reports problems in frames.
    """
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def child_streams() -> tuple[IO[bytes], IO[bytes]]:
    """In the child: (frames in, frames out). Stray prints go to stderr, not into the frames."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return sys.stdin.buffer, out


def write_frame(stream: IO[bytes], kind: str, payload: Any) -> None:
    data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)) + data)
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) < size:
        raise EOFError("the helper process ended")
    return data


def read_frame(stream: IO[bytes]) -> tuple[str, Any]:
    (size,) = _FRAME.unpack(_read_exactly(stream, _FRAME.size))
    return pickle.loads(_read_exactly(stream, size))  # noqa: S301 - frames from our own child process


def read_frame_within(child: subprocess.Popen[bytes], timeout: float, what: str, *,
                      awaited: str = "start") -> tuple[str, Any]:
    """The child's next frame, or ``OSError`` when it says nothing within ``timeout`` seconds or ends.

    ``awaited`` names what the frame means, for the error: "start" (the ready
    frame) or "answer". A reader thread waits, since a pipe's read has no
    time limit; after a timeout it ends once the child is stopped.
    """
    result: dict[str, Any] = {}

    def read() -> None:
        try:
            if child.stdout is None:
                raise OSError(f"the {what} process has no output pipe")
            result["frame"] = read_frame(child.stdout)
        except BaseException as exc:  # noqa: BLE001 - reported below
            result["error"] = exc

    reader = threading.Thread(target=read, name=f"orderlab-{what}-start", daemon=True)
    reader.start()
    reader.join(timeout)
    if "frame" in result:
        return result["frame"]
    if reader.is_alive():
        raise OSError(f"the {what} did not {awaited} within {timeout:g} s")
    raise OSError(f"the {what} ended before it {'started' if awaited == 'start' else 'answered'} (exit code {child.poll()})")


def stop_child(child: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Close its input (its signal to finish) and wait for it; kill it if it does not end in time."""
    try:
        if child.stdin is not None:
            child.stdin.close()
    except OSError:
        pass
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
