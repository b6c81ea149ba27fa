"""AWS node types against a real moto server subprocess."""

from __future__ import annotations

import base64
import io
import json
import uuid
import zipfile
from typing import Any

import pytest

from flows.errors import IntegrationError
from flows.nodes.aws import (
    LambdaInvoke,
    S3GetObject,
    S3PutObject,
    SnsPublish,
    SqsSendMessage,
    TextractDetectText,
)
from tests.flows.integrations.conftest import TEXTRACT_LINES, NodeTestContext


def _client(creds: Any, service: str) -> Any:
    return creds.get_boto3_session().client(service, **creds.aws_client_parameters.get_params_override())


@pytest.fixture
def ctx(aws_credentials: Any) -> NodeTestContext:
    return NodeTestContext({"aws": aws_credentials})


async def test_s3_put_then_get_text_json_and_binary(aws_credentials: Any, ctx: NodeTestContext) -> None:
    bucket = f"docs-{uuid.uuid4().hex[:8]}"
    _client(aws_credentials, "s3").create_bucket(Bucket=bucket)
    put, get = S3PutObject(), S3GetObject()
    out = await put.run(put.Config(credential="aws", bucket=bucket, key="a.json", json_content={"n": 1}), ctx)
    assert out["etag"] and out["size"] == len(b'{"n": 1}')
    got = await get.run(get.Config(credential="aws", bucket=bucket, key="a.json", decode="json"), ctx)
    assert got["content"] == {"n": 1} and got["content_type"] == "application/json"

    blob = bytes(range(256))
    await put.run(
        put.Config(credential="aws", bucket=bucket, key="b.bin", content_base64=base64.b64encode(blob).decode()), ctx
    )
    got = await get.run(get.Config(credential="aws", bucket=bucket, key="b.bin", decode="base64"), ctx)
    assert base64.b64decode(got["content"]) == blob
    with pytest.raises(IntegrationError, match="not TEXT.*use decode 'base64'"):
        await get.run(get.Config(credential="aws", bucket=bucket, key="b.bin"), ctx)
    with pytest.raises(IntegrationError, match="over max_bytes 10"):
        await get.run(get.Config(credential="aws", bucket=bucket, key="b.bin", max_bytes=10), ctx)

    with pytest.raises(IntegrationError) as info:
        await get.run(get.Config(credential="aws", bucket=bucket, key="missing.txt"), ctx)
    assert info.value.status == 404 and "GetObject" in str(info.value) and "NoSuchKey" in str(info.value)


async def test_wrong_secret_key_error_is_masked(aws_credentials: Any, ctx: NodeTestContext) -> None:
    with pytest.raises(IntegrationError) as info:
        await S3GetObject().run(S3GetObject.Config(credential="aws", bucket="no-such-bucket-x", key="k"), ctx)
    assert info.value.status == 404 and "NoSuchBucket" in str(info.value)
    assert "moto-secret-key-do-not-log-0123" not in repr(info.value.to_dict())


async def test_sqs_and_sns(aws_credentials: Any, ctx: NodeTestContext) -> None:
    sqs = _client(aws_credentials, "sqs")
    queue_url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    node = SqsSendMessage()
    sent = await node.run(node.Config(credential="aws", queue="jobs", body={"job": 7}, attributes={"kind": "x"}), ctx)
    assert sent["queue_url"] == queue_url and sent["message_id"]
    received = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"][0]
    assert json.loads(received["Body"]) == {"job": 7}
    assert received["MessageAttributes"]["kind"]["StringValue"] == "x"

    sns = _client(aws_credentials, "sns")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    sink = sqs.create_queue(QueueName="alerts-sink")["QueueUrl"]
    sink_arn = sqs.get_queue_attributes(QueueUrl=sink, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sink_arn, Attributes={"RawMessageDelivery": "true"})
    published = await SnsPublish().run(
        SnsPublish.Config(credential="aws", topic_arn=topic, message="disk full", subject="alert"), ctx
    )
    assert published["message_id"]
    assert sqs.receive_message(QueueUrl=sink)["Messages"][0]["Body"] == "disk full"

    with pytest.raises(IntegrationError, match="GetQueueUrl.*NonExistentQueue"):
        await node.run(node.Config(credential="aws", queue="nope", body="x"), ctx)


async def test_lambda_invoke(aws_credentials: Any, ctx: NodeTestContext) -> None:
    iam = _client(aws_credentials, "iam")
    role = iam.create_role(RoleName=f"fn-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return event\n")
    _client(aws_credentials, "lambda").create_function(
        FunctionName="echo",
        Runtime="python3.11",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": archive.getvalue()},
    )
    out = await LambdaInvoke().run(LambdaInvoke.Config(credential="aws", function_name="echo", payload={"a": [1]}), ctx)
    # moto's Docker-free Lambda answers with the payload it was sent (and never raises a
    # FunctionError, nor checks that the function exists, so those paths are not exercised).
    assert out["status_code"] == 200 and out["payload"] == {"a": [1]}
    queued = await LambdaInvoke().run(
        LambdaInvoke.Config(credential="aws", function_name="echo", payload={"b": 2}, invocation_type="Event"), ctx
    )
    assert queued["status_code"] == 202


async def test_textract_from_s3_and_from_bytes(aws_credentials: Any, ctx: NodeTestContext) -> None:
    # moto does not read the document; it answers with the seeded blocks (see conftest).
    node = TextractDetectText()
    from_s3 = await node.run(node.Config(credential="aws", bucket="docs", key="invoice.png"), ctx)
    assert from_s3["lines"] == TEXTRACT_LINES and from_s3["text"] == "\n".join(TEXTRACT_LINES)
    assert from_s3["words"] == sum(len(line.split()) for line in TEXTRACT_LINES)
    from_bytes = await node.run(
        node.Config(credential="aws", document_base64=base64.b64encode(b"%PDF-1.4 ...").decode()), ctx
    )
    assert from_bytes["lines"] == TEXTRACT_LINES
    with pytest.raises(ValueError, match="either 'bucket' and 'key' or 'document_base64'"):
        node.Config(credential="aws", bucket="docs", key="k", document_base64="AA==")
