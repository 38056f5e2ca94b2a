"""The README and docs/ hold together: links resolve, every alert has its runbook, the
README stays short, and the architecture diagram is what its Graphviz source draws.

Links and headings are parsed here with a few regular expressions (no Markdown
library): `[text](target)` and `![alt](target)` outside code spans and fenced code
blocks, and anchors made the way GitHub makes them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from support.monitoring import alerts

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
RUNBOOKS = DOCS / "runbooks.md"
DIAGRAM_SOURCE = DOCS / "architecture.dot"
DIAGRAM = DOCS / "architecture.svg"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 250

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
# A run of backticks, then anything up to a run of the same length.
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
# [text](target) or ![alt](target), with an optional "title"; text may span lines.
LINK = re.compile(r"(!?)\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = ("http://", "https://", "mailto:")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str
    image: bool


def prose(text: str) -> str:
    """The text with fenced code blocks blanked (line numbers kept) and code spans removed."""
    lines, fence = [], ""
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = ""
            lines.append("")
        elif opening:
            fence = opening.group(1)
            lines.append("")
        else:
            lines.append(line)
    # A code span keeps its newlines, so links after it keep their line numbers.
    return CODE_SPAN.sub(lambda m: "\n" * m.group(0).count("\n"), "\n".join(lines))


def links(page: Path) -> list[Link]:
    text = prose(page.read_text())
    return [
        Link(page, text.count("\n", 0, match.start()) + 1, match.group(3), bool(match.group(1)))
        for match in LINK.finditer(text)
    ]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped,
    spaces to dashes (code spans and links count by their text)."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = LINK.sub(lambda m: m.group(2), text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors_of(text: str) -> list[str]:
    """Every heading's anchor, in order; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = []
    for line in prose(text).splitlines():
        heading = HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.append(base if count == 0 else f"{base}-{count}")
    return found


def anchors(page: Path) -> set[str]:
    return set(anchors_of(page.read_text()))


def broken(link: Link) -> str | None:
    """Why a relative link does not resolve, or None when it does."""
    path, _, fragment = link.target.partition("#")
    target = (link.source.parent / unquote(path)).resolve() if path else link.source
    where = f"{link.source.relative_to(REPO)}:{link.line}: {link.target}"
    if not target.exists():
        return f"{where}: no such file"
    if fragment and target.suffix == ".md" and unquote(fragment) not in anchors(target):
        return f"{where}: {target.relative_to(REPO)} has no heading with that anchor"
    if fragment and target.suffix != ".md":
        return f"{where}: an anchor into a file that is not Markdown"
    return None


def test_slug_follows_githubs_rules() -> None:
    assert slug("UserSessionOperatorDown") == "usersessionoperatordown"
    assert slug("High availability: two replicas, one Lease") == (
        "high-availability-two-replicas-one-lease"
    )
    assert (
        slug("Try it: a session that sleeps and wakes") == "try-it-a-session-that-sleeps-and-wakes"
    )
    assert slug("Level-based, and kopf's bookkeeping in memory") == (
        "level-based-and-kopfs-bookkeeping-in-memory"
    )
    assert slug("The `kube/` gate, [linked](x.md)") == "the-kube-gate-linked"
    assert slug("snake_case stays") == "snake_case-stays"


def test_repeated_headings_are_numbered_and_code_is_not_a_heading() -> None:
    text = "# Notes\n\n## Notes\n\n```sh\n# not a heading\n```\n\n## Notes\n"
    assert anchors_of(text) == ["notes", "notes-1", "notes-2"]


def test_links_outside_code_are_found_with_their_lines(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "See [a](a.md#x) and `[not](code.md)`.\n"
        "```\n[not](fenced.md)\n```\n"
        "![pic](p.svg) [two\nlines](b.md)\n"
    )
    found = [(link.line, link.target, link.image) for link in links(page)]
    assert found == [(1, "a.md#x", False), (5, "p.svg", True), (5, "b.md", False)]


def test_readme_is_at_most_250_lines() -> None:
    count = len(README.read_text().splitlines())
    assert count <= README_MAX_LINES, f"README.md has {count} lines; move detail to docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    relative = [link for link in links(page) if not link.target.startswith(EXTERNAL)]
    problems = [problem for link in relative if (problem := broken(link))]
    assert not problems, "\n".join(problems)


def test_readme_links_every_docs_page_and_shows_the_diagram() -> None:
    targets = {
        (README.parent / link.target.partition("#")[0]).resolve()
        for link in links(README)
        if not link.target.startswith(EXTERNAL)
    }
    missing = [p.relative_to(REPO) for p in sorted(DOCS.glob("*.md")) if p not in targets]
    assert not missing, f"README.md links to no {missing}"
    assert any(link.image and link.target == "docs/architecture.svg" for link in links(README))


def test_every_alert_has_its_runbook_section() -> None:
    headings = anchors_of(RUNBOOKS.read_text())
    assert alerts()
    for name, rule in alerts().items():
        url = urlsplit(rule["annotations"]["runbook_url"])
        assert url.path.endswith("/docs/runbooks.md"), (name, url.geturl())
        assert url.fragment == name.lower(), (name, url.geturl())
        assert headings.count(url.fragment) == 1, f"docs/runbooks.md needs one {name} heading"


def test_architecture_svg_is_what_dot_draws() -> None:
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz's dot is not installed (hack/setup.sh installs Debian's graphviz)")
    drawn = subprocess.run(
        [dot, "-Tsvg", str(DIAGRAM_SOURCE.relative_to(REPO))],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    assert drawn == DIAGRAM.read_bytes(), "docs/architecture.svg is stale: run hack/gen-diagram.sh"
