"""Eject: a graph as a readable Prefect flow file that runs with Prefect alone.

:func:`eject_graph` compiles the graph (:mod:`translator.plan`) and writes one ``@task`` per node,
named after the node id, and one ``@flow`` whose body is the graph's control flow: routed edges
become ``if``/``elif``, independent nodes are submitted together and waited on (fan-out, join),
a loop's body is a ``for`` or ``while``, a node that waits for a person pauses the flow run, and
the result node's output is the return value. What a node does comes from its type's
:meth:`~translator.nodetypes.NodeType.eject` hook; a type without one makes the eject fail with
an error naming every such node (id and type): a file that runs but silently does less than the
graph would be worse than none.

Templates and bare CEL stay CEL, as calls to ``cel(expression, scope)`` of the helper module
written beside the flow file (:data:`HELPER_FILE`, the source of ``translator/_gorax_cel.py``).
The output is formatted as ``ruff format`` formats it (line length 88) for the usual shapes.
Pure: no I/O besides reading the helper's source from this package.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from translator.errors import TranslatorError
from translator.expressions import Template
from translator.models import Graph
from translator.nodetypes import Ejected, NodeRegistry, block_name, input_key
from translator.plan import Plan, PlanEdge, PlanNode, compile_graph

HELPER_MODULE = "gorax_cel"
HELPER_FILE = f"{HELPER_MODULE}.py"
LINE = 88
_INDENT = "    "


class EjectError(TranslatorError):
    """The graph holds nodes whose types cannot be ejected; ``nodes`` lists (node id, type)."""

    def __init__(self, nodes: Sequence[tuple[str, str]]) -> None:
        self.nodes = list(nodes)
        listed = ", ".join(f"node '{node_id}' ({slug})" for node_id, slug in self.nodes)
        super().__init__(f"cannot eject {listed}: the node type has no Python form yet")


@dataclass(frozen=True)
class EjectedFlow:
    """An ejected graph: the flow file, the helper to write beside it, what the user must create."""

    filename: str
    source: str
    helper_source: str
    blocks: tuple[tuple[str, str, str], ...]
    helper_filename: str = HELPER_FILE


def helper_source() -> str:
    """The CEL helper module's source (written beside every ejected flow as ``gorax_cel.py``)."""
    return resources.files("translator").joinpath("_gorax_cel.py").read_text()


def eject_graph(document: dict[str, Any] | Graph, *, registry: NodeRegistry | None = None) -> EjectedFlow:
    """The graph as a Prefect flow file; raises GraphValidationError or :class:`EjectError`."""
    plan = compile_graph(document, registry=registry)
    return _Ejector(plan).build()


# ------------------------------------------------------------------ source formatting


def py_str(text: str) -> str:
    """A Python string literal as ``ruff format`` writes it (double quotes unless that escapes more)."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == quote:
            out.append("\\" + quote)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif not char.isprintable():
            out.append(repr(char)[1:-1])
        else:
            out.append(char)
    return quote + "".join(out) + quote


@dataclass
class _Seq:
    """A bracketed list of items: a call's arguments, a dict, a list."""

    opening: str  # "name(", "{", "["
    items: list[Any]
    closing: str


@dataclass
class _Pair:
    lead: str  # '"key": ' or 'name='
    value: Any


def _flat(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, _Pair):
        return node.lead + _flat(node.value)
    return node.opening + ", ".join(_flat(item) for item in node.items) + node.closing


def emit(node: Any, indent: int, lead: str = "", tail: str = "") -> list[str]:
    """``lead + node + tail`` as lines at ``indent`` levels, split as ruff format splits it."""
    pad = _INDENT * indent
    one = pad + lead + _flat(node) + tail
    if len(one) <= LINE or isinstance(node, str) or not node.items:
        return [one]
    if isinstance(node, _Pair):
        return emit(node.value, indent, lead + node.lead, tail)
    inner = _INDENT * (indent + 1) + ", ".join(_flat(item) for item in node.items)
    if len(inner) <= LINE and node.opening.endswith("("):
        return [pad + lead + node.opening, inner, pad + node.closing + tail]
    lines = [pad + lead + node.opening]
    for item in node.items:
        if isinstance(item, _Pair):
            lines += emit(item.value, indent + 1, item.lead, ",")
        else:
            lines += emit(item, indent + 1, "", ",")
    return [*lines, pad + node.closing + tail]


