"""LocalCluster: start and stop a real control plane plus Redis on loopback."""

from __future__ import annotations

import json
import secrets
import shutil
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from usersession_localstack import assets
from usersession_localstack.adminapi import AdminApi, admin_kubeconfig
from usersession_localstack.keda import launch_keda
from usersession_localstack.loopback import free_port, http_ok, https_insecure_ok
from usersession_localstack.manifests import install_crds
from usersession_localstack.nodes import FAKE_NODE_ANNOTATION, create_fake_node, ready_nodes
from usersession_localstack.pki import Pki, make_pki
from usersession_localstack.process import Component, Started, argv, stop_all
from usersession_localstack.redisserver import launch_redis

SERVICE_CIDR = "10.96.0.0/16"
# With LocalCluster(audit=True): one JSON line per write request (verb, resource,
# object, user agent, response code), none for reads and watches. Benchmarks use it
# to tell the operator's writes from KEDA's and the controller-manager's, which
# apiserver_request_total cannot (it has no user or client label).
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "None"},
    ],
}


class LocalCluster(Started):
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, redis-server,
    the CRDs (ours and KEDA's) and the real KEDA operator.

    Use as a context manager (or call start/stop). Everything listens on
    127.0.0.1 with free ports, lives in one temporary directory, and is gone
    after stop(), also when start() itself fails half-way. With keda=False the
    cluster stops after the control plane and Redis (no CRDs, no KEDA). With
    audit=True the API server logs every write to audit_log (AUDIT_POLICY).
    """

    def __init__(
        self,
        nodes: int = 1,
        workdir: Path | None = None,
        keep_workdir: bool = False,
        keda: bool = True,
        audit: bool = False,
        keda_settings: Mapping[str, str] | None = None,
    ) -> None:
        self.nodes = nodes
        self.with_keda = keda
        self.keda_settings = dict(keda_settings or {})
        self.audit = audit
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="usersession-cluster-"))
        self.keep_workdir = keep_workdir
        self.components: list[Component] = []
        self.redis_password = secrets.token_urlsafe(24)
        self.redis_host = "127.0.0.1"
        self.redis_port = free_port()
        self.api_port = free_port()
        self.server = f"https://127.0.0.1:{self.api_port}"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.redis_password_file = self.workdir / "redis-password"
        self.audit_log = self.workdir / "audit.log"
        self._redis: Component | None = None
        self._keda: Component | None = None
        self._apiserver: Component | None = None
        self._pki: Pki | None = None

    @property
    def pki(self) -> Pki:
        assert self._pki is not None, "the cluster has not been started"
        return self._pki

    # -- lifecycle ---------------------------------------------------------

    def stop(self) -> None:
        stop_all(self.components)
        self.components.clear()
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _start(self) -> None:
        bin_dir = assets.control_plane_dir()
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self._pki = pki = make_pki(self.workdir / "pki")
        self.kubeconfig.write_text(json.dumps(admin_kubeconfig(self.server, pki), indent=2))
        self.kubeconfig.chmod(0o600)
        self.redis_password_file.write_text(self.redis_password)
        self.redis_password_file.chmod(0o600)

        self.start_redis()
        etcd_port, etcd_peer = free_port(), free_port()
        etcd_flags: dict[str, object] = {
            "--data-dir": self.workdir / "etcd",
            "--listen-client-urls": f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls": f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls": f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls": f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster": f"default=http://127.0.0.1:{etcd_peer}",
            "--listen-metrics-urls": f"http://127.0.0.1:{free_port()}",
            # A test cluster's data is disposable; fsync would only slow it down.
            "--unsafe-no-fsync": "true",
            "--log-level": "warn",
        }
        etcd = self._launch("etcd", bin_dir, etcd_flags)
        # Its graceful stop waits seconds for clients; its data dies with the cluster.
        etcd.grace = 2.0
        etcd.wait_until(lambda: http_ok(f"http://127.0.0.1:{etcd_port}/health"), 60)

        apiserver_flags: dict[str, object] = {
            "--etcd-servers": f"http://127.0.0.1:{etcd_port}",
            "--bind-address": "127.0.0.1",
            "--advertise-address": "127.0.0.1",
            "--secure-port": self.api_port,
            "--tls-cert-file": pki.server_cert,
            "--tls-private-key-file": pki.server_key,
            "--client-ca-file": pki.ca_cert,
            "--authorization-mode": "RBAC",
            "--service-account-issuer": "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file": pki.sa_pub,
            "--service-account-signing-key-file": pki.sa_key,
            "--service-cluster-ip-range": SERVICE_CIDR,
            "--allow-privileged": "true",
            "--cert-dir": self.workdir / "apiserver-certs",
            # The only address is loopback, which the Endpoints API refuses;
            # nothing runs in-cluster that would need the kubernetes Service.
            "--endpoint-reconciler-type": "none",
        }
        if self.audit:
            policy = self.workdir / "audit-policy.json"  # JSON is YAML
            policy.write_text(json.dumps(AUDIT_POLICY))
            apiserver_flags |= {
                "--audit-policy-file": policy,
                "--audit-log-path": self.audit_log,
                "--audit-log-format": "json",
                # Written before each response (the default blocking mode), so a
                # reader sees a request's line once it has its answer; never
                # rotated (the default rotates at 100 MB), so offsets stay valid.
                "--audit-log-maxsize": 1_000_000,
            }
        self._apiserver = apiserver = self._launch("kube-apiserver", bin_dir, apiserver_flags)
        # On SIGTERM it stops serving at once, then its process lingers until killed:
        # a throwaway cluster need not wait the usual ten seconds for it.
        apiserver.grace = 2.0
        apiserver.wait_until(self.admin.ready, 120, "ready")

        kcm_port, sched_port, kwok_port = free_port(), free_port(), free_port()
        kcm_flags: dict[str, object] = {
            "--kubeconfig": self.kubeconfig,
            "--bind-address": "127.0.0.1",
            "--secure-port": kcm_port,
            "--leader-elect": "false",
            "--service-account-private-key-file": pki.sa_key,
            "--root-ca-file": pki.ca_cert,
            "--cluster-cidr": "10.244.0.0/16",
            # A claim waiting for a volume is looked at again this often (15 s by
            # default): a test's new PersistentVolume binds within seconds.
            "--pvclaimbinder-sync-period": "2s",
        }
        kcm = self._launch("kube-controller-manager", bin_dir, kcm_flags)
        scheduler_flags: dict[str, object] = {
            "--kubeconfig": self.kubeconfig,
            "--bind-address": "127.0.0.1",
            "--secure-port": sched_port,
            "--leader-elect": "false",
        }
        scheduler = self._launch("kube-scheduler", bin_dir, scheduler_flags)
        kwok_flags: dict[str, object] = {
            "--kubeconfig": self.kubeconfig,
            "--manage-all-nodes": "false",
            "--manage-nodes-with-annotation-selector": f"{FAKE_NODE_ANNOTATION}=fake",
            "--server-address": f"127.0.0.1:{kwok_port}",
            "--cidr": "10.244.0.0/16",
            "--node-ip": "127.0.0.1",
            # Heartbeats through node Leases, as kubelets do. Without it the
            # lease stage never renews and the node controller marks the node
            # NotReady every grace period (and would evict pods after minutes).
            "--node-lease-duration-seconds": 40,
        }
        stages = [f"--config={stage}" for stage in assets.kwok_stages(bin_dir)]
        kwok = self._launch("kwok", bin_dir, kwok_flags, stages, env={"HOME": str(self.workdir)})

        kcm.wait_until(lambda: https_insecure_ok(f"https://127.0.0.1:{kcm_port}/healthz"), 60)
        scheduler.wait_until(
            lambda: https_insecure_ok(f"https://127.0.0.1:{sched_port}/healthz"), 60
        )
        kwok.wait_until(lambda: http_ok(f"http://127.0.0.1:{kwok_port}/healthz"), 60)
        for i in range(self.nodes):
            create_fake_node(self.admin, f"kwok-node-{i}")
        kwok.wait_until(lambda: ready_nodes(self.admin) >= self.nodes, 60, "managing Ready nodes")
        # Pods are refused until the ServiceAccount controller made "default".
        kcm.wait_until(
            lambda: self.api_ok("/api/v1/namespaces/default/serviceaccounts/default"),
            60,
            "creating the default ServiceAccount",
        )
        if self.with_keda:
            install_crds(self.admin)
            self.start_keda()

    def _launch(
        self,
        name: str,
        bin_dir: Path,
        flags: dict[str, object],
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> Component:
        command = argv(bin_dir / name, flags) + (extra or [])
        component = Component(name, command, self.workdir / "logs", env=env)
        component.start()
        self.components.append(component)
        return component

    # -- KEDA --------------------------------------------------------------

    def start_keda(self) -> None:
        """(Re)start the real KEDA operator; tests stop it to show nothing is lost meanwhile."""
        if self._keda is not None and self._keda.running():
            return
        if self._keda in self.components:
            self.components.remove(self._keda)
        self._keda = launch_keda(
            self.admin, self.kubeconfig, self.workdir, self.pki, self.keda_settings
        )
        self.components.append(self._keda)

    def stop_keda(self, kill: bool = False) -> None:
        if self._keda is not None:
            self._keda.kill() if kill else self._keda.stop()

    # -- faults (tests/chaos) ------------------------------------------------

    def restart_apiserver(self) -> None:
        """SIGKILL the API server and start it again on the same port and etcd: every
        client's connections and watches break, and must find their way back."""
        assert self._apiserver is not None
        self._apiserver.kill()
        self._apiserver.start()
        # It serves requests within seconds; readiness waits on its RBAC bootstrap, which
        # competes with every client reconnecting at once: 30 s with 330 sessions on an
        # idle two-core machine, over 120 s with the test suite beside it.
        self._apiserver.wait_until(self.admin.ready, 300, "ready")

    def pause_redis(self) -> None:
        """Redis stops answering (SIGSTOP): connections stay open, every command hangs."""
        if self._redis is not None:
            self._redis.pause()

    def resume_redis(self) -> None:
        if self._redis is not None:
            self._redis.resume()

    def kill_redis(self) -> None:
        """SIGKILL; start_redis() brings it back with what its append-only file holds
        (every write: appendfsync always)."""
        if self._redis is not None:
            self._redis.kill()

    # -- redis -------------------------------------------------------------

    def start_redis(self) -> None:
        """(Re)start redis-server on the same port; tests stop it to simulate an outage."""
        if self._redis is not None and self._redis.running():
            return
        if self._redis in self.components:
            self.components.remove(self._redis)
        self._redis = launch_redis(self.workdir, self.redis_port, self.redis_password)
        self.components.insert(0, self._redis)

    def stop_redis(self) -> None:
        if self._redis is not None:
            self._redis.stop()

    # -- Kubernetes API ------------------------------------------------------

    @property
    def admin(self) -> AdminApi:
        return AdminApi(self.server, self.pki.ca_cert, self.pki.admin_cert, self.pki.admin_key)

    def ssl_context(self) -> ssl.SSLContext:
        return self.admin.ssl_context()

    def api(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        """A bare admin request to the API server (see adminapi.py)."""
        return self.admin.api(method, path, body, content_type)

    def api_ok(self, path: str) -> bool:
        return self.admin.api_ok(path)
