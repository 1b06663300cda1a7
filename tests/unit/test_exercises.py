"""Every exercise's check, three ways: on its blank (fails with the hint), on a
wrong answer (fails) and on its solution (passes); and every lesson keeps
the shape: blank answer cells, check cells tagged ``raises-exception``, a
Solutions section whose checks pass."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orderlab.exercises import NotYet, check, registry

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISES = registry()
CHECK_CALL = re.compile(r"""check\(\s*["'](\d\d\.[\w.]+)["']""")


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_a_check_fails_on_its_blank_and_on_a_wrong_answer_and_passes_on_its_solution(key: str, capsys) -> None:  # noqa: ANN001
    found = EXERCISES[key]
    for blank in (..., None):
        with pytest.raises(NotYet, match="not answered yet: " + re.escape(found.hint)):
            check(key, blank, **found.facts)
    with pytest.raises(NotYet) as wrong:
        check(key, found.wrong, **found.facts)
    assert str(wrong.value) and "Traceback" not in str(wrong.value)
    check(key, found.solution(**found.facts), **found.facts)
    assert capsys.readouterr().out.startswith("✓ ")


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_lesson_ships_its_exercises_blank_and_solves_them_at_the_end(notebook: Path) -> None:
    every = cells(notebook)
    headings = [i for i, cell in enumerate(every) if cell["cell_type"] == "markdown" and source(cell).startswith("## Solutions")]
    assert len(headings) == 1, f"{notebook.name}: one '## Solutions' section at the end"
    solutions_at = headings[0]
    asked = [CHECK_CALL.findall(source(c)) for c in every[:solutions_at] if c["cell_type"] == "code"]
    solved = [CHECK_CALL.findall(source(c)) for c in every[solutions_at:] if c["cell_type"] == "code"]
    asked_keys = [k for keys in asked for k in keys]
    assert len(asked_keys) >= 2, f"{notebook.name}: at least two exercises"
    assert sorted(asked_keys) == sorted(k for keys in solved for k in keys), f"{notebook.name}: every check again in Solutions"
    for key in asked_keys:
        assert key in EXERCISES and key.startswith(notebook.name[:2] + "."), f"{notebook.name}: {key} is not registered"
    for position, cell in enumerate(every[:solutions_at]):
        if cell["cell_type"] == "code" and CHECK_CALL.search(source(cell)):
            assert "raises-exception" in cell["metadata"].get("tags", []), f"{notebook.name} cell {position}: tag it raises-exception"
            errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
            assert errors and errors[0]["ename"] == "NotYet", f"{notebook.name} cell {position}: its stored output is the hint"
            answer = every[position - 1]
            assert re.search(r"=\s*(\.\.\.|None)\s*(#.*)?$", source(answer), re.M) and "TODO" in source(answer), (
                f"{notebook.name} cell {position - 1}: the answer cell ships blank (... or None) with a TODO")
    for position, cell in enumerate(every[solutions_at:], solutions_at):
        if cell["cell_type"] == "code" and CHECK_CALL.search(source(cell)):
            assert "raises-exception" not in cell["metadata"].get("tags", []), f"{notebook.name} cell {position}"
            assert not any(o["output_type"] == "error" for o in cell.get("outputs", []))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_no_test_machinery_shows_in_a_lesson(notebook: Path) -> None:
    text = "\n".join(source(cell) for cell in cells(notebook) if cell["cell_type"] == "code")
    assert "pick(" not in text and "NBVAL_IGNORE_OUTPUT" not in text and "NBVAL_SKIP" not in text


def test_answers_of_the_wrong_kind_get_a_hint_naming_what_is_asked() -> None:
    from orderlab.exercises import NotYet, a_number, whole_number

    assert whole_number(6, "the number of partitions") == 6
    assert a_number(3, "an amount in EUR") == 3.0
    for wrong in (True, 6.0, "6"):
        with pytest.raises(NotYet, match=f"give the number of partitions as a whole number, not a {type(wrong).__name__}"):
            whole_number(wrong, "the number of partitions")
    for wrong in (False, "12.50", None):
        with pytest.raises(NotYet, match="give an amount in EUR as a number"):
            a_number(wrong, "an amount in EUR")
