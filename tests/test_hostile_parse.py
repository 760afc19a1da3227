"""Feeds built to hurt: adversarial markup, broken bytes, impossible dates,
control characters and non-web links. Parsing stays linear, keeps every other
field intact and never invents a time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from functools import partial
from pathlib import Path

import pytest

from ingestion._log.record import ingest
from ingestion._model import ParseResult
from ingestion._sources.config import Source
from ingestion._sources.dates import parse_datetime
from ingestion._sources.newsml import parse_newsml
from ingestion._sources.ninjs import parse_ninjs
from ingestion._sources.parse import parse_body
from ingestion._sources.rss import parse_rss
from ingestion._sources.rss_fast import parse_rss_fast
from ingestion._sources.text import html_to_text, one_line, web_url

from .feeds import item, rss

NOW = datetime(2026, 3, 10, 12, 0)


def parse(body: bytes, **kwargs: object) -> ParseResult:
    return parse_rss(body, source_id="hostile", url="https://hostile.example/feed", now=NOW, **kwargs)


# --- 1. Media captions: linear on any body -----------------------------------------------------

ADVERSARIAL = {
    "items never closed": "b'<media:title>' + b'<item><description>' * (MB // 19)",
    "items and entries never closed": "b'<media:text>' + b'<item><entry>' * (MB // 13)",
    "media descriptions never closed": (
        "b'<item><description>x</description>' + b'<media:description>' * (MB // 19) + b'</item>'"
    ),
    "media start tags never finished": (
        "b'<item><summary>x</summary>' + b'<media:title ' * (MB // 13) + b'</item>'"
    ),
    "nested items": "b'<item><content>' * (MB // 30) + b'<media:title>' + b'</item>' * (MB // 30)",
    "many captions to drop": (
        "b'<item><description>x</description>' + b'<media:title>t</media:title>' * (MB // 28) + b'</item>'"
    ),
}


@pytest.mark.parametrize("body", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_media_caption_pass_is_linear_on_adversarial_bodies(body: str) -> None:
    # In a child process so that a quadratic pass fails on the timeout instead of
    # holding the test run for hours (600 KB once took 286 s).
    script = textwrap.dedent(
        f"""
        import time
        from ingestion._sources.rss import _drop_media_captions
        MB = 5_000_000
        body = {body}
        started = time.perf_counter()
        _drop_media_captions(body)
        print(time.perf_counter() - started)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 5.0


