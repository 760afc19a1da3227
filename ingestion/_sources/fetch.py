"""Fetching one source: HTTP(S) with conditional GET, or a local file.

Fetching only fetches: it stores the body in the blob store and describes what
happened in a :class:`FetchOutcome`. It never touches DuckDB, so many fetches can
run in parallel (threads, or mapped Airflow tasks) while one writer appends.
"""

from __future__ import annotations

import email.utils
import math
import os
import re
import stat
import time
import zlib
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from ingestion import __version__
from ingestion._log.blobs import BlobStore
from ingestion._model import FetchOutcome, FetchRequest
from ingestion._sources.network import (
    DeadlineTransport,
    RedirectRefused,
    fetch_deadline,
    internal_addresses_refused,
    is_internal_address,
    refused_redirect,
)
from ingestion.exceptions import ConfigError

USER_AGENT = f"newsroom/{__version__} (newsroom feed fetcher; python-httpx)"
_REDIRECTS = (301, 302, 303, 307, 308)
_PERMANENT = (301, 308)
_RETRYABLE = (429, 500, 502, 503, 504)
#: Answers whose Retry-After is remembered for later runs (see ``FetchOutcome.retry_after_until``).
_BACK_OFF_STATUSES = (429, 503)
#: Longest a server may keep a source off our schedule with one Retry-After.
MAX_RETRY_AFTER_REMEMBERED = timedelta(days=7)

#: Allowed range of every :class:`FetchLimits` field; outside it a typo, not a policy.
_LIMIT_RANGES: dict[str, tuple[float, float]] = {
    "connect_timeout": (0.001, 300),
    "read_timeout": (0.001, 600),
    "total_timeout": (0.001, 3600),
    "max_bytes": (1, 1024**3),
    "max_redirects": (0, 20),
    "max_attempts": (1, 10),
    "backoff_seconds": (0, 300),
    "max_retry_after": (0, 3600),
}


@dataclass(frozen=True, slots=True)
class FetchLimits:
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    #: Wall-clock cap on fetching one source: connecting, headers and body, over every
    #: redirect and retry, so a server that drips bytes cannot hold a run.
    total_timeout: float = 60.0
    #: Cap on the decompressed body (a gzip bomb stops here).
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    max_attempts: int = 3
    backoff_seconds: float = 2.0
    #: Longest Retry-After we are willing to sleep for inside one run.
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            low, high = _LIMIT_RANGES[spec.name]
            whole = isinstance(spec.default, int)
            if (
                isinstance(value, bool)
                or not isinstance(value, int if whole else (int, float))
                or not math.isfinite(value)
                or not low <= value <= high
            ):
                kind = "a whole number" if whole else "a number"
                raise ConfigError(
                    f"fetch limit {spec.name}={value!r} must be {kind} from {low:,} to {high:,}"
                )


def _now_iso() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat()


#: Longest ETag or Last-Modified kept to send back: a validator, not a payload.
MAX_VALIDATOR_LENGTH = 1024
_VALIDATOR = re.compile(rf"[\x20-\x7e]{{1,{MAX_VALIDATOR_LENGTH}}}")


def _validator(value: str | None) -> str | None:
    """An ETag or Last-Modified fit to send back: printable ASCII (a header value we
    can send) of reasonable length; None for anything else, so the next fetch asks
    unconditionally rather than failing on a header it cannot write."""
    return value if value is not None and _VALIDATOR.fullmatch(value) else None


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):  # not str.isdigit: "²" is a digit to it
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _retry_after_until(seconds: float) -> str:
    wait = timedelta(seconds=min(seconds, MAX_RETRY_AFTER_REMEMBERED.total_seconds()))
    return (datetime.now(UTC).replace(tzinfo=None) + wait).isoformat()


