"""A broker restart under a running Lab, watched (orderlab.restart, lesson 07): each worker says once that it
lost the broker and once that it is back, no lag is read while the broker is away, the backlog is worked off
after, and every order is accounted for. On a broker of the test module's own: the shared one is never stopped."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orderlab.lab import Lab
from orderlab.lessons import FAST_FAILOVER, drain
from orderlab.restart import RestartWatch
from orderlab.settings import Settings
from orderlab.ui.logs import capture_logs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_a_restart_is_noticed_once_by_every_worker_and_ridden_out(settings: Settings, private_broker) -> None:  # noqa: ANN001
    capture_logs()
    own = replace(settings, bootstrap_servers=private_broker.bootstrap_servers)
    # 10 ms a payment: the backlog after the restart takes seconds to work off, long enough to be read
    with Lab(own, rate=0, workers=1, consumer_config=FAST_FAILOVER, payment_latency_ms=10) as lab:
        lab.set_rate(30)
        assert lab.wait_until(lambda s: s.settled > 0 and s.emails_sent > 0 and s.analytics_orders_seen > 0, 90).settled
        with RestartWatch(lab, private_broker) as watch:
            watch.hold(2)
            watch.stop_broker()
            lost = lab.snapshot(with_lag=False)
            assert set(lost.broker_lost) == set(lost.roles), lost.broker_lost
            waiting = watch.hold(4)
            assert waiting > 0
            watch.start_broker(timeout_s=180)
            assert not lab.snapshot(with_lag=False).broker_lost
            lab.set_rate(0)
            drain(lab, timeout_s=90)
            assert watch.caught_up(timeout_s=60)
        result = lab.reconcile()

    assert watch.every_worker_noticed, watch.outages()
    outages = watch.outages()
    assert sorted(outages.index) == sorted(lost.roles)
    assert (outages["lost lines"] == 1).all() and (outages["back lines"] == 1).all()
    assert (outages["back after (s)"] > 0).all()
    lines = watch.log_lines()
    assert sum(" lost the broker (" in line for line in lines) == len(outages)
    assert sum(" broker back after " in line for line in lines) == len(outages)
    frame = watch.frame()
    away = frame[frame.broker == "away"]
    assert len(away) > 0 and away.filter(like="lag ").isna().all().all()
    assert (frame[frame.broker == "up"].filter(like="lag ").notna().any()).all()
    assert watch.peak_lag("transactions") > 0
    assert {"placed", "waiting in producer", "settled", "e-mailed"} <= set(frame.columns)
    assert result.lost == 0 and result.duplicate_emails == 0
