"""Random bytes from the OS, drawn a few kilobytes at a time.

``os.urandom`` gives up the GIL for its system call. In a process whose other threads are busy
(Prefect's event and log senders in a worker; the delivery writer in the API), taking it back
waits up to a switch interval (5 ms): in the worker that was 0.4 ms a sealed node result on
average, in the API two or three such waits on every webhook delivery (its id, its request id).
A pool keeps the system call off the hot path. The bytes are exactly as random as before and
each is handed out once; a forked child starts with an empty pool (it must never reuse its
parent's bytes) and a lock no thread holds.
"""

from __future__ import annotations

import os
import threading
import uuid


class RandomPool:
    """``take(n)``: the next ``n`` bytes of a buffer refilled from ``os.urandom``."""

    def __init__(self, chunk: int = 4096) -> None:
        self.chunk = chunk
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._buffer = b""
        self._offset = 0
        self._lock = threading.Lock()

    def take(self, count: int) -> bytes:
        if count > self.chunk:
            return os.urandom(count)
        with self._lock:
            if self._offset + count > len(self._buffer):
                self._buffer = os.urandom(self.chunk)
                self._offset = 0
            out = self._buffer[self._offset : self._offset + count]
            self._offset += count
            return out


pool = RandomPool()


def uuid4() -> uuid.UUID:
    """A random (version 4) UUID, as :func:`uuid.uuid4`, from the pool."""
    return uuid.UUID(bytes=pool.take(16), version=4)


def token_hex(count: int) -> str:
    """``count`` random bytes as hex, as :func:`secrets.token_hex`, from the pool."""
    return pool.take(count).hex()
