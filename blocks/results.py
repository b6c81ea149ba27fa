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
import contextlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from prefect.filesystems import LocalFileSystem
from prefect.logging import get_run_logger
from prefect.serializers import JSONSerializer
from prefect.settings import get_current_settings
from pydantic import Field, PrivateAttr

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


def _write_file(full: Path, content: bytes) -> None:
    try:
        handle = open(full, "wb")
    except FileNotFoundError:
        full.parent.mkdir(parents=True, exist_ok=True)
        handle = open(full, "wb")
    with handle:
        handle.write(content)


class _RunResults:
    """The node results of one flow run in this process: kept in memory, stored in segments.

    A node's result is only read back by a later run of the same flow body (a flow retry, a
    resume after a pause, a restart after a crash). Writing one small file per node cost ~1 ms
    a node in the worker (each open, write and close gives up the GIL and waits to get it back
    behind Prefect's event and log threads), more than the rest of a node's overhead; so the
    results of a run are stored together, as one segment per flush (``gorax-<flow run>.results-<n>``
    beside where the single results would be; a file written atomically, or one object): when
    the body ends or pauses, and during a long run at most every :data:`FLUSH_SECONDS`.
    """

    def __init__(self, store: _BundledStorage, prefix: str, fresh: bool) -> None:
        self.store = store
        self.location = store._location()
        self.prefix = prefix
        self.fresh = fresh
        self.unsaved: dict[str, bytes] = {}
        self.saved: dict[str, bytes] | None = {} if fresh else None
        self.segments = 0
        self.flushed_at = time.monotonic()
        self._flushing = asyncio.Lock()

    def _segment(self, number: int) -> str:
        return f"{self.prefix.rstrip('-')}.results-{number}"

    def load(self) -> dict[str, bytes]:
        """Every stored result of this run (read once; earlier segments first)."""
        if self.saved is None:
            saved: dict[str, bytes] = {}
            number = 0
            while True:
                content = self.store._read_segment(self._segment(number))
                if content is None:
                    break
                try:
                    document = json.loads(content)
                    saved.update({name: text.encode("latin-1") for name, text in document["results"].items()})
                except (ValueError, KeyError, TypeError, AttributeError):
                    pass  # unreadable: its nodes run again; later segments still count
                number += 1
            self.saved, self.segments = saved, number
        return self.saved

    def get(self, name: str) -> bytes | None:
        found = self.unsaved.get(name)
        if found is None:
            found = self.load().get(name)
        return found

    async def flush(self, *, in_thread: bool = False) -> None:
        """Store what is not stored yet as the next segment.

        One flush at a time: the batch is taken and the segment number chosen on the event loop,
        so results written while a segment is on its way (parallel nodes) go in the next one.
        A batch that could not be stored stays for the next flush.
        """
        async with self._flushing:
            if not self.unsaved:
                return
            self.load()  # how many segments there are
            batch, self.unsaved = self.unsaved, {}
            self.flushed_at = time.monotonic()
            name = self._segment(self.segments)
            document = {
                "format": "gorax/node-results@1",
                "results": {key: content.decode("latin-1") for key, content in batch.items()},
            }
            content = json.dumps(document, separators=(",", ":")).encode()
            try:
                if in_thread:
                    await asyncio.to_thread(self.store._write_segment, name, content)
                else:
                    self.store._write_segment(name, content)
            except BaseException:
                self.unsaved = {**batch, **self.unsaved}
                raise
            self.segments += 1
            if self.saved is not None:
                # Kept: a body that pauses in place and goes on (an agent's approved tool call
                # runs its node again) asks for the keys it stored before the pause once more.
                self.saved.update(batch)

    @property
    def flushing(self) -> bool:
        return self._flushing.locked()


class _BundledStorage:
    """What a result storage block adds to keep a run's node results together (a mixin).

    The block says where segments go (:meth:`_location`, :meth:`_read_segment`,
    :meth:`_write_segment`) and passes a key through :meth:`_bundled_read` and
    :meth:`_bundled_write` before storing it alone. ``_bundled`` is the block's private flag.
    """

    _bundled: bool

    def _location(self) -> str:
        """Where the keys without a directory live (a directory, ``s3://bucket/prefix``)."""
        raise NotImplementedError

    def _read_segment(self, name: str) -> bytes | None:
        """The segment ``name`` at :meth:`_location`; None when there is none."""
        raise NotImplementedError

    def _write_segment(self, name: str, content: bytes) -> None:
        """Store the segment ``name`` at :meth:`_location`, whole or not at all."""
        raise NotImplementedError

    def _bundle_for(self, location: str, name: str) -> _RunResults | None:
        """The collecting run a key at ``location``/``name`` belongs to, if any."""
        if self._bundled and _runs:
            for prefix, run in _runs.items():
                if name.startswith(prefix) and run.location == location:
                    return run
        return None

    async def _bundled_read(self, location: str, name: str, missing: str) -> bytes | None:
        run = self._bundle_for(location, name)
        if run is None:
            return None
        found = run.get(name)
        if found is None and run.fresh:
            raise ValueError(missing)
        return found

    async def _bundled_write(self, location: str, name: str, content: bytes) -> bool:
        run = self._bundle_for(location, name)
        if run is None:
            return False
        run.unsaved[name] = content
        if time.monotonic() - run.flushed_at > FLUSH_SECONDS and not run.flushing:
            # A failed periodic flush leaves the batch to the one at the end, which logs it.
            with contextlib.suppress(Exception):
                await run.flush(in_thread=True)
        return True


