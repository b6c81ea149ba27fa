"""The MCP client: list and call the tools of Model Context Protocol servers (the ``mcp`` SDK).

A server is reached either over streamable HTTP (its URL passes the outbound guard of
:mod:`flows.net` first: private ranges only when allowed; every request of the session then goes
to the address the guard checked, as :func:`flows.net.send` does; a credential adds its
headers) or as a local process over stdio, which only the operator declares
(``GORAX_MCP_STDIO_SERVERS``: name -> command, args, env); a workflow names a declared server,
never a command.

Each call opens a session, does its one thing and closes it: tool lists are fetched on demand
(the editor's "List tools", an agent run's start), never cached across runs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from flows.net import check_url
from flows.settings import get_settings


class McpError(RuntimeError):
    """An MCP server could not be reached, or refused what was asked."""


def server_label(url: str | None, stdio: str | None) -> str:
    """How errors name a server: its URL or ``stdio:<name>``."""
    return url if url else f"stdio:{stdio}"


@contextlib.asynccontextmanager
async def _session(
    *,
    url: str | None,
    stdio: str | None,
    headers: Mapping[str, str],
    allowed: Iterable[Any],
    timeout: float,
    runtime: Any = None,
) -> AsyncIterator[Any]:
    # The SDK (and its HTTP client) is imported by the runs and requests that use MCP only.
    import httpx2  # noqa: PLC0415
    from mcp.client.session import ClientSession  # noqa: PLC0415
    from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: PLC0415
    from mcp.client.streamable_http import streamable_http_client  # noqa: PLC0415

    if url:
        destination = await check_url(url, allowed=list(allowed))

        async def pin(request: Any) -> None:
            # Every request of the session goes to the address the guard checked (a name
            # resolved again could point elsewhere: DNS rebinding), and to the server's origin
            # only; Host and the TLS server name stay the URL's host.
            target = request.url
            if not destination.serves(target):
                raise McpError(f"MCP server {url} sent the client to another origin ({target.scheme}://{target.host})")
            destination.pin(request)

        http = httpx2.AsyncClient(
            headers=dict(headers),
            timeout=httpx2.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            event_hooks={"request": [pin]},
        )
        async with http, streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=timeout) as session:
                await session.initialize()
                yield session
        return
    if not stdio:
        raise McpError("an MCP server needs 'url' or 'stdio'")
    try:
        declared = (runtime or get_settings().runtime).mcp_stdio_server(stdio)
    except LookupError as exc:
        raise McpError(str(exc)) from None
    params = StdioServerParameters(command=declared["command"], args=declared["args"], env=declared["env"] or None)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=timeout) as session:
            await session.initialize()
            yield session


def _unwrap(exc: BaseException) -> BaseException:
    """The first real error inside the task groups the SDK raises through."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def list_tools(
    *,
    url: str | None = None,
    stdio: str | None = None,
    headers: Mapping[str, str] | None = None,
    allowed: Iterable[Any] = (),
    timeout: float = 30,
    runtime: Any = None,
) -> list[dict[str, Any]]:
    """The server's tools: ``[{name, description, input_schema}]`` (every page). ``runtime``: the
    settings section that declares stdio servers (default: this process's)."""
    try:
        async with _session(
            url=url, stdio=stdio, headers=headers or {}, allowed=allowed, timeout=timeout, runtime=runtime
        ) as session:
            tools: list[dict[str, Any]] = []
            result = await session.list_tools()
            while True:
                tools += [
                    {"name": t.name, "description": t.description or "", "input_schema": t.input_schema}
                    for t in result.tools
                ]
                cursor = getattr(result, "next_cursor", None)
                if not cursor:
                    return tools
                from mcp_types import PaginatedRequestParams  # noqa: PLC0415  (with the SDK, above)

                result = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
    except McpError:
        raise
    except BaseException as exc:
        inner = _unwrap(exc)
        if not isinstance(inner, Exception):
            raise
        raise McpError(f"listing the tools of MCP server {server_label(url, stdio)} failed: {inner}") from None


async def call_tool(
    name: str,
    arguments: Mapping[str, Any],
    *,
    url: str | None = None,
    stdio: str | None = None,
    headers: Mapping[str, str] | None = None,
    allowed: Iterable[Any] = (),
    timeout: float = 120,
) -> dict[str, Any]:
    """Call tool ``name``: ``{"is_error": bool, "content": <structured content, or the text>}``."""
    try:
        async with _session(url=url, stdio=stdio, headers=headers or {}, allowed=allowed, timeout=timeout) as session:
            result = await session.call_tool(name, dict(arguments))
    except McpError:
        raise
    except BaseException as exc:
        inner = _unwrap(exc)
        if not isinstance(inner, Exception):
            raise
        raise McpError(f"calling tool {name!r} of MCP server {server_label(url, stdio)} failed: {inner}") from None
    texts = [block.text for block in result.content if getattr(block, "type", None) == "text"]
    content: Any = result.structured_content
    if content is None:
        content = "\n".join(texts)
        with contextlib.suppress(ValueError):
            content = json.loads(content) if content else content
    return {"is_error": bool(result.is_error), "content": content}
