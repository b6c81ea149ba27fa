"""The configuration reference, generated from the settings classes: every ``GORAX_*`` variable
with its section, default and meaning (``gorax settings --markdown``; docs/configuration.md holds the same
tables, and a test keeps the two in step)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from api.config import GoraxApiSettings
from flows.settings import is_section


@dataclass(frozen=True)
class Setting:
    """One variable: its names, where it lives in the settings, its default and meaning."""

    names: tuple[str, ...]
    path: str
    default: Any
    description: str


def _names(cls: type[BaseSettings], name: str, field: FieldInfo) -> tuple[str, ...]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice).upper() for choice in alias.choices)
    return (f"{cls.model_config.get('env_prefix', '')}{name}".upper(),)


def _sections(root: type[BaseSettings]) -> Iterator[tuple[str, str, type[BaseSettings]]]:
    """(path, title, class) of the root's own fields, then of each section."""
    yield "", "General", root
    for name, field in root.model_fields.items():
        if is_section(field):
            yield name, str(field.description or name).rstrip("."), field.annotation  # type: ignore[misc]


def settings_of(root: type[BaseSettings] = GoraxApiSettings) -> list[tuple[str, list[Setting]]]:
    """Every setting, grouped by section: [(section title, settings)]."""
    groups = []
    for path, title, cls in _sections(root):
        rows = [
            Setting(
                _names(cls, name, field),
                f"{path}.{name}" if path else name,
                None if field.default is PydanticUndefined else field.default,
                field.description or "",
            )
            for name, field in cls.model_fields.items()
            if not is_section(field)
        ]
        groups.append((title, rows))
    return groups


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def settings_markdown(root: type[BaseSettings] = GoraxApiSettings) -> str:
    """The configuration reference: one table per section."""
    lines: list[str] = []
    for title, rows in settings_of(root):
        lines += [f"**{title}**", "", "| variable | default | meaning |", "|---|---|---|"]
        for row in rows:
            names = " or ".join(f"`{name}`" for name in row.names)
            lines.append(f"| {names} | {_default(row.default)} | {row.description.replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _current(settings: BaseModel, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _show(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "<set>"
    if isinstance(value, Path):
        return str(value)
    return "" if value is None else str(value)


def current_values(settings: BaseSettings) -> list[tuple[str, str]]:
    """(variable, value) of every setting as ``settings`` holds it, secrets only as ``<set>``."""
    return [
        (row.names[0], _show(_current(settings, row.path))) for _, rows in settings_of(type(settings)) for row in rows
    ]
