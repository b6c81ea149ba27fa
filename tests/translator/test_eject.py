"""Eject: every shared example becomes a formatted, lint-clean Prefect flow file of the expected
shape; a node type without a Python form fails the eject naming the node; the CEL helper written
beside the file gives the translator's values."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.examples import example_paths, load_example
from translator import compile_template
from translator.eject import EjectError, eject_graph, py_str

RUFF = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))


def _write(tmp_path: Path, name: str) -> tuple[Path, str]:
    ejected = eject_graph(load_example(name))
    (tmp_path / ejected.helper_filename).write_text(ejected.helper_source)
    path = tmp_path / ejected.filename
    path.write_text(ejected.source)
    return path, ejected.source


def _ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RUFF, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.stem)
def test_every_example_ejects_to_a_formatted_lint_clean_file(tmp_path: Path, path: Path) -> None:
    if not Path(RUFF).exists():
        pytest.skip("ruff is not installed (make lint installs it)")
    written, source = _write(tmp_path, path.stem)
    compile(source, str(written), "exec")
    # ruff's defaults (line length 88), not this repository's settings: the file is the user's.
    formatted = _ruff("format", "--isolated", "--check", "--diff", ".", cwd=tmp_path)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    linted = _ruff("check", "--isolated", "--select", "E,F,W,I", "--ignore", "E501", ".", cwd=tmp_path)
    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.stem)
def test_one_task_per_node_named_after_it(path: Path) -> None:
    graph = load_example(path.stem)
    tree = ast.parse(eject_graph(graph).source)
    tasks = {}
    flows = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Name):
                    name = next(k.value.value for k in decorator.keywords if k.arg == "name")  # type: ignore[attr-defined]
                    (tasks.__setitem__(name, node.name) if decorator.func.id == "task" else flows.append(name))
    assert sorted(tasks) == sorted(n["id"] for n in graph["nodes"])
    assert flows == [graph["name"]]


def test_control_flow_reads_as_python() -> None:
    notifier = eject_graph(load_example("deployment-notifier")).source
    assert 'if routes.get("succeeded") == "true":' in notifier
    assert 'elif routes.get("succeeded") == "false":' in notifier
    assert "if not cel(" in notifier and "return None" in notifier  # the webhook's filter
    # A template that reads a credential gets it from a plain Secret Block, named in the header.
    assert '"credentials": {"pager": Secret.load("pager").get()}' in notifier
    assert "Secret 'pager': a JSON object with token" in notifier
    assert "SlackCredentials 'team-slack'" in notifier and '"credential": "team-slack"' in notifier
    assert '@task(name="page", retries=5, retry_delay_seconds=[1, 2, 4, 8, 16], timeout_seconds=10)' in notifier

    fan_out = eject_graph(load_example("fan-out-join")).source
    assert "api_run = api.submit(snapshot)" in fan_out and 'steps["api"] = api_run.result()' in fan_out
    assert "except Exception as exc:  # on_error: continue" in fan_out
    assert "schedules=[Cron('*/5 * * * *', timezone='Europe/Berlin')]" in fan_out
    assert 'return steps.get("done")' in fan_out

    loop = eject_graph(load_example("loop-over-items")).source
    assert "for index, item in enumerate(each_items):" in loop
    assert 'task_run_name="lookup [{scope[loop][index]}]"' in loop
    assert 'steps["each"] = each_results' in loop

    approval = eject_graph(load_example("access-approval")).source
    assert "pause_flow_run(wait_for_input=form" in approval
    assert 'steps["approve"] = wait_for_decision(approve(scope), "input-approve")' in approval
    assert 'if routes.get("approve") == "approved":' in approval


def test_a_while_loop_a_switch_and_an_error_route() -> None:
    graph: dict[str, Any] = {
        "format": "gorax/graph@1",
        "name": "shapes",
        "nodes": [
            {"id": "go", "type": "trigger.manual", "config": {}},
            {"id": "pick", "type": "control.switch", "config": {"value": "trigger.n", "cases": [1, 2]}},
            {"id": "again", "type": "control.loop", "config": {"mode": "while", "condition": "loop.index < 3"}},
            {"id": "tick", "type": "data.transform", "parentId": "again", "config": {"value": "{{ loop.index }}"}},
            {"id": "call", "type": "http.request", "config": {"url": "http://127.0.0.1:9/x"}, "on_error": "route"},
            {"id": "oops", "type": "data.transform", "config": {"value": "{{ steps.call.error.node_id }}"}},
        ],
        "edges": [
            {"source": "go", "target": "pick"},
            {"source": "pick", "sourceHandle": "1", "target": "again"},
            {"source": "pick", "sourceHandle": "default", "target": "call"},
            {"source": "call", "sourceHandle": "error", "target": "oops"},
        ],
    }
    source = eject_graph(graph).source
    compile(source, "shapes.py", "exec")
    assert "while cel(" in source and '"loop.index < 3"' in source and "index += 1" in source
    assert 'if routes.get("pick") == "1":' in source and 'elif routes.get("pick") == "default":' in source
    assert 'steps["call"], routes["call"] = failed("call", exc), "error"' in source
    assert 'if routes.get("call") == "error":' in source


def test_a_node_type_without_a_python_form_fails_naming_the_node() -> None:
    graph = load_example("loop-over-items")
    graph["nodes"].append(
        {"id": "store", "type": "db.execute", "config": {"credential": "warehouse", "sql": "SELECT 1"}}
    )
    graph["edges"].append({"source": "bad", "target": "store"})
    with pytest.raises(EjectError) as caught:
        eject_graph(graph)
    assert caught.value.nodes == [("store", "db.execute")]
    assert "node 'store' (db.execute)" in str(caught.value)


EXPRESSIONS = [
    "{{ trigger.name }}",
    "Hello, {{ trigger.name }}! You have {{ trigger.items.size() }} items: {{ trigger.items }}",
    "{{ trigger.items.filter(i, i > 1).map(i, i * 2) }}",
    "{{ has(trigger.missing) }}",
    "{{ trigger.amount > 100 ? 'big' : 'small' }}",
    "{{ upper(trigger.name) + lower('ÄB') }}",
    "{{ json_decode(json_encode({'a': [1, 2.5, true, null]})) }}",
    "{{ base64_decode(base64_encode(trigger.name)) }}",
    "{{ {'k': trigger.name, 'n': trigger.amount / 2} }}",
]


@pytest.mark.parametrize("template", EXPRESSIONS)
def test_the_cel_helper_gives_the_translators_values(template: str, tmp_path: Path) -> None:
    helper = tmp_path / "gorax_cel.py"
    helper.write_text(eject_graph(load_example("fan-out-join")).helper_source)
    spec = importlib.util.spec_from_file_location("gorax_cel_under_test", helper)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scope = {"trigger": {"name": "Ada", "items": [1, 2, 3], "amount": 250}, "steps": {}, "env": {}}
    compiled = compile_template(template)
    parts = [p if isinstance(p, str) else module.cel(p.expression.source, scope) for p in compiled.parts]
    value = parts[0] if compiled.is_whole else module.text(*parts)
    assert value == compiled.evaluate(scope)


def test_string_literals_are_written_as_ruff_writes_them() -> None:
    assert py_str("a 'b'") == "\"a 'b'\""
    assert py_str('say "hi"') == "'say \"hi\"'"
    assert py_str("line\nnext\\") == '"line\\nnext\\\\"'
    for text in ("a 'b'", 'say "hi"', "line\nnext\\", "\x00é"):
        assert ast.literal_eval(py_str(text)) == text


EVERY_FORM: dict[str, Any] = {
    "format": "gorax/graph@1",
    "name": "every form",
    "nodes": [
        {"id": "hand", "type": "trigger.manual", "config": {"input_schema": {"type": "object"}}},
        {"id": "tick", "type": "trigger.schedule", "config": {"interval_seconds": 300}},
        {"id": "heard", "type": "trigger.event", "config": {"event": "acme.*", "filter": "trigger.ok == true"}},
        {"id": "post", "type": "slack.send_message", "config": {"credential": "chat", "channel": "#x", "text": "hi"}},
        {"id": "dm", "type": "slack.send_dm", "config": {"credential": "chat", "user": "a@b.co", "text": "hi"}},
        {
            "id": "react",
            "type": "slack.add_reaction",
            "config": {"credential": "chat", "channel": "C1", "ts": "{{ steps.post.ts }}", "name": "eyes"},
        },
        {
            "id": "edit",
            "type": "slack.update_message",
            "config": {"credential": "chat", "channel": "C1", "ts": "{{ steps.post.ts }}", "text": "done"},
        },
        {
            "id": "ask",
            "type": "llm.chat",
            "config": {"credential": "model", "messages": [{"role": "user", "content": "{{ trigger.q }}"}]},
        },
        {
            "id": "pull",
            "type": "llm.extract",
            "config": {"credential": "model", "text": "{{ steps.ask.content }}", "schema": {"type": "object"}},
        },
        {"id": "nap", "type": "control.delay", "config": {"duration": "1m30s"}},
        {"id": "later", "type": "control.delay", "config": {"until": "{{ trigger.at }}"}},
        {"id": "wait", "type": "control.delay", "config": {"seconds": 1}},
        {"id": "child", "type": "control.subworkflow", "config": {"workflow": "wf-1", "input": "{{ trigger }}"}},
        {"id": "call", "type": "http.request", "config": {"url": "https://example.com", "credential": "api_auth"}},
        {"id": "gate", "type": "human.approval", "config": {"title": "Go?", "assignees": ["role:admin"]}},
        {"id": "js", "type": "code.javascript", "config": {"code": "return 1;"}},
    ],
    "edges": [
        {"source": "hand", "target": "post"},
        {"source": "tick", "target": "post"},
        {"source": "heard", "target": "post"},
        {"source": "post", "target": "dm"},
        {"source": "dm", "target": "react"},
        {"source": "react", "target": "edit"},
        {"source": "edit", "target": "ask"},
        {"source": "ask", "target": "pull"},
        {"source": "pull", "target": "nap"},
        {"source": "nap", "target": "later"},
        {"source": "later", "target": "wait"},
        {"source": "wait", "target": "child"},
        {"source": "child", "target": "call"},
        {"source": "call", "target": "gate"},
        {"source": "gate", "sourceHandle": "approved", "target": "js"},
    ],
}


def test_every_ejected_node_type_writes_formatted_lint_clean_python(tmp_path: Path) -> None:
    if not Path(RUFF).exists():
        pytest.skip("ruff is not installed (make lint installs it)")
    ejected = eject_graph(EVERY_FORM)
    (tmp_path / ejected.helper_filename).write_text(ejected.helper_source)
    (tmp_path / ejected.filename).write_text(ejected.source)
    compile(ejected.source, ejected.filename, "exec")
    formatted = _ruff("format", "--isolated", "--check", "--diff", ".", cwd=tmp_path)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    linted = _ruff("check", "--isolated", "--select", "E,F,W,I", "--ignore", "E501", ".", cwd=tmp_path)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    source = ejected.source
    assert 'trigger_node: str = "hand"' in source  # three triggers: the manual one fires by default
    assert 'if trigger_node == "heard" and not cel(' in source
    assert "schedules=[Interval(300)]" in source
    assert "seconds = 90.0  # 1m30s" in source
    assert "raise NotImplementedError" in source and "workflow wf-1" in source
    assert {block[:2] for block in ejected.blocks} == {
        ("SlackCredentials", "chat"),
        ("Secret", "model"),
        ("Secret", "api-auth"),
    }
    assert 'timeout = request["timeout_seconds"]' in source and '"timeout_seconds": 604800' in source


def test_names_that_clash_and_long_conditions_stay_valid_and_formatted(tmp_path: Path) -> None:
    if not Path(RUFF).exists():
        pytest.skip("ruff is not installed (make lint installs it)")
    branches = ["first_branch_with_a_long_name", "second_branch_with_a_long_name", "third_branch_long_name"]
    graph: dict[str, Any] = {
        "format": "gorax/graph@1",
        "name": "json",
        "nodes": [
            {"id": "go", "type": "trigger.manual", "config": {}},
            {"id": "pick", "type": "control.switch", "config": {"value": "trigger.n", "cases": [1, 2, 3]}},
            *({"id": b, "type": "data.transform", "config": {"value": b}} for b in branches),
            {"id": "json", "type": "control.merge", "config": {"mode": "any"}},
            {"id": "http_request", "type": "control.output", "config": {"value": "{{ steps.json }}"}},
        ],
        "edges": [
            {"source": "go", "target": "pick"},
            *({"source": "pick", "sourceHandle": str(i + 1), "target": b} for i, b in enumerate(branches)),
            *({"source": b, "target": "json"} for b in branches),
            {"source": "json", "target": "http_request"},
        ],
    }
    ejected = eject_graph(graph)
    (tmp_path / ejected.helper_filename).write_text(ejected.helper_source)
    (tmp_path / ejected.filename).write_text(ejected.source)
    compile(ejected.source, ejected.filename, "exec")
    # The flow, named after the workflow, and the node 'json' neither shadow the json module nor
    # each other; the node 'http_request' does not shadow the helper of that name.
    assert ejected.filename == "json_node.py" and "def json_node(trigger" in ejected.source
    assert "def json_node_2(scope" in ejected.source and "def http_request_node(scope" in ejected.source
    assert '    if (\n        "first_branch_with_a_long_name" in steps' in ejected.source
    formatted = _ruff("format", "--isolated", "--check", "--diff", ".", cwd=tmp_path)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    linted = _ruff("check", "--isolated", "--select", "E,F,W,I", "--ignore", "E501", ".", cwd=tmp_path)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_an_approval_in_a_loop_waits_for_one_input_per_iteration() -> None:
    graph: dict[str, Any] = {
        "format": "gorax/graph@1",
        "name": "each needs a yes",
        "nodes": [
            {"id": "go", "type": "trigger.manual", "config": {}},
            {"id": "each", "type": "control.loop", "config": {"items": "{{ trigger.items }}"}},
            {
                "id": "ok",
                "type": "human.approval",
                "parentId": "each",
                "config": {"title": "Ship {{ loop.item }}?", "assignees": ["role:admin"]},
            },
        ],
        "edges": [{"source": "go", "target": "each"}],
    }
    source = eject_graph(graph).source
    assert 'each_steps["ok"] = wait_for_decision(ok(each_scope), f"input-ok-{index}")' in source
