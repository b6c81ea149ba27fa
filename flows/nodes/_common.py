"""Small helpers shared by node Config models (no Prefect, no I/O: the translator imports these)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

#: Handle names follow node ids: they appear in edges' ``sourceHandle``.
HANDLE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,62}$"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def is_template(value: Any) -> bool:
    """Whether a config string holds a ``{{ }}`` template (checked at run time, not now)."""
    return isinstance(value, str) and "{{" in value


def parse_duration(value: str | float | int) -> timedelta:
    """``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"`` or a number of seconds -> timedelta.

    Raises ``ValueError`` with the accepted forms on anything else.
    """
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '90s', '5m', '1h30m', '2d'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"duration {value!r} is negative")
        return timedelta(seconds=value)
    text = value.strip().lower().replace(" ", "")
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"duration {value!r} is not understood: use seconds or text like '90s', '5m', '1h30m', '2d'")
    return timedelta(seconds=total)


def check_duration(value: str | None) -> str | None:
    """Pydantic validator body: a duration string (or a template to resolve later)."""
    if value is not None and not is_template(value):
        parse_duration(value)
    return value


#: One e-mail address: a local part, ``@`` and a domain with a dot (no display name, no list).
_EMAIL_ADDRESS = re.compile(r"[^@\s<>,;\"()\[\]]+@[^@\s<>,;\"()\[\]]+\.[^@\s<>,;\"()\[\].]+")
#: E.164: ``+``, a country code not starting with 0, at most 15 digits in all.
_E164 = re.compile(r"\+[1-9]\d{1,14}")
#: An alphanumeric SMS sender id: 1 to 11 letters, digits or spaces, at least one letter.
_SENDER_ID = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")


def check_email_address(value: str) -> str:
    """Pydantic validator body: one e-mail address (or a template to check after rendering)."""
    if not is_template(value) and not _EMAIL_ADDRESS.fullmatch(value):
        raise ValueError(f"{value!r} is not an e-mail address (name@example.com)")
    return value


def check_phone_number(value: str) -> str:
    """Pydantic validator body: a phone number in E.164 form (or a template)."""
    if not is_template(value) and not _E164.fullmatch(value):
        raise ValueError(f"{value!r} is not an E.164 phone number ('+' and country code, e.g. +14155550123)")
    return value


def check_sender_id(value: str) -> str:
    """Pydantic validator body: an alphanumeric SMS sender id (or a template)."""
    if not is_template(value) and not _SENDER_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a sender id (1 to 11 letters, digits or spaces, at least one letter)")
    return value


def one_or_more(value: Any) -> Any:
    """Pydantic before-validator body: a single value where a list is expected becomes a list of one."""
    return [value] if isinstance(value, str) else value
