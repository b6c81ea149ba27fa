"""``bench/run_all.py`` writes bench/RESULTS.md as tables only, and keeps the marked sections."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_RUNS = [
    {
        "name": "overhead",
        "code": 0,
        "seconds": 12.0,
        "results": [
            {
                "bench": "overhead",
                "metric": "40 x fibo(10): per-task overhead",
                "unit": "ms",
                "samples": [3.0, 4.0, 5.0],
                "baseline": [2.0, 4.0],
                "baseline_label": "hand-written Prefect flow",
                "goal": "<= 1.15x hand-written",
                "note": "a | pipe\nand a newline",
            },
            {"bench": "overhead", "metric": "no baseline", "unit": "s", "samples": [1.5]},
        ],
        "output": ['RESULT {"raw": "json"}', "INFO some log line", '{"level": "info"}'],
    },
    {"name": "webhooks", "code": 2, "seconds": 3.0, "results": [], "output": ["Traceback (most recent call last):"]},
]

_KEPT = """## Scale (`make test-scale`)

<!-- scale:begin -->
### Scale run

| topology | figure |
|---|---|
| start-up (s) | 28.1 |
<!-- scale:end -->
"""


def test_tables_only_with_script_baseline_ratio_goal_and_the_kept_sections(tmp_path: Path) -> None:
    run_all = _run_all()
    path = tmp_path / "RESULTS.md"
    path.write_text("# old\n\nlog line that must go\n\n" + _KEPT)
    run_all.write_results(_RUNS, 1.0, path)
    text = path.read_text()
    assert "log line that must go" not in text
    assert "INFO some log line" not in text and "RESULT" not in text and "Traceback" not in text
    assert text.count("<!-- scale:begin -->") == 1 and "| start-up (s) | 28.1 |" in text
    header = "| script | figure | median | spread | baseline | baseline median | ratio | goal | note |"
    assert header in text
    rows = [line for line in text.splitlines() if line.startswith("| `bench/")]
    assert rows[0] == (
        "| `bench/overhead.py` | 40 x fibo(10): per-task overhead | 4 ms | 3–5 (n=3) | hand-written Prefect flow "
        "| 3 ms, 2–4 (n=2) | 1.33x | <= 1.15x hand-written | a \\| pipe and a newline |"
    )
    assert rows[1] == "| `bench/overhead.py` | no baseline | 1.5 s | n=1 |  |  |  |  |  |"
    # Every table line has as many cells as its header.
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if lines:
            widths = {line.replace("\\|", "").count("|") for line in lines}
            assert len(widths) == 1, block
    assert "| `bench/webhooks.py` | `bench/webhooks.py` | FAILED (exit 2) | 3 |" in text
    # A second write keeps the kept section once.
    run_all.write_results(_RUNS, 1.0, path)
    assert path.read_text().count("<!-- scale:begin -->") == 1


def test_a_partial_run_replaces_its_scripts_rows_and_keeps_the_others(tmp_path: Path) -> None:
    run_all = _run_all()
    path = tmp_path / "RESULTS.md"
    run_all.write_results(_RUNS, 1.0, path)
    again = [
        {
            "name": "webhooks",
            "command": "bench/webhooks.py --requests 500",
            "code": 0,
            "seconds": 4.0,
            "results": [{"bench": "webhooks", "metric": "intake", "unit": "req/s", "samples": [900.0]}],
            "output": [],
        }
    ]
    run_all.write_results(again, 1.0, path, partial=True)
    text = path.read_text()
    assert "| `bench/webhooks.py` | intake | 900 req/s | n=1 |" in text
    assert "| `bench/overhead.py` | 40 x fibo(10): per-task overhead | 4 ms |" in text  # kept
    assert "`bench/webhooks.py --requests 500` | ok | 4 |" in text
    assert "FAILED" not in text  # the failed earlier run of webhooks is replaced
    assert "| `bench/overhead.py` | `bench/overhead.py` | ok | 12 |" in text
    # A whole run drops what it did not produce.
    run_all.write_results(again, 1.0, path)
    assert "bench/overhead.py" not in path.read_text()
