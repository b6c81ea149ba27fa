"""The cel-spec strings extension (``charAt``, ``indexOf``, ``split``, ``format``...) in plain Python.

Semantics follow cel-go's ``ext/strings`` (all versions): indexes count unicode code points, not
bytes; a negative or out-of-range index is an error; ``split`` and ``replace`` take an optional
limit (negative: no limit, 0: nothing). The functions take and return plain Python values (the
engine adapts them) and raise :class:`StringsError` for a value the function refuses, or
``TypeError`` for arguments of the wrong types (the engine's "no such overload").

Work is metered: each call charges the characters it reads and writes to the evaluation's
:class:`Meter`, and a result larger than the meter allows is refused before it is built, so a
``replace`` on a 1 MB string, repeated, stops at the cost or size limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from celpy import celtypes


class StringsError(Exception):
    """A strings function refused its arguments; the message is the cel-spec one."""


class LimitExceeded(Exception):
    """The work or the size of a result went over the evaluation's limits."""


class Meter:
    """What one evaluation may still spend: characters processed, and the largest result."""

    __slots__ = ("chars_per_step", "max_chars", "on_charge")

    def __init__(self, max_chars: int, on_charge: Callable[[int], None], chars_per_step: int = 1000) -> None:
        self.max_chars = max_chars
        self.on_charge = on_charge
        self.chars_per_step = chars_per_step

    def charge(self, chars: int) -> None:
        """Count ``chars`` characters of work as steps of the evaluation's budget."""
        self.on_charge(1 + chars // self.chars_per_step)

    def allow(self, name: str, size: int) -> None:
        """Refuse a result of ``size`` characters (or items) over the limit, before it is built."""
        if size > self.max_chars:
            raise LimitExceeded(f"{name}() would build a result larger than {self.max_chars} characters")


#: The meter of the evaluation running in this context (set by the engine around each evaluation).
METER: ContextVar[Meter] = ContextVar("gorax_strings_meter")


def _meter() -> Meter:
    meter = METER.get(None)
    if meter is None:  # outside an evaluation (a direct call): the default result limit, no step count
        return Meter(1_000_000, lambda steps: None)
    return meter


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, (bool, celtypes.BoolType, celtypes.UintType)):
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return int(value)


def _out_of_range(index: int) -> StringsError:
    return StringsError(f"index out of range: {index}")


# ---------------------------------------------------------------- position functions


def char_at(text: Any, index: Any) -> str:
    """``s.charAt(i)``: the code point at ``i``; '' at the end; an error past it or below 0."""
    text, index = _string(text), _int(index)
    _meter().charge(len(text))
    if index < 0 or index > len(text):
        raise _out_of_range(index)
    return text[index] if index < len(text) else ""


def index_of(text: Any, sub: Any, offset: Any = None) -> int:
    """``s.indexOf(sub[, offset])``: the first code point index of ``sub`` at or after ``offset``."""
    text, sub = _string(text), _string(sub)
    start = 0 if offset is None else _int(offset)
    _meter().charge(len(text) + len(sub))
    if sub == "":
        if start < 0 or start > len(text):
            raise _out_of_range(start)
        return start
    if offset is None and len(sub) > len(text):
        return -1
    if start < 0 or start >= len(text):
        raise _out_of_range(start)
    return text.find(sub, start)


def last_index_of(text: Any, sub: Any, offset: Any = None) -> int:
    """``s.lastIndexOf(sub[, offset])``: the last index where ``sub`` starts, at or before ``offset``."""
    text, sub = _string(text), _string(sub)
    _meter().charge(len(text) + len(sub))
    if offset is None:
        if sub == "":
            return len(text)
        if len(sub) > len(text):
            return -1
        return text.rfind(sub)
    start = _int(offset)
    if sub == "":
        if start < 0 or start > len(text):
            raise _out_of_range(start)
        return start
    if start < 0 or start >= len(text):
        raise _out_of_range(start)
    return text.rfind(sub, 0, start + len(sub))


