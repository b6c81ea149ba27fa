"""The database nodes' outbound guard: allowed networks and directories, never Gorax's or Prefect's databases.

Each refusal happens before a connection: a real Gorax database (users with password hashes)
stays unread and unchanged.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prefect.settings import get_current_settings
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.db.engine import Database
from api.services.identity import create_tenant_with_admin
from blocks.types import DatabaseUrl
from flows.errors import IntegrationError
from flows.integrations.dbguard import _tls
from flows.nodes.db import DbExecute, DbQuery
from flows.settings import get_settings
from tests.flows.integrations.conftest import NodeTestContext

Configure = Callable[..., None]


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """Set GORAX_* variables for this test (the settings are read again)."""

    def apply(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"GORAX_{name.upper()}", value)
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


def _ctx(url: str) -> NodeTestContext:
    return NodeTestContext({"db": DatabaseUrl(url=url)})


async def _query(url: str, sql: str = "SELECT email, password_hash FROM users") -> dict:
    return await DbQuery().run(DbQuery.Config(credential="db", sql=sql), _ctx(url))


async def _gorax_database(url: str) -> str:
    """Migrate a Gorax database at ``url`` and add a tenant; returns its admin's e-mail."""
    db = Database(url)
    try:
        await db.migrate()
        created = await create_tenant_with_admin(db, name="Victim", admin_email=f"victim-{os.urandom(3).hex()}@t.test")
    finally:
        await db.dispose()
    return created["email"]


async def _user_names(url: str) -> list[str]:
    db = Database(url)
    try:
        async with db.system_scope() as session:
            return list((await session.execute(text("SELECT name FROM users"))).scalars())
    finally:
        await db.dispose()


