"""AWS node types (boto3 through prefect-aws's ``AwsCredentials``): S3 objects, Lambda, SQS,
SNS (topics and SMS), SES e-mail and Textract. The endpoint comes from the credential's client
parameters."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from email.utils import formataddr
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from flows.errors import IntegrationError
from flows.integrations.aws import aws_session
from flows.nodes._common import check_email_address, check_phone_number, check_sender_id, one_or_more
from translator.nodetypes import NodeConfig, NodeContext, NodeType

_MAX_OBJECT_BYTES = 50 * 1024 * 1024
#: SES's limit of recipients (to, cc and bcc together) in one message.
_MAX_SES_RECIPIENTS = 50

_Address = Annotated[str, AfterValidator(check_email_address)]
_Addresses = Annotated[list[_Address], BeforeValidator(one_or_more)]
_PhoneNumber = Annotated[str, AfterValidator(check_phone_number)]


class _AwsConfig(NodeConfig):
    credential: str = Field(min_length=1, description="Name of the AWS credential.")


class _AwsNode(NodeType):
    category = "aws"
    credential_types = ("aws-credentials",)


def _as_text(value: Any) -> str:
    """Message bodies: text as is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _set(**params: Any) -> dict[str, Any]:
    """The optional request parameters that have a value (boto3 refuses explicit ``None``)."""
    return {key: value for key, value in params.items() if value}


def _string_attributes(attributes: dict[str, str]) -> dict[str, Any] | None:
    """SQS/SNS message attributes from plain strings."""
    return {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()} or None


def _decode_base64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{where} is not valid base64") from exc


class S3GetObject(_AwsNode):
    type = "aws.s3.get_object"
    version = 1
    display_name = "Get S3 object"
    description = "Read an object from S3 as text, JSON or base64."
    icon = "bucket"
    example = {"credential": "aws", "bucket": "reports", "key": "daily/{{ trigger.date }}.csv"}

    class Config(_AwsConfig):
        bucket: str = Field(min_length=1, description="Bucket name.")
        key: str = Field(min_length=1, description="Object key.")
        decode: Literal["text", "json", "base64"] = Field(
            default="text", description="How to return the body: UTF-8 text, parsed JSON, or base64 (binary)."
        )
        max_bytes: int = Field(
            default=10 * 1024 * 1024, ge=1, le=_MAX_OBJECT_BYTES, description="Largest object read; bigger fails."
        )

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{bucket, key, content, content_type, size, etag}``."""
        aws = await aws_session(ctx, config.credential, self.credential_types)
        got = await aws.call("s3", "GetObject", Bucket=config.bucket, Key=config.key)
        size = int(got.get("ContentLength") or 0)
        where = f"s3://{config.bucket}/{config.key}"
        if size > config.max_bytes:
            got["Body"].close()
            raise IntegrationError("aws-s3", "GetObject", f"{where} is {size} bytes, over max_bytes {config.max_bytes}")
        data = await asyncio.to_thread(got["Body"].read)
        content: Any
        if config.decode == "base64":
            content = base64.b64encode(data).decode()
        else:
            try:
                content = data.decode("utf-8")
                if config.decode == "json":
                    content = json.loads(content)
            except ValueError as exc:
                raise IntegrationError(
                    "aws-s3", "GetObject", f"{where} is not {config.decode.upper()} ({exc}); use decode 'base64'"
                ) from None
        return {
            "bucket": config.bucket,
            "key": config.key,
            "content": content,
            "content_type": got.get("ContentType"),
            "size": len(data),
            "etag": got.get("ETag"),
        }


class S3PutObject(_AwsNode):
    type = "aws.s3.put_object"
    version = 1
    display_name = "Put S3 object"
    description = "Write text, JSON or binary (base64) content to an S3 object."
    icon = "bucket"
    example = {
        "credential": "aws",
        "bucket": "reports",
        "key": "totals.json",
        "json_content": {"total": "{{ steps.sum.total }}"},
    }

    class Config(_AwsConfig):
        bucket: str = Field(min_length=1, description="Bucket name.")
        key: str = Field(min_length=1, description="Object key.")
        content: str | None = Field(default=None, description="Text content.")
        content_base64: str | None = Field(default=None, description="Binary content, base64-encoded.")
        json_content: Any = Field(default=None, description="A value stored as JSON.")
        content_type: str | None = Field(default=None, description="Content-Type of the object.")
        metadata: dict[str, str] = Field(default_factory=dict, description="User metadata (x-amz-meta-*).")

        @model_validator(mode="after")
        def _one_content(self) -> S3PutObject.Config:
            given = [n for n in ("content", "content_base64", "json_content") if getattr(self, n) is not None]
            if len(given) != 1:
                raise ValueError("set exactly one of 'content', 'content_base64', 'json_content'")
            return self

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{bucket, key, etag, version_id, size}``."""
        if config.content_base64 is not None:
            body, ctype = _decode_base64(config.content_base64, "content_base64"), "application/octet-stream"
        elif config.json_content is not None:
            body, ctype = json.dumps(config.json_content).encode(), "application/json"
        else:
            body, ctype = (config.content or "").encode(), "text/plain; charset=utf-8"
        aws = await aws_session(ctx, config.credential, self.credential_types)
        put = await aws.call(
            "s3",
            "PutObject",
            Bucket=config.bucket,
            Key=config.key,
            Body=body,
            ContentType=config.content_type or ctype,
            Metadata=config.metadata,
        )
        return {
            "bucket": config.bucket,
            "key": config.key,
            "etag": put.get("ETag"),
            "version_id": put.get("VersionId"),
            "size": len(body),
        }


