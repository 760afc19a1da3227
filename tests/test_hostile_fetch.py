"""The fetcher and the sources file hold their limits against hostile servers and careless operators.

Every server here listens on 127.0.0.1; redirect rules for public addresses are
checked on literal addresses, so no name is ever looked up beyond this machine.
"""

from __future__ import annotations

import gzip
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from ingestion._demo.localserver import LocalServer, Route
from ingestion._demo.run import DEMO_DIR
from ingestion._log.blobs import BlobStore
from ingestion._model import FetchOutcome, FetchRequest
from ingestion._sources.config import MAX_CONFIG_BYTES, Source, load_sources, parse_sources
from ingestion._sources.fetch import FetchLimits, fetch, make_client
from ingestion._sources.network import (
    RedirectRefused,
    internal_addresses_refused,
    is_internal_address,
    lookup,
    redirect_leads_inward,
    refused_redirect,
)
from ingestion._sources.plan import fetch_all
from ingestion.exceptions import ConfigError

from .feeds import item, rss

QUICK = FetchLimits(
    connect_timeout=1,
    read_timeout=1,
    total_timeout=2,
    max_attempts=3,
    backoff_seconds=0.01,
    max_bytes=100_000,
)


def request_for(url: str, source_id: str = "src") -> FetchRequest:
    return FetchRequest(source_id=source_id, url=url, kind="rss")


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- a server that drips its answer -------------------------------------------------------


class DrippingServer:
    """Answers each request with ``head`` at once, then ``drip`` one byte per ``interval``
    seconds: every byte comes well within any read timeout, the whole never does."""

    def __init__(self, head: bytes, drip: bytes, interval: float = 0.5) -> None:
        self.head, self.drip, self.interval = head, drip, interval
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def url(self, path: str = "/feed") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> DrippingServer:
        self._start(self._accept)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._start(self._answer, connection)

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.settimeout(5)
                connection.recv(65536)
                connection.sendall(self.head)
                for byte in self.drip:
                    if self._stop.wait(self.interval):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                return  # the client hung up, as it should


DRIPPED_HEADERS = (b"HTTP/1.1 200 OK\r\n", b"X-Drip: " + b"a" * 200)
DRIPPED_BODY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 400\r\n\r\n",
    b"<" * 200,
)


@pytest.mark.parametrize(("head", "drip"), [DRIPPED_HEADERS, DRIPPED_BODY], ids=["headers", "body"])
def test_a_dripping_server_is_cut_off_at_the_total_timeout(tmp_path: Path, head: bytes, drip: bytes) -> None:
    with DrippingServer(head, drip) as server:
        started = time.monotonic()
        outcome = fetch(request_for(server.url()), BlobStore(tmp_path / "blobs"), limits=QUICK)
        elapsed = time.monotonic() - started
    assert not outcome.ok
    assert outcome.error_class == "Timeout"
    assert "2 s in total" in (outcome.error_message or "")
    # Retries share the one deadline: no second attempt runs past it.
    assert QUICK.total_timeout - 0.1 <= elapsed < QUICK.total_timeout + 1.0, elapsed


def test_the_deadline_is_per_source_when_sources_are_fetched_together(tmp_path: Path) -> None:
    with DrippingServer(*DRIPPED_HEADERS) as dripping, LocalServer({"/ok": Route(rss([item(1)]))}) as good:
        requests = [request_for(dripping.url(), "dripping"), request_for(good.url("/ok"), "good")]
        started = time.monotonic()
        outcomes = fetch_all(requests, BlobStore(tmp_path / "blobs"), limits=QUICK)
        elapsed = time.monotonic() - started
    by_source = {outcome.source_id: outcome for outcome in outcomes}
    assert by_source["good"].ok
    assert by_source["dripping"].error_class == "Timeout"
    assert elapsed < QUICK.total_timeout + 1.0, elapsed


# -- local files ---------------------------------------------------------------------------


