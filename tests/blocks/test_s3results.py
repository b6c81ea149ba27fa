"""The S3 result storage block against a moto S3 server on 127.0.0.1, and its settings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import ValidationError

from blocks import results
from blocks.results import node_results
from blocks.s3results import S3ResultStorage, saved_s3_result_storage
from flows.settings import ResultSettings
from tests.peers import free_port

BUCKET = "gorax-block-test"


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


def _storage(endpoint: str, prefix: str = "") -> S3ResultStorage:
    return S3ResultStorage(bucket=BUCKET, prefix=prefix or f"t-{uuid.uuid4().hex[:8]}", endpoint_url=endpoint)


async def test_results_round_trip_under_the_prefix_and_missing_ones_are_errors(s3: tuple[str, Any]) -> None:
    endpoint, client = s3
    storage = _storage(endpoint)
    assert await storage.awrite_path("abc", b"sealed \xff") == "abc"
    assert client.get_object(Bucket=BUCKET, Key=f"{storage.prefix}/abc")["Body"].read() == b"sealed \xff"
    assert await storage.aread_path("abc") == b"sealed \xff"
    assert await storage.read_path("abc") == b"sealed \xff"  # Prefect's other spelling
    with pytest.raises(FileNotFoundError, match=f"s3://{BUCKET}/{storage.prefix}/missing does not exist"):
        await storage.aread_path("missing")
    for escape in ("../other/abc", "/abc", "a//b", ""):
        with pytest.raises(ValueError, match="is not a relative key"):
            await storage.awrite_path(escape, b"no")


async def test_an_unreachable_store_is_an_error_naming_the_object() -> None:
    storage = S3ResultStorage(bucket=BUCKET, prefix="p", endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(OSError, match=f"s3://{BUCKET}/p/abc cannot be read"):
        await storage.aread_path("abc")
    with pytest.raises(OSError, match=f"s3://{BUCKET}/p/abc cannot be written"):
        await storage.awrite_path("abc", b"x")


async def test_a_runs_node_results_are_one_object_and_found_by_another_process(
    s3: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, client = s3
    storage = _storage(endpoint)
    storage._bundled = True
    prefix = f"gorax-{uuid.uuid4().hex[:8]}-"
    monkeypatch.setattr(results, "_begun", results.OrderedDict())
    async with node_results(storage, prefix, first_attempt=True):
        await storage.awrite_path(f"{prefix}a", b"result a")
        await storage.awrite_path(f"{prefix}b", b"result b")
        assert await storage.aread_path(f"{prefix}a") == b"result a"
        with pytest.raises(ValueError, match="does not exist"):  # a first attempt never asks S3
            await storage.aread_path(f"{prefix}c")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=storage.prefix)["Contents"]]
    assert keys == [f"{storage.prefix}/{prefix.rstrip('-')}.results-0"]

    # Another worker resumes the run: it finds them in the bucket.
    monkeypatch.setattr(results, "_begun", results.OrderedDict())
    other = _storage(endpoint, storage.prefix)
    other._bundled = True
    async with node_results(other, prefix, first_attempt=False):
        assert await other.aread_path(f"{prefix}b") == b"result b"
        with pytest.raises(FileNotFoundError):
            await other.aread_path(f"{prefix}c")


async def test_the_storage_is_saved_once_and_named_after_its_location(prefect_server: Any, s3: tuple[str, Any]) -> None:
    endpoint, _ = s3
    prefix = f"saved-{uuid.uuid4().hex[:8]}"
    first = await saved_s3_result_storage(bucket=BUCKET, prefix=f"/{prefix}/", endpoint_url=endpoint)
    again = await saved_s3_result_storage(bucket=BUCKET, prefix=prefix, endpoint_url=endpoint)
    elsewhere = await saved_s3_result_storage(bucket=BUCKET, prefix=prefix + "-b", endpoint_url=endpoint)
    assert first._block_document_id is not None and again._block_document_id == first._block_document_id
    assert elsewhere._block_document_id != first._block_document_id
    assert (again.bucket, again.prefix, again.endpoint_url) == (BUCKET, prefix, endpoint)


def test_the_results_url_is_local_or_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not ResultSettings().remote
    monkeypatch.setenv("GORAX_RESULTS_URL", "s3://bucket/a/b/")
    settings = ResultSettings()
    assert settings.remote and settings.s3_location() == ("bucket", "a/b")
    for bad in ("file:///tmp/results", "s3://", "s3:///prefix"):
        monkeypatch.setenv("GORAX_RESULTS_URL", bad)
        with pytest.raises(ValidationError, match="GORAX_RESULTS_URL must be `local` or `s3://bucket/prefix`"):
            ResultSettings()


class TestS3ResultStorageBlock(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return S3ResultStorage

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        # The upstream check downloads the logo; Gorax blocks ship none.
        assert block._logo_url is None