class LambdaInvoke(_AwsNode):
    type = "aws.lambda.invoke"
    version = 1
    display_name = "Invoke Lambda function"
    description = "Invoke an AWS Lambda function with a JSON payload."
    icon = "bolt"
    example = {"credential": "aws", "function_name": "resize-image", "payload": {"key": "{{ trigger.key }}"}}

    class Config(_AwsConfig):
        function_name: str = Field(min_length=1, description="Function name or ARN.")
        payload: Any = Field(default=None, description="JSON payload passed to the function.")
        invocation_type: Literal["RequestResponse", "Event"] = Field(
            default="RequestResponse", description="Wait for the result (RequestResponse) or queue it (Event)."
        )
        qualifier: str | None = Field(default=None, description="Version or alias to invoke.")
        fail_on_function_error: bool = Field(
            default=True, description="Fail the node when the function itself raised (FunctionError)."
        )

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{status_code, payload, function_error, executed_version}``."""
        aws = await aws_session(ctx, config.credential, self.credential_types)
        kwargs: dict[str, Any] = {
            "FunctionName": config.function_name,
            "InvocationType": config.invocation_type,
            "Payload": json.dumps(config.payload).encode(),
        }
        if config.qualifier:
            kwargs["Qualifier"] = config.qualifier
        answer = await aws.call("lambda", "Invoke", **kwargs)
        raw = await asyncio.to_thread(answer["Payload"].read) if answer.get("Payload") else b""
        try:
            payload: Any = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        error = answer.get("FunctionError")
        if error and config.fail_on_function_error:
            detail = payload.get("errorMessage") if isinstance(payload, dict) else payload
            raise IntegrationError(
                "aws-lambda",
                "Invoke",
                f"function {config.function_name} raised ({error})",
                provider_message=str(detail)[:500],
            )
        return {
            "status_code": answer.get("StatusCode"),
            "payload": payload,
            "function_error": error,
            "executed_version": answer.get("ExecutedVersion"),
        }


class SqsSendMessage(_AwsNode):
    type = "aws.sqs.send_message"
    version = 1
    display_name = "Send SQS message"
    description = "Send a message to an SQS queue (by URL or name)."
    icon = "queue"
    example = {"credential": "aws", "queue": "jobs", "body": {"order": "{{ trigger.id }}"}}

    class Config(_AwsConfig):
        queue: str = Field(min_length=1, description="Queue URL, or queue name (its URL is looked up).")
        body: Any = Field(description="Message body: text as is, anything else as JSON.")
        delay_seconds: int = Field(default=0, ge=0, le=900, description="Delay before the message is visible.")
        attributes: dict[str, str] = Field(default_factory=dict, description="String message attributes.")
        message_group_id: str | None = Field(default=None, description="Message group (FIFO queues).")
        deduplication_id: str | None = Field(default=None, description="Deduplication id (FIFO queues).")

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{message_id, sequence_number, queue_url}``."""
        aws = await aws_session(ctx, config.credential, self.credential_types)
        url = config.queue
        if not url.startswith(("https://", "http://")):
            url = (await aws.call("sqs", "GetQueueUrl", QueueName=config.queue))["QueueUrl"]
        sent = await aws.call(
            "sqs",
            "SendMessage",
            QueueUrl=url,
            MessageBody=_as_text(config.body),
            **_set(
                DelaySeconds=config.delay_seconds,
                MessageAttributes=_string_attributes(config.attributes),
                MessageGroupId=config.message_group_id,
                MessageDeduplicationId=config.deduplication_id,
            ),
        )
        return {"message_id": sent["MessageId"], "sequence_number": sent.get("SequenceNumber"), "queue_url": url}


