"""The explorer: the SQLite mirror of a published snapshot, and Datasette serving it,
driven by a real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

import duckdb
import jinja2
import pytest

from ingestion._explore.mirror import write_mirror
from ingestion._explore.plugin import prepare_jinja2_environment, word_diff
from ingestion._explore.serve import RunningExplorer, start_in_background
from ingestion._publish.snapshot import publish, published_dir
from ingestion.exceptions import QueryError

from .conftest import copy_data_dir

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def published(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published folder of a snapshot of the demo data."""
    db_path = copy_data_dir(demo_data_dir, tmp_path_factory.mktemp("explorer"))
    publish(db_path)
    return published_dir(db_path)


@pytest.fixture(scope="module")
def mirror(published: Path) -> sqlite3.Connection:
    with closing(_read_only(published / "newsroom.sqlite")) as con:
        yield con


@pytest.fixture(scope="module")
def explorer(published: Path) -> RunningExplorer:
    with start_in_background(published) as running:
        yield running


def _read_only(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    return con


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers.get("content-type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", ""), error.read().decode()


# The mirror


def test_mirror_has_the_keys_the_data_has(mirror: sqlite3.Connection) -> None:
    def primary_key(table: str) -> list[str]:
        columns = [row for row in mirror.execute(f"PRAGMA table_info({table})") if row["pk"]]
        return [row["name"] for row in sorted(columns, key=lambda row: row["pk"])]

    def references(table: str) -> set[tuple[str, str, str]]:
        return {(r["from"], r["table"], r["to"]) for r in mirror.execute(f"PRAGMA foreign_key_list({table})")}

    assert primary_key("articles") == ["article_id"]
    assert primary_key("article_versions") == ["article_id", "version"]
    assert primary_key("story_threads") == ["thread_id"]
    assert primary_key("entities") == ["entity_id"]
    assert primary_key("sources") == ["source_id"]
    assert ("article_id", "articles", "article_id") in references("article_versions")
    assert ("source_id", "sources", "source_id") in references("articles")
    assert {
        ("article_id", "articles", "article_id"),
        ("thread_id", "story_threads", "thread_id"),
    } <= references("thread_articles")
    assert {("article_id", "articles", "article_id"), ("entity_id", "entities", "entity_id")} <= references(
        "entity_mentions"
    )
    # Declared only where every value has its row.
    assert mirror.execute("PRAGMA foreign_key_check").fetchall() == []
    assert mirror.execute("PRAGMA integrity_check").fetchall()[0][0] == "ok"
    indexed = {row["name"] for row in mirror.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {
        "articles_source_id",
        "articles_status",
        "entity_mentions_entity_id",
        "thread_articles_thread_id",
    } <= indexed


def test_mirror_holds_every_row_with_plain_types(published: Path, mirror: sqlite3.Connection) -> None:
    with duckdb.connect(str(published / "newsroom.duckdb"), read_only=True) as snapshot:
        counts = json.loads(snapshot.execute("SELECT tables FROM meta.snapshots").fetchall()[0][0])
    for table, rows in counts.items():
        assert mirror.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows, table
        columns = [row["name"] for row in mirror.execute(f"PRAGMA table_info({table})")]
        # The JSON text companions of nested columns are the columns themselves here.
        assert not [c for c in columns if c.endswith("_json")], table
    for table, column in [
        ("articles", "published_at"),
        ("article_versions", "valid_from"),
        ("entities", "last_seen_at"),
    ]:
        values = [
            row[0] for row in mirror.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")
        ]
        assert values and all(ISO_UTC.match(value) for value in values), (table, column, values[:3])
    entity = mirror.execute(
        "SELECT aliases, type_votes FROM entities ORDER BY mention_count DESC LIMIT 1"
    ).fetchone()
    assert isinstance(json.loads(entity["aliases"]), list)
    assert isinstance(json.loads(entity["type_votes"]), dict)
    assert {row[0] for row in mirror.execute("SELECT DISTINCT is_current FROM article_versions")} <= {0, 1}
    assert mirror.execute("SELECT last_event_seq FROM snapshots").fetchone()[0] > 0


def test_mirror_searches_every_version(mirror: sqlite3.Connection) -> None:
    found = mirror.execute(
        "SELECT v.title, v.summary, v.body FROM article_versions AS v "
        "WHERE v.rowid IN (SELECT rowid FROM article_versions_fts WHERE article_versions_fts MATCH 'Zelensky')"
    ).fetchall()
    assert found and all("zelensky" in " ".join(filter(None, row)).lower() for row in found)
    # Accents folded: the German coverage of Cologne is found without the umlaut.
    assert mirror.execute(
        "SELECT count(*) FROM article_versions_fts WHERE article_versions_fts MATCH 'Koln'"
    ).fetchone()[0]


def test_mirror_file_refuses_writes(published: Path) -> None:
    path = (published / "newsroom.sqlite").resolve()
    assert path.stat().st_mode & 0o222 == 0
    with (
        closing(sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True)) as con,
        pytest.raises(sqlite3.Error),
    ):
        con.execute("DELETE FROM articles")


def test_mirror_reads_the_layout_before_published_tables(published: Path, tmp_path: Path) -> None:
    """Marts as tables in the `marts` schema with naive UTC timestamps and no JSON
    companions (snapshots published before) mirror to the same tables."""
    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"ATTACH '{published / 'newsroom.duckdb'}' AS new (READ_ONLY)")
        con.execute("CREATE SCHEMA marts")
        marts = con.execute(
            "SELECT view_name FROM duckdb_views() WHERE database_name = 'new' AND schema_name = 'marts'"
        ).fetchall()
        for (mart,) in marts:
            described = con.execute(f"DESCRIBE new.marts.{mart}").fetchall()
            names = {row[0] for row in described}
            select = ", ".join(
                f"CAST({name} AS TIMESTAMP) AS {name}" if kind == "TIMESTAMP WITH TIME ZONE" else name
                for name, kind, *_ in described
                if not (name.endswith("_json") and name.removesuffix("_json") in names)
            )
            con.execute(f"CREATE TABLE marts.{mart} AS SELECT {select} FROM new.marts.{mart}")
    write_mirror(old, tmp_path / "old.sqlite")
    with (
        closing(_read_only(tmp_path / "old.sqlite")) as before,
        closing(_read_only(published / "newsroom.sqlite")) as now,
    ):
        for table in ("articles", "article_versions", "entities", "story_threads", "thread_articles"):
            ordered = f"SELECT * FROM {table} ORDER BY 1, 2"
            assert [tuple(r) for r in before.execute(ordered)] == [tuple(r) for r in now.execute(ordered)], (
                table
            )


