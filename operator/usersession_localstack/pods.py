"""Runs the reference worker as a local process for each Running session pod.

kwok pods run no containers, so without this a woken session has a Running pod
that does nothing. The runner watches the operator's worker pods and, for each
pod kwok reports Running, starts examples/worker/worker.py with that pod's
environment (Secret references resolved, as the kubelet would, and Secret or
ConfigMap volumes written to a directory of its own, the paths in its
environment pointing there instead of at the mount path); when the pod
starts terminating or goes, the process gets SIGTERM and, after the pod's
terminationGracePeriodSeconds, SIGKILL. A worker that exits while its pod still
runs is started again, as the kubelet restarts a container. Whatever image the
pod names, the reference worker is what runs.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from usersession_localstack import assets
from usersession_localstack.process import spawn, stop_process_group, stop_processes
from usersession_operator.session.names import (
    COMPONENT_LABEL,
    COMPONENT_WORKER,
    MANAGED_BY_LABEL,
    MANAGER,
)

log = logging.getLogger(__name__)

WORKER = assets.REPO_ROOT / "examples" / "worker" / "worker.py"
SELECTOR = f"{MANAGED_BY_LABEL}={MANAGER},{COMPONENT_LABEL}={COMPONENT_WORKER}"
PodKey = tuple[str, str]


class PodRunner:
    """Keeps one worker process per Running, non-terminating session pod."""

    def __init__(
        self, api_client: client.ApiClient, log_dir: Path, namespace: str | None = None
    ) -> None:
        self.core = client.CoreV1Api(api_client)
        self.log_dir = log_dir
        self.namespace = namespace  # None: every namespace
        self.processes: dict[PodKey, subprocess.Popen[bytes]] = {}
        self._running_pods: dict[PodKey, Any] = {}
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name="pod-runner", daemon=True),
            threading.Thread(target=self._restart_exited, name="pod-restarter", daemon=True),
        ]
        self._lock = threading.Lock()

    def start(self) -> PodRunner:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            processes = list(self.processes.values())
            self.processes.clear()
            self._running_pods.clear()
        stop_processes(processes, grace=10)  # all at once: each worker may use its grace

    # -- the watch loop --------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                list_pods, args = self._lister()
                pods: Any = list_pods(*args, label_selector=SELECTOR)
                self._sync({_key(p): p for p in pods.items})
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    list_pods,
                    *args,
                    label_selector=SELECTOR,
                    resource_version=pods.metadata.resource_version,
                    timeout_seconds=30,
                )
                for event in stream:
                    if self._stopping.is_set():
                        return
                    pod = event["object"]
                    if event["type"] == "DELETED":
                        self._terminate_later(_key(pod), pod)
                    else:
                        self._pod_changed(pod)
            except Exception as exc:  # an expired watch or an API hiccup: list again
                if not self._stopping.is_set():
                    log.debug("pod watch restarting: %s", exc)
                    time.sleep(1)

    def _lister(self) -> tuple[Any, tuple[str, ...]]:
        # The client's own methods, not a wrapper: the watch reads their
        # docstrings to know what type to turn events into.
        if self.namespace is None:
            return self.core.list_pod_for_all_namespaces, ()
        return self.core.list_namespaced_pod, (self.namespace,)

    def _restart_exited(self) -> None:
        while not self._stopping.wait(1):
            with self._lock:
                for key, process in list(self.processes.items()):
                    pod = self._running_pods.get(key)
                    if pod is not None and process.poll() is not None:
                        log.info(
                            "worker of pod %s/%s exited with %s: restarting it",
                            *key,
                            process.returncode,
                        )
                        try:
                            self.processes[key] = self._spawn(pod)
                        except Exception as exc:  # its Secret unreadable just now: next second
                            log.info("worker of pod %s/%s not restarted yet: %s", *key, exc)

    def _sync(self, pods: Mapping[PodKey, Any]) -> None:
        with self._lock:
            gone = [key for key in self.processes if key not in pods]
        for key in gone:
            self._terminate_later(key, None)
        for pod in pods.values():
            self._pod_changed(pod)

    def _pod_changed(self, pod: Any) -> None:
        key = _key(pod)
        if pod.metadata.deletion_timestamp is not None or pod.status.phase != "Running":
            self._terminate_later(key, pod)
            return
        with self._lock:
            self._running_pods[key] = pod
            if key not in self.processes:
                self.processes[key] = self._spawn(pod)

    # -- processes ------------------------------------------------------------------

    def _spawn(self, pod: Any) -> subprocess.Popen[bytes]:
        container = pod.spec.containers[0]
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108  (a worker's HOME, not a temp file)
            "PYTHONUNBUFFERED": "1",
        }
        mounts = self._write_volumes(pod, container)
        for var in container.env or []:
            value = self._env_value(pod.metadata.namespace, var)
            if value is not None:
                env[var.name] = _relocate(value, mounts)
        log_path = self.log_dir / f"worker-{pod.metadata.namespace}-{pod.metadata.name}.log"
        log.info("pod %s/%s is Running: starting its worker", *_key(pod))
        with log_path.open("ab") as out:
            return spawn(
                [sys.executable, str(WORKER)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _write_volumes(self, pod: Any, container: Any) -> dict[str, Path]:
        """Secret and ConfigMap volumes as files: mount path -> local directory."""
        volumes = {v.name: v for v in pod.spec.volumes or []}
        namespace = pod.metadata.namespace
        found: dict[str, Path] = {}
        for mount in container.volume_mounts or []:
            volume = volumes.get(mount.name)
            if volume is None:
                continue
            data = self._volume_data(namespace, volume)
            if data is None:
                continue
            directory = self.log_dir / "volumes" / namespace / pod.metadata.name / mount.name
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)
            for path, content in data.items():
                target = directory / path
                target.write_bytes(content)
                target.chmod(0o600)
            found[mount.mount_path.rstrip("/")] = directory
        return found

    def _volume_data(self, namespace: str, volume: Any) -> dict[str, bytes] | None:
        """The files a kubelet would mount (only the listed items, when listed)."""
        try:
            if volume.secret is not None:
                source = volume.secret
                secret = self.core.read_namespaced_secret(source.secret_name, namespace)
                data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
            elif volume.config_map is not None:
                source = volume.config_map
                config_map = self.core.read_namespaced_config_map(source.name, namespace)
                data = {k: v.encode() for k, v in (config_map.data or {}).items()}
            else:
                return None  # other volume types mean nothing to a local process
        except client.ApiException:
            return {}  # as with a kubelet, the container would not start; keep going
        if source.items:
            return {item.path: data[item.key] for item in source.items if item.key in data}
        return data

    def _env_value(self, namespace: str, var: Any) -> str | None:
        if var.value_from is None:
            return str(var.value or "")
        ref = var.value_from.secret_key_ref
        if ref is not None:
            try:
                secret = self.core.read_namespaced_secret(ref.name, namespace)
            except client.ApiException:
                return None  # as a kubelet would, the container would not start; keep going
            data = (secret.data or {}).get(ref.key)
            return base64.b64decode(data).decode() if data is not None else None
        ref = var.value_from.config_map_key_ref
        if ref is not None:
            try:
                config_map = self.core.read_namespaced_config_map(ref.name, namespace)
            except client.ApiException:
                return None
            return (config_map.data or {}).get(ref.key)
        return None  # fieldRef and resourceFieldRef mean nothing to a local process

    def _terminate_later(self, key: PodKey, pod: Any) -> None:
        grace = 30
        if pod is not None:
            # A delete names its own grace period (0 for a forced one, as in an
            # eviction); otherwise the pod's own applies, as with a kubelet.
            given = pod.metadata.deletion_grace_period_seconds
            if given is None:
                given = pod.spec.termination_grace_period_seconds
            if given is not None:
                grace = int(given)
        with self._lock:
            self._running_pods.pop(key, None)
            if key not in self.processes:
                return
        # Off the watch thread: a worker may take its whole grace period.
        threading.Thread(target=self._terminate, args=(key, grace), daemon=True).start()

    def _terminate(self, key: PodKey, grace: float) -> None:
        with self._lock:
            self._running_pods.pop(key, None)
            process = self.processes.pop(key, None)
        if process is None or process.poll() is not None:
            return
        log.info("pod %s/%s went: stopping its worker (grace %ss)", *key, grace)
        stop_process_group(process, grace)


def _relocate(value: str, mounts: Mapping[str, Path]) -> str:
    for mount_path, directory in mounts.items():
        if value.startswith(mount_path + "/"):
            return str(directory) + value[len(mount_path) :]
    return value


def _key(pod: Any) -> PodKey:
    return pod.metadata.namespace, pod.metadata.name
