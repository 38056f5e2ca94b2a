"""Start timeout, warm hours and expiry, with the real scheduler, KEDA and Redis."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from support.sessions import FAST_SCALING, IMAGE, Api, condition, unique
from usersession_localstack.loopback import wait_for

pytestmark = pytest.mark.usefixtures("operator")

NODE = "kwok-node-0"


@pytest.fixture
def zone(api: Api) -> Iterator[str]:
    """A node label no node has yet; the test may give it to the node, and it goes after."""
    key = f"usersession-test/{unique('zone')}"
    yield key
    api.core.patch_node(NODE, {"metadata": {"labels": {key: None}}})


def test_a_session_that_cannot_start_says_why_and_recovers_by_itself(
    api: Api, session_namespace: str, rds: redis.Redis, zone: str
) -> None:
    ns, name = session_namespace, unique()
    api.create(
        ns,
        name,
        workload={"image": IMAGE, "nodeSelector": {zone: "yes"}},  # no node fits, yet
        scaling={**FAST_SCALING, "startTimeoutSeconds": 3},
    )
    queue = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")["queueName"]
    rds.lpush(queue, '{"type": "wake"}')
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Degraded", timeout=60)
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "StartTimeout")
    # The scheduler's own words reach the user.
    assert "Unschedulable" in ready["message"] and "node" in ready["message"], ready
    assert ("Warning", "StartTimeout", ready["message"]) in api.events(ns, name)

    api.core.patch_node(NODE, {"metadata": {"labels": {zone: "yes"}}})
    api.wait_status(ns, name, lambda s: s.get("phase") == "Running", timeout=60)


def _clock_in_daytime() -> tuple[str, dt.datetime]:
    """A fixed-offset zone where it is daytime now, and the time there: a window
    opening in the next minutes then never crosses midnight, whenever this runs."""
    utc = dt.datetime.now(dt.UTC)
    offset = 12 - utc.hour  # -11 .. 12, all valid Etc/GMT zones
    # POSIX signs: Etc/GMT-3 is three hours ahead of UTC.
    zone = "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    return zone, utc + dt.timedelta(hours=offset)


def test_a_warm_window_keeps_an_idle_session_up_then_lets_it_sleep(
    api: Api, session_namespace: str
) -> None:
    ns, name = session_namespace, unique()
    zone, now = _clock_in_daytime()
    # The next whole minute at least 15 s away: the session is asleep before it opens.
    opens = (now + dt.timedelta(seconds=75)).replace(second=0, microsecond=0)
    closes = opens + dt.timedelta(minutes=1)
    window = {"timezone": zone, "start": f"{opens:%H:%M}", "end": f"{closes:%H:%M}"}
    api.create(ns, name, scaling={**FAST_SCALING, "warmSchedules": [window]})
    api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    scaled = api.child("ScaledObject", ns, name)
    assert scaled is not None and scaled["spec"]["triggers"][-1]["type"] == "cron"
    assert api.replicas(ns, name) == 0

    # No message at all: KEDA's cron trigger wakes it when the window opens...
    api.wait_replicas(ns, name, 1, timeout=120)
    api.wait_status(ns, name, lambda s: s.get("phase") == "Running", timeout=30)
    # ...keeps it up past the idle timeout (5 s) while the window lasts...
    time.sleep(3 * FAST_SCALING["idleTimeoutSeconds"])
    assert api.replicas(ns, name) == 1
    # ...and lets it sleep once the window has closed.
    api.wait_replicas(ns, name, 0, timeout=120)


def test_an_abandoned_session_expires_and_one_holding_work_does_not(
    api: Api, session_namespace: str, rds: redis.Redis
) -> None:
    ns = session_namespace
    abandoned, holding = unique("abandoned"), unique("holding")
    for name in (abandoned, holding):
        # A message waits below activationLength: asleep, but not to be lost.
        queue = {"activationLength": 5} if name == holding else {}
        api.create(ns, name, queue=queue, expireAfterIdleSeconds=10)
    queues = {
        name: api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")["queueName"]
        for name in (abandoned, holding)
    }
    rds.lpush(queues[holding], '{"type": "wake"}')
    reply = f"{queues[abandoned]}:reply:left-over"
    rds.set(reply, "an old reply")

    wait_for(lambda: api.session(ns, abandoned) is None, 60)
    assert ("Normal", "Expired") in [e[:2] for e in api.events(ns, abandoned)]
    assert not rds.exists(reply), "expiry goes through the finalizer, which cleans Redis"
    session: dict[str, Any] | None = api.session(ns, holding)
    assert session is not None and not session["metadata"].get("deletionTimestamp")
    assert rds.llen(queues[holding]) == 1