async def test_gorax_sqlite_database_is_refused_even_inside_an_allowed_directory(
    tmp_path: Path, configure: Configure
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    gorax_url = f"sqlite+aiosqlite:///{allowed / 'gorax.db'}"
    configure(database_url=gorax_url, db_allowed_directories=str(allowed))
    await _gorax_database(gorax_url)
    before = await _user_names(gorax_url)
    for url in (f"sqlite:///{allowed / 'gorax.db'}", f"sqlite:///{allowed / 'sub' / '..' / 'gorax.db'}"):
        with pytest.raises(IntegrationError, match="belongs to Gorax or Prefect"):
            await _query(url)
        with pytest.raises(IntegrationError, match="belongs to Gorax or Prefect"):
            await DbExecute().run(DbExecute.Config(credential="db", sql="UPDATE users SET name = 'owned'"), _ctx(url))
    assert await _user_names(gorax_url) == before

    # The default database in the state directory, and anything else there (the key file).
    home = tmp_path / "home"
    configure(home=str(home), database_url="", db_allowed_directories=str(tmp_path))
    await _gorax_database(get_settings().resolved_database_url)
    for name in ("gorax.db", "gorax-kek.json"):
        with pytest.raises(IntegrationError, match="belongs to Gorax or Prefect"):
            await _query(f"sqlite:///{home / name}")


async def test_prefect_sqlite_home_is_refused(tmp_path: Path, configure: Configure) -> None:
    prefect_home = Path(get_current_settings().home)
    configure(db_allowed_directories=str(prefect_home.parent))
    with pytest.raises(IntegrationError, match="belongs to Gorax or Prefect"):
        await _query(f"sqlite:///{prefect_home / 'prefect.db'}", "SELECT 1")


async def test_sqlite_files_outside_the_allowed_directories_are_refused(tmp_path: Path, configure: Configure) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    secret_file = outside / "other.db"
    setup = f"sqlite:///{secret_file}"
    configure(db_allowed_directories=f"{outside}")
    await DbExecute().run(DbExecute.Config(credential="db", sql="CREATE TABLE t (secret TEXT)"), _ctx(setup))
    await DbExecute().run(DbExecute.Config(credential="db", sql="INSERT INTO t VALUES ('kept')"), _ctx(setup))

    configure(db_allowed_directories="")
    with pytest.raises(IntegrationError, match="GORAX_DB_ALLOWED_DIRECTORIES, which is empty"):
        await _query(setup, "SELECT secret FROM t")

    configure(db_allowed_directories=str(allowed))
    link = allowed / "innocent.db"
    link.symlink_to(secret_file)
    for url in (setup, f"sqlite:///{link}", f"sqlite:///{allowed}/../outside/other.db"):
        with pytest.raises(IntegrationError, match="not inside GORAX_DB_ALLOWED_DIRECTORIES"):
            await _query(url, "SELECT secret FROM t")

    # Inside the directory a file works, and SQL cannot open another one from there.
    inside = f"sqlite:///{allowed / 'work.db'}"
    await DbExecute().run(DbExecute.Config(credential="db", sql="CREATE TABLE w (n INTEGER)"), _ctx(inside))
    assert (await _query(inside, "SELECT count(*) AS n FROM w"))["rows"] == [{"n": 0}]
    for sql in (f"ATTACH DATABASE '{secret_file}' AS s", f"VACUUM INTO '{outside / 'copy.db'}'"):
        with pytest.raises(IntegrationError, match="too many attached databases"):
            await DbExecute().run(DbExecute.Config(credential="db", sql=sql), _ctx(inside))
    assert not (outside / "copy.db").exists()
    with pytest.raises(IntegrationError, match="SQLite URL option"):
        await _query(f"sqlite:///file:{secret_file}?mode=ro&uri=true", "SELECT 1")
    # An in-memory database is no file: allowed, and just as closed.
    assert (await _query("sqlite://", "SELECT 1 AS one"))["rows"] == [{"one": 1}]


async def test_loopback_postgres_needs_an_allow_list_entry(postgres_url: str, configure: Configure) -> None:
    url = postgres_url.replace("+asyncpg", "")
    configure(http_allowed_networks="")
    with pytest.raises(IntegrationError, match="database host refused.*127.0.0.1.*loopback"):
        await _query(url, "SELECT 1")
    for socket_url in (f"{url}?host=/var/run/postgresql", "postgresql://postgres@/postgres"):
        with pytest.raises(IntegrationError, match="not supported|one network host"):
            await _query(socket_url, "SELECT 1")

    configure(http_allowed_networks="127.0.0.0/8")
    assert (await _query(url, "SELECT 1 AS one"))["rows"] == [{"one": 1}]
    # The tenant's allow-list (the run's networks) opens it as well.
    configure(http_allowed_networks="")
    ctx = _ctx(url)

    ctx.allowed_networks = [ipaddress.ip_network("127.0.0.1/32")]  # type: ignore[attr-defined]
    got = await DbQuery().run(DbQuery.Config(credential="db", sql="SELECT 2 AS two"), ctx)
    assert got["rows"] == [{"two": 2}]


async def test_gorax_and_prefect_postgres_databases_are_refused_with_an_allow_list_entry(
    postgres_url: str, configure: Configure
) -> None:
    gorax = make_url(postgres_url)
    # Gorax names its server "localhost"; a node aiming at 127.0.0.1 or 127.0.0.2 reaches the same one.
    configure(
        database_url=gorax.set(host="localhost").render_as_string(hide_password=False),
        http_allowed_networks="127.0.0.0/8",
    )
    email = await _gorax_database(postgres_url)
    before = await _user_names(postgres_url)
    for host in ("127.0.0.1", "127.0.0.2"):
        url = gorax.set(drivername="postgresql", host=host).render_as_string(hide_password=False)
        with pytest.raises(IntegrationError, match="is Gorax's own database"):
            await _query(url)
        with pytest.raises(IntegrationError, match="is Gorax's own database"):
            await DbExecute().run(
                DbExecute.Config(
                    credential="db", sql="UPDATE users SET name = 'owned' WHERE email = :e", parameters={"e": email}
                ),
                _ctx(url),
            )
    assert await _user_names(postgres_url) == before

    prefect = os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"].replace("+asyncpg", "")
    with pytest.raises(IntegrationError, match="is Prefect's database"):
        await _query(prefect, "SELECT 1")

    # A database listed by the operator, and the server's other databases stay reachable.
    admin = gorax.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    assert (await _query(admin, "SELECT 1 AS one"))["rows"] == [{"one": 1}]
    configure(db_protected_urls=admin)
    with pytest.raises(IntegrationError, match="protected database"):
        await _query(admin, "SELECT 1")


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` (and its key), self-signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_verify_full_checks_the_url_host_name_while_connecting_to_the_address(tmp_path: Path) -> None:
    """asyncpg hands the address as TLS server name; the guard's context checks the URL's name."""
    cert, key = _self_signed(tmp_path, "db.example.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]

    async def handshake(context: ssl.SSLContext) -> None:
        # As asyncpg does: a plain connection, then TLS with the address as server name.
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        tls = await loop.start_tls(transport, protocol, context, server_hostname="127.0.0.1")
        tls.close()

    try:
        for name, works in (("db.example.test", True), ("other.example.test", False)):
            context = _tls("verify-full", name)
            context.load_verify_locations(cert)
            if works:
                await handshake(context)
            else:
                with pytest.raises(ssl.SSLCertVerificationError, match="other.example.test"):
                    await handshake(context)
    finally:
        server.close()
        await server.wait_closed()


async def test_an_unreadable_protected_url_keeps_database_nodes_closed(configure: Configure) -> None:
    configure(db_protected_urls="postgresql://ok@db.internal/app,not a url")
    with pytest.raises(IntegrationError, match="GORAX_DB_PROTECTED_URLS entry 2 is not a database URL"):
        await _query("sqlite://", "SELECT 1")
