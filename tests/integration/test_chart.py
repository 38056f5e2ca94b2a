"""The Helm chart: lint, values schema, server-side dry run, and least-privilege RBAC.

That the RBAC is also sufficient is shown by running test_handlers.py with
USERSESSION_TEST_OPERATOR_IDENTITY=chart (hack/test.sh does), which runs the
operator with the chart's ServiceAccount token.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.chart import (
    CHART,
    MONITORING_CRDS,
    RELEASE_NAMESPACE,
    apply,
    ensure_namespace,
    helm,
    install_monitoring_crds,
    kube_version,
    kubectl,
    notes,
    render,
    service_account_kubeconfig,
)
from support.monitoring import alert_groups, dashboard
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for
from usersession_operator.leadership.endpoints import PORT_NAME
from usersession_operator.settings import OperatorSettings

FULL_VALUES = CHART / "ci" / "full-values.yaml"
PUSH = "uso-usersession-operator-push"  # the push Service and its EndpointSlice


def test_chart_ships_the_same_crd_as_crds_dir() -> None:
    # The chart's templates/crd.yaml reads a copy in files/, since charts with
    # symlinks do not package reliably. This keeps the copy honest.
    name = "sessions.ai-infra.dev_usersessions.yaml"
    copy = (CHART / "files" / name).read_bytes()
    assert copy == (CHART.parents[1] / "crds" / name).read_bytes()
    [crd] = [d for d in render() if d["kind"] == "CustomResourceDefinition"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    del crd["metadata"]["annotations"], crd["metadata"]["labels"]
    assert crd == yaml.safe_load(copy)  # what was rendered is the file, nothing lost
    assert [
        d for d in render("--set", "crds.enabled=false") if d["kind"] == "CustomResourceDefinition"
    ] == []


def test_the_chart_claims_the_kubernetes_the_tests_run(cluster: LocalCluster) -> None:
    claim = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    live = cluster.api("GET", "/version")  # the API server the suite runs, not a pin file
    assert claim == f">={live['major']}.{live['minor']}.0-0"
    assert kube_version() == live["gitVersion"]  # what render() tells helm


def test_an_extra_env_name_replaces_the_charts_own(cluster: LocalCluster) -> None:
    extra = '[{"name": "USERSESSION_LOG_LEVEL", "value": "DEBUG"}]'
    [deployment] = [
        d for d in render("--set-json", f"extraEnv={extra}") if d["kind"] == "Deployment"
    ]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["value"] for e in env if e["name"] == "USERSESSION_LOG_LEVEL"] == ["DEBUG"]
    assert {e["name"] for e in env} == set(_operator()[1])  # nothing else went missing
    # Server-side apply (Argo CD, helm 4) refuses a name listed twice in one env.
    ensure_namespace(cluster, RELEASE_NAMESPACE)
    assert "(server dry run)" in apply(cluster, [deployment], "--dry-run=server")


def test_the_notes_name_what_each_choice_installed(cluster: LocalCluster) -> None:
    default = notes(cluster)
    assert "RBAC for all namespaces; namespace users get UserSessions" in default
    assert "the session API" not in default
    assert "- the fast-wake Service notes-usersession-operator-push" in default
    assert "in their own namespace, and reach Redis at redis:6379" in default  # none created

    chosen = notes(
        cluster,
        "--set-json",
        'watchNamespaces=["team-a","team-b"]',
        "--set",
        "sessionApi.enabled=true,sessionApi.tokens.existingSecret=api-tokens",
        "--set",
        "fastWake.enabled=false,rbac.aggregateClusterRoles=false",
        "--set",
        "redis.createSecret=true,redis.password=not-a-real-one",
    )
    assert "- RBAC for namespaces team-a, team-b\n" in chosen
    assert "- the session API (notes-usersession-operator-api)" in chosen
    assert "fast-wake" not in chosen
    assert "created by this release in notes, team-a, team-b" in chosen
    # Every namespace sessions may live in has the Secret: no command to make another.
    assert "create secret" not in chosen
    for said in (default, chosen):
        assert "{{" not in said and "<no value>" not in said and "not-a-real-one" not in said


def test_lease_timings_reach_the_operator_and_overlapping_ones_are_refused() -> None:
    _, env = _operator("--values", str(FULL_VALUES))
    assert env["USERSESSION_LEADER_ELECTION_LEASE_SECONDS"] == "15"
    assert env["USERSESSION_LEADER_ELECTION_RENEW_EVERY_SECONDS"] == "3"
    assert env["USERSESSION_LEADER_ELECTION_RENEW_DEADLINE_SECONDS"] == "12"
    with pytest.raises(subprocess.CalledProcessError) as info:
        render("--set", "leaderElection.renewDeadlineSeconds=10")  # = the lease duration
    assert "two operators could act at once" in info.value.stderr


def test_the_created_redis_secret_is_in_every_namespace_sessions_live_in() -> None:
    flags = ("--set", "redis.createSecret=true", "--set", "redis.password=not-a-real-one")
    secrets = _kinds("Secret", *flags, "--set", "watchNamespaces={team-a,team-b}")
    assert sorted(s["metadata"]["namespace"] for s in secrets) == [
        "team-a",
        "team-b",
        RELEASE_NAMESPACE,
    ]
    # All namespaces watched: sessions elsewhere need their own Secret (README).
    [only] = _kinds("Secret", *flags)
    assert only["metadata"]["namespace"] == RELEASE_NAMESPACE


def test_the_packaged_chart_carries_everything(tmp_path: Path) -> None:
    # What the release workflow pushes: helm package, then installed from the .tgz.
    subprocess.run(
        [helm(), "package", str(CHART), "-d", str(tmp_path)], check=True, capture_output=True
    )
    [package] = tmp_path.glob("usersession-operator-*.tgz")
    out = subprocess.run(
        [helm(), "template", "uso", str(package), "--kube-version", kube_version()],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(out) if d}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole", "PodDisruptionBudget"} <= kinds


def test_helm_lint_passes_with_default_and_full_values() -> None:
    for extra in ([], ["--values", str(FULL_VALUES)]):
        result = subprocess.run(
            [helm(), "lint", "--strict", "--kube-version", kube_version(), str(CHART), *extra],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ("logLevel=LOUD", "/logLevel"),
        ("redis.address=redis-without-port", "/redis/address"),
        ("pollIntervalSeconds=0", "/pollIntervalSeconds"),
        ("watchNamespaces[0]=Not_A_Namespace", "/watchNamespaces/0"),
        ("replicas=3", "replicas"),  # a typo of replicaCount, not silently ignored
        ("replicaCount=0", "/replicaCount"),
        # Two replicas without a Lease would both act on every session.
        ("replicaCount=2,leaderElection.enabled=false", "/leaderElection/enabled"),
        ("leaderElection.leaseName=Not_A_Name", "/leaderElection/leaseName"),
        ("image.digest=latest", "/image/digest"),
        ("podDisruptionBudget.maxUnavailable=0", "/podDisruptionBudget/maxUnavailable"),
        ("extraEnv[0].value=x", "/extraEnv/0"),  # no name
        # Not a default the operator takes: each session names its own image.
        ("sessionWorkloadDefaults.image=x", "/sessionWorkloadDefaults"),
    ],
)
def test_values_schema_rejects_bad_values_clearly(override: str, complaint: str) -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        render("--set", override)
    assert "values don't meet the specifications of the schema" in info.value.stderr
    assert complaint in info.value.stderr


@pytest.fixture(scope="module")
def monitoring_crds(cluster: LocalCluster) -> str | None:
    """The Prometheus Operator's CRDs installed; None, or the reason they could not be."""
    return install_monitoring_crds(cluster)


