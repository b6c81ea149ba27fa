"""The shared example graphs (copied from the product's shared/examples: every build must run them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLES_DIR = Path(__file__).resolve().parent


def example_paths() -> list[Path]:
    """Every example graph file."""
    return sorted(EXAMPLES_DIR.glob("*.json"))


def load_example(name: str) -> dict[str, Any]:
    """The example graph ``name`` (file stem), as a fresh dict."""
    return json.loads((EXAMPLES_DIR / f"{name}.json").read_text())