def test_adversarial_markup_in_comments_parses_quickly_and_keeps_the_feed() -> None:
    # feedparser skips comments; the caption pass must get through them in linear time too.
    feed = rss([item(1, extra="MEDIA")]).replace(b"</channel>", b"ITEMS</channel>")
    script = textwrap.dedent(
        f"""
        import time
        from datetime import datetime
        from ingestion._sources.rss import parse_rss
        media = b"<!-- " + b"<media:description>" * 100_000 + b" -->"
        items = b"<!-- " + b"<item><entry>" * 100_000 + b" -->"
        body = {feed!r}.replace(b"MEDIA", media).replace(b"ITEMS", items)
        started = time.perf_counter()
        result = parse_rss(body, source_id="s", url="u", now=datetime(2026, 3, 10))
        print(time.perf_counter() - started, result.items[0].summary)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    elapsed, summary = done.stdout.strip().split(" ", 1)
    assert float(elapsed) < 10.0
    assert summary == "Summary of story 1."


def test_captions_go_from_items_with_text_and_stay_in_media_items() -> None:
    caption = "<media:description>Caption of the photo</media:description>"
    with_text = item(1, extra=caption)
    media_only = {"title": "A video", "guid": "urn:test:video", "extra": caption}
    first, second = parse(rss([with_text, media_only])).items
    assert first.summary == "Summary of story 1."
    assert "Caption" not in first.summary + first.body
    assert second.summary == "Caption of the photo"


# --- 2. Encoding: one bad byte spoils one character -----------------------------------------------


def _twenty_items() -> bytes:
    return rss([item(n, f"Zürich \u2013 story {n} café") for n in range(20)])


def test_one_invalid_byte_spoils_only_its_own_title() -> None:
    clean = _twenty_items()
    broken = clean.replace("story 7 café".encode(), b"story 7 caf\xe9")
    assert broken != clean
    good, bad = parse(clean), parse(broken)
    assert [i.title for i in good.items if i.identity != "urn:test:7"] == [
        i.title for i in bad.items if i.identity != "urn:test:7"
    ]
    assert [i.summary for i in good.items] == [i.summary for i in bad.items]
    [spoiled] = [i.title for i in bad.items if i.identity == "urn:test:7"]
    assert spoiled == "Zürich \u2013 story 7 caf\ufffd"
    assert good.warning is None
    assert bad.warning is not None and "U+FFFD" in bad.warning


def test_fixing_the_bad_byte_revises_only_that_item(tmp_path: Path, db_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(_twenty_items().replace("story 7 café".encode(), b"story 7 caf\xe9"))
    first = ingest([Source("enc", str(feed))], db_path)
    assert first.totals()["new"] == 20
    feed.write_bytes(_twenty_items())
    second = ingest([Source("enc", str(feed))], db_path)
    assert second.totals()["revised"] == 1 and second.totals()["new"] == 0


@pytest.mark.parametrize("declared", ["windows-1252", "iso-8859-1", "ISO-8859-15"])
def test_declared_single_byte_encodings_read_right(declared: str) -> None:
    title = "Café “quoted” in Zürich" if declared == "windows-1252" else "Café in Zürich"
    body = rss([item(1, title)]).replace(b'encoding="utf-8"', f'encoding="{declared}"'.encode())
    body = body.decode().encode(declared)
    result = parse(body)
    assert result.items[0].title == title
    assert result.warning is None


def test_http_charset_is_used_when_the_document_declares_nothing() -> None:
    body = rss([item(1, "Café in Zürich")]).replace(b' encoding="utf-8"', b"").decode().encode("cp1252")
    result = parse(body, content_type="application/rss+xml; charset=windows-1252")
    assert result.items[0].title == "Café in Zürich"
    assert result.warning is None


@pytest.mark.parametrize("path", ["product", "feedparser"])
def test_a_utf8_body_reads_the_same_whatever_single_byte_charset_the_server_names(path: str) -> None:
    """Two servers behind one name, one saying charset=iso-8859-1: the same UTF-8 bytes must
    not read two ways, or every fetch from the other server records a revision of every item."""
    body = rss([item(1, "Café in Zürich")]).replace(b' encoding="utf-8"', b"")
    read = partial(parse_body, "rss") if path == "product" else parse_rss
    headers = ("utf-8", "iso-8859-1", "windows-1251", None)
    titles = {
        read(
            body,
            source_id="s",
            url="https://hostile.example/feed",
            now=NOW,
            content_type=f"application/rss+xml; charset={charset}" if charset else "application/rss+xml",
        )
        .items[0]
        .title
        for charset in headers
    }
    assert titles == {"Café in Zürich"}


def test_undeclared_single_byte_feed_is_read_as_windows_1252_with_a_note() -> None:
    body = rss([item(1, "Café in Zürich")]).replace(b' encoding="utf-8"', b"").decode().encode("cp1252")
    result = parse(body)
    assert result.items[0].title == "Café in Zürich"
    assert result.warning is not None and "windows-1252" in result.warning


def test_byte_order_mark_decides_the_encoding() -> None:
    body = rss([item(1, "Café in Zürich")]).replace(b'encoding="utf-8"', b'encoding="utf-16"')
    result = parse(body.decode().encode("utf-16"), content_type="application/rss+xml; charset=iso-8859-1")
    assert result.items[0].title == "Café in Zürich"


# --- 3. Dates: an impossible date is no date ---------------------------------------------------------

IMPOSSIBLE = {
    "zone +9999": ("Mon, 09 Mar 2026 10:00:00 +9999", "zone offset"),
    "offset past 14 hours": ("2026-03-09T10:00:00+15:00", "beyond"),
    "30 February": ("2024-02-30T10:00:00Z", "day is out of range"),
    "30 February, RFC 822": ("Fri, 30 Feb 2024 10:00:00 GMT", "day is out of range"),
    "month 13": ("2024-13-01T10:00:00Z", "month must be in 1..12"),
    "hour 25": ("Mon, 09 Mar 2026 25:00:00 GMT", "hour must be in 0..23"),
    "year 10000": ("10000-01-01", "year 10000"),
    "unknown zone": ("Mon, 09 Mar 2026 10:00:00 XYZ", "unknown"),
    "military zone": ("Mon, 09 Mar 2026 10:00:00 A", "unknown"),
    "32 July": ("2003-07-32", "day is out of range"),
    "no day": ("2024-03", "names no day"),
}


@pytest.mark.parametrize(("raw", "reason"), IMPOSSIBLE.values(), ids=IMPOSSIBLE.keys())
def test_impossible_feed_dates_are_dropped_with_the_reason(raw: str, reason: str) -> None:
    extra = f"<atom:updated>{raw}</atom:updated>"
    body = rss([item(1, pubDate=raw, extra=extra)]).replace(
        b'<rss version="2.0">', b'<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">'
    )
    [parsed] = parse(body).items
    assert parsed.published_at is None and parsed.updated_at is None
    assert any(raw in issue and reason in issue for issue in parsed.issues), parsed.issues
    assert any(issue.startswith("updated date") for issue in parsed.issues), parsed.issues


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Mon, 09 Mar 2026 09:00:00 GMT", datetime(2026, 3, 9, 9, 0)),
        ("Mon, 09 Mar 2026 09:00:00 +0100", datetime(2026, 3, 9, 8, 0)),
        ("Mon, 9 Mar 2026 04:00 EST", datetime(2026, 3, 9, 9, 0)),
        ("Mon, 09 Mar 2026 11:00:00 CEST", datetime(2026, 3, 9, 9, 0)),
        ("09 Mar 26 09:00:00 Z", datetime(2026, 3, 9, 9, 0)),
        ("2026-03-09T09:00:00Z", datetime(2026, 3, 9, 9, 0)),
        ("2026-03-09T10:00:00.250+01:00", datetime(2026, 3, 9, 9, 0)),
        ("2026-03-09 09:00:00", datetime(2026, 3, 9, 9, 0)),
        ("2026-03-09", datetime(2026, 3, 9)),
        # Not a shape the strict reader knows: feedparser's reading, because it names the same day.
        ("Mar 09 2026 09:00:00 GMT", datetime(2026, 3, 9, 9, 0)),
    ],
)
def test_common_feed_dates_still_parse(raw: str, expected: datetime) -> None:
    [parsed] = parse(rss([item(1, pubDate=raw)])).items
    assert parsed.published_at == expected
    assert parsed.issues == []


def test_feedparser_reading_is_not_taken_when_it_rolled_the_date_over() -> None:
    [parsed] = parse(rss([item(1, pubDate="Feb 30 2024 10:00:00 GMT")])).items
    assert parsed.published_at is None
    assert parsed.issues and "not a date we can read" in parsed.issues[0]


@pytest.mark.parametrize(
    "raw",
    [
        "2024-02-30T10:00:00Z",
        "2024-13-01T10:00:00Z",
        "2024-01-01T25:00:00Z",
        "2024-01-01T10:00:00+99:99",
        "2024-01-01T10:00:00+23:00",
        "10000-01-01T00:00:00Z",
        "2003-07-32T00:00:00Z",
        "2024-01-01 10:00 XYZ",
        "March 9, 2026 10:00 XYZ",
        "March 9, 2026 10:00 UTC+3",
        "Mon, 09 Mar 2026 10:00:00 +9999",
    ],
)
def test_wire_dates_refuse_impossible_values(raw: str) -> None:
    assert parse_datetime(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-01T10:00:00+01:00", datetime(2024, 3, 1, 9, 0)),
        ("2024-03-01T12:30:00Z", datetime(2024, 3, 1, 12, 30)),
        ("2024-03-01T12:30:00.123456", datetime(2024, 3, 1, 12, 30, 0, 123456)),
        ("2014-03-10T08:00:00Z", datetime(2014, 3, 10, 8, 0)),
        ("Mon, 09 Mar 2026 09:00:00 GMT", datetime(2026, 3, 9, 9, 0)),
        ("March 9, 2026 10:00 EST", datetime(2026, 3, 9, 15, 0)),
        ("March 9, 2026 10:00", datetime(2026, 3, 9, 10, 0)),
    ],
)
def test_wire_dates_still_parse(raw: str, expected: datetime) -> None:
    assert parse_datetime(raw) == expected


# --- 4. Control characters ------------------------------------------------------------------------


def test_control_characters_never_reach_the_text() -> None:
    assert one_line("Title\x00 with\x1b[31m ESC\x7f and\x9b C1") == "Title with[31m ESC and C1"
    assert one_line("a\tb") == "a b"
    assert html_to_text("<p>one\x07</p><p>two\x1b</p>") == "one\ntwo"
    assert html_to_text("line one\nline\x00 two &#27;") == "line one\nline two"


def test_control_characters_are_stripped_from_feed_titles() -> None:
    [parsed] = parse(rss([item(1, "Breaking\x1b[2J news\x00")])).items
    assert parsed.title == "Breaking[2J news"


# --- 5. Links: only web pages are published ---------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://Example.org/a?utm_source=x", "https://example.org/a"),
        ("http://example.org", "http://example.org/"),
        ("javascript:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("mailto:desk@example.org", None),
        ("http:///no-host", None),
        ("http://example.org:99999/", None),
        (None, None),
    ],
)
def test_web_url(link: str | None, expected: str | None) -> None:
    assert web_url(link) == expected


def test_non_web_links_are_kept_raw_but_not_published() -> None:
    items = [
        {"title": "Script", "link": "javascript:alert(1)"},
        {"title": "Data", "guid": "urn:test:data", "link": "data:text/html,hi"},
        {"title": "Web", "link": "https://example.org/a?utm_source=rss"},
    ]
    script, data, web = parse(rss(items)).items
    assert (script.identity, script.link, script.url) == ("javascript:alert(1)", "javascript:alert(1)", None)
    assert (data.identity, data.link, data.url) == ("urn:test:data", "data:text/html,hi", None)
    assert any("not a web" in issue for issue in script.issues + data.issues)
    # An http(s) link gives the same identity as it always did.
    assert (web.identity, web.url, web.issues) == ("https://example.org/a", "https://example.org/a", [])


NEWSML_WITH_LINK = """<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/" guid="urn:newsml:example.com:1"
    version="1" standard="NewsML-G2" standardversion="2.34">
  <catalogRef href="http://www.iptc.org/std/catalog/catalog.IPTC-G2-Standards_39.xml"/>
  <itemMeta>
    <itemClass qcode="ninat:text"/><provider qcode="nprov:EXAMPLE"/>
    <versionCreated>2024-01-02T10:00:00+01:00</versionCreated>
    <link rel="irel:canonical" href="https://example.org:99999/a" contenttype="text/html"/>
  </itemMeta>
  <contentMeta><headline>Hi</headline></contentMeta>
</newsItem>"""


def test_wire_links_that_are_not_web_pages_are_not_published() -> None:
    # A port past 65535 used to raise out of the parser.
    link = "https://example.org:99999/a"
    [from_ninjs] = parse_ninjs(
        json.dumps({"uri": link, "headline": "Hi"}).encode(), source_id="w", url="u", now=NOW
    ).items
    [from_newsml] = parse_newsml(NEWSML_WITH_LINK.encode(), source_id="w", url="u", now=NOW).items
    assert (from_ninjs.link, from_ninjs.url) == (link, None)
    assert (from_newsml.link, from_newsml.url) == (link, None)


# --- 6. RSS 1.1 ------------------------------------------------------------------------------------

RSS11 = """<?xml version="1.0" encoding="utf-8"?>
<Channel xmlns="http://purl.org/net/rss1.1#" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         rdf:about="http://example.org/">
  <title>An RSS 1.1 feed</title>
  <link>http://example.org/</link>
  <description>Example</description>
  <items rdf:parseType="Collection">{items}</items>
</Channel>"""


def test_rss_1_1_items_are_read() -> None:
    items = """<item rdf:about="http://example.org/one"><title>First</title>
      <link>http://example.org/one</link><description>The first.</description></item>"""
    result = parse(RSS11.format(items=items).encode())
    assert [(i.identity, i.title, i.summary) for i in result.items] == [
        ("http://example.org/one", "First", "The first.")
    ]


def test_empty_rss_1_1_feed_is_a_feed() -> None:
    result = parse(RSS11.format(items="").encode())
    assert result.items == [] and result.feed_title == "An RSS 1.1 feed"


@pytest.mark.parametrize(
    "markup",
    [
        "<p " * 80_000,
        "&lt;" * 160_000,
        '<p id="x">a</p>' + "<a " * 40_000,
        '<p id="x">a</p>' + "<!--" * 40_000,
    ],
    ids=["unclosed-tags", "escaped-brackets", "unclosed-tags-parsed", "unclosed-comments"],
)
def test_text_cleaning_is_linear_where_no_tag_ends(markup: str) -> None:
    started = time.monotonic()
    html_to_text(markup)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "description",
    ["Line one&lt;/br&gt;Line two", "Before&lt;/hr&gt; after", "Intro &lt;figure title='x'/&gt; The rest"],
    ids=["closed-br", "closed-hr", "self-closed-figure"],
)
def test_markup_the_sanitizer_reads_otherwise_is_left_to_feedparser(description: str) -> None:
    body = rss([item(1)]).replace(
        b"<description>Summary", b"<description>" + description.encode() + b" Summary"
    )
    assert parse_rss_fast(body, now=NOW) is None


