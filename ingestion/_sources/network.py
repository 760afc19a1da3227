"""The network rules of a fetch: one wall-clock deadline for every socket operation,
and no redirects from a public server into internal networks."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

# -- the wall-clock deadline ----------------------------------------------------------

#: When the fetch running in this thread must be over (``time.monotonic()``); None outside one.
fetch_deadline: ContextVar[float | None] = ContextVar("fetch_deadline", default=None)


def _within_deadline(timeout: float | None, expired: type[Exception]) -> float | None:
    """The timeout for one socket operation: its own, cut to what is left of the deadline.

    httpx's timeouts start again with every byte received, so a server sending one byte
    a second never trips them; cutting every operation to the time left is what makes
    ``total_timeout`` a real cap.
    """
    deadline = fetch_deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the time for this fetch is used up")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _within_deadline(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _within_deadline(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _within_deadline(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own socket backend, every connect, read and write cut to the deadline."""

    def __init__(self) -> None:
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _within_deadline(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._sockets.connect_tcp(host, port, timeout, local_address, socket_options))

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__(trust_env=False)
        # httpx has no parameter for the network backend: its connection pool is replaced by
        # the same pool over ours (the tests of total_timeout notice if this stops working).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_DeadlineBackend(),
        )


# -- redirects into internal networks ---------------------------------------------------

#: Loopback, private, link-local, shared (carrier-grade NAT), multicast and reserved
#: ranges: where a public server must not send us.
INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


def is_internal_address(address: str) -> bool:
    """Whether an IP address (text; an IPv6 zone is allowed) lies in :data:`INTERNAL_NETWORKS`.

    An IPv4 address written as IPv6 (``::ffff:a.b.c.d``) is judged as the IPv4 address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in INTERNAL_NETWORKS)


def redirect_leads_inward(source_addresses: Iterable[str], target_addresses: Iterable[str]) -> bool:
    """Whether a redirect goes from a public server to an internal address.

    The source is internal only when it has addresses and every one is internal: an
    operator may list an internal feed on purpose, and it may redirect within. The
    target is internal as soon as one of its addresses is.
    """
    sources = list(source_addresses)
    source_internal = bool(sources) and all(is_internal_address(address) for address in sources)
    return not source_internal and any(is_internal_address(address) for address in target_addresses)


def host_addresses(host: str | None) -> list[str]:
    """The IP addresses a URL's host stands for: itself when it is one, else what it
    resolves to (nothing when it does not resolve: the request itself then fails)."""
    if not host:
        return []
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        answers = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [str(answer[4][0]) for answer in answers]


def refused_redirect(source_url: str, target_url: str) -> str | None:
    """Why a redirect from ``source_url`` to ``target_url`` must not be followed, or None.

    Refused: a public server sending us to an internal address (see
    :func:`redirect_leads_inward`), where a feed URL could reach what only we can.
    """
    target_addresses = host_addresses(urlsplit(target_url).hostname)
    internal = [address for address in target_addresses if is_internal_address(address)]
    if not internal:
        return None  # the common case: no need to look the source up
    source_host = urlsplit(source_url).hostname
    if not redirect_leads_inward(host_addresses(source_host), target_addresses):
        return None
    return (
        f"redirect from the public host {source_host} to {target_url} refused: "
        f"it leads to the internal address {internal[0]}"
    )


# -- fetching ---------------------------------------------------------------------------