def test_rendered_manifests_are_accepted_by_the_api_server(
    cluster: LocalCluster, monitoring_crds: str | None
) -> None:
    for extra in ([], ["--values", str(FULL_VALUES)]):
        docs = render(*extra)
        if monitoring_crds is not None:  # test_monitoring_objects_... skips, saying why
            docs = [d for d in docs if d["kind"] not in MONITORING_CRDS]
        kinds = {d["kind"] for d in docs}
        assert {"Deployment", "ServiceAccount", "Service"} <= kinds
        namespaces = {d["metadata"].get("namespace") for d in docs} - {None}
        for ns in namespaces:  # a server-side dry run needs the namespaces to exist
            ensure_namespace(cluster, ns)
        out = apply(cluster, docs, "--dry-run=server")
        assert "(server dry run)" in out


def test_operator_pod_is_locked_down() -> None:
    [deployment] = [d for d in render() if d["kind"] == "Deployment"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    [container] = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]


def _kinds(kind: str, *flags: str) -> list[dict[str, Any]]:
    return [d for d in render(*flags) if d["kind"] == kind]


def test_a_drain_never_takes_leader_and_standby_together() -> None:
    spec, _ = _operator()
    [budget] = _kinds("PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    pod_labels = spec["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # And they are spread over nodes where the cluster has more than one.
    [spread] = spec["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"  # one node still runs both
    assert spread["labelSelector"]["matchLabels"].items() <= pod_labels.items()


def test_one_replica_gets_no_budget_and_no_spread() -> None:
    # A budget of maxUnavailable 1 over one pod would be no budget; say nothing instead.
    flags = ("--set", "replicaCount=1", "--set", "leaderElection.enabled=false")
    assert _kinds("PodDisruptionBudget", *flags) == []
    spec, _ = _operator(*flags)
    assert "topologySpreadConstraints" not in spec["template"]["spec"]


def test_pod_values_reach_the_operator_pod() -> None:
    full = yaml.safe_load(FULL_VALUES.read_text())
    spec, env = _operator("--values", str(FULL_VALUES))
    template = spec["template"]
    pod = template["spec"]
    assert template["metadata"]["labels"]["team"] == "platform"
    assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert pod["priorityClassName"] == "platform-critical"
    assert pod["topologySpreadConstraints"] == full["topologySpreadConstraints"]
    assert pod["securityContext"]["runAsUser"] == 1000710000
    assert pod["affinity"] == full["affinity"]
    [container] = pod["containers"]
    assert container["securityContext"] == full["securityContext"]
    assert container["image"].endswith("0.1.0@" + full["image"]["digest"])
    assert container["env"][-1] == {"name": "HTTPS_PROXY", "value": "http://proxy.example.com:3128"}
    assert env["USERSESSION_LEADER_ELECTION"] == "on"  # the chart's own stay


def test_session_workload_defaults_reach_the_operator_and_it_takes_them() -> None:
    full = yaml.safe_load(FULL_VALUES.read_text())["sessionWorkloadDefaults"]
    _, env = _operator("--values", str(FULL_VALUES))
    name = "USERSESSION_WORKLOAD_DEFAULTS"
    settings = OperatorSettings.from_env({name: env[name]})
    settings.check()  # what the operator does at start
    assert settings.workload_defaults == full
    # None given: the variable is not set, and the operator's built-in defaults stand.
    _, env = _operator()
    assert "USERSESSION_WORKLOAD_DEFAULTS" not in env


def test_json_logs_and_the_redis_free_readiness_reach_both_processes() -> None:
    deployments = _kinds("Deployment", "--set", "logFormat=json", *API_VALUES)
    assert len(deployments) == 2
    for deployment in deployments:
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert "json" in {env.get("USERSESSION_LOG_FORMAT"), env.get("SESSIONAPI_LOG_FORMAT")}
    [api] = [d for d in deployments if d["metadata"]["name"].endswith("-api")]
    [container] = api["spec"]["template"]["spec"]["containers"]
    # /readyz asks only the session cache, never Redis (test_outages.py shows what it answers).
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_openshift_can_let_the_namespace_assign_the_ids() -> None:
    flags = (
        "--set",
        "podSecurityContext.runAsUser=null",
        "--set",
        "podSecurityContext.runAsGroup=null",
    )
    for deployment in _kinds("Deployment", *flags, *API_VALUES):
        context = deployment["spec"]["template"]["spec"]["securityContext"]
        assert context == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def _operator(*flags: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The operator Deployment's spec and its container's env (name -> value or source)."""
    [deployment] = [
        d
        for d in render(*flags)
        if d["kind"] == "Deployment" and not d["metadata"]["name"].endswith("-api")
    ]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    return deployment["spec"], env


def test_two_replicas_elect_a_leader_by_default() -> None:
    spec, env = _operator()
    assert spec["replicas"] == 2
    # New pods start as standbys and must not wait for an old one to stop...
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert env["USERSESSION_LEADER_ELECTION"] == "on"
    assert env["USERSESSION_LEADER_ELECTION_LEASE"] == "uso-usersession-operator"
    # ...and each names itself in the Lease, which lives in the pod's namespace.
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert "USERSESSION_LEADER_ELECTION_NAMESPACE" not in env  # POD_NAMESPACE is the default


def test_one_replica_without_leader_election_is_replaced_not_overlapped() -> None:
    spec, env = _operator("--set", "replicaCount=1", "--set", "leaderElection.enabled=false")
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert env["USERSESSION_LEADER_ELECTION"] == "off"
    assert not [
        d
        for d in render("--set", "leaderElection.enabled=false", "--set", "replicaCount=1")
        if "leader-election" in d["metadata"]["name"]
    ]


def test_lease_rights_are_a_role_in_the_release_namespace_for_one_lease() -> None:
    docs = render("--set", "leaderElection.leaseName=shard-a")
    [role] = [d for d in docs if d["kind"] == "Role" and "leader-election" in d["metadata"]["name"]]
    assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["shard-a"],
            "verbs": ["get", "update"],
        },
    ]
    assert not [
        rule
        for d in docs
        if d["kind"] == "ClusterRole"
        for rule in d["rules"]
        if "coordination.k8s.io" in rule["apiGroups"]
    ]
    _, env = _operator("--set", "leaderElection.leaseName=shard-a")
    assert env["USERSESSION_LEADER_ELECTION_LEASE"] == "shard-a"


def test_fast_wake_service_and_settings_render_together_or_not_at_all() -> None:
    docs = render("--set", "fastWake.port=9555")
    [service] = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-push")
    ]
    # Named as the operator names its EndpointSlice's port: kube-proxy pairs them by name.
    assert service["spec"]["ports"] == [{"name": PORT_NAME, "port": 9555, "appProtocol": "grpc"}]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    # KEDA dials the Service, whose endpoint the leader writes: its pod IP and push port.
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    assert env["USERSESSION_PUSH_ADDRESS"] == f"{name}.{namespace}.svc:9555"
    assert env["USERSESSION_PUSH_PORT"] == "9555"
    assert env["USERSESSION_PUSH_ENDPOINTS_SERVICE"] == name
    assert env["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert {"name": "push", "containerPort": 9555} in container["ports"]

    off = render("--set", "fastWake.enabled=false")
    assert not [d for d in off if d["metadata"]["name"].endswith(("-push", "-push-endpoints"))]
    [deployment] = [d for d in off if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert not [e for e in container["env"] if e["name"].startswith("USERSESSION_PUSH")]
    assert "POD_IP" not in {e["name"] for e in container["env"]}


@pytest.mark.parametrize(
    "flags",
    [(), ("--set", "replicaCount=1", "--set", "leaderElection.enabled=false")],
    ids=["two-replicas-elected", "one-replica"],
)
def test_the_push_service_selects_no_pod_the_operator_writes_its_endpoints(
    flags: tuple[str, ...],
) -> None:
    # A selector would send KEDA to the standby too, which does not serve the port.
    # One replica without a Lease writes its endpoint the same way.
    docs = render(*flags)
    [service] = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-push")
    ]
    assert "selector" not in service["spec"]
    _, env = _operator(*flags)
    assert env["USERSESSION_PUSH_ENDPOINTS_SERVICE"] == service["metadata"]["name"]
    [role] = [
        d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-push-endpoints")
    ]
    assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
    name = service["metadata"]["name"]
    assert role["rules"] == [
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["create"]},
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "resourceNames": [name],
            "verbs": ["get", "patch", "delete"],
        },
        {"apiGroups": [""], "resources": ["services"], "resourceNames": [name], "verbs": ["get"]},
    ]


def test_the_push_port_can_be_opened_to_kedas_namespace_alone() -> None:
    docs = render("--set", "fastWake.networkPolicy.enabled=true")
    [policy] = [d for d in docs if d["kind"] == "NetworkPolicy"]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    push, others = policy["spec"]["ingress"]
    assert push["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}
    ]
    # Named ports, so they follow fastWake.port and the others without repeating them.
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    named = {p["name"] for p in container["ports"]}
    assert {p["port"] for p in push["ports"] + others["ports"]} == named
    assert "from" not in others  # probes and scrapes as without the policy
    assert not [d for d in render() if d["kind"] == "NetworkPolicy"]  # off by default


def test_fast_wake_tls_mounts_the_secret_where_the_operator_reads_it() -> None:
    def operator_pod(*flags: str) -> dict[str, Any]:
        [deployment] = [d for d in render(*flags) if d["kind"] == "Deployment"]
        return deployment["spec"]["template"]["spec"]

    pod = operator_pod("--set", "fastWake.tls.secretName=push-cert")
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "push-tls"]
    assert env["USERSESSION_PUSH_TLS_DIR"] == mount["mountPath"]
    assert mount["readOnly"] is True and "subPath" not in mount  # renewals reach the pod
    [volume] = [v for v in pod["volumes"] if v["name"] == "push-tls"]
    assert volume["secret"]["secretName"] == "push-cert"

    for flags in ((), ("--set", "fastWake.enabled=false,fastWake.tls.secretName=push-cert")):
        pod = operator_pod(*flags)
        [container] = pod["containers"]
        assert "USERSESSION_PUSH_TLS_DIR" not in {e["name"] for e in container["env"]}
        assert "push-tls" not in {v["name"] for v in pod["volumes"]}


def can_i(
    kubeconfig: Path, verb: str, resource: str, namespace: str = "default", user: str = ""
) -> bool:
    """`kubectl auth can-i` as the account in kubeconfig (or as `user`, impersonated
    by it), in `namespace`."""
    result = subprocess.run(
        [
            kubectl(),
            "--kubeconfig",
            str(kubeconfig),
            "auth",
            "can-i",
            verb,
            *resource.split(),
            "--namespace",
            namespace,
            *([f"--as={user}"] if user else []),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "doesn't have a resource type" not in result.stderr, result.stderr  # a typo
    return result.stdout.strip() == "yes"


def _rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for d in docs if d["kind"] in ("ClusterRole", "Role") for rule in d["rules"]]


def test_rbac_has_no_wildcards_and_secrets_only_by_name() -> None:
    for extra in ([], ["--values", str(FULL_VALUES)]):
        for rule in _rules(render(*extra)):
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], rule
            if "secrets" in rule["resources"]:
                assert rule["verbs"] == ["get"]
                assert rule["resourceNames"], "the operator may read named Secrets only"


def test_namespaced_mode_uses_roles_and_only_a_discovery_cluster_role() -> None:
    docs = render("--values", str(FULL_VALUES))
    roles = [
        d
        for d in docs
        if d["kind"] == "Role"
        and not d["metadata"]["name"].endswith(
            ("-api", "-leader-election", "-push-endpoints", "-events")
        )
    ]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    bound = {d["roleRef"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"}
    # The chart's user roles (aggregated into view/edit/admin) grant the operator nothing.
    [cluster_role] = [
        d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] in bound
    ]
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRole"} - bound == {
        "uso-usersession-operator-view",
        "uso-usersession-operator-edit",
    }
    assert cluster_role["rules"] == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        },
        # Without them kopf spends a minute of every start retrying before it
        # serves the given namespaces (test_leader_election runs this mode).
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    ]


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("patch", "deployments.apps", True),
        ("create", "triggerauthentications.keda.sh", True),
        ("patch", "scaledobjects.keda.sh", True),
        ("patch", "usersessions.sessions.ai-infra.dev --subresource=status", True),
        ("get", "secrets/redis-auth", True),
        ("get", "secrets/someone-elses", False),
        ("list", "secrets", False),
        ("watch", "secrets", False),
        ("delete", "deployments.apps", False),
        ("update", "deployments.apps --subresource=scale", False),
        ("create", "persistentvolumeclaims", True),
        ("delete", "persistentvolumeclaims", False),
        ("delete", "usersessions.sessions.ai-infra.dev", True),  # expireAfterIdleSeconds
        ("delete", "pods", False),
        ("patch", "pods", False),
        ("create", "configmaps", False),
        ("get", "nodes", False),
        ("create", "clusterroles.rbac.authorization.k8s.io", False),
    ],
)
def test_service_account_can_do_exactly_what_it_needs(
    cluster: LocalCluster, tmp_path: Path, verb: str, resource: str, allowed: bool
) -> None:
    kubeconfig = service_account_kubeconfig(cluster, tmp_path / "kubeconfig")
    assert can_i(kubeconfig, verb, resource) == allowed, (verb, resource)


@pytest.mark.parametrize(
    ("verb", "resource", "namespace", "allowed"),
    [
        ("create", "leases.coordination.k8s.io", RELEASE_NAMESPACE, True),
        ("get", "leases.coordination.k8s.io/uso-usersession-operator", RELEASE_NAMESPACE, True),
        ("update", "leases.coordination.k8s.io/uso-usersession-operator", RELEASE_NAMESPACE, True),
        ("update", "leases.coordination.k8s.io/kube-scheduler", RELEASE_NAMESPACE, False),
        ("delete", "leases.coordination.k8s.io/uso-usersession-operator", RELEASE_NAMESPACE, False),
        ("list", "leases.coordination.k8s.io", RELEASE_NAMESPACE, False),
        ("create", "leases.coordination.k8s.io", "default", False),
        ("update", "leases.coordination.k8s.io/kube-scheduler", "kube-system", False),
        # The push Service's EndpointSlice, written by the leader (leadership/endpoints.py).
        ("create", "endpointslices.discovery.k8s.io", RELEASE_NAMESPACE, True),
        ("patch", f"endpointslices.discovery.k8s.io/{PUSH}", RELEASE_NAMESPACE, True),
        ("get", f"endpointslices.discovery.k8s.io/{PUSH}", RELEASE_NAMESPACE, True),
        ("delete", f"endpointslices.discovery.k8s.io/{PUSH}", RELEASE_NAMESPACE, True),
        ("get", f"services/{PUSH}", RELEASE_NAMESPACE, True),
        ("patch", f"services/{PUSH}", RELEASE_NAMESPACE, False),
        (
            "patch",
            "endpointslices.discovery.k8s.io/uso-usersession-operator-metrics",
            RELEASE_NAMESPACE,
            False,
        ),
        ("delete", "endpointslices.discovery.k8s.io/kubernetes", "default", False),
        ("list", "endpointslices.discovery.k8s.io", RELEASE_NAMESPACE, False),
        ("create", "endpointslices.discovery.k8s.io", "default", False),
        ("create", "endpoints", RELEASE_NAMESPACE, False),
    ],
)
def test_service_account_may_hold_its_own_lease_and_write_its_push_endpoints(
    cluster: LocalCluster, tmp_path: Path, verb: str, resource: str, namespace: str, allowed: bool
) -> None:
    kubeconfig = service_account_kubeconfig(cluster, tmp_path / "kubeconfig")
    assert can_i(kubeconfig, verb, resource, namespace) == allowed, (verb, resource, namespace)


API_VALUES = (
    "--set",
    "sessionApi.enabled=true",
    "--set",
    "sessionApi.tokens.inline.not-a-real-token.admin=true",
)


def test_session_api_component_renders_locked_down_and_refuses_missing_tokens() -> None:
    docs = render(*API_VALUES)
    [api] = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-api")
    ]
    [container] = api["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["usersession-api"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SESSIONAPI_TOKENS_FILE"] == "/etc/sessionapi/tokens.yaml"
    assert not any("token" in (v or "") and k != "SESSIONAPI_TOKENS_FILE" for k, v in env.items())
    with pytest.raises(subprocess.CalledProcessError) as info:
        render("--set", "sessionApi.enabled=true")
    assert "sessionApi.tokens.existingSecret or sessionApi.tokens.inline" in info.value.stderr


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("create", "usersessions.sessions.ai-infra.dev", True),
        ("delete", "usersessions.sessions.ai-infra.dev", True),
        ("watch", "usersessions.sessions.ai-infra.dev", True),
        ("patch", "deployments.apps --subresource=scale", True),
        ("get", "secrets/redis-auth", True),
        ("create", "deployments.apps", False),
        ("patch", "deployments.apps", False),
        ("create", "scaledobjects.keda.sh", False),
        ("patch", "usersessions.sessions.ai-infra.dev --subresource=status", False),
        ("list", "secrets", False),
    ],
)
def test_session_api_account_can_do_exactly_what_it_needs(
    cluster: LocalCluster, tmp_path: Path, verb: str, resource: str, allowed: bool
) -> None:
    kubeconfig = service_account_kubeconfig(
        cluster,
        tmp_path / "kubeconfig",
        "--set",
        "sessionApi.namespace=default",
        *API_VALUES,
        account="uso-usersession-operator-api",
    )
    assert can_i(kubeconfig, verb, resource) == allowed, (verb, resource)


USERS_NAMESPACE = "team-sessions"
SESSIONS = "usersessions.sessions.ai-infra.dev"


@pytest.fixture(scope="module")
def namespace_users(cluster: LocalCluster) -> str:
    """The chart's user ClusterRoles installed, and user-<role> bound to Kubernetes'
    own view, edit and admin in one namespace, as a platform team grants them."""
    docs = [
        d
        for d in render()
        if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith(("-view", "-edit"))
    ]
    assert {d["metadata"]["name"] for d in docs} == {
        "uso-usersession-operator-view",
        "uso-usersession-operator-edit",
    }
    ensure_namespace(cluster, USERS_NAMESPACE)
    bindings = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"user-{role}", "namespace": USERS_NAMESPACE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"user-{role}"}
            ],
        }
        for role in ("view", "edit", "admin")
    ]
    apply(cluster, docs + bindings)

    def aggregated() -> bool:
        # kube-controller-manager folds the labelled rules in, a moment after the apply.
        return all(
            any(
                "sessions.ai-infra.dev" in rule.get("apiGroups", [])
                for rule in cluster.api(
                    "GET", f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}"
                )["rules"]
            )
            for role in ("view", "edit", "admin")
        )

    wait_for(aggregated, timeout=60)
    return USERS_NAMESPACE


@pytest.mark.parametrize(
    ("user", "verb", "resource", "allowed"),
    [
        ("user-view", "list", SESSIONS, True),
        ("user-view", "watch", SESSIONS, True),
        ("user-view", "get", f"{SESSIONS} --subresource=status", True),
        ("user-view", "create", SESSIONS, False),
        ("user-view", "delete", SESSIONS, False),
        ("user-edit", "create", SESSIONS, True),
        ("user-edit", "patch", SESSIONS, True),
        ("user-edit", "delete", SESSIONS, True),
        ("user-edit", "get", SESSIONS, True),
        # Status is the operator's to write: nobody's role says otherwise.
        ("user-edit", "patch", f"{SESSIONS} --subresource=status", False),
        ("user-admin", "deletecollection", SESSIONS, True),
        ("user-admin", "patch", f"{SESSIONS} --subresource=status", False),
    ],
)
def test_namespace_users_get_usersessions_through_kubernetes_own_roles(
    cluster: LocalCluster, namespace_users: str, user: str, verb: str, resource: str, allowed: bool
) -> None:
    assert can_i(cluster.kubeconfig, verb, resource, namespace_users, user) == allowed
    # Bound in one namespace, so nothing in another.
    assert not can_i(cluster.kubeconfig, verb, resource, "default", user)


def test_without_aggregation_the_chart_grants_namespace_users_nothing() -> None:
    # rbac.aggregateClusterRoles=false: a platform that grants UserSessions its own way.
    aggregating = [
        role["metadata"]["name"]
        for role in _kinds("ClusterRole", "--set", "rbac.aggregateClusterRoles=false")
        if any(
            k.startswith("rbac.authorization.k8s.io/aggregate-to-")
            for k in role["metadata"].get("labels", {})
        )
    ]
    assert aggregating == []


EXAMPLES = CHART.parent.parent / "examples"
EXAMPLE_VALUES = EXAMPLES / "chart-values.yaml"


def _referenced(tree: Any, suffix: str) -> set[str]:
    """The names of every `...<suffix>` reference ({name, key}) in a spec."""
    if not isinstance(tree, dict):
        return set()
    found = {v["name"] for k, v in tree.items() if k.endswith(suffix) and isinstance(v, dict)}
    return found.union(*(_referenced(v, suffix) for v in tree.values()))


@pytest.mark.parametrize(
    "example",
    ["usersession-minimal.yaml", "usersession-full.yaml", "usersession-managed-redis.yaml"],
)
def test_every_example_names_only_what_the_chart_lets_the_operator_read(
    cluster: LocalCluster, tmp_path: Path, example: str
) -> None:
    spec = yaml.safe_load((EXAMPLES / example).read_text())["spec"]
    secrets = _referenced(spec, "SecretRef") or {"redis-auth"}  # none named: the default
    config_maps = _referenced(spec, "ConfigMapRef")
    kubeconfig = service_account_kubeconfig(
        cluster, tmp_path / "kubeconfig", "--values", str(EXAMPLE_VALUES)
    )
    for name in secrets:
        assert can_i(kubeconfig, "get", f"secrets/{name}"), name
    for name in config_maps:
        assert can_i(kubeconfig, "get", f"configmaps/{name}"), name
    # Still by name: the list grants nothing more.
    assert not can_i(kubeconfig, "list", "secrets")
    assert not can_i(kubeconfig, "get", "secrets/someone-elses")


def test_without_the_examples_values_their_own_secrets_are_refused(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    # What a default install meets: the check above is not vacuous.
    kubeconfig = service_account_kubeconfig(cluster, tmp_path / "kubeconfig")
    assert not can_i(kubeconfig, "get", "secrets/redis-acl")


def test_full_values_sets_every_value() -> None:
    def leaves(tree: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        if isinstance(tree, dict) and tree:
            return [leaf for key, value in tree.items() for leaf in leaves(value, (*path, key))]
        return [path]

    def has(tree: Any, path: tuple[str, ...]) -> bool:
        for key in path:
            if not isinstance(tree, dict) or key not in tree:
                return False
            tree = tree[key]
        return True

    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    full = yaml.safe_load(FULL_VALUES.read_text())
    assert [".".join(p) for p in leaves(defaults) if not has(full, p)] == []


def _strings(tree: Any, change: Callable[[str], str]) -> Any:
    """tree with change applied to every string in it."""
    if isinstance(tree, str):
        return change(tree)
    if isinstance(tree, list):
        return [_strings(item, change) for item in tree]
    if isinstance(tree, dict):
        return {key: _strings(value, change) for key, value in tree.items()}
    return tree


MONITORING_ON = (
    "--set",
    "monitoring.prometheusRule.enabled=true",
    "--set",
    "monitoring.dashboard.enabled=true",
)


def _monitoring(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dashboard ConfigMap and the PrometheusRule, in this order, if rendered."""
    found = [
        d
        for d in docs
        if d["kind"] == "PrometheusRule"
        or (d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard"))
    ]
    return sorted(found, key=lambda d: str(d["kind"]))


def test_monitoring_objects_render_only_when_enabled_from_the_one_source() -> None:
    assert _monitoring(render()) == []
    [board, rule] = _monitoring(render(*MONITORING_ON, *API_VALUES))
    assert (board["kind"], rule["kind"]) == ("ConfigMap", "PrometheusRule")

    # The source's groups, with the job names a ServiceMonitor gives this release's Services.
    def for_release(text: str) -> str:
        return text.replace(
            'job="usersession-operator"', 'job="uso-usersession-operator-metrics"'
        ).replace('job="usersession-api"', 'job="uso-usersession-operator-api"')

    assert rule["spec"]["groups"] == _strings(alert_groups(), for_release)
    assert rule["spec"]["groups"] != alert_groups()
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["usersession-operator.json"]) == dashboard()

    # Without the session API, none of its alerts.
    [_, rule] = _monitoring(render(*MONITORING_ON))
    assert [g["name"] for g in rule["spec"]["groups"]] == ["usersession-operator"]


def test_monitoring_objects_are_accepted_by_the_api_server(
    cluster: LocalCluster, monitoring_crds: str | None
) -> None:
    if monitoring_crds is not None:
        pytest.skip(monitoring_crds)
    for extra in ([], ["--values", str(FULL_VALUES)]):
        docs = _monitoring(render(*MONITORING_ON, *API_VALUES, *extra))
        assert len(docs) == 2
        for ns in {d["metadata"]["namespace"] for d in docs}:
            ensure_namespace(cluster, ns)
        assert "(server dry run)" in apply(cluster, docs, "--dry-run=server")
    # The CRD's schema is really checking: a duration it cannot parse is refused.
    [rule] = [d for d in docs if d["kind"] == "PrometheusRule"]
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    with pytest.raises(AssertionError, match=re.escape("spec.groups[0].rules[0].for")):
        apply(cluster, [rule], "--dry-run=server")
