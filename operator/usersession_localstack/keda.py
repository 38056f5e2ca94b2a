"""The real KEDA operator as a local process, for the local stack.

It runs as it would in a cluster but for what a cluster gives it: a namespace
of its own, a cert dir and a trusted CA dir (the stack's CA), and loopback ports. Its metrics
adapter is not run: with maxReplicaCount 1 KEDA itself does every 0 <-> 1
scaling and the HPA it creates never needs external metrics to act.
"""

from __future__ import annotations

import contextlib
import urllib.error
from collections.abc import Mapping
from pathlib import Path

from usersession_localstack import assets
from usersession_localstack.adminapi import AdminApi
from usersession_localstack.loopback import free_port, http_ok
from usersession_localstack.pki import Pki
from usersession_localstack.process import Component, argv

KEDA_NAMESPACE = "keda"


def launch_keda(
    admin: AdminApi,
    kubeconfig: Path,
    workdir: Path,
    pki: Pki,
    settings: Mapping[str, str] | None = None,
) -> Component:
    """Start keda-operator against the cluster and return it once it is ready.

    settings: KEDA's own, beside the stack's: `--flag` names are flags
    (--kube-api-qps), others environment variables (KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES).
    """
    with contextlib.suppress(urllib.error.HTTPError):  # 409: there already
        admin.api(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KEDA_NAMESPACE}},
        )
    probe = free_port()
    flags: dict[str, object] = {
        "--metrics-bind-address": f"127.0.0.1:{free_port()}",
        "--health-probe-bind-address": f"127.0.0.1:{probe}",
        # KEDA's gRPC service for its metrics adapter, which is not run here:
        # with maxReplicaCount 1 no HorizontalPodAutoscaler ever asks for metrics.
        "--metrics-service-bind-address": f"127.0.0.1:{free_port()}",
        "--cert-dir": pki.keda_cert_dir,
        # As a cluster admin mounts a CA into /custom/ca: KEDA then trusts the
        # operator's push server when it speaks TLS.
        "--ca-dir": pki.keda_ca_dir,
        # In a cluster KEDA manages its certificates, webhook and APIService
        # objects; here there are none of those to manage.
        "--enable-cert-rotation": "false",
        "--enable-webhook-patching": "false",
        "--enable-apiservice-patching": "false",
        "--zap-log-level": "info",
        **{k: v for k, v in (settings or {}).items() if k.startswith("--")},
    }
    env = {
        "KUBECONFIG": str(kubeconfig),
        "KEDA_CLUSTER_OBJECT_NAMESPACE": KEDA_NAMESPACE,
        "POD_NAMESPACE": KEDA_NAMESPACE,
        "WATCH_NAMESPACE": "",  # all namespaces
        "HOME": str(workdir),
        **{k: v for k, v in (settings or {}).items() if not k.startswith("--")},
    }
    command = argv(assets.keda_dir() / "keda-operator", flags)
    keda = Component("keda-operator", command, workdir / "logs", env=env)
    keda.start()
    keda.wait_until(lambda: http_ok(f"http://127.0.0.1:{probe}/readyz"), 120, "ready")
    return keda