def test_an_item_with_attributes_is_left_to_feedparser() -> None:
    body = rss([item(1)]).replace(b"<item>", b'<item rdf:about="urn:about:1">', 1)
    assert parse_rss_fast(body, now=NOW) is None


def test_a_reference_to_no_character_spoils_one_character_not_the_feed() -> None:
    body = rss([item(1, title="Bad &#xD800; char"), item(2, title="Past the last &#1114112; code point")])
    titles = [entry.title for entry in parse(body).items]
    assert titles == ["Bad \ufffd char", "Past the last \ufffd code point"]


def test_a_caption_tag_written_inside_cdata_or_a_comment_cuts_nothing() -> None:
    def feed(caption: str) -> bytes:
        return (
            '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>F</title>'
            "<item><title>How to write Media RSS</title><guid>g1</guid><description><![CDATA[<p>Use "
            "<code><media:title></code> for the caption.</p>]]></description><!-- <media:text> -->"
            f"{caption}</item>"
            "<item><title>Second</title><guid>g2</guid><description>Two</description></item></channel></rss>"
        ).encode()

    for caption in ("", "<media:title>Photo caption</media:title>"):
        result = parse(feed(caption))
        assert [entry.guid for entry in result.items] == ["g1", "g2"], result.warning
        assert result.items[0].summary == "Use for the caption."


