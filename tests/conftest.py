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
