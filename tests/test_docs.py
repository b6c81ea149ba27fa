"""The docs a newcomer reads hold together: the README stays short, every relative link and anchor
in README.md and docs/ resolves inside the repository, nothing points outside it, snippets that
name their source file are copied from it, and the README's example graph is valid."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from translator import validate_graph

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 150

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_OUTSIDE = re.compile(r"\.\./shared|(?<![\w.~-])/work/|(?<![\w./-])shared/[\w.-]+\.md")
_JSON_BLOCK = re.compile(r"^```json\n(.*?)^```", re.M | re.S)
_SNIPPET = re.compile(r"^```(?:python|toml)\n# (\S+)\n(.*?)^```", re.M | re.S)


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def _prose(text: str) -> str:
    """The text without fenced blocks and inline code, where brackets are not links."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def anchor_of(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercased, punctuation dropped, spaces to hyphens."""
    text = _INLINE_CODE.sub(lambda m: m.group(0)[1:-1], heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {anchor_of(h) for h in _HEADING.findall(_FENCE.sub("", path.read_text()))}


def broken_links(root: Path = ROOT) -> list[str]:
    """``file: target (why)`` for every relative link that does not resolve inside ``root``."""
    problems = []
    for doc in doc_files(root):
        for target in _LINK.findall(_prose(doc.read_text())):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            where = f"{doc.relative_to(root)}: {target}"
            path_part, _, fragment = target.partition("#")
            resolved = (doc.parent / path_part).resolve() if path_part else doc
            if root.resolve() not in resolved.parents and resolved != root.resolve():
                problems.append(f"{where} (outside the repository)")
            elif not resolved.exists():
                problems.append(f"{where} (no such file)")
            elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
                problems.append(f"{where} (no heading with that anchor)")
    return problems


def outside_references(root: Path = ROOT) -> list[str]:
    """``file:line: text`` for every mention of a path outside the repository."""
    found = []
    for doc in doc_files(root):
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            if _OUTSIDE.search(line):
                found.append(f"{doc.relative_to(root)}:{number}: {line.strip()}")
    return found


def stale_snippets(root: Path = ROOT) -> list[str]:
    """Snippets whose first line names a source file (``# flows/nodes/x.py``) but that are not
    an exact excerpt of it."""
    stale = []
    for doc in doc_files(root):
        for source, body in _SNIPPET.findall(doc.read_text()):
            path = root / source
            if not path.is_file():
                stale.append(f"{doc.relative_to(root)}: {source} does not exist")
            elif body.rstrip("\n") not in path.read_text():
                stale.append(f"{doc.relative_to(root)}: the snippet from {source} is not in it any more")
    return stale


def test_readme_is_the_first_fifteen_minutes() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines; move reference text to docs/"


def test_relative_links_resolve() -> None:
    assert broken_links() == []


def test_docs_reference_nothing_outside_the_repository() -> None:
    assert outside_references() == []


def test_snippets_match_their_source() -> None:
    snippets = [m for doc in doc_files() for m in _SNIPPET.findall(doc.read_text())]
    assert len(snippets) >= 5, "docs/nodes.md lost the snippets it copies from the code"
    assert stale_snippets() == []


def test_the_readme_example_graph_is_valid() -> None:
    document = json.loads((ROOT / "docs" / "examples" / "hello.json").read_text())
    assert validate_graph(document) == []


def test_graphs_shown_in_the_docs_are_valid() -> None:
    # The plugin's types (docs/nodes.md) are there: `make test` installs tests/plugin.
    graphs = [
        (doc.relative_to(ROOT), json.loads(block))
        for doc in doc_files()
        for block in _JSON_BLOCK.findall(doc.read_text())
        if '"gorax/graph@1"' in block
    ]
    assert len(graphs) >= 2
    assert [(doc, validate_graph(graph)) for doc, graph in graphs if validate_graph(graph)] == []


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## What `make up` gives you\n")
    (tmp_path / "src.py").write_text("def f() -> int:\n    return 1\n")
    return tmp_path


def test_the_checks_find_what_is_wrong(tree: Path) -> None:
    (tree / "README.md").write_text(
        "[ok](docs/a.md#what-make-up-gives-you) [gone](docs/b.md) [anchor](docs/a.md#nope)\n"
        "[out](../elsewhere.md) `[not a link](x.md)` [web](https://example.org/x)\n"
        "see /work/shared/DESIGN.md and ../shared/STYLE.md; /workflows/{id} is a route\n"
        "format: shared/GRAPH_FORMAT.md\n"
        "```python\n# src.py\ndef f() -> int:\n    return 2\n```\n"
        "```python\n# src.py\n    return 1\n```\n"
    )
    assert broken_links(tree) == [
        "README.md: docs/b.md (no such file)",
        "README.md: docs/a.md#nope (no heading with that anchor)",
        "README.md: ../elsewhere.md (outside the repository)",
    ]
    assert outside_references(tree) == [
        "README.md:3: see /work/shared/DESIGN.md and ../shared/STYLE.md; /workflows/{id} is a route",
        "README.md:4: format: shared/GRAPH_FORMAT.md",
    ]
    assert stale_snippets(tree) == ["README.md: the snippet from src.py is not in it any more"]
