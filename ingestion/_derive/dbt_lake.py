"""dbt-duckdb plugin for a working database in DuckLake (the ``lake`` target in
``dbt_project/profiles.yml``): loads the extensions the lake needs from their packages
before dbt attaches it, since this connection must never download them."""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from ingestion._log.lake import load_lake_extensions


class Plugin(BasePlugin):
    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        load_lake_extensions(conn)
