"""The local OAuth 2.0 / OpenID Connect provider the tests use (tests/idp.py) keeps its promises."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.idp import LocalIdP, basic_auth

REDIRECT = "http://127.0.0.1:9/cb"


@pytest.fixture
def idp() -> Iterator[LocalIdP]:
    provider = LocalIdP()
    provider.add_client("conf", "s3cret", redirect_uris=[REDIRECT])
    provider.add_client("pub", None, redirect_uris=[REDIRECT])
    provider.add_user("alice", email="alice@example.com", name="Alice", groups=["admins"])
    provider.start()
    yield provider
    provider.stop()


def _code_flow(idp: LocalIdP, client: OAuth2Client, *, form: bool = True, **params: str) -> tuple[dict, str]:
    meta = httpx.get(idp.url("/.well-known/openid-configuration")).json()
    verifier = generate_token(48)
    url, _ = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, **params)
    if form:
        page = httpx.get(url)
        assert page.status_code == 200 and 'value="allow"' in page.text
        redirect = httpx.post(url, data={"user": "alice", "decision": "allow"})
    else:
        idp.auto_approve = True
        redirect = httpx.get(url)
    assert redirect.status_code == 302, redirect.text
    token = client.fetch_token(
        meta["token_endpoint"], authorization_response=redirect.headers["location"], code_verifier=verifier
    )
    return token, redirect.headers["location"]


def test_code_flow_with_pkce_nonce_and_a_verifiable_id_token(idp: LocalIdP) -> None:
    client = OAuth2Client(
        "conf", "s3cret", scope="openid email profile", redirect_uri=REDIRECT, code_challenge_method="S256"
    )
    token, _ = _code_flow(idp, client, nonce="n-1")
    keys = KeySet.import_key_set(httpx.get(idp.url("/jwks")).json())
    claims = jwt.decode(token["id_token"], keys).claims
    assert claims["iss"] == idp.base_url and claims["aud"] == "conf" and claims["nonce"] == "n-1"
    assert claims["sub"] == "alice" and claims["email_verified"] is True and claims["groups"] == ["admins"]
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(idp.url("/userinfo"), headers=headers).json()["email"] == "alice@example.com"
    assert httpx.get(idp.url("/api/me"), headers=headers).json()["client_id"] == "conf"
    assert idp.token_requests == {"authorization_code": 1}


def test_a_replayed_code_is_refused_and_revokes_what_it_gave(idp: LocalIdP) -> None:
    client = OAuth2Client("conf", "s3cret", scope="openid", redirect_uri=REDIRECT, code_challenge_method="S256")
    token, location = _code_flow(idp, client, form=False)
    code = httpx.URL(location).params["code"]
    again = httpx.post(
        idp.url("/token"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers={"Authorization": basic_auth("conf", "s3cret")},
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert (
        httpx.get(idp.url("/api/me"), headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 401
    )


def test_refresh_rotates_revoke_and_expiry_stop_tokens(idp: LocalIdP) -> None:
    client = OAuth2Client(
        "pub",
        None,
        scope="openid",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    token, _ = _code_flow(idp, client, form=False)
    fresh = client.refresh_token(idp.url("/token"), refresh_token=token["refresh_token"])
    assert fresh["refresh_token"] != token["refresh_token"] and idp.token_requests["refresh_token"] == 1
    old = httpx.post(
        idp.url("/token"),
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": "pub"},
    )
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"
    idp.expire_access_tokens("pub")
    assert (
        httpx.get(idp.url("/api/me"), headers={"Authorization": f"Bearer {fresh['access_token']}"}).status_code == 401
    )
    assert idp.revoke_all_refresh_tokens("pub") == 1
    revoked = httpx.post(
        idp.url("/token"),
        data={"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"], "client_id": "pub"},
    )
    assert revoked.status_code == 400


def test_client_credentials_revocation_and_the_failure_switch(idp: LocalIdP) -> None:
    got = httpx.post(idp.url("/token"), data={"grant_type": "client_credentials"}, auth=("conf", "s3cret"))
    assert got.status_code == 200 and "refresh_token" not in got.json()
    access = got.json()["access_token"]
    assert (
        httpx.post(idp.url("/token"), data={"grant_type": "client_credentials"}, auth=("conf", "nope")).status_code
        == 401
    )
    assert httpx.post(idp.url("/revoke"), data={"token": access}, auth=("conf", "s3cret")).status_code == 200
    assert httpx.get(idp.url("/api/me"), headers={"Authorization": f"Bearer {access}"}).status_code == 401
    idp.fail_token_requests("invalid_grant", times=1)
    failed = httpx.post(idp.url("/token"), data={"grant_type": "client_credentials"}, auth=("conf", "s3cret"))
    assert failed.status_code == 400 and failed.json()["error"] == "invalid_grant"
    assert (
        httpx.post(idp.url("/token"), data={"grant_type": "client_credentials"}, auth=("conf", "s3cret")).status_code
        == 200
    )
    assert idp.token_requests["client_credentials"] == 4 and idp.tokens_issued["client_credentials"] == 2


def test_deny_and_unregistered_redirects(idp: LocalIdP) -> None:
    params = {"response_type": "code", "client_id": "conf", "redirect_uri": REDIRECT, "scope": "openid", "state": "s"}
    page = httpx.get(idp.url("/authorize"), params=params)
    denied = httpx.post(str(page.request.url), data={"decision": "deny"})
    assert denied.status_code == 302 and "error=access_denied" in denied.headers["location"]
    assert "state=s" in denied.headers["location"]
    evil = httpx.get(idp.url("/authorize"), params={**params, "redirect_uri": "http://127.0.0.1:9/evil"})
    assert evil.status_code == 400 and "location" not in evil.headers
