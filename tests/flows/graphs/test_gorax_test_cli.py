"""``gorax test FILE``: a graph's tests run in-process against the Prefect server, with JUnit XML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from api.cli import main

GRAPH = {
    "format": "gorax/graph@1",
    "name": "doubler",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {}},
        {"id": "shape", "type": "data.transform", "config": {"value": {"n": "{{ trigger.n * 2 }}"}}},
    ],
    "edges": [{"source": "start", "target": "shape"}],
    "tests": [
        {"id": "doubles", "input": {"n": 2}, "assertions": [{"expr": "steps.shape.n == 4"}, {"expr": "result.n > 3"}]},
        {"id": "wrong", "name": "expects five", "input": {"n": 2}, "assertions": [{"expr": "result.n == 5"}]},
        {
            "id": "down",
            "input": {"n": 2},
            "mocks": {"shape": {"error": "service unavailable"}},
            "assertions": [{"expr": "status == 'failed'"}],
        },
    ],
}


def test_gorax_test_reports_each_assertion_and_writes_junit(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "doubler.json"
    path.write_text(json.dumps(GRAPH))
    junit = tmp_path / "junit.xml"
    code = main(["test", str(path), "--junit", str(junit)])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "PASS  doubles (completed)" in out and "FAIL  expects five (completed)" in out
    assert "FAIL result.n == 5: actual 4, expected 5" in out
    assert "PASS  down (failed)" in out and "2 passed, 1 failed" in out
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("doubler", "3", "1")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {"doubles", "expects five", "down"}
    failure = cases["expects five"].find("failure")
    assert failure is not None and failure.get("message") == "result.n == 5: actual 4, expected 5"
    assert cases["doubles"].find("failure") is None

    assert main(["test", str(path), "--test", "doubles", "--test", "down"]) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().out


def test_gorax_test_refuses_bad_input(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "doubler.json"
    assert main(["test"]) == 2
    assert "graph file or --workflow" in capsys.readouterr().err
    path.write_text(json.dumps({**GRAPH, "tests": [{"id": "x", "assertions": [{"expr": "steps.shape.n =="}]}]}))
    assert main(["test", str(path)]) == 2
    assert "tests[0].assertions[0].expr" in capsys.readouterr().err
    path.write_text(json.dumps(GRAPH))
    assert main(["test", str(path), "--test", "nope"]) == 2
    assert "no test 'nope'" in capsys.readouterr().err
