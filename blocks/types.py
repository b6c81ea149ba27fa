"""The credential types: Gorax's Block classes, and the Prefect collections' Blocks Gorax offers.

A credential type is defined here and nowhere else. Gorax's own are :class:`GoraxCredential`
subclasses: the fields are the form the Prefect UI and the editor render, the slug is
``_block_type_slug``, and this module is a ``prefect.collections`` entry point, so Prefect finds
the classes by slug (``Block.get_block_class_from_key``). Node types name the class
(``credential_types = (HttpAuth.get_block_type_slug(),)``). A Prefect collection's Block that
Gorax offers as it is (prefect-aws, prefect-slack) is a :class:`CollectionCredential` in
:data:`COLLECTION_CREDENTIALS`.

Secret fields are ``SecretStr``. In a stored block document they hold *sealed* values (see
``blocks.envelope``); :func:`blocks.loader.load_credential` hands nodes an unsealed copy.
Prefect's ``Block.load`` returns the stored, sealed block: its methods refuse to use a sealed
value rather than send the sealed text where the secret belongs.
"""

from __future__ import annotations

import base64
from abc import ABC
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator
from pydantic.json_schema import SkipJsonSchema

from blocks.envelope import is_sealed
from blocks.errors import SealedValueError

_DOCS = "https://docs.gorax.io/credentials/"


class GoraxCredential(Block, ABC):
    """Base of Gorax credential blocks (not registered itself)."""

    _documentation_url: ClassVar[str] = _DOCS  # type: ignore[assignment]
    #: Non-``SecretStr`` fields that are nonetheless secret (sealed and masked).
    secret_extra_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _example(cls) -> str:
        variable = cls.get_block_type_slug().replace("-", "_")
        return (
            f"A stored {cls._block_type_name} keeps its secrets sealed in Prefect: `load` returns them "
            f"sealed, and using one raises an error. A Gorax run opens them for the credential's tenant "
            f"(templates `credentials.<name>.<field>`, or in Python on a Gorax worker):\n```python\n"
            f"from blocks.loader import load_credential\n"
            f"from blocks.types import {cls.__name__}\n\n"
            f'{variable} = {cls.__name__}.load("BLOCK_NAME")  # secrets sealed\n'
            f'{variable} = await load_credential("NAME", tenant_id="TENANT_ID")  # secrets opened\n```'
        )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._documentation_url = f"{_DOCS}{cls.get_block_type_slug()}"  # type: ignore[assignment]
        cls._code_example = cls._example()


def _secret(value: SecretStr | None) -> str | None:
    """A secret field's value to use; a sealed one (the block as Prefect stores it) is refused."""
    if value is None:
        return None
    text = value.get_secret_value()
    if is_sealed(text):
        raise SealedValueError(
            "this credential's secrets are sealed (Block.load returns them as stored): load it with "
            "blocks.loader.load_credential(name, tenant_id=...) on a Gorax worker, which opens them"
        )
    return text