def test_a_windows_1252_feed_stays_windows_1252_when_two_letters_happen_to_be_utf8() -> None:
    # "ß“" is DF 93 in windows-1252: valid UTF-8 on its own. The other letters must not turn into U+FFFD.
    titles = ["Bürgermeister eröffnet Brücke", "Schöne Grüße aus Köln", "Viel „Spaß“ beim Fest"]
    body = rss([item(n, title=title) for n, title in enumerate(titles, 1)]).decode().encode("windows-1252")
    body = body.replace(b'encoding="utf-8"', b"")
    assert [entry.title for entry in parse(body).items] == titles


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("09.03.2026 10:00", None),  # March to a German wire, September to the US
        ("03/09/2026 10:00", None),
        ("13.03.2026 10:00", datetime(2026, 3, 13, 10, 0)),  # only one reading
        ("2026/03/09 10:00", datetime(2026, 3, 9, 10, 0)),  # year first: year, month, day
        ("9 March 2026 10:00", datetime(2026, 3, 9, 10, 0)),
    ],
)
def test_a_day_and_month_that_read_two_ways_are_no_date(text: str, read: datetime | None) -> None:
    assert parse_datetime(text) == read


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("Mar 09 2026 10:00:00 IST", None),  # India, Israel or Ireland
        ("Mar 09 2026 10:00:00 +1500", None),
        ("Mon Mar 09 10:00:00 CET 2026", datetime(2026, 3, 9, 9, 0)),  # Java's Date.toString, zone applied
        ("2026-03-09T10:00:00 +0100 CET", None),  # feedparser would read 10:00 and drop the offset
    ],
)
def test_a_feed_date_no_strict_reader_knows_keeps_to_the_same_rules(
    written: str, read: datetime | None
) -> None:
    [entry] = parse(rss([item(1, pubDate=written)])).items
    assert entry.published_at == read
    assert (read is None) == any("ignored" in issue for issue in entry.issues)


