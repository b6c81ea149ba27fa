"""Values every JSON store and client keeps exactly: numbers within ±(2^53 - 1), no NUL characters.

Beyond that range a number changes on its way through the system: PostgreSQL's ``jsonb`` turns
``1e30`` into a 31-digit integer that Prefect cannot read back, the collaboration document
holds 64-bit integers at most, and browsers read every number as a double. A NUL character
(``\u0000``) in a string or key cannot be stored in ``jsonb`` at all (Prefect answers 503 and
its client retries for minutes). Values a user sends are checked before they are stored; the
error names where the problem is.
"""

from __future__ import annotations

from typing import Any

MAX_SAFE_NUMBER = 2**53 - 1


def unstorable(value: Any, path: str, *, numbers: bool = True) -> str | None:
    """A message naming the first number outside the safe range (unless not ``numbers``) or
    string with a NUL character in ``value`` (None: all fine)."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{path}: text with a NUL character (\\u0000) cannot be stored; remove it"
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        if numbers and (value != value or abs(value) > MAX_SAFE_NUMBER):  # NaN, infinite or too large
            return (
                f"{path}: {value!r} is outside the numbers that can be stored "
                f"(-{MAX_SAFE_NUMBER} to {MAX_SAFE_NUMBER}); send it as a string"
            )
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                return f"{path}: a key with a NUL character (\\u0000) cannot be stored; remove it"
            if (problem := unstorable(item, f"{path}.{key}", numbers=numbers)) is not None:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (problem := unstorable(item, f"{path}[{index}]", numbers=numbers)) is not None:
                return problem
    return None
