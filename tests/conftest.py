"""Shared fixtures: where the third-party corpora are, and a skip when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPORA = Path(os.environ.get("CONSTRAIN_CORPORA", ROOT.parent / "shared" / "corpora"))


def corpus(*parts: str) -> Path:
    """Path into ../shared/corpora; skips the calling test when the corpus is not on this machine."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus not available: {path} (set CONSTRAIN_CORPORA)")
    return path


@pytest.fixture(name="corpus")
def corpus_fixture():  # type: ignore[no-untyped-def]
    """``corpus("spider", "train_gold.sql")`` inside a test; skips when the corpus is absent."""
    return corpus


def _db_server(tmp_path_factory: pytest.TempPathFactory, kind: str):  # type: ignore[no-untyped-def]
    """A private server (tests/_dbservers.py) with Chinook loaded, for the whole session. Skips when the
    server's binaries are missing, except under CI (``CI`` set), where that is a failure."""
    import _dbservers

    start = {"postgres": _dbservers.start_postgres, "mariadb": _dbservers.start_mariadb}[kind]
    corpus("chinook")
    try:
        server = start(tmp_path_factory.mktemp(kind))
    except _dbservers.ServerUnavailable as exc:
        reason = f"{exc} (apt-get install -y {'postgresql' if kind == 'postgres' else 'mariadb-server'})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI must run the {kind} tests")
        pytest.skip(reason)
    with server:
        _dbservers.load_chinook(server)
        yield server


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A private PostgreSQL server (``.url`` = ``postgresql://app:PW@127.0.0.1:PORT/chinook``); started on
    first use, stopped at the end of the session."""
    yield from _db_server(tmp_path_factory, "postgres")


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A private MariaDB server (``.url`` = ``mysql://app:PW@127.0.0.1:PORT/Chinook``); started on first
    use, stopped at the end of the session."""
    yield from _db_server(tmp_path_factory, "mariadb")