class _Failure(Exception):
    def __init__(
        self,
        error_class: str,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.status = status
        self.retry_after = retry_after


class _Decoder:
    """Content-Encoding decoding with a hard cap on the decoded size.

    Decoding ourselves (instead of letting the client do it) bounds a gzip bomb
    exactly, and lets a body that only claims to be compressed through as is. Whether
    it is compressed is judged on its first ``_SNIFF_BYTES`` bytes, however the network
    splits them. A compressed body must end where its stream ends: one cut short is a
    failure, not a shorter feed; after a gzip member may come another (their texts
    follow each other) or zero bytes of padding, nothing else.
    """

    _SNIFF_BYTES = 16

    def __init__(self, encoding: str, max_bytes: int) -> None:
        self.encoding = encoding
        self.max_bytes = max_bytes
        #: Compressed bytes read: a stream may expand a little, never by much.
        self.raw_cap = max_bytes + max_bytes // 64 + 65_536
        self.raw = 0
        self.body = bytearray()  # one buffer: a body of tiny chunks costs its bytes, not an object each
        self._compressed = encoding in ("gzip", "x-gzip", "deflate")
        self._sniffed = not self._compressed
        self._prefix = b""
        self._z = self._decompressor()
        self._padding = False  # only zero bytes may follow
        self._ended = False  # a compressed stream ended: the body is compressed
        self._pending = b""  # the first byte of a gzip member's two-byte mark, the second to come

    def _decompressor(self) -> Any:
        return zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in self.encoding else zlib.MAX_WBITS)

    def feed(self, chunk: bytes) -> None:
        self.raw += len(chunk)
        if self._compressed and self.raw > self.raw_cap:
            raise _Failure("TooLarge", f"compressed body exceeds {self.raw_cap:,} bytes")
        if not self._sniffed:
            self._prefix += chunk
            if len(self._prefix) >= self._SNIFF_BYTES:
                self._sniff()
            return
        if not self._compressed:
            self._count(chunk)
            return
        data, self._pending = self._pending + chunk, b""
        try:
            self._inflate(data)
        except zlib.error as exc:
            raise _Failure("DecodingError", f"{self.encoding} body is corrupt: {exc}") from exc

    def finish(self) -> bytes:
        """The decoded body, once every chunk was fed."""
        if not self._sniffed:
            self._sniff()
        if self._pending:
            raise _Failure("DecodingError", f"data after the end of the {self.encoding} stream")
        if self._compressed and not self._z.eof and not self._padding and self.raw:
            raise _Failure("DecodingError", f"{self.encoding} body ends before its compressed stream does")
        return bytes(self.body)

    def _sniff(self) -> None:
        self._sniffed = True
        prefix, self._prefix = self._prefix, b""
        try:
            self._inflate(prefix)
            return
        except zlib.error as exc:
            if self._ended:  # what follows a stream is not a body that is not compressed
                raise _Failure("DecodingError", f"{self.encoding} body is corrupt: {exc}") from exc
        if self.encoding == "deflate":  # raw deflate stream without zlib header
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
            self.body.clear()
            try:
                self._inflate(prefix)
                return
            except zlib.error:
                pass
        # Not compressed at all, whatever the header says.
        self._compressed = False
        self.body.clear()
        self._count(prefix)

    def _inflate(self, data: bytes) -> None:
        while data:
            if self._padding:
                if data.strip(b"\0"):
                    raise _Failure("DecodingError", f"data after the end of the {self.encoding} stream")
                return
            if self._z.eof:  # what follows the stream that ended: another gzip member, or padding
                self._ended = True
                if not data.strip(b"\0"):
                    self._padding = True
                    return
                if data == b"\x1f" and "gzip" in self.encoding:  # the mark may be split between reads
                    self._pending = data
                    return
                if "gzip" not in self.encoding or data[:2] != b"\x1f\x8b":
                    raise _Failure("DecodingError", f"data after the end of the {self.encoding} stream")
                self._z = self._decompressor()
            # max_length: never inflate more than the cap allows, however small the input.
            self._count(self._z.decompress(data, self.max_bytes - len(self.body) + 1))
            data = self._z.unconsumed_tail or self._z.unused_data

    def _count(self, piece: bytes) -> None:
        self.body += piece
        if len(self.body) > self.max_bytes:
            raise _Failure("TooLarge", f"decompressed body exceeds the cap of {self.max_bytes:,} bytes")


def _read_capped(response: httpx.Response, limits: FetchLimits, deadline: float) -> bytes:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    declared = response.headers.get("content-length")
    if (
        declared
        and re.fullmatch(r"[0-9]{1,20}", declared)
        and int(declared) > limits.max_bytes
        and encoding == "identity"
    ):
        raise _Failure("TooLarge", f"body of {int(declared):,} bytes exceeds the cap of {limits.max_bytes:,}")
    decoder = _Decoder(encoding, limits.max_bytes)
    for chunk in response.iter_raw():
        decoder.feed(chunk)
        # Our own clients stop at the deadline inside the socket; this also bounds a caller's client.
        if time.monotonic() > deadline:
            raise _Failure("Timeout", _total_timeout_message(limits))
    return decoder.finish()


