"""Numbers every JSON store and client keeps exactly: within ±(2^53 - 1), finite.

Beyond that range a number changes on its way through the system: PostgreSQL's ``jsonb`` turns
``1e30`` into a 31-digit integer that Prefect cannot read back, the collaboration document
holds 64-bit integers at most, and browsers read every number as a double. Values a user sends
are checked before they are stored; the error names where the number is.
"""

from __future__ import annotations

from typing import Any

MAX_SAFE_NUMBER = 2**53 - 1


def unsafe_number(value: Any, path: str) -> str | None:
    """A message naming the first number in ``value`` outside the safe range (None: all fine)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, (int, float)):
        if value != value or abs(value) > MAX_SAFE_NUMBER:  # NaN, infinite or too large
            return (f"{path}: {value!r} is outside the numbers that can be stored "
                    f"(-{MAX_SAFE_NUMBER} to {MAX_SAFE_NUMBER}); send it as a string")
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if (problem := unsafe_number(item, f"{path}.{key}")) is not None:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (problem := unsafe_number(item, f"{path}[{index}]")) is not None:
                return problem
    return None