def fetch_within(
    seconds: float, request: FetchRequest, blobs: BlobStore, limits: FetchLimits
) -> FetchOutcome:
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fetch, request, blobs, limits=limits).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "feed.xml"
    os.mkfifo(fifo)
    try:
        outcome = fetch_within(10, request_for(str(fifo)), BlobStore(tmp_path / "blobs"), QUICK)
    except FutureTimeout:
        # Release the blocked reader so the test process is not left with a stuck thread.
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO source hung")
    assert outcome.error_class == "NotARegularFile"
    assert "named pipe" in (outcome.error_message or "")


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/dev/zero", "character device"), ("/dev/null", "character device"), ("{tmp}", "directory")],
)
def test_devices_and_directories_are_not_sources(tmp_path: Path, path: str, kind: str) -> None:
    path = path.format(tmp=tmp_path)
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    outcome = fetch(request_for(path), BlobStore(tmp_path / "blobs"), limits=QUICK)
    assert not outcome.ok
    assert outcome.error_class == "NotARegularFile"
    assert kind in (outcome.error_message or "") and "regular file" in (outcome.error_message or "")


def test_a_socket_is_not_a_source(tmp_path: Path) -> None:
    path = tmp_path / "feed.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        outcome = fetch(request_for(str(path)), BlobStore(tmp_path / "blobs"), limits=QUICK)
    assert outcome.error_class == "NotARegularFile"
    assert "socket" in (outcome.error_message or "")


def test_a_file_larger_than_its_size_says_is_still_capped(tmp_path: Path) -> None:
    # Files under /proc report a size of 0 and still have content: like a file that
    # grows while it is read, only counting the bytes read catches them.
    proc_file = Path("/proc/self/maps")
    if not proc_file.exists():
        pytest.skip("no /proc here")
    assert proc_file.stat().st_size == 0
    outcome = fetch(
        request_for(str(proc_file)), BlobStore(tmp_path / "blobs"), limits=replace(QUICK, max_bytes=100)
    )
    assert not outcome.ok
    assert outcome.error_class == "TooLarge"


def test_a_regular_file_within_the_cap_is_read(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([item(1)]))
    outcome = fetch(request_for(str(feed)), BlobStore(tmp_path / "blobs"), limits=QUICK)
    assert outcome.ok and outcome.bytes == feed.stat().st_size


# -- redirects into internal networks ---------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "0.0.0.0",
        "0.1.2.3",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fe80::1%eth0",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.5",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",  # NAT64
        "::ffff:0:7f00:1",  # IPv4-translated
        "::127.0.0.1",  # IPv4-compatible
        "2002:7f00:1::",  # 6to4
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, its client at 127.0.0.1
        "192.0.0.8",
        "198.18.0.1",
    ],
)
def test_internal_addresses(address: str) -> None:
    assert is_internal_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",
        "172.15.255.255",
        "100.128.0.1",
        "100.63.255.255",
        "11.0.0.1",
        "192.169.0.1",
        "2606:2800:220:1:248:1893:25c8:1946",
        "::ffff:93.184.216.34",
        "64:ff9b::5db8:d822",
        "2002:5db8:d822::1",
    ],
)
def test_public_addresses(address: str) -> None:
    assert not is_internal_address(address)


@pytest.mark.parametrize(
    ("source", "target", "refused"),
    [
        (["93.184.216.34"], ["127.0.0.1"], True),
        (["93.184.216.34"], ["169.254.169.254"], True),
        (["93.184.216.34"], ["::ffff:192.168.0.1"], True),
        (["93.184.216.34"], ["8.8.8.8", "10.0.0.1"], True),  # any internal address of the target
        (["93.184.216.34", "10.0.0.1"], ["10.0.0.2"], True),  # a source is internal only if all are
        ([], ["127.0.0.1"], True),  # a source we cannot place counts as public
        (["93.184.216.34"], ["8.8.8.8"], False),
        (["127.0.0.1"], ["127.0.0.1"], False),  # an internal feed may redirect within
        (["10.0.0.1"], ["192.168.0.7", "fd00::7"], False),
        (["10.0.0.1"], ["93.184.216.34"], False),
        (["93.184.216.34"], [], False),  # unresolvable: the request itself will fail
    ],
)
def test_which_redirects_lead_inward(source: list[str], target: list[str], refused: bool) -> None:
    assert redirect_leads_inward(source, target) is refused


