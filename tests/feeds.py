"""Small feeds written for the tests."""

from __future__ import annotations


def rss(items: list[dict[str, str]], *, build_date: str = "Mon, 09 Mar 2026 10:00:00 GMT") -> bytes:
    parts = []
    for item in items:
        fields = "".join(f"<{tag}>{value}</{tag}>" for tag, value in item.items() if tag != "extra")
        parts.append(f"<item>{fields}{item.get('extra', '')}</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Test feed</title><link>http://example.org/</link><description>t</description>"
        f"<lastBuildDate>{build_date}</lastBuildDate>{''.join(parts)}</channel></rss>"
    ).encode()


def item(n: int, title: str | None = None, **extra: str) -> dict[str, str]:
    return {
        "title": title or f"Headline number {n}",
        "link": f"http://example.org/news/{n}",
        "guid": f"urn:test:{n}",
        "description": f"Summary of story {n}.",
        "pubDate": "Mon, 09 Mar 2026 09:00:00 GMT",
        **extra,
    }
