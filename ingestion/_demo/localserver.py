"""A small HTTP server on 127.0.0.1 for the demo and the tests.

Routes map a path to a :class:`Route` (status, headers, body, optional delay) or
to a callable that builds one per request, so tests can script ETags, 304s,
redirects, slow answers and failures against a real socket.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(slots=True)
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering (a slow or hanging server).
    delay: float = 0.0
    #: Send an ETag computed from the body and honour If-None-Match with 304.
    etag: bool = False


Handler = Callable[["RequestInfo"], Route]


@dataclass(slots=True)
class RequestInfo:
    path: str
    headers: dict[str, str]


class LocalServer:
    """Serves ``routes`` until closed. Use as a context manager; ``url(path)`` builds URLs."""

    def __init__(self, routes: dict[str, Route | Handler] | None = None) -> None:
        self.routes: dict[str, Route | Handler] = dict(routes or {})
        self.requests: list[RequestInfo] = []
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle's algorithm the body
            # waits for the client's delayed ACK, 40 ms a response on Linux.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                info = RequestInfo(self.path, {k.lower(): v for k, v in self.headers.items()})
                server.requests.append(info)
                route = server.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    route = Route(b"not found", 404, {"Content-Type": "text/plain"})
                elif callable(route):
                    route = route(info)
                if route.delay:
                    time.sleep(route.delay)
                headers = dict(route.headers)
                status, body = route.status, route.body
                if route.etag:
                    tag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                    headers["ETag"] = tag
                    if info.headers.get("if-none-match") == tag:
                        status, body = 304, b""
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
