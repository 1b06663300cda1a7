"""pytest imports test files by their basename (no packages under tests/), so two layers may not share one:
the whole `make test` run stops at collection when they do, even though each layer passes alone."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_files_share_a_basename() -> None:
    files_by_name: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        files_by_name[path.name].append(str(path.relative_to(TESTS)))
    shared = {name: paths for name, paths in files_by_name.items() if len(paths) > 1}
    assert not shared, f"rename one of each: {shared}"
