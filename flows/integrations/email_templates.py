"""E-mail templates per tenant, stored as Prefect Variables.

A template is the Variable ``<tenant>--email-template--<name>`` whose value is a JSON object
``{"subject": ..., "text": ..., "html": ...}`` (``text`` or ``html`` may be absent). Bodies are
Jinja templates rendered in Jinja's sandbox with strict undefined names; HTML is autoescaped.
The tenant prefix keeps one tenant from reading another's templates by name.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, model_validator

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,100}$")


class EmailTemplate(BaseModel):
    """A stored template: Jinja text for the subject and the bodies."""

    subject: str = Field(min_length=1, description="Subject line (Jinja).")
    text: str | None = Field(default=None, description="Plain-text body (Jinja).")
    html: str | None = Field(default=None, description="HTML body (Jinja, autoescaped).")

    @model_validator(mode="after")
    def _has_body(self) -> EmailTemplate:
        if not self.text and not self.html:
            raise ValueError("a template needs 'text' or 'html'")
        return self


def template_variable_name(tenant: str | None, name: str) -> str:
    """The Prefect Variable that holds ``tenant``'s template ``name``."""
    if not _NAME.match(name):
        raise ValueError(f"template name {name!r}: use lowercase letters, digits, '-' and '_'")
    return f"{(tenant or 'default').lower()}--email-template--{name}"


async def save_email_template(tenant: str | None, name: str, template: EmailTemplate) -> None:
    """Create or replace ``tenant``'s template ``name``."""
    # Node discovery imports this module and must not load Prefect (tests/test_node_contract.py).
    from prefect.variables import Variable  # noqa: PLC0415

    await Variable.aset(template_variable_name(tenant, name), template.model_dump(exclude_none=True), overwrite=True)


async def load_email_template(tenant: str | None, name: str) -> EmailTemplate:
    """``tenant``'s template ``name``; ``LookupError`` naming the Variable if there is none."""
    from prefect.variables import Variable  # noqa: PLC0415  (node discovery must not load Prefect)

    variable = template_variable_name(tenant, name)
    value = await Variable.aget(variable)
    if value is None:
        raise LookupError(f"e-mail template {name!r} does not exist (Prefect Variable {variable!r})")
    return EmailTemplate.model_validate(value)


def render_email_template(template: EmailTemplate, values: dict[str, Any]) -> dict[str, str | None]:
    """``{subject, text, html}`` rendered with ``values``; a missing name is an error naming it."""
    # Jinja's sandbox is a noticeable import and only the e-mail nodes use it: loaded on first use.
    from jinja2 import StrictUndefined, TemplateError  # noqa: PLC0415
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: PLC0415

    plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    escaped = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
    out: dict[str, str | None] = {}
    for part, env in (("subject", plain), ("text", plain), ("html", escaped)):
        source = getattr(template, part)
        if source is None:
            out[part] = None
            continue
        try:
            out[part] = env.from_string(source).render(**values)
        except TemplateError as exc:
            raise ValueError(f"template {part}: {exc}") from exc
    return out
