"""The order source's placed ids: 16 bytes each while they are UUIDs, every id and its order kept."""

from __future__ import annotations

import random
import threading
import uuid

from orderlab.generator import uuid4_text
from orderlab.services.placed import PlacedIds


def test_uuids_come_back_as_placed_in_their_order() -> None:
    rng = random.Random(7)
    ids = [uuid4_text(rng.getrandbits(128)) for _ in range(1000)] + [str(uuid.uuid4())]
    placed = PlacedIds()
    for order_id in ids:
        placed.append(order_id)
    assert list(placed) == ids and len(placed) == len(ids) and placed[3] == ids[3] and placed[-2:] == ids[-2:]
    assert len(placed._packed) == 16 * len(ids)  # noqa: SLF001 - the point of the class: 16 bytes an id


def test_an_id_that_is_not_a_lowercase_uuid_keeps_everything_as_text() -> None:
    first = str(uuid.uuid4())
    others = ["order-1", first.upper(), first.replace("-", ""), first[:-1] + "g", ""]
    placed = PlacedIds()
    placed.append(first)
    for order_id in others:
        placed.append(order_id)
    placed.append(first)
    assert list(placed) == [first, *others, first]
    assert set(placed) == {first, *others}


def test_appends_from_two_threads_are_all_kept() -> None:
    placed = PlacedIds()
    rng = random.Random(1)
    batches = [[uuid4_text(rng.getrandbits(128)) for _ in range(5000)] for _ in range(2)]
    batches[1][2500] = "typed-by-hand"  # one thread switches the store to text midway
    threads = [threading.Thread(target=lambda ids=ids: [placed.append(i) for i in ids]) for ids in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(placed) == sorted(batches[0] + batches[1])
