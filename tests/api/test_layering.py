"""What the API may import: Prefect only through its gateway (api/prefect), flows only through
its public surface, and collaboration nothing of the services (they hand it what it needs)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[2] / "api"


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module a file imports (at the top or inside functions), with its line."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)


def _modules(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "migrations" not in p.parts)


def _offending(paths: list[Path], bad: object) -> list[str]:
    return [
        f"{p.relative_to(API.parent)}:{line} imports {name}" for p in paths for line, name in _imports(p) if bad(name)
    ]  # type: ignore[operator]


def test_only_the_gateway_imports_prefect() -> None:
    outside = [p for p in _modules(API) if "prefect" not in p.relative_to(API).parts[:1]]
    assert _offending(outside, lambda name: name == "prefect" or name.startswith("prefect.")) == []


def _private_of_flows(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "flows" or len(parts) < 2:
        return False
    return parts[1] in ("runtime", "nodes", "deploy") or any(p.startswith("_") for p in parts[1:])


@pytest.mark.parametrize(
    "name, private",
    [
        ("flows", False),
        ("flows.read_steps", False),
        ("flows.settings", False),
        ("flows.runtime.steps", True),
        ("flows.nodes.trigger_webhook", True),
        ("flows.nodes._common", True),
    ],
)
def test_what_counts_as_private_to_flows(name: str, private: bool) -> None:
    assert _private_of_flows(name) is private


def test_the_api_uses_only_the_public_surface_of_flows() -> None:
    assert _offending(_modules(API), _private_of_flows) == []


def test_collaboration_imports_nothing_of_the_services() -> None:
    assert _offending(_modules(API / "collab"), lambda name: name.startswith("api.services")) == []
