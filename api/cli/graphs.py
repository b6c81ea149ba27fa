"""``gorax validate`` (and, beside it, the other commands that take a graph file)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _load(path: str) -> tuple[Any, str | None]:
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
    from translator.nodetypes import RegistryError
    from translator import GraphError, validate_graph

    document, problem = _load(args.file)
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
    document, problem = _load(path)
    if problem is not None:
        print(f"gorax {command}: {problem}", file=sys.stderr)
        raise SystemExit(2)
    return document


def _validation_failed(command: str, path: str, exc: Any) -> int:
    for error in exc.errors:
        print(f"{path}: {error}", file=sys.stderr)
    print(f"gorax {command}: {path} has {len(exc.errors)} problem(s); nothing was deployed", file=sys.stderr)
    return 1


def _deploy(args: argparse.Namespace) -> int:
    """Create or update the Prefect deployment of a graph file."""
    import asyncio

    from api.cli.common import use_prefect
    from translator import GraphValidationError

    document = _graph_or_exit(args.file, "deploy")
    try:
        env = _vars(args.var)
    except ValueError as exc:
        print(f"gorax deploy: {exc}", file=sys.stderr)
        return 2
    use_prefect()
    from flows.deploy import deploy_workflow

    try:
        deployed = asyncio.run(
            deploy_workflow(document, tenant=args.tenant, workflow_id=args.workflow, version=args.version, env=env)
        )
    except GraphValidationError as exc:
        return _validation_failed("deploy", args.file, exc)
    print(f"deployed {deployed.full_name} ({deployed.deployment_id}) to pool {deployed.work_pool}, "
          f"queue {deployed.work_queue}, {deployed.schedules} schedule(s)")  # fmt: skip
    return 0


async def _run_graph(args: argparse.Namespace, document: Any, trigger: Any, env: dict[str, str]) -> tuple[bool, Any]:
    """(completed, result or failure message) of a run, in-process or through the deployment."""
    if args.local:
        from flows.run_graph import run_graph

        state = await run_graph(graph=document, trigger=trigger, env=env, tenant=args.tenant, return_state=True)
    else:
        from prefect.deployments import run_deployment

        from flows.deploy import deploy_workflow

        deployed = await deploy_workflow(document, tenant=args.tenant, workflow_id=args.workflow)
        flow_run = await run_deployment(
            deployed.full_name, parameters={"trigger": trigger, "env": env}, timeout=args.timeout
        )
        state = flow_run.state
        if state is None or not state.is_final():
            return False, f"flow run {flow_run.id} did not finish within {args.timeout}s (state {state.name if state else '?'})"
    if state.is_completed():
        return True, await state.result()
    return False, f"{state.name}: {state.message}"


def _run(args: argparse.Namespace) -> int:
    """Run a graph file through Prefect and print its output as JSON."""
    import asyncio

    from api.cli.common import use_prefect
    from translator import GraphValidationError

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
    use_prefect()
    try:
        completed, outcome = asyncio.run(_run_graph(args, document, trigger, env))
    except GraphValidationError as exc:
        return _validation_failed("run", args.file, exc)
    if not completed:
        print(f"gorax run: the run failed: {outcome}", file=sys.stderr)
        return 1
    print(json.dumps(outcome, indent=2, default=str))
    return 0


def _register_runtime(subparsers: argparse._SubParsersAction) -> None:
    deploy = subparsers.add_parser(
        "deploy",
        help="deploy a workflow graph to Prefect",
        description="Create or update the Prefect deployment <tenant>--<workflow> of run_graph for a "
        "graph file (work pool gorax, the tenant's queue, the graph's cron schedules).",
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
        "as JSON. A failed run exits 1 and names the failing node.",
    )
    run.add_argument("file", help="path to the graph JSON")
    run.add_argument("--input", help="the trigger input, as JSON")
    run.add_argument("--var", action="append", metavar="NAME=VALUE", help="an env value (env.NAME)")
    run.add_argument("--tenant", default="default", help="tenant id (default: default)")
    run.add_argument("--workflow", help="workflow id (default: the graph's name)")
    run.add_argument("--local", action="store_true", help="run in this process against the Prefect server")
    run.add_argument("--timeout", type=float, default=600, help="seconds to wait for a deployed run (default 600)")
    run.set_defaults(handler=_run)