def _config_tree(value: Any, path: tuple[Any, ...], templates: Mapping[tuple[Any, ...], Template]) -> Any:
    if isinstance(value, dict):
        if not value:
            return "{}"
        return _Seq(
            "{",
            [_Pair(py_str(str(k)) + ": ", _config_tree(v, (*path, k), templates)) for k, v in value.items()],
            "}",
        )
    if isinstance(value, list):
        if not value:
            return "[]"
        return _Seq("[", [_config_tree(v, (*path, i), templates) for i, v in enumerate(value)], "]")
    if isinstance(value, str):
        template = templates.get(path)
        return _template_tree(template) if template is not None else py_str(value)
    return repr(value)


def _template_tree(template: Template, scope: str = "scope") -> Any:
    parts: list[Any] = []
    for part in template.parts:
        if isinstance(part, str):
            parts.append(py_str(part))
        else:
            parts.append(_Seq("cel(", [py_str(part.expression.source), scope], ")"))
    if template.is_whole:
        return parts[0]
    return _Seq("text(", parts, ")")


# ------------------------------------------------------------------ names


def python_name(node_id: str, taken: set[str]) -> str:
    """A Python identifier for a node id (``fetch-user`` -> ``fetch_user``), unique in ``taken``."""
    name = re.sub(r"\W", "_", node_id)
    if not name or name[0].isdigit() or keyword.iskeyword(name) or hasattr(builtins, name):
        name = f"node_{name}"
    if name in _RESERVED_NAMES:
        name = f"{name}_node"
    base, number = name, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    taken.add(name)
    return name


#: Names the generated module and flow body use for themselves.
_RESERVED_NAMES = frozenset(
    """
    Any RunInput Secret annotations cel config dataclass failed flow httpx inputs json main os
    pause_flow_run result routes scope snapshot steps sys task text time trigger env trigger_node
    index item arguments name exc UTC datetime jsonschema litellm smtplib ssl EmailMessage
    make_msgid MiniRacer WebClient SlackCredentials http_request send_email slack_call
    llm_complete run_javascript wait_for_decision ApprovalDecision Cron Interval
    """.split()
)


# ------------------------------------------------------------------ the ejector


@dataclass
class _Level:
    """Variable names of one level's flow body (the top, or a loop body)."""

    steps: str
    routes: str
    scope: str
    depth: int = 0
    #: The loop indexes in scope, outermost first (keys of inputs must differ per iteration).
    indexes: tuple[str, ...] = ()


