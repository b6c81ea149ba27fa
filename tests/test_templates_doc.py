"""docs/templates.md lists exactly the shipped templates, as api/services/templates.py renders them."""

from __future__ import annotations

import re
from pathlib import Path

from api.services.templates import templates_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "templates.md"


def test_the_template_list_matches_the_templates() -> None:
    match = re.search(r"<!-- templates:begin -->\n(.*?)<!-- templates:end -->", DOC.read_text(), re.S)
    assert match, "docs/templates.md lost its <!-- templates:begin/end --> markers"
    assert match.group(1) == templates_markdown(), (
        "docs/templates.md is out of date: paste the output of `python -m api.services.templates` between its markers"
    )


def test_the_docs_index_links_the_templates_page() -> None:
    assert "(templates.md)" in (DOC.parent / "README.md").read_text()
