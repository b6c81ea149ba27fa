"""``gorax import n8n FILE``: turn an n8n workflow export into a ``gorax/graph@1`` draft.

The graph goes to ``-o FILE`` (the report is printed) or, without ``-o``, to standard output
(the report goes to standard error). Placeholders and untranslated expressions are findings,
not failures: the exit code is 0 whenever a graph was written, 2 when the input cannot be read
or is not an n8n workflow.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from api.cli.graphs import load_graph_file


def _import_n8n(args: argparse.Namespace) -> int:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from flows.importers.n8n import N8nImportError, import_n8n  # noqa: PLC0415

    document, problem = load_graph_file(args.file)
    if problem is not None:
        print(f"gorax import n8n: {problem}", file=sys.stderr)
        return 2
    name = args.workflow_name
    if not name and isinstance(document, dict) and not document.get("name"):
        name = Path(args.file).stem  # n8n's own test files and some exports carry no name
    try:
        result = import_n8n(document, name=name)
    except N8nImportError as exc:
        print(f"gorax import n8n: {args.file}: not an n8n workflow: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result.graph, indent=2, ensure_ascii=False) + "\n"
    if args.json_report:
        report = json.dumps(result.report.to_dict(), indent=2, ensure_ascii=False)
    else:
        report = "\n".join(result.report.lines())
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"gorax import n8n: {args.output}: cannot write the graph: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(report)
        print(f"Wrote {args.output} (a draft: validate it with `gorax validate {args.output}`).")
    else:
        sys.stdout.write(text)
        print(report, file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``gorax import`` to the ``gorax`` parser."""
    parser = subparsers.add_parser("import", help="import a workflow from another tool")
    tools = parser.add_subparsers(dest="tool", metavar="TOOL", required=True)
    n8n = tools.add_parser(
        "n8n",
        help="import an n8n workflow export (JSON) as a gorax/graph@1 draft and print what was mapped",
    )
    n8n.add_argument("file", help="the n8n workflow JSON (as n8n's 'Download' or export writes it)")
    n8n.add_argument("-o", "--output", help="write the graph here (default: standard output, report to stderr)")
    n8n.add_argument("--workflow-name", help="the imported workflow's name (default: the n8n workflow's)")
    n8n.add_argument("--json-report", action="store_true", help="print the report as JSON")
    n8n.set_defaults(handler=_import_n8n)
