"""Sources: from feeds.yml to parsed items.

Which sources are due (``plan``), fetching them (``fetch``, ``network``), and
reading a body into items (``parse`` → ``rss``, ``ninjs``, ``newsml``), with the
text, date and URL rules every parser shares. Nothing here opens DuckDB.
"""
