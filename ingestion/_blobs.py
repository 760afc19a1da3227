"""Content-addressed, compressed store of every raw body we fetched.

Bodies live at ``<root>/<sha[:2]>/<sha>.gz`` where sha is the SHA-256 of the
uncompressed bytes; writing the same body twice is a no-op, so retries are free.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from pathlib import Path


class BlobStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.gz"

    def put(self, data: bytes, *, compresslevel: int = 6) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path_for(sha256)
        if target.exists():
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename so a crash never leaves a truncated blob under its final name.
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        try:
            with (
                os.fdopen(fd, "wb") as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel, mtime=0) as gz,
            ):
                gz.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha256

    def get(self, sha256: str) -> bytes:
        return gzip.decompress(self.path_for(sha256).read_bytes())

    def __contains__(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()