# The pages, without a browser


def test_word_diff_marks_words_and_escapes_them() -> None:
    diff = word_diff("Storm <b>hits</b> Ireland", "Storm <b>leaves</b> Ireland & Wales")
    assert "<del>&lt;b&gt;hits&lt;/b&gt;</del><ins>&lt;b&gt;leaves&lt;/b&gt;</ins>" in diff
    assert "<ins> &amp; Wales</ins>" in diff
    assert "<b>" not in diff


def test_word_diff_of_long_texts_is_bounded() -> None:
    words = [f"w{n}" for n in range(60_000)]
    edited = [*words[:30_000], "changed", *words[30_001:]]
    started = time.monotonic()
    diff = word_diff(" ".join(words), " ".join(edited))
    assert time.monotonic() - started < 5
    assert "<del>w30000</del><ins>changed</ins>" in diff
    # Two long texts that differ throughout: the changed stretch taken out and put in whole.
    rewritten = word_diff(" ".join(words), " ".join(reversed(words)))
    assert rewritten.count("<del>") == 1 and rewritten.count("<ins>") == 1


def test_hostile_headline_is_shown_as_text(published: Path, tmp_path: Path) -> None:
    hostile = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    snapshot = tmp_path / "published" / "newsroom.duckdb"
    snapshot.parent.mkdir()
    shutil.copy(published / "newsroom.duckdb", snapshot)
    with duckdb.connect(str(snapshot)) as con:
        article_id = con.execute(
            "SELECT article_id FROM marts.articles ORDER BY article_id LIMIT 1"
        ).fetchall()[0][0]
        con.execute(
            "UPDATE main.articles SET title = ?, url = 'javascript:alert(1)' WHERE article_id = ?",
            [hostile, article_id],
        )
        con.execute("UPDATE main.article_versions SET title = ? WHERE article_id = ?", [hostile, article_id])
    write_mirror(snapshot, snapshot.parent / "newsroom.sqlite")
    with start_in_background(snapshot.parent) as running:
        status, _, page = _get(f"{running.url}article/{article_id}")
        _, _, table = _get(f"{running.url}newsroom/articles")
    assert status == 200
    for html in (page, table):
        assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in page
    assert 'href="javascript:' not in page