def test_a_redirect_from_a_public_address_to_loopback_is_refused_with_a_reason() -> None:
    reason = refused_redirect("http://93.184.216.34/feed", "http://127.0.0.1:8080/admin")
    assert reason and "refused" in reason and "127.0.0.1" in reason
    assert refused_redirect("http://93.184.216.34/feed", "http://[::1]/x")
    assert refused_redirect("http://[2606:2800:220:1::1]/feed", "http://169.254.169.254/latest/")
    assert refused_redirect("http://93.184.216.34/feed", "http://93.184.216.35/feed") is None
    assert refused_redirect("http://10.0.0.1/feed", "http://10.0.0.2/feed") is None


def test_a_connection_opened_for_a_public_servers_redirect_is_checked_where_it_goes(server) -> None:
    # A name can resolve to a public address for the check and to an internal one for the
    # connection: the connection itself refuses (``fetch`` sets the flag after a public
    # server's redirect; no public server is reachable from a test).
    server.routes["/admin"] = Route(b"secret")
    refusing = internal_addresses_refused.set(True)
    try:
        with (
            make_client(QUICK) as client,
            pytest.raises(RedirectRefused, match=r"internal address 127\.0\.0\.1"),
        ):
            client.get(server.url("/admin"))
    finally:
        internal_addresses_refused.reset(refusing)
    with make_client(QUICK) as client:
        assert client.get(server.url("/admin")).content == b"secret"


def test_names_are_looked_up_within_the_time_given() -> None:
    assert "127.0.0.1" in lookup("localhost", 5.0)
    assert lookup("::1", 0.0) == ["::1"]  # an address is not looked up


def test_an_internal_source_may_redirect_to_another_internal_server(tmp_path: Path) -> None:
    with LocalServer({"/feed": Route(rss([item(1)]))}) as target:
        moved = Route(status=301, headers={"Location": target.url("/feed")})
        with LocalServer({"/old": moved}) as source:
            outcome = fetch(request_for(source.url("/old")), BlobStore(tmp_path / "blobs"), limits=QUICK)
    assert outcome.ok, outcome.error_message
    assert outcome.final_url == target.url("/feed")
    assert outcome.permanent_redirect == target.url("/feed")


# -- Retry-After remembered ---------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_a_long_retry_after_is_recorded_not_slept(server, tmp_path: Path, status: int) -> None:
    server.routes["/busy"] = Route(status=status, headers={"Retry-After": "100000"})
    started = time.monotonic()
    outcome = fetch(request_for(server.url("/busy")), BlobStore(tmp_path / "blobs"), limits=QUICK)
    assert time.monotonic() - started < 1.0, "the fetch waited"
    assert not outcome.ok and outcome.status == status
    assert outcome.retry_after_until is not None
    until = datetime.fromisoformat(outcome.retry_after_until)
    assert abs(until - (utc_now() + timedelta(seconds=100000))) < timedelta(minutes=1)
    assert FetchOutcome.from_dict(outcome.to_dict()) == outcome


def test_retry_after_is_capped_at_a_week(server, tmp_path: Path) -> None:
    server.routes["/busy"] = Route(status=429, headers={"Retry-After": "9" * 30})
    outcome = fetch(request_for(server.url("/busy")), BlobStore(tmp_path / "blobs"), limits=QUICK)
    until = datetime.fromisoformat(outcome.retry_after_until or "")
    assert abs(until - (utc_now() + timedelta(days=7))) < timedelta(minutes=1)


def test_retry_after_is_not_kept_once_the_server_answers(server, tmp_path: Path) -> None:
    answers = iter([Route(status=429, headers={"Retry-After": "0"}), Route(rss([item(1)]))])
    server.routes["/flaky"] = lambda _request: next(answers)
    outcome = fetch(request_for(server.url("/flaky")), BlobStore(tmp_path / "blobs"), limits=QUICK)
    assert outcome.ok and outcome.attempts == 2
    assert outcome.retry_after_until is None


