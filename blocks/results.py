"""A Prefect result serializer that seals persisted results (type ``gorax-sealed-json``).

Node outputs may hold secrets (an API echoing a token); Prefect persists task results to
result storage in clear. With this serializer the stored bytes are one sealed value
(AES-256-GCM, see ``blocks.envelope``) under a Gorax-wide results data key that lives, wrapped,
in a keyring like a tenant's (``gorax_keyring__gorax-results``) and is re-wrapped by
``gorax keys rotate``. Use it as ``@task(result_serializer=SealedJSONSerializer())`` or
``result_serializer="gorax-sealed-json"`` once this module is imported.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr
from prefect.filesystems import LocalFileSystem
from prefect.serializers import JSONSerializer

from blocks import envelope, keys

RESULTS_KEYRING = "gorax-results"
_WHERE = envelope.SealContext(RESULTS_KEYRING, "prefect-result", "result")
_lock = threading.Lock()
_current: tuple[str, bytes] | None = None
_by_id: dict[str, bytes] = {}


def _run(coro: Any) -> Any:
    # dumps/loads are synchronous but may be called inside a running event loop: resolve the
    # key on a helper thread with its own loop (once per process, then cached).
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _current_key() -> tuple[str, bytes]:
    global _current
    with _lock:
        if _current is None:
            _current = _run(keys.current_data_key(tenant_id=RESULTS_KEYRING, tenant_slug=RESULTS_KEYRING))
            _by_id[_current[0]] = _current[1]
        return _current


def _key(key_id: str) -> bytes:
    with _lock:
        if key_id not in _by_id:
            _by_id[key_id] = _run(keys.data_key(tenant_id=RESULTS_KEYRING, key_id=key_id))
        return _by_id[key_id]


class SealedJSONSerializer(JSONSerializer):
    """JSON, sealed with AES-256-GCM under the Gorax results key."""

    type: str = Field(default="gorax-sealed-json", frozen=True)

    def dumps(self, obj: Any) -> bytes:
        key_id, key = _current_key()
        return envelope.seal(super().dumps(obj).decode(), key=key, key_id=key_id, where=_WHERE).encode()

    def loads(self, blob: bytes) -> Any:
        sealed = envelope.parse(blob.decode(), _WHERE)
        plain = envelope.open_sealed(sealed, key=_key(sealed.key_id), where=_WHERE)
        return super().loads(plain.encode())


class NodeResultStorage(LocalFileSystem):
    """Local result storage for node results: Prefect's local file system, minus its per-call cost.

    Every node of a run persists its (sealed) result and looks up its cache key before running.
    Prefect's ``LocalFileSystem`` resolves symlinks of both paths on every call and moves each
    open, write and close to a worker thread: several times the cost of writing a small file.
    This one resolves the base path once, rejects keys that leave it, and does small reads and
    writes in place (large ones still go to a thread). Same files, same layout.
    """

    _block_type_name = "Gorax Node Result Storage"

    #: Results larger than this are read and written on a worker thread.
    inline_bytes: ClassVar[int] = 256 * 1024
    _resolved_base: str | None = PrivateAttr(default=None)

    def _base(self) -> str:
        if self._resolved_base is None:
            self._resolved_base = os.path.realpath(os.path.expanduser(self.basepath or "."))
        return self._resolved_base

    def _resolve_path(self, path: str) -> Path:
        base = self._base()
        if not path:
            return Path(base)
        full = os.path.normpath(os.path.join(base, os.path.expanduser(path)))
        if full != base and not full.startswith(base + os.sep):
            raise ValueError(f"Provided path {full} is outside of the base path {base}.")
        return Path(full)

    async def aread_path(self, path: str) -> bytes:
        full = self._resolve_path(path)
        try:
            size = os.stat(full).st_size
            if size > self.inline_bytes:
                return await asyncio.to_thread(full.read_bytes)
            with open(full, "rb") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            raise ValueError(f"Path {full} does not exist.") from None
        except IsADirectoryError:
            raise ValueError(f"Path {full} is not a file.") from None

    async def awrite_path(self, path: str, content: bytes) -> str:
        full = self._resolve_path(path)

        def write() -> None:
            try:
                handle = open(full, "wb")
            except FileNotFoundError:
                full.parent.mkdir(parents=True, exist_ok=True)
                handle = open(full, "wb")
            with handle:
                handle.write(content)

        if len(content) > self.inline_bytes:
            await asyncio.to_thread(write)
        else:
            write()
        return str(full)


def node_result_storage() -> NodeResultStorage:
    """Where node results go: Prefect's local storage path (``PREFECT_LOCAL_STORAGE_PATH``)."""
    from prefect.settings import get_current_settings

    return NodeResultStorage(basepath=str(get_current_settings().results.local_storage_path))
