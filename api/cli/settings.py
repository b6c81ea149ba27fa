"""``gorax settings``: every ``GORAX_*`` variable, from the settings classes themselves.

``--markdown`` prints the reference tables the README's configuration section holds (a test keeps
the two the same); without it, the values this process sees, secrets shown only as set.
"""

from __future__ import annotations

import argparse
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
            Setting(_names(cls, name, field), f"{path}.{name}" if path else name,
                    None if field.default is PydanticUndefined else field.default, field.description or "")
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


def _settings(args: argparse.Namespace) -> int:
    if args.markdown:
        print(settings_markdown(), end="")
        return 0
    from api.cli.common import cli_settings

    settings = cli_settings()
    for _, rows in settings_of():
        for row in rows:
            print(f"{row.names[0]}={_show(_current(settings, row.path))}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``gorax settings`` to the CLI."""
    parser = subparsers.add_parser(
        "settings",
        help="show every GORAX_* setting (--markdown: the reference table)",
        description="Print the value of every GORAX_* setting this process sees (secrets only as "
        "<set>), or with --markdown the configuration reference generated from the settings classes.",
    )
    parser.add_argument("--markdown", action="store_true", help="print the reference as Markdown tables")
    parser.set_defaults(handler=_settings)
