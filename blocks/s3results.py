"""Result storage in S3 (or an S3-compatible store), for runs whose results other processes read.

A run's result is read by processes that did not write it: the API answering an execution
(``execute`` with ``wait``, ``GET /executions/{id}``, a webhook answering after the run), a
parent run reading a sub-run. With results on the worker's disk they cannot be, so every
process names the same bucket and prefix, and the worker saves that location as a block
document: a persisted result names the block by id, and any reader loads it from Prefect.

The block holds no secret: each process reaches the bucket with the AWS credentials of its own
environment (boto3's usual chain: variables, shared files, an instance or pod role). Results are
sealed by their serializer (:class:`blocks.results.SealedJSONSerializer`) before they get here.
Layout under ``s3://<bucket>/<prefix>/``: one object per result key (Prefect's), and a run's node
results together as ``gorax-<flow run>.results-<n>`` (see :class:`blocks.results._RunResults`).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from typing import Any, ClassVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.filesystems import WritableFileSystem
from pydantic import Field, PrivateAttr

from blocks.results import _BundledStorage

_clients: dict[tuple[str | None, str | None], Any] = {}
_clients_lock = threading.Lock()
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


def _client(endpoint_url: str | None, region_name: str | None) -> Any:
    # One client per endpoint and region in a process: making one costs tens of milliseconds,
    # and a block is loaded afresh for every result the API reads. boto3 clients are thread-safe.
    with _clients_lock:
        client = _clients.get((endpoint_url, region_name))
        if client is None:
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region_name,
                config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30),
            )
            _clients[(endpoint_url, region_name)] = client
        return client


class S3ResultStorage(WritableFileSystem, _BundledStorage):
    """Run results in an S3 bucket under a prefix; credentials come from each process's AWS environment."""

    _block_type_name = "Gorax S3 Result Storage"
    _block_type_slug = "gorax-s3-result-storage"
    _logo_url = None
    _documentation_url: ClassVar[str] = "https://docs.gorax.io/results/"  # type: ignore[assignment]

    bucket: str = Field(description="The bucket results are stored in.")
    prefix: str = Field(default="", description="Key prefix of every result (no leading or trailing slash).")
    endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible store (MinIO, ...); empty: AWS S3."
    )
    region_name: str | None = Field(default=None, description="Region of the bucket; empty: the environment's.")

    _bundled: bool = PrivateAttr(default=False)

    def _location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix.strip('/')}".rstrip("/")

    def _key(self, path: str) -> str:
        """The object key of a result key; a key that is absolute or climbs out is an error."""
        parts = path.split("/")
        if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"result key {path!r} is not a relative key under {self._location()}")
        prefix = self.prefix.strip("/")
        return f"{prefix}/{path}" if prefix else path

    def _split(self, key: str) -> tuple[str, str]:
        """``(location, name)`` of an object key, as :meth:`_location` spells a location."""
        directory, _, name = key.rpartition("/")
        return f"s3://{self.bucket}/{directory}".rstrip("/"), name

    def _get(self, key: str) -> bytes | None:
        try:
            response = _client(self.endpoint_url, self.region_name).get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                return None
            raise OSError(f"s3://{self.bucket}/{key} cannot be read: {exc}") from exc
        except BotoCoreError as exc:
            raise OSError(f"s3://{self.bucket}/{key} cannot be read: {exc}") from exc

    def _put(self, key: str, content: bytes) -> None:
        try:
            _client(self.endpoint_url, self.region_name).put_object(Bucket=self.bucket, Key=key, Body=content)
        except (ClientError, BotoCoreError) as exc:
            raise OSError(f"s3://{self.bucket}/{key} cannot be written: {exc}") from exc

    def _read_segment(self, name: str) -> bytes | None:
        return self._get(self._key(name))

    def _write_segment(self, name: str, content: bytes) -> None:
        self._put(self._key(name), content)

    async def aread_path(self, path: str) -> bytes:
        key = self._key(path)
        location, name = self._split(key)
        missing = f"result s3://{self.bucket}/{key} does not exist"
        found = await self._bundled_read(location, name, missing)
        if found is None:
            found = await asyncio.to_thread(self._get, key)
        if found is None:
            raise FileNotFoundError(missing)
        return found

    async def awrite_path(self, path: str, content: bytes) -> str:
        key = self._key(path)
        location, name = self._split(key)
        if not await self._bundled_write(location, name, content):
            await asyncio.to_thread(self._put, key, content)
        return path

    async def read_path(self, path: str) -> bytes:
        return await self.aread_path(path)

    async def write_path(self, path: str, content: bytes) -> None:
        await self.awrite_path(path, content)


def _document_name(storage: S3ResultStorage) -> str:
    # Named after its content, so a name never changes meaning: results stored earlier keep
    # naming the place they are in, and processes with the same settings share one document.
    fields = storage.model_dump(include={"bucket", "prefix", "endpoint_url", "region_name"})
    digest = hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest()[:16]
    return f"gorax-results-{digest}"


async def saved_s3_result_storage(
    *, bucket: str, prefix: str = "", endpoint_url: str | None = None, region_name: str | None = None
) -> S3ResultStorage:
    """The S3 result storage for this location, saved in Prefect (loaded when it already is)."""
    storage = S3ResultStorage(
        bucket=bucket, prefix=prefix.strip("/"), endpoint_url=endpoint_url, region_name=region_name
    )
    name = _document_name(storage)
    try:
        return await S3ResultStorage.aload(name)
    except (ValueError, ObjectNotFound):
        pass
    try:
        await storage.asave(name)
    except ObjectAlreadyExists:  # another process saved it meanwhile
        return await S3ResultStorage.aload(name)
    return storage
