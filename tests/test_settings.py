"""The settings root: nothing reads the environment behind it, every variable keeps its name, and
docs/configuration.md's settings reference is the one the settings classes generate."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from api.config import GoraxApiSettings
from api.settings_reference import settings_markdown, settings_of

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("translator", "flows", "blocks", "api")

#: Where reading or writing the process environment belongs, and why.
ENVIRONMENT_ALLOWED = {
    # Settings modules: the settings classes read GORAX_* (through pydantic-settings).
    "flows/settings.py": "the settings root",
    "flows/runtime/settings.py": "the runtime's section",
    "flows/worker/settings.py": "the warm worker's section",
    "blocks/settings.py": "the key section",
    "api/config.py": "the API's sections",
    # Applies the Prefect section to Prefect's own client variables, once at process start.
    "flows/prefect_client.py": "the one place Prefect's client settings are set",
    # A child process's environment: subprocess.Popen takes the whole of it.
    "api/stack.py": "the environment of the processes gorax up starts",
    # OpenTelemetry's and Sentry's standard variables (OTEL_*, SENTRY_DSN): their SDKs read them
    # themselves, by their specifications; this module only asks whether they turn tracing on.
    "flows/tracing.py": "the OpenTelemetry and Sentry SDKs' own variables",
}

#: Every variable a Gorax process read before the settings had one root; each still works.
LEGACY_VARIABLES = """
GORAX_HOME GORAX_DATABASE_URL GORAX_API_HOST GORAX_API_PORT GORAX_PREFECT_PORT GORAX_PREFECT_API_URL
GORAX_PREFECT_AUTH_STRING GORAX_REDIS_URL GORAX_HTTP_ALLOWED_NETWORKS GORAX_DB_ALLOWED_DIRECTORIES
GORAX_DB_PROTECTED_URLS GORAX_KEY_PROVIDER GORAX_KMS_KEY_ID GORAX_KMS_ENDPOINT_URL GORAX_WORKER_TYPE
GORAX_WORK_POOL GORAX_API_URL GORAX_LOG_LEVEL GORAX_LOG_MAX_LINE_BYTES GORAX_ACCESS_TOKEN_TTL_SECONDS
GORAX_REFRESH_TOKEN_TTL_SECONDS GORAX_LOGIN_MAX_FAILURES GORAX_LOCKOUT_SECONDS GORAX_COOKIE_SECURE
GORAX_CORS_ORIGINS GORAX_RATE_LIMIT_API GORAX_RATE_LIMIT_EXECUTE GORAX_RATE_LIMIT_CREDENTIALS
GORAX_RATE_LIMIT_WEBHOOK GORAX_RATE_LIMIT_AUTH GORAX_WEBHOOK_RESEND_AFTER_SECONDS
GORAX_RATE_LIMIT_WINDOW_SECONDS GORAX_INVITATION_TTL_SECONDS GORAX_MAX_BODY_BYTES
GORAX_WEBHOOK_MAX_BODY_BYTES GORAX_GRAPH_MAX_NODES GORAX_GRAPH_MAX_EDGES GORAX_MAX_VARIABLE_BYTES
GORAX_MAX_INPUT_BYTES GORAX_WORKER_TOKEN GORAX_WORKER_LIMIT GORAX_WORKER_POLL_SECONDS
GORAX_WORKER_CANCEL_POLL_SECONDS GORAX_WORKER_SHUTDOWN_GRACE_SECONDS GORAX_WORKER_PRELOAD
GORAX_RATE_LIMITS GORAX_RATE_LIMIT_WAIT_SECONDS GORAX_CIRCUIT_FAILURE_THRESHOLD
GORAX_CIRCUIT_COOLDOWN_SECONDS GORAX_SLACK_API_URL GORAX_GITHUB_API_URL GORAX_JIRA_API_URL
GORAX_PAGERDUTY_API_URL
""".split()

_ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _environment_uses(tree: ast.AST) -> list[int]:
    """Lines that touch the process environment: ``os.environ``, ``os.getenv``... under any
    name ``os`` is imported as, and ``from os import environ``."""
    os_names = {"os"}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {alias.asname or alias.name for alias in node.names if alias.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno for alias in node.names if alias.name in _ENVIRONMENT_NAMES]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in _ENVIRONMENT_NAMES
            and isinstance(node.value, ast.Name)
            and node.value.id in os_names
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_nothing_reads_the_environment_outside_the_settings_modules() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name in ENVIRONMENT_ALLOWED:
                continue
            found += [f"{name}:{line}" for line in _environment_uses(ast.parse(path.read_text()))]
    assert found == [], "read settings instead (flows.settings.get_settings()): " + ", ".join(found)


def test_the_scan_sees_every_spelling() -> None:
    source = "import os as o\nfrom os import getenv\nx = o.environ['A']\ny = o.getenv('B')\n"
    assert _environment_uses(ast.parse(source)) == [2, 3, 4]


def test_every_variable_name_keeps_working() -> None:
    names = {name for _, rows in settings_of() for row in rows for name in row.names}
    assert sorted(set(LEGACY_VARIABLES) - names) == []


def test_a_variable_reaches_its_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORAX_WORKER_LIMIT", "7")
    monkeypatch.setenv("GORAX_KMS_KEY_ID", "alias/gorax")
    monkeypatch.setenv("GORAX_CIRCUIT_COOLDOWN_SECONDS", "12")
    monkeypatch.setenv("GORAX_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("GORAX_API_PORT", "9191")
    # The editor's dev server reads GORAX_API; it is no section of the settings.
    monkeypatch.setenv("GORAX_API", "http://127.0.0.1:8080")
    settings = GoraxApiSettings(home=Path("/tmp/gorax-settings-test"))
    assert settings.worker.limit == 7 and settings.keys.kms_key_id == "alias/gorax"
    assert settings.runtime.circuit_cooldown_seconds == 12 and settings.api.max_body_bytes == 2048
    assert settings.stack.api_port == 9191
    # What a section defaults to inside the state directory comes from the root.
    assert settings.keys.key_file == Path("/tmp/gorax-settings-test/gorax-kek.json")


def test_the_configuration_reference_is_generated() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    match = re.search(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", reference, re.S)
    assert match, "docs/configuration.md lost its <!-- settings:begin/end --> markers"
    assert match.group(1).strip() == settings_markdown().strip(), (
        "docs/configuration.md's settings reference is out of date: replace it with `gorax settings --markdown`"
    )
