from __future__ import annotations

import os
from pathlib import Path

import pytest

from usersession_operator.sessionapi.auth import Authenticator, Principal, TokenConfigError
from usersession_operator.sessionapi.errors import ApiError

ALICE = "alice-0123456789abcdef"
ADMIN = "admin-0123456789abcdef"
YAML = f"{ALICE}: {{user: alice@example.com}}\n{ADMIN}: {{admin: true}}\n"
JSON = f'{{"{ALICE}": {{"user": "alice@example.com"}}, "{ADMIN}": {{"admin": true}}}}'


@pytest.mark.parametrize("source", [YAML, JSON])
def test_tokens_map_to_users_or_admin(source: str) -> None:
    auth = Authenticator(tokens=source)
    assert auth.authenticate(f"Bearer {ALICE}") == Principal(user="alice@example.com")
    assert auth.authenticate(f"bearer {ADMIN}") == Principal(user=None, admin=True)


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", f"Basic {ALICE}", ALICE, f"Bearer {ALICE}x", "Bearer x"],
)
def test_missing_or_wrong_tokens_are_401(header: str | None) -> None:
    with pytest.raises(ApiError) as caught:
        Authenticator(tokens=YAML).authenticate(header)
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"


def test_a_user_may_access_only_its_own_sessions() -> None:
    alice = Principal(user="alice@example.com")
    assert alice.may_access("alice@example.com")
    assert not alice.may_access("bob@example.com")
    assert not alice.may_access("")
    assert Principal(user=None, admin=True).may_access("bob@example.com")


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("[a, b]", "must map"),
        ("short: {user: alice}", "at least 16"),
        (f"{ALICE}: alice", "expected"),
        (f"{ALICE}: {{user: ''}}", "expected"),
        (f"{ALICE}: {{admin: 'yes'}}", "expected"),
        (f"{ALICE}: {{user: alice, admin: true}}", "expected"),
        ("{unclosed", "neither JSON nor YAML"),
    ],
)
def test_malformed_sources_are_refused_without_echoing_tokens(source: str, problem: str) -> None:
    with pytest.raises(TokenConfigError, match=problem) as caught:
        Authenticator(tokens=source)
    assert ALICE not in str(caught.value)


def test_no_source_at_all_is_refused() -> None:
    with pytest.raises(TokenConfigError):
        Authenticator()


def test_a_rotated_file_is_picked_up_and_a_broken_one_keeps_the_last_good_set(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(YAML)
    auth = Authenticator(tokens_file=str(path))
    assert auth.authenticate(f"Bearer {ALICE}").user == "alice@example.com"

    rotated = "bob-0123456789abcdefgh"
    path.write_text(f"{rotated}: {{user: bob@example.com}}\n")
    os.utime(path, (1, 1))  # a new mtime even within the filesystem's resolution
    assert auth.authenticate(f"Bearer {rotated}").user == "bob@example.com"
    with pytest.raises(ApiError):
        auth.authenticate(f"Bearer {ALICE}")

    path.write_text("{half written")
    os.utime(path, (2, 2))
    assert auth.authenticate(f"Bearer {rotated}").user == "bob@example.com"