def test_an_outcome_without_retry_after_until_still_loads() -> None:
    old = {
        "source_id": "a",
        "url": "http://127.0.0.1/",
        "kind": "rss",
        "fetched_at": "2024-01-01T00:00:00",
        "ok": True,
    }
    assert FetchOutcome.from_dict(old).retry_after_until is None


# -- the sources file -------------------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yml"
    path.write_text(text, encoding="utf-8")
    return path


def one_source(setting: str) -> str:
    return f"sources:\n  - id: paper\n    url: http://127.0.0.1/feed.xml\n    {setting}\n"


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("politeness_delay_seconds: 1e9", "from 0 to 60"),
        ("politeness_delay_seconds: 1.0e9", "from 0 to 60"),
        ("politeness_delay_seconds: .nan", "from 0 to 60"),
        ("politeness_delay_seconds: .inf", "from 0 to 60"),
        ("politeness_delay_seconds: -1", "from 0 to 60"),
        ("politeness_delay_seconds: true", "from 0 to 60"),
        ("politeness_delay_seconds: soon", "from 0 to 60"),
        ("politeness_delay_seconds: [1, 2]", "from 0 to 60"),
        ("poll_interval_minutes: 1000000", "from 0 to 10080"),
        ("poll_interval_minutes: 7.5", "whole number"),
        ("poll_interval_minutes: -5", "from 0 to 10080"),
        ("poll_interval_minutes: .nan", "from 0 to 10080"),
        ("poll_interval_minutes: yes", "from 0 to 10080"),
        ("poll_interval_minutes: null", "from 0 to 10080"),
        ("language: 5", "language tag"),
        ("language: [en]", "language tag"),
        ("language: the english language", "language tag"),
        ("kind: 3", "is not one of"),
        ("name: [a, b]", "name must be text"),
        ("notes: " + "x" * 3000, "notes must be text"),
    ],
)
def test_bad_settings_name_the_source_the_key_and_the_range(tmp_path: Path, setting: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_sources(write_config(tmp_path, one_source(setting)))
    message = str(caught.value)
    assert "'paper'" in message and setting.split(":")[0] in message and words in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("sources:\n  - id: 123\n    url: http://127.0.0.1/\n", "id 123 must be text"),
        ("sources:\n  - id: [a]\n    url: http://127.0.0.1/\n", "source #1: id"),
        ("sources:\n  - id: paper\n    url: [http://127.0.0.1/]\n", "'url' is required and must be text"),
        ("sources:\n  - id: paper\n    url: 5\n", "'url' is required and must be text"),
        ("sources:\n  - id: paper\n    url: http://127.0.0.1:99999/\n", "not a valid URL"),
        ("sources:\n  - id: paper\n    url: http:///feed.xml\n", "has no host"),
        ('sources:\n  - id: paper\n    url: "feed\\0.xml"\n', "control characters"),
        ('sources:\n  - id: paper\n    url: "http://127.0.0.1/a\\x85b"\n', "control characters"),
        ('sources:\n  - id: paper\n    url: "http://127.0.0.1/\\u202egpj.xml"\n', "control characters"),
        (
            "sources:\n  - id: paper\n    url: http://127.0.0.1/\nsource: []\n",
            "unknown top-level keys ['source']",
        ),
        ("sources:\n  - id: paper\n    url: http://127.0.0.1/\nfeeds: {}\n", "allowed: sources, defaults"),
        (
            "defaults: [1]\nsources:\n  - id: paper\n    url: http://127.0.0.1/\n",
            "'defaults:' must be a mapping",
        ),
        (
            "defaults:\n  politeness_delay_seconds: .nan\nsources:\n  - id: paper\n    url: http://127.0.0.1/\n",
            "defaults: politeness_delay_seconds must be a number from 0 to 60",
        ),
        (
            "defaults:\n  poll_interval_minutes: 99999999\nsources:\n  - id: paper\n    url: http://127.0.0.1/\n",
            "defaults: poll_interval_minutes",
        ),
        (
            "defaults:\n  url: http://127.0.0.1/\nsources:\n  - id: paper\n    url: http://127.0.0.1/\n",
            "defaults: keys ['url'] cannot be set here",
        ),
        # YAML keeps the last of two equal keys: a list of sources, or a url, would go unnoticed.
        (
            "sources:\n  - id: paper\n    url: http://127.0.0.1/\nsources:\n  - id: wire\n    url: http://127.0.0.1/\n",
            "key 'sources' appears twice",
        ),
        (
            "sources:\n  - id: paper\n    url: http://127.0.0.1/a\n    url: http://127.0.0.1/b\n",
            "key 'url' appears twice",
        ),
        (one_source("poll_interval_minutes: 1" + "0" * 400), "poll_interval_minutes must be a whole number"),
        (one_source("politeness_delay_seconds: 1" + "0" * 400), "politeness_delay_seconds must be a number"),
        (one_source("notes: 1" + "0" * 5000), "holds a value that cannot be read"),
        (one_source('language: "en\\n"'), "must be a language tag"),
        ("sources:\n  - id: paper\n    url: ~nosuchuser-here/feed.xml\n", "not a usable file path"),
        (
            "sources:\n  - id: paper\n    url: http://reader:secret@127.0.0.1/feed.xml\n",
            "names a user or password",
        ),
    ],
)
def test_bad_sources_files_are_refused_with_a_clear_message(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_sources(write_config(tmp_path, text))
    assert words in str(caught.value)


def test_good_settings_and_defaults_are_accepted(tmp_path: Path) -> None:
    text = (
        "defaults:\n  politeness_delay_seconds: 0\n  language: pt-BR\n  poll_interval_minutes: 0\n"
        "sources:\n"
        "  - id: paper\n    url: http://127.0.0.1/feed.xml\n"
        "  - id: wire\n    url: http://127.0.0.1/wire.json\n    kind: NINJS\n"
        "    politeness_delay_seconds: 1e1\n    poll_interval_minutes: 10080\n    language: null\n"
    )
    paper, wire = load_sources(write_config(tmp_path, text))
    assert (paper.politeness_delay_seconds, paper.poll_interval_minutes, paper.language) == (0.0, 0, "pt-BR")
    # YAML 1.1 reads 1e1 (no dot) as text; it is still the number ten.
    assert (wire.kind, wire.politeness_delay_seconds, wire.poll_interval_minutes) == ("ninjs", 10.0, 10080)
    assert wire.language is None


def test_the_demo_sources_file_is_valid() -> None:
    text = (DEMO_DIR / "feeds.yml").read_text(encoding="utf-8").replace("{base}", "http://127.0.0.1:1")
    assert len(parse_sources(yaml.safe_load(text), DEMO_DIR)) >= 6


def test_an_oversized_sources_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yml"
    with open(path, "wb") as handle:
        handle.write(one_source("name: big").encode())
        handle.write(b"#" * MAX_CONFIG_BYTES + b"\n")
    with pytest.raises(ConfigError, match="larger than 10 MB"):
        load_sources(path)


def test_the_sources_file_cannot_be_a_device(tmp_path: Path) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="larger than"):
        load_sources("/dev/zero")
    assert time.monotonic() - started < 5


