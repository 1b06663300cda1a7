"""Ports the local brokers listen on are chosen below the kernel's ephemeral range, where no outgoing connection takes them."""

from __future__ import annotations

import socket

from orderlab.broker import procs


def test_a_free_port_is_below_the_ephemeral_range_and_can_be_listened_on():
    low, _ = procs.ephemeral_ports()
    for _ in range(20):
        port = procs.free_port()
        assert procs.LOWEST_PICKED <= port < low
        with socket.socket() as server:
            server.bind((procs.HOST, port))
            server.listen()


def test_without_room_below_the_range_the_kernels_pick_is_used(monkeypatch, tmp_path):
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("1024\t65535\n")
    monkeypatch.setattr(procs, "EPHEMERAL_RANGE_FILE", ranges)
    assert procs.ephemeral_ports() == (1024, 65535)
    assert 1024 <= procs.free_port() <= 65535
    monkeypatch.setattr(procs, "EPHEMERAL_RANGE_FILE", tmp_path / "missing")
    assert procs.ephemeral_ports() == procs.IANA_EPHEMERAL