def _plain_text(value: object) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class HttpAuth(GoraxCredential):
    """Authentication for HTTP requests: a bearer token, basic auth, or an API key in a header or query parameter."""

    _block_type_name = "Gorax HTTP Auth"
    _block_type_slug = "http-auth"

    scheme: Literal["bearer", "basic", "api_key"] = Field(
        default="bearer", description="How the credential is sent: bearer token, basic auth or API key."
    )
    token: SecretStr | None = Field(default=None, description="Bearer token (scheme bearer).")
    username: str | None = Field(default=None, description="User name (scheme basic).")
    password: SecretStr | None = Field(default=None, description="Password (scheme basic).")
    api_key: SecretStr | None = Field(default=None, description="API key value (scheme api_key).")
    api_key_name: str = Field(default="X-API-Key", description="Header or query parameter that carries the API key.")
    api_key_in: Literal["header", "query"] = Field(
        default="header", description="Where the API key goes: a header or a query parameter."
    )

    @model_validator(mode="after")
    def _scheme_fields(self) -> HttpAuth:
        needed = {"bearer": ("token",), "basic": ("username", "password"), "api_key": ("api_key",)}
        missing = [name for name in needed[self.scheme] if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"scheme {self.scheme!r} needs {', '.join(missing)}")
        return self

    def headers(self) -> dict[str, str]:
        """Headers to add to a request."""
        if self.scheme == "bearer":
            return {"Authorization": f"Bearer {_secret(self.token)}"}
        if self.scheme == "basic":
            pair = f"{self.username}:{_secret(self.password)}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        if self.api_key_in == "header":
            return {self.api_key_name: _secret(self.api_key) or ""}
        return {}

    def query_params(self) -> dict[str, str]:
        """Query parameters to add to a request."""
        if self.scheme == "api_key" and self.api_key_in == "query":
            return {self.api_key_name: _secret(self.api_key) or ""}
        return {}

    def apply_http_auth(self, headers: dict[str, str], query: dict[str, object]) -> None:
        """Add this credential to a request's headers and query (the ``http.request`` hook)."""
        headers.update(self.headers())
        query.update(self.query_params())


class SmtpServer(GoraxCredential):
    """An SMTP server to send e-mail through."""

    _block_type_name = "Gorax SMTP Server"
    _block_type_slug = "smtp-server"

    host: str = Field(description="SMTP server host name.")
    port: int = Field(default=587, ge=1, le=65535, description="SMTP server port.")
    security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="Transport security: STARTTLS, implicit TLS (ssl) or none."
    )
    username: str | None = Field(default=None, description="Login user name, if the server needs one.")
    password: SecretStr | None = Field(default=None, description="Login password.")
    from_address: str = Field(description="Sender address of e-mails sent with this server.")


class WebhookSecret(GoraxCredential):
    """The shared secrets that sign incoming webhook deliveries (HMAC)."""

    _block_type_name = "Gorax Webhook Secret"
    _block_type_slug = "webhook-secret"

    secrets: list[SecretStr] = Field(
        default_factory=list,
        max_length=10,
        description="Shared HMAC signing secrets, each used whole (spaces included). A delivery "
        "signed with any one of them verifies: to rotate, list the new secret beside the old one, "
        "switch the sender over, then remove the old one. One text value is a list of one.",
    )
    # The one-value form of blocks saved before ``secrets`` (read as a list of one, never split),
    # still accepted from API clients; hidden from the form so new blocks use the list.
    secret: SkipJsonSchema[SecretStr | None] = Field(
        default=None, description="One signing secret (the form before secrets)."
    )

    @model_validator(mode="before")
    @classmethod
    def _one_form(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("secrets"), (str, SecretStr)):
            data["secrets"] = [data["secrets"]]  # a single text value (the editor's form), whole
        old = data.get("secret")
        if data.get("secrets") and old is not None and is_sealed(_plain_text(old)):
            # A stored block of the old form given a list: the list replaces it. (Only stored
            # values are sealed: the credential service refuses sealed-looking input.)
            data["secret"] = None
        return data

    @model_validator(mode="after")
    def _some_secret(self) -> WebhookSecret:
        if self.secrets and self.secret is not None:
            raise ValueError(
                "give the signing secrets as the list 'secrets' only ('secret' is the "
                "one-value form of blocks saved before it)"
            )
        if not self.secrets and self.secret is None:
            raise ValueError("'secrets' needs at least one signing secret")
        empty = [str(index) for index, item in enumerate(self.secrets) if not item.get_secret_value()]
        if empty:
            raise ValueError(f"'secrets' item(s) {', '.join(empty)} are empty")
        return self

    def signing_secrets(self) -> tuple[str, ...]:
        """Every signing secret, each whole; a block of the old one-value form gives one."""
        if self.secrets:
            return tuple(_secret(item) or "" for item in self.secrets)
        return (_secret(self.secret) or "",) if self.secret is not None else ()


