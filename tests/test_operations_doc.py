"""docs/operations.md stays true to the code: its settings tables are the generated ones, and the
commands and variables it tells operators to use exist."""

from __future__ import annotations

import re
from pathlib import Path

from api.settings_reference import settings_markdown

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "operations.md"


def test_the_operations_settings_tables_are_generated() -> None:
    match = re.search(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", DOC.read_text(), re.S)
    assert match, "docs/operations.md lost its <!-- settings:begin/end --> markers"
    assert match.group(1).strip() == settings_markdown().strip(), (
        "docs/operations.md's settings tables are out of date: replace them with `gorax settings --markdown`"
    )


def test_the_prefect_settings_it_names_are_prefect_settings() -> None:
    from prefect.settings import Settings

    names = set()

    def walk(model: type, prefix: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation, f"{prefix}{name}_")
            else:
                names.add(f"{prefix}{name}".upper())
                alias = field.validation_alias
                for choice in getattr(alias, "choices", ()):
                    if isinstance(choice, str):
                        names.add(choice.upper())

    walk(Settings, "PREFECT_")
    # Read by Prefect's server with os.getenv, outside its settings classes.
    names.add("PREFECT_SERVER_ENCRYPTION_KEY")
    named = set(re.findall(r"`(PREFECT_(?!REDIS_)[A-Z_]+[A-Z])`", DOC.read_text()))
    named = {n for n in named if not n.endswith("_")}
    assert named and sorted(named - names) == []


def test_the_make_target_it_documents_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test-scale:", makefile, re.M)
    assert "test-scale" in makefile.split(".PHONY:", 1)[1].splitlines()[0]
