"""Fetching one source: HTTP(S) with conditional GET, or a local file.

Fetching only fetches: it stores the body in the blob store and describes what
happened in a :class:`FetchOutcome`. It never touches DuckDB, so many fetches can
run in parallel (threads, or mapped Airflow tasks) while one writer appends.
"""

from __future__ import annotations

import email.utils
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from . import __version__
from ._blobs import BlobStore
from ._model import FetchOutcome, FetchRequest

USER_AGENT = f"newsroom/{__version__} (newsroom feed fetcher; python-httpx)"
_REDIRECTS = (301, 302, 303, 307, 308)
_PERMANENT = (301, 308)
_RETRYABLE = (429, 500, 502, 503, 504)


@dataclass(frozen=True, slots=True)
class FetchLimits:
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    #: Wall-clock cap for one attempt, so a server that drips bytes cannot hang us.
    total_timeout: float = 60.0
    #: Cap on the decompressed body (a gzip bomb stops here).
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    max_attempts: int = 3
    backoff_seconds: float = 2.0
    #: Longest Retry-After we are willing to sleep for inside one run.
    max_retry_after: float = 30.0


def _now_iso() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat()


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


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
    exactly, and lets a body that only claims to be compressed through as is.
    """

    def __init__(self, encoding: str, max_bytes: int) -> None:
        self.encoding = encoding
        self.max_bytes = max_bytes
        self.size = 0
        self._started = False
        self._passthrough = encoding not in ("gzip", "x-gzip", "deflate")
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS)
        self._raw_prefix = b""

    def feed(self, chunk: bytes) -> bytes:
        if self._passthrough:
            return self._count(chunk)
        if not self._started:
            self._started = True
            self._raw_prefix = chunk
            try:
                return self._inflate(chunk)
            except zlib.error:
                if self.encoding == "deflate":  # raw deflate stream without zlib header
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    try:
                        return self._inflate(chunk)
                    except zlib.error:
                        pass
                # Not compressed at all, whatever the header says.
                self._passthrough = True
                return self._count(chunk)
        try:
            return self._inflate(chunk)
        except zlib.error as exc:
            raise _Failure("DecodingError", f"{self.encoding} body is corrupt: {exc}") from exc

    def _inflate(self, chunk: bytes) -> bytes:
        out = []
        data = chunk
        while data:
            # max_length: never inflate more than the cap allows, however small the input.
            piece = self._z.decompress(data, self.max_bytes - self.size + 1)
            out.append(self._count(piece))
            data = self._z.unconsumed_tail
            if self._z.eof:
                break
        return b"".join(out)

    def _count(self, piece: bytes) -> bytes:
        self.size += len(piece)
        if self.size > self.max_bytes:
            raise _Failure("TooLarge", f"decompressed body exceeds the cap of {self.max_bytes:,} bytes")
        return piece


def _read_capped(response: httpx.Response, limits: FetchLimits, deadline: float) -> bytes:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes and encoding == "identity":
        raise _Failure("TooLarge", f"body of {int(declared):,} bytes exceeds the cap of {limits.max_bytes:,}")
    decoder = _Decoder(encoding, limits.max_bytes)
    chunks: list[bytes] = []
    for chunk in response.iter_raw():
        chunks.append(decoder.feed(chunk))
        if time.monotonic() > deadline:
            raise _Failure("Timeout", f"body not complete after {limits.total_timeout:.0f} s")
    return b"".join(chunks)


def _fetch_http(
    request: FetchRequest, client: httpx.Client, limits: FetchLimits, outcome: FetchOutcome
) -> bytes | None:
    """One attempt, following redirects by hand so permanent moves are recorded."""
    headers = {}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    outcome.conditional = bool(headers)
    url = request.url
    seen = {url}
    permanent = True
    deadline = time.monotonic() + limits.total_timeout
    for _hop in range(limits.max_redirects + 1):
        try:
            with client.stream("GET", url, headers=headers) as response:
                outcome.status = response.status_code
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise _Failure(
                            "BadRedirect", f"HTTP {response.status_code} without a Location header"
                        )
                    target = urljoin(url, location)
                    if urlsplit(target).scheme not in ("http", "https"):
                        raise _Failure("BadRedirect", f"redirect to a non-HTTP URL {target!r} refused")
                    if target in seen:
                        raise _Failure("RedirectLoop", f"redirect loop: {target} was already visited")
                    permanent = permanent and response.status_code in _PERMANENT
                    seen.add(target)
                    url = target
                    continue
                outcome.final_url = url
                if url != request.url and permanent:
                    outcome.permanent_redirect = url
                if response.status_code == 304:
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
                outcome.etag = response.headers.get("etag")
                outcome.last_modified = response.headers.get("last-modified")
                return body
        except httpx.TimeoutException as exc:
            raise _Failure("Timeout", f"{type(exc).__name__}: no answer in time") from exc
        except httpx.TransportError as exc:
            raise _Failure(type(exc).__name__, str(exc) or type(exc).__name__) from exc
    raise _Failure("RedirectLoop", f"more than {limits.max_redirects} redirects")


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
    body: bytes | None = None
    try:
        if urlsplit(request.url).scheme in ("http", "https"):
            own_client = client is None
            client = client or make_client(limits)
            try:
                body = _with_retries(request, client, limits, outcome)
            finally:
                if own_client:
                    client.close()
        else:
            outcome.attempts = 1
            body = _read_file(Path(request.url), limits)
            outcome.final_url = request.url
    except _Failure as failure:
        outcome.error_class = failure.error_class
        outcome.error_message = failure.message
        outcome.elapsed_ms = int((time.monotonic() - started) * 1000)
        return outcome
    outcome.elapsed_ms = int((time.monotonic() - started) * 1000)
    outcome.ok = True
    if body is not None:
        outcome.bytes = len(body)
        outcome.body_sha256 = blobs.put(body)
    return outcome


def _with_retries(
    request: FetchRequest, client: httpx.Client, limits: FetchLimits, outcome: FetchOutcome
) -> bytes | None:
    for attempt in range(1, limits.max_attempts + 1):
        outcome.attempts = attempt
        try:
            return _fetch_http(request, client, limits, outcome)
        except _Failure as failure:
            retryable = failure.status in _RETRYABLE or failure.error_class in (
                "Timeout",
                "ConnectError",
                "ReadError",
                "RemoteProtocolError",
            )
            if not retryable or attempt == limits.max_attempts:
                raise
            wait = limits.backoff_seconds * 2 ** (attempt - 1)
            retry_after = failure.retry_after
            if retry_after is not None:
                if retry_after > limits.max_retry_after:
                    failure.message += f" (server asks to retry after {retry_after:.0f} s; not waiting)"
                    raise
                wait = max(wait, retry_after)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _read_file(path: Path, limits: FetchLimits) -> bytes:
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise _Failure("TooLarge", f"file of {size:,} bytes exceeds the cap of {limits.max_bytes:,}")
        return path.read_bytes()
    except OSError as exc:
        raise _Failure(type(exc).__name__, f"cannot read {path}: {exc.strerror or exc}") from exc


def make_client(limits: FetchLimits | None = None) -> httpx.Client:
    """An HTTP client with our timeouts and User-Agent; reuse it across sources."""
    limits = limits or FetchLimits()
    return httpx.Client(
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
