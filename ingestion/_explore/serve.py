"""`newsroom serve`: Datasette over the published mirror, read-only, with our pages
and the Atom change feeds.

The mirror is opened immutable: SQLite takes no locks and writes nothing, and
Datasette offers no way to write. A publish never changes a mirror file; it
links a new one into place, which the server picks up at the next request.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import importlib
import ipaddress
import os
import socket
import sqlite3
import sys
import threading
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from datasette.app import Datasette
from datasette.database import Database
from datasette.plugins import pm

from ingestion._explore import plugin
from ingestion._explore.metadata import DATABASE, explorer_metadata
from ingestion._publish.snapshot import FEEDS_NAME, MIRROR_NAME
from ingestion.exceptions import QueryError

#: Datasette would accept a POST to a canned query; we have none that writes, and refuse them all.
_READING_METHODS = ("GET", "HEAD")
#: Longest text or blob a query of the mirror may make: well above the longest body kept.
MAX_VALUE_BYTES = 32 * 2**20
_TEMPLATES = Path(__file__).parent / "templates"
_SETTINGS = {
    # Bodies are long; table pages show their start (the row page shows all).
    "truncate_cells_html": 300,
    "sql_time_limit_ms": 5000,
    "facet_time_limit_ms": 1000,
    "max_returned_rows": 2000,
}


def serve(published_dir: Path, *, host: str = "127.0.0.1", port: int = 8001) -> int:
    """Serve the explorer until interrupted (Ctrl-C); returns the exit status."""
    app = explorer_app(published_dir)
    listening = _listen(host, port)
    app.local_names_only = _is_loopback(listening)
    print(f"newsroom explorer on {_url(listening)} (Ctrl-C stops it)", file=sys.stderr)
    _server(app).run(sockets=[listening])
    return 0


@dataclass(slots=True)
class RunningExplorer:
    """An explorer serving in a thread of this process (for tests and notebooks)."""

    url: str
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningExplorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_background(published_dir: Path, *, host: str = "127.0.0.1", port: int = 0) -> RunningExplorer:
    """Start the explorer in a thread (``port`` 0: a free port) and return once it answers."""
    app = explorer_app(published_dir)
    listening = _listen(host, port)
    app.local_names_only = _is_loopback(listening)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise QueryError("the explorer stopped while starting")
        thread.join(timeout=0.05)
    return RunningExplorer(_url(listening), server, thread)


def explorer_app(published_dir: Path) -> Any:
    """The ASGI application: Datasette on the published mirror, with our plugin."""
    published_dir = Path(published_dir)
    link = published_dir / MIRROR_NAME
    mirror = _readable_mirror(link)
    if pm.get_plugin(plugin.__name__) is None:
        pm.register(plugin, name=plugin.__name__)
    # Datasette's own error hook, which every error also goes through, prints the traceback
    # with each frame's local variables (the request's headers among them) when rich is
    # installed; without it, only a 500's, without them. (Its module is imported here, once
    # Datasette registered it: imported first, it was registered half made, without its hook.)
    importlib.import_module("datasette.handle_exception").rich = None
    datasette = Datasette(
        metadata=explorer_metadata(mirror, published_dir / FEEDS_NAME),
        template_dir=str(_TEMPLATES),
        settings=_SETTINGS,
    )
    datasette.add_database(_MirrorDatabase(datasette, mirror), name=DATABASE)
    return _FollowPublished(datasette, link, mirror)


class _FollowPublished:
    """Datasette's app, switched to the mirror a new publish linked into place."""

    def __init__(self, datasette: Datasette, link: Path, mirror: Path) -> None:
        self._datasette = datasette
        self._app = datasette.app()
        self._link = link
        self._serving = mirror
        #: Served on a loopback address: answer only requests made to this machine's own
        #: names. A web page whose name was pointed at 127.0.0.1 (DNS rebinding) would
        #: otherwise read the explorer from a journalist's browser.
        self.local_names_only = True

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if scope["method"] not in _READING_METHODS:
                await _refuse(
                    send, 405, b"The newsroom explorer is read-only: it answers GET requests only.\n"
                )
                return
            if self.local_names_only and not _is_local_name(dict(scope["headers"]).get(b"host")):
                await _refuse(send, 421, b"This explorer answers requests to localhost or 127.0.0.1 only.\n")
                return
            self._follow()
        await self._app(scope, receive, send)

    def _follow(self) -> None:
        current = Path(os.path.realpath(self._link))
        if current == self._serving or not current.is_file():
            return
        # No await between the two: no request sees the database missing.
        self._datasette.remove_database(DATABASE)
        self._datasette.add_database(_MirrorDatabase(self._datasette, current), name=DATABASE)
        self._serving = current


