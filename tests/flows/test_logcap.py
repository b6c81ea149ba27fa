"""Every log record a Gorax process makes is capped, whichever logger and handler writes it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from flows.logcap import cap_text, install_line_cap, line_cap
from flows.settings import GoraxSettings

CAP = 4096


@pytest.fixture
def capped() -> Iterator[None]:
    before = line_cap()
    install_line_cap(CAP)
    yield
    install_line_cap(before)


def _handler_made_later(name: str) -> tuple[logging.Logger, io.StringIO]:
    """A logger with a handler added after the cap was installed, as uvicorn adds its own."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s"))
    logger = logging.getLogger(name)
    logger.handlers, logger.propagate = [handler], False
    return logger, stream


def test_the_cap_is_a_setting_of_8_kb_by_default() -> None:
    assert GoraxSettings().log_max_line_bytes == 8192


def test_a_long_message_is_cut_with_a_marker(capped: None) -> None:
    logger, stream = _handler_made_later("tests.logcap.message")
    logger.warning("Prefect said: %s", "p" * 1_000_000)
    line = stream.getvalue().rstrip("\n")
    assert len(line.encode()) <= CAP
    assert "Prefect said: ppp" in line and "bytes cut]" in line
    cut = int(line.split("... [")[1].split(" bytes cut")[0].replace(",", ""))
    assert 990_000 < cut < 1_000_000


def test_a_traceback_keeps_its_start_and_its_last_line(capped: None) -> None:
    logger, stream = _handler_made_later("tests.logcap.traceback")
    try:
        raise ValueError("x" * 500_000 + " the end")
    except ValueError:
        logger.exception("failed")
    text = stream.getvalue()
    assert len(text.encode()) <= CAP
    assert "Traceback (most recent call last)" in text and text.rstrip().endswith("the end")


def test_small_records_are_left_as_they_are(capped: None) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("tests.logcap.small")
    logger.handlers, logger.propagate = [Keep()], False
    logger.warning("hello %s", "world")
    assert records[0].msg == "hello %s" and records[0].args == ("world",)


def test_cap_text_measures_utf8_bytes() -> None:
    text = "é" * 10_000
    capped = cap_text(text, 1000)
    assert len(capped.encode()) <= 1000 and "bytes cut" in capped
    assert cap_text("short", 1000) == "short"
