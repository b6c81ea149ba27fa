"""Calling AWS with prefect-aws's ``AwsCredentials``: boto3 clients, run off the event loop.

The endpoint is the credential's ``aws_client_parameters.endpoint_url`` when set (LocalStack,
moto, VPC endpoints, other regions' FIPS endpoints), else AWS's. boto3 is synchronous, so each
call runs in a worker thread; errors become :class:`IntegrationError` with AWS's error code and
message and the credential's secrets masked.
"""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import ClientError

from flows.errors import IntegrationError
from flows.integrations import credentials as creds
from flows.integrations.guard import guarded
from translator.nodetypes import NodeContext

_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ProvisionedThroughputExceededException",
}


class AwsSession:
    """Clients of one AWS credential, for one node run."""

    def __init__(self, block: Any, tenant: str | None) -> None:
        self.block = block
        self.tenant = tenant
        self.secrets = [
            creds.field(block, "aws_secret_access_key"),
            creds.field(block, "aws_session_token"),
        ]
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """A boto3 client; prefect-aws caches them per credential (building one is slow)."""
        if service not in self._clients:
            if hasattr(self.block, "get_client"):
                self._clients[service] = self.block.get_client(service)
            else:
                params = getattr(self.block, "aws_client_parameters", None)
                overrides = params.get_params_override() if params is not None else {}
                self._clients[service] = self.block.get_boto3_session().client(service, **overrides)
        return self._clients[service]

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """``client(service).<operation>(**kwargs)`` in a thread, guarded and with clear errors."""
        integration = f"aws-{service}"
        async with guarded(integration, operation, tenant=self.tenant, secrets=self.secrets):

            def invoke() -> dict[str, Any]:  # off the event loop, client creation included
                return getattr(self.client(service), _snake(operation))(**kwargs)

            try:
                return await asyncio.to_thread(invoke)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                code = error.get("Code", "Error")
                raise IntegrationError(
                    integration,
                    operation,
                    code,
                    status=status,
                    provider_message=error.get("Message") or code,
                    retryable=(status or 0) >= 500 or code in _THROTTLING,
                ) from None


def _snake(operation: str) -> str:
    """``GetObject`` -> ``get_object`` (boto3's method names)."""
    out = []
    for index, char in enumerate(operation):
        if char.isupper() and index and not operation[index - 1].isupper():
            out.append("_")
        out.append(char.lower())
    return "".join(out)


async def aws_session(ctx: NodeContext, credential: str, accepted: tuple[str, ...]) -> AwsSession:
    """An :class:`AwsSession` over the node's credential."""
    block = await creds.load(ctx, credential, "aws", accepted)
    return AwsSession(block, ctx.tenant_id)
