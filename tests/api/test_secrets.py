"""The API's token-signing key comes from its settings: a value or a file it names; no file is
made behind the operator's back, so replicas sign alike by configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.auth.secrets import SIGNING_KEY_FILE, SecretSettingError, signing_key
from api.config import ApiSettings
from tests.api.conftest import make_settings


def test_an_api_without_a_signing_key_does_not_start_and_makes_none(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, api=ApiSettings())
    with pytest.raises(SecretSettingError, match="GORAX_TOKEN_SIGNING_KEY .*GORAX_TOKEN_SIGNING_KEY_FILE"):
        create_app(settings)
    assert not (settings.state_dir / SIGNING_KEY_FILE).exists()


def test_replicas_given_the_same_key_file_accept_each_others_tokens(sqlite_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "signing.key"
    key_file.write_text("ab" * 32 + "\n")
    first = create_app(make_settings(sqlite_url, api=ApiSettings(token_signing_key_file=key_file)))
    second = create_app(make_settings(sqlite_url, api=ApiSettings(token_signing_key="ab" * 32)))
    token = first.state.gorax.signer.issue(user_id="user-1", family_id="family-1")
    assert second.state.gorax.signer.verify(token, "access").user_id == "user-1"
    with TestClient(second) as client:
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"token_signing_key": "short"}, "GORAX_TOKEN_SIGNING_KEY: .*64 or more hex"),
        ({"token_signing_key_file": Path("/nonexistent/signing.key")}, "GORAX_TOKEN_SIGNING_KEY_FILE: cannot read"),
    ],
    ids=["too-short", "missing-file"],
)
def test_an_unusable_key_is_named(fields: dict, message: str) -> None:
    with pytest.raises(SecretSettingError, match=message):
        signing_key(ApiSettings(**fields))
