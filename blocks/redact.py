"""Process-wide masking of resolved secret values.

The credential loader registers every secret it hands out (with its base64 and URL-encoded
forms); :func:`mask` then replaces any of them with ``***`` in text or JSON-like data, and
:class:`RedactingFilter` does the same for log records::

    from blocks.redact import install_log_filter, mask
    install_log_filter()               # Prefect's loggers and their handlers
    mask({"header": "Bearer s3cr3t"})  # -> {"header": "Bearer ***"}
    mask_with(text, [password])        # the registered secrets and these, same encodings

It is the one mask of Gorax: step records, a run's result, human-task snapshots, logs and
integration errors all go through it.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
#: Shorter values are not masked: masking every "ab" in every log would hide everything else.
MIN_SECRET_LENGTH = 4


def encoded_forms(value: str) -> set[str]:
    """``value`` and the forms it takes on the wire: base64 (std/url-safe, +/- padding), URL-encoded, JSON-escaped."""
    raw = value.encode()
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    for encoder in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encoder(raw).decode()
        forms |= {encoded, encoded.rstrip("=")}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class Redactor:
    """A set of secret strings and a compiled pattern that finds any of them."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._ordered: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def register(self, value: str | None) -> None:
        """Mask ``value`` (and its encoded forms) from now on in this process."""
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        forms = encoded_forms(value)
        with self._lock:
            if forms <= self._secrets:
                return
            self._secrets |= forms
            # Longest first so a secret that contains another is masked whole.
            self._ordered = tuple(sorted(self._secrets, key=len, reverse=True))

    def including(self, values: Iterable[str | None]) -> Redactor:
        """A redactor masking what this one masks and ``values`` too (this one is unchanged)."""
        combined = Redactor()
        with self._lock:
            combined._secrets = set(self._secrets)
        for value in values:
            if value and len(value) >= MIN_SECRET_LENGTH:
                combined._secrets |= encoded_forms(value)
        combined._ordered = tuple(sorted(combined._secrets, key=len, reverse=True))
        return combined

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._ordered = ()

    def __len__(self) -> int:
        return len(self._secrets)

    @property
    def active(self) -> bool:
        return bool(self._ordered)

    def mask_text(self, text: str) -> str:
        # A substring test per form is C-speed and several times faster than one big regex
        # alternation (bench/credentials.py).
        for secret in self._ordered:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def mask(self, value: Any, *, keys: bool = True) -> Any:
        """``value`` with every registered secret replaced: strings, and strings inside
        dicts/lists/tuples (their keys too, unless ``keys`` is false)."""
        if not self._ordered:
            return value
        if isinstance(value, str):
            return self.mask_text(value)
        if isinstance(value, bytes):
            return self.mask_text(value.decode("utf-8", "replace")).encode()
        if isinstance(value, dict):
            if keys:
                return {self.mask(k): self.mask(v) for k, v in value.items()}
            return {k: self.mask(v, keys=False) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.mask(v, keys=keys) for v in value)
        return value


#: The process-wide redactor the loader registers into.
redactor = Redactor()


def register_secret(value: str | None) -> None:
    """Register ``value`` with the process-wide redactor."""
    redactor.register(value)


def mask(value: Any) -> Any:
    """Mask registered secrets in text or JSON-like data (process-wide redactor)."""
    return redactor.mask(value)


def mask_values(record: dict[str, Any], *, free: tuple[str, ...] = ()) -> dict[str, Any]:
    """Mask the registered secrets in the values of a record whose keys are a protocol's own
    (a human-task request, an event): its keys stay as they are, since a short secret that
    happens to be part of a key name (``timeout_seconds``) would otherwise rename the field.
    The ``free`` fields hold free-form data (a snapshot of a step's input): they are masked
    with :func:`mask`, keys and all."""
    return {key: mask(value) if key in free else redactor.mask(value, keys=False) for key, value in record.items()}


def mask_with(value: Any, secrets: Iterable[str | None]) -> Any:
    """Mask the registered secrets and ``secrets`` in ``value``.

    For values a caller holds that this process may not have registered (a connection URL
    taken apart, a credential a test context handed over): the same encodings, one function.
    """
    return redactor.including(secrets).mask(value)


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in the message, its args and tracebacks.

    It never drops a record; it rewrites it in place so every later handler sees masked text.
    """

    def __init__(self, target: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = target or redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor.active:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw parts, masked
            message = f"{record.msg} {record.args}"
        record.msg = self.redactor.mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.mask_text(record.exc_text)
            # Handlers that render tracebacks themselves (rich) would read the unmasked original.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redactor.mask_text(record.stack_info)
        return True


_installed = RedactingFilter()


def install_log_filter(logger_names: tuple[str, ...] = ("", "prefect")) -> RedactingFilter:
    """Install the process-wide filter on these loggers, every ``prefect.*`` logger and all their handlers.

    Filters on a logger only see records logged on it, so the filter goes on the handlers too
    (those see records propagated from child loggers). Safe to call more than once.
    """
    names = set(logger_names) | {name for name in logging.root.manager.loggerDict if name.startswith("prefect.")}
    for name in names:
        logger = logging.getLogger(name)
        if _installed not in logger.filters:
            logger.addFilter(_installed)
        for handler in logger.handlers:
            if _installed not in handler.filters:
                handler.addFilter(_installed)
    return _installed
