"""The Deployment that runs the session's pod.

It never carries spec.replicas: KEDA owns that field. If the operator's field
manager ever applied replicas and later stopped, the API server would drop the
field and the Deployment would default back to one replica, fighting KEDA.
"""

from __future__ import annotations

import copy
from typing import Any

from usersession_operator.builders.owner import child_metadata
from usersession_operator.builders.podsecurity import (
    container_security_context,
    pod_security_context,
)
from usersession_operator.builders.redisauth import redis_auth_env, redis_auth_volumes
from usersession_operator.session.model import Session
from usersession_operator.session.names import COMPONENT_WORKER, child_name, labels, selector_labels

CONTAINER_NAME = "session"
STORAGE_VOLUME = "session-storage"


def operator_env(session: Session) -> list[dict[str, Any]]:
    redis = session.redis
    plain = {
        "SESSION_NAME": session.name,
        "SESSION_NAMESPACE": session.namespace,
        "USER_ID": session.user_id,
        "SESSION_QUEUE": session.queue_name,
        "REDIS_ADDRESS": redis.address,
        "REDIS_HOST": redis.host,
        "REDIS_PORT": str(redis.port),
        "REDIS_DB": str(redis.database),
    }
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in plain.items()]
    # A reference, so the password exists only in the Secret.
    secret = redis.password_secret
    env.append(
        {
            "name": "REDIS_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
        }
    )
    return env + redis_auth_env(session)


def build_deployment(session: Session) -> dict[str, Any]:
    workload = session.workload
    container: dict[str, Any] = {"name": CONTAINER_NAME, "image": workload.image}
    if workload.image_pull_policy:
        container["imagePullPolicy"] = workload.image_pull_policy
    if workload.command:
        container["command"] = list(workload.command)
    if workload.args:
        container["args"] = list(workload.args)
    container["env"] = operator_env(session) + copy.deepcopy(list(workload.env))
    if workload.resources:
        container["resources"] = copy.deepcopy(workload.resources)
    container["securityContext"] = container_security_context(workload)

    pod_spec: dict[str, Any] = {
        "containers": [container],
        # How long a worker has, after SIGTERM, to finish the message in hand.
        "terminationGracePeriodSeconds": workload.termination_grace_period_seconds,
        "securityContext": pod_security_context(workload),
    }
    if workload.node_selector:
        pod_spec["nodeSelector"] = dict(workload.node_selector)
    if workload.tolerations:
        pod_spec["tolerations"] = copy.deepcopy(list(workload.tolerations))
    if workload.service_account_name:
        pod_spec["serviceAccountName"] = workload.service_account_name
    if workload.affinity:
        pod_spec["affinity"] = copy.deepcopy(workload.affinity)
    if workload.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in workload.image_pull_secrets]
    if workload.priority_class_name:
        pod_spec["priorityClassName"] = workload.priority_class_name
    if session.storage is not None:
        claim = {"claimName": child_name(session.name)}
        pod_spec["volumes"] = [{"name": STORAGE_VOLUME, "persistentVolumeClaim": claim}]
        container["volumeMounts"] = [
            {"name": STORAGE_VOLUME, "mountPath": session.storage.mount_path}
        ]

    # Ours last: the operator's labels select the pod and must not be overridden.
    pod_metadata: dict[str, Any] = {
        "labels": {**workload.pod_labels, **labels(session.name, COMPONENT_WORKER)}
    }
    if workload.pod_annotations:
        pod_metadata["annotations"] = dict(workload.pod_annotations)

    # Appended, not assigned: the pod may have other volumes already.
    volumes, mounts = redis_auth_volumes(session)
    if volumes:
        pod_spec["volumes"] = pod_spec.get("volumes", []) + volumes
        container["volumeMounts"] = container.get("volumeMounts", []) + mounts

    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(session, COMPONENT_WORKER),
        "spec": {
            "selector": {"matchLabels": selector_labels(session.name)},
            # One consumer per queue: a rolling update would briefly run two.
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 2,
            "template": {"metadata": pod_metadata, "spec": pod_spec},
        },
    }


def replicas_seed(session: Session) -> dict[str, Any]:
    """The apply body that makes a new session start at zero replicas.

    Applied under its own field manager, never the operator's main one, so that
    manager keeps owning replicas until KEDA's scale updates take the field
    over. The API server cannot create a Deployment from this body alone, and
    the main body alone would create it at one replica: create with
    initial_deployment() under the seed manager, apply build_deployment() under
    the main manager, then apply this body under the seed manager, which leaves
    that manager owning spec.replicas and nothing else.
    """
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": child_name(session.name), "namespace": session.namespace},
        "spec": {"replicas": 0},
    }


def initial_deployment(session: Session) -> dict[str, Any]:
    """build_deployment() plus replicas: 0, for the create request only."""
    body = build_deployment(session)
    body["spec"]["replicas"] = 0
    return body
