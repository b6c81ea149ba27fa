"""Where ``db.query`` and ``db.execute`` may connect: the outbound guard of :mod:`flows.net`, for databases.

- **PostgreSQL.** The host is resolved once and every address it has is checked like an HTTP
  destination (loopback, private, link-local and metadata addresses refused unless
  ``GORAX_HTTP_ALLOWED_NETWORKS`` or the tenant's allow-list includes them); the connection goes
  to the checked address, so a name that re-resolves elsewhere (DNS rebinding) cannot slip past.
  Unix sockets and URL options that choose another host are refused; the worker's environment
  never lends a password (``PGPASSWORD``, ``.pgpass``).
- **SQLite.** Only files inside a directory of ``GORAX_DB_ALLOWED_DIRECTORIES``, judged by the
  resolved path (``..`` and symlinks cannot leave it), which is then the path opened. SQL cannot
  reach another file: the connection allows no attached database (``ATTACH``, ``VACUUM INTO``).
- **Never** Gorax's own database, Prefect's, or one of ``GORAX_DB_PROTECTED_URLS`` (same server
  address, port and database), nor any file under Gorax's state directory or Prefect's home,
  whatever the allow-lists say.

:func:`database_target` returns a :class:`DatabaseTarget` whose ``connect`` opens the checked
connection (SQLAlchemy's ``async_creator``); a refusal is an :class:`IntegrationError`.
"""

from __future__ import annotations

import getpass
import os
import socket
import sqlite3
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from prefect.settings import get_current_settings
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from flows.errors import BlockedAddressError, IntegrationError
from flows.net import IPAddress, Network, addresses_of, resolve_checked
from flows.settings import get_settings

_POSTGRES = ("postgresql", "postgres")
#: asyncpg's TLS modes; ``sslmode`` is accepted as another name for ``ssl``.
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
#: The files SQLite keeps beside a database.
_SIDE_FILES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class DatabaseTarget:
    """A checked destination: the engine URL (dialect only), how to connect, what to call it."""

    engine_url: str
    connect: Callable[[], Awaitable[Any]]
    label: str
    postgres: bool
    #: Values to mask in errors (the password).
    secrets: tuple[str, ...] = ()


def _refused(reason: str) -> IntegrationError:
    return IntegrationError("database", "connect", reason)


async def database_target(raw_url: str, *, allowed: Iterable[Network]) -> DatabaseTarget:
    """Check ``raw_url`` (a credential's database URL) and say how to reach it."""
    try:
        url = make_url(raw_url)
    except ArgumentError:
        raise _refused("the credential's database URL cannot be parsed") from None
    _operator_urls()  # a protected list that cannot be read opens nothing
    backend = url.drivername.split("+")[0]
    if backend in _POSTGRES:
        return await _postgres_target(url, list(allowed))
    if backend == "sqlite":
        return _sqlite_target(url)
    raise _refused(f"database {url.drivername!r} is not supported (postgresql, sqlite)")


# -- PostgreSQL ------------------------------------------------------------------------------


def _ssl_option(url: URL) -> Any:
    options = dict(url.query)
    unknown = sorted(set(options) - {"ssl", "sslmode"})
    if unknown:
        raise _refused(
            f"database URL option(s) {', '.join(unknown)} are not supported "
            "(only ssl / sslmode): they could choose another host or socket"
        )
    mode = options.get("ssl") or options.get("sslmode")
    if isinstance(mode, tuple):
        raise _refused("the database URL's ssl option is given more than once")
    if mode is not None and mode not in _SSL_MODES:
        raise _refused(f"ssl mode {mode!r} is not one of {', '.join(_SSL_MODES)}")
    return mode


class _NamedTLSContext(ssl.SSLContext):
    """Verifies the server's certificate for the URL's host name while the socket goes to the
    checked address (asyncpg would otherwise check the certificate against the address)."""

    server_name: str = ""

    def wrap_bio(
        self, incoming: Any, outgoing: Any, server_side: bool = False, server_hostname: Any = None, session: Any = None
    ) -> Any:
        return super().wrap_bio(incoming, outgoing, server_side, self.server_name or server_hostname, session)


def _tls(mode: str | None, host: str) -> Any:
    if mode not in ("verify-ca", "verify-full"):
        return mode  # asyncpg's own handling; none of these checks a host name
    context = _NamedTLSContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_default_certs()
    context.check_hostname = mode == "verify-full"
    context.server_name = host
    return context


async def _postgres_target(url: URL, allowed: list[Network]) -> DatabaseTarget:
    host = url.host or ""
    if not host or host.startswith("/") or "," in host:
        raise _refused(
            "the database URL needs one network host (Unix sockets and host lists are not reachable from a workflow)"
        )
    mode = _ssl_option(url)
    port = url.port or 5432
    user = url.username or getpass.getuser()
    database = url.database or user
    try:
        address = await resolve_checked(host, port, allowed=allowed, allow_private=False)
    except BlockedAddressError as exc:
        raise _refused(f"database host refused: {exc}") from None
    for protected in _protected_urls():
        if await _same_postgres(protected, address, port, database):
            raise _refused(f"database {database!r} on {host}:{port} is {protected.what}; workflows can never reach it")
    tls = _tls(mode, host)
    # Every connection parameter is explicit: nothing comes from the worker's PG* environment.
    options = {
        "host": str(address),
        "port": port,
        "user": user,
        "database": database,
        "password": url.password or "",
        "ssl": tls,
    }

    async def connect() -> Any:
        return await asyncpg.connect(**options)

    return DatabaseTarget(
        "postgresql+asyncpg://", connect, host, postgres=True, secrets=(url.password,) if url.password else ()
    )