def _total_timeout_message(limits: FetchLimits) -> str:
    return f"no answer in time: fetching one source is capped at {limits.total_timeout:g} s in total"


def _fetch_http(
    request: FetchRequest, client: httpx.Client, limits: FetchLimits, outcome: FetchOutcome, deadline: float
) -> bytes | None:
    """One attempt, following redirects by hand so permanent moves are recorded."""
    headers = {}
    if etag := _validator(request.etag):
        headers["If-None-Match"] = etag
    if last_modified := _validator(request.last_modified):
        headers["If-Modified-Since"] = last_modified
    outcome.conditional = bool(headers)
    url = request.url
    seen = {url}
    permanent = True
    from_public_server = False  # whether the last redirect came from a public server
    for _hop in range(limits.max_redirects + 1):
        refusing = internal_addresses_refused.set(from_public_server)
        try:
            with client.stream("GET", url, headers=headers) as response:
                outcome.status = response.status_code
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise _Failure(
                            "BadRedirect", f"HTTP {response.status_code} without a Location header"
                        )
                    try:
                        target = urljoin(url, location)
                        scheme = urlsplit(target).scheme
                    except ValueError as exc:
                        reason = f"redirect to an invalid URL {location!r}: {exc}"
                        raise _Failure("BadRedirect", reason) from exc
                    if scheme not in ("http", "https"):
                        raise _Failure("BadRedirect", f"redirect to a non-HTTP URL {target!r} refused")
                    if target in seen:
                        raise _Failure("RedirectLoop", f"redirect loop: {target} was already visited")
                    sender = _server_address(response)
                    if reason := refused_redirect(url, target, None if sender is None else [sender]):
                        raise _Failure("BadRedirect", reason)
                    from_public_server = sender is None or not is_internal_address(sender)
                    permanent = permanent and response.status_code in _PERMANENT
                    seen.add(target)
                    url = target
                    continue
                outcome.final_url = url
                if url != request.url and permanent:
                    outcome.permanent_redirect = url
                if response.status_code == 304:
                    if not headers:
                        raise _Failure("HTTPError", "HTTP 304 Not Modified to a request naming no version")
                    outcome.not_modified = True
                    return None
                if response.status_code >= 400:
                    raise _Failure(
                        "HTTPError",
                        f"HTTP {response.status_code} {response.reason_phrase}",
                        response.status_code,
                        _retry_after_seconds(response.headers.get("retry-after")),
                    )
                body = _read_capped(response, limits, deadline)
                outcome.content_type = response.headers.get("content-type")
                outcome.etag = _validator(response.headers.get("etag"))
                outcome.last_modified = _validator(response.headers.get("last-modified"))
                return body
        except RedirectRefused as exc:
            raise _Failure("BadRedirect", str(exc)) from exc
        except httpx.TimeoutException as exc:
            if time.monotonic() >= deadline:
                raise _Failure("Timeout", _total_timeout_message(limits)) from exc
            raise _Failure("Timeout", f"{type(exc).__name__}: no answer in time") from exc
        except httpx.TransportError as exc:
            raise _Failure(type(exc).__name__, str(exc) or type(exc).__name__) from exc
        except httpx.InvalidURL as exc:
            raise _Failure("InvalidURL", f"{url!r}: {exc}") from exc
        finally:
            internal_addresses_refused.reset(refusing)
    raise _Failure("RedirectLoop", f"more than {limits.max_redirects} redirects")


def _server_address(response: httpx.Response) -> str | None:
    """The IP address the response came from, when the connection says."""
    stream = response.extensions.get("network_stream")
    try:
        peer = stream.get_extra_info("server_addr") if stream is not None else None
    except OSError:  # the connection is gone already
        return None
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


def fetch(
    request: FetchRequest,
    blobs: BlobStore,
    *,
    client: httpx.Client | None = None,
    limits: FetchLimits | None = None,
) -> FetchOutcome:
    """Fetch one source. Never raises for a source's own failures: the outcome says."""
    limits = limits or FetchLimits()
    outcome = FetchOutcome(
        source_id=request.source_id,
        url=request.url,
        kind=request.kind,
        fetched_at=_now_iso(),
        ok=False,
        language=request.language,
    )
    started = time.monotonic()
    try:
        body = _fetch_body(request, client, limits, outcome)
        outcome.elapsed_ms = int((time.monotonic() - started) * 1000)
        if body is not None:
            outcome.bytes = len(body)
            outcome.body_sha256 = _store(blobs, body)
        outcome.ok = True
    except _Failure as failure:
        outcome.error_class = failure.error_class
        outcome.error_message = failure.message
        if failure.status in _BACK_OFF_STATUSES and failure.retry_after is not None:
            outcome.retry_after_until = _retry_after_until(failure.retry_after)
    except Exception as exc:  # whatever goes wrong with one source, the run goes on and says so
        outcome.error_class = type(exc).__name__
        outcome.error_message = f"unexpected error: {exc}"
    if outcome.elapsed_ms is None:
        outcome.elapsed_ms = int((time.monotonic() - started) * 1000)
    return outcome


