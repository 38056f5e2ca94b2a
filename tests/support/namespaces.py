"""A throwaway namespace for tests, optionally holding the Redis Secret sessions use."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes import client

from usersession_localstack.loopback import wait_for


@contextmanager
def fresh_namespace(
    api_client: client.ApiClient, prefix: str, redis_password: str | None = None
) -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # Pods are refused until the ServiceAccount controller has made "default".
    wait_for(lambda: core.list_namespaced_service_account(name).items, timeout=30)
    if redis_password is not None:
        core.create_namespaced_secret(
            name,
            {
                "metadata": {"name": "redis-auth"},
                "stringData": {"password": redis_password},
            },
        )
    try:
        yield name
    finally:
        core.delete_namespace(name)
