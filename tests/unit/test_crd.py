"""Static checks of the CRD and the examples. The API server's own validation
(CEL included) is exercised by the integration tier."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from usersession_operator.session import model, redisrefs
from usersession_operator.session.model import parse_address
from usersession_operator.session.spec import session_from_body
from usersession_operator.settings import OperatorSettings

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "sessions.ai-infra.dev_usersessions.yaml"
EXAMPLES = ROOT / "examples"

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def version(crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = crd["spec"]["versions"]
    return dict(only)


@pytest.fixture(scope="module")
def schema(version: dict[str, Any]) -> Schema:
    root: Schema = version["schema"]["openAPIV3Schema"]
    return root


def walk(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")


def at(schema: Schema, dotted: str) -> Schema:
    node = schema
    for part in dotted.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


def rules(node: Schema) -> dict[str, str]:
    return {v["rule"]: v["message"] for v in node.get("x-kubernetes-validations", [])}


def test_names_and_scope(crd: dict[str, Any], version: dict[str, Any]) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{model.PLURAL}.{model.GROUP}"
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == (model.GROUP, "Namespaced")
    names = spec["names"]
    assert (names["kind"], names["plural"], names["singular"]) == (
        model.KIND,
        model.PLURAL,
        "usersession",
    )
    assert names["shortNames"] == ["us", "usess"]
    assert names["categories"] == ["sessions"]
    assert (version["name"], version["served"], version["storage"]) == (model.VERSION, True, True)
    assert version["subresources"] == {"status": {}}


def test_schema_is_structural(schema: Schema) -> None:
    for path, node in walk(schema):
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, path
            continue
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, (
            path
        )
        if node["type"] == "array":
            assert "items" in node, path
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            # The API server insists map keys are required (or defaulted).
            assert set(keys) <= set(node["items"].get("required", [])), path


def test_every_field_is_described(schema: Schema) -> None:
    undocumented = [
        path
        for path, node in walk(schema)
        if path and path != ".metadata" and not path.endswith(("[]", "{}"))
        if not node.get("description", "").strip()
    ]
    assert undocumented == []


def test_no_defaults_inside_lists(schema: Schema) -> None:
    # Argo CD shows defaults filled in inside list items as a permanent diff.
    for path, node in walk(schema):
        if "[]" in path:
            assert "default" not in node, path


def test_validation_messages_are_single_lines(schema: Schema) -> None:
    messages = [m for _, node in walk(schema) for m in rules(node).values()]
    assert len(messages) >= 10
    assert all(m and "\n" not in m for m in messages)


def test_schema_defaults_match_the_code(schema: Schema) -> None:
    spec = at(schema, "spec")
    assert at(spec, "suspend")["default"] is False
    assert at(spec, "queue")["default"] == {}
    assert at(spec, "scaling")["default"] == {}
    assert at(spec, "queue.activationLength")["default"] == model.DEFAULT_ACTIVATION_LENGTH
    assert at(spec, "queue.targetLength")["default"] == model.DEFAULT_TARGET_LENGTH
    assert at(spec, "scaling.idleTimeoutSeconds")["default"] == model.DEFAULT_IDLE_TIMEOUT_SECONDS
    assert (
        at(spec, "scaling.pollingIntervalSeconds")["default"]
        == model.DEFAULT_POLLING_INTERVAL_SECONDS
    )
    assert at(spec, "redis.passwordSecretRef.key")["default"] == model.DEFAULT_SECRET_KEY
    grace = at(spec, "workload.terminationGracePeriodSeconds")
    assert grace["default"] == model.DEFAULT_TERMINATION_GRACE_SECONDS
    assert grace["maximum"] == model.MAX_TERMINATION_GRACE_SECONDS
    # Redis falls back to the operator's settings, so the schema must not default it.
    assert [path for path, node in walk(at(spec, "redis")) if "default" in node] == [
        ".passwordSecretRef.key",
        ".usernameSecretRef.key",
        ".tls.enabled",
        ".tls.caSecretRef.key",
        ".tls.caConfigMapRef.key",
        ".tls.clientCertSecretRef.certKey",
        ".tls.clientCertSecretRef.keyKey",
    ]
    assert at(spec, "redis.usernameSecretRef.key")["default"] == redisrefs.DEFAULT_USERNAME_KEY
    assert at(spec, "redis.tls.enabled")["default"] is True
    for ref in ("caSecretRef", "caConfigMapRef"):
        assert at(spec, f"redis.tls.{ref}.key")["default"] == redisrefs.DEFAULT_CA_KEY
    client = at(spec, "redis.tls.clientCertSecretRef")
    assert at(client, "certKey")["default"] == redisrefs.DEFAULT_CERT_KEY
    assert at(client, "keyKey")["default"] == redisrefs.DEFAULT_KEY_KEY


def test_required_fields(schema: Schema) -> None:
    assert schema["required"] == ["spec"]
    assert at(schema, "spec")["required"] == ["userId", "workload"]
    assert at(schema, "spec.workload")["required"] == ["image"]
    assert at(schema, "spec.redis.passwordSecretRef")["required"] == ["name"]


def test_user_id_is_immutable(schema: Schema) -> None:
    user_id = at(schema, "spec.userId")
    assert (user_id["minLength"], user_id["maxLength"]) == (1, 254)
    assert rules(user_id) == {
        "self == oldSelf": "userId is immutable: create a new UserSession for another user"
    }


def test_redis_password_is_refused_with_a_pointer_to_the_secret(schema: Schema) -> None:
    redis = at(schema, "spec.redis")
    assert "password" in redis["properties"]
    message = rules(redis)["!has(self.password)"]
    assert message.startswith("spec.redis.password is not allowed")
    assert "spec.redis.passwordSecretRef" in message


@pytest.mark.parametrize(
    ("where", "literal", "reference"),
    [
        ("spec.redis", "username", "usernameSecretRef"),
        ("spec.redis.tls", "ca", "caSecretRef or caConfigMapRef"),
        ("spec.redis.tls", "cert", "clientCertSecretRef"),
        ("spec.redis.tls", "key", "clientCertSecretRef"),
    ],
)
def test_redis_literals_are_refused_with_a_pointer_to_the_reference(
    schema: Schema, where: str, literal: str, reference: str
) -> None:
    node = at(schema, where)
    assert at(node, literal)["description"].startswith("Not allowed")
    refusals = [m for rule, m in rules(node).items() if f"has(self.{literal})" in rule]
    assert len(refusals) == 1
    assert "not allowed" in refusals[0]
    assert reference in refusals[0]


def test_redis_tls_rules(schema: Schema) -> None:
    messages = rules(at(schema, "spec.redis.tls"))
    assert "spec.redis.tls: set caSecretRef or caConfigMapRef, not both" in messages.values()
    assert any(m.startswith("spec.redis.tls.enabled is false") for m in messages.values())
    (name_rule,) = rules(at(schema, "spec.redis.tls.serverName"))
    assert "DNS name" in rules(at(schema, "spec.redis.tls.serverName"))[name_rule]


def test_reserved_env_names_are_refused(schema: Schema) -> None:
    env = at(schema, "spec.workload.env")
    assert env["x-kubernetes-list-type"] == "map"
    assert env["x-kubernetes-list-map-keys"] == ["name"]
    ((rule, message),) = rules(env).items()
    assert set(re.findall(r"'([A-Z_]+)'", rule)) == model.RESERVED_ENV_NAMES
    assert all(name in message for name in model.RESERVED_ENV_NAMES)


def test_pod_labels_cannot_take_the_operator_keys(schema: Schema) -> None:
    assert "startsWith('app.kubernetes.io/')" in next(
        iter(rules(at(schema, "spec.workload.podLabels")))
    )


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [("idleTimeoutSeconds", 1, 86400), ("pollingIntervalSeconds", 1, 3600)],
)
def test_scaling_bounds(schema: Schema, field: str, low: int, high: int) -> None:
    node = at(schema, f"spec.scaling.{field}")
    assert (node["minimum"], node["maximum"]) == (low, high)
    assert rules(node)[f"self >= {low}"].startswith(f"{field} must be at least {low} second")


def address_pattern(schema: Schema) -> re.Pattern[str]:
    (rule,) = rules(at(schema, "spec.redis.address"))
    found = re.fullmatch(r'self\.matches\(r"(.+)"\)', rule)
    assert found, rule
    return re.compile(found.group(1))


@pytest.mark.parametrize("address", ["redis:6379", "10.0.0.1:1", "[::1]:6379", "a.b.svc:65535"])
def test_address_rule_accepts_what_the_operator_parses(schema: Schema, address: str) -> None:
    assert address_pattern(schema).search(address)
    parse_address(address, "test")


@pytest.mark.parametrize("address", ["redis", "redis:", ":6379", "::1:6379", "redis: 6379", "r:x"])
def test_address_rule_refuses(schema: Schema, address: str) -> None:
    assert not address_pattern(schema).search(address)


@pytest.mark.parametrize(
    ("quantity", "ok"), [("250m", True), ("1Gi", True), ("1.5", True), ("1 GB", False)]
)
def test_resource_quantities(schema: Schema, quantity: str, ok: bool) -> None:
    pattern = at(schema, "spec.workload.resources.requests")["additionalProperties"]["pattern"]
    assert bool(re.search(pattern, quantity)) is ok


def test_status_shape(schema: Schema) -> None:
    status = at(schema, "status")
    assert "required" not in status
    assert at(status, "phase")["enum"] == [
        "Pending",
        "Sleeping",
        "Waking",
        "Running",
        "Suspended",
        "Degraded",
        "Terminating",
    ]
    for phase in at(status, "phase")["enum"]:
        assert f"{phase}:" in at(status, "phase")["description"]
    conditions = at(status, "conditions")
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert at(conditions, "[].status")["enum"] == ["True", "False", "Unknown"]
    assert at(conditions, "[].lastTransitionTime")["format"] == "date-time"
    assert set(at(status, "children")["properties"]) == {
        "deployment",
        "scaledObject",
        "triggerAuthentication",
        "persistentVolumeClaim",
    }
    assert set(status["properties"]) >= {
        "observedGeneration",
        "queueDepth",
        "queueName",
        "replicas",
        "readyReplicas",
        "pod",
        "lastActivityTime",
    }


def test_printer_columns(version: dict[str, Any]) -> None:
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == [
        "User",
        "Phase",
        "Queue",
        "In-Flight",
        "Ready",
        "Pod",
        "Last-Activity",
        "Age",
    ]
    assert columns["In-Flight"]["jsonPath"] == ".status.processingDepth"
    assert columns["User"]["jsonPath"] == ".spec.userId"
    assert (columns["Queue"]["type"], columns["Queue"]["jsonPath"]) == (
        "integer",
        ".status.queueDepth",
    )
    assert columns["Phase"]["jsonPath"] == ".status.phase"
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert (columns["Pod"]["priority"], columns["Last-Activity"]["priority"]) == (1, 1)
    assert (columns["Last-Activity"]["type"], columns["Age"]["type"]) == ("date", "date")
    assert columns["Age"]["jsonPath"] == ".metadata.creationTimestamp"


# --- examples against the schema: a small subset of OpenAPI, enough to catch
# typos (unknown fields the API server would silently prune), missing required
# fields, wrong types and values outside an enum or range.

PY_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def violations(value: Any, node: Schema, path: str) -> list[str]:
    if node.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, int | str) and not isinstance(value, bool)
        return [] if ok else [f"{path}: not int-or-string"]
    expected = node["type"]
    if not isinstance(value, PY_TYPES[expected]) or (
        expected == "integer" and isinstance(value, bool)
    ):
        return [f"{path}: expected {expected}"]
    found = []
    if "enum" in node and value not in node["enum"]:
        found.append(f"{path}: {value!r} not in {node['enum']}")
    if "minimum" in node and value < node["minimum"]:
        found.append(f"{path}: below {node['minimum']}")
    if "maximum" in node and value > node["maximum"]:
        found.append(f"{path}: above {node['maximum']}")
    if expected == "array":
        for i, item in enumerate(value):
            found += violations(item, node["items"], f"{path}[{i}]")
    if expected == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
        found += [f"{path}.{key}: required" for key in node.get("required", []) if key not in value]
        for key, item in value.items():
            if key in node.get("properties", {}):
                found += violations(item, node["properties"][key], f"{path}.{key}")
            elif "additionalProperties" in node:
                found += violations(item, node["additionalProperties"], f"{path}.{key}")
            elif "properties" in node:
                found.append(f"{path}.{key}: unknown field")
    return found


EXAMPLE_SESSIONS = [
    "usersession-minimal.yaml",
    "usersession-full.yaml",
    "usersession-managed-redis.yaml",
]


@pytest.mark.parametrize("filename", EXAMPLE_SESSIONS)
def test_examples_fit_the_schema(schema: Schema, filename: str) -> None:
    body = yaml.safe_load((EXAMPLES / filename).read_text())
    assert body["apiVersion"] == model.API_VERSION
    assert body["kind"] == model.KIND
    assert "namespace" not in body["metadata"]
    assert violations({k: v for k, v in body.items() if k != "metadata"}, schema, "") == []


def test_the_validator_notices_mistakes(schema: Schema) -> None:
    body = {
        "spec": {
            "userId": "u",
            "workload": {"image": "i", "imagePullPolicy": "Sometimes", "cmd": ["x"]},
            "scaling": {"idleTimeoutSeconds": 0},
        }
    }
    assert sorted(violations(body, schema, "")) == [
        ".spec.scaling.idleTimeoutSeconds: below 1",
        ".spec.workload.cmd: unknown field",
        ".spec.workload.imagePullPolicy: 'Sometimes' not in ['Always', 'IfNotPresent', 'Never']",
    ]
    assert violations({"spec": {"workload": {}}}, schema, "") == [
        ".spec.userId: required",
        ".spec.workload.image: required",
    ]


@pytest.mark.parametrize("filename", EXAMPLE_SESSIONS)
def test_examples_read_as_sessions(filename: str) -> None:
    body = yaml.safe_load((EXAMPLES / filename).read_text())
    body["metadata"] |= {"namespace": "default", "uid": "uid-1"}
    session = session_from_body(body, OperatorSettings())
    assert session.workload.image.startswith("registry.example.com/")


def test_full_example_sets_every_spec_field(schema: Schema) -> None:
    body = yaml.safe_load((EXAMPLES / "usersession-full.yaml").read_text())

    def unset(value: Any, node: Schema, path: str) -> list[str]:
        missing = []
        for key, child in node.get("properties", {}).items():
            # Declared only to be refused, or the alternative to a field that is set.
            # Or a name of a cluster-scoped object the example cannot assume exists.
            if child.get("description", "").startswith("Not allowed") or (
                f"{path}.{key}"
                in ("spec.redis.tls.caConfigMapRef", "spec.workload.priorityClassName")
            ):
                continue
            if key not in value:
                missing.append(f"{path}.{key}")
            # Kubernetes' own types (securityContext) list a few keys for kubectl
            # explain and accept the rest; setting one of them is enough.
            elif (
                child.get("type") == "object"
                and "properties" in child
                and not child.get("x-kubernetes-preserve-unknown-fields")
            ):
                missing += unset(value[key], child, f"{path}.{key}")
        return missing

    assert unset(body["spec"], at(schema, "spec"), "spec") == []


def test_example_secret_is_a_placeholder() -> None:
    text = (EXAMPLES / "redis-secret.yaml").read_text()
    secret = yaml.safe_load(text)
    assert (secret["kind"], secret["metadata"]["name"]) == ("Secret", "redis-auth")
    assert secret["stringData"] == {"password": "change-me", "username": "default"}
    assert "kubectl create secret" in text


def test_the_phase_enum_is_the_operators_phases(schema: Schema) -> None:
    from usersession_operator.status.compute import Phase

    assert at(schema["properties"]["status"], "phase")["enum"] == [p.value for p in Phase]


def test_kubectl_explain_of_phase_matches_the_code(schema: Schema) -> None:
    # The text users read (kubectl explain usersession.status.phase) once said an
    # unreachable Redis left the phase alone, while the code made it Degraded.
    from usersession_operator.status.compute import Phase
    from usersession_operator.status.conditions import (
        REDIS_UNREACHABLE,
        SCALER_NOT_READY,
        START_TIMEOUT,
    )

    text = " ".join(at(schema["properties"]["status"], "phase")["description"].split())
    for phase in Phase:
        assert f"{phase.value}:" in text, phase
    # The reasons behind the phases users meet most, spelled as the code spells them,
    # each in the sentence of the phase the code gives it (status/phase.py).
    degraded = text.split("Degraded:", 1)[1].split("Terminating:", 1)[0]
    assert REDIS_UNREACHABLE in degraded and START_TIMEOUT in degraded
    assert SCALER_NOT_READY in text.split("Pending:", 1)[1].split("Sleeping:", 1)[0]
