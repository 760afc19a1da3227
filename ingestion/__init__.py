"""newsroom: feeds and news wires into an immutable DuckDB event log."""

__version__ = "0.1.0"
