from __future__ import annotations

import re

from usersession_operator.session.names import (
    MANAGED_BY_SELECTOR,
    MAX_CHILD_NAME,
    child_name,
    labels,
    selector_labels,
)

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_short_names_are_kept() -> None:
    assert child_name("alice") == "alice"
    assert child_name("a" * MAX_CHILD_NAME) == "a" * MAX_CHILD_NAME


def test_longest_allowed_name_is_shortened_to_a_valid_label() -> None:
    name = "x" * 253
    short = child_name(name)
    assert len(short) <= MAX_CHILD_NAME
    assert DNS1123_LABEL.match(short)
    assert LABEL_VALUE.match(short)
    assert short.startswith("x" * 40)


def test_first_name_over_the_limit_is_shortened() -> None:
    assert len(child_name("a" * (MAX_CHILD_NAME + 1))) <= MAX_CHILD_NAME
    assert child_name("a" * (MAX_CHILD_NAME + 1)) != "a" * MAX_CHILD_NAME


def test_cut_on_a_separator_still_gives_a_valid_name() -> None:
    # Characters 42 and 43 are separators, so a plain cut would end in ".-".
    name = "a" * 41 + ".-" + "b" * 60
    short = child_name(name)
    assert DNS1123_SUBDOMAIN.match(short), short
    assert LABEL_VALUE.match(short), short
    assert not short.startswith("a" * 41 + ".")


def test_dotted_long_name_is_a_valid_subdomain_and_label_value() -> None:
    name = ".".join(["segment"] * 30)
    short = child_name(name)
    assert len(short) <= MAX_CHILD_NAME
    assert DNS1123_SUBDOMAIN.match(short)
    assert LABEL_VALUE.match(short)


def test_names_sharing_the_kept_prefix_stay_distinct() -> None:
    prefix = "user-session-for-a-very-long-tenant-name-xyz"  # 44 characters
    first, second = child_name(prefix + "-" + "1" * 20), child_name(prefix + "-" + "2" * 20)
    assert first[:43] == second[:43]
    assert first != second


def test_shortening_is_deterministic() -> None:
    name = "n" * 100
    assert child_name(name) == child_name(name)
    # Pinned: a change here would orphan every existing long-named session's children.
    assert child_name(name) == "n" * 43 + "-" + "4e9d8231"


def test_labels_use_the_child_name_and_component() -> None:
    name = "s" * 200
    result = labels(name, "scaler")
    assert result == {
        "app.kubernetes.io/name": "usersession",
        "app.kubernetes.io/instance": child_name(name),
        "app.kubernetes.io/managed-by": "usersession-operator",
        "app.kubernetes.io/component": "scaler",
    }
    assert all(len(v) <= 63 and LABEL_VALUE.match(v) for v in result.values())


def test_selector_is_a_stable_subset_of_the_pod_labels() -> None:
    selector = selector_labels("alice")
    assert selector == {
        "app.kubernetes.io/name": "usersession",
        "app.kubernetes.io/instance": "alice",
    }
    assert selector.items() <= labels("alice", "session-worker").items()


def test_managed_by_selector_matches_every_child() -> None:
    for component in ("session-worker", "scaler", "trigger-auth"):
        assert MANAGED_BY_SELECTOR.items() <= labels("alice", component).items()
