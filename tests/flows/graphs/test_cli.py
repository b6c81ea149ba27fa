"""``gorax run --local`` and its errors (the deployed path is covered by tests/api/prefect)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from api.cli import main
from blocks.redact import register_secret
from tests.flows.graphs.conftest import run
from tests.peers import PeerResponse, free_port

GRAPH = {
    "format": "gorax/graph@1",
    "name": "hello",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {}},
        {
            "id": "greet",
            "type": "data.transform",
            "name": "Greet",
            "config": {"value": {"text": "hello {{ trigger.who }} from {{ env.PLACE }}"}},
        },
    ],
    "edges": [{"source": "start", "target": "greet"}],
}


def test_run_local_prints_the_output_and_fails_naming_the_node(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "hello.json"
    path.write_text(json.dumps(GRAPH))
    code = main(["run", str(path), "--local", "--input", '{"who": "ann"}', "--var", "PLACE=berlin"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert json.loads(out) == {"text": "hello ann from berlin"}

    code = main(["run", str(path), "--local", "--input", "{}", "--var", "PLACE=berlin"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "node 'greet'" in err and "trigger has no key 'who'" in err


def test_run_refuses_bad_arguments_and_invalid_graphs(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "hello.json"
    path.write_text(json.dumps(GRAPH))
    assert main(["run", str(path), "--local", "--input", "{not json"]) == 2
    assert "--input is not JSON" in capsys.readouterr().err
    assert main(["run", str(path), "--local", "--var", "NOEQUALS"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    broken = dict(GRAPH, edges=[{"source": "start", "target": "nowhere"}])
    path.write_text(json.dumps(broken))
    assert main(["deploy", str(path)]) == 1
    assert "nowhere" in capsys.readouterr().err


FAILING = {
    "format": "gorax/graph@1",
    "name": "failing",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {}},
        {"id": "each", "type": "control.loop", "config": {"mode": "foreach", "items": "{{ trigger.items }}"}},
        {
            "id": "lookup",
            "type": "http.request",
            "parentId": "each",
            "config": {"url": "{{ env.INTEL_URL }}/{{ loop.item }}"},
            "retry": {"attempts": 1, "delay_seconds": 0},
        },
        {"id": "notify", "type": "http.request", "config": {"url": "PEER/notify"}},
    ],
    "edges": [{"source": "start", "target": "each"}, {"source": "start", "target": "notify"}],
}


def _gorax_run(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    gorax = str(Path(sys.executable).parent / "gorax")
    return subprocess.run(
        [gorax, "run", str(path), "--local", "--input", '{"items": ["x1", "x2"]}', *extra],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_a_failed_run_prints_one_line_per_failed_node_with_a_hint(tmp_path: Path, http_peer: Any) -> None:
    """It printed 66 lines of Prefect's logs and tracebacks; --verbose still shows them."""
    http_peer.route("GET", "/notify", PeerResponse(503, {"error": "down"}))
    path = tmp_path / "failing.json"
    path.write_text(json.dumps(FAILING).replace("PEER", http_peer.url))

    result = _gorax_run(path)
    assert result.returncode == 1 and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert lines[0] == "gorax run: the run failed:" and len(lines) == 3, result.stderr
    lookup = next(line for line in lines if "node 'lookup'" in line)
    assert lookup.startswith("  node 'lookup' [0, 1] failed after 2 attempts: config.url: ")
    assert "env has no key 'INTEL_URL'" in lookup
    assert lookup.endswith(
        "(hint: define the variable INTEL_URL in the run's tenant, or pass it: gorax run --var INTEL_URL=VALUE)"
    )
    notify = next(line for line in lines if "node 'notify'" in line)
    assert "answered 503" in notify and "(hint: the service failed or is busy" in notify

    verbose = _gorax_run(path, "--verbose")
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr and "node 'lookup' [0, 1] failed" in verbose.stderr


async def test_prefect_keeps_the_failure_of_a_node_without_its_traceback(http_peer: Any) -> None:
    """What ``prefect flow-run logs`` and the Prefect UI show of a run: the node's one-line error.

    With a secret registered (any earlier run that loaded a credential), the redactor rendered the
    traceback into the record before it could be dropped, and the traceback was back.
    """
    register_secret("a-secret-some-earlier-run-loaded")
    http_peer.route("GET", "/notify", PeerResponse(503, {"error": "down"}))
    graph = {
        **FAILING,
        "nodes": [FAILING["nodes"][0], FAILING["nodes"][3]],
        "edges": [{"source": "start", "target": "notify"}],
    }
    state, flow_run_id = await run(json.loads(json.dumps(graph).replace("PEER", http_peer.url)))
    assert state.is_failed()
    async with get_client() as client:
        for _ in range(100):  # logs reach the API in batches
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            errors = [log for log in logs if log.level >= 40]
            if len(errors) >= 2:  # the task's failure and the flow's
                break
            await asyncio.sleep(0.2)
    assert len(errors) >= 2 and all("notify" in log.message and "answered 503" in log.message for log in errors), [
        log.message for log in errors
    ]
    assert not [log.message for log in logs if "Traceback" in log.message]


def test_run_and_deploy_say_which_prefect_api_they_cannot_reach(tmp_path: Path) -> None:
    """Without a Prefect server they ended in an httpx traceback."""
    url = f"http://127.0.0.1:{free_port()}/api"
    path = tmp_path / "hello.json"
    path.write_text(json.dumps(GRAPH))
    gorax = str(Path(sys.executable).parent / "gorax")
    env = dict(os.environ, GORAX_PREFECT_API_URL=url, GORAX_HOME=str(tmp_path))
    for command in ("run", "deploy"):
        result = subprocess.run([gorax, command, str(path)], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1
        assert f"gorax {command}: cannot reach the Prefect API at {url}" in result.stderr
        assert "Traceback" not in result.stderr
