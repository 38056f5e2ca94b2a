"""Fake nodes for kwok to manage: pods scheduled onto them become Running without
running anything (the stack runs a session's worker as a process instead)."""

from __future__ import annotations

from usersession_localstack.adminapi import AdminApi

FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def create_fake_node(admin: AdminApi, name: str) -> None:
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    admin.api(
        "POST",
        "/api/v1/nodes",
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
            "status": {"capacity": resources, "allocatable": resources},
        },
    )


def ready_nodes(admin: AdminApi) -> int:
    nodes = admin.api("GET", "/api/v1/nodes")["items"]
    ready = [
        n
        for n in nodes
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in n.get("status", {}).get("conditions", [])
        )
    ]
    return len(ready)
