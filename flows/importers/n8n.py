"""Import an n8n workflow (its exported JSON) as a ``gorax/graph@1`` draft, with a report.

:func:`import_n8n` maps the common n8n nodes to Gorax node types (Webhook, Schedule, Manual,
HTTP Request, IF, Switch, Merge, Loop Over Items, Edit Fields, Code, Wait, Execute Workflow,
Slack, Send Email, GitHub, Jira, PagerDuty, Postgres, AWS S3, OpenAI and LLM chains, No-Op) and
n8n expressions to CEL (:mod:`flows.importers.n8n_expressions`). Whatever cannot be mapped is
kept, never dropped:

- a node becomes an imported placeholder (:mod:`flows.nodes.imported`; a trigger placeholder for a trigger)
  holding the original node JSON and the reason; the draft validates, publishing refuses it;
- an expression keeps its original text, marked (``n8n-expression: ...`` with its braces
  spaced out so that Gorax does not read it as a template), and is listed with its node and
  field path;
- a credential becomes a credential *name* in the node's config, listed as needed with the
  Gorax credential type to create under that name;
- a sticky note is listed as skipped with its text.

The result always validates with the translator: the importer validates what it built and
turns anything the translator still refuses into a marked string or a placeholder, saying why.
:class:`N8nImportError` (with the JSON path) is raised only for input that is not an n8n
workflow at all.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows.importers.n8n_expressions import Scope, Untranslatable, cel_string, operand, template
from flows.nodes.aws import S3GetObject, S3PutObject
from flows.nodes.code import CodeJavaScript
from flows.nodes.condition import Condition
from flows.nodes.db import DbExecute, DbQuery
from flows.nodes.delay import Delay
from flows.nodes.github import GitHubCreateComment, GitHubCreateIssue
from flows.nodes.http_request import HttpRequest
from flows.nodes.imported import ImportPlaceholder, ImportPlaceholderTrigger
from flows.nodes.jira import JiraAddComment, JiraCreateIssue
from flows.nodes.llm import LlmChat
from flows.nodes.loop import Loop
from flows.nodes.mail import EmailSend
from flows.nodes.merge import Merge
from flows.nodes.pagerduty import PagerDutyCreateIncident
from flows.nodes.slack import SlackSendDm, SlackSendMessage, SlackUpdateMessage
from flows.nodes.subworkflow import Subworkflow
from flows.nodes.switch import Switch
from flows.nodes.transform import Transform
from flows.nodes.trigger_manual import ManualTrigger
from flows.nodes.trigger_schedule import ScheduleTrigger
from flows.nodes.trigger_webhook import WebhookTrigger
from translator import GRAPH_FORMAT, validate_graph
from translator.nodetypes import get_registry

#: How an expression that did not translate is kept: a plain string the translator leaves alone.
MARK = "n8n-expression: "
_BASE = "n8n-nodes-base."
_LANGCHAIN = "@n8n/n8n-nodes-langchain."
_SKIPPED_TYPES = {_BASE + "stickyNote": "a sticky note (a comment on the canvas)"}
_EXPRESSION_CODES = frozenset(
    {
        "expression_syntax",
        "expression_limit",
        "unknown_name",
        "unknown_function",
        "loop_outside_body",
        "unknown_step",
        "step_not_upstream",
    }
)
#: Gorax credential type slugs by the n8n credential type that a node names.
_CREDENTIAL_TYPES = {
    "slackApi": "slack-credentials",
    "slackOAuth2Api": "slack-credentials",
    "smtp": "smtp-server",
    "githubApi": "github-token",
    "githubOAuth2Api": "github-token",
    "jiraSoftwareCloudApi": "jira-credentials",
    "jiraSoftwareServerApi": "jira-credentials",
    "pagerDutyApi": "pagerduty-key",
    "pagerDutyOAuth2Api": "pagerduty-key",
    "postgres": "database-url",
    "aws": "aws-credentials",
    "openAiApi": "llm-provider",
    "anthropicApi": "llm-provider",
    "httpHeaderAuth": "http-auth",
    "httpBasicAuth": "http-auth",
    "httpQueryAuth": "http-auth",
    "httpBearerAuth": "http-auth",
}


class N8nImportError(ValueError):
    """The input is not an n8n workflow; ``path`` is where in the JSON (``nodes[2].name``)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = path


@dataclass
class ImportReport:
    """What the import did, node by node: the lists a person works through after importing."""

    workflow_name: str
    mapped: list[dict[str, Any]] = field(default_factory=list)
    placeholders: list[dict[str, Any]] = field(default_factory=list)
    expressions: list[dict[str, Any]] = field(default_factory=list)
    credentials: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_name": self.workflow_name,
            "summary": {
                "nodes": len(self.mapped) + len(self.placeholders),
                "mapped": len(self.mapped),
                "placeholders": len(self.placeholders),
                "expressions_not_translated": len(self.expressions),
                "credentials_needed": len(self.credentials),
                "skipped": len(self.skipped),
            },
            "mapped": self.mapped,
            "placeholders": self.placeholders,
            "expressions": self.expressions,
            "credentials": self.credentials,
            "notes": self.notes,
            "skipped": self.skipped,
        }

    def lines(self) -> list[str]:
        """The report as text, one finding a line (what ``gorax import n8n`` prints)."""
        summary = self.to_dict()["summary"]
        out = [
            f"Imported n8n workflow {self.workflow_name!r}: {summary['nodes']} nodes, "
            f"{summary['mapped']} mapped, {summary['placeholders']} placeholders, "
            f"{summary['expressions_not_translated']} expressions not translated, "
            f"{summary['credentials_needed']} credentials needed"
        ]
        for item in self.mapped:
            out.append(f"  mapped       {item['node_id']}: {item['n8n_type']} -> {item['gorax_type']}")
        for item in self.placeholders:
            out.append(f"  placeholder  {item['node_id']}: {item['n8n_type']}: {item['reason']}")
        for item in self.expressions:
            out.append(f"  expression   {item['node_id']} {item['path']}: {item['expression']!r}: {item['reason']}")
        for item in self.credentials:
            out.append(
                f"  credential   needs credential {item['name']!r} of type {item['type']} "
                f"(n8n {item['n8n_type']} {item['n8n_name']!r}) for {', '.join(item['nodes'])}"
            )
        for item in self.notes:
            out.append(f"  note         {item['node_id']}: {item['message']}")
        for item in self.skipped:
            out.append(f"  skipped      {item['n8n_name']!r} ({item['n8n_type']}): {item['reason']}")
        return out


@dataclass
class ImportResult:
    graph: dict[str, Any]
    report: ImportReport


class _Expr(str):
    """A config string made from an n8n expression; remembers the original (for the report)."""

    original: str

    def __new__(cls, value: str, original: str) -> _Expr:
        made = super().__new__(cls, value)
        made.original = original
        return made


class _Unmapped(Exception):
    """A node that becomes a placeholder; the message is the reason."""


@dataclass
class _N8nNode:
    index: int
    raw: dict[str, Any]
    name: str
    type: str
    version: float
    params: dict[str, Any]
    id: str = ""
    parent: str | None = None
    upstream: list[tuple[str, int]] = field(default_factory=list)  # (source name, source output)

    @property
    def short_type(self) -> str:
        return self.type.rsplit(".", 1)[-1]


def import_n8n(document: Any, *, name: str | None = None) -> ImportResult:
    """Map an n8n workflow document to a ``gorax/graph@1`` graph and a report."""
    return _Importer(document, name).run()


