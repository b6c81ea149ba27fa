"""Fixtures for importer tests: the real n8n workflow files under tests/fixtures/n8n."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

N8N_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "n8n"


def n8n_file(name: str) -> dict[str, Any]:
    """One of n8n's own workflow files (see tests/fixtures/n8n/SOURCES.md)."""
    return json.loads((N8N_FIXTURES / name).read_text(encoding="utf-8"))
