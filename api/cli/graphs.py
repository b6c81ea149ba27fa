"""``gorax validate`` (and, beside it, the other commands that take a graph file)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import AsyncExitStack, nullcontext
from pathlib import Path
from typing import Any


def load_graph_file(path: str) -> tuple[Any, str | None]:
    """The parsed JSON of a file, or a message saying why it could not be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return None, f"{path}: cannot read the file: {exc.strerror or exc}"
    except UnicodeDecodeError:
        return None, f"{path}: the file is not UTF-8 text"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{path}: not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"


def _validate(args: argparse.Namespace) -> int:
    """Exit 0 with a one-line summary when the graph is valid, else 1 with every error."""
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from translator import GraphError, validate_graph  # noqa: PLC0415
    from translator.nodetypes import RegistryError  # noqa: PLC0415

    document, problem = load_graph_file(args.file)
    if problem is not None:
        errors = [GraphError(code="invalid_json", message=problem)]
    else:
        try:
            errors = validate_graph(document)
        except RegistryError as exc:
            print(f"gorax validate: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps([error.to_dict() for error in errors], indent=2))
    elif errors:
        for error in errors:
            print(f"{args.file}: {error}" if error.code != "invalid_json" else error.message)
        print(f"{args.file}: {len(errors)} problem{'s' if len(errors) != 1 else ''}", file=sys.stderr)
    else:
        nodes, edges = document.get("nodes", []), document.get("edges", [])
        print(f"{args.file}: valid gorax/graph@1 '{document.get('name')}' "
              f"({len(nodes)} nodes, {len(edges)} edges)")  # fmt: skip
    return 1 if errors else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the graph commands to the ``gorax`` parser."""
    parser = subparsers.add_parser(
        "validate",
        help="check a workflow graph file",
        description="Validate a gorax/graph@1 JSON file against the registered node types. "
        "Exit 0 when valid, 1 with every problem (node, field, reason) when not.",
    )
    parser.add_argument("file", help="path to the graph JSON")
    parser.add_argument("--json", action="store_true", help="print the errors as a JSON list")
    parser.set_defaults(handler=_validate)
    _register_runtime(subparsers)


# -- gorax deploy / gorax run ------------------------------------------------------------------


def _vars(pairs: list[str] | None) -> dict[str, str]:
    """``NAME=VALUE`` pairs as a dict; a pair without '=' is an error naming it."""
    values: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--var {pair!r}: expected NAME=VALUE")
        values[name] = value
    return values


def _graph_or_exit(path: str, command: str) -> Any:
    document, problem = load_graph_file(path)
    if problem is not None:
        print(f"gorax {command}: {problem}", file=sys.stderr)
        raise SystemExit(2)
    return document


def _validation_failed(command: str, path: str, exc: Any) -> int:
    for error in exc.errors:
        print(f"{path}: {error}", file=sys.stderr)
    print(f"gorax {command}: {path} has {len(exc.errors)} problem(s); nothing was deployed", file=sys.stderr)
    return 1


def _prefect_unreachable(command: str, url: str, exc: Exception) -> int:
    print(
        f"gorax {command}: cannot reach the Prefect API at {url} ({exc or type(exc).__name__}); "
        "start it with `gorax up`, or point GORAX_PREFECT_API_URL at a running server",
        file=sys.stderr,
    )
    return 1


async def _deploy_graph(
    client: Any,
    document: Any,
    *,
    tenant: str,
    workflow: str | None,
    version: int | None = None,
    env: dict[str, str] | None = None,
) -> Any:
    """Deploy a graph file's graph to the configured work pool."""
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.prefect.deployments import deploy_workflow  # noqa: PLC0415
    from flows.settings import get_settings  # noqa: PLC0415

    description = document.get("description") if isinstance(document.get("description"), str) else None
    return await deploy_workflow(
        client,
        document,
        tenant=tenant,
        workflow_id=workflow,
        version=version,
        env=env,
        description=description,
        work_pool=get_settings().work_pool,
    )


async def _deploy_with_client(document: Any, **options: Any) -> Any:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.prefect import open_client  # noqa: PLC0415

    async with AsyncExitStack() as stack:
        return await _deploy_graph(await open_client(stack), document, **options)


def _deploy(args: argparse.Namespace) -> int:
    """Create or update the Prefect deployment of a graph file."""
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    import httpx  # noqa: PLC0415

    from api.cli.common import use_prefect  # noqa: PLC0415
    from api.prefect.deployments import WorkPoolMissing  # noqa: PLC0415
    from translator import GraphValidationError  # noqa: PLC0415

    document = _graph_or_exit(args.file, "deploy")
    try:
        env = _vars(args.var)
    except ValueError as exc:
        print(f"gorax deploy: {exc}", file=sys.stderr)
        return 2
    settings = use_prefect()
    try:
        deployed = asyncio.run(
            _deploy_with_client(document, tenant=args.tenant, workflow=args.workflow, version=args.version, env=env)
        )
    except GraphValidationError as exc:
        return _validation_failed("deploy", args.file, exc)
    except WorkPoolMissing as exc:
        print(f"gorax deploy: {exc}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        return _prefect_unreachable("deploy", settings.prefect.url, exc)
    print(
        f"deployed {deployed.full_name} ({deployed.deployment_id}) to pool {deployed.work_pool}, "
        f"queue {deployed.work_queue}, {deployed.schedules} schedule(s)"
    )
    return 0


async def _run_graph(args: argparse.Namespace, document: Any, trigger: Any, env: dict[str, str]) -> tuple[bool, Any]:
    """(True, the run's result), or (False, the lines that say why it failed); in-process or
    through the deployment."""
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.prefect import open_client, runs  # noqa: PLC0415
    from flows import quiet_console, show_tracebacks  # noqa: PLC0415
    from flows.run_graph import run_graph  # noqa: PLC0415

    with show_tracebacks(args.verbose):
        async with AsyncExitStack() as stack:
            client = await open_client(stack)
            if args.local:
                # The run's logs stay in Prefect (the UI, `prefect flow-run logs`); --verbose shows them here.
                with nullcontext() if args.verbose else quiet_console():
                    state = await run_graph(
                        graph=document, trigger=trigger, env=env, tenant=args.tenant, return_state=True
                    )
                if state.is_completed():
                    return True, await state.result()
                run_id = state.state_details.flow_run_id
                flow_run = await runs.read_run(client, run_id) if run_id is not None else None
            else:
                deployed = await _deploy_graph(client, document, tenant=args.tenant, workflow=args.workflow)
                started = await runs.start_run(
                    client, str(deployed.deployment_id), tags=[], parameters={"trigger": trigger, "env": env}
                )
                flow_run = await runs.wait_for_final(client, started.id, args.timeout)
                if flow_run is None or flow_run.state is None:
                    return False, [f"flow run {started.id} did not finish within {args.timeout}s"]
                if args.verbose:
                    for line in await runs.read_log_lines(client, flow_run.id):
                        print(line, file=sys.stderr)
                if flow_run.state.is_completed():
                    return True, await runs.read_result(flow_run)
            if flow_run is None or flow_run.state is None:
                return False, [f"{state.name}: {state.message}"]
            return False, await _failure_lines(client, flow_run)


async def _failure_lines(client: Any, flow_run: Any) -> list[str]:
    """One line per failed node (reason and hint), else the run's own state message."""
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.prefect import runs  # noqa: PLC0415
    from flows import node_failures  # noqa: PLC0415

    state = flow_run.state
    try:
        records = await runs.read_run_steps(client, flow_run)
    except Exception as exc:  # the run's state still says what happened
        return [f"{state.name}: {state.message} (its step records cannot be read: {exc})"]
    lines = [failure.line() for failure in node_failures(records)]
    return lines or [f"{state.name}: {state.message}"]


def _run(args: argparse.Namespace) -> int:
    """Run a graph file through Prefect and print its output as JSON."""
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    import httpx  # noqa: PLC0415

    from api.cli.common import use_prefect  # noqa: PLC0415
    from api.prefect.deployments import WorkPoolMissing  # noqa: PLC0415
    from translator import GraphValidationError  # noqa: PLC0415

    document = _graph_or_exit(args.file, "run")
    try:
        trigger = json.loads(args.input) if args.input is not None else None
        env = _vars(args.var)
    except json.JSONDecodeError as exc:
        print(f"gorax run: --input is not JSON: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"gorax run: {exc}", file=sys.stderr)
        return 2
    settings = use_prefect()
    try:
        completed, outcome = asyncio.run(_run_graph(args, document, trigger, env))
    except GraphValidationError as exc:
        return _validation_failed("run", args.file, exc)
    except WorkPoolMissing as exc:
        print(f"gorax run: {exc}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        return _prefect_unreachable("run", settings.prefect.url, exc)
    if not completed:
        print("gorax run: the run failed:", file=sys.stderr)
        for line in outcome:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(json.dumps(outcome, indent=2, default=str))
    return 0


def _register_runtime(subparsers: argparse._SubParsersAction) -> None:
    deploy = subparsers.add_parser(
        "deploy",
        help="deploy a workflow graph to Prefect",
        description="Create or update the Prefect deployment <tenant>--<workflow> of run_graph for a "
        "graph file (the configured work pool, which `gorax setup` creates; the tenant's queue; the "
        "graph's cron schedules).",
    )
    deploy.add_argument("file", help="path to the graph JSON")
    deploy.add_argument("--tenant", default="default", help="tenant id (default: default)")
    deploy.add_argument("--workflow", help="workflow id (default: the graph's name)")
    deploy.add_argument("--version", type=int, help="workflow version number")
    deploy.add_argument("--var", action="append", metavar="NAME=VALUE", help="an env value baked into the deployment")
    deploy.set_defaults(handler=_deploy)

    run = subparsers.add_parser(
        "run",
        help="run a workflow graph and print its output",
        description="Run a graph file through Prefect (deploying it first) and print the run's output "
        "as JSON. A failed run exits 1 with one line per failed node: its reason and a hint.",
    )
    run.add_argument("file", help="path to the graph JSON")
    run.add_argument("--input", help="the trigger input, as JSON")
    run.add_argument("--var", action="append", metavar="NAME=VALUE", help="an env value (env.NAME)")
    run.add_argument("--tenant", default="default", help="tenant id (default: default)")
    run.add_argument("--workflow", help="workflow id (default: the graph's name)")
    run.add_argument("--local", action="store_true", help="run in this process against the Prefect server")
    run.add_argument("--timeout", type=float, default=600, help="seconds to wait for a deployed run (default 600)")
    run.add_argument(
        "--verbose",
        action="store_true",
        help="show the run's logs, with tracebacks (a failed run otherwise prints one line per failed node)",
    )
    run.set_defaults(handler=_run)