def _id_for(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "node"
    if not base[0].isalpha():
        base = f"n_{base}"
    base = base[:56].rstrip("_")
    candidate, counter = base, 2
    while candidate in taken:
        candidate = f"{base}_{counter}"
        counter += 1
    taken.add(candidate)
    return candidate


def _rl(value: Any) -> Any:
    """The value of an n8n resource locator (``{"__rl": true, "value": ...}``) or the value."""
    if isinstance(value, dict) and value.get("__rl"):
        return value.get("value")
    return value


class _Importer:
    def __init__(self, document: Any, name: str | None) -> None:
        self.document = _check_document(document)
        self.name = (name or self.document.get("name") or "Imported from n8n").strip()[:200] or "Imported from n8n"
        self.report = ImportReport(workflow_name=self.name)
        self.nodes: dict[str, _N8nNode] = {}
        self.edges: list[dict[str, Any]] = []
        self.out_nodes: list[dict[str, Any]] = []
        self.credentials: dict[tuple[str, str], dict[str, Any]] = {}
        self.loops: dict[str, int] = {}  # loop node name -> the output index its body starts from
        #: The Gorax type each n8n node maps to (None: a placeholder), by n8n name.
        self._mapped_cache: dict[str, Any] = {}

    # -- reading ---------------------------------------------------------------------------
    def run(self) -> ImportResult:
        taken: set[str] = set()
        for index, raw in enumerate(self.document["nodes"]):
            node = _N8nNode(
                index=index,
                raw=raw,
                name=raw["name"],
                type=raw["type"],
                version=float(raw.get("typeVersion") or 1),
                params=raw.get("parameters") or {},
            )
            if node.type in _SKIPPED_TYPES:
                self.report.skipped.append(
                    {
                        "n8n_name": node.name,
                        "n8n_type": node.type,
                        "reason": _SKIPPED_TYPES[node.type],
                        "text": str(node.params.get("content", ""))[:2000],
                    }
                )
                continue
            node.id = _id_for(node.name, taken)
            self.nodes[node.name] = node
        for node in self.nodes.values():
            mapper = _MAPPERS.get(node.type)
            self._mapped_cache[node.name] = mapper[0] if mapper else None
        connections = self._connections()
        self._find_loops(connections)
        self._place_bodies(connections)
        for node in self.nodes.values():
            self.out_nodes.append(self._node(node))
        self._build_edges(connections)
        graph = {
            "format": GRAPH_FORMAT,
            "name": self.name,
            "description": f"Imported from n8n ({len(self.nodes)} nodes).",
            "nodes": self.out_nodes,
            "edges": self.edges,
        }
        self._workflow_notes()
        self._ensure_trigger(graph)
        self._settle(graph)
        self._record_expressions(graph)
        self.report.credentials = sorted(self.credentials.values(), key=lambda c: c["name"])
        return ImportResult(graph=json.loads(json.dumps(graph)), report=self.report)

    def _workflow_notes(self) -> None:
        """What the export holds besides nodes and connections, and what became of it."""
        pinned = self.document.get("pinData") or {}
        if isinstance(pinned, dict) and pinned:
            self.report.notes.append(
                {
                    "node_id": "(workflow)",
                    "message": f"pinned test data of {', '.join(sorted(map(str, pinned)))} was not imported "
                    "(Gorax runs take their input from the trigger)",
                }
            )
        settings = self.document.get("settings") or {}
        if isinstance(settings, dict):
            if settings.get("errorWorkflow"):
                self.report.notes.append(
                    {
                        "node_id": "(workflow)",
                        "message": f"n8n ran error workflow {settings['errorWorkflow']!r} on failure; in Gorax, "
                        "route a node's errors (on_error: route) or use a Prefect automation",
                    }
                )

    def _connections(self) -> list[tuple[_N8nNode, int, str, _N8nNode, int]]:
        """(source, output index, connection type, target, input index) for every connection."""
        found = []
        for source_name, by_type in self.document.get("connections", {}).items():
            source = self.nodes.get(source_name)
            for kind, outputs in by_type.items():
                for output_index, targets in enumerate(outputs or []):
                    for target_ref in targets or []:
                        target = self.nodes.get(target_ref["node"])
                        if source is None or target is None:
                            continue  # a sticky note cannot be connected; nothing else is missing
                        found.append((source, output_index, kind, target, int(target_ref.get("index") or 0)))
        for source, output_index, kind, target, _ in found:
            if kind == "main":
                target.upstream.append((source.name, output_index))
        return found

    def _find_loops(self, connections: list[tuple[_N8nNode, int, str, _N8nNode, int]]) -> None:
        for node in self.nodes.values():
            if node.short_type == "splitInBatches":
                # v3 ("Loop Over Items"): output 0 is "done", output 1 the loop; v1/v2: output 0 loops.
                self.loops[node.name] = 1 if node.version >= 3 else 0

    def _place_bodies(self, connections: list[tuple[_N8nNode, int, str, _N8nNode, int]]) -> None:
        """The nodes reached from a loop's loop output (until they lead back to it) are its body."""
        following: dict[str, list[tuple[int, str]]] = {}
        for source, output_index, kind, target, _ in connections:
            if kind == "main":
                following.setdefault(source.name, []).append((output_index, target.name))
        for loop_name, loop_output in self.loops.items():
            queue = [t for o, t in following.get(loop_name, []) if o == loop_output]
            seen: set[str] = set()
            while queue:
                current = queue.pop()
                if current == loop_name or current in seen:
                    continue
                node = self.nodes[current]
                mapped = self._mapped_cache.get(current)
                if node.parent is not None or current in self.loops or _looks_like_trigger(node):
                    continue
                if mapped is not None and mapped.is_trigger():
                    continue
                seen.add(current)
                node.parent = self.nodes[loop_name].id
                queue.extend(t for _, t in following.get(current, []))

    # -- scope of expressions --------------------------------------------------------------
    def _output_root(self, node: _N8nNode, depth: int = 0) -> str | None:
        """The CEL path n8n's ``$json`` means after ``node`` (the item it outputs).

        n8n runs a node once per item; Gorax runs it once per run. Where a node outputs a list
        of items (Code), ``$json`` after it reads the first item, which is what n8n does for
        the common single item; loops iterate the whole list (:meth:`items_root`).
        """
        mapped = self._mapped_cache.get(node.name)
        if node.short_type.startswith(("lmChat", "lm")) and node.type.startswith(_LANGCHAIN):
            return None  # a sub-node: no main output
        if mapped is None:
            return "trigger" if _looks_like_trigger(node) else f"steps.{node.id}"
        if mapped.is_trigger():
            return "trigger"
        if mapped is HttpRequest:
            return f"steps.{node.id}.body"
        if mapped is CodeJavaScript:
            return f"steps.{node.id}[0]"
        if mapped in (Delay, Condition, Switch) and depth < 50:
            # n8n's Wait, IF and Switch pass their items on; Gorax's output what they decided.
            main = self.inputs(node)
            if len(main) == 1 and self.nodes[main[0][0]].name not in self.loops:
                return self._output_root(self.nodes[main[0][0]], depth=depth + 1)
        return f"steps.{node.id}"

    def inputs(self, node: _N8nNode) -> list[tuple[str, int]]:
        """The node's main inputs, without a loop's own body leading back to it."""
        return sorted(
            {(s, o) for s, o in node.upstream if not (node.name in self.loops and self.nodes[s].parent == node.id)}
        )

    def items_root(self, node: _N8nNode) -> str | None:
        """The CEL path of all the items the node's single input receives (a loop's list)."""
        main = self.inputs(node)
        if len(main) != 1:
            return None
        source = self.nodes[main[0][0]]
        root = self._output_root(source)
        return root[: -len("[0]")] if root and root.endswith("[0]") else root

    def _scope(self, node: _N8nNode) -> Scope:
        main = self.inputs(node)
        json_root: str | None = None
        problem = "the node has no input"
        if len(main) == 1:
            source = self.nodes[main[0][0]]
            if source.name in self.loops and node.parent == source.id:
                json_root = "loop.item"
            else:
                json_root = self._output_root(source)
                problem = f"its input {source.name!r} has no output an expression can read"
        elif len(main) > 1:
            problem = f"the node has {len(main)} inputs, so $json names no single item"

        def node_root(name: str) -> str | None:
            other = self.nodes.get(name)
            return self._output_root(other) if other is not None else None

        return Scope(json_root=json_root, node_root=node_root, json_problem=problem, loop_index=node.parent is not None)

    def value(self, raw: Any, scope: Scope) -> Any:
        """An n8n parameter value as a Gorax config value (expressions translated or marked)."""
        if isinstance(raw, dict):
            if raw.get("__rl"):
                return self.value(raw.get("value"), scope)
            return {k: self.value(v, scope) for k, v in raw.items()}
        if isinstance(raw, list):
            return [self.value(v, scope) for v in raw]
        if not isinstance(raw, str):
            return raw
        if not raw.startswith("="):
            if "{{" in raw or "}}" in raw:
                return "{{ " + cel_string(raw) + " }}"
            return raw
        body = raw[1:]
        if "{{" not in body:
            return body
        try:
            return _Expr(template(body, scope), raw)
        except Untranslatable as exc:
            return _marked(raw, str(exc))

    # -- nodes -----------------------------------------------------------------------------
    def _node(self, node: _N8nNode) -> dict[str, Any]:
        mapper = _MAPPERS.get(node.type)
        base: dict[str, Any] = {"id": node.id, "name": node.name[:200]}
        position = node.raw.get("position")
        if isinstance(position, list) and len(position) == 2:
            base["position"] = {"x": position[0], "y": position[1]}
        if node.parent:
            base["parentId"] = node.parent
        reason = "n8n node type has no Gorax equivalent yet"
        if mapper is not None:
            try:
                gorax_type, config = mapper[1](self, node, self._scope(node))
            except _Unmapped as exc:
                reason = str(exc)
                self._mapped_cache[node.name] = None
            except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
                # parameters of a shape this mapper does not know (another typeVersion, hand edits)
                reason = f"its parameters are not in a form the importer knows ({type(exc).__name__}: {exc})"
                self._mapped_cache[node.name] = None
            else:
                out = {**base, "type": gorax_type.type, "config": config, **self._behaviour(node)}
                self.report.mapped.append(
                    {"node_id": node.id, "n8n_name": node.name, "n8n_type": node.type, "gorax_type": gorax_type.type}
                )
                return out
        return self._placeholder(node, base, reason)

    def _placeholder(self, node: _N8nNode, base: dict[str, Any], reason: str) -> dict[str, Any]:
        self._mapped_cache[node.name] = None
        trigger = _looks_like_trigger(node)
        kind = ImportPlaceholderTrigger if trigger else ImportPlaceholder
        extra = sorted({o for s, o in self._outputs_used(node) if o > 0})
        config = {
            "source": "n8n",
            "original_type": node.type,
            "original_name": node.name[:300],
            "reason": reason,
            "original": copy.deepcopy(node.raw),
            "outputs": [f"output_{o}" for o in extra],
        }
        self.report.placeholders.append(
            {"node_id": node.id, "n8n_name": node.name, "n8n_type": node.type, "reason": reason}
        )
        return {**base, "type": kind.type, "config": config}

    def _outputs_used(self, node: _N8nNode) -> Iterable[tuple[str, int]]:
        for other in self.nodes.values():
            for source, output in other.upstream:
                if source == node.name:
                    yield other.name, output

    def _behaviour(self, node: _N8nNode) -> dict[str, Any]:
        """Retry, error handling and disabled, from the n8n node's settings."""
        out: dict[str, Any] = {}
        raw = node.raw
        if raw.get("disabled"):
            out["disabled"] = True
        if raw.get("retryOnFail"):
            tries = int(raw.get("maxTries") or 3)
            out["retry"] = {
                "attempts": max(0, min(10, tries - 1)),
                "delay_seconds": float(raw.get("waitBetweenTries") or 1000) / 1000,
            }
        on_error = raw.get("onError") or ("continueRegularOutput" if raw.get("continueOnFail") else None)
        if on_error == "continueRegularOutput":
            out["on_error"] = "continue"
        elif on_error == "continueErrorOutput":
            out["on_error"] = "route"
        return out

    def credential(
        self, node: _N8nNode, accepted: Iterable[str], *, required: bool = True, for_node: _N8nNode | None = None
    ) -> str | None:
        """The Gorax credential name for the node's n8n credential (listed in the report)."""
        user = for_node or node
        creds = node.raw.get("credentials") or {}
        for n8n_type, ref in creds.items():
            gorax_type = _CREDENTIAL_TYPES.get(n8n_type)
            if gorax_type is None or gorax_type not in accepted:
                continue
            n8n_name = str((ref or {}).get("name") or n8n_type)
            name = _id_for(n8n_name, set())[:60]
            entry = self.credentials.setdefault(
                (name, gorax_type),
                {"name": name, "type": gorax_type, "n8n_type": n8n_type, "n8n_name": n8n_name, "nodes": []},
            )
            entry["nodes"].append(user.id)
            return name
        if not required:
            return None
        gorax_type = next(iter(accepted))
        name = f"{user.id}_credential"[:60]
        entry = self.credentials.setdefault(
            (name, gorax_type),
            {"name": name, "type": gorax_type, "n8n_type": "(none set)", "n8n_name": "", "nodes": []},
        )
        entry["nodes"].append(user.id)
        return name

    def note(self, node: _N8nNode, message: str) -> None:
        self.report.notes.append({"node_id": node.id, "message": message})

    # -- edges -----------------------------------------------------------------------------
    def _build_edges(self, connections: list[tuple[_N8nNode, int, str, _N8nNode, int]]) -> None:
        seen: set[tuple[str, str | None, str]] = set()
        by_id = {n["id"]: n for n in self.out_nodes}
        for source, output_index, kind, target, _ in connections:
            if kind != "main":
                if not (kind.startswith("ai_") and self._mapped_cache.get(target.name) is LlmChat):
                    self.note(
                        source,
                        f"the {kind!r} connection to {target.name!r} has no Gorax equivalent and was not kept",
                    )
                continue
            if source.name in self.loops:
                loop_output = self.loops[source.name]
                if output_index == loop_output:
                    continue  # into the loop's body: the body starts at the loop
            if target.name in self.loops and source.parent == target.id:
                continue  # back to the loop from its body: the next iteration
            handle = self._handle(source, output_index, by_id[source.id])
            if source.parent != target.parent:
                self.note(
                    target,
                    f"the connection from {source.name!r} crosses a loop's boundary and was not kept",
                )
                continue
            key = (source.id, handle, target.id)
            if key in seen:
                continue
            seen.add(key)
            edge: dict[str, Any] = {"id": _next_edge_id(self.edges), "source": source.id, "target": target.id}
            if handle is not None:
                edge["sourceHandle"] = handle
            self.edges.append(edge)
        self._break_cycles()

    def _break_cycles(self) -> None:
        """n8n lets a connection lead back to an earlier node (a retry loop); Gorax repeats work
        with a loop node only. Each connection that closes a cycle is left out and noted."""
        following: dict[str, list[dict[str, Any]]] = {}
        for edge in self.edges:
            following.setdefault(edge["source"], []).append(edge)
        names = {n.id: n for n in self.nodes.values()}
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        back: list[dict[str, Any]] = []
        for start in [n["id"] for n in self.out_nodes]:
            if start in state:
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            state[start] = 1
            while stack:
                current, position = stack[-1]
                leaving = following.get(current, [])
                if position >= len(leaving):
                    state[current] = 2
                    stack.pop()
                    continue
                stack[-1] = (current, position + 1)
                edge = leaving[position]
                target = edge["target"]
                if state.get(target) == 1:
                    back.append(edge)
                elif target not in state:
                    state[target] = 1
                    stack.append((target, 0))
        for edge in back:
            self.edges.remove(edge)
            self.note(
                names[edge["target"]],
                f"the connection from {names[edge['source']].name!r} leads back to this node (a cycle); "
                "Gorax repeats work with a loop node, so it was not kept",
            )

    def _handle(self, source: _N8nNode, output_index: int, out_node: dict[str, Any]) -> str | None:
        gorax = out_node["type"]
        config = out_node.get("config") or {}
        if gorax == Condition.type:
            return "true" if output_index == 0 else "false"
        if gorax == Switch.type:
            keys = list(config.get("cases") or {})
            return keys[output_index] if output_index < len(keys) else "default"
        if out_node.get("on_error") == "route" and output_index == 1:
            return "error"
        if gorax in (ImportPlaceholder.type, ImportPlaceholderTrigger.type):
            return f"output_{output_index}" if output_index > 0 else None
        return None

    # -- making it valid -------------------------------------------------------------------
    def _ensure_trigger(self, graph: dict[str, Any]) -> None:
        registry = get_registry()
        has_trigger = False
        for node in graph["nodes"]:
            node_type = registry.get(node["type"])
            if node_type is not None and node_type.is_trigger():
                has_trigger = True
        if has_trigger or not graph["nodes"]:
            return
        targets = {e["target"] for e in graph["edges"]}
        taken = {n["id"] for n in graph["nodes"]}
        trigger_id = _id_for("manual_trigger", taken)
        graph["nodes"].insert(0, {"id": trigger_id, "type": ManualTrigger.type, "name": "Manual trigger", "config": {}})
        for node in graph["nodes"][1:]:
            if node["id"] not in targets and not node.get("parentId"):
                graph["edges"].append({"id": _next_edge_id(graph["edges"]), "source": trigger_id, "target": node["id"]})
        self.report.notes.append(
            {"node_id": trigger_id, "message": "the n8n workflow has no trigger: a manual trigger was added"}
        )

    def _settle(self, graph: dict[str, Any]) -> None:
        """Validate; mark what the translator still refuses, or make the node a placeholder."""
        for _ in range(4):
            errors = validate_graph(json.loads(json.dumps(graph)))
            if not errors:
                return
            by_id = {n["id"]: n for n in graph["nodes"]}
            changed = False
            for error in errors:
                node = by_id.get(error.node_id or "")
                if node is None:
                    continue
                if error.code in _EXPRESSION_CODES and error.path.startswith("config."):
                    if _mark_field(node, error.path, error.message):
                        changed = True
                        continue
                if error.code == "trigger_has_incoming":
                    dropped = [e for e in graph["edges"] if e["target"] == node["id"]]
                    graph["edges"] = [e for e in graph["edges"] if e["target"] != node["id"]]
                    if dropped:
                        sources = ", ".join(sorted({e["source"] for e in dropped}))
                        self.report.notes.append(
                            {
                                "node_id": node["id"],
                                "message": f"a trigger takes no input: the connection from {sources} was not kept",
                            }
                        )
                        changed = True
                    continue
                if error.code in ("invalid_parent", "trigger_in_loop") and node.pop("parentId", None):
                    self.report.notes.append(
                        {"node_id": node["id"], "message": f"it was in a loop that was not mapped: {error.message}"}
                    )
                    changed = True
                    continue
                if node["type"] in (ImportPlaceholder.type, ImportPlaceholderTrigger.type):
                    continue
                if error.code == "unreachable_node":
                    continue  # handled below
                original = self.nodes.get(node.get("name", ""))
                if original is None:
                    continue
                self.report.mapped = [m for m in self.report.mapped if m["node_id"] != node["id"]]
                reason = f"the mapped {node['type']} node did not validate: {error.path}: {error.message}"
                replacement = self._placeholder(original, _base_of(node), reason)
                by_id[node["id"]] = replacement
                graph["nodes"] = [replacement if n["id"] == node["id"] else n for n in graph["nodes"]]
                changed = True
            for error in errors:
                if error.code == "invalid_handle" and error.edge_id:
                    changed = self._placeholder_handle(graph, error.edge_id) or changed
            unreachable = [e.node_id for e in errors if e.code == "unreachable_node" and e.node_id]
            if unreachable:
                self._connect_orphans(graph, unreachable)
                changed = True
            if not changed:
                break
        leftover = validate_graph(json.loads(json.dumps(graph)))
        if leftover:  # pragma: no cover - a mapping bug; say so rather than return a broken draft
            raise N8nImportError("the imported graph does not validate: " + "; ".join(str(e) for e in leftover))

    def _placeholder_handle(self, graph: dict[str, Any], edge_id: str) -> bool:
        """An edge leaving a node that became a placeholder keeps its handle: the placeholder
        gets that output."""
        edge = next((e for e in graph["edges"] if e.get("id") == edge_id), None)
        source = next((n for n in graph["nodes"] if edge and n["id"] == edge["source"]), None)
        if edge is None or source is None or "sourceHandle" not in edge:
            return False
        if source["type"] not in (ImportPlaceholder.type, ImportPlaceholderTrigger.type):
            return False
        outputs = source["config"].setdefault("outputs", [])
        if edge["sourceHandle"] in outputs:
            return False
        outputs.append(edge["sourceHandle"])
        return True

    def _connect_orphans(self, graph: dict[str, Any], orphans: list[str]) -> None:
        """n8n keeps nodes with no input (they never run); Gorax refuses them. They are kept,
        connected to the first trigger and disabled, so nothing is lost and nothing runs."""
        registry = get_registry()
        trigger = next(n["id"] for n in graph["nodes"] if (t := registry.get(n["type"])) and t.is_trigger())
        for node in graph["nodes"]:
            if node["id"] in orphans:
                node["disabled"] = True
                graph["edges"].append({"id": _next_edge_id(graph["edges"]), "source": trigger, "target": node["id"]})
                self.report.notes.append(
                    {
                        "node_id": node["id"],
                        "message": "the node has no input in n8n (it never ran there): it is connected to "
                        f"trigger '{trigger}' and disabled",
                    }
                )

    def _record_expressions(self, graph: dict[str, Any]) -> None:
        for node in graph["nodes"]:
            if node["type"] in (ImportPlaceholder.type, ImportPlaceholderTrigger.type):
                continue
            for path, value in _strings(node.get("config") or {}, "config"):
                if isinstance(value, _Marked):
                    self.report.expressions.append(
                        {"node_id": node["id"], "path": path, "expression": value.original, "reason": value.reason}
                    )


class _Marked(str):
    """An n8n expression kept as marked text; remembers the original and why."""

    original: str
    reason: str

    def __new__(cls, value: str, original: str, reason: str) -> _Marked:
        made = super().__new__(cls, value)
        made.original = original
        made.reason = reason
        return made


def _next_edge_id(edges: list[dict[str, Any]]) -> str:
    taken = {e.get("id") for e in edges}
    number = len(edges) + 1
    while f"e{number}" in taken:
        number += 1
    return f"e{number}"


def _marked(raw: str, reason: str) -> _Marked:
    text = raw[1:] if raw.startswith("=") else raw
    return _Marked(MARK + text.replace("{{", "{ {").replace("}}", "} }"), raw, reason)


def _mark_field(node: dict[str, Any], path: str, message: str) -> bool:
    """Replace the string at ``path`` (``config.a.b[0]``) with its marked original."""
    parts: list[str | int] = []
    for name, index in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", path[len("config") :]):
        parts.append(int(index) if index else name)
    holder: Any = node.get("config")
    for part in parts[:-1]:
        try:
            holder = holder[part]
        except (KeyError, IndexError, TypeError):
            return False
    if not parts:
        return False
    try:
        value = holder[parts[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    if not isinstance(value, str) or isinstance(value, _Marked):
        return False
    original = value.original if isinstance(value, _Expr) else value
    holder[parts[-1]] = _marked(original, message)
    return True


def _strings(value: Any, path: str) -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def _base_of(node: dict[str, Any]) -> dict[str, Any]:
    return {k: node[k] for k in ("id", "name", "position", "parentId") if k in node}


def _looks_like_trigger(node: _N8nNode) -> bool:
    short = node.short_type.lower()
    return short.endswith("trigger") or short in ("webhook", "cron", "interval", "start")


def _check_document(document: Any) -> dict[str, Any]:
    """The workflow object, or N8nImportError naming the JSON path that is wrong."""
    if isinstance(document, list):
        if len(document) == 1 and isinstance(document[0], dict):
            document = document[0]
        else:
            raise N8nImportError(f"expected one n8n workflow (a JSON object), got a list of {len(document)}", "$")
    if not isinstance(document, dict):
        raise N8nImportError(f"expected an n8n workflow (a JSON object), got {type(document).__name__}", "$")
    nodes = document.get("nodes")
    if not isinstance(nodes, list):
        raise N8nImportError("an n8n workflow has a 'nodes' list", "nodes")
    names: set[str] = set()
    for index, node in enumerate(nodes):
        where = f"nodes[{index}]"
        if not isinstance(node, dict):
            raise N8nImportError("a node is a JSON object", where)
        for key in ("name", "type"):
            if not isinstance(node.get(key), str) or not node[key].strip():
                raise N8nImportError(f"the node has no {key!r} (text)", f"{where}.{key}")
        if node["name"] in names:
            raise N8nImportError(f"two nodes are named {node['name']!r}", f"{where}.name")
        names.add(node["name"])
        if "parameters" in node and not isinstance(node["parameters"], dict):
            raise N8nImportError("'parameters' is a JSON object", f"{where}.parameters")
        position = node.get("position")
        if position is not None and (
            not isinstance(position, list)
            or len(position) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in position)
        ):
            raise N8nImportError("'position' is [x, y]", f"{where}.position")
        version = node.get("typeVersion")
        if version is not None and (isinstance(version, bool) or not isinstance(version, (int, float))):
            raise N8nImportError("'typeVersion' is a number", f"{where}.typeVersion")
    connections = document.get("connections", {})
    if not isinstance(connections, dict):
        raise N8nImportError("'connections' is a JSON object", "connections")
    for source, by_type in connections.items():
        where = f"connections[{json.dumps(source)}]"
        if source not in names:
            raise N8nImportError(f"connections leave from {source!r}, which is not a node", where)
        if not isinstance(by_type, dict):
            raise N8nImportError("a node's connections are a JSON object by type ('main')", where)
        for kind, outputs in by_type.items():
            if not isinstance(outputs, list):
                raise N8nImportError("connections are a list of outputs", f"{where}.{kind}")
            for output_index, targets in enumerate(outputs):
                if targets is None:
                    continue
                if not isinstance(targets, list):
                    raise N8nImportError("an output's connections are a list", f"{where}.{kind}[{output_index}]")
                for target_index, target in enumerate(targets):
                    at = f"{where}.{kind}[{output_index}][{target_index}]"
                    if not isinstance(target, dict) or not isinstance(target.get("node"), str):
                        raise N8nImportError("a connection is an object with a 'node' name", at)
                    index = target.get("index", 0)
                    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
                        raise N8nImportError("a connection's 'index' is a whole number", f"{at}.index")
                    if target["node"] not in names:
                        raise N8nImportError(
                            f"the connection goes to {target['node']!r}, which is not a node", f"{at}.node"
                        )
    return document


# --------------------------------------------------------------------------------------------
# The mappers: (importer, n8n node, expression scope) -> (Gorax node type, config).
# A mapper raises _Unmapped (the reason) for a use of the node it does not cover.

Mapper = Callable[[_Importer, _N8nNode, Scope], tuple[Any, dict[str, Any]]]


def _manual(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    return ManualTrigger, {}


def _webhook(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    raw_methods = p.get("httpMethod") or "GET"
    methods = [str(m).upper() for m in (raw_methods if isinstance(raw_methods, list) else [raw_methods])]
    method = ", ".join(methods)
    allowed = [m for m in methods if m in ("GET", "POST", "PUT", "PATCH", "DELETE")]
    if not allowed:
        raise _Unmapped(f"HTTP method {method} is not one a Gorax webhook accepts")
    auth = p.get("authentication") or "none"
    config: dict[str, Any] = {"methods": allowed, "signature": {"scheme": "none"}}
    if auth != "none":
        imp.note(
            node,
            f"n8n checked deliveries with {auth!r}; Gorax verifies a signature instead: set "
            "signature.scheme and a webhook-secret credential before publishing",
        )
    else:
        imp.note(node, "the n8n webhook accepted unsigned deliveries (scheme 'none'); consider a signature")
    if p.get("responseMode") in ("lastNode", "responseNode"):
        config["respond"] = "after_run"
    imp.note(node, f"the webhook gets a new Gorax URL; the n8n path {p.get('path', '')!r} is not kept")
    return WebhookTrigger, config


def _schedule(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    kind, config = _schedule_rule(imp, node)
    timezone = (imp.document.get("settings") or {}).get("timezone")
    if isinstance(timezone, str) and timezone not in ("", "DEFAULT"):
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            imp.note(node, f"the workflow's timezone {timezone!r} is not one Gorax knows: the schedule runs in UTC")
        else:
            config["timezone"] = timezone
    else:
        imp.note(node, "n8n used its instance's timezone; the schedule runs in UTC: set config.timezone if needed")
    return kind, config


def _schedule_rule(imp: _Importer, node: _N8nNode) -> tuple[Any, dict[str, Any]]:
    intervals = ((node.params.get("rule") or {}).get("interval")) or [{}]
    if len(intervals) > 1:
        imp.note(node, f"n8n had {len(intervals)} schedule rules; only the first was imported")
    rule = intervals[0] or {}
    kind = rule.get("field") or "days"
    minute = int(rule.get("triggerAtMinute") or 0)
    hour = int(rule.get("triggerAtHour") or 0)
    if kind == "cronExpression":
        fields = str(rule.get("expression") or "").split()
        if len(fields) == 6:
            imp.note(node, "the n8n cron had a seconds field; Gorax crons start at the minute")
            fields = fields[1:]
        if len(fields) != 5:
            raise _Unmapped(f"cron expression {rule.get('expression')!r} is not a 5- or 6-field cron")
        return ScheduleTrigger, {"cron": " ".join(fields)}
    if kind == "seconds":
        seconds = int(rule.get("secondsInterval") or 30)
        if seconds < 60:
            imp.note(node, f"every {seconds}s is more often than Gorax schedules (every 60 s at most)")
        return ScheduleTrigger, {"interval_seconds": max(60, seconds)}
    if kind == "minutes":
        return ScheduleTrigger, {"cron": f"*/{int(rule.get('minutesInterval') or 5)} * * * *"}
    if kind == "hours":
        return ScheduleTrigger, {"cron": f"{minute} */{int(rule.get('hoursInterval') or 1)} * * *"}
    if kind == "days":
        every = int(rule.get("daysInterval") or 1)
        return ScheduleTrigger, {"cron": f"{minute} {hour} {'*' if every == 1 else f'*/{every}'} * *"}
    if kind == "weeks":
        days = rule.get("triggerAtDay") or [0]
        if int(rule.get("weeksInterval") or 1) != 1:
            imp.note(node, "n8n ran every few weeks; a cron runs on those weekdays every week")
        return ScheduleTrigger, {"cron": f"{minute} {hour} * * {','.join(str(int(d)) for d in days)}"}
    if kind == "months":
        day = int(rule.get("triggerAtDayOfMonth") or 1)
        every = int(rule.get("monthsInterval") or 1)
        return ScheduleTrigger, {"cron": f"{minute} {hour} {day} {'*' if every == 1 else f'*/{every}'} *"}
    raise _Unmapped(f"schedule rule {kind!r} is not known")


def _pairs(imp: _Importer, items: Any, scope: Scope) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if isinstance(item, dict) and item.get("name"):
            out[str(item["name"])] = imp.value(item.get("value", ""), scope)
    return out


def _http(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    if node.version < 3:
        method = p.get("requestMethod") or "GET"
        config: dict[str, Any] = {"method": method, "url": imp.value(p.get("url", ""), scope)}
        if p.get("queryParametersUi"):
            config["query"] = _pairs(imp, p["queryParametersUi"].get("parameter"), scope)
        if p.get("headerParametersUi"):
            config["headers"] = _pairs(imp, p["headerParametersUi"].get("parameter"), scope)
        if p.get("bodyParametersUi"):
            config["json"] = _pairs(imp, p["bodyParametersUi"].get("parameter"), scope)
    else:
        config = {"method": p.get("method") or "GET", "url": imp.value(p.get("url", ""), scope)}
        if p.get("sendQuery"):
            if p.get("specifyQuery") == "json":
                raise _Unmapped("query parameters given as JSON text are not mapped")
            config["query"] = _pairs(imp, (p.get("queryParameters") or {}).get("parameters"), scope)
        if p.get("sendHeaders"):
            if p.get("specifyHeaders") == "json":
                raise _Unmapped("headers given as JSON text are not mapped")
            config["headers"] = _pairs(imp, (p.get("headerParameters") or {}).get("parameters"), scope)
        if p.get("sendBody"):
            content = p.get("contentType") or "json"
            if content == "json":
                if p.get("specifyBody") == "json":
                    body = p.get("jsonBody", "")
                    if isinstance(body, str) and not body.startswith("="):
                        try:
                            config["json"] = json.loads(body)
                        except ValueError:
                            raise _Unmapped("the JSON body is not valid JSON") from None
                    else:
                        raise _Unmapped("a JSON body written as an expression is not mapped")
                else:
                    config["json"] = _pairs(imp, (p.get("bodyParameters") or {}).get("parameters"), scope)
            elif content == "form-urlencoded":
                config["form"] = _pairs(imp, (p.get("bodyParameters") or {}).get("parameters"), scope)
            elif content == "raw":
                config["body"] = imp.value(p.get("body", ""), scope)
            else:
                raise _Unmapped(f"body content type {content!r} (files, multipart) is not mapped")
    options = p.get("options") or {}
    if isinstance(options.get("timeout"), (int, float)):
        config["timeout_seconds"] = max(0.001, min(600, options["timeout"] / 1000))
    if (options.get("response") or {}).get("response", {}).get("neverError"):
        config["fail_on_status"] = False
    if p.get("authentication") not in (None, "none"):
        config["credential"] = imp.credential(node, HttpRequest.credential_types)
    if config["method"] not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
        raise _Unmapped(f"HTTP method {config['method']!r}")
    return HttpRequest, config


_COMPARE = {
    "equals": "==",
    "equal": "==",
    "notEquals": "!=",
    "notEqual": "!=",
    "gt": ">",
    "larger": ">",
    "lt": "<",
    "smaller": "<",
    "gte": ">=",
    "largerEqual": ">=",
    "lte": "<=",
    "smallerEqual": "<=",
    "after": ">",
    "before": "<",
    "afterOrEquals": ">=",
    "beforeOrEquals": "<=",
}
_STRING_FUNCTIONS = {"contains": "contains", "startsWith": "startsWith", "endsWith": "endsWith", "regex": "matches"}


def _literal(value: Any, kind: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if kind != "string" else cel_string(str(value))
    if value is None:
        return "null"
    text = str(value)
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return cel_string(text)
        return repr(int(number)) if number.is_integer() and "." not in text else repr(number)
    if kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower()
    return cel_string(text)


def _side(imp: _Importer, value: Any, kind: str, scope: Scope) -> str:
    if isinstance(value, str) and value.startswith("="):
        if "{{" not in value:
            return _literal(value[1:], kind)
        return operand(value[1:], scope)
    return _literal(value, kind)


def _condition(imp: _Importer, left_raw: Any, right_raw: Any, kind: str, operation: str, scope: Scope) -> str:
    left = _side(imp, left_raw, kind, scope)
    negate = operation.startswith("not") and operation[3:4].isupper() and operation not in ("notEquals", "notEqual")
    base = operation[3].lower() + operation[4:] if negate else operation
    if base in ("exists", "empty") or operation in ("isEmpty", "isNotEmpty"):
        if base == "exists":
            text = left[1:-1] if left.startswith("(") and left.endswith(")") else left
            if not re.fullmatch(r"[A-Za-z_][\w.\[\]]*\.[A-Za-z_]\w*", text):
                raise Untranslatable(f"'{operation}' on a value that is not a field path")
            head, _, last = text.rpartition(".")
            cel = f"has({head}.{last})"
        else:
            cel = f"size({left}) == 0"
        return f"!({cel})" if negate or operation == "isNotEmpty" else cel
    if base in ("true", "false") and kind == "boolean":
        return f"{left} == {base}"
    right = _side(imp, right_raw, kind, scope)
    if base in _COMPARE:
        cel = f"{left} {_COMPARE[base]} {right}"
    elif base in _STRING_FUNCTIONS:
        cel = f"{left}.{_STRING_FUNCTIONS[base]}({right})"
    elif base in ("lengthEquals", "lengthGt", "lengthLt", "lengthGte", "lengthLte", "lengthNotEquals"):
        op = {
            "lengthEquals": "==",
            "lengthNotEquals": "!=",
            "lengthGt": ">",
            "lengthLt": "<",
            "lengthGte": ">=",
            "lengthLte": "<=",
        }
        cel = f"size({left}) {op[base]} {right}"
    else:
        raise Untranslatable(f"the {kind} operation {operation!r}")
    return f"!({cel})" if negate else cel


def _filter(imp: _Importer, node: _N8nNode, conditions: Any, scope: Scope, combinator: str | None = None) -> str:
    """Bare CEL for an n8n filter (IF v2, Switch v3 rules) or v1 conditions; raises _Unmapped."""
    parts: list[str] = []
    try:
        if isinstance(conditions, dict) and isinstance(conditions.get("conditions"), list):
            combinator = conditions.get("combinator") or "and"
            options = conditions.get("options") or {}
            for item in conditions["conditions"]:
                operator = item.get("operator") or {}
                kind = operator.get("type") or "string"
                operation = operator.get("operation") or "equals"
                parts.append(_condition(imp, item.get("leftValue"), item.get("rightValue"), kind, operation, scope))
            if options.get("caseSensitive") is False:
                imp.note(node, "n8n compared text without case; CEL comparisons are case-sensitive")
        elif isinstance(conditions, dict):
            for kind in ("boolean", "number", "string", "dateTime"):
                for item in conditions.get(kind) or []:
                    parts.append(
                        _condition(
                            imp, item.get("value1"), item.get("value2"), kind, item.get("operation") or "equal", scope
                        )
                    )
        else:
            raise Untranslatable("the conditions are not in a known form")
    except Untranslatable as exc:
        raise _Unmapped(f"condition not translated: {exc}") from None
    if not parts:
        raise _Unmapped("the node has no conditions")
    joiner = " || " if combinator in ("or", "any") else " && "
    return joiner.join(f"({p})" for p in parts) if len(parts) > 1 else parts[0]


def _if(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    combinator = p.get("combineOperation")
    return Condition, {"expression": _filter(imp, node, p.get("conditions") or {}, scope, combinator)}


def _switch(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    mode = p.get("mode") or "rules"
    if mode != "rules":
        raise _Unmapped(f"Switch mode {mode!r} (the output index is computed) is not mapped; use cases")
    rules = p.get("rules") or {}
    cases: dict[str, str] = {}
    if node.version >= 3:
        values = rules.get("values")
        if values is None and "conditions" in rules:
            values = [{"conditions": rules}]
        for index, rule in enumerate(values or []):
            key = f"output_{index}"
            if rule.get("renameOutput") and rule.get("outputKey"):
                key = re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(rule["outputKey"]))[:60] or key
                if key in cases or key == "default":
                    key = f"output_{index}"
            cases[key] = _filter(imp, node, rule.get("conditions") or {}, scope)
    else:
        value = p.get("value1")
        kind = p.get("dataType") or "number"
        for index, rule in enumerate(rules.get("rules") or []):
            output = int(rule.get("output", index) or 0)
            key = f"output_{output}"
            try:
                cel = _condition(imp, value, rule.get("value2"), kind, rule.get("operation") or "equal", scope)
            except Untranslatable as exc:
                raise _Unmapped(f"rule {index} not translated: {exc}") from None
            cases[key] = f"({cases[key]}) || ({cel})" if key in cases else cel
        if cases:
            # v1/v2 route by output index: keep the case keys in output order
            cases = dict(sorted(cases.items(), key=lambda kv: int(kv[0].split("_")[1])))
            if list(cases) != [f"output_{i}" for i in range(len(cases))]:
                raise _Unmapped("rules that skip outputs are not mapped")
    if not cases:
        raise _Unmapped("the Switch has no rules")
    return Switch, {"cases": cases}


def _merge(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    mode = node.params.get("mode") or "append"
    if mode not in ("append", "chooseBranch", "passThrough", "wait"):
        imp.note(
            node,
            f"n8n merged items with mode {mode!r}; Gorax's merge waits for every input and outputs a "
            "map from each input's node id to its output: combine them in the next node",
        )
    return Merge, {"mode": "all"}


def _loop(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    items = imp.items_root(node)
    if items is None:
        raise _Unmapped(f"the loop's items cannot be named: {scope.json_problem}")
    batch = (node.params or {}).get("batchSize")
    if batch not in (None, 1):
        imp.note(node, f"n8n looped in batches of {batch}; Gorax runs the body once per item")
    return Loop, {"mode": "foreach", "items": "{{ " + items + " }}"}


def _set_path(target: dict[str, Any], name: str, value: Any, dotted: bool) -> None:
    parts = name.split(".") if dotted else [name]
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[parts[-1]] = value


def _typed(value: Any, kind: str) -> Any:
    if isinstance(value, str) and not value.startswith("=") and kind in ("number", "boolean"):
        if kind == "number":
            try:
                number = float(value)
                return int(number) if number.is_integer() else number
            except ValueError:
                return value
        return value.lower() == "true"
    if isinstance(value, str) and not value.startswith("=") and kind in ("object", "array", "json"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _set(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    mode = p.get("mode") or "manual"
    options = p.get("options") or {}
    dotted = options.get("dotNotation", True) is not False
    out: dict[str, Any] = {}
    if mode == "raw":
        raw = p.get("jsonOutput", "")
        if isinstance(raw, str) and not raw.startswith("="):
            try:
                out = json.loads(raw)
            except ValueError:
                raise _Unmapped("the JSON output is not valid JSON") from None
        else:
            raise _Unmapped("JSON output written as an expression is not mapped")
    elif node.version >= 3.3:
        for item in (p.get("assignments") or {}).get("assignments") or []:
            kind = item.get("type") or "string"
            _set_path(out, str(item.get("name", "")), imp.value(_typed(item.get("value"), kind), scope), dotted)
    elif node.version >= 3:
        for item in (p.get("fields") or {}).get("values") or []:
            kind = item.get("type") or "stringValue"
            raw_value = item.get(kind) if kind in item else item.get("stringValue")
            _set_path(out, str(item.get("name", "")), imp.value(raw_value, scope), dotted)
    else:
        for kind in ("string", "number", "boolean"):
            for item in (p.get("values") or {}).get(kind) or []:
                _set_path(out, str(item.get("name", "")), imp.value(_typed(item.get("value"), kind), scope), dotted)
    keep = p.get("includeOtherFields") or (node.version < 3 and not p.get("keepOnlySet"))
    if keep and (p.get("include") or "all") != "none":
        if scope.json_root is not None and out:
            imp.note(
                node,
                "n8n kept the input's other fields too; Gorax's transform outputs only the fields set "
                f"(the input is {scope.json_root})",
            )
        elif scope.json_root is not None:
            return Transform, {"value": "{{ " + scope.json_root + " }}"}
    return Transform, {"value": out}


#: Runs the n8n Code node's JavaScript with the names it expects: ``items``, ``$input``,
#: ``$json`` (per item) over the node's input, and turns ``[{json: ...}]`` back into values.
_CODE_PRELUDE = """const __list = Array.isArray(input) ? input : (input === null || input === undefined ? [] : [input]);
const items = __list.map((j) => (j !== null && typeof j === "object" && "json" in j ? j : { json: j }));
const $input = { all: () => items, first: () => items[0], last: () => items[items.length - 1], item: items[0] };
const __unwrap = (r) => (Array.isArray(r) ? r.map((i) => (i !== null && typeof i === "object" && "json" in i ? i.json : i)) : (r !== null && typeof r === "object" && "json" in r ? r.json : r));
"""


def _code(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    language = p.get("language") or "javaScript"
    if language != "javaScript":
        raise _Unmapped(f"code in {language!r}: Gorax runs JavaScript only")
    code = p.get("jsCode") if node.short_type == "code" else p.get("functionCode")
    if not isinstance(code, str) or not code.strip():
        raise _Unmapped("the node has no code")
    if (p.get("mode") or "runOnceForAllItems") == "runOnceForEachItem":
        body = (
            _CODE_PRELUDE
            + "return __unwrap(items.map((item) => { const $json = item.json; return __unwrap((function () {\n"
            + code
            + "\n})()); }));"
        )
    else:
        body = (
            _CODE_PRELUDE
            + "const $json = items.length ? items[0].json : {};\nreturn __unwrap((function () {\n"
            + code
            + "\n})());"
        )
    imp.note(
        node,
        "the JavaScript runs in Gorax's sandbox as written, with items, $input and $json over the "
        "node's input; other n8n helpers ($('Node'), $items, DateTime, require) are not there",
    )
    config: dict[str, Any] = {"code": body}
    items = imp.items_root(node)
    if items is not None:
        config["input"] = "{{ " + items + " }}"
    return CodeJavaScript, config


_WAIT_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def _wait(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    resume = p.get("resume") or "timeInterval"
    if resume == "timeInterval":
        amount = p.get("amount", 1)
        unit = p.get("unit") or ("hours" if node.version < 1.1 else "seconds")
        if isinstance(amount, str) and amount.startswith("="):
            raise _Unmapped("a wait whose length is an expression is not mapped")
        seconds = float(amount) * _WAIT_UNITS.get(unit, 1)
        if seconds > 7 * 86400:
            raise _Unmapped(f"a wait of {seconds:.0f}s is longer than a Gorax delay (7 days): use a schedule")
        return Delay, {"seconds": seconds}
    if resume == "specificTime":
        return Delay, {"until": imp.value(p.get("dateTime", ""), scope)}
    raise _Unmapped(
        f"the Wait resumes on {resume!r} (an HTTP call or a form sent to n8n); in Gorax a run waits for "
        "people with a human approval node: replace this with one and choose its assignees"
    )


def _execute_workflow(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    source = p.get("source") or "database"
    wait = (p.get("options") or {}).get("waitForSubWorkflow", True) is not False
    config: dict[str, Any] = {"wait": True}
    if scope.json_root is not None:
        config["input"] = "{{ " + scope.json_root + " }}"
    if source == "parameter":
        try:
            inner = json.loads(p.get("workflowJson") or "")
        except ValueError:
            raise _Unmapped("the inline workflow JSON is not valid JSON") from None
        try:
            result = import_n8n(inner, name=f"{node.name} (inline)")
        except N8nImportError as exc:
            raise _Unmapped(f"the inline workflow could not be imported: {exc}") from None
        if result.report.placeholders:
            names = ", ".join(f"{x['node_id']} ({x['n8n_type']})" for x in result.report.placeholders)
            raise _Unmapped(f"the inline workflow has nodes that were not mapped: {names}")
        for item in result.report.expressions:
            imp.note(node, f"inline workflow {item['node_id']} {item['path']}: expression not translated")
        config["graph"] = result.graph
        if not wait:
            imp.note(node, "n8n did not wait for the inline workflow; Gorax always waits for an inline graph")
        return Subworkflow, config
    if source == "database":
        workflow = _rl(p.get("workflowId"))
        if not workflow:
            raise _Unmapped("the node names no workflow")
        config["workflow"] = str(workflow)
        config["wait"] = wait
        imp.note(
            node,
            f"it runs n8n workflow {workflow!r}: import that workflow too and put its Gorax workflow id "
            "in config.workflow",
        )
        return Subworkflow, config
    raise _Unmapped(f"workflow source {source!r} is not mapped")


def _text(imp: _Importer, value: Any, scope: Scope) -> Any:
    return imp.value(value if value is not None else "", scope)


def _slack(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    resource = p.get("resource") or "message"
    operation = p.get("operation") or "post"
    credential = imp.credential(node, ("slack-credentials",))
    if resource != "message":
        raise _Unmapped(f"Slack {resource} {operation} is not mapped")
    text = _text(imp, p.get("text"), scope)
    if (p.get("messageType") or "text") == "block":
        raise _Unmapped("Slack Block Kit messages are not mapped")
    if operation == "post":
        if p.get("select") == "user":
            return SlackSendDm, {"credential": credential, "user": _text(imp, _rl(p.get("user")), scope), "text": text}
        channel = p.get("channelId") if node.version >= 2 else p.get("channel")
        return SlackSendMessage, {"credential": credential, "channel": _text(imp, _rl(channel), scope), "text": text}
    if operation == "update":
        return SlackUpdateMessage, {
            "credential": credential,
            "channel": _text(imp, _rl(p.get("channelId")), scope),
            "ts": _text(imp, p.get("ts"), scope),
            "text": text,
        }
    raise _Unmapped(f"Slack message {operation} is not mapped")


def _addresses(value: Any) -> list[str]:
    if isinstance(value, str) and not value.startswith("="):
        return [a.strip() for a in value.split(",") if a.strip()]
    raise _Unmapped("recipients written as an expression are not mapped (Gorax wants a list)")


def _email(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    if (p.get("operation") or "send") != "send":
        raise _Unmapped(f"e-mail operation {p.get('operation')!r} (send and wait) is not mapped")
    config: dict[str, Any] = {
        "credential": imp.credential(node, ("smtp-server",)),
        "to": _addresses(p.get("toEmail", "")),
        "subject": _text(imp, p.get("subject"), scope) or "(no subject)",
    }
    options = p.get("options") or {}
    if options.get("ccEmail"):
        config["cc"] = _addresses(options["ccEmail"])
    if options.get("bccEmail"):
        config["bcc"] = _addresses(options["bccEmail"])
    email_format = p.get("emailFormat") or ("html" if "html" in p else "text")
    if email_format in ("html", "both"):
        config["html"] = _text(imp, p.get("html"), scope)
    if email_format in ("text", "both") or "text" in p:
        config["text"] = _text(imp, p.get("text"), scope)
    if p.get("fromEmail"):
        imp.note(node, f"the sender {p['fromEmail']!r} comes from the SMTP credential in Gorax")
    return EmailSend, config


def _github(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    resource = p.get("resource") or "issue"
    operation = p.get("operation") or "create"
    owner, repo = _rl(p.get("owner")), _rl(p.get("repository"))
    if not isinstance(owner, str) or not isinstance(repo, str) or owner.startswith("=") or repo.startswith("="):
        raise _Unmapped("the repository is an expression; Gorax wants 'owner/name' written out")
    base = {"credential": imp.credential(node, ("github-token",)), "repository": f"{owner}/{repo}"}
    if resource == "issue" and operation == "create":
        fields = p.get("additionalFields") or p.get("additionalParameters") or {}
        config = {**base, "title": _text(imp, p.get("title"), scope), "body": _text(imp, p.get("body"), scope)}
        labels = [x.get("label") for x in fields.get("labels") or [] if isinstance(x, dict)]
        if labels:
            config["labels"] = labels
        return GitHubCreateIssue, config
    if resource == "issue" and operation == "createComment":
        number = p.get("issueNumber")
        if not isinstance(number, int):
            raise _Unmapped("the issue number is an expression; Gorax wants a number")
        return GitHubCreateComment, {**base, "issue_number": number, "body": _text(imp, p.get("body"), scope)}
    raise _Unmapped(f"GitHub {resource} {operation} is not mapped")


def _jira(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    resource = p.get("resource") or "issue"
    operation = p.get("operation") or "create"
    credential = imp.credential(node, ("jira-credentials",))
    if resource == "issue" and operation == "create":
        fields = p.get("additionalFields") or {}
        config = {
            "credential": credential,
            "project": str(_rl(p.get("project")) or ""),
            "summary": _text(imp, p.get("summary"), scope),
        }
        if fields.get("description"):
            config["description"] = _text(imp, fields["description"], scope)
        imp.note(node, "n8n named the project and issue type by id; check config.project and config.issue_type")
        return JiraCreateIssue, config
    if resource == "issueComment" and operation == "add":
        return JiraAddComment, {
            "credential": credential,
            "issue": _text(imp, p.get("issueKey"), scope),
            "body": _text(imp, p.get("comment"), scope),
        }
    raise _Unmapped(f"Jira {resource} {operation} is not mapped")


def _pagerduty(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    resource = p.get("resource") or "incident"
    operation = p.get("operation") or "create"
    if resource != "incident" or operation != "create":
        raise _Unmapped(f"PagerDuty {resource} {operation} is not mapped")
    imp.note(
        node,
        "n8n created the incident through PagerDuty's REST API (service id, e-mail); Gorax sends an "
        "Events API v2 trigger with an integration key credential",
    )
    return PagerDutyCreateIncident, {
        "credential": imp.credential(node, ("pagerduty-key",)),
        "summary": _text(imp, p.get("title"), scope),
    }


def _postgres(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    operation = p.get("operation") or "insert"
    if operation != "executeQuery":
        raise _Unmapped(
            f"Postgres {operation!r} is not mapped; write the SQL in a {DbQuery.type} or {DbExecute.type} node"
        )
    sql = p.get("query")
    if not isinstance(sql, str) or sql.startswith("=") or "{{" in sql:
        raise _Unmapped("SQL with expressions in it is not mapped: Gorax takes values as :name parameters")
    replacement = (p.get("options") or {}).get("queryReplacement") or (p.get("additionalFields") or {}).get(
        "queryParams"
    )
    parameters: dict[str, Any] = {}
    if replacement:
        if not isinstance(replacement, str) or replacement.startswith("="):
            raise _Unmapped("query parameters written as an expression are not mapped")
        values = [v.strip() for v in replacement.split(",")]
        for index, value in enumerate(values, start=1):
            parameters[f"p{index}"] = imp.value(value, scope)
        sql = re.sub(r"\$(\d+)", lambda m: f":p{m.group(1)}", sql)
    kind = DbQuery if sql.lstrip().lower().startswith(("select", "with")) else DbExecute
    config: dict[str, Any] = {"credential": imp.credential(node, ("database-url",)), "sql": sql}
    if parameters:
        config["parameters"] = parameters
    return kind, config


def _s3(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    resource = p.get("resource") or "file"
    operation = p.get("operation") or "download"
    if resource != "file":
        raise _Unmapped(f"S3 {resource} {operation} is not mapped")
    base = {
        "credential": imp.credential(node, ("aws-credentials",)),
        "bucket": _text(imp, p.get("bucketName"), scope),
    }
    if operation == "upload":
        config = {**base, "key": _text(imp, p.get("fileName"), scope)}
        if p.get("binaryData", True) is not False:
            if scope.json_root is None:
                raise _Unmapped(f"the file to upload cannot be named: {scope.json_problem}")
            config["json_content"] = "{{ " + scope.json_root + " }}"
            imp.note(
                node,
                f"n8n uploaded the binary property {p.get('binaryPropertyName') or 'data'!r}; Gorax stores "
                "the node's input as JSON: change config.content if a file is meant",
            )
        else:
            config["content"] = _text(imp, p.get("fileContent"), scope)
        return S3PutObject, config
    if operation == "download":
        return S3GetObject, {**base, "key": _text(imp, p.get("fileKey"), scope)}
    raise _Unmapped(f"S3 file {operation} is not mapped")


def _messages(imp: _Importer, values: Any, scope: Scope) -> list[dict[str, Any]]:
    out = []
    for item in values or []:
        role = item.get("role") or "user"
        if role not in ("system", "user", "assistant"):
            role = "user"
        out.append({"role": role, "content": _text(imp, item.get("content"), scope)})
    return out


def _openai(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    p = node.params
    resource = p.get("resource") or ("text" if node.type.startswith(_LANGCHAIN) else "chat")
    operation = p.get("operation") or ("message" if node.type.startswith(_LANGCHAIN) else "complete")
    if (resource, operation) not in (("text", "message"), ("chat", "complete"), ("text", "complete")):
        raise _Unmapped(f"OpenAI {resource} {operation} is not mapped")
    model = _rl(p.get("modelId") if "modelId" in p else p.get("model"))
    messages = _messages(imp, ((p.get("messages") or p.get("prompt") or {}).get("values")), scope)
    if not messages and p.get("prompt") and isinstance(p["prompt"], str):
        messages = [{"role": "user", "content": _text(imp, p["prompt"], scope)}]
    if not messages:
        raise _Unmapped("the node has no messages")
    config: dict[str, Any] = {"credential": imp.credential(node, ("llm-provider",)), "messages": messages}
    if isinstance(model, str) and model and not model.startswith("="):
        config["model"] = model
    return LlmChat, config


def _chain(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    """An LLM chain: its prompt, with the model and credential of the chat model connected to it."""
    p = node.params
    model_node = None
    for source_name, by_type in imp.document.get("connections", {}).items():
        for target in (by_type.get("ai_languageModel") or [[]])[0] or []:
            if target.get("node") == node.name:
                model_node = imp.nodes.get(source_name)
    if model_node is None:
        raise _Unmapped("the chain has no chat model connected")
    if not model_node.short_type.startswith("lmChatOpenAi") and not model_node.short_type.startswith("lmOpenAi"):
        raise _Unmapped(f"chat model {model_node.type!r} is not mapped (OpenAI models are)")
    if (p.get("promptType") or "auto") == "auto":
        text = "={{ $json.chatInput }}"
    else:
        text = p.get("text") or ""
    messages = [{"role": "user", "content": _text(imp, text, scope)}]
    for item in ((p.get("messages") or {}).get("messageValues")) or []:
        if item.get("type") == "SystemMessagePromptTemplate":
            messages.insert(0, {"role": "system", "content": _text(imp, item.get("message"), scope)})
    config: dict[str, Any] = {
        "credential": imp.credential(model_node, ("llm-provider",), for_node=node),
        "messages": messages,
    }
    model = _rl(model_node.params.get("model"))
    if isinstance(model, str) and model and not model.startswith("="):
        config["model"] = model
    options = model_node.params.get("options") or {}
    if isinstance(options.get("temperature"), (int, float)):
        config["temperature"] = options["temperature"]
    imp.note(node, f"the chat model {model_node.name!r} is folded into this node (model and credential)")
    return LlmChat, config


def _chat_model(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    raise _Unmapped("a chat model alone does nothing in Gorax: it is folded into the LLM chain it feeds")


def _noop(imp: _Importer, node: _N8nNode, scope: Scope) -> tuple[Any, dict[str, Any]]:
    return Transform, {"value": "{{ " + scope.json_root + " }}" if scope.json_root else None}


_MAPPERS: dict[str, tuple[Any, Mapper]] = {
    _BASE + "manualTrigger": (ManualTrigger, _manual),
    _BASE + "start": (ManualTrigger, _manual),
    _BASE + "executeWorkflowTrigger": (ManualTrigger, _manual),
    _BASE + "webhook": (WebhookTrigger, _webhook),
    _BASE + "scheduleTrigger": (ScheduleTrigger, _schedule),
    _BASE + "httpRequest": (HttpRequest, _http),
    _BASE + "if": (Condition, _if),
    _BASE + "switch": (Switch, _switch),
    _BASE + "merge": (Merge, _merge),
    _BASE + "splitInBatches": (Loop, _loop),
    _BASE + "set": (Transform, _set),
    _BASE + "code": (CodeJavaScript, _code),
    _BASE + "function": (CodeJavaScript, _code),
    _BASE + "wait": (Delay, _wait),
    _BASE + "executeWorkflow": (Subworkflow, _execute_workflow),
    _BASE + "slack": (SlackSendMessage, _slack),
    _BASE + "emailSend": (EmailSend, _email),
    _BASE + "github": (GitHubCreateIssue, _github),
    _BASE + "jira": (JiraCreateIssue, _jira),
    _BASE + "pagerDuty": (PagerDutyCreateIncident, _pagerduty),
    _BASE + "postgres": (DbQuery, _postgres),
    _BASE + "awsS3": (S3PutObject, _s3),
    _BASE + "openAi": (LlmChat, _openai),
    _LANGCHAIN + "openAi": (LlmChat, _openai),
    _LANGCHAIN + "chainLlm": (LlmChat, _chain),
    _LANGCHAIN + "lmChatOpenAi": (None, _chat_model),
    _BASE + "noOp": (Transform, _noop),
}
