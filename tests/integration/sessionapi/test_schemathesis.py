"""Property-based run of the served OpenAPI document: no 5xx, no response off the schema.

schemathesis generates requests for every documented operation (valid and
invalid ones), sends them to the real API (real API server, Redis and
operator behind it) and checks each response against the document.
"""

from __future__ import annotations

from importlib import resources

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.openapi import from_dict

from .harness import ALICE_TOKEN, Served

pytestmark = pytest.mark.usefixtures("operator")

OPENAPI = resources.files("usersession_operator.sessionapi").joinpath("openapi.yaml")


# The checked-in document, which the served one is (test_served_document_is_the_checked_in_one).
schema = from_dict(yaml.safe_load(OPENAPI.read_text()))


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_matches_its_openapi_document(case: schemathesis.Case, served: Served) -> None:
    # A user token: the common caller. (An admin token must also name user_id on
    # create, a rule the document cannot express.) wait=0 keeps chat cases quick.
    if case.path == "/session/{id}/chat":
        case.query = {**(case.query or {}), "wait": "0"}
    if case.path == "/sessions" and case.query:
        # Continue tokens are opaque: only one from a previous page means
        # anything, and any other is rightly a 400, which no schema can say.
        case.query.pop("continue", None)
    case.call_and_validate(
        base_url=served.base, headers={"Authorization": f"Bearer {ALICE_TOKEN}"}, timeout=30
    )


def test_served_document_is_the_checked_in_one(served: Served) -> None:
    served_doc = requests.get(served.base + "/openapi.json", timeout=10).json()
    assert served_doc == yaml.safe_load(OPENAPI.read_text())
    served_yaml = requests.get(served.base + "/openapi.yaml", timeout=10)
    assert served_yaml.text == OPENAPI.read_text()
