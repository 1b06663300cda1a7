"""The options every subcommand shares: each bad value is one argparse line naming the option."""

from __future__ import annotations

import argparse

import pytest

from orderlab.cli import main
from orderlab.options import at_least, positive, probability, settings_from, tcp_port


@pytest.mark.parametrize("parse, text, message", [
    (positive(int, "--orders"), "-5", "--orders must be > 0, got -5"),
    (positive(int, "--orders"), "0", "--orders must be > 0, got 0"),
    (positive(int, "--orders"), "1.5", "--orders must be a number, got '1.5'"),
    (positive(float, "--rate"), "nan", "--rate must be a finite number, got 'nan'"),
    (positive(float, "--rate", allow_zero=True), "-1", "--rate must be >= 0, got -1"),
    (positive(float, "--rate", what="a number of orders per second", finite_hint=False), "fast",
     "--rate must be a number of orders per second, got 'fast'"),
    (positive(float, "--rate", finite_hint=False), "inf", "--rate must be > 0, got inf"),
    (at_least("--orders", 100), "99", "--orders must be at least 100, got 99"),
    (at_least("--orders", 100), "many", "--orders must be a whole number, got 'many'"),
    (probability, "2", "probability must be between 0 and 1, got 2"),
    (probability, "half", "probability must be a number, got 'half'"),
    (tcp_port, "70000", "not a TCP port: '70000'"),
])
def test_bad_numbers(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse(text)
    assert str(caught.value) == message


def test_good_numbers():
    assert positive(float, "--rate", allow_zero=True)("0") == 0.0
    assert positive(int, "--orders")("7") == 7
    assert at_least("--orders", 100)("100") == 100
    assert probability("0.25") == 0.25
    assert tcp_port("9092") == 9092


def test_settings_from_puts_the_options_over_the_environment(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:29092")
    monkeypatch.delenv("ORDERLAB_EXACTLY_ONCE", raising=False)
    assert settings_from(argparse.Namespace()).bootstrap_servers == "kafka:29092"
    args = argparse.Namespace(bootstrap_servers="other:1", exactly_once=True)
    settings = settings_from(args, topic_suffix="-x")
    assert (settings.bootstrap_servers, settings.exactly_once, settings.topic_suffix) == ("other:1", True, "-x")


@pytest.mark.parametrize("argv, message", [
    (["demo", "--decline-probability", "1.5"], "probability must be between 0 and 1, got 1.5"),
    (["run", "orders", "--rate", "-1"], "--rate must be >= 0, got -1"),
    (["lab", "--port", "x"], "--port must be a number, got 'x'"),
    (["bench", "--orders", "50"], "--orders must be at least 100, got 50"),
    (["bench", "--bootstrap-servers"], "expected one argument"),
    (["chaos", "--rate", "0"], "--rate must be > 0, got 0"),
    (["broker", "status", "--port", "0"], "not a TCP port: '0'"),
])
def test_every_command_gives_one_usage_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