@pytest.mark.parametrize(
    "markup",
    [
        "<p>Rates: 2 < 3 and 5 > 4 hold.</p>",
        '<p>Leaders meet.</p><img alt="Starmer >" src="a.jpg"><p>More talks.</p>',
    ],
    ids=["less-than-in-text", "quoted-greater-than"],
)
def test_text_reads_the_same_whichever_way_the_markup_is_read(markup: str) -> None:
    # An id elsewhere sends the markup through the HTML parser; its text must not change.
    assert html_to_text(markup) == html_to_text('<span id="x"></span>' + markup)
    assert "2 < 3" in html_to_text(markup) or "More talks." in html_to_text(markup)


# --- Documents that are not well-formed XML: feedparser's loose parser ------------------------

#: An item with an HTML entity XML does not define: feedparser reads the whole document with
#: its loose parser, which leaves XML escapes in some values its strict parser resolves.
NOT_WELL_FORMED_ITEM = {
    "title": "Other story",
    "link": "http://example.org/other",
    "guid": "urn:other",
    "description": "Fish&nbsp;and chips",
}


def test_a_guid_reads_the_same_when_another_item_is_not_well_formed() -> None:
    story = {**item(1), "guid": "http://example.org/?p=1&amp;lang=en"}
    strict, loose = parse(rss([story])).items[0], parse(rss([story, NOT_WELL_FORMED_ITEM])).items[0]
    assert strict.guid == loose.guid == strict.identity == loose.identity == "http://example.org/?p=1&lang=en"