def test_serve_follows_a_new_publish(published: Path, tmp_path: Path) -> None:
    """Publishing links a new mirror into place; the running explorer serves it from the next request."""
    first, second = tmp_path / "one" / "newsroom.sqlite", tmp_path / "two" / "newsroom.sqlite"
    for path in (first, second):
        path.parent.mkdir()
        shutil.copy((published / "newsroom.sqlite").resolve(), path)
    with closing(sqlite3.connect(second)) as con:
        article_id = con.execute("SELECT article_id FROM articles ORDER BY article_id LIMIT 1").fetchone()[0]
        con.execute("UPDATE articles SET title = 'The newer snapshot' WHERE article_id = ?", [article_id])
        con.commit()
    served = tmp_path / "published"
    served.mkdir()
    (served / "newsroom.sqlite").symlink_to(first)
    with start_in_background(served) as running:
        assert "The newer snapshot" not in _get(f"{running.url}article/{article_id}")[2]
        (served / "next").symlink_to(second)
        (served / "next").replace(served / "newsroom.sqlite")
        assert "The newer snapshot" in _get(f"{running.url}article/{article_id}")[2]


def test_serve_refuses_with_one_line(tmp_path: Path, published: Path) -> None:
    with pytest.raises(QueryError, match="no explorer database"):
        start_in_background(tmp_path)
    with pytest.raises(QueryError, match="host 'no such host'"):
        start_in_background(published, host="no such host")
    with closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(QueryError, match=f"port {port} on 127.0.0.1 is in use"):
            start_in_background(published, port=port)


def test_unknown_ids_are_a_clear_404(explorer: RunningExplorer) -> None:
    for page, what in [("article", "article"), ("thread", "story thread"), ("entity", "entity")]:
        status, _, html = _get(f"{explorer.url}{page}/no-such-id")
        assert status == 404
        assert f"No {what} &#39;no-such-id&#39; in the published snapshot." in html


def test_feeds_are_served_as_atom(explorer: RunningExplorer, published: Path) -> None:
    if not (published / "feeds" / "changes.atom").exists():
        pytest.skip("this snapshot has no change feeds")
    status, content_type, body = _get(f"{explorer.url}feeds/changes.atom")
    assert status == 200 and content_type.startswith("application/atom+xml")
    assert '<feed xmlns="http://www.w3.org/2005/Atom"' in body
    source_feed = sorted((published / "feeds" / "sources").glob("*.atom"))[0].name
    assert _get(f"{explorer.url}feeds/sources/{source_feed}")[0] == 200
    assert _get(f"{explorer.url}feeds/%2e%2e/newsroom.duckdb")[0] == 404
    assert _get(f"{explorer.url}feeds/{'x' * 300}.atom")[0] == 404  # a name too long for the file system


def test_a_query_cannot_build_a_value_of_any_size(explorer: RunningExplorer) -> None:
    started = time.monotonic()
    status, _, html = _get(f"{explorer.url}newsroom?sql=select+length(randomblob(900000000))")
    assert status == 400 and "too big" in html
    assert time.monotonic() - started < 10


def test_row_links_encode_ids_as_datasette_reads_them() -> None:
    env = jinja2.Environment(autoescape=True)
    prepare_jinja2_environment(env)
    # urlencode would leave the ".", which Datasette reads as a format (".json").
    assert env.from_string("{{ 'news.json'|row_id }}").render() == "news~2Ejson"


def test_a_bad_request_is_a_short_page(explorer: RunningExplorer) -> None:
    status, _, html = _get(f"{explorer.url}newsroom/articles?_col=nope")
    assert status == 400 and "Traceback" not in html


