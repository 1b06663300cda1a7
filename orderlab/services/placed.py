"""The ids of the orders a source placed, kept for the reconciliation: :class:`PlacedIds`.

Why not a list of strings: a Lab keeps every id it placed (the
reconciliation accounts for each), and a class can leave the control room
running at 2000 orders/s for an hour. As text an id costs about 93 bytes
(the string and its place in the list): some 670 MB an hour, in the process
every role shares. The generator's and the form's ids are UUIDs, kept here as
their 16 bytes; any other id is kept as text (all of them from then on), so
the order they were placed in, and every id, comes back unchanged.
"""

from __future__ import annotations

import threading
from typing import Iterator, Sequence, overload

_UUID_LENGTH = 36


def _packed(order_id: str) -> bytes | None:
    """The 16 bytes of a lowercase canonical UUID text (what :func:`_text` gives back), else None."""
    if len(order_id) != _UUID_LENGTH:
        return None
    try:
        packed = bytes.fromhex(order_id.replace("-", ""))
    except ValueError:
        return None
    return packed if len(packed) == 16 and _text(packed) == order_id else None


def _text(packed: bytes) -> str:
    digits = packed.hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class PlacedIds(Sequence[str]):
    """Order ids in the order they were placed; :meth:`append` from any thread, read from any other."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._packed = bytearray()  # 16 bytes an id, while every id is a UUID
        self._texts: list[str] | None = None  # every id as text, once one was not a UUID

    def append(self, order_id: str) -> None:
        packed = _packed(order_id) if self._texts is None else None
        with self._lock:
            if self._texts is None and packed is not None:
                self._packed += packed
                return
            if self._texts is None:
                self._texts = self._unpacked()
                self._packed = bytearray()
            self._texts.append(order_id)

    def _unpacked(self) -> list[str]:
        packed = bytes(self._packed)
        return [_text(packed[n:n + 16]) for n in range(0, len(packed), 16)]

    def _now(self) -> list[str]:
        with self._lock:
            return list(self._texts) if self._texts is not None else self._unpacked()

    def __len__(self) -> int:
        with self._lock:
            return len(self._texts) if self._texts is not None else len(self._packed) // 16

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, int):
            with self._lock:
                if self._texts is not None:
                    return self._texts[index]
                start = range(0, len(self._packed), 16)[index]  # raises IndexError as a list would
                return _text(bytes(self._packed[start:start + 16]))
        return self._now()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._now())
