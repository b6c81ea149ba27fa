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
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import Field
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