class GitHubToken(GoraxCredential):
    """A GitHub personal access or app installation token."""

    _block_type_name = "Gorax GitHub Token"
    _block_type_slug = "github-token"

    token: SecretStr = Field(description="GitHub token.")
    api_url: str = Field(default="https://api.github.com", description="GitHub API base URL.")


class JiraCredentials(GoraxCredential):
    """Jira Cloud or Server access with an e-mail and API token."""

    _block_type_name = "Gorax Jira Credentials"
    _block_type_slug = "jira-credentials"

    base_url: str = Field(description="Jira base URL, e.g. https://example.atlassian.net.")
    email: str = Field(description="E-mail of the Jira account.")
    api_token: SecretStr = Field(description="Jira API token.")


class PagerDutyKey(GoraxCredential):
    """A PagerDuty Events API v2 routing (integration) key."""

    _block_type_name = "Gorax PagerDuty Key"
    _block_type_slug = "pagerduty-key"

    routing_key: SecretStr = Field(description="Events API v2 routing key.")
    api_url: str = Field(default="https://events.pagerduty.com/v2/enqueue", description="Events API endpoint.")


class SendGridApiKey(GoraxCredential):
    """A SendGrid API key (Mail Send permission), and the sender its e-mails come from by default."""

    _block_type_name = "Gorax SendGrid API Key"
    _block_type_slug = "sendgrid-api-key"

    api_key: SecretStr = Field(description="SendGrid API key ('SG.' followed by the key).")
    from_address: str | None = Field(
        default=None, description="Verified sender address used when a node sets no 'from'."
    )
    from_name: str | None = Field(default=None, description="Sender name shown with the default sender address.")
    api_url: str | None = Field(
        default=None,
        description="SendGrid API base URL (e.g. https://api.eu.sendgrid.com for EU regional "
        "subusers); unset: GORAX_SENDGRID_API_URL, else https://api.sendgrid.com.",
    )


class TwilioCredentials(GoraxCredential):
    """A Twilio account: its SID with the auth token, or with an API key SID and secret."""

    _block_type_name = "Gorax Twilio Credentials"
    _block_type_slug = "twilio-credentials"

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$", description="Account SID ('AC' and 32 hex digits).")
    auth_token: SecretStr | None = Field(default=None, description="Account auth token (or use an API key).")
    api_key_sid: str | None = Field(
        default=None, pattern=r"^SK[0-9a-fA-F]{32}$", description="API key SID ('SK' and 32 hex digits)."
    )
    api_key_secret: SecretStr | None = Field(default=None, description="API key secret (with api_key_sid).")
    api_url: str | None = Field(
        default=None, description="Twilio API base URL; unset: GORAX_TWILIO_API_URL, else https://api.twilio.com."
    )

    @model_validator(mode="after")
    def _one_login(self) -> TwilioCredentials:
        has_key = self.api_key_sid is not None or self.api_key_secret is not None
        if has_key and (self.api_key_sid is None or self.api_key_secret is None):
            raise ValueError("an API key needs both 'api_key_sid' and 'api_key_secret'")
        if has_key == (self.auth_token is not None):
            raise ValueError("set either 'auth_token' or 'api_key_sid' and 'api_key_secret'")
        return self


class LlmProvider(GoraxCredential):
    """An LLM provider account used through litellm."""

    _block_type_name = "Gorax LLM Provider"
    _block_type_slug = "llm-provider"

    provider: str = Field(description="Provider name as litellm knows it, e.g. openai or anthropic.")
    api_key: SecretStr = Field(description="Provider API key.")
    api_base: str | None = Field(default=None, description="API base URL override.")
    default_model: str | None = Field(default=None, description="Model used when a node names none.")


