"""``gorax eject``: a workflow graph as a Prefect flow file that runs without Gorax."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from api.errors import ApiError


async def _stored(args: argparse.Namespace) -> dict[str, Any]:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.cli.common import cli_settings  # noqa: PLC0415
    from api.db.engine import Database  # noqa: PLC0415
    from api.services.eject import stored_document  # noqa: PLC0415

    db = Database(cli_settings().resolved_database_url)
    try:
        await db.migrate()
        async with db.session(tenant_id=args.tenant) as session:
            return await stored_document(
                session, tenant_id=args.tenant, workflow_id=args.workflow, version=args.version
            )
    finally:
        await db.dispose()


def _eject(args: argparse.Namespace) -> int:
    """Exit 0 with the flow written, 1 when the graph cannot be read or ejected."""
    from api.cli.graphs import load_graph_file  # noqa: PLC0415
    from api.services.eject import eject_document  # noqa: PLC0415

    if (args.file is None) == (args.workflow is None):
        print("gorax eject: give a graph file or --workflow ID (not both)", file=sys.stderr)
        return 2
    if args.workflow is not None and not args.tenant:
        print("gorax eject: --workflow needs --tenant (the workflow's tenant id)", file=sys.stderr)
        return 2
    if args.version is not None and args.workflow is None:
        print("gorax eject: --version applies to --workflow only", file=sys.stderr)
        return 2
    try:
        if args.file is not None:
            document, problem = load_graph_file(args.file)
            if problem is not None:
                print(f"gorax eject: {problem}", file=sys.stderr)
                return 1
        else:
            document = asyncio.run(_stored(args))
        ejected = eject_document(document)
    except ApiError as exc:
        print(f"gorax eject: {exc.message}", file=sys.stderr)
        for error in (exc.details or {}).get("errors", []):
            print(f"  {error.get('message')}", file=sys.stderr)
        return 1
    if args.output is None:
        sys.stdout.write(ejected.source)
        print(
            f"gorax eject: the flow imports {ejected.helper_filename}; write it beside the file with -o FILE",
            file=sys.stderr,
        )
        return 0
    target = Path(args.output)
    helper = target.with_name(ejected.helper_filename)
    if target.resolve() == helper.resolve():
        print(f"gorax eject: -o {args.output}: that name is the helper's; choose another", file=sys.stderr)
        return 2
    try:
        target.write_text(ejected.source, encoding="utf-8")
        helper.write_text(ejected.helper_source, encoding="utf-8")
    except OSError as exc:
        print(f"gorax eject: cannot write {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {target} and {helper}")
    for block_type, name, holds in ejected.blocks:
        print(f"  create the Prefect Block {block_type} {name!r}: {holds}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``gorax eject`` to the ``gorax`` parser."""
    parser = subparsers.add_parser(
        "eject",
        help="write a workflow as a Prefect flow file",
        description="Write a workflow graph as a readable Prefect flow file that runs with Prefect "
        "alone (one task per node, the graph's control flow as Python, CEL through gorax_cel.py "
        "written beside it). See docs/eject.md.",
    )
    parser.add_argument("file", nargs="?", help="path to a graph JSON file")
    parser.add_argument("--workflow", metavar="ID", help="a stored workflow instead of a file")
    parser.add_argument("--tenant", metavar="ID", help="the stored workflow's tenant id")
    parser.add_argument("--version", type=int, metavar="N", help="the version to eject (default: the published one)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the flow here, and gorax_cel.py beside it")
    parser.set_defaults(handler=_eject)