def substring(text: Any, start: Any, end: Any = None) -> str:
    """``s.substring(start[, end])``: code points ``start`` (inclusive) to ``end`` (exclusive)."""
    text, first = _string(text), _int(start)
    last = len(text) if end is None else _int(end)
    _meter().charge(len(text))
    if end is not None and first > last:
        raise StringsError(f"invalid substring range. start: {first}, end: {last}")
    if first < 0 or first > len(text):
        raise _out_of_range(first)
    if last < 0 or last > len(text):
        raise _out_of_range(last)
    return text[first:last]


# ---------------------------------------------------------------- transforming functions

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
#: Go's unicode.IsSpace set (what cel-go's trim removes): not the zero-width characters.
_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def lower_ascii(text: Any) -> str:
    """``s.lowerAscii()``: ASCII letters lower-cased, everything else as it is."""
    text = _string(text)
    _meter().charge(2 * len(text))
    return text.translate(_ASCII_LOWER)


def upper_ascii(text: Any) -> str:
    """``s.upperAscii()``: ASCII letters upper-cased, everything else as it is."""
    text = _string(text)
    _meter().charge(2 * len(text))
    return text.translate(_ASCII_UPPER)


def trim(text: Any) -> str:
    """``s.trim()``: leading and trailing unicode white space removed."""
    text = _string(text)
    _meter().charge(len(text))
    return text.strip(_SPACE)


def reverse(text: Any) -> str:
    """``s.reverse()``: the code points in reverse order."""
    text = _string(text)
    _meter().charge(2 * len(text))
    return text[::-1]


def replace(text: Any, old: Any, new: Any, limit: Any = None) -> str:
    """``s.replace(old, new[, n])``: at most ``n`` (all if negative) occurrences replaced."""
    text, old, new = _string(text), _string(old), _string(new)
    count = -1 if limit is None else _int(limit)
    meter = _meter()
    found = text.count(old)  # '' occurs before each code point and at the end, as in Go
    if count >= 0:
        found = min(found, count)
    size = len(text) + found * (len(new) - len(old))
    meter.allow("replace", size)
    meter.charge(len(text) + size)
    return text.replace(old, new, count)


def split(text: Any, separator: Any, limit: Any = None) -> list[str]:
    """``s.split(sep[, n])``: at most ``n`` parts (all if negative, none if 0); '' splits code points."""
    text, separator = _string(text), _string(separator)
    count = -1 if limit is None else _int(limit)
    meter = _meter()
    meter.charge(2 * len(text))
    if count == 0:
        return []
    if separator == "":
        parts = len(text) if count < 0 else min(count, len(text))
        meter.allow("split", parts)
        if count < 0 or count >= len(text):
            return list(text)
        return [*text[: count - 1], text[count - 1 :]]
    meter.allow("split", text.count(separator) + 1 if count < 0 else count)
    return text.split(separator, count - 1 if count > 0 else -1)


def join(items: Any, separator: Any = "") -> str:
    """``list.join([sep])``: the list's strings joined (every item must be a string)."""
    if not isinstance(items, (list, tuple)):
        raise TypeError("join() needs a list")
    separator = _string(separator)
    strings = [_string(item) for item in items]
    size = sum(map(len, strings)) + len(separator) * max(len(strings) - 1, 0)
    meter = _meter()
    meter.allow("join", size)
    meter.charge(size)
    return separator.join(strings)


_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}
_QUOTE_TABLE = str.maketrans(_ESCAPES)


def quote(text: Any) -> str:
    """``strings.quote(s)``: ``s`` in double quotes with escapes, safe to print as a CEL literal."""
    text = _string(text)
    meter = _meter()
    meter.allow("strings.quote", 2 * len(text) + 2)
    meter.charge(3 * len(text))
    # A lone surrogate is not a character: it becomes U+FFFD, as Go does for invalid UTF-8.
    clean = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace") if _has_surrogate(text) else text
    return '"' + clean.translate(_QUOTE_TABLE) + '"'


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# ---------------------------------------------------------------- format