class DatabaseUrl(GoraxCredential):
    """A database connection URL (it usually embeds the password, so the whole URL is secret)."""

    _block_type_name = "Gorax Database URL"
    _block_type_slug = "database-url"

    url: SecretStr = Field(description="Connection URL, e.g. postgresql://user:password@host/db.")


@dataclass(frozen=True)
class OAuthProvider:
    """A provider preset: its endpoints, default scopes and how it wants the client to authenticate."""

    label: str
    authorize_url: str | None
    token_url: str | None
    revoke_url: str | None
    scopes: str
    #: How the client sends its secret to the token endpoint (authlib's names).
    token_auth: str = "client_secret_basic"
    #: Extra authorization-request parameters (a refresh token from Google needs offline access).
    authorize_params: tuple[tuple[str, str], ...] = ()


#: The OAuth 2.0 provider presets, the only place their endpoints and scopes are written.
OAUTH_PROVIDERS: dict[str, OAuthProvider] = {
    "github": OAuthProvider(
        "GitHub",
        "https://github.com/login/oauth/authorize",
        "https://github.com/login/oauth/access_token",
        None,
        "repo read:user",
        token_auth="client_secret_post",
    ),
    "slack": OAuthProvider(
        "Slack",
        "https://slack.com/oauth/v2/authorize",
        "https://slack.com/api/oauth.v2.access",
        "https://slack.com/api/auth.revoke",
        "chat:write channels:read im:write users:read users:read.email",
        token_auth="client_secret_post",
    ),
    "google": OAuthProvider(
        "Google",
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token",
        "https://oauth2.googleapis.com/revoke",
        "openid email profile",
        token_auth="client_secret_post",
        authorize_params=(("access_type", "offline"), ("prompt", "consent")),
    ),
    "microsoft": OAuthProvider(
        "Microsoft",
        "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        None,
        "offline_access User.Read",
        token_auth="client_secret_post",
    ),
    "generic": OAuthProvider("Other (generic OAuth 2.0)", None, None, None, ""),
}

OAuthStatus = Literal["not_connected", "connected", "needs_reconnection"]