def test_writes_are_refused(explorer: RunningExplorer, mirror: sqlite3.Connection) -> None:
    before = mirror.execute("SELECT count(*) FROM articles").fetchone()[0]
    request = urllib.request.Request(f"{explorer.url}newsroom/articles", data=b"title=x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 405
    status, _, html = _get(f"{explorer.url}newsroom?sql=DELETE+FROM+articles")
    assert status == 400 and "Statement must be a SELECT" in html
    assert mirror.execute("SELECT count(*) FROM articles").fetchone()[0] == before


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("localhost", 200),
        ("127.0.0.1:8001", 200),
        ("[::1]:8001", 200),
        ("LOCALHOST:80", 200),
        ("newsroom.evil.example", 421),
        ("evil.example:8001", 421),
        ("127.0.0.1.evil.example", 421),
        ("[::ffff:8.8.8.8]", 421),
        ("[::ffff:127.0.0.1]:8001", 200),
    ],
)
def test_only_requests_to_this_machines_names_are_answered(
    explorer: RunningExplorer, host: str, status: int
) -> None:
    """A page whose name was pointed at 127.0.0.1 (DNS rebinding) must not read the explorer."""
    request = urllib.request.Request(f"{explorer.url}newsroom/articles", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answered = response.status
    except urllib.error.HTTPError as error:
        answered = error.code
    assert answered == status


def test_no_page_reads_the_whole_mirror_to_hash_it(explorer: RunningExplorer, monkeypatch) -> None:
    """Datasette hashes an immutable database's file for its pages: gigabytes read on the
    event loop, every other request waiting."""

    def whole_file_hashed(path: Path) -> str:
        raise AssertionError(f"{path} hashed whole")

    monkeypatch.setattr("datasette.database.inspect_hash", whole_file_hashed)
    for page in ("", "-/databases.json", "newsroom.json"):
        status, _, body = _get(f"{explorer.url}{page}")
        assert status == 200, (page, body[:300])


# In a real browser

browser_needed = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason=f"headless browser tests need {CHROMIUM} and {CHROMEDRIVER} (Debian: apt install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    from selenium import webdriver

    # Selenium's driver manager would look for downloads; the driver is given.
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    )
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@browser_needed
def test_browse_index_table_and_search(
    browser, explorer: RunningExplorer, mirror: sqlite3.Connection
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(explorer.url)
    assert "newsroom explorer" in browser.title
    browser.find_element(By.LINK_TEXT, "newsroom").click()
    assert browser.find_elements(By.LINK_TEXT, "Who was named most this week?")

    browser.get(f"{explorer.url}newsroom/articles")
    assert "One row per article" in browser.page_source
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.rows-and-columns tbody tr")) > 10
    assert browser.find_elements(By.CSS_SELECTOR, ".facet-info")  # source_id, status, language

    browser.get(f"{explorer.url}newsroom/article_versions")
    search = browser.find_element(By.ID, "_search")
    search.send_keys("Zelensky")
    search.submit()
    assert "_search=Zelensky" in browser.current_url
    expected = mirror.execute(
        "SELECT count(*) FROM article_versions_fts WHERE article_versions_fts MATCH 'Zelensky'"
    ).fetchone()[0]
    assert expected > 0
    heading = browser.find_element(By.CSS_SELECTOR, "h3").text
    assert heading.startswith(f"{expected} row") and 'search matches "Zelensky"' in heading
    rows = browser.find_elements(By.CSS_SELECTOR, "table.rows-and-columns tbody tr")
    assert len(rows) == expected and any("Zelensky" in row.text for row in rows)


@browser_needed
def test_browse_a_thread(browser, explorer: RunningExplorer, mirror: sqlite3.Connection) -> None:
    from selenium.webdriver.common.by import By

    thread = mirror.execute(
        "SELECT thread_id, label FROM story_threads ORDER BY article_count DESC LIMIT 1"
    ).fetchone()
    first = mirror.execute(
        "SELECT a.source_id, a.title FROM thread_articles AS ta JOIN articles AS a USING (article_id) "
        "WHERE ta.thread_id = ? AND ta.is_member "
        "ORDER BY coalesce(a.published_at, a.first_seen_at), a.article_id LIMIT 1",
        [thread["thread_id"]],
    ).fetchone()
    browser.get(f"{explorer.url}thread/{thread['thread_id']}")
    assert browser.find_element(By.TAG_NAME, "h1").text == thread["label"]
    broke_first = browser.find_element(By.CSS_SELECTOR, ".broke-first").text
    assert first["source_id"] in broke_first and first["title"] in broke_first
    browser.find_element(By.CSS_SELECTOR, ".broke-first a").click()
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith(first["title"])


@browser_needed
def test_article_page_shows_what_each_version_changed(
    browser, explorer: RunningExplorer, mirror: sqlite3.Connection
) -> None:
    from selenium.webdriver.common.by import By

    article_id, old_title, new_title = mirror.execute(
        "SELECT article_id, previous_title, title FROM article_versions "
        "WHERE title_changed AND version = 2 ORDER BY article_id LIMIT 1"
    ).fetchone()
    browser.get(f"{explorer.url}article/{article_id}")
    version_2 = browser.find_element(By.ID, "v2")
    removed = " ".join(e.text for e in version_2.find_elements(By.CSS_SELECTOR, ".field-title del"))
    added = " ".join(e.text for e in version_2.find_elements(By.CSS_SELECTOR, ".field-title ins"))
    assert removed and added
    assert set(removed.split()) <= set(old_title.split()) and set(added.split()) <= set(new_title.split())
    assert set(removed.split()) - set(new_title.split())
    # Without what was taken out, the marked-up headline reads as the new one.
    shown = browser.execute_script(
        "const text = arguments[0].cloneNode(true);"
        "text.querySelectorAll('del').forEach(d => d.remove()); return text.textContent;",
        version_2.find_element(By.CSS_SELECTOR, ".field-title .text"),
    )
    assert shown == new_title


@browser_needed
def test_withdrawn_article_is_flagged(browser, explorer: RunningExplorer, mirror: sqlite3.Connection) -> None:
    from selenium.webdriver.common.by import By

    withdrawn = mirror.execute(
        "SELECT article_id FROM articles WHERE status = 'withdrawn' LIMIT 1"
    ).fetchone()
    if withdrawn is None:
        pytest.skip("no withdrawn article in the demo data")
    browser.get(f"{explorer.url}article/{withdrawn['article_id']}")
    assert browser.find_elements(By.CSS_SELECTOR, "h1 .withdrawn")
    assert browser.find_elements(By.CSS_SELECTOR, "section.version .withdrawn")


@browser_needed
def test_entity_page_links_to_its_articles(
    browser, explorer: RunningExplorer, mirror: sqlite3.Connection
) -> None:
    from selenium.webdriver.common.by import By

    entity = mirror.execute(
        "SELECT entity_id, canonical_name FROM entities ORDER BY mention_count DESC LIMIT 1"
    ).fetchone()
    browser.get(f"{explorer.url}newsroom/entities/{entity['entity_id']}")
    browser.find_element(By.CSS_SELECTOR, f"a[href='/entity/{entity['entity_id']}']").click()
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith(entity["canonical_name"])
    links = browser.find_elements(By.CSS_SELECTOR, "table.rows-and-columns a[href^='/article/']")
    assert links
    links[0].click()
    assert "/article/" in browser.current_url and browser.find_elements(By.CSS_SELECTOR, "section.version")


@browser_needed
def test_write_through_sql_is_refused_in_the_browser(browser, explorer: RunningExplorer) -> None:
    browser.get(f"{explorer.url}newsroom?sql=INSERT+INTO+sources+(source_id)+VALUES+('x')")
    assert "Statement must be a SELECT" in browser.page_source


def test_a_bad_request_leaves_no_traceback_and_no_headers_on_the_console(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A page size over the limit is a 400 page; Datasette's own handler, which printed every
    error's traceback with its local variables (the request's headers among them), is out."""
    published = tmp_path / "published"
    published.mkdir()
    with closing(sqlite3.connect(published / "newsroom.sqlite")) as con:
        con.execute("CREATE TABLE articles (article_id TEXT PRIMARY KEY, title TEXT)")
        con.execute("INSERT INTO articles VALUES ('a1', 'A headline')")
        con.commit()
    statuses = []
    with start_in_background(published) as running:
        capfd.readouterr()
        for path in ("newsroom/articles?_size=100000", "newsroom/articles?_sort=nonexistent"):
            request = urllib.request.Request(f"{running.url}{path}", headers={"Cookie": "session=SECRET-42"})
            with pytest.raises(urllib.error.HTTPError) as answered:
                urllib.request.urlopen(request, timeout=30)
            statuses.append(answered.value.code)
    printed = capfd.readouterr()
    assert statuses == [400, 500]  # Datasette answers an unknown sort column with a 500 of its own
    assert "SECRET-42" not in printed.out + printed.err and "Traceback" not in printed.out + printed.err


def test_saved_queries_read_the_words_as_written(explorer: RunningExplorer) -> None:
    """``%`` and ``_`` are characters to find, not wildcards matching every headline."""

    def rows(query: str, words: str) -> list:
        status, _, body = _get(f"{explorer.url}newsroom/{query}.json?_shape=array&words={words}")
        assert status == 200
        return json.loads(body)

    for query in ("headline_changes", "who_broke_it_first"):
        assert rows(query, "")  # empty words: all of them
        assert rows(query, "%25") == rows(query, "_") == []


def test_another_datasette_in_the_process_keeps_its_own_error_pages(tmp_path: Path) -> None:
    """The explorer's error hook answers for its own Datasette only (run in a process of its
    own: the plugin manager is the process's)."""
    script = f"""
import asyncio, sqlite3
from pathlib import Path
from datasette.app import Datasette
from ingestion._explore.serve import explorer_app
from ingestion._publish.snapshot import FEEDS_NAME, MIRROR_NAME
folder = Path({str(tmp_path)!r})
(folder / FEEDS_NAME).mkdir()
con = sqlite3.connect(folder / "m.sqlite")
con.execute("CREATE TABLE articles (article_id TEXT PRIMARY KEY)")
con.commit()
con.close()
(folder / MIRROR_NAME).symlink_to(folder / "m.sqlite")
explorer_app(folder)
print("STATUS", asyncio.run(Datasette(memory=True).client.get("/nope")).status_code)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "STATUS 404" in result.stdout, result.stderr[-600:]
