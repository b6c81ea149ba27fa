"""Run every benchmark script in bench/ and write bench/RESULTS.md (what ``make bench`` does).

Each ``bench/<name>.py`` (not ``_*.py``) runs in turn in its own process. Figures printed as
``RESULT {json}`` lines (see ``bench/_harness.py``) go into one table, one row per figure:
the script that produced it, its median and spread, the baseline the script measured in the
same run and the ratio, the goal. The file holds tables only: what else a script prints goes
to this process's output, not to the file. The machine and versions head the file, because
timings mean little without them. Sections between ``<!-- name:begin -->`` and
``<!-- name:end -->`` markers, which other tools write (``make test-scale``), are kept.

Run: .venv/bin/python bench/run_all.py [name ...]   (default: every script)

A name may carry the script's arguments, quoted: ``run_all.py "overhead --shapes javascript"``.
When only some scripts run, the rows of the others stay as the file had them, and the scripts
table says when each script last ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TIMEOUT = float(os.environ.get("GORAX_BENCH_TIMEOUT", "900"))


def scripts(names: list[str]) -> list[tuple[Path, list[str]]]:
    """The benchmark scripts to run with their arguments: the named ones, or all of them."""
    found = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.name != "run_all.py")
    if not names:
        return [(p, []) for p in found]
    by_name = {p.stem: p for p in found}
    wanted = [name.split() for name in names]
    missing = [w[0] for w in wanted if w[0] not in by_name]
    if missing:
        raise SystemExit(f"no benchmark named {', '.join(missing)} (have: {', '.join(by_name)})")
    return [(by_name[w[0]], w[1:]) for w in wanted]


def run(script: Path, args: list[str] | None = None) -> dict[str, Any]:
    """Run one script; its figures, its other output, exit code and duration."""
    args = args or []
    print(f"== {script.name} {' '.join(args)}".rstrip(), flush=True)
    started = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    lines: list[str] = []
    try:
        process = subprocess.Popen(
            [sys.executable, str(script), *args],
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert process.stdout is not None
        deadline = started + TIMEOUT
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if not line.startswith("RESULT "):
                print("   " + line.rstrip("\n"), flush=True)
            if time.monotonic() > deadline:
                # SIGINT first: the script's exit handlers stop the servers and workers it started.
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                lines.append(f"(stopped after {TIMEOUT:.0f} s)")
                break
        code = process.wait()
    except OSError as exc:
        code, lines = -1, [f"could not start: {exc}"]
    results, output = [], []
    for line in lines:
        if line.startswith("RESULT "):
            try:
                results.append(json.loads(line[len("RESULT ") :]))
                continue
            except json.JSONDecodeError:
                pass
        output.append(line)
    return {
        "name": script.stem,
        "command": " ".join([f"bench/{script.name}", *args]),
        "code": code,
        "seconds": time.monotonic() - started,
        "results": results,
        "output": output,
    }


def _versions() -> list[tuple[str, str]]:
    out = [("python", platform.python_version())]
    for package in ("prefect", "fastapi", "pydantic", "sqlalchemy", "pycrdt-websocket", "cel-python"):
        try:
            out.append((package, version(package)))
        except PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True, capture_output=True, check=True
        ).stdout.strip()
        out.append(("gorax commit", commit))
    except (OSError, subprocess.CalledProcessError):
        pass
    return out


def _machine(load_before: float) -> list[tuple[str, str]]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown"
    return [
        ("system", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("cpu", f"{cpu}, {os.cpu_count()} logical CPUs"),
        ("memory", memory),
        (
            "load average",
            f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
            "(other processes share the machine: compare against the baselines)",
        ),
    ]


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _cell(text: Any) -> str:
    """A table cell: one line, no column separator."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _spread(values: list[float]) -> str:
    return f"{_fmt(min(values))}–{_fmt(max(values))} (n={len(values)})" if len(values) > 1 else "n=1"


#: The figures table's columns.
HEADER = "| script | figure | median | spread | baseline | baseline median | ratio | goal | note |"


