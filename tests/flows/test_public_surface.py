"""The public surface of ``flows``: every name it lists resolves, and importing it loads no runtime."""

from __future__ import annotations

import subprocess
import sys

import flows


def test_every_public_name_resolves() -> None:
    assert sorted(flows.__all__) == sorted(flows._EXPORTS)
    for name in flows.__all__:
        assert getattr(flows, name) is not None, name


def test_importing_settings_loads_no_runtime() -> None:
    # The runtime's settings section is the one part of it every process reads.
    allowed = ("flows.runtime", "flows.runtime.settings")
    code = (
        "import sys, flows, flows.settings; "
        "print(sorted(m for m in sys.modules if m.startswith(('flows.runtime', 'flows.run_graph', 'prefect'))"
        f" and m not in {allowed!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
