"""A local MCP server (the ``mcp`` SDK's own) for the agent tests: an order desk.

``python -m tests.flows.integrations.mcp_server stdio`` serves it over stdio;
``python -m tests.flows.integrations.mcp_server http PORT [TOKEN]`` over streamable HTTP on
127.0.0.1, refusing requests without ``Authorization: Bearer TOKEN`` when a token is given.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

#: A name the HTTP server answers to besides 127.0.0.1 and localhost (tests resolve it themselves).
REBIND_HOST = "desk.rebind.test"

server = MCPServer("order-desk", log_level="WARNING")
ORDERS = {"A-17": {"id": "A-17", "status": "delivered", "total": 42.5}}


@server.tool()
def order_status(order_id: str) -> dict[str, Any]:
    """The status of an order."""
    if order_id not in ORDERS:
        raise ToolError(f"no order {order_id}")
    return ORDERS[order_id]


@server.tool()
def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper()


def _http(port: int, token: str | None) -> None:
    import uvicorn
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import JSONResponse

    # The SDK's DNS rebinding protection, with the name the client's pinning test resolves.
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=["127.0.0.1:*", "localhost:*", f"{REBIND_HOST}:*"]
    )
    app = server.streamable_http_app(transport_security=security)
    if token:

        async def check(request: Any, call_next: Any) -> Any:
            if request.headers.get("authorization") != f"Bearer {token}":
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            return await call_next(request)

        app.add_middleware(BaseHTTPMiddleware, dispatch=check)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


@contextlib.contextmanager
def serve_http(token: str) -> Iterator[str]:
    """This server over streamable HTTP in a process of its own; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.flows.integrations.mcp_server", "http", str(port), token],
        cwd=Path(__file__).parents[3],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        _http(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