def test_an_atom_link_reads_the_same_when_another_entry_is_not_well_formed() -> None:
    """WordPress writes ``&#038;`` in a link's href; left undecoded, its ``#`` would cut the
    link (``?p=123``: another page) and revise the article."""

    def atom(*entries: str) -> bytes:
        return (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>T</title><id>urn:feed</id><updated>2026-03-09T09:00:00Z</updated>{''.join(entries)}</feed>"
        ).encode()

    story = (
        "<entry><id>urn:story</id><title>Budget passes</title>"
        '<link rel="alternate" href="https://example.org/?p=123&#038;lang=en"/>'
        "<summary>The budget passed.</summary><updated>2026-03-09T09:00:00Z</updated></entry>"
    )
    other = (
        '<entry><id>urn:other</id><title>Other story</title><link href="https://example.org/?p=9"/>'
        "<summary>Fish&nbsp;and chips</summary><updated>2026-03-09T09:00:00Z</updated></entry>"
    )
    strict, loose = parse(atom(story)).items[0], parse(atom(story, other)).items[0]
    assert strict.url == loose.url == "https://example.org/?p=123&lang=en"


def test_a_document_cut_inside_an_item_s_start_tag_keeps_the_item_before() -> None:
    """Cut inside ``<item ``, no entry was opened for it: the complete item before it is
    read (it was rejected as cut off, so its revision was lost)."""
    whole = rss([item(1, "Budget passes narrowly")])
    cut = whole[: whole.index(b"</channel>")] + b'<item rdf:about="http://exa'
    result = parse(cut)
    assert [i.title for i in result.items] == ["Budget passes narrowly"] and not result.rejections
    assert parse(whole[: whole.index(b"</channel>")] + b"<item><title>Next</title>").rejections


