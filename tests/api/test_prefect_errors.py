"""Prefect's errors become clear 4xx/502/503 answers, never a 500 and never Prefect's whole body."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from api.errors import BadGateway, Conflict, NotFound, PayloadTooLarge, Unavailable, ValidationFailed
from api.handlers import install_error_handlers, prefect_error
from tests.peers import free_port

_ECHO = "ECHOED-PAYLOAD-" * 10_000  # what Prefect sends back of a refused request


def _refusal(status: int, body: object, **headers: str) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://prefect.test/api/flow_runs/")
    response = httpx.Response(status, request=request, headers=headers, content=json.dumps(body).encode())
    return httpx.HTTPStatusError(f"Client error '{status}'", request=request, response=response)


def _validation_body(echo: str) -> dict:
    return {
        "exception_message": "Invalid request received.",
        "exception_detail": [
            {
                "type": "value_error",
                "loc": ["body", "parameters"],
                "msg": "Flow run parameters must be less than 524,288 bytes",
                "input": {"trigger": echo},
            }
        ],
        "request_body": {"parameters": {"trigger": echo}},
    }


@pytest.mark.parametrize("echo", ["small", _ECHO], ids=["small", "large"])
def test_prefect_refusing_what_was_sent_is_a_422_with_its_reason_only(echo: str) -> None:
    error = prefect_error(_refusal(422, _validation_body(echo)))
    assert isinstance(error, ValidationFailed)
    assert "parameters must be less than 524,288 bytes" in error.message
    assert error.details["upstream_status"] == 422
    assert "ECHOED" not in json.dumps(error.details) + error.message


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, NotFound),
        (409, Conflict),
        (413, PayloadTooLarge),
        (400, ValidationFailed),
        (429, Unavailable),
        (401, BadGateway),
        (403, BadGateway),
        (500, BadGateway),
        (503, BadGateway),
    ],
)
def test_each_prefect_status_has_its_answer(status: int, kind: type) -> None:
    error = prefect_error(_refusal(status, {"detail": "said Prefect"}, **{"retry-after": "3"}))
    assert type(error) is kind
    assert error.status_code < 500 or error.status_code in (502, 503)
    if status == 429:
        assert error.headers == {"Retry-After": "3"}


async def test_prefect_out_of_reach_is_a_503() -> None:
    app = FastAPI()
    install_error_handlers(app)
    dead = f"http://127.0.0.1:{free_port()}/api/health"

    @app.get("/probe")
    async def probe() -> None:
        async with httpx.AsyncClient() as client:  # nothing listens there
            (await client.get(dead)).raise_for_status()

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gorax") as client:
        response = await client.get("/probe")
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "UNAVAILABLE"
    assert response.json()["error"]["details"] == {"error": "ConnectError"}
