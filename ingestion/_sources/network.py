"""The network rules of a fetch: one wall-clock deadline for every socket operation
and name lookup, and no redirects from a public server into internal networks."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
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
    """httpcore's own socket backend, every lookup, connect, read and write cut to the
    deadline. It connects to the addresses it looked up itself, so that what
    :data:`internal_addresses_refused` checks is where the connection goes."""

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
        addresses = lookup(host, _within_deadline(timeout, httpcore.ConnectTimeout))
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        if internal_addresses_refused.get():
            internal = [address for address in addresses if is_internal_address(address)]
            if internal:
                raise RedirectRefused(
                    f"redirect from a public server to {host} refused: "
                    f"it leads to the internal address {internal[0]}"
                )
        failure: Exception | None = None
        for address in addresses:  # in the resolver's order, as a plain connect would try them
            try:
                timeout = _within_deadline(timeout, httpcore.ConnectTimeout)
                stream = self._sockets.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return _DeadlineStream(stream)
        assert failure is not None
        raise failure

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


# -- name lookups ------------------------------------------------------------------------


def lookup(host: str, timeout: float | None) -> list[str]:
    """The IP addresses of ``host`` (itself when it is one), looked up within ``timeout``
    seconds: the system's resolver keeps to its own timeouts only (half a minute and
    more), so the lookup runs in a thread of its own, left to finish in the background
    when the time is up. Raises httpcore's ``ConnectTimeout`` then, ``ConnectError``
    when the name does not resolve."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return [host]  # an IPv6 address keeps its zone ("fe80::1%eth0")
    except ValueError:
        pass
    answers: list[Any] = []
    errors: list[Exception] = []

    def resolve() -> None:
        try:
            answers.extend(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            errors.append(exc)

    resolver = threading.Thread(target=resolve, name=f"lookup {host[:64]}", daemon=True)
    resolver.start()
    resolver.join(timeout)
    if resolver.is_alive():
        raise httpcore.ConnectTimeout(f"looking up {host} took more than {timeout:g} s")
    if errors:
        raise httpcore.ConnectError(f"cannot look up {host}: {errors[0]}")
    return list(dict.fromkeys(str(answer[4][0]) for answer in answers))


# -- redirects into internal networks ---------------------------------------------------

#: Loopback, private, link-local, shared (carrier-grade NAT), IETF protocol assignments,
#: benchmarking, local-use NAT64, multicast and reserved ranges: where a public server
#: must not send us.
INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


#: IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64's well-known
#: prefix, IPv4-translated, and the deprecated IPv4-compatible form): judged as that address.
_IPV4_IN_LAST_32_BITS = tuple(
    ipaddress.ip_network(prefix) for prefix in ("64:ff9b::/96", "::ffff:0:0:0/96", "::/96")
)

#: Set while a fetch follows a redirect sent by a public server: a connection it opens
#: must not reach an internal address, whatever the name resolved to a moment before.
internal_addresses_refused: ContextVar[bool] = ContextVar("internal_addresses_refused", default=False)


class RedirectRefused(Exception):
    """A connection a public server's redirect would open into an internal network."""


def is_internal_address(address: str) -> bool:
    """Whether an IP address (text; an IPv6 zone is allowed) lies in :data:`INTERNAL_NETWORKS`.

    An IPv4 address carried in IPv6 (``::ffff:a.b.c.d``, NAT64, 6to4, Teredo) is judged
    as the IPv4 address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip.teredo is not None:
            ip = ip.teredo[1]  # the client's address
        elif ip != ipaddress.IPv6Address("::1") and any(ip in prefix for prefix in _IPV4_IN_LAST_32_BITS):
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
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
    resolves to within the fetch's deadline (nothing when it does not resolve in time:
    the request itself then fails)."""
    if not host:
        return []
    try:
        return lookup(host, _within_deadline(None, httpcore.ConnectTimeout))
    except (httpcore.ConnectError, httpcore.ConnectTimeout):
        return []


def refused_redirect(
    source_url: str, target_url: str, source_addresses: list[str] | None = None
) -> str | None:
    """Why a redirect from ``source_url`` to ``target_url`` must not be followed, or None.

    Refused: a public server sending us to an internal address (see
    :func:`redirect_leads_inward`), where a feed URL could reach what only we can.
    ``source_addresses``: where the redirect came from, if known (else the source's
    name is looked up). A name that resolves elsewhere once the redirect is followed
    meets :data:`internal_addresses_refused` as its connection opens.
    """
    target_addresses = host_addresses(urlsplit(target_url).hostname)
    internal = [address for address in target_addresses if is_internal_address(address)]
    if not internal:
        return None  # the common case: no need to look the source up
    source_host = urlsplit(source_url).hostname
    if source_addresses is None:
        source_addresses = host_addresses(source_host)
    if not redirect_leads_inward(source_addresses, target_addresses):
        return None
    return (
        f"redirect from the public host {source_host} to {target_url} refused: "
        f"it leads to the internal address {internal[0]}"
    )
