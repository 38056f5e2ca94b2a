"""The checked-in OpenAPI document and the app's routes must not drift apart."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import yaml

from usersession_operator.sessionapi import app as app_module
from usersession_operator.sessionapi.app import QUERY, ROUTES

SPEC: dict[str, Any] = yaml.safe_load(
    resources.files("usersession_operator.sessionapi").joinpath("openapi.yaml").read_text()
)


def test_every_route_is_documented_and_nothing_else() -> None:
    routes = {(_template(path), method.lower()) for method, path, _ in ROUTES}
    documented = {
        (path, method)
        for path, item in SPEC["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert routes == documented


def _template(path: str) -> str:
    """/session/{id:regex} -> /session/{id}, as OpenAPI spells it."""
    return re.sub(r"{(\w+):[^}]*}", r"{\1}", path)


def test_path_parameters_match_the_route_templates() -> None:
    for path, item in SPEC["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            declared = set()
            for parameter in operation.get("parameters", []):
                if "$ref" in parameter:
                    parameter = SPEC["components"]["parameters"][parameter["$ref"].split("/")[-1]]
                if parameter["in"] == "path":
                    declared.add(parameter["name"])
            assert declared == names, (method, path)


def test_public_routes_are_exactly_those_without_security() -> None:
    open_in_spec = {
        path for path, item in SPEC["paths"].items() if item.get("get", {}).get("security") == []
    }
    assert open_in_spec == app_module.PUBLIC


def test_every_reference_resolves() -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(SPEC):
        target: Any = SPEC
        for part in ref.removeprefix("#/").split("/"):
            assert part in target, ref
            target = target[part]


def test_every_operation_documents_its_errors_as_the_error_schema() -> None:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if path.startswith("/session"):
                assert "401" in operation["responses"], (method, path)
                assert "503" in operation["responses"], (method, path)


def test_query_parameters_match_what_the_app_accepts() -> None:
    for path, item in SPEC["paths"].items():
        for operation in item.values():
            names = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
            assert names == QUERY.get(path, frozenset()), path


def test_the_phase_enum_is_the_operators_phases() -> None:
    from usersession_operator.status.compute import Phase

    assert SPEC["components"]["schemas"]["Phase"]["enum"] == [p.value for p in Phase]


def test_validation_reads_its_limits_from_the_document() -> None:
    # One source: change a limit in openapi.yaml and the API enforces the new one.
    from usersession_operator.sessionapi import contract, validation

    assert validation.MAX_IMAGE is contract.MAX_IMAGE == 512
    assert contract.MAX_USER_ID == 254  # the CRD's limit on spec.userId
    assert contract.ENV_NAME.fullmatch("A" * 256) and not contract.ENV_NAME.fullmatch("A" * 257)
    assert contract.SIZE.fullmatch("10Gi") and not contract.SIZE.fullmatch("0")
    assert (contract.MIN_EXPIRY, contract.MAX_EXPIRY) == (10, 31_536_000)  # as the CRD
    assert (contract.MAX_LIMIT, contract.DEFAULT_LIMIT) == (500, 100)


def test_the_documented_reserved_env_names_are_the_operators() -> None:
    # The document once listed nine of the fifteen names the operator sets itself.
    from usersession_operator.session.model import RESERVED_ENV_NAMES
    from usersession_operator.sessionapi.contract import RESERVED_ENV_NAMES_DOCUMENTED

    assert RESERVED_ENV_NAMES_DOCUMENTED == RESERVED_ENV_NAMES
