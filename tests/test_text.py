from __future__ import annotations

import pytest

from ingestion._sources.text import as_seen, canonical_url, content_hashes, html_to_text, one_line, web_url

from .conftest import shared_path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://WWW.Example.COM/News/A?id=5#top", "https://www.example.com/News/A?id=5"),
        ("http://example.com:80/a?utm_source=rss&UTM_Medium=x&b=2", "http://example.com/a?b=2"),
        ("https://example.com/a;jsessionid=ABC123?PHPSESSID=1&fbclid=z", "https://example.com/a"),
        ("https://example.com:8443/a?Sid=8f3a9c0d4e5b6a7f&q=ukraine", "https://example.com:8443/a?q=ukraine"),
        # a story's number under the same name (PHP-Nuke, Slashdot) tells stories apart: kept
        (
            "https://example.com/modules.php?name=News&file=article&sid=101",
            "https://example.com/modules.php?name=News&file=article&sid=101",
        ),
        (
            "https://example.com/article.pl?sid=07/01/23/1234",
            "https://example.com/article.pl?sid=07%2F01%2F23%2F1234",
        ),
        ("https://news.example/story/1?utm_source=rss&utm_medium=feed", "https://news.example/story/1"),
        ("https://news.example?fbclid=x", "https://news.example/"),
        ("https://news.example/a?utm_source=rss&&utm_medium=x", "https://news.example/a"),
        ("https://news.example/a?utm_source=rss&id=1", "https://news.example/a?id=1"),
        ("https://news.example/a?utm%5Fsource=rss", "https://news.example/a"),
        ("https://news.example/a?utm_source=a+b&x=%20", "https://news.example/a?x=+"),
        ("https://news.example/a?", "https://news.example/a"),
        ("https://[2001:DB8::1]:8443/a?utm_source=x", "https://[2001:db8::1]:8443/a"),
        # a route in a one-page site is all that tells its articles apart: after the front
        # page, without tracking parameters; a bare "#!", or one after another page, is none
        ("https://News.example/#!/story/1?utm_source=x&id=2", "https://news.example/#!/story/1?id=2"),
        ("https://news.example?utm_source=x#/story/2", "https://news.example/#/story/2"),
        ("http://news.example/#!5781263/talks-resume", "http://news.example/#!5781263/talks-resume"),
        ("https://news.example/#!", "https://news.example/"),
        ("https://news.example/#!/?utm_source=rss", "https://news.example/"),
        ("https://news.example/#!?id=3", "https://news.example/#!?id=3"),
        ("https://news.example/post/1#!comments", "https://news.example/post/1"),
        ("https://news.example/wiki/X#/media/File:Y.jpg", "https://news.example/wiki/X"),
    ],
)
def test_canonical_url_strips_tracking_and_case_only_where_safe(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    "link",
    ["https://news.example/a\nb", "https://news.example/a\x00", "https://news.example/\x85a",
     "https://news.example/\u202egpj.exe", "https://news.example/a\u2066b"],
)  # fmt: skip
def test_a_link_with_control_characters_is_not_published(link: str) -> None:
    assert web_url(link) is None
    assert web_url("https://news.example/a b") == "https://news.example/a b"  # browsers encode a space


def test_markup_captions_credits_and_entities_do_not_reach_the_text() -> None:
    markup = (
        "<p>Talks &amp; more talks in <b>Paris</b>.</p>"
        "<figure><img src='x.jpg'><figcaption>Leaders arrive. Photo: AP</figcaption></figure>"
        "<p class='image-credit'>Image: keystone</p><p>Second&nbsp;paragraph.</p>"
        "<script>track()</script>"
    )
    assert html_to_text(markup) == "Talks & more talks in Paris.\nSecond paragraph."
    assert one_line("<h1>A\n  headline</h1>") == "A headline"


@pytest.mark.shared
def test_seed_story_loses_doubled_dateline_and_glued_credits() -> None:
    text = shared_path("data", "seed", "coalition_of_the_willing_2026-01-07.txt").read_text()
    clean = html_to_text(text)
    assert "Jan 7, 2026, 6:41 a.m\n" in clean
    assert "a.mJan" not in clean
    assert "Image: keystone" not in clean
    # The caption sentence itself stays: plain text cannot tell it from the story.
    assert clean.startswith("Emmanuel Macron and Keir Starmer assure Ukraine")


@pytest.mark.parametrize(
    "text",
    [
        "Oscars 2026! Photos: the best red carpet looks",
        "Prices rose in March. Source: Eurostat",
        "Yes we can. Yes we can.",
        "Sirhan Sirhan convicted",
        "99999999999999999999",
    ],
)
def test_a_sentence_that_only_looks_like_a_credit_or_a_doubled_label_is_kept_whole(text: str) -> None:
    assert html_to_text(text) == text


@pytest.mark.parametrize(
    ("seen", "sent"),
    [
        ("José Müller wins", "Jose\u0301 Mu\u0308ller wins"),  # decomposed letters
        ("Germany votes", "Ger\xadmany votes"),  # a soft hyphen
        ("Germany votes", "\ufeffGermany\u2060 votes"),  # a byte order mark, a word joiner
    ],
)
def test_what_no_reader_sees_is_not_hashed(seen: str, sent: str) -> None:
    """Otherwise a feed that switches between the two forms records a revision each time."""
    assert as_seen(sent) == seen
    as_sent, as_written = content_hashes(sent, "Summary", url=None)
    assert (as_sent,) == content_hashes(seen, "Summary", url=None) != (as_written,)


def test_a_page_over_http_or_https_is_one_link() -> None:
    """Servers behind one name disagree on the scheme they write: each switch was a revision."""
    over_https = content_hashes("Title", url="https://example.org/a")
    assert over_https[0] == content_hashes("Title", url="http://example.org/a")[0]
    assert over_https[0] != content_hashes("Title", url="https://example.org/b")[0]


def test_a_link_with_a_story_s_sid_is_hashed_as_before_too() -> None:
    """Before a story's ``sid`` was kept, every ``sid`` went: an article recorded then is
    matched by the hash of its link as read then, so keeping it revises nothing."""
    from ingestion._log.events import item_content_hashes
    from ingestion._model import ParsedItem

    kept = ParsedItem(
        identity="g", guid="g", link="x", url="https://e.com/story.php?id=2&sid=4711", title="T"
    )
    before = ParsedItem(identity="g", guid="g", link="x", url="https://e.com/story.php?id=2", title="T")
    assert item_content_hashes(before)[0] in item_content_hashes(kept)