def _store_file(target: Path, content: bytes) -> None:
    """Write ``target`` atomically (a temp file renamed into place)."""
    temp = target.with_name(target.name + f".{os.getpid()}.tmp")
    try:
        _write_file(temp, content)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


#: During a long run, its node results are stored at least this often (a crash loses at most
#: this much: a retry of the run repeats those nodes).
FLUSH_SECONDS = 2.0
_runs: dict[str, _RunResults] = {}
_begun: OrderedDict[str, None] = OrderedDict()


@contextlib.asynccontextmanager
async def node_results(storage: _BundledStorage, prefix: str, *, first_attempt: bool) -> AsyncIterator[None]:
    """Collect the node results of one run of a flow body (cache keys starting with ``prefix``).

    ``first_attempt``: the flow run has never run its body before (Prefect counts one run and
    it was never paused), so no result of it exists yet and cache lookups skip the disk; a body
    that runs again in this process (a flow retry) is never taken for a first attempt. On the
    way out (the body returned, failed or paused) the results are stored; results that could
    not be are logged (a retry of the run repeats those nodes).
    """
    first = first_attempt and prefix not in _begun
    _begun[prefix] = None
    while len(_begun) > 4096:
        _begun.popitem(last=False)
    run = _RunResults(storage, prefix, fresh=first)
    _runs[prefix] = run
    try:
        yield
    finally:
        _runs.pop(prefix, None)
        try:
            await run.flush(in_thread=len(run.unsaved) > 64)
        except Exception as exc:  # noqa: BLE001 - the run's own outcome stands
            with contextlib.suppress(Exception):
                get_run_logger().warning(
                    "%d node result(s) could not be stored (a retry of this run repeats those nodes): %s: %s",
                    len(run.unsaved),
                    type(exc).__name__,
                    exc,
                )


class NodeResultStorage(LocalFileSystem, _BundledStorage):
    """Local result storage for node results: Prefect's local file system, minus its per-call cost.

    Every node of a run persists its (sealed) result and looks up its cache key before running.
    Prefect's ``LocalFileSystem`` resolves symlinks of both paths on every call and moves each
    open, write and close to a worker thread: several times the cost of writing a small file.
    This one resolves the base path once, rejects keys that leave it, and does small reads in
    place (large ones go to a thread). With ``bundled`` (node results), the results of a run
    that :func:`node_results` collects are kept together (see :class:`_RunResults`); any other
    key is one file, as in Prefect's layout.
    """

    _block_type_name = "Gorax Node Result Storage"

    #: Results larger than this are read and written on a worker thread.
    inline_bytes: ClassVar[int] = 256 * 1024
    _resolved_base: str | None = PrivateAttr(default=None)
    _bundled: bool = PrivateAttr(default=False)

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

    def _location(self) -> str:
        return self._base()

    def _read_segment(self, name: str) -> bytes | None:
        try:
            return Path(self._base(), name).read_bytes()
        except FileNotFoundError:
            return None

    def _write_segment(self, name: str, content: bytes) -> None:
        _store_file(Path(self._base(), name), content)

    async def aread_path(self, path: str) -> bytes:
        full = self._resolve_path(path)
        found = await self._bundled_read(str(full.parent), full.name, f"Path {full} does not exist.")
        if found is not None:
            return found
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
        if await self._bundled_write(str(full.parent), full.name, content):
            pass
        elif len(content) > self.inline_bytes:
            await asyncio.to_thread(_write_file, full, content)
        else:
            _write_file(full, content)
        return str(full)


#: The result storage every process reads, when this process has one (see :func:`use_shared_storage`).
_shared: _BundledStorage | None = None
_shared_bundled: Any = None
_local: dict[tuple[str, bool], NodeResultStorage] = {}


def use_shared_storage(storage: _BundledStorage | None) -> None:
    """Store this process's node results in ``storage`` (a saved block every process can read;
    None: Prefect's local storage path again)."""
    global _shared, _shared_bundled
    _shared, _shared_bundled = storage, None


def node_result_storage(*, bundled: bool = False) -> Any:
    """Where node results go: the shared storage this process was given, else Prefect's local
    storage path (``PREFECT_LOCAL_STORAGE_PATH``).

    ``bundled``: the results of a run collected by :func:`node_results` are stored together
    when its body ends (node results, read back only by a later run of the same flow body;
    never a flow's result, which other processes read as soon as the run is Completed).
    """
    global _shared_bundled
    if _shared is not None:
        if not bundled:
            return _shared
        if _shared_bundled is None:  # one copy per shared storage: callers key stores by it
            storage: Any = _shared.model_copy()  # type: ignore[attr-defined]
            storage._bundled = True
            _shared_bundled = storage
        return _shared_bundled
    basepath = str(get_current_settings().results.local_storage_path)
    local = _local.get((basepath, bundled))
    if local is None:
        local = _local[(basepath, bundled)] = NodeResultStorage(basepath=basepath)
        local._bundled = bundled
    return local
