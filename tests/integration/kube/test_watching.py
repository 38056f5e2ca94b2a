"""watching.Watch against the real API server: selection by label happens on the server,
the first listing is complete before `synced`, and deletions arrive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kubernetes import client

from usersession_operator.kube import watching
from usersession_operator.session.names import MANAGED_BY_LABEL, MANAGER

SELECTOR = f"{MANAGED_BY_LABEL}={MANAGER}"
POD_SPEC = {"containers": [{"name": "c", "image": "example.com/none:1"}]}


def _pod(namespace: str, name: str, ours: bool) -> dict[str, Any]:
    labels = {MANAGED_BY_LABEL: MANAGER} if ours else {"app": "someone-else"}
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": POD_SPEC,
    }


def _pods_watch(
    api_client: client.ApiClient, namespace: str, events: list[tuple[str, str]]
) -> watching.Watch:
    """A watch of our pods in namespace, recording (event type, name)."""
    return watching.Watch(
        api_client,
        watching.POD,
        SELECTOR,
        namespace,
        lambda kind, obj: events.append((kind, obj["metadata"]["name"])),
    )


async def _until(condition: Callable[[], bool], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def test_only_labelled_objects_arrive_listed_first_then_changes_and_deletions(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(namespace, _pod(namespace, "ours-before", ours=True))
    core.create_namespaced_pod(namespace, _pod(namespace, "theirs-before", ours=False))
    events: list[tuple[str, str]] = []

    async def run() -> None:
        watch = _pods_watch(api_client, namespace, events)
        watch.start()
        try:
            await asyncio.wait_for(watch.synced.wait(), 30)
            # Everything that existed is delivered before synced is set.
            assert events == [("ADDED", "ours-before")]
            core.create_namespaced_pod(namespace, _pod(namespace, "theirs-after", ours=False))
            core.create_namespaced_pod(namespace, _pod(namespace, "ours-after", ours=True))
            await _until(lambda: ("ADDED", "ours-after") in events)
            core.delete_namespaced_pod("ours-before", namespace, grace_period_seconds=0)
            await _until(lambda: ("DELETED", "ours-before") in events)
        finally:
            watch.stop()

    asyncio.run(run())
    assert {name for _, name in events} == {"ours-before", "ours-after"}, events


def test_a_relisting_reports_what_was_deleted_while_the_watch_was_away(
    api_client: client.ApiClient, namespace: str
) -> None:
    """After a watch expires (410 Gone) the listing is all there is to go by: what the
    watch knew and the listing lacks was deleted meanwhile."""
    events: list[tuple[str, str]] = []

    async def run() -> None:
        watch = _pods_watch(api_client, namespace, events)
        watch._loop = asyncio.get_running_loop()  # delivered here; no thread is started
        watch._known = {namespace: {"gone-meanwhile"}}
        await asyncio.to_thread(watch._relist)
        await asyncio.sleep(0.1)  # the deliveries are callbacks on this loop
        assert watch.synced.is_set()

    asyncio.run(run())
    assert events == [("DELETED", "gone-meanwhile")]