class SnsPublish(_AwsNode):
    type = "aws.sns.publish"
    version = 1
    display_name = "Publish to SNS"
    description = "Publish a message to an SNS topic."
    icon = "bolt"
    example = {
        "credential": "aws",
        "topic_arn": "arn:aws:sns:us-east-1:123456789012:alerts",
        "message": "{{ trigger.message }}",
    }

    class Config(_AwsConfig):
        topic_arn: str = Field(min_length=1, description="Topic ARN.")
        message: Any = Field(description="Message: text as is, anything else as JSON.")
        subject: str | None = Field(default=None, max_length=100, description="Subject (e-mail subscriptions).")
        attributes: dict[str, str] = Field(default_factory=dict, description="String message attributes.")
        message_group_id: str | None = Field(default=None, description="Message group (FIFO topics).")

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{message_id}``."""
        aws = await aws_session(ctx, config.credential, self.credential_types)
        published = await aws.call(
            "sns",
            "Publish",
            TopicArn=config.topic_arn,
            Message=_as_text(config.message),
            **_set(
                Subject=config.subject,
                MessageAttributes=_string_attributes(config.attributes),
                MessageGroupId=config.message_group_id,
            ),
        )
        return {"message_id": published["MessageId"]}


class SnsSendSms(_AwsNode):
    type = "aws.sns.send_sms"
    version = 1
    display_name = "Send SMS (SNS)"
    description = "Send a text message straight to a phone number through Amazon SNS."
    icon = "phone"
    example = {"credential": "aws", "phone_number": "+15555550100", "message": "Your code is {{ steps.code.value }}"}

    class Config(_AwsConfig):
        phone_number: _PhoneNumber = Field(description="Recipient phone number in E.164 form, e.g. +14155550123.")
        message: str = Field(min_length=1, max_length=1600, description="Message text (at most 1600 characters).")
        sender_id: Annotated[str, AfterValidator(check_sender_id)] | None = Field(
            default=None, description="Alphanumeric sender id shown where the country supports it (1-11 characters)."
        )
        sms_type: Literal["Transactional", "Promotional"] | None = Field(
            default=None,
            description="Transactional (critical, best delivery) or Promotional (cheapest); unset: the account's.",
        )
        origination_number: _PhoneNumber | None = Field(
            default=None, description="Number to send from (E.164), one registered to the account."
        )
        max_price: float | None = Field(
            default=None, gt=0, description="Most to spend on this message, in USD; SNS does not send a dearer one."
        )

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{message_id, status, phone_number}``; ``status`` is ``sent`` (SNS accepted it)."""
        attributes = {
            "AWS.SNS.SMS.SenderID": config.sender_id,
            "AWS.SNS.SMS.SMSType": config.sms_type,
            "AWS.MM.SMS.OriginationNumber": config.origination_number,
            "AWS.SNS.SMS.MaxPrice": f"{config.max_price:.5f}" if config.max_price is not None else None,
        }
        aws = await aws_session(ctx, config.credential, self.credential_types)
        published = await aws.call(
            "sns",
            "Publish",
            PhoneNumber=config.phone_number,
            Message=config.message,
            **_set(MessageAttributes=_string_attributes({k: v for k, v in attributes.items() if v})),
        )
        return {"message_id": published["MessageId"], "status": "sent", "phone_number": config.phone_number}