BILLION_LAUGHS = "\n".join(
    [
        'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]" for level in range(1, 10)),
        "sources: *a9",
    ]
)


# Each mapping merges the one before: building it copies all of them (quadratic).
MERGE_BOMB = "\n".join(
    ["a0: &a0 {k0: 1}", *(f"a{n}: &a{n} {{<<: *a{n - 1}, k{n}: 1}}" for n in range(1, 3000)), "sources: []"]
)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (BILLION_LAUGHS, "more than 1,000,000 values"),
        (MERGE_BOMB, "more than 1,000,000 values"),
        ("defaults: &loop {kind: rss}\nsources: &s [*s]\n", "more than 1,000,000 values"),
        ("sources: " + "[" * 5000 + "]" * 5000 + "\n", "not valid YAML"),
    ],
    ids=["billion-laughs", "merge-keys", "self-reference", "deep-nesting"],
)
def test_yaml_bombs_are_refused_quickly(tmp_path: Path, text: str, words: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_sources(write_config(tmp_path, text))
    assert time.monotonic() - started < 10
    assert words in str(caught.value)


def test_merge_keys_within_the_budget_still_work(tmp_path: Path) -> None:
    text = (
        "defaults: &shared {kind: rss, poll_interval_minutes: 5}\n"
        "sources:\n  - {<<: *shared, id: paper, url: http://127.0.0.1/feed.xml, poll_interval_minutes: 7}\n"
    )
    [paper] = load_sources(write_config(tmp_path, text))
    assert (paper.kind, paper.poll_interval_minutes) == ("rss", 7)


def test_politeness_is_per_server_whatever_the_port() -> None:
    hosts = {
        Source(str(n), url).host
        for n, url in enumerate(["http://Example.com/a", "https://example.com:8443/b"])
    }
    assert hosts == {"example.com"}


def test_a_sources_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yml"
    path.write_bytes(b"sources:\n  - id: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_sources(path)


# -- compressed bodies and odd headers ---------------------------------------------------------

FEED = rss([item(n) for n in range(1, 4)])
PATIENT = replace(QUICK, total_timeout=30, read_timeout=10)


def fetched_body(outcome: FetchOutcome, tmp_path: Path) -> bytes:
    assert outcome.ok, outcome.error_message
    assert outcome.body_sha256 is not None
    return BlobStore(tmp_path / "blobs").get(outcome.body_sha256)


def fetch_route(server, tmp_path: Path, route: Route, limits: FetchLimits = QUICK) -> FetchOutcome:
    server.routes["/feed"] = route
    return fetch(request_for(server.url("/feed")), BlobStore(tmp_path / "blobs"), limits=limits)


def gzipped(body: bytes) -> Route:
    return Route(body, headers={"Content-Encoding": "gzip"})


def test_a_compressed_body_cut_short_is_a_failure_not_a_shorter_feed(server, tmp_path: Path) -> None:
    whole = gzip.compress(FEED)
    outcome = fetch_route(server, tmp_path, gzipped(whole[: len(whole) // 2]))
    assert not outcome.ok and outcome.error_class == "DecodingError"
    assert "ends before its compressed stream does" in (outcome.error_message or "")


def test_gzip_members_follow_each_other_and_zero_padding_is_allowed(server, tmp_path: Path) -> None:
    half = len(FEED) // 2
    two_members = gzip.compress(FEED[:half]) + gzip.compress(FEED[half:])
    assert fetched_body(fetch_route(server, tmp_path, gzipped(two_members)), tmp_path) == FEED
    padded = gzip.compress(FEED) + b"\0" * 512
    assert fetched_body(fetch_route(server, tmp_path, gzipped(padded)), tmp_path) == FEED


@pytest.mark.parametrize(
    ("after", "error_class", "words"),
    [
        (b"<rss>not compressed</rss>", "DecodingError", "data after the end"),
        (b"\0" * 300_000, "TooLarge", ""),
    ],
    ids=["garbage", "endless-zeros"],
)
def test_what_follows_a_compressed_stream_is_bounded(
    server, tmp_path: Path, after: bytes, error_class: str, words: str
) -> None:
    outcome = fetch_route(server, tmp_path, gzipped(gzip.compress(FEED) + after))
    assert not outcome.ok and outcome.error_class == error_class
    assert words in (outcome.error_message or "")


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(FEED)),
        ("deflate", zlib.compress(FEED)),
        ("deflate", zlib.compress(FEED)[2:-4]),  # raw deflate, without zlib's header
        ("gzip", FEED),  # says compressed, is not
        ("gzip", gzip.compress(FEED[:100]) + gzip.compress(FEED[100:])),
    ],
    ids=["gzip", "zlib", "raw-deflate", "not-compressed", "two-members"],
)
def test_a_body_read_byte_by_byte_decodes_as_one_read_whole(
    tmp_path: Path, encoding: str, body: bytes
) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\nContent-Length: {len(body)}\r\n\r\n"
    with DrippingServer(head.encode(), body, interval=0.001) as server:
        outcome = fetch(request_for(server.url()), BlobStore(tmp_path / "blobs"), limits=PATIENT)
    assert fetched_body(outcome, tmp_path) == FEED


def test_a_validator_that_cannot_be_sent_back_is_not_kept(server, tmp_path: Path) -> None:
    outcome = fetch_route(
        server, tmp_path, Route(FEED, headers={"ETag": '"caf\u00e9"', "Last-Modified": "\u00e9"})
    )
    assert outcome.ok and outcome.etag is None and outcome.last_modified is None
    # One kept before: the fetch asks without it rather than failing.
    request = replace(request_for(server.url("/feed")), etag='"caf\u00e9"', last_modified="\u00e9")
    again = fetch(request, BlobStore(tmp_path / "blobs"), limits=QUICK)
    assert again.ok and not again.conditional, again.error_message


def test_not_modified_to_a_request_naming_no_version_is_a_failure(server, tmp_path: Path) -> None:
    outcome = fetch_route(server, tmp_path, Route(status=304))
    assert not outcome.ok and outcome.error_class == "HTTPError"
    assert "naming no version" in (outcome.error_message or "")


def test_odd_retry_after_and_location_headers_are_the_servers_failure(server, tmp_path: Path) -> None:
    busy = fetch_route(server, tmp_path, Route(status=503, headers={"Retry-After": "\u00b2"}))
    assert busy.error_class == "HTTPError" and busy.status == 503 and busy.retry_after_until is None
    moved = fetch_route(server, tmp_path, Route(status=302, headers={"Location": "http://[oops/feed"}))
    assert moved.error_class == "BadRedirect" and "invalid URL" in (moved.error_message or "")


# -- limits and failures that are ours --------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"total_timeout": float("nan")},
        {"total_timeout": float("inf")},
        {"total_timeout": 0},
        {"read_timeout": -1},
        {"connect_timeout": 1e9},
        {"max_bytes": 0},
        {"max_bytes": 2.5},
        {"max_bytes": True},
        {"max_attempts": 0},
        {"max_attempts": 1000},
        {"max_redirects": -1},
        {"backoff_seconds": 1e9},
        {"max_retry_after": float("nan")},
    ],
)
def test_absurd_fetch_limits_are_refused(change: dict[str, object]) -> None:
    name = next(iter(change))
    with pytest.raises(ConfigError, match=f"fetch limit {name}="):
        FetchLimits(**change)


