"""A cap on the size of every log record a Gorax process writes (``GORAX_LOG_MAX_LINE_BYTES``).

A message or traceback may quote a request or a response whole: one of Prefect's error answers
echoes the request it refused, and a 20 MB payload became a 40 MB log line. Past the cap, the
message and the traceback keep their beginning and end around a marker saying how much was cut.

The cap is applied where records are made (``logging.setLogRecordFactory``), not in a handler:
uvicorn and Prefect configure their own handlers, some after Gorax has started (``prefect server
start`` configures uvicorn's when it starts serving), and a record factory covers every logger
and every handler of the process, present or future. A formatter that also writes a record's
extra fields (the API's JSON lines) caps the whole line itself with :func:`cap_text`.
"""

from __future__ import annotations

import logging
from typing import Any

#: Room left in a line for what a formatter adds around the message (time, level, logger).
PREFIX_ROOM = 256
#: The smallest cap that leaves a useful message.
MIN_LINE_BYTES = 1024

_state: dict[str, int] = {"max_bytes": 0}


def cap_text(text: str, max_bytes: int) -> str:
    """``text`` if it fits in ``max_bytes`` of UTF-8, else its start and end around a marker
    saying how many bytes were cut (a traceback's last line names the exception)."""
    if len(text) * 4 <= max_bytes:  # cheap: no character is longer than 4 bytes
        return text
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return text
    # The marker takes at most 40 bytes (" ... [12,345,678,901 bytes cut] ... ").
    room = max(0, max_bytes - 40)
    head = encoded[: room - room // 3].decode("utf-8", "ignore")
    tail = encoded[len(encoded) - room // 3 :].decode("utf-8", "ignore") if room // 3 else ""
    cut = len(encoded) - len(head.encode("utf-8", "surrogatepass")) - len(tail.encode("utf-8", "surrogatepass"))
    return f"{head} ... [{cut:,} bytes cut] ... {tail}"


def _message(record: logging.LogRecord) -> str | None:
    """The formatted message, or None when it cannot be formatted (left to the handler)."""
    try:
        return record.getMessage()
    except Exception:  # a broken format string is the handler's to report
        return None


def cap_record(record: logging.LogRecord, max_bytes: int) -> logging.LogRecord:
    """Cut ``record``'s message, traceback and stack so a formatted line stays near ``max_bytes``.

    A record that fits is left as it is (its ``msg`` and ``args`` untouched). With a traceback,
    the message may take half of the room and the traceback the rest.
    """
    room = max_bytes - PREFIX_ROOM
    small = isinstance(record.msg, str) and not record.args and len(record.msg) * 4 <= room // 2
    if small and not record.exc_info and not record.stack_info:
        return record
    message = _message(record)
    if message is not None:
        capped = cap_text(message, room // 2 if record.exc_info or record.stack_info else room)
        if capped is not message:
            record.msg, record.args = capped, None
        room -= len(capped.encode("utf-8", "surrogatepass"))
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        capped = cap_text(record.exc_text, max(room, 0))
        if capped is not record.exc_text:
            record.exc_text = capped
            # Handlers that render a traceback themselves (rich) would print the whole one.
            record.exc_info = None
        room -= len(capped.encode("utf-8", "surrogatepass"))
    if record.stack_info:
        record.stack_info = cap_text(record.stack_info, max(room, 0))
    return record


def install_line_cap(max_bytes: int) -> None:
    """Cap every log record this process makes from now on at ``max_bytes`` (idempotent; the
    newest cap wins; 0 turns it off)."""
    _state["max_bytes"] = max(max_bytes, MIN_LINE_BYTES) if max_bytes > 0 else 0
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_gorax_capped", False):
        return

    def capped_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        limit = _state["max_bytes"]
        return cap_record(record, limit) if limit else record

    capped_record._gorax_capped = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(capped_record)


def line_cap() -> int:
    """The cap installed in this process (0: none)."""
    return _state["max_bytes"]