@dataclass(frozen=True)
class _Protected:
    url: URL
    what: str


def _protected_urls() -> list[_Protected]:
    """Gorax's database, Prefect's (as this process's settings name them) and the operator's."""
    found = [_Protected(make_url(get_settings().resolved_database_url), "Gorax's own database")]
    prefect_url = get_current_settings().server.database.connection_url
    if prefect_url is not None:
        found.append(_Protected(make_url(prefect_url.get_secret_value()), "Prefect's database"))
    found += [_Protected(url, "a protected database (GORAX_DB_PROTECTED_URLS)") for url in _operator_urls()]
    return found


def _operator_urls() -> list[URL]:
    """The URLs of ``GORAX_DB_PROTECTED_URLS``; one that cannot be read refuses every database
    node (it could have named any of them)."""
    urls = []
    entries = get_settings().runtime.db_protected_urls.split(",")
    for index, raw in enumerate(part.strip() for part in entries):
        if not raw:
            continue
        try:
            urls.append(make_url(raw))
        except ArgumentError:
            raise _refused(
                f"GORAX_DB_PROTECTED_URLS entry {index + 1} is not a database URL; "
                "database nodes stay closed until it is fixed"
            ) from None
    return urls


async def _resolve(host: str) -> set[IPAddress]:
    """Every address of ``host`` (none when it does not resolve)."""
    try:
        return set(await addresses_of(host))
    except OSError:
        return set()


async def _local(addresses: set[IPAddress]) -> set[IPAddress]:
    """Those of ``addresses`` that reach this machine: loopback, unspecified, or its own by name."""
    own = await _resolve(socket.gethostname())
    return {ip for ip in addresses if ip.is_loopback or ip.is_unspecified or ip in own}


async def _same_postgres(protected: _Protected, address: IPAddress, port: int, database: str) -> bool:
    """Whether (address, port, database) is the protected PostgreSQL database."""
    url = protected.url
    if url.drivername.split("+")[0] not in _POSTGRES or not url.host:
        return False
    if (url.port or 5432) != port or (url.database or url.username or getpass.getuser()) != database:
        return False
    theirs = await _resolve(url.host)
    # A server on this machine answers on all of its addresses: 127.0.0.2 reaches 127.0.0.1's.
    return address in theirs or bool(await _local({address}) and await _local(theirs))


# -- SQLite ----------------------------------------------------------------------------------


def _protected_paths() -> tuple[list[Path], list[Path]]:
    """(directories, database files) no node may open."""
    directories = [get_settings().state_dir, Path(get_current_settings().home).expanduser().resolve()]
    files = []
    for protected in _protected_urls():
        url = protected.url
        if url.drivername.split("+")[0] == "sqlite" and url.database not in (None, "", ":memory:"):
            files.append(Path(url.database).expanduser().resolve())
    return directories, files


def _sqlite_target(url: URL) -> DatabaseTarget:
    if url.query:
        raise _refused(f"SQLite URL option(s) {', '.join(sorted(url.query))} are not supported")
    if url.database in (None, "", ":memory:"):
        path = ":memory:"  # a private scratch database: no file, nothing to reach
        label = "memory"
    else:
        resolved = Path(os.path.realpath(Path(url.database).expanduser()))
        _check_file(resolved, url.database)
        path, label = str(resolved), Path(url.database).name

    def open_checked() -> sqlite3.Connection:
        connection = sqlite3.connect(path)
        # No other database may be opened from SQL (ATTACH, and VACUUM INTO, which attaches).
        connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        return connection

    async def connect() -> Any:
        # aiosqlite calls the connector on its own thread, where the connection then lives.
        return await aiosqlite.Connection(open_checked, 64)

    return DatabaseTarget("sqlite+aiosqlite://", connect, label, postgres=False)


def _check_file(resolved: Path, given: str) -> None:
    directories, files = _protected_paths()
    if any(resolved == Path(f"{file}{suffix}") for file in files for suffix in _SIDE_FILES) or any(
        resolved.is_relative_to(directory) for directory in directories
    ):
        raise _refused(f"SQLite file {given!r} belongs to Gorax or Prefect; workflows can never open it")
    allowed = get_settings().runtime.db_directories
    if not allowed:
        raise _refused(
            f"SQLite file {given!r} refused: SQLite files are opened only inside "
            "GORAX_DB_ALLOWED_DIRECTORIES, which is empty"
        )
    if not any(resolved.is_relative_to(directory) for directory in allowed):
        raise _refused(
            f"SQLite file {given!r} refused: it is not inside GORAX_DB_ALLOWED_DIRECTORIES "
            "(judged after following symlinks and '..')"
        )
