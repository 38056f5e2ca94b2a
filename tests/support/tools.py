"""The pinned Go-built tools (helm, crane, actionlint): each hack/build-<name>.sh
builds its tool once per version into the cache and prints its path."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # tests/support/tools.py -> repo


def go_tool(name: str) -> str:
    """The path of the pinned `name`, built first if the cache lacks it."""
    result = subprocess.run(
        ["bash", str(REPO / "hack" / f"build-{name}.sh")],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip().splitlines()[-1]