def format_string(template: Any, args: Any) -> str:
    """``s.format(list)``: printf-style clauses %s %d %f %e %b %o %x %X (with ``.N`` precision)."""
    template = _string(template)
    if not isinstance(args, (list, tuple)):
        raise TypeError("format() needs a list of arguments")
    meter = _meter()
    out: list[str] = []
    size = 0
    position = 0
    used = 0
    while True:
        start = template.find("%", position)
        if start < 0:
            out.append(template[position:])
            break
        out.append(template[position:start])
        if template.startswith("%%", start):
            out.append("%")
            position = start + 2
            continue
        clause, precision, position = _clause(template, start + 1)
        if used >= len(args):
            raise StringsError(f"index {used} out of range")
        text = _format_clause(clause, precision, args[used])
        used += 1
        size += len(text)
        meter.allow("format", size + len(template))
        out.append(text)
    result = "".join(out)
    meter.charge(len(template) + len(result))
    return result


def _clause(template: str, index: int) -> tuple[str, int | None, int]:
    precision: int | None = None
    if index < len(template) and template[index] == ".":
        end = index + 1
        while end < len(template) and template[end].isdigit():
            end += 1
        if end == index + 1:
            raise StringsError("could not parse formatting clause: expected a precision after '.'")
        precision = int(template[index + 1 : end])
        index = end
    clause = template[index : index + 1]
    if clause not in ("s", "d", "f", "e", "b", "o", "x", "X"):
        raise StringsError(f'could not parse formatting clause: unrecognized formatting clause "{clause}"')
    return clause, precision, index + 1


def _format_clause(clause: str, precision: int | None, value: Any) -> str:
    if clause == "s":
        return format_value(value)
    kind = cel_type_name(value)
    if clause in ("d", "f", "e") and isinstance(value, float) and not math.isfinite(value):
        return _special_float(value)
    if clause == "d":
        if kind not in ("int", "uint"):
            raise _clause_error(f"decimal clause can only be used on integers, was given {kind}")
        return str(int(value))
    if clause in ("f", "e"):
        if kind != "double":
            name = "fixed-point" if clause == "f" else "scientific"
            raise _clause_error(f"{name} clause can only be used on doubles, was given {kind}")
        return f"{float(value):.{6 if precision is None else precision}{clause}}"
    if clause == "b":
        if kind == "bool":
            return "1" if value else "0"
        if kind not in ("int", "uint"):
            raise _clause_error(f"only integers and bools can be formatted as binary, was given {kind}")
        return format(int(value), "b")
    if clause == "o":
        if kind not in ("int", "uint"):
            raise _clause_error(f"octal clause can only be used on integers, was given {kind}")
        return format(int(value), "o")
    # x / X
    if kind in ("int", "uint"):
        return format(int(value), clause)
    if kind == "string":
        digits = str(value).encode("utf-8").hex()
    elif kind == "bytes":
        digits = bytes(value).hex()
    else:
        raise _clause_error(f"only integers, byte buffers, and strings can be formatted as hex, was given {kind}")
    return digits.upper() if clause == "X" else digits


def _clause_error(message: str) -> StringsError:
    return StringsError(f"error during formatting: {message}")


def _special_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


_TYPE_NAMES = {
    "StringType": "string",
    "IntType": "int",
    "UintType": "uint",
    "DoubleType": "double",
    "BoolType": "bool",
    "BytesType": "bytes",
    "ListType": "list",
    "MapType": "map",
    "NoneType": "null_type",
    "TimestampType": "google.protobuf.Timestamp",
    "DurationType": "google.protobuf.Duration",
    "TypeType": "type",
    "str": "string",
    "int": "int",
    "float": "double",
    "bool": "bool",
    "bytes": "bytes",
    "bytearray": "bytes",
    "list": "list",
    "dict": "map",
    "datetime": "google.protobuf.Timestamp",
    "timedelta": "google.protobuf.Duration",
}


