"""Shell scripts and GitHub workflows are linted: the kind end-to-end path cannot run here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from support.tools import go_tool

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = [*sorted(REPO.glob("hack/*.sh")), REPO / ".ci" / "run"]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yaml"))


def _tool(name: str, built: bool = False) -> str:
    if built:
        return go_tool(name)
    path = shutil.which(name)
    assert path, f"{name} is missing: hack/setup.sh installs it"
    return path


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck_is_clean(script: Path) -> None:
    result = subprocess.run(
        [_tool("shellcheck"), "-x", str(script)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_workflows_pass_actionlint() -> None:
    assert WORKFLOWS, "no workflow found"
    result = subprocess.run(
        [
            _tool("actionlint", built=True),
            "-shellcheck",
            _tool("shellcheck"),
            *map(str, WORKFLOWS),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