def _fetch_body(
    request: FetchRequest, client: httpx.Client | None, limits: FetchLimits, outcome: FetchOutcome
) -> bytes | None:
    if urlsplit(request.url).scheme not in ("http", "https"):
        outcome.attempts = 1
        body = _read_file(Path(request.url), limits)
        outcome.final_url = request.url
        return body
    deadline = time.monotonic() + limits.total_timeout
    token = fetch_deadline.set(deadline)
    own_client = client is None
    client = client or make_client(limits)
    try:
        return _with_retries(request, client, limits, outcome, deadline)
    finally:
        fetch_deadline.reset(token)
        if own_client:
            client.close()


def _store(blobs: BlobStore, body: bytes) -> str:
    try:
        return blobs.put(body)
    except OSError as exc:
        raise _Failure(
            "StorageError", f"cannot keep the body in the blob store {blobs.root}: {exc.strerror or exc}"
        ) from exc


def _with_retries(
    request: FetchRequest, client: httpx.Client, limits: FetchLimits, outcome: FetchOutcome, deadline: float
) -> bytes | None:
    for attempt in range(1, limits.max_attempts + 1):
        outcome.attempts = attempt
        try:
            return _fetch_http(request, client, limits, outcome, deadline)
        except _Failure as failure:
            retryable = failure.status in _RETRYABLE or failure.error_class in (
                "Timeout",
                "ConnectError",
                "ReadError",
                "RemoteProtocolError",
            )
            if not retryable or attempt == limits.max_attempts or time.monotonic() >= deadline:
                raise
            wait = limits.backoff_seconds * 2 ** (attempt - 1)
            retry_after = failure.retry_after
            if retry_after is not None:
                if retry_after > limits.max_retry_after:
                    failure.message += f" (server asks to retry after {retry_after:.0f} s; not waiting)"
                    raise
                wait = max(wait, retry_after)
            if time.monotonic() + wait >= deadline:
                failure.message += f" (no time left to retry within {limits.total_timeout:g} s)"
                raise
            time.sleep(wait)
    raise AssertionError("unreachable")


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def _refuse_unless_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    raise _Failure("NotARegularFile", f"{path} is {kind}; a local source must be a regular file")


def _read_file(path: Path, limits: FetchLimits) -> bytes:
    try:
        _refuse_unless_regular(path, os.stat(path).st_mode)
        # Non-blocking: a FIFO put in the file's place after the check must not wait for a writer.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(descriptor, "rb") as handle:
            status = os.fstat(handle.fileno())
            _refuse_unless_regular(path, status.st_mode)
            if status.st_size > limits.max_bytes:
                raise _Failure(
                    "TooLarge", f"file of {status.st_size:,} bytes exceeds the cap of {limits.max_bytes:,}"
                )
            # One byte past the cap, whatever the size said: the file may grow while we read.
            body = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise _Failure(type(exc).__name__, f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # e.g. a NUL character in the path
        raise _Failure("BadPath", f"cannot read {path!r}: {exc}") from exc
    if len(body) > limits.max_bytes:
        raise _Failure("TooLarge", f"file grew past the cap of {limits.max_bytes:,} bytes while read")
    return body


def make_client(limits: FetchLimits | None = None) -> httpx.Client:
    """An HTTP client with our timeouts and User-Agent; reuse it across sources.

    Its connections also keep to the deadline of the fetch using them (``total_timeout``).
    """
    limits = limits or FetchLimits()
    return httpx.Client(
        transport=DeadlineTransport(),
        timeout=httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout),
        headers={
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "gzip, deflate",
            "Accept": "application/rss+xml, application/atom+xml, "
            "application/xml;q=0.9, application/json;q=0.9, text/xml;q=0.8, */*;q=0.5",
        },
        follow_redirects=False,
        trust_env=False,
    )