class SesSendEmail(_AwsNode):
    type = "aws.ses.send_email"
    version = 1
    display_name = "Send e-mail (SES)"
    description = "Send an e-mail (text and/or HTML) through Amazon SES from a verified identity."
    icon = "mail"
    example = {
        "credential": "aws",
        "from": "ops@example.com",
        "to": ["{{ trigger.email }}"],
        "subject": "Welcome",
        "text": "Hello {{ trigger.name }}",
    }

    class Config(_AwsConfig):
        sender: _Address = Field(alias="from", description="Sender address: a verified SES identity (or its domain's).")
        from_name: str | None = Field(default=None, max_length=200, description="Sender name shown to recipients.")
        to: _Addresses = Field(min_length=1, description="Recipient addresses (one address or a list).")
        cc: _Addresses = Field(default_factory=list, description="Copy addresses.")
        bcc: _Addresses = Field(default_factory=list, description="Blind-copy addresses.")
        reply_to: _Addresses = Field(default_factory=list, description="Reply-To addresses.")
        subject: str = Field(min_length=1, max_length=998, description="Subject line.")
        text: str | None = Field(default=None, description="Plain-text body.")
        html: str | None = Field(default=None, description="HTML body.")
        configuration_set: str | None = Field(
            default=None, min_length=1, description="SES configuration set (event publishing, IP pool)."
        )
        tags: dict[str, str] = Field(default_factory=dict, description="Message tags for SES event publishing.")

        @model_validator(mode="after")
        def _complete(self) -> SesSendEmail.Config:
            if not self.text and not self.html:
                raise ValueError("set 'text' or 'html'")
            count = len(self.to) + len(self.cc) + len(self.bcc)
            if count > _MAX_SES_RECIPIENTS:
                raise ValueError(f"{count} recipients in to, cc and bcc; SES takes at most {_MAX_SES_RECIPIENTS}")
            return self

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{message_id, status, accepted}``; ``status`` is ``sent`` (SES accepted it)."""
        destination = {"ToAddresses": config.to, **_set(CcAddresses=config.cc, BccAddresses=config.bcc)}
        body = {
            key: {"Data": value, "Charset": "UTF-8"}
            for key, value in (("Text", config.text), ("Html", config.html))
            if value
        }
        source = formataddr((config.from_name, config.sender)) if config.from_name else config.sender
        aws = await aws_session(ctx, config.credential, self.credential_types)
        sent = await aws.call(
            "ses",
            "SendEmail",
            Source=source,
            Destination=destination,
            Message={"Subject": {"Data": config.subject, "Charset": "UTF-8"}, "Body": body},
            **_set(
                ReplyToAddresses=config.reply_to,
                ConfigurationSetName=config.configuration_set,
                Tags=[{"Name": k, "Value": v} for k, v in config.tags.items()],
            ),
        )
        return {
            "message_id": sent["MessageId"],
            "status": "sent",
            "accepted": [*config.to, *config.cc, *config.bcc],
        }


class TextractDetectText(_AwsNode):
    type = "aws.textract.detect_text"
    version = 1
    display_name = "Detect text (Textract)"
    description = "Read the text of a document image or single-page PDF, from S3 or an earlier step."
    icon = "search"
    example = {"credential": "aws", "bucket": "scans", "key": "{{ trigger.key }}"}

    class Config(_AwsConfig):
        bucket: str | None = Field(default=None, description="S3 bucket of the document.")
        key: str | None = Field(default=None, description="S3 key of the document.")
        document_base64: str | None = Field(
            default=None, description="The document itself, base64-encoded (e.g. from aws.s3.get_object)."
        )

        @model_validator(mode="after")
        def _one_source(self) -> TextractDetectText.Config:
            from_s3 = self.bucket is not None or self.key is not None
            if from_s3 == (self.document_base64 is not None):
                raise ValueError("set either 'bucket' and 'key' or 'document_base64'")
            if from_s3 and not (self.bucket and self.key):
                raise ValueError("a document in S3 needs both 'bucket' and 'key'")
            return self

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{text, lines, words, pages}``; ``text`` is the lines joined by newlines."""
        if config.document_base64 is not None:
            document: dict[str, Any] = {"Bytes": _decode_base64(config.document_base64, "document_base64")}
        else:
            document = {"S3Object": {"Bucket": config.bucket, "Name": config.key}}
        aws = await aws_session(ctx, config.credential, self.credential_types)
        found = await aws.call("textract", "DetectDocumentText", Document=document)
        blocks = found.get("Blocks", [])
        lines = [b.get("Text", "") for b in blocks if b.get("BlockType") == "LINE"]
        words = sum(1 for b in blocks if b.get("BlockType") == "WORD")
        pages = found.get("DocumentMetadata", {}).get("Pages")
        return {
            "text": "\n".join(lines),
            "lines": lines,
            "words": words,
            "pages": pages if isinstance(pages, int) else None,
        }
