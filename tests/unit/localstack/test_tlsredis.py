"""The local TLS Redis's ACL is the one docs/operations.md documents."""

from __future__ import annotations

import re
from pathlib import Path

from usersession_localstack.tlsredis import session_user_rules

OPERATIONS = Path(__file__).resolve().parents[3] / "docs" / "operations.md"


def test_the_documented_acl_is_the_one_the_tls_tier_runs_under() -> None:
    (block,) = re.findall(r"```\nACL SETUSER (.*?)```", OPERATIONS.read_text(), re.S)
    documented = block.split()
    assert documented[:2] == ["sessions-app", "on"]
    assert documented[2] == ">PASSWORD"
    assert ["on", *documented[3:]] == session_user_rules().split()
