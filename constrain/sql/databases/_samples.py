"""Sample values read lazily, per table, and kept: in memory per ``Database`` and on disk per catalog.

A file under ``cache_dir()/sql-samples`` holds the values read so far for one database in one catalog
state: its name is a digest of the database's identity (engine, host, port, database, user, file: never
a password), the number of values per column and a fingerprint of the catalog (every table's name,
columns, types and keys; for a file also its size and modification time), so a changed catalog never
reads another's values. A file is written atomically (a temporary file, then ``os.replace``) and starts
with its own key: a file that is not JSON, or was written for another key, is ignored and rewritten. The
folder is bounded in bytes (least recently used files go first: ``CONSTRAIN_SAMPLE_CACHE_DISK``, default
64M; ``0`` or ``CONSTRAIN_CACHE_DIR=off`` turns the disk cache off).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..schema import Table

DEFAULT_DISK_BYTES = 64 << 20
_FORMAT = "constrain-sql-samples-v1"
_SUFFIX = ".json"

Values = dict[str, tuple[Any, ...]]  # column name -> sample values


def catalog_fingerprint(tables: Iterable[Table], extra: Mapping[str, Any] | None = None) -> str:
    """A digest of the catalog's state: names, columns, types and keys of every table (and ``extra``)."""
    digest = hashlib.sha256()
    for table in tables:
        record = [table.schema, table.name, [[c.name, c.type] for c in table.columns], list(table.primary_key),
                  [[list(fk.columns), fk.ref_schema, fk.ref_table, list(fk.ref_columns)] for fk in table.foreign_keys]]
        digest.update(json.dumps(record, ensure_ascii=True).encode("ascii") + b"\n")
    digest.update(json.dumps(dict(extra or {}), sort_keys=True, default=str).encode("utf-8"))
    return digest.hexdigest()


def default_directory() -> Path | None:
    """``cache_dir()/sql-samples`` (the cache folder every other cache of this package uses); None when
    ``CONSTRAIN_CACHE_DIR=off`` or ``CONSTRAIN_SAMPLE_CACHE_DISK=0``."""
    if os.environ.get("CONSTRAIN_CACHE_DIR") == "off" or disk_bytes() == 0:
        return None
    from ...local import cache_dir

    return cache_dir() / "sql-samples"


def disk_bytes() -> int:
    from ...local._prefix_cache import _parse_bytes

    return _parse_bytes("CONSTRAIN_SAMPLE_CACHE_DISK", DEFAULT_DISK_BYTES)


class SampleFile:
    """The disk side of one key: read, merge and write the values of its tables (see the module doc)."""

    def __init__(self, directory: Path | None, key: str, limit: int) -> None:
        self.key = key
        self.limit = limit
        self.path = directory / f"{key[:40]}{_SUFFIX}" if directory is not None and limit > 0 else None

    def read(self) -> dict[str, Values]:
        """The values this file holds, or nothing when it is missing, damaged or written for another key."""
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != _FORMAT or data.get("key") != self.key:
            return {}
        tables = data.get("tables")
        if not isinstance(tables, dict):
            return {}
        out: dict[str, Values] = {}
        for name, columns in tables.items():
            if isinstance(columns, dict) and all(isinstance(v, list) for v in columns.values()):
                out[name] = {c: tuple(v) for c, v in columns.items()}
        try:
            os.utime(self.path)  # the LRU order is the files' mtime
        except OSError:
            pass
        return out

    def write(self, tables: Mapping[str, Values]) -> None:
        """Keep ``tables`` (merged with what the file holds now: another process may have added some)."""
        if self.path is None:
            return
        merged = {**self.read(), **tables}
        body = json.dumps({"format": _FORMAT, "key": self.key,
                           "tables": {name: {c: list(v) for c, v in values.items()} for name, values in merged.items()}},
                          ensure_ascii=True).encode("ascii")
        if len(body) > self.limit:
            return
        try:
            _write_atomically(self.path, body)
        except OSError:
            return  # a full or read-only disk: the cache is an optimisation
        self._evict()

    def _evict(self) -> None:
        assert self.path is not None
        found = []
        try:
            entries = list(os.scandir(self.path.parent))
        except OSError:
            return
        for entry in entries:
            if not entry.name.endswith(_SUFFIX):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            found.append((st.st_mtime, entry.path != str(self.path), entry.path, st.st_size))
        total = sum(size for *_, size in found)
        for _, _, path, size in sorted(found, key=lambda f: (f[1] is False, f[0])):
            if total <= self.limit:
                break
            Path(path).unlink(missing_ok=True)
            total -= size


def _write_atomically(target: Path, body: bytes) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