@dataclass
class _Generated:
    imports: set[str] = field(default_factory=set)
    helpers: list[str] = field(default_factory=list)
    blocks: dict[tuple[str, str], str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tasks: list[list[str]] = field(default_factory=list)
    uses_failed: bool = False


class _Ejector:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.names: dict[str, str] = {}
        taken: set[str] = set()
        self.flow_name = python_name(plan.name or "workflow", taken)
        for node in plan.walk():
            self.names[node.id] = python_name(node.id, taken)
        self.ejected: dict[str, Ejected] = {}
        missing = []
        for node in plan.walk():
            ejected = node.node_type.eject(node.config)
            if ejected is None:
                missing.append((node.id, node.type))
            else:
                self.ejected[node.id] = ejected
        if missing:
            raise EjectError(missing)
        self.out = _Generated()
        #: The indentation (levels) at which the flow-body lines being generated will stand.
        self.ind = 1

    def _emit(self, node: Any, relative: int = 0, lead: str = "", tail: str = "") -> list[str]:
        """:func:`emit` for the flow body, whose lines are indented ``self.ind`` levels later."""
        base = len(_INDENT * self.ind)
        return [line[base:] for line in emit(node, self.ind + relative, lead, tail)]

    # -------------------------------------------------------------- tasks

    def _task(self, node: PlanNode, in_loop: bool) -> list[str]:
        ejected = self.ejected[node.id]
        name = self.names[node.id]
        options: list[Any] = [_Pair("name=", py_str(node.id))]
        if in_loop:
            options.append(_Pair("task_run_name=", py_str(node.id + " [{scope[loop][index]}]")))
        if node.retry is not None and node.retry.attempts:
            options.append(_Pair("retries=", str(node.retry.attempts)))
            delays = [round(d, 3) for d in node.retry.delays()]
            if len(set(delays)) == 1:
                options.append(_Pair("retry_delay_seconds=", _number(delays[0])))
            else:
                options.append(_Pair("retry_delay_seconds=", _Seq("[", [_number(d) for d in delays], "]")))
            if node.retry.jitter:
                options.append(_Pair("retry_jitter_factor=", _number(node.retry.jitter)))
        if node.timeout_seconds:
            options.append(_Pair("timeout_seconds=", _number(node.timeout_seconds)))
        lines = emit(_Seq("@task(", options, ")"), 0)
        parameters = (
            "scope: dict[str, Any], inputs: dict[str, Any]" if ejected.takes_inputs else "scope: dict[str, Any]"
        )
        lines.append(f"def {name}({parameters}) -> Any:")
        label = f" ({node.name})" if node.name and node.name != node.id else ""
        lines.append(f'{_INDENT}"""{node.type} node {_doc(repr(node.id))}{_doc(label)}."""')
        if re.search(r"\bconfig\b", ejected.body):
            config = _with_block_names(dict(node.config), node.node_type.credential_fields)
            lines += emit(_config_tree(config, (), node.templates), 1, "config = ")
        lines += [(_INDENT + line) if line else "" for line in ejected.body.strip("\n").splitlines()]
        return lines

    # -------------------------------------------------------------- liveness

    def _edge_live(self, edge: PlanEdge, level: Plan, guards: dict[str, str | None], names: _Level) -> str:
        source = level.nodes[edge.source]
        if edge.handle:
            return f"{names.routes}.get({py_str(source.id)}) == {py_str(edge.handle)}"
        ran = "True" if guards.get(source.id) is None else f"{py_str(source.id)} in {names.steps}"
        if source.on_error == "route":
            failed = f"{names.routes}.get({py_str(source.id)}) != {py_str('error')}"
            return failed if ran == "True" else f"{ran} and {failed}"
        return ran

    def _guards(self, level: Plan, names: _Level, top: bool) -> dict[str, str | None]:
        guards: dict[str, str | None] = {}
        for node_id in level.order:
            node = level.nodes[node_id]
            incoming = [e for e in node.incoming if e.source in level.nodes]
            if not incoming:
                if top and node.node_type.is_trigger() and len(level.triggers) > 1:
                    guards[node_id] = f"trigger_node == {py_str(node_id)}"
                else:
                    guards[node_id] = None
                continue
            parts = list(dict.fromkeys(self._edge_live(e, level, guards, names) for e in incoming))
            guards[node_id] = None if "True" in parts else " or ".join(parts)
        return guards

    # -------------------------------------------------------------- flow body

    def _level(self, level: Plan, names: _Level, top: bool) -> list[str]:
        guards = self._guards(level, names, top)
        blocks: list[tuple[str | None, list[str]]] = []
        for node_id in level.order:
            if blocks and blocks[-1][0] == guards[node_id]:
                blocks[-1][1].append(node_id)
            else:
                blocks.append((guards[node_id], [node_id]))
        lines: list[str] = []
        previous: str | None = None
        for guard, members in blocks:
            self.ind += guard is not None
            body = self._members(level, members, names, top)
            self.ind -= guard is not None
            if guard is None:
                lines += body
                previous = None
                continue
            keyword_ = "if"
            if previous is not None and _same_router(previous, guard) and lines:
                keyword_ = "elif"
            lines += self._condition(keyword_, guard)
            lines += [(_INDENT + line) if line else "" for line in body]
            previous = guard
        return lines

    def _condition(self, keyword_: str, guard: str) -> list[str]:
        """``if guard:`` as ruff writes it: on one line, else in parentheses, else one operand a line."""
        pad = _INDENT * self.ind
        if len(f"{pad}{keyword_} {guard}:") <= LINE:
            return [f"{keyword_} {guard}:"]
        if len(f"{pad}{_INDENT}{guard}") <= LINE:
            return [f"{keyword_} (", f"{_INDENT}{guard}", "):"]
        parts = guard.split(" or ")
        return [f"{keyword_} (", f"{_INDENT}{parts[0]}", *(f"{_INDENT}or {p}" for p in parts[1:]), "):"]

    def _members(self, level: Plan, members: list[str], names: _Level, top: bool) -> list[str]:
        lines: list[str] = []
        index = 0
        while index < len(members):
            wave = [members[index]]
            while index + len(wave) < len(members):
                candidate = level.nodes[members[index + len(wave)]]
                if not self._plain(candidate) or not self._plain(level.nodes[wave[0]]):
                    break
                if any(e.source in wave for e in candidate.incoming):
                    break
                wave.append(candidate.id)
            if len(wave) > 1:
                lines += self._wave(level, wave, names)
            else:
                lines += self._node(level, level.nodes[wave[0]], names, top)
            index += len(wave)
        return lines

    def _plain(self, node: PlanNode) -> bool:
        ejected = self.ejected[node.id]
        return not (ejected.routes or ejected.in_flow or ejected.iterates or node.disabled or node.node_type.has_body)

    def _call(self, level: Plan, node: PlanNode, names: _Level, scope: str, submit: bool = False) -> Any:
        name = self.names[node.id] + (".submit" if submit else "")
        if self.ejected[node.id].takes_inputs:
            return _Seq(f"{name}(", [scope, self._inputs(level, node, names)], ")")
        return f"{name}({scope})"

    def _inputs(self, level: Plan, node: PlanNode, names: _Level) -> str:
        upstream = f"{self.names[node.id]}_upstream"
        return f"{{name: {names.steps}[name] for name in {upstream} if name in {names.steps}}}"

    def _upstream(self, level: Plan, node: PlanNode) -> list[str]:
        """``<node>_upstream = (...)``: the upstream node ids whose outputs a node takes as inputs."""
        if not self.ejected[node.id].takes_inputs:
            return []
        sources = [py_str(e.source) for e in node.incoming if e.source in level.nodes]
        listed: Any = _Seq("(", list(dict.fromkeys(sources)), ")")
        if len(listed.items) == 1:
            listed = f"({listed.items[0]},)"
        return self._emit(listed, 0, f"{self.names[node.id]}_upstream = ")

    def _wave(self, level: Plan, wave: list[str], names: _Level) -> list[str]:
        listed = ", ".join(wave[:-1]) + f" and {wave[-1]}"
        lines = [f"# {listed} run at once (fan-out); each result is waited on below"]
        lines += self._emit(
            _Seq("{", [f"**{names.scope}", _Pair('"steps": ', f"dict({names.steps})")], "}"), 0, "snapshot = "
        )
        for node_id in wave:
            node = level.nodes[node_id]
            lines += self._upstream(level, node)
            lines += self._emit(
                self._call(level, node, names, "snapshot", submit=True), 0, f"{self.names[node_id]}_run = "
            )
        for node_id in wave:
            node = level.nodes[node_id]
            lines += self._store(node, f"{self.names[node_id]}_run.result()", names)
        return lines

    def _store(self, node: PlanNode, call: Any, names: _Level, routed: bool = False) -> list[str]:
        target = f"{names.steps}[{py_str(node.id)}]"
        if routed:
            target += f", {names.routes}[{py_str(node.id)}]"
        if node.on_error == "fail":
            return self._emit(call, 0, f"{target} = ")
        assignment = self._emit(call, 1, f"{target} = ")
        self.out.uses_failed = True
        lines = ["try:", *assignment]
        lines.append(f"except Exception as exc:  # on_error: {node.on_error}")
        failed = f"failed({py_str(node.id)}, exc)"
        if node.on_error == "route":
            lines.append(
                f"{_INDENT}{names.steps}[{py_str(node.id)}], {names.routes}[{py_str(node.id)}] = {failed}, "
                f"{py_str('error')}"
            )
        else:
            lines.append(f"{_INDENT}{names.steps}[{py_str(node.id)}] = {failed}")
        return lines

    def _node(self, level: Plan, node: PlanNode, names: _Level, top: bool) -> list[str]:
        ejected = self.ejected[node.id]
        comment = f"# {node.id}: {node.type}" + (f" ({node.name})" if node.name and node.name != node.id else "")
        lines = [comment]
        if node.disabled:
            sources = [e.source for e in node.incoming if e.source in level.nodes]
            value = f"{names.steps}.get({py_str(sources[0])})" if len(sources) == 1 else f"{names.scope}['trigger']"
            return [
                f"{comment} is disabled in Gorax: its input passes through",
                f"{names.steps}[{py_str(node.id)}] = {value}",
            ]
        if ejected.iterates is not None:
            return lines + self._loop(level, node, names)
        lines += self._upstream(level, node)
        call = self._call(level, node, names, names.scope)
        if ejected.in_flow is not None:
            text = (
                ejected.in_flow.replace("{call}", _flat(call))
                .replace("{steps}", names.steps)
                .replace("{routes}", names.routes)
                .replace("{node}", py_str(node.id))
                .replace("{name}", self.names[node.id])
                .replace("{key}", _input_key(node.id, names.indexes))
            )
            return lines + text.strip("\n").splitlines()
        return lines + self._store(node, call, names, routed=ejected.routes)

    def _loop(self, level: Plan, node: PlanNode, names: _Level) -> list[str]:
        ejected = self.ejected[node.id]
        body = level.bodies.get(node.id)
        name = self.names[node.id]
        depth = names.depth
        index, item = ("index", "item") if depth == 0 else (f"index{depth + 1}", f"item{depth + 1}")
        inner = _Level(f"{name}_steps", f"{name}_routes", f"{name}_scope", depth + 1, (*names.indexes, index))
        lines: list[str] = []
        result = _last_output(body, inner.steps) if body is not None else "None"
        self.ind += 1
        body_lines = self._level(body, inner, top=False) if body is not None else []
        loop_scope = f'{{"item": {item}, "index": {index}}}'
        if ejected.iterates == "while":
            loop_scope = f'{{"index": {index}}}'
        scope_tree = _Seq(
            "{", [f"**{names.scope}", _Pair('"steps": ', inner.steps), _Pair('"loop": ', loop_scope)], "}"
        )
        setup = self._emit(scope_tree, 0, f"{inner.scope} = ")
        self.ind -= 1
        if any(re.search(rf"\b{inner.routes}\b", line) for line in body_lines):
            setup.insert(0, f"{inner.routes}: dict[str, Any] = {{}}")
        if ejected.iterates == "foreach":
            lines += self._emit(self._call(level, node, names, names.scope), 0, f"{name}_items = ")
            lines.append(f"{name}_results = []")
            lines.append(f"for {index}, {item} in enumerate({name}_items):")
            setup.insert(0, f"{inner.steps} = dict({names.steps})")
        else:
            lines += self._emit(self._call(level, node, names, names.scope))
            lines.append(f"{name}_results = []")
            lines.append(f"{inner.steps} = dict({names.steps})")
            lines.append(f"{index} = 0")
            condition = py_str(ejected.condition or "false")
            check = f'{{**{names.scope}, "steps": {inner.steps}, "loop": {{"index": {index}}}}}'
            lines += self._emit(_Seq("cel(", [condition, check], ")"), 0, "while ", ":")
            bound = ejected.max_iterations or 1000
            message = py_str(f"loop {node.id!r}: max_iterations ({bound}) reached")
            setup = [f"if {index} >= {bound}:", f"{_INDENT}raise RuntimeError({message})", *setup]
        inner_lines = setup + body_lines + [f"{name}_results.append({result})"]
        if ejected.iterates == "while":
            inner_lines.append(f"{index} += 1")
        lines += [(_INDENT + line) if line else "" for line in inner_lines]
        lines.append(f"{names.steps}[{py_str(node.id)}] = {name}_results")
        return lines

    # -------------------------------------------------------------- the file

    def build(self) -> EjectedFlow:
        plan = self.plan

        # Tasks, in graph order, loop bodies after their loop.
        def tasks_of(level: Plan, in_loop: bool) -> None:
            for node_id in level.order:
                node = level.nodes[node_id]
                self.out.tasks.append(self._task(node, in_loop))
                ejected = self.ejected[node_id]
                for imp in ejected.imports:
                    self.out.imports.add(imp)
                for helper in ejected.helpers:
                    if helper.strip() not in (h.strip() for h in self.out.helpers):
                        self.out.helpers.append(helper.strip("\n"))
                for block_type, named, holds in ejected.blocks:
                    self.out.blocks[(block_type, named)] = holds
                for note in ejected.notes:
                    self.out.notes.append(note if note.startswith(" ") else f"{node_id} ({node.type}): {note}")
                if node_id in level.bodies:
                    tasks_of(level.bodies[node_id], True)

        tasks_of(plan, False)
        credentials = self._template_credentials()
        for credential, fields in credentials.items():
            holds = "a JSON object with " + (", ".join(sorted(fields)) if fields else "the fields the graph reads")
            self.out.blocks[("Secret", block_name(credential))] = holds
        body = self._flow_body(credentials)
        source = self._file(body)
        return EjectedFlow(
            filename=f"{self.flow_name}.py",
            source=source,
            helper_source=helper_source(),
            blocks=tuple((t, n, h) for (t, n), h in sorted(self.out.blocks.items())),
        )

    def _template_credentials(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for node in self.plan.walk():
            sources = [e.source for t in node.templates.values() for e in t.expressions]
            sources += [e.source for e in node.expressions.values()]
            for text in sources:
                for match in re.finditer(r"\bcredentials\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?", text):
                    found.setdefault(match.group(1), set())
                    if match.group(2):
                        found[match.group(1)].add(match.group(2))
        return found

    def _env_names(self) -> list[str]:
        names: set[str] = set()
        for node in self.plan.walk():
            sources = [e.source for t in node.templates.values() for e in t.expressions]
            sources += [e.source for e in node.expressions.values()]
            for text in sources:
                names.update(re.findall(r"\benv\.([A-Za-z_]\w*)", text))
        return sorted(names)

    def _flow_body(self, credentials: dict[str, set[str]]) -> list[str]:
        plan = self.plan
        top = _Level("steps", "routes", "scope")
        level_lines = self._level(plan, top, top=True)
        lines: list[str] = []
        for node_id in plan.triggers:
            accepts = self.ejected[node_id].accepts
            if accepts:
                test: Any = _Seq("not cel(", [py_str(accepts), '{"trigger": trigger}'], ")")
                if len(plan.triggers) > 1:
                    test = f"trigger_node == {py_str(node_id)} and {_flat(test)}"
                lines += self._emit(test, 0, "if ", ":")
                lines.append(f"{_INDENT}return None  # Gorax starts no run when the filter of '{node_id}' is false")
        lines.append("steps: dict[str, Any] = {}")
        if any(re.search(r"\broutes\b", line) for line in level_lines):
            lines.append("routes: dict[str, Any] = {}")
        scope_items: list[Any] = [
            _Pair('"trigger": ', "trigger"),
            _Pair('"steps": ', "steps"),
            _Pair('"env": ', "env or {}"),
            _Pair('"loop": ', "{}"),
        ]
        if credentials:
            self.out.imports.add("from prefect.blocks.system import Secret")
            scope_items.append(
                _Pair(
                    '"credentials": ',
                    _Seq(
                        "{",
                        [
                            _Pair(py_str(c) + ": ", f"Secret.load({py_str(block_name(c))}).get()")
                            for c in sorted(credentials)
                        ],
                        "}",
                    ),
                )
            )
        scope_items.append(_Pair('"workflow": ', _Seq("{", [_Pair('"name": ', py_str(plan.name))], "}")))
        lines += self._emit(_Seq("{", scope_items, "}"), 0, "scope = ")
        lines += level_lines
        lines += self._result(plan)
        return lines

    def _result(self, plan: Plan) -> list[str]:
        outputs = [n for n in plan.order if plan.nodes[n].node_type.is_result]
        if len(outputs) == 1:
            return [f"return steps.get({py_str(outputs[0])})"]
        if outputs:
            listed = ", ".join(py_str(n) for n in reversed(outputs))
            return [
                f"for name in ({listed}):  # the last result node that ran",
                f"{_INDENT}if name in steps:",
                f"{_INDENT * 2}return steps[name]",
                "return None",
            ]
        return [f"return {_last_output(plan, 'steps')}"]

    def _file(self, body: list[str]) -> str:
        plan = self.plan
        imports = {"from typing import Any", "from prefect import flow, task", f"from {HELPER_MODULE} import cel, text"}
        imports |= self.out.imports
        if self.out.uses_failed:
            self.out.helpers.insert(0, _FAILED_HELPER)
        header = self._header()
        parts = [header, "", "from __future__ import annotations", ""]
        code = "\n".join(["\n".join(t) for t in self.out.tasks] + self.out.helpers + body)
        used = [n for n in ("cel", "text") if re.search(rf"\b{n}\(", code)]
        imports.discard(f"from {HELPER_MODULE} import cel, text")
        if used:
            imports.add(f"from {HELPER_MODULE} import {', '.join(used)}")
        parts += _sorted_imports(imports)
        for helper in self.out.helpers:
            parts += ["", "", helper]
        for task_lines in self.out.tasks:
            parts += ["", "", *task_lines]
        flow_options: list[Any] = [_Pair("name=", py_str(plan.name))]
        if plan.description:
            flow_options.append(_Pair("description=", py_str(plan.description)))
        if plan.settings.timeout_seconds:
            flow_options.append(_Pair("timeout_seconds=", _number(plan.settings.timeout_seconds)))
        parts += ["", ""]
        parts += emit(_Seq("@flow(", flow_options, ")"), 0)
        parameters = ["trigger: Any = None", "env: dict[str, Any] | None = None"]
        if len(plan.triggers) > 1:
            default = plan.triggers[0]
            for node_id in plan.triggers:
                if getattr(plan.nodes[node_id].node_type, "fires_by_default", False):
                    default = node_id
                    break
            parameters.append(f"trigger_node: str = {py_str(default)}")
        parts += emit(_Seq(f"def {self.flow_name}(", parameters, ")"), 0, "", " -> Any:")
        parts.append(f'{_INDENT}"""Run the workflow: ``trigger`` is the run input, ``env`` the variables."""')
        parts += [(_INDENT + line) if line else "" for line in body]
        parts += [
            "",
            "",
            'if __name__ == "__main__":',
            f"{_INDENT}# python {self.flow_name}.py '<trigger JSON>' '<env JSON>': one run, its result printed",
            f"{_INDENT}arguments = [json.loads(argument) for argument in sys.argv[1:3]]",
            f"{_INDENT}print(json.dumps({self.flow_name}(*arguments), indent=2))",
        ]
        return "\n".join(parts).rstrip("\n") + "\n"

    def _header(self) -> str:
        plan = self.plan
        lines = [f"{plan.name}: {plan.description}" if plan.description else plan.name, ""]
        lines += [
            f"Ejected from the Gorax workflow {plan.name!r} (graph format gorax/graph@1). It runs with",
            f"Prefect alone: every node is a task named after its id, and the flow `{self.flow_name}` is",
            f"the graph's control flow. CEL templates and conditions are calls to `{HELPER_FILE}`",
            "(written beside this file; it needs cel-python).",
            "",
            "Run it once:",
            "",
            f"    python {self.flow_name}.py '<trigger JSON>' '<env JSON>'",
        ]
        env_names = self._env_names()
        if env_names:
            lines += ["", "Variables the graph reads from `env` (Gorax's tenant variables):"]
            lines += [f"    {name}" for name in env_names]
        lines += ["", "Prefect Blocks to create (in Gorax a credential's secrets are sealed with the tenant's key"]
        lines += ["and cannot be read by Prefect alone: create these plain Blocks with the values):"]
        if self.out.blocks:
            for (block_type, name), holds in sorted(self.out.blocks.items()):
                lines.append(f"    {block_type} {name!r}: {holds}")
        else:
            lines.append("    none")
        if self.out.notes:
            lines += ["", "Notes:"]
            lines += [f"    {note}" for note in self.out.notes]
        lines += [
            "",
            "Not carried over: Gorax's step records, audit log and approval inbox; the outbound",
            "address guard; CEL evaluation limits; the max_parallel bound (fan-out uses Prefect's",
            "task runner).",
        ]
        text = "\n".join(line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') for line in lines)
        return '"""' + text.rstrip() + '\n"""'


def _with_block_names(config: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The config with every credential name (``credential``, ``*_credential``, the type's
    credential fields) replaced by the Block name it is loaded by."""

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                inner = f"{path}.{key}" if path else str(key)
                named = key == "credential" or str(key).endswith("_credential") or inner in fields
                literal = isinstance(item, str) and "{{" not in item
                out[key] = block_name(item) if named and literal else walk(item, inner)
            return out
        if isinstance(value, list):
            return [walk(item, path) for item in value]
        return value

    result: dict[str, Any] = walk(config, "")
    return result


_FAILED_HELPER = '''def failed(node_id: str, exc: Exception) -> dict[str, Any]:
    """A failed node's output when its on_error lets the run go on (as in Gorax)."""
    error = {"node_id": node_id, "type": type(exc).__name__, "message": str(exc)}
    return {"error": error}'''


def _input_key(node_id: str, indexes: tuple[str, ...]) -> str:
    """The key of a node's run input: Prefect's form, one per loop iteration."""
    key = input_key("input", node_id)
    if not indexes:
        return py_str(key)
    return 'f"' + key + "".join(f"-{{{index}}}" for index in indexes) + '"'


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _doc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', "'''")


def _same_router(previous: str, guard: str) -> bool:
    pattern = re.compile(r"^(\w+)\.get\((\"[^\"]*\")\) == \"[^\"]*\"$")
    a, b = pattern.match(previous), pattern.match(guard)
    return bool(a and b and a.group(1) == b.group(1) and a.group(2) == b.group(2) and previous != guard)


def _last_output(level: Plan, steps: str) -> str:
    last = list(level.last_nodes)
    if len(last) == 1:
        return f"{steps}.get({py_str(last[0])})"
    listed = ", ".join(py_str(n) for n in last)
    return f"{{name: {steps}[name] for name in ({listed}) if name in {steps}}}"


def _sorted_imports(imports: set[str]) -> list[str]:
    """Import lines grouped as isort does: standard library, third party, then the helper."""
    helper = [i for i in imports if i.startswith(f"from {HELPER_MODULE} ")]
    stdlib_roots = {"json", "sys", "time", "os", "smtplib", "ssl", "typing", "datetime", "email", "base64"}
    needed = set(imports) | {"import json", "import sys"}
    rest = [i for i in needed if not i.startswith(f"from {HELPER_MODULE} ")]

    def root(line: str) -> str:
        return line.split()[1].split(".")[0]

    def key(line: str) -> tuple[int, str]:
        return (0 if line.startswith("import ") else 1, line.split()[1].lower())

    stdlib = sorted((i for i in rest if root(i) in stdlib_roots), key=key)
    third = sorted((i for i in rest if root(i) not in stdlib_roots), key=key)
    groups = [g for g in (stdlib, third, helper) if g]
    out: list[str] = []
    for group in groups:
        out += [*group, ""]
    return out[:-1]
