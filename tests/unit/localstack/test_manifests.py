"""Waiting for CRDs: a CRD the API server has not got to yet is not an error."""

from __future__ import annotations

from typing import Any

from usersession_localstack import manifests


class _Answers:
    """Stands in for LocalCluster.api with the API server's answers for one CRD."""

    def __init__(self, crd: dict[str, Any]) -> None:
        self.crd = crd

    def api(self, method: str, path: str) -> dict[str, Any]:
        assert (method, path) == (
            "GET",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        )
        return self.crd


def _established(crd: dict[str, Any]) -> bool:
    return manifests._established(_Answers(crd), "widgets.example.com")  # type: ignore[arg-type]


def test_a_crd_whose_conditions_are_still_null_is_not_established_yet() -> None:
    # What a busy API server returns right after the create; this used to raise
    # TypeError: 'NoneType' object is not iterable.
    assert _established({"status": {"conditions": None}}) is False
    assert _established({"status": None}) is False
    assert _established({}) is False


def test_established_true_is_established() -> None:
    conditions = [
        {"type": "NamesAccepted", "status": "True"},
        {"type": "Established", "status": "True"},
    ]
    assert _established({"status": {"conditions": conditions}}) is True
    assert _established({"status": {"conditions": conditions[:1]}}) is False
