"""The explorer: a SQLite mirror of the published snapshot, browsed with Datasette."""