def cel_type_name(value: Any) -> str:
    """The CEL name of a value's type, as cel-go's messages spell it ('string', 'null_type'...)."""
    if value is None:
        return "null_type"
    if isinstance(value, (bool, celtypes.BoolType)):
        return "bool"
    if isinstance(value, celtypes.UintType):
        return "uint"
    if isinstance(value, type):
        return "type"
    for kind in type(value).__mro__:
        if kind.__name__ in _TYPE_NAMES:
            return _TYPE_NAMES[kind.__name__]
    return _TYPE_NAMES.get(type(value).__name__, type(value).__name__)


def format_value(value: Any) -> str:
    """A value as ``%s`` shows it: text as is, numbers as CEL prints them, lists and maps unquoted."""
    kind = cel_type_name(value)
    if kind == "null_type":
        return "null"
    if kind == "bool":
        return "true" if value else "false"
    if kind in ("int", "uint"):
        return str(int(value))
    if kind == "double":
        return format_double(float(value))
    if kind == "string":
        return str(value)
    if kind == "bytes":
        return bytes(value).decode("utf-8", "replace")
    if kind == "google.protobuf.Timestamp":
        return _format_timestamp(value)
    if kind == "google.protobuf.Duration":
        return _format_duration(value)
    if kind == "list":
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if kind == "map":
        pairs = sorted((format_value(key), format_value(item)) for key, item in value.items())
        return "{" + ", ".join(f"{key}: {item}" for key, item in pairs) + "}"
    if kind == "type":
        return type_label(value)
    raise _clause_error(
        "string clause can only be used on strings, bools, bytes, ints, doubles, maps, lists, types, "
        f"durations, and timestamps, was given {kind}"
    )


def type_label(value: Any) -> str:
    """The CEL name of a type value (``type('x')`` is ``string``)."""
    name = getattr(value, "__name__", None)
    if name is not None:
        return _TYPE_NAMES.get(name, name)
    label = getattr(value, "name", None)  # another engine's type object
    return str(label() if callable(label) else value).lower()


def format_double(value: float) -> str:
    """A double as CEL prints it: Go's shortest %g ('2.5', '100000', '1e+06', 'NaN', 'Infinity')."""
    if not math.isfinite(value):
        return _special_float(value)
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    if whole == "0":  # 0.00123: the exponent is where the first significant digit is
        exp = -(len(fraction) - len(fraction.lstrip("0"))) - 1
    else:
        exp = len(whole) - 1 + (int(exponent) if exponent else 0)
    digits = (whole + fraction).lstrip("0").rstrip("0") or "0"
    if exp < -4 or exp >= 6:  # Go's rule for the shortest %g
        tail = digits[1:]
        return f"{sign}{digits[0]}{'.' + tail if tail else ''}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    head = digits[: exp + 1].ljust(exp + 1, "0")
    rest = digits[exp + 1 :]
    return f"{sign}{head}{'.' + rest if rest else ''}"


def _format_timestamp(value: datetime) -> str:
    stamp = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    if stamp.microsecond:
        text += f".{stamp.microsecond:06d}".rstrip("0")
    return text + "Z"


def _format_duration(value: timedelta) -> str:
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    seconds, fraction = divmod(abs(micros), 1_000_000)
    text = f"{'-' if micros < 0 else ''}{seconds}"
    if fraction:
        text += f".{fraction:06d}".rstrip("0")
    return text + "s"


#: CEL name -> implementation; ``strings.quote`` is a global function, the others are methods.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "charAt": char_at,
    "indexOf": index_of,
    "lastIndexOf": last_index_of,
    "lowerAscii": lower_ascii,
    "upperAscii": upper_ascii,
    "replace": replace,
    "split": split,
    "substring": substring,
    "trim": trim,
    "join": join,
    "format": format_string,
    "strings.quote": quote,
    "reverse": reverse,
}
