"""DuckDB extensions, loaded from the packages the project depends on.

DuckDB would download an extension (``INSTALL``, or autoloading on first use) from
its own server, which fails offline and behind firewalls. Each extension the
project uses comes instead as a Python package, ``duckdb-extension-<name>``, of
the same version as ``duckdb``; it ships ``extensions/v<version>/<name>.duckdb_extension``
and :func:`load_extension` loads that file by its path. Every connection the
product opens has :data:`NO_DOWNLOADS` in its configuration from the start (opening a
SQLite file would otherwise install ``sqlite_scanner``), so an extension that was not
loaded this way is an error, never a download.
"""

from __future__ import annotations

import re
from importlib import metadata, resources
from pathlib import Path

import duckdb

from ingestion.exceptions import ExtensionError

#: Extension names are identifiers; anything else cannot name a package or a file.
_NAME = re.compile(r"[a-z][a-z0-9_]*")


#: The configuration every connection is opened with: a function, statement or file
#: that needs an extension not loaded fails instead of fetching it from the network.
NO_DOWNLOADS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def forbid_downloads(con: duckdb.DuckDBPyConnection) -> None:
    """``NO_DOWNLOADS`` for a connection opened elsewhere (both settings hold for the whole
    database instance)."""
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")


def extension_package(name: str) -> str:
    """The Python package that ships extension ``name``, as pip and uv spell it."""
    return "duckdb-extension-" + name.replace("_", "-")


def extension_path(name: str) -> Path:
    """The extension file for the running DuckDB inside its installed package."""
    if not _NAME.fullmatch(name):
        raise ExtensionError(f"{name!r} is not a DuckDB extension name")
    version = duckdb.__version__
    package = extension_package(name)
    wanted = f"install {package}=={version}"
    try:
        installed = metadata.version(package)
        root = resources.files("duckdb_extension_" + name)
    except (metadata.PackageNotFoundError, ModuleNotFoundError):
        raise ExtensionError(f"DuckDB extension {name} is not installed: {wanted}") from None
    path = Path(str(root / "extensions" / f"v{version}" / f"{name}.duckdb_extension"))
    if not path.is_file():
        raise ExtensionError(
            f"DuckDB extension {name}: {package} {installed} has no build for DuckDB {version}: {wanted}"
        )
    return path


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load extension ``name`` into ``con`` from its package; never from the network."""
    path = extension_path(name)
    forbid_downloads(con)
    try:
        con.execute("LOAD '" + str(path).replace("'", "''") + "'")
    except duckdb.Error as exc:
        raise ExtensionError(
            f"DuckDB extension {name} could not be loaded from {path}: {' '.join(str(exc).split())}"
        ) from exc
