"""The editor's pure logic (graph <-> Yjs, CEL checker, layout, handles) under vitest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"


def test_vitest_suite_passes() -> None:
    if not (WEB / "node_modules" / ".bin" / "vitest").exists():
        pytest.fail("web/node_modules is missing: run `make web` (npm ci) first")
    npm = shutil.which("npm")
    assert npm, "npm is required to run the editor's unit tests"
    result = subprocess.run([npm, "test", "--silent"], cwd=WEB, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert " passed" in output and "failed" not in output.replace("0 failed", ""), output[-2000:]
