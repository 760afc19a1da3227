"""Content-addressed, compressed store of every raw body we fetched.

Bodies live at ``<root>/<sha[:2]>/<sha>.gz`` where sha is the SHA-256 of the
uncompressed bytes; writing the same body twice is a no-op, so retries are free.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_FILE_BLOCK = 1 << 24


class BlobStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.gz"

    def put(self, data: bytes, *, compresslevel: int = 6) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path_for(sha256)
        if self._intact(target, sha256):
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._writing(target.parent) as (tmp, raw):
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel, mtime=0) as gz:
                gz.write(data)
            raw.close()
            os.replace(tmp, target)
        return sha256

    def put_file(self, source: str | os.PathLike[str], *, compresslevel: int = 6) -> str:
        """Like :meth:`put` for a file, streamed: large archives never sit in memory."""
        digest = hashlib.sha256()
        self.root.mkdir(parents=True, exist_ok=True)
        with self._writing(self.root) as (tmp, raw):
            with (
                open(source, "rb") as handle,
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel, mtime=0) as gz,
            ):
                while block := handle.read(_FILE_BLOCK):
                    digest.update(block)
                    gz.write(block)
            raw.close()
            sha256 = digest.hexdigest()
            target = self.path_for(sha256)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
        return sha256

    @staticmethod
    @contextmanager
    def _writing(directory: Path) -> Iterator[tuple[str, BinaryIO]]:
        # Write then rename, so a crash never leaves a truncated blob under its final name.
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as raw:
                yield tmp, raw
        finally:
            Path(tmp).unlink(missing_ok=True)  # gone already once renamed into place

    @staticmethod
    def _intact(path: Path, sha256: str) -> bool:
        """Whether ``path`` holds the body named ``sha256``. A damaged copy (a
        crash, a bad disk) is written again by the next fetch of the same body
        instead of failing every later parse of it."""
        try:
            return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == sha256
        except (OSError, EOFError, zlib.error):
            return False

    def copy_missing_from(self, other: BlobStore) -> int:
        """Copy the bodies ``other`` holds and this store lacks (each file as it is,
        written then renamed); returns how many were copied."""
        copied = 0
        for source in sorted(other.root.glob("??/*.gz")):
            target = self.root / source.parent.name / source.name
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with self._writing(target.parent) as (tmp, raw), source.open("rb") as handle:
                while block := handle.read(_FILE_BLOCK):
                    raw.write(block)
                raw.close()
                os.replace(tmp, target)
            copied += 1
        return copied

    def get(self, sha256: str) -> bytes:
        return gzip.decompress(self.path_for(sha256).read_bytes())

    def __contains__(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()