class OAuth2Connection(GoraxCredential):
    """An OAuth 2.0 connection: tokens from the authorization-code flow (with PKCE) or the
    client-credentials flow, refreshed before they expire. Nodes that take a bearer token
    (http.request, Slack, GitHub, Jira) accept it."""

    _block_type_name = "Gorax OAuth 2.0 Connection"
    _block_type_slug = "oauth2-connection"
    # The tokens, their expiry and the status are set by connecting and refreshing, not typed
    # in: their schema says ``readOnly`` and the Credentials screen leaves them out of its form.

    provider: Literal["github", "slack", "google", "microsoft", "generic"] = Field(
        default="generic", description="Provider preset: fills the endpoints and scopes left empty."
    )
    grant: Literal["authorization_code", "client_credentials"] = Field(
        default="authorization_code",
        description="authorization_code: a person connects the account in the browser; "
        "client_credentials: the application's own token, fetched with the client secret.",
    )
    client_id: str = Field(min_length=1, description="OAuth client (application) id registered at the provider.")
    client_secret: SecretStr | None = Field(default=None, description="OAuth client secret (none for a public client).")
    authorize_url: str | None = Field(default=None, description="Authorization endpoint (the preset's if empty).")
    token_url: str | None = Field(default=None, description="Token endpoint (the preset's if empty).")
    revoke_url: str | None = Field(default=None, description="Token revocation endpoint (optional).")
    scopes: str | None = Field(default=None, description="Space-separated scopes (the preset's if empty).")
    base_url: str | None = Field(
        default=None,
        description="API base URL the token is used with (Jira needs it; others default to the public API).",
    )
    alert_email_credential: str | None = Field(
        default=None,
        description="SMTP credential that e-mails the tenant's admins when this connection needs "
        "reconnecting (the audit log records it either way).",
    )
    access_token: SecretStr | None = Field(
        default=None, json_schema_extra={"readOnly": True}, description="Access token (set by connecting)."
    )
    refresh_token: SecretStr | None = Field(
        default=None, json_schema_extra={"readOnly": True}, description="Refresh token (set by connecting)."
    )
    expires_at: datetime | None = Field(
        default=None, json_schema_extra={"readOnly": True}, description="When the access token expires (UTC)."
    )
    status: OAuthStatus = Field(
        default="not_connected", json_schema_extra={"readOnly": True}, description="Whether the connection is usable."
    )
    status_reason: str | None = Field(
        default=None, json_schema_extra={"readOnly": True}, description="Why it needs reconnecting, when it does."
    )

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        preset = OAUTH_PROVIDERS.get(str(data.get("provider") or "generic"))
        if preset is None:
            return data
        data = dict(data)
        for name in ("authorize_url", "token_url", "revoke_url", "scopes"):
            if data.get(name) in (None, ""):
                data[name] = getattr(preset, name) or None
        return data

    @model_validator(mode="after")
    def _endpoints(self) -> OAuth2Connection:
        missing = ["token_url"] if not self.token_url else []
        if self.grant == "authorization_code" and not self.authorize_url:
            missing.insert(0, "authorize_url")
        if self.grant == "client_credentials" and self.client_secret is None:
            missing.append("client_secret")
        if missing:
            raise ValueError(f"provider {self.provider!r} with grant {self.grant!r} needs {', '.join(missing)}")
        return self

    @property
    def preset(self) -> OAuthProvider:
        """The provider preset (the generic one has no endpoints)."""
        return OAUTH_PROVIDERS[self.provider]

    @property
    def token(self) -> SecretStr | None:
        """The access token, under the name nodes that take a token read."""
        return self.access_token

    def expires_within(self, seconds: float) -> bool:
        """Whether the access token is missing or expires within ``seconds`` (one without an
        expiry never does)."""
        if self.access_token is None:
            return True
        if self.expires_at is None:
            return False
        expires = self.expires_at if self.expires_at.tzinfo else self.expires_at.replace(tzinfo=UTC)
        return expires <= datetime.now(UTC) + timedelta(seconds=seconds)

    def apply_http_auth(self, headers: dict[str, str], query: dict[str, object]) -> None:
        """Send the access token as a bearer token (the ``http.request`` hook)."""
        headers["Authorization"] = f"Bearer {_secret(self.access_token) or ''}"

    @classmethod
    def public_status(cls, data: dict[str, Any]) -> dict[str, Any]:
        """What the API shows of a stored connection: its state, never a token."""
        return {
            "provider": data.get("provider"),
            "grant": data.get("grant"),
            "status": data.get("status") or "not_connected",
            "status_reason": data.get("status_reason"),
            "expires_at": data.get("expires_at"),
            "scopes": data.get("scopes"),
        }


@dataclass(frozen=True)
class CollectionCredential:
    """A Prefect collection's credential Block type that Gorax offers as it is, by its slug.

    Prefect finds the class by slug once it has loaded its collections; nothing here imports it:
    prefect-aws loads boto3, and every process that loads the node catalogue would pay for that.
    """

    slug: str
    #: Fields that are secret although the class does not type them ``SecretStr``.
    secret_extra_fields: tuple[str, ...] = ()

    def get_block_type_slug(self) -> str:
        """The slug, asked the way a Block class is asked, so node types name every type alike."""
        return self.slug


#: prefect-aws's ``AwsCredentials`` (its session token is a plain ``str`` there).
AWS_CREDENTIALS = CollectionCredential("aws-credentials", secret_extra_fields=("aws_session_token",))
#: prefect-slack's ``SlackCredentials``.
SLACK_CREDENTIALS = CollectionCredential("slack-credentials")

#: The collections' credential types Gorax offers, after its own.
COLLECTION_CREDENTIALS: tuple[CollectionCredential, ...] = (AWS_CREDENTIALS, SLACK_CREDENTIALS)
