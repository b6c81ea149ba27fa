"""A real OAuth 2.0 + OpenID Connect provider on 127.0.0.1 for tests, built on authlib's server grants.

``LocalIdP`` runs a threaded HTTP server on a free loopback port. It is self-contained (stdlib,
authlib and joserfc only) so other test modules can use it unchanged::

    idp = LocalIdP()
    idp.add_client("gorax", "s3cret", redirect_uris=["http://127.0.0.1:8000/cb"])
    idp.add_user("alice", email="alice@example.com", groups=["admins"])
    base_url = idp.start()          # "http://127.0.0.1:<port>", also the issuer
    ...
    idp.stop()                      # or use ``with LocalIdP() as idp:``

Features
--------
* Discovery: ``/.well-known/openid-configuration`` (and the same document at
  ``/.well-known/oauth-authorization-server``), issuer = base URL.
* Keys: ``/jwks`` with the RS256 public keys (``kid`` set); ``rotate_signing_key()`` adds a new key
  and signs with it from then on (old keys stay published).
* ``/authorize``: authorization code flow (response_type=code) with ``state``, PKCE
  (``code_challenge_method=S256``, required for public clients and when ``require_pkce=True``) and
  OpenID ``nonce`` (a nonce reused by the same client is rejected). Two modes:
    - interactive (default): an HTML page titled "Sign in to Local IdP" with one radio button per
      user (``name="user"``, value = sub) and the buttons "Allow" / "Deny" (``name="decision"``,
      values ``allow`` / ``deny``) posting back to the same URL; ``login_hint`` preselects a user.
      An HTTP client approves by POSTing ``{"user": sub, "decision": "allow"}`` to the same URL.
    - ``auto_approve=True``: ``GET /authorize`` redirects straight back with a code for the user
      named by ``login_hint`` (sub or e-mail), else ``auto_approve_user``, else the first user.
* ``/token`` grants: ``authorization_code`` (codes single-use, 10 minutes; a replayed code is
  refused with invalid_grant and revokes the tokens first issued for it), ``refresh_token`` (with
  rotation: each refresh returns a new refresh token and revokes the old one),
  ``client_credentials``. Client authentication: ``client_secret_basic``, ``client_secret_post``,
  or ``none`` for public clients (no secret). ID tokens (RS256) carry iss, aud, exp, iat,
  auth_time, nonce, at_hash, sub and the user's claims allowed by the scope (``email`` scope:
  email, email_verified; ``profile``: name; ``groups`` and extra claims: always).
* ``/userinfo`` (GET or POST, bearer token with ``openid`` scope).
* ``/revoke`` (RFC 7009, access or refresh token; client authenticated like at ``/token``).
* ``/api/me``: a protected resource; answers 200 with ``sub``, ``email``, ``name``, ``client_id``,
  ``scope`` for a valid bearer access token and 401 (``WWW-Authenticate: Bearer``) when the token is
  missing, unknown, expired or revoked.
* Configuration: clients (``add_client``: id, secret, redirect URIs, scopes, grant types), users
  (``add_user``: sub, email, email_verified, name, groups, arbitrary claims),
  ``access_token_lifetime`` seconds (settable at any time, e.g. 1 for refresh tests).
* Test controls:
    - ``token_requests`` / ``tokens_issued``: ``collections.Counter`` by grant type (every request
      that reached ``/token`` / every token actually issued); ``authorize_requests``,
      ``userinfo_requests``, ``resource_requests``, ``revocations`` counters; ``reset_counters()``.
    - ``fail_token_requests(error="invalid_grant", status=None, grant_types=None, times=None)``:
      answer ``/token`` with that OAuth error (``invalid_client`` -> 401, others 400 unless
      ``status`` is given); ``clear_failures()`` ends it. ``fail_resource_requests(status=401)``
      does the same for ``/api/me``.
    - ``revoke_all_refresh_tokens(client_id)``, ``revoke_all_access_tokens(client_id)``,
      ``expire_access_tokens(client_id=None)`` (tokens already handed out stop working).
    - ``id_token_overrides``: a dict of claims merged last into every ID token (e.g. a wrong
      ``nonce``, ``iss`` or ``aud``); ``sign_id_tokens_with_unknown_key = True`` signs ID tokens with
      a key not in the JWKS (same ``kid``).
    - ``requests``: a list of ``(method, path_with_query)`` for everything received (to assert that
      no secret travelled in a URL), ``token_request_forms``: the form fields of each ``/token``
      request (secrets included, for assertions on what the client sent).
* ``basic_auth(client_id, secret)`` builds a client_secret_basic ``Authorization`` header value.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request, ResourceProtector, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import KeySet, RSAKey

CODE_LIFETIME = 600
ALL_GRANTS = ("authorization_code", "refresh_token", "client_credentials")


# --------------------------------------------------------------------------------------- models


@dataclass
class IdPUser:
    sub: str
    email: str | None = None
    email_verified: bool = True
    name: str | None = None
    groups: list[str] = field(default_factory=list)
    claims: dict[str, Any] = field(default_factory=dict)


@dataclass
class IdPClient:
    client_id: str
    client_secret: str | None = field(repr=False)
    redirect_uris: list[str]
    scopes: list[str]
    grant_types: list[str]

    # authlib ClientMixin
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return " ".join(self.scopes)
        return " ".join(s for s in scope.split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client_secret is None:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    sub: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    created_at: float
    used: bool = False
    token_ids: list[int] = field(default_factory=list)

    # authlib AuthorizationCodeMixin (OIDC flavour)
    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class IssuedToken:
    id: int
    client: IdPClient
    sub: str | None
    scope: str
    access_token: str
    refresh_token: str | None
    issued_at: float
    expires_in: int
    grant_type: str
    access_revoked: bool = False
    refresh_revoked: bool = False

    # authlib TokenMixin
    def check_client(self, client: IdPClient) -> bool:
        return client.client_id == self.client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.access_revoked

    def get_user(self) -> str | None:
        return self.sub

    def get_client(self) -> IdPClient:
        return self.client


# ------------------------------------------------------------------------------ request adapter


class _Payload(OAuth2Payload):
    def __init__(self, values: dict[str, list[str]]) -> None:
        self._datalist = values
        self._data = {k: v[0] for k, v in values.items() if v}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:  # type: ignore[override]
        return self._datalist


class _Request(OAuth2Request):
    """An OAuth2Request over one HTTP request: ``args`` = query, ``form`` = urlencoded body."""

    def __init__(self, method: str, uri: str, headers: Any, query: dict, form: dict, payload: dict) -> None:
        super().__init__(method, uri, headers=headers)
        self._args = {k: v[0] for k, v in query.items() if v}
        self._form = {k: v[0] for k, v in form.items() if v}
        self.payload = _Payload(payload)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass
class _Http:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: Any
    uri: str

    def oauth(self, *, with_form: bool = True) -> _Request:
        payload = {k: list(v) for k, v in self.query.items()}
        if with_form:
            for k, v in self.form.items():
                payload.setdefault(k, []).extend(v)
        return _Request(self.method, self.uri, self.headers, self.query, self.form if with_form else {}, payload)


Response = tuple[int, Any, list[tuple[str, str]]]


# ------------------------------------------------------------------------------------- the IdP


class LocalIdP:
    """An OAuth 2.0 / OpenID Connect provider on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        auto_approve: bool = False,
        auto_approve_user: str | None = None,
        access_token_lifetime: int = 3600,
        require_pkce: bool = False,
        title: str = "Local IdP",
    ) -> None:
        self.auto_approve = auto_approve
        self.auto_approve_user = auto_approve_user
        self.access_token_lifetime = access_token_lifetime
        self.require_pkce = require_pkce
        self.title = title
        self.clients: dict[str, IdPClient] = {}
        self.users: dict[str, IdPUser] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: list[IssuedToken] = []
        self.used_nonces: set[tuple[str, str]] = set()
        self.id_token_overrides: dict[str, Any] = {}
        self.sign_id_tokens_with_unknown_key = False
        self.requests: list[tuple[str, str]] = []
        self.token_request_forms: list[dict[str, str]] = []
        self.token_requests: Counter[str] = Counter()
        self.tokens_issued: Counter[str] = Counter()
        self.authorize_requests = 0
        self.userinfo_requests = 0
        self.resource_requests = 0
        self.revocations = 0
        self._token_failure: dict[str, Any] | None = None
        self._resource_failure: int | None = None
        self._lock = threading.RLock()
        self._keys: list[RSAKey] = []
        self._unknown_key: RSAKey | None = None
        self.rotate_signing_key()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self._authz = self._build_authorization_server()
        self._protector = ResourceProtector()
        self._protector.register_token_validator(_make_validator(self))

    # -- configuration -------------------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        *,
        redirect_uris: list[str] | None = None,
        scopes: list[str] | str = "openid profile email offline_access groups",
        grant_types: list[str] | tuple[str, ...] = ALL_GRANTS,
    ) -> IdPClient:
        """Register a client; ``client_secret=None`` makes it public (PKCE, auth method ``none``)."""
        scope_list = scopes.split() if isinstance(scopes, str) else list(scopes)
        client = IdPClient(client_id, client_secret, list(redirect_uris or []), scope_list, list(grant_types))
        with self._lock:
            self.clients[client_id] = client
        return client

    def add_user(
        self,
        sub: str,
        *,
        email: str | None = None,
        email_verified: bool = True,
        name: str | None = None,
        groups: list[str] | None = None,
        **claims: Any,
    ) -> IdPUser:
        """Register a user; extra keyword arguments become extra ID token / userinfo claims."""
        user = IdPUser(sub, email, email_verified, name, list(groups or []), dict(claims))
        with self._lock:
            self.users[sub] = user
        return user

    def rotate_signing_key(self) -> RSAKey:
        """Sign from now on with a new RS256 key; earlier keys stay in the JWKS."""
        key = RSAKey.generate_key(2048, parameters={"kid": f"k{len(self._keys) + 1}-{secrets.token_hex(4)}"})
        with self._lock:
            self._keys.append(key)
        return key

    @property
    def signing_key(self) -> RSAKey:
        return self._keys[-1]

    @property
    def issuer(self) -> str:
        return self.base_url

    def jwks(self) -> dict[str, Any]:
        return dict(KeySet(list(self._keys)).as_dict(private=False))

    # -- test controls -------------------------------------------------------------------------

    def fail_token_requests(
        self,
        error: str = "invalid_grant",
        status: int | None = None,
        grant_types: list[str] | None = None,
        times: int | None = None,
    ) -> None:
        """Answer ``/token`` with ``error`` (``times`` requests, or until ``clear_failures()``)."""
        with self._lock:
            self._token_failure = {
                "error": error,
                "status": status or (401 if error == "invalid_client" else 400),
                "grant_types": set(grant_types) if grant_types else None,
                "times": times,
            }

    def fail_resource_requests(self, status: int | None = 401) -> None:
        """Answer ``/api/me`` with ``status`` until ``clear_failures()``."""
        with self._lock:
            self._resource_failure = status

    def clear_failures(self) -> None:
        with self._lock:
            self._token_failure = None
            self._resource_failure = None

    def reset_counters(self) -> None:
        with self._lock:
            self.token_requests.clear()
            self.tokens_issued.clear()
            self.authorize_requests = self.userinfo_requests = self.resource_requests = self.revocations = 0
            self.requests.clear()
            self.token_request_forms.clear()

    def revoke_all_refresh_tokens(self, client_id: str) -> int:
        """Revoke every refresh token of ``client_id``; returns how many were live."""
        with self._lock:
            live = [
                t for t in self.tokens if t.client.client_id == client_id and t.refresh_token and not t.refresh_revoked
            ]
            for token in live:
                token.refresh_revoked = True
            return len(live)

    def revoke_all_access_tokens(self, client_id: str) -> int:
        with self._lock:
            live = [t for t in self.tokens if t.client.client_id == client_id and not t.access_revoked]
            for token in live:
                token.access_revoked = True
            return len(live)

    def expire_access_tokens(self, client_id: str | None = None) -> None:
        """Make the access tokens already issued (to ``client_id``, or all) expired."""
        with self._lock:
            for token in self.tokens:
                if client_id is None or token.client.client_id == client_id:
                    token.expires_in = min(token.expires_in, int(time.time() - token.issued_at) - 1)

    def live_refresh_tokens(self, client_id: str) -> list[str]:
        with self._lock:
            return [
                t.refresh_token
                for t in self.tokens
                if t.client.client_id == client_id and t.refresh_token and not t.refresh_revoked
            ]

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> str:
        """Listen on a free 127.0.0.1 port; returns the base URL (also the issuer)."""
        idp = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload, headers = idp._dispatch(self.command, self.path, self.headers, body)
                if isinstance(payload, (dict, list)):
                    data = json.dumps(payload).encode()
                elif isinstance(payload, bytes):
                    data = payload
                else:
                    data = str(payload or "").encode()
                self.send_response(status)
                names = {k.lower() for k, _ in headers}
                for key, value in headers:
                    self.send_header(key, value)
                if "content-type" not in names:
                    self.send_header(
                        "Content-Type", "application/json" if isinstance(payload, (dict, list)) else "text/plain"
                    )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-idp", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalIdP:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def url(self, path: str) -> str:
        return self.base_url + path

    # -- HTTP ----------------------------------------------------------------------------------

    def _dispatch(self, method: str, raw_path: str, headers: Any, body: bytes) -> Response:
        parts = urlsplit(raw_path)
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        form = (
            parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            if ctype == "application/x-www-form-urlencoded"
            else {}
        )
        http = _Http(
            method, parts.path, parse_qs(parts.query, keep_blank_values=True), form, headers, self.base_url + raw_path
        )
        routes = {
            "/.well-known/openid-configuration": self._discovery,
            "/.well-known/oauth-authorization-server": self._discovery,
            "/jwks": self._jwks,
            "/authorize": self._authorize,
            "/token": self._token,
            "/userinfo": self._userinfo,
            "/revoke": self._revoke,
            "/api/me": self._api_me,
        }
        with self._lock:
            self.requests.append((method, raw_path))
            handler = routes.get(parts.path)
            if handler is None:
                return 404, {"error": "not_found", "path": parts.path}, []
            try:
                return handler(http)
            except OAuth2Error as error:
                return self._authz.handle_error_response(None, error)

    def _discovery(self, http: _Http) -> Response:
        base = self.base_url
        return (
            200,
            {
                "issuer": base,
                "authorization_endpoint": base + "/authorize",
                "token_endpoint": base + "/token",
                "userinfo_endpoint": base + "/userinfo",
                "jwks_uri": base + "/jwks",
                "revocation_endpoint": base + "/revoke",
                "scopes_supported": ["openid", "profile", "email", "offline_access", "groups"],
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": list(ALL_GRANTS),
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "auth_time",
                    "nonce",
                    "email",
                    "email_verified",
                    "name",
                    "groups",
                ],
            },
            [],
        )

    def _jwks(self, http: _Http) -> Response:
        return 200, self.jwks(), []

    def _authorize(self, http: _Http) -> Response:
        self.authorize_requests += 1
        request = http.oauth(with_form=False)  # the authorization parameters travel in the query
        try:
            grant = self._authz.get_consent_grant(request)
        except OAuth2Error as error:
            return self._authz.handle_error_response(request, error)
        if self.require_pkce and not request.payload.data.get("code_challenge"):
            return self._redirect_error(
                grant, request, "invalid_request", "Missing 'code_challenge' (PKCE is required)."
            )
        if http.method == "POST":
            decision = (http.form.get("decision") or [""])[0]
            sub = (http.form.get("user") or [""])[0]
            user = self.users.get(sub) if decision == "allow" else None
            if decision == "allow" and user is None:
                return (
                    400,
                    self._page(request, f"Choose a user (unknown user {sub!r})."),
                    [("Content-Type", "text/html; charset=utf-8")],
                )
            return self._authz.create_authorization_response(request, grant_user=user, grant=grant)
        if self.auto_approve:
            return self._authz.create_authorization_response(request, grant_user=self._pick_user(request), grant=grant)
        return 200, self._page(request), [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]

    def _redirect_error(self, grant: Any, request: _Request, error: str, description: str) -> Response:
        params = [("error", error), ("error_description", description)]
        if request.payload.state:
            params.append(("state", request.payload.state))
        redirect_uri = request.payload.redirect_uri or grant.client.get_default_redirect_uri()
        sep = "&" if "?" in redirect_uri else "?"
        return 302, "", [("Location", redirect_uri + sep + urlencode(params))]

    def _pick_user(self, request: _Request) -> IdPUser | None:
        hint = request.payload.data.get("login_hint") or self.auto_approve_user
        if hint:
            for user in self.users.values():
                if hint in (user.sub, user.email):
                    return user
        return next(iter(self.users.values()), None)

    def _page(self, request: _Request, message: str = "") -> str:
        client = self.clients.get(request.payload.client_id or "")
        chosen = self._pick_user(request)
        rows = "".join(
            f'<label><input type="radio" name="user" value="{html.escape(u.sub)}"'
            f"{' checked' if chosen and u.sub == chosen.sub else ''}> "
            f"{html.escape(u.name or u.sub)} &lt;{html.escape(u.email or '')}&gt;</label><br>"
            for u in self.users.values()
        )
        action = html.escape("/authorize?" + urlencode(request.args))
        note = f'<p role="alert">{html.escape(message)}</p>' if message else ""
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>Sign in to {html.escape(self.title)}</title></head><body>"
            f"<h1>Sign in to {html.escape(self.title)}</h1>{note}"
            f"<p>{html.escape(client.client_id if client else '?')} asks for: "
            f"{html.escape(request.payload.scope or '')}</p>"
            f'<form method="post" action="{action}">{rows}'
            '<button type="submit" name="decision" value="allow">Allow</button> '
            '<button type="submit" name="decision" value="deny">Deny</button>'
            "</form></body></html>"
        )

    def _token(self, http: _Http) -> Response:
        request = http.oauth()
        grant_type = request.form.get("grant_type") or ""
        self.token_requests[grant_type] += 1
        self.token_request_forms.append(dict(request.form))
        failure = self._token_failure
        if failure and (failure["grant_types"] is None or grant_type in failure["grant_types"]):
            if failure["times"] is not None:
                failure["times"] -= 1
                if failure["times"] <= 0:
                    self._token_failure = None
            headers = [("Cache-Control", "no-store")]
            if failure["status"] == 401:
                headers.append(("WWW-Authenticate", 'Basic realm="token"'))
            return (
                failure["status"],
                {"error": failure["error"], "error_description": "Refused by test switch."},
                headers,
            )
        return self._authz.create_token_response(request)

    def _bearer(self, http: _Http, scopes: list[str] | None) -> IssuedToken | Response:
        try:
            return self._protector.validate_request(scopes, http.oauth())
        except OAuth2Error as error:
            status, body, headers = error()
            if status == 400:  # a missing Authorization header is a 401 for a resource server
                status = 401
            headers = list(headers) + [("WWW-Authenticate", f'Bearer error="{error.error}"')]
            return status, body, headers

    def _userinfo(self, http: _Http) -> Response:
        self.userinfo_requests += 1
        token = self._bearer(http, ["openid"])
        if not isinstance(token, IssuedToken):
            return token
        user = self.users.get(token.sub or "")
        if user is None:
            return 401, {"error": "invalid_token", "error_description": "No user behind this token."}, []
        return 200, dict(self.user_claims(user, token.scope)), [("Cache-Control", "no-store")]

    def _api_me(self, http: _Http) -> Response:
        self.resource_requests += 1
        if self._resource_failure:
            return (
                self._resource_failure,
                {"error": "invalid_token", "error_description": "Refused by test switch."},
                [("WWW-Authenticate", 'Bearer error="invalid_token"')],
            )
        token = self._bearer(http, None)
        if not isinstance(token, IssuedToken):
            return token
        user = self.users.get(token.sub or "")
        return (
            200,
            {
                "sub": token.sub,
                "email": user.email if user else None,
                "name": user.name if user else None,
                "client_id": token.client.client_id,
                "scope": token.scope,
            },
            [],
        )

    def _revoke(self, http: _Http) -> Response:
        self.revocations += 1
        return self._authz.create_endpoint_response("revocation", http.oauth())

    # -- authlib wiring ------------------------------------------------------------------------

    def user_claims(self, user: IdPUser, scope: str) -> UserInfo:
        scopes = set((scope or "").split())
        claims: dict[str, Any] = {"sub": user.sub}
        if "email" in scopes:
            if user.email is not None:
                claims["email"] = user.email
            claims["email_verified"] = user.email_verified
        if "profile" in scopes and user.name is not None:
            claims["name"] = user.name
        if user.groups:
            claims["groups"] = list(user.groups)
        claims.update(user.claims)
        return UserInfo(claims)

    def _new_token(
        self, client: IdPClient, grant_type: str, user: Any, scope: str, token: dict[str, Any]
    ) -> IssuedToken:
        record = IssuedToken(
            id=len(self.tokens) + 1,
            client=client,
            sub=user.sub if isinstance(user, IdPUser) else None,
            scope=token.get("scope", scope or ""),
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            issued_at=time.time(),
            expires_in=int(token.get("expires_in") or self.access_token_lifetime),
            grant_type=grant_type,
        )
        self.tokens.append(record)
        self.tokens_issued[grant_type] += 1
        return record

    def _build_authorization_server(self) -> AuthorizationServer:
        idp = self

        class _Server(AuthorizationServer):
            def query_client(self, client_id: str) -> IdPClient | None:
                return idp.clients.get(client_id)

            def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
                grant_type = request.form.get("grant_type") or ""
                record = idp._new_token(request.client, grant_type, request.user, request.scope or "", token)
                code = request.authorization_code
                if code is not None:
                    code.token_ids.append(record.id)

            def create_oauth2_request(self, request: Any) -> OAuth2Request:
                return request

            def create_json_request(self, request: Any) -> Any:
                return request

            def handle_response(self, status: int, body: Any, headers: Any) -> Response:
                return status, body, list(headers or [])

            def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
                pass

        server = _Server()
        server.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **_: secrets.token_urlsafe(32),
                refresh_token_generator=lambda **_: secrets.token_urlsafe(40),
                expires_generator=lambda client, grant_type: idp.access_token_lifetime,
            ),
        )

        class _AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

            def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
                data = request.payload.data
                idp.codes[code] = AuthorizationCode(
                    code=code,
                    client_id=request.client.client_id,
                    redirect_uri=request.payload.redirect_uri,
                    scope=request.scope or "",
                    sub=request.user.sub,
                    nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                    auth_time=int(time.time()),
                    created_at=time.time(),
                )
                if data.get("nonce"):
                    idp.used_nonces.add((request.client.client_id, data["nonce"]))

            def query_authorization_code(self, code: str, client: IdPClient) -> AuthorizationCode | None:
                item = idp.codes.get(code)
                if item is None or item.client_id != client.client_id:
                    return None
                if item.used:  # replay: refuse and revoke what the code first produced
                    for token in idp.tokens:
                        if token.id in item.token_ids:
                            token.access_revoked = token.refresh_revoked = True
                    return None
                if time.time() - item.created_at > CODE_LIFETIME:
                    return None
                return item

            def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
                authorization_code.used = True

            def authenticate_user(self, authorization_code: AuthorizationCode) -> IdPUser | None:
                return idp.users.get(authorization_code.sub)

        class _RefreshTokenGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
            INCLUDE_NEW_REFRESH_TOKEN = True  # rotation

            def authenticate_refresh_token(self, refresh_token: str) -> IssuedToken | None:
                for token in idp.tokens:
                    if token.refresh_token == refresh_token and not token.refresh_revoked:
                        return token
                return None

            def authenticate_user(self, refresh_token: IssuedToken) -> IdPUser | None:
                return idp.users.get(refresh_token.sub or "")

            def revoke_old_credential(self, refresh_token: IssuedToken) -> None:
                refresh_token.refresh_revoked = True

        class _ClientCredentialsGrant(grants.ClientCredentialsGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        class _OpenIDCode(OpenIDCode):
            def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
                return (request.payload.client_id, nonce) in idp.used_nonces

            def resolve_client_private_key(self, client: IdPClient) -> RSAKey:
                if idp.sign_id_tokens_with_unknown_key:
                    if idp._unknown_key is None:
                        idp._unknown_key = RSAKey.generate_key(2048)
                    return idp._unknown_key
                return idp.signing_key

            def get_client_algorithm(self, client: IdPClient) -> str:
                return "RS256"

            def get_encode_header(self, client: IdPClient) -> dict[str, str]:
                return {"alg": "RS256", "kid": idp.signing_key.kid or "", "typ": "JWT"}

            def get_client_claims(self, client: IdPClient) -> dict[str, Any]:
                return {"iss": idp.issuer, "aud": client.client_id}

            def generate_user_info(self, user: IdPUser, scope: str) -> dict[str, Any]:
                claims = dict(idp.user_claims(user, scope))
                claims.update(idp.id_token_overrides)
                return claims

        class _Revocation(RevocationEndpoint):
            CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

            def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
                for token in idp.tokens:
                    if token_type_hint != "refresh_token" and token.access_token == token_string:
                        return token
                    if token_type_hint != "access_token" and token.refresh_token == token_string:
                        return token
                return None

            def revoke_token(self, token: IssuedToken, request: OAuth2Request) -> None:
                value = request.form.get("token")
                if value == token.refresh_token:
                    token.refresh_revoked = True  # the access tokens of that grant go with it
                token.access_revoked = True

        server.register_grant(_AuthorizationCodeGrant, [_PKCE(idp), _OpenIDCode(require_nonce=False)])
        server.register_grant(_RefreshTokenGrant)
        server.register_grant(_ClientCredentialsGrant)
        server.register_endpoint(_Revocation)
        return server


class _PKCE(CodeChallenge):
    """S256 only (``plain`` is refused); required for public clients or when the IdP asks for it."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def __init__(self, idp: LocalIdP) -> None:
        super().__init__(required=True)
        self.idp = idp


def _make_validator(idp: LocalIdP) -> BearerTokenValidator:
    class _Validator(BearerTokenValidator):
        def authenticate_token(self, token_string: str) -> IssuedToken | None:
            for token in idp.tokens:
                if token.access_token == token_string:
                    return token
            return None

    return _Validator()


def basic_auth(client_id: str, client_secret: str) -> str:
    """The ``Authorization`` header value for client_secret_basic."""
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