def _row(script: str, result: dict[str, Any]) -> str:
    samples = [float(v) for v in result["samples"]]
    median = statistics.median(samples)
    unit = result["unit"]
    baseline = [float(v) for v in result.get("baseline") or []]
    base_median = statistics.median(baseline) if baseline else None
    ratio = f"{median / base_median:.2f}x" if base_median else ""
    base = f"{_fmt(base_median)} {unit}, {_spread(baseline)}" if base_median is not None else ""
    cells = [
        f"`bench/{script}.py`",
        result["metric"],
        f"{_fmt(median)} {unit}",
        _spread(samples),
        result.get("baseline_label", "") if baseline else "",
        base,
        ratio,
        result.get("goal", ""),
        result.get("note", ""),
    ]
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


#: A marked section of RESULTS.md written by another tool, kept as it is.
_KEPT = re.compile(r"## [^\n]*\n\n<!-- (\w+):begin -->\n.*?<!-- \1:end -->\n?", re.S)


#: The scripts table's columns.
SCRIPTS_HEADER = "| script | command | status | seconds | run at |"


def _earlier(text: str, header: str, ran: set[str]) -> list[str]:
    """Rows of the table under ``header`` in ``text`` whose script did not run this time."""
    lines = text.splitlines()
    if header not in lines:
        return []
    rows = []
    for line in lines[lines.index(header) + 2 :]:
        if not line.startswith("|"):
            break
        script = line.split("|")[1].strip()
        if script not in ran:
            rows.append(line)
    return rows


def write_results(runs: list[dict[str, Any]], load_before: float, path: Path, partial: bool = False) -> None:
    """bench/RESULTS.md: machine, versions, the figures table, the scripts table.

    ``partial``: only some scripts ran; the other scripts' rows are kept from ``path``.
    """
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    previous = path.read_text() if path.exists() else ""
    ran = {f"`bench/{run_['name']}.py`" for run_ in runs}
    lines = [f"# Benchmark results ({when})", "", "Written by `make bench` (bench/run_all.py).", ""]
    lines += ["## Machine", ""] + [f"- {k}: {v}" for k, v in _machine(load_before)] + [""]
    lines += ["## Versions", ""] + [f"- {k}: {v}" for k, v in _versions()] + [""]
    lines += [
        "## Figures",
        "",
        "Median and spread (min–max, samples) of each figure; the baseline was measured by the same",
        "script in the same run; ratio = median / baseline median.",
        *(["Machine and load above are this run's; each script's run is in the scripts table."] if partial else []),
        "",
        HEADER,
        "|" + "---|" * HEADER.count(" | ") + "---|",
    ]
    rows = [_row(run_["name"], result) for run_ in runs for result in run_["results"]]
    if partial:
        rows += _earlier(previous, HEADER, ran)
    lines += sorted(rows, key=lambda row: row.split("|")[1])  # stable: each script's order kept
    lines += ["", "## Scripts", "", SCRIPTS_HEADER, "|" + "---|" * SCRIPTS_HEADER.count(" | ") + "---|"]
    scripts_rows = []
    for run_ in runs:
        status = "ok" if run_["code"] == 0 else f"FAILED (exit {run_['code']})"
        command = run_.get("command", f"bench/{run_['name']}.py")
        scripts_rows.append(f"| `bench/{run_['name']}.py` | `{command}` | {status} | {run_['seconds']:.0f} | {when} |")
    if partial:
        scripts_rows += _earlier(previous, SCRIPTS_HEADER, ran)
    lines += sorted(scripts_rows, key=lambda row: row.split("|")[1]) + [""]
    # Sections other tools keep here (`make test-scale`'s figures) survive a rewrite.
    kept = [match.group(0) for match in _KEPT.finditer(previous)]
    path.write_text("\n".join(lines) + "".join(f"\n{section}" for section in kept))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (file names without .py)")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    runs = [run(script, script_args) for script, script_args in scripts(args.names)]
    write_results(runs, load_before, args.output, partial=bool(args.names))
    print(f"wrote {args.output}", flush=True)
    return 0 if all(r["code"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