def test_the_fast_path_declines_a_document_that_binds_a_prefix_feedparser_uses_elsewhere() -> None:
    """``dc`` bound to DC Terms, DC Elements' creator written under another prefix: feedparser
    reads it through the document's ``dc``, which the fast path does not; it declines, so a
    document read by either path reads the same."""
    namespaces = ' xmlns:dc="http://purl.org/dc/terms/" xmlns:el="http://purl.org/dc/elements/1.1/"'
    body = rss([item(1, extra="<el:creator>Jo Bloggs</el:creator>")]).replace(
        b'<rss version="2.0">', f'<rss version="2.0"{namespaces}>'.encode()
    )
    assert parse_rss_fast(body, now=NOW) is None
    assert parse_body("rss", body, source_id="b", url="b", now=NOW).items == parse(body).items
    standard = body.replace(b"http://purl.org/dc/terms/", b"http://purl.org/dc/elements/1.1/")
    assert parse_rss_fast(standard, now=NOW) is not None


@pytest.mark.parametrize(
    ("field", "written", "read"),
    [
        ("link", "https://e.com/?id=1&amp;section=world", "https://e.com/?id=1&section=world"),
        ("guid", "https://e.com/?p=12&#038;section=world", "https://e.com/?p=12&section=world"),
        ("guid", "https://e.com/?p=1&amp;amp;lang=en", "https://e.com/?p=1&amp;lang=en"),
    ],
)
def test_escapes_are_resolved_once_when_another_item_is_not_well_formed(
    field: str, written: str, read: str
) -> None:
    """Only what the loose parser leaves as written is resolved: resolved twice, ``&section``
    read as the entity ``&sect`` (``\u00a7ion=world``)."""
    story = {**item(1), field: written}
    strict, loose = parse(rss([story])).items[0], parse(rss([story, NOT_WELL_FORMED_ITEM])).items[0]
    assert getattr(strict, field) == getattr(loose, field) == read


def test_the_fast_path_declines_a_prefix_bound_to_two_namespaces() -> None:
    """feedparser keeps one map of prefixes for the document: ``x`` bound to DC Elements on
    the root and to another namespace inside an item reads as dc there too."""
    body = (
        b'<?xml version="1.0"?><rss version="2.0" xmlns:x="http://purl.org/dc/elements/1.1/"><channel>'
        b"<title>B</title><item><guid>g1</guid><title>Post</title><description>Hello</description>"
        b'<x:creator xmlns:x="urn:other">Bob</x:creator></item></channel></rss>'
    )
    assert parse_rss_fast(body, now=NOW) is None
