"""Shared pytest wiring: everything under tests/integration gets the integration marker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


ARGOCD_HEALTH = Path(__file__).parents[1] / "argocd" / "usersession-health.lua"


@pytest.fixture(scope="session")
def argocd_health() -> Callable[[Mapping[str, Any]], tuple[str, str]]:
    """Run the shipped Argo CD health check on an object, in Lua 5.1 like Argo CD's gopher-lua."""
    from lupa.lua51 import LuaRuntime

    script = ARGOCD_HEALTH.read_text()

    def health(obj: Mapping[str, Any]) -> tuple[str, str]:
        lua = LuaRuntime(unpack_returned_tuples=True)
        lua.globals().obj = lua.table_from(obj, recursive=True)
        result = lua.execute(script)
        return str(result["status"]), str(result["message"])

    return health
