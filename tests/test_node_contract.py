"""The node contract's rule: no node-type slug literal outside ``flows/nodes/`` and the tests.

Whatever makes a node type special is declared by the type (``translator/nodetypes.py``); the
executor, validation, deploy, trigger sync, the API and the editor ask the contract. A slug
written anywhere else is a special case waiting to drift. Benchmarks build graphs as data and are
treated like tests. Docstrings and comments may name types; string values may not.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from translator.nodetypes import get_registry

ROOT = Path(__file__).resolve().parents[1]
PYTHON_PACKAGES = ("translator", "flows", "blocks", "api")
EXEMPT_PYTHON = (ROOT / "flows" / "nodes",)


def _slug_pattern() -> re.Pattern[str]:
    slugs = sorted({node_type.type for node_type in get_registry().all()}, key=len, reverse=True)
    return re.compile(r"(?<![\w.])(" + "|".join(re.escape(s) for s in slugs) + r")(?![\w])")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def python_slug_literals(root: Path = ROOT) -> list[str]:
    """``path:line: 'literal'`` for every string value naming a node type outside the nodes."""
    pattern = _slug_pattern()
    found = []
    for package in PYTHON_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if any(path.is_relative_to(exempt) for exempt in EXEMPT_PYTHON):
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            docstrings = _docstring_nodes(tree)
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in docstrings
                    and pattern.search(node.value)
                ):
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value[:80]!r}")
    return found


_TS_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_TS_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`(?:[^`\\]|\\.)*`', re.S)


def typescript_slug_literals(root: Path = ROOT) -> list[str]:
    """The same for the editor's sources (its tests excepted)."""
    pattern = _slug_pattern()
    found = []
    for path in sorted((root / "web" / "src").rglob("*.ts*")):
        if ".test." in path.name:
            continue
        text = _TS_COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), path.read_text())
        for match in _TS_STRING.finditer(text):
            if pattern.search(match.group()):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(root)}:{line}: {match.group()[:80]}")
    return found


def test_no_node_type_slug_outside_the_node_modules() -> None:
    assert python_slug_literals() == []
    assert typescript_slug_literals() == []


def test_the_rule_finds_a_slug(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "x.py").write_text('"""Mentions control.loop in a docstring."""\nKIND = "control.loop"\n')
    (tmp_path / "web" / "src").mkdir(parents=True)
    (tmp_path / "web" / "src" / "x.ts").write_text('// trigger.manual in a comment\nconst t = "trigger.manual";\n')
    assert python_slug_literals(tmp_path) == ["api/x.py:2: 'control.loop'"]
    assert typescript_slug_literals(tmp_path) == ['web/src/x.ts:2: "trigger.manual"']


def test_discovering_node_types_imports_no_prefect() -> None:
    # The translator validates graphs in processes that never run them (``gorax validate``, the
    # editor's checks): finding the node types must stay cheap, Prefect (seconds to import) aside.
    probe = (
        "import sys; from translator.nodetypes import get_registry; get_registry(); "
        "heavy = [m for m in ('prefect', 'litellm', 'boto3', 'sqlalchemy') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