async def _refuse(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    if status == 405:
        headers.append((b"allow", b"GET, HEAD"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _is_local_name(host_header: bytes | None) -> bool:
    """Whether a Host header names this machine: localhost, a loopback address, or none
    (HTTP/1.0; a browser always sends one)."""
    if host_header is None:
        return True
    name = host_header.decode("latin-1").lower()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name in ("localhost", "localhost."):
        return True
    try:
        return _loopback(ipaddress.ip_address(name))
    except ValueError:
        return False


def _is_loopback(listening: socket.socket) -> bool:
    return _loopback(ipaddress.ip_address(listening.getsockname()[0]))


def _loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # Python before 3.13 does not call ::ffff:127.0.0.1 (IPv4 written as IPv6) loopback.
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class _MirrorDatabase(Database):
    """One mirror file, opened immutable.

    Datasette keeps a connection per thread under the database's name, which would
    keep reading the old file after a switch; this keeps them per file instead (they
    close when the switched-out file's object goes).
    """

    def __init__(self, datasette: Datasette, path: Path) -> None:
        super().__init__(datasette, path=str(path), is_mutable=False)
        self._per_thread = threading.local()
        # Datasette would hash the whole file (gigabytes) on the event loop at the first
        # page that shows the hash. A publish never changes a mirror file, it links a new
        # one: its path, size and time tell it from any other as well.
        stat = path.stat()
        self.cached_hash = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()

    def connect(self, write: bool = False) -> sqlite3.Connection:
        connection = super().connect(write)
        # A query's time limit is checked between SQLite's steps, and one step can build a
        # string of any size (randomblob(900000000)): no value may be longer than this.
        connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        return connection

    async def execute_fn(self, fn: Any) -> Any:
        if self.ds.executor is None:
            return await super().execute_fn(fn)

        def in_thread() -> Any:
            connection = getattr(self._per_thread, "connection", None)
            if connection is None:
                connection = self.connect()
                self.ds._prepare_connection(connection, self.name)
                self._per_thread.connection = connection
            return fn(connection)

        return await asyncio.get_running_loop().run_in_executor(self.ds.executor, in_thread)


def _readable_mirror(link: Path) -> Path:
    """The mirror file ``link`` points at now, checked to be one."""
    if not link.exists():
        raise QueryError(f"no explorer database at {link}; run `newsroom publish` first")
    mirror = Path(os.path.realpath(link))
    try:
        uri = f"{mirror.as_uri()}?mode=ro&immutable=1"
        with closing(sqlite3.connect(uri, uri=True)) as con:
            con.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as exc:
        raise QueryError(f"{link} is not a readable explorer database ({exc}); publish again") from exc
    return mirror


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line error for a host or port we cannot serve on."""
    if not 0 <= port <= 65535:
        raise QueryError(f"port {port} is not a TCP port (0-65535)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise QueryError(f"cannot serve on host {host!r}: not an address or a known name") from exc
    listening = socket.socket(family, kind, proto)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(128)
    except OSError as exc:
        listening.close()
        if exc.errno == errno.EADDRINUSE:
            raise QueryError(f"port {port} on {host} is in use; choose another with --port") from exc
        if exc.errno == errno.EADDRNOTAVAIL:
            raise QueryError(f"cannot serve on host {host!r}: not an address of this machine") from exc
        if exc.errno == errno.EACCES:
            raise QueryError(f"not allowed to serve on port {port} (below 1024 needs privileges)") from exc
        raise QueryError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
    return listening


def _server(app: Any) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", lifespan="on", loop="asyncio")
    return uvicorn.Server(config)


def _url(listening: socket.socket) -> str:
    host, port = listening.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"
