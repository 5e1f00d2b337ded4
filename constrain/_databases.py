"""Sample databases shipped as package data, so the README's first command works from any directory."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError

_DATA_DIR = Path(__file__).resolve().parent / "data"  # package data other than grammars

PACKAGED_DATABASES: dict[str, str] = {
    "chinook": "chinook.sqlite",  # Chinook media store, MIT licence: data/CHINOOK-LICENSE.md
}


def packaged_database(name: str) -> Path:
    """The path of a packaged database by name (``"chinook"``)."""
    try:
        filename = PACKAGED_DATABASES[name]
    except KeyError:
        raise InputError(
            f"no packaged database named {name!r} (packaged: {', '.join(sorted(PACKAGED_DATABASES))})"
        ) from None
    return _DATA_DIR / filename


def resolve_database(name_or_path: str | os.PathLike[str]) -> Path:
    """An existing file path as given, else a packaged database by name (``chinook``, ``chinook.sqlite``)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    key = os.fspath(name_or_path)
    stem = key[: -len(".sqlite")] if key.endswith(".sqlite") else key
    if stem in PACKAGED_DATABASES and os.sep not in key:
        return packaged_database(stem)
    if os.sep in key or Path(key).suffix:
        raise InputError(f"no such SQLite database file (not found, and not a packaged database: "
                         f"{', '.join(sorted(PACKAGED_DATABASES))})", source=key)
    raise InputError(
        f"database {key!r} not found: not a file, and not a packaged database "
        f"({', '.join(sorted(PACKAGED_DATABASES))})"
    )
