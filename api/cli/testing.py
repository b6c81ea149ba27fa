"""``gorax test [PATH | --workflow ID] [--junit FILE]``: run a workflow's tests, report each
assertion, write JUnit XML for CI; exit 1 when a test fails."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from translator.testcases import CaseResult, WorkflowTest


def register(subparsers: argparse._SubParsersAction) -> None:
    test = subparsers.add_parser(
        "test",
        help="run a workflow's tests (the graph's `tests`) and report each assertion",
        description="Run the tests of a graph file (in this process, against the Prefect server) or of a "
        "workflow's draft (through the Gorax API at GORAX_API_URL with GORAX_API_KEY). Each test is a test "
        "run with its mocked nodes; every assertion is reported. Exits 1 when a test fails, 2 on bad input.",
    )
    test.add_argument("file", nargs="?", help="path to the graph JSON")
    test.add_argument("--workflow", help="a workflow's id: run its draft's tests through the Gorax API")
    test.add_argument("--test", action="append", dest="ids", metavar="ID", help="run only this test (repeatable)")
    test.add_argument("--tenant", default="default", help="tenant id of a local run (default: default)")
    test.add_argument("--junit", metavar="FILE", help="write the results as JUnit XML to FILE")
    test.add_argument("--timeout", type=float, default=120, help="seconds each test may take (default 120)")
    test.set_defaults(handler=_test)


def _test(args: argparse.Namespace) -> int:
    if bool(args.file) == bool(args.workflow):
        print("gorax test: give a graph file or --workflow ID (one of them)", file=sys.stderr)
        return 2
    began = time.monotonic()
    if args.file:
        code, name, results = _from_file(args)
    else:
        code, name, results = _from_api(args)
    if code is not None:
        return code
    _report(results)
    if args.junit:
        Path(args.junit).write_text(junit_xml(name, results, time.monotonic() - began))
    return 0 if all(r.passed for r in results) else 1


def _from_file(args: argparse.Namespace) -> tuple[int | None, str, list[CaseResult]]:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    import httpx  # noqa: PLC0415

    from api.cli.common import use_prefect  # noqa: PLC0415
    from translator import GraphValidationError, validate_graph  # noqa: PLC0415

    try:
        document = json.loads(Path(args.file).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"gorax test: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2, "", []
    errors = validate_graph(document)
    if errors:
        print(f"gorax test: {args.file} is not a valid graph:", file=sys.stderr)
        for error in errors:
            print(f"  {error}", file=sys.stderr)
        return 2, "", []
    tests = [WorkflowTest.model_validate(t) for t in document.get("tests") or []]
    if args.ids:
        unknown = sorted(set(args.ids) - {t.id for t in tests})
        if unknown:
            print(f"gorax test: {args.file} has no test {unknown[0]!r}", file=sys.stderr)
            return 2, "", []
        tests = [t for t in tests if t.id in args.ids]
    settings = use_prefect()
    try:
        results = asyncio.run(_run_local(document, tests, tenant=args.tenant, timeout=args.timeout))
    except GraphValidationError as exc:
        print(f"gorax test: {exc}", file=sys.stderr)
        return 2, "", []
    except httpx.TransportError as exc:
        print(f"gorax test: the Prefect server at {settings.prefect.url} cannot be reached: {exc}", file=sys.stderr)
        return 1, "", []
    return None, str(document.get("name") or args.file), results


async def _run_local(document: dict[str, Any], tests: list[WorkflowTest], *, tenant: str, timeout: float) -> list[Any]:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.prefect import open_client, runs  # noqa: PLC0415
    from flows import TEST_TAG, quiet_console, tenant_test_tag  # noqa: PLC0415
    from flows.run_graph import run_graph  # noqa: PLC0415
    from translator.testcases import judge  # noqa: PLC0415

    graph = {key: value for key, value in document.items() if key != "tests"}
    results = []
    async with AsyncExitStack() as stack:
        client = await open_client(stack)
        for test in tests:
            began = time.monotonic()
            with quiet_console(), runs.run_tags(TEST_TAG, tenant_test_tag(tenant)):
                try:
                    state = await asyncio.wait_for(
                        run_graph(
                            graph=graph,
                            trigger=test.input,
                            tenant=tenant,
                            fixtures={node_id: mock.fixture() for node_id, mock in test.mocks.items()},
                            return_state=True,
                        ),
                        timeout,
                    )
                except TimeoutError:
                    results.append(
                        CaseResult(
                            id=test.id,
                            name=test.label,
                            passed=False,
                            status="timed_out",
                            error=f"the test run did not finish within {timeout:g} seconds",
                        )
                    )
                    continue
            status = "completed" if state.is_completed() else "failed"
            result = await state.result() if state.is_completed() else None
            run_id = state.state_details.flow_run_id
            flow_run = await runs.read_run(client, run_id) if run_id is not None else None
            records = await runs.read_run_steps(client, flow_run) if flow_run is not None else []
            steps = {
                r.node_id: (r.output if r.error is None else {"error": r.error})
                for r in records
                if not r.iteration and r.status != "skipped"
            }
            outcomes = judge(test, trigger=test.input, steps=steps, result=result, status=status)
            results.append(
                CaseResult(
                    id=test.id,
                    name=test.label,
                    passed=all(o.passed for o in outcomes) and (status == "completed" or bool(outcomes)),
                    status=status,
                    execution_id=str(run_id) if run_id else None,
                    assertions=outcomes,
                    error=state.message if status != "completed" else None,
                    duration_ms=int((time.monotonic() - began) * 1000),
                )
            )
    return results


def _from_api(args: argparse.Namespace) -> tuple[int | None, str, list[CaseResult]]:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    import httpx  # noqa: PLC0415

    from api.cli.common import cli_settings  # noqa: PLC0415

    settings = cli_settings()
    if not settings.api_url or settings.api_key is None:
        print("gorax test --workflow: set GORAX_API_URL and GORAX_API_KEY (an API key of the tenant)", file=sys.stderr)
        return 2, "", []
    base = settings.api_url.rstrip("/")
    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    body: dict[str, Any] = {"timeout_seconds": min(args.timeout, 600)}
    if args.ids:
        body["ids"] = args.ids
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=args.timeout * 2 + 30) as http:
            workflow = http.get(f"/api/v1/workflows/{args.workflow}")
            response = http.post(f"/api/v1/workflows/{args.workflow}/tests/run", json=body)
    except httpx.HTTPError as exc:
        print(f"gorax test: the Gorax API at {base} cannot be reached: {exc}", file=sys.stderr)
        return 1, "", []
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        print(f"gorax test: the API answered {response.status_code}: {message}", file=sys.stderr)
        return (2 if response.status_code in (404, 422) else 1), "", []
    name = workflow.json().get("name", args.workflow) if workflow.status_code == 200 else args.workflow
    return None, str(name), [CaseResult.model_validate(t) for t in response.json()["tests"]]


def _report(results: list[CaseResult]) -> None:
    if not results:
        print("no tests")
        return
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'}  {result.name} ({result.status})")
        for outcome in result.assertions:
            mark = "ok  " if outcome.passed else "FAIL"
            line = f"  {mark} {outcome.name}"
            if not outcome.passed and (outcome.actual is not None or outcome.expected is not None):
                line += f": actual {json.dumps(outcome.actual)}, expected {json.dumps(outcome.expected)}"
            if outcome.error:
                line += f" ({outcome.error})"
            print(line)
        if result.error and not result.passed:
            print(f"  run: {result.error}")
    failed = sum(1 for r in results if not r.passed)
    print(f"{len(results) - failed} passed, {failed} failed")


def junit_xml(suite: str, results: list[CaseResult], seconds: float) -> str:
    """The results as JUnit XML: one testsuite, a testcase per test, a failure per failing test."""
    failures = sum(1 for r in results if not r.passed)
    root = ElementTree.Element("testsuites", tests=str(len(results)), failures=str(failures))
    node = ElementTree.SubElement(
        root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures), time=f"{seconds:.3f}"
    )
    for result in results:
        case = ElementTree.SubElement(
            node, "testcase", classname=suite, name=result.name, time=f"{(result.duration_ms or 0) / 1000:.3f}"
        )
        if result.passed:
            continue
        failed = [a for a in result.assertions if not a.passed]
        lines = [
            f"{a.name}: actual {json.dumps(a.actual)}, expected {json.dumps(a.expected)}"
            + (f" ({a.error})" if a.error else "")
            for a in failed
        ]
        if result.error:
            lines.append(f"run {result.status}: {result.error}")
        message = lines[0] if lines else f"the run ended {result.status}"
        failure = ElementTree.SubElement(case, "failure", message=message, type="AssertionError")
        failure.text = "\n".join(lines)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
