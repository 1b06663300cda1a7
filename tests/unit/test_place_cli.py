"""``orderlab place`` checks the order before it connects: every problem in one line, nothing sent."""

from __future__ import annotations

import pytest

from orderlab.cli import main

KNOWN = "CB-007, CH-012, DK-006, HD-004, KB-001, LS-008, LT-011, MN-003, MP-010, MS-002, SD-009, WC-005"


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    # answers nowhere: a command that got as far as connecting would say so instead
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")


def _place(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["place", *argv]) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_every_problem_of_the_order_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    line = _place(["--email", "not-an-email", "--currency", "XYZ", "X", "KB-001x0", "MS-002xfoo", "nope"], capsys)
    assert line == (
        f"orderlab: order not placed: unknown SKUs 'X', 'nope' (known: {KNOWN}); "
        "quantity of KB-001 must be 1..100, got 0; "
        "item 'MS-002xfoo': quantity must be a whole number (SKUxN, e.g. KB-001x2); "
        "customer_email 'not-an-email' is not an e-mail address; "
        "unknown currency 'XYZ' (known: EUR, USD, GBP)"
    )


def test_the_issue_example(capsys: pytest.CaptureFixture[str]) -> None:
    line = _place(["--email", "not-an-email", "X"], capsys)
    assert line == (f"orderlab: order not placed: unknown SKU 'X' (known: {KNOWN}); "
                    "customer_email 'not-an-email' is not an e-mail address")


@pytest.mark.parametrize("argv, problem", [
    (["--email", "ada@gmail.com", "KB-001"], "customer_email must be at a reserved demo domain"),
    (["--email", "ada@example.com", "KB-001x101"], "quantity of KB-001 must be 1..100, got 101"),
    (["--email", "ada@example.com", "--currency", "eur", "KB-001"], "unknown currency 'eur'"),
])
def test_one_problem(argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = _place(argv, capsys)
    assert line.startswith("orderlab: order not placed: ") and problem in line and ";" not in line


def test_a_good_order_goes_on_to_the_broker(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERLAB_CONNECT_TIMEOUT_S", "0.5")
    line = _place(["--email", "ada@example.com", "kb-001x2", "MS-002"], capsys)
    assert "no Kafka broker answers at 127.0.0.1:1" in line
