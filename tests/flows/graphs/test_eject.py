"""Every shared example, ejected, runs with Prefect alone and gives the graph's outputs.

The same graph runs twice against the same loopback peers: through Gorax (``run_graph``), and as
the ejected flow file in a subprocess that talks to the session's Prefect server and may import
nothing of Gorax (an import hook refuses ``api``, ``blocks``, ``flows``, ``translator``, ``tests``:
only what the eject wrote beside the file). The approval graph pauses in both; the test resumes
each paused run through Prefect's API.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateName,
)
from prefect_slack import SlackCredentials

from blocks.service import create_credential
from flows.settings import get_settings
from tests.flows.graphs.conftest import example, run
from tests.flows.integrations.peers import SlackPeer
from tests.peers import HttpPeer, PeerResponse
from translator.eject import eject_graph

RUNNER = """
import json, runpy, sys

GORAX = {"api", "blocks", "flows", "translator", "tests"}


class NoGorax:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in GORAX:
            raise ImportError(f"{name} is part of Gorax: an ejected flow runs without it")
        return None


sys.meta_path.insert(0, NoGorax())
sys.path.insert(0, sys.argv[1])
module = runpy.run_path(sys.argv[2])
result = module[sys.argv[3]](json.loads(sys.argv[4]), json.loads(sys.argv[5]))
print("RESULT " + json.dumps(result))
"""


@pytest.fixture
def slack_peer() -> Any:
    peer = SlackPeer().start()
    yield peer
    peer.stop()


def _eject(name: str, directory: Path) -> tuple[Path, str]:
    ejected = eject_graph(example(name))
    (directory / ejected.helper_filename).write_text(ejected.helper_source)
    (directory / ejected.filename).write_text(ejected.source)
    (directory / "runner.py").write_text(RUNNER)
    return directory / ejected.filename, ejected.filename.removesuffix(".py")


async def _start_ejected(
    name: str, directory: Path, trigger: Any, env: dict[str, Any] | None = None, **environment: str
) -> asyncio.subprocess.Process:
    path, flow = _eject(name, directory)
    child = {k: v for k, v in os.environ.items() if not k.startswith(("GORAX_", "PYTHONPATH"))}
    child.update(environment)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(directory / "runner.py"),
        str(directory),
        str(path),
        flow,
        json.dumps(trigger),
        json.dumps(env or {}),
        cwd=str(directory),
        env=child,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _result(process: asyncio.subprocess.Process, timeout: float = 240) -> Any:
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    lines = [line for line in stdout.decode().splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, f"the ejected flow failed:\n{stderr.decode()[-4000:]}"
    return json.loads(lines[-1].removeprefix("RESULT "))


async def _ejected(name: str, directory: Path, trigger: Any, env: dict[str, Any] | None = None, **envs: str) -> Any:
    return await _result(await _start_ejected(name, directory, trigger, env, **envs))


async def _gorax(graph: dict[str, Any], **parameters: Any) -> Any:
    state, _ = await run(graph, **parameters)
    assert state.is_completed(), state.message
    return await state.result()


async def test_loop_over_items(http_peer: HttpPeer, tmp_path: Path) -> None:
    scores = {"a": 10, "b": 90, "c": 75, "d": 1, "e": 99}
    for indicator, score in scores.items():
        http_peer.route("GET", f"/indicators/{indicator}", PeerResponse(200, {"score": score}))
    trigger, env = {"indicators": list(scores)}, {"INTEL_URL": http_peer.url}
    gorax = await _gorax(example("loop-over-items"), trigger=trigger, env=env)
    ejected = await _ejected("loop-over-items", tmp_path, trigger, env)
    assert ejected == gorax == {"malicious": ["b", "c", "e"]}
    assert len(http_peer.received("GET")) == 10  # five lookups each


async def test_fan_out_join(http_peer: HttpPeer, tmp_path: Path) -> None:
    http_peer.route("GET", "/db/health", PeerResponse(503, {"down": True}))
    env = {"API_URL": f"{http_peer.url}/api", "DB_URL": f"{http_peer.url}/db", "QUEUE_URL": f"{http_peer.url}/queue"}
    gorax = await _gorax(example("fan-out-join"), env=env, trigger_node="start")
    ejected = await _ejected("fan-out-join", tmp_path, None, env)
    assert ejected == gorax == {"healthy": 2}  # the failed db check continued as an error output


@pytest.mark.timeout(600)
async def test_deployment_notifier(
    http_peer: HttpPeer, slack_peer: SlackPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_peer.route("POST", "/incidents", PeerResponse(201, {"id": "inc-1"}))
    tenant_id, slug = str(uuid.uuid4()), f"ej{uuid.uuid4().hex[:8]}"
    await create_credential(
        "team_slack", "slack-credentials", {"token": SlackPeer.TOKEN}, tenant_id=tenant_id, tenant_slug=slug
    )
    await create_credential("pager", "github-token", {"token": "pager-token"}, tenant_id=tenant_id, tenant_slug=slug)
    await create_credential(
        "github_webhook", "webhook-secret", {"secrets": ["hook-secret"]}, tenant_id=tenant_id, tenant_slug=slug
    )
    monkeypatch.setenv("GORAX_SLACK_API_URL", f"{slack_peer.url}/api/")
    get_settings.cache_clear()
    # What the ejected file's header asks for: plain Blocks holding the same values.
    await SlackCredentials(token=SlackPeer.TOKEN).save("team-slack", overwrite=True)
    await Secret(value={"token": "pager-token"}).save("pager", overwrite=True)

    env = {"PAGER_URL": http_peer.url}
    for status, announced in (("success", True), ("failure", False)):
        body = {"repo": "acme/api", "sha": "abc123", "environment": "production", "status": status}
        gorax = await _gorax(
            example("deployment-notifier"), trigger={"body": body}, env=env, trigger_node="hook", tenant=tenant_id
        )
        directory = tmp_path / status
        directory.mkdir()
        ejected = await _ejected(
            "deployment-notifier", directory, {"body": body}, env, SLACK_API_URL=f"{slack_peer.url}/api/"
        )
        assert ejected == gorax == {"status": status, "announced": announced}
    assert [m["text"] for m in slack_peer.messages] == ["acme/api abc123 is live on production"] * 2
    incidents = http_peer.received("POST", "/incidents")
    assert [r.headers["authorization"] for r in incidents] == ["Token pager-token"] * 2
    assert incidents[0].json() == incidents[1].json() == {"title": "Deploy of acme/api failed", "urgency": "high"}

    # A delivery the webhook's filter refuses starts no run in Gorax; the ejected flow returns at once.
    staging = {"body": {"repo": "acme/api", "sha": "d", "environment": "dev", "status": "success"}}
    (tmp_path / "dev").mkdir()
    assert await _ejected("deployment-notifier", tmp_path / "dev", staging, env) is None
    assert len(slack_peer.messages) == 2


async def _paused_run(*, flow: str | None = None, run_name: str | None = None, timeout: float = 120) -> Any:
    """The paused flow run of the flow ``flow`` or with the name ``run_name``."""
    deadline = asyncio.get_running_loop().time() + timeout
    paused = FlowRunFilterState(name=FlowRunFilterStateName(any_=["Paused"]))
    async with get_client() as client:
        while True:
            runs = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow])) if flow else None,
                flow_run_filter=FlowRunFilter(
                    state=paused, name=FlowRunFilterName(any_=[run_name]) if run_name else None
                ),
            )
            if runs:
                return runs[0]
            assert asyncio.get_running_loop().time() < deadline, f"no paused run of {flow or run_name}"
            await asyncio.sleep(0.5)


async def _resume(flow_run_id: Any, run_input: dict[str, Any]) -> None:
    async with get_client() as client:
        for _ in range(40):  # the input's schema is stored a moment after the pause
            result = await client.resume_flow_run(flow_run_id, run_input=run_input)
            if result.status.value == "ACCEPT":
                return
            await asyncio.sleep(0.5)
        raise AssertionError(f"resuming {flow_run_id}: {result.details}")


@pytest.mark.timeout(600)
async def test_access_approval(http_peer: HttpPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    http_peer.route("POST", "/api/v1/internal/human-tasks", PeerResponse(201, {"id": "task-1"}))
    http_peer.route("POST", "/grants", PeerResponse(201, {"granted": True}))
    monkeypatch.setenv("GORAX_API_URL", http_peer.url)
    monkeypatch.setenv("GORAX_WORKER_TOKEN", "gxw_eject-test-token")
    get_settings.cache_clear()
    graph = example("access-approval")
    graph["name"] = f"access-approval-{uuid.uuid4().hex[:6]}"  # its paused run is found by this name
    trigger, env = {"user": "ada", "system": "billing"}, {"IAM_URL": http_peer.url}

    gorax_run = asyncio.create_task(run(graph, trigger=trigger, env=env))
    paused = await _paused_run(run_name=graph["name"])
    decided = {"decided_by": "boss@example.com", "decided_at": "2026-01-01T00:00:00Z", "comment": "ok"}
    await _resume(paused.id, {"value": "approved", **decided})
    state, _ = await asyncio.wait_for(gorax_run, 240)
    assert state.is_completed(), state.message
    gorax = await state.result()

    process = await _start_ejected("access-approval", tmp_path, trigger, env)
    ejected_paused = await _paused_run(flow="access-approval")
    await _resume(ejected_paused.id, {"decision": "approved", "decided_by": "boss@example.com", "comment": "ok"})
    ejected = await _result(process)
    assert ejected == gorax == {"decision": "approved"}
    grants = http_peer.received("POST", "/grants")
    assert [g.json() for g in grants] == [{"user": "ada", "system": "billing", "approved_by": "boss@example.com"}] * 2
    async with get_client() as client:
        [done] = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[ejected_paused.id]))
        )
        assert done.state is not None and done.state.is_completed()


MAIL_REPORT: dict[str, Any] = {
    "format": "gorax/graph@1",
    "name": "mail-report",
    "nodes": [
        {"id": "go", "type": "trigger.manual", "config": {}},
        {
            "id": "sum",
            "type": "code.javascript",
            "config": {"code": "return input.reduce((a, b) => a + b, 0);", "input": "{{ trigger.numbers }}"},
        },
        {"id": "size", "type": "control.switch", "config": {"cases": {"big": "steps.sum > 10", "small": "true"}}},
        {"id": "count", "type": "control.loop", "config": {"mode": "while", "condition": "loop.index < 3"}},
        {"id": "tick", "type": "data.transform", "parentId": "count", "config": {"value": "{{ loop.index * 2 }}"}},
        {
            "id": "mail",
            "type": "email.send",
            "config": {
                "credential": "ops_mailer",
                "to": ["ops@example.com"],
                "subject": "Sum {{ steps.sum }}",
                "text": "Ticks: {{ steps.count }}",
            },
        },
        {"id": "quiet", "type": "data.transform", "config": {"value": "small"}},
        {
            "id": "done",
            "type": "control.output",
            "config": {
                "value": {
                    "sum": "{{ steps.sum }}",
                    "case": "{{ steps.size.case }}",
                    "ticks": "{{ has(steps.count) ? steps.count : [] }}",
                    "accepted": "{{ has(steps.mail) ? steps.mail.accepted : [] }}",
                }
            },
        },
    ],
    "edges": [
        {"source": "go", "target": "sum"},
        {"source": "sum", "target": "size"},
        {"source": "size", "sourceHandle": "big", "target": "count"},
        {"source": "size", "sourceHandle": "small", "target": "quiet"},
        {"source": "count", "target": "mail"},
        {"source": "mail", "target": "done"},
        {"source": "quiet", "target": "done"},
    ],
}


@pytest.mark.timeout(600)
async def test_javascript_switch_while_loop_and_email(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.flows.integrations.smtp_peer import SmtpPeer  # noqa: PLC0415  (its certificate tooling)

    smtp = SmtpPeer(tmp_path).start()
    try:
        server = {
            "host": "127.0.0.1",
            "port": smtp.port,
            "security": "starttls",
            "username": SmtpPeer.USER,
            "password": SmtpPeer.PASSWORD,
            "from_address": "gorax@example.com",
        }
        tenant_id, slug = str(uuid.uuid4()), f"ej{uuid.uuid4().hex[:8]}"
        await create_credential("ops_mailer", "smtp-server", server, tenant_id=tenant_id, tenant_slug=slug)
        await Secret(value=server).save("ops-mailer", overwrite=True)
        monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cert))  # both clients verify the test CA
        results = {}
        for numbers in ([4, 5, 6], [1, 2]):
            gorax = await _gorax(MAIL_REPORT, trigger={"numbers": numbers}, tenant=tenant_id)
            directory = tmp_path / f"run{len(numbers)}"
            directory.mkdir()
            ejected_file = eject_graph(MAIL_REPORT)
            (directory / ejected_file.helper_filename).write_text(ejected_file.helper_source)
            (directory / ejected_file.filename).write_text(ejected_file.source)
            (directory / "runner.py").write_text(RUNNER)
            child = {k: v for k, v in os.environ.items() if not k.startswith(("GORAX_", "PYTHONPATH"))}
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(directory / "runner.py"),
                str(directory),
                str(directory / ejected_file.filename),
                "mail_report",
                json.dumps({"numbers": numbers}),
                "{}",
                cwd=str(directory),
                env=child,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            ejected = await _result(process)
            assert ejected == gorax, (ejected, gorax)
            results[sum(numbers)] = ejected
        assert results[15] == {"sum": 15, "case": "big", "ticks": [0, 2, 4], "accepted": ["ops@example.com"]}
        assert results[3] == {"sum": 3, "case": "small", "ticks": [], "accepted": []}  # no loop, no mail
        mails = [m["message"] for m in smtp.messages]
        assert [m["Subject"] for m in mails] == ["Sum 15", "Sum 15"]  # once through Gorax, once ejected
        assert all(m.get_content().strip() == "Ticks: [0, 2, 4]" and msg["tls"] for m, msg in zip(mails, smtp.messages))
    finally:
        smtp.stop()