def test_a_blob_store_that_cannot_be_written_fails_the_source_not_the_run(server, tmp_path: Path) -> None:
    # Tests run as root, where permissions do not stop writes: a file where the store's
    # directory should be does.
    not_a_directory = tmp_path / "blobs"
    not_a_directory.write_text("in the way")
    blobs = BlobStore(not_a_directory)
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([item(2)]))
    server.routes["/feed"] = Route(rss([item(1)]))
    requests = [request_for(server.url("/feed"), "web"), request_for(str(feed), "local")]
    outcomes = fetch_all(requests, blobs, limits=QUICK)
    for outcome in outcomes:
        assert not outcome.ok
        assert outcome.error_class == "StorageError"
        assert str(not_a_directory) in (outcome.error_message or "")
        assert outcome.body_sha256 is None


@pytest.mark.parametrize(
    ("url", "error_class"),
    [("http://127.0.0.1:abc/feed", "InvalidURL"), ("/tmp/feed\0.xml", "BadPath")],
)
def test_a_malformed_request_becomes_a_failed_outcome(tmp_path: Path, url: str, error_class: str) -> None:
    outcome = fetch(request_for(url), BlobStore(tmp_path / "blobs"), limits=QUICK)
    assert not outcome.ok and outcome.error_class == error_class
